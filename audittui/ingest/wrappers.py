"""Audit events inside the wrappers clouds, container runtimes and vendor tools put around them.

Text lines (tried when a line is not JSON): CRI runtime lines (``<time> stdout F <json>``),
``oc adm node-logs`` lines prefixed with the node name, ``aws logs tail`` and CloudWatch export
lines prefixed with a time (and a log stream), and the API server's legacy text format
(``<time> AUDIT: id="…" …``). JSON envelopes (tried on objects that are not events): GKE / Cloud
Logging entries (``protoPayload``, or a Go ``logging.Entry``, mapped to an audit.k8s.io/v1
Event), Docker json-file lines, CloudWatch ``filter-log-events``/``get-log-events`` output,
subscription ``DATA_MESSAGE`` payloads and Logs Insights results. Lines a runtime split (CRI
``P`` pieces, Docker's 16 KiB records) are joined by the batch builder and the follower, which
ask :func:`partial`. Layouts: ../shared/docs/wrapped-formats.md, section A.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from . import deep, requestinfo
from .schema import COMPLETE, METADATA, RECEIVED, REQUEST, REQUEST_RESPONSE, STARTED

SERVER = "audittui/server"  # formats.SERVER (kept here: formats imports this module)

# -- text lines ------------------------------------------------------------------------------

_CRI_HEAD = r"^(\S+) (?:stdout|stderr) (?:([FP])(?::\S*)? )?"  # time, stream, tag
_CRI = re.compile(_CRI_HEAD.encode() + rb"(.*)$", re.DOTALL)
_CRI_TEXT = re.compile(_CRI_HEAD)
KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")  # a component's own log line, not an event
_PREFIXED = re.compile(rb"^(\S+ ){1,2}(?=\{)")  # node name, time, or time and log stream
_LEGACY = re.compile(rb"^(\S+) AUDIT: (.*)$", re.DOTALL)
# A Go %q string, or one cut short at the end of the text: matching the unterminated string
# to the end consumes it (else each escaped quote in it would start a search to the end
# again: quadratic). Group 2 holds the closing quote.
_QUOTED = r'"((?:[^"\\]|\\.)*)(?:(")|\\?\Z)'
# key="value" pairs: a key starts where a run of its letters does (else a search would restart
# at each letter of a long run, each time to the run's end: quadratic)
_PAIR = re.compile(r"(?<![a-z-])([a-z-]+)=" + _QUOTED, re.DOTALL)
_GO_STRING = re.compile(_QUOTED, re.DOTALL)


def unwrap_line(line: bytes) -> Any:
    """The JSON value (or, for legacy text, the event) inside one wrapped text line; None when
    the line is no known wrapper. Several CRI lines (``P`` pieces, then ``F``) are joined."""
    if b" AUDIT: " in line[:80]:
        m = _LEGACY.match(line.strip())
        if m:
            return legacy_event(m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
    m = _CRI.match(line)
    if m:
        if b"\n" in line:  # P … P F: the content of each piece of its stream, joined
            stream = stream_of(line)
            content = b"".join(
                cri_content(piece)
                for piece in line.split(b"\n")
                if piece and stream_of(piece) == stream
            )
        else:
            content = m.group(3)
        return _json(content)
    m = _PREFIXED.match(line)
    if m:
        value = _json(line[m.end() :])
        tokens = line[: m.end()].decode("utf-8", "replace").split()
        # <node> {…} (oc adm node-logs), <time> <log stream> {…} (aws logs tail): the node or
        # the stream names the API server; a lone time (an export line) names none.
        named = [t for t in tokens if not _TIME.match(t)]
        if named:
            name_server(value, named[-1])
        return value
    return None


_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]")


def name_server(event: Any, server: Any) -> None:
    """Record which API server (or cluster) an event came from, as the annotation
    ``audittui/server`` (the ``server:`` field), unless the event names one itself."""
    if type(event) is dict and type(server) is str and server:
        ann = event.get("annotations")
        if ann is None:
            ann = event["annotations"] = {}
        if type(ann) is dict:
            ann.setdefault(SERVER, server)


def concatenated_json(data: bytes) -> tuple[list, str | None] | None:
    """JSON documents written back to back with no delimiter (``{…}{…}``: what Firehose
    delivers to S3 from a CloudWatch subscription), as a list; None unless all of it is. When
    the last is cut short (a download interrupted), the ones before it and a note saying so."""
    import json

    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    decoder, pos = json.JSONDecoder(), 0
    values: list[Any] = []
    while pos < len(text):
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            cut = salvage_cut(text[pos:].encode(), whole_file=True) if values else None
            if cut is None:
                return None
            values.append(cut[0])  # its complete records, if any
            return values, f"the last of {len(values)} JSON documents: {cut[1]}"
        values.append(value)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return (values, None) if len(values) > 1 else None


def docker_partial(line: bytes) -> bool:
    """Is this a Docker json-file line of a message split at 16 KiB (its log without the
    final newline), continued on the next line?"""
    return line.startswith(b'{"log":') and docker_split(_json(line))


def docker_split(value: Any) -> bool:
    """Is this parsed Docker json-file record a piece of a split message?"""
    return type(value) is dict and is_docker_line(value) and not value["log"].endswith("\n")


def partial(line: bytes) -> bool:
    """A piece of a line split by a container runtime (CRI ``P``, or Docker's 16 KiB)."""
    return cri_partial(line) or docker_partial(line)


def docker_joined(values: list) -> Any:
    """Docker json-file records of one split message (and maybe lines of the other stream
    between them) → the message's JSON value (None when they are not that)."""
    if not all(type(v) is dict and is_docker_line(v) for v in values):
        return None
    stream = values[0].get("stream")
    return _json("".join(v["log"] for v in values if v.get("stream") == stream).encode())


_STREAM = re.compile(rb'^\S+ (stdout|stderr) |^\{.*"stream": ?"(stdout|stderr)"')


def stream_of(line: bytes) -> bytes | None:
    """The stream (stdout, stderr) of a CRI or Docker json-file line; None for other lines.
    A runtime splits each stream's lines on their own: their pieces may interleave."""
    m = _STREAM.match(line)
    return (m.group(1) or m.group(2)) if m else None


def cri_partial(line: bytes) -> bool:
    """Is this a CRI line whose content continues on the next line of its stream?"""
    m = _CRI.match(line)
    return m is not None and m.group(2) == b"P"


def cri_content(piece: bytes) -> bytes:
    """The content of a CRI line (the line itself if it is none)."""
    m = _CRI.match(piece)
    return m.group(3) if m else piece


def _json(data: bytes) -> Any:
    try:
        return deep.loads(data)  # a deeply nested event keeps its shallow fields
    except orjson.JSONDecodeError:
        return None


_GO_ESCAPES = re.compile(r"\\(x[0-9a-fA-F]{2}|U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|[abfnrtv\\\"])")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unquote(text: str) -> str:
    """A Go ``%q`` string's content, unescaped."""

    def one(m: re.Match) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        return _SIMPLE.get(e, e)

    return _GO_ESCAPES.sub(one, text)


_HTTP_VERBS = {
    "GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
}  # fmt: skip


def legacy_event(time: str, rest: str) -> dict:
    """An audit.k8s.io/v1 Event from one legacy text line (all three generations). The oldest
    writes the HTTP method: the verb is the one the API server gives that method on that URI
    (a GET of a collection is a list, or a watch); its request lines become RequestReceived and
    its response lines (only ``id`` and ``response``) ResponseComplete events, joined by auditID
    like stages. No generation logs the resource: a resource URI gives it (see
    :func:`legacy_ref`)."""
    f = {k: _unquote(v) for k, v, closed in _PAIR.findall(rest) if closed}
    ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": METADATA}
    if "id" in f:
        ev["auditID"] = f["id"]
    # The oldest generation has no stage: a request line, then a response line (same id).
    ev["stage"] = f.get("stage") or (COMPLETE if "response" in f else RECEIVED)
    method, uri = f.get("method", ""), f.get("uri", "")
    if method.isupper():  # an HTTP method (the oldest generation); the others log the verb
        verb = (
            requestinfo.http_verb(method, uri) if uri else _HTTP_VERBS.get(method, method.lower())
        )
        ev["verb"] = verb or None
    else:
        ev["verb"] = method or None
    user = f.get("user")
    if user and user != "<none>":
        ev["user"] = {"username": user, "groups": _go_list(f.get("groups", ""))}
    if f.get("as") not in (None, "<self>"):
        ev["impersonatedUser"] = {"username": f["as"], "groups": _go_list(f.get("asgroups", ""))}
    if f.get("ip") not in (None, "<unknown>"):
        ev["sourceIPs"] = [f["ip"]]
    if f.get("user-agent"):
        ev["userAgent"] = f["user-agent"]
    namespace = f.get("namespace") if f.get("namespace") != "<none>" else None
    ref = legacy_ref(uri, ev["verb"] or "") if uri else None
    if ref is not None:
        if namespace and "namespace" not in ref:  # the line's own word, where the URI has none
            ref["namespace"] = namespace
        ev["objectRef"] = ref
    elif namespace is not None:
        ev["objectRef"] = {"namespace": namespace}
    if uri:
        ev["requestURI"] = uri
    if f.get("response", "").isdigit():
        ev["responseStatus"] = {"code": int(f["response"])}
    ev["stageTimestamp"] = time  # one time per line: no latency to tell
    return {k: v for k, v in ev.items() if v is not None}


def legacy_ref(uri: str, verb: str) -> dict[str, str] | None:
    """The objectRef the API server derives from a resource URI, by its own request-info rules
    (``/api/v1/namespaces/a/pods/p/log`` → pods p in a, subresource log): what a legacy line,
    which logs only the URI, leaves out. None for a non-resource URI (``/healthz``). The name is
    the one in the path: a list's ``fieldSelector=metadata.name=`` is not, as the servers that
    wrote these lines did not read one (and nothing is taken from anywhere but the URI)."""
    parsed = requestinfo.parse_uri(uri, verb)
    if not parsed.resource_request:
        return None
    ref = {
        "resource": parsed.resource,
        "namespace": parsed.namespace,
        "name": parsed.path_name,
        "apiGroup": parsed.group,  # empty for the core group, as the server leaves it out
        "apiVersion": parsed.version,
        "subresource": parsed.subresource,
    }
    return {k: v for k, v in ref.items() if v}


def _go_list(text: str) -> list[str]:
    """``"a","b"`` (a second level of %q strings) → [a, b]; ``<none>`` / ``<lookup>`` → []."""
    return [_unquote(v) for v, closed in _GO_STRING.findall(text) if closed]


# -- JSON envelopes --------------------------------------------------------------------------

# google.rpc.Code → HTTP, as googleapis' code.proto documents it
GRPC_HTTP = {
    0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403,
    8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}  # fmt: skip
_VERSION = re.compile(r"^v\d+((alpha|beta)\d+)?$")
_STREAMING = {"exec", "attach", "portforward"}


# A Kubernetes methodName: io.k8s. then dot-separated words (group, version, resource,
# subresource, verb; io.k8s.get for a path). Only such a name is read: one with other characters
# (control characters, spaces, slashes) is no method the API server writes, and is never split
# into a verb or a resource. Bounded, so that a megabyte of "io.k8s.a.a.a…" is not split either.
_K8S_METHOD = re.compile(r"io\.k8s(\.[A-Za-z0-9_-]+)+\Z")
METHOD_MAX = 512  # a group (253) + version + resource + subresource + verb, with room to spare


def k8s_method(method: Any) -> bool:
    """Is ``method`` a well-formed Kubernetes methodName (``io.k8s.core.v1.pods.create``)?"""
    return type(method) is str and len(method) <= METHOD_MAX and bool(_K8S_METHOD.match(method))


def is_gcp_entry(obj: dict) -> bool:
    return type(obj.get("protoPayload")) is dict


def gke_entry(obj: dict) -> tuple[list[Any], str | None]:
    """A Cloud Logging entry: an event when its AuditLog is the Kubernetes API server's, that
    is serviceName ``k8s.io``, or no serviceName and a Kubernetes methodName (Panther's stored
    GKE entries lack the serviceName; the methodName says whose it is all the same)."""
    p = obj["protoPayload"]
    service = p.get("serviceName")
    method = p.get("methodName")
    if service == "k8s.io" or (service in (None, "") and k8s_method(method)):
        return [gke_event(obj)], None
    if service in (None, ""):
        what = f"methodName {shown(method)}" if "methodName" in p else "no methodName"
        return [], f"a GCP audit entry naming no service ({what}), not Kubernetes"
    return [], f"a GCP audit entry of another service ({shown(service)}), not Kubernetes"


def shown(value: Any, limit: int = 40) -> str:
    """A value named in a reason, cut to about ``limit`` characters: a string of printable
    characters as it is (``compute.googleapis.com``); one with others (control, format such as
    a bidi override, unassigned) quoted, each of them escaped as ``\\u001b``: inert wherever the
    reason is shown, and short however many there are. Another value by its JSON type."""
    if type(value) is not str:
        return _JSON_TYPES.get(type(value), "a value")
    head = value[:limit]
    if head.isprintable() and '"' not in head and "\\" not in head:
        return head + ("…" if len(value) > limit else "")
    out: list[str] = []
    size = 0
    for c in value:
        if size >= limit:
            return f'"{"".join(out)}"…'
        piece = c if c.isprintable() and c not in '"\\' else _escaped(c)
        out.append(piece)
        size += len(piece)
    return f'"{"".join(out)}"'


def _escaped(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    return f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
               dict: "an object", list: "an array"}  # fmt: skip


def gke_event(entry: dict) -> dict:
    """An audit.k8s.io/v1 Event from a GKE LogEntry (wrapped-formats.md A1)."""
    p = entry["protoPayload"]
    method = p.get("methodName") if k8s_method(p.get("methodName")) else ""
    parts = method.split(".")
    verb = parts[-1] if len(parts) > 2 else None
    at = next((k for k in range(2, len(parts) - 1) if _VERSION.match(parts[k])), None)
    name = p.get("resourceName") if type(p.get("resourceName")) is str else ""
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": entry.get("insertId"),
        "stage": COMPLETE,
        "verb": verb,
    }
    if at is not None:  # a resource request: io.k8s.<group…>.<version>.<resource>[.<sub>].<verb>
        resource = parts[at + 1] if at + 1 < len(parts) - 1 else None
        sub = parts[at + 2] if at + 2 < len(parts) - 1 else None
        ref, uri = _object_ref(name, resource, sub)
        ev["objectRef"], ev["requestURI"] = ref, uri
    elif name:
        ev["requestURI"] = "/" + name.lstrip("/")
    user = _gcp_user(p.get("authenticationInfo"))
    if user is not None:
        ev["user"] = {"username": user}
    meta = p.get("requestMetadata")
    if type(meta) is dict:
        # callerIp in Cloud Logging's JSON; callerIP as Panther stores it (its GCP.AuditLog)
        ip = meta.get("callerIp") if type(meta.get("callerIp")) is str else meta.get("callerIP")
        if type(ip) is str:
            ev["sourceIPs"] = [ip]
        if type(meta.get("callerSuppliedUserAgent")) is str:
            ev["userAgent"] = meta["callerSuppliedUserAgent"]
    code = _http_code(p)
    status = p.get("status")
    info = p.get("authorizationInfo")
    denied = type(info) is list and any(type(i) is dict and i.get("granted") is False for i in info)
    # GKE logs a session that ran with status UNKNOWN (2): the connection was hijacked, no
    # response written. Both read as the API server logs a session (101), as sysdiglabs'
    # stackdriver-webhook-bridge and Falco's k8saudit-gke do (they infer it for every one).
    unknown = type(status) is dict and status.get("code") == 2 and not denied
    if ev.get("objectRef", {}).get("subresource") in _STREAMING and (code == 200 or unknown):
        ev["stage"], code = STARTED, 101  # a session opened, as the API server logs it
    ev["responseStatus"] = {"code": code} if code is not None else {"status": "Failure"}
    labels = entry.get("labels")
    ev["annotations"] = dict(labels) if type(labels) is dict else {}
    resource = entry.get("resource")
    cluster = resource.get("labels") if type(resource) is dict else None
    if type(cluster) is dict:
        name_server(ev, cluster.get("cluster_name"))
    decision = _granted_decision(p.get("authorizationInfo"))
    if decision is not None:  # the label, when GKE wrote one, is the authorizer's own word
        ev["annotations"].setdefault("authorization.k8s.io/decision", decision)
    level = METADATA
    for key, field, lvl in (("request", "requestObject", REQUEST),
                            ("response", "responseObject", REQUEST_RESPONSE)):  # fmt: skip
        body = p.get(key)
        if type(body) is dict:
            ev[field] = {k: v for k, v in body.items() if k != "@type"}
            level = lvl
    ev["level"] = level
    stamp = entry.get("timestamp")
    if type(stamp) is str:
        ev["stageTimestamp"] = stamp  # no start and end pair: no latency
    return {k: v for k, v in ev.items() if v is not None}


