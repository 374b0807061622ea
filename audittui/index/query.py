"""The filter language: text → syntax tree → a boolean mask over the store's columns.

Terms separated by spaces are ANDed; ``OR`` binds tighter than the implicit AND (``verb:delete
user:alice OR user:bob`` is delete by alice or bob); ``-term`` or ``NOT term`` negates;
parentheses group. ``field:a,b`` is a OR b. String values match exactly, ``*`` makes a glob,
``/re/`` searches (RE2), ``""`` matches a missing or empty field. A bare word or "quoted phrase"
searches the event's raw JSON, case-insensitively. See README.md for every field.

Field terms are decided on the distinct values of a column (a few thousand, not a million)
and then gathered through the codes with numpy; only free text touches the raw bytes. Every
glob and regex matches in time linear in the text (:mod:`.patterns`).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ingest import audit_ids
from ..ingest.authz import parse_reason
from ..ingest.formats import MISSING_TIME, UUID_ID, parse_duration, to_micros
from .interrupt import checkpoint
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
from .patterns import Glob, PatternError, Regex
from .patterns import check as check_regex
from .strings import Strings

if TYPE_CHECKING:
    from .store import Events, Snapshot, Store, Table, TableValues


class QueryError(ValueError):
    """A query that cannot be parsed, with the position (0-based) of the problem."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"at {pos + 1}: {message}")
        self.message = message
        self.pos = pos


# Canonical field → store column; aliases map to canonical names.
STRING_FIELDS = {
    "user": "user",
    "group": "groups",
    "as": "impersonated",
    "verb": "verb",
    "resource": "resource",
    "sub": "subresource",
    "api": "api",
    "ns": "namespace",
    "name": "name",
    "stage": "stage",
    "level": "level",
    "decision": "decision",
    "ip": "ips",
    "ua": "user_agent",
    "id": "audit_id",
    "uri": "uri",
    "cred": "credential",
    "server": "server",
    "login": "login",
    "reason": "reason",
    # read from the authorizer's reason (see ingest.authz): the binding that allowed a request
    "binding": "reason",
    "role": "reason",
    "authorizer": "reason",
}
GRANT_FIELDS = ("binding", "role", "authorizer")
# cluster: the cluster a shipper named (a ClickHouse store); events read from files have none
OTHER_FIELDS = ("code", "dur", "after", "before", "since", "finding", "rule", "cluster")
ALIASES = {
    "u": "user",
    "g": "group",
    "v": "verb",
    "res": "resource",
    "r": "resource",
    "status": "code",
    "namespace": "ns",
}
FIELDS = tuple(STRING_FIELDS) + OTHER_FIELDS
CASE_INSENSITIVE = {"stage", "level", "decision", "authorizer"}
MULTI_VALUED = {"groups", "ips"}


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


# -- matching single values ----------------------------------------------------------------


def string_matcher(field: str, values: tuple[Value, ...]) -> Callable[[Any], bool]:
    """A predicate over one column value (str, tuple of str, or None) for a string field."""
    ci = field in CASE_INSENSITIVE
    tests: list[Callable[[str], bool]] = []
    match_missing = False
    for v in values:
        if v.kind == "empty":
            match_missing = True
        elif v.kind == "exact":
            tests.append(_equals(v.text.lower(), lower=True) if ci else _equals(v.text))
        elif v.kind == "glob":
            tests.append(Glob(v.text, ci).test)
        elif v.kind == "regex":
            tests.append(Regex(v.text, ci).search)
        elif v.kind == "cidr":
            net = ipaddress.ip_network(v.text, strict=False)
            tests.append(functools.partial(_in_network, net=net))

    def one(s: str) -> bool:
        return any(t(s) for t in tests)

    if STRING_FIELDS[field] in MULTI_VALUED:

        def match(value: Any) -> bool:
            if not value:
                return match_missing
            return any(one(s) for s in value)

    else:

        def match(value: Any) -> bool:
            if value is None or value == "":
                return match_missing
            return one(value)

    return match


def _equals(want: str, lower: bool = False) -> Callable[[str], bool]:
    if lower:
        return lambda s: s.lower() == want
    return lambda s: s == want


