"""The remote script's framing, read from the SSH channel: header lines, and file bytes that
run up to ``\\n<token>`` (a random token per connection, so no log line can end a frame).

The remote side sends each file from an offset to its end with ``tail``/``cat``, so a frame's
length is not known in advance; the reader streams its bytes to a sink, holding back only as
many bytes as the end marker could span.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import IO

READ = 1 << 20  # bytes per read from the channel


def new_token() -> str:
    return "AUDITTUI-" + secrets.token_hex(16)


class ChannelClosed(Exception):
    """The channel ended (the connection dropped or the script exited) mid-frame."""


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
        """The next header line (without its newline); None at the end of the channel."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line.decode("utf-8", "surrogateescape")
            if not self._fill():
                if self._buf:
                    raise ChannelClosed("the channel ended inside a header line")
                return None

    def data(self, sink: Callable[[bytes], None]) -> int:
        """Stream one frame's bytes to ``sink``; returns the status the host sent after them
        (0: the file was read to its end). Raises ChannelClosed if the channel ends first."""
        marker, keep = self._marker, len(self._marker) - 1
        start = 0
        while True:
            at = self._buf.find(marker, start)
            if at >= 0:
                if at:
                    sink(bytes(self._buf[:at]))
                del self._buf[: at + len(marker)]
                status = self.line()
                if status is None:
                    raise ChannelClosed("the channel ended inside a frame's trailer")
                try:
                    return int(status.strip() or "1")
                except ValueError:
                    return 1
            if len(self._buf) > keep:
                cut = len(self._buf) - keep
                sink(bytes(self._buf[:cut]))
                del self._buf[:cut]
            start = 0
            if not self._fill():
                raise ChannelClosed("the channel ended inside a frame")
