"""The RBAC, webhook and certificate rules (findings/pack/rbac.yaml): changes to bindings and
roles read from patches (JSON, merge) and from the resulting object, the cluster's own
principals and known controllers excluded by exact identity, refused writes reported apart as
attempts, and hostile bodies made inert. Panther's own cases: tests/findings/test_peer_packs.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from findings_kit import RULE, evaluate, on, req, store_of

from audittui.findings import load_rules

RBAC_API = "rbac.authorization.k8s.io/v1"
HOOK_API = "admissionregistration.k8s.io/v1"
CSR_API = "certificates.k8s.io/v1"
SA = "system:serviceaccount:"

ENABLED = [r for r in load_rules(False).rules if r.enabled]


# -- building events ----------------------------------------------------------------------------


def crb(verb: str, name: str, body: Any = None, *, user: str = "alice", code: int = 200, **kw):
    return req(verb, "clusterrolebindings", api=RBAC_API, ns=None, name=name, body=body,
               user=user, code=code, **kw)  # fmt: skip


def role(verb: str, name: str, body: Any = None, *, user: str = "alice", code: int = 200):
    return req(verb, "clusterroles", api=RBAC_API, ns=None, name=name, body=body, user=user,
               code=code)  # fmt: skip


def binding(role_name: str, subject: str = "mallory") -> dict:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role_name,
        },  # fmt: skip
        "subjects": [{"kind": "User", "name": subject}],
    }


def op(path: str, value: Any, kind: str = "add") -> dict:
    return {"op": kind, "path": path, "value": value}


def rules(*entries: tuple[list[str], list[str]]) -> list[dict]:
    return [{"apiGroups": [""], "resources": res, "verbs": verbs} for res, verbs in entries]


def fired_ids(tmp_path: Path, events: list[dict], ids: list[str]) -> set[str]:
    store = store_of(tmp_path, events)
    fx, fired, _ = evaluate(store, [on(i) for i in ids])
    assert fx.errors == {}  # nothing in these bodies makes a rule's expression fail
    return set(fired)


# -- bindings changed after creation ------------------------------------------------------------

CHANGED = ["privileged-binding-changed", "binding-modified"]


@pytest.mark.parametrize(
    ("what", "event", "privileged"),
    [
        (
            "JSON patch adds a user",
            crb("patch", "cluster-admin", [op("/subjects/-", {"kind": "User", "name": "mallory"})]),
            True,
        ),
        (
            "JSON patch replaces subjects",
            crb(
                "patch",
                "cluster-admin",
                [op("/subjects", [{"kind": "Group", "name": "devs"}], "replace")],
            ),
            True,
        ),
        (
            "merge patch of subjects",
            crb("patch", "cluster-admin", {"subjects": [{"kind": "User", "name": "mallory"}]}),
            True,
        ),
        ("update of a custom binding", crb("update", "ops", binding("cluster-admin")), True),
        ("update binding edit", crb("update", "ops", binding("edit")), True),
        ("update binding view", crb("update", "ops", binding("view")), False),
        (
            "patch of labels only",
            crb("patch", "cluster-admin", {"metadata": {"labels": {"a": "b"}}}),
            False,
        ),
        (
            "JSON patch of labels only",
            crb("patch", "cluster-admin", [op("/metadata/labels/a", "b")]),
            False,
        ),
        (
            "subjects emptied on a non-privileged name",
            crb("patch", "readers", {"subjects": []}),
            False,
        ),
    ],
)
def test_a_change_to_a_privileged_binding_is_a_grant(tmp_path, what, event, privileged):
    fired = fired_ids(tmp_path, [event], CHANGED)
    assert ("privileged-binding-changed" in fired) is privileged, what
    assert "binding-modified" in fired  # every change by a person is on the record


def test_the_role_of_a_patched_binding_is_read_from_the_response_when_logged(tmp_path):
    """A patch names no roleRef: the binding 'ops' could be anything until the response shows
    it is bound to cluster-admin; with a response showing view it is not privileged, even if
    its name were a privileged role's."""
    patch = [op("/subjects/-", {"kind": "User", "name": "mallory"})]
    to_admin = crb("patch", "ops", patch)
    to_admin["responseObject"] = binding("cluster-admin")
    assert "privileged-binding-changed" in fired_ids(tmp_path, [to_admin], CHANGED)
    unknown = crb("patch", "ops", patch)
    assert "privileged-binding-changed" not in fired_ids(tmp_path, [unknown], CHANGED)
    named_admin_but_view = crb("patch", "cluster-admin", patch)
    named_admin_but_view["responseObject"] = binding("view")
    assert "privileged-binding-changed" not in fired_ids(tmp_path, [named_admin_but_view], CHANGED)


