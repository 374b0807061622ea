"""A request URI → what the API server's request-info parser makes of it; a logged event → the
attributes its audit policy checker sees.

The request's group, version, namespace, resource, subresource and name are derived from
``requestURI`` the way the API server does (``k8s.io/apiserver/pkg/endpoints/request``,
``requestinfo.go``). Reading, not policy: ingest fills in the request of legacy text lines
(which log only the URI) with :func:`parse_uri` and :func:`http_verb`; the policy lab checks
events with :func:`attributes`, where the name comes from the URL (or a list's
``fieldSelector=metadata.name=``), never from ``objectRef.name``, which creates back-fill from
the body. ``objectRef`` is the fallback when the URI is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API_PREFIXES = ("api", "apis")
NAMESPACE_SUBRESOURCES = ("status", "finalize")  # /namespaces/NAME/status is the namespace's own
SPECIAL_VERBS = ("proxy", "watch")  # /api/v1/watch/pods: the verb as a path prefix (deprecated)


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
    version: str = ""
    special_verb: str = ""  # the deprecated /watch/ or /proxy/ prefix: the request's verb
    path_name: str = ""  # the name the path itself holds (a list's selector name is not one)


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
    version, parts = parts[0], parts[1:]
    special_verb = ""
    if parts and parts[0] in SPECIAL_VERBS and len(parts) >= 2:
        special_verb, parts = parts[0], parts[1:]  # deprecated /proxy/ and /watch/ prefixes
    namespace = ""
    if parts and parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = path_name = parts[1] if len(parts) >= 2 else ""
    # a proxy request's path after the name is the proxied path, not a subresource
    subresource = parts[2] if len(parts) >= 3 and (special_verb or verb) != "proxy" else ""
    selector_name = ""
    for selector in parse_qs(split.query).get("fieldSelector", []):
        for term in selector.split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name":  # metadata.name=X or ==X; != is not a name
                selector_name = value[1:] if value.startswith("=") else value
    if not name and verb in ("list", "watch"):
        name = selector_name
    return _Parsed(
        True,
        path,
        group,
        resource,
        subresource,
        namespace,
        name,
        selector_name,
        version,
        special_verb,
        path_name,
    )


_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                 "PATCH": "patch", "DELETE": "delete"}  # fmt: skip


def http_verb(method: str, uri: str) -> str:
    """The verb the API server gives a request with this HTTP method and URI (what the oldest
    audit lines log instead of a verb): a resource request's verb from its method, a get without
    a name being a list (or, with ``?watch=`` not false or 0, a watch) and a delete without one a
    deletecollection; a /watch/ or /proxy/ prefix is the verb itself; any other request's verb is
    its method in lower case (``post`` on /healthz). An unknown method on a resource is ""."""
    parsed = parse_uri(uri, "")
    if not parsed.resource_request:
        return method.lower()
    if parsed.special_verb:
        return parsed.special_verb
    verb = _METHOD_VERBS.get(method, "")  # as Go's switch: "get" is no method
    if not parsed.path_name and verb == "get":
        # Go reads the first watch= value; a blank one is true (only "false" and "0" are not)
        watch = parse_qs(urlsplit(uri).query, keep_blank_values=True).get("watch")
        verb = "list" if not watch or watch[0].lower() in ("false", "0") else "watch"
    if not parsed.path_name and verb == "delete":
        verb = "deletecollection"
    return verb


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
