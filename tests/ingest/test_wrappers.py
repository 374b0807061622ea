"""Audit events wrapped by clouds, runtimes and tools (audittui/wrappers.py): each shape read
with no flag, on the real captures of ../shared/realdata where they exist and on fixtures
written from the documented layouts (../shared/docs/wrapped-formats.md) where they do not.
The detail view re-reads each event through its wrapper."""

from __future__ import annotations

import gzip
from pathlib import Path
from unittest import mock

import orjson
import pytest
from conftest import SAMPLES, v1_event

import audittui
from audittui.index import loader
from audittui.index.evaluate import select

REALDATA = SAMPLES.parent / "realdata"


def load_text(tmp_path: Path, text: bytes | str, name: str = "audit.log"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return audittui.load(path)


def fields(store, i: int, *names: str) -> tuple:
    return tuple(store.value(n, i) for n in names)


# -- GKE / Cloud Logging ---------------------------------------------------------------------


def entry(method: str, resource_name: str, **extra) -> dict:
    payload = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "k8s.io",
        "methodName": method,
        "resourceName": resource_name,
        "authenticationInfo": {"principalEmail": "alice@example.com"},
        "requestMetadata": {"callerIp": "203.0.113.9", "callerSuppliedUserAgent": "kubectl/1.30"},
        "status": extra.pop("status", {}),
    }
    payload.update(extra.pop("payload", {}))
    return {
        "insertId": extra.pop("insert_id", "id-1"),
        "protoPayload": payload,
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "prod"}},
        "timestamp": "2024-06-26T04:10:49.129747Z",
        "labels": {"authorization.k8s.io/decision": "allow"},
        **extra,
    }


GKE_CASES = [
    # methodName, resourceName → resource, subresource, namespace, name, api, verb, uri
    (
        "io.k8s.core.v1.pods.exec.create",
        "core/v1/namespaces/shop/pods/web-1/exec",
        ("pods", "exec", "shop", "web-1", "", "create", "/api/v1/namespaces/shop/pods/web-1/exec"),
    ),
    (
        "io.k8s.core.v1.namespaces.status.update",  # the status of namespace foo, not a list
        "core/v1/namespaces/foo/status",
        ("namespaces", "status", "foo", "foo", "", "update", "/api/v1/namespaces/foo/status"),
    ),
    (
        "io.k8s.core.v1.pods.list",
        "core/v1/namespaces/foo/pods",
        ("pods", None, "foo", None, "", "list", "/api/v1/namespaces/foo/pods"),
    ),
    (
        "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
        "rbac.authorization.k8s.io/v1/clusterrolebindings/admin-2",
        (
            "clusterrolebindings",
            None,
            None,
            "admin-2",
            "rbac.authorization.k8s.io",
            "create",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admin-2",
        ),
    ),
    ("io.k8s.get", "readyz", (None, None, None, None, None, "get", "/readyz")),
]


@pytest.mark.parametrize("method, resource_name, want", GKE_CASES)
def test_gke_entries_map_method_and_resource_names(tmp_path, method, resource_name, want):
    with load_text(tmp_path, orjson.dumps(entry(method, resource_name)) + b"\n") as store:
        assert len(store) == 1 and not store.malformed
        names = ("resource", "subresource", "namespace", "name", "api", "verb", "uri")
        assert fields(store, 0, *names) == want
        assert fields(store, 0, "user", "ips", "user_agent", "audit_id", "decision") == (
            "alice@example.com",
            ("203.0.113.9",),
            "kubectl/1.30",
            "id-1",
            "allow",
        )
        event = store.event(0)  # the detail: the mapped event, re-read through its wrapper
        assert event["kind"] == "Event" and event["verb"] == want[5]


