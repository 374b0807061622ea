"""Input shapes: native lines, CRLF, long lines, Unicode, EventList, old API versions, flattened
events, whole-file documents, cloud envelopes, and what counts as malformed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

import audittui
from audittui.analyses.summary import summarize
from audittui.index.evaluate import select
from audittui.ingest import formats
from audittui.ingest.batch import STRING_COLUMNS
from audittui.ingest.formats import LEGACY, MISSING_TIME, NON_STANDARD, UUID_ID

BOM = b"\xef\xbb\xbf"


def micros(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def column(store, name: str) -> list:
    return [store.value(name, i) for i in range(len(store))]


def load_bytes(tmp_path, data: bytes, name: str = "audit.log"):
    path = tmp_path / name
    path.write_bytes(data)
    return audittui.load(path)


# -- native JSON lines ---------------------------------------------------------------------------


def test_native_v1_line_every_column(tmp_path, make_event):
    ev = make_event(
        verb="create",
        requestURI="/apis/apps/v1/namespaces/prod/deployments/web/scale?dryRun=All",
        user={"username": "bob", "groups": ["ops", "system:authenticated"]},
        impersonatedUser={"username": "carol", "groups": ["x"]},
        sourceIPs=["192.0.2.7", "10.1.1.1"],
        userAgent="helm/3.14",
        objectRef={
            "resource": "deployments",
            "subresource": "scale",
            "namespace": "prod",
            "name": "web",
            "apiGroup": "apps",
            "apiVersion": "v1",
        },
        responseStatus={"metadata": {}, "code": 403, "status": "Failure"},
        requestReceivedTimestamp="2024-05-01T10:00:00.123456Z",
        stageTimestamp="2024-05-01T10:00:01.623457Z",
        annotations={"authorization.k8s.io/decision": "forbid"},
        level="Request",
    )
    first = orjson.dumps(make_event())
    line = orjson.dumps(ev)
    path = tmp_path / "audit.log"
    path.write_bytes(first + b"\n" + line + b"\n")
    with audittui.load(path) as store:
        assert len(store) == 2
        assert store.malformed == []
        i = 1
        v = store.value
        assert v("user", i) == "bob"
        assert v("groups", i) == ("ops", "system:authenticated")
        assert v("impersonated", i) == "carol"
        assert v("verb", i) == "create"
        assert v("api", i) == "apps"
        assert v("resource", i) == "deployments"
        assert v("subresource", i) == "scale"
        assert v("namespace", i) == "prod"
        assert v("name", i) == "web"
        assert v("stage", i) == "ResponseComplete"
        assert v("level", i) == "Request"
        assert v("decision", i) == "forbid"
        assert v("ips", i) == ("192.0.2.7", "10.1.1.1")
        assert v("user_agent", i) == "helm/3.14"
        assert v("audit_id", i) == ev["auditID"]
        assert v("uri", i) == ev["requestURI"]
        assert v("time", i) == micros("2024-05-01T10:00:00.123456Z")
        assert v("latency", i) == 1_500_001
        assert v("code", i) == 403
        assert v("flags", i) == UUID_ID  # only: its auditID is kept as 128 bits
        assert v("offset", i) == len(first) + 1
        assert v("length", i) == len(line)
        assert v("item", i) == -1
        assert v("source", i) == 0
        assert store.raw(i) == line
        assert store.event(i) == ev
        # the core group is "" and a non-resource request has no api group at all
        assert v("api", 0) == ""


def test_non_resource_request_has_no_resource(tmp_path, make_event):
    ev = make_event(objectRef=None, requestURI="/healthz", verb="get")
    with load_bytes(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert store.value("resource", 0) is None
        assert store.value("api", 0) is None
        assert store.value("flags", 0) & NON_STANDARD == 0


def test_crlf_line_endings(tmp_path, make_event):
    events = [make_event(user={"username": f"u{k}"}) for k in range(4)]
    lines = [orjson.dumps(ev) for ev in events]
    data = b"\r\n".join(lines[:2]) + b"\r\n\r\nnot json\r\n" + b"\r\n".join(lines[2:]) + b"\r\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 4
        assert [(m.line, bool(m.reason)) for m in store.malformed] == [(4, True)]
        assert column(store, "user") == ["u0", "u1", "u2", "u3"]
        for i, ev in enumerate(events):
            assert store.event(i) == ev
            assert store.raw(i) == lines[i]  # no trailing CR
            assert store.value("latency", i) == 2500
        assert len(select(store, "user:u3")) == 1


def test_json_lines_with_bom(tmp_path, make_event):
    events = [make_event(user={"username": f"b{k}"}) for k in range(3)]
    data = BOM + b"\n".join(map(orjson.dumps, events)) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert column(store, "user") == ["b0", "b1", "b2"]
        assert store.malformed == []
        assert store.value("offset", 0) == len(BOM)
        assert store.raw(0) == orjson.dumps(events[0])
        assert store.event(0) == events[0]


def test_crlf_eventlist_and_aks_lines(tmp_path, make_event):
    items = [make_event(kind=None, apiVersion=None) for _ in range(2)]
    eventlist = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
    inner = make_event()
    aks = {"category": "kube-audit", "properties": {"log": json.dumps(inner) + "\n"}}
    data = orjson.dumps(eventlist) + b"\r\n" + orjson.dumps(aks) + b"\r\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 3
        assert store.malformed == []
        assert [store.event(i) for i in range(3)] == [*items, inner]


def test_very_long_line(tmp_path, make_event):
    blob = "x" * (5 << 20)
    big = make_event(
        level="RequestResponse",
        verb="list",
        responseObject={"kind": "PodList", "items": [{"data": blob, "note": "\u00e9\u6f22"}]},
        user={"username": "big"},
    )
    small = [make_event(user={"username": f"s{k}"}) for k in range(3)]
    lines = [orjson.dumps(small[0]), orjson.dumps(big), orjson.dumps(small[1])]
    data = b"\n".join(lines) + b"\n" + orjson.dumps(small[2]) + b"\n"
    assert len(lines[1]) > 5 << 20
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 4
        assert store.malformed == []
        assert column(store, "user") == ["s0", "big", "s1", "s2"]
        assert store.value("length", 1) == len(lines[1])
        assert store.raw(1) == lines[1]
        assert store.event(1) == big
        assert store.event(2) == small[1]
        assert len(select(store, "user:big level:RequestResponse")) == 1


def test_very_long_first_line(tmp_path, make_event):
    big = make_event(requestObject={"data": "y" * (3 << 20)}, user={"username": "first"})
    tail = make_event(user={"username": "second"})
    data = orjson.dumps(big) + b"\n" + orjson.dumps(tail) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert column(store, "user") == ["first", "second"]
        assert store.event(0) == big


HOSTILE = [
    "emoji-\U0001f680\U0001f469\u200d\U0001f4bb",
    "cjk-\u7ba1\u7406\u8005-\uad00\ub9ac\uc790",
    "rtl-\u05de\u05e0\u05d4\u05dc-\u202eevil",
    'esc-"quote"-\\back\\-\t-\n-\u0000-\u001b[31m',
    "html-<script>&amp;</script>",
    "\ufeffbom-inside",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_unicode_and_escapes(tmp_path, make_event, name):
    ev = make_event(
        user={"username": name, "groups": [name]},
        objectRef={"resource": "configmaps", "namespace": "ns-\u00fc", "name": name},
        annotations={"authorization.k8s.io/reason": name},
    )
    # Once as Go writes it (\u003c etc., ASCII-safe escapes) and once as raw UTF-8.
    go_style = json.dumps(ev, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
    data = go_style.encode() + b"\n" + json.dumps(ev, ensure_ascii=False).encode() + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 2
        assert store.malformed == []
        for i in range(2):
            assert store.value("user", i) == name
            assert store.value("groups", i) == (name,)
            assert store.value("name", i) == name
            assert store.value("namespace", i) == "ns-\u00fc"
            assert store.event(i) == ev
        assert store.raw(0) == go_style.encode()
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        assert len(select(store, f'user:"{quoted}"')) == 2


def test_glob_matches_names_with_any_character(tmp_path, make_event):
    """A glob's `*` stands for any characters: a username with an embedded newline or escape
    must not slip past `user:prefix*` (an audit filter that can be evaded is a problem)."""
    names = [name for name in HOSTILE if not name.startswith("\ufeff")]
    events = [make_event(user={"username": name}) for name in names]
    with load_bytes(tmp_path, b"\n".join(map(orjson.dumps, events)) + b"\n") as store:
        for name in names:
            prefix = name.split("-")[0]
            assert len(select(store, f"user:{prefix}-*")) == 1, repr(name)
        assert len(select(store, "user:*")) == len(names)


# -- EventList -----------------------------------------------------------------------------------


def test_eventlist_lines_expand_to_items(tmp_path, make_event):
    items = [
        make_event(kind=None, apiVersion=None, user={"username": f"w{k}"}, verb="watch")
        for k in range(3)
    ]
    lst = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    empty = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": []}
    plain = make_event(user={"username": "plain"})
    data = b"\n".join(orjson.dumps(x) for x in (plain, lst, empty, lst)) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 7
        assert store.malformed == []
        assert column(store, "user") == ["plain", "w0", "w1", "w2", "w0", "w1", "w2"]
        assert column(store, "item") == [-1, 0, 1, 2, 0, 1, 2]
        assert store.value("verb", 2) == "watch"
        for k in range(3):
            assert store.event(1 + k) == items[k]
            assert store.event(4 + k) == items[k]
            assert orjson.loads(store.raw(1 + k)) == items[k]
        assert store.value("latency", 1) == 2500


def test_eventlist_with_bad_item_keeps_good_items(tmp_path, make_event):
    good = make_event(kind=None, apiVersion=None)
    lst = {"kind": "EventList", "items": [good, 7, {"kind": 0}]}
    with load_bytes(tmp_path, orjson.dumps(lst) + b"\n") as store:
        assert len(store) == 1
        assert store.event(0) == good
        assert [m.line for m in store.malformed] == [1]


# -- old API versions ----------------------------------------------------------------------------


def test_v1beta1_event_with_micro_times(tmp_path, make_event):
    ev = make_event(
        apiVersion="audit.k8s.io/v1beta1",
        metadata={"creationTimestamp": "2018-10-25T13:58:49Z"},
        timestamp="2018-10-25T13:58:49Z",
        requestReceivedTimestamp="2018-10-25T13:58:49.730588Z",
        stageTimestamp="2018-10-25T13:58:49.736141Z",
        userAgent=None,
    )
    with load_bytes(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert store.value("time", 0) == micros("2018-10-25T13:58:49.730588Z")
        assert store.value("latency", 0) == 5553
        assert store.value("resource", 0) == "pods"
        assert store.event(0) == ev


def test_v1beta1_with_micro_times_is_not_legacy(tmp_path, make_event):
    """audit-format.md §1.7: a v1beta1 event with MicroTimes reads as v1 (the extras are
    ignored); LEGACY marks only events whose times come from `timestamp`/`metadata`."""
    ev = make_event(
        apiVersion="audit.k8s.io/v1beta1",
        metadata={"creationTimestamp": "2018-10-25T13:58:49Z"},
        timestamp="2018-10-25T13:58:49Z",
        requestReceivedTimestamp="2018-10-25T13:58:49.730588Z",
        stageTimestamp="2018-10-25T13:58:49.736141Z",
    )
    old = make_event(
        apiVersion="audit.k8s.io/v1beta1",
        metadata={"creationTimestamp": "2018-10-25T13:58:50Z"},
        timestamp="2018-10-25T13:58:49Z",
        requestReceivedTimestamp=None,
        stageTimestamp=None,
    )
    with load_bytes(tmp_path, orjson.dumps(ev) + b"\n" + orjson.dumps(old) + b"\n") as store:
        assert not store.value("flags", 0) & LEGACY
        assert store.value("latency", 0) == 5553
        assert store.value("flags", 1) & LEGACY
        assert store.value("latency", 1) == -1


def test_v1alpha1_event(tmp_path, make_event):
    job = make_event(
        apiVersion="audit.k8s.io/v1alpha1",
        metadata={"creationTimestamp": "2018-01-02T03:04:06Z"},
        timestamp="2018-01-02T03:04:05Z",
        requestReceivedTimestamp=None,
        stageTimestamp=None,
        objectRef={"resource": "jobs", "namespace": "n", "name": "j", "apiVersion": "batch/v1"},
    )
    crd = make_event(
        apiVersion="audit.k8s.io/v1alpha1",
        timestamp="2018-01-02T03:04:07Z",
        requestReceivedTimestamp=None,
        stageTimestamp=None,
        objectRef={"resource": "widgets", "apiVersion": "example.com/v1beta2"},
    )
    core = make_event(
        apiVersion="audit.k8s.io/v1alpha1",
        timestamp="2018-01-02T03:04:08Z",
        requestReceivedTimestamp=None,
        stageTimestamp=None,
        objectRef={"resource": "pods", "apiVersion": "v1"},
    )
    data = b"\n".join(orjson.dumps(x) for x in (job, crd, core)) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 3
        assert column(store, "api") == ["batch", "example.com", ""]
        assert column(store, "resource") == ["jobs", "widgets", "pods"]
        assert column(store, "time") == [
            micros("2018-01-02T03:04:05Z"),
            micros("2018-01-02T03:04:07Z"),
            micros("2018-01-02T03:04:08Z"),
        ]
        assert column(store, "latency") == [-1, -1, -1]
        assert all(f & LEGACY for f in column(store, "flags"))
        assert all(f & NON_STANDARD == 0 for f in column(store, "flags"))
        assert len(select(store, "api:batch")) == 1
        assert len(select(store, "api:core")) == 1
        assert store.event(0) == job


def test_v1alpha1_creation_timestamp_only(tmp_path, make_event):
    ev = make_event(
        apiVersion="audit.k8s.io/v1alpha1",
        metadata={"creationTimestamp": "2018-01-02T03:04:06Z"},
        requestReceivedTimestamp=None,
        stageTimestamp=None,
    )
    with load_bytes(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert store.value("time", 0) == micros("2018-01-02T03:04:06Z")
        assert store.value("latency", 0) == -1
        assert store.value("flags", 0) & LEGACY


# -- time and latency ----------------------------------------------------------------------------

RRT = "2024-05-01T10:00:00.100000Z"
STT = "2024-05-01T10:00:02.350000Z"
TST = "2024-05-01T09:59:59Z"


@pytest.mark.parametrize(
    ("received", "stage", "timestamp", "time", "latency"),
    [
        (RRT, STT, TST, RRT, 2_250_000),
        (RRT, None, TST, RRT, -1),
        (None, STT, TST, STT, -1),
        (None, None, TST, TST, -1),
        (RRT, STT, None, RRT, 2_250_000),
        (STT, STT, None, STT, 0),
        (None, None, None, None, -1),
        # GKE/AKS-style nanoseconds round to the nearest microsecond
        ("2024-05-01T10:00:00.1Z", "2024-05-01T10:00:00.123456789Z", None, RRT, 23457),
        ("2024-05-01T10:00:00.1Z", "2024-05-01T10:00:00.123456289Z", None, RRT, 23456),
        ("2024-05-01T12:00:00.100000+02:00", STT, None, RRT, 2_250_000),
    ],
)
def test_event_time_and_latency(tmp_path, make_event, received, stage, timestamp, time, latency):
    ev = make_event(requestReceivedTimestamp=received, stageTimestamp=stage, timestamp=timestamp)
    with load_bytes(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert len(store) == 1
        assert store.value("time", 0) == (micros(time) if time else MISSING_TIME)
        assert store.value("latency", 0) == latency


def test_events_are_ordered_by_event_time(tmp_path, make_event):
    times = ["2024-05-01T10:00:03.000000Z", "2024-05-01T10:00:01.000000Z", None]
    events = [
        make_event(requestReceivedTimestamp=t, user={"username": f"u{k}"})
        for k, t in enumerate(times)
    ]
    events[2] = make_event(
        requestReceivedTimestamp=None,
        stageTimestamp="2024-05-01T10:00:02Z",
        user={"username": "u2"},
    )
    with load_bytes(tmp_path, b"\n".join(orjson.dumps(e) for e in events) + b"\n") as store:
        assert [store.value("user", i) for i in select(store, "")] == ["u1", "u2", "u0"]


# -- flattened / SIEM shape ----------------------------------------------------------------------


def test_flattened_shape_is_non_standard(tmp_path):
    flat = {
        "timestamp": "2024-03-01T08:00:00Z",
        "auditID": "flat-1",
        "verb": "delete",
        "user": {"username": "siem"},
        "namespace": "payments",
        "resource": "secrets",
        "name": "db",
        "stage": "ResponseComplete",
    }
    with load_bytes(tmp_path, orjson.dumps(flat) + b"\n") as store:
        assert len(store) == 1
        assert store.malformed == []
        assert store.value("flags", 0) & NON_STANDARD
        assert store.value("resource", 0) == "secrets"
        assert store.value("namespace", 0) == "payments"
        assert store.value("name", 0) == "db"
        assert store.value("time", 0) == micros("2024-03-01T08:00:00Z")
        assert store.value("latency", 0) == -1
        assert store.event(0) == flat
        assert len(select(store, "ns:payments resource:secrets verb:delete")) == 1


def test_flattened_shape_with_kind_and_micro_time_is_non_standard(tmp_path):
    """A flattened event is recognised by its shape (no objectRef, top-level resource), not by
    its timestamps: keeping kind and a requestReceivedTimestamp must not lose the resource."""
    flat = {
        "kind": "Event",
        "requestReceivedTimestamp": "2024-03-01T08:00:00.000000Z",
        "auditID": "flat-2",
        "verb": "get",
        "namespace": "payments",
        "resource": "secrets",
        "name": "db",
    }
    with load_bytes(tmp_path, orjson.dumps(flat) + b"\n") as store:
        assert len(store) == 1
        assert store.value("resource", 0) == "secrets"
        assert store.value("namespace", 0) == "payments"
        assert store.value("flags", 0) & NON_STANDARD


COLUMNS = [*STRING_COLUMNS, "time", "latency", "code", "flags"]


def test_native_lines_and_documents_index_the_same_values(tmp_path, make_event):
    """The bulk fast path (native lines) and the general path (an array document) agree."""
    samples = [
        make_event(),
        make_event(objectRef=None, requestURI="/version"),
        make_event(objectRef={"resource": "jobs", "apiVersion": "batch/v1"}),
        make_event(objectRef={"resource": "", "namespace": "", "name": "", "apiGroup": ""}),
        make_event(impersonatedUser={"username": "x"}, annotations={}, sourceIPs=[]),
        make_event(impersonatedUser={}, userAgent="", verb="", auditID="", requestURI=""),
        make_event(user={}, responseStatus={"metadata": {}}),
        make_event(user={"username": "", "groups": []}),
        make_event(annotations={"authorization.k8s.io/decision": ""}),
        make_event(stageTimestamp=None),
        make_event(requestReceivedTimestamp=None),
        make_event(requestReceivedTimestamp="2024-05-01T12:00:00.5+02:00"),
        make_event(requestReceivedTimestamp="2024-05-01T10:00:00Z"),
    ]
    lines = tmp_path / "lines.log"
    lines.write_bytes(b"\n".join(map(orjson.dumps, samples)) + b"\n")
    doc = tmp_path / "doc.json"
    doc.write_bytes(json.dumps(samples, indent=1).encode())
    with audittui.load(lines) as a, audittui.load(doc) as b:
        assert len(a) == len(b) == len(samples)
        assert column(b, "item") == list(range(len(samples)))
        for name in COLUMNS:
            assert column(a, name) == column(b, name), name
        assert column(a, "user")[7] is None
        assert column(a, "ips")[4] is None
        assert column(a, "impersonated")[5] is None
        assert column(a, "verb")[5] is None
        assert column(a, "resource")[3] is None
        assert column(a, "api")[3] == ""
        assert column(a, "decision")[8] is None
        assert len(select(a, 'ua:""')) == 1
        assert len(select(a, 'ip:""')) == 1


# -- whole-file documents ------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [b"", BOM])
def test_pretty_printed_event_document(tmp_path, make_event, bom):
    ev = make_event(responseObject={"kind": "Pod", "spec": {"containers": [{"name": "c"}]}})
    data = bom + json.dumps(ev, indent=2, ensure_ascii=False).encode() + b"\n"
    with load_bytes(tmp_path, data, "event.json") as store:
        assert len(store) == 1
        assert store.malformed == []
        assert store.event(0) == ev
        assert orjson.loads(store.raw(0)) == ev
        assert store.value("user", 0) == "alice"


@pytest.mark.parametrize("bom", [b"", BOM])
@pytest.mark.parametrize("shape", ["eventlist", "array", "records", "array-one-line"])
def test_document_with_many_events(tmp_path, make_event, bom, shape):
    events = [make_event(user={"username": f"d{k}"}) for k in range(3)]
    if shape == "eventlist":
        items = [{k: v for k, v in e.items() if k not in ("kind", "apiVersion")} for e in events]
        doc = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
        events = items
    elif shape == "records":
        doc = {
            "records": [
                {"category": "kube-audit", "properties": {"log": json.dumps(e) + "\n"}}
                for e in events
            ]
        }
    else:
        doc = events
    text = json.dumps(doc) if shape == "array-one-line" else json.dumps(doc, indent=4)
    with load_bytes(tmp_path, bom + text.encode(), "doc.json") as store:
        assert len(store) == 3
        assert store.malformed == []
        assert column(store, "user") == ["d0", "d1", "d2"]
        assert column(store, "item") == [0, 1, 2]
        assert [store.event(i) for i in range(3)] == events
        assert [orjson.loads(store.raw(i)) for i in range(3)] == events


@pytest.mark.parametrize("as_string", [True, False])
def test_aks_diagnostic_record_lines(tmp_path, make_event, as_string):
    events = [make_event(user={"username": f"aks{k}"}) for k in range(2)]
    lines = []
    for ev in events:
        log = json.dumps(ev) + "\n" if as_string else ev
        record = {
            "category": "kube-audit",
            "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
            "time": "2024-11-15T21:00:00.1467970Z",
            "properties": {"pod": "kube-apiserver-x", "stream": "stdout", "log": log},
        }
        lines.append(json.dumps(record).replace("/", "\\/").encode())
    with load_bytes(tmp_path, b"\n".join(lines) + b"\n", "aks.json") as store:
        assert len(store) == 2
        assert store.malformed == []
        assert [store.event(i) for i in range(2)] == events
        assert column(store, "user") == ["aks0", "aks1"]
        assert store.value("time", 0) == micros(events[0]["requestReceivedTimestamp"])


def test_aks_record_without_event_is_malformed(tmp_path, make_event):
    bad_log = {"category": "kube-audit", "properties": {"log": "I1126 klog text\n"}}
    no_event = {"category": "kube-audit", "properties": {"log": json.dumps({"a": 1})}}
    good = {"category": "kube-audit", "properties": {"log": json.dumps(make_event())}}
    data = b"\n".join(orjson.dumps(x) for x in (bad_log, no_event, good)) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 1
        assert [m.line for m in store.malformed] == [1, 2]


def test_records_batch_lines(tmp_path, make_event):
    ev = [make_event(user={"username": f"r{k}"}) for k in range(4)]
    recs = [{"category": "kube-audit", "properties": {"log": json.dumps(e)}} for e in ev]
    lines = [orjson.dumps({"records": recs[:3]}), orjson.dumps({"records": recs[3:]})]
    with load_bytes(tmp_path, b"\n".join(lines) + b"\n") as store:
        assert column(store, "user") == ["r0", "r1", "r2", "r3"]
        assert column(store, "item") == [0, 1, 2, 0]
        assert store.event(3) == ev[3]


# -- what is an event, what is malformed --------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"kind": "Event"}, True),
        ({"auditID": "a", "stage": "ResponseComplete"}, True),
        ({"verb": "get", "requestURI": "/"}, True),
        ({"user": {}, "objectRef": {}}, True),
        ({"auditID": "a"}, False),
        ({"verb": "get", "foo": 1}, False),
        ({"kind": 0, "auditID": "a", "verb": "get"}, False),
        ({"kind": "Pod", "auditID": "a", "verb": "get"}, False),
        ({"kind": "EventList", "items": []}, False),
        ([1, 2], False),
        ("Event", False),
        (None, False),
    ],
)
def test_is_event_rule(obj, expected):
    assert formats.is_event(obj) is expected


MALFORMED_LINES = [
    b'{"kind":"Event","auditID":',  # truncated
    b"{not json}",
    b"[1,2]",
    b'{"kind": 0}',
    b'{"auditID":"only-one-key"}',
    b'{"hello":"world","n":1}',
    b'"just a string"',
    b"42",
    b"null",
    b"\x00\x01\xfe\xff\x80garbage\x9c",
    b'I1126 17:43:01.123456       1 server.go:123] "Starting" version="v1.30.0"',
    b'{"kind":"EventList","items":"nope"}',
]


def test_malformed_lines_are_counted_with_line_numbers(tmp_path, make_event):
    good = [make_event(user={"username": f"g{k}"}) for k in range(len(MALFORMED_LINES) + 1)]
    parts = []
    expected_lines = []
    for k, bad in enumerate(MALFORMED_LINES):
        parts.append(orjson.dumps(good[k]))
        parts.append(b"")  # a blank line: ignored, but counted for numbering
        parts.append(bad)
        expected_lines.append(3 * k + 3)
    parts.append(b"   ")
    parts.append(orjson.dumps(good[-1]))
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\n".join(parts) + b"\n")
    with audittui.load(path) as store:
        assert len(store) == len(good)
        assert column(store, "user") == [f"g{k}" for k in range(len(good))]
        assert [m.line for m in store.malformed] == expected_lines
        assert {m.path for m in store.malformed} == {str(path)}
        assert all(isinstance(m.reason, str) and m.reason for m in store.malformed)
        for i in range(len(store)):
            assert store.event(i) == good[i]


@pytest.mark.parametrize("bad", MALFORMED_LINES)
def test_each_malformed_line_alone(tmp_path, bad):
    with load_bytes(tmp_path, bad + b"\n") as store:
        assert len(store) == 0
        assert [m.line for m in store.malformed] == [1]


def test_first_line_array_then_events_is_malformed_not_a_crash(tmp_path, make_event):
    """`[1,2]` is a malformed line even when it is the first line of a JSON-lines file."""
    ev = make_event()
    data = b"[1,2]\n" + orjson.dumps(ev) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 1
        assert [m.line for m in store.malformed] == [1]
        assert store.event(0) == ev


def test_truncated_first_line_then_events(tmp_path, make_event):
    events = [make_event() for _ in range(2)]
    data = b'{"kind":"Event","auditID":"cut\n' + b"\n".join(map(orjson.dumps, events)) + b"\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 2
        assert [m.line for m in store.malformed] == [1]


def test_blank_lines_are_ignored(tmp_path, make_event):
    ev = make_event()
    data = b"\n\n  \n\t\n" + orjson.dumps(ev) + b"\n\n\r\n\n"
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 1
        assert store.malformed == []
        assert store.event(0) == ev


def test_empty_file(tmp_path):
    with load_bytes(tmp_path, b"") as store:
        assert len(store) == 0
        assert store.malformed == []
        assert len(select(store, "")) == 0


def test_last_line_without_newline_complete(tmp_path, make_event):
    events = [make_event(user={"username": f"n{k}"}) for k in range(3)]
    data = b"\n".join(map(orjson.dumps, events))  # no final newline
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 3
        assert store.malformed == []
        assert store.event(2) == events[2]
        assert store.raw(2) == orjson.dumps(events[2])


def test_last_line_without_newline_incomplete(tmp_path, make_event):
    events = [make_event() for _ in range(2)]
    cut = orjson.dumps(make_event())[:-10]
    data = b"\n".join(map(orjson.dumps, events)) + b"\n" + cut
    with load_bytes(tmp_path, data) as store:
        assert len(store) == 2
        assert [m.line for m in store.malformed] == [3]
        assert store.malformed[0].reason


def test_no_kind_event_with_two_keys_is_indexed(tmp_path):
    ev = {"auditID": "k1", "verb": "list", "user": {"username": "nokind"}}
    with load_bytes(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert len(store) == 1
        assert store.value("user", 0) == "nokind"
        assert store.value("time", 0) == MISSING_TIME
        assert store.value("code", 0) == 0
        assert store.value("latency", 0) == -1
        assert store.event(0) == ev


def test_hostile_field_types_never_crash(tmp_path):
    weird = [
        {"kind": "Event", "user": "alice", "objectRef": "pods", "responseStatus": {"code": "200"}},
        {"kind": "Event", "user": {"username": 5, "groups": "g"}, "sourceIPs": "1.2.3.4"},
        {"kind": "Event", "requestReceivedTimestamp": "yesterday", "stageTimestamp": 17},
        {"kind": "Event", "objectRef": {"apiGroup": 3, "apiVersion": 4, "resource": []}},
        {"kind": "Event", "annotations": {"authorization.k8s.io/decision": ["allow"]}},
        {"kind": "Event", "requestReceivedTimestamp": "9999-12-31T23:59:59.999999Z"},
        {"kind": "Event", "requestReceivedTimestamp": "0001-01-01T00:00:00Z"},
    ]
    with load_bytes(tmp_path, b"\n".join(map(orjson.dumps, weird)) + b"\n") as store:
        assert len(store) == len(weird)
        assert store.malformed == []
        assert store.value("user", 0) is None
        assert store.value("code", 0) == 0
        assert store.value("user", 1) is None
        assert store.value("time", 2) == MISSING_TIME
        for i in range(len(weird)):
            assert store.event(i) == weird[i]
        summarize(store, select(store, ""), by="user")
        summarize(store, select(store, ""), by="ip")
        summarize(store, select(store, ""), by="resource")


def test_empty_code_and_duration_select_events_without_them(tmp_path, make_event):
    """`field:""` means "lacks the field" for numbers too: RequestReceived has no status and
    an event without a stage time has no latency."""
    received = make_event(responseStatus=None, stage="RequestReceived")
    no_latency = make_event(stageTimestamp=None)
    lines = b"".join(orjson.dumps(e) + b"\n" for e in (make_event(), received, no_latency))
    with load_bytes(tmp_path, lines) as store:
        assert list(select(store, 'code:""')) == [1]
        assert list(select(store, 'code:"",403')) == [1]
        assert list(select(store, 'dur:""')) == [2]
        assert list(select(store, 'dur:"",>=0us')) == [0, 1, 2]


def test_time_parsing_is_strict_rfc3339():
    """One parser for both paths: Unicode digits, impossible seconds and junk are no time."""
    assert formats.parse_time("2024-11-15T10:20:30.123456Z") == 1731666030123456
    assert formats.parse_time("2024-11-15T10:20:30.123456+01:00") == 1731662430123456
    assert formats.parse_time("2024-11-15T10:20:30") == 1731666030000000  # no offset: UTC
    for bad in ("2024-11-15T10:20:30.١٢٣٤٥٦Z", "2024-11-15T10:20:61Z", "yesterday", "", 5):
        assert formats.parse_time(bad) is None
