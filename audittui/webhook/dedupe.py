"""The keys of recently written events, in bounded memory, so that a re-sent batch (the API
server sends a batch again when its request timed out) or a batch arriving late is written
once.

Keys are 128-bit keyed digests of the events' lines (:func:`.batch.event_key`), kept in a few
generations of sets: a new generation starts when the newest is full and the oldest is
dropped, so the window always holds at least the newest ``capacity × (GENERATIONS - 1) /
GENERATIONS`` keys and never more than ``capacity`` (about 80 bytes a key). At start the
window is refilled from the spool's newest lines, digested as they were when written.

Writers claim the keys they are about to write; a key claimed by another writer still in
flight is waited for (its batch may yet fail), so a key is never both skipped here and lost
there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from ..ingest.sources import backup_key
from .batch import Key, line_key
from .names import LIVE_SUFFIX
from .spool import Spool, read_lines

GENERATIONS = 4


class KeysBusy(Exception):
    """Keys claimed by another writer stayed in flight too long: try again later (429)."""


class RecentKeys:
    """A bounded set of event keys with claims for in-flight writes; thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, GENERATIONS)
        self._per_generation = self.capacity // GENERATIONS
        self._generations: list[set[Key]] = [set()]
        self._pending: set[Key] = set()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return sum(len(g) for g in self._generations)

    def __contains__(self, key: Key) -> bool:
        return any(key in g for g in self._generations)

    def add(self, keys: Iterable[Key]) -> None:
        """Keys known to be in the spool (the rebuild at start)."""
        with self._cond:
            self._add(keys)

    def claim(self, keys: list[Key], timeout: float) -> list[bool]:
        """For each key: True when it is new (now claimed by the caller, who must
        :meth:`commit` or :meth:`release` it), False when it is a duplicate."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._pending.isdisjoint(keys):
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    raise KeysBusy("events of this batch are being written by another request")
            known: set[Key] = set()
            for generation in self._generations:  # set operations: C loops, not Python
                known.update(generation.intersection(keys))
            fresh = [k not in known for k in keys] if known else [True] * len(keys)
            self._pending.update(keys)
            self._pending.difference_update(known)
            return fresh

    def commit(self, keys: list[Key]) -> None:
        """Claimed keys now durable in the spool."""
        with self._cond:
            self._pending.difference_update(keys)
            self._add(keys)
            self._cond.notify_all()

    def release(self, keys: list[Key]) -> None:
        """Claimed keys that were not written (the write failed)."""
        with self._cond:
            self._pending.difference_update(keys)
            self._cond.notify_all()

    def _add(self, keys: Iterable[Key]) -> None:
        todo = list(keys)
        while todo:
            newest = self._generations[-1]
            room = self._per_generation - len(newest)
            newest.update(todo[:room])
            todo = todo[room:]
            if len(newest) >= self._per_generation:
                self._generations.append(set())
                if len(self._generations) > GENERATIONS:
                    del self._generations[0]


def spool_files_newest_first(names: Iterable[str]) -> list[str]:
    """The spool's files, newest content first: every live file, then the backups by their
    rotation time (lumberjack's name), newest first, whatever their sender."""
    live, backups = [], []
    for name in names:
        if name.startswith("."):
            continue
        key = backup_key(name)
        if key is not None and not key[2]:  # .gz backups are old enough to be out of the window
            backups.append((key[1], name))
        elif key is None and name.endswith(LIVE_SUFFIX):
            live.append(name)
    return sorted(live) + [name for _, name in sorted(backups, reverse=True)]


def _keys_of(spool: Spool, name: str) -> Iterator[Key]:
    for line in read_lines(spool.dir_fd, name):
        key = line_key(line)
        if key is not None:
            yield key


def rebuild(keys: RecentKeys, spool: Spool) -> tuple[int, int]:
    """Refill ``keys`` from the spool's newest files until the window is full: (keys, files).
    The keys are the digests of the lines as written, so they are the very keys the batches
    had. Older files go in first, so the generations age as they did before the restart."""
    per_file: list[list[Key]] = []
    total = 0
    for name in spool_files_newest_first(spool.names()):
        if total >= keys.capacity:
            break
        try:
            found = list(_keys_of(spool, name))
        except OSError:
            continue  # removed meanwhile (retention), unreadable or a link: nothing to read
        per_file.append(found)
        total += len(found)
    for found in reversed(per_file):
        keys.add(found)
    return min(total, keys.capacity), len(per_file)