def test_gke_codes_from_the_status_response_else_from_grpc(tmp_path):
    status = {"@type": "core.k8s.io/v1.Status", "code": 422, "kind": "Status"}
    lines = [
        entry("io.k8s.core.v1.pods.create", "core/v1/namespaces/a/pods/p", status={"code": 3},
              payload={"response": status}),
        entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p", status={"code": 7}),
        entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p", status={"code": 16}),
        entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p", status={"code": 5}),
        entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p"),
        entry("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/a/pods/p/exec"),
    ]  # fmt: skip
    text = b"".join(orjson.dumps(e) + b"\n" for e in lines)
    with load_text(tmp_path, text) as store:
        assert [store.value("code", i) for i in range(6)] == [422, 403, 401, 404, 200, 101]
        assert store.value("stage", 5) == "ResponseStarted"  # an exec session, opened
        assert store.value("level", 0) == "RequestResponse"


def test_gcloud_array_newest_first_and_yaml_read_whole(tmp_path):
    entries = [
        entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p", insert_id=f"i{k}",
              timestamp=f"2024-06-26T04:10:{59 - k:02d}Z")
        for k in range(3)
    ]  # fmt: skip
    path = tmp_path / "gcloud.json"
    path.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))
    with audittui.load(path) as store:
        assert [store.value("audit_id", int(i)) for i in store.order()] == ["i2", "i1", "i0"]
    import yaml

    path = tmp_path / "gcloud.yaml"
    path.write_text("---\n".join(yaml.safe_dump(e) for e in entries))
    with audittui.load(path) as store:
        assert len(store) == 3 and not store.malformed
        assert store.event(0)["auditID"] == "i0"


def test_gke_real_captures_and_other_services(tmp_path):
    with audittui.load(REALDATA / "elastic-integrations" /
                       "gcp-audit-test-k8s-nonmatching-resourcename.log") as store:  # fmt: skip
        assert fields(store, 0, "user", "verb", "uri", "code", "ips", "decision") == (
            "system:anonymous", "get", "/HNAP1", 403, ("192.168.1.1",), "forbid",
        )  # fmt: skip
    with audittui.load(REALDATA / "panther-analysis" / "derived" / "gke.jsonl") as store:
        # 41 with serviceName k8s.io, 10 with only an io.k8s.* methodName; 6 of other services
        assert len(store) == 51
        assert len(store.malformed) == 6
        assert all("another service" in m.reason for m in store.malformed)


@pytest.mark.parametrize(
    "name",
    ["container_recorder_test_1_1", "container_recorder_test_1_2", "test-log"],
)
def test_khi_yaml_reads_as_its_json_twin(name):
    khi = REALDATA / "khi"
    with (
        audittui.load(khi / f"{name}.yaml") as from_yaml,
        audittui.load(khi / "derived" / f"{name}.jsonl") as from_json,
    ):
        assert len(from_yaml) == len(from_json) == 1 and not from_yaml.malformed
        cols = ("user", "verb", "resource", "namespace", "name", "code", "time", "uri", "audit_id")
        assert fields(from_yaml, 0, *cols) == fields(from_json, 0, *cols)


# -- container runtimes ----------------------------------------------------------------------


def inner(k: int, **kw) -> bytes:
    return orjson.dumps(v1_event(auditID=f"cri-{k}", **kw))


def test_cri_lines_full_partial_and_tagless(tmp_path):
    big = inner(2, requestObject={"data": "x" * 3000})
    pieces = [big[:1000], big[1000:2500], big[2500:]]
    text = (
        b"2024-05-01T10:00:00.000000001Z stdout F " + inner(0) + b"\n"
        + b"2024-05-01T10:00:01Z stdout " + inner(1) + b"\n"  # before tags existed
        + b"".join(b"2024-05-01T10:00:02Z stdout P " + p + b"\n" for p in pieces[:2])
        + b"2024-05-01T10:00:02Z stdout F " + pieces[2] + b"\n"
    )  # fmt: skip
    for block in (1 << 19, 300):  # one read, or the pieces cut across reads
        with mock.patch.object(loader, "READ_BLOCK", block), load_text(tmp_path, text) as store:
            assert not store.malformed
            assert [store.value("audit_id", i) for i in range(3)] == ["cri-0", "cri-1", "cri-2"]
            assert store.event(2)["requestObject"]["data"] == "x" * 3000  # joined


