"""Per-key summaries of a selection: who (or what) did how much, when, and how often it failed.

Grouping happens on the dictionary codes with numpy: every aggregate is one array over the
groups (about 120 bytes a key), a group's verbs are kept sparse (group, verb, count), and a
row's dict is made only when the row is read, so that a log of three million distinct users
(or user agents: keys an attacker chooses) costs arrays, not a Python object per key.
:func:`summarize` gives the rows in order, all of them or the ``top`` N with the rest counted
(:class:`Summary`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ingest.authz import parse_reason
from ..ingest.formats import MISSING_TIME
from .latency import QUANTILES, request_mask

if TYPE_CHECKING:
    from ..index.store import Events

NONE = "(none)"  # the label of the events without a value (the row says "missing": true)
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
_BIG = np.iinfo(np.int64).max


@dataclass
class Summary:
    """Summary rows in order (most events first; for a latency summary, the keys with timed
    requests, slowest p95 first) and what the rows leave out: ``rest_keys`` more keys holding
    ``rest_total`` events (requests timed, for a latency summary), so that the rows' total and
    the rest's make the selection's. With a ``top``, the rows are a list; without, they are
    made as they are read (from arrays, or from a store's answer: iterate once).
    """

    rows: Iterable[dict[str, Any]]
    rest_keys: int = 0
    rest_total: int = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)


def summarize(
    store: Events, indices: np.ndarray, by: str = "user", top: int | None = None,
    latency: bool = False,
) -> Summary:  # fmt: skip
    """Rows ``{key, events, first, last, verbs{}, forbidden, errors, resources, namespaces,
    ips, top_ip, requests, p50, p95, p99, max}``, most events first (ties: by the key's text,
    "(none)" first), all of them or the ``top`` N. ``resources``, ``namespaces`` and ``ips``
    count distinct values, ``top_ip`` is the most frequent IP; ``requests`` is how many
    requests were timed and ``p50``…``max`` their latency in µs (see
    :mod:`audittui.analyses.latency`; None when none was). With ``latency``, only the keys
    with a timed request, the slowest p95 first (ties: by events).

    ``forbidden`` counts 403 responses, ``errors`` every other code ≥ 400. ``first``/``last``
    are ISO times (empty when no event of the key had a time). Grouping by ``ip`` uses the first
    source IP (the client as reported); by ``resource``, ``resource/subresource``.
    """
    if by not in GROUPINGS:
        raise ValueError(f"cannot summarise by {by!r}; choose one of {', '.join(GROUPINGS)}")
    if not len(indices):
        return Summary([])
    groups = _Groups(store, indices, by)
    # Ties fall by the key's text (as a store's SQL orders them): the same for the same
    # events, whichever backend holds them and whatever order they were read in.
    text = _text_rank(groups.uniq, groups.labels)
    order = np.lexsort((text, -groups.counts))
    weight = groups.counts
    if latency:
        order = order[groups.requests[order] > 0]
        order = order[np.argsort(-groups.p95[order], kind="stable")]
        weight = groups.requests
    if top is None:  # every row, each made as it is read
        return Summary(_Rows(groups, order))
    left = order[max(top, 0) :]  # the top rows made now (in a worker thread: the app's)
    return Summary(list(_Rows(groups, order[: max(top, 0)])), len(left), int(weight[left].sum()))


class _Rows:
    """The rows of some groups, each dict made as it is read (iterable again)."""

    def __init__(self, groups: _Groups, order: np.ndarray) -> None:
        self.groups, self.order = groups, order

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self.order), 4096):  # each column's numbers in one call
            yield from self.groups.rows(self.order[start : start + 4096])


class _Groups:
    """Every aggregate of a summary, one numpy array over the groups each."""

    def __init__(self, store: Events, indices: np.ndarray, by: str) -> None:
        keys, self.labels = _keys(store, indices, by)
        self.uniq, inverse = _group(keys)
        groups = len(self.uniq)
        self.counts = np.bincount(inverse, minlength=groups)

        codes = store.column("code")[indices]
        self.forbidden = np.bincount(inverse[codes == 403], minlength=groups)
        self.errors = np.bincount(inverse[(codes >= 400) & (codes != 403)], minlength=groups)
        del codes

        times = store.column("time")[indices]
        has_time = times != MISSING_TIME
        self.first = np.full(groups, _BIG, dtype=np.int64)
        self.last = np.full(groups, MISSING_TIME, dtype=np.int64)
        np.minimum.at(self.first, inverse[has_time], times[has_time])
        np.maximum.at(self.last, inverse[has_time], times[has_time])
        del times, has_time

        self.verb_values = store.tables["verb"].values
        self.verb_group, self.verb_code, self.verb_count = _pairs(
            inverse, store.column("verb")[indices], groups, len(self.verb_values)
        )

        requests = request_mask(store)[indices]
        self.requests, (self.p50, self.p95, self.p99, self.max) = _percentiles(
            inverse[requests], store.column("latency")[indices][requests], groups
        )
        del requests
        self.resources = _distinct(inverse, store.column("resource")[indices], groups)
        self.namespaces = _distinct(inverse, store.column("namespace")[indices], groups)
        ip_keys, self.ip_label = _keys(store, indices, "ip")
        self.ip_counts = _distinct(inverse, ip_keys, groups)
        # every first IP's rank (a few thousand keys; no pass over the events for them)
        ip_rank = _text_rank(np.arange(int(ip_keys.max(initial=0)) + 1), self.ip_label)
        self.top_ip = _top(inverse, ip_keys, groups, ip_rank)

    def rows(self, block: np.ndarray) -> Iterator[dict[str, Any]]:
        """The rows of the groups ``block`` (a few thousand), their numbers converted to
        Python per column, not per value."""
        a = np.searchsorted(self.verb_group, block)
        sizes = np.searchsorted(self.verb_group, block + 1) - a
        ends = np.cumsum(sizes)
        at = np.repeat(a - ends + sizes, sizes) + np.arange(int(ends[-1]) if len(ends) else 0)
        verb_codes, verb_counts = self.verb_code[at].tolist(), self.verb_count[at].tolist()
        values = self.verb_values
        requests = self.requests[block]
        timed = (requests > 0).tolist()
        columns = zip(
            self.uniq[block].tolist(),
            self.counts[block].tolist(),
            _times(self.first[block], _BIG),
            _times(self.last[block], MISSING_TIME),
            self.forbidden[block].tolist(),
            self.errors[block].tolist(),
            self.resources[block].tolist(),
            self.namespaces[block].tolist(),
            self.ip_counts[block].tolist(),
            self.top_ip[block].tolist(),
            requests.tolist(),
            *(arr[block].tolist() for arr in (self.p50, self.p95, self.p99, self.max)),
            timed,
            (ends - sizes).tolist(),
            ends.tolist(),
            strict=True,
        )
        for key, n, first, last, f, e, res, ns, ips, top, req, *lat, has, v0, v1 in columns:
            verbs = [
                (values[v] or "(none)", c)
                for v, c in zip(verb_codes[v0:v1], verb_counts[v0:v1], strict=True)
            ]
            verbs.sort(key=_by_count)  # ties by the verb's text
            label = self.labels(key)
            yield {
                "key": NONE if label is None else label,
                "missing": label is None,  # "(none)": no value (not a value "(none)")
                "events": n,
                "first": first,
                "last": last,
                "verbs": dict(verbs),
                "forbidden": f,
                "errors": e,
                "resources": res,
                "namespaces": ns,
                "ips": ips,
                "top_ip": self.ip_label(top) or NONE,
                "requests": req,
                "p50": lat[0] if has else None,
                "p95": lat[1] if has else None,
                "p99": lat[2] if has else None,
                "max": lat[3] if has else None,
            }


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return -pair[1], pair[0]


def _text_rank(keys: np.ndarray, label: Callable[[int], str | None]) -> np.ndarray:
    """Each key's rank among ``keys`` by its label's text ("" for none; code point order,
    which is UTF-8's byte order, a store's)."""
    texts = [label(k) or "" for k in keys.tolist()]
    rank = np.empty(len(texts), dtype=np.int64)
    rank[sorted(range(len(texts)), key=texts.__getitem__)] = np.arange(len(texts))
    return rank


# µs since the epoch of the first and last instants datetime (and so format_time) can write
_FIRST_TIME, _LAST_TIME = -62_135_596_800_000_000, 253_402_300_799_999_999


def _times(micros: np.ndarray, missing: int) -> list[str]:
    """:func:`~audittui.ingest.formats.format_time` of each value, in one numpy call ("" for
    ``missing`` and for a time datetime cannot write)."""
    ok = (micros >= _FIRST_TIME) & (micros <= _LAST_TIME) & (micros != missing)
    text = np.datetime_as_string(np.where(ok, micros, 0).astype("datetime64[us]"), unit="us")
    return [t + "Z" if k else "" for t, k in zip(text.tolist(), ok.tolist(), strict=True)]


def _group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct keys ascending, each event's group number). Keys that are dictionary
    codes are counted in one pass (bincount); sparse ones are sorted (np.unique)."""
    if keys.min(initial=0) >= 0 and keys.max(initial=0) < 2 * len(keys) + 1024:
        present = np.bincount(keys) > 0
        uniq = np.flatnonzero(present)
        number = np.cumsum(present) - 1  # key → its group
        return uniq, number[keys]
    found = np.unique(keys, return_inverse=True)
    return found[0], found[1].reshape(-1)


def _pairs(
    inverse: np.ndarray, codes: np.ndarray, groups: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How many events of each group have each code, sparse: (group, code, count) sorted by
    group then code. A dense groups × codes count when that is small; else the distinct pairs
    (verbs are attacker-written too: thousands of them times millions of users)."""
    pair = inverse.astype(np.int64) * width + codes
    if groups * width <= 4 * len(inverse) + 4096:
        dense = np.bincount(pair, minlength=groups * width)
        pairs = np.flatnonzero(dense)
        return pairs // width, pairs % width, dense[pairs]
    found = np.unique(pair, return_counts=True)
    return found[0] // width, found[0] % width, found[1]


def _percentiles(
    keys: np.ndarray, latency: np.ndarray, groups: int
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Per group: requests timed, and (p50, p95, p99, max) of their latency in µs (nearest
    rank; 0 where a group has none), computed for all groups at once."""
    n = np.zeros(groups, dtype=np.int64)
    out = tuple(np.zeros(groups, dtype=np.int64) for _ in range(len(QUANTILES) + 1))
    if not len(keys):
        return n, out
    top = int(latency.max())
    if top >= 0 and int(latency.min()) >= 0 and groups * (top + 1) < 2**62:
        # one sort of (group, latency) packed in an int64: a third of lexsort's time
        packed = np.sort(keys.astype(np.int64) * (top + 1) + latency)
        keys, latency = packed // (top + 1), packed % (top + 1)
    else:
        order = np.lexsort((latency, keys))
        keys, latency = keys[order], latency[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    owners, sizes = keys[starts], ends - starts
    n[owners] = sizes
    for arr, q in zip(out, QUANTILES, strict=False):
        arr[owners] = latency[starts + np.maximum(0, np.ceil(q * sizes).astype(np.int64) - 1)]
    out[-1][owners] = latency[ends - 1]
    return n, out


def _distinct(inverse: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    """Per group, how many distinct non-missing codes (code 0 = missing)."""
    present = codes != 0
    width = int(codes.max(initial=0)) + 1
    pairs = np.sort(inverse[present].astype(np.int64) * width + codes[present])
    # distinct pairs by sorting (numpy 2's hashed np.unique took 40 times as long here)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if len(pairs) else pairs
    return np.bincount(pairs // width, minlength=groups)


def _top(inverse: np.ndarray, codes: np.ndarray, groups: int, rank: np.ndarray) -> np.ndarray:
    """Per group, its most frequent code other than 0 ("missing": it never wins over a real
    value; a group with none at all gets 0); of equally frequent ones, the greatest by
    ``rank`` (the text's order, as a store's argMax picks)."""
    present = codes != 0
    inverse, codes = inverse[present], codes[present]
    width = int(codes.max(initial=0)) + 1
    pairs, counts = np.unique(inverse.astype(np.int64) * width + codes, return_counts=True)
    group_of = pairs // width
    # Sort by group, then by count descending: the first pair of each group is its top.
    order = np.lexsort((-rank[pairs % width], -counts, group_of))
    first = np.ones(len(order), dtype=bool)
    first[1:] = group_of[order][1:] != group_of[order][:-1]
    top = np.zeros(groups, dtype=np.int64)
    top[group_of[order][first]] = pairs[order][first] % width
    return top


def _derived_keys(
    values: Iterable[Any], codes: np.ndarray, key_of: Callable[[Any], str | None]
) -> tuple[np.ndarray, Callable[[int], str | None]]:
    """Keys made from each distinct value of a column (once per value, not per event)."""
    firsts: dict[str | None, int] = {}
    lut = np.fromiter((firsts.setdefault(key_of(v), len(firsts)) for v in values), np.int64)
    names = list(firsts)
    return lut[codes], lambda k: names[k] or None


def _keys(
    store: Events, indices: np.ndarray, by: str
) -> tuple[np.ndarray, Callable[[int], str | None]]:
    """Integer keys per selected event and a function from key to its label (None: the
    events without a value)."""
    column = GROUPINGS[by]
    if column == "code":
        return store.column("code")[indices], lambda k: str(k) if k else None
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

        def label(k: int) -> str | None:
            res, sub = values[k // len(subs)], subs[k % len(subs)]
            if res is None:
                return None
            return f"{res}/{sub}" if sub else res

        return keys, label
    return codes, lambda k: values[k]
