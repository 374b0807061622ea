"""What a subject was granted against what it used: the roles and bindings that the
authorizer's reasons (``authorization.k8s.io/reason``) say allowed its requests and, where the
log holds a role's body (the request or response object of its create, update, patch or get,
logged at Request level or above), which of the role's rules its requests used and which they
never did. A role whose body the log does not hold is said to be so: nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..index.store import Events
from ..ingest.authz import parse_reason
from ..ingest.formats import format_time
from ..ingest.schema import REQUEST, REQUEST_RESPONSE
from .rbac import GrantUse, Result, Usage, read_event, table_code, values_of
from .rbac_rules import GROUP, Rule, rule_allows

BODY_VERBS = ("create", "update", "patch", "get")
NO_BODY = "not in the log: no create, update, patch or get of it logged at Request level or above"


@dataclass
class RoleBody:
    """A role as one logged event shows it."""

    rules: list[Rule]
    aggregated: bool  # an aggregationRule: the controller fills the rules in
    verb: str
    time: int
    audit_id: str | None


@dataclass
class RuleUse:
    rule: Rule
    usage: Usage


@dataclass
class GrantedRole:
    """A role that allowed some of the subject's requests, through one or more bindings."""

    kind: str  # ClusterRole or Role
    namespace: str  # a Role's (its binding's) namespace
    name: str
    bindings: list[GrantUse] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    body: RoleBody | None = None
    rules: list[RuleUse] = field(default_factory=list)  # the body's, with what used each

    @property
    def label(self) -> str:
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind}/{self.name}")
        )

    @property
    def unused(self) -> list[Rule]:
        return [u.rule for u in self.rules if not u.usage.events]


@dataclass
class Diff:
    user: str
    events: int
    denied_left_out: int
    roles: list[GrantedRole]
    other: list[GrantUse]  # allowed by no role the reasons name (Node, webhook, none logged)


def diff(events: Events, result: Result) -> Diff:
    """The roles that granted ``result``'s requests, each with its body's rules and their use."""
    rows = result.rows
    reasons = events.column("reason")[rows]
    unique, inverse = np.unique(reasons, return_inverse=True)
    inverse = inverse.reshape(-1)
    roles: dict[tuple[str, str, str], GrantedRole] = {}
    role_of_reason = np.full(len(unique), -1, dtype=np.int64)
    keys: list[tuple[str, str, str]] = []
    for k, reason in enumerate(values_of(events, "reason", unique)):
        g = parse_reason(reason)
        if g.role is None or g.role_kind is None:
            continue
        key = (g.role_kind, (g.binding_namespace or "") if g.role_kind == "Role" else "", g.role)
        if key not in roles:
            roles[key] = GrantedRole(*key)
            keys.append(key)
        role_of_reason[k] = keys.index(key)
    for use in result.grants:
        g = use.grant
        if g.role is not None and g.role_kind is not None:
            ns = (g.binding_namespace or "") if g.role_kind == "Role" else ""
            roles[(g.role_kind, ns, g.role)].bindings.append(use)
    other = [u for u in result.grants if u.grant.role is None or u.grant.role_kind is None]

    bodies = role_bodies(events, set(roles))
    spans = result.weights
    role_of_row = role_of_reason[inverse]
    # what the authorizer matched: a non-resource request's path without its query
    asked = [
        r.attrs if r.attrs.resource_request else replace(r.attrs, path=r.attrs.path.split("?")[0])
        for r in result.requests
    ]
    for n, key in enumerate(keys):
        role = roles[key]
        mine = role_of_row == n
        role.usage = spans[mine].usage()
        role.body = bodies.get(key)
        if role.body is None:
            continue
        requests = np.unique(result.request_of_row[mine])
        for rule in role.body.rules:
            allowed = [k for k in requests.tolist() if rule_allows(rule, asked[k])]
            hit = mine & np.isin(result.request_of_row, allowed)
            role.rules.append(RuleUse(rule, spans[hit].usage()))
    ordered = sorted(roles.values(), key=lambda r: (-r.usage.events, r.label))
    return Diff(result.user, result.events, result.denied_left_out, ordered, other)


