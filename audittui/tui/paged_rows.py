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

from ..analyses.view import TIME
from ..backend.protocol import Backend, Key, Row
from .columns import row_cells
from .keyset_pages import KeysetPages


def row_key(row: Row) -> Key:
    return row.key


class PagedRows:
    """Rows of ``backend``'s selection for :attr:`text`, a few pages of it at a time."""

    order = TIME
    requests = None

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.pages = KeysetPages(row_key)
        self.text = ""
        self.generation = 0
        self.count: int | None = None  # the selection's size, as the backend counted it

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

    def nearest(self, ident: Any) -> int:
        keys = [r.key for r in self.pages.rows]
        return min(bisect.bisect_left(keys, ident), max(len(keys) - 1, 0))

    def next_error(self, row: int, step: int) -> int | None:
        rows = self.pages.rows
        k = row + step
        while 0 <= k < len(rows) and int(rows[k].value("code") or 0) < 400:
            k += step
        return k if 0 <= k < len(rows) else None

    def by_key(self, key: Key) -> Row | None:
        rows = self.pages.rows
        k = bisect.bisect_left([r.key for r in rows], key)
        return rows[k] if k < len(rows) and rows[k].key == key else None

    # -- asked in a thread ------------------------------------------------------------------

    def _fetch(self, text: str) -> Any:
        def fetch(after: Key | None, descending: bool, limit: int) -> list[Row]:
            return self.backend.page(text, after, descending, limit)

        return fetch

    def fetch_last(self, text: str) -> list[Row]:
        return self.pages.last(self._fetch(text))

    def fetch_first(self, text: str) -> list[Row]:
        return self.pages.first(self._fetch(text))

    def fetch_more(self, text: str, side: str) -> list[Row]:
        fetch = self._fetch(text)
        return self.pages.after(fetch) if side == "after" else self.pages.before(fetch)

    def fetch_newer(self, text: str) -> list[Row]:
        rows = self.pages.rows
        return self.backend.newer(text, rows[-1].key if rows else None)

    # -- taken in on the app's thread ---------------------------------------------------------

    def start_pending(self) -> int:
        """A new query is being fetched: answers for the one in force are dropped from now on;
        returns the new one's generation."""
        self.generation += 1
        return self.generation

    def install(self, text: str, newest: list[Row]) -> None:
        """``text`` is the query in force, ``newest`` its newest page (newest first)."""
        self.text, self.count = text, None
        self.pages.set_last(newest)

    def set_last(self, rows: list[Row]) -> None:
        self.pages.set_last(rows)

    def set_first(self, rows: list[Row]) -> None:
        self.pages.set_first(rows)

    def add_after(self, rows: list[Row]) -> int:
        """Returns how many rows were dropped from the front."""
        return self.pages.append(rows)

    def add_before(self, rows: list[Row]) -> int:
        """Returns how many rows were put in front."""
        return self.pages.prepend(rows)

    def add_newer(self, rows: list[Row]) -> int:
        added = self.pages.merge(rows)
        if added and self.count is not None:
            self.count += added
        return added
