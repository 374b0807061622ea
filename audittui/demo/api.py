"""The API's shapes: request paths, objectRefs, RBAC reasons and Status bodies."""

from __future__ import annotations

from typing import Any

from .catalog import RESOURCES

J = dict[str, Any]  # a JSON object


def path(
    resource: str, ns: str | None = None, name: str | None = None, sub: str | None = None
) -> str:
    """requestURI path for a resource (core ``/api/v1`` or group ``/apis/G/V``)."""
    group, version, _, namespaced = RESOURCES[resource]
    p = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if ns and namespaced:
        p += f"/namespaces/{ns}"
    p += f"/{resource}"
    if name:
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    return p


def ref(
    resource: str,
    ns: str | None = None,
    name: str | None = None,
    sub: str | None = None,
    uid: str | None = None,
    rv: str | None = None,
) -> J:
    """ObjectReference with the server's key order; empty fields omitted, core apiGroup omitted."""
    group, version, _, namespaced = RESOURCES[resource]
    ref: J = {"resource": resource}
    if resource == "namespaces" and name:
        ref["namespace"] = name  # the server fills namespace for the namespace object itself
    elif ns and namespaced:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    if uid:
        ref["uid"] = uid
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if rv:
        ref["resourceVersion"] = rv
    if sub:
        ref["subresource"] = sub
    return ref


def qualified(resource: str) -> str:
    """``pods`` or ``deployments.apps`` as used in API error messages."""
    group = RESOURCES[resource][0]
    return f"{resource}.{group}" if group else resource


def rb(binding: str, role: str, subject: str) -> str:
    """RBAC reason for a RoleBinding (``binding`` is ``name/namespace``)."""
    return f'RBAC: allowed by RoleBinding "{binding}" of ClusterRole "{role}" to {subject}'


def crb(name: str, subject: str, role: str | None = None) -> str:
    """RBAC reason for a ClusterRoleBinding."""
    return (
        f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole "{role or name}" to {subject}'
    )


def conflict_msg(qualified: str, name: str) -> str:
    return (
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def ok(code: int = 200) -> J:
    return {"metadata": {}, "code": code}


def failure(code: int, reason: str, message: str, details: J | None = None) -> J:
    st: J = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


def details(resource: str, name: str | None = None, **extra: Any) -> J:
    d: J = {}
    if name:
        d["name"] = name
    group = RESOURCES[resource][0]
    if group:
        d["group"] = group
    d["kind"] = resource
    d.update(extra)
    return d


def status_object(st: J) -> J:
    """The Status body a RequestResponse-level failure carries as responseObject."""
    return {"kind": "Status", "apiVersion": "v1", **st}
