"""The rows a paged list holds: a stretch of a selection, fetched a page at a time by keyset on
the backend's stable key, so that scrolling a billion rows costs a page per screenful.

No positions are asked of the server (OFFSET reads and skips every row before it): the stretch
knows its rows, whether the selection goes on before and after them, and moves by asking for
the page after its last key or before its first. Pure logic, no Textual; the fetch runs in a
worker and the result is applied here on the app's thread.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

Row = Any  # a row as the backend pages it (audittui.backend.protocol.Row: .key, .value())
Key = tuple[Any, ...]
# fetch(after, descending, limit): rows after ``after`` (before it when descending), in that
# order; after None: from the selection's start (its end when descending)
Fetch = Callable[[Key | None, bool, int], list[Row]]

PAGE = 200
KEEP = 2_000  # rows held at most; the far side is dropped as the stretch moves


class KeysetPages:
    """Rows ``rows`` of a selection in key order, ``more_before``/``more_after`` saying whether
    the selection goes on past them."""

    def __init__(self, key: Callable[[Row], Key], page: int = PAGE, keep: int = KEEP) -> None:
        self.key = key
        self.page = page
        self.keep = max(keep, 2 * page)
        self.rows: list[Row] = []
        self.more_before = False
        self.more_after = False

    def __len__(self) -> int:
        return len(self.rows)

    def first(self, fetch: Fetch) -> list[Row]:
        return fetch(None, False, self.page)

    def last(self, fetch: Fetch) -> list[Row]:
        return fetch(None, True, self.page)

    def after(self, fetch: Fetch) -> list[Row]:
        return fetch(self.key(self.rows[-1]), False, self.page) if self.rows else []

    def before(self, fetch: Fetch) -> list[Row]:
        return fetch(self.key(self.rows[0]), True, self.page) if self.rows else []

    # -- applying what a fetch returned (on the app's thread) -------------------------------

    def set_first(self, rows: list[Row]) -> None:
        self.rows = list(rows)
        self.more_before = False
        self.more_after = len(rows) >= self.page

    def set_last(self, rows: list[Row]) -> None:
        """``rows`` as :meth:`last` fetched them: newest first."""
        self.rows = rows[::-1]
        self.more_after = False
        self.more_before = len(rows) >= self.page

    def append(self, rows: list[Row], complete: bool = True) -> int:
        """Rows fetched after the stretch; returns how many were dropped from its start.
        ``complete`` False: a poll for new rows, which says nothing of what follows."""
        if complete:
            self.more_after = len(rows) >= self.page
        self.rows.extend(self._new(rows, self.rows[-1:] if self.rows else []))
        drop = max(0, len(self.rows) - self.keep)
        if drop:
            del self.rows[:drop]
            self.more_before = True
        return drop

    def prepend(self, rows: list[Row]) -> int:
        """Rows fetched before the stretch, newest first; returns how many were put in front."""
        self.more_before = len(rows) >= self.page
        rows = rows[::-1]
        self.rows[:0] = rows
        drop = max(0, len(self.rows) - self.keep)
        if drop:
            del self.rows[-drop:]
            self.more_after = True
        return len(rows)

    def _new(self, rows: list[Row], last: list[Row]) -> list[Row]:
        # A poll that raced a page fetch may return rows the stretch holds: keyset pages
        # ascend, so a row not after the newest key kept so far is one already held.
        edge = self.key(last[0]) if last else None
        kept = []
        for row in rows:
            key = self.key(row)
            if edge is None or key > edge:
                kept.append(row)
                edge = key
        return kept

    def merge(self, rows: list[Row]) -> int:
        """Rows of a poll over the recent past, in key order: those not held yet are put in
        their place (a row written late, by a slower shipper or another API server, sorts
        before the newest one held). Rows before or after the stretch are left to a later page.
        Returns how many were added."""
        if not self.rows:
            self.rows = list(rows)
            return len(rows)
        keys = [self.key(r) for r in self.rows]
        first, last, added = keys[0], keys[-1], 0
        for row in rows:
            key = self.key(row)
            k = bisect.bisect_left(keys, key)
            if key < first or (k < len(keys) and keys[k] == key):
                continue
            if self.more_after and key > last:  # past the stretch: the next page's
                continue
            keys.insert(k, key)
            self.rows.insert(k, row)
            added += 1
        drop = max(0, len(self.rows) - self.keep)
        if drop:
            del self.rows[:drop]
            self.more_before = True
        return added
