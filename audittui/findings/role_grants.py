"""What the role behind an event grants, for rules with ``role_grants`` (a person using a role
that grants every verb): the role is the one the authorizer's reason names, its rules are read
from its newest body in the log (:func:`~audittui.analyses.rbac_diff.role_bodies`). A role
whose body the log does not hold grants nothing known: such events do not match, and a log
holding no role body at all makes the rule blind rather than silent.
"""

from __future__ import annotations

import numpy as np

from ..analyses.rbac_diff import logged_with_body, role_bodies
from ..analyses.rbac_rules import Rule
from ..index.store import Events
from ..ingest.authz import Grant, parse_reason
from .rules import RoleGrants

RoleKey = tuple[str, str, str]  # (ClusterRole | Role, a Role's namespace, name)


class RoleRules:
    """Decides ``role_grants`` for events; the reasons' roles are parsed once per reason."""

    def __init__(self) -> None:
        self._role_of: dict[int, RoleKey | None] = {}  # reason code → the role it names

    def granting(self, events: Events, want: RoleGrants, rows: np.ndarray) -> np.ndarray:
        """Per row, does the role that allowed it grant what ``want`` says?"""
        codes = events.column("reason")[rows]
        distinct = np.unique(codes)
        values = events.tables["reason"].values
        for c in distinct.tolist():
            if c not in self._role_of:
                self._role_of[c] = _role(parse_reason(values[c])) if c else None
        roles = {self._role_of[c] for c in distinct.tolist()} - {None}
        # Read again each time: a role's newest body (an update) is the one that counts.
        bodies = role_bodies(events, {r for r in roles if r is not None})
        ok = np.array(
            [
                (role := self._role_of[c]) is not None
                and role in bodies
                and any(_grants(rule, want) for rule in bodies[role].rules)
                for c in distinct.tolist()
            ],
            dtype=bool,
        )
        return ok[np.searchsorted(distinct, codes)]


def _role(g: Grant) -> RoleKey | None:
    if g.role is None or g.role_kind not in ("ClusterRole", "Role"):
        return None
    return (g.role_kind, (g.binding_namespace or "") if g.role_kind == "Role" else "", g.role)


def _grants(rule: Rule, want: RoleGrants) -> bool:
    return (not want.verbs or bool(set(rule.verbs) & set(want.verbs))) and (
        not want.resources or bool(set(rule.resources) & set(want.resources))
    )


def any_role_body(events: Events) -> bool:
    """Does the log hold any Role or ClusterRole write or read logged with its body?"""
    return bool(logged_with_body(events).any())