def test_a_namespaced_binding_change_counts_only_for_cluster_admin(tmp_path):
    def rb(role_name: str) -> dict:
        body = binding(role_name) | {"kind": "RoleBinding"}
        return req("update", "rolebindings", api=RBAC_API, ns="dev", name="team", body=body)

    assert "privileged-binding-changed" in fired_ids(tmp_path, [rb("cluster-admin")], CHANGED)
    assert "privileged-binding-changed" not in fired_ids(tmp_path, [rb("edit")], CHANGED)


def test_a_refused_change_is_not_a_grant(tmp_path):
    patch = [op("/subjects/-", {"kind": "User", "name": "mallory"})]
    refused = crb("patch", "cluster-admin", patch, code=403, decision="forbid")
    fired = fired_ids(tmp_path, [refused], [*CHANGED, "rbac-write-attempt"])
    assert fired == {"rbac-write-attempt"}
    assert RULE["rbac-write-attempt"].rank > RULE["privileged-binding-changed"].rank


# -- creates and attempts -----------------------------------------------------------------------

CREATE = ["privileged-clusterrolebinding", "privileged-clusterrolebinding-attempt"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (201, {"privileged-clusterrolebinding"}),
        (403, {"privileged-clusterrolebinding-attempt"}),  # an admission webhook said no
        (409, {"privileged-clusterrolebinding-attempt"}),
        (422, {"privileged-clusterrolebinding-attempt"}),
    ],
)
def test_a_refused_create_is_an_attempt_not_a_binding(tmp_path, code, expected):
    ev = crb("create", "backdoor", binding("cluster-admin"), code=code)
    assert fired_ids(tmp_path, [ev], CREATE) == expected
    assert (
        RULE["privileged-clusterrolebinding-attempt"].rank
        > RULE["privileged-clusterrolebinding"].rank
    )


def test_a_binding_to_system_masters_as_subject_is_not_an_escalation(tmp_path):
    """Members of system:masters already hold every permission: binding them to view grants
    nobody anything (the decision documented in the rule)."""
    body = binding("view")
    body["subjects"] = [{"kind": "Group", "name": "system:masters"}]
    assert fired_ids(tmp_path, [crb("create", "b", body, code=201)], CREATE) == set()


def test_kubeadm_init_binding_is_expected_only_from_kubeadm(tmp_path):
    ev = crb("create", "kubeadm:cluster-admins", binding("cluster-admin"), code=201,
             user="kubernetes-super-admin")  # fmt: skip
    assert fired_ids(tmp_path, [ev], CREATE) == set()
    by_other = crb("create", "kubeadm:cluster-admins", binding("cluster-admin"), code=201)
    assert fired_ids(tmp_path, [by_other], CREATE) == {"privileged-clusterrolebinding"}


# -- the cluster's own principals, by exact identity --------------------------------------------


@pytest.mark.parametrize(
    ("user", "excluded"),
    [
        ("system:kube-controller-manager", True),
        ("system:apiserver", True),
        ("system:node:ip-10-0-0-1.ec2.internal", True),
        ("system:bootstrap:abcdef", True),
        (f"{SA}kube-system:clusterrole-aggregation-controller", True),
        (f"{SA}gke-system:addon", True),
        ("system:gke-common-webhooks", True),
        ("service-123@container-engine-robot.iam.gserviceaccount.com", True),
        ("eks:addon-manager", True),
        ("aksService", True),
        # not the cluster's: look-alikes and everyone else
        (f"{SA}kube-systemx:clusterrole-aggregation-controller", False),
        (f"{SA}default:kube-system", False),
        ("service-123@container-engine-robot.iam.gserviceaccount.com.evil.example", False),
        ("attacker@evil.iam.gserviceaccount.com", False),
        ("eks-admin", False),
        ("akservice", False),
        ("system:anonymous", False),
        ("system:serviceaccount:default:deployer", False),
        ("kubernetes-admin", False),
    ],
)
def test_system_principals_are_excluded_by_exact_identity(tmp_path, user, excluded):
    events = [
        crb("create", "b", binding("cluster-admin"), user=user, code=201),
        role("patch", "system:node", {"rules": rules((["*"], ["*"]))}, user=user),
        req(
            "create",
            "mutatingwebhookconfigurations",
            api=HOOK_API,
            ns=None,
            name="w",
            code=201,
            user=user,
        ),  # fmt: skip
    ]
    ids = ["privileged-clusterrolebinding", "system-role-modified", "webhook-configuration-created"]
    fired = fired_ids(tmp_path, events, ids)
    assert fired == (set() if excluded else set(ids)), user


# -- webhooks: created vs changed, and cert-manager's cainjector --------------------------------

HOOKS = ["webhook-configuration-created", "webhook-configuration-changed"]


def hook(verb: str, user: str = "alice", code: int = 200, body: Any = None) -> dict:
    return req(verb, "validatingwebhookconfigurations", api=HOOK_API, ns=None, name="policy",
               user=user, code=code, body=body)  # fmt: skip


