"""RBAC as the API server evaluates it, and audit2rbac's generator over it: policy rules and
their matching (the RBAC authorizer's ``RuleAllows``), roles and bindings, the authorizer that
walks them for a user, and the generation of covering roles from requests with audit2rbac's
ordering, expansion and compaction (liggitt/audit2rbac ``pkg/process.go``, ``pkg/util.go``;
``../shared/docs/wrapped-formats.md``, section D).

Pure data in, pure data out: no store here. :mod:`audittui.analyses.rbac` turns a subject's
events into :class:`Attributes` and renders what :func:`generate` returns.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
SA_PREFIX = "system:serviceaccount:"

# audit2rbac's defaults: a verb implies the verbs a client doing it nearly always needs next.
VERB_EXPANSIONS: Mapping[str, tuple[str, ...]] = {
    "watch": ("get", "list"),
    "list": ("get", "watch"),
    "update": ("get", "patch"),
    "patch": ("get", "update"),
}


@dataclass(frozen=True, slots=True)
class Attributes:
    """What the authorizer is asked about one request (Kubernetes' ``AttributesRecord``)."""

    user: str
    groups: tuple[str, ...] | None = None
    verb: str = ""
    path: str = ""  # the request URI (audit2rbac keeps its query string)
    resource_request: bool = False
    namespace: str = ""
    name: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # tens of thousands of these are dict keys several times over: hash them once
        fields = (
            self.user,
            self.groups,
            self.verb,
            self.path,
            self.resource_request,
            self.namespace,
            self.name,
            self.api_group,
            self.api_version,
            self.resource,
            self.subresource,
        )
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        return self._hash

    @property
    def combined(self) -> str:
        """``resource/subresource`` as rules name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def event_to_attributes(event: Mapping[str, Any]) -> Attributes:
    """A parsed audit event as audit2rbac reads it: the impersonated user when there is one,
    the request URI as the path, and no name on a create (the authorizer never sees a create's
    name; the audit event of an accepted create has it, from the body)."""
    who = event.get("impersonatedUser") or event.get("user") or {}
    groups = who.get("groups") if isinstance(who, Mapping) else None
    attrs = Attributes(
        user=_text(who.get("username")) if isinstance(who, Mapping) else "",
        # no groups and an empty list are one thing here, as in the store's columns
        groups=tuple(g for g in groups if isinstance(g, str)) or None
        if isinstance(groups, list)
        else None,
        verb=_text(event.get("verb")),
        path=_text(event.get("requestURI")),
    )
    ref = event.get("objectRef")
    if isinstance(ref, Mapping):
        attrs = replace(
            attrs,
            resource_request=True,
            namespace=_text(ref.get("namespace")),
            name=_text(ref.get("name")),
            api_group=_text(ref.get("apiGroup")),
            api_version=_text(ref.get("apiVersion")),
            resource=_text(ref.get("resource")),
            subresource=_text(ref.get("subresource")),
        )
    if attrs.verb == "create":
        attrs = replace(attrs, name="")
    return attrs


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# -- rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """A PolicyRule. Tuples, sorted where a rule builder would sort them."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @staticmethod
    def build(
        verbs: Iterable[str],
        groups: Iterable[str] = (),
        resources: Iterable[str] = (),
        names: Iterable[str] = (),
        urls: Iterable[str] = (),
    ) -> Rule:
        """As Kubernetes' ``NewRule(...).Groups(...)...`` builds one: each list a sorted set."""
        return Rule(*(tuple(sorted(set(x))) for x in (verbs, groups, resources, names, urls)))

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Rule:
        """A rule as an RBAC object's body holds it (lists as written, not sorted)."""

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

        return Rule(
            strings("verbs"),
            strings("apiGroups"),
            strings("resources"),
            strings("resourceNames"),
            strings("nonResourceURLs"),
        )

    def to_dict(self) -> dict[str, list[str]]:
        """The rule as the API writes it: empty lists left out, verbs always there."""
        out: dict[str, list[str]] = {}
        if self.api_groups:
            out["apiGroups"] = list(self.api_groups)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.resources:
            out["resources"] = list(self.resources)
        out["verbs"] = list(self.verbs)
        return out

    def compact_string(self) -> str:
        """Kubernetes' ``CompactString``: what audit2rbac sorts a role's rules by."""
        parts = []
        for label, values in (
            ("APIGroups", self.api_groups),
            ("Resources", self.resources),
            ("NonResourceURLs", self.non_resource_urls),
            ("ResourceNames", self.resource_names),
            ("Verbs", self.verbs),
        ):
            if values:
                parts.append(f"{label}:[{' '.join(map(go_quote, values))}]")
        return "{" + ", ".join(parts) + "}"


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (for the sort key only: the order of printable text matters)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + '"'


def rule_allows(rule: Rule, a: Attributes) -> bool:
    """The RBAC authorizer's ``RuleAllows``: does ``rule`` allow the request?"""
    if not ("*" in rule.verbs or a.verb in rule.verbs):
        return False
    if not a.resource_request:
        return url_matches(rule.non_resource_urls, a.path)
    if not ("*" in rule.api_groups or a.api_group in rule.api_groups):
        return False
    if not resource_matches(rule.resources, a.combined, a.subresource):
        return False
    return not rule.resource_names or a.name in rule.resource_names


def resource_matches(resources: Sequence[str], combined: str, subresource: str) -> bool:
    for r in resources:
        if r == "*" or r == combined:
            return True
        # "*/scale" grants a subresource of every resource
        if (
            subresource
            and len(r) == len(subresource) + 2
            and r.startswith("*/")
            and r.endswith(subresource)
        ):
            return True
    return False


def url_matches(urls: Sequence[str], path: str) -> bool:
    for u in urls:
        if u == "*" or u == path:
            return True
        if u.endswith("*") and path.startswith(u.rstrip("*")):
            return True
    return False


# -- objects -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User, Group, ServiceAccount
    name: str
    namespace: str = ""
    api_group: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "name": self.name}
        if self.api_group:
            out["apiGroup"] = self.api_group
        if self.namespace:
            out["namespace"] = self.namespace
        return out


