"""The query language's syntax: text → syntax tree, with the position of every error.

Terms separated by spaces are ANDed; ``OR`` binds tighter than the implicit AND (``verb:delete
user:alice OR user:bob`` is delete by alice or bob); ``-term`` or ``NOT term`` negates;
parentheses group. ``field:a,b`` is a OR b. String values match exactly, ``*`` makes a glob,
``/re/`` searches (RE2), ``""`` matches a missing or empty field. A bare word or "quoted phrase"
searches the event's raw JSON, case-insensitively. See README.md for every field.

The tree is what both compilers read: the numpy evaluator (:mod:`audittui.index.evaluate`) and
SQL (:mod:`audittui.clickhouse.sql`). Values are parsed here (codes, durations, times, ages,
networks), and regexes checked (:mod:`.patterns`), so both refuse the same queries alike.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import time as _time
from dataclasses import dataclass
from datetime import datetime

from ..ingest.formats import parse_duration, to_micros
from .fields import ALIASES, CASE_INSENSITIVE, FIELDS, STRING_FIELDS
from .lexer import (
    FIELD_RE,
    VALUE_STOP,
    WORD_STOP,
    BadEscape,
    bare_end,
    keyword_at,
    quote_end,
    regex_body,
    regex_end,
    unescape,
)
from .patterns import PatternError
from .patterns import check as check_regex


class QueryError(ValueError):
    """A query that cannot be parsed, with the position (0-based) of the problem."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"at {pos + 1}: {message}")
        self.message = message
        self.pos = pos


