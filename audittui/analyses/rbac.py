"""Least privilege from observed traffic: the Roles, ClusterRoles and bindings that allow exactly
the requests one subject made, audit2rbac-compatible by default (the subject, the request
attributes, the order, the expansions, the compaction and the object names are audit2rbac's;
see :mod:`audittui.analyses.rbac_rules`), with a ``clean`` mode beyond it (URLs without their
query, deprecated API groups rewritten, denied requests left out, API versions not compared).

Works from the store's columns: a subject's events are grouped by their distinct request
attributes with numpy, and everything after that runs once per distinct request. Raw events
are read only for what no column holds: an impersonated user's groups, and the objectRef
apiVersion where it can decide an expansion (see :func:`_api_versions`).

:func:`analyze` → :class:`Result` (the requests, the permissions used, the bindings that
granted them, the generated objects); :func:`render_yaml` and :func:`list_document` print it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import yaml

from .. import __version__
from ..index.store import Events
from ..index.strings import Strings
from ..ingest.authz import Grant, parse_reason
from ..ingest.formats import MISSING_TIME, format_time, parse_json
from .rbac_rules import (
    SA_PREFIX,
    Attributes,
    Options,
    RBACObjects,
    Role,
    discovery_roles,
    generate,
    object_dict,
    rule_allows,
)

LABEL_USER = "audit2rbac.liggitt.net/user"
LABEL_GENERATED = "audit2rbac.liggitt.net/generated"
ANNOTATION_VERSION = "audit2rbac.liggitt.net/version"
DENIED_CODES = (401, 403)

# --clean: resources served from extensions/v1beta1 until 1.16 and their current group.
# (apps/v1beta1, apps/v1beta2 and apps/v1 are one group: RBAC names no versions.)
MOVED_GROUPS = {
    ("extensions", "deployments"): "apps",
    ("extensions", "daemonsets"): "apps",
    ("extensions", "replicasets"): "apps",
    ("extensions", "ingresses"): "networking.k8s.io",
    ("extensions", "networkpolicies"): "networking.k8s.io",
    ("extensions", "podsecuritypolicies"): "policy",
}

_FAR = np.iinfo(np.int64).max


@dataclass
class Request:
    """One distinct request of the subject and the events that made it."""

    attrs: Attributes  # as audit2rbac reads it (a non-resource request's path with its query)
    emitted: Attributes  # what its rule is generated from: the same, or cleaned
    events: int
    denied: int
    first: int  # µs since the epoch, MISSING_TIME when no event had a time
    last: int


@dataclass
class Weights:
    """The events behind each row when a row stands for several (a store's events grouped in
    its server by the attributes this analysis reads, one row per distinct tuple): how many,
    and the first and last of their times (MISSING_TIME: none had one)."""

    events: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @staticmethod
    def single(times: np.ndarray) -> Weights:
        """Each row one event."""
        return Weights(np.ones(len(times), dtype=np.int64), times, times)

    def __getitem__(self, rows: np.ndarray) -> Weights:
        return Weights(self.events[rows], self.first[rows], self.last[rows])

    def usage(self, denied: np.ndarray | None = None) -> Usage:
        """All the rows' events as one use."""
        first = self.first[self.first != MISSING_TIME]
        return Usage(
            events=int(self.events.sum()),
            denied=0 if denied is None else int(self.events[denied].sum()),
            first=int(first.min()) if len(first) else MISSING_TIME,
            last=int(self.last.max()) if len(self.last) else MISSING_TIME,
        )


@dataclass
class Usage:
    """Events behind a permission or a rule."""

    events: int = 0
    denied: int = 0
    first: int = MISSING_TIME
    last: int = MISSING_TIME

    def add(self, r: Request) -> None:
        self.events += r.events
        self.denied += r.denied
        if r.first != MISSING_TIME:
            self.first = r.first if self.first == MISSING_TIME else min(self.first, r.first)
            self.last = max(self.last, r.last)