@dataclass
class Role:
    """A Role (``namespace`` set) or a ClusterRole."""

    name: str
    namespace: str = ""
    rules: list[Rule] = field(default_factory=list)
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None

    @property
    def kind(self) -> str:
        return "Role" if self.namespace else "ClusterRole"


@dataclass
class Binding:
    """A RoleBinding (``namespace`` set) or a ClusterRoleBinding."""

    name: str
    role_kind: str
    role_name: str
    subjects: list[Subject]
    namespace: str = ""
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None

    @property
    def kind(self) -> str:
        return "RoleBinding" if self.namespace else "ClusterRoleBinding"


@dataclass
class RBACObjects:
    roles: list[Role] = field(default_factory=list)
    cluster_roles: list[Role] = field(default_factory=list)
    role_bindings: list[Binding] = field(default_factory=list)
    cluster_role_bindings: list[Binding] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.roles or self.cluster_roles)

    def in_output_order(self) -> list[Role | Binding]:
        """audit2rbac's order: Roles, ClusterRoles, RoleBindings, ClusterRoleBindings."""
        return [*self.roles, *self.cluster_roles, *self.role_bindings, *self.cluster_role_bindings]


def object_dict(obj: Role | Binding) -> dict[str, Any]:
    """An object as ``kubectl get -o yaml`` lays it out (no creationTimestamp)."""
    meta: dict[str, Any] = {"name": obj.name}
    if obj.namespace:
        meta["namespace"] = obj.namespace
    if obj.labels:
        meta["labels"] = dict(obj.labels)
    if obj.annotations:
        meta["annotations"] = dict(obj.annotations)
    out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": obj.kind, "metadata": meta}
    if isinstance(obj, Role):
        out["rules"] = [r.to_dict() for r in obj.rules]
    else:
        out["roleRef"] = {"apiGroup": GROUP, "kind": obj.role_kind, "name": obj.role_name}
        out["subjects"] = [s.to_dict() for s in obj.subjects]
    return out


