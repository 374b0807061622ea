"""An ``audit.k8s.io/v1`` Policy: loaded from YAML or JSON, validated as the API server does,
and evaluated on logged events exactly like its policy checker (first matching rule wins).

Sharp edges kept on purpose, as the server has them: ``group`` omitted is the core group only;
``pods/*`` also matches plain ``pods``; ``namespaces: [""]`` is cluster-scoped requests and
all-namespace lists; ``resourceNames`` compares with the name in the URL (none for create and
list); ``omitStages`` is the union of the policy's and the rule's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..ingest.requestinfo import Attributes, attributes
from ..ingest.schema import LEVELS, STAGES

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_RULE_KEYS = {
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
}
_POLICY_KEYS = {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}


class PolicyError(ValueError):
    """Every validation error of a policy, each naming the rule index and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class GroupResources:
    group: str  # "" the core group, "*" any
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]

    def matches(self, a: Attributes) -> bool:
        if self.group not in ("*", a.group):
            return False
        if not self.resources:
            return True
        if self.resource_names and a.name not in self.resource_names:
            return False
        return resource_matches(self.resources, a.resource, a.subresource)


def resource_matches(resources: tuple[str, ...], resource: str, sub: str) -> bool:
    """Whether a rule's ``resources`` entries select ``resource`` / ``sub`` (checker.go)."""
    combined = f"{resource}/{sub}" if sub else resource
    for res in resources:
        if res == "*" or res == combined:
            return True
        if res.startswith("*/") and sub and res[2:] == sub:
            return True
        # R/* matches R with or without a subresource: the checker compares only R.
        if res.endswith("/*") and res[:-2] == resource:
            return True
    return False


@dataclass(frozen=True)
class Rule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()  # already the union with the policy's

    def matches(self, a: Attributes) -> bool:
        if self.users and (a.user is None or a.user not in self.users):
            return False
        if self.user_groups and (a.user is None or not set(a.groups) & set(self.user_groups)):
            return False
        if self.verbs and a.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            if not a.resource_request:
                return False
            if self.namespaces and a.namespace not in self.namespaces:
                return False
            return not self.resources or any(g.matches(a) for g in self.resources)
        if self.non_resource_urls:
            return not a.resource_request and any(
                url_matches(u, a.path) for u in self.non_resource_urls
            )
        return True


def url_matches(rule: str, path: str) -> bool:
    if rule == "*" or rule == path:
        return True
    return rule.endswith("*") and path.startswith(rule.rstrip("*"))


@dataclass(frozen=True)
class Result:
    rule: int | None  # index of the matching rule; None when no rule matches
    level: str
    omit_stages: set[str]  # a copy: the caller may change it
    approximate: bool = False


@dataclass
class Policy:
    rules: list[Rule]
    omit_stages: frozenset[str] = frozenset()
    warnings: list[str] = field(default_factory=list)

    def evaluate(self, event: dict[str, Any]) -> Result:
        """What this policy decides for the request that logged ``event``."""
        return self.decide(attributes(event))

    def decide(self, a: Attributes) -> Result:
        for k, rule in enumerate(self.rules):
            if rule.matches(a):
                return Result(k, rule.level, set(rule.omit_stages), a.approximate)
        return Result(None, "None", set(self.omit_stages), a.approximate)


