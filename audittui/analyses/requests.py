"""One row per request: the stages of a request (the events sharing an auditID) folded into its
furthest stage, kept current as events arrive.

Per auditID (by its identity code, :meth:`Store.ids`: equal codes, equal auditIDs) the index
keeps the representative event (ResponseComplete or Panic when seen, else ResponseStarted,
else RequestReceived) and a bit set of the stages seen. A request is
*open* when it started but has not completed: hung, still streaming, or cut off by a rotation.
A ResponseStarted event alone is complete: it is how the API server logs a request rejected
before auditing (failed authentication, a bad timeout).

Every stage of a request carries the same requestReceivedTimestamp, so a representative can
replace another in place in a time-ordered list.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from ..ingest.schema import COMPLETE, PANIC, RECEIVED, STARTED

if TYPE_CHECKING:
    from ..index.store import Events, Snapshot, Store

RANK = {RECEIVED: 1, STARTED: 2, COMPLETE: 3, PANIC: 3}
BIT = {RECEIVED: 1, STARTED: 2, COMPLETE: 4, PANIC: 8}
FINAL_BITS = BIT[COMPLETE] | BIT[PANIC]


class Requests:
    """The representative event and the stages seen of every request in a growing store."""

    def __init__(self) -> None:
        self.upto = 0
        self.rep = np.full(0, -1, dtype=np.int64)  # by auditID code
        self.seen = np.zeros(0, dtype=np.uint8)
        self._lock = threading.Lock()

    def update(self, store: Store | Snapshot) -> None:
        """Take in the events appended since the last call (safe from several threads)."""
        with self._lock:
            n = len(store)
            if n <= self.upto:
                return
            a, self.upto = self.upto, n
            ids = store.ids("audit_id")
            size = int(ids[a:n].max(initial=0)) + 1
            if size > len(self.rep):
                grow = size - len(self.rep)
                self.rep = np.concatenate([self.rep, np.full(grow, -1, dtype=np.int64)])
                self.seen = np.concatenate([self.seen, np.zeros(grow, dtype=np.uint8)])
            rank, bit = _luts(store)
            stages = store.column("stage")
            codes = ids[a:n]
            has = codes > 0
            idx = np.arange(a, n, dtype=np.int64)[has]
            codes, ranks = codes[has], rank[stages[a:n][has]]
            np.bitwise_or.at(self.seen, codes, bit[stages[a:n][has]])
            # The furthest (then latest) new event of each request.
            order = np.lexsort((idx, ranks, codes))
            codes, ranks, idx = codes[order], ranks[order], idx[order]
            last = np.r_[codes[1:] != codes[:-1], True] if len(codes) else np.zeros(0, bool)
            codes, ranks, idx = codes[last], ranks[last], idx[last]
            old = self.rep[codes]
            old_rank = np.where(old >= 0, rank[stages[np.maximum(old, 0)]], -1)
            take = ranks >= old_rank
            self.rep[codes[take]] = idx[take]

    def representatives(self, store: Store | Snapshot, events: np.ndarray) -> np.ndarray:
        """Each event's request representative (an event without an auditID stands alone)."""
        codes = store.ids("audit_id")[events]
        known = codes < len(self.rep)  # requests not taken in yet stand alone for now
        reps = np.where(known, self.rep[np.where(known, codes, 0)], -1) if len(self.rep) else -1
        # A representative past the store's (snapshot's) end was taken in by another thread.
        return np.where((codes > 0) & (reps >= 0) & (reps < len(store)), reps, events)

    def is_open(self, store: Store | Snapshot, event: int) -> bool:
        """Did the request of ``event`` start without completing?"""
        code = int(store.ids("audit_id")[event])
        if code <= 0 or code >= len(self.seen):
            return False
        seen = int(self.seen[code])
        return bool(seen & BIT[RECEIVED]) and not seen & FINAL_BITS


def _luts(store: Events) -> tuple[np.ndarray, np.ndarray]:
    values = store.tables["stage"].values
    rank = np.array([RANK.get(v, 0) for v in values], dtype=np.int8)
    bit = np.array([BIT.get(v, 0) for v in values], dtype=np.uint8)
    return rank, bit
