"""Events over time for a selection: counts per bucket, with 403s, other 4xx and 5xx apart.

The bucket size is the smallest "round" step (1 s, 5 s, 10 s, 30 s, 1 min, ... 1 day, ...)
that fits the selection's time span into the buckets available (a terminal's width).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..ingest.formats import MISSING_TIME

if TYPE_CHECKING:
    from ..index.store import Snapshot, Store

SECOND = 1_000_000
STEPS = tuple(
    s * SECOND
    for s in (
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        10800,
        21600,
        43200,
        86400,
        172800,
        604800,
    )
)


@dataclass
class Histogram:
    """``start`` (µs, aligned to ``step``), ``step`` (µs) and per-bucket counts."""

    start: int
    step: int
    total: np.ndarray
    forbidden: np.ndarray  # 403
    client: np.ndarray  # other 4xx
    server: np.ndarray  # 5xx

    def __len__(self) -> int:
        return len(self.total)

    def bounds(self, first: int, last: int) -> tuple[int, int]:
        """The time range [from, to) covered by buckets ``first``..``last``."""
        lo, hi = sorted((first, last))
        return self.start + lo * self.step, self.start + (hi + 1) * self.step


def histogram(store: Store | Snapshot, rows: np.ndarray, buckets: int) -> Histogram | None:
    """Counts of events ``rows`` in at most ``buckets`` buckets; None without timed events."""
    times = store.column("time")[rows]
    present = times != MISSING_TIME
    times = times[present]
    if not len(times) or buckets < 1:
        return None
    lo, hi = int(times.min()), int(times.max())
    step = next((s for s in STEPS if (hi // s - lo // s) < buckets), None)
    if step is None:  # spans beyond the largest step: a step that fits, in whole days
        step = -(-(hi - lo + 1) // buckets // (86400 * SECOND)) * 86400 * SECOND
    start = lo // step * step
    index = (times - start) // step
    n = int(index.max()) + 1
    codes = store.column("code")[rows][present]

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        chosen = index if mask is None else index[mask]
        return np.bincount(chosen, minlength=n)

    return Histogram(
        start,
        step,
        count(),
        count(codes == 403),
        count((codes >= 400) & (codes < 500) & (codes != 403)),
        count(codes >= 500),
    )