def test_a_webhook_created_and_a_webhook_changed_are_told_apart(tmp_path):
    assert fired_ids(tmp_path, [hook("create", code=201)], HOOKS) == {
        "webhook-configuration-created"
    }
    for verb in ("update", "patch", "delete"):
        assert fired_ids(tmp_path, [hook(verb)], HOOKS) == {"webhook-configuration-changed"}
    assert RULE["webhook-configuration-changed"].rank > RULE["webhook-configuration-created"].rank


def test_cert_manager_cainjector_patching_ca_bundles_fires_nothing(tmp_path):
    cainjector = f"{SA}cert-manager:cert-manager-cainjector"
    patch = {"webhooks": [{"name": "w.example.com", "clientConfig": {"caBundle": "LS0t"}}]}
    assert fired_ids(tmp_path, [hook("patch", cainjector, body=patch)], HOOKS) == set()
    # Exact identity: cert-manager's other service accounts, and a look-alike, are reported.
    for other in (f"{SA}cert-manager:cert-manager", f"{SA}cert-managerx:cert-manager-cainjector"):
        assert fired_ids(tmp_path, [hook("patch", other)], HOOKS) == {
            "webhook-configuration-changed"
        }


def test_a_refused_webhook_create_is_an_attempt(tmp_path):
    ids = [*HOOKS, "rbac-write-attempt"]
    assert fired_ids(tmp_path, [hook("create", code=403)], ids) == {"rbac-write-attempt"}


# -- roles: creates and changes ------------------------------------------------------------------

ROLES = [
    "wildcard-role",
    "write-role",
    "pod-exec-role",
    "node-proxy-role",
    "sensitive-role",
    "role-changed-sensitive",
    "write-role-changed",
]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([(["pods"], ["get", "list"])], set()),
        ([(["secrets"], ["get"])], {"sensitive-role"}),
        ([(["clusterrolebindings"], ["create"])], {"sensitive-role", "write-role"}),
        ([(["serviceaccounts/token"], ["create"])], {"sensitive-role", "write-role"}),
        ([(["users"], ["impersonate"])], {"sensitive-role"}),
        ([(["clusterroles"], ["escalate", "bind"])], {"sensitive-role"}),
        ([(["pods/exec"], ["create"])], {"pod-exec-role", "write-role"}),
        ([(["pods/*"], ["get"])], {"pod-exec-role"}),
        ([(["nodes/proxy"], ["get"])], {"node-proxy-role"}),
        ([(["pods"], ["*"])], {"wildcard-role"}),
    ],
)
def test_role_created(tmp_path, entries, expected):
    ev = role("create", "r", {"rules": rules(*entries)}, code=201)
    assert fired_ids(tmp_path, [ev], ROLES) == expected


@pytest.mark.parametrize(
    ("what", "body", "response", "sensitive"),
    [
        ("update to wildcard", {"rules": rules((["*"], ["*"]))}, None, True),
        ("merge patch adds secrets read", {"rules": rules((["secrets"], ["list"]))}, None, True),
        ("merge patch, read-only rules", {"rules": rules((["pods"], ["get"]))}, None, False),
        ("patch of labels", {"metadata": {"labels": {"a": "b"}}}, None, False),
        (
            "JSON patch adds a rule",
            [op("/rules/-", rules((["nodes/proxy"], ["get"]))[0])],
            None,
            True,
        ),
        ("JSON patch adds verb *", [op("/rules/0/verbs/-", "*")], None, True),
        ("JSON patch adds verb get", [op("/rules/0/verbs/-", "get")], None, False),
        # the response shows the rule the verb landed in: get on secrets
        (
            "JSON patch, response",
            [op("/rules/0/verbs/-", "get")],
            rules((["secrets"], ["list", "get"])),
            True,
        ),
        # the response wins over the operations' values: the * was removed again
        (
            "JSON patch, response clean",
            [op("/rules/0/verbs/-", "*")],
            rules((["pods"], ["get"])),
            False,
        ),
        ("JSON patch of labels", [op("/metadata/labels/a", "b")], rules((["*"], ["*"])), False),
    ],
)
def test_role_changed(tmp_path, what, body, response, sensitive):
    ev = role("patch", "deployer", body)
    if response is not None:
        ev["responseObject"] = {"kind": "ClusterRole", "rules": response}
    fired = fired_ids(tmp_path, [ev], ROLES)
    assert fired == ({"role-changed-sensitive"} if sensitive else set()), what


# -- certificates -------------------------------------------------------------------------------

CSR = ["csr-created", "client-certificate-requested", "csr-approved"]