# -- syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One alternative of a field term.

    kind: "exact", "glob", "regex", "empty", or "cmp" (op + number, for code/dur/time).
    """

    kind: str
    text: str
    op: str = ""
    number: int = 0
    high: int = 0  # for code ranges like 4xx: number <= code <= high


@dataclass(frozen=True)
class Term:
    field: str  # canonical
    values: tuple[Value, ...]
    pos: int


@dataclass(frozen=True)
class Text:
    text: str
    pos: int


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class And:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    nodes: tuple[Node, ...]


Node = Term | Text | Not | And | Or


# -- tokenizer and parser ------------------------------------------------------------------

DUR_UNITS = ("us", "µs", "ms", "s", "m", "h", "d")
SINCE_UNITS = ("s", "m", "h", "d", "w")


class _Parser:
    def __init__(self, text: str, now: float | None) -> None:
        self.text = text
        self.pos = 0
        self.now = _time.time() if now is None else now

    # low level
    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _at_end(self) -> bool:
        self._skip_space()
        return self.pos >= len(self.text)

    def _peek_keyword(self, word: str) -> bool:
        self._skip_space()
        return keyword_at(self.text, self.pos, word)

    # grammar
    def parse(self) -> Node | None:
        nodes = self._sequence(top=True)
        if not nodes:
            return None
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def _sequence(self, top: bool) -> list[Node]:
        nodes: list[Node] = []
        while not self._at_end():
            if self.text[self.pos] == ")":
                if top:
                    raise QueryError("unmatched ')'", self.pos)
                break
            nodes.append(self._or())
        return nodes

    def _or(self) -> Node:
        nodes = [self._unary()]
        while self._peek_keyword("OR"):
            or_pos = self.pos
            self.pos += 2
            if self._at_end() or self.text[self.pos] == ")":
                raise QueryError("OR needs a term after it", or_pos)
            nodes.append(self._unary())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def _unary(self) -> Node:
        self._skip_space()
        start = self.pos
        if self._peek_keyword("NOT"):
            self.pos += 3
            if self._at_end() or self.text[self.pos] == ")" or self._peek_keyword("OR"):
                raise QueryError("NOT needs a term after it", start)
            return Not(self._unary())
        if self._peek_keyword("OR"):
            raise QueryError("OR needs a term before it", start)
        if self.text[self.pos] == "-" and self.pos + 1 < len(self.text):
            nxt = self.text[self.pos + 1]
            if not nxt.isspace() and nxt != ")":
                self.pos += 1
                return Not(self._unary())
        return self._primary()

    def _primary(self) -> Node:
        start = self.pos
        ch = self.text[self.pos]
        if ch == "(":
            self.pos += 1
            nodes = self._sequence(top=False)
            if self._at_end() or self.text[self.pos] != ")":
                raise QueryError("'(' is never closed", start)
            self.pos += 1
            if not nodes:
                raise QueryError("empty parentheses", start)
            return nodes[0] if len(nodes) == 1 else And(tuple(nodes))
        if ch == '"':
            phrase = self._quoted()
            if not phrase:
                raise QueryError("empty search phrase", start)
            return Text(phrase, start)
        m = FIELD_RE.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return self._term(m.group(1), start)
        return Text(self._bare(WORD_STOP), start)

    def _quoted(self) -> str:
        start = self.pos
        end = quote_end(self.text, start)
        if end is None:
            raise QueryError("unterminated quote", start)
        self.pos = end
        try:
            return unescape(self.text[start + 1 : end - 1])
        except BadEscape as exc:
            raise QueryError(str(exc), start + 1 + exc.offset) from None

    def _bare(self, stop: str) -> str:
        start = self.pos
        self.pos = bare_end(self.text, start, stop)
        return self.text[start : self.pos]

    def _try_regex(self) -> str | None:
        """``/re/`` ending at a value boundary; None (position unchanged) when the value is not
        a regex, such as the path in ``uri:/api/v1/pods``."""
        end = regex_end(self.text, self.pos)
        if end is None:
            return None
        start, self.pos = self.pos, end
        return regex_body(self.text, start, end)

    def _term(self, name: str, start: int) -> Term:
        field = ALIASES.get(name, name)
        if field not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS) + list(ALIASES), n=1)
            hint = f" (did you mean '{ALIASES.get(close[0], close[0])}'?)" if close else ""
            raise QueryError(f"unknown field '{name}'{hint}", start)
        values: list[Value] = []
        while True:
            vpos = self.pos
            if self.pos >= len(self.text) or self.text[self.pos].isspace():
                raise QueryError(f"'{name}:' needs a value", start if not values else vpos)
            ch = self.text[self.pos]
            if ch == '"':
                raw = self._quoted()
                values.append(self._value(field, raw, vpos, quoted=True))
            elif (
                ch == "/" and field in STRING_FIELDS and (pattern := self._try_regex()) is not None
            ):
                try:
                    check_regex(pattern, field in CASE_INSENSITIVE)
                except PatternError as exc:
                    raise QueryError(str(exc), vpos) from None
                values.append(Value("regex", pattern))
            else:
                raw = self._bare(VALUE_STOP)
                if not raw:
                    raise QueryError(f"'{name}:' needs a value", vpos)
                values.append(self._value(field, raw, vpos, quoted=False))
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                continue
            break
        return Term(field, tuple(values), start)

    def _value(self, field: str, raw: str, pos: int, quoted: bool) -> Value:
        if raw == "" and field in ("code", "dur"):
            return Value("empty", "")  # code:"" = no status yet; dur:"" = latency unknown
        if field == "code":
            return _code_value(raw, pos)
        if field == "dur":
            return _duration_value(raw, pos)
        if field in ("after", "before"):
            return Value("cmp", raw, ">=" if field == "after" else "<", _time_value(raw, pos))
        if field == "since":
            age = parse_duration(raw, SINCE_UNITS)
            if age is None:
                raise QueryError(f"since: wants an age like 15m, 2h or 3d, not '{raw}'", pos)
            if age > 2**62:
                raise QueryError(f"since: '{raw}' is too long ago", pos)
            age = int(age)
            return Value("cmp", raw, ">=", int(self.now * 1_000_000) - age)
        if raw == "":
            return Value("empty", "")
        if field == "ip" and "/" in raw and "*" not in raw and not quoted:
            try:
                ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise QueryError(f"'{raw}' is not an IP network", pos) from None
            return Value("cidr", raw)
        if "*" in raw and not quoted:  # a quoted value is literal: user:"a*b", ip:"a/b"
            return Value("glob", raw)
        return Value("exact", raw)


def _code_value(raw: str, pos: int) -> Value:
    m = re.fullmatch(r"([1-5])xx", raw.lower())
    if m:
        base = int(m.group(1)) * 100
        return Value("cmp", raw, "range", base, base + 99)
    m = re.fullmatch(r"(>=|<=|>|<|=)?(\d{1,4})", raw)
    if not m:
        raise QueryError(f"code: wants 403, >=400, <300 or 4xx, not '{raw}'", pos)
    return Value("cmp", raw, m.group(1) or "=", int(m.group(2)))


def _duration_value(raw: str, pos: int) -> Value:
    m = re.fullmatch(r"(>=|<=|>|<)(.+)", raw)
    if not m:
        raise QueryError(
            f"dur: wants a comparison such as dur:>1s or dur:<=250ms, not '{raw}'", pos
        )
    micros = parse_duration(m.group(2), DUR_UNITS)
    if micros is None:
        raise QueryError(f"dur: '{m.group(2)}' is not a duration (use us, ms, s, m, h)", pos)
    if micros > 2**62:
        raise QueryError(f"dur: '{m.group(2)}' is too long", pos)
    return Value("cmp", raw, m.group(1), int(round(micros)))


def _time_value(raw: str, pos: int) -> int:
    text = raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(
            f"'{raw}' is not an ISO-8601 time (e.g. 2024-11-15T10:00:00Z)", pos
        ) from None
    return to_micros(dt)


def parse(text: str, now: float | None = None) -> Node | None:
    """Parse a query; None for an empty one. Raises :class:`QueryError`."""
    return _Parser(text, now).parse()


def split_resource(v: Value) -> tuple[Value, Value | None]:
    """``res:pods/exec`` → (pods, exec); ``res:pods`` → (pods, None: any subresource)."""
    if v.kind not in ("exact", "glob") or "/" not in v.text:
        return v, None
    res, sub = v.text.split("/", 1)
    return _part(res, v.kind), _part(sub, v.kind)


def _part(text: str, kind: str) -> Value:
    if text == "":
        return Value("empty", "")
    return Value("glob" if kind == "glob" and "*" in text else "exact", text)


# -- reading a tree -----------------------------------------------------------------------


def fields_of(node: Node | None) -> set[str]:
    """The field names a query uses."""
    if isinstance(node, Term):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.node)
    if isinstance(node, And | Or):
        return set().union(*(fields_of(n) for n in node.nodes))
    return set()


def has_text(node: Node) -> bool:
    if isinstance(node, Text):
        return True
    if isinstance(node, Not):
        return has_text(node.node)
    if isinstance(node, And | Or):
        return any(has_text(c) for c in node.nodes)
    return False
