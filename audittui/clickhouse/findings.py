"""The findings of a rule pack over a ClickHouse store, computed by the server where SQL can.

The answer is the in-memory engine's (:class:`audittui.findings.engine.Findings`) on the same
events: the same fired rules, counts, first and last times, users, auditIDs and blind rules.
Each rule's query (its column part, its stages, its allow-lists) is compiled to SQL
(:mod:`.sql`); then, by what the rule needs:

- a rule decided on columns alone: its count is one ``countIf`` among all rules' in one
  scan; the rules that fired have their events grouped by rule, auditID and user by the
  server in one more scan for all of them, and summed up here;
- a threshold: the groups that cannot reach the count over the whole store are dropped by a
  ``GROUP BY … HAVING`` on the server (one statement for all threshold rules); only the time,
  group and distinct value of the events of the groups that can are read, and the windows
  are found by the engine's own :func:`~audittui.findings.windows.threshold_hits`;
- first seen: each (key, value) pair's first time (and its first event's user and auditID) is
  an aggregate of the server; the pairs first seen more than the learning time after their key
  are picked from those rows (one statement for all first-seen rules);
- a rule that must look inside events (a JMESPath ``where``, free text, a body, the roles behind
  the authorizer's reason, an image allow-list): only its candidates (its column part, at a
  level that logs the body it reads) are fetched into a private in-memory store
  (:class:`.fetched.Fetched`) and the engine itself decides there.

Copies: a byte-identical line is one row of the table (its key ends with a digest of its
bytes), and reads collapse resent rows (FINAL while the table holds copies), so every count
here is of events once, as the engine counts them. Events without a time (MISSING_TIME) share
one threshold window of their own and have no place in a first-seen history, as in the engine.

Blindness is judged over every event of the scope, as the engine judges it over the whole log:
the counts it needs (candidates, bodies logged, a credential, an RBAC reason, a role body, the
span) are one more scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..findings.engine import (
    BODY_LEVELS,
    NO_CREDENTIAL,
    NO_REASON,
    NO_ROLE_BODY,
    Findings,
    _resources,
    _split_text,
)
from ..findings.result import FindingsResult, Fired
from ..findings.rules import Rule
from ..findings.windows import threshold_hits
from ..index.evaluate import select
from ..ingest.formats import MISSING_TIME, format_duration
from ..ingest.schema import COMPLETE, REQUEST, REQUEST_RESPONSE
from ..query.fields import MULTI_VALUED, STRING_FIELDS
from ..query.syntax import And, Node, Not, Or, Term, Value, parse
from .distinct import Values, compile_distinct
from .fetched import Fetched
from .reads import Reader
from .sql import PRESENT_TIME, SqlError, Where, compile_node

# Characters of rules' conditions per scan: an 18.16 server takes at most 50,000 syntax
# elements (and 256 KiB) in one statement; the terms decided on values (.distinct) are short,
# a rule's grant or regex terms are not.
SQL_PER_SCAN = 60_000
_ROLE_BODIES = "api:rbac.authorization.k8s.io resource:roles,clusterroles"


@dataclass
class _Plan:
    """One rule as the server runs it."""

    rule: Rule
    where: Where  # its candidates: column part, stages, allow-lists (a superset if inside)
    inside: bool  # decided by the engine over its fetched candidates
    body: str | None  # the body it reads: "request" / "response"
    body_where: Where | None  # its candidates logged at a level that carries that body


def run(
    reader: Reader, rules: Sequence[Rule], where: Where | str = "", touching: str = ""
) -> FindingsResult:
    """The enabled ``rules`` over the events ``where`` selects (a query's text or compiled;
    "" every event). ``touching``: keep only the findings with an event among that query's
    matches (the backends' ``findings(rules, query)``: the rules still run over every event,
    as their windows and first-seen state need them all)."""
    scope = reader.where(where) if isinstance(where, str) else where
    touch = compile_node(parse(touching), reader.modern, "q_") if touching else None
    values = Values(reader)
    plans = [_plan(reader, values, r, k) for k, r in enumerate(x for x in rules if x.enabled)]
    events = reader.count(scope)
    counts = _counts(reader, scope, plans)
    fired: list[Fired] = []
    errors: dict[str, str] = {}
    decided = [p for p in plans if not p.inside and counts[p.rule.id]]
    plain = [p for p in decided if not p.rule.threshold and not p.rule.first_seen]
    found = _plain(reader, scope, plain, touch)
    found.update(_thresholds(reader, scope, [p for p in decided if p.rule.threshold], touch))
    seen = [p for p in decided if p.rule.first_seen and not p.rule.threshold]
    found.update(_first_seens(reader, scope, seen, touch))
    fired += [found[p.rule.id] for p in decided if p.rule.id in found]
    inside = [p for p in plans if p.inside and counts[p.rule.id]]
    if inside:
        # each rule's candidates at the level its body needs, if it reads one (as selected)
        bound = [counts[p.rule.id + ("/body" if p.body_where else "")] for p in inside]
        fired += _looked_inside(reader, scope, inside, bound, errors, touching)
    fired.sort(key=lambda f: (f.rule.rank, -f.count, f.rule.id))
    return FindingsResult(fired, _blind(reader, scope, plans, counts), errors, events)


# -- plans ---------------------------------------------------------------------------------


def _plan(reader: Reader, values: Values, rule: Rule, k: int) -> _Plan:
    columns, texts = _split_text(rule.node)
    allowed = _allowed(rule)
    parts = [n for n in (columns, Not(allowed) if allowed is not None else None) if n]
    node: Node | None = parts[0] if len(parts) == 1 else And(tuple(parts)) if parts else None
    body = next((b for b in rule.needs if b in BODY_LEVELS), None)
    inside = bool(
        texts or rule.where_expr is not None or rule.allow.images or body or rule.role_grants
    )
    stages = _stages(rule, f"s{k}_")
    try:
        query = compile_distinct(node, values, modern=reader.modern, prefix=f"r{k}_")
    except SqlError:  # a pattern RE2 cannot run: the engine decides over the rule's stages
        query, inside = Where("1"), True
    sel = Where(f"(({query.sql}) AND ({stages.sql}))", {**query.params, **stages.params})
    body_where = None
    if body:
        levels = _quoted(BODY_LEVELS[body])
        # no level (trimmed events): the event itself says whether it carries the body
        body_where = Where(f"({sel.sql} AND (level IN ({levels}) OR level IS NULL))", sel.params)
    return _Plan(rule, sel, inside, body, body_where)


def _allowed(rule: Rule) -> Node | None:
    """The events of the rule's allowed users or namespaces (globs), as the engine's."""
    terms: list[Node] = []
    for field, patterns in (("user", rule.allow.users), ("ns", rule.allow.namespaces)):
        if patterns:
            values = tuple(Value("glob" if "*" in p else "exact", p) for p in patterns)
            terms.append(Term(field, values, 0))
    return None if not terms else terms[0] if len(terms) == 1 else Or(tuple(terms))


def _stages(rule: Rule, prefix: str) -> Where:
    """The rule's stages; an event without one (old or cloud shapes) counts as complete."""
    params = {f"{prefix}{n}": s for n, s in enumerate(rule.stages)}
    parts = [f"stage = {{{name}:String}}" for name in params]
    if COMPLETE in rule.stages:
        parts.append("stage = ''")
    return Where(" OR ".join(parts) or "1", params)


