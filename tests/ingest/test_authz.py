"""The binding that allowed a request: the authorizer's reason read into binding:, role:,
authorizer: (and reason: as text), and summaries by binding and by role."""

from __future__ import annotations

import orjson
import pytest
from conftest import REALDATA, SAMPLES, v1_event

import audittui
from audittui.analyses.summary import summarize
from audittui.index.evaluate import select
from audittui.ingest.authz import NOTHING, parse_reason
from audittui.output.inert import inert

REASON = "authorization.k8s.io/reason"
COREDNS = (
    'RBAC: allowed by ClusterRoleBinding "system:coredns" of ClusterRole "system:coredns" '
    'to ServiceAccount "coredns/kube-system"'
)
ROLEBINDING = (
    'RBAC: allowed by RoleBinding "elastic-agent/kube-system" of Role "elastic-agent" '
    'to ServiceAccount "elastic-agent/kube-system"'
)
ADMIN = (
    'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" '
    'to Group "system:masters"'
)


@pytest.mark.parametrize(
    ("reason", "want"),
    [
        (COREDNS, ("RBAC", "system:coredns", "ClusterRoleBinding", None, "system:coredns",
                   "ClusterRole", "ServiceAccount", "kube-system:coredns")),
        (ROLEBINDING, ("RBAC", "elastic-agent", "RoleBinding", "kube-system", "elastic-agent",
                       "Role", "ServiceAccount", "kube-system:elastic-agent")),
        (ADMIN, ("RBAC", "cluster-admin", "ClusterRoleBinding", None, "cluster-admin",
                 "ClusterRole", "Group", "system:masters")),
        # older API servers: the binding unquoted, nothing after it; and a truncated one
        ("RBAC: allowed by ClusterRoleBinding system:public-info-viewer",
         ("RBAC", "system:public-info-viewer", "ClusterRoleBinding", None, None, None, None,
          None)),
        ("RBAC: allowed by ClusterRoleBinding",
         ("RBAC", None, "ClusterRoleBinding", None, None, None, None, None)),
        # Go's %q: an escaped quote inside a name
        ('RBAC: allowed by ClusterRoleBinding "a\\"b" of ClusterRole "r" to User "u"',
         ("RBAC", 'a"b', "ClusterRoleBinding", None, "r", "ClusterRole", "User", "u")),
        ("access granted by IAM permissions.", ("Webhook",) + (None,) * 7),
        ("no relationship found between node 'n1' and this object", ("Node",) + (None,) * 7),
        ("RBAC: something new", ("RBAC",) + (None,) * 7),
    ],
)  # fmt: skip
def test_reasons_are_read_as_the_api_server_writes_them(reason, want):
    assert tuple(parse_reason(reason)) == want


@pytest.mark.parametrize("reason", ["", None, "weird", "\x1b[31m" + "x" * 100_000, 'RBAC "'])
def test_an_unknown_reason_is_nothing_and_never_an_error(reason):
    got = parse_reason(reason)
    assert got.binding is None and got.role is None
    assert got == NOTHING or got.authorizer == "RBAC"


def _log(tmp_path, reasons):
    events = []
    for k, (user, reason) in enumerate(reasons):
        ann = {"authorization.k8s.io/decision": "allow"}
        if reason is not None:
            ann[REASON] = reason
        events.append(v1_event(user={"username": user}, annotations=ann, auditID=f"a-{k}"))
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return audittui.load(path)


def test_binding_role_authorizer_and_reason_are_queryable(tmp_path):
    store = _log(
        tmp_path,
        [
            ("system:serviceaccount:kube-system:coredns", COREDNS),
            ("system:serviceaccount:kube-system:coredns", COREDNS),
            ("system:serviceaccount:kube-system:elastic-agent", ROLEBINDING),
            ("alice", ADMIN),
            ("bob", "access granted by IAM permissions."),
            ("carol", None),
            ("dave", 123),  # a type-confused annotation: no reason, no crash
        ],
    )
    with store:
        count = lambda q: len(select(store, q))  # noqa: E731
        assert count("binding:system:coredns") == 2
        assert count("binding:cluster-admin role:cluster-admin") == 1
        assert count("role:system:*") == 2 and count("role:/^elastic/") == 1
        assert count("authorizer:rbac") == 4  # case does not matter for the authorizer
        assert count("authorizer:Webhook") == 1
        assert count('binding:""') == 3  # no binding named: IAM, none, and the number
        assert count("reason:*IAM*") == 1
        assert count("-binding:cluster-admin user:alice") == 0


