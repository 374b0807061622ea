"""``rbac`` over files and over a store holding the same events prints the same, byte for byte:
a store groups the subject's events in the server (one row per distinct tuple the analysis
reads, weighted by its count), so these events are made to stress that grouping: many events
of few distinct requests, events of equal time read in another order than their times, events
without a time, denied ones, namespaced and cluster-wide ones, non-resource URLs with and
without a query, impersonation (the impersonated user's groups are read from a raw event), API
versions that decide an expansion, extensions resources for --clean, and the role bodies
--diff reads. Run over chdb and the real 18.16 server (``store_url``)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from backend_kit import fill, table
from conftest import v1_event

from audittui.cli import main as cli

CAROL = "carol"
SA = "system:serviceaccount:ops:deployer"
BINDING = 'RBAC: allowed by ClusterRoleBinding "carol-view" of ClusterRole "view" to User "carol"'
ROLE_BINDING = (
    'RBAC: allowed by RoleBinding "deployer/ops" of Role "deployer" to ServiceAccount '
    '"deployer/ops"'
)


def _when(second: int | None) -> dict:
    if second is None:  # no time at all
        return {"requestReceivedTimestamp": None, "stageTimestamp": None}
    stamp = f"2024-05-01T10:{second // 60:02d}:{second % 60:02d}.000000Z"
    return {"requestReceivedTimestamp": stamp, "stageTimestamp": stamp}


def _event(user: dict, verb: str, uri: str, ref: dict | None, second: int | None, **more) -> dict:
    ev = v1_event(user=user, verb=verb, requestURI=uri, objectRef=ref, **_when(second))
    ev.update(more)
    return ev


def _resource(group: str, version: str, resource: str, ns: str, name: str) -> tuple[str, dict]:
    base = "/api/" + version if not group else f"/apis/{group}/{version}"
    where = f"/namespaces/{ns}" if ns else ""
    uri = f"{base}{where}/{resource}" + (f"/{name}" if name else "")
    ref = {"resource": resource, "apiVersion": version}
    if group:
        ref["apiGroup"] = group
    if ns:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    return uri, ref


def _events() -> list[dict]:
    rng = random.Random(31)
    carol = {"username": CAROL, "groups": ["dev", "system:authenticated"]}
    sa = {"username": SA, "groups": ["system:serviceaccounts", "system:serviceaccounts:ops"]}
    admin = {"username": "admin", "groups": ["system:masters"]}
    out = []
    allow = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": BINDING}
    # many reads by carol: few distinct requests, many events, ties in time
    for n in range(1500):
        ns = rng.choice(["default", "team-a", "team-b"])
        uri, ref = _resource("", "v1", "pods", ns, f"p{rng.randrange(40)}")
        out.append(_event(carol, "get", uri, ref, n // 7, annotations=allow))
    for n in range(200):
        uri, ref = _resource("", "v1", "pods", rng.choice(["default", "team-a"]), "")
        out.append(_event(carol, rng.choice(["list", "watch"]), uri, ref, n // 3))
    # cluster-wide, and events without a time
    for n in range(60):
        uri, ref = _resource("", "v1", rng.choice(["nodes", "namespaces"]), "", "")
        out.append(_event(carol, "list", uri, ref, None if n % 10 == 0 else 100 + n))
    # denied: 403 with the decision forbid, and a 401
    for n in range(80):
        uri, ref = _resource("", "v1", "secrets", rng.choice(["default", "kube-system"]), "s1")
        out.append(
            _event(
                carol, "get", uri, ref, 200 + n // 4,
                responseStatus={"metadata": {}, "code": 403 if n % 5 else 401},
                annotations={"authorization.k8s.io/decision": "forbid"},
            )
        )  # fmt: skip
    # non-resource URLs, with and without a query
    for n in range(120):
        path = rng.choice(["/healthz", "/version", "/version?timeout=32s", "/apis", "/livez"])
        out.append(_event(carol, "get", path, None, 300 + n // 5))
    # impersonation: admin as carol, with groups only the raw event holds
    for n in range(90):
        uri, ref = _resource("apps", "v1", "deployments", rng.choice(["team-a", "team-b"]), "")
        out.append(
            _event(
                admin, "list", uri, ref, 400 + n // 3,
                impersonatedUser={"username": CAROL, "groups": ["on-call", "system:authenticated"]},
            )
        )  # fmt: skip
    # a service account: one operation in two namespaces through two API versions, extensions
    # resources (--clean moves them), creates, role-bound
    for n in range(300):
        version = "v1" if n % 2 else "v1beta1"
        group = rng.choice(["apps", "extensions"])
        ns = rng.choice(["ops", "staging"])
        uri, ref = _resource(group, version, "deployments", ns, f"d{rng.randrange(5)}")
        verb = rng.choice(["get", "update", "patch"])
        notes = {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": ROLE_BINDING,
        }
        out.append(_event(sa, verb, uri, ref, 500 + n // 2, annotations=notes))
    for n in range(20):
        uri, ref = _resource("", "v1", "configmaps", "ops", "")
        out.append(_event(sa, "create", uri, ref, 700 + n))
    # the role bodies --diff reads (admin's writes of them, at level Request)
    rules = [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]}]
    for kind, resource, ns, name in (
        ("ClusterRole", "clusterroles", "", "view"),
        ("Role", "roles", "ops", "deployer"),
    ):
        uri, ref = _resource("rbac.authorization.k8s.io", "v1", resource, ns, name)
        out.append(
            _event(
                admin, "update", uri, ref, 50, level="Request",
                requestObject={"kind": kind, "metadata": {"name": name}, "rules": rules},
            )
        )  # fmt: skip
    rng.shuffle(out)  # reading order apart from time order
    return out


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rbac_backends") / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in _events()))
    return path


@pytest.fixture
def url(store_url: str, log_file: Path) -> str:
    full = table(store_url)
    fill(full, log_file)
    return full


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rbac_prints_the_same_on_files_and_on_a_store(capsys, log_file, url):
    subjects = (("--user", CAROL), ("--serviceaccount", "ops:deployer"), ("--user", "admin"))
    extras = (
        (), ("--format", "json"), ("--format", "yaml"), ("--counts",), ("--clean",),
        ("--clean", "--include-denied"), ("--diff",), ("--diff", "--format", "json"),
        ("-n", "team-a"), ("-n", "ops", "--clean"),
    )  # fmt: skip
    for subject in subjects:
        for extra in extras:
            argv = ("rbac", *subject, *extra)
            fc, fout, ferr = run(capsys, *argv, str(log_file))
            sc, sout, serr = run(capsys, *argv, url)
            assert (sc, sout, serr) == (fc, fout, ferr), argv
            assert (fc == 0 and fout) or "-n" in extra, argv  # -n: maybe none of its events


def test_the_counts_are_of_every_event_not_of_groups(capsys, url):
    """A rule's comment counts the events behind it, denied ones and times too."""
    code, out, _ = run(capsys, "rbac", "--user", CAROL, "--clean", "--include-denied", url)
    assert code == 0
    # the core reads compacted into one rule: gets, lists and watches of pods, cluster-wide
    # lists (6 of them without a time)
    reads = "# 1,760 events, first 2024-05-01T10:00:00.000000Z, last 2024-05-01T10:03:34.000000Z"
    assert reads in out
    assert "# 80 events, 80 denied, first 2024-05-01T10:03:20" in out  # secrets: 401 and 403
    assert "/version" in out and "?timeout" not in out  # --clean: no query
    code, out, _ = run(capsys, "rbac", "--user", CAROL, url)
    assert "/version?timeout=32s" in out  # audit2rbac's: the URL as requested