def _gcp_user(auth: Any) -> str | None:
    """The user of an AuditLog's authenticationInfo: principalEmail (GKE writes the Kubernetes
    user there, e-mail or not); else principalSubject, which GCP documents as filled in instead
    of it for third-party identities; else authoritySelector, where Panther's stored GKE entries
    carry the user of an anonymous request (GCP: "the authority selector specified by the
    requestor", so what the request claimed, not a proven identity; it is read as the user only
    when nothing else names one)."""
    if type(auth) is not dict:
        return None
    for key in ("principalEmail", "principalSubject", "authoritySelector"):
        value = auth.get(key)
        if type(value) is str and value:
            return value
    return None


def _granted_decision(info: Any) -> str | None:
    """The authorization decision authorizationInfo[] gives: forbid when a check was not
    granted, allow when every check was (none left unsaid); None when it does not say (no
    checks, or a check with no ``granted``, which GKE leaves out of some entries)."""
    if type(info) is not list or not info:
        return None
    granted = [i.get("granted") if type(i) is dict else None for i in info]
    if any(g is False for g in granted):
        return "forbid"
    return "allow" if all(g is True for g in granted) else None


def _http_code(p: dict) -> int | None:
    """The HTTP code: a Status response's own; else the gRPC status mapped; None for a Status
    response that says Failure with no code and no gRPC error (no code to tell: an absent gRPC
    status would say 200)."""
    response = p.get("response")
    status = p.get("status")
    grpc = status.get("code", 0) if type(status) is dict else 0
    # A Status: typed by GKE, or a trimmed one (a Pod's response has a status too, an object)
    if type(response) is dict and (
        response.get("@type") == "core.k8s.io/v1.Status"
        or response.get("kind") == "Status"
        or response.get("status") == "Failure"
    ):
        if type(response.get("code")) is int:
            return response["code"]
        if response.get("status") == "Failure" and grpc == 0:
            return None
    return GRPC_HTTP.get(grpc, 500) if type(grpc) is int else 500