def _quoted(words: Sequence[str]) -> str:
    return ", ".join("'" + w.replace("\\", "\\\\").replace("'", "\\'") + "'" for w in words)


# -- one scan: every rule's candidates, and the facts blindness is judged by ---------------


def _counts(reader: Reader, scope: Where, plans: list[_Plan]) -> dict[str, int]:
    """Each rule's candidates (and, as ``id + "/body"``, those logged with the body it reads),
    counted in as few scans as the statement's size allows."""
    tests: list[tuple[str, Where]] = []
    for p in plans:
        for name, w in ((p.rule.id, p.where), (p.rule.id + "/body", p.body_where)):
            if w is not None:
                tests.append((name, w))
    out: dict[str, int] = {}
    for chunk in _chunks(tests):
        columns = [f"countIf({w.sql}) AS c{n}" for n, (_, w) in enumerate(chunk)]
        source, params = reader._from(scope)
        for _, w in chunk:
            params.update(w.params)
        row = reader.client.one(f"SELECT {', '.join(columns)} {source}", params)
        out.update({name: int(row[f"c{n}"]) for n, (name, _) in enumerate(chunk)})
    return out


def _chunks(tests: list[tuple[str, Where]]) -> list[list[tuple[str, Where]]]:
    """The tests in runs whose SQL stays under :data:`SQL_PER_SCAN` characters (one test
    longer than that runs alone)."""
    chunks: list[list[tuple[str, Where]]] = []
    size = SQL_PER_SCAN
    for test in tests:
        if size + len(test[1].sql) > SQL_PER_SCAN:
            chunks.append([])
            size = 0
        chunks[-1].append(test)
        size += len(test[1].sql)
    return chunks


