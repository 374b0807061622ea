"""The rows a list shows: the active filter's matches in event-time order, kept current as
the store grows (older events from the background indexer, newer ones from the follower)
without re-running the filter over everything.

Rows are ordered by (time, store index), the order of a stable sort by time, so a merge of
new events and a full recomputation always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .query import Node, evaluate
from .store import Snapshot, Store, merge_by_time


def matching(store: Store | Snapshot, node: Node | None) -> np.ndarray:
    """Every matching event of ``store`` in row order (may run in a worker thread when given
    a snapshot)."""
    order = store.order()
    if node is None:
        return order
    mask = evaluate(node, store)
    return order[mask[order]]


@dataclass
class Inserted:
    """Where new rows went: ``positions`` (sorted) are indices into the rows before the
    merge; each new row was placed before the old row at its position."""

    positions: np.ndarray

    def shift(self, row: int) -> int:
        """The new position of the old row ``row``."""
        return row + int(np.searchsorted(self.positions, row, side="right"))


class RowView:
    """The filtered, time-ordered rows over a growing store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.node: Node | None = None
        self.text = ""
        self.rows = np.empty(0, dtype=np.int64)
        self._times = np.empty(0, dtype=np.int64)
        self.upto = 0  # store events already considered

    def __len__(self) -> int:
        return len(self.rows)

    def replace(self, text: str, node: Node | None, rows: np.ndarray, upto: int) -> None:
        """Install a filter's result computed over the first ``upto`` events."""
        self.text, self.node = text, node
        self.rows = rows
        self._times = self.store.column("time")[rows]
        self.upto = upto

    def catch_up(self) -> Inserted | None:
        """Add the matching events appended since the last call; None when nothing matched."""
        snap = self.store.snapshot()
        n = len(snap)
        if n <= self.upto:
            return None
        start, self.upto = self.upto, n
        if self.node is None:
            new = np.arange(start, n, dtype=np.int64)
        else:
            within = np.zeros(n, dtype=bool)
            within[start:] = True
            new = np.flatnonzero(evaluate(self.node, snap, within) & within)
        if not len(new):
            return None
        self.rows, self._times, positions = merge_by_time(
            self.rows, self._times, new, snap.column("time")[new]
        )
        return Inserted(positions)

    def position(self, event: int) -> int | None:
        """The row showing store event ``event``, if it matches."""
        if not len(self.rows) or event >= len(self.store):
            return None
        t = self.store.column("time")[event]
        lo = int(np.searchsorted(self._times, t, side="left"))
        hi = int(np.searchsorted(self._times, t, side="right"))
        hits = np.flatnonzero(self.rows[lo:hi] == event)
        return lo + int(hits[0]) if len(hits) else None

    def nearest(self, event: int) -> int:
        """The row of ``event``, or of the closest event by time when it does not match."""
        found = self.position(event)
        if found is not None:
            return found
        t = self.store.column("time")[event]
        return min(int(np.searchsorted(self._times, t, side="right")), max(len(self.rows) - 1, 0))

    def next_error(self, row: int, step: int) -> int | None:
        """The next row after ``row`` (before it when ``step`` < 0) with a code ≥ 400."""
        codes = self.store.column("code")
        if step > 0:
            rest = self.rows[row + 1 :]
            hits = np.flatnonzero(codes[rest] >= 400)
            return row + 1 + int(hits[0]) if len(hits) else None
        rest = self.rows[:row]
        hits = np.flatnonzero(codes[rest] >= 400)
        return int(hits[-1]) if len(hits) else None