def logged_with_body(events: Events) -> np.ndarray:
    """Per event: a request on a Role or ClusterRole logged at Request level or above."""
    group = table_code(events, "api", GROUP)
    if not group:  # no event of rbac.authorization.k8s.io
        return np.zeros(len(events), dtype=bool)
    resources = [table_code(events, "resource", r) for r in ("roles", "clusterroles")]
    levels = [table_code(events, "level", v) for v in (REQUEST, REQUEST_RESPONSE)]
    return (
        (events.column("api") == group)
        & np.isin(events.column("resource"), [r for r in resources if r])
        & np.isin(events.column("level"), [v for v in levels if v])
    )


def role_bodies(
    events: Events, wanted: set[tuple[str, str, str]]
) -> dict[tuple[str, str, str], RoleBody]:
    """The newest logged body of each wanted role ((kind, namespace, name); a ClusterRole's
    namespace ""): a successful create, update, patch or get of it at Request level or above
    whose response object (or, for a create or update, request object) is that role."""
    names = {name for _, _, name in wanted}
    if not names:
        return {}
    name_codes = [c for c in (table_code(events, "name", n) for n in names) if c]
    verbs = [table_code(events, "verb", v) for v in BODY_VERBS]
    code = events.column("code")
    mask = (
        logged_with_body(events)
        & (events.column("subresource") == 0)
        & np.isin(events.column("verb"), [v for v in verbs if v])
        & np.isin(events.column("name"), name_codes)
        & (code >= 200)
        & (code < 300)
    )
    candidates = np.flatnonzero(mask)
    # newest first (a negated time would overflow on a missing one)
    candidates = candidates[np.argsort(events.column("time")[candidates], kind="stable")[::-1]]
    found: dict[tuple[str, str, str], RoleBody] = {}
    for i in candidates.tolist():
        event = read_event(events, i)
        ref = event.get("objectRef")
        if not isinstance(ref, dict):
            continue
        kind = "ClusterRole" if ref.get("resource") == "clusterroles" else "Role"
        key = (kind, str(ref.get("namespace") or "") if kind == "Role" else "", ref.get("name"))
        if key not in wanted or key in found:
            continue
        verb = str(event.get("verb") or "")
        body = _body(event.get("responseObject"), kind)
        if body is None and verb in ("create", "update"):
            body = _body(event.get("requestObject"), kind)
        if body is None:
            continue
        time = int(events.column("time")[i])
        found[key] = RoleBody(*body, verb=verb, time=time, audit_id=event.get("auditID"))
        if len(found) == len(wanted):
            break
    return found


def _body(obj: Any, kind: str) -> tuple[list[Rule], bool] | None:
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        return None
    rules = obj.get("rules")
    rules = rules if isinstance(rules, list) else []
    return [Rule.from_dict(r) for r in rules if isinstance(r, dict)], "aggregationRule" in obj


# -- output ------------------------------------------------------------------------------------


def _when(u: Usage) -> dict[str, Any]:
    return {"events": u.events, "first": format_time(u.first), "last": format_time(u.last)}


def _subject(use: GrantUse) -> str | None:
    g = use.grant
    return f"{g.subject_kind} {g.subject}" if g.subject_kind and g.subject else None


def diff_document(d: Diff) -> dict[str, Any]:
    """The diff as plain data, for YAML or JSON."""
    granted = []
    for role in d.roles:
        entry: dict[str, Any] = {"role": role.label, **_when(role.usage)}
        entry["bindings"] = [
            {"binding": b.binding, "subject": _subject(b), "events": b.usage.events}
            for b in role.bindings
        ]
        if role.body is None:
            entry["body"] = NO_BODY
        else:
            b = role.body
            entry["body"] = f"{b.verb} at {format_time(b.time)} (auditID {b.audit_id})"
            if b.aggregated:
                entry["aggregated"] = (
                    "an aggregated ClusterRole: the controller fills its rules in, so the "
                    "logged body may not hold them all"
                )
            entry["usedRules"] = [
                {"rule": u.rule.to_dict(), **_when(u.usage)} for u in role.rules if u.usage.events
            ]
            entry["unusedRules"] = [r.to_dict() for r in role.unused]
        granted.append(entry)
    other = [
        {
            "authorizer": u.grant.authorizer or "none named (no reason logged, or denied)",
            **_when(u.usage),
        }
        for u in d.other
    ]
    out: dict[str, Any] = {"subject": d.user, "events": d.events}
    if d.denied_left_out:
        out["deniedLeftOut"] = d.denied_left_out
    out["granted"] = granted
    out["notByARole"] = other
    return out
