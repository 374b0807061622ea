"""Stateful rule conditions over a rule's matched events: sliding-window thresholds (numpy,
recomputed when a rule's matched set grows) and first-seen values (state kept as events come).
Events may arrive out of time order (backups are indexed after the live file): nothing here
assumes an order.

Events without a time (test fixtures, trimmed exports: Panther's EKS cases mostly have none)
share one window of their own, apart from every timed event: as if they all happened at one
unknown instant, so that N of them reach a count of N, and none adds to a timed burst. They
have no place in a first-seen history (see the engine). Duplicated lines are counted once
before any of this (see :func:`copy_candidates` and the engine's ``Copies``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

_CODE_BITS = 21  # codes below 2**21 pack three to an int64
_MIX = np.uint64(0x9E3779B97F4A7C15)  # a 64-bit odd constant (the golden ratio's): spreads bits


def copy_candidates(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Positions that may be copies of one another: equal in every given column (numbers or
    identity codes of the events). One 64-bit mix of the columns per event and one sort: a
    collision only adds a candidate (its bytes are compared after), never hides a copy.

    Returns the candidates' positions, sorted by their mix, and the mix of each (so that runs
    of equal mixes are the groups to compare)."""
    n = len(columns[0]) if columns else 0
    mix = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            mix = (mix ^ col.astype(np.int64).view(np.uint64)) * _MIX
            mix ^= mix >> np.uint64(29)
    order = np.argsort(mix, kind="stable")
    sorted_mix = mix[order]
    same = sorted_mix[1:] == sorted_mix[:-1]
    runs = np.zeros(n, dtype=bool)
    runs[1:] |= same
    runs[:-1] |= same
    return order[runs], sorted_mix[runs]


def _pair_ids(columns: list[np.ndarray]) -> np.ndarray:
    """One int64 per event, equal exactly when all the given code columns are equal."""
    if len(columns) <= 3 and all(int(c.max(initial=0)) < 1 << _CODE_BITS for c in columns):
        out = np.zeros(len(columns[0]), dtype=np.int64)
        for c in columns:
            out = (out << _CODE_BITS) | c.astype(np.int64)
        return out
    stacked = np.stack([c.astype(np.int64) for c in columns], axis=1)
    return np.unique(stacked, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def group_ids(columns: list[np.ndarray], n: int) -> np.ndarray:
    """One dense id per distinct combination of the given code columns (all 0 for none)."""
    if not columns:
        return np.zeros(n, dtype=np.int64)
    return np.unique(_pair_ids(columns), return_inverse=True)[1].reshape(-1).astype(np.int64)


def threshold_hits(
    times: np.ndarray,
    groups: np.ndarray,
    window: int,
    count: int,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """Which events take part in a window where one group reaches ``count`` events (or
    ``count`` distinct ``values``). A window is any span of ``window`` µs, both ends included:
    events exactly ``window`` apart count together."""
    n = len(times)
    hit = np.zeros(n, dtype=bool)
    if n < count:
        return hit
    # Groups that cannot reach the count over the whole log are dropped before any window work.
    if values is None:
        sizes = np.bincount(groups)
    else:
        sizes = np.bincount(_distinct_pairs(groups, values), minlength=int(groups.max()) + 1)
    eligible = np.flatnonzero(sizes >= count)
    if not len(eligible):
        return hit
    keep = np.flatnonzero(np.isin(groups, eligible))
    order = keep[np.lexsort((times[keep], groups[keep]))]
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    for seg in np.split(order, bounds):
        t = times[seg]
        if values is None:
            first = np.searchsorted(t, t - window, side="left")
            fire = np.flatnonzero(np.arange(len(t)) - first + 1 >= count)
            if len(fire):
                # mark every event of each firing window [first[i], i]
                delta = np.zeros(len(t) + 1, dtype=np.int64)
                np.add.at(delta, first[fire], 1)
                np.add.at(delta, fire + 1, -1)
                hit[seg[np.cumsum(delta[:-1]) > 0]] = True
        else:
            _distinct_windows(t, values[seg], window, count, seg, hit)
    return hit


def _distinct_pairs(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The group of each distinct (group, value) pair: one 1-D sort of packed pairs where
    both fit 31 bits (a row-wise unique of a 2-column array is ten times slower)."""
    if int(groups.max(initial=0)) < 1 << 31 and int(values.max(initial=0)) < 1 << 31:
        packed = np.unique((groups.astype(np.int64) << 32) | values.astype(np.int64))
        return packed >> 32
    return np.unique(np.stack([groups, values.astype(np.int64)], axis=1), axis=0)[:, 0]


def _distinct_windows(
    t: np.ndarray, v: np.ndarray, window: int, count: int, seg: np.ndarray, hit: np.ndarray
) -> None:
    seen: Counter = Counter()
    lo = 0
    for i in range(len(t)):
        seen[v[i]] += 1
        while t[i] - t[lo] > window:
            seen[v[lo]] -= 1
            if not seen[v[lo]]:
                del seen[v[lo]]
            lo += 1
        if len(seen) >= count:
            hit[seg[lo : i + 1]] = True


class NewValues:
    """First-seen state, kept incrementally: per key its first time, per (key, value) pair its
    first time and event. Events may arrive in any order (backups are indexed after the live
    file); the earliest wins, ties going to the one that arrived first."""

    def __init__(self, learn: int) -> None:
        self.learn = learn
        self.key_first: dict[tuple, int] = {}  # key codes → µs
        self.pair_first: dict[tuple, tuple[int, int]] = {}  # (key, value) → (µs, row)

    def add(
        self, times: np.ndarray, keys: list[np.ndarray], values: np.ndarray, rows: np.ndarray
    ) -> None:
        """New events: their times, key code columns, value codes and store rows."""
        if not len(times):
            return
        pair = _pair_ids([*keys, values])
        # The batch's first event of each distinct pair (vectorised: sorted by pair, then
        # time, stably), then merged into the state pair by pair.
        order = np.lexsort((times, pair))
        first = order[np.flatnonzero(np.diff(pair[order], prepend=pair[order[0]] - 1))]
        columns = [c[first].tolist() for c in keys]
        key_first, pair_first = self.key_first, self.pair_first
        for k, t, row, value in zip(
            range(len(first)),
            times[first].tolist(),
            rows[first].tolist(),
            values[first].tolist(),
            strict=True,
        ):
            key = tuple(c[k] for c in columns)
            if t < key_first.get(key, t + 1):
                key_first[key] = t
            pair_key = (key, value)
            old = pair_first.get(pair_key)
            if old is None or t < old[0]:
                pair_first[pair_key] = (t, row)

    def hits(self) -> np.ndarray:
        """The first event of each pair seen more than ``learn`` after its key's first."""
        key_first, learn = self.key_first, self.learn
        out = [row for (key, _), (t, row) in self.pair_first.items() if t - key_first[key] > learn]
        return np.array(sorted(out), dtype=np.int64)