def test_the_other_streams_lines_amid_cri_pieces_are_read_on_their_own(tmp_path):
    """kube-apiserver writes audit events to stdout and klog to stderr; the runtime splits each
    stream on its own, so a stderr line can fall between the pieces of a stdout event."""
    big = inner(2, requestObject={"data": "x" * 3000})
    klog = b"2024-05-01T10:00:02Z stderr F I0501 10:00:02.000000       1 trace.go:236] slow\n"
    text = (
        b"2024-05-01T10:00:02Z stdout P " + big[:1000] + b"\n"
        + klog
        + b"2024-05-01T10:00:02Z stderr F " + inner(3) + b"\n"
        + b"2024-05-01T10:00:02Z stdout F " + big[1000:] + b"\n"
        + b"2024-05-01T10:00:03Z stdout F " + inner(4) + b"\n"
    )  # fmt: skip
    for block in (1 << 19, 300):
        with mock.patch.object(loader, "READ_BLOCK", block), load_text(tmp_path, text) as store:
            assert sorted(store.value("audit_id", i) for i in range(len(store))) == [
                "cri-2",
                "cri-3",
                "cri-4",
            ]
            joined = next(i for i in range(3) if store.value("audit_id", i) == "cri-2")
            assert store.event(joined)["requestObject"]["data"] == "x" * 3000
            assert [(m.line, "CRI stderr line" in m.reason, "klog" in m.reason)
                    for m in store.malformed] == [(2, True, True)]  # fmt: skip


def test_docker_pieces_with_the_other_stream_between(tmp_path):
    big = inner(5, requestObject={"data": "y" * 40_000}).decode() + "\n"
    pieces = [big[k : k + 16384] for k in range(0, len(big), 16384)]
    records = [{"log": p, "stream": "stdout", "time": "2024-05-01T10:00:00Z"} for p in pieces]
    records.insert(1, {"log": "E0501 a klog line\n", "stream": "stderr", "time": "x"})
    text = b"".join(orjson.dumps(r) + b"\n" for r in records)
    with load_text(tmp_path, text) as store:
        assert [store.value("audit_id", i) for i in range(len(store))] == ["cri-5"]
        assert store.event(0)["requestObject"]["data"] == "y" * 40_000
        assert [m.line for m in store.malformed] == [2]


def test_a_cri_line_cut_at_the_end_is_reported(tmp_path):
    text = b"2024-05-01T10:00:00Z stdout F " + inner(0) + b"\n"
    text += b"2024-05-01T10:00:01Z stdout P " + inner(1)[:40] + b"\n"
    with load_text(tmp_path, text) as store:
        assert len(store) == 1
        assert [(m.line, "never came" in m.reason) for m in store.malformed] == [(2, True)]


def test_docker_messages_split_at_16_kib_are_joined(tmp_path):
    big = inner(5, requestObject={"data": "y" * 40_000}).decode() + "\n"
    pieces = [big[k : k + 16384] for k in range(0, len(big), 16384)]
    records = [{"log": p, "stream": "stdout", "time": "2024-05-01T10:00:00Z"} for p in pieces]
    text = b"".join(orjson.dumps(r) + b"\n" for r in records)
    text += orjson.dumps({"log": inner(6).decode() + "\n", "stream": "stdout", "time": "x"})
    with load_text(tmp_path, text + b"\n") as store:
        assert not store.malformed and len(pieces) == 3
        assert [store.value("audit_id", i) for i in range(2)] == ["cri-5", "cri-6"]
        assert store.event(0)["requestObject"]["data"] == "y" * 40_000


def test_docker_json_file_and_node_name_prefix(tmp_path):
    docker = {"log": inner(0).decode() + "\n", "stream": "stdout", "time": "2024-05-01T10:00:00Z"}
    text = orjson.dumps(docker) + b"\n"
    text += b"master-0 " + inner(1) + b"\n"  # oc adm node-logs --role=master
    text += b"2024-05-01T10:00:02.000Z " + inner(2) + b"\n"  # a CloudWatch export line
    with load_text(tmp_path, text) as store:
        assert [store.value("audit_id", i) for i in range(3)] == ["cri-0", "cri-1", "cri-2"]
        assert store.event(1)["auditID"] == "cri-1" and not store.malformed


# -- the wrapper, on request ------------------------------------------------------------------


