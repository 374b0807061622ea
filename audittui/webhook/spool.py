"""The spool: a folder of JSON-lines files, one live file per sender, each rotated by size
into backups named exactly as lumberjack (the API server's log rotation) names them, so that
``audittui DIR`` reads and follows the folder like the API server's own log folder.

Durability: a write returns only once its lines are written and ``fdatasync``'d, and a new
file's directory entry (creation, rotation) is ``fsync``'d on the folder. A failed write
(full disk, quota, a file-size limit, an unwritable folder) is cut back to the last durable
size, so that the file never holds part of a batch that was not acknowledged; the caller
answers 429 and the API server sends the batch again.

Safety: the folder must be the receiver's own and writable by nobody else (else anyone could
plant a link in it), and no name in it is ever followed as a symbolic link: every file is
opened, renamed and removed relative to the folder's descriptor with ``O_NOFOLLOW``, and must
be a regular file. A link found at start stops the start; one made later is refused (429).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import itertools
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..ingest.sources import backup_key, backup_name
from .names import LIVE_SUFFIX, live_name

_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_WRITE_PIECE = 8 << 20  # bytes per write() call: big writes, without one huge joined buffer
LOCK_NAME = ".audittui-webhook.lock"  # hidden: the reader skips it


class SpoolError(Exception):
    """The spool cannot take the batch now. ``reason``: ``spool_full``, ``spool_error`` or
    ``stopping``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _spool_error(exc: OSError, what: str) -> SpoolError:
    reason = "spool_full" if exc.errno in _FULL else "spool_error"
    return SpoolError(reason, f"{what}: {exc.strerror or exc}")


@dataclass
class Timings:
    """Callbacks told how long each write() and each fdatasync took (seconds), and of each
    rotation (the sender)."""

    write: Callable[[str, float], None] = lambda sender, s: None
    fsync: Callable[[str, float], None] = lambda sender, s: None
    rotated: Callable[[str], None] = lambda sender: None


_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO


def open_folder(folder: str) -> int:
    """A descriptor of the spool folder (made mode 0700 if missing); raises OSError, with the
    folder as its file name, when it is not the receiver's own or others may write in it, or
    when it holds a symbolic link."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise OSError(
                errno.EPERM, f"owned by another user (uid {st.st_uid}): refusing it as the spool",
                folder,
            )  # fmt: skip
        if st.st_mode & 0o022:
            raise OSError(
                errno.EPERM,
                f"writable by others (mode {stat.S_IMODE(st.st_mode):04o}): refusing it as the "
                "spool (anyone could plant a link in it; chmod go-w)",
                folder,
            )
        for entry in os.scandir(fd):
            if entry.is_symlink():
                raise OSError(
                    errno.ELOOP,
                    "a symbolic link in the spool: the receiver follows none (remove it)",
                    os.path.join(folder, entry.name),
                )
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(dir_fd: int, name: str, flags: int, mode: int = 0o600) -> int:
    """``name`` in the folder opened with ``flags`` (``O_NOFOLLOW`` added): a regular file,
    else OSError (ELOOP for a link)."""
    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_lines(dir_fd: int, name: str) -> Iterator[bytes]:
    """The lines of a file of the folder (never through a link)."""
    fd = open_regular(dir_fd, name, _READ)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as fh:
        yield from fh


class SenderFile:
    """The live file of one sender and its backups. :meth:`append` is called with
    :attr:`lock` held (one batch at a time per file)."""

    def __init__(
        self, dir_fd: int, sender: str, max_size: int, max_backups: int, timings: Timings
    ) -> None:
        self.dir_fd = dir_fd  # the folder's: every name is looked up there, never followed
        self.sender = sender
        self.name = live_name(sender)
        self.max_size = max_size
        self.max_backups = max_backups
        self.timings = timings
        self.lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0  # durable size of the live file
        self._last_stamp = 0  # ms of the newest backup name given, so names never repeat
        self.closed = False  # the receiver is stopping: nothing more is written
        self._cut_to: int | None = None  # a cut back that failed: done when next opened
        self._ident = (0, 0)  # (device, inode) of the open live file

    def append(self, lines: list[bytes], durable: Callable[[int, int, int], None]) -> int:
        """Write ``lines`` (each ending in a newline); rotate before a line that would take
        the file past ``max_size`` (a line longer than that gets a file of its own: it is
        never dropped; ``max_size`` 0: never rotate). ``durable(start, end, size)`` is told
        of ``lines[start:end]`` (``size`` bytes) once they are fsync'd. Returns the bytes
        written; raises :class:`SpoolError`."""
        if self.closed:
            raise SpoolError("stopping", "the receiver is stopping")
        # ends[k]: bytes of lines[:k]; the cut points are found by bisection, not line by line
        ends = [0, *itertools.accumulate(map(len, lines))]
        start = 0
        while start < len(lines):
            fd = self._open()
            room = self.max_size - self._size if self.max_size > 0 else 1 << 62
            end = max(start, bisect.bisect_right(ends, ends[start] + room) - 1)  # lines that fit
            if end == start:
                if self._size:  # the next line does not fit: rotate first
                    self._rotate()
                    continue
                end = start + 1  # longer than max_size: a file of its own
            self._write(fd, lines, ends, start, end)
            self._size += ends[end] - ends[start]
            durable(start, end, ends[end] - ends[start])
            start = end
        return ends[-1]

    def _write(self, fd: int, lines: list[bytes], ends: list[int], start: int, end: int) -> None:
        """Write and fdatasync ``lines[start:end]`` at the end of the file, or cut the file
        back to its durable size and raise."""
        try:
            k = start
            while k < end:  # pieces of about _WRITE_PIECE bytes, at least a line each
                stop = max(k + 1, min(end, bisect.bisect_right(ends, ends[k] + _WRITE_PIECE) - 1))
                data = memoryview(b"".join(lines[k:stop]))
                k = stop
                t = time.perf_counter()
                while data:
                    data = data[os.write(fd, data) :]
                self.timings.write(self.sender, time.perf_counter() - t)
            t = time.perf_counter()
            os.fdatasync(fd)
            self.timings.fsync(self.sender, time.perf_counter() - t)
        except OSError as exc:
            self._cut_back()
            raise _spool_error(exc, f"writing {self.name}") from None

    def _cut_back(self) -> None:
        """Drop what a failed write left after the durable size (never acknowledged). If even
        that fails, the file is closed and cut again when next opened."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
            os.fdatasync(self._fd)
        except OSError:
            self._cut_to = self._size
            self.close()

    def _open(self) -> int:
        if self._fd is not None:
            if self._still_there():
                return self._fd
            self.close()  # removed or replaced by hand: writing on would go nowhere readable
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK  # read: to check the end
            fd = open_regular(self.dir_fd, self.name, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SpoolError(
                    "spool_error", f"{self.name} is a symbolic link: not followed"
                ) from None
            raise _spool_error(exc, f"opening {self.name}") from None
        try:
            size = os.fstat(fd).st_size
            keep = _complete_lines(fd, size)
            if self._cut_to is not None and self._cut_to <= keep:
                keep = self._cut_to  # the lines of a failed write: not acknowledged
            if keep != size:  # a crash cut a write short: those lines were never acknowledged
                os.ftruncate(fd, keep)
                os.fdatasync(fd)
            if size == 0:
                os.fsync(self.dir_fd)  # the new file's entry, before anything is acknowledged
        except OSError as exc:
            os.close(fd)
            raise _spool_error(exc, f"opening {self.name}") from None
        self._fd, self._size, self._cut_to = fd, keep, None
        st = os.fstat(fd)
        self._ident = (st.st_dev, st.st_ino)
        return fd

    def _still_there(self) -> bool:
        """Is the open file still the one at the live path?"""
        try:
            st = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ident

    def _rotate(self) -> None:
        """Lumberjack's rotation: close, rename to ``<stem>-<UTC time><ext>``, then a new live
        file is created by the next :meth:`_open`; old backups beyond ``max_backups`` go."""
        self.close()
        stamp = max(time.time_ns() // 1_000_000, self._last_stamp + 1)
        while True:
            backup = backup_name(self.name, stamp * 1000)
            if not _exists(self.dir_fd, backup):
                break
            stamp += 1  # never rename over a backup (two rotations in one millisecond)
        self._last_stamp = stamp
        try:
            os.rename(self.name, backup, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            os.fsync(self.dir_fd)
        except OSError as exc:
            raise _spool_error(exc, f"rotating {self.name}") from None
        self.timings.rotated(self.sender)
        self._prune()

    def _prune(self) -> None:
        if self.max_backups <= 0:
            return
        stamps: dict[str, list[str]] = {}  # a backup and its .gz count once, as in lumberjack
        for entry in os.listdir(self.dir_fd):
            key = backup_key(entry)
            if key is not None and key[0] == self.name:
                stamps.setdefault(key[1], []).append(entry)
        for ts in sorted(stamps)[: -self.max_backups]:
            for entry in stamps[ts]:
                # gone already, or not ours to remove: tried again at the next rotation
                with contextlib.suppress(OSError):
                    os.unlink(entry, dir_fd=self.dir_fd)  # removes a link, never its target

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _complete_lines(fd: int, size: int) -> int:
    """The size of the file up to (and with) its last newline."""
    end = size
    while end > 0:
        start = max(0, end - (1 << 16))
        block = os.pread(fd, end - start, start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        end = start
    return 0


class Spool:
    """The spool folder: one :class:`SenderFile` per sender, made on its first batch. Holds
    an exclusive lock on the folder, so two receivers never write the same spool. Raises
    OSError (with the folder or file as its file name) when the folder is refused."""

    def __init__(self, folder: str, max_size: int, max_backups: int, timings: Timings) -> None:
        self.folder = os.path.abspath(folder)
        self.max_size = max_size
        self.max_backups = max_backups
        self.timings = timings
        self._senders: dict[str, SenderFile] = {}
        self._lock = threading.Lock()
        self.dir_fd = open_folder(self.folder)
        # Read-only: a file open for writing would keep the folder's file system from being
        # remounted read-only by an operator.
        try:
            self._lock_fd = open_regular(self.dir_fd, LOCK_NAME, os.O_RDONLY | os.O_CREAT)
        except OSError as exc:
            os.close(self.dir_fd)
            raise OSError(exc.errno, exc.strerror, os.path.join(self.folder, LOCK_NAME)) from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            os.close(self.dir_fd)
            raise OSError(errno.EBUSY, "another audittui webhook is using this spool") from None

    def names(self) -> list[str]:
        """The names in the folder."""
        return os.listdir(self.dir_fd)

    def repair(self) -> list[str]:
        """Cut every live file back to its last complete line (a crash mid-write); the names
        of the files that were cut."""
        cut = []
        for name in sorted(self.names()):
            if name.startswith(".") or backup_key(name) is not None:
                continue
            if not name.endswith(LIVE_SUFFIX):
                continue
            try:
                fd = open_regular(self.dir_fd, name, os.O_RDWR | os.O_NONBLOCK)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, os.path.join(self.folder, name)) from None
            try:
                size = os.fstat(fd).st_size
                keep = _complete_lines(fd, size)
                if keep != size:
                    os.ftruncate(fd, keep)
                    os.fdatasync(fd)
                    cut.append(name)
            finally:
                os.close(fd)
        return cut

    def sender(self, name: str) -> SenderFile:
        with self._lock:
            file = self._senders.get(name)
            if file is None:
                file = SenderFile(self.dir_fd, name, self.max_size, self.max_backups, self.timings)
                self._senders[name] = file
            return file

    def close(self) -> None:
        with self._lock:
            for file in self._senders.values():
                with file.lock:  # waits for the write under way
                    file.closed = True
                    file.close()
            os.close(self._lock_fd)
            os.close(self.dir_fd)