@dataclass
class Permission:
    """A permission used: verb × group/resource × namespace, or verb × URL."""

    verb: str
    api_group: str | None  # None: a non-resource request
    resource: str  # resource or resource/subresource; the URL of a non-resource request
    namespace: str  # "" cluster-wide (or non-resource)
    usage: Usage = field(default_factory=Usage)
    names: int = 0  # distinct object names requested


@dataclass
class GrantUse:
    """A binding (or another authorizer) that the reason annotations say allowed requests."""

    grant: Grant
    usage: Usage = field(default_factory=Usage)

    @property
    def binding(self) -> str | None:
        return self.grant.label("binding")

    @property
    def role(self) -> str | None:
        return self.grant.label("role")


@dataclass
class Result:
    user: str
    namespace: str | None
    clean: bool
    events: int  # the subject's events read (after the namespace filter)
    denied_left_out: int  # denied events left out (clean mode)
    requests: list[Request]
    objects: RBACObjects
    grants: list[GrantUse]
    rows: np.ndarray  # the events used (store indices), by time
    request_of_row: np.ndarray  # for each of them, its index in ``requests``
    weights: Weights  # for each of them, the events it stands for

    @functools.cached_property
    def permissions(self) -> list[Permission]:
        """The permissions used, most used first."""
        return _permissions(self.requests)

    def rule_usage(self) -> dict[str, list[Usage]]:
        """For each generated role (by namespace, "" for the ClusterRole), the events each of
        its rules allows (a request allowed by two rules counts for both)."""
        roles: dict[str, Role] = {r.namespace: r for r in self.objects.cluster_roles}
        roles.update({r.namespace: r for r in self.objects.roles})
        out = {ns: [Usage() for _ in role.rules] for ns, role in roles.items()}
        indexes = {ns: _rule_index(role) for ns, role in roles.items()}
        for r in self.requests:
            a = r.emitted
            for ns in {"", a.namespace} if a.resource_request else {""}:
                if ns not in indexes:
                    continue
                exact, loose = indexes[ns]
                key = (a.api_group, a.combined) if a.resource_request else a.path
                for k in (*exact.get(key, ()), *loose):
                    if rule_allows(roles[ns].rules[k], a):
                        out[ns][k].add(r)
        return out


def _rule_index(role: Role) -> tuple[dict[Any, list[int]], list[int]]:
    """Candidate rules for a request: by (group, resource) or URL for the rules that name
    them literally, and the rules with wildcards, to try on every request. Candidates are
    still checked (verbs, names)."""
    exact: dict[Any, list[int]] = {}
    loose: list[int] = []
    for k, rule in enumerate(role.rules):
        wild = (*rule.api_groups, *rule.resources, *(u[-1:] for u in rule.non_resource_urls))
        if any("*" in x for x in wild):
            loose.append(k)
            continue
        keys = [(g, res) for g in rule.api_groups for res in rule.resources]
        for key in (*keys, *rule.non_resource_urls):
            exact.setdefault(key, []).append(k)
    return exact, loose


# -- naming --------------------------------------------------------------------------------


def sanitize_name(user: str) -> str:
    """audit2rbac's object name part: lower case, anything but letters, digits and ':' → '-'."""
    return re.sub(r"[^a-zA-Z0-9:]", "-", user).lower()


def sanitize_label(user: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]", "-", user).lower()


def service_account_user(spec: str) -> str | None:
    """``NS:NAME`` → ``system:serviceaccount:NS:NAME``; None when it is not that shape."""
    parts = spec.split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return f"{SA_PREFIX}{parts[0]}:{parts[1]}"


def default_options(user: str) -> Options:
    """audit2rbac's defaults: ``audit2rbac:${user}``, its two labels, its version annotation
    (audittui's version here)."""
    return Options(
        name=f"audit2rbac:{sanitize_name(user)}",
        labels={LABEL_USER: sanitize_label(user), LABEL_GENERATED: "true"},
        annotations={ANNOTATION_VERSION: __version__},
    )


