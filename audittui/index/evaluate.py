"""The numpy evaluator of the query language: a syntax tree (:mod:`audittui.query.syntax`) →
a boolean mask over the store's columns.

Field terms are decided on the distinct values of a column (a few thousand, not a million)
and then gathered through the codes with numpy; only free text touches the raw bytes. Every
glob and regex matches in time linear in the text (:mod:`audittui.query.patterns`).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ingest import audit_ids
from ..ingest.authz import parse_reason
from ..ingest.formats import MISSING_TIME, UUID_ID
from ..query.fields import CASE_INSENSITIVE, GRANT_FIELDS, MULTI_VALUED, STRING_FIELDS, display_api
from ..query.patterns import Glob, Regex
from ..query.syntax import And, Node, Not, Or, Term, Text, Value, has_text, parse, split_resource
from .interrupt import checkpoint
from .strings import Strings

if TYPE_CHECKING:
    from .store import Events, Snapshot, Store, Table, TableValues


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
