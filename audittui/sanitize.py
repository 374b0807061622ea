"""Make text from a log safe to print: every control, bidi or invisible character becomes a
visible escape (``\\x1b``, ``\\u202e``), so log content can neither drive the terminal nor
disguise itself. Rich markup is a separate concern of the TUI (it never parses log text)."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates and marks, zero-width characters,
# line/paragraph separators, the byte-order mark.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every unsafe character replaced by a visible escape."""
    return _UNSAFE.sub(_escape, text)


_UNSAFE_IN_JSON = re.compile(
    "[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def inert_json(raw: bytes) -> bytes:
    """JSON text with every unsafe character written as a ``\\uXXXX`` escape: the same JSON
    value, but nothing that can reorder or hide text in a terminal. (Valid JSON holds no raw
    C0 controls, and these characters can only stand inside strings.)"""
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    text = raw.decode("utf-8", "replace")
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()
