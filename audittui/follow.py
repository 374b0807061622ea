"""Follow growing log files through rotation and truncation: paths → chunks of complete lines.

:class:`FileFollower` tracks one path by inode and offset. Each :meth:`FileFollower.poll` reads
what was appended (never a partial last line; it waits for its newline), and notices a rename
(lumberjack: a new inode at the path; the old file is drained to its end first, since the
writer closed it before renaming) and a truncation in place (copytruncate: same inode, size
below the offset; reading restarts at 0 in a new segment). A missing or unreadable path is
reported and retried, never raised. Nothing is mmapped: a live file can shrink under a map.

:func:`watch_wakeups` turns watchfiles' events on the parent folders into wake-ups, with a
heartbeat, so that an idle follower sleeps instead of polling.

This is the reading half of live following (issue 3); the store integration and
``query --follow`` build on it.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Segment:
    """One physical file seen at a path: offsets are only meaningful within a segment."""

    path: str
    dev: int
    ino: int
    generation: int  # bumped by every truncation of the same inode


@dataclass
class Chunk:
    """Complete lines read from a segment, starting at ``offset``."""

    segment: Segment
    offset: int
    data: bytes


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
    from_end: bool = False  # start at the current end of an existing file (tail -F -n0)
    _fd: int | None = None
    _segment: Segment | None = None
    _offset: int = 0  # bytes consumed (complete lines) in the current segment
    _partial: bytes = b""
    _generation: int = 0
    _reported: str = ""  # last problem reported, so a retry loop does not repeat it
    notices: list[Notice] = field(default_factory=list)

    def poll(self) -> list[Chunk]:
        """Read everything new; record notices. Never raises for file-system trouble."""
        chunks: list[Chunk] = []
        if self._fd is None and not self._open(initial=self._segment is None):
            return chunks
        assert self._fd is not None and self._segment is not None
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            self._note("unreadable", str(exc))
            self._close()
            return chunks
        if size < self._offset + len(self._partial):
            # Truncated in place: what was there is gone; start over in a new segment.
            self._note("truncated", f"from {self._offset + len(self._partial):,} to {size:,} bytes")
            self._generation += 1
            self._segment = Segment(
                self.path, self._segment.dev, self._segment.ino, self._generation
            )
            self._offset, self._partial = 0, b""
        self._drain(chunks)
        if self._replaced():
            # Rotated: the old inode is final (the writer closed it before renaming), but it
            # may have grown since the read above: drain it again. A piece left without a
            # newline can only be a cut line.
            self._drain(chunks)
            if self._partial:
                self._note(
                    "incomplete", f"{len(self._partial)} bytes without a newline at rotation"
                )
            self._close()
            self._note("rotated", "reading the new file from its start")
            if self._open(initial=False):
                self._drain(chunks)
        return chunks

    def close(self) -> None:
        self._close()

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
        self._offset = 0
        if initial and self.from_end:
            self._offset = st.st_size
        self._reported = ""
        self._note("opened", f"inode {st.st_ino}")
        return True

    def _drain(self, chunks: list[Chunk]) -> None:
        """Read from the offset to the end; hand over complete lines only."""
        assert self._fd is not None and self._segment is not None
        pos = self._offset + len(self._partial)
        while True:
            try:
                block = os.pread(self._fd, READ_BLOCK, pos)
            except OSError as exc:
                self._note("unreadable", str(exc))
                return
            if not block:
                return
            pos += len(block)
            data = self._partial + block
            cut = data.rfind(b"\n") + 1
            if cut:
                chunks.append(Chunk(self._segment, self._offset, data[:cut]))
                self._offset += cut
            self._partial = data[cut:]

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
        except (OSError, RuntimeError):
            pass  # no inotify here (some containers, NFS): fall back to the timer
    while not stop.wait(min(heartbeat_ms, 250) / 1000):
        yield
