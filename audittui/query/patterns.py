"""The query language's globs and regexes, each matched in time linear in the text it reads.

Regexes are RE2's (google-re2), as the ClickHouse store's ``match()`` reads them: automata, never
backtracking, so no pattern can take time beyond a fixed multiple of the text's length. What
RE2 cannot run (backreferences, lookaround, atomic groups, possessive repeats, conditionals) is
refused when the query is parsed, in one line naming the construct (:func:`check`); so is
``\\Q…\\E``, and ``(?<name>…)`` (written ``(?P<name>…)``, which older servers' RE2 reads too).
The same check serves both backends: they accept the same patterns and mean the same by them.
A value is searched as its UTF-8 bytes (a lone surrogate, which a tolerant JSON reader lets
through, as the bytes the arenas hold); ``(?i)`` before a pattern makes it case-insensitive.

A glob (``*`` any run of characters, the whole value) is decided by its literal parts: the value
starts with the first, ends with the last and holds the others in order between them, each
looked for after the one before (with ``*`` the only wildcard, the leftmost occurrence of each
part is always the right choice), so no character is read more than a bounded number of times.
Globs on case-insensitive fields run as the RE2 pattern the ClickHouse store runs.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import re2

from ..ingest.packed import encode

# never_capture: a boolean search needs no groups, and without them RE2 stays in its DFA;
# log_errors: RE2 writes a refused pattern to stderr otherwise (over the app's screen).
_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False
# re2.compile(...).search() builds a generator and a match object per call (about 3 µs); the
# compiled RE2's own Match (about 1 µs) is what every search here calls, on bytes.
_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
_BOTH = re2._re2.RE2.Anchor.ANCHOR_BOTH


class PatternError(ValueError):
    """A regex the language refuses, in one line."""


# RE2's words for a pattern it refuses (after "invalid perl operator: " or "invalid escape
# sequence: ") → the construct, as a user would name it.
_OPERATORS = {
    "(?=": "lookahead (?=…)",
    "(?!": "lookahead (?!…)",
    "(?<=": "lookbehind (?<=…)",
    "(?<!": "lookbehind (?<!…)",
    "(?>": "atomic groups (?>…)",
    "(?(": "conditionals (?(…)…)",
    "(?#": "comments (?#…)",
    "(?x": "the verbose flag (?x)",
}
_ESCAPES = {
    "Z": "\\Z (write \\z for the end of the value)",
    "u": "\\u escapes (write \\x{…})",
    "U": "\\U escapes (write \\x{…})",
    "N": "\\N{…} character names",
    "G": "\\G",
    "K": "\\K",
}


def check(text: str, ci: bool = False) -> None:
    """Raise :class:`PatternError` unless ``text`` is a regex of the language (``ci``: as a
    case-insensitive field runs it)."""
    _refuse_extras(text)
    _program(text)
    if ci:  # (folding cases makes the program larger)
        _program("(?i)" + text)


@functools.lru_cache(maxsize=256)
def _program(source: str) -> Any:
    try:
        return re2.compile(encode(source), _OPTIONS)._regexp
    except re2.error as exc:
        raise PatternError(_explain(source, exc)) from None


def _refuse_extras(text: str) -> None:
    """What RE2 runs but the language refuses: ``\\Q…\\E`` (it would swallow what the backends
    put after a pattern) and ``(?<name>…)`` (ClickHouse 18.16's RE2 has only ``(?P<name>…)``)."""
    escapes, groups = _structure(text)
    if "Q" in escapes or "E" in escapes:
        raise PatternError(
            f"regex /{_one_line(text, 40)}/: \\Q…\\E quoting is not supported (escape each "
            "character)"
        )
    if any(g.startswith("<") and not g.startswith(("<=", "<!")) for g in groups):
        raise PatternError(f"regex /{_one_line(text, 40)}/: named groups are written (?P<name>…)")


def _explain(source: str, exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    what, _, arg = message.partition(": ")
    construct = None
    if what == "invalid perl operator":
        if arg.startswith("(?P") and "(?P=" in source:
            construct = "backreferences (?P=name)"
        else:
            construct = next((v for k, v in _OPERATORS.items() if arg.startswith(k)), None)
            if construct is None and arg.startswith("(?") and arg[2:3].isalpha():
                construct = f"the flag (?{arg[2]}) (RE2 has i, m, s and U)"
    elif what == "invalid escape sequence" and arg[:1] == "\\":
        if arg[1:2].isdigit() and arg[1:2] != "0":
            construct = "backreferences (\\1)"
        else:
            construct = _ESCAPES.get(arg[1:2])
    elif what == "bad repetition operator" and arg[-1:] == "+":
        construct = "possessive repeats (*+, ++, ?+)"
    shown = _one_line(source, 40)
    if construct:
        return f"regex /{shown}/: RE2 does not support {construct}"
    if message.startswith("pattern too large"):
        return f"regex /{shown}/ is too large"
    return f"bad regex /{shown}/: {_one_line(message)}"


def _one_line(text: str, width: int = 60) -> str:
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= width else text[: width - 1] + "…"


def _structure(text: str) -> tuple[set[str], list[str]]:
    """The characters after each escaping backslash, and what follows each ``(?``: enough to
    see a construct, conservatively (a ``(?`` inside a class counts too)."""
    escapes: set[str] = set()
    groups: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            escapes.add(text[i + 1 : i + 2])
            i += 2
            continue
        if ch == "(" and text.startswith("?", i + 1):
            groups.append(text[i + 2 : i + 12])
        i += 1
    return escapes, groups


class Regex:
    """A regex of the language, ready to search values (str) or an arena's bytes."""

    __slots__ = ("text", "source", "literals", "_match", "_scan", "_whole")

    def __init__(self, text: str, ci: bool = False) -> None:
        self.text = text
        self.source = ("(?i)" if ci else "") + text
        _refuse_extras(text)
        self._match = _program(self.source).Match
        self._scan: Callable[..., list[tuple[int, int]]] | None = None
        self._whole = _whole_value(text)
        # A regex that is only literal text and alternatives (watch=(true|1)) finds a value
        # exactly when the value holds one of a few strings: searched as such over an arena.
        self.literals = None if ci else _literal_set(text)

    def search(self, value: str) -> bool:
        data = encode(value)
        return self._match(_UNANCHORED, data, 0, len(data))[0][0] >= 0

    def search_bytes(self, data: bytes) -> bool:
        return self._match(_UNANCHORED, data, 0, len(data))[0][0] >= 0

    @property
    def per_value(self) -> bool:
        """Must each value be searched on its own? (``\\A``, ``\\z``, or ``^``/``$`` made to
        mean the text's ends: over many values at once they would see only the first's
        start and the last's end; or a pattern at RE2's size limit, too big to extend.)"""
        if not self._whole and self._scan is None:
            try:
                self._scan = _program(f"(?m)(?:{self.source})[^\n]*").Match
            except PatternError:
                self._whole = True
        return self._whole

    def scan(self, data: Any, pos: int, end: int) -> tuple[int, int]:
        """Over newline-separated values (``data[pos:end]``, ``end`` the end of ``data``): the
        start of the leftmost match at or after ``pos`` and the end of the line where it ends
        ((-1, -1): none). ``^`` and ``$`` hold at each line's ends, as at a value's. Only
        when not :attr:`per_value`."""
        assert self._scan is not None and not self._whole
        return self._scan(_UNANCHORED, data, pos, end)[0]


_SPECIAL = set("\\.^$|?*+()[]{}")


def _literal_set(text: str, limit: int = 16) -> list[str] | None:
    """The strings a regex made only of literal characters, escaped punctuation, groups and
    ``|`` matches (each non-empty, no newline, at most ``limit``); None for any other regex."""
    pos, n = 0, len(text)

    def alternatives() -> list[str] | None:
        nonlocal pos
        out: list[str] = []
        while True:
            seq = sequence()
            if seq is None or len(out) + len(seq) > limit:
                return None
            out += seq
            if pos < n and text[pos] == "|":
                pos += 1
                continue
            return out

    def sequence() -> list[str] | None:
        nonlocal pos
        out = [""]
        while pos < n and text[pos] not in "|)":
            ch = text[pos]
            piece: list[str] | None
            if ch == "(":
                if text.startswith("(?", pos) and not text.startswith("(?:", pos):
                    return None  # flags, named groups
                pos += 3 if text.startswith("(?:", pos) else 1
                piece = alternatives()
                if piece is None or text[pos : pos + 1] != ")":
                    return None
                pos += 1
            elif ch == "\\":
                nxt = text[pos + 1 : pos + 2]
                if not nxt.isascii() or nxt.isalnum() or nxt in ("", "_"):
                    return None  # \d, \x41, \pL, \b, \0...
                piece, pos = [nxt], pos + 2
            elif ch in _SPECIAL:
                return None
            else:
                piece, pos = [ch], pos + 1
            if pos < n and text[pos] in "?*+{":
                return None  # a repeat
            out = [a + b for a in out for b in piece]
            if len(out) > limit:
                return None
        return out

    found = alternatives()
    if found is None or pos != n or any(not s or "\n" in s for s in found):
        return None
    return list(dict.fromkeys(found))


def _whole_value(text: str) -> bool:
    escapes, groups = _structure(text)
    if escapes & {"A", "z"}:
        return True
    for g in groups:  # (?-m), (?i-m:…): ^ and $ back to the text's ends
        flags = g.split(")", 1)[0].split(":", 1)[0]
        if "-" in flags and "m" in flags.split("-", 1)[1]:
            return True
    return False


def re2_escape(text: str) -> str:
    """A literal for RE2: ASCII punctuation escaped, NUL written ``\\x00`` (ClickHouse wants no
    NUL in a pattern), other characters as they are (RE2 refuses ``\\`` before a letter)."""
    out = []
    for ch in text:
        if ch == "\0":
            out.append("\\x00")
        elif ch.isascii() and not (ch.isalnum() or ch == "_"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def glob_source(text: str, ci: bool = False) -> str:
    """A glob as an RE2 pattern: the whole value, ``*`` any run of characters (newlines too)."""
    body = ".*".join(re2_escape(p) for p in text.split("*"))
    return ("(?i)" if ci else "") + f"(?s)^(?:{body})$"


class Glob:
    """A glob of the language: ``*`` any run of characters, matching the whole value."""

    __slots__ = ("parts", "first", "last", "middle", "test")

    def __init__(self, text: str, ci: bool = False) -> None:
        self.parts = text.split("*")
        self.first, self.last = self.parts[0], self.parts[-1]
        self.middle = [p for p in self.parts[1:-1] if p]
        self.test: Callable[[str], bool] = self._fast() if not ci else self._ci(text)

    def _fast(self) -> Callable[[str], bool]:
        first, last, middle = self.first, self.last, self.middle
        if len(self.parts) == 1:
            return functools.partial(operator.eq, first)
        if not middle and not last:
            return operator.methodcaller("startswith", first)
        if not middle and not first:
            return operator.methodcaller("endswith", last)
        if len(middle) == 1 and not first and not last:
            return operator.methodcaller("__contains__", middle[0])
        return self._match

    def _ci(self, text: str) -> Callable[[str], bool]:
        rx = _program(glob_source(text, ci=True))

        def test(value: str) -> bool:
            data = encode(value)
            return rx.Match(_BOTH, data, 0, len(data))[0][0] >= 0

        return test

    def _match(self, value: str) -> bool:
        first, last = self.first, self.last
        if len(value) < len(first) + len(last):
            return False
        if not value.startswith(first) or not value.endswith(last):
            return False
        pos, end = len(first), len(value) - len(last)
        for part in self.middle:  # the leftmost place of each, after the one before
            pos = value.find(part, pos, end)
            if pos < 0:
                return False
            pos += len(part)
        return True


def overlaps_itself(literal: bytes) -> bool:
    """Can two occurrences of ``literal`` overlap (a proper prefix that is also a suffix)?
    Then a scan that resumes after each occurrence it finds can miss one. (KMP's failure
    function: linear in the literal.)"""
    fail = [0] * len(literal)
    k = 0
    for i in range(1, len(literal)):
        while k and literal[i] != literal[k]:
            k = fail[k - 1]
        if literal[i] == literal[k]:
            k += 1
        fail[i] = k
    return bool(literal) and fail[-1] > 0