# DNS-1123 label (a namespace) and subdomain (a service account name), as the API server checks
# them before it reads a user name as a service account's.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def split_service_account(username: str) -> tuple[str, str] | None:
    """``system:serviceaccount:NS:NAME`` → (NS, NAME); None for any other user name."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    ns, name = parts
    if len(ns) > 63 or not _LABEL.fullmatch(ns) or len(name) > 253:
        return None
    return (ns, name) if _SUBDOMAIN.fullmatch(name) else None


def user_subject(username: str) -> Subject:
    sa = split_service_account(username)
    if sa is not None:
        return Subject("ServiceAccount", sa[1], namespace=sa[0])
    return Subject("User", username, api_group=GROUP)


def _applies(subject: Subject, user: str, groups: tuple[str, ...] | None, namespace: str) -> bool:
    if subject.kind == "User":
        return subject.name == user
    if subject.kind == "Group":
        return subject.name in (groups or ())
    if subject.kind == "ServiceAccount":
        # a RoleBinding may leave its service account's namespace out: its own then
        ns = subject.namespace or namespace
        return bool(ns) and user == f"{SA_PREFIX}{ns}:{subject.name}"
    return False


class Authorizer:
    """The RBAC authorizer over fixed objects: the ClusterRoleBindings' rules, then those of
    the RoleBindings in the request's namespace."""

    def __init__(self, objects: RBACObjects) -> None:
        self._cluster_roles = {r.name: r for r in objects.cluster_roles}
        self._roles = {(r.namespace, r.name): r for r in objects.roles}
        self._cluster_bindings = list(objects.cluster_role_bindings)
        self._bindings: dict[str, list[Binding]] = defaultdict(list)
        for b in objects.role_bindings:
            self._bindings[b.namespace].append(b)
        self._cache: dict[tuple[str, tuple[str, ...] | None, str], list[Rule]] = {}
        self._kinds: dict[tuple[str, tuple[str, ...] | None, str, bool], list[Rule]] = {}

    def rules_for(self, user: str, groups: tuple[str, ...] | None, namespace: str) -> list[Rule]:
        key = (user, groups, namespace)
        found = self._cache.get(key)
        if found is None:
            found = []
            for b in self._cluster_bindings:
                if b.role_kind == "ClusterRole" and any(
                    _applies(s, user, groups, "") for s in b.subjects
                ):
                    role = self._cluster_roles.get(b.role_name)
                    found.extend(role.rules if role else ())
            for b in self._bindings.get(namespace, ()) if namespace else ():
                if any(_applies(s, user, groups, namespace) for s in b.subjects):
                    role = (
                        self._cluster_roles.get(b.role_name)
                        if b.role_kind == "ClusterRole"
                        else self._roles.get((namespace, b.role_name))
                        if b.role_kind == "Role"
                        else None
                    )
                    found.extend(role.rules if role else ())
            self._cache[key] = found
        return found

    def allows(self, a: Attributes) -> bool:
        key = (a.user, a.groups, a.namespace, a.resource_request)
        rules = self._kinds.get(key)
        if rules is None:  # a resource rule never allows a URL, nor a URL rule a resource
            rules = self._kinds[key] = [
                r
                for r in self.rules_for(a.user, a.groups, a.namespace)
                if (r.resources if a.resource_request else r.non_resource_urls)
            ]
        return any(rule_allows(r, a) for r in rules)


def discovery_roles() -> RBACObjects:
    """What audit2rbac assumes every cluster grants: ``system:discovery`` to all."""
    urls = ("/healthz", "/version", "/swagger*", "/openapi*", "/api*")
    return RBACObjects(
        cluster_roles=[Role("system:discovery", rules=[Rule.build(["get"], urls=urls)])],
        cluster_role_bindings=[
            Binding(
                "system:discovery",
                "ClusterRole",
                "system:discovery",
                [
                    Subject("Group", "system:authenticated", api_group=GROUP),
                    Subject("Group", "system:unauthenticated", api_group=GROUP),
                ],
            )
        ],
    )


# -- generation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    name: str = "audit2rbac"
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    expand_names: bool = True  # an operation on two names → on any name
    expand_namespaces: bool = True  # an operation in two namespaces → in every namespace
    verb_expansions: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: VERB_EXPANSIONS)


def sort_requests(requests: Sequence[Attributes]) -> list[Attributes]:
    """audit2rbac's order, broader requests first: non-resource ones (by verb, path), then
    cluster-scoped before namespaced, unnamed before named, list before get, then group,
    resource, subresource, namespace, name, verb. Ties keep the given order.

    audit2rbac's comparator puts list before get ahead of the group comparison, which is not
    a consistent order once other verbs lie between them. Where it is consistent, the result
    is this: the lexical order, in which each run of lists and gets not broken by another verb
    has its lists first. Where it is not, Go's sort gives an order of its own algorithm; this
    one is still the lexical order with that local rule."""
    plain = sorted((r for r in requests if not r.resource_request), key=lambda r: (r.verb, r.path))
    resource = sorted(
        (r for r in requests if r.resource_request),
        key=lambda r: (
            bool(r.namespace),
            bool(r.name),
            r.api_group,
            r.resource,
            r.subresource,
            r.namespace,
            r.name,
            r.verb,
        ),
    )
    out = plain
    run: list[Attributes] = []
    bucket: tuple[bool, bool] | None = None

    def flush() -> None:
        if run:
            out.extend([r for r in run if r.verb == "list"])
            out.extend([r for r in run if r.verb != "list"])
            run.clear()

    for r in resource:
        here = (bool(r.namespace), bool(r.name))
        if here != bucket:
            flush()
            bucket = here
        if r.verb in ("list", "get"):
            run.append(r)
        else:
            flush()
            out.append(r)
    flush()
    return out


