"""Follow growing log files through rotation and truncation: paths → chunks of complete lines.

:class:`FileFollower` tracks one path by inode and offset. Each :meth:`FileFollower.poll` reads
what was appended (never a partial last line; it waits for its newline), and notices a rename
(lumberjack: a new inode at the path; the old file is drained to its end first, since the
writer closed it before renaming) and a truncation in place (copytruncate: same inode, size
below the offset; reading restarts at 0 in a new segment). A missing or unreadable path is
reported and retried, never raised. Nothing is mmapped: a live file can shrink under a map.

:func:`watch_wakeups` turns watchfiles' events on the parent folders into wake-ups, with a
heartbeat, so that an idle follower sleeps instead of polling.

:class:`Follower` drives several paths into a store: each physical file (segment) becomes a
store source holding its own file descriptor, so events stay readable after rotation, and new
lines are handed over as parsed batches, one call per wake-up, never one per event.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from . import inflate
from .bounds import LINE_MAX
from .wrappers import partial, stream_of

if TYPE_CHECKING:
    from .batch import Batch
    from .sources import Source

READ_BLOCK = 1 << 20
TAIL = 64
POLL_BUDGET = 4 << 20  # bytes per file per round (a few thousand events), so no file starves


@dataclass(frozen=True)
class Segment:
    """One physical file seen at a path: offsets are only meaningful within a segment."""

    path: str
    dev: int
    ino: int
    generation: int  # bumped by every truncation of the same inode


@dataclass
class Chunk:
    """Complete lines read from a segment, starting at ``offset``; or (``too_long``) one line
    longer than LINE_MAX, of that many bytes, skipped unread."""

    segment: Segment
    offset: int
    data: bytes
    too_long: int = 0
    hold: bool = True  # off: pieces of a split line past LINE_MAX, not to be held for the rest


@dataclass
class Notice:
    """Something a user should see: waiting, rotated, truncated, unreadable, lost data."""

    path: str
    kind: str  # "waiting" | "opened" | "rotated" | "truncated" | "unreadable" | "incomplete"
    detail: str = ""


@dataclass
class FileFollower:
    """Reads the complete lines appended to ``path``, across rotation and truncation."""

    path: str
    from_end: bool = False  # start after the last complete line of a file there at the start
    start_offset: int = 0  # where reading began in the first file opened
    on_segment: Callable[[Segment, int], None] | None = None  # told of each new segment and fd
    _fd: int | None = None
    _segment: Segment | None = None
    _offset: int = 0  # bytes consumed (complete lines) in the current segment
    _partial: bytes = b""
    _skipping: int = 0  # bytes passed of a line longer than LINE_MAX (never held)
    _generation: int = 0
    _reported: str = ""  # last problem reported, so a retry loop does not repeat it
    _budget: int = 0
    _tail: bytes = b""  # the last bytes consumed, to recognise a truncated-and-refilled file
    # backups' timestamps looked at (those there at the start, and those read or skipped
    # since): a set, not the newest one, so a backup that appears under an older timestamp
    # than one seen (a copy finished late, a clock set back) is still read
    looked: set[str] = field(default_factory=set)
    _started: bool = False
    _looked: bool = False  # the path has been tried once (from_end applies only then)
    _read_heads: list[bytes] = field(
        default_factory=list
    )  # newest backup timestamp whose content was read (or was there at start)
    behind: bool = False  # the last poll stopped at its budget: poll again without waiting
    notices: list[Notice] = field(default_factory=list)

    def poll(self, budget: int = 1 << 62) -> list[Chunk]:
        """Read what is new (up to about ``budget`` bytes; call again while :attr:`behind`);
        record notices. Never raises for file-system trouble."""
        self._budget = budget
        self.behind = False
        chunks: list[Chunk] = []
        if self._fd is None:
            if not self._started:
                # Rotations before the first look are not this follower's to read.
                self._started = True
                self.looked = {ts for ts, _, _ in self.backups()}
            else:
                self._read_skipped_rotations(chunks)  # rotated while the path was missing
            first_look = not self._looked
            self._looked = True
            if not self._open(initial=first_look):
                return chunks
        assert self._fd is not None and self._segment is not None
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            self._note("unreadable", str(exc))
            self._close()
            return chunks
        if self._offset <= size < self._read_to() and not self._skipping and self._tail_intact():
            # Only the unfinished line held back is gone (taken back by its writer; the SSH
            # mirror cuts a line whose end never came before it shows the copy as a backup):
            # nothing handed over changed, so the piece is dropped and reading goes on.
            self._partial = b""
        if size < self._read_to() or not self._tail_intact():
            # Truncated in place: what was there is gone; start over in a new segment.
            self._note("truncated", f"from {self._read_to():,} to {size:,} bytes")
            self._generation += 1
            self._segment = Segment(
                self.path, self._segment.dev, self._segment.ino, self._generation
            )
            self._offset, self._partial, self._tail, self._skipping = 0, b"", b"", 0
            if self.on_segment is not None:
                self.on_segment(self._segment, self._fd)
        self._drain(chunks)
        if self.behind:
            return chunks  # more to read from this file first
        if not self._replaced() and self._missed_rotation():
            self._read_missed(chunks)
        if self._replaced():
            # Rotated: the old inode is final (the writer closed it before renaming), but it
            # may have grown since the read above: drain it again. A piece left without a
            # newline can only be a cut line.
            self._budget = 1 << 62  # the old file is finished: read all of it now
            self._drain(chunks)
            if self._read_to() > self._offset:
                cut = self._read_to() - self._offset
                self._note("incomplete", f"{cut:,} bytes without a newline at rotation")
            self._read_heads.append(_head(self._fd))
            self._close()
            if os.path.lexists(self.path):
                self._note("rotated", "reading the new file from its start")
            else:
                self._note("removed", "the file (or its folder) is gone; waiting for it")
            self._read_skipped_rotations(chunks)
            if self._open(initial=False):
                self._drain(chunks)
        return chunks

    def backups(self) -> list[tuple[str, bool, str]]:
        """This path's lumberjack backups: (timestamp, gzipped, path), oldest first."""
        from .sources import backup_key

        folder, name = os.path.split(os.path.abspath(self.path))
        found: dict[str, tuple[str, bool, str]] = {}
        try:
            entries = os.listdir(folder)
        except OSError:
            return []
        for entry in entries:
            key = backup_key(entry)
            if key is not None and key[0] == name:
                _, ts, gz = key
                if ts not in found or not gz:  # the plain copy wins over its .gz
                    found[ts] = (ts, gz, os.path.join(folder, entry))
        return [found[ts] for ts in sorted(found)]

    def _read_skipped_rotations(self, chunks: list[Chunk]) -> None:
        """Read files that were rotated away before ever being seen at the path (several
        rotations between two polls). A backup is recognised as already read by its first
        bytes (unique auditIDs and times), whether still plain or gzipped by now."""
        for ts, gz, path in self._unlooked():
            self.looked.add(ts)
            if not gz and not os.path.exists(path) and os.path.exists(path + ".gz"):
                path, gz = path + ".gz", True  # gzipped and deleted since the listing
            if self.was_read(path, gz):
                continue
            fd, note = _open_whole(path, gz)
            if fd is None and not gz:
                path, gz = path + ".gz", True
                fd, note = (None, None) if self.was_read(path, gz) else _open_whole(path, gz)
            if fd is None:
                self._note("unreadable", f"rotated file {os.path.basename(path)}")
                continue
            self._note("rotated", f"read {os.path.basename(path)}, rotated away between looks")
            if note is not None:
                self._note("incomplete", f"{os.path.basename(path)}: {note}")
            st = os.fstat(fd)
            self._fd, self._partial, self._tail, self._offset, self._skipping = fd, b"", b"", 0, 0
            self._segment = Segment(path, st.st_dev, st.st_ino, 0)
            if self.on_segment is not None:
                self.on_segment(self._segment, fd)
            self._budget = 1 << 62
            self._drain(chunks)
            self._read_heads.append(_head(fd))
            self._close()

    def _unlooked(self) -> list[tuple[str, bool, str]]:
        """The backups not looked at yet, oldest first. Timestamps no longer listed are
        forgotten: the set stays as small as the folder."""
        backups = self.backups()
        if backups:  # (none listed may be a folder unreadable for a moment)
            self.looked &= {ts for ts, _, _ in backups}
        return [b for b in backups if b[0] not in self.looked]

    def _missed_rotation(self) -> bool:
        """Is there a backup not looked at yet? A rotation between listing the backups and
        opening the path (two rotations within a moment) leaves one that no later rotation
        may come to read."""
        return bool(self._unlooked())

    def _read_missed(self, chunks: list[Chunk]) -> None:
        """Read the backups missed that way, then go on with the file open now (known by its
        head, should it have been rotated away itself since)."""
        assert self._fd is not None
        self._read_heads.append(_head(self._fd))
        kept = self._fd, self._segment, self._partial, self._tail, self._offset, self._skipping
        self._fd = None
        self._read_skipped_rotations(chunks)
        self._fd, self._segment, self._partial, self._tail, self._offset, self._skipping = kept

    def close(self) -> None:
        self._close()

    @property
    def segment(self) -> Segment | None:
        """The file being read now (None while the path is missing)."""
        return self._segment if self._fd is not None else None

    def caught_up(self) -> bool:
        """Has everything in the file been read (a last piece without newline aside)?"""
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_size <= self._read_to()
        except OSError:
            return True

    def was_read(self, path: str, gz: bool) -> bool:
        """Does ``path`` (a backup) hold a file this follower read, or is reading now?"""
        heads = list(self._read_heads)
        if self._fd is not None:
            heads.append(_head(self._fd))
        head = _file_head(path, gz)
        return head is not None and any(_same_start(head, h) for h in heads)

    # -- internals ------------------------------------------------------------------------

    def _open(self, initial: bool) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._note_once("waiting", "does not exist (yet); waiting for it")
            return False
        except OSError as exc:
            self._note_once("unreadable", exc.strerror or str(exc))
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISFIFO(st.st_mode):
            os.close(fd)
            self._note_once("unreadable", "not a regular file")
            return False
        self._fd = fd
        self._generation = 0
        self._segment = Segment(self.path, st.st_dev, st.st_ino, 0)
        self._partial = b""
        self._skipping = 0
        self._tail = b""
        self._offset = 0
        if initial and self.from_end:
            self._offset = self.start_offset = _line_start(fd, st.st_size)
        self._reported = ""
        self._note("opened", f"inode {st.st_ino}")
        if self.on_segment is not None:
            self.on_segment(self._segment, fd)
        return True

    def _read_to(self) -> int:
        """Where the next read starts: past the lines handed over and what is held of the
        next one."""
        return self._offset + len(self._partial) + self._skipping

    def _drain(self, chunks: list[Chunk]) -> None:
        """Read from the offset to the end; hand over complete lines only. A line longer than
        LINE_MAX is never held: it is passed over, then handed over as its length."""
        assert self._fd is not None and self._segment is not None
        pos = self._read_to()
        while True:
            # Reads grow with a long line held (copying it stays linear), up to the bound.
            want = max(min(READ_BLOCK, max(self._budget, 4096)), len(self._partial))
            try:
                block = os.pread(self._fd, min(want, LINE_MAX + 1 - len(self._partial)), pos)
            except OSError as exc:
                self._note("unreadable", str(exc))
                return
            if not block:
                return
            pos += len(block)
            self._budget -= len(block)
            if self._skipping:
                block = self._skip(block, chunks)
            data = self._partial + block
            cut = _before_partials(data, data.rfind(b"\n") + 1)
            if len(data) - cut > LINE_MAX:  # held back past the bound
                cut = data.rfind(b"\n") + 1
                if cut:  # the pieces of a split line: handed over, to be said malformed
                    chunks.append(Chunk(self._segment, self._offset, data[:cut], hold=False))
                    self._offset += cut
                    self._tail = data[max(0, cut - TAIL) : cut]
                    data, cut = data[cut:], 0
                if len(data) > LINE_MAX:  # one line past the bound: passed over from here
                    self._skipping, data = len(data), b""
            if cut:
                chunks.append(Chunk(self._segment, self._offset, data[:cut]))
                self._offset += cut
                self._tail = data[max(0, cut - TAIL) : cut]
            self._partial = data[cut:]
            if self._budget <= 0:
                self.behind = True
                return

    def _skip(self, block: bytes, chunks: list[Chunk]) -> bytes:
        """Pass over ``block`` in the line being skipped; what follows its end, if in it."""
        assert self._segment is not None
        nl = block.find(b"\n")
        if nl < 0:
            self._skipping += len(block)
            return b""
        length = self._skipping + nl
        chunks.append(Chunk(self._segment, self._offset, b"", too_long=length))
        self._offset += length + 1
        self._skipping = 0
        self._tail = block[max(0, nl + 1 - TAIL) : nl + 1]
        return block[nl + 1 :]

    def _tail_intact(self) -> bool:
        """Are the last bytes consumed still there? (A file truncated and refilled past our
        offset between two polls keeps its inode and its size; its content gives it away.)"""
        if not self._tail:
            return True
        assert self._fd is not None
        try:
            return os.pread(self._fd, len(self._tail), self._offset - len(self._tail)) == self._tail
        except OSError:
            return False

    def _replaced(self) -> bool:
        """Is another file (or none) at the path now?"""
        assert self._segment is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != (self._segment.dev, self._segment.ino)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _note(self, kind: str, detail: str) -> None:
        self.notices.append(Notice(self.path, kind, detail))

    def _note_once(self, kind: str, detail: str) -> None:
        if self._reported != kind:
            self._reported = kind
            self._note(kind, detail)


