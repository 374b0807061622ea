"""A batch's distinct values of a near-unique column, packed in the parser worker for the trip
to the loading process: their UTF-8 bytes in one buffer, each followed by a newline, the
bounds of each, and each value's ``hash()``, so that the index (:mod:`audittui.index.strings`)
only looks hashes up and compares bytes, with no Python object per value.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

SEP = b"\n"
SEED = hash("audittui")  # differs between processes unless forked: then hashes are redone


def encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


class PackedStrings:
    """A batch's distinct values, ready for :meth:`Strings.add`: cheap to send between
    processes (three buffers, no object per value)."""

    __slots__ = ("blob", "bounds", "hashes", "seed", "newlines")

    def __init__(
        self, blob: bytes, bounds: np.ndarray, hashes: np.ndarray, seed: int, newlines: list[int]
    ) -> None:
        self.blob = blob  # value k is blob[bounds[k] : bounds[k + 1] - 1], then a newline
        self.bounds = bounds
        self.hashes = hashes  # hash() of each value (a str) in the process that packed them
        self.seed = seed
        self.newlines = newlines  # the values holding a newline of their own (rare)

    @classmethod
    def of(cls, values: list[str], strict: bool = False) -> PackedStrings:
        """Pack ``values``; a lone surrogate is packed as such (``surrogatepass``) unless
        ``strict``, which raises UnicodeEncodeError for the caller to read it as Go does."""
        try:
            encoded = list(map(str.encode, values))
        except UnicodeEncodeError:
            if strict:
                raise
            encoded = list(map(encode, values))
        bounds = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)) + 1, out=bounds[1:])
        blob = SEP.join(encoded) + SEP if encoded else b""
        # str hashes: cached in each str by the dict that found the batch's distinct values
        hashes = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
        newlines = []
        if blob.count(SEP) > len(encoded):
            newlines = [k for k, e in enumerate(encoded) if SEP in e]
        return cls(blob, bounds, hashes, SEED, newlines)

    def __len__(self) -> int:
        return len(self.hashes)

    def __getitem__(self, k: int) -> str:
        return decode(self.blob[self.bounds[k] : self.bounds[k + 1] - 1])

    def __iter__(self) -> Iterator[str]:
        return (self[k] for k in range(len(self)))

    def __reduce__(self) -> tuple:
        return (PackedStrings, (self.blob, self.bounds, self.hashes, self.seed, self.newlines))