def expansions(
    requests: Sequence[Attributes], options: Options
) -> dict[Attributes, tuple[str, str]]:
    """Each resource request's (namespace, name) for its rule: the namespace cleared when an
    otherwise equal request (apiVersion and user groups included, path not) was made in another
    namespace, the name cleared when one was made on another name."""
    namespaces: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    names: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    keys = {}
    by_ns, by_name = not options.expand_namespaces, not options.expand_names
    for r in requests:
        if not r.resource_request:
            continue
        key = (
            r.user,
            r.groups,
            r.verb,
            r.api_group,
            r.api_version,
            r.resource,
            r.subresource,
            r.namespace if by_ns else "",
            r.name if by_name else "",
        )
        keys[r] = key
        if r.namespace:
            namespaces[key].add(r.namespace)
        if r.name:
            names[key].add(r.name)
    out = {}
    for r, key in keys.items():
        ns, name = r.namespace, r.name
        if options.expand_namespaces and ns and len(namespaces[key]) > 1:
            ns = ""
        if options.expand_names and name and len(names[key]) > 1:
            name = ""
        out[r] = (ns, name)
    return out


class _Generated:
    """The objects generated so far, and whether they allow a request. Every generated binding
    names the requesting user, so only the rules matter: the ClusterRole's, and the Role's of
    the request's namespace. Rules are indexed by (namespace, group, resource)."""

    def __init__(self, user: str, options: Options) -> None:
        self.options = options
        self.subject = user_subject(user)
        self.objects = RBACObjects()
        self.cluster: Role | None = None
        self.roles: dict[str, Role] = {}
        self._index: dict[tuple[str, str, str], list[Rule]] = defaultdict(list)
        self._urls: dict[str, set[str]] = defaultdict(set)  # verb → URLs, "*" ones apart
        self._wild: list[tuple[str, Rule]] = []  # rules with wildcards: matched one by one

    def allows(self, a: Attributes) -> bool:
        if not a.resource_request:
            if a.path in self._urls.get(a.verb, ()) or a.path in self._urls.get("*", ()):
                return True
        else:
            for scope in ("", a.namespace) if a.namespace else ("",):
                for rule in self._index.get((scope, a.api_group, a.combined), ()):
                    if rule_allows(rule, a):
                        return True
        return any(
            (not scope or scope == a.namespace) and rule_allows(rule, a)
            for scope, rule in self._wild
        )

    def add(self, namespace: str, rule: Rule) -> None:
        role = self._role(namespace)
        role.rules.append(rule)
        wild = any("*" in x for x in (*rule.verbs, *rule.api_groups, *rule.resources))
        if rule.non_resource_urls and not any(u.endswith("*") for u in rule.non_resource_urls):
            for verb in rule.verbs:
                self._urls[verb].update(rule.non_resource_urls)
        elif wild or rule.non_resource_urls:
            self._wild.append((namespace, rule))
        else:
            for group in rule.api_groups:
                for resource in rule.resources:
                    self._index[(namespace, group, resource)].append(rule)

    def _role(self, namespace: str) -> Role:
        o = self.options
        if not namespace:
            if self.cluster is None:
                self.cluster = Role(o.name, rules=[], labels=o.labels, annotations=o.annotations)
                self.objects.cluster_roles.append(self.cluster)
                self.objects.cluster_role_bindings.append(
                    Binding(
                        o.name,
                        "ClusterRole",
                        o.name,
                        [self.subject],
                        labels=o.labels,
                        annotations=o.annotations,
                    )
                )
            return self.cluster
        role = self.roles.get(namespace)
        if role is None:
            role = self.roles[namespace] = Role(
                o.name, namespace, [], labels=o.labels, annotations=o.annotations
            )
            self.objects.roles.append(role)
            self.objects.role_bindings.append(
                Binding(
                    o.name,
                    "Role",
                    o.name,
                    [self.subject],
                    namespace=namespace,
                    labels=o.labels,
                    annotations=o.annotations,
                )
            )
        return role