def watch_wakeups(
    paths: list[str], stop: threading.Event, heartbeat_ms: int = 1000, poll: bool = False
) -> Iterator[None]:
    """Yield whenever something may have changed for ``paths``, and at least every heartbeat.

    Watches the parent folders (not the files: a watch on a file goes silent after its first
    rename). With ``poll``, or when the folders cannot be watched, it is a plain timer: the
    follower's own stat() calls then do the detecting (watchfiles' polling mode misses writes
    within the same second).
    """
    folders = sorted({os.path.dirname(os.path.abspath(p)) for p in paths})
    existing = [f for f in folders if os.path.isdir(f)]
    if not poll and existing:
        try:
            from watchfiles import watch

            for _ in watch(
                *existing,
                watch_filter=None,
                recursive=False,
                stop_event=stop,
                rust_timeout=heartbeat_ms,
                yield_on_timeout=True,
                debounce=50,
                step=20,
            ):
                yield
            return
        except (OSError, RuntimeError) as exc:
            # No inotify here (some containers, NFS), or the watch broke: fall back to a timer.
            print(f"audittui: watching {existing} failed ({exc}); polling instead", file=sys.stderr)
    while not stop.wait(min(heartbeat_ms, 250) / 1000):
        yield


class SourceRegistry(Protocol):
    """What the follower needs of a store (:class:`~audittui.index.store.Store`): sources to
    add, each with the file descriptor that pins its file, and to mark gone."""

    @property
    def sources(self) -> list[Source]: ...

    def add_source(self, source: Source, fd: int | None = None) -> Source: ...


