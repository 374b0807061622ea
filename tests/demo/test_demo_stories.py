"""The demo's audit policy and attack stories (issue 30, "The demo shows the pack").

The demo's events (``write_demo``, ``append_live``, ``make run``) are levelled by a production
audit policy shipped as data, and tell attack stories among the normal traffic. Each story is
found here by its shape, the shape the API server logs, not by any name the generator uses;
bodies appear exactly where the project's own policy checker says; secrets never carry one.
"""

from __future__ import annotations

import gzip
import ipaddress
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from audittui import demo
from audittui.demo.levels import POLICY_FILE, Policy
from audittui.demo.template import FOLDER
from audittui.policy.model import load, parse

POLICY = FOLDER / POLICY_FILE
DEMO_EVENTS = 3000  # `make demo-logs`: python -m audittui.demo write demo-logs --events 3000


@pytest.fixture(scope="module")
def events() -> list[dict]:
    """The events of the default demo folder (write_demo's stream: seed 7, its rate)."""
    return list(
        demo.iter_events(
            DEMO_EVENTS, seed=7, rate=demo.folder.DEMO_RATE, body_fraction=0, demo=True
        )
    )


def _t(ev: dict) -> float:
    return datetime.fromisoformat(ev["stageTimestamp"].replace("Z", "+00:00")).timestamp()


def _completed(events: list[dict]) -> list[dict]:
    return [e for e in events if e["stage"] == "ResponseComplete"]


def _ref(ev: dict) -> dict:
    return ev.get("objectRef") or {}


INSIDE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def _is_private(ip: str) -> bool:
    """An address of the cluster's or the office's networks (the documentation ranges the
    demo's outsiders use count as public here, as they stand for public addresses)."""
    return any(ipaddress.ip_address(ip) in net for net in INSIDE)


# -- the policy -------------------------------------------------------------------------------


def test_the_policy_is_a_valid_audit_policy() -> None:
    policy = load(POLICY)  # the project's loader validates as the API server does
    assert not policy.warnings
    levels = [r.level for r in policy.rules]
    assert {"None", "Metadata", "Request", "RequestResponse"} <= set(levels)
    assert levels[-1] == "Metadata"  # the catch-all: nothing else goes unlogged


def test_every_event_has_the_level_the_policy_checker_gives_it(events: list[dict]) -> None:
    policy = load(POLICY)
    wrong = [
        (e["verb"], e["requestURI"], e["level"], got.level)
        for e in events
        if (got := policy.evaluate(e)).level != e["level"]
    ]
    assert not wrong, wrong[:5]
    assert {e["level"] for e in events} == {"Metadata", "Request", "RequestResponse"}


def test_bodies_appear_exactly_where_the_policy_says(events: list[dict]) -> None:
    for e in events:
        if e["level"] == "Metadata" or e["stage"] in ("RequestReceived", "ResponseStarted"):
            assert "requestObject" not in e and "responseObject" not in e, e["requestURI"]
        elif e["level"] == "Request":
            assert "responseObject" not in e, e["requestURI"]
    done = _completed(events)
    writes = [e for e in done if e["verb"] in ("create", "update", "patch")]
    # every write of the workloads and RBAC (levels Request, RequestResponse) carries its body
    # (a write RBAC refuses is refused before its body is read: none is logged)
    allowed = [e for e in writes if e["annotations"]["authorization.k8s.io/decision"] == "allow"]
    bodied = [e for e in allowed if e["level"] != "Metadata" and "subresource" not in _ref(e)]
    assert bodied and all("requestObject" in e for e in bodied)
    refused = [e for e in writes if e not in allowed and e["level"] != "Metadata"]
    assert refused and not [e for e in refused if "requestObject" in e]
    rbac = [e for e in bodied if _ref(e).get("apiGroup") == "rbac.authorization.k8s.io"]
    assert rbac and all(e["level"] == "RequestResponse" for e in rbac)
    assert any("responseObject" in e for e in rbac)
    pods = [e for e in bodied if _ref(e)["resource"] == "pods"]
    assert pods and all(e["level"] == "Request" for e in pods)
    reads = [
        e for e in done if e["verb"] in ("get", "list", "watch") and "subresource" not in _ref(e)
    ]
    assert reads and all(e["level"] == "Metadata" for e in reads)