def test_summary_by_binding_and_role_keeps_kinds_and_namespaces_apart(tmp_path):
    store = _log(
        tmp_path,
        [
            ("u1", ROLEBINDING),
            ("u2", ROLEBINDING),
            ("u3", ADMIN),
            ("u4", 'RBAC: allowed by RoleBinding "cluster-admin/dev" of ClusterRole '
                   '"cluster-admin" to User "u4"'),
            ("u5", None),
        ],
    )  # fmt: skip
    with store:
        by_binding = {
            r["key"]: r["events"] for r in summarize(store, select(store, ""), by="binding")
        }
        assert by_binding == {
            "RoleBinding/kube-system/elastic-agent": 2,
            "ClusterRoleBinding/cluster-admin": 1,
            "RoleBinding/dev/cluster-admin": 1,
            "(none)": 1,
        }
        by_role = {r["key"]: r["events"] for r in summarize(store, select(store, ""), by="role")}
        assert by_role == {
            "Role/kube-system/elastic-agent": 2,
            "ClusterRole/cluster-admin": 2,  # one ClusterRole, bound twice
            "(none)": 1,
        }


def test_real_logs_bindings_match_their_text():
    eks = REALDATA / "panther-analysis" / "derived" / "eks.jsonl"
    text = eks.read_bytes()
    with audittui.load(eks) as store:
        assert len(select(store, "binding:system:coredns")) == text.count(
            b'ClusterRoleBinding \\"system:coredns\\"'
        )
        assert len(select(store, "binding:system:public-info-viewer")) == text.count(
            b"ClusterRoleBinding system:public-info-viewer"
        ) + text.count(b'ClusterRoleBinding \\"system:public-info-viewer\\"')
    with audittui.load(SAMPLES / "aks" / "aks_logs.json") as store:
        roles = {r["key"] for r in summarize(store, select(store, ""), by="role")}
        assert "ClusterRole/system:auth-delegator" in roles


def test_a_summary_rows_key_selects_exactly_its_events(tmp_path):
    # Drilling down from a summary row puts binding:<its key> in the filter.
    store = _log(
        tmp_path,
        [
            ("u1", ADMIN),
            ("u2", 'RBAC: allowed by RoleBinding "cluster-admin/dev" of ClusterRole '
                   '"cluster-admin" to User "u2"'),
            ("u3", None),
        ],
    )  # fmt: skip
    with store:
        for by in ("binding", "role"):
            for row in summarize(store, select(store, ""), by=by):
                value = '""' if row["key"] == "(none)" else f'"{row["key"]}"'
                assert len(select(store, f"{by}:{value}")) == row["events"], (by, row["key"])
        assert len(select(store, "binding:cluster-admin")) == 2  # the name alone: both kinds


def test_the_cluster_admin_rule_fires_for_a_person_and_is_blind_without_reasons(tmp_path):
    from audittui.findings import Findings, load_rules

    rules = [r for r in load_rules(False).rules if r.id == "cluster-admin-by-person"]
    store = _log(tmp_path, [("kubernetes-admin", ADMIN), ("system:kube-scheduler", ADMIN)])
    with store:
        findings = Findings(rules)
        findings.update(store)
        (found,) = findings.results(store)
        assert found.users == ["kubernetes-admin"] and not findings.blind(store)
    (tmp_path / "audit.log").unlink()
    bare = tmp_path / "bare"
    bare.mkdir()
    with _log(bare, [("kubernetes-admin", None)]) as store:
        findings = Findings(rules)
        findings.update(store)
        assert not findings.results(store)
        ((rule, why),) = findings.blind(store)
        assert "RBAC reason" in why


def _links(text) -> list[str]:
    return [s.style.meta["@click"] for s in text.spans if getattr(s.style, "meta", None)]


@pytest.mark.parametrize(
    "name",
    [
        "cluster-admin",
        'a"b',
        "x') or app.quit('",
        "ns/with space",
        "\u202eevil",
        "\x1b]52;c;aGk=\x07[bold]x[/]\\x1b",
    ],
)
def test_the_detail_links_the_binding_and_role_and_any_name_stays_one_argument(name):
    from textual.actions import parse

    from audittui.query.syntax import parse as parse_query
    from audittui.tui.detail import header

    quoted = name.replace('"', '\\"')  # as Go's %q writes it
    reason = f'RBAC: allowed by ClusterRoleBinding "{quoted}" of ClusterRole "view" to User "u"'
    event = v1_event(annotations={REASON: reason})
    links = _links(header(event, 1000))
    assert len(links) == 2
    for link, field in zip(links, ("binding", "role"), strict=True):
        _, action, args = parse(link)
        assert action == "narrow" and len(args) == 1
        assert inert(args[0]) == args[0]  # what the filter bar gets holds nothing raw
        term = parse_query(args[0])  # one term, whatever the name holds
        assert term.field == field
        label = parse_reason(reason).label(field)  # the very label, read back exact
        assert [(v.kind, v.text) for v in term.values] == [("exact", label)]
    assert "\u202e" not in header(event, 1000).plain


