"""Gzip decompressed within bounds: the one place audittui inflates a file.

A gzip bomb (4.6 MB of gzip that inflates to gigabytes) is not a log: decompression stops at
the first bound it reaches, keeps what came before (the events before the cut are read, as for
a gzip stream cut short), and says in one line which bound stopped it. The bounds:

- the ratio: past the first :data:`RATIO_FREE` bytes, output may not exceed :data:`RATIO_MAX`
  times the compressed bytes read (audit logs gzip about 8–20×, a log of one request repeated
  maybe 50×; a bomb of zeros is about 1,000×, the most deflate can do);
- the size: :data:`SIZE_MAX` decompressed bytes per file (``AUDITTUI_GUNZIP_MAX``);
- the room: the temporary folder written to keeps :func:`reserve` bytes free
  (``AUDITTUI_TMP_RESERVE``; by default 1 GiB or a tenth of the file system, the smaller).

Output is produced a block at a time (:data:`OUT_BLOCK`), never a whole member at once.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .bounds import env_size

READ_BLOCK = 1 << 20  # compressed bytes per read
OUT_BLOCK = 1 << 20  # decompressed bytes per step: memory stays flat whatever the ratio
RATIO_MAX = 100
RATIO_FREE = 16 << 20
SIZE_MAX = 16 << 30
RESERVE_MAX = 1 << 30
ROOM_EVERY = 8 << 20  # free space is looked at again after this many bytes written


def reserve(folder: str) -> int:
    """Bytes to leave free where ``folder`` is (AUDITTUI_TMP_RESERVE, else the smaller of
    1 GiB and a tenth of its file system)."""
    try:
        st = os.statvfs(folder)
        default = min(RESERVE_MAX, st.f_blocks * st.f_frsize // 10)
    except OSError:
        default = RESERVE_MAX
    return env_size("AUDITTUI_TMP_RESERVE", default)


def free_space(folder: str) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _size(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


@dataclass
class Bounds:
    """The bounds of one decompression (read from the environment when it starts)."""

    folder: str  # where the output goes: its free space is watched
    ratio: int = RATIO_MAX
    size: int = SIZE_MAX
    reserve: int = 0

    @classmethod
    def for_folder(cls, folder: str) -> Bounds:
        return cls(
            folder,
            ratio=env_size("AUDITTUI_GUNZIP_RATIO", RATIO_MAX),
            size=env_size("AUDITTUI_GUNZIP_MAX", SIZE_MAX),
            reserve=reserve(folder),
        )


class Room:
    """Watches the free space of a folder while it is written to."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self._next = 0

    def full(self, written: int) -> str | None:
        """Why no more may be written after ``written`` bytes, or None."""
        if written < self._next:
            return None
        self._next = written + ROOM_EVERY
        try:
            free = free_space(self.bounds.folder)
        except OSError:
            return None
        if free - ROOM_EVERY >= self.bounds.reserve:
            return None
        return (
            f"stopped after {_size(written)}: the temporary folder {self.bounds.folder} would "
            f"have less than {_size(self.bounds.reserve)} free (AUDITTUI_TMP_RESERVE)"
        )


@dataclass
class Result:
    """How a decompression ended: ``note`` says what was not read (damage, a cut, a bound);
    ``bound`` is that note when a bound stopped it (to be said to the user at once)."""

    written: int = 0
    note: str | None = None
    bound: str | None = None
    damaged: bool = False  # the data is not gzip past some point


