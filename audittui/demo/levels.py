"""The demo cluster's audit policy (``templates/policy.yaml``) and the level it gives a request.

A small copy of the API server's policy checker (first matching rule wins; ``group`` omitted
is the core group; ``R/*`` matches R with or without a subresource, ``*/S`` any R's S;
``namespaces: [""]`` is cluster-scoped requests; ``resourceNames`` compares with the name in
the URL; ``omitStages`` is the union of the policy's and the rule's). It is a copy because the
generator sits below :mod:`audittui.policy` in the package's layers (tests/test_layers.py);
tests/test_demo_stories.py checks that both decide the same on every generated event.

The generator knows each request's attributes as it builds it (the scenarios derive the URI
and ``objectRef`` from the same values), so no URI is parsed here; the decisions are cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from .api import J
from .template import FOLDER

POLICY_FILE = "policy.yaml"


@dataclass(frozen=True)
class _Resources:
    group: str  # "*" any
    resources: tuple[str, ...]
    names: tuple[str, ...]

    def matches(self, group: str, resource: str, sub: str, name: str) -> bool:
        if self.group not in ("*", group):
            return False
        if not self.resources:
            return True
        if self.names and name not in self.names:
            return False
        combined = f"{resource}/{sub}" if sub else resource
        for res in self.resources:
            if res in ("*", combined) or (res.startswith("*/") and sub and res[2:] == sub):
                return True
            if res.endswith("/*") and res[:-2] == resource:
                return True
        return False


@dataclass(frozen=True)
class _Rule:
    level: str
    users: frozenset[str]
    groups: frozenset[str]
    verbs: frozenset[str]
    resources: tuple[_Resources, ...]
    namespaces: frozenset[str]
    urls: tuple[str, ...]
    omit: frozenset[str]


@dataclass(frozen=True)
class Decision:
    level: str  # None (not logged), Metadata, Request or RequestResponse
    omit_stages: frozenset[str]


Key = tuple[str | None, tuple[str, ...], str, bool, str, str, str, str, str, str]


class Policy:
    """An ``audit.k8s.io/v1`` Policy as the API server applies it to one request."""

    def __init__(self, doc: J) -> None:
        # A malformed policy is a bug in the shipped file: fail loudly (KeyError/TypeError).
        if doc.get("apiVersion") != "audit.k8s.io/v1" or doc.get("kind") != "Policy":
            raise ValueError("the demo's policy must be an audit.k8s.io/v1 Policy")
        stages = frozenset(doc.get("omitStages") or ())
        self.omit = stages
        self.rules = [
            _Rule(
                raw["level"],
                frozenset(raw.get("users") or ()),
                frozenset(raw.get("userGroups") or ()),
                frozenset(raw.get("verbs") or ()),
                tuple(
                    _Resources(
                        g.get("group", ""),
                        tuple(g.get("resources") or ()),
                        tuple(g.get("resourceNames") or ()),
                    )
                    for g in raw.get("resources") or ()
                ),
                frozenset(raw.get("namespaces") or ()),
                tuple(raw.get("nonResourceURLs") or ()),
                stages | frozenset(raw.get("omitStages") or ()),
            )
            for raw in doc["rules"]
        ]
        self._cache: dict[Key, Decision] = {}

    def decide(self, user: J, verb: str, uri: str, ref: J | None) -> Decision:
        """The level of the request ``verb uri`` by ``user`` (the authenticated one: the policy
        is evaluated before impersonation). ``ref``: the objectRef of its RequestReceived stage
        (what the URL names; None for a non-resource request)."""
        username = user.get("username")
        groups = tuple(user.get("groups") or ())
        if ref is None:
            key: Key = (username, groups, verb, False, "", "", "", "", "", uri.partition("?")[0])
        else:
            ns = ref.get("namespace", "")
            if ref["resource"] == "namespaces":  # /api/v1/namespaces/NAME: the checker's ns
                ns = ref.get("name", "")
            name = ref.get("name", "")
            if not name and verb in ("list", "watch"):
                name = _selector_name(uri)
            key = (
                username,
                groups,
                verb,
                True,
                ref.get("apiGroup", ""),
                ref["resource"],
                ref.get("subresource", ""),
                ns,
                name,
                "",
            )
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._decide(key)
        return hit

    def _decide(self, key: Key) -> Decision:
        user, groups, verb, resource_request, group, resource, sub, ns, name, path = key
        for rule in self.rules:
            if rule.users and (user is None or user not in rule.users):
                continue
            if rule.groups and (user is None or not rule.groups.intersection(groups)):
                continue
            if rule.verbs and verb not in rule.verbs:
                continue
            if rule.namespaces or rule.resources:
                if not resource_request or (rule.namespaces and ns not in rule.namespaces):
                    continue
                if rule.resources and not any(
                    g.matches(group, resource, sub, name) for g in rule.resources
                ):
                    continue
            elif rule.urls and (
                resource_request or not any(_url_matches(u, path) for u in rule.urls)
            ):
                continue
            return Decision(rule.level, rule.omit)
        return Decision("None", self.omit)


def _url_matches(rule: str, path: str) -> bool:
    return rule in ("*", path) or (rule.endswith("*") and path.startswith(rule.rstrip("*")))


def _selector_name(uri: str) -> str:
    """A list or watch's ``fieldSelector=metadata.name=X`` (URL-encoded as the generator writes
    it), which the checker takes for the request's name."""
    for part in uri.partition("?")[2].split("&"):
        if part.startswith("fieldSelector=metadata.name%3D"):
            return part.removeprefix("fieldSelector=metadata.name%3D")
    return ""


@cache
def demo_policy() -> Policy:
    """The shipped policy, loaded once."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Policy(yaml.load((FOLDER / POLICY_FILE).read_text(), Loader=loader))
