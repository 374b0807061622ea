"""Per-key summaries of a selection: who (or what) did how much, when, and how often it failed.

Grouping happens on the dictionary codes with numpy (``bincount`` over code pairs), so a
summary over a million events costs a few passes over integer arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ingest.authz import parse_reason
from ..ingest.formats import MISSING_TIME, format_time
from .latency import percentiles, request_mask

if TYPE_CHECKING:
    from ..index.store import Events

GROUPINGS = {
    "user": "user",
    "verb": "verb",
    "resource": "resource",
    "ns": "namespace",
    "ip": "ips",
    "ua": "user_agent",
    "code": "code",
    "binding": "reason",  # the binding that allowed the request (ingest.authz)
    "role": "reason",
}


def summarize(store: Events, indices: np.ndarray, by: str = "user") -> list[dict[str, Any]]:
    """Rows ``{key, events, first, last, verbs{}, forbidden, errors, resources, namespaces,
    ips, top_ip, requests, p50, p95, p99, max}``, most events first. ``resources``,
    ``namespaces`` and ``ips`` count distinct values, ``top_ip`` is the most frequent IP;
    ``requests`` is how many requests were timed and ``p50``…``max`` their latency in µs
    (see :mod:`audittui.analyses.latency`; None when none was).

    ``forbidden`` counts 403 responses, ``errors`` every other code ≥ 400. ``first``/``last``
    are ISO times (empty when no event of the key had a time). Grouping by ``ip`` uses the first
    source IP (the client as reported); by ``resource``, ``resource/subresource``.
    """
    if by not in GROUPINGS:
        raise ValueError(f"cannot summarise by {by!r}; choose one of {', '.join(GROUPINGS)}")
    keys, labels = _keys(store, indices, by)
    if not len(indices):
        return []
    uniq, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    groups = len(uniq)
    counts = np.bincount(inverse, minlength=groups)

    codes = store.column("code")[indices]
    forbidden = np.bincount(inverse, weights=codes == 403, minlength=groups)
    errors = np.bincount(inverse, weights=(codes >= 400) & (codes != 403), minlength=groups)

    times = store.column("time")[indices]
    has_time = times != MISSING_TIME
    big = np.iinfo(np.int64).max
    first = np.full(groups, big, dtype=np.int64)
    last = np.full(groups, MISSING_TIME, dtype=np.int64)
    np.minimum.at(first, inverse[has_time], times[has_time])
    np.maximum.at(last, inverse[has_time], times[has_time])

    verb_codes = store.column("verb")[indices]
    verb_values = store.tables["verb"].values
    pair = inverse.astype(np.int64) * len(verb_values) + verb_codes
    pair_counts = np.bincount(pair, minlength=groups * len(verb_values)).reshape(
        groups, len(verb_values)
    )

    requests = request_mask(store)[indices]
    latency = percentiles(inverse[requests], store.column("latency")[indices][requests])
    resources = _distinct(inverse, store.column("resource")[indices], groups)
    namespaces = _distinct(inverse, store.column("namespace")[indices], groups)
    ip_keys, ip_label = _keys(store, indices, "ip")
    ip_counts = _distinct(inverse, ip_keys, groups)
    top_ip = _top(inverse, ip_keys, groups)

    rows = []
    for g in np.argsort(-counts, kind="stable").tolist():
        verbs = {
            (verb_values[v] or "(none)"): int(pair_counts[g, v])
            for v in np.flatnonzero(pair_counts[g]).tolist()
        }
        by_count = sorted(verbs.items(), key=lambda kv: -kv[1])
        rows.append(
            {
                "key": labels(int(uniq[g])),
                "events": int(counts[g]),
                "first": format_time(int(first[g])) if first[g] != big else "",
                "last": format_time(int(last[g])) if last[g] != MISSING_TIME else "",
                "verbs": dict(by_count),
                "forbidden": int(forbidden[g]),
                "errors": int(errors[g]),
                "resources": int(resources[g]),
                "namespaces": int(namespaces[g]),
                "ips": int(ip_counts[g]),
                "top_ip": ip_label(int(top_ip[g])),
                **_latency_fields(latency.get(g)),
            }
        )
    return rows


def _latency_fields(stats: tuple[int, ...] | None) -> dict[str, int | None]:
    """Requests timed and their p50/p95/p99/max latency in µs (None when none was timed)."""
    if stats is None:
        return {"requests": 0, "p50": None, "p95": None, "p99": None, "max": None}
    n, p50, p95, p99, top = stats
    return {"requests": n, "p50": p50, "p95": p95, "p99": p99, "max": top}


def _distinct(inverse: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    """Per group, how many distinct non-missing codes (code 0 = missing)."""
    present = codes != 0
    pairs = np.unique(
        inverse[present].astype(np.int64) * (int(codes.max(initial=0)) + 1) + codes[present]
    )
    return np.bincount(pairs // (int(codes.max(initial=0)) + 1), minlength=groups)


def _top(inverse: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    """Per group, its most frequent code other than 0 ("missing": it never wins over a real
    value; a group with none at all gets 0)."""
    present = codes != 0
    inverse, codes = inverse[present], codes[present]
    width = int(codes.max(initial=0)) + 1
    pairs, counts = np.unique(inverse.astype(np.int64) * width + codes, return_counts=True)
    group_of = pairs // width
    # Sort by group, then by count descending: the first pair of each group is its top.
    order = np.lexsort((-counts, group_of))
    first = np.ones(len(order), dtype=bool)
    first[1:] = group_of[order][1:] != group_of[order][:-1]
    top = np.zeros(groups, dtype=np.int64)
    top[group_of[order][first]] = pairs[order][first] % width
    return top


def _derived_keys(
    values: Iterable[Any], codes: np.ndarray, key_of: Callable[[Any], str | None]
) -> tuple[np.ndarray, Callable[[int], str]]:
    """Keys made from each distinct value of a column (once per value, not per event)."""
    firsts: dict[str | None, int] = {}
    lut = np.fromiter((firsts.setdefault(key_of(v), len(firsts)) for v in values), np.int64)
    names = list(firsts)
    return lut[codes], lambda k: names[k] or "(none)"


def _keys(store: Events, indices: np.ndarray, by: str) -> tuple[np.ndarray, Callable[[int], str]]:
    """Integer keys per selected event and a function from key to its label."""
    column = GROUPINGS[by]
    if column == "code":
        return store.column("code")[indices], lambda k: str(k) if k else "(none)"
    values = store.tables[column].values
    codes = store.column(column)[indices]
    if by in ("binding", "role"):
        return _derived_keys(values, codes, lambda v: parse_reason(v).label(by))
    if column == "ips":  # several IP lists share a first IP: key on the first IP itself
        return _derived_keys(values, codes, lambda v: v[0] if v else None)
    if column == "resource":
        subs = store.tables["subresource"].values
        sub_codes = store.column("subresource")[indices]
        keys = codes.astype(np.int64) * len(subs) + sub_codes

        def label(k: int) -> str:
            res, sub = values[k // len(subs)], subs[k % len(subs)]
            if res is None:
                return "(none)"
            return f"{res}/{sub}" if sub else res

        return keys, label
    return codes, lambda k: values[k] if values[k] is not None else "(none)"
