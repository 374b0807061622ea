"""The list source over a backend that pages (a store): a stretch of the selection held as
:class:`~audittui.tui.keyset_pages.KeysetPages`, fetched by key through
:meth:`Backend.page <audittui.backend.protocol.Backend.page>`, never by an offset.

The ``fetch_*`` methods ask the backend and run in a thread worker; the ``set_*``/``add_*``
methods take their answer in on the app's thread. ``generation`` counts the queries put in
force: an answer fetched for an older one is dropped.
"""

from __future__ import annotations

import bisect
from typing import Any

from ..backend.protocol import TIME, Backend, Key, Row, position
from .columns import row_cells
from .keyset_pages import KeysetPages


class PagedRows:
    """Rows of ``backend``'s selection for :attr:`text`, a few pages of it at a time, in
    :attr:`order` (by time or slowest first), one per event or per request."""

    requests = None  # (memory's Requests: a paged list folds requests in the backend)

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.pages = KeysetPages(self.position)
        self.text = ""
        self.order = TIME
        self.per_request = False
        self.generation = 0
        self.count: int | None = None  # the selection's size, as the backend counted it
        self.newest: Key | None = None  # the newest key the list has had (following's start)

    # -- the list's questions -------------------------------------------------------------

    @property
    def rows(self) -> list[Row]:
        return self.pages.rows

    @property
    def more_before(self) -> bool:
        return self.pages.more_before

    @property
    def more_after(self) -> bool:
        return self.pages.more_after

    def __len__(self) -> int:
        return len(self.pages.rows)

    def ident(self, row: int) -> Key:
        return self.pages.rows[row].key

    def row(self, row: int) -> Row:
        return self.pages.rows[row]

    def line(self, row: int, with_date: bool) -> tuple[dict[str, str], bool]:
        return row_cells(self.pages.rows[row].value, with_date), False

    def position(self, row: Row) -> Key:
        return position(row, self.order)

    def nearest(self, ident: Any) -> int:
        rows = self.pages.rows
        if self.order != TIME:  # not in key order: the event itself, or the top
            return next((k for k, r in enumerate(rows) if r.key == ident), 0)
        keys = [r.key for r in rows]
        return min(bisect.bisect_left(keys, ident), max(len(keys) - 1, 0))

    def next_error(self, row: int, step: int) -> int | None:
        rows = self.pages.rows
        k = row + step
        while 0 <= k < len(rows) and int(rows[k].value("code") or 0) < 400:
            k += step
        return k if 0 <= k < len(rows) else None

    def by_key(self, key: Key) -> Row | None:
        rows = self.pages.rows
        if self.order != TIME:
            return next((r for r in rows if r.key == key), None)
        k = bisect.bisect_left([r.key for r in rows], key)
        return rows[k] if k < len(rows) and rows[k].key == key else None

    # -- asked in a thread ------------------------------------------------------------------

    def _fetch(self, text: str) -> Any:
        order, per_request = self.order, self.per_request

        def fetch(after: Key | None, descending: bool, limit: int) -> list[Row]:
            return self.backend.page(text, after, descending, limit, False, order, per_request)

        return fetch

    def fetch_start(self, text: str, order: str, per_request: bool) -> list[Row]:
        """The first page a list shows of ``text``: the newest by time, the slowest first."""

        def fetch(after: Key | None, descending: bool, limit: int) -> list[Row]:
            return self.backend.page(text, after, descending, limit, False, order, per_request)

        if order == TIME:
            return self.pages.last(fetch)
        return self.pages.first(fetch)

    def fetch_last(self, text: str) -> list[Row]:
        return self.pages.last(self._fetch(text))

    def fetch_first(self, text: str) -> list[Row]:
        return self.pages.first(self._fetch(text))

    def fetch_more(self, text: str, side: str) -> list[Row]:
        fetch = self._fetch(text)
        return self.pages.after(fetch) if side == "after" else self.pages.before(fetch)

    def fetch_newer(self, text: str) -> list[Row]:
        """Events newer than the newest the list has had (not the stretch's last row: the
        user may have paged back), in time order."""
        return self.backend.newer(text, self.newest)

    @property
    def follows(self) -> bool:
        """Whether new events join this list at its end (by time, one row per event)."""
        return self.order == TIME and not self.per_request

    # -- taken in on the app's thread ---------------------------------------------------------

    def start_pending(self) -> int:
        """A new query is being fetched: answers for the one in force are dropped from now on;
        returns the new one's generation."""
        self.generation += 1
        return self.generation

    def install(self, text: str, rows: list[Row], order: str, per_request: bool) -> None:
        """``text`` is the query in force in ``order``, ``rows`` its first page in the way
        :meth:`fetch_start` fetched it."""
        self.text, self.count = text, None
        self.order, self.per_request = order, per_request
        if order == TIME:
            self.pages.set_last(rows)
            self.newest = rows[0].key if rows else None
        else:
            self.pages.set_first(rows)

    def set_last(self, rows: list[Row]) -> None:
        self.pages.set_last(rows)
        if rows and self.follows and (self.newest is None or rows[0].key > self.newest):
            self.newest = rows[0].key

    def set_first(self, rows: list[Row]) -> None:
        self.pages.set_first(rows)

    def add_after(self, rows: list[Row]) -> int:
        """Returns how many rows were dropped from the front."""
        return self.pages.append(rows)

    def add_before(self, rows: list[Row]) -> int:
        """Returns how many rows were put in front."""
        return self.pages.prepend(rows)

    def add_newer(self, rows: list[Row]) -> int:
        if rows:
            keys = [r.key for r in rows] + ([self.newest] if self.newest is not None else [])
            self.newest = max(keys)
        added = self.pages.merge(rows)
        if self.count is not None:  # every new event is the filter's, held or past the stretch
            self.count += len(rows)
        return added