def csr(verb: str, user: str = "alice", sub: str | None = None, spec: dict | None = None):
    body = {"spec": spec} if spec is not None else None
    return req(verb, "certificatesigningrequests", sub=sub, api=CSR_API, ns=None, name="c",
               code=201 if verb == "create" else 200, user=user, body=body)  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "client"),
    [
        ({"signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}, True),
        ({"signerName": "kubernetes.io/kube-apiserver-client-kubelet"}, True),  # a node identity
        (
            {"signerName": "example.com/custom", "usages": ["digital signature", "client auth"]},
            True,
        ),
        ({"signerName": "kubernetes.io/kubelet-serving", "usages": ["server auth"]}, False),
        ({"signerName": ["kubernetes.io/kube-apiserver-client"], "usages": "client"}, False),
    ],
)
def test_client_certificate_requests(tmp_path, spec, client):
    fired = fired_ids(tmp_path, [csr("create", spec=spec)], CSR)
    assert fired == ({"csr-created", "client-certificate-requested"} if client else {"csr-created"})


def test_csr_from_nodes_and_bootstrap_and_approval_by_the_controller_fire_nothing(tmp_path):
    spec = {"signerName": "kubernetes.io/kube-apiserver-client-kubelet"}
    events = [
        csr("create", "system:node:node-1", spec=spec),
        csr("create", "system:bootstrap:abcdef", spec=spec),
        csr("create", "kubelet-nodepool-bootstrap", spec=spec),
        csr("update", f"{SA}kube-system:certificate-controller", sub="approval"),
        csr("update", "eks:certificate-controller", sub="approval"),
    ]
    assert fired_ids(tmp_path, events, CSR) == set()
    assert fired_ids(tmp_path, [csr("update", "alice", sub="approval")], CSR) == {"csr-approved"}


# -- hostile bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        [{"op": "add", "path": 7, "value": "*"}],
        [{"op": "add", "path": None}, "not an op", 5, None],
        [{"op": "add", "path": "/rules/0/verbs/-", "value": {"*": "*"}}],
        [{"op": "add", "path": "/subjects/-", "value": ["x", 1, None]}],
        {"rules": "*"},
        {"rules": [{"verbs": 5, "resources": {"*": 1}}, "x", None]},
        {"subjects": "cluster-admin", "roleRef": ["cluster-admin"]},
        {"rules": [{"verbs": ["\u202e*"], "resources": ["secrets\x00"]}]},
    ],
)
def test_hostile_bodies_are_inert(tmp_path, body):
    """Odd types and look-alike strings: no rule's expression fails (fired_ids checks the
    errors) and none of them is read as a grant. ``rules: "*"`` is a string, not a list of
    rules: the API server would have refused it."""
    events = [role("patch", "system:x", body), crb("patch", "ops", body)]
    fired = fired_ids(tmp_path, events, [*ROLES, *CHANGED])
    assert fired == {"binding-modified"}


def test_only_a_patch_body_may_be_a_list(tmp_path):
    """A JSON patch's body is a list of operations, and rules read it; any other request with
    a list for a body has no body, so an absence test (an Ingress without spec.tls) cannot fire
    on it."""
    api = "networking.k8s.io/v1"
    listed = req("create", "ingresses", api=api, name="shop", code=201, body=[{"spec": {}}])
    assert fired_ids(tmp_path, [listed], ["ingress-without-tls"]) == set()
    as_object = req("create", "ingresses", api=api, name="shop", code=201, body={"spec": {}})
    assert fired_ids(tmp_path, [as_object], ["ingress-without-tls"]) == {"ingress-without-tls"}
    patch = crb("update", "cluster-admin", [op("/subjects/-", {"kind": "User", "name": "m"})])
    assert fired_ids(tmp_path, [patch], ["privileged-binding-changed"]) == set()


@pytest.mark.parametrize(
    ("body", "response", "expected"),
    [
        ({"rules": rules((["pods"], ["delete"]))}, None, {"write-role-changed"}),
        (
            {"rules": rules((["clusterrolebindings"], ["create"]))},
            None,
            {"write-role-changed", "role-changed-sensitive"},
        ),
        ([op("/rules/0/verbs/-", "patch")], None, {"write-role-changed"}),
        (
            [op("/rules/0/verbs", ["get", "deletecollection"], "replace")],
            None,
            {"write-role-changed"},
        ),
        # the response shows the verb was not kept (a later operation removed it)
        ([op("/rules/0/verbs/-", "patch")], rules((["pods"], ["get"])), set()),
        ([op("/rules/0/resources/-", "delete")], None, set()),  # a resource, not a verb
    ],
)
def test_role_changed_to_write(tmp_path, body, response, expected):
    ev = role("update" if isinstance(body, dict) else "patch", "deployer", body)
    if response is not None:
        ev["responseObject"] = {"kind": "ClusterRole", "rules": response}
    assert fired_ids(tmp_path, [ev], ROLES) == expected
