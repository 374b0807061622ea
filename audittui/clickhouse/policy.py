"""The policy lab over a ClickHouse store: ``policy check``, ``simulate`` and ``suggest`` answered
as :mod:`audittui.policy` answers them over the same events in memory.

A policy reads few attributes of an event (user, groups, verb, API group, resource, subresource,
namespace, the request URI for names and non-resource paths) and compares its decision with the
level and stage logged. So the server groups the events by the distinct tuples of those values
(with their counts and byte sizes summed); each distinct tuple is decided once, here, by the
checker's own code (:mod:`audittui.policy.over_store`) over a tiny store of one synthetic event
per tuple, and the answers are summed by weight. Only what is listed event by event is read
from the server event by event: the auditIDs of the disagreeing events, and a sample of the
events whose bodies a lower level would remove (to measure their share, as the file path
does).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..findings.engine import _split_text
from ..findings.rules import Rule as FindingRule
from ..index.evaluate import string_matcher
from ..index.loader import load
from ..ingest import scratch
from ..ingest.formats import NON_STANDARD, parse_json
from ..ingest.schema import METADATA
from ..policy.model import LEVELS, Policy
from ..policy.over_store import NO_RULE, decide, levels, logged_levels, omitted
from ..policy.simulate import BODIES, SAMPLE, RuleEffect, Simulation
from ..policy.suggest import NODE_PREFIX, READS, Suggestion
from ..query.syntax import Term
from .findings import _encoded, _group_key
from .reads import Reader
from .sql import ALL, SqlError, Where, compile_node

RULES_PER_SCAN = 12  # rule selections counted per scan (18.16's 50,000 syntax elements)
_FIELDS = ("user", "group", "verb", "api", "resource", "sub", "ns", "level", "stage")
_COLUMNS = (
    "user",
    "groups",
    "verb",
    "api",
    "resource",
    "subresource",
    "namespace",
    "level",
    "stage",
)
_APPROXIMATE = f"(uri IS NULL OR bitAnd(flags, {NON_STANDARD}) != 0)"


@dataclass
class Disagreement:
    """Events a check puts in one group (as policy.check.Disagreement, with the events' count,
    auditIDs (None: no auditID) and the first one's request URI in place of store rows)."""

    rule: int | None
    expected: str
    logged: str
    why: str
    count: int
    audit_ids: list[str | None]
    example: str


@dataclass
class _Tuples:
    """The distinct tuples of a scan: their values, decided over a synthetic store."""

    keys: list[str]
    rows: list[dict[str, Any]]  # per tuple: the columns, n_ (events), b_ (bytes), …
    decided: np.ndarray
    expected: np.ndarray  # the policy's level (index in LEVELS)
    logged: np.ndarray  # the level logged (-1 unknown)
    omitted: np.ndarray  # logged at a stage its rule omits
    events: np.ndarray
    size: np.ndarray


def _needs_uri(policy: Policy) -> bool:
    return any(
        r.non_resource_urls or any(g.resource_names for g in r.resources) for r in policy.rules
    )


def _key(policy: Policy) -> str:
    fields = (*_FIELDS, "uri") if _needs_uri(policy) else _FIELDS
    return f"concat({_group_key(fields)}, '|', toString({_APPROXIMATE}))"


def _tuples(reader: Reader, policy: Policy, scope: Where) -> _Tuples:
    key = _key(policy)
    source, params = reader._from(scope)
    uri = "any(uri)" if _needs_uri(policy) else "CAST(NULL AS Nullable(String))"
    columns = ", ".join(f"any({c}) AS {c}_" for c in _COLUMNS)
    rows = [
        # aliases apart from the columns' names (an alias shadows its column in GROUP BY)
        {**r, **{c: r[f"{c}_"] for c in (*_COLUMNS, "uri")}}
        for r in reader.client.rows(
            f"SELECT {key} AS k_, {columns}, {uri} AS uri_, any({_APPROXIMATE}) AS approx_, "
            "count() AS n_, sum(length(raw)) AS b_, min(source) AS src_, min(offset) AS off_ "
            f"{source} GROUP BY k_ ORDER BY src_, off_",
            params,
        )
    ]
    with _Synthetic(rows) as store:
        n = len(rows)
        decided = decide(policy, store) if n else np.empty(0, dtype=np.int16)
        return _Tuples(
            [r["k_"] for r in rows],
            rows,
            decided,
            levels(policy, decided),
            logged_levels(store, n) if n else np.empty(0, dtype=np.int8),
            omitted(policy, store, decided) if n else np.empty(0, dtype=bool),
            np.array([int(r["n_"]) for r in rows], dtype=np.int64),
            np.array([int(r["b_"]) for r in rows], dtype=np.int64),
        )


class _Synthetic:
    """One synthetic event per tuple, read into a private store (row k is tuple k): what the
    policy reads of an event, nothing else."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.folder = scratch.make("policy")
        path = os.path.join(self.folder, "tuples.log")
        with open(path, "wb") as fh:
            for r in rows:
                fh.write(orjson.dumps(_event(r)) + b"\n")
        self.store = load(path) if rows else None

    def __enter__(self) -> Any:
        return self.store

    def __exit__(self, *_: object) -> None:
        if self.store is not None:
            self.store.close()
        scratch.remove(self.folder)


def _event(r: dict[str, Any]) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if r["user"] is not None:
        user["username"] = r["user"]
    if r["groups"]:
        user["groups"] = r["groups"]
    ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "user": user}
    for name, value in (("verb", r["verb"]), ("level", r["level"]), ("stage", r["stage"])):
        if value:
            ev[name] = value
    if r["uri"] is not None:
        ev["requestURI"] = r["uri"]
    if r["api"] is not None:  # a resource request: objectRef holds the server's request info
        ref = {"apiGroup": r["api"]}
        for name in ("resource", "subresource", "namespace"):
            if r[name] is not None:
                ref[name] = r[name]
        ev["objectRef"] = ref
    return ev


# -- rule:N --------------------------------------------------------------------------------


def rule_field(reader: Reader, policy: Policy) -> Callable[[Term], tuple[str, list[str]]]:
    """``rule:N`` over the store (:data:`audittui.clickhouse.sql.Derived`): the events whose
    tuple ``policy`` decides by rule N (``rule:none``: by no rule), as the tuples' keys: what
    :class:`audittui.policy.over_store.RuleField` selects in memory. The tuples are those of
    the events stored when first asked."""
    names = ["none", *map(str, range(len(policy.rules)))]
    found: list[_Tuples] = []

    def keys(term: Term) -> tuple[str, list[str]]:
        if not found:
            found.append(_tuples(reader, policy, ALL))
        t = found[0]
        match = string_matcher("name", term.values)
        wanted = np.array([match(name) for name in names], dtype=bool)
        chosen = np.flatnonzero(wanted[t.decided.astype(np.int64) + 1])
        return _key(policy), [t.keys[i] for i in chosen.tolist()]

    return keys


# -- check ---------------------------------------------------------------------------------


def check(
    reader: Reader, policy: Policy, where: Where | str = ""
) -> tuple[list[Disagreement], int, int]:
    """policy.check.check's answer over the store's events (``where``: some of them): the
    disagreeing groups (largest first), the events checked, those too incomplete to check."""
    scope = reader.where(where) if isinstance(where, str) else where
    t = _tuples(reader, policy, scope)
    approx = np.array([bool(int(r["approx_"])) for r in t.rows], dtype=bool)
    got, expected = t.logged, t.expected
    checked = (got >= 0) & ~approx
    groups: dict[tuple, Disagreement] = {}
    member: dict[str, tuple] = {}  # tuple key → its group

    def add(mask: np.ndarray, why: str | None) -> None:
        for i in np.flatnonzero(mask & checked).tolist():
            k = int(t.decided[i])
            stage = t.rows[i]["stage"]
            reason = why or f"stage {stage or None} is omitted"
            key = (k, int(expected[i]), int(got[i]), reason)
            if key not in groups:
                groups[key] = Disagreement(
                    None if k == NO_RULE else k,
                    LEVELS[expected[i]],
                    LEVELS[got[i]],
                    reason,
                    0,
                    [],
                    "",
                )
            groups[key].count += int(t.events[i])
            member[t.keys[i]] = key

    add(expected == 0, "not logged by this policy")
    other_level = (expected != 0) & (expected != got)
    add(other_level, "logged at another level")
    add(t.omitted & (expected != 0) & ~other_level, None)
    if member:
        source, params = reader._from(scope)
        params["keys_"] = list(member)
        for r in reader.client.rows(
            f"SELECT {_key(policy)} AS k_, audit_id, uri {source} AND {_key(policy)} IN "
            "{keys_:Array(String)} ORDER BY source, offset",
            params,
        ):
            g = groups[member[r["k_"]]]
            if not g.audit_ids:
                g.example = r["uri"] or ""
            g.audit_ids.append(r["audit_id"] or None)
    out = sorted(groups.values(), key=lambda d: -d.count)
    return out, int(t.events[checked].sum()), int(t.events[approx & (got >= 0)].sum())


# -- simulate ------------------------------------------------------------------------------


def simulate(
    reader: Reader, policy: Policy, rules: Sequence[FindingRule] | None, where: Where | str = ""
) -> Simulation:
    """policy.simulate.simulate's answer over the store's events (``where``: some of them)."""
    scope = reader.where(where) if isinstance(where, str) else where
    t = _tuples(reader, policy, scope)
    new, logged = t.expected, t.logged
    dropped = (new == 0) | t.omitted
    new_bytes = np.where(dropped, 0, t.size)
    lower = ~dropped & (logged > new) & (logged > 1)
    effects = []
    for k in [*range(len(policy.rules)), NO_RULE]:
        mine = t.decided == k
        if k == NO_RULE and not mine.any():
            continue
        down = np.flatnonzero(mine & lower)
        if len(down):
            keys = [t.keys[i] for i in down.tolist()]
            keep = _kept_share(reader, scope, _key(policy), keys, int(new[down[0]]), SAMPLE)
            # each event's bytes scaled and truncated, as the file path does event by event
            source, params = reader._from(scope)
            params.update({"keys_": keys, "keep_": keep})
            row = reader.client.one(
                f"SELECT sum(toInt64(length(raw) * {{keep_:Float64}})) AS b {source} AND "
                f"{_key(policy)} IN {{keys_:Array(String)}}",
                params,
            )
            new_bytes[down] = 0
            new_bytes[down[0]] = int(row["b"])
        effects.append(
            RuleEffect(
                None if k == NO_RULE else k,
                "None" if k == NO_RULE else policy.rules[k].level,
                int(t.events[mine].sum()),
                int(t.events[mine & dropped].sum()),
                int(t.size[mine].sum()),
                int(new_bytes[mine].sum()),
                int(t.events[mine & ~dropped & (new > logged) & (new > 1)].sum()),
            )
        )
    sim = Simulation(effects, int(t.size.sum()), int(new_bytes.sum()))
    if rules:
        sim.blind = _blinded(reader, scope, policy, t, list(rules), dropped)
    return sim


def _kept_share(
    reader: Reader, scope: Where, key: str, keys: list[str], level: int, limit: int
) -> float:
    """The share of their bytes that (up to ``limit`` of) the events of these tuples keep at
    ``level``, bodies removed. The file path samples at random past ``limit`` events; here the
    sample is the events' first ``limit`` by digest (as arbitrary, and repeatable)."""
    source, params = reader._from(scope)
    params.update({"keys_": keys, "limit_": limit})
    before = after = 0
    for r in reader.client.rows(
        f"SELECT raw {source} AND {key} IN {{keys_:Array(String)}} "
        "ORDER BY cityHash64(toString(digest)) LIMIT {limit_:UInt64}",
        params,
    ):
        raw = str(r["raw"]).encode("utf-8", "surrogatepass")
        event = parse_json(raw)
        for name in BODIES.get(level, ("requestObject", "responseObject")):
            event.pop(name, None)
        before += len(raw)
        after += len(orjson.dumps(event))
    return after / before if before else 1.0


def _selection(rule: FindingRule, reader: Reader, prefix: str) -> Where | None:
    """findings.engine.selection_mask in SQL: the rule's query, its free text left out when
    the rest decides on columns. None: it selects nothing to judge (no query)."""
    columns, texts = _split_text(rule.node)
    node = columns if columns is not None or not texts else rule.node
    try:
        return compile_node(node, reader.modern, prefix)
    except SqlError:
        return Where("1")


def _selected(
    reader: Reader, scope: Where, key: str, rules: list[FindingRule]
) -> dict[str, dict[str, int]]:
    """Per rule id, per tuple key: the events of the tuple its selection holds."""
    out: dict[str, dict[str, int]] = {r.id: {} for r in rules}
    for start in range(0, len(rules), RULES_PER_SCAN):
        chunk = rules[start : start + RULES_PER_SCAN]
        source, params = reader._from(scope)
        columns = []
        for n, rule in enumerate(chunk):
            sel = _selection(rule, reader, f"r{start + n}_")
            assert sel is not None
            params.update(sel.params)
            columns.append(f"countIf({sel.sql}) AS c{n}")
        for r in reader.client.rows(
            f"SELECT {key} AS k_, {', '.join(columns)} {source} GROUP BY k_", params
        ):
            for n, rule in enumerate(chunk):
                if int(r[f"c{n}"]):
                    out[rule.id][r["k_"]] = int(r[f"c{n}"])
    return out


def _blinded(
    reader: Reader,
    scope: Where,
    policy: Policy,
    t: _Tuples,
    rules: list[FindingRule],
    dropped: np.ndarray,
) -> list[tuple[str, str]]:
    """policy.simulate._blinded: findings rules that see events now and would not."""
    from ..findings.engine import BODY_LEVELS

    rules = [r for r in rules if r.enabled and r.node is not None]
    index = {k: i for i, k in enumerate(t.keys)}
    level_index = {name: k for k, name in enumerate(LEVELS)}
    selected = _selected(reader, scope, _key(policy), rules)
    out: list[tuple[str, str]] = []
    for rule in rules:
        counts = np.zeros(len(t.keys), dtype=np.int64)
        for k, c in selected[rule.id].items():
            counts[index[k]] = c
        counts[t.logged < 0] = 0
        if not counts.any():
            continue
        body = next((b for b in rule.needs if b in BODY_LEVELS), None)
        if body:
            least = min(level_index[v] for v in BODY_LEVELS[body])
            now = int(counts[t.logged >= least].sum())
            after = int(counts[~dropped & (t.expected >= least)].sum())
            if now and not after:
                out.append((rule.id, f"{now} events carry the {body} body now; none would"))
                continue
        if not int(counts[~dropped].sum()):
            out.append((rule.id, f"all {int(counts.sum())} events it looks at would be dropped"))
    return out


# -- suggest -------------------------------------------------------------------------------


def suggest(
    reader: Reader, rules: Sequence[FindingRule] | None, top: int = 10, where: Where | str = ""
) -> list[Suggestion]:
    """policy.suggest.suggest's answer over the store's events: the noisiest (user, verb,
    resource) combinations by bytes, grouped and summed by the server."""
    scope = reader.where(where) if isinstance(where, str) else where
    node = f"startsWith(ifNull(user, ''), '{NODE_PREFIX}')"
    user = f"if({node}, 'N', {_encoded('user')})"  # nodes are one identity for a policy
    uri = f"if(api IS NULL, {_encoded('uri')}, '')"  # the path selects non-resource requests
    parts = [user, *map(_encoded, ("verb", "api", "resource", "sub")), uri]
    key = "concat(" + ", ".join(f"toString(length({p})), ':', {p}" for p in parts) + ")"
    body = "level IN ('Request', 'RequestResponse')"
    source, params = reader._from(scope)
    groups = list(
        reader.client.rows(
            f"SELECT {key} AS k_, any(user) AS u_, max({node}) AS node_, any(verb) AS v_, "
            "any(api) AS a_, any(resource) AS r_, any(subresource) AS s_, "
            "any(uri) AS uri_, count() AS n_, sum(length(raw)) AS b_, "
            f"countIf({body}) AS bodies_, sumIf(length(raw), {body}) AS body_bytes_ "
            f"{source} GROUP BY k_ ORDER BY b_ DESC",
            params,
        )
    )
    looking = [r for r in rules or [] if r.enabled and r.node is not None and not r.first_seen]
    watched: dict[str, int] = {}
    bodies_read: set[str] = set()
    for rule_id, counts in _selected(reader, scope, key, looking).items():
        reads = next(r for r in looking if r.id == rule_id).needs
        for k in counts:
            watched[k] = 1
            if "request" in reads or "response" in reads:
                bodies_read.add(k)
    out: list[Suggestion] = []
    for g in groups:
        if len(out) >= top:
            break
        is_node = bool(int(g["node_"]))
        name = None if is_node else g["u_"]
        if not is_node and g["u_"] is None:
            continue  # no user (failed authentication): nothing a policy rule could name
        verb = g["v_"] or ""
        system = name is None or name.startswith("system:")
        with_body = int(g["bodies_"])
        if g["k_"] in watched:
            if g["k_"] in bodies_read or not with_body:
                continue
            level = METADATA
        elif system and verb in READS:
            level = "None"
        elif with_body:
            level = METADATA
        else:
            continue
        if level == "None":
            saves = int(g["b_"])
        else:
            keep = _first_kept_share(reader, scope, key, g["k_"], body)
            saves = int(int(g["body_bytes_"]) * (1 - keep))
        api, res, sub = g["a_"], g["r_"] or "", g["s_"]
        out.append(
            Suggestion(
                level,
                [] if name is None else [name],
                ["system:nodes"] if name is None else [],
                verb,
                api,
                (g["uri_"] or "").partition("?")[0]
                if api is None
                else (f"{res}/{sub}" if sub else res),
                int(g["n_"]),
                int(g["b_"]),
                saves,
            )
        )
    return sorted(out, key=lambda s: -s.saves)


def _first_kept_share(reader: Reader, scope: Where, key: str, k: str, body: str) -> float:
    """The share the first 200 events of one combination logged with bodies keep at
    Metadata (as suggest measures it: the first ones in reading order)."""
    source, params = reader._from(scope)
    params["k_"] = k
    before = after = 0
    for r in reader.client.rows(
        f"SELECT raw {source} AND {body} AND {key} = {{k_:String}} "
        "ORDER BY source, offset LIMIT 200",
        params,
    ):
        raw = str(r["raw"]).encode("utf-8", "surrogatepass")
        event = parse_json(raw)
        for name in BODIES.get(1, ()):
            event.pop(name, None)
        before += len(raw)
        after += len(orjson.dumps(event))
    return after / before if before else 1.0