def _object_ref(name: str, resource: str | None, sub: str | None) -> tuple[dict, str]:
    """objectRef and a requestURI from ``<group>/<version>/[namespaces/<ns>/]<resource>[/<name>
    [/<sub>]]``. Which part is the resource comes from methodName: ``core/v1/namespaces/foo/
    status`` is the status of namespace foo, not a list of "status" in it."""
    segs = name.strip("/").split("/")
    group = segs[0] if segs else ""
    group = "" if group == "core" else group
    version = segs[1] if len(segs) > 1 else ""
    rest = segs[2:]
    ref: dict[str, Any] = {"resource": resource, "apiGroup": group or None, "apiVersion": version}
    if resource != "namespaces" and len(rest) >= 2 and rest[0] == "namespaces":
        ref["namespace"], rest = rest[1], rest[2:]
    if len(rest) >= 2:
        ref["name"] = rest[1]
    if resource == "namespaces" and len(rest) >= 2:
        ref["namespace"] = rest[1]
    if sub:
        ref["subresource"] = sub
    path = "/".join(segs[1:]) if not group else name.strip("/")
    uri = ("/api/" if not group else "/apis/") + path
    return {k: v for k, v in ref.items() if v is not None}, uri


def is_go_entry(obj: dict) -> bool:
    """A Go ``logging.Entry`` as JSON with the AuditLog as a string (the stackdriver bridge's
    captures of GKE)."""
    return type(obj.get("Entry")) is dict and type(obj.get("AuditPayload")) is str


