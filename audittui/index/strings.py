"""Near-unique strings (URIs, object names, auditIDs, credential ids) in growable byte arenas.

A Python ``str`` costs about 50 bytes of header and a list slot on top of its text, and a big
cluster's log holds half a million distinct URIs. Here the distinct values of a column are their
UTF-8 bytes in one buffer, each followed by a newline, with an array of where each starts.

Parser workers encode and hash their batch's distinct values (:class:`PackedStrings`); the
loading process only looks the hashes up (sorted runs, merged as they grow) and confirms every
hit by comparing bytes, all in numpy: equal values get one code, so a code is an identity, and
the parent does no per-string Python work. Queries scan the arena itself, in time linear in its
size: a glob finds a literal part of its own in the raw bytes and checks the values holding it
with numpy (:meth:`Strings.glob`); a regex runs with RE2 over the raw bytes, one search per value
it finds (:meth:`Strings.scan`). The newline separator keeps matches inside one value; values
that contain a newline themselves (hostile logs) are always checked one by one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..ingest.packed import SEED, PackedStrings, decode, encode
from ..query.patterns import Glob, Regex, overlaps_itself
from .interrupt import checkpoint

CHECK_EVERY = 4096  # values searched one by one between two checkpoints (see interrupt.py)
GATHER = 1 << 20  # bytes compared at once when checking a literal at many places


class Strings:
    """The distinct values of one column: code c >= 1 → its text, code 0 → None.

    A sequence (``len``, indexing, slices as lists) for the code that reads values one by one.
    One writer (:meth:`add`) and many readers: readers see every code below the length they
    read first, since arrays are only written past it or replaced by grown copies."""

    def __init__(self) -> None:
        self._blob = np.empty(1 << 16, dtype=np.uint8)
        self._bounds = np.zeros(1 << 10, dtype=np.int64)  # code c spans [b[c], b[c+1] - 1)
        self._n = 1  # codes so far, code 0 included
        self._newlines = np.empty(0, dtype=np.int64)  # codes whose value holds a newline
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, their codes)

    @classmethod
    def of_width(cls, rows: np.ndarray) -> Strings:
        """Values of one width (``rows``: an ``S<width>`` array, no newline in them) as an
        arena, row k at code k + 1, to scan: it has no hash index (``code_of`` finds nothing)."""
        n, width = len(rows), rows.dtype.itemsize
        grid = np.empty((n, width + 1), dtype=np.uint8)
        grid[:, :width] = np.frombuffer(np.ascontiguousarray(rows), dtype=np.uint8).reshape(
            n, width
        )
        grid[:, width] = ord("\n")
        arena = cls()
        arena._blob = grid.reshape(-1)
        arena._bounds = np.r_[0, np.arange(n + 1, dtype=np.int64) * (width + 1)]
        arena._n = n + 1
        return arena

    # -- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def frozen(self, n: int | None = None) -> Strings:
        """The first ``n`` codes (all so far by default), unaffected by later additions."""
        view = Strings.__new__(Strings)
        view._n = self._n if n is None else n
        view._blob, view._bounds = self._blob, self._bounds
        view._newlines, view._runs = self._newlines, self._runs
        return view

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            a, b, step = key.indices(self._n)
            if step != 1:
                return [self[k] for k in range(a, b, step)]
            return self._slice(a, b)
        c = int(key)
        if c < 0:
            c += self._n
        if not 0 <= c < self._n:
            raise IndexError(key)
        return None if c == 0 else decode(self._bytes(c))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._slice(0, self._n))

    def _slice(self, a: int, b: int) -> list:
        if a >= b:
            return []
        out: list = [None] if a == 0 else []
        a = max(a, 1)
        if a >= b:
            return out
        lo, hi = np.searchsorted(self._newlines, [a, b])
        if lo < hi:  # a value with a newline of its own: split would cut it
            return out + [self[c] for c in range(a, b)]
        bounds = self._bounds
        text = decode(self._blob[bounds[a] : bounds[b]].tobytes())
        return out + text.split("\n")[:-1]

    def code_of(self, value: str) -> int:
        """The code holding exactly ``value`` (0: none does)."""
        return self._code_with(hash(value), encode(value))

    def _code_with(self, h: int, data: bytes) -> int:
        """The code whose value has hash ``h`` and bytes ``data`` (0: none): every code under
        that hash is compared, so values sharing a hash stay apart."""
        for hashes, codes in self._runs:
            lo, hi = np.searchsorted(hashes, h, "left"), np.searchsorted(hashes, h, "right")
            for c in codes[lo:hi].tolist():
                if c < self._n and self._bytes(c) == data:
                    return c
        return 0

    def _bytes(self, c: int) -> bytes:
        b = self._bounds
        return self._blob[b[c] : b[c + 1] - 1].tobytes()

    def _positions(self, literal: bytes, start: int) -> np.ndarray:
        """Where in the arena ``literal`` occurs from code ``start`` on (sorted; those that
        overlap one found before are left out). ``re`` searches a literal as KMP does:
        linear, whatever the bytes."""
        n, bounds = self._n, self._bounds
        start = max(start, 1)
        if start >= n:
            return np.empty(0, dtype=np.int64)
        base = int(bounds[start])
        data = self._blob.data[base : int(bounds[n])]  # the arena's bytes, not copied
        needle = re.compile(re.escape(literal))
        return np.fromiter((m.start() for m in needle.finditer(data)), dtype=np.int64) + base

    def _code_at(self, at: np.ndarray) -> np.ndarray:
        """The code of the value holding each byte position (its separator included)."""
        return np.searchsorted(self._bounds[: self._n + 1], at, side="right") - 1

    def fullmatch(self, codes: np.ndarray, rx: re.Pattern[bytes]) -> np.ndarray:
        """Does each code's value, as UTF-8 bytes, fully match the bytes regex ``rx``? (No
        decoding: the regex runs on the arena itself between each value's bounds.)"""
        bounds = self._bounds
        starts, ends = bounds[codes].tolist(), (bounds[codes + 1] - 1).tolist()
        hits = map(rx.fullmatch, itertools.repeat(self._blob.data), starts, ends)
        return np.fromiter(map(bool, hits), dtype=bool, count=len(starts))

    def take(self, codes: np.ndarray) -> list:
        """The values of many codes at once (one decode, not one per value)."""
        codes = np.asarray(codes, dtype=np.int64)
        plain = codes > 0
        if len(self._newlines):
            plain &= ~np.isin(codes, self._newlines)
        if not plain.all():  # missing values, or values that hold a newline: one by one
            out = [self[c] for c in codes.tolist()]
            batch = self.take(codes[plain])
            for k, value in zip(np.flatnonzero(plain).tolist(), batch, strict=True):
                out[k] = value
            return out
        if not len(codes):
            return []
        bounds = self._bounds
        at = bounds[codes]
        lens = bounds[codes + 1] - at
        lo, hi = int(codes.min()), int(codes.max())
        if int(lens.sum()) * 8 > int(bounds[hi + 1] - bounds[lo]):
            # Many of the values of a stretch: decoding all of it costs less than gathering.
            stretch = self._slice(lo, hi + 1)
            return list(map(stretch.__getitem__, (codes - lo).tolist()))
        return decode(self._blob[_ranges(at, lens)].tobytes()).split("\n")[:-1]

    def glob(self, glob: Glob, start: int = 1) -> np.ndarray:
        """The codes from ``start`` on whose value ``glob`` matches (case-sensitive), sorted.

        The values holding one literal part (a middle one, else the longer of the ends) are
        found in one scan of the raw bytes; the first and last parts are compared in place;
        then each middle part's first occurrence after the one before is looked up among its
        occurrences (a binary search per value, all at once). A part whose occurrences can
        overlap may have some left out by the scan: then the rest is decided value by value."""
        n, bounds = self._n, self._bounds
        start = max(start, 1)
        exact = len(glob.parts) == 1  # no star: the whole value is its one part
        first, last = encode(glob.first), b"" if exact else encode(glob.last)
        middle = [encode(p) for p in glob.middle]
        literals = [p for p in (first, *middle, last) if p]
        if not literals:  # only stars: every value (no star: the empty one)
            codes = np.arange(start, n, dtype=np.int64)
            return codes[bounds[codes + 1] - 1 == bounds[codes]] if exact else codes
        if any(b"\n" in p for p in literals):  # only a value holding a newline can hold it
            lo, hi = np.searchsorted(self._newlines, [start, n])
            return self._checked(self._newlines[lo:hi], glob)
        found = {p: self._positions(p, start) for p in set(middle)}
        seed = max(middle or literals, key=len)
        if seed not in found:
            found[seed] = self._positions(seed, start)
        codes = self._code_at(found[seed])
        codes = codes[np.r_[True, codes[1:] != codes[:-1]]] if len(codes) else codes
        if middle == [seed] and not first and not last:  # *literal*: holding it is matching
            return codes
        size = bounds[codes + 1] - 1 - bounds[codes]
        codes = codes[size == len(first) if exact else size >= len(first) + len(last)]
        if first:
            codes = codes[self._holds_at(bounds[codes], first)]
        if last:
            codes = codes[self._holds_at(bounds[codes + 1] - 1 - len(last), last)]
        pos, limit = bounds[codes] + len(first), bounds[codes + 1] - 1 - len(last)
        for k, part in enumerate(middle):
            # A left-out occurrence overlaps a found one that starts before pos: not possible
            # for the first part when the glob starts with a star (pos is the value's start).
            if overlaps_itself(part) and (k or first):
                return self._checked(codes, glob)
            at = found[part]
            if not len(at):
                return at
            where = np.searchsorted(at, pos)
            nxt = at[np.minimum(where, len(at) - 1)]
            ok = (where < len(at)) & (nxt + len(part) <= limit)
            codes, pos, limit = codes[ok], nxt[ok] + len(part), limit[ok]
        return codes

    def _checked(self, codes: np.ndarray, glob: Glob) -> np.ndarray:
        keep = np.fromiter(map(glob.test, self.take(codes)), dtype=bool, count=len(codes))
        return codes[keep]

    def _holds_at(self, at: np.ndarray, literal: bytes) -> np.ndarray:
        """Do the arena's bytes at each position of ``at`` start with ``literal``?"""
        want = np.frombuffer(literal, dtype=np.uint8)
        out = np.empty(len(at), dtype=bool)
        step = max(1, GATHER // len(literal))
        for k in range(0, len(at), step):
            block = at[k : k + step]
            got = self._blob[block[:, None] + np.arange(len(literal))]
            out[k : k + step] = (got == want).all(axis=1)
        return out

    def scan(self, regex: Regex, start: int) -> np.ndarray:
        """Which codes from ``start`` on hold a value in which ``regex`` finds a match.

        RE2 runs over the raw bytes (nothing decoded), ``^`` and ``$`` holding at each
        value's ends, once per value it finds a match in: each search resumes after the value
        where the last one ended. A match inside one value proves it; the values a match
        crosses, and those holding a newline of their own, are searched one by one; so is
        every value for a regex that needs a whole value to itself (``\\A``, ``\\z``)."""
        n, bounds = self._n, self._bounds
        c = max(start, 1)
        out = np.zeros(max(n - start, 0), dtype=bool)
        if c >= n:
            return out
        checkpoint()
        if regex.literals is not None:  # holding one of them is matching
            found = [self._code_at(self._positions(encode(t), c)) for t in regex.literals]
            out[np.unique(np.concatenate(found)) - start] = True
            return out
        if regex.per_value:
            for k in range(c, n):
                if not k % CHECK_EVERY:
                    checkpoint()
                out[k - start] = regex.search_bytes(self._bytes(k))
            return out
        end = int(bounds[n])
        data = self._blob.data[:end]  # (its end the text's: RE2 reads past nothing)
        starts: list[int] = []
        stops: list[int] = []
        pos, scan = int(bounds[c]), regex.scan
        while pos < end:
            if not len(starts) % CHECK_EVERY:
                checkpoint()
            s, e = scan(data, pos, end)
            if s < 0:
                break
            starts.append(s)
            stops.append(e)
            pos = e + 1  # the line after the one where the match ended
        check: list[np.ndarray] = []
        if starts:
            s_at, e_at = np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64)
            first = self._code_at(s_at)
            inside = e_at <= bounds[first + 1] - 1
            out[first[inside] - start] = True
            last = np.minimum(self._code_at(e_at), n - 1)
            for a, b in zip(first[~inside].tolist(), last[~inside].tolist(), strict=True):
                check.append(np.arange(a, b + 1))
        lo, hi = np.searchsorted(self._newlines, [c, n])
        if lo < hi:
            out[self._newlines[lo:hi] - start] = False
            check.append(self._newlines[lo:hi])
        if check:
            for j, k in enumerate(np.unique(np.concatenate(check)).tolist()):
                if not j % CHECK_EVERY:
                    checkpoint()
                out[k - start] = regex.search_bytes(self._bytes(k))
        return out

    # -- writing --------------------------------------------------------------------------

    def reserve(self, factor: float) -> None:
        """Room for ``factor`` times the values held now."""
        n = self._n
        self._blob = _room(self._blob, int(self._bounds[n]), int(self._bounds[n] * factor))
        self._bounds = _room(self._bounds, n + 1, int((n + 1) * factor))

    def add(self, packed: PackedStrings) -> np.ndarray:
        """Codes for a batch's distinct values, new ones appended: ``out[k + 1]`` is value
        k's code (``out[0]`` is 0, for "missing")."""
        m = len(packed)
        out = np.zeros(m + 1, dtype=np.int64)
        if not m:
            return out
        hashes = packed.hashes
        if packed.seed != SEED:  # packed by a process with other hashes (not forked)
            hashes = np.fromiter(map(hash, packed), dtype=np.int64, count=m)
        found = self._lookup(hashes)
        hit = np.flatnonzero(found)
        if len(hit):
            same = self._same_bytes(packed, hit, found[hit])
            out[hit[same] + 1] = found[hit[same]]
            for k in hit[~same].tolist():  # equal hashes, different values: look at all
                data = packed.blob[packed.bounds[k] : packed.bounds[k + 1] - 1]
                out[k + 1] = self._code_with(int(hashes[k]), data)
        new = np.flatnonzero(out[1:] == 0)
        if len(new):
            codes = self._append(packed, new)
            out[new + 1] = codes
            self._index(hashes[new], codes)
        return out

    def _lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash, a code whose value has it (0: none)."""
        found = np.zeros(len(hashes), dtype=np.int64)
        if not self._runs:
            return found
        order = np.argsort(hashes)  # sorted keys: numpy's binary searches then go forward
        keys = hashes[order]
        for run, codes in self._runs:
            pos = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            hit = (run[pos] == keys) & (found[order] == 0)
            found[order[hit]] = codes[pos[hit]]
        return found

    def _same_bytes(self, packed: PackedStrings, ks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Does batch value ``ks[i]`` have the bytes of code ``codes[i]``? (vectorised)"""
        lens = np.diff(packed.bounds)  # separators included: equal lengths, equal last byte
        theirs_at = self._bounds[codes]
        same = lens[ks] == self._bounds[codes + 1] - theirs_at
        cand = np.flatnonzero(same)
        if len(cand):
            pick = np.zeros(len(packed), dtype=bool)
            pick[ks[cand]] = True  # ks ascend: the picked bytes come in their order
            mine = np.frombuffer(packed.blob, dtype=np.uint8)[np.repeat(pick, lens)]
            lens = lens[ks[cand]]
            theirs = self._blob[_ranges(theirs_at[cand], lens)]
            starts = np.r_[0, np.cumsum(lens)[:-1]]
            same[cand] = np.logical_and.reduceat(mine == theirs, starts)
        return same

    def _append(self, packed: PackedStrings, ks: np.ndarray) -> np.ndarray:
        n = self._n
        lens = packed.bounds[ks + 1] - packed.bounds[ks]
        data = np.frombuffer(packed.blob, dtype=np.uint8)
        if len(ks) < len(packed):
            keep = np.zeros(len(packed), dtype=bool)
            keep[ks] = True
            data = data[np.repeat(keep, np.diff(packed.bounds))]
        size = int(self._bounds[n])
        self._blob = _room(self._blob, size, size + len(data))
        self._blob[size : size + len(data)] = data
        self._bounds = _room(self._bounds, n + 1, n + 1 + len(ks))
        self._bounds[n + 1 : n + 1 + len(ks)] = size + np.cumsum(lens)
        codes = np.arange(n, n + len(ks), dtype=np.int64)
        if packed.newlines:
            own = codes[np.isin(ks, packed.newlines)]
            self._newlines = np.concatenate([self._newlines, own])
        self._n = n + len(ks)  # last: readers take the length first
        return codes

    def _index(self, hashes: np.ndarray, codes: np.ndarray) -> None:
        """Add a sorted run; merge runs like a binary counter, so each hash is merged
        O(log n) times and a lookup searches O(log n) runs."""
        order = np.argsort(hashes, kind="stable")
        runs = [*self._runs, (hashes[order], codes[order])]
        while len(runs) > 1 and len(runs[-2][0]) <= 2 * len(runs[-1][0]):
            (h1, c1), (h2, c2) = runs[-2], runs[-1]
            h, c = np.concatenate([h1, h2]), np.concatenate([c1, c2])
            order = np.argsort(h, kind="stable")
            runs[-2:] = [(h[order], c[order])]
        self._runs = runs  # one assignment: a reader sees the old runs or the new ones


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The indices starts[0] .. starts[0]+lens[0]-1, then the next range, and so on."""
    total = int(lens.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    shift = np.repeat(starts - np.r_[0, np.cumsum(lens)[:-1]], lens)
    return shift + np.arange(total, dtype=np.int64)


def _room(array: np.ndarray, used: int, need: int) -> np.ndarray:
    """``array``, or a copy with room for ``need`` items (at least doubled) holding its first
    ``used`` items: readers of the old array keep valid data."""
    if need <= len(array):
        return array
    grown = np.empty(max(need, 2 * len(array)), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown
