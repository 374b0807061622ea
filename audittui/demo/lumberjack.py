"""Lumberjack's rotation (natefinch/lumberjack v2.2.1, the API server's log backend): whole
lines appended to a file that is renamed to a timestamped backup when full, then gzipped."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
import time
from pathlib import Path

from ..ingest.sources import backup_name


class LumberjackWriter:
    """Appends whole lines to a file and rotates like natefinch/lumberjack v2.2.1.

    Deviations (so tests never lose data): backup names are kept strictly increasing (+1 ms on a
    clash) and a line larger than ``max_bytes`` is written alone to a fresh file, not dropped.
    """

    def __init__(self, path: Path, max_bytes: int | None, compress: bool) -> None:
        self.path = path
        self.max = max_bytes
        self.compress = compress
        self.fd: int | None = None
        self.size = 0
        self.last_ms = 0
        self.threads: list[threading.Thread] = []
        self.backups: list[Path] = []

    def _open_new(self) -> None:
        self.fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        self.size = 0

    def _open_existing_or_new(self, n: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._open_new()
            return
        if self.max and size + n >= self.max:
            self._rotate()
            return
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = size

    def _backup_path(self) -> Path:
        ms = max(time.time_ns() // 1_000_000, self.last_ms + 1)
        while True:
            p = self.path.with_name(backup_name(self.path.name, ms * 1000))
            if not p.exists() and not p.with_name(p.name + ".gz").exists():
                self.last_ms = ms
                return p
            ms += 1

    def _rotate(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path.exists():
            backup = self._backup_path()
            os.rename(self.path, backup)
            self.backups.append(backup)
            if self.compress:
                t = threading.Thread(target=gzip_later, args=(backup,), daemon=True)
                t.start()
                self.threads.append(t)
        self._open_new()

    def write(self, line: bytes) -> None:
        n = len(line)
        if self.fd is None:
            self._open_existing_or_new(n)
        elif self.max and self.size + n > self.max and self.size > 0:
            self._rotate()
        view = memoryview(line)
        while view:  # one write() per line; loop only on a (rare) short write
            assert self.fd is not None
            done = os.write(self.fd, view)
            view = view[done:]
        self.size += n

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for t in self.threads:
            t.join()


def gzip_later(backup: Path, delay: float = 0.05) -> None:
    """Lumberjack's mill: compress ``backup`` to ``backup.gz`` a moment later, then delete it."""
    time.sleep(delay)  # the mill goroutine runs asynchronously after the rotation
    gz_path = backup.with_name(backup.name + ".gz")
    try:
        with (
            open(backup, "rb") as src,
            open(gz_path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        ):
            shutil.copyfileobj(src, gz, 1 << 20)
        os.remove(backup)
    except OSError:
        gz_path.unlink(missing_ok=True)  # like lumberjack: drop a partial .gz, keep the .log
