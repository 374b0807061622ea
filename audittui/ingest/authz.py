"""The authorizer's reason (``authorization.k8s.io/reason``), read: which authorizer decided
and, for RBAC, the binding that allowed the request, its role and the subject it names.

The API server's RBAC authorizer writes ``RBAC: allowed by ClusterRoleBinding "b" of
ClusterRole "r" to Group "g"`` (a RoleBinding as ``"b/namespace"``, a ServiceAccount as
``"name/namespace"``); older servers wrote the binding unquoted and nothing after it. The Node
authorizer's reasons name a node; a webhook's (GKE's IAM, EKS) are its own sentences. A reason
in any other shape is kept as text (``reason:`` in queries) and read as nothing here.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple


class Grant(NamedTuple):
    """What a reason says; None for what it does not say."""

    authorizer: str | None  # RBAC, Node, Webhook
    binding: str | None  # the binding's name (a RoleBinding's namespace apart)
    binding_kind: str | None  # ClusterRoleBinding, RoleBinding
    binding_namespace: str | None
    role: str | None
    role_kind: str | None  # ClusterRole, Role
    subject_kind: str | None  # User, Group, ServiceAccount
    subject: str | None  # a ServiceAccount as namespace:name, as in its username

    def label(self, field: str) -> str | None:
        """The binding (``ClusterRoleBinding/cluster-admin``, ``RoleBinding/ns/b``) or the role
        (``ClusterRole/view``, ``Role/ns/r``) with its kind and namespace: what tells apart
        equal names. None when the reason names none."""
        if field == "binding" and self.binding is not None:
            where = f"{self.binding_namespace}/" if self.binding_namespace else ""
            return f"{self.binding_kind}/{where}{self.binding}"
        if field == "role" and self.role is not None:
            local = self.role_kind == "Role" and self.binding_namespace  # a Role is namespaced
            where = f"{self.binding_namespace}/" if local else ""
            return f"{self.role_kind}/{where}{self.role}"
        return None


NOTHING = Grant(None, None, None, None, None, None, None, None)

_NAME = r'"((?:[^"\\]|\\.)*)"|(\S+)'  # quoted (with Go escapes) or, from old servers, bare
_RBAC = re.compile(
    rf"RBAC: allowed by (ClusterRoleBinding|RoleBinding)(?: (?:{_NAME}))?"
    rf"(?: of (ClusterRole|Role) (?:{_NAME}))?"
    rf"(?: to (User|Group|ServiceAccount) (?:{_NAME}))?\Z"
)
_NODE = re.compile(r"\bnode ['\"]|\bno relationship found between node\b|^node\b")
_WEBHOOK = re.compile(r"\bIAM\b|\bwebhook\b", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def parse_reason(reason: str | None) -> Grant:
    """The grant a reason names (:data:`NOTHING` for an empty or unknown one)."""
    if not reason:
        return NOTHING
    m = _RBAC.match(reason)
    if m:
        binding, role, subject = _pick(m, 2), _pick(m, 5), _pick(m, 8)
        namespace = None
        if m.group(1) == "RoleBinding" and binding and "/" in binding:
            binding, namespace = binding.rsplit("/", 1)
        kind = m.group(7)
        if kind == "ServiceAccount" and subject and "/" in subject:
            name, ns = subject.rsplit("/", 1)
            subject = f"{ns}:{name}"
        return Grant("RBAC", binding, m.group(1), namespace, role, m.group(4), kind, subject)
    if reason.startswith("RBAC:"):
        return NOTHING._replace(authorizer="RBAC")
    if _NODE.search(reason):
        return NOTHING._replace(authorizer="Node")
    if _WEBHOOK.search(reason):
        return NOTHING._replace(authorizer="Webhook")
    return NOTHING


def _pick(m: re.Match[str], group: int) -> str | None:
    quoted, bare = m.group(group), m.group(group + 1)
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted)
    return bare