def test_each_event_keeps_its_wrapper(tmp_path):
    """``Store.wrapper``: what the event was read from, for the detail's ``w`` and
    ``query --format wrapper``; the event alone stays what ``raw``/``event`` give."""
    docker = {"log": inner(0).decode() + "\n", "stream": "stdout", "time": "2024-05-01T10:00:00Z"}
    text = orjson.dumps(docker) + b"\n"
    text += b"master-0 " + inner(1) + b"\n"
    text += b"2024-05-01T10:00:02Z stdout F " + inner(2) + b"\n"
    text += inner(3) + b"\n"  # a plain event line: no wrapper
    text += orjson.dumps(entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p")) + b"\n"
    with load_text(tmp_path, text) as store:
        assert store.wrapper(0) == docker
        assert store.wrapper(1) == ["master-0 " + inner(1).decode()]
        assert store.wrapper(2) == ["2024-05-01T10:00:02Z stdout F " + inner(2).decode()]
        assert store.wrapper(3) is None
        assert store.wrapper(4)["protoPayload"]["methodName"] == "io.k8s.core.v1.pods.get"
        assert [store.event(i).get("auditID") for i in range(4)] == [f"cri-{k}" for k in range(4)]


def test_the_wrapper_of_an_event_in_an_envelope_is_its_record_in_the_envelope(tmp_path):
    path = tmp_path / "filter.json"
    path.write_bytes(orjson.dumps(cloudwatch_output(3), option=orjson.OPT_INDENT_2))
    with audittui.load(path) as store:
        wrapper = store.wrapper(2)
        assert wrapper["searchedLogStreams"] == [] and len(wrapper["events"]) == 1
        assert orjson.loads(wrapper["events"][0]["message"])["auditID"] == "cri-2"
    events = [{"id": str(k), "timestamp": k, "message": inner(k).decode()} for k in range(4)]
    payloads = [
        {"messageType": "DATA_MESSAGE", "logGroup": f"/aws/eks/c{k}/cluster", "logEvents": part}
        for k, part in enumerate((events[:1], events[1:]))
    ]
    path = tmp_path / "firehose.gz"
    path.write_bytes(b"".join(gzip.compress(orjson.dumps(p)) for p in payloads))
    with audittui.load(path) as store:
        wrapper = store.wrapper(3)  # in the second document, its third record
        assert wrapper["logGroup"] == "/aws/eks/c1/cluster"
        assert [e["id"] for e in wrapper["logEvents"]] == ["3"]


def test_a_wrapper_shown_folds_the_event_text_and_masks_bodies():
    from audittui.output.mask import mask_wrapper, mask_wrapper_text

    lines = [
        '2024-05-01T10:00:02Z stdout P {"kind":"Event","requestObject":{"data":{"k":"c2Vj',
        "2024-05-01T10:00:02Z stderr F I0501 10:00:02.000000 1 trace.go:1] slow",
        '2024-05-01T10:00:02Z stdout F cmV0"}}}',  # a piece that does not start with {
        'master-0 {"kind":"Event"}',
        '2017-03-21T03:57:09Z AUDIT: id="x" method="GET" user="admin"',
    ]
    shown, count = mask_wrapper(lines)
    assert count == 3 and "c2Vj" not in str(shown) and "cmV0" not in str(shown)
    assert shown[1] == lines[1] and shown[4] == lines[4]  # klog and legacy text: as they are
    assert shown[0].startswith("2024-05-01T10:00:02Z stdout P {…} the event as text")
    docker = [orjson.dumps({"log": log, "stream": "stdout", "time": "t"}).decode()
              for log in ('{"kind":"Event","requestObject":{"kind":"Secret","data":{"k":"c2Vj',
                          'cmV0"}},"token":"x"}\n')]  # fmt: skip
    for shown in (mask_wrapper(docker)[0], mask_wrapper_text(docker)):
        assert "c2Vj" not in str(shown) and "cmV0" not in str(shown)  # each piece, folded
        assert all(orjson.loads(line)["stream"] == "stdout" for line in shown)
    entry_ = {"protoPayload": {"request": {"kind": "Secret", "data": {"k": "c2VjcmV0"}}},
              "message": '{"kind":"Event"}', "timestamp": "t"}  # fmt: skip
    shown, count = mask_wrapper(entry_)
    assert "c2VjcmV0" not in str(shown) and shown["timestamp"] == "t" and count == 2


def test_an_export_of_wrappers_masks_the_event_inside_and_keeps_it(tmp_path):
    """ctrl+s with the detail on ``w``: each event's wrapper, one JSON line each, the event
    text inside masked as an event is (not folded: an export keeps the data)."""
    from audittui.output.export import export_jsonl

    secret = inner(7, requestObject={"kind": "Secret", "data": {"k": "c2VjcmV0"}},
                   objectRef={"resource": "secrets", "name": "db"})  # fmt: skip
    cloudwatch = cloudwatch_output(1)
    cloudwatch["events"][0]["message"] = secret.decode()
    (tmp_path / "logs").mkdir()
    cri, cw = tmp_path / "logs" / "cri.log", tmp_path / "logs" / "cw.json"
    cri.write_bytes(b"2024-05-01T10:00:02Z stdout F " + secret + b"\n")
    cw.write_bytes(orjson.dumps(cloudwatch, option=orjson.OPT_INDENT_2))
    out = tmp_path / "out.jsonl"
    with audittui.load(cri, cw) as store:
        for mask in (True, False):
            assert export_jsonl(store, range(2), str(out), mask=mask, wrappers=True) == 2
            line, record = map(orjson.loads, out.read_bytes().splitlines())
            assert line[0].startswith("2024-05-01T10:00:02Z stdout F {")
            message = record["events"][0]["message"]
            assert orjson.loads(message)["auditID"] == "cri-7"  # kept, as text
            assert ("c2VjcmV0" in out.read_text()) is not mask


def test_query_format_wrapper_prints_each_record_as_read(tmp_path, capsys):
    from audittui.cli import main as cli

    text = b"master-0 " + inner(1) + b"\n" + inner(2) + b"\n"
    text += b"2024-05-01T10:00:02Z stdout F " + inner(3, user={"username": "\u202ex"}) + b"\n"
    path = tmp_path / "node.log"
    path.write_bytes(text)
    assert cli.main(["query", str(path), "--format", "wrapper"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "master-0 " + inner(1).decode()
    assert out[1] == inner(2).decode()  # no wrapper: the line itself
    assert out[2].startswith("2024-05-01T10:00:02Z stdout F {") and "\u202e" not in out[2]


# -- CloudWatch ------------------------------------------------------------------------------


def test_cloudwatch_outputs(tmp_path):
    messages = [inner(k).decode() for k in range(3)]
    filtered = {
        "events": [
            {"logStreamName": "kube-apiserver-audit-1", "timestamp": 1, "message": m,
             "ingestionTime": 2, "eventId": str(k)}
            for k, m in enumerate(messages)
        ],
        "searchedLogStreams": [],
    }  # fmt: skip
    path = tmp_path / "filter.json"
    path.write_bytes(orjson.dumps(filtered, option=orjson.OPT_INDENT_2))
    with audittui.load(path) as store:
        assert [store.value("audit_id", i) for i in range(3)] == ["cri-0", "cri-1", "cri-2"]
    log_events = [{"id": "1", "timestamp": 1, "message": m} for m in messages]
    payload = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/eks/c/cluster",
        "logEvents": log_events,
    }
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": []}
    path = tmp_path / "firehose.log.gz"
    with open(path, "wb") as fh:  # gzip members back to back, documents with no delimiter
        fh.write(gzip.compress(orjson.dumps(payload)) + gzip.compress(orjson.dumps(control)))
    with audittui.load(path) as store:
        assert len(store) == 3
        assert [m.reason for m in store.malformed] == [
            "array[1]: a CloudWatch Logs control message (no log events)"  # the 2nd document
        ]


def cloudwatch_output(count: int) -> dict:
    return {
        "events": [
            {"logStreamName": "kube-apiserver-audit-1", "timestamp": 1,
             "message": inner(k).decode(), "eventId": str(k)}
            for k in range(count)
        ],
        "searchedLogStreams": [],
    }  # fmt: skip


@pytest.mark.parametrize("indent", [orjson.OPT_INDENT_2, 0], ids=["pretty", "one-line"])
def test_a_cloudwatch_document_cut_short_keeps_its_complete_events(tmp_path, indent):
    text = orjson.dumps(cloudwatch_output(5), option=indent)
    cut = text[: text.index(b"cri-4")]  # inside the last event's message
    with load_text(tmp_path, cut, "filter.json") as store:
        assert [store.value("audit_id", i) for i in range(4)] == [f"cri-{k}" for k in range(4)]
        assert len(store) == 4 and store.event(3)["auditID"] == "cri-3"  # re-read from disk
        [bad] = store.malformed
        assert "cut short" in bad.reason and "4 complete record(s)" in bad.reason
        assert bad.line == 1 + cut.rstrip().count(b"\n")  # where it was cut


def test_a_gcloud_array_cut_short_and_a_document_cut_before_its_first_record(tmp_path):
    names = [f"core/v1/namespaces/a/pods/p{k}" for k in range(3)]
    entries = [entry("io.k8s.core.v1.pods.get", name) for name in names]
    text = orjson.dumps(entries, option=orjson.OPT_INDENT_2)
    with load_text(tmp_path, text[: text.rindex(b"insertId")], "gcloud.json") as store:
        assert [store.value("name", i) for i in range(len(store))] == ["p0", "p1"]
        assert "2 complete record(s)" in store.malformed[0].reason
    head = text[:300]
    with load_text(tmp_path, head, "gcloud.json") as store:
        assert len(store) == 0
        assert [m.reason for m in store.malformed] == [
            "a JSON document cut short after 300 bytes, before its first record"
        ]


def test_a_cut_event_line_is_not_half_read_and_a_torn_line_keeps_the_rest(tmp_path):
    event = orjson.dumps(v1_event(auditID="cut", requestObject={"items": [{"a": 1}, {"b": 2}]}))
    cut = event[: event.index(b'{"b"') + 3]
    with load_text(tmp_path, inner(0) + b"\n" + cut) as store:
        assert len(store) == 1
        assert "invalid JSON (unexpected end of data" in store.malformed[0].reason
    with load_text(tmp_path, cut + b"\n" + inner(1) + b"\n" + inner(2) + b"\n") as store:
        assert [store.value("audit_id", i) for i in range(2)] == ["cri-1", "cri-2"]
        assert [m.line for m in store.malformed] == [1]


def test_firehose_members_whose_last_is_cut_short(tmp_path):
    def payload(first: int) -> bytes:
        events = [{"id": str(k), "timestamp": 1, "message": inner(k).decode()}
                  for k in range(first, first + 3)]  # fmt: skip
        return orjson.dumps({"messageType": "DATA_MESSAGE", "logEvents": events})

    last = payload(6)
    data = payload(0) + payload(3) + last[: last.index(b"cri-8")]
    path = tmp_path / "firehose.gz"
    path.write_bytes(gzip.compress(data))
    with audittui.load(path) as store:
        assert [store.value("audit_id", i) for i in range(len(store))] == [
            f"cri-{k}" for k in range(8)
        ]
        assert store.event(7)["auditID"] == "cri-7"
        [bad] = store.malformed
        assert bad.reason.startswith("the last of 3 JSON documents: cut short")


# -- legacy text -----------------------------------------------------------------------------


def test_legacy_text_three_generations():
    web = REALDATA / "kubernetes-website"
    with audittui.load(web / "v1.7-page" / "legacy-text.log") as store:
        assert not store.malformed and len(store) == 4
        got = [fields(store, i, "stage", "verb", "user", "code", "namespace") for i in range(4)]
        assert got == [
            ("RequestReceived", "list", "admin", 0, "default"),  # GET of a collection; no code
            ("ResponseComplete", None, None, 200, None),  # its response line
            ("RequestReceived", "update", "system:serviceaccount:kube-system:default", 0,
             "kube-system"),
            ("ResponseComplete", "update", "system:serviceaccount:kube-system:default", 200,
             "kube-system"),
        ]  # fmt: skip
        assert store.value("groups", 0) == ("system:masters", "system:authenticated")
        assert store.value("audit_id", 0) == store.value("audit_id", 1)
    with audittui.load(web / "v1.8-page" / "legacy-text-with-stage.log") as store:
        assert [store.value("verb", i) for i in range(2)] == ["list", "list"]
        roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"
        assert store.value("uri", 1) == roles
        # the resource, read from the URI as the API server reads it
        assert fields(store, 1, "api", "resource", "namespace", "name") == (
            "rbac.authorization.k8s.io", "roles", "default", None,
        )  # fmt: skip
        assert len(select(store, "res:roles")) == 2


def test_legacy_quoting_and_user_agent(tmp_path):
    line = (
        '2021-08-01T10:00:00.5Z AUDIT: id="x1" stage="ResponseComplete" ip="10.0.0.1" '
        'method="get" user="bob \\"the\\" admin\\u00e9" groups="<none>" as="<self>" '
        'asgroups="<lookup>" user-agent="kubectl/v1.22 \\x41" namespace="<none>" uri="/healthz" '
        'response="200"\n'
    )
    with load_text(tmp_path, line) as store:
        assert fields(store, 0, "user", "user_agent", "namespace", "code") == (
            'bob "the" adminé', "kubectl/v1.22 A", None, 200,
        )  # fmt: skip


def test_the_core_group_written_core_is_the_core_group(tmp_path):
    """Converters (the stackdriver bridge) write apiGroup "core": queries and the policy lab
    both read it as the core group ""."""
    ref = {"resource": "pods", "namespace": "a", "apiGroup": "core", "apiVersion": "v1"}
    ev = v1_event(objectRef=ref, requestURI="api/v1/namespaces/a/pods")
    with load_text(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert store.value("api", 0) == ""
        assert len(select(store, "api:core")) == 1
    from audittui.policy import parse
    from audittui.policy.over_store import decide

    policy = parse({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "Request", "resources": [{"group": "", "resources": ["pods"]}]},
        {"level": "Metadata"}]})  # fmt: skip
    with load_text(tmp_path, orjson.dumps(ev) + b"\n") as store:
        assert decide(policy, store).tolist() == [0]
        assert policy.evaluate(store.event(0)).rule == 0  # the per-event checker agrees


def test_the_app_reads_a_gcloud_export_whole(tmp_path):
    """A JSON or YAML document is read once in the app, not followed line by line."""
    from conftest import drive_app, status, until

    entries = [
        entry("io.k8s.core.v1.pods.get", f"core/v1/namespaces/a/pods/p{k}", insert_id=f"i{k}")
        for k in range(3)
    ]
    path = tmp_path / "gcloud.json"
    path.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))

    async def check(app, pilot) -> None:
        await until(pilot, lambda: "3 / 3 events" in status(app), what="the 3 entries")
        assert "read once" in status(app) and "malformed" not in status(app)

    drive_app(str(path), tmp_path, check)


