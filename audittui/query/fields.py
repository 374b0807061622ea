"""The query language's fields: each canonical name and the store column it reads, the aliases,
and which fields compare without case or hold several values per event. Both compilers (the
numpy evaluator and SQL) and completion read this one table."""

from __future__ import annotations

from typing import Any

# Canonical field → store column; aliases map to canonical names.
STRING_FIELDS = {
    "user": "user",
    "group": "groups",
    "as": "impersonated",
    "verb": "verb",
    "resource": "resource",
    "sub": "subresource",
    "api": "api",
    "ns": "namespace",
    "name": "name",
    "stage": "stage",
    "level": "level",
    "decision": "decision",
    "ip": "ips",
    "ua": "user_agent",
    "id": "audit_id",
    "uri": "uri",
    "cred": "credential",
    "server": "server",
    "login": "login",
    "reason": "reason",
    # read from the authorizer's reason (see ingest.authz): the binding that allowed a request
    "binding": "reason",
    "role": "reason",
    "authorizer": "reason",
}
GRANT_FIELDS = ("binding", "role", "authorizer")
# cluster: the cluster a shipper named (a ClickHouse store); events read from files have none
OTHER_FIELDS = ("code", "dur", "after", "before", "since", "finding", "rule", "cluster")
ALIASES = {
    "u": "user",
    "g": "group",
    "v": "verb",
    "res": "resource",
    "r": "resource",
    "status": "code",
    "namespace": "ns",
}
FIELDS = tuple(STRING_FIELDS) + OTHER_FIELDS
CASE_INSENSITIVE = {"stage", "level", "decision", "authorizer"}
MULTI_VALUED = {"groups", "ips"}


def display_api(value: Any) -> Any:
    """The core API group is stored as "" and written ``core`` in queries."""
    return "core" if value == "" else value