# What a round of reading hands over: (batch, its first line number) pairs, and the notices.
Emit = Callable[[list[tuple["Batch", int]], list[Notice]], None]


class Follower:
    """Follows ``paths`` into ``store``: new lines become batches handed to ``emit``.

    ``emit(batches, notices)`` gets ``(batch, first_line)`` pairs ready for
    :meth:`Store.append <audittui.index.store.Store.append>`; it runs in the follower's thread,
    and a slow consumer simply makes the follower wait (backpressure). Runs until ``stop`` is
    set. In ``folders`` (those among the paths given), a live log that appears later (a new
    API server's, a webhook sender's first batch) is followed from its start.
    """

    def __init__(
        self,
        store: SourceRegistry,
        paths: list[str],
        *,
        poll: bool = False,
        from_end: bool = False,
        heartbeat_ms: int = 1000,
        folders: list[str] | None = None,
    ) -> None:
        self.store = store
        self.folders = {f: -1 for f in folders or ()}  # folder → its mtime when last listed
        self.poll = poll
        self.heartbeat_ms = heartbeat_ms
        self._sources: dict[Segment, int] = {}
        self._lines: dict[Segment, int] = {}
        self.files = [
            FileFollower(p, from_end=from_end, on_segment=self._new_segment) for p in paths
        ]

    def _new_segment(self, segment: Segment, fd: int) -> None:
        from .sources import Source

        if segment.generation:  # truncated in place: the old bytes are gone
            old = Segment(segment.path, segment.dev, segment.ino, segment.generation - 1)
            if old in self._sources:
                self.store.sources[self._sources[old]].gone = "truncated in place after reading"
        source = self.store.add_source(Source(0, segment.path, segment.path), fd=os.dup(fd))
        self._sources[segment] = source.id
        self._lines[segment] = 1

    def source_of(self, segment: Segment) -> int:
        """The store source holding a segment's events."""
        return self._sources[segment]

    def read_once(self) -> tuple[list[tuple[Batch, int]], list[Notice], bool]:
        """One round over every file: (batches, notices, more to read right away)."""
        from .batch import BatchBuilder

        batches: list[tuple[Batch, int]] = []
        notices: list[Notice] = []
        behind = False
        self._discover()
        for f in self.files:
            for chunk in f.poll(POLL_BUDGET):
                # Lines numbered from the chunk's first: the store shifts them by `first`.
                builder = BatchBuilder(self._sources[chunk.segment])
                if chunk.too_long:
                    builder.too_long(1, chunk.too_long, newline=True)
                else:
                    builder.add_lines(chunk.data, chunk.offset, 1, False, chunk.hold)
                first = self._lines[chunk.segment]
                self._lines[chunk.segment] += builder.lines
                batches.append((builder.finish(), first))
            notices.extend(f.notices)
            f.notices.clear()
            behind |= f.behind
        return batches, notices, behind

    def _discover(self) -> None:
        """Follow the live logs new in the folders (listed again only when they changed)."""
        from .sources import split_live

        for folder, seen in self.folders.items():
            try:
                mtime = os.stat(folder).st_mtime_ns
            except OSError:
                continue
            if mtime == seen:
                continue
            self.folders[folder] = mtime
            followed = {f.path for f in self.files}
            for path in split_live([folder]):
                if path not in followed and os.path.exists(path):
                    self.files.append(FileFollower(path, on_segment=self._new_segment))

    def run(self, emit: Emit, stop: threading.Event) -> None:
        try:
            self._emit_round(emit, stop)
            for _ in watch_wakeups(
                [f.path for f in self.files], stop, self.heartbeat_ms, poll=self.poll
            ):
                self._emit_round(emit, stop)
        finally:
            for f in self.files:
                f.close()

    def _emit_round(self, emit: Emit, stop: threading.Event) -> None:
        while not stop.is_set():
            batches, notices, behind = self.read_once()
            if batches or notices:
                emit(batches, notices)
            if not behind:
                return
            time.sleep(0)  # let the consumer's thread in between big rounds


