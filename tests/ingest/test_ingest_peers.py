"""Inputs found while replaying the peer detection packs (issue 30): Panther's GKE entries with no
serviceName, users in authoritySelector, decisions from authorizationInfo[].granted, Panther's
``callerIP``, and legacy text lines whose resource only the URI holds. Each on the real files
of ../shared/realdata, read by ``audittui.load``, and on crafted lines (hostile ones too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REALDATA
from peer_packs import panther_cases, run

import audittui
from audittui.index.evaluate import select
from audittui.ingest.formats import format_time

PANTHER = REALDATA / "panther-analysis" / "derived"


def load_lines(tmp_path: Path, *lines: Any, name: str = "audit.log"):
    """``lines`` (dicts as JSON lines, strings as they are) written to a file and loaded."""
    path = tmp_path / name
    path.write_bytes(
        b"".join((ln if isinstance(ln, str) else orjson.dumps(ln).decode()).encode() + b"\n"
                 for ln in lines)
    )  # fmt: skip
    return audittui.load(path)


def fields(store, i: int, *names: str) -> tuple:
    return tuple(store.value(n, i) for n in names)


def holding(store, *needles: str) -> int:
    """The one event whose record (the entry it was read from) holds each of ``needles``."""
    records = [orjson.dumps(store.wrapper(i) or {}).decode() for i in range(len(store))]
    found = [i for i, text in enumerate(records) if all(n in text for n in needles)]
    assert len(found) == 1, (needles, found)
    return found[0]


def gke(payload: dict, **entry: Any) -> dict:
    """A Cloud Logging entry whose AuditLog is ``payload``."""
    return {"protoPayload": payload, "resource": {"type": "k8s_cluster"}, **entry}


POD_GET = {"methodName": "io.k8s.core.v1.pods.get", "resourceName": "core/v1/namespaces/a/pods/p"}


# -- every Kubernetes audit event of Panther's tests loads ------------------------------------

# The test Logs that hold no Kubernetes audit event, and what each is said to be
NOT_EVENTS = {
    ("GCP.GKE.Kubernetes.Cron.Job.Created.Or.Modified", "create"): "another service",
    ("GCP.GKE.Kubernetes.Cron.Job.Created.Or.Modified", "update"): "another service",
    ("GCP.GKE.Kubernetes.Cron.Job.Created.Or.Modified", "fail"): "another service",
    ("GCP.K8s.New.Daemonset.Deployed", "privilege-escalation"): "another service",
    ("GCP.K8s.New.Daemonset.Deployed", "fail"): "another service",
    ("GCP.K8s.IOC.Activity", "triggers"): "a GCP log entry with no AuditLog",
    ("GCP.K8s.IOC.Activity", "ignore"): "a GCP log entry with no AuditLog",
    ("Kubernetes.API.IOC.Activity", "Non-K8s GCP Activity (Excluded)"): "another service",
    ("Kubernetes.API.IOC.Activity", "Non-K8s Azure Activity (Excluded)"): "Azure activity log",
}


def test_every_kubernetes_event_of_panthers_tests_loads(tmp_path):
    """282 test Logs (EKS with p_* fields and Panther's times, AKS records, GKE entries): every
    one that holds a Kubernetes audit event loads as events (before: 19 loaded none, 10 of them
    GKE entries with no serviceName); the 9 that hold none say what they are."""
    cases = panther_cases()
    empty: dict[tuple[str, str], str] = {}
    loaded = wanted = 0
    for case in cases:
        _, store = run(tmp_path, case.events, [])
        with store:
            if len(store) == 0:
                assert len(store.malformed) == len(case.events)
                empty[case.rule, case.name] = store.malformed[0].reason
            else:
                assert not store.malformed, (case.id, store.malformed[0].reason)
                loaded += len(store)
                wanted += len(case.events)
    assert len(cases) == 282
    assert loaded == wanted == 460
    assert set(empty) == set(NOT_EVENTS)
    for key, reason in empty.items():
        assert NOT_EVENTS[key] in reason, (key, reason)
        assert "not Kubernetes" in reason or "not a Kubernetes" in reason or "no audit" in reason


def test_panthers_derived_files_load_whole_and_say_what_the_rest_is():
    with audittui.load(PANTHER / "eks.jsonl") as store:
        assert len(store) == 188
        assert {m.reason.split(" (")[0] for m in store.malformed} == {
            "a GCP log entry with no AuditLog"
        }
        # Panther's time format (a space, no zone, centiseconds) is UTC
        times = {format_time(store.value("time", k)) for k in range(len(store))}
        assert "2022-11-29T00:09:04.380000Z" in times
    with audittui.load(PANTHER / "aks.jsonl") as store:
        assert len(store) == 34
        assert [m.reason for m in store.malformed] == [
            "an Azure activity log record (category Administrative), not a Kubernetes audit event"
        ]
    with audittui.load(PANTHER / "gke.jsonl") as store:
        assert len(store) == 51 and len(store.malformed) == 6
        services = sorted({m.reason for m in store.malformed})
        assert services == [
            "a GCP audit entry of another service (compute.googleapis.com), not Kubernetes",
            "a GCP audit entry of another service (deploymentmanager.googleapis.com), "
            "not Kubernetes",
        ]


# -- 1. GKE entries with no serviceName ---------------------------------------------------------


def test_gke_entries_without_service_name_are_events_with_their_fields():
    names = ("verb", "api", "resource", "subresource", "namespace", "name", "user", "ips")
    with audittui.load(PANTHER / "gke.jsonl") as store:
        exec_ = holding(store, "disallowed.user@example.com")  # callerIp; no granted
        assert fields(store, exec_, *names, "code", "decision", "stage") == (
            "create", "", "pods", "exec", "example", "one-off-valerii-tovstyk-1646666967280",
            "disallowed.user@example.com", ("88.88.88.88",), 101, None, "ResponseStarted",
        )  # fmt: skip
        # callerIP, granted true, a cluster
        mount = holding(store, '"path":"/var/lib/kubelet"', "11:48:22.742154000")
        assert fields(store, mount, *names, "code", "decision", "server", "level") == (
            "create", "", "pods", None, "default", "test", "some.user@company.com",
            ("1.2.3.4",), 200, "allow", "some-project-cluster", "RequestResponse",
        )  # fmt: skip
        assert format_time(store.value("time", mount)) == "2024-02-16T11:48:22.742154Z"
        denied = holding(store, "12:02:22.057586000", '"granted":false')  # NodePort
        assert fields(store, denied, "resource", "name", "decision") == (
            "services", "test-ns", "forbid",
        )  # fmt: skip
        # Pod Not Created: a Failure Status with no code and no gRPC status: no code, not 200
        failed = holding(store, '"response":{"status":"Failure"}')
        assert fields(store, failed, "code", "resource", "name") == (0, "pods", "test")
        assert store.event(failed)["responseStatus"] == {"status": "Failure"}
        # the hostPID test, minimised to a methodName and a request body
        pid = holding(store, '"hostPID":true', '{"authorizationInfo":')
        assert fields(store, pid, "verb", "resource", "user", "level") == (
            "create", "pods", None, "Request",
        )  # fmt: skip
        assert len(select(store, "res:pods verb:create")) == 26  # 10 of them without a serviceName


def test_only_a_kubernetes_method_makes_an_entry_with_no_service_an_event(tmp_path):
    lines = [
        gke({**POD_GET}),  # no serviceName: an event
        gke({**POD_GET, "serviceName": ""}),  # an empty one is none either
        gke({"methodName": "google.container.v1.ClusterManager.CreateCluster"}),
        gke({"resourceName": "projects/p"}),  # no methodName at all
        gke({"methodName": "io.k8s.core.v1.pods.get", "serviceName": "compute.googleapis.com"}),
        gke({"methodName": ["io.k8s.core.v1.pods.get"]}),  # not a string
    ]
    with load_lines(tmp_path, *lines) as store:
        assert len(store) == 2
        assert fields(store, 0, "verb", "resource", "namespace", "name") == (
            "get",
            "pods",
            "a",
            "p",
        )
        assert [m.reason for m in store.malformed] == [
            "a GCP audit entry naming no service (methodName "
            "google.container.v1.ClusterManager.Creat…), not Kubernetes",
            "a GCP audit entry naming no service (no methodName), not Kubernetes",
            "a GCP audit entry of another service (compute.googleapis.com), not Kubernetes",
            "a GCP audit entry naming no service (methodName an array), not Kubernetes",
        ]


def test_a_hostile_method_name_stays_inert_and_bounded(tmp_path):
    hostile = "io.k8s.core.v1.pods.\x1b[2J\x00get\u202e"
    long = "io.k8s." + "a." * 500_000 + "get"  # well formed, but no method is that long
    lines = [
        gke({"methodName": hostile}),  # no service: not an event
        gke({"methodName": long}),
        gke({"methodName": "io.k8s." + "\x07" * 100_000}),
        gke({**POD_GET, "methodName": hostile, "serviceName": "k8s.io"}),  # the service's own
        gke({**POD_GET, "methodName": long, "serviceName": "k8s.io"}),
    ]
    with load_lines(tmp_path, *lines) as store:
        assert len(store.malformed) == 3
        for m in store.malformed:
            assert len(m.reason) < 120  # bounded, whatever the methodName's length
            assert all(c.isprintable() for c in m.reason), m.reason  # escaped: inert
        assert "\\u001b[2J\\u0000get" in store.malformed[0].reason
        # k8s.io's entries are events; a methodName no API server writes is not split into a
        # verb or a resource (the resourceName is still read as the path it is)
        assert len(store) == 2
        for i in range(2):
            assert fields(store, i, "verb", "resource", "uri") == (
                None,
                None,
                "/core/v1/namespaces/a/pods/p",
            )


# -- 2. the user in authoritySelector ------------------------------------------------------------


def test_the_user_from_authority_selector_when_nothing_else_names_one(tmp_path):
    with audittui.load(PANTHER / "gke.jsonl") as store:
        anonymous = select(store, "user:system:anonymous")
        assert len(anonymous) == 5  # 2 in authoritySelector, 3 in principalEmail
        probe = holding(store, "io.k8s.core.v1.componentstatuses.list")
        assert fields(store, probe, "user", "ips", "verb", "resource") == (
            "system:anonymous", ("35.191.0.1",), "list", "componentstatuses",
        )  # fmt: skip
    auth = [
        {"principalEmail": "alice@example.com", "authoritySelector": "system:anonymous"},
        {
            "principalSubject": "principal://iam.googleapis.com/locations/global/workforcePools/"
            "p/subject/bob",
            "authoritySelector": "x",
        },  # fmt: skip
        {"authoritySelector": "system:anonymous"},
        {"principalEmail": "", "authoritySelector": "carol"},  # empty: no one
        {"authoritySelector": 7},
        {},
        "alice",
    ]
    lines = [gke({**POD_GET, "serviceName": "k8s.io", "authenticationInfo": a}) for a in auth]
    with load_lines(tmp_path, *lines) as store:
        assert [store.value("user", i) for i in range(len(auth))] == [
            "alice@example.com",
            "principal://iam.googleapis.com/locations/global/workforcePools/p/subject/bob",
            "system:anonymous",
            "carol",
            None,
            None,
            None,
        ]


# -- 3. the decision from authorizationInfo[].granted ------------------------------------------


def test_the_decision_from_granted_when_no_label_gives_one(tmp_path):
    def checks(*granted: Any) -> list:
        out = []
        for g in granted:
            check = {"permission": "io.k8s.core.v1.pods.get", "resource": "core/v1/pods"}
            if g != "absent":
                check["granted"] = g
            out.append(check)
        return out

    cases = [
        (checks(True), None, "allow"),
        (checks(True, True), None, "allow"),
        (checks(True, False), None, "forbid"),
        (checks(False, "absent"), None, "forbid"),
        (checks(True, "absent"), None, None),  # one left unsaid: no decision
        (checks("true"), None, None),  # a string is no granted
        ([], None, None),
        ({"granted": True}, None, None),  # not a list
        (["granted"], None, None),
        (checks(False), "allow", "allow"),  # the authorizer's label is its own word
        (checks(True), "forbid", "forbid"),
    ]
    lines = []
    for info, label, _ in cases:
        entry = gke({**POD_GET, "serviceName": "k8s.io", "authorizationInfo": info})
        if label:
            entry["labels"] = {"authorization.k8s.io/decision": label}
        lines.append(entry)
    with load_lines(tmp_path, *lines) as store:
        assert [store.value("decision", i) for i in range(len(cases))] == [c[2] for c in cases]
        assert len(select(store, "decision:forbid")) == 3


# -- 4. callerIP ---------------------------------------------------------------------------------


def test_the_source_address_as_callerIp_or_callerIP(tmp_path):
    metas = [
        {"callerIp": "203.0.113.1"},
        {"callerIP": "203.0.113.2"},
        {"callerIp": "203.0.113.3", "callerIP": "198.51.100.9"},  # Cloud Logging's own first
        {"callerIp": None, "callerIP": "203.0.113.4"},
        {"callerIP": ["203.0.113.5"]},
    ]
    lines = [gke({**POD_GET, "serviceName": "k8s.io", "requestMetadata": m}) for m in metas]
    with load_lines(tmp_path, *lines) as store:
        assert [store.value("ips", i) for i in range(len(metas))] == [
            ("203.0.113.1",), ("203.0.113.2",), ("203.0.113.3",), ("203.0.113.4",), None,
        ]  # fmt: skip
        assert len(select(store, "ip:203.0.113.2")) == 1
    with audittui.load(PANTHER / "gke.jsonl") as store:
        assert len(select(store, "ip:1.2.3.4")) == 21


# -- 5. legacy text: the resource from the URI ---------------------------------------------------


def test_legacy_lines_find_their_resource_on_the_real_excerpts():
    web = REALDATA / "kubernetes-website"
    names = ("verb", "api", "resource", "subresource", "namespace", "name")
    with audittui.load(web / "v1.7-page" / "legacy-text.log") as store:
        assert fields(store, 0, *names) == ("list", "", "pods", None, "default", None)
        assert fields(store, 1, *names) == (None, None, None, None, None, None)  # response line
        assert fields(store, 2, *names) == (
            "update", "", "endpoints", None, "kube-system", "kube-controller-manager",
        )  # fmt: skip
        assert len(select(store, "res:endpoints")) == 2
        assert store.event(2)["objectRef"] == {
            "resource": "endpoints", "namespace": "kube-system",
            "name": "kube-controller-manager", "apiVersion": "v1",
        }  # fmt: skip
    with audittui.load(web / "v1.8-page" / "legacy-text-with-stage.log") as store:
        assert len(select(store, "res:roles")) == 2
        assert len(select(store, "api:rbac.authorization.k8s.io ns:default")) == 2


def legacy(method: str, uri: str, **more: str) -> str:
    pairs = " ".join(f'{k}="{v}"' for k, v in more.items())
    return (
        f'2017-03-21T03:57:09.106841886Z AUDIT: id="{uri[-30:]}" ip="127.0.0.1" method="{method}" '
        f'user="admin" groups="\\"system:masters\\"" as="<self>" asgroups="<lookup>" '
        f'{pairs} uri="{uri}"'
    )


LEGACY_CASES = [
    # method, URI → verb, api, resource, subresource, namespace, name
    ("GET", "/api/v1/namespaces/default/pods", ("list", "", "pods", None, "default", None)),
    ("GET", "/api/v1/namespaces/default/pods?watch=true",
     ("watch", "", "pods", None, "default", None)),
    ("GET", "/api/v1/pods?watch=false&resourceVersion=1", ("list", "", "pods", None, None, None)),
    ("GET", "/api/v1/pods?watch=0", ("list", "", "pods", None, None, None)),
    ("GET", "/api/v1/pods?watch=", ("watch", "", "pods", None, None, None)),  # as Go reads it
    ("GET", "/api/v1/namespaces/a/pods/web", ("get", "", "pods", None, "a", "web")),
    ("HEAD", "/api/v1/namespaces/a/pods/web", ("get", "", "pods", None, "a", "web")),
    ("GET", "/api/v1/namespaces/a/pods/web/log", ("get", "", "pods", "log", "a", "web")),
    ("POST", "/api/v1/namespaces/a/pods/web/exec?command=sh",
     ("create", "", "pods", "exec", "a", "web")),
    ("DELETE", "/api/v1/namespaces/a/pods", ("deletecollection", "", "pods", None, "a", None)),
    ("DELETE", "/api/v1/namespaces/a/pods/web", ("delete", "", "pods", None, "a", "web")),
    ("PUT", "/api/v1/namespaces/foo/status", ("update", "", "namespaces", "status", "foo", "foo")),
    ("GET", "/api/v1/namespaces/foo", ("get", "", "namespaces", None, "foo", "foo")),
    ("GET", "/api/v1/watch/namespaces/a/pods", ("watch", "", "pods", None, "a", None)),
    ("GET", "/api/v1/proxy/namespaces/a/services/web/some/path",
     ("proxy", "", "services", None, "a", "web")),
    ("PATCH", "/apis/rbac.authorization.k8s.io/v1beta1/namespaces/kube-system/roles/r",
     ("patch", "rbac.authorization.k8s.io", "roles", None, "kube-system", "r")),
    ("GET", "/apis/apps/v1beta1/deployments", ("list", "apps", "deployments", None, None, None)),
    # a list's fieldSelector name is no name in the path: not taken
    ("GET", "/api/v1/namespaces/a/pods?fieldSelector=metadata.name%3Dweb",
     ("list", "", "pods", None, "a", None)),
    # not resource paths: the method in lower case, no resource
    ("GET", "/healthz", ("get", None, None, None, None, None)),
    ("POST", "/api/v1", ("post", None, None, None, None, None)),
    ("GET", "/apis/apps/v1", ("get", None, None, None, None, None)),
    ("OPTIONS", "/api/v1/pods", (None, "", "pods", None, None, None)),  # Go's verb: ""
]  # fmt: skip


@pytest.mark.parametrize("method, uri, want", LEGACY_CASES)
def test_legacy_lines_read_the_request_from_the_uri(tmp_path, method, uri, want):
    with load_lines(tmp_path, legacy(method, uri)) as store:
        assert not store.malformed and len(store) == 1
        assert fields(store, 0, "verb", "api", "resource", "subresource", "namespace", "name") == (
            want
        )
        assert store.value("uri", 0) == uri


def test_legacy_lines_keep_what_they_say_and_invent_nothing(tmp_path):
    lines = [
        # the staged generation logs the verb itself: kept, not re-derived from a method
        legacy("watch", "/api/v1/namespaces/a/pods", stage="ResponseComplete"),
        # a non-resource URI: the namespace the line names, and no more
        legacy("GET", "/version", namespace="<none>"),
        # the line's namespace where the URI has none (a cluster-scoped path)
        legacy("GET", "/api/v1/nodes/n1", namespace="kube-system"),
        # the URI's own namespace over a line that says another
        legacy("GET", "/api/v1/namespaces/a/pods/p", namespace="b"),
        # percent-escapes decoded before the path is split, as the server does
        legacy("GET", "/api/v1/namespaces/a/pods/we%62"),
        # a name-less line: no uri
        '2017-03-21T03:57:09Z AUDIT: id="x" method="GET" user="admin" namespace="a"',
    ]
    names = ("verb", "resource", "namespace", "name")
    with load_lines(tmp_path, *lines) as store:
        assert not store.malformed
        assert [fields(store, i, *names) for i in range(len(lines))] == [
            ("watch", "pods", "a", None),
            ("get", None, None, None),
            ("get", "nodes", "kube-system", "n1"),
            ("get", "pods", "a", "p"),
            ("get", "pods", "a", "web"),
            ("get", None, "a", None),
        ]
        assert "objectRef" not in store.event(1)


def test_hostile_legacy_uris_stay_inert(tmp_path):
    lines = [
        legacy("GET", "/api/v1/namespaces/%1b%5b2J/pods/%00"),  # escapes to control characters
        legacy("GET", "/api/v1/namespaces/" + "a/" * 50_000 + "pods"),  # a very deep path
        legacy("GET", "/api/v1/pods?" + "watch=1&" * 50_000),
        legacy("GET", "/apis"),
        legacy("GET", "//api//v1"),  # api, "" (the version), then a resource "v1", as Go reads it
    ]
    with load_lines(tmp_path, *lines) as store:
        assert len(store) == 5 and not store.malformed
        # the server's reading, kept as values (shown escaped by the views, never run)
        assert fields(store, 0, "resource", "namespace", "name") == ("pods", "\x1b[2J", "\x00")
        assert fields(store, 1, "resource", "namespace", "name") == ("a", "a", "a")
        assert store.value("verb", 2) == "watch"
        assert [store.value("resource", i) for i in (3, 4)] == [None, "v1"]


def test_an_entry_read_leniently_keeps_numbers_orjson_can_write(tmp_path):
    """A lone surrogate's escape sends a line to the lenient reader (the standard library's),
    which would keep an integer past 64 bits that orjson, writing the event back out to show or
    export it, refuses: it reads as the float orjson itself makes of it. (Found by the type
    confusion test on a GKE entry.)"""
    line = (
        '{"insertId":"i","protoPayload":{"serviceName":"k8s.io","methodName":"\\ud800",'
        '"response":{"a":-9223372036854775809,"b":18446744073709551615}}}'
    )
    with load_lines(tmp_path, line) as store:
        assert len(store) == 1
        event = store.event(0)
        assert event["responseObject"] == {"a": -9.223372036854776e18, "b": 18446744073709551615}
        assert store.value("verb", 0) is None  # "\ufffd" is no Kubernetes methodName


def test_records_of_other_clouds_say_what_they_are_whatever_their_types(tmp_path):
    lines = [
        {"category": "Administrative", "operationName": "Microsoft.Compute/virtualMachines/write"},
        {"category": "kube-apiserver", "operationName": "x", "resourceId": "/subscriptions/s"},
        {"category": {"a": 1}, "operationName": "x"},  # an object: unhashable, still a reason
        {"category": ["Administrative"], "operationName": "x"},
        {"operation": {"producer": "k8s.io"}, "p_enrichment": {}},
        {"logName": "projects/p/logs/stdout", "textPayload": "hello \x1b[2J"},
        {"operation": {"producer": {"\u202e": 1}}},
    ]
    with load_lines(tmp_path, *lines) as store:
        assert len(store) == 0
        assert [m.reason for m in store.malformed] == [
            "an Azure activity log record (category Administrative), not a Kubernetes audit event",
            "an Azure resource log record (category kube-apiserver), not a Kubernetes audit event",
            "an Azure resource log record (category an object), not a Kubernetes audit event",
            "an Azure resource log record (category an array), not a Kubernetes audit event",
            "a GCP log entry with no AuditLog (no protoPayload; operation.producer k8s.io), no "
            "audit event in it",
            "a GCP log entry with no AuditLog (no protoPayload; another payload), no audit event "
            "in it",
            "a GCP log entry with no AuditLog (no protoPayload; operation.producer an object), no "
            "audit event in it",
        ]


def test_the_policy_lab_reads_legacy_lines_as_the_resource_requests_they_are(tmp_path):
    """A cluster-scoped legacy request (``namespace="<none>"``) had no objectRef, so the policy
    lab took it for a non-resource request; with its resource read from the URI, a rule on
    nodes matches it, per event and over the store alike."""
    from audittui.policy import parse
    from audittui.policy.over_store import decide

    policy = parse({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["nodes"]}]},
        {"level": "Request", "nonResourceURLs": ["/api/*"]},
        {"level": "Metadata"}]})  # fmt: skip
    lines = [
        legacy("GET", "/api/v1/nodes/n1", namespace="<none>"),
        legacy("GET", "/api/v1/nodes", namespace="<none>"),
        legacy("GET", "/api/v1", namespace="<none>"),
        legacy("GET", "/api/v1/namespaces/a/pods", namespace="a"),
    ]
    with load_lines(tmp_path, *lines) as store:
        assert [policy.evaluate(store.event(i)).rule for i in range(4)] == [0, 0, 1, 2]
        assert decide(policy, store).tolist() == [0, 0, 1, 2]
