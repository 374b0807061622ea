"""The values the in-memory index proposes for Tab completion (:mod:`audittui.query.completion`
asks; this answers from the store's tables).

Headless and stateless: every call reads the store's tables as they are now (the store grows
while a log is followed). A column's distinct values are joined into one array of code points
and prefix-tested in a few numpy passes, and a bincount of its codes ranks them: no Python work
per value or per event, a few ms for 50,000 users over a million events.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import TYPE_CHECKING

import numpy as np

from ..ingest.authz import parse_reason
from ..ingest.formats import UNIQUE_FIELDS
from ..ingest.unsafe import UNSAFE
from ..query.completion import MAX_CANDIDATES, Completion, Found, found_among
from ..query.completion import complete as complete_with
from ..query.fields import CASE_INSENSITIVE, GRANT_FIELDS, MULTI_VALUED, STRING_FIELDS, display_api
from ..query.lexer import QUOTED_CHARS

if TYPE_CHECKING:
    from .store import Events


class StoreValues:
    """The :class:`~audittui.query.completion.ValueSource` of a store (or a snapshot)."""

    def __init__(self, store: Events) -> None:
        self.store = store

    def __call__(self, field: str, prefix: str, exclude: set[str]) -> Found | None:
        store = self.store
        if field == "code":
            return _codes(store, prefix, exclude)
        if field == "resource" and "/" in prefix:
            return _resource_pairs(store, prefix, exclude)
        if field in GRANT_FIELDS:
            return _grants(store, field, prefix, exclude)
        return _strings(store, field, prefix, exclude)


def complete(text: str, cursor: int, store: Events | None) -> Completion:
    """:func:`audittui.query.completion.complete` with the values ``store`` holds (field
    names only without a store)."""
    return complete_with(text, cursor, StoreValues(store) if store is not None else None)


def _codes(store: Events, prefix: str, exclude: set[str]) -> Found | None:
    col = store.column("code")
    present = col[(col > 0) & (col < 10_000)]  # 0: no status yet; the parser takes 4 digits
    counts = np.bincount(present, minlength=1)
    codes = np.flatnonzero(counts).tolist()
    texts = [str(c) for c in codes]
    keep = [k for k, t in enumerate(texts) if t.startswith(prefix) and t not in exclude]
    return found_among([texts[k] for k in keep], [int(counts[codes[k]]) for k in keep])


def _resource_pairs(store: Events, prefix: str, exclude: set[str]) -> Found | None:
    """``res:pods/e`` → the subresources seen with exactly that resource (any case if none)."""
    res_prefix, sub_prefix = prefix.split("/", 1)
    res_codes = store.column("resource")
    sub_codes = store.column("subresource")
    res_values = store.tables["resource"].values[:]
    sub_values = store.tables["subresource"].values[:]
    wanted = [k for k, v in enumerate(res_values) if v and v == res_prefix]
    if not wanted:
        low = res_prefix.lower()
        wanted = [k for k, v in enumerate(res_values) if v and v.lower() == low]
    n = min(len(res_codes), len(sub_codes))  # both grow: the events both hold
    res_codes, sub_codes = res_codes[:n], sub_codes[:n]
    pairs: dict[str, int] = {}
    for k in wanted:
        counts = np.bincount(sub_codes[res_codes == k], minlength=len(sub_values))
        for code in np.flatnonzero(counts[1:]).tolist():
            sub = sub_values[code + 1]
            pair = f"{res_values[k]}/{sub}"
            if sub.startswith(sub_prefix) and pair not in exclude:
                pairs[pair] = pairs.get(pair, 0) + int(counts[code + 1])
    return found_among(list(pairs), list(pairs.values()))


def _grants(store: Events, field: str, prefix: str, exclude: set[str]) -> Found | None:
    """``binding:sys`` → the bindings (roles, authorizers) the reasons name, by their name,
    most used first: read once per distinct reason, counted over its events."""
    reasons = store.tables["reason"].values[:]
    counts = np.bincount(store.column("reason"), minlength=len(reasons))
    totals: dict[str, int] = {}
    for code in np.flatnonzero(counts).tolist():
        value = getattr(parse_reason(reasons[code]), field)
        if value and value.startswith(prefix) and value not in exclude:
            totals[value] = totals.get(value, 0) + int(counts[code])
    return found_among(list(totals), list(totals.values()))


def _strings(store: Events, canonical: str, prefix: str, exclude: set[str]) -> Found | None:
    """Distinct values of a string field starting with ``prefix`` (held by some event, and
    not among ``exclude``), most frequent first."""
    column = STRING_FIELDS[canonical]
    codes = store.column(column)  # before the values: a code never outruns its table
    values = store.tables[column].values[1:]  # a copy: the table may grow meanwhile
    if canonical == "api":
        values = [display_api(v) for v in values]
    counts = np.bincount(codes, minlength=len(values) + 1)
    if column in MULTI_VALUED:  # tuples: complete their strings, each owned by its tuple
        sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        owners = np.repeat(np.arange(1, len(values) + 1), sizes)
        values = list(itertools.chain.from_iterable(values))
    else:
        owners = np.arange(1, len(values) + 1)
    seg = _Segments.of(values)
    if canonical in CASE_INSENSITIVE:
        idx = seg.lower().starting_with(prefix.lower())
    else:
        idx = seg.starting_with(prefix)
        if not len(idx) and prefix:  # nothing in this case: try any case
            idx = seg.lower().starting_with(prefix.lower())
    keep = (counts[owners[idx]] > 0) & (seg.lengths[idx] > 0)
    if canonical == "resource":  # a '/' makes a resource/subresource pair, even quoted
        keep &= ~seg.holding("/")[idx]
    for value in exclude:
        keep &= ~np.isin(idx, seg.equal_to(value))
    idx = idx[keep]
    if not len(idx):
        return None
    totals = counts[owners[idx]]
    ranked = _rank(values, idx, totals, column in MULTI_VALUED or column in UNIQUE_FIELDS)
    common = values[int(idx[0])][: seg.common_length(idx)]
    if len(ranked) == 1:
        return Found(ranked, common, "none")
    quoted_ones = seg.needs_quotes(idx)
    if canonical == "ip":  # a '/' bare makes a CIDR
        quoted_ones |= seg.holding("/")[idx]
    quoted = int(quoted_ones.sum())
    quoting = "none" if not quoted else "all" if quoted == len(idx) else "mixed"
    return Found(ranked, common, quoting)


EXACT_MERGE = 20_000  # matches up to which the counts of a value under several codes are summed


def _rank(values: list[str], idx: np.ndarray, totals: np.ndarray, repeats: bool) -> list[str]:
    """The :data:`MAX_CANDIDATES` most frequent distinct values among ``values[idx]`` (ties:
    alphabetical). When a value can stand under several codes (tuples, concatenated tables),
    its counts are summed, up to :data:`EXACT_MERGE` matches; beyond, it ranks by its largest
    count (cheap, and close enough for ordering)."""
    if not repeats or len(idx) <= EXACT_MERGE:
        if repeats:
            sums: dict[str, int] = {}
            for value, total in zip(
                map(values.__getitem__, idx.tolist()), totals.tolist(), strict=True
            ):
                sums[value] = sums.get(value, 0) + total
            names, totals = list(sums), np.fromiter(sums.values(), np.int64, len(sums))
        else:
            names = None
        best = _top_positions(totals, MAX_CANDIDATES)
        name = (lambda j: names[j]) if names is not None else (lambda j: values[idx[j]])
        return [name(j) for j in sorted(best, key=lambda j: (-totals[j], name(j)))]
    want = MAX_CANDIDATES * 4
    while True:
        part = sorted(_top_positions(totals, want), key=lambda j: (-totals[j], values[idx[j]]))
        picked = list(dict.fromkeys(values[idx[j]] for j in part))
        if len(picked) >= MAX_CANDIDATES or want >= len(idx):
            return picked[:MAX_CANDIDATES]
        want *= 4


def _top_positions(totals: np.ndarray, k: int) -> list[int]:
    """Positions of the ``k`` largest totals, in no particular order."""
    if len(totals) <= k:
        return list(range(len(totals)))
    return np.argpartition(-totals, k - 1)[:k].tolist()


_LUT_SIZE = 0x10000  # the BMP: every unsafe character and every space is in it
NUL_STAND_IN = "\uffff"  # what stands for NUL in a _Segments text (NUL separates values)
_SPECIAL = re.compile(r'[\s(),*"\\\uffff]|' + UNSAFE.pattern)  # as _special_lut()


@functools.cache
def _special_lut() -> np.ndarray:
    """Code point → makes a value need quotes wherever it is (whitespace, '(),*"\\', an unsafe
    character, and U+FFFF, which stands for NUL in :class:`_Segments`)."""
    lut = np.fromiter(
        (chr(c).isspace() or chr(c) in QUOTED_CHARS for c in range(_LUT_SIZE)), bool, _LUT_SIZE
    )
    every = "".join(map(chr, range(_LUT_SIZE)))
    lut[[m.start() for m in UNSAFE.finditer(every)]] = True
    lut[ord(NUL_STAND_IN)] = True
    return lut


class _Segments:
    """Strings as one array of code points (NUL between them) with each one's start and
    length: prefix tests over a hundred thousand values in a few numpy passes instead of a
    Python call per value."""

    __slots__ = ("text", "points", "starts", "lengths")

    def __init__(self, text: str, n: int) -> None:
        self.text = text
        self.points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        seps = np.flatnonzero(self.points == 0)
        self.starts = np.zeros(n, dtype=np.int64)
        self.starts[1:] = seps + 1
        ends = np.empty(n, dtype=np.int64)
        ends[:-1] = seps
        ends[-1:] = len(self.points)
        self.lengths = ends - self.starts

    @classmethod
    def of(cls, values: list[str]) -> _Segments:
        text = "\x00".join(values)
        if text.count("\x00") != max(len(values) - 1, 0):
            # A value holds NUL (JSON allows it): U+FFFF stands for it, lengths kept.
            text = "\x00".join(v.replace("\x00", NUL_STAND_IN) for v in values)
        return cls(text, len(values))

    def lower(self) -> _Segments:
        """The same strings lower-cased (lengths may change; positions do not)."""
        return _Segments(self.text.lower(), len(self.starts))

    def starting_with(self, prefix: str) -> np.ndarray:
        """Positions of the strings that start with ``prefix``."""
        want = np.frombuffer(
            prefix.replace("\x00", NUL_STAND_IN).encode("utf-32-le", "surrogatepass"), dtype="<u4"
        )
        idx = np.flatnonzero(self.lengths >= len(want))
        for i, point in enumerate(want.tolist()):
            if not len(idx):
                break
            idx = idx[self.points[self.starts[idx] + i] == point]
        return idx

    def equal_to(self, value: str) -> np.ndarray:
        idx = self.starting_with(value)
        return idx[self.lengths[idx] == len(value)]

    def common_length(self, idx: np.ndarray) -> int:
        """How many leading code points all strings at ``idx`` share."""
        starts = self.starts[idx]
        shortest = int(self.lengths[idx].min())
        i = 0
        while i < shortest:
            points = self.points[starts + i]
            if (points != points[0]).any():
                break
            i += 1
        return i

    def holding(self, char: str) -> np.ndarray:
        """Per string, whether it holds ``char``."""
        out = np.zeros(len(self.starts), dtype=bool)
        if char in self.text:
            at = np.flatnonzero(self.points == ord(char))
            out[np.searchsorted(self.starts, at, "right") - 1] = True
        return out

    def needs_quotes(self, idx: np.ndarray) -> np.ndarray:
        """Whether :func:`~audittui.query.lexer.needs_quotes` holds for the strings at
        ``idx``."""
        starts, lengths = self.starts[idx], self.lengths[idx]
        text = self.text
        if (
            _SPECIAL.search(text.replace("\x00", "")) is None  # (NUL: the separators)
            and not text.startswith(("/", "-"))
            and "\x00/" not in text
            and "\x00-" not in text
        ):
            return lengths == 0  # nothing special anywhere: the common case, in C
        # The code points of these strings only, then which of them are special.
        owner = np.repeat(np.arange(len(idx)), lengths)
        before = np.cumsum(lengths) - lengths
        points = self.points[np.arange(int(lengths.sum())) + (starts - before)[owner]]
        special = _special_lut()[np.minimum(points, _LUT_SIZE - 1)] & (points < _LUT_SIZE)
        out = np.zeros(len(idx), dtype=bool)
        out[owner[special]] = True
        present = lengths > 0
        first = self.points[starts[present]]
        out[present] |= (first == ord("/")) | (first == ord("-"))
        return out | ~present
