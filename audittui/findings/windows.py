"""Stateful rule conditions over a rule's matched events: sliding-window thresholds and
first-seen values. Pure numpy over codes and times; the engine recomputes them when a rule's
matched set grows (events may arrive out of time order, so nothing is assumed about order).
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def group_ids(columns: list[np.ndarray], n: int) -> np.ndarray:
    """One dense id per distinct combination of the given code columns (all 0 for none)."""
    if not columns:
        return np.zeros(n, dtype=np.int64)
    if len(columns) == 1:
        return np.unique(columns[0], return_inverse=True)[1].astype(np.int64)
    stacked = np.stack([c.astype(np.int64) for c in columns], axis=1)
    return np.unique(stacked, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


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
        pairs = np.unique(np.stack([groups, values.astype(np.int64)], axis=1), axis=0)
        sizes = np.bincount(pairs[:, 0], minlength=int(groups.max()) + 1)
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


def first_seen_hits(
    times: np.ndarray, keys: np.ndarray, values: np.ndarray, learn: int
) -> np.ndarray:
    """The first event of each (key, value) pair that appears more than ``learn`` µs after
    the key's own first event: a value new for a key with a history."""
    hit = np.zeros(len(times), dtype=bool)
    if not len(times):
        return hit
    order = np.argsort(times, kind="stable")
    k, t = keys[order], times[order]
    key_ids, key_first = np.unique(k, return_index=True)
    pair = k * (int(values.max()) + 1) + values[order].astype(np.int64)
    _, pair_first = np.unique(pair, return_index=True)
    since = t[pair_first] - t[key_first[np.searchsorted(key_ids, k[pair_first])]]
    hit[order[pair_first[since > learn]]] = True
    return hit