def test_secrets_and_configmaps_never_carry_a_body(events: list[dict]) -> None:
    touched = [e for e in events if _ref(e).get("resource") in ("secrets", "configmaps")]
    assert {e["verb"] for e in touched} >= {"get", "list", "watch", "create"}
    assert all(e["level"] == "Metadata" for e in touched)
    assert not [e for e in touched if "requestObject" in e or "responseObject" in e]
    # nor anywhere else: no body in the demo holds a Secret (a list's items included)
    for e in events:
        for key in ("requestObject", "responseObject"):
            if key in e:
                text = orjson.dumps(e[key])
                assert b'"kind":"Secret"' not in text and b'"kind":"SecretList"' not in text


def test_health_checks_and_lease_renewals_go_unlogged(events: list[dict]) -> None:
    paths = {e["requestURI"].split("?")[0] for e in events}
    assert not {"/healthz", "/readyz", "/livez"} & paths
    leases = [e for e in events if _ref(e).get("resource") == "leases"]
    assert not [e for e in leases if e["verb"] in ("get", "update")]
    # while the benches' stream (no policy) has them: the policy is what removes them
    plain = list(demo.iter_events(2000, seed=7, rate=0.5))
    assert any(e["requestURI"] == "/healthz" for e in plain)
    assert any(_ref(e).get("resource") == "leases" for e in plain)


def test_the_demos_levels_agree_with_the_checker_reading_the_logged_event_on_sharp_edges() -> None:
    # The generator decides from what it builds (user, verb, URI, objectRef); the checker over a
    # logged event reads the URI: both must agree on the edges (test_policy.py: the why).
    doc = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
            {"level": "Request", "resources": [{"resources": ["pods/*"]}]},
            {"level": "RequestResponse", "resources": [{"group": "*", "resources": ["*/scale"]}]},
            {"level": "Metadata", "namespaces": [""], "verbs": ["list"]},
            {
                "level": "Request",
                "resources": [
                    {"group": "apps", "resources": ["deployments"], "resourceNames": ["api"]}
                ],
                "omitStages": ["ResponseStarted"],
            },
            {"level": "None", "userGroups": ["system:nodes"]},
            {"level": "Metadata", "nonResourceURLs": ["/apis*"]},
        ],
    }
    mine, theirs = Policy(doc), parse(doc)
    bob, deploys = {"username": "bob"}, "/apis/apps/v1/namespaces/dev/deployments"
    cases = [
        ({"username": "system:kube-proxy"}, "watch", "/api/v1/services?watch=true", "services", ""),
        (bob, "watch", "/api/v1/services?watch=true", "services", ""),
        (bob, "get", "/api/v1/namespaces/dev/pods/p", "pods", ""),
        (bob, "get", "/api/v1/namespaces/dev/pods/p/log", "pods", "log"),
        (bob, "patch", f"{deploys}/api/scale", "deployments", "scale"),
        (bob, "list", "/apis/apps/v1/deployments", "deployments", ""),
        (bob, "list", deploys, "deployments", ""),
        (bob, "update", f"{deploys}/api", "deployments", ""),
        (bob, "update", f"{deploys}/web", "deployments", ""),
        ({"username": "n", "groups": ["system:nodes"]}, "get", "/api/v1/nodes/n", "nodes", ""),
        (bob, "get", "/apis/apps/v1", None, ""),
        (bob, "get", "/version", None, ""),
    ]
    for user, verb, uri, resource, sub in cases:
        ref = None
        if resource is not None:
            parts = uri.split("?")[0].split("/")
            ref = {"resource": resource}
            if "namespaces" in parts:
                ref["namespace"] = parts[parts.index("namespaces") + 1]
            after = parts[parts.index(resource) + 1 :]
            if after:
                ref["name"] = after[0]
            if "/apis/apps/" in uri:
                ref["apiGroup"] = "apps"
            ref["apiVersion"] = "v1"
            if sub:
                ref["subresource"] = sub
        event = {"user": user, "verb": verb, "requestURI": uri}
        if ref is not None:
            event["objectRef"] = ref
        want = theirs.evaluate(event)
        got = mine.decide(user, verb, uri, ref)
        assert (got.level, set(got.omit_stages)) == (want.level, want.omit_stages), (verb, uri)


