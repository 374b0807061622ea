"""Standard input spooled to a private file, so that the app follows a pipe as it follows a
log (``ssh cp1 sudo tail -F … | audittui``) and reads the keyboard from the terminal.

The spool is a file of mode 0600 in a folder of mode 0700 under the temporary directory
(never beside the logs, ``audittui-stdin-…``: see :mod:`.scratch`), removed by
:meth:`StdinSpool.close`. A copying thread appends what
arrives; the follower reads it like any growing log, so nothing about pipes reaches the index.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable

from . import scratch
from .sources import InputError

CHUNK = 1 << 20  # bytes per read from the pipe


class StdinSpool:
    """Copies ``source_fd`` (standard input by default) into :attr:`path` until it ends."""

    def __init__(self, source_fd: int = 0) -> None:
        self.folder = scratch.make("stdin")
        self.path = os.path.join(self.folder, "stdin.log")
        self._out = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._in = os.dup(source_fd)
        self.ended = threading.Event()
        self.error = ""  # why reading stopped early, if it did
        self._lock = threading.Lock()
        self._on_end: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._copy, name="stdin-spool", daemon=True)

    def start(self) -> StdinSpool:
        self._thread.start()
        return self

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the copying thread, or now) once the input has ended."""
        with self._lock:
            if not self.ended.is_set():
                self._on_end.append(callback)
                return
        callback()

    def _copy(self) -> None:
        last = b"\n"
        try:
            while chunk := os.read(self._in, CHUNK):
                self._write(chunk)
                last = chunk[-1:]
            if last != b"\n":  # the last line is whole once the input ends: let it be read
                self._write(b"\n")
        except OSError as exc:
            self.error = exc.strerror or str(exc)
        finally:
            os.close(self._in)
            os.close(self._out)
            with self._lock:
                self.ended.set()
                callbacks, self._on_end = self._on_end, []
            for callback in callbacks:
                callback()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._out, view)
            view = view[n:]

    def state(self) -> str:
        """For the status bar: "" while the input flows, else how it ended."""
        if not self.ended.is_set():
            return ""
        return f"input ended ({self.error})" if self.error else "input ended"

    def close(self) -> None:
        scratch.remove(self.folder)


def stdin_is_piped() -> bool:
    """Standard input is a pipe or a file (``cmd | audittui``, ``audittui < log``): not a
    terminal, nor /dev/null as under cron."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def keyboard_from_terminal() -> None:
    """Make the controlling terminal this process's standard input, so that the app reads
    keys from it while the log came in through the pipe (call after starting the spool)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError as exc:
        raise InputError(
            f"-: no terminal to read keys from ({exc.strerror}); "
            "in scripts, pipe into `audittui query -` instead"
        ) from None
    os.dup2(tty, 0)
    os.close(tty)