def test_go_struct_gke_captures_find_what_their_converted_events_find():
    """The stackdriver bridge's 25 real GKE captures, as Go logging.Entry JSON and as the
    audit events the bridge made of them: the same findings, counted alike."""
    from audittui.findings import Findings, load_rules

    bridge = REALDATA / "stackdriver-webhook-bridge"
    found = []
    for folder in ("log_entries", "k8s_audit_events"):
        with audittui.load(bridge / folder) as store:
            assert len(store) == 25 and not store.malformed
            findings = Findings(load_rules(False).rules)
            findings.update(store)
            found.append(sorted((f.rule.id, f.count) for f in findings.results(store)))
    assert found[0] == found[1] and ("exec-attach", 2) in found[0]


def test_the_api_server_or_cluster_a_wrapper_names_is_the_server_field(tmp_path):
    lines = [
        b"master-0 " + inner(0),  # oc adm node-logs --role=master
        b"master-1 " + inner(1),
        b"2024-05-01T10:00:00.000Z kube-apiserver-audit-ab12 " + inner(2),  # aws logs tail
        b"2024-05-01T10:00:00.000Z " + inner(3),  # an export line: no server named
        orjson.dumps(entry("io.k8s.core.v1.pods.get", "core/v1/namespaces/a/pods/p")),  # GKE
    ]
    with load_text(tmp_path, b"\n".join(lines) + b"\n") as store:
        assert [store.value("server", i) for i in range(5)] == [
            "master-0", "master-1", "kube-apiserver-audit-ab12", None, "prod",
        ]  # fmt: skip
        assert len(select(store, "server:master-*")) == 2
        assert store.event(0)["annotations"]["audittui/server"] == "master-0"  # visible
    events = [{"logStreamName": f"kube-apiserver-audit-{k}", "message": inner(k).decode()}
              for k in range(2)]  # fmt: skip
    path = tmp_path / "cw.json"
    path.write_bytes(orjson.dumps({"events": events}))
    with audittui.load(path) as store:
        assert store.value("server", 1) == "kube-apiserver-audit-1"


