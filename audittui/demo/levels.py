"""The demo cluster's audit policy (``templates/policy.yaml``) and the level it gives a request.

The project's own policy checker decides (:mod:`audittui.policy.model`, the API server's
semantics). The generator knows each request's attributes as it builds it (the scenarios derive
the URI and ``objectRef`` from the same values), so no URI is parsed here; the decisions are
cached by those attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from ..policy import Attributes
from ..policy.model import parse
from .api import J
from .template import FOLDER

POLICY_FILE = "policy.yaml"


@dataclass(frozen=True)
class Decision:
    level: str  # None (not logged), Metadata, Request or RequestResponse
    omit_stages: frozenset[str]


Key = tuple[str | None, tuple[str, ...], str, bool, str, str, str, str, str, str]


class Policy:
    """An ``audit.k8s.io/v1`` Policy as the API server applies it to one request: the
    project's checker (:mod:`audittui.policy.model`), its decisions cached by what it reads."""

    def __init__(self, doc: J) -> None:
        # A malformed policy is a bug in the shipped file: fail loudly.
        self.checker = parse(doc)
        if self.checker.warnings:
            raise ValueError(f"the demo's policy: {'; '.join(self.checker.warnings)}")
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
        attrs = Attributes(
            user, groups, verb, resource_request, group, resource, sub, ns, name, path
        )
        result = self.checker.decide(attrs)
        return Decision(result.level, frozenset(result.omit_stages))


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