class Inflater:
    """Gzip decompressed as it is read: every member, one after the other, at most
    :data:`OUT_BLOCK` bytes a :meth:`read`, within the ratio and size of ``bounds``. The end
    of the stream, damage and a bound all end it (:meth:`read` gives ``b""``); ``note`` then
    says what was not read (``bound`` when a bound stopped it, ``damaged`` when the data is not
    gzip past some point). The bytes before are kept."""

    def __init__(self, first: bytes, stream: BinaryIO, bounds: Bounds) -> None:
        self.bounds = bounds
        self.written = 0
        self.note: str | None = None
        self.bound: str | None = None
        self.damaged = False
        self._stream = stream
        self._data, self._read = first, len(first)
        self._inflate = zlib.decompressobj(wbits=31)
        self._done = False

    def read(self, n: int = OUT_BLOCK) -> bytes:
        """Up to ``n`` decompressed bytes (at most OUT_BLOCK); ``b""`` once it has ended."""
        n = max(1, min(n, OUT_BLOCK))
        while not self._done:
            if not self._data:
                self._data = self._stream.read(READ_BLOCK)
                self._read += len(self._data)
            if self._data:
                if self._inflate.eof:  # concatenated members
                    self._inflate = zlib.decompressobj(wbits=31)
                try:
                    piece = self._inflate.decompress(self._data, n)
                except zlib.error as exc:
                    self._end(f"gzip data damaged ({exc}); the events before it were read")
                    self.damaged = True
                    return b""
                tail = self._inflate.unused_data if self._inflate.eof else None
                self._data = tail if tail is not None else self._inflate.unconsumed_tail
            elif self._inflate.eof or not (piece := self._inflate.decompress(b"", n)):
                # (what zlib still held once the input was all in is given first)
                if not self._inflate.eof:
                    self._end(
                        "gzip stream ends early (still being written?); the events before the "
                        "cut were read"
                    )
                self._done = True
                return b""
            if piece:
                self.written += len(piece)
                # The ratio to what was inflated so far, not to what was read ahead.
                bound = _bound(self.written, self._read - len(self._data), self.bounds)
                if bound is not None:
                    self.stop(bound)
                return piece
        return b""

    def stop(self, bound: str) -> None:
        """End here, ``bound`` having been reached (the bytes given so far are kept)."""
        self.bound = f"{bound}; the events before were read"
        self._end(self.bound)

    def _end(self, note: str) -> None:
        self.note, self._done = note, True


def gunzip(
    first: bytes, stream: BinaryIO, write: Callable[[bytes], object], bounds: Bounds
) -> Result:
    """Decompress every gzip member of ``first`` + the rest of ``stream`` into ``write``,
    within ``bounds`` (the room of the folder written to included); keep what precedes
    damage, a cut (a backup the API server is still compressing) or a bound, and say what
    happened."""
    room = Room(bounds)
    src = Inflater(first, stream, bounds)
    result = Result()
    if _stopped(result, room.full(0)):
        return result
    while piece := src.read():
        write(piece)
        result.written += len(piece)
        if (full := room.full(result.written)) is not None:
            src.stop(full)
            break
    result.note, result.bound, result.damaged = src.note, src.bound, src.damaged
    return result


def _bound(written: int, read: int, bounds: Bounds) -> str | None:
    if written > bounds.size:
        return f"stopped at {_size(bounds.size)} decompressed, the cap (AUDITTUI_GUNZIP_MAX)"
    if written > RATIO_FREE and written > bounds.ratio * read:
        return (
            f"stopped at {_size(written)} decompressed from {_size(read)}: over {bounds.ratio}× "
            "its compressed size, the cap (AUDITTUI_GUNZIP_RATIO; a gzip bomb?)"
        )
    return None


def copy(
    first: bytes, stream: BinaryIO, write: Callable[[bytes], object], bounds: Bounds
) -> Result:
    """Copy ``first`` + the rest of ``stream`` (uncompressed input, standard input) into
    ``write`` while the temporary folder keeps its reserve free."""
    room = Room(bounds)
    result = Result()
    data = first
    while data and not _stopped(result, room.full(result.written)):
        write(data)
        result.written += len(data)
        data = stream.read(READ_BLOCK)
    return result


def _stopped(result: Result, bound: str | None) -> bool:
    """Record the bound that stops the reading, if any."""
    if bound is None:
        return False
    result.note = result.bound = f"{bound}; the events before were read"
    return True


def head(path: str, n: int) -> bytes | None:
    """The first ``n`` decompressed bytes of a gzip file (bounded whatever it inflates to);
    None when it cannot be read."""
    out = bytearray()
    try:
        with open(path, "rb") as fh:
            src = Inflater(b"", fh, Bounds(path))
            while len(out) < n and (piece := src.read(n - len(out))):
                out += piece
    except OSError:
        return None
    return None if src.damaged else bytes(out)