# -- selecting the subject's events -----------------------------------------------------------


def table_code(events: Events, column: str, value: str) -> int:
    """The table code of ``value`` in a string column (0: no event holds it)."""
    values = events.tables[column].values
    if isinstance(values, Strings):
        return values.code_of(value)
    try:
        return values.index(value)
    except ValueError:
        return 0


def subject_rows(
    events: Events, user: str, namespace: str | None = None, rows: np.ndarray | None = None
) -> np.ndarray:
    """The events of ``user`` as audit2rbac picks them (the impersonated user when there is one,
    else the authenticated user), of ``rows`` when given; with ``namespace``, only those whose
    objectRef has that namespace. Store indices, ascending."""
    users, imps = events.column("user"), events.column("impersonated")
    if rows is not None:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        users, imps = users[rows], imps[rows]
    mask = np.zeros(len(users), dtype=bool)
    as_imp, as_user = table_code(events, "impersonated", user), table_code(events, "user", user)
    if as_imp:
        mask |= imps == as_imp
    if as_user:
        mask |= (imps == 0) & (users == as_user)
    if namespace:
        code = table_code(events, "namespace", namespace)
        spaces = events.column("namespace")
        mask &= (spaces if rows is None else spaces[rows]) == code if code else False
    return np.flatnonzero(mask) if rows is None else rows[mask]


def denied_mask(events: Events, rows: np.ndarray) -> np.ndarray:
    """Events the API server refused: 401, 403, or the authorizer's decision ``forbid``."""
    codes = events.column("code")[rows]
    mask = np.isin(codes, DENIED_CODES)
    forbid = table_code(events, "decision", "forbid")
    if forbid:
        mask |= events.column("decision")[rows] == forbid
    return mask


# -- the analysis ------------------------------------------------------------------------------


def analyze(
    events: Events,
    user: str,
    *,
    rows: np.ndarray | None = None,
    namespace: str | None = None,
    clean: bool = False,
    include_denied: bool = False,
    existing: RBACObjects | None = None,
    options: Options | None = None,
    weights: Weights | None = None,
) -> Result:
    """The least-privilege roles for ``user`` over its events (of ``rows`` when given: the
    app's filter). ``existing`` defaults to audit2rbac's (``system:discovery`` for everyone),
    ``options`` to :func:`default_options`. ``weights`` (by store row): the events each row
    stands for, when a row is the first of several equal in all this reads (else one each)."""
    picked = subject_rows(events, user, namespace, rows)
    picked = picked[np.argsort(events.column("time")[picked], kind="stable")]
    spans = Weights.single(events.column("time")[picked]) if weights is None else weights[picked]
    read = int(spans.events.sum())
    denied = denied_mask(events, picked)
    left_out = 0
    if clean and not include_denied:
        left_out = int(spans.events[denied].sum())
        picked, spans = picked[~denied], spans[~denied]
        denied = np.zeros(len(picked), dtype=bool)
    options = options or default_options(user)
    requests, request_of_row, codes = _requests(events, picked, denied, spans, user, clean, options)
    existing = discovery_roles() if existing is None else existing
    plan, expanded = _plan(events, requests, codes, existing, options)
    objects = generate(plan, existing, options, expanded, ordered=True)
    return Result(
        user=user,
        namespace=namespace,
        clean=clean,
        events=read,
        denied_left_out=left_out,
        requests=requests,
        objects=objects,
        grants=_grants(events, picked, denied, spans),
        rows=picked,
        request_of_row=request_of_row,
        weights=spans,
    )


