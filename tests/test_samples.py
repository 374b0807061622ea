"""Every real sample in ../shared/samples loads with the counts documented in SOURCES.md."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest
from conftest import SAMPLES

import audittui
from audittui.analyses.summary import summarize
from audittui.index.evaluate import select
from audittui.ingest.formats import LEGACY, MISSING_TIME, NON_STANDARD, format_time

FALCO = SAMPLES / "falco-k8s-audit"
AUDIT2RBAC = SAMPLES / "audit2rbac" / "demo.log"
AKS = SAMPLES / "aks" / "aks_logs.json"
SYSDIG = SAMPLES / "sysdiglabs-aks-audit-log"


B1, V1, NONE = "audit.k8s.io/v1beta1", "audit.k8s.io/v1", None
RC, RS = "ResponseComplete", "ResponseStarted"
REQ, RR, META = "Request", "RequestResponse", "Metadata"

# The SOURCES.md table: file → (events, apiVersion, stage, level, code, "verb resource[/sub]").
FALCO_TABLE = {
    "anonymous_creates_namespace_foo.json": (1, B1, RC, REQ, 201, "create namespaces"),
    "attach_cluster_admin_role.json": (1, NONE, RC, RR, 201, "create clusterrolebindings"),
    "attach_pod.json": (1, NONE, RS, REQ, 101, "create pods/attach"),
    "create_cluster_role_pod_exec.json": (1, NONE, RC, RR, 201, "create clusterroles"),
    "create_cluster_role_wildcard_resources.json": (1, NONE, RC, RR, 201, "create clusterroles"),
    "create_cluster_role_wildcard_verbs.json": (1, NONE, RC, RR, 201, "create clusterroles"),
    "create_cluster_role_write_privileges.json": (1, NONE, RC, RR, 201, "create clusterroles"),
    "create_clusterrole.json": (1, NONE, RC, RR, 201, "create clusterroles"),
    "create_clusterrolebinding.json": (1, NONE, RC, RR, 201, "create clusterrolebindings"),
    "create_configmap.json": (1, NONE, RC, RR, 201, "create configmaps"),
    "create_configmap_no_sensitive_values.json": (1, B1, RC, RR, 201, "create configmaps"),
    "create_configmap_sensitive_values.json": (6, NONE, RC, RR, 201, "create configmaps"),
    "create_deployment.json": (1, NONE, RC, REQ, 201, "create deployments"),
    "create_kube_system_secret.json": (1, V1, RC, META, 201, "create secrets"),
    "create_nginx_pod_hostnetwork.json": (1, NONE, RC, RR, 201, "create pods"),
    "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json": (
        1,
        NONE,
        RC,
        RR,
        201,
        "create pods",
    ),
    "create_nginx_pod_nohostnetwork.json": (1, B1, RC, RR, 201, "create pods"),
    "create_nginx_pod_privileged.json": (1, B1, RC, RR, 201, "create pods"),
    "create_nginx_pod_privileged_2nd_container.json": (1, NONE, RC, RR, 201, "create pods"),
    "create_nginx_pod_sensitive_mount.json": (1, NONE, RC, RR, 201, "create pods"),
    "create_nginx_pod_sensitive_mount_2nd_container.json": (1, NONE, RC, RR, 201, "create pods"),
    "create_nginx_pod_unprivileged.json": (1, B1, RC, RR, 201, "create pods"),
    "create_nginx_pod_unsensitive_mount.json": (1, B1, RC, RR, 200, "get pods"),
    "create_nginx_service_nodeport.json": (1, NONE, RC, REQ, 201, "create services"),
    "create_nginx_service_nonodeport.json": (1, B1, RC, REQ, 201, "create services"),
    "create_pod_kube_public_namespace.json": (1, NONE, RC, RR, 201, "create pods"),
    "create_pod_kube_system_namespace.json": (1, NONE, RC, RR, 201, "create pods"),
    "create_secret.json": (1, V1, RC, META, 201, "create secrets"),
    "create_service.json": (1, NONE, RC, REQ, 201, "create services"),
    "create_service_account_token_secret.json": (1, V1, RC, META, 201, "create secrets"),
    "create_serviceaccount.json": (1, NONE, RC, REQ, 201, "create serviceaccounts"),
    "create_serviceaccount_kube_public_namespace.json": (
        1,
        NONE,
        RC,
        REQ,
        201,
        "create serviceaccounts",
    ),
    "create_serviceaccount_kube_system_namespace.json": (
        1,
        NONE,
        RC,
        REQ,
        201,
        "create serviceaccounts",
    ),
    "delete_cluster_role_kube_aggregator.json": (1, NONE, RC, RR, 200, "delete clusterroles"),
    "delete_clusterrole.json": (1, NONE, RC, RR, 200, "delete clusterroles"),
    "delete_clusterrolebinding.json": (1, NONE, RC, RR, 200, "delete clusterrolebindings"),
    "delete_configmap.json": (1, NONE, RC, RR, 200, "delete configmaps"),
    "delete_deployment.json": (1, NONE, RC, REQ, 200, "delete deployments"),
    "delete_namespace_foo.json": (1, NONE, RC, REQ, 200, "delete namespaces"),
    "delete_secret.json": (1, V1, RC, META, 200, "delete secrets"),
    "delete_service.json": (1, NONE, RC, REQ, 200, "delete services"),
    "delete_serviceaccount.json": (1, NONE, RC, REQ, 200, "delete serviceaccounts"),
    "exec_pod.json": (1, NONE, RS, REQ, 101, "create pods/exec"),
    "minikube_creates_namespace_foo.json": (1, B1, RC, REQ, 201, "create namespaces"),
    "modify_cluster_role_node_problem_detector.json": (1, NONE, RC, RR, 200, "patch clusterroles"),
    "some-user_creates_namespace_foo.json": (1, B1, RC, REQ, 201, "create namespaces"),
}


def values(store, column: str) -> list:
    return [store.value(column, i) for i in range(len(store))]


def counts(store, column: str) -> Counter:
    return Counter(values(store, column))


def assert_events_match(store, originals: dict[tuple[str, str], dict]) -> None:
    """store.event(i) and store.raw(i) reproduce each event of its own source file exactly."""
    assert len(store) == len(originals)
    for i in range(len(store)):
        path = store.sources[store.value("source", i)].path
        want = originals[(path, store.value("audit_id", i))]
        assert store.event(i) == want
        assert orjson.loads(store.raw(i)) == want


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- falco -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def falco():
    with audittui.load(FALCO) as store:
        yield store


def test_falco_table_covers_every_file():
    names = {p.name for p in FALCO.iterdir()}
    assert len(names) == 47
    assert names == set(FALCO_TABLE) | {"fal_01_003.json"}


def test_falco_folder_counts(falco):
    assert len(falco) == 51
    assert len(falco.sources) == 47
    assert [(Path(m.path).name, m.line) for m in falco.malformed] == [("fal_01_003.json", 1)]
    assert falco.malformed[0].reason
    assert counts(falco, "stage") == {RC: 49, RS: 2}
    assert set(counts(falco, "level")) == {REQ, RR, META}
    codes = counts(falco, "code")
    assert set(codes) == {200, 201, 101}
    assert codes[101] == 2
    # Files are read in name order, so every event of a file is contiguous by source id.
    files_with_events = {falco.sources[s].path for s in values(falco, "source")}
    assert len(files_with_events) == 46


def test_falco_level_totals_match_table(falco):
    expected = Counter()
    for n, _api, _stage, level, _code, _what in FALCO_TABLE.values():
        expected[level] += n
    assert counts(falco, "level") == expected


def test_falco_response_started_are_exec_and_attach(falco):
    sel = select(falco, "stage:ResponseStarted")
    assert len(sel) == 2
    got = sorted((falco.value("resource", i), falco.value("subresource", i)) for i in sel)
    assert got == [("pods", "attach"), ("pods", "exec")]
    assert {falco.value("code", i) for i in sel} == {101}
    assert len(select(falco, "code:101")) == 2
    assert len(select(falco, "code:4xx")) == 0


@pytest.mark.parametrize("name", sorted(FALCO_TABLE))
def test_falco_each_file(name):
    n, _api, stage, level, code, what = FALCO_TABLE[name]
    verb, _, res = what.partition(" ")
    resource, _, sub = res.partition("/")
    with audittui.load(FALCO / name) as store:
        assert len(store) == n
        assert store.malformed == []
        for i in range(n):
            assert store.value("stage", i) == stage
            assert store.value("level", i) == level
            assert store.value("code", i) == code
            assert store.value("verb", i) == verb
            assert store.value("resource", i) == resource
            assert store.value("subresource", i) == (sub or None)
            assert store.value("flags", i) & NON_STANDARD == 0
            assert store.value("time", i) != MISSING_TIME
        originals = {(str(FALCO / name), ev["auditID"]): ev for ev in json_lines(FALCO / name)}
        assert_events_match(store, originals)


def test_falco_malformed_fixture_alone():
    with audittui.load(FALCO / "fal_01_003.json") as store:
        assert len(store) == 0
        assert len(store.malformed) == 1
        m = store.malformed[0]
        assert (Path(m.path).name, m.line) == ("fal_01_003.json", 1)
        assert "kind" in m.reason


def test_falco_users_and_times(falco):
    users = set(values(falco, "user"))
    assert {
        "system:anonymous",
        "some-user",
        "minikube-user",
        "admin",
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:node:minikube",
        "system:kube-controller-manager",
    } <= users
    # minikube captures are from 2018-10, the four v1 events from 2020-03/04.
    months = Counter(format_time(t)[:7] for t in values(falco, "time"))
    assert months["2018-10"] == 47
    assert months["2020-03"] + months["2020-04"] == 4
    assert len(select(falco, "ua:kubectl*")) >= 1
    assert all(lat >= 0 for lat in values(falco, "latency"))


def test_falco_event_round_trip(falco):
    originals = {}
    for name in FALCO_TABLE:
        for ev in json_lines(FALCO / name):
            originals[(str(FALCO / name), ev["auditID"])] = ev
    assert_events_match(falco, originals)


def test_falco_legacy_flag(falco):
    """Falco's old-shape events also carry MicroTimes, so they read as v1 (audit-format.md
    §1.7: ignore the extras): none is LEGACY, and every one has a latency."""
    assert [i for i in range(len(falco)) if falco.value("flags", i) & LEGACY] == []
    assert all(falco.value("latency", i) >= 0 for i in range(len(falco)))


# -- audit2rbac --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def a2r():
    with audittui.load(AUDIT2RBAC) as store:
        yield store


def test_audit2rbac_counts(a2r):
    assert len(a2r) == 37
    assert a2r.malformed == []
    assert counts(a2r, "impersonated") == {
        "bob": 29,
        "system:serviceaccount:ns1:sa1": 5,
        "alice": 3,
    }
    assert counts(a2r, "user") == {"system:admin": 37}
    assert counts(a2r, "code") == {200: 26, 403: 11}
    assert counts(a2r, "verb") == {"get": 23, "list": 14}
    assert counts(a2r, "stage") == {RC: 37}
    assert counts(a2r, "level") == {META: 37}
    assert sum(r is None for r in values(a2r, "resource")) == 23
    assert sum(a is None for a in values(a2r, "api")) == 23
    assert set(values(a2r, "resource")) - {None} == {"pods", "nodes", "configmaps", "secrets"}
    assert set(values(a2r, "ips")) == {("::1",)}
    assert set(values(a2r, "user_agent")) == {None}


def test_audit2rbac_legacy_times(a2r):
    # Only `timestamp` and `metadata.creationTimestamp`: legacy, second precision, no latency.
    assert all(f & LEGACY for f in values(a2r, "flags"))
    assert set(values(a2r, "latency")) == {-1}
    times = values(a2r, "time")
    assert all(t % 1_000_000 == 0 for t in times)
    assert {format_time(t)[:10] for t in times} == {"2017-09-11"}
    originals = json_lines(AUDIT2RBAC)
    by_id = {ev["auditID"]: ev for ev in originals}
    for i in range(len(a2r)):
        ts = by_id[a2r.value("audit_id", i)]["timestamp"]
        assert format_time(a2r.value("time", i)) == ts.replace("Z", ".000000Z")


def test_audit2rbac_queries(a2r):
    assert len(select(a2r, "as:bob")) == 29
    assert len(select(a2r, "as:alice code:403")) + len(select(a2r, "as:alice -code:403")) == 3
    assert len(select(a2r, "code:403")) == 11
    assert len(select(a2r, 'resource:""')) == 23
    sel = select(a2r, "")
    times = [a2r.value("time", i) for i in sel]
    assert times == sorted(times)


def test_audit2rbac_summary(a2r):
    rows = summarize(a2r, select(a2r, ""), by="verb")
    assert {r["key"]: r["events"] for r in rows} == {"get": 23, "list": 14}
    assert sum(r["forbidden"] for r in rows) == 11
    assert all(r["errors"] == 0 for r in rows)


def test_audit2rbac_event_round_trip(a2r):
    originals = {(str(AUDIT2RBAC), ev["auditID"]): ev for ev in json_lines(AUDIT2RBAC)}
    assert_events_match(a2r, originals)
    # Plain JSON lines: raw() is the line exactly as written.
    lines = AUDIT2RBAC.read_bytes().splitlines()
    assert sorted(a2r.raw(i) for i in range(len(a2r))) == sorted(lines)


def test_audit2rbac_folder_ignores_policy_yaml():
    with audittui.load(AUDIT2RBAC.parent) as store:
        assert [Path(s.path).name for s in store.sources] == ["demo.log"]
        assert len(store) == 37
        assert store.malformed == []


def test_a_policy_yaml_is_one_document_that_is_no_event():
    path = SAMPLES / "policies" / "gce-default-policy.yaml"
    with audittui.load(path) as store:
        assert len(store) == 0
        assert [(m.line, m.reason) for m in store.malformed] == [
            (1, 'not an audit event (kind "Policy")')
        ]


# -- AKS ---------------------------------------------------------------------------------------


def aks_inner(path: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert record["category"] == "kube-audit"
        ev = json.loads(record["properties"]["log"])
        out[(str(path), ev["auditID"])] = ev
    return out


@pytest.fixture(scope="module")
def aks():
    with audittui.load(AKS) as store:
        yield store


def test_aks_counts(aks):
    assert len(aks) == 21
    assert aks.malformed == []
    assert counts(aks, "level") == {META: 17, RR: 3, REQ: 1}
    assert counts(aks, "code") == {200: 18, 201: 3}
    assert counts(aks, "verb") == {"update": 13, "get": 5, "create": 3}
    assert counts(aks, "stage") == {RC: 21}
    assert {"aksService", "hcpService", "readinessChecker", "system:apiserver"} <= set(
        values(aks, "user")
    )
    assert {format_time(t)[:10] for t in values(aks, "time")} == {"2024-11-15"}
    assert {f & (LEGACY | NON_STANDARD) for f in values(aks, "flags")} == {0}  # native shapes
    assert len(select(aks, "verb:create resource:subjectaccessreviews")) == 3


def test_aks_events_come_from_envelopes(aks):
    originals = aks_inner(AKS)
    assert_events_match(aks, originals)
    # Each event is the 0th (and only) item of its line's envelope.
    assert set(values(aks, "item")) == {0}
    assert len(set(values(aks, "offset"))) == 21


# -- sysdig AKS captures -----------------------------------------------------------------------


def test_sysdig_event_hubs_batch():
    path = SYSDIG / "event.json"
    with audittui.load(path) as store:
        assert len(store) == 22
        assert store.malformed == []
        assert counts(store, "code") == {200: 20, 409: 1, 304: 1}
        assert counts(store, "verb") == {"get": 17, "watch": 4, "create": 1}
        assert counts(store, "stage") == {RC: 20, RS: 2}
        assert counts(store, "level") == {META: 12, REQ: 10}
        assert {store.value("stage", i) for i in select(store, "stage:ResponseStarted")} == {RS}
        assert {store.value("verb", i) for i in select(store, "stage:ResponseStarted")} == {"watch"}
        (conflict,) = select(store, "code:409")
        assert store.value("user", conflict) == "aksService"
        assert store.value("verb", conflict) == "create"
        assert store.value("resource", conflict) == "configmaps"
        (not_modified,) = select(store, "code:304")
        assert store.value("uri", not_modified).split("?")[0] == "/openapi/v2"
        assert {"aksService", "nodeclient"} <= set(values(store, "user"))
        assert set(values(store, "item")) == set(range(22))
        doc = json.loads(path.read_text())
        originals = {}
        for record in doc["records"]:
            ev = json.loads(record["properties"]["log"])
            originals[(str(path), ev["auditID"])] = ev
        assert_events_match(store, originals)


def test_sysdig_bom_event_hubs_record():
    path = SYSDIG / "sample_EventHubs_event.json"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with audittui.load(path) as store:
        assert len(store) == 1
        assert store.malformed == []
        assert (store.value("stage", 0), store.value("level", 0)) == (RC, META)
        assert (store.value("verb", 0), store.value("code", 0)) == ("get", 200)
        record = json.loads(path.read_text(encoding="utf-8-sig"))
        want = json.loads(record["properties"]["log"])
        assert store.event(0) == want
        assert orjson.loads(store.raw(0)) == want


def test_sysdig_bom_pretty_printed_event():
    path = SYSDIG / "sample_KubeAuditLog_event.json"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with audittui.load(path) as store:
        assert len(store) == 1
        assert store.malformed == []
        i = 0
        assert store.value("level", i) == RR
        assert store.value("stage", i) == RC
        assert store.value("verb", i) == "update"
        assert store.value("resource", i) == "controllerrevisions"
        assert store.value("api", i) == "apps"
        assert store.value("namespace", i) == "kube-system"
        assert store.value("code", i) == 200
        assert store.value("user", i) == "system:serviceaccount:kube-system:daemon-set-controller"
        want = json.loads(path.read_text(encoding="utf-8-sig"))
        assert store.event(i) == want
        assert orjson.loads(store.raw(i)) == want
        assert "responseObject" in store.event(i)


def test_sysdig_folder():
    with audittui.load(SYSDIG) as store:
        assert len(store) == 24
        assert store.malformed == []
        assert len(store.sources) == 3


def test_all_samples_together():
    paths = [FALCO, AUDIT2RBAC, AKS, *sorted(SYSDIG.iterdir())]
    with audittui.load(*paths) as store:
        assert len(store) == 51 + 37 + 21 + 22 + 1 + 1
        assert len(store.malformed) == 1
        order = list(select(store, ""))
        assert sorted(order) == list(range(len(store)))
        times = [store.value("time", i) for i in order]
        assert times == sorted(times)
        assert format_time(times[0])[:10] == "2017-09-11"
        assert format_time(times[-1])[:10] == "2024-11-15"