# -- rules decided on columns --------------------------------------------------------------


def _plain(
    reader: Reader, scope: Where, plans: list[_Plan], touch: Where | None
) -> dict[str, Fired]:
    """Rules without a threshold or first-seen (their events are their hits), one scan for as
    many rules as a statement holds: each event is tagged by the rules it matches
    (``arrayJoin``) and grouped by rule, auditID and user; a rule's count, time span, users
    and auditIDs are summed up here from its groups."""
    out: dict[str, Fired] = {}
    rules = {p.rule.id: p.rule for p in plans}
    for chunk in _chunks([(p.rule.id, p.where) for p in plans]):
        source, params = reader._from(scope)
        for _, w in chunk:
            params.update(w.params)
        tags = ", ".join(f"if({w.sql}, {n + 1}, 0)" for n, (_, w) in enumerate(chunk))
        groups: dict[int, list[dict[str, Any]]] = {}
        for r in reader.client.rows(
            f"SELECT arrayJoin(arrayFilter(x -> x != 0, [{tags}])) AS r_, audit_id AS a_, "
            "ifNull(user, '') AS u_, isNull(user) AS no_user_, count() AS n_, "
            f"min(offset) AS first_offset_, countIf({_touched(touch, params)}) AS touched_, "
            f"countIf({PRESENT_TIME}) AS dated_, minIf(time, {PRESENT_TIME}) AS first_, "
            f"maxIf(time, {PRESENT_TIME}) AS last_, min(time) AS t_, "
            f"argMin(offset, time) AS o_ {source} GROUP BY r_, a_, u_, no_user_",
            params,
        ):
            groups.setdefault(int(r["r_"]), []).append(r)
        for n, (rule_id, _) in enumerate(chunk, 1):
            f = _summed(rules[rule_id], groups.get(n, []))
            if f is not None:
                out[rule_id] = f
    return out


def _summed(rule: Rule, groups: list[dict[str, Any]]) -> Fired | None:
    """A plain rule's finding from its events' groups by (auditID, user): one count per
    request, users by their events (ties by the least offset), auditIDs by their first time
    (ties by that event's offset)."""
    bare = sum(int(g["n_"]) for g in groups if not g["a_"])
    first_of: dict[str, tuple[int, int]] = {}  # auditID → (its first time, that event's offset)
    users: dict[str, list[int]] = {}  # user → [events, least offset]
    for g in groups:
        if g["a_"]:
            at = (int(g["t_"]), int(g["o_"]))
            first_of[str(g["a_"])] = min(at, first_of.get(str(g["a_"]), at))
        if not int(g["no_user_"]):
            seen = users.setdefault(str(g["u_"]), [0, int(g["first_offset_"])])
            seen[0] += int(g["n_"])
            seen[1] = min(seen[1], int(g["first_offset_"]))
    count = bare + len(first_of)
    if not count or not sum(int(g["touched_"]) for g in groups):
        return None
    dated = [g for g in groups if int(g["dated_"])]
    first = min(int(g["first_"]) for g in dated) if dated else MISSING_TIME
    last = max(int(g["last_"]) for g in dated) if dated else MISSING_TIME
    ranked = sorted(users, key=lambda u: (-users[u][0], users[u][1]))
    ids = sorted(first_of, key=lambda a: first_of[a])
    return Fired(rule, count, first, last, ranked, ids)


def _encoded(field: str) -> str:
    """A field's value as one string, equal exactly when the values are (a missing value
    apart from an empty one, a list by its items): a group's or a distinct value's identity."""
    column = STRING_FIELDS[field]
    if column in MULTI_VALUED:
        items = f"arrayMap(x -> concat(toString(length(x)), ':', x), `{column}`)"
        return f"concat('A', arrayStringConcat({items}, ','))"
    if column in ("stage", "audit_id"):
        return f"concat('S', `{column}`)"
    return f"if(isNull(`{column}`), 'N', concat('S', assumeNotNull(`{column}`)))"