def _dense(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Dense ids of row tuples of codes (each >= 0): equal exactly when every column is.
    The codes are combined as digits, made dense again only when the next would overflow."""
    n = len(columns[0]) if columns else 0
    key = np.zeros(n, dtype=np.int64)
    if not n:
        return key
    size = 1
    for col in columns:
        width = int(col.max()) + 1
        if size * width >= 1 << 62:
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
            size = int(key.max()) + 1
        key = key * width + col
        size *= width
    return np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)


def values_of(events: Events, column: str, codes: np.ndarray) -> list[Any]:
    """The values of ``codes`` (None for 0)."""
    values = events.tables[column].values
    if not isinstance(values, Strings):
        return [values[c] for c in codes.tolist()]
    out: list[Any] = [None] * len(codes)
    present = np.flatnonzero(codes != 0)
    # one decode for the present ones: the arena reads missing values one by one
    for k, value in zip(present.tolist(), values.take(codes[present]), strict=True):
        out[k] = value
    return out


def read_event(events: Events, i: int) -> dict[str, Any]:
    try:
        event = parse_json(events.raw(int(i)))
    except (OSError, LookupError, orjson.JSONDecodeError):
        return {}
    return event if isinstance(event, dict) else {}


def _requests(
    events: Events,
    rows: np.ndarray,
    denied: np.ndarray,
    spans: Weights,
    user: str,
    clean: bool,
    options: Options,
) -> tuple[list[Request], np.ndarray, _Codes]:
    """The distinct requests of ``rows`` (first made first), each row's request, and the
    requests' column codes."""

    def col(name: str) -> np.ndarray:
        return events.column(name)[rows].astype(np.int64)

    verb, api, res, sub = col("verb"), col("api"), col("resource"), col("subresource")
    ns, name, uri, groups, imp = (
        col("namespace"),
        col("name"),
        col("uri"),
        col("groups"),
        col("impersonated"),
    )
    resource_request = api != 0  # the api column is "" for the core group, missing otherwise
    create = table_code(events, "verb", "create")
    if create:
        name[verb == create] = 0  # the authorizer never sees a create's name
    path = np.where(resource_request, 0, uri)  # a resource request's path is never compared

    # Group ids: the groups column for plain events; for impersonated ones, impersonatedUser's
    # groups (no column holds them), read once per distinct request, impersonator and its
    # groups: an impersonating client sends the same Impersonate-Group headers each time.
    group_values: list[Any] = list(events.tables["groups"].values)
    gid = groups.copy()
    impersonated = np.flatnonzero(imp != 0)
    if len(impersonated):
        known = {v: c for c, v in enumerate(group_values)}
        sub_rows = impersonated
        by = (col("user"), groups)  # the impersonator and its own groups
        key = _dense([c[sub_rows] for c in (verb, api, res, sub, ns, name, path, *by)])
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        found = np.empty(len(first), dtype=np.int64)
        for k, at in enumerate(first.tolist()):
            who = read_event(events, rows[sub_rows[at]]).get("impersonatedUser")
            raw = who.get("groups") if isinstance(who, dict) else None
            value = (
                tuple(g for g in raw if isinstance(g, str)) or None
                if isinstance(raw, list)
                else None
            )
            if value not in known:
                known[value] = len(group_values)
                group_values.append(value)
            found[k] = known[value]
        gid[sub_rows] = found[inverse.reshape(-1)]

    version = np.zeros(len(rows), dtype=np.int64)
    version_values: list[str] = [""]
    if not clean:  # clean mode compares no API versions: RBAC never sees them
        version, version_values = _api_versions(
            events, rows, resource_request, [verb, api, res, sub, gid], ns, name, uri, options
        )

    key = _dense([verb, api, res, sub, ns, name, path, gid, version])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")  # the requests in the order first made
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    inverse, first = rank[inverse], first[order]

    n = len(first)
    weight = spans.events.astype(np.float64)
    counts = np.bincount(inverse, weights=weight, minlength=n).astype(np.int64)
    refused = np.bincount(inverse, weights=weight * denied, minlength=n).astype(np.int64)
    low = np.full(n, _FAR, dtype=np.int64)
    high = np.full(n, -_FAR, dtype=np.int64)
    present = spans.first != MISSING_TIME
    np.minimum.at(low, inverse[present], spans.first[present])
    present = spans.last != MISSING_TIME
    np.maximum.at(high, inverse[present], spans.last[present])

    low[low == _FAR] = MISSING_TIME
    high[high == -_FAR] = MISSING_TIME
    columns = zip(
        resource_request[first].tolist(),
        [group_values[g] for g in gid[first].tolist()],
        *(
            [v or "" for v in values_of(events, column, codes[first])]
            for column, codes in (
                ("verb", verb),
                ("uri", path),
                ("namespace", ns),
                ("name", name),
                ("api", api),
                ("resource", res),
                ("subresource", sub),
            )
        ),
        [version_values[v] for v in version[first].tolist()],
        counts.tolist(),
        refused.tolist(),
        low.tolist(),
        high.tolist(),
        strict=True,
    )
    out = []
    for is_resource, groups_of, v, p, n_s, nm, g, r, sr, av, count, no, lo, hi in columns:
        attrs = Attributes(user, groups_of, v, p, is_resource, n_s, nm, g, av, r, sr)
        out.append(Request(attrs, _cleaned(attrs) if clean else attrs, count, no, lo, hi))

    group = api.copy()
    group_text = dict(enumerate(values_of(events, "api", np.arange(len(events.tables["api"])))))
    if clean:  # the group a rule is generated for: a moved resource's current one
        for (old, resource), new in MOVED_GROUPS.items():
            new_code = table_code(events, "api", new)
            if not new_code:
                new_code = max(group_text) + 1
                group_text[new_code] = new
            old_code, res_code = (
                table_code(events, "api", old),
                table_code(events, "resource", resource),
            )
            group[(api == old_code) & (res == res_code)] = new_code
    codes = _Codes(
        resource=resource_request[first],
        verb=verb[first],
        group=group[first],
        version=version[first],
        res=res[first],
        sub=sub[first],
        ns=ns[first],
        name=name[first],
        gid=gid[first],
        group_text=group_text,
    )
    return out, inverse, codes


@dataclass
class _Codes:
    """The column codes of each distinct request (in the order of ``_requests``' list)."""

    resource: np.ndarray  # bool: a resource request
    verb: np.ndarray
    group: np.ndarray  # the API group its rule names (a moved resource's new group if clean)
    version: np.ndarray
    res: np.ndarray
    sub: np.ndarray
    ns: np.ndarray
    name: np.ndarray
    gid: np.ndarray
    group_text: dict[int, str | None]


def _plan(
    events: Events, requests: list[Request], c: _Codes, existing: RBACObjects, options: Options
) -> tuple[list[Attributes], dict[Attributes, tuple[str, str]]]:
    """What :func:`rbac_rules.generate` needs to go through, worked out on codes: the requests
    in its order (:func:`rbac_rules.sort_requests`), their namespace and name after its
    expansions (:func:`rbac_rules.expansions`), and without the requests it would skip for
    certain.

    Those are the operations on many names (their names cleared): of the requests equal but
    for a name that no rule could name (no request keeps it, no existing rule lists it), only
    the first can change anything. When it comes, it is allowed by a rule without names, which
    allows the others too, or it adds one. A controller's gets over thousands of objects go
    through the generator as one request."""
    at = np.flatnonzero(c.resource)
    ops = [c.gid[at], c.verb[at], c.group[at], c.version[at], c.res[at], c.sub[at]]
    ops += [] if options.expand_namespaces else [c.ns[at]]
    ops += [] if options.expand_names else [c.name[at]]
    op = _dense(ops)
    clear = {}
    for column, expand in (("ns", options.expand_namespaces), ("name", options.expand_names)):
        codes = (c.ns if column == "ns" else c.name)[at]
        if not expand or not len(at):
            clear[column] = np.zeros(len(at), dtype=bool)
            continue
        width = int(codes.max()) + 1
        has = codes != 0
        pairs = np.unique(op[has] * width + codes[has])
        seen = np.bincount(pairs // width, minlength=int(op.max(initial=0)) + 1)
        clear[column] = has & (seen[op] > 1)

    # audit2rbac's order, on lexical ranks of the codes (see rbac_rules.sort_requests)
    def rank(codes: np.ndarray, column: str) -> np.ndarray:
        unique, back = np.unique(codes, return_inverse=True)
        if column == "group":
            texts = [c.group_text.get(k) or "" for k in unique.tolist()]
        else:
            texts = [v or "" for v in values_of(events, column, unique)]
        ranks = np.empty(len(unique), dtype=np.int64)
        previous, current = None, 0
        for position, k in enumerate(sorted(range(len(texts)), key=texts.__getitem__)):
            if texts[k] != previous:
                previous, current = texts[k], position
            ranks[k] = current
        return ranks[back.reshape(-1)]

    verb_rank = rank(c.verb[at], "verb")
    order = np.lexsort(
        (
            at,
            verb_rank,
            rank(c.name[at], "name"),
            rank(c.ns[at], "namespace"),
            rank(c.sub[at], "subresource"),
            rank(c.res[at], "resource"),
            rank(c.group[at], "group"),
            c.name[at] != 0,
            c.ns[at] != 0,
        )
    )
    verbs = np.array([v or "" for v in values_of(events, "verb", c.verb[at][order])], dtype=object)
    kind = np.where(verbs == "list", 0, np.where(verbs == "get", 1, 2))
    bucket = (c.ns[at][order] != 0) * 2 + (c.name[at][order] != 0)
    head = (kind == 2) | np.r_[True, bucket[1:] != bucket[:-1]]
    run = np.cumsum(head)
    order = order[np.lexsort((np.arange(len(order)), kind == 1, run))]

    # the requests equal but for a name no rule can name: all but the first skipped for sure
    kept = c.name[at][~clear["name"] & (c.name[at] != 0)]
    named = {
        n
        for role in (*existing.roles, *existing.cluster_roles)
        for r in role.rules
        for n in r.resource_names
    }
    listed = np.array([table_code(events, "name", n) for n in named] or [0], dtype=np.int64)
    alone = clear["name"] & ~np.isin(c.name[at], np.concatenate([kept, listed]))
    same = _dense(
        [c.gid[at], c.verb[at], c.group[at], c.version[at], c.res[at], c.sub[at], c.ns[at]]
    )
    sorted_same, sorted_alone = same[order], alone[order]
    keep = np.ones(len(order), dtype=bool)
    candidates = np.flatnonzero(sorted_alone)
    if len(candidates):
        _, first_of = np.unique(sorted_same[candidates], return_index=True)
        keep[candidates] = False
        keep[candidates[first_of]] = True

    plain = sorted(
        (requests[k].emitted for k in np.flatnonzero(~c.resource).tolist()),
        key=lambda a: (a.verb, a.path),
    )
    plan = plain + [requests[k].emitted for k in at[order[keep]].tolist()]
    expanded = {}
    for k, no_ns, no_name in zip(
        at.tolist(), clear["ns"].tolist(), clear["name"].tolist(), strict=True
    ):
        e = requests[k].emitted
        expanded[e] = ("" if no_ns else e.namespace, "" if no_name else e.name)
    return plan, expanded


def _cleaned(a: Attributes) -> Attributes:
    if not a.resource_request:
        return replace(a, path=a.path.split("?", 1)[0])
    moved = MOVED_GROUPS.get((a.api_group, a.resource))
    return replace(a, api_group=moved) if moved else a


# URI prefixes that hold a resource request's API version: /api/VERSION/…, /apis/GROUP/VERSION/…
_URI_VERSION = re.compile(r"/api/([^/?]+)|/apis/([^/?]+)/([^/?]+)")


def _uri_version(uri: str | None) -> str | None:
    m = _URI_VERSION.match(uri or "")
    return None if m is None else (m.group(1) or m.group(3))


def _api_versions(
    events: Events,
    rows: np.ndarray,
    resource_request: np.ndarray,
    operation: list[np.ndarray],
    ns: np.ndarray,
    name: np.ndarray,
    uri: np.ndarray,
    options: Options,
) -> tuple[np.ndarray, list[str]]:
    """Each row's objectRef apiVersion as an id (0: not needed), where it can decide an
    expansion: audit2rbac compares whole requests, version included, so the same operation in
    two namespaces through two API versions is not expanded.

    It is needed only for operations seen in more than one namespace or on more than one name.
    There, the URI's version segment splits the rows (checked by one regex per operation over
    the URI arena, not by decoding every URI: the API server takes objectRef.apiVersion from
    that segment), and one event per operation and URI version is read for the apiVersion it
    records (a log written by something else may lack it: then it is "", as for audit2rbac).
    An event whose URI names no version is read once per distinct request."""
    out = np.zeros(len(rows), dtype=np.int64)
    values = [""]
    where = np.flatnonzero(resource_request)
    if not len(where):
        return out, values
    parts = [c[where] for c in operation]
    if not options.expand_namespaces:
        parts.append(ns[where])
    if not options.expand_names:
        parts.append(name[where])
    op = _dense(parts)
    wide = np.zeros(int(op.max()) + 1, dtype=bool)
    for column, expand in (
        (ns[where], options.expand_namespaces),
        (name[where], options.expand_names),
    ):
        if not expand:
            continue
        has = column != 0
        pairs = np.unique(op[has] * (int(column.max()) + 1) + column[has])
        per_op = np.bincount(pairs // (int(column.max()) + 1), minlength=len(wide))
        wide |= per_op > 1
    relevant = where[wide[op]]
    if not len(relevant):
        return out, values
    op_of = op[wide[op]]
    table = events.tables["uri"].values
    uri_version = np.zeros(len(relevant), dtype=np.int64)  # 0: no version in the URI
    found: dict[str, int] = {}
    for k in np.unique(op_of).tolist():
        mine = np.flatnonzero(op_of == k)
        codes, back = np.unique(uri[relevant[mine]], return_inverse=True)
        ids = np.zeros(len(codes), dtype=np.int64)
        present = codes != 0
        sample = values_of(events, "uri", codes[present][:1])
        guess = _uri_version(sample[0]) if sample else None
        match = np.zeros(len(codes), dtype=bool)
        if guess is not None:
            m = _URI_VERSION.match(sample[0])
            assert m is not None
            prefix = re.escape(m.group(0).encode())
            rx = re.compile(prefix + rb"(?:[/?].*)?", re.S)
            if isinstance(table, Strings):
                match[present] = table.fullmatch(codes[present], rx)
            else:
                match[present] = [
                    bool(rx.fullmatch(str(table[c]).encode())) for c in codes[present]
                ]
            ids[match] = found.setdefault(guess, len(found) + 1)
        other = np.flatnonzero(present & ~match)
        for c, text in zip(other.tolist(), values_of(events, "uri", codes[other]), strict=True):
            v = _uri_version(text)
            if v is not None:
                ids[c] = found.setdefault(v, len(found) + 1)
        uri_version[mine] = ids[back.reshape(-1)]
    # one event per (operation, URI version); per distinct request where the URI names none
    request = _dense([op_of, ns[relevant], name[relevant]]) + 1
    key = _dense([op_of, uri_version, np.where(uri_version == 0, request, 0)])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    ids = np.empty(len(first), dtype=np.int64)
    interned = {"": 0}
    for k, at in enumerate(first.tolist()):
        ref = read_event(events, rows[relevant[at]]).get("objectRef")
        v = ref.get("apiVersion") if isinstance(ref, dict) else None
        v = v if isinstance(v, str) else ""
        if v not in interned:
            interned[v] = len(values)
            values.append(v)
        ids[k] = interned[v]
    out[relevant] = ids[inverse.reshape(-1)]
    return out, values


def _permissions(requests: list[Request]) -> list[Permission]:
    """The permissions used, most used first."""
    by: dict[tuple[str, str | None, str, str], Permission] = {}
    names: dict[tuple[str, str | None, str, str], set[str]] = {}
    for r in requests:
        a = r.emitted
        key: tuple[str, str | None, str, str] = (
            (a.verb, a.api_group, a.combined, a.namespace)
            if a.resource_request
            else (a.verb, None, a.path, "")
        )
        p = by.get(key)
        if p is None:
            p = by[key] = Permission(*key)
            names[key] = set()
        p.usage.add(r)
        if a.name:
            names[key].add(a.name)
    for key, p in by.items():
        p.names = len(names[key])
    return sorted(by.values(), key=lambda p: (-p.usage.events, p.resource, p.verb, p.namespace))


def _grants(events: Events, rows: np.ndarray, denied: np.ndarray, spans: Weights) -> list[GrantUse]:
    """Who allowed the events, as their reason annotations say; most used first."""
    codes = events.column("reason")[rows]
    unique, inverse = np.unique(codes, return_inverse=True)
    inverse = inverse.reshape(-1)
    by: dict[Grant, GrantUse] = {}
    for k, reason in enumerate(values_of(events, "reason", unique)):
        mine = inverse == k
        u = spans[mine].usage(denied[mine])
        use = by.setdefault(parse_reason(reason), GrantUse(parse_reason(reason)))
        use.usage.add(Request(Attributes(""), Attributes(""), u.events, u.denied, u.first, u.last))
    # ties by first use, then by text: not by the reasons' table codes, whose order is the
    # order they were read in (another in a store's copy of the subject's events)
    return sorted(by.values(), key=lambda g: (-g.usage.events, g.usage.first, repr(g.grant)))


# -- output ------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """kubectl's YAML style: strings that need quotes in double quotes, none folded."""

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def dump_yaml(value: Any, sort_keys: bool = True) -> str:
    """YAML text that is printable ASCII: every other character is a YAML escape in a double-
    quoted string, so log content can neither drive a terminal nor break the document."""
    return yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=sort_keys,
        allow_unicode=False,
        width=1 << 30,
    )


def usage_comment(u: Usage) -> str:
    denied = f", {u.denied:,} denied" if u.denied else ""
    known = u.first != MISSING_TIME
    when = f", first {format_time(u.first)}, last {format_time(u.last)}" if known else ""
    return f"# {u.events:,} event{'s' * (u.events != 1)}{denied}{when}"


def render_yaml(result: Result, counts: bool = False) -> str:
    """The objects as YAML documents separated by ``---`` (none before the first), in
    audit2rbac's order; with ``counts``, each rule under a comment saying how many events it
    allows and when they were first and last seen. Empty when nothing is needed."""
    usage = result.rule_usage() if counts else {}
    docs = []
    for obj in result.objects.in_output_order():
        body = object_dict(obj)
        if not counts or not isinstance(obj, Role):
            docs.append(dump_yaml(body))
            continue
        rules = body.pop("rules")
        parts = [dump_yaml(body), "rules:\n"]
        for rule, use in zip(rules, usage[obj.namespace], strict=True):
            parts += [usage_comment(use), "\n", dump_yaml([rule])]
        docs.append("".join(parts))
    return "---\n".join(docs)


def list_document(result: Result) -> dict[str, Any]:
    """The objects as one ``v1`` List (what ``--format json`` prints; kubectl applies it)."""
    items = [object_dict(obj) for obj in result.objects.in_output_order()]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def render_json(result: Result) -> str:
    return orjson.dumps(list_document(result), option=orjson.OPT_INDENT_2).decode() + "\n"