def go_entry(obj: dict) -> tuple[list[Any], str | None]:
    payload = _json(obj["AuditPayload"].encode())
    if type(payload) is not dict:
        return [], "a GCP logging.Entry whose AuditPayload is not JSON"
    e = obj["Entry"]
    return gke_entry(
        {
            "protoPayload": payload,
            "insertId": e.get("InsertID"),
            "timestamp": e.get("Timestamp"),
            "labels": e.get("Labels"),
            "resource": e.get("Resource"),
        }
    )


def is_docker_line(obj: dict) -> bool:
    return type(obj.get("log")) is str and "stream" in obj and "time" in obj


Expand = Callable[[Any], tuple[list[Any], str | None]]  # formats.expand: events in a value


def joined_reasons(problems: list[str]) -> str | None:
    """The reasons of a record's parts as one: the first three, then an ellipsis."""
    return "; ".join(problems[:3]) + ("; …" if len(problems) > 3 else "") or None


def docker_line(obj: dict, expand: Expand) -> tuple[list[Any], str | None]:
    log = obj["log"]
    if not log.endswith("\n"):
        return [], "Docker json-file partial line (a message split at 16 KiB)"
    inner = _json(log.encode())
    if inner is None:
        return [], "Docker json-file line whose log is not JSON"
    return expand(inner)