# -- the stories, by their shape --------------------------------------------------------------


def test_bulk_secret_reads_across_namespaces(events: list[dict]) -> None:
    lists = defaultdict(list)
    for e in _completed(events):
        if _ref(e).get("resource") == "secrets" and e["verb"] in ("list", "watch"):
            lists[e["user"].get("username")].append(e)
    sweepers = {
        user: evs
        for user, evs in lists.items()
        if len({_ref(e).get("namespace") for e in evs if _ref(e).get("namespace")}) >= 5
        and any("namespace" not in _ref(e) and e["verb"] == "list" for e in evs)
        and any("namespace" not in _ref(e) and e["verb"] == "watch" for e in evs)
    }
    assert sweepers
    for evs in sweepers.values():
        times = sorted(_t(e) for e in evs if e["verb"] == "list")
        assert any(b - a < 120 for a, b in zip(times, times[5:], strict=False))  # within minutes


def _exec_commands(events: list[dict]) -> list[tuple[dict, str]]:
    out = []
    for e in events:
        if _ref(e).get("subresource") == "exec" and e["stage"] == "ResponseStarted":
            query = e["requestURI"].partition("?")[2]
            cmd = [p.removeprefix("command=") for p in query.split("&") if p.startswith("command=")]
            assert cmd, e["requestURI"]
            assert e["responseStatus"]["code"] in (101, 403)
            out.append((e, " ".join(cmd)))
    return out


def test_exec_reads_the_service_account_token_and_the_cloud_metadata(events: list[dict]) -> None:
    cmds = _exec_commands(events)
    token = "cat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken"
    readers = [(e, c) for e, c in cmds if token in c]
    assert readers and all(e["responseStatus"]["code"] == 101 for e, _ in readers)
    metadata = [(e, c) for e, c in cmds if "169.254.169.254" in c]
    assert metadata
    # the same person, the same pod, minutes apart
    pods = {(e["user"]["username"], _ref(e)["name"]) for e, _ in readers}
    assert pods & {(e["user"]["username"], _ref(e)["name"]) for e, _ in metadata}
    e = readers[0][0]
    assert e["verb"] in ("get", "create") and e["level"] == "Request"
    assert e["requestURI"].endswith("&stdin=true&stdout=true&tty=true")


def test_exec_opens_a_reverse_shell(events: list[dict]) -> None:
    shells = [(e, c) for e, c in _exec_commands(events) if "%2Fdev%2Ftcp%2F" in c]
    assert shells
    e, cmd = shells[0]
    assert cmd.startswith("bash -c bash+-i+%3E%26+%2Fdev%2Ftcp%2F")
    assert not _is_private(e["sourceIPs"][0])  # from outside: a stolen kubeconfig


def test_a_daemonset_with_host_pid_the_runtime_socket_and_sys_admin(events: list[dict]) -> None:
    creates = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "daemonsets" and e["verb"] == "create"
    ]
    hostile = [
        e
        for e in creates
        if e["responseStatus"]["code"] == 201
        and (spec := e["requestObject"]["spec"]["template"]["spec"]).get("hostPID")
        and any(
            v.get("hostPath", {}).get("path") == "/var/run/containerd/containerd.sock"
            for v in spec["volumes"]
        )
        and any(
            "SYS_ADMIN" in c.get("securityContext", {}).get("capabilities", {}).get("add", [])
            for c in spec["containers"]
        )
    ]
    assert hostile
    ds = hostile[0]
    assert (
        _ref(ds)["apiGroup"] == "apps"
        and _ref(ds)["name"] == ds["requestObject"]["metadata"]["name"]
    )
    # its controller then creates one pod a node, each with the same spec
    pods = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "pods"
        and e["verb"] == "create"
        and "requestObject" in e
        and any(
            o["kind"] == "DaemonSet" and o["name"] == _ref(ds)["name"]
            for o in e["requestObject"]["metadata"].get("ownerReferences", [])
        )
    ]
    nodes = {
        term["matchFields"][0]["values"][0]
        for e in pods
        for term in e["requestObject"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
    }
    assert len(pods) == 4 and len(nodes) == 4
    # named by the server after the body is logged: the event never learns the name
    assert all("name" not in _ref(e) and "name" not in e["requestObject"]["metadata"] for e in pods)
    assert all(e["user"]["username"].endswith(":daemon-set-controller") for e in pods)
    assert all(e["requestObject"]["spec"]["hostPID"] for e in pods)


def test_a_cronjob_for_persistence(events: list[dict]) -> None:
    jobs = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "cronjobs"
        and e["verb"] == "create"
        and e["responseStatus"]["code"] == 201
    ]
    assert jobs
    body = jobs[0]["requestObject"]
    assert body["kind"] == "CronJob" and body["spec"]["schedule"]
    assert jobs[0]["objectRef"]["apiGroup"] == "batch"


