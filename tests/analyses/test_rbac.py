"""``audittui rbac``: least-privilege roles from a subject's events. audit2rbac's documented
results on its demo log, the columnar analysis against the reference generator over parsed
events, --clean, --counts, --diff, the command line, and YAML that stays valid and inert."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import orjson
import pytest
import yaml
from conftest import SAMPLES

from audittui.analyses import rbac_rules as rr
from audittui.analyses.rbac import (
    MOVED_GROUPS,
    analyze,
    default_options,
    render_yaml,
    subject_rows,
)
from audittui.analyses.rbac_diff import NO_BODY, diff, diff_document
from audittui.cli import main as cli
from audittui.index.loader import load
from audittui.output.inert import inert

DEMO = SAMPLES / "audit2rbac" / "demo.log"
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)
VERSION = "0.1.0"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def objects_of(text: str) -> list[dict]:
    """The YAML documents, each checked to be an RBAC object of the right shape."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for d in docs:
        assert d["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
        meta = d["metadata"]
        assert set(meta) <= {"name", "namespace", "labels", "annotations"}
        assert ("namespace" in meta) == (d["kind"] in ("Role", "RoleBinding"))
        assert "creationTimestamp" not in meta
        if d["kind"].endswith("Role"):
            assert set(d) == {"apiVersion", "kind", "metadata", "rules"} and d["rules"]
            for rule in d["rules"]:
                assert rule["verbs"] and all(isinstance(v, str) for v in rule["verbs"])
                assert bool(rule.get("nonResourceURLs")) != bool(rule.get("resources"))
                assert ("apiGroups" in rule) == ("resources" in rule)
        else:
            assert set(d) == {"apiVersion", "kind", "metadata", "roleRef", "subjects"}
            assert d["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
            assert d["roleRef"]["kind"] == d["kind"].removesuffix("Binding")
            assert d["roleRef"]["name"] == meta["name"]
            for s in d["subjects"]:
                assert s["kind"] in ("User", "ServiceAccount")
                assert ("apiGroup" in s) == (s["kind"] == "User")
                assert ("namespace" in s) == (s["kind"] == "ServiceAccount")
    return docs


def labels(user: str) -> dict:
    return {"audit2rbac.liggitt.net/generated": "true", "audit2rbac.liggitt.net/user": user}


# -- audit2rbac's demo log ---------------------------------------------------------------------

ALICE = f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  annotations:
    audit2rbac.liggitt.net/version: {VERSION}
  labels:
    audit2rbac.liggitt.net/generated: "true"
    audit2rbac.liggitt.net/user: alice
  name: audit2rbac:alice
  namespace: ns1
rules:
- apiGroups:
  - ""
  resources:
  - configmaps
  - pods
  - secrets
  verbs:
  - get
  - list
  - watch
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  annotations:
    audit2rbac.liggitt.net/version: {VERSION}
  labels:
    audit2rbac.liggitt.net/generated: "true"
    audit2rbac.liggitt.net/user: alice
  name: audit2rbac:alice
  namespace: ns1
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: audit2rbac:alice
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: alice
"""


def test_alice_is_audit2rbacs_documented_result(capsys):
    """audit2rbac's README output for --user alice, byte for byte, plus the version annotation
    current audit2rbac builds add (audittui's version here)."""
    code, out, err = run(capsys, "rbac", "--user", "alice", str(DEMO))
    assert code == 0, err
    assert out == ALICE
    objects_of(out)


def test_bob_needs_one_cluster_rule():
    store = load(str(DEMO))
    result = analyze(store, "bob")
    objects = result.objects
    assert not objects.roles and not objects.role_bindings
    [role] = objects.cluster_roles
    assert role.name == "audit2rbac:bob"
    assert role.rules == [rr.Rule.build(["get", "list", "watch"], [""], ["nodes", "pods"])]
    [binding] = objects.cluster_role_bindings
    assert binding.subjects == [rr.Subject("User", "bob", api_group=rr.GROUP)]
    # every non-resource get of bob's is one discovery allows
    assert any(not r.attrs.resource_request for r in result.requests)


def test_service_account_sa1(capsys):
    code, out, err = run(capsys, "rbac", "--serviceaccount", "ns1:sa1", str(DEMO))
    assert code == 0, err
    docs = objects_of(out)
    assert [d["kind"] for d in docs] == ["ClusterRole", "ClusterRoleBinding"]
    role, binding = docs
    name = "audit2rbac:system:serviceaccount:ns1:sa1"
    assert role["metadata"]["name"] == binding["metadata"]["name"] == name
    assert role["metadata"]["labels"] == labels("system-serviceaccount-ns1-sa1")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}]


def test_namespace_filter_keeps_that_namespace_only(capsys):
    code, out, err = run(capsys, "rbac", "--user", "bob", "-n", "ns1", str(DEMO))
    assert code == 0, err
    docs = objects_of(out)
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [
        ("Role", "ns1"),
        ("RoleBinding", "ns1"),
    ]
    assert docs[0]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "nobody"], "No audit events matched user nobody"),
        (["--user", "alice", "-n", "ns9"], "No audit events matched user alice in namespace ns9"),
        (["--serviceaccount", "ns1"], "--serviceaccount must be NAMESPACE:NAME"),
        (["--serviceaccount", "ns1:"], "--serviceaccount must be NAMESPACE:NAME"),
    ],
)
def test_nothing_matched_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "rbac", *argv, str(DEMO))
    assert (code, out) == (2, "")
    [line] = err.strip("\n").split("\n")
    assert line.startswith("audittui: ") and line.endswith(message)


