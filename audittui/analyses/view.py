"""The rows a list shows: the active filter's matches in event-time order (or the slowest
requests first), kept current as the store grows (older events from the background indexer,
newer ones from the follower) without re-running the filter over everything.

Rows are ordered by (key, store index), the order of a stable sort by the key (the time, or
minus the latency), so a merge of new events and a full recomputation always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..index.evaluate import evaluate
from ..index.store import Snapshot, Store, merge_by_time
from ..query.syntax import Node
from .latency import request_mask
from .requests import Requests

TIME, SLOWEST = "time", "slowest"


def sort_keys(store: Store | Snapshot, rows: np.ndarray, order: str) -> np.ndarray:
    """The ascending key rows are sorted by: the time, or minus the latency."""
    if order == SLOWEST:
        return -store.column("latency")[rows]
    return store.column("time")[rows]


def matching(
    store: Store | Snapshot,
    node: Node | None,
    order: str = TIME,
    requests: Requests | None = None,
) -> np.ndarray:
    """Every matching event of ``store`` in row order (may run in a worker thread when given
    a snapshot). ``SLOWEST`` keeps only timed requests (see :mod:`audittui.analyses.latency`). With
    ``requests``, one row per request that has a matching event: its furthest stage."""
    if requests is not None and order == TIME:
        requests.update(store)
        events = matching(store, node, order)
        keep = np.zeros(len(store), dtype=bool)  # a mask, not np.unique: ten times faster
        keep[requests.representatives(store, events)] = True
        rows = np.flatnonzero(keep)
        return rows[np.argsort(sort_keys(store, rows, order), kind="stable")]
    if order == SLOWEST:
        mask = request_mask(store)
        if node is not None:
            mask &= evaluate(node, store, mask)
        rows = np.flatnonzero(mask)
        return rows[np.argsort(sort_keys(store, rows, order), kind="stable")]
    in_time = store.order()
    if node is None:
        return in_time
    mask = evaluate(node, store)
    return in_time[mask[in_time]]


@dataclass
class Inserted:
    """Where new rows went: ``positions`` (sorted) are indices into the rows before the
    merge; each new row was placed before the old row at its position."""

    positions: np.ndarray

    def shift(self, row: int) -> int:
        """The new position of the old row ``row``."""
        return row + int(np.searchsorted(self.positions, row, side="right"))


@dataclass(frozen=True)
class CatchUp:
    """The filter in force (``generation``: the RowView's count of filters) and the events it
    has not seen: ``snap`` from ``start`` on."""

    generation: int
    node: Node | None
    order: str
    start: int
    snap: Snapshot

    def matches(self) -> np.ndarray:
        """Store indices of the new events the filter selects (evaluates the query: run it
        where a slow filter blocks nobody)."""
        snap, start = self.snap, self.start
        within = np.zeros(len(snap), dtype=bool)
        within[start:] = True
        if self.order == SLOWEST:
            within[start:] &= request_mask(snap, start)  # only the new events: a hot path
        if self.node is not None:
            within &= evaluate(self.node, snap, within)
        return np.flatnonzero(within)


class RowView:
    """The filtered rows over a growing store, in time order or slowest first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.node: Node | None = None
        self.text = ""
        self.order = TIME
        self.requests: Requests | None = None  # set: one row per request
        self._shown: np.ndarray | None = None
        self.rows = np.empty(0, dtype=np.int64)
        self._keys = np.empty(0, dtype=np.int64)
        self.upto = 0  # store events already considered
        self.generation = 0  # counts the filters installed (a catch-up belongs to one)

    def __len__(self) -> int:
        return len(self.rows)

    def replace(
        self,
        text: str,
        node: Node | None,
        rows: np.ndarray,
        upto: int,
        order: str = TIME,
        requests: Requests | None = None,
    ) -> None:
        """Install a filter's result computed over the first ``upto`` events."""
        self.text, self.node, self.order, self.requests = text, node, order, requests
        self.generation += 1
        self._shown = None  # rebuilt from the rows on the next per-request catch-up
        self.rows = rows
        self._keys = sort_keys(self.store, rows, order)
        self.upto = upto

    def pending(self) -> CatchUp | None:
        """The events appended since the last merge, with the filter to run over them; None
        when none arrived. :meth:`CatchUp.matches` may run in a thread; :meth:`merge` takes
        its result in."""
        snap = self.store.snapshot()
        if len(snap) <= self.upto:
            return None
        return CatchUp(self.generation, self.node, self.order, self.upto, snap)

    def merge(self, job: CatchUp, new: np.ndarray) -> Inserted | None:
        """Add ``new`` (what ``job.matches()`` found) to the rows; None when nothing was
        inserted, or when the filter changed since ``job`` was made (its rows are dropped:
        the new filter's own catch-up covers these events)."""
        if job.generation != self.generation or job.start != self.upto:
            return None
        snap, start = job.snap, job.start
        self.upto = len(snap)
        if self.requests is not None and self.order == TIME:
            return self._catch_up_requests(snap, start, new)
        if not len(new):
            return None
        self.rows, self._keys, positions = merge_by_time(
            self.rows, self._keys, new, sort_keys(snap, new, self.order)
        )
        return Inserted(positions)

    def catch_up(self) -> Inserted | None:
        """Add the matching events appended since the last call, at once; None when nothing
        matched."""
        job = self.pending()
        return None if job is None else self.merge(job, job.matches())

    def _catch_up_requests(self, snap: Snapshot, start: int, new: np.ndarray) -> Inserted | None:
        """One row per request: a request shown before gets its new furthest stage in place
        (every stage has the same time); a request matching for the first time is inserted."""
        requests = self.requests
        assert requests is not None
        requests.update(snap)
        codes = snap.ids("audit_id")
        shown = self._shown_by_code(len(requests.rep))
        touched = np.unique(codes[start : len(snap)])
        touched = touched[touched > 0]
        reps = requests.rep[touched]
        # Another thread may have taken in events past this snapshot: such a stage waits
        # for the next catch-up (its event falls in that one's range).
        beyond = reps >= len(snap)
        had = shown[touched] >= 0
        # Requests on screen whose furthest stage changed: swap the event in their row.
        moved = had & ~beyond & (shown[touched] != reps)
        old, now = shown[touched[moved]], reps[moved]
        rows_at = np.searchsorted(self._keys, sort_keys(snap, old, self.order), side="left")
        for row, was, rep in zip(rows_at.tolist(), old.tolist(), now.tolist(), strict=True):
            while self.rows[row] != was:  # another request of the same time comes first
                row += 1
            self.rows[row] = rep
        shown[touched[moved]] = now
        # Requests matching for the first time, and matching events without an auditID.
        matched = np.full(len(shown), -1, dtype=np.int64)  # per code: its last matching event
        matched[codes[new]] = new
        fresh = ~had & (matched[touched] >= 0)
        reps = np.where(beyond, matched[touched], reps)
        shown[touched[fresh]] = reps[fresh]
        insert = np.concatenate([reps[fresh], new[codes[new] == 0]])
        if not len(insert):
            return Inserted(np.empty(0, dtype=np.int64)) if moved.any() else None
        insert.sort()
        self.rows, self._keys, positions = merge_by_time(
            self.rows, self._keys, insert, sort_keys(snap, insert, self.order)
        )
        return Inserted(positions)

    def _shown_by_code(self, size: int) -> np.ndarray:
        """Per auditID code, the event its row shows (-1: no row), grown with the table."""
        if self._shown is None:
            self._shown = np.full(size, -1, dtype=np.int64)
            codes = self.store.ids("audit_id")[self.rows]
            self._shown[codes[codes > 0]] = self.rows[codes > 0]
        elif size > len(self._shown):
            grow = np.full(size - len(self._shown), -1, dtype=np.int64)
            self._shown = np.concatenate([self._shown, grow])
        return self._shown

    def position(self, event: int) -> int | None:
        """The row showing store event ``event``, if it matches."""
        if not len(self.rows) or event >= len(self.store):
            return None
        t = sort_keys(self.store, np.array([event]), self.order)[0]
        lo = int(np.searchsorted(self._keys, t, side="left"))
        hi = int(np.searchsorted(self._keys, t, side="right"))
        hits = np.flatnonzero(self.rows[lo:hi] == event)
        return lo + int(hits[0]) if len(hits) else None

    def nearest(self, event: int) -> int:
        """The row of ``event``, or of the closest one by the sort key when it does not match."""
        found = self.position(event)
        if found is not None:
            return found
        t = sort_keys(self.store, np.array([event]), self.order)[0]
        return min(int(np.searchsorted(self._keys, t, side="right")), max(len(self.rows) - 1, 0))

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