def test_a_sidecar_added_to_a_deployment_by_json_patch(events: list[dict]) -> None:
    patches = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "deployments"
        and e["verb"] == "patch"
        and isinstance(e.get("requestObject"), list)
    ]
    assert patches
    ops = patches[0]["requestObject"]
    assert ops[0]["op"] == "add" and ops[0]["path"] == "/spec/template/spec/containers/-"
    assert ops[0]["value"]["image"]
    e = patches[0]
    assert _ref(e)["name"] and e["requestURI"].split("?")[0].endswith("/" + _ref(e)["name"])
    assert "contentType" not in orjson.dumps(e).decode()  # the patch type is not logged


def test_a_user_added_to_the_cluster_admin_binding_by_patch(events: list[dict]) -> None:
    patches = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "clusterrolebindings"
        and _ref(e).get("name") == "cluster-admin"
        and e["verb"] == "patch"
    ]
    assert patches
    e = patches[0]
    body = e["requestObject"]
    if isinstance(body, list):  # a JSON patch
        added = [op["value"] for op in body if op["op"] == "add" and op["path"] == "/subjects/-"]
    else:  # a merge patch replaces the list whole
        added = body["subjects"]
    users = [s["name"] for s in added if s["kind"] == "User"]
    assert users
    assert e["level"] == "RequestResponse"
    assert users[0] in [s["name"] for s in e["responseObject"]["subjects"]]


def test_a_role_granting_escalate_bind_and_impersonate(events: list[dict]) -> None:
    roles = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "roles" and e["verb"] == "create" and "requestObject" in e
    ]
    verbs = [{v for rule in e["requestObject"]["rules"] for v in rule["verbs"]} for e in roles]
    assert any({"escalate", "bind", "impersonate"} <= v for v in verbs)


def test_a_burst_of_401s_with_a_stolen_token(events: list[dict]) -> None:
    by_ip = defaultdict(list)
    for e in events:
        if e.get("responseStatus", {}).get("code") == 401:
            assert e["user"] == {} and e["stage"] == "ResponseStarted"
            by_ip[e["sourceIPs"][0]].append(_t(e))
    bursts = [
        ip
        for ip, ts in by_ip.items()
        if any(b - a <= 60 for a, b in zip(sorted(ts), sorted(ts)[9:], strict=False))
    ]
    assert bursts and not _is_private(bursts[0])


def test_a_service_accounts_token_used_from_a_public_address(events: list[dict]) -> None:
    ips = defaultdict(set)
    for e in events:
        extra = e["user"].get("extra", {})
        cred = extra.get("authentication.kubernetes.io/credential-id")
        if e["user"].get("username", "").startswith("system:serviceaccount:") and cred:
            ips[cred[0]].add(e["sourceIPs"][0])
    stolen = [
        c
        for c, seen in ips.items()
        if any(map(_is_private, seen)) and not all(map(_is_private, seen))
    ]
    assert stolen


def test_a_client_walks_the_apis_discovery(events: list[dict]) -> None:
    walks = defaultdict(list)
    for e in _completed(events):
        path = e["requestURI"].split("?")[0]
        if "objectRef" not in e and path.startswith("/apis/") and path.count("/") == 3:
            walks[e["user"]["username"]].append((_t(e), path))
    walkers = [
        user
        for user, seen in walks.items()
        if any(len({p for t, p in seen if t0 <= t <= t0 + 120}) >= 10 for t0, _ in seen)
    ]
    assert walkers
    # and asks what it may do, then is refused again and again
    user = walkers[0]
    mine = [e for e in _completed(events) if e["user"].get("username") == user]
    assert sum(_ref(e).get("resource") == "selfsubjectrulesreviews" for e in mine) >= 5
    assert sum(e["responseStatus"]["code"] == 403 for e in mine) >= 10


