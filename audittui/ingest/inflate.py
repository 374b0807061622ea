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


def gunzip(
    first: bytes, stream: BinaryIO, write: Callable[[bytes], object], bounds: Bounds
) -> Result:
    """Decompress every gzip member of ``first`` + the rest of ``stream`` into ``write``,
    within ``bounds``; keep what precedes damage, a cut (a backup the API server is still
    compressing) or a bound, and say what happened."""
    room = Room(bounds)
    inflate = zlib.decompressobj(wbits=31)
    result = Result()
    data, read = first, len(first)
    if _stopped(result, room.full(0)):
        return result
    while True:
        if not data:
            data = stream.read(READ_BLOCK)
            read += len(data)
        if data:
            if inflate.eof:  # concatenated members
                inflate = zlib.decompressobj(wbits=31)
            try:
                piece = inflate.decompress(data, OUT_BLOCK)
            except zlib.error as exc:
                result.note = f"gzip data damaged ({exc}); the events before it were read"
                result.damaged = True
                return result
            data = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
        elif inflate.eof or not (piece := inflate.decompress(b"", OUT_BLOCK)):
            break  # (what zlib still held once the input was all in is written first)
        write(piece)
        result.written += len(piece)
        # The ratio to what was inflated so far, not to what was read ahead.
        bound = _bound(result.written, read - len(data), bounds) or room.full(result.written)
        if _stopped(result, bound):
            return result
    if not inflate.eof:
        result.note = (
            "gzip stream ends early (still being written?); the events before the cut were read"
        )
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
            inflate = zlib.decompressobj(wbits=31)
            data = b""
            while len(out) < n:
                if not data:
                    data = fh.read(READ_BLOCK)
                    if not data:
                        break
                elif inflate.eof:  # concatenated members
                    inflate = zlib.decompressobj(wbits=31)
                out += inflate.decompress(data, n - len(out))
                data = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
    except (OSError, zlib.error):
        return None
    return bytes(out)