def test_user_and_serviceaccount_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["rbac", "--user", "a", "--serviceaccount", "b:c", str(DEMO)])
    assert exc.value.code == 2
    capsys.readouterr()


def test_json_is_a_list_kubectl_takes(capsys):
    code, out, _ = run(capsys, "rbac", "--user", "alice", "--format", "json", str(DEMO))
    assert code == 0
    doc = orjson.loads(out)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    assert [i["kind"] for i in doc["items"]] == ["Role", "RoleBinding"]
    assert doc["items"] == objects_of(ALICE)


def test_subject_rows_prefers_the_impersonated_user():
    store = load(str(DEMO))
    bob = subject_rows(store, "bob")
    assert len(bob) and all(store.value("impersonated", int(i)) in ("bob", None) for i in bob)
    # system:admin impersonated bob everywhere: none of those rows is system:admin's
    admin = set(subject_rows(store, "system:admin").tolist())
    assert not admin & set(bob.tolist())
    # rows given (the app's filter) are intersected
    assert subject_rows(store, "bob", rows=bob[:2]).tolist() == sorted(bob[:2].tolist())
    assert analyze(store.snapshot(), "alice").objects.roles[0].namespace == "ns1"


# -- small generated logs ----------------------------------------------------------------------


def event(
    make_event,
    verb,
    resource=None,
    *,
    ns=None,
    name=None,
    group="",
    version="v1",
    sub=None,
    uri=None,
    code=200,
    user="u1",
    groups=("system:authenticated",),
    imp=None,
    t=0,
    **more,
):
    """An event of ``user`` (impersonating ``imp`` if given), its URI from its objectRef."""
    if resource is None:
        ref = None
        uri = uri or "/healthz"
    else:
        ref = {"resource": resource, "apiVersion": version}
        if group:
            ref["apiGroup"] = group
        for key, value in (("namespace", ns), ("name", name), ("subresource", sub)):
            if value:
                ref[key] = value
        if uri is None:
            base = f"/apis/{group}/{version}" if group else f"/api/{version}"
            where = f"/namespaces/{ns}" if ns else ""
            uri = f"{base}{where}/{resource}" + (f"/{name}" if name else "")
            uri += f"/{sub}" if sub else ""
    who = {"username": user, "groups": list(groups) if groups is not None else None}
    ts = f"2024-05-01T10:{t // 60:02d}:{t % 60:02d}.000000Z"
    fields = dict(
        verb=verb,
        objectRef=ref,
        requestURI=uri,
        user=who,
        responseStatus={"metadata": {}, "code": code},
        requestReceivedTimestamp=ts,
        stageTimestamp=ts,
    )
    if imp is not None:
        fields["user"] = {"username": user, "groups": ["system:masters"]}
        fields["impersonatedUser"] = imp
    fields.update(more)
    return make_event(**fields)