def test_openshift_oauth_logins_can_be_queried(tmp_path):
    ann = {"authentication.openshift.io/decision": "error",
           "authentication.openshift.io/username": "user1.example"}  # fmt: skip
    login = v1_event(user={"username": "system:anonymous"}, requestURI="/oauth/authorize",
                     annotations=ann)  # fmt: skip
    with load_text(tmp_path, orjson.dumps(login) + b"\n" + orjson.dumps(v1_event()) + b"\n") as s:
        assert s.value("login", 0) == "user1.example" and s.value("login", 1) is None
        assert len(select(s, "login:user1.*")) == 1
        assert list(select(s, "login:* decision:error")) == [0]  # the login's outcome
        assert s.value("decision", 1) == "allow"  # the authorizer's, as before


def test_subfolders_with_recursive_and_a_must_gather_by_itself(tmp_path, capsys):
    from audittui.cli import main as cli

    demo = (SAMPLES / "audit2rbac" / "demo.log").read_bytes()
    deep = tmp_path / "deep" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "audit.log").write_bytes(demo)
    assert cli.main(["stats", str(tmp_path / "deep")]) == 2
    assert "subfolders are read with --recursive" in capsys.readouterr().err
    assert cli.main(["stats", "--recursive", str(tmp_path / "deep")]) == 0
    assert "events      37" in capsys.readouterr().out
    # oc adm must-gather -- /usr/bin/gather_audit_logs: recognised by its listing files
    logs = tmp_path / "must-gather.local.1" / "quay-io-sha256" / "audit_logs"
    for component in ("kube-apiserver", "openshift-apiserver"):
        (logs / component).mkdir(parents=True)
        (logs / f"{component}.audit_logs_listing").write_text("master-0 audit.log\n")
        (logs / component / "master-0-audit.log.gz").write_bytes(gzip.compress(demo))
    (logs / "kube-apiserver" / "master-1-audit-2024-05-01T10-00-00.000.log.gz").write_bytes(
        gzip.compress(demo)
    )
    with audittui.load(tmp_path / "must-gather.local.1") as store:
        assert len(store.sources) == 3 and len(store) == 111
        # each file's node, from its name, is the server: of its events
        assert len(select(store, "server:master-0")) == 74
        assert len(select(store, "server:master-1")) == 37


def test_the_app_reads_a_must_gather_with_its_servers(tmp_path):
    from conftest import drive_app, status, until

    demo = (SAMPLES / "audit2rbac" / "demo.log").read_bytes()
    logs = tmp_path / "must-gather.local.2" / "image" / "audit_logs"
    (logs / "kube-apiserver").mkdir(parents=True)
    (logs / "kube-apiserver.audit_logs_listing").write_text("master-0 audit.log\n")
    for node in ("master-0", "master-1"):
        (logs / "kube-apiserver" / f"{node}-audit.log.gz").write_bytes(gzip.compress(demo))

    async def check(app, pilot) -> None:
        await until(pilot, lambda: "74 / 74 events" in status(app), what="both servers' files")
        assert "read once" in status(app)
        assert len(select(app.store, "server:master-1")) == 37

    drive_app(str(tmp_path / "must-gather.local.2"), tmp_path, check)
