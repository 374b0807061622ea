"""The remote script's framing, read from the SSH channel: header lines, and file bytes that
run up to ``\\n<token>`` (a random token per connection, so no log line can end a frame).

The host is not trusted: every byte of the channel is the host's to choose. A header line is
at most :data:`MAX_LINE` bytes (the script's longest is a file name and two numbers), found
by scanning each byte once; a frame's fields are checked as they are parsed (numbers are
ASCII digits, names are plain file names); anything else is a :class:`ProtocolError`, one
line that ends the connection. File bytes are never held: they stream to a sink.

The remote side sends each file from an offset to its end with ``tail``/``cat``, so a frame's
length is not known in advance; the reader streams its bytes to a sink, holding back only as
many bytes as the end marker could span.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from typing import IO

READ = 1 << 20  # bytes per read from the channel
MAX_LINE = 8192  # bytes in a header line: a name is at most 255 bytes, a path 4,096
MAX_FILES = 100_000  # entries in one listing
NAME_MAX = 255  # bytes in a file name (Linux's NAME_MAX)
_NUMBER = re.compile(r"[0-9]{1,20}")  # up to 2**64: an inode, a size, an offset


def new_token() -> str:
    return "AUDITTUI-" + secrets.token_hex(16)


class ChannelClosed(Exception):
    """The channel ended (the connection dropped or the script exited) mid-frame."""


class ProtocolError(ValueError):
    """The host sent what the script never sends (a hostile or broken host)."""


class FrameReader:
    """Reads header lines and streamed file bytes from ``stream``."""

    def __init__(self, stream: IO[bytes], token: str) -> None:
        self._stream = stream
        self._marker = b"\n" + token.encode()
        self._buf = bytearray()
        self.received = 0  # bytes read from the channel

    def _fill(self) -> bool:
        read1 = getattr(self._stream, "read1", None)
        chunk = read1(READ) if read1 is not None else self._stream.read(READ)
        if not chunk:
            return False
        self.received += len(chunk)
        self._buf += chunk
        return True

    def line(self) -> str | None:
        """The next header line (without its newline); None at the end of the channel.
        Raises ProtocolError for a line longer than MAX_LINE (its bytes are not all read)."""
        scanned = 0  # bytes of the buffer known to hold no newline
        while True:
            nl = self._buf.find(b"\n", scanned, MAX_LINE + 1)
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line.decode("utf-8", "surrogateescape")
            scanned = len(self._buf)
            if scanned > MAX_LINE:
                raise ProtocolError(f"a header line longer than {MAX_LINE:,} bytes")
            if not self._fill():
                if self._buf:
                    raise ChannelClosed("the channel ended inside a header line")
                return None

    def data(self, sink: Callable[[bytes], None]) -> int:
        """Stream one frame's bytes to ``sink``; returns the status the host sent after them
        (0: the file was read to its end). Raises ChannelClosed if the channel ends first."""
        marker, keep = self._marker, len(self._marker) - 1
        while True:
            at = self._buf.find(marker)
            if at >= 0:
                if at:
                    sink(bytes(self._buf[:at]))
                del self._buf[: at + len(marker)]
                status = self.line()
                if status is None:
                    raise ChannelClosed("the channel ended inside a frame's trailer")
                status = status.strip()
                return int(status) if _NUMBER.fullmatch(status) else 1
            if len(self._buf) > keep:
                cut = len(self._buf) - keep
                sink(bytes(self._buf[:cut]))
                del self._buf[:cut]
            if not self._fill():
                raise ChannelClosed("the channel ended inside a frame")


def number(text: str) -> int:
    """An inode, size or offset: ASCII digits, at most 20 of them."""
    if not _NUMBER.fullmatch(text):
        raise ProtocolError(f"not a number: {text[:40]!r}")
    return int(text)


def file_name(text: str) -> str:
    """A file name of the folder read: one path component, not hidden (the script lists no
    hidden file), nothing that could climb out of the local copy's folder."""
    if (
        not text
        or text.startswith(".")
        or "/" in text
        or "\0" in text
        or len(os.fsencode(text)) > NAME_MAX
    ):
        raise ProtocolError(f"not a file name of the folder: {text[:80]!r}")
    return text


def fields(rest: str, numbers: int) -> tuple[list[int], str]:
    """``rest`` as ``numbers`` numbers and a name, space-separated (the name may hold spaces,
    leading ones too)."""
    parts = rest.split(" ", numbers)
    if len(parts) != numbers + 1:
        raise ProtocolError(f"a frame cut short: {rest[:80]!r}")
    return [number(p) for p in parts[:numbers]], file_name(parts[numbers])
