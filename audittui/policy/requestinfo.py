"""A logged event → the attributes the API server's audit policy checker sees.

The request's namespace, resource, subresource and name are derived from ``requestURI`` the way
the API server's request-info parser does (``k8s.io/apiserver/pkg/endpoints/request``): the name
comes from the URL (or a list's ``fieldSelector=metadata.name=``), never from ``objectRef.name``,
which creates back-fill from the body. ``objectRef`` is the fallback when the URI is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API_PREFIXES = ("api", "apis")
NAMESPACE_SUBRESOURCES = ("status", "finalize")  # /namespaces/NAME/status is the namespace's own


@dataclass(frozen=True)
class Attributes:
    user: str | None
    groups: tuple[str, ...]
    verb: str
    resource_request: bool
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # decoded URL path without the query (non-resource requests)
    approximate: bool = False  # too little in the event to decide as the server did


@dataclass(frozen=True)
class _Parsed:
    resource_request: bool
    path: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""  # from the path
    selector_name: str = ""  # from fieldSelector=metadata.name=X: a list or watch's name


def url_path(uri: str) -> str:
    """The decoded path of a request URI, without its query."""
    path = uri.partition("?")[0].partition("#")[0]
    return unquote(path) if "%" in path else path


def parse_uri(uri: str, verb: str) -> _Parsed:
    """``requestURI`` → what the request-info parser makes of it."""
    split = urlsplit(uri)
    path = url_path(uri)
    parts = path.strip("/").split("/") if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return _Parsed(False, path)
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":  # /apis/GROUP/VERSION/…; /api/v1/… is the core group
        if len(parts) < 3:
            return _Parsed(False, path)
        group, parts = parts[0], parts[1:]
    parts = parts[1:]  # the version
    if parts and parts[0] in ("proxy", "watch") and len(parts) >= 2:
        parts = parts[1:]  # deprecated /proxy/ and /watch/ prefixes
    namespace = ""
    if parts and parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    selector_name = ""
    for selector in parse_qs(split.query).get("fieldSelector", []):
        for term in selector.split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name":  # metadata.name=X or ==X; != is not a name
                selector_name = value[1:] if value.startswith("=") else value
    if not name and verb in ("list", "watch"):
        name = selector_name
    return _Parsed(True, path, group, resource, subresource, namespace, name, selector_name)


def attributes(event: dict[str, Any]) -> Attributes:
    """The policy checker's view of one logged event (any shape audittui reads).

    A resource request is one with an ``objectRef`` (the server sets it exactly for those);
    its namespace, resource, subresource and name come from the URI when it parses as one."""
    user = _dict(event.get("user")) or {}
    username = user.get("username") if isinstance(user.get("username"), str) else None
    listed = user.get("groups")
    groups = tuple(g for g in listed if isinstance(g, str)) if isinstance(listed, list) else ()
    verb = _s(event.get("verb"))
    uri = _s(event.get("requestURI"))
    ref = _dict(event.get("objectRef"))
    flattened = ref is None and ("resource" in event or "namespace" in event)
    if flattened:
        ref = event if event.get("resource") else None  # the SIEM shape keeps them on top
    parsed = parse_uri(uri, verb) if uri else None
    approximate = flattened or not uri
    if ref is None:
        return Attributes(
            username,
            groups,
            verb,
            False,
            path=parsed.path if parsed else "",
            approximate=approximate,
        )
    if parsed is not None and parsed.resource_request:
        return Attributes(
            username,
            groups,
            verb,
            True,
            parsed.group,
            parsed.resource,
            parsed.subresource,
            parsed.namespace,
            parsed.name,
            parsed.path,
            approximate,
        )
    group = ref.get("apiGroup")  # no usable URI: objectRef, whose name may come from the body
    if not isinstance(group, str):
        version = ref.get("apiVersion")
        group = version.rpartition("/")[0] if isinstance(version, str) else ""
    if group == "core":  # converters' name for the core group "", as the index reads it
        group = ""
    return Attributes(
        username,
        groups,
        verb,
        True,
        group,
        _s(ref.get("resource")),
        _s(ref.get("subresource")),
        _s(ref.get("namespace")),
        _s(ref.get("name")),
        approximate=True,
    )


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