def load(path: str | Path) -> Policy:
    """A policy file (YAML or JSON) → :class:`Policy`; raises :class:`PolicyError`."""
    try:
        with open(path, "rb") as f:
            doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise PolicyError([f"{path}: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"{path}: not valid YAML or JSON: {exc}".replace("\n", " ")]) from None
    return parse(doc)


def parse(doc: Any) -> Policy:
    """A parsed policy document → :class:`Policy`, validated as the API server does."""
    errors: list[str] = []
    warnings: list[str] = []
    if not isinstance(doc, dict):
        raise PolicyError(["the document is not a mapping (a Policy has apiVersion, kind, rules)"])
    if doc.get("apiVersion") != "audit.k8s.io/v1":
        errors.append(f"apiVersion: must be audit.k8s.io/v1, not {doc.get('apiVersion')!r}")
    if doc.get("kind") != "Policy":
        errors.append(f"kind: must be Policy, not {doc.get('kind')!r}")
    warnings += [f"{k}: unknown field (ignored)" for k in doc if k not in _POLICY_KEYS]
    policy_stages = _stages(doc.get("omitStages"), "omitStages", errors)
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        errors.append("rules: at least one rule is required")
        raw_rules = []
    rules: list[Rule] = []
    for k, raw in enumerate(raw_rules):
        rule = _rule(raw, f"rules[{k}]", policy_stages, errors, warnings)
        if rule is not None:
            rules.append(rule)
    if errors:
        raise PolicyError(errors)
    return Policy(rules, frozenset(policy_stages), warnings)


def _rule(
    raw: Any, where: str, policy_stages: set[str], errors: list[str], warnings: list[str]
) -> Rule | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: a rule must be a mapping")
        return None
    warnings += [f"{where}.{k}: unknown field (ignored)" for k in raw if k not in _RULE_KEYS]
    level = raw.get("level")
    if level is None or level == "":
        errors.append(f"{where}.level: required")
    elif level not in LEVELS:
        errors.append(f"{where}.level: {level!r} is not one of {', '.join(LEVELS)}")
    users = _strings(raw.get("users"), f"{where}.users", errors)
    groups = _strings(raw.get("userGroups"), f"{where}.userGroups", errors)
    verbs = _strings(raw.get("verbs"), f"{where}.verbs", errors)
    namespaces = _strings(raw.get("namespaces"), f"{where}.namespaces", errors)
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs", errors)
    for j, url in enumerate(urls):
        at = f"{where}.nonResourceURLs[{j}]"
        if url == "*":
            continue
        if not url.startswith("/"):
            errors.append(f"{at}: {url!r}: non-resource URLs must begin with '/'")
        if "*" in url[:-1]:
            errors.append(f"{at}: {url!r}: '*' may only be the last character")
    resources: list[GroupResources] = []
    raw_resources = raw.get("resources") or []
    if not isinstance(raw_resources, list):
        errors.append(f"{where}.resources: must be a list")
        raw_resources = []
    for j, gr in enumerate(raw_resources):
        at = f"{where}.resources[{j}]"
        if not isinstance(gr, dict):
            errors.append(f"{at}: must be a mapping with group, resources, resourceNames")
            continue
        group = gr.get("group") or ""
        if not isinstance(group, str) or (
            group not in ("", "*") and (len(group) > 253 or not _DNS_SUBDOMAIN.match(group))
        ):
            errors.append(f"{at}.group: {group!r} must be '', '*' or a DNS subdomain")
            group = str(group)
        names = _strings(gr.get("resourceNames"), f"{at}.resourceNames", errors)
        res = _strings(gr.get("resources"), f"{at}.resources", errors)
        if names and not res:
            errors.append(f"{at}.resourceNames: using resourceNames requires resources")
        resources.append(GroupResources(group, tuple(res), tuple(names)))
    if urls and (resources or namespaces):
        errors.append(
            f"{where}.nonResourceURLs: a rule cannot apply to both resources (or namespaces)"
            " and non-resource URLs"
        )
    stages = _stages(raw.get("omitStages"), f"{where}.omitStages", errors)
    return Rule(
        level if level in LEVELS else "None",
        tuple(users),
        tuple(groups),
        tuple(verbs),
        tuple(resources),
        tuple(namespaces),
        tuple(urls),
        frozenset(stages | policy_stages),
    )


def _strings(value: Any, where: str, errors: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: must be a list of strings")
        return []
    return value


def _stages(value: Any, where: str, errors: list[str]) -> set[str]:
    stages = _strings(value, where, errors)
    for s in stages:
        if s not in STAGES:
            errors.append(f"{where}: {s!r} is not a stage ({', '.join(STAGES)})")
    return {s for s in stages if s in STAGES}