def generate(
    requests: Iterable[Attributes],
    existing: RBACObjects,
    options: Options | None = None,
    expanded: Mapping[Attributes, tuple[str, str]] | None = None,
    ordered: bool = False,
) -> RBACObjects:
    """Roles and bindings that allow ``requests`` (all of one user), as audit2rbac generates
    them: in :func:`sort_requests` order, each request already allowed by ``existing`` or by
    what was generated before it is skipped; the others add a rule for the request with its
    verb expanded and its namespace and name cleared by :func:`expansions`; each role's rules
    are compacted at the end. Equal requests after the first change nothing (the rule the
    first added allows them): they are dropped first. ``expanded``: what :func:`expansions`
    would return, and ``ordered``: ``requests`` are in :func:`sort_requests` order already,
    both worked out by the caller (from columns)."""
    options = options or Options()
    distinct = list(dict.fromkeys(requests))
    if not distinct:
        return RBACObjects()
    if expanded is None:
        expanded = expansions(distinct, options)
    allowed = Authorizer(existing)
    generated = _Generated(distinct[0].user, options)
    for r in distinct if ordered else sort_requests(distinct):
        if allowed.allows(r) or generated.allows(r):
            continue
        if not r.resource_request:
            namespace, rule = "", Rule.build([r.verb], urls=[r.path])
        else:
            namespace, name = expanded[r]
            verbs = [r.verb, *options.verb_expansions.get(r.verb, ())]
            names = [name] if name else []
            rule = Rule.build(verbs, [r.api_group], [r.combined], names)
        generated.add(namespace, rule)
    for role in (*generated.objects.cluster_roles, *generated.objects.roles):
        role.rules = compact_rules(role.rules)
    return generated.objects


# -- compaction --------------------------------------------------------------------------


def breakdown_rule(rule: Rule) -> list[Rule]:
    """One rule per group × resource × verb (× name), then per URL × verb."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(
                        Rule((verb,), (group,), (resource,), (name,))
                        for name in rule.resource_names
                    )
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    out.extend(
        Rule((verb,), non_resource_urls=(u,)) for u in rule.non_resource_urls for verb in rule.verbs
    )
    return out


def kube_compact(rules: Sequence[Rule]) -> list[Rule]:
    """Kubernetes' ``CompactRules``: rules on one group, one resource and at most one name
    have their verbs gathered into one rule (after the others; Go's map order is random,
    first seen here)."""
    others = []
    simple: dict[tuple[str, str, str | None], list[str]] = {}
    for rule in rules:
        if (
            len(rule.resource_names) <= 1
            and not rule.non_resource_urls
            and len(rule.api_groups) == 1
            and len(rule.resources) == 1
        ):
            key = (rule.api_groups[0], rule.resources[0], (rule.resource_names or (None,))[0])
            simple.setdefault(key, []).extend(rule.verbs)
        else:
            others.append(rule)
    for (group, resource, name), verbs in simple.items():
        others.append(
            Rule(tuple(verbs), (group,), (resource,), (name,) if name is not None else ())
        )
    return others


def compact_rules(rules: Sequence[Rule]) -> list[Rule]:
    """audit2rbac's compaction of one role's rules: break down, ``CompactRules``, verbs made a
    sorted set, rules equal but for their names merged (names united), then rules equal but for
    their resources merged; sorted by API groups, then ``CompactString``."""
    compacted = kube_compact([part for rule in rules for part in breakdown_rule(rule)])
    compacted = [replace(r, verbs=tuple(sorted(set(r.verbs)))) for r in compacted]
    merged: list[Rule] = []
    for rule in compacted:
        if not rule.resources:  # non-resource rules are kept as they are
            merged.append(rule)
            continue
        for j, other in enumerate(merged):
            if replace(rule, resource_names=()) == replace(other, resource_names=()):
                names = sorted(set(other.resource_names) | set(rule.resource_names))
                merged[j] = replace(other, resource_names=tuple(names))
                break
            if replace(rule, resources=()) == replace(other, resources=()):
                resources = sorted(set(other.resources) | set(rule.resources))
                merged[j] = replace(other, resources=tuple(resources))
                break
        else:
            merged.append(rule)
    merged.sort(key=lambda r: (",".join(r.api_groups), r.compact_string()))
    return merged