def reference(store, result, *, clean=False, include_denied=False) -> rr.RBACObjects:
    """audit2rbac's algorithm over each event as parsed (rbac_rules, no columns)."""
    attrs = []
    for i in result.rows.tolist():
        ev = store.event(i)
        a = rr.event_to_attributes(ev)
        if clean:
            code = (ev.get("responseStatus") or {}).get("code")
            decision = (ev.get("annotations") or {}).get("authorization.k8s.io/decision")
            if not include_denied and (code in (401, 403) or decision == "forbid"):
                continue
            if a.resource_request:
                group = MOVED_GROUPS.get((a.api_group, a.resource), a.api_group)
                a = replace(a, api_group=group, api_version="")
            else:
                a = replace(a, path=a.path.split("?")[0])
        attrs.append(a)
    return rr.generate(attrs, rr.discovery_roles(), default_options(result.user))


POOL = [  # (group, versions, resource, namespaced, subresources)
    ("", ("v1",), "pods", True, ("", "status", "log")),
    ("", ("v1",), "configmaps", True, ("",)),
    ("", ("v1",), "nodes", False, ("", "status")),
    ("apps", ("v1", "v1beta2"), "deployments", True, ("", "scale")),
    ("extensions", ("v1beta1",), "deployments", True, ("",)),
    ("storage.k8s.io", ("v1",), "storageclasses", False, ("",)),
]
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
URLS = (
    "/healthz",
    "/metrics",
    "/api",
    "/apis/apps",
    "/version?timeout=32s",
    "/logs/x",
    "/openapi/v2?x=1",
    "/readyz",
)


def random_log(make_event, seed: int, size: int = 60, names: int = 3) -> list[dict]:
    rnd = random.Random(seed)
    pool = ("a", "b", "c", *(f"n{k}" for k in range(names - 3)))
    events = []
    for t in range(rnd.randint(5, size)):
        who: dict = {"user": rnd.choice(("u1", "u1", "u1", "other"))}
        if rnd.random() < 0.2:  # impersonated: groups per impersonator (see rbac._requests)
            impersonator = rnd.choice(("admin1", "admin2"))
            groups = ["system:authenticated"] if impersonator == "admin1" else None
            who = {"user": impersonator, "imp": {"username": "u1", "groups": groups}}
        elif rnd.random() < 0.2:
            who["groups"] = rnd.choice((("g1", "system:authenticated"), (), None))
        code = rnd.choice((200, 200, 201, 403, 404))
        if rnd.random() < 0.25:
            events.append(event(make_event, "get", uri=rnd.choice(URLS), code=code, t=t, **who))
            continue
        group, versions, resource, namespaced, subs = rnd.choice(POOL)
        verb = rnd.choice(VERBS)
        ns = rnd.choice(("ns1", "ns2", "ns3")) if namespaced else None
        if namespaced and verb in ("list", "watch", "deletecollection") and rnd.random() < 0.3:
            ns = None  # across namespaces
        name = rnd.choice(pool) if verb not in ("list", "deletecollection") else None
        if verb in ("list", "watch") and rnd.random() < 0.2:
            name = "a"  # a fieldSelector on one name
        events.append(
            event(
                make_event,
                verb,
                resource,
                ns=ns,
                name=name,
                group=group,
                version=rnd.choice(versions),
                sub=rnd.choice(subs) or None,
                code=code,
                t=t,
                **who,
            )
        )
    return events


RANDOM_LOGS = [(s, 60, 3) for s in range(40)] + [(s, 1500, 40) for s in range(3)]