def _privileged(pod: dict) -> bool:
    return any(c.get("securityContext", {}).get("privileged") for c in pod["spec"]["containers"])


def test_pod_security_rejects_a_privileged_pod(events: list[dict]) -> None:
    refused = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "pods"
        and e["verb"] == "create"
        and e["responseStatus"]["code"] == 403
        and "violates PodSecurity" in e["responseStatus"]["message"]
    ]
    assert refused
    e = refused[0]
    assert e["annotations"]["authorization.k8s.io/decision"] == "allow"  # RBAC let it through
    assert e["annotations"]["pod-security.kubernetes.io/enforce-policy"].startswith("baseline")
    assert _privileged(e["requestObject"]) and "responseObject" not in e
    # an attempt: the pod it named was never created
    name = _ref(e)["name"]
    assert not [
        x
        for x in _completed(events)
        if _ref(x).get("name") == name and x["responseStatus"]["code"] < 300
    ]


def test_a_person_creates_a_privileged_pod(events: list[dict]) -> None:
    created = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "pods"
        and e["verb"] == "create"
        and e["responseStatus"]["code"] == 201
        and not e["user"]["username"].startswith("system:")
        and _privileged(e["requestObject"])
    ]
    assert created


# -- names, ids, timing -----------------------------------------------------------------------


def test_audit_ids_are_unique_per_request(events: list[dict]) -> None:
    seen: dict[str, tuple[str, str]] = {}
    stages = set()
    for e in events:
        key = (e["requestURI"], e["requestReceivedTimestamp"])
        assert seen.setdefault(e["auditID"], key) == key
        assert (e["auditID"], e["stage"]) not in stages
        stages.add((e["auditID"], e["stage"]))


def test_stories_are_deterministic_and_told_a_handful_an_hour() -> None:
    a = list(demo.iter_lines(1500, seed=3, rate=0.5, demo=True))
    assert a == list(demo.iter_lines(1500, seed=3, rate=0.5, demo=True))
    assert a != list(demo.iter_lines(1500, seed=4, rate=0.5, demo=True))
    # in a long stream: each story again and again, about a dozen stories an hour
    evs = list(demo.iter_events(12_000, seed=3, rate=0.5, demo=True))
    hours = (_t(evs[-1]) - _t(evs[0])) / 3600
    shells = {e["auditID"] for e, c in _exec_commands(evs) if "%2Fdev%2Ftcp%2F" in c}
    dss = {e["auditID"] for e in evs if _ref(e).get("resource") == "daemonsets"}
    assert hours > 6 and len(shells) >= 2 and len(dss) >= 2
    assert len(shells) <= hours + 1


def test_the_committed_demo_logs_hold_the_stories() -> None:
    # the folder `make run` opens is write_demo's: the fixture's stream, with its stories
    logs = Path(__file__).resolve().parents[2] / "demo-logs"
    text = b"".join(
        gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for p in sorted(logs.iterdir())
    )
    for shape in (b"%2Fdev%2Ftcp%2F", b"169.254.169.254", b"violates PodSecurity"):
        assert shape in text, shape
    assert b'"level":"None"' not in text and b'"requestURI":"/healthz"' not in text


def test_the_live_demo_continues_at_the_recorded_rate() -> None:
    from audittui.tui.run import DEMO_RATE

    assert DEMO_RATE == demo.folder.DEMO_RATE


def test_a_controllers_pod_create_is_the_request_it_sends(events: list[dict]) -> None:
    creates = [
        e
        for e in _completed(events)
        if _ref(e).get("resource") == "pods"
        and e["verb"] == "create"
        and e["user"]["username"].endswith(":replicaset-controller")
        and "requestObject" in e
    ]
    assert creates
    for e in creates:
        meta = e["requestObject"]["metadata"]
        assert meta["generateName"] and not {"name", "uid", "resourceVersion"} & meta.keys()
        assert e["requestObject"]["status"] == {} and "nodeName" not in e["requestObject"]["spec"]
        assert "name" not in _ref(e)  # kubernetes#100466: the event never learns it
