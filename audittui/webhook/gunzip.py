"""A gzip request body, decoded within a size limit: every member, as ``gzip.decompress``
reads them (NUL padding between members skipped), and nothing else after them.

The input is fed in small pieces, so that what zlib copies aside (the rest of a piece after a
member's end, or the input held back at the output limit) stays small however many members
and bytes follow: time and memory are linear in the body.
"""

from __future__ import annotations

import re
import zlib

MAX_MEMBERS = 64  # a gzip writer makes one; concatenated files a few
_FEED = 1 << 16  # input bytes per call
_PIECE = 1 << 20  # output bytes per call at most
_NULS = re.compile(rb"\x00*")
_MAGIC = b"\x1f\x8b"


class GzipError(ValueError):
    """Not gzip, a member cut short, a broken member, or bytes after the last one (400)."""


class TooLarge(Exception):
    """More than the limit once decoded (413)."""


def gunzip(data: bytes | bytearray, limit: int) -> bytearray:
    """The decoded body; raises :class:`GzipError` or :class:`TooLarge`."""
    view = memoryview(data)
    out = bytearray()
    pos = 0
    members = 0
    while True:
        m = _NULS.match(data, pos)
        pos = m.end() if m is not None else pos
        if pos == len(view) and members:
            return out
        if bytes(view[pos : pos + 2]) != _MAGIC:
            if members:
                raise GzipError(f"bytes after the gzip data (at byte {pos:,})")
            raise GzipError("not gzip")
        members += 1
        if members > MAX_MEMBERS:
            raise GzipError(f"more than {MAX_MEMBERS} gzip members")
        pos = _member(view, pos, out, limit)


def _member(view: memoryview, pos: int, out: bytearray, limit: int) -> int:
    """Decode the member at ``pos`` onto ``out``; the index after it."""
    inflate = zlib.decompressobj(wbits=31)  # gzip header and trailer (CRC-32, size) checked
    try:
        while not inflate.eof:
            if pos >= len(view):
                raise GzipError("the gzip data is cut short")
            feed: bytes | memoryview = view[pos : pos + _FEED]
            pos += len(feed)
            while True:
                out += inflate.decompress(feed, min(limit - len(out) + 1, _PIECE))
                if len(out) > limit:
                    raise TooLarge
                feed = inflate.unconsumed_tail
                if not feed or inflate.eof:
                    break
    except zlib.error as exc:
        raise GzipError(f"broken gzip data ({exc})") from None
    return pos - len(inflate.unused_data)