@pytest.mark.parametrize(("seed", "size", "names"), RANDOM_LOGS)
@pytest.mark.parametrize("clean", [False, True], ids=["audit2rbac", "clean"])
def test_columns_give_what_parsed_events_give(write_lines, make_event, seed, size, names, clean):
    """The analysis over the store's columns (grouped, expansions and order on codes, requests
    that cannot matter skipped) generates what audit2rbac's algorithm generates from every
    event parsed, on random logs: API versions, impersonation, groups, names, namespaces."""
    store = load(write_lines(f"r{seed}.log", random_log(make_event, seed, size, names)))
    for user in ("u1", "other"):
        result = analyze(store, user, clean=clean)
        if not result.events:
            continue
        want = reference(store, result, clean=clean)
        got = [rr.object_dict(o) for o in result.objects.in_output_order()]
        assert got == [rr.object_dict(o) for o in want.in_output_order()]


def test_same_operation_through_two_versions_is_not_expanded(write_lines, make_event):
    events = [
        event(make_event, "get", "deployments", ns="ns1", name="a", group="apps", version="v1"),
        event(
            make_event, "get", "deployments", ns="ns2", name="b", group="apps", version="v1beta2"
        ),
    ]
    store = load(write_lines("v.log", events))
    compatible = analyze(store, "u1").objects
    # audit2rbac compares apiVersion: two requests, one namespace and one name each
    assert [(r.namespace, r.rules[0].resource_names) for r in compatible.roles] == [
        ("ns1", ("a",)),
        ("ns2", ("b",)),
    ]
    clean = analyze(store, "u1", clean=True).objects  # RBAC sees no versions: one operation
    assert not clean.roles
    assert clean.cluster_roles[0].rules == [rr.Rule.build(["get"], ["apps"], ["deployments"])]


def test_impersonated_users_groups_decide_discovery(write_lines, make_event):
    events = [
        event(make_event, "get", uri="/version", imp={"username": "u1"}),  # no groups
        event(
            make_event,
            "get",
            uri="/api",
            imp={"username": "u2", "groups": ["system:authenticated"]},
        ),  # noqa: E501
    ]
    store = load(write_lines("i.log", events))
    u1 = analyze(store, "u1").objects
    assert u1.cluster_roles[0].rules == [rr.Rule.build(["get"], urls=["/version"])]
    assert not analyze(store, "u2").objects  # the discovery role is bound to its group


def test_create_is_granted_without_its_name(write_lines, make_event):
    events = [event(make_event, "create", "configmaps", ns="ns1", name="made", code=201)]
    store = load(write_lines("c.log", events))
    [role] = analyze(store, "u1").objects.roles
    assert role.rules == [rr.Rule.build(["create"], [""], ["configmaps"])]


# -- beyond audit2rbac: --clean, --counts ------------------------------------------------------


def test_clean_strips_queries_moves_groups_and_leaves_denied_out(write_lines, make_event):
    events = [
        event(make_event, "get", uri="/metrics?format=text", t=1),
        event(make_event, "get", uri="/metrics?format=json", t=2),
        event(
            make_event, "list", "deployments", ns="ns1", group="extensions", version="v1beta1", t=3
        ),
        event(
            make_event, "list", "ingresses", ns="ns1", group="extensions", version="v1beta1", t=4
        ),
        event(make_event, "delete", "secrets", ns="ns1", name="s", code=403, t=5),
        event(
            make_event,
            "get",
            "secrets",
            ns="ns1",
            name="t",
            t=6,
            annotations={"authorization.k8s.io/decision": "forbid"},
        ),
    ]
    store = load(write_lines("clean.log", events))
    plain = analyze(store, "u1")
    assert plain.objects.cluster_roles[0].rules == [
        rr.Rule.build(["get"], urls=["/metrics?format=json"]),
        rr.Rule.build(["get"], urls=["/metrics?format=text"]),
    ]
    assert {g for r in plain.objects.roles[0].rules for g in r.api_groups} == {"", "extensions"}

    clean = analyze(store, "u1", clean=True)
    assert clean.denied_left_out == 2
    assert clean.objects.cluster_roles[0].rules == [rr.Rule.build(["get"], urls=["/metrics"])]
    [role] = clean.objects.roles
    assert role.rules == [
        rr.Rule.build(["get", "list", "watch"], ["apps"], ["deployments"]),
        rr.Rule.build(["get", "list", "watch"], ["networking.k8s.io"], ["ingresses"]),
    ]
    kept = analyze(store, "u1", clean=True, include_denied=True)
    assert kept.denied_left_out == 0
    assert any("secrets" in r.resources for r in kept.objects.roles[0].rules)