def is_cloudwatch(obj: dict) -> bool:
    for key in ("events", "logEvents"):
        items = obj.get(key)
        if type(items) is list and all(type(e) is dict and "message" in e for e in items[:1]):
            return True
    return obj.get("messageType") == "CONTROL_MESSAGE" or _insights_rows(obj) is not None


def _insights_rows(obj: dict) -> list | None:
    rows = obj.get("results")
    if type(rows) is list and rows and type(rows[0]) is list:
        return rows
    return None


def cloudwatch(obj: dict, expand: Expand) -> tuple[list[Any], str | None]:
    """The events in CloudWatch Logs output: ``message`` strings holding audit JSON."""
    if obj.get("messageType") == "CONTROL_MESSAGE":
        return [], "a CloudWatch Logs control message (no log events)"
    rows = _insights_rows(obj)
    if rows is not None:
        cells = [{c.get("field"): c.get("value") for c in row if type(c) is dict} for row in rows]
        messages, streams = [c.get("@message") for c in cells], [None] * len(cells)
    else:
        # The first of the two that is a list, as is_cloudwatch and formats._records_of take it
        # (an "events" key holding something else, null say, must not hide "logEvents").
        lists = (obj.get("events"), obj.get("logEvents"))
        items = [e for e in next((v for v in lists if type(v) is list), []) if type(e) is dict]
        messages = [e.get("message") for e in items]
        # the log stream (kube-apiserver-audit-<id>) is the API server
        streams = [e.get("logStreamName", obj.get("logStream")) for e in items]
    events: list[Any] = []
    problems: list[str] = []
    for k, (message, stream) in enumerate(zip(messages, streams, strict=True)):
        value = _json(message.encode()) if type(message) is str else None
        found, why = expand(value) if value is not None else ([], "message is not JSON")
        for ev in found:
            name_server(ev, stream)
        events.extend(found)
        if why:
            problems.append(f"events[{k}]: {why}")
    return events, joined_reasons(problems)


