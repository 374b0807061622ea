"""The words of the query language, for the parser (:mod:`audittui.index.query`) and for Tab
completion (:mod:`audittui.index.completion`): where a field name, a quoted value, a regex or a
bare word ends, and what a quoted value says. Both read a query through these functions, so
completion always sees the tokens the parser will."""

from __future__ import annotations

import re

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


def unescape(body: str) -> str:
    """The text of a quoted value without its quotes: each ``\\x`` is ``x``; a trailing lone
    backslash (an escape still being typed) is dropped."""
    out = []
    p = 0
    while p < len(body):
        ch = body[p]
        if ch == "\\":
            if p + 1 < len(body):
                out.append(body[p + 1])
            p += 2
            continue
        out.append(ch)
        p += 1
    return "".join(out)


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
