"""The words of the query language, for the parser (:mod:`audittui.query.syntax`) and for Tab
completion (:mod:`audittui.query.completion`): where a field name, a quoted value, a regex or a
bare word ends, and what a quoted value says; and how to write a value so that it reads back
as exactly itself (:func:`literal`), for completion, drill-downs and links. Both read a query
through these functions, so completion always sees the tokens the parser will."""

from __future__ import annotations

import re
import string

from ..ingest.unsafe import UNSAFE, inert

FIELD_RE = re.compile(r"([A-Za-z_][\w-]*):")  # a term's "field:" at the start of a word
WORD_STOP = " \t\n\r()"  # what ends a bare word (free text)
VALUE_STOP = " \t\n\r(),"  # what ends a bare value (a comma starts the next alternative)


def keyword_at(text: str, p: int, word: str) -> bool:
    """Does the keyword ``word`` (OR, NOT) stand at ``p``, followed by a space, a parenthesis
    or the end?"""
    end = p + len(word)
    return text.startswith(word, p) and (
        end == len(text) or text[end].isspace() or text[end] in "()"
    )


def quote_end(text: str, p: int) -> int | None:
    """Index after the quote that closes the one at ``p``; None while it is still open. A
    backslash escapes the character after it."""
    p += 1
    while p < len(text):
        ch = text[p]
        if ch == "\\":
            p += 2
            continue
        if ch == '"':
            return p + 1
        p += 1
    return None


class BadEscape(ValueError):
    """A ``\\x`` or ``\\u`` escape without its hex digits, at ``offset`` in the quoted text."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


_HEX_DIGITS = {"x": 2, "u": 4}  # \xHH, \uHHHH: the escapes inert() writes


def unescape(body: str, partial: bool = False) -> str:
    """The text of a quoted value without its quotes. ``\\xHH`` and ``\\uHHHH`` are the
    character of that code (how the app shows and writes unsafe characters, so a value copied
    from a table reads back exact); any other character after a backslash stands for itself
    (``\\\\``, ``\\"``). A ``\\x``/``\\u`` without its hex digits raises :class:`BadEscape`;
    with ``partial`` (a value still being typed) an escape cut short by the end is dropped
    instead, and a malformed one reads as its letter."""
    if "\\" not in body:
        return body
    out = []
    p, n = 0, len(body)
    while p < n:
        ch = body[p]
        if ch != "\\":
            out.append(ch)
            p += 1
            continue
        if p + 1 == n:  # a lone trailing backslash: only in a value still being typed
            break
        kind = body[p + 1]
        width = _HEX_DIGITS.get(kind)
        if width is None:
            out.append(kind)
            p += 2
            continue
        digits = body[p + 2 : p + 2 + width]
        good = all(c in string.hexdigits for c in digits)
        if good and len(digits) == width:
            out.append(chr(int(digits, 16)))
            p += 2 + width
        elif not partial:
            raise BadEscape(p, f"\\{kind} needs {width} hex digits (\\{kind}{'1b'.zfill(width)})")
        elif good:  # cut short by the end: still being typed
            break
        else:
            out.append(kind)
            p += 2
    return "".join(out)


# What a bare value cannot hold and still read back as itself: whitespace (str.isspace, as the
# parser), a separator ( ) , , a * (a glob), a quote or a backslash (for the reader's sake),
# and any unsafe character (a raw control or bidi character never enters the filter bar).
QUOTED_CHARS = '(),*"\\'
_NEEDS_QUOTES = re.compile(r'[\s(),*"\\]|' + UNSAFE.pattern)


def needs_quotes(value: str) -> bool:
    """Must ``value`` be quoted to read back as exactly itself? Also when empty (``""`` is the
    missing value) or starting with ``/`` (a regex) or ``-`` (it looks like a negation)."""
    return not value or value[0] in "/-" or _NEEDS_QUOTES.search(value) is not None


def quote(value: str) -> str:
    """``value`` as a quoted value that reads back exactly: backslashes and quotes escaped,
    every unsafe character as its visible escape (``\\x1b``, ``\\u202e``)."""
    return '"' + inert(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def literal(value: str) -> str:
    """``value`` as the parser reads it back as exactly itself: bare when it can be, quoted
    when it has to be (a quoted value is never a glob, a regex or a CIDR)."""
    return quote(value) if needs_quotes(value) else value


def bare_end(text: str, p: int, stop: str) -> int:
    """Index where a bare word or value starting at ``p`` ends (at a character of ``stop``
    or any space)."""
    while p < len(text) and text[p] not in stop and not text[p].isspace():
        p += 1
    return p


def regex_end(text: str, p: int) -> int | None:
    """The index after ``/re/`` starting at ``p`` when its closing slash ends the value (a
    space, a comma, ``)`` or the end follow), else None: a plain value such as the path in
    ``uri:/api/v1/pods``. ``\\/`` is a slash inside the regex."""
    pos = p + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text) and text[pos + 1] == "/":
            pos += 2
            continue
        if ch == "/":
            end = pos + 1
            if end == len(text) or text[end].isspace() or text[end] in ",)":
                return end
            return None
        pos += 1
    return None


def regex_body(text: str, p: int, end: int) -> str:
    """The pattern of the regex ``text[p:end]`` (``/…/``), each ``\\/`` read as ``/``."""
    return text[p + 1 : end - 1].replace("\\/", "/")