def _group_key(fields: Sequence[str]) -> str:
    """The fields' values as one string, equal exactly when every one is (each prefixed by
    its length, so no two tuples join into the same text)."""
    if not fields:
        return "''"
    parts = [f"concat(toString(length({e})), ':', {e})" for e in map(_encoded, fields)]
    return parts[0] if len(parts) == 1 else f"concat({', '.join(parts)})"


_COMPACT = "time, user, audit_id, source, offset"


def _touched(touch: Where | None, params: dict[str, Any]) -> str:
    """Whether an event is among the ``touching`` query's matches (1 when there is none)."""
    if touch is None:
        return "1"
    params.update(touch.params)
    return touch.sql


def _thresholds(
    reader: Reader, scope: Where, plans: list[_Plan], touch: Where | None
) -> dict[str, Fired]:
    """The events of a window where one group reaches the count, for every threshold rule in
    two scans: groups that cannot reach their rule's count over the whole scope are dropped by
    the server (each event tagged by the rules it matches, its group and distinct value
    computed by its rule); the rest's windows are found here."""
    out: dict[str, Fired] = {}
    for chunk in _chunks([(p.rule.id, p.where) for p in plans]):
        rules = [next(p.rule for p in plans if p.rule.id == rule_id) for rule_id, _ in chunk]
        source, params = reader._from(scope)
        for _, w in chunk:
            params.update(w.params)
        tags = ", ".join(f"if({w.sql}, {n + 1}, 0)" for n, (_, w) in enumerate(chunk))
        groups, distincts, sizes = [], [], []
        for n, rule in enumerate(rules, 1):
            t = rule.threshold
            assert t is not None
            groups.append(f"r_ = {n}, {_group_key(t.group_by)}")
            distincts.append(f"r_ = {n}, {_encoded(t.distinct) if t.distinct else chr(39) * 2}")
            sizes.append(f"r_ = {n}, {'uniqExact(d_)' if t.distinct else 'count()'}")
        counts = ", ".join(str(int(r.threshold.count)) for r in rules if r.threshold)
        tagged = (
            f"SELECT arrayJoin(arrayFilter(x -> x != 0, [{tags}])) AS r_, "
            f"multiIf({', '.join(groups)}, '') AS g_, multiIf({', '.join(distincts)}, '') AS d_, "
            f"{_COMPACT}, {_touched(touch, params)} AS q_ {source}"
        )
        rows = list(
            reader.client.rows(
                f"SELECT * FROM ({tagged}) WHERE (r_, g_) IN (SELECT r_, g_ FROM ({tagged}) "
                f"GROUP BY r_, g_ HAVING multiIf({', '.join(sizes)}, 0) >= [{counts}][r_])",
                params,
            )
        )
        by_rule: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            by_rule.setdefault(int(r["r_"]), []).append(r)
        for n, rule in enumerate(rules, 1):
            f = _windows(rule, by_rule.get(n, []))
            if f is not None:
                out[rule.id] = f
    return out


def _windows(rule: Rule, rows: list[dict[str, Any]]) -> Fired | None:
    """A threshold rule's finding from the events of its groups that may reach the count."""
    t = rule.threshold
    assert t is not None
    if not rows:
        return None
    times = np.array([int(r["time"]) for r in rows], dtype=np.int64)
    groups = np.unique([r["g_"] for r in rows], return_inverse=True)[1].reshape(-1)
    values = (
        np.unique([r["d_"] for r in rows], return_inverse=True)[1].reshape(-1).astype(np.int64)
        if t.distinct
        else None
    )
    hit = np.zeros(len(rows), dtype=bool)
    untimed = times == MISSING_TIME
    for part in (np.flatnonzero(~untimed), np.flatnonzero(untimed)):
        if not len(part):
            continue
        # undated events share one instant of their own (their marker would overflow)
        at = times[part] if not untimed[part[0]] else np.zeros(len(part), dtype=np.int64)
        vals = None if values is None else values[part]
        hit[part[threshold_hits(at, groups[part], t.window, t.count, vals)]] = True
    return _fired(rule, [r for r, h in zip(rows, hit.tolist(), strict=True) if h])


