"""Free-text search: which events' raw JSON contains a phrase, ignoring case.

The meaning is exactly ``phrase.lower() in raw_json.lower()``. The fast way there: read the
source in large blocks, lower-case ASCII in C (``bytes.lower``), find the phrase with ``re``
(a literal: searched as KMP does, linear whatever the bytes), and map positions to events with
a binary search over their offsets. Past a few occurrences per event in a block, each search
starts at the next event instead: an event holding the phrase millions of times costs one
search, not one per occurrence. Events holding any non-ASCII byte
(where Unicode case rules differ from ASCII ones) are re-checked one by one, as are events
expanded from envelopes and sparse candidate sets.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from .interrupt import checkpoint

if TYPE_CHECKING:
    from .store import Events

BLOCK = 16 << 20
SPARSE = 64  # below one candidate in this many events, read candidates one by one
PER_EVENT = 8  # occurrences per event in a block found one by one before searching per event
CHECK_EVERY = 4096  # events read one by one between two checkpoints (see interrupt.py)


def searchable(raw: bytes) -> str:
    """An event's raw JSON as free text is searched in: decoded, lower-cased."""
    return raw.decode("utf-8", "replace").lower()


def matches(raw: bytes, needle: str) -> bool:
    """The definition: case-insensitive substring of the raw JSON text."""
    return needle in searchable(raw)


def search(store: Events, text: str, within: np.ndarray | None = None) -> np.ndarray:
    """Mask of events whose raw JSON contains ``text`` (exact outside ``within`` not promised)."""
    n = len(store)
    needle = text.lower()
    mask = np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(within) if within is not None else np.arange(n)
    if not len(candidates):
        return mask
    item = store.column("item")[candidates]
    for i in _checked(candidates[item >= 0]):  # events inside envelopes: no line of their own
        mask[i] = matches(store.raw(i), needle)
    lines = candidates[item < 0]
    if not len(lines):
        return mask
    source = store.column("source")[lines]
    for sid in np.unique(source).tolist():
        idx = lines[source == sid]
        if len(idx) * SPARSE < n or not needle.isascii():
            _one_by_one(store, idx, needle, mask)
        else:
            _scan(store, sid, idx, needle, mask)
    return mask


def _checked(idx: np.ndarray) -> Iterator[int]:
    """The events of ``idx``, read one by one, with a checkpoint every :data:`CHECK_EVERY`."""
    for k, i in enumerate(idx.tolist()):
        if not k % CHECK_EVERY:
            checkpoint()
        yield i


def _one_by_one(store: Events, idx: np.ndarray, needle: str, mask: np.ndarray) -> None:
    if needle.isascii():
        low = needle.encode()
        for i in _checked(idx):
            raw = store.raw(i)
            if raw.isascii():
                mask[i] = low in raw.lower()
            else:
                mask[i] = matches(raw, needle)
        return
    for i in _checked(idx):
        raw = store.raw(i)
        mask[i] = not raw.isascii() and matches(raw, needle)


def _scan(store: Events, sid: int, idx: np.ndarray, needle: str, mask: np.ndarray) -> None:
    offsets = store.column("offset")[idx]
    lengths = store.column("length")[idx]
    if len(offsets) > 1 and (np.diff(offsets) <= 0).any():
        _one_by_one(store, idx, needle, mask)  # not in file order (should not happen)
        return
    pattern = re.compile(re.escape(needle.encode()))
    ends = offsets + lengths
    k = 0
    while k < len(idx):
        checkpoint()
        # A block of whole events starting at event k.
        start = int(offsets[k])
        stop_k = int(np.searchsorted(ends, start + BLOCK, side="right"))
        stop_k = max(stop_k, k + 1)
        stop = int(ends[stop_k - 1])
        data = store.pread(sid, start, stop - start)
        low = data.lower()
        # An event's text ends before the CR of a CRLF line end, as in store.raw().
        block_ends = ends[k:stop_k].copy()
        crlf = np.frombuffer(data, dtype=np.uint8)[block_ends - start - 1] == 13
        block_ends[crlf] -= 1
        limit = PER_EVENT * (stop_k - k)
        first = itertools.islice(pattern.finditer(low), limit)
        hits = np.fromiter((m.start() for m in first), dtype=np.int64)
        if len(hits):
            pos = hits + start
            which = np.searchsorted(offsets[k:stop_k], pos, side="right") - 1 + k
            inside = (which >= k) & (pos + len(needle) <= block_ends[which.clip(k) - k])
            mask[idx[which[inside]]] = True
        if len(hits) == limit:  # the phrase again and again: one search per event from here
            at = int(hits[-1]) + 1 if len(hits) else 0
            _each_event(low, pattern, offsets[k:stop_k] - start, block_ends - start, at,
                        mask, idx[k:stop_k])  # fmt: skip
        if not data.isascii():
            high = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) >= 0x80) + start
            which = np.unique(np.searchsorted(offsets[k:stop_k], high, side="right") - 1 + k)
            for w in which[which >= k].tolist():
                i = int(idx[w])
                mask[i] = matches(store.raw(i), needle)
        k = stop_k


def _each_event(
    low: bytes, pattern: re.Pattern[bytes], starts_at: np.ndarray, ends_at: np.ndarray,
    at: int, mask: np.ndarray, idx: np.ndarray,
) -> None:  # fmt: skip
    """From ``at`` on in a block, the events (their starts and ends in the block, their rows
    ``idx``) that hold the phrase, each search resuming at the next event."""
    starts, stops = starts_at.tolist(), ends_at.tolist()
    while (m := pattern.search(low, at)) is not None:
        w = bisect.bisect_right(starts, m.start()) - 1  # its event (the block starts with one)
        if m.end() <= stops[w]:
            mask[idx[w]] = True
        # The event holds it, or no later place in it can (a later start ends later).
        at = starts[w + 1] if w + 1 < len(starts) else len(low)
