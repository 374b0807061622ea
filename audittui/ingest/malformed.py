"""Malformed records in bounded memory: exact counts by kind of reason, and a sample kept with
its line (and, in the store, its file).

A file of ten million empty objects must not cost ten million records: the first
:data:`SAMPLE` are kept in order, then only the first of each kind not seen yet (up to
:data:`KINDS_MAX` kinds); every record is counted under its kind. The kind is the reason without
what varies from record to record: the position inside a document (``array[3]: ``), what
follows ``; `` or `` (``, and numbers (``invalid JSON (unexpected character: line 1 …)`` →
``invalid JSON``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

SAMPLE = 10_000  # records kept in arrival order
KINDS_MAX = 1_000  # kinds counted apart; the rest under OTHER
OTHER = "other reasons"
_CACHE_MAX = 4_096  # reasons → kinds: a flood repeats one reason

# A record: a tuple whose last item is its reason ((line, reason) in a batch; Malformed).
T = TypeVar("T", bound=tuple)
U = TypeVar("U", bound=tuple)

_POSITION = re.compile(r"^((array|items|records|events|logEvents|results)\[\d+\]: )+")
_NUMBER = re.compile(r"\d[\d,.]*")
_kinds: dict[str, str] = {}


def without_position(reason: str) -> str:
    """A reason without the position inside its document (``array[3]: ``)."""
    return _POSITION.sub("", reason)


def kind_of(reason: str) -> str:
    """What a reason says, without what varies between records."""
    kind = _kinds.get(reason)
    if kind is None:
        kind = without_position(reason).split("; ")[0].split(" (")[0]
        kind = _NUMBER.sub("N", kind)
        if len(_kinds) >= _CACHE_MAX:
            _kinds.clear()
        _kinds[reason] = kind
    return kind


class Capped(Generic[T]):
    """A list-like of malformed records: ``len`` is the exact count, iteration and indexing
    give the kept sample, :attr:`kinds` counts every record by :func:`kind_of` its reason."""

    __slots__ = ("_kept", "_kept_kinds", "kinds", "total")

    def __init__(self) -> None:
        self._kept: list[T] = []
        self._kept_kinds: set[str] = set()
        self.kinds: dict[str, int] = {}
        self.total = 0

    def append(self, record: T) -> None:
        self.total += 1
        self._count(record, kind_of(record[-1]), 1)

    def extend(self, records: Iterator[T] | list[T]) -> None:
        for record in records:
            self.append(record)

    def merge(self, other: Capped[U], convert: Callable[[U], T]) -> None:
        """Add ``other``'s records (its kept ones converted, e.g. given their file and their
        line in it; the others counted)."""
        self.total += other.total
        unseen = dict(other.kinds)
        for record in other._kept:
            kind = kind_of(record[-1])
            unseen[kind if kind in unseen else OTHER] -= 1  # OTHER: past other's KINDS_MAX
            self._count(convert(record), kind, 1)
        for kind, n in unseen.items():
            if n:
                self._count(None, kind, n)

    def _count(self, record: T | None, kind: str, n: int) -> None:
        if kind not in self.kinds and len(self.kinds) >= KINDS_MAX:
            kind = OTHER
        self.kinds[kind] = self.kinds.get(kind, 0) + n
        if record is None:
            return
        if len(self._kept) < SAMPLE or (
            kind not in self._kept_kinds and len(self._kept) < SAMPLE + KINDS_MAX
        ):
            self._kept.append(record)
            self._kept_kinds.add(kind)

    @property
    def kept(self) -> int:
        return len(self._kept)

    def by_kind(self) -> list[tuple[str, int]]:
        """Kinds, most frequent first."""
        return sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0]))

    def first_of(self, kind: str) -> T | None:
        return next((r for r in self._kept if kind_of(r[-1]) == kind), None)

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def __iter__(self) -> Iterator[T]:
        return iter(self._kept)

    def __getitem__(self, k: int) -> T:
        return self._kept[k]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return self.total == len(other) and self._kept == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Capped({self.total:,} records, {self.kept:,} kept, kinds {self.by_kind()[:3]})"

    def __getstate__(self) -> tuple:
        return self._kept, self._kept_kinds, self.kinds, self.total

    def __setstate__(self, state: tuple) -> None:
        self._kept, self._kept_kinds, self.kinds, self.total = state