def _first_seens(
    reader: Reader, scope: Where, plans: list[_Plan], touch: Where | None
) -> dict[str, Fired]:
    """For every first-seen rule, in one scan: the first event of each (key, value) pair first
    seen more than the learning time after its key. The pairs' first times are the server's
    aggregate, grouped by rule (each event tagged by the rules it matches), key and value."""
    out: dict[str, Fired] = {}
    for chunk in _chunks([(p.rule.id, p.where) for p in plans]):
        rules = [next(p.rule for p in plans if p.rule.id == rule_id) for rule_id, _ in chunk]
        source, params = reader._from(scope)
        source = f"{source} AND {PRESENT_TIME}"  # no time: no place in a history
        for _, w in chunk:
            params.update(w.params)
        tags = ", ".join(f"if({w.sql}, {n + 1}, 0)" for n, (_, w) in enumerate(chunk))
        keys, values = [], []
        for n, rule in enumerate(rules, 1):
            f = rule.first_seen
            assert f is not None
            keys.append(f"r_ = {n}, {_group_key(f.key)}")
            values.append(f"r_ = {n}, {_encoded(f.value)}")
        pairs: dict[int, list[dict[str, Any]]] = {}
        for r in reader.client.rows(
            # aliases apart from the columns' names (an alias shadows its column in WHERE)
            f"SELECT arrayJoin(arrayFilter(x -> x != 0, [{tags}])) AS r_, "
            f"multiIf({', '.join(keys)}, '') AS k_, multiIf({', '.join(values)}, '') AS v_, "
            "min(time) AS t_, argMin(ifNull(user, ''), time) AS u_, "
            "argMin(isNull(user), time) AS no_user_, argMin(audit_id, time) AS a_, "
            "argMin(source, time) AS s_, argMin(offset, time) AS o_, "
            f"argMin({_touched(touch, params)}, time) AS q_ {source} GROUP BY r_, k_, v_",
            params,
        ):
            pairs.setdefault(int(r["r_"]), []).append(
                {
                    "k": r["k_"],
                    "time": int(r["t_"]),
                    "user": None if int(r["no_user_"]) else r["u_"],
                    "audit_id": r["a_"],
                    "source": r["s_"],
                    "offset": int(r["o_"]),
                    "q_": r["q_"],
                }
            )
        for n, rule in enumerate(rules, 1):
            hit = _first_seen(rule, pairs.get(n, []))
            if hit is not None:
                out[rule.id] = hit
    return out


def _first_seen(rule: Rule, pairs: list[dict[str, Any]]) -> Fired | None:
    """A first-seen rule's finding from its pairs' first events."""
    f = rule.first_seen
    assert f is not None
    key_first: dict[str, int] = {}
    for r in pairs:
        key_first[r["k"]] = min(r["time"], key_first.get(r["k"], r["time"]))
    hits = [r for r in pairs if r["time"] - key_first[r["k"]] > f.learn]
    return _fired(rule, hits) if hits else None


def _fired(rule: Rule, rows: list[dict[str, Any]]) -> Fired | None:
    """A finding from its events (time, user, audit_id, source, offset each), as the engine
    reports one: in time order (ties in reading order), one count per request."""
    if not rows or not any(int(r.get("q_", 1)) for r in rows):
        return None  # none, or none among the touching query's matches
    rows = sorted(rows, key=lambda r: (int(r["time"]), str(r["source"]), int(r["offset"])))
    known = [int(r["time"]) for r in rows if int(r["time"]) != MISSING_TIME]
    ids: dict[str, None] = {}
    bare = 0
    for r in rows:
        if r["audit_id"]:
            ids.setdefault(str(r["audit_id"]), None)
        else:
            bare += 1
    users = Counter(str(r["user"]) for r in rows if r["user"] is not None)
    order = {u: n for n, u in enumerate(users)}  # first appearance among ties
    ranked = sorted(users, key=lambda u: (-users[u], order[u]))
    first = known[0] if known else MISSING_TIME
    last = known[-1] if known else MISSING_TIME
    return Fired(rule, len(ids) + bare, first, last, ranked, list(ids))


# -- rules that look inside events ---------------------------------------------------------


def _looked_inside(
    reader: Reader,
    scope: Where,
    plans: list[_Plan],
    counts: list[int],
    errors: dict[str, str],
    touching: str,
) -> list[Fired]:
    """The engine over these rules' candidates only (and the role bodies a role_grants rule
    reads), fetched into a private store."""
    parts, params = [], dict(scope.params)
    for p in plans:
        w = p.body_where or p.where
        parts.append(w.sql)
        params.update(w.params)
    if any(p.rule.role_grants is not None for p in plans):
        bodies = compile_node(_parse(_ROLE_BODIES), reader.modern, "b_")
        parts.append(bodies.sql)
        params.update(bodies.params)
    selection = Where(f"({scope.sql}) AND ({' OR '.join(parts)})", params)
    engine = Findings([p.rule for p in plans])
    # the rules' candidates counted (the role bodies not): their sum bounds the rows fetched
    at_most = None if any(p.rule.role_grants is not None for p in plans) else sum(counts)
    with Fetched(reader, selection, at_most) as store:
        if not len(store):
            return []
        engine.update(store)
        found = engine.results(store)
        errors.update(engine.errors)
        if touching:
            chosen = select(store, touching)
            found = [f for f in found if np.isin(f.rows, chosen).any()]
        return [
            Fired(f.rule, f.count, f.first, f.last, list(f.users), list(f.audit_ids)) for f in found
        ]