HEAD = 256


def _line_start(fd: int, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 if there is none): a writer
    may be in the middle of a line."""
    end = size
    while end > 0:
        start = max(0, end - READ_BLOCK)
        nl = os.pread(fd, end - start, start).rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        end = start
    return 0


def _head(fd: int) -> bytes:
    try:
        return os.pread(fd, HEAD, 0)
    except OSError:
        return b""


def _file_head(path: str, gz: bool) -> bytes | None:
    """The first bytes of a backup (decompressed); None when it cannot be read."""
    if gz:
        return inflate.head(path, HEAD)
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD)
    except OSError:
        return None


def _same_start(a: bytes, b: bytes) -> bool:
    """Two files begin alike. Every audit line starts with the same ~80 bytes, so a short head
    proves nothing: only full heads (or two whole, equal small files) count. Erring this way
    can read a file twice, which deduplication absorbs, but never skips one."""
    if len(a) < HEAD or len(b) < HEAD:
        return a == b and len(a) > 0
    return a == b


def _open_whole(path: str, gz: bool) -> tuple[int | None, str | None]:
    """A descriptor on the file's bytes: the file itself, or for .gz an anonymous temporary
    file (in the system temp folder, never beside the logs) holding them decompressed within
    the bounds of :mod:`.inflate`; and what of it could not be read (a bound, a cut)."""
    try:
        if not gz:
            return os.open(path, os.O_RDONLY), None
        import tempfile

        folder = tempfile.gettempdir()
        with tempfile.TemporaryFile(dir=folder) as spool, open(path, "rb") as src:
            result = inflate.gunzip(b"", src, spool.write, inflate.Bounds.for_folder(folder))
            spool.flush()
            return os.dup(spool.fileno()), result.note
    except OSError:
        return None, None


def _before_partials(data: bytes, cut: int) -> int:
    """``cut`` (just after a newline), moved back before trailing split-line pieces: pieces
    of a line whose final piece is still to come are held back and handed over with it. The
    two streams of a container are split apart and may interleave (``stdout P``, ``stderr F``):
    a stream's pieces are pending until a final line of that stream follows them."""
    end, closed = cut, set()
    for _ in range(_LOOK_BACK):
        if not end:
            break
        start = data.rfind(b"\n", 0, end - 1) + 1
        line = data[start : end - 1]
        stream = stream_of(line)
        if partial(line):
            if stream not in closed:
                cut = start
        elif stream is None:
            break  # not a runtime's line: the pieces before it are complete
        else:
            closed.add(stream)
            if len(closed) == 2:
                break  # both streams have ended: the pieces before are complete
        end = start
    return cut


_LOOK_BACK = 64  # lines; the other stream's lines amid one split line are few


def backups_before(follower: Follower) -> list[str]:
    """Backups that were rotated before the followers first opened their files, oldest first.

    Listed after the live files are open, so a rotation during start-up is either before
    (its backup is here) or after (the follower reads it): nothing falls in between."""
    once: list[str] = []
    for f in follower.files:
        for ts, gz, path in f.backups():
            if ts in f.looked and not f.was_read(path, gz):
                once.append(path)
    return once