def _in_network(text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(text) in net
    except ValueError:
        return False


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


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


def display_api(value: Any) -> Any:
    """The core API group is stored as "" and written ``core`` in queries."""
    return "core" if value == "" else value


# -- evaluation over the store ----------------------------------------------------------------


def select(store: Store | Snapshot, text: str) -> np.ndarray:
    """Indices of matching events in event-time order."""
    node = parse(text)
    order = store.order()
    if node is None:
        return order
    mask = evaluate(node, store)
    return order[mask[order]]


def evaluate(node: Node, store: Events, within: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask over all events. ``within`` limits costly free-text work to candidates."""
    checkpoint()  # between terms: a superseded filter stops here (see interrupt.py)
    n = len(store)
    if isinstance(node, And):
        # Cheap column terms first; free text only over what survives them.
        ordered = sorted(node.nodes, key=has_text)
        mask = np.ones(n, dtype=bool) if within is None else within.copy()
        for child in ordered:
            mask &= evaluate(child, store, mask)
            if not mask.any():
                break
        return mask
    if isinstance(node, Or):
        mask = np.zeros(n, dtype=bool)
        for child in node.nodes:
            mask |= evaluate(child, store, within)
        return mask
    if isinstance(node, Not):
        # Outside `within` the result is "don't care": the enclosing And masks it away.
        return ~evaluate(node.node, store, within)
    if isinstance(node, Text):
        from .textsearch import search

        return search(store, node.text, within)
    return _term_mask(node, store)


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


LUT_CACHE = 64  # lookup tables kept per column
EACH_BLOCK = 1 << 16  # values tested between two checkpoints


def table_lut(
    table: Table, key: Any, compute: Callable[[TableValues, int], np.ndarray]
) -> np.ndarray:
    """Which values of a string table match a term (``key``), remembered: tables only grow,
    so a later call decides only the values added since. ``compute(values, start)`` decides
    ``values[start:]``. Without this, a live filter or rule on URIs or names would test every
    distinct URI again for each batch of new events."""
    values = table.values
    n = len(values)
    cached = table.luts.get(key)
    if cached is not None and len(cached) >= n:
        return cached
    start = 0 if cached is None else len(cached)
    # A frozen prefix: other threads may grow the table meanwhile.
    part = compute(values.frozen(n) if isinstance(values, Strings) else values[:n], start)
    lut = part if cached is None else np.concatenate([cached, part])
    if len(table.luts) >= LUT_CACHE:
        table.luts = {}  # (assignment: readers in other threads keep the old dict)
    table.luts[key] = lut
    return lut


def each(test: Callable[[Any], bool], values: Sequence[Any]) -> np.ndarray:
    """``test`` of every value, a checkpoint between blocks (a column of millions of distinct
    values, as a hostile log can hold, takes seconds; a superseded filter stops here)."""
    out = np.empty(len(values), dtype=bool)
    for k in range(0, len(values), EACH_BLOCK):
        checkpoint()
        part = values[k : k + EACH_BLOCK]
        out[k : k + len(part)] = np.fromiter(map(test, part), dtype=bool, count=len(part))
    return out


def _lut(store: Events, column: str, predicate: Callable[[Any], bool], key: Any) -> np.ndarray:
    def compute(values: TableValues, start: int) -> np.ndarray:
        return each(predicate, values[start:])

    return table_lut(store.tables[column], key, compute)[store.column(column)]


def _term_mask(term: Term, store: Events) -> np.ndarray:
    field = term.field
    if field == "code":
        codes = store.column("code")
        return _number_mask(codes, term.values, codes != 0)
    if field == "dur":
        lat = store.column("latency")
        return _number_mask(lat, term.values, lat >= 0)
    if field in ("after", "before", "since"):
        times = store.column("time")
        return _compare_mask(times, term.values) & (times != MISSING_TIME)
    if field == "resource":
        return _resource_mask(term, store)
    if field in ("finding", "rule"):
        return _derived_mask(term, store)
    if field == "cluster":  # no event read from files has one: only "" matches
        return np.full(len(store), any(v.kind == "empty" for v in term.values), dtype=bool)
    if field == "id":
        return _audit_id_mask(term, store)
    key = (field, term.values)
    if field in GRANT_FIELDS:  # the name, or the name with its kind (a summary's rows)
        matches = string_matcher(field, term.values)

        def granted(reason: str | None) -> bool:
            grant = parse_reason(reason)
            label = grant.label(field)  # None when there is none: not a second "empty" value
            return matches(getattr(grant, field)) or (label is not None and matches(label))

        return _lut(store, "reason", granted, key)
    column = STRING_FIELDS[field]
    if field == "api":
        predicate = string_matcher(field, term.values)
        return _lut(store, column, lambda v: predicate(display_api(v)), key)
    if column in MULTI_VALUED:
        return _lut(store, column, string_matcher(field, term.values), key)

    def compute(values: TableValues, start: int) -> np.ndarray:
        return _single_lut(values, field, term.values, start)

    return table_lut(store.tables[column], key, compute)[store.column(column)]


def _audit_id_mask(term: Term, store: Events) -> np.ndarray:
    """auditIDs: UUIDs compared as 128-bit numbers, other spellings through their table."""
    codes = store.column("audit_id")
    uuid = (store.column("flags") & UUID_ID) != 0

    def compute(values: TableValues, start: int) -> np.ndarray:
        return _single_lut(values, "id", term.values, start)

    mask = table_lut(store.tables["audit_id"], ("id", term.values), compute)[codes] & ~uuid
    hi, lo = store.column("audit_hi"), store.column("audit_lo")
    patterns = []
    for v in term.values:
        if v.kind == "exact":
            h, low, ok = audit_ids.parse([v.text])
            if ok[0]:
                mask |= uuid & (hi == h[0]) & (lo == low[0])
        elif v.kind != "empty":
            patterns.append(v)
    if patterns and uuid.any():  # a glob or regex: the text of every UUID, made at once
        where = np.flatnonzero(uuid)
        text = Strings.of_width(audit_ids.format_many(hi[where], lo[where]))
        mask[where] |= _arena_lut(text, tuple(patterns), 0)[1:]
    return mask


def _derived_mask(term: Term, store: Events) -> np.ndarray:
    """A field an analysis computes (finding:RULE, rule:N of a loaded policy): no events until
    that analysis is attached to the store."""
    mask = np.zeros(len(store), dtype=bool)
    provider = store.derived.get(term.field)
    if provider is not None:
        start = getattr(store, "start", 0)  # a store.Window counts from its start
        rows = provider(string_matcher("name", term.values)) - start
        mask[rows[(rows >= 0) & (rows < len(mask))]] = True
    return mask


def _single_lut(
    values: TableValues, field: str, alternatives: tuple[Value, ...], start: int = 0
) -> np.ndarray:
    """Which table values from ``start`` on (str, or None at code 0) match: ``string_matcher``
    at C speed, for tables of hundreds of thousands of auditIDs or URIs."""
    if isinstance(values, Strings) and field not in CASE_INSENSITIVE:
        return _arena_lut(values, alternatives, start)
    ci = field in CASE_INSENSITIVE
    skip = 1 if start == 0 else 0  # only code 0 is None
    present = values[start + skip :]
    lowered = [v.lower() for v in present] if ci else present
    lut = np.zeros(len(values) - start, dtype=bool)
    hits = lut[skip:]
    for v in alternatives:
        if v.kind == "empty":
            lut[0] = bool(skip)
            continue
        if v.kind == "exact":
            # list.index scans in C: a few ms over a million values.
            want, k = (v.text.lower() if ci else v.text), -1
            while True:
                try:
                    k = lowered.index(want, k + 1)
                except ValueError:
                    break
                hits[k] = True
            continue
        test = Glob(v.text, ci).test if v.kind == "glob" else Regex(v.text, ci).search
        hits |= each(test, present)
    return lut


def _arena_lut(values: Strings, alternatives: tuple[Value, ...], start: int) -> np.ndarray:
    """``_single_lut`` over an arena: exact values by hash, globs and regexes over the raw
    bytes (:meth:`Strings.glob`, :meth:`Strings.scan`)."""
    lut = np.zeros(len(values) - start, dtype=bool)
    for v in alternatives:
        if v.kind == "empty":
            lut[0] = start == 0
        elif v.kind == "exact":
            code = values.code_of(v.text)
            if code >= start and code:
                lut[code - start] = True
        elif v.kind == "glob":
            lut[values.glob(Glob(v.text), start) - start] = True
        else:
            lut |= values.scan(Regex(v.text), start)
    return lut


def _number_mask(col: np.ndarray, values: tuple[Value, ...], present: np.ndarray) -> np.ndarray:
    """Comparisons hold only where the number is present; an empty alternative selects the
    events without one."""
    mask = _compare_mask(col, tuple(v for v in values if v.kind != "empty")) & present
    if any(v.kind == "empty" for v in values):
        mask |= ~present
    return mask


def _compare_mask(col: np.ndarray, values: tuple[Value, ...]) -> np.ndarray:
    mask = np.zeros(len(col), dtype=bool)
    for v in values:
        if v.op == "range":
            mask |= (col >= v.number) & (col <= v.high)
        else:
            mask |= _OPS[v.op](col, v.number)
    return mask


def _resource_mask(term: Term, store: Events) -> np.ndarray:
    mask = np.zeros(len(store), dtype=bool)
    for v in term.values:
        if v.kind == "regex":
            # A regex sees "resource/subresource" (or just "resource"): decide per pair of
            # codes (both tables are small), then gather.
            rx = Regex(v.text)
            res_values = store.tables["resource"].values
            sub_values = store.tables["subresource"].values
            pair = np.zeros((len(res_values), len(sub_values)), dtype=bool)
            for r, res in enumerate(res_values):
                if res is not None:
                    for k, sub in enumerate(sub_values):
                        pair[r, k] = rx.search(_join(res, sub))
            mask |= pair[store.column("resource"), store.column("subresource")]
            continue
        res_value, sub_value = split_resource(v)
        res_match = string_matcher("resource", (res_value,))
        part = _lut(store, "resource", res_match, ("resource", res_value))
        if sub_value is not None:
            sub_match = string_matcher("sub", (sub_value,))
            part &= _lut(store, "subresource", sub_match, ("sub", sub_value))
        mask |= part
    return mask


def _join(resource: str, sub: str | None) -> str:
    return f"{resource}/{sub}" if sub else resource
