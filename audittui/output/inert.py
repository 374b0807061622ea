"""Make text from a log safe to print: every control, bidi or invisible character becomes a
visible escape (``\\x1b``, ``\\u202e``), so log content can neither drive the terminal nor
disguise itself (:func:`inert`, defined with the unsafe set in :mod:`audittui.ingest.unsafe`).
Rich markup is a separate concern of the TUI (it never parses log text). Also: fitting text
to a column of terminal cells, for the CLI's tables and the app's list."""

from __future__ import annotations

import re

from rich.cells import cell_len, set_cell_size

from ..ingest.unsafe import inert as inert  # the one definition of the unsafe set

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


def fit(text: str, width: int, middle: bool = False) -> str:
    """Cut ``text`` to ``width`` cells with an ellipsis; ``middle`` keeps both ends."""
    if not text.isascii():
        if cell_len(text) <= width:
            return text
        return set_cell_size(text, max(width - 1, 0)) + "…" if width else ""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    if middle:
        head = (width - 1) // 2
        return text[:head] + "…" + text[len(text) - (width - 1 - head) :]
    return text[: width - 1] + "…"


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to exactly ``width`` cells (wide characters count double)."""
    if text.isascii():
        return text.rjust(width) if right else text.ljust(width)
    gap = width - cell_len(text)
    return (
        (" " * gap + text if right else text + " " * gap)
        if gap >= 0
        else set_cell_size(text, width)
    )