def is_azure_activity(obj: dict) -> bool:
    """An Azure Monitor record (an activity log entry, or a resource log of another category
    than the AKS audit ones, which formats reads first): an operationName and a category."""
    return type(obj.get("operationName")) is str and "category" in obj


# The activity log's categories (learn.microsoft.com, "Azure Monitor activity log schema")
_ACTIVITY = frozenset({"Administrative", "Security", "ServiceHealth", "Alert", "Recommendation",
                       "Policy", "Autoscale", "ResourceHealth"})  # fmt: skip


def azure_activity(obj: dict) -> tuple[list[Any], str | None]:
    category = obj.get("category")
    activity = type(category) is str and category in _ACTIVITY  # (an object is unhashable)
    what = "an Azure activity log record" if activity else "an Azure resource log record"
    return [], f"{what} (category {shown(category)}), not a Kubernetes audit event"


_GCP_KEYS = ("logName", "receiveTimestamp", "jsonPayload", "textPayload")


def is_gcp_other(obj: dict) -> bool:
    """A Cloud Logging entry with no AuditLog in it (no ``protoPayload``: another payload, or
    a fragment such as Panther's ``{"operation": {"producer": "k8s.io"}}``)."""
    op = obj.get("operation")
    return (type(op) is dict and "producer" in op) or any(k in obj for k in _GCP_KEYS)