def test_counts_are_comments_above_each_rule(capsys, write_lines, make_event):
    events = [
        event(make_event, "get", "pods", ns="ns1", name="a", t=1),
        event(make_event, "get", "pods", ns="ns1", name="a", t=9),
        event(make_event, "create", "pods", ns="ns1", name="b", code=403, t=5),
    ]
    path = write_lines("n.log", events)
    code, out, err = run(capsys, "rbac", "--user", "u1", "--counts", path)
    assert code == 0, err
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert comments == [
        "# 2 events, first 2024-05-01T10:00:01.000000Z, last 2024-05-01T10:00:09.000000Z",
        "# 1 event, 1 denied, first 2024-05-01T10:00:05.000000Z, last 2024-05-01T10:00:05.000000Z",
    ]
    assert [d["rules"] for d in objects_of(out) if d["kind"] == "Role"] == [
        [
            {"apiGroups": [""], "resourceNames": ["a"], "resources": ["pods"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
        ]
    ]
    # --clean counts by default (and leaves the 403 out); --no-counts turns them off
    code, out, _ = run(capsys, "rbac", "--user", "u1", "--clean", path)
    assert [line for line in out.splitlines() if line.startswith("#")] == comments[:1]
    code, out, _ = run(capsys, "rbac", "--user", "u1", "--clean", "--no-counts", path)
    assert "#" not in out


def test_permissions_used_and_grants(write_lines, make_event):
    reason = 'RBAC: allowed by RoleBinding "rb/ns1" of Role "r" to User "u1"'
    events = [
        event(
            make_event,
            "get",
            "pods",
            ns="ns1",
            name="a",
            t=1,
            annotations={"authorization.k8s.io/reason": reason},
        ),
        event(
            make_event,
            "get",
            "pods",
            ns="ns1",
            name="b",
            t=2,
            annotations={"authorization.k8s.io/reason": reason},
        ),
        event(make_event, "list", "pods", ns="ns2", t=3, code=403),
    ]
    result = analyze(load(write_lines("p.log", events)), "u1")
    used = [
        (p.verb, p.api_group, p.resource, p.namespace, p.usage.events, p.names)
        for p in result.permissions
    ]
    assert used == [("get", "", "pods", "ns1", 2, 2), ("list", "", "pods", "ns2", 1, 0)]
    assert result.permissions[1].usage.denied == 1
    grants = {g.binding: g.usage.events for g in result.grants}
    assert grants == {"RoleBinding/ns1/rb": 2, None: 1}
    assert result.grants[0].role == "Role/ns1/r"


# -- --diff ------------------------------------------------------------------------------------


def test_diff_lists_granting_roles_their_unused_rules_and_missing_bodies(
    capsys, make_event, write_lines
):
    by_role = 'RBAC: allowed by ClusterRoleBinding "wide" of ClusterRole "wide-role" to User "u1"'
    by_view = 'RBAC: allowed by ClusterRoleBinding "viewers" of ClusterRole "view" to Group "g"'
    body = {
        "kind": "ClusterRole",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "wide-role"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        ],
    }
    events = [
        # an administrator creates the role, logged with its body
        event(
            make_event,
            "create",
            "clusterroles",
            name="wide-role",
            group="rbac.authorization.k8s.io",
            user="admin",
            code=201,
            t=0,
            level="RequestResponse",
            requestObject=body,
            responseObject=body,
        ),
        event(
            make_event,
            "get",
            "pods",
            ns="ns1",
            name="a",
            t=1,
            annotations={"authorization.k8s.io/reason": by_role},
        ),
        event(
            make_event,
            "get",
            uri="/metrics?x=1",
            t=2,
            annotations={"authorization.k8s.io/reason": by_role},
        ),
        event(
            make_event, "list", "nodes", t=3, annotations={"authorization.k8s.io/reason": by_view}
        ),
        event(make_event, "get", "secrets", ns="ns1", name="s", code=403, t=4),
    ]
    path = write_lines("d.log", events)
    store = load(path)
    d = diff(store, analyze(store, "u1"))
    wide, view = d.roles
    assert (wide.label, wide.usage.events, view.label, view.usage.events) == (
        "ClusterRole/wide-role",
        2,
        "ClusterRole/view",
        1,
    )
    assert wide.body is not None and wide.body.verb == "create"
    assert [u.usage.events for u in wide.rules] == [1, 0, 1]  # the URL matched without its query
    assert wide.unused == [rr.Rule.from_dict(body["rules"][1])]
    assert view.body is None  # no event of the log holds view's body: said, not guessed
    assert [b.binding for b in wide.bindings] == ["ClusterRoleBinding/wide"]
    assert [u.usage.events for u in d.other] == [1]  # the denied get: no role named

    code, out, err = run(capsys, "rbac", "--user", "u1", "--diff", path)
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["subject"] == "u1" and doc["events"] == 4
    first, second = doc["granted"]
    assert first["unusedRules"] == [body["rules"][1]]
    assert [r["rule"] for r in first["usedRules"]] == [body["rules"][0], body["rules"][2]]
    assert first["bindings"] == [
        {"binding": "ClusterRoleBinding/wide", "subject": "User u1", "events": 2}
    ]
    assert second["role"] == "ClusterRole/view" and second["body"] == NO_BODY
    assert "unusedRules" not in second
    code, out, _ = run(capsys, "rbac", "--user", "u1", "--diff", "--format", "json", path)
    assert orjson.loads(out) == diff_document(d)


def test_diff_says_an_aggregated_roles_body_may_be_partial(write_lines, make_event):
    reason = 'RBAC: allowed by RoleBinding "b/ns1" of ClusterRole "agg" to User "u1"'
    body = {
        "kind": "ClusterRole",
        "metadata": {"name": "agg"},
        "rules": [],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
    }
    events = [
        event(
            make_event,
            "update",
            "clusterroles",
            name="agg",
            group="rbac.authorization.k8s.io",
            user="admin",
            level="Request",
            requestObject=body,
            t=0,
        ),
        event(
            make_event,
            "get",
            "pods",
            ns="ns1",
            name="a",
            t=1,
            annotations={"authorization.k8s.io/reason": reason},
        ),
    ]
    store = load(write_lines("agg.log", events))
    [role] = diff(store, analyze(store, "u1")).roles
    assert role.body is not None and role.body.aggregated
    assert "aggregated" in diff_document(diff(store, analyze(store, "u1")))["granted"][0]


# -- hostile input -----------------------------------------------------------------------------


def test_hostile_user_name_gives_valid_inert_yaml(capsys, write_lines, make_event):
    hostile = "ev\x1b[2Jil\u202eresu\u2028x\n: '\"{"
    events = [
        event(make_event, "get", "pods", ns="ns\x1b[31m", name="a\u202eb", user=hostile),
        event(make_event, "get", uri="/x\u2066y?\x07", user=hostile),
    ]
    path = write_lines("h.log", events)
    for argv in ([], ["--clean"], ["--diff"], ["--format", "json"]):
        code, out, err = run(capsys, "rbac", "--user", hostile, *argv, path)
        assert code == 0, err
        assert not UNSAFE.search(out) and not UNSAFE.search(err), argv
        assert all(inert(line) == line for line in out.split("\n")), argv  # nothing mangled
        if argv and argv[0] == "--diff":
            assert yaml.safe_load(out)["subject"] == hostile
            continue
        docs = orjson.loads(out)["items"] if "json" in argv else objects_of(out)
        subjects = [s for d in docs for s in d.get("subjects", ())]
        assert subjects and all(s["name"] == hostile for s in subjects)
        name = docs[0]["metadata"]["name"]
        assert re.fullmatch("audit2rbac:[a-z0-9:-]+", name), name
        urls = [u for d in docs for r in d.get("rules", ()) for u in r.get("nonResourceURLs", ())]
        assert urls == (["/x\u2066y"] if "--clean" in argv else ["/x\u2066y?\x07"])


def test_yaml_render_is_printable_ascii():
    store = load(str(DEMO))
    text = render_yaml(analyze(store, "bob"), counts=True)
    assert text.isascii() and not UNSAFE.search(text)
