"""Input shapes → normalised audit events.

One parsed JSON value (a line, or a whole-file document) can hold zero, one or many audit events:
a native ``audit.k8s.io`` Event, a webhook ``EventList``, an AKS diagnostic record (the event in
``properties.log``), an Event Hubs ``{"records": [...]}`` batch, or a JSON array of any of these.
:func:`expand` turns such a value into events or explains why it holds none; :func:`row` pulls
the indexed fields out of one event. Both are pure and never raise on hostile input.

New envelope shapes (GKE, EKS, legacy text, CRI) slot into :data:`_ENVELOPES` (by keys) or
:func:`decode_line` (by line prefix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import msgspec
import orjson
import yaml

from . import deep, wrappers

# Flags kept per event.
NON_STANDARD = 1  # flattened/SIEM shape: no objectRef, top-level namespace/resource
LEGACY = 2  # v1alpha1/v1beta1 or relabelled old events: only `timestamp`/`metadata` times
UUID_ID = 4  # the auditID is a canonical UUID, kept as 128 bits (see audit_ids)

_EVENT_KEYS = ("auditID", "stage", "verb", "requestURI", "user", "objectRef")
_EMPTY: dict = {}

MISSING_TIME = -(2**63)
# Annotations read as columns: the API server or cluster that a wrapper names (set by
# audittui.ingest.wrappers from a node-name prefix, a GKE cluster, a CloudWatch log group), and the
# user an OpenShift oauth-server login was for.
SERVER = "audittui/server"
LOGIN = "authentication.openshift.io/username"
# An oauth-server login's outcome (allow, deny, error): the decision of an event that has no
# authorization decision, so that `login:* decision:deny` lists failed logins.
LOGIN_DECISION = "authentication.openshift.io/decision"
DEPTH_MAX = 1024  # orjson's nesting limit; an audit event is a few levels deep (bodies: tens)
CODE_MAX = 2**31 - 1  # the code column's range: a larger "code" is not an HTTP status
REASON = "authorization.k8s.io/reason"  # why the authorizer allowed (or denied) the request


class Row(NamedTuple):
    """The indexed fields of one event (``None`` where the event lacks the field)."""

    time: int  # µs since the epoch, MISSING_TIME when absent
    latency: int  # µs, -1 when unknown
    user: str | None
    groups: tuple[str, ...] | None
    impersonated: str | None
    verb: str | None
    api: str | None  # "" = core group of a resource request; None = non-resource request
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    code: int  # 0 when absent
    stage: str | None
    level: str | None
    decision: str | None
    ips: tuple[str, ...] | None
    user_agent: str | None
    audit_id: str | None
    uri: str | None
    credential: str | None  # user.extra authentication.kubernetes.io/credential-id (token id)
    flags: int
    server: str | None = None  # the API server or cluster a wrapper named (see SERVER)
    login: str | None = None  # OpenShift oauth-server: the user a login was for
    reason: str | None = None  # the authorizer's reason (the binding that allowed it)


# The indexing form of a Row: the numbers, the four near-unique strings, then the low-cardinality
# fields as two tuples: who (identity and origin) and what (the request's shape). Each repeats
# far more than their product does (on a big cluster's log about one event in ten brings a new
# who and a new what, while nearly every (who, what) is new), so a batch interns the two as they
# come and encodes only their distinct values column by column.
WHO_FIELDS = ("user", "groups", "impersonated", "ips", "user_agent", "server", "login")
WHAT_FIELDS = ("verb", "api", "resource", "subresource", "namespace", "stage", "level",
               "decision", "reason")  # fmt: skip
PROFILE_FIELDS = WHO_FIELDS + WHAT_FIELDS
UNIQUE_FIELDS = ("name", "audit_id", "uri", "credential")
# ((time, latency, code, flags, offset, length, item), name, audit_id, uri, credential, who, what)
Packed = tuple


def pack(r: Row, offset: int, length: int, item: int) -> Packed:
    return (
        (r.time, r.latency, r.code, r.flags, offset, length, item),
        r.name,
        r.audit_id,
        r.uri,
        r.credential,
        (r.user, r.groups, r.impersonated, r.ips, r.user_agent, r.server, r.login),
        (
            r.verb,
            r.api,
            r.resource,
            r.subresource,
            r.namespace,
            r.stage,
            r.level,
            r.decision,
            r.reason,
        ),  # fmt: skip
    )


# ---------------------------------------------------------------------------------------------
# Timestamps


def parse_time(value: Any) -> int | None:
    """An RFC 3339 timestamp → µs since the epoch (UTC when no offset, fractions below a
    microsecond rounded); None if unparsable. The same parser (msgspec's) as the fast path."""
    if type(value) is not str:
        return None
    try:
        return to_micros(msgspec.convert(value, datetime))
    except (msgspec.ValidationError, OverflowError):
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(dt: datetime) -> int:
    """A datetime (UTC when naive) → µs since the epoch, floored (right before 1970 too)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MICRO


def format_time(micros: int) -> str:
    """µs since the epoch → ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; empty for a missing time."""
    if micros == MISSING_TIME:
        return ""
    try:
        dt = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return ""
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# Durations as written in queries (dur:>1s, since:2h) and in rules (window: 10m): a number
# and a unit. Each reader says which units it takes.
DURATION_UNITS = {
    "us": 1,
    "µs": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([a-zµ]+)\Z")


def parse_duration(text: str, units: Iterable[str] = DURATION_UNITS) -> float | None:
    """``250ms``, ``30s``, ``1.5h``, ``7d`` → µs (a float, as exact as written); None unless
    ``text`` is one number and one of ``units``."""
    m = _DURATION.match(text)
    if not m or m.group(2) not in units:
        return None
    return float(m.group(1)) * DURATION_UNITS[m.group(2)]


def format_duration(micros: int) -> str:
    """µs → a short human duration: 850µs, 12ms, 1.4s, 3m05s; "-" when unknown."""
    if micros < 0:
        return "-"
    if micros < 1_000:
        return f"{micros}µs"
    if micros < 1_000_000:
        return f"{micros // 1_000}ms"
    if micros < 60_000_000:
        return f"{micros / 1_000_000:.1f}s"
    minutes, seconds = divmod(micros // 1_000_000, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# ---------------------------------------------------------------------------------------------
# Recognising events inside a parsed JSON value


def is_event(obj: Any) -> bool:
    """An object is an audit event when kind is Event, or it has no kind and two event keys."""
    if type(obj) is not dict:
        return False
    kind = obj.get("kind")
    if kind == "Event":
        return True
    if "kind" in obj:
        return False
    return sum(1 for k in _EVENT_KEYS if k in obj) >= 2


def _aks_record(obj: dict) -> tuple[list[Any], str | None]:
    props = obj.get("properties")
    log = props.get("log") if type(props) is dict else None
    if type(log) is str:
        try:
            log = orjson.loads(log)
        except orjson.JSONDecodeError:
            return [], f"AKS record ({obj.get('category')}): properties.log is not JSON"
    if is_event(log):
        return [log], None
    return [], f"AKS record ({obj.get('category')}): properties.log holds no audit event"


def _records(obj: dict) -> tuple[list[Any], str | None]:
    return _expand_many(obj["records"], "records")


def _event_list(obj: dict) -> tuple[list[Any], str | None]:
    items = obj.get("items")
    if items is None:
        return [], None  # an empty EventList serialises without items
    if type(items) is not list:
        return [], "EventList: items is not a list"
    return _expand_many(items, "items")


def _expand_many(values: Any, where: str) -> tuple[list[Any], str | None]:
    if type(values) is not list:
        return [], f"{where} is not a list"
    events: list[Any] = []
    problems: list[str] = []
    for k, value in enumerate(values):
        found, why = expand(value)
        events.extend(found)
        if why:
            problems.append(f"{where}[{k}]: {why}")
    return events, wrappers.joined_reasons(problems)


def _is_aks(obj: dict) -> bool:
    cat = obj.get("category")
    return type(cat) is str and cat.startswith("kube-audit") and "properties" in obj


# (test, handler) pairs tried in order on objects that are not events themselves.
_ENVELOPES = (
    (lambda o: o.get("kind") == "EventList", _event_list),
    (_is_aks, _aks_record),
    (lambda o: type(o.get("records")) is list, _records),
    (wrappers.is_gcp_entry, wrappers.gke_entry),
    (wrappers.is_go_entry, wrappers.go_entry),
    # these two hold JSON text that may be wrapped again: read with expand itself
    (wrappers.is_docker_line, lambda o: wrappers.docker_line(o, expand)),
    (wrappers.is_cloudwatch, lambda o: wrappers.cloudwatch(o, expand)),
    (wrappers.is_azure_activity, wrappers.azure_activity),
    (wrappers.is_gcp_other, wrappers.gcp_other),  # says what it is, holds no event
)


def expand(obj: Any) -> tuple[list[dict], str | None]:
    """The audit events inside one parsed JSON value, and why anything in it was not an event."""
    if type(obj) is dict:
        if is_event(obj):
            return [obj], None
        for test, handler in _ENVELOPES:
            if test(obj):
                return handler(obj)
        return [], _not_event_reason(obj)
    if type(obj) is list:
        return _expand_many(obj, "array")
    return [], f"not an audit event (a JSON {_json_type(obj)})"


# Keys of the lists of records inside envelopes (CloudWatch, Azure, EventList, Logs Insights).
_RECORD_KEYS = ("events", "logEvents", "records", "items", "results")


def wrappers_of(record: bytes) -> list[Any] | None:
    """What each event of a record was read from, when that is more than the event, in item
    order: the lines of a wrapped text line (CRI, Docker pieces, node prefix, legacy) as
    strings, or the JSON record holding it (a GKE entry; a CloudWatch or Azure envelope with
    only this event's record in its list). None for an event line as written."""
    try:
        value = deep.loads(deep.bounded(record))  # (bounded: the wrapper is shown, written)
    except orjson.JSONDecodeError:
        try:
            value, _ = decode_record(record)
        except ValueError:
            return None
        if _records_of(value) is None:  # an event (or entry) inside text: the text wraps it
            return [record.decode("utf-8", "replace").splitlines()]
    else:
        if is_event(value):
            return None
    return _holders(value)


def _holders(value: Any) -> list[Any]:
    """For each event of ``value``, the record holding it: arrays are descended into; an
    envelope is kept, with only that record in its list."""
    records = _records_of(value)
    if records is None:
        return [value] * len(expand(value)[0])
    key, parts = records
    out: list[Any] = []
    for part in parts:
        if key is None:
            out.extend(_holders(part))
        else:
            counted = {**value, key: [part]}
            out.extend([counted] * len(expand(counted)[0]))
    return out


def _records_of(value: Any) -> tuple[str | None, list] | None:
    """A container's list of records, and its key (None for an array)."""
    if type(value) is list:
        return None, value
    if type(value) is dict and not is_event(value):
        for key in _RECORD_KEYS:
            if type(value.get(key)) is list:
                return key, value[key]
    return None


def _not_event_reason(obj: dict) -> str:
    if "kind" in obj:
        return f"not an audit event (kind {orjson.dumps(obj['kind']).decode()[:40]})"
    return "not an audit event (no kind and fewer than two event fields)"


def _json_type(obj: Any) -> str:
    return {str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(obj), "null" if obj is None else "value"
    )


def decode_line(line: bytes) -> Any:
    """One line of text (or the lines of one wrapped event, or a YAML document) → its JSON
    value, unwrapped (see :mod:`audittui.ingest.wrappers`). Raises ValueError with a short
    reason."""
    return decode_record(line)[0]


def decode_record(line: bytes) -> tuple[Any, str | None]:
    """:func:`decode_line`, and what of the record could not be read: a document of records
    cut short is read up to its last complete record, and the note says so."""
    try:
        return parse_json(line), None
    except orjson.JSONDecodeError as exc:
        if deep.too_deep(exc):  # not an object (deep.loads read those): no reader may recurse
            raise ValueError(f"JSON nested over {DEPTH_MAX:,} levels deep ({exc})") from None
        if line.lstrip()[:1] in (b"{", b"[") and wrappers.ends_mid_value(exc):
            salvaged = wrappers.salvage_cut(line)
            if salvaged is not None:
                return salvaged
        try:
            return _decode_wrapped(line, exc)
        except RecursionError:  # a wrapper's reader (json, YAML) on something deeply nested
            raise ValueError(f"nested too deep to read ({_json_error(line, exc)})") from None


def parse_json(raw: bytes) -> Any:
    """``orjson.loads``, except that a lone surrogate's escape (``"\ud800"``, valid JSON text
    that no UTF-8 string can hold) reads as U+FFFD, as Go's encoding/json reads it: the API
    server's own view of such a value; and an object nested past orjson's limit is read with
    its too-deep members opaque (:func:`deep.loads`). Raises orjson.JSONDecodeError otherwise."""
    try:
        return deep.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        value = _lenient_json(raw)
        if value is None:
            raise
        return value


def _lenient_json(line: bytes) -> Any:
    """The JSON value of ``line`` read by the standard library (which keeps lone surrogates),
    its lone surrogates then replaced by U+FFFD; None when it is not JSON either."""
    import json

    try:
        return without_surrogates(json.loads(line, parse_int=_json_int))
    except (ValueError, RecursionError):
        return None


def _json_int(text: str) -> int | float:
    """A JSON integer as orjson reads it: a float past the 64-bit range (a Python int there
    would make the event one that orjson cannot write back out, to show or export it)."""
    n = int(text)
    return n if -(2**63) <= n < 2**64 else float(text)


def without_surrogates(value: Any) -> Any:
    """``value`` (a string, or lists, tuples and objects of them) with each lone surrogate as
    U+FFFD; a surrogate pair stays the character it makes."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list | tuple):
        return type(value)(map(without_surrogates, value))
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    return value


def _decode_wrapped(line: bytes, exc: orjson.JSONDecodeError) -> tuple[Any, str | None]:
    value = wrappers.unwrap_line(line)
    if value is not None:
        return value, None
    if b"}" in line and b"{" in line:
        documents = wrappers.concatenated_json(line)
        if documents is not None:
            values, note = documents
            if b'{"log":' in line[:8]:  # a split Docker message
                return wrappers.docker_joined(values) or values, note
            return values, note
    if b"\n" in line.strip():
        value = yaml_documents(line)
        if value is not None:
            return value, None
    raise ValueError(_json_error(line, exc)) from None


if TYPE_CHECKING:  # one static base for the checker: the two share their interface
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's loader where PyYAML was built with it
    _SafeLoader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader


class _YAMLLoader(_SafeLoader):
    """Safe YAML with times left as the strings they are (events parse their own)."""


_YAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_documents(data: bytes) -> Any:
    """The documents of a YAML text (``---`` separated): the one document, or a list of them;
    None when it is not YAML holding objects (plain text is a valid YAML scalar)."""
    try:
        docs = [d for d in yaml.load_all(data, Loader=_YAMLLoader) if d is not None]
    except (yaml.YAMLError, RecursionError):
        return None
    if not docs or not all(type(d) in (dict, list) for d in docs):
        return None
    return docs[0] if len(docs) == 1 else docs


def _json_error(line: bytes, exc: Exception) -> str:
    stripped = line.strip()
    stream = wrappers.stream_of(stripped)
    if stream is not None and not stripped.startswith(b"{"):  # a CRI line: say what it holds
        content = wrappers.cri_content(stripped)
        try:
            orjson.loads(content)
        except orjson.JSONDecodeError as inner:
            exc = inner
        return f"CRI {stream.decode()} line: {_json_error(content, exc)}"
    if stripped[:1] in (b"{", b"["):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid UTF-8 in JSON"
        return f"invalid JSON ({_short(exc)})"
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data, not JSON"
    if wrappers.KLOG.match(text):
        return "not JSON (klog text: a component's own log line, not an audit event)"
    if _YAML_LINE.match(text):
        return "not JSON (looks like a line of YAML)"
    return "not JSON (text line)"


_YAML_LINE = re.compile(r"^(---|- |[A-Za-z_][\w.-]*: )")


def _short(exc: Exception) -> str:
    msg = str(exc)
    return msg.split(":", 1)[0] if len(msg) > 80 else msg


# ---------------------------------------------------------------------------------------------
# Field extraction


def _str(value: Any) -> str | None:
    return value if type(value) is str and value else None


def _strs(value: Any) -> tuple[str, ...] | None:
    if type(value) is not list or not value:
        return None
    out = tuple(v for v in value if type(v) is str)
    return out or None


def row(ev: dict) -> Row:
    """The indexed fields of one event (any shape :func:`expand` accepts)."""
    flags = 0
    user = ev.get("user")
    if type(user) is not dict:
        user = _EMPTY
    imp = ev.get("impersonatedUser")
    ref = ev.get("objectRef")
    status = ev.get("responseStatus")
    ann = ev.get("annotations")

    received = parse_time(ev.get("requestReceivedTimestamp"))
    staged = parse_time(ev.get("stageTimestamp"))
    latency = staged - received if received is not None and staged is not None else -1
    if received is None and staged is None:
        # v1alpha1/v1beta1 and relabelled old events: second-precision times only
        if "timestamp" in ev or "metadata" in ev:
            flags |= LEGACY
        received = parse_time(ev.get("timestamp"))
        meta = ev.get("metadata")
        if type(meta) is dict:
            staged = parse_time(meta.get("creationTimestamp"))
    if received is not None:
        time = received
    elif staged is not None:
        time = staged
    else:
        time = MISSING_TIME

    if type(ref) is dict:
        api = ref.get("apiGroup")
        if api is None:
            version = ref.get("apiVersion")
            # v1alpha1 kept group/version in apiVersion
            api = version.rpartition("/")[0] if type(version) is str else ""
        api = api if type(api) is str and api != "core" else ""  # "core": converters' name for ""
        resource = _str(ref.get("resource"))
        subresource = _str(ref.get("subresource"))
        namespace = _str(ref.get("namespace"))
        name = _str(ref.get("name"))
    elif ref is None and ("resource" in ev or "namespace" in ev):
        flags |= NON_STANDARD
        resource = _str(ev.get("resource"))
        subresource = _str(ev.get("subresource"))
        namespace = _str(ev.get("namespace"))
        name = _str(ev.get("name"))
        api = _str(ev.get("apiGroup")) or ("" if resource else None)
    else:
        api = resource = subresource = namespace = name = None

    code = status.get("code") if type(status) is dict else None
    if type(code) is not int or not 0 <= code <= CODE_MAX:
        code = 0
    decision = (
        ann.get("authorization.k8s.io/decision") or ann.get(LOGIN_DECISION)
        if type(ann) is dict
        else None
    )
    server = ann.get(SERVER) if type(ann) is dict else None
    login = ann.get(LOGIN) if type(ann) is dict else None
    reason = ann.get(REASON) if type(ann) is dict else None

    return Row(
        time,
        latency,
        _str(user.get("username")),
        _strs(user.get("groups")),
        _str(imp.get("username")) if type(imp) is dict else None,
        _str(ev.get("verb")),
        api,
        resource,
        subresource,
        namespace,
        name,
        code,
        _str(ev.get("stage")),
        _str(ev.get("level")),
        _str(decision),
        _strs(ev.get("sourceIPs")),
        _str(ev.get("userAgent")),
        _str(ev.get("auditID")),
        _str(ev.get("requestURI")),
        _credential(user.get("extra")),
        flags,
        _str(server),
        _str(login),
        _str(reason),
    )


CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def _credential(extra: Any) -> str | None:
    if type(extra) is not dict:
        return None
    ids = _strs(extra.get(CREDENTIAL_ID))
    return ids[0] if ids else None


# ---------------------------------------------------------------------------------------------
# Fast path: native v1 lines decoded straight into typed structs (bodies are skipped, not built)


class _Extra(msgspec.Struct, gc=False):
    credential: tuple[str, ...] | None = msgspec.field(
        default=None, name="authentication.kubernetes.io/credential-id"
    )


class _User(msgspec.Struct, gc=False):
    username: str | None = None
    groups: tuple[str, ...] | None = None
    extra: _Extra | None = None


class _Ref(msgspec.Struct, gc=False):
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    apiGroup: str | None = None
    apiVersion: str | None = None
    subresource: str | None = None


class _Status(msgspec.Struct, gc=False):
    code: Annotated[int, msgspec.Meta(ge=0, le=CODE_MAX)] | None = None  # else the full path


class _Annotations(msgspec.Struct, gc=False):
    # Only these: the other annotations (latency traces, webhooks…) are skipped, never allocated.
    decision: str | None = msgspec.field(default=None, name="authorization.k8s.io/decision")
    server: str | None = msgspec.field(default=None, name="audittui/server")
    login: str | None = msgspec.field(default=None, name="authentication.openshift.io/username")
    reason: str | None = msgspec.field(default=None, name="authorization.k8s.io/reason")
    login_decision: str | None = msgspec.field(
        default=None, name="authentication.openshift.io/decision"
    )


class _Event(msgspec.Struct, gc=False):
    kind: str | None = None
    auditID: str | None = None
    stage: str | None = None
    level: str | None = None
    requestURI: str | None = None
    verb: str | None = None
    user: _User | None = None
    impersonatedUser: _User | None = None
    sourceIPs: tuple[str, ...] | None = None
    userAgent: str | None = None
    objectRef: _Ref | None = None
    responseStatus: _Status | None = None
    requestReceivedTimestamp: datetime | None = None
    stageTimestamp: datetime | None = None
    annotations: _Annotations | None = None
    # Present (even as null) only in the flattened shape, which takes the full path.
    namespace: Any = msgspec.UNSET
    resource: Any = msgspec.UNSET


_decode_event = msgspec.json.Decoder(_Event).decode
_astuple = msgspec.structs.astuple
_UNSET = msgspec.UNSET
# RecursionError: nested too deep for the typed decoder; the full path says so
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def fast_packed(line: bytes, offset: int) -> Packed | None:
    """``pack(row(orjson.loads(line)), offset, len(line), -1)`` for a plain v1 Event line, up to
    empty strings and tuples, which may stand where ``row`` has None.

    None when the line needs the full path (any other shape, any unexpected type). The hot loop
    of bulk loading: flat, with struct fields unpacked at once rather than read one by one.
    """
    try:
        ev = _decode_event(line)
    except _DECODE_ERRORS:
        return None
    (
        kind,
        audit_id,
        stage,
        level,
        uri,
        verb,
        user,
        imp,
        ips,
        agent,
        ref,
        status,
        received,
        staged,
        ann,
        flat_namespace,
        flat_resource,
    ) = _astuple(ev)
    if kind != "Event":
        return None
    if ref is None and (flat_namespace is not _UNSET or flat_resource is not _UNSET):
        return None
    # to_micros, inlined: it runs twice per event of every bulk load.
    if received is not None:
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        received = (received - _EPOCH) // _MICRO
    if staged is not None:
        if staged.tzinfo is None:
            staged = staged.replace(tzinfo=UTC)
        staged = (staged - _EPOCH) // _MICRO
    if received is None:
        if staged is None:
            return None  # legacy shapes keep their times elsewhere
        time = staged
        latency = -1
    else:
        time = received
        latency = staged - received if staged is not None else -1
    # Empty strings and tuples are left as they are: the batch encoder treats them as missing,
    # once per distinct value instead of once per event.
    username, groups, extra = _astuple(user) if user is not None else (None, None, None)
    credential = extra.credential if extra is not None else None
    if ref is not None:
        resource, namespace, name, api, version, subresource = _astuple(ref)
        if api is None:
            api = version.rpartition("/")[0] if version is not None else ""
        elif api == "core":  # some converters write the core group's name
            api = ""
    else:
        resource = namespace = name = api = subresource = None
    return (
        (time, latency, (status.code or 0) if status is not None else 0, 0, offset, len(line), -1),
        name,
        audit_id,
        uri,
        credential[0] if credential else None,
        (
            username,
            groups,
            imp.username if imp is not None else None,
            ips,
            agent,
            ann.server if ann is not None else None,
            ann.login if ann is not None else None,
        ),
        (
            verb,
            api,
            resource,
            subresource,
            namespace,
            stage,
            level,
            (ann.decision or ann.login_decision) if ann is not None else None,
            ann.reason if ann is not None else None,
        ),
    )