def _parse(text: str) -> Node:
    node = parse(text)
    assert node is not None
    return node


# -- blindness -----------------------------------------------------------------------------


def _blind(
    reader: Reader, scope: Where, plans: list[_Plan], counts: dict[str, int]
) -> list[tuple[Rule, str]]:
    """Rules that cannot fire on these events, and why: the engine's reasons, judged over
    every event of the scope."""
    facts = _facts(reader, scope, plans)
    if not facts["events"]:
        return []
    out: list[tuple[Rule, str]] = []
    for k, p in enumerate(plans):
        rule, why = p.rule, None
        if p.body:
            why = _body_blind(p, k, counts, facts)
        if why is None and "credential" in rule.needs and not facts["credential"]:
            why = NO_CREDENTIAL
        if why is None and "reason" in rule.needs and not facts["rbac"]:
            why = NO_REASON
        if why is None and rule.role_grants and not facts["roles"]:
            why = NO_ROLE_BODY
        if why is None and rule.first_seen and facts["dated"]:
            span = int(facts["last"]) - int(facts["first"])
            if span <= rule.first_seen.learn:
                why = (
                    f"the log spans {format_duration(span)}; the rule first learns "
                    f"{format_duration(rule.first_seen.learn)} of each key's history"
                )
        if why:
            out.append((rule, why))
    return out


def _body_blind(p: _Plan, k: int, counts: dict[str, int], facts: dict[str, Any]) -> str | None:
    body = p.body
    assert body is not None
    need = " or ".join(BODY_LEVELS[body])
    candidates = counts[p.rule.id]
    if candidates:
        if counts[p.rule.id + "/body"]:
            return None
        return (
            f"the {candidates} events it looks at were logged without a {body} body; "
            f"it needs level {need}"
        )
    if not int(facts[f"scope{k}"]):
        return None  # nothing of the kind happened: nothing to judge the policy by
    if int(facts[f"logged{k}"]):
        return None
    resources = _resources(p.rule.node)
    what = ", ".join(sorted(resources)) if resources else "any resource"
    return f"no {body} bodies are logged for {what} here (level {need} needed)"


def _facts(reader: Reader, scope: Where, plans: list[_Plan]) -> dict[str, Any]:
    """What blindness is judged by, in one scan of the scope."""
    params: dict[str, Any] = {}
    rbac = compile_node(_parse("authorizer:RBAC"), reader.modern, "a_")
    roles = compile_node(_parse(_ROLE_BODIES), reader.modern, "b_")
    params.update(rbac.params)
    params.update(roles.params)
    levels = _quoted((REQUEST, REQUEST_RESPONSE))
    columns = [
        "count() AS events",
        f"countIf({PRESENT_TIME}) AS dated",
        f"minIf(time, {PRESENT_TIME}) AS first",
        f"maxIf(time, {PRESENT_TIME}) AS last",
        "countIf(credential IS NOT NULL) AS credential",
        f"countIf({rbac.sql}) AS rbac",
        f"countIf({roles.sql} AND level IN ({levels})) AS roles",
    ]
    for k, p in enumerate(plans):
        if not p.body:
            continue
        resources = sorted(_resources(p.rule.node))
        in_scope = "1"
        if resources:
            node = Term("resource", tuple(Value("exact", r) for r in resources), 0)
            w = compile_node(node, reader.modern, f"f{k}_")
            in_scope = w.sql
            params.update(w.params)
        body_levels = _quoted(BODY_LEVELS[p.body])
        columns.append(f"countIf({in_scope}) AS scope{k}")
        columns.append(f"countIf({in_scope} AND level IN ({body_levels})) AS logged{k}")
    source, base = reader._from(scope)
    return dict(reader.client.one(f"SELECT {', '.join(columns)} {source}", {**base, **params}))
