"""What the app opens: live files followed from their end at once, and everything older
(the live files' earlier lines, rotated backups, files given to read once) indexed in the
background, newest first, so the first screen shows the latest events within a second.

The opening order closes the usual gap: the live files are opened (and their current end
noted) before the backups are listed, so each line is read exactly once, by the indexer
(before the noted end) or by the follower (after it). Headless: the app drives a
:class:`Session` from two thread workers (:meth:`Session.index` and :meth:`Session.run_follower`)
and tests drive it directly.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..ingest.batch import Batch
from ..ingest.follow import Follower, Notice, backups_before
from ..ingest.malformed import Capped
from ..ingest.remote.labels import Labelled, relabel
from ..ingest.sources import (
    GZIP_MAGIC,
    InputError,
    Source,
    expand_paths,
    explain,
    folder_files,
    is_must_gather,
    split_live,
    spool_stream,
    tree_folders,
)
from . import memory
from .loader import BOM, PARALLEL_MIN, is_document, parse_slice, read_sources, slice_bounds
from .store import Malformed, Store
from .workers import pool as worker_pool

if TYPE_CHECKING:
    from ..ingest.remote import Remote

FIRST_SLICE = 2 << 20  # bytes read before the first screen: a few thousand of the newest events
IN_FLIGHT = 4  # slices submitted to the workers at once (bounds memory on huge files)


@dataclass
class _Part:
    """A byte range of one source still to index."""

    source: int
    path: str  # where to read it (a /proc/self/fd path pins a file that may be renamed)
    start: int
    end: int
    seq: int  # position of this range within its source, for numbering lines


@dataclass
class LineBook:
    """Line numbers for malformed lines (and fields of the wrong type) of files read out of
    order (tail first, in parallel slices, or followed from their end): a slice's are kept
    until the line counts of every slice before it are known."""

    store: Store
    _parts: dict[int, dict[int, tuple[int, Capped, Capped]]] = field(default_factory=dict)
    _expected: dict[int, int] = field(default_factory=dict)
    _base: dict[int, int] = field(default_factory=dict)  # source → lines before the follow start
    _after: dict[int, list] = field(default_factory=dict)  # followed lines before _base is known
    pending: int = 0

    def expect(self, source: int, parts: int) -> None:
        self._expected[source] = parts
        self._parts.setdefault(source, {})
        if not parts:
            self._finish(source)

    def add(self, source: int, seq: int, lines: int, malformed: Capped, ignored: Capped) -> None:
        self._parts[source][seq] = (lines, malformed, ignored)
        self.pending += len(malformed)
        if len(self._parts[source]) == self._expected[source]:
            self._finish(source)

    def followed(self, source: int, first_line: int, malformed: Capped, ignored: Capped) -> None:
        """Malformed lines the follower found; ``first_line`` counts from where it started."""
        if source in self._base or source not in self._expected:
            shift = first_line - 1 + self._base.get(source, 0)
            self._record(source, malformed, ignored, shift)
        else:
            self._after.setdefault(source, []).append((first_line, malformed, ignored))
            self.pending += len(malformed)

    def _finish(self, source: int) -> None:
        base = 0
        for seq in sorted(self._parts[source]):
            lines, malformed, ignored = self._parts[source][seq]
            self._record(source, malformed, ignored, base)
            self.pending -= len(malformed)
            base += lines
        self._base[source] = base
        for first_line, malformed, ignored in self._after.pop(source, []):
            self.pending -= len(malformed)
            self._record(source, malformed, ignored, first_line - 1 + base)

    def _record(self, source: int, malformed: Capped, ignored: Capped, shift: int) -> None:
        self.store.add_records(self.store.sources[source].path, malformed, ignored, shift)


class Session:
    """A store being filled from ``paths`` by a background indexer and (unless ``follow`` is
    off) a follower. Call :meth:`open` first (quick, may raise InputError)."""

    def __init__(
        self,
        paths: list[str],
        *,
        follow: bool = True,
        backups: bool = True,
        poll: bool = False,
        workers: int | None = None,
        recursive: bool = False,
    ) -> None:
        self.paths = _with_subfolders(paths) if recursive else list(paths)
        self.follow = follow
        self.backups = backups
        self.poll = poll
        self.workers = workers if workers is not None else len(os.sched_getaffinity(0))
        self.store = Store()
        self.lines = LineBook(self.store)
        self.follower: Follower | None = None
        self.total_bytes = 0
        self.done_bytes = 0
        self.indexing = False
        self.problems: list[Notice] = []  # files the indexer could not read
        self.remote: Remote | None = None  # the SSH mirrors the paths are read from, if any
        self._parts: list[_Part] = []
        self._appended = 0  # batches merged by the indexer
        self._later: list[tuple[str, int]] = []  # (path, open fd) of older files, newest first
        # the follower's first round (read while opening): batches, notices, more to read
        self._first: tuple[list[tuple[Batch, int]], list[Notice], bool] = ([], [], False)

    # -- opening ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open every input without parsing: follow the live files from their last complete
        line, list what is older. Raises :class:`InputError` for a path that cannot be read."""
        for p in self.paths:
            if p == "-":
                raise InputError("-: the app reads files; pipe into `audittui query -` instead")
            if not os.path.exists(p) and not (
                self.follow and os.path.isdir(os.path.dirname(p) or ".")
            ):
                raise InputError(f"{p}: no such file or folder")
        followable = [p for p in self.paths if self.follow and _followable(p)]
        once = [p for p in self.paths if p not in followable]
        store = self.store
        if followable:
            live = split_live(followable)
            folders = [p for p in followable if os.path.isdir(p)]
            self.follower = Follower(
                Labelled(store), live, poll=self.poll, from_end=True, folders=folders
            )
            self._first = self.follower.read_once()  # opens; may already hold new lines
            for f in self.follower.files:
                if f.segment is None:
                    continue  # not there yet: read from its start once it appears
                sid = self.follower.source_of(f.segment)
                self._add_parts(sid, store.pinned_path(sid), f.start_offset, tail=True)
            if self.backups or any(os.path.isdir(p) for p in followable):
                for path in reversed(backups_before(self.follower)):  # newest first
                    self._hold(path, backup=True)
        for path in reversed(expand_paths(once)) if once else ():
            self._hold(path, backup=False)

    def _hold(self, path: str, backup: bool) -> None:
        """Open an older file now, to read it later: the API server's mill may gzip and
        delete a plain backup meanwhile (its .gz, complete by then, has the same lines)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            if backup and os.path.exists(path + ".gz"):
                self._hold(path + ".gz", backup=False)
                return
            raise InputError(f"{path}: vanished while starting") from None
        except OSError as exc:
            raise InputError(explain(path, exc)) from None
        self._later.append((path, fd))

    def _add_parts(self, sid: int, path: str, end: int, tail: bool) -> None:
        """Cut [0, end) of a file of JSON lines into slices, queued newest first."""
        self.total_bytes += end
        if end <= 0:
            self.lines.expect(sid, 0)
            return
        with open(path, "rb") as fh:
            bounds = slice_bounds(fh, 0, end)
            if tail and end - bounds[-2] > FIRST_SLICE:
                # A small last slice: the first screen needs only the newest events.
                fh.seek(end - FIRST_SLICE)
                cut = fh.read(FIRST_SLICE).find(b"\n")
                if 0 <= cut < FIRST_SLICE - 1:
                    bounds.insert(-1, end - FIRST_SLICE + cut + 1)
        parts = [
            _Part(sid, path, a, b, k)
            for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
        ]
        self.lines.expect(sid, len(parts))
        self._parts.extend(reversed(parts))

    # -- indexing --------------------------------------------------------------------------

    def index(self, on_batch: Callable[[], None], cancelled: threading.Event) -> None:
        """Index everything older than the follow start, newest first; ``on_batch()`` after
        each append. Runs in a thread; stops early when ``cancelled`` is set."""
        self.indexing = True
        try:
            # The newest slice of each live file first, in this process: the first screen.
            tails = [p for p in self._parts if p.end - p.start <= FIRST_SLICE]
            tails = [self._parts.pop(self._parts.index(p)) for p in tails]
            for part in tails:
                self._append(part, parse_slice(part.source, part.path, part.start, part.end))
                on_batch()
            for path, fd in self._later:
                if cancelled.is_set():
                    return
                self._plan_later(path, fd)
            self._later.clear()
            self._run_parts(on_batch, cancelled)
            self.store.order()  # sort now, not when the first filter is typed
            memory.release()
            gc.freeze()  # the index is long-lived: keep it out of every later collection
        finally:
            self.indexing = False
            self.done_bytes = self.total_bytes

    def _plan_later(self, path: str, fd: int) -> None:
        """A backup or read-once file: decompressed into the spool if gzipped; sliced if it
        is big JSON lines, else read whole."""
        try:
            if os.pread(fd, 2, 0) == GZIP_MAGIC:
                with os.fdopen(fd, "rb") as fh:
                    source = self.store.add_source(
                        relabel(spool_stream(0, path, fh, self.store.spool))
                    )
            else:
                source = self.store.add_source(
                    relabel(Source(0, path, f"/proc/self/fd/{fd}")), fd=fd
                )
            size = os.path.getsize(source.read_path)
            with open(source.read_path, "rb") as fh:
                head = fh.read(1 << 16)
                document = is_document(fh, head, size)
        except OSError as exc:
            self.problems.append(Notice(path, "unreadable", explain(path, exc)))
            return
        if source.bound:
            self.problems.append(Notice(path, "incomplete", source.bound))
        if document or size < PARALLEL_MIN or head.startswith(BOM):
            self.total_bytes += size
            self._parts.append(_Part(source.id, "", 0, size, -1))  # read whole, in order
            return
        if source.note:
            self.store.malformed.append(Malformed(source.path, 0, source.note))
        self._add_parts(source.id, source.read_path, size, tail=False)

    def _run_parts(self, on_batch: Callable[[], None], cancelled: threading.Event) -> None:
        sliced = [p for p in self._parts if p.seq >= 0]
        pool = None
        if sliced and self.workers > 1 and sum(p.end - p.start for p in sliced) >= PARALLEL_MIN:
            pool = worker_pool(self.workers)
        try:
            queue = list(self._parts)
            self._parts.clear()
            pending: list[tuple[_Part, Future | None]] = []
            while queue or pending:
                if cancelled.is_set():
                    return
                while queue and len(pending) < IN_FLIGHT:
                    part = queue.pop(0)
                    if part.seq < 0 or pool is None:
                        pending.append((part, None))
                    else:
                        pending.append(
                            (
                                part,
                                pool.submit(
                                    parse_slice, part.source, part.path, part.start, part.end
                                ),
                            )
                        )
                part, future = pending.pop(0)
                if part.seq < 0:
                    self._read_whole(part)
                else:
                    batch = (
                        future.result()
                        if future is not None
                        else parse_slice(part.source, part.path, part.start, part.end)
                    )
                    self._append(part, batch)
                on_batch()
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _append(self, part: _Part, batch: Batch) -> None:
        # Counted first: a frame drawn in between shows the events with their malformed lines.
        self.lines.add(part.source, part.seq, batch.lines, batch.malformed, batch.ignored)
        self.store.append(_unnumbered(batch))
        self._appended += 1
        if self._appended % 8 == 0:
            memory.release()  # the batches merged so far (see loader)
        self.done_bytes += part.end - part.start

    def _read_whole(self, part: _Part) -> None:
        try:
            read_sources(self.store, [self.store.sources[part.source]], workers=1)
        except InputError as exc:
            self.problems.append(
                Notice(self.store.sources[part.source].path, "unreadable", str(exc))
            )
        self.done_bytes += part.end

    # -- following -------------------------------------------------------------------------

    def run_follower(self, on_batch: Callable[[list[Notice]], None], stop: threading.Event) -> None:
        """Follow the live files until ``stop``; ``on_batch(notices)`` after each round."""
        if self.follower is None:
            return

        def emit(batches: list[tuple[Batch, int]], notices: list[Notice]) -> None:
            for batch, first_line in batches:
                self.lines.followed(batch.source, first_line, batch.malformed, batch.ignored)
                self.store.append(_unnumbered(batch))
            on_batch(notices)

        batches, notices = self._first[0], self._first[1]
        self._first = ([], [], False)
        emit(batches, notices)
        self.follower.run(emit, stop)

    def close(self) -> None:
        self.store.close()


def _unnumbered(batch: Batch) -> Batch:
    """``batch`` without its malformed lines and wrong-typed fields: the LineBook records them
    once their line numbers are known."""
    return dataclasses.replace(batch, malformed=Capped(), ignored=Capped())


def _with_subfolders(paths: list[str]) -> list[str]:
    """Folders replaced by those of their trees that hold log files, each then read (and
    followed) as a folder is: its live logs and their backups."""
    out: list[str] = []
    for p in paths:
        if p == "-" or not os.path.isdir(p) or is_must_gather(Path(p)):
            out.append(p)
            continue
        holding = [str(f) for f in tree_folders(Path(p)) if folder_files(f)]
        out.extend(holding or [p])  # none: the folder, which says it holds no log file
    return out


def _followable(path: str) -> bool:
    """A folder, or a file of lines that is not compressed (a .gz backup never grows; one
    JSON or YAML document, such as a gcloud export, is read whole)."""
    if os.path.isdir(path):
        return not is_must_gather(Path(path))  # an archive of API servers' files: read once
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            if head[:2] == GZIP_MAGIC:
                return False
            return not is_document(fh, head, os.fstat(fh.fileno()).st_size)
    except FileNotFoundError:
        return True  # waited for
    except OSError:
        return False  # reported when read