def gcp_other(obj: dict) -> tuple[list[Any], str | None]:
    op = obj.get("operation")
    producer = op.get("producer") if type(op) is dict else None
    what = f"operation.producer {shown(producer)}" if producer is not None else "another payload"
    return [], f"a GCP log entry with no AuditLog (no protoPayload; {what}), no audit event in it"


# -- a wrapper, as shown or exported -----------------------------------------------------------


def is_text_wrapper(wrapper: Any) -> bool:
    """Is this wrapper (see ``Store.wrapper``) the lines of a wrapped text line, rather than
    a JSON record?"""
    return isinstance(wrapper, list) and all(isinstance(line, str) for line in wrapper)


def with_event_text(wrapper: Any, change: Callable[[str], str]) -> Any:
    """A wrapper with ``change`` applied to each text in it that holds the event or a piece
    of it: a CRI line's content, a Docker record's ``log``, what follows a node or time
    prefix, a JSON string holding an object (a CloudWatch ``message``)."""
    if is_text_wrapper(wrapper):
        return [_line_with(line, change) for line in wrapper]
    return _strings_with(wrapper, change)


def _line_with(line: str, change: Callable[[str], str]) -> str:
    if line.startswith("{"):
        record = _json(line.encode("utf-8", "surrogatepass"))
        if type(record) is dict and type(record.get("log")) is str:
            log = record["log"]
            new = change(log)
            return line if new == log else orjson.dumps({**record, "log": new}).decode()
    m = _CRI_TEXT.match(line)
    start = m.end() if m else line.find("{")
    if start < 0:
        return line  # legacy text: no event text inside
    text = line[start:]
    new = change(text)
    return line if new == text else line[:start] + new


def _strings_with(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _strings_with(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings_with(v, change) for v in value]
    if isinstance(value, str) and value.lstrip().startswith("{"):
        return change(value)
    return value


# -- documents cut short ---------------------------------------------------------------------

# a JSON string (one cut short runs to the end: see _QUOTED), or a bracket
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
# Lists of records a document cut short can be closed after: a top-level array (gcloud, a
# JSON array of events) or these keys of a top-level object (CloudWatch, EventList, Azure…).
_RECORD_LISTS = frozenset({b'"events"', b'"logEvents"', b'"records"', b'"items"', b'"results"'})


def ends_mid_value(exc: orjson.JSONDecodeError) -> bool:
    """Did the JSON end in the middle of a value (cut short), rather than hold a mistake?"""
    return str(exc).startswith("unexpected end of data")


def salvage_cut(data: bytes, whole_file: bool = False) -> tuple[Any, str] | None:
    """A JSON document of records cut short (a copy or download interrupted): the document
    closed just after its last complete record, and a note saying so. None when ``data`` is
    not that: a single event cut short stays malformed, never half read. A ``whole_file`` cut
    before its first record is that too: no record, one note."""
    stack: list[bytes] = []  # the open brackets
    keys: list[bytes] = []  # for each, the last string before it (its key in an object)
    last = closing = b""
    cut = None
    records = 0
    for m in _TOKEN.finditer(data):
        token = m.group()
        if token in (b"{", b"["):
            stack.append(token)
            keys.append(last)
        elif token in (b"}", b"]"):
            if not stack or (stack.pop() == b"{") != (token == b"}"):
                return None  # not merely cut short: broken
            keys.pop()
            if _record_list(stack, keys):
                cut, records = m.end(), records + 1
                closing = b"]" if len(stack) == 1 else b"]}"
        else:
            last = token
    if not stack:
        return None
    if cut is None:
        if not whole_file:
            return None
        return [], f"a JSON document cut short after {len(data):,} bytes, before its first record"
    try:
        value = orjson.loads(data[:cut] + closing)
    except orjson.JSONDecodeError:
        return None
    note = f"cut short after {cut:,} bytes: read its {records:,} complete record(s)"
    return value, note + ", not the one cut"


def _record_list(stack: list[bytes], keys: list[bytes]) -> bool:
    """Is the innermost open bracket a list of records (so a value just closed is one)?"""
    if stack == [b"["]:
        return True
    return stack == [b"{", b"["] and keys[1] in _RECORD_LISTS
