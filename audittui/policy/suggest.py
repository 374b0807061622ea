"""``policy suggest``: the noisiest (user, verb, resource) combinations of a log by bytes, each
with a rule to paste at the top of the policy and what it would save.

Reads by system identities (nodes, controllers) become ``level: None``; combinations logged
with bodies become ``level: Metadata`` (the bodies' share measured on a sample). A combination
that a finding looks at is never silenced, and keeps its bodies when that finding reads them:
tuning the policy must not blind the detections. (First-seen rules, which learn each user's
usual clients and addresses from all their traffic, are not counted as looking.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..ingest.schema import METADATA
from .over_store import logged_levels
from .simulate import _kept_share

if TYPE_CHECKING:
    from ..findings import Findings
    from ..index.store import Events

READS = ("get", "list", "watch")
NODE_PREFIX = "system:node:"


@dataclass
class Suggestion:
    level: str
    users: list[str]
    user_groups: list[str]
    verb: str
    group: str | None  # API group; None for a non-resource request
    resource: str  # "pods" or "pods/log"; the path for a non-resource request
    events: int
    bytes_now: int
    saves: int

    def yaml(self) -> str:
        """The rule as a YAML list item, ready to paste into ``rules:``."""
        lines = [f"- level: {self.level}"]
        if self.user_groups:
            lines.append(f"  userGroups: [{', '.join(_q(g) for g in self.user_groups)}]")
        if self.users:
            lines.append(f"  users: [{', '.join(_q(u) for u in self.users)}]")
        lines.append(f"  verbs: [{_q(self.verb)}]")
        if self.group is None:
            lines.append(f"  nonResourceURLs: [{_q(self.resource)}]")
        else:
            lines.append(
                f"  resources: [{{group: {_q(self.group)}, resources: [{_q(self.resource)}]}}]"
            )
        return "\n".join(lines)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def suggest(store: Events, findings: Findings | None = None, top: int = 10) -> list[Suggestion]:
    n = len(store)
    if not n:
        return []
    cols = ["user", "verb", "api", "resource", "subresource", "uri"]
    users = store.column("user")[:n]
    # Nodes are one identity for a policy (userGroups system:nodes): fold them before grouping.
    user_values = store.tables["user"].values
    node = np.array([bool(u) and u.startswith(NODE_PREFIX) for u in user_values], dtype=bool)
    user_key = np.where(node[users], -1, users)
    api = store.column("api")[:n]
    non_resource = np.array([v is None for v in store.tables["api"].values], dtype=bool)[api]
    # The URI groups non-resource requests only (their path is what a rule selects).
    uri = np.where(non_resource, store.column("uri")[:n], 0)
    keys = np.stack([user_key, *(store.column(c)[:n] for c in cols[1:5]), uri], axis=1).astype(
        np.int64
    )
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    length = store.column("length")[:n].astype(np.int64)
    bytes_by = np.bincount(inverse, weights=length).astype(np.int64)
    count_by = np.bincount(inverse)
    logged = logged_levels(store, n)
    watched, bodies_read = _watched(store, findings)
    out: list[Suggestion] = []
    for g in np.argsort(-bytes_by).tolist():
        if len(out) >= top:
            break
        rows = np.flatnonzero(inverse == g)
        user_code, verb_c, api_c, res_c, sub_c, uri_c = uniq[g].tolist()
        verb = store.tables["verb"].values[verb_c] or ""
        user = None if user_code == -1 else user_values[user_code]
        if user_code == 0:
            continue  # no user (failed authentication): nothing a policy rule could name
        system = user is None or user.startswith("system:")
        if watched[rows].any():
            if bodies_read[rows].any() or not (logged[rows] >= 2).any():
                continue
            level = METADATA
        elif system and verb in READS:
            level = "None"
        elif (logged[rows] >= 2).any():
            level = METADATA
        else:
            continue
        if level == "None":
            saves = int(bytes_by[g])
        else:
            with_body = rows[logged[rows] >= 2]
            sample = with_body[:200]
            keep = _kept_share(store, sample, 1)
            saves = int(length[with_body].sum() * (1 - keep))
        api_value = store.tables["api"].values[api_c]
        res = store.tables["resource"].values[res_c] or ""
        sub = store.tables["subresource"].values[sub_c]
        out.append(
            Suggestion(
                level,
                [] if user is None else [user],
                ["system:nodes"] if user is None else [],
                verb,
                api_value,
                (store.tables["uri"].values[uri_c] or "").partition("?")[0]
                if api_value is None
                else (f"{res}/{sub}" if sub else res),
                int(count_by[g]),
                int(bytes_by[g]),
                saves,
            )
        )
    return sorted(out, key=lambda s: -s.saves)


def _watched(store: Events, findings: Findings | None) -> tuple[np.ndarray, np.ndarray]:
    """Events some finding looks at, and those whose body a finding reads."""
    n = len(store)
    watched = np.zeros(n, dtype=bool)
    bodies = np.zeros(n, dtype=bool)
    if findings is None:
        return watched, bodies
    from ..findings.engine import selection_mask

    for rule in findings.rules:
        # First-seen rules learn from everything a user does; they still see the rest of it.
        if rule.node is None or rule.first_seen:
            continue
        mask = selection_mask(rule, store)[:n]
        watched |= mask
        if "request" in rule.needs or "response" in rule.needs:
            bodies |= mask
    return watched, bodies
