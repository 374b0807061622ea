"""JSON nested deeper than the decoders go: an event is an event on its top-level fields.

orjson stops at 1,024 levels and msgspec at Python's recursion limit, while Go's encoding/json
(which wrote the event) accepts 10,000: a merge patch or a custom resource nested past the limit
is logged as it was sent, and one such event must not hide who sent it, nor fail the batch it
arrived in. This module reads the structure of such text in one linear pass with an explicit
stack (no recursion, so no depth is too deep): where each top-level member of an object, or
element of an array, begins and ends and how deep it goes. :func:`opaque_deep` then stands a
short string in for every member nested too deep, so that the rest decodes as usual and the
body stays opaque, with the reason said in its place.

Only the structure is checked here (strings, brackets that pair up, separators); the members
kept are decoded, and so checked, by the usual decoders afterwards.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

# Members nested deeper than this are made opaque: well inside orjson's 1,024 levels and
# msgspec's recursion limit (about 1,000 Python frames, minus the caller's own stack).
DEPTH_LIMIT = 500

_WS = re.compile(rb"[ \t\r\n]*")
# A string's rest after its opening quote: unambiguous (a backslash always takes the next
# byte), so it runs in linear time however long the string.
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# What matters inside a nested value: a quote, or a run of opening or of closing brackets.
_SPECIAL = re.compile(rb'"|[\[{]+|[\]}]+')
_SCALAR = re.compile(rb"[^\s,\]}\[{\"]+")
_CLOSE_TO_OPEN = bytes.maketrans(b"]}", b"[{")


class Span(NamedTuple):
    """A value's place in the text, ``text[start:end]``, and how deeply it nests (a scalar 0,
    ``[]`` 1, ``[[]]`` 2)."""

    start: int
    end: int
    depth: int


class Opaque(NamedTuple):
    """An object's text with each member nested too deep replaced by a string that says so,
    and the names of those members, in order."""

    text: bytes
    members: tuple[str, ...]


def _skip(raw: bytes, pos: int) -> int:
    """Index of the first byte at or after ``pos`` that is not JSON whitespace."""
    m = _WS.match(raw, pos)
    return m.end() if m is not None else pos


def value_span(raw: bytes, pos: int) -> Span:
    """The JSON value starting at ``pos`` (no whitespace before it). Raises ValueError when
    its structure is broken (an unclosed string, brackets that do not pair, a cut)."""
    first = raw[pos : pos + 1]
    if first == b'"':
        m = _STRING_REST.match(raw, pos + 1)
        if m is None:
            raise ValueError(f"unclosed string at byte {pos}")
        return Span(pos, m.end(), 0)
    if first not in (b"[", b"{"):
        m = _SCALAR.match(raw, pos)
        if m is None:
            raise ValueError(f"no JSON value at byte {pos}")
        return Span(pos, m.end(), 0)
    stack = bytearray()
    deepest = 0
    p = pos
    while True:
        m = _SPECIAL.search(raw, p)
        if m is None:
            raise ValueError(f"the value at byte {pos} is not closed")
        run = m.group()
        p = m.end()
        if run == b'"':
            s = _STRING_REST.match(raw, p)
            if s is None:
                raise ValueError(f"unclosed string at byte {m.start()}")
            p = s.end()
        elif run[0] in b"[{":
            stack += run
            deepest = max(deepest, len(stack))
        else:
            # A run may close more than this value (``[[1]]}``): only what it needs counts.
            n = min(len(run), len(stack))
            if run[:n].translate(_CLOSE_TO_OPEN)[::-1] != stack[-n:]:
                raise ValueError(f"unpaired {chr(run[0])!r} at byte {m.start()}")
            del stack[-n:]
            if not stack:
                return Span(pos, m.start() + n, deepest)


def members(raw: bytes, pos: int = 0) -> list[tuple[str, Span]]:
    """The members of the object starting at ``pos`` (after any whitespace), in order, with
    their keys decoded. Raises ValueError when it is not an object or is broken."""
    p = _skip(raw, pos)
    if raw[p : p + 1] != b"{":
        raise ValueError("not a JSON object")
    out: list[tuple[str, Span]] = []
    p = _skip(raw, p + 1)
    if raw[p : p + 1] == b"}":
        return out
    while True:
        if raw[p : p + 1] != b'"':
            raise ValueError(f"a key must be a string (byte {p})")
        key = value_span(raw, p)
        name = orjson.loads(raw[key.start : key.end])
        p = _skip(raw, key.end)
        if raw[p : p + 1] != b":":
            raise ValueError(f"':' expected at byte {p}")
        p = _skip(raw, p + 1)
        value = value_span(raw, p)
        out.append((name, value))
        p = _skip(raw, value.end)
        sep = raw[p : p + 1]
        if sep == b"}":
            return out
        if sep != b",":
            raise ValueError(f"',' or '}}' expected at byte {p}")
        p = _skip(raw, p + 1)


def elements(raw: bytes, pos: int = 0) -> list[Span]:
    """The elements of the array starting at ``pos`` (after any whitespace), in order. Raises
    ValueError when it is not an array or is broken."""
    p = _skip(raw, pos)
    if raw[p : p + 1] != b"[":
        raise ValueError("not a JSON array")
    out: list[Span] = []
    p = _skip(raw, p + 1)
    if raw[p : p + 1] == b"]":
        return out
    while True:
        value = value_span(raw, p)
        out.append(value)
        p = _skip(raw, value.end)
        sep = raw[p : p + 1]
        if sep == b"]":
            return out
        if sep != b",":
            raise ValueError(f"',' or ']' expected at byte {p}")
        p = _skip(raw, p + 1)


def opaque_deep(raw: bytes, limit: int = DEPTH_LIMIT, levels: int = 0) -> Opaque | None:
    """``raw``, one JSON object, with every member nested more than ``limit`` levels deep
    replaced by a string saying so (``"(not read: nested over 500 levels deep, 1,234,567
    bytes)"``); None when ``raw`` is not one object with a sound structure, or when no member
    goes that deep (nothing to replace). With ``levels``, a member that is an object is not
    replaced whole but looked into, that many levels down, so that its shallow members stay
    (``user.extra.x`` nested deep leaves ``user.username``; a GKE entry keeps its
    ``protoPayload``); the names are then paths (``user.extra``). Linear in the length of
    ``raw`` (times ``levels`` at most)."""
    try:
        found = members(raw)
        tail = _skip(raw, _object_end(raw, found))
    except ValueError:
        return None
    if tail != len(raw):
        return None  # something after the object
    cuts = _cuts(raw, found, limit, levels, "")
    if not cuts:
        return None
    parts: list[bytes] = []
    at = 0
    for start, end, _ in cuts:
        marker = f"(not read: nested over {limit:,} levels deep, {end - start:,} bytes)"
        parts += (raw[at:start], orjson.dumps(marker))
        at = end
    parts.append(raw[at:])
    return Opaque(b"".join(parts), tuple(name for _, _, name in cuts))


def _cuts(
    raw: bytes, found: list[tuple[str, Span]], limit: int, levels: int, path: str
) -> list[tuple[int, int, str]]:
    """The spans to replace among an object's members ``found``, in order, with their paths."""
    out: list[tuple[int, int, str]] = []
    for name, span in found:
        if span.depth <= limit:
            continue
        if levels and raw[span.start : span.start + 1] == b"{":
            inner = members(raw, span.start)  # sound: value_span checked it
            out += _cuts(raw, inner, limit, levels - 1, f"{path}{name}.")
        else:
            out.append((span.start, span.end, path + name))
    return out


def _object_end(raw: bytes, found: list[tuple[str, Span]]) -> int:
    """Index after the closing brace of the object whose members are ``found``."""
    p = found[-1][1].end if found else raw.index(b"{")
    p = _skip(raw, p if found else p + 1)
    if raw[p : p + 1] != b"}":
        raise ValueError("'}' expected")
    return p + 1
