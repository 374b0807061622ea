"""The characters of log text that must never reach a terminal raw, and their visible escapes.

Control characters (C0, C1, DEL), bidi embeddings, overrides, isolates and marks, zero-width
characters, line and paragraph separators, the byte-order mark and lone surrogates can drive a
terminal or disguise text. Wherever such a character is shown, typed into a widget or saved, it
is written as ``\\x1b`` or ``\\u202e`` instead. This is the one definition, at the bottom of the
layers, because the query language writes values with these escapes (and reads them back, see
:mod:`audittui.query.lexer`) and the output boundary (:mod:`audittui.output.inert`) prints them.
"""

from __future__ import annotations

import re

# (lone surrogates: JSON's "\ud800" escape; not text, and no terminal encoding can write it)
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
    "\ud800-\udfff]"
)


def escape_char(char: str) -> str:
    """The visible escape of one unsafe character: ``\\x1b`` below U+0100, else ``\\u202e``."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every unsafe character replaced by its visible escape."""
    return UNSAFE.sub(lambda m: escape_char(m.group()), text)