def test_a_click_on_the_binding_narrows_the_filter_to_its_events(tmp_path):
    from conftest import drive_app, until

    from audittui.tui.detail import header

    path = tmp_path / "audit.log"
    events = [
        v1_event(user={"username": "alice"}, annotations={REASON: ADMIN}),
        v1_event(user={"username": "bob"}, annotations={REASON: COREDNS}),
        v1_event(user={"username": "carol"}, annotations={REASON: ADMIN}),
    ]
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    async def check(app, pilot) -> None:
        binding_link = _links(header(events[0], 0))[0]
        await app.run_action(binding_link)
        await until(pilot, lambda: app.view.text == "binding:ClusterRoleBinding/cluster-admin")
        await until(pilot, lambda: len(app.view) == 2)

    drive_app(str(path), tmp_path, check)


def test_tab_completes_the_bindings_and_roles_the_reasons_name(tmp_path):
    from audittui.index.values import complete

    store = _log(tmp_path, [("u", COREDNS), ("u", COREDNS), ("v", ROLEBINDING), ("w", ADMIN)])
    with store:
        comp = complete("binding:sys", 11, store)
        assert comp.candidates == ["binding:system:coredns"]
        comp = complete("role:", 5, store)
        assert comp.candidates == [
            "role:system:coredns",
            "role:cluster-admin",
            "role:elastic-agent",
        ]
        assert len(select(store, comp.candidates[0])) == 2  # a candidate selects its events
        assert complete("authorizer:R", 12, store).candidates == ["authorizer:RBAC"]


def _role_body(kind: str, name: str, verbs: list[str], ns: str | None, at: str) -> dict:
    role = {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name, **({"namespace": ns} if ns else {})},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": verbs}]}  # fmt: skip
    resource = "clusterroles" if kind == "ClusterRole" else "roles"
    ref = {"resource": resource, "name": name, "apiGroup": "rbac.authorization.k8s.io",
           "apiVersion": "v1", **({"namespace": ns} if ns else {})}  # fmt: skip
    return v1_event(verb="update", level="RequestResponse", objectRef=ref, requestObject=role,
                    responseObject=role, requestReceivedTimestamp=at, stageTimestamp=at,
                    user={"username": "kubernetes-admin"})  # fmt: skip


def _use(user: str, reason: str, at: str) -> dict:
    return v1_event(
        user={"username": user},
        requestReceivedTimestamp=at,
        stageTimestamp=at,
        annotations={"authorization.k8s.io/decision": "allow",
                     "authorization.k8s.io/reason": reason},
    )  # fmt: skip


def test_the_wildcard_role_rule_reads_the_roles_newest_body_and_is_blind_without_any():
    import tempfile

    from audittui.findings import Findings, load_rules

    rules = [r for r in load_rules(False).rules if r.id == "wildcard-role-by-person"]
    by_ns_role = 'RBAC: allowed by RoleBinding "ops/prod" of Role "ops" to User "{}"'
    by_cluster_role = 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "{}" to User "x"'
    events = [
        _role_body("Role", "ops", ["*"], "prod", "2024-05-01T10:00:00Z"),
        _role_body("ClusterRole", "tidy", ["*"], None, "2024-05-01T10:00:00Z"),
        _use("erin", by_ns_role.format("erin"), "2024-05-01T10:01:00Z"),  # fires
        _use("system:kube-scheduler", by_ns_role.format("s"), "2024-05-01T10:01:01Z"),  # system
        _use("fred", by_cluster_role.format("unknown"), "2024-05-01T10:01:02Z"),  # no body
        # the ClusterRole later narrowed: its newest body grants no "*" any more
        _role_body("ClusterRole", "tidy", ["get"], None, "2024-05-01T10:02:00Z"),
        _use("gina", by_cluster_role.format("tidy"), "2024-05-01T10:03:00Z"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/audit.log"
        with open(path, "wb") as fh:
            fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
        with audittui.load(path) as store:
            findings = Findings(rules)
            findings.update(store)
            (found,) = findings.results(store)
            assert found.users == ["erin"] and not findings.blind(store)
        with open(path, "wb") as fh:  # the uses alone, at level Metadata: nothing to read
            fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events if "requestObject" not in e))
        with audittui.load(path) as store:
            findings = Findings(rules)
            findings.update(store)
            assert not findings.results(store)
            ((rule, why),) = findings.blind(store)
            assert "no Role or ClusterRole body" in why
