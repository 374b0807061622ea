"""Pods and workloads findings (issue 30): pod specs read wherever a pod arrives (Deployments,
DaemonSets, StatefulSets, Jobs, CronJobs; create, update, merge and JSON patches), refused
requests reported apart as attempts, the platform excluded through lists while the same
identities elsewhere stay visible, node agents not crying wolf, persistence through CronJobs,
Jobs, DaemonSets and sidecars. Panther's own cases: tests/findings/test_peer_packs.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from findings_kit import PACK, evaluate, falco, on, req, rules_file, store_of

from audittui.findings import load_rules
from audittui.index.loader import load

SA = "system:serviceaccount:"
HOST_RULES = [
    "privileged-pod",
    "dangerous-capabilities-pod",
    "root-pod",
    "sensitive-mount-pod",
    "hostpath-pod",
    "hostnetwork-pod",
    "hostpid-pod",
    "hostipc-pod",
]
ENABLED = [r for r in PACK if r.enabled]

# Where each kind keeps its pod template.
TEMPLATE_PATH = {
    "deployments": ("apps/v1", ["spec", "template", "spec"]),
    "daemonsets": ("apps/v1", ["spec", "template", "spec"]),
    "statefulsets": ("apps/v1", ["spec", "template", "spec"]),
    "replicasets": ("apps/v1", ["spec", "template", "spec"]),
    "replicationcontrollers": ("v1", ["spec", "template", "spec"]),
    "jobs": ("batch/v1", ["spec", "template", "spec"]),
    "cronjobs": ("batch/v1", ["spec", "jobTemplate", "spec", "template", "spec"]),
    "deploymentconfigs": ("apps.openshift.io/v1", ["spec", "template", "spec"]),  # OpenShift
    "rollouts": ("argoproj.io/v1alpha1", ["spec", "template", "spec"]),  # Argo Rollouts
}


def nest(path: list[str], value: Any) -> dict:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    return out


def container(image: str = "nginx", **security: Any) -> dict:
    c: dict[str, Any] = {"name": "c", "image": image}
    if security:
        c["securityContext"] = security
    return c


def spec(image: str = "nginx", security: dict | None = None, **pod: Any) -> dict:
    return {"containers": [container(image, **(security or {}))], **pod}


def workload(
    kind: str,
    pod_spec: dict,
    verb: str = "create",
    code: int = 201,
    ns: str = "shop",
    user: str = "alice",
    **kw: Any,
) -> dict:
    """A write of a workload of ``kind`` whose pod template is ``pod_spec``."""
    api, path = TEMPLATE_PATH[kind]
    body = {"kind": kind, "metadata": {"name": "w"}, **nest(path, pod_spec)}
    return req(verb, kind, api=api, ns=ns, name="w", code=code, user=user, body=body, **kw)


def pod(pod_spec: dict, code: int = 201, ns: str = "shop", user: str = "alice", **kw: Any):
    body = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": pod_spec}
    return req("create", "pods", ns=ns, name="p", code=code, user=user, body=body, **kw)


def json_patch(kind: str, *ops: tuple[str, str, Any], code: int = 200, user: str = "alice"):
    api = TEMPLATE_PATH[kind][0]
    body = [{"op": op, "path": path, "value": value} for op, path, value in ops]
    return req("patch", kind, api=api, ns="shop", name="w", code=code, user=user, body=body)


def fired(tmp_path: Path, events: list[dict], rules=ENABLED) -> dict:
    fx, found, _ = evaluate(store_of(tmp_path, events), rules)
    assert fx.errors == {}  # no rule's where expression broke on these events
    return found


# -- one pod spec, every way it arrives ---------------------------------------------------------

DANGEROUS: dict[str, dict] = {
    "privileged-pod": spec(security={"privileged": True}),
    "dangerous-capabilities-pod": spec(security={"capabilities": {"add": ["SYS_ADMIN"]}}),
    "root-pod": spec(security={"runAsUser": 0}),
    "sensitive-mount-pod": spec(volumes=[{"name": "s", "hostPath": {"path": "/var/run"}}]),
    "hostpath-pod": spec(volumes=[{"name": "d", "hostPath": {"path": "/srv/cache"}}]),
    "hostnetwork-pod": spec(hostNetwork=True),
    "hostpid-pod": spec(hostPID=True),
    "hostipc-pod": spec(hostIPC=True),
}


@pytest.mark.parametrize("kind", sorted(TEMPLATE_PATH))
@pytest.mark.parametrize("rule_id", HOST_RULES)
def test_every_pod_spec_rule_reads_every_workload_template(tmp_path, rule_id, kind):
    found = fired(tmp_path, [workload(kind, DANGEROUS[rule_id])])
    assert rule_id in found, (rule_id, kind)
    # and only that one of the host rules: each spec turns on exactly its own rule
    assert sorted(set(found) & set(HOST_RULES)) == [rule_id]
    # the plain template fires none of them
    assert not set(fired(tmp_path, [workload(kind, spec())])) & set(HOST_RULES)


@pytest.mark.parametrize("verb", ["update", "patch"])
def test_a_workload_changed_to_a_dangerous_template_fires(tmp_path, verb):
    events = [workload("deployments", DANGEROUS["hostpid-pod"], verb=verb, code=200)]
    assert "hostpid-pod" in fired(tmp_path, events)


def test_a_plain_pod_update_does_not_restate_an_immutable_spec(tmp_path):
    """A pod's spec cannot gain these fields after its create: an update carrying the whole
    pod (a label change) is not a new privileged pod."""
    body = {"kind": "Pod", "spec": DANGEROUS["privileged-pod"]}
    events = [req("update", "pods", ns="shop", name="p", body=body)]
    assert "privileged-pod" not in fired(tmp_path, events)


def test_a_privileged_ephemeral_container_fires(tmp_path):
    """`kubectl debug --profile=sysadmin`: a privileged ephemeral container patched in."""
    body = {"spec": {"ephemeralContainers": [container("busybox", privileged=True)]}}
    events = [req("patch", "pods", sub="ephemeralcontainers", ns="shop", name="p", body=body)]
    assert "privileged-pod" in fired(tmp_path, events)


@pytest.mark.parametrize(
    "ops, rule_id",
    [
        ([("add", "/spec/template/spec/hostNetwork", True)], "hostnetwork-pod"),
        ([("replace", "/spec/template/spec/hostPID", True)], "hostpid-pod"),
        (
            [("add", "/spec/template/spec/containers/0/securityContext/privileged", True)],
            "privileged-pod",
        ),
        (
            [("add", "/spec/template/spec/containers/-", container("x", privileged=True))],
            "privileged-pod",
        ),
        (
            [("add", "/spec/template/spec/containers/0/securityContext/capabilities/add/-", "BPF")],
            "dangerous-capabilities-pod",
        ),
        (
            [("add", "/spec/template/spec/volumes/-", {"name": "r", "hostPath": {"path": "/"}})],
            "sensitive-mount-pod",
        ),
        (
            [("replace", "/spec/template/spec/volumes/0/hostPath/path", "/etc")],
            "sensitive-mount-pod",
        ),
        ([("add", "/spec/template/spec/securityContext/runAsUser", 0)], "root-pod"),
    ],
)
def test_json_patches_that_set_the_field_fire(tmp_path, ops, rule_id):
    assert rule_id in fired(tmp_path, [json_patch("daemonsets", *ops)])


def test_json_patches_that_remove_or_touch_other_fields_do_not(tmp_path):
    events = [
        json_patch("daemonsets", ("remove", "/spec/template/spec/hostNetwork", True)),
        json_patch("daemonsets", ("replace", "/spec/template/spec/containers/0/image", "n:2")),
        json_patch(
            "daemonsets",
            ("add", "/spec/template/spec/containers/0/securityContext/capabilities/drop/-", "ALL"),
        ),
        json_patch("daemonsets", ("replace", "/spec/template/spec/volumes/0/name", "etc")),
    ]
    assert not set(fired(tmp_path, events)) & set(HOST_RULES)


def test_hostile_patch_operations_are_inert(tmp_path):
    """Operations without a path, with a path that is not text, a body of scalars: nothing
    fires and no rule records an error (fired() checks fx.errors)."""
    bodies: list[Any] = [
        [{"op": "add", "value": True}],
        [{"op": "add", "path": 7, "value": {"hostNetwork": True}}],  # the value still counts
        [1, "x", None, {"op": ["add"], "path": "/spec/template/spec/hostPID", "value": True}],
        [],
    ]
    events = [
        req("patch", "deployments", api="apps/v1", ns="shop", name=f"w{k}", body=b)
        for k, b in enumerate(bodies)
    ]
    found = fired(tmp_path, events)
    assert sorted(set(found) & set(HOST_RULES)) == ["hostnetwork-pod"]
    assert found["hostnetwork-pod"].count == 1


@pytest.mark.parametrize(
    "caps, fires",
    [
        (["SYS_ADMIN"], True),
        (["CAP_SYS_ADMIN"], True),  # CRI-O accepts the prefix
        (["sys_admin"], True),  # containerd upper-cases
        (["ALL"], True),
        (["NET_BIND_SERVICE", "CHOWN"], False),
        (["NET_RAW", "DAC_OVERRIDE"], False),  # the runtimes' defaults: adding changes nothing
    ],
)
def test_dangerous_capabilities_by_name_and_spelling(tmp_path, caps, fires):
    events = [pod(spec(security={"capabilities": {"add": caps}}))]
    assert ("dangerous-capabilities-pod" in fired(tmp_path, events)) is fires


@pytest.mark.parametrize(
    "path, rule_id",
    [
        ("/var/run/docker.sock", "sensitive-mount-pod"),
        ("/run/containerd/containerd.sock", "sensitive-mount-pod"),
        ("/var/run/crio/crio.sock", "sensitive-mount-pod"),
        ("/var/run/cri-dockerd.sock", "sensitive-mount-pod"),
        ("/var/log", "sensitive-mount-pod"),
        ("/var/log/pods", "sensitive-mount-pod"),
        ("/var/", "sensitive-mount-pod"),  # /var itself holds them all
        ("/etc/kubernetes/pki", "sensitive-mount-pod"),
        ("//etc", "sensitive-mount-pod"),  # a path written to dodge a list
        ("/data/./x", "sensitive-mount-pod"),
        ("/var/lib/app-data", "hostpath-pod"),  # below /var/lib, but not the kubelet's
        ("/mnt/data", "hostpath-pod"),
        ("/opt/app", "hostpath-pod"),
    ],
)
def test_host_paths_are_sensitive_or_merely_host_paths(tmp_path, path, rule_id):
    found = fired(tmp_path, [pod(spec(volumes=[{"name": "v", "hostPath": {"path": path}}]))])
    assert sorted(set(found) & {"sensitive-mount-pod", "hostpath-pod"}) == [rule_id], path


def test_a_persistent_volume_on_a_sensitive_host_path_fires(tmp_path):
    body = {"kind": "PersistentVolume", "spec": {"hostPath": {"path": "/etc"}}}
    events = [req("create", "persistentvolumes", ns=None, name="pv1", code=201, body=body)]
    assert "sensitive-mount-pod" in fired(tmp_path, events)


def test_windows_host_process_containers_are_privileged(tmp_path):
    windows = spec(securityContext={"windowsOptions": {"hostProcess": True}}, hostNetwork=True)
    assert "privileged-pod" in fired(tmp_path, [pod(windows)])


# -- successes and attempts apart ---------------------------------------------------------------


@pytest.mark.parametrize("code", [403, 409, 422])
@pytest.mark.parametrize("rule_id", HOST_RULES)
def test_a_refused_request_is_an_attempt_not_a_creation(tmp_path, rule_id, code):
    found = fired(tmp_path, [pod(DANGEROUS[rule_id], code=code)])
    assert rule_id not in found
    assert f"{rule_id}-attempt" in found
    attempt, success = on(f"{rule_id}-attempt"), on(rule_id)
    assert attempt.rank > success.rank  # one step (or more) lower


def test_a_pod_security_denial_is_an_attempt(tmp_path):
    """The authorizer allowed it; Pod Security refused it at admission (403)."""
    ev = pod(DANGEROUS["hostpid-pod"], code=403)
    ev["responseStatus"].update(
        {"reason": "Forbidden", "message": 'pods "p" is forbidden: violates PodSecurity'}
    )
    ev["annotations"]["pod-security.kubernetes.io/enforce-policy"] = "restricted:latest"
    found = fired(tmp_path, [ev])
    assert "hostpid-pod-attempt" in found and "hostpid-pod" not in found


def test_without_a_response_status_the_request_counts_as_done(tmp_path):
    """Cloud exports and the peers' test events often omit responseStatus."""
    ev = pod(DANGEROUS["privileged-pod"])
    del ev["responseStatus"]
    found = fired(tmp_path, [ev])
    assert "privileged-pod" in found and "privileged-pod-attempt" not in found


def test_a_forbidden_decision_is_never_a_success(tmp_path):
    ev = pod(DANGEROUS["privileged-pod"], decision="forbid")
    del ev["responseStatus"]
    found = fired(tmp_path, [ev])
    assert "privileged-pod-attempt" in found and "privileged-pod" not in found


@pytest.mark.parametrize(
    "fixture, rule_id",
    [
        ("create_nginx_pod_privileged.json", "privileged-pod"),
        ("create_nginx_pod_privileged_2nd_container.json", "privileged-pod"),
        (
            "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
            "privileged-pod",
        ),
        ("create_nginx_pod_sensitive_mount.json", "sensitive-mount-pod"),
        ("create_nginx_pod_sensitive_mount_2nd_container.json", "sensitive-mount-pod"),
        ("create_nginx_pod_hostnetwork.json", "hostnetwork-pod"),
        ("create_pod_kube_system_namespace.json", "pod-in-kube-namespace"),
        ("create_pod_kube_public_namespace.json", "pod-in-kube-namespace"),
        ("create_nginx_service_nodeport.json", "nodeport-service"),
    ],
)
def test_falcos_own_traces_keep_firing_its_rules(tmp_path, fixture, rule_id):
    """Falco's regression traces, read as they are, fire the rule that names Falco's rule."""
    found = fired(tmp_path, falco(fixture))
    assert rule_id in found
    falco_name = dict(on(rule_id).peers)["falco"][0]
    assert falco_name in dict(found[rule_id].rule.peers)["falco"]


# -- who: the platform excluded, exactly -------------------------------------------------------


@pytest.mark.parametrize(
    "user, ns, fires",
    [
        (f"{SA}kube-system:daemon-set-controller", "kube-system", False),
        ("system:node:ip-10-0-1-2.ec2.internal", "kube-system", False),  # a static pod's mirror
        ("eks:addon-manager", "kube-system", False),
        ("service-42@container-engine-robot.iam.gserviceaccount.com", "gke-system", False),
        # the platform's identities outside the system namespaces: someone's workload
        (f"{SA}kube-system:daemon-set-controller", "shop", True),
        ("system:node:ip-10-0-1-2.ec2.internal", "shop", True),
        # people, and look-alike identities, in the system namespaces
        ("alice", "kube-system", True),
        (f"{SA}kube-system-evil:daemon-set-controller", "kube-system", True),
        (f"{SA}shop:default", "kube-system", True),
        ("eks-admin", "kube-system", True),
    ],
)
def test_system_principals_are_excluded_only_in_system_namespaces(tmp_path, user, ns, fires):
    found = fired(tmp_path, [pod(DANGEROUS["hostpid-pod"], user=user, ns=ns)])
    assert ("hostpid-pod" in found) is fires, (user, ns)


def test_node_agents_do_not_cry_wolf(tmp_path):
    """node-exporter with hostPID, hostNetwork and / mounted; kube-proxy privileged; a CNI
    DaemonSet; a log shipper on /var/log: none of the host rules fire."""
    exporter = spec(
        "quay.io/prometheus/node-exporter:v1.8.1",
        hostPID=True,
        hostNetwork=True,
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
    )
    proxy = spec("registry.k8s.io/kube-proxy:v1.30.0", {"privileged": True}, hostNetwork=True)
    cni = spec(
        "quay.io/cilium/cilium:v1.15.0",
        {"privileged": True, "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}},
        hostNetwork=True,
        volumes=[{"name": "cni", "hostPath": {"path": "/opt/cni/bin"}}],
    )
    logs = spec(
        "cr.fluentbit.io/fluent/fluent-bit:3.0",
        volumes=[{"name": "l", "hostPath": {"path": "/var/log"}}],
    )
    events = [
        workload("daemonsets", exporter, ns="monitoring", user="helm"),
        workload("daemonsets", proxy, ns="kube-system", user="kubeadm"),
        workload("daemonsets", cni, ns="cilium", user="helm"),
        workload("daemonsets", logs, ns="logging", user="helm"),
    ]
    found = fired(tmp_path, events)
    assert not set(found) & set(HOST_RULES)
    # and the same specs with an image of one's own are reported
    mine = spec("ghcr.io/mallory/agent:1", hostPID=True, hostNetwork=True)
    found = fired(tmp_path, [workload("daemonsets", mine, ns="monitoring")])
    assert {"hostpid-pod", "hostnetwork-pod"} <= set(found)


def test_one_untrusted_container_beside_trusted_ones_is_reported(tmp_path):
    pod_spec = spec("quay.io/prometheus/node-exporter:v1.8.1", hostPID=True)
    pod_spec["containers"].append(container("docker.io/library/alpine:3"))
    assert "hostpid-pod" in fired(tmp_path, [workload("daemonsets", pod_spec, ns="monitoring")])


# -- system namespaces --------------------------------------------------------------------------


@pytest.mark.parametrize("ns", ["kube-system", "kube-public", "kube-node-lease", "gke-system"])
def test_foreign_images_in_every_system_namespace(tmp_path, ns):
    assert "pod-in-kube-namespace" in fired(tmp_path, [pod(spec("alpine:3"), ns=ns)])
    assert "pod-in-kube-namespace" not in fired(
        tmp_path, [pod(spec("registry.k8s.io/coredns/coredns:v1.11.1"), ns=ns)]
    )


def test_a_workload_slipped_into_kube_system_fires_but_a_restart_does_not(tmp_path):
    miner = workload("deployments", spec("docker.io/xmrig/xmrig"), ns="kube-system", verb="patch")
    restart = req(
        "patch",
        "deployments",
        api="apps/v1",
        ns="kube-system",
        name="coredns",
        body={"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}},
    )
    assert "pod-in-kube-namespace" in fired(tmp_path, [miner])
    assert "pod-in-kube-namespace" not in fired(tmp_path, [restart])


# -- persistence --------------------------------------------------------------------------------


def test_cronjobs_created_or_modified_but_not_their_status(tmp_path):
    events = [
        req("create", "cronjobs", api="batch/v1", ns="shop", name="c", code=201),
        req("update", "cronjobs", api="batch/v1", ns="shop", name="c"),
        req("patch", "cronjobs", api="batch/v1", ns="shop", name="c"),
        req("update", "cronjobs", api="batch/v1", ns="shop", name="c", sub="status"),
        req("delete", "cronjobs", api="batch/v1", ns="shop", name="c"),
        req("create", "cronjobs", api="batch/v1", ns="shop", name="d", code=403),
    ]
    found = fired(tmp_path, events)
    assert found["cronjob-modified"].count == 3


def test_jobs_of_the_cronjob_controller_are_not_jobs_someone_created(tmp_path):
    ctl = f"{SA}kube-system:cronjob-controller"
    events = [
        req("create", "jobs", api="batch/v1", ns="shop", name="j1", code=201, user=ctl),
        req("create", "jobs", api="batch/v1", ns="shop", name="j2", code=201, user="bob"),
    ]
    assert fired(tmp_path, events)["job-created"].users == ["bob"]


def test_daemonsets_created_and_modified_apart(tmp_path):
    ctl = f"{SA}kube-system:daemon-set-controller"
    events = [
        req("create", "daemonsets", api="apps/v1", ns="shop", name="a", code=201),
        req("create", "daemonsets", api="apps/v1", ns="kube-system", name="b", code=201, user=ctl),
        req("patch", "daemonsets", api="apps/v1", ns="shop", name="a"),
    ]
    found = fired(tmp_path, events)
    assert found["daemonset-created"].count == 1
    assert found["daemonset-modified"].count == 1


@pytest.mark.parametrize(
    "path, fires",
    [
        ("/spec/template/spec/containers/-", True),
        ("/spec/template/spec/containers/1", True),
        ("/spec/template/spec/initContainers/0", True),
        ("/spec/jobTemplate/spec/template/spec/containers/-", True),
        ("/spec/template/spec/containers/0/env/-", False),
        ("/spec/template/metadata/labels/x", False),
    ],
)
def test_a_container_added_by_json_patch_is_a_sidecar(tmp_path, path, fires):
    events = [json_patch("deployments", ("add", path, {"name": "s", "image": "x"}))]
    assert ("workload-container-added" in fired(tmp_path, events)) is fires


def test_the_user_file_can_trust_an_agent_and_name_a_principal(tmp_path, monkeypatch):
    """The lists are the user's: an agent image of their own, and an operator's identity."""
    rules_file(
        monkeypatch,
        tmp_path,
        "lists:\n"
        "  workloads_host_agent_images: [registry.example.com/agent*]\n"
        "  workloads_system_principals: ['system:serviceaccount:ops:installer']\n",
    )
    rules = load_rules()
    assert rules.problems == []
    enabled = [r for r in rules.rules if r.enabled]
    agent = workload("daemonsets", spec("registry.example.com/agent:2", hostPID=True), ns="ops")
    installer = workload(
        "daemonsets", spec("alpine", hostPID=True), ns="kube-system", user=f"{SA}ops:installer"
    )
    assert "hostpid-pod" not in fired(tmp_path, [agent], enabled)
    assert "hostpid-pod" not in fired(tmp_path, [installer], enabled)
    assert "hostpid-pod" in fired(tmp_path, [agent, installer])  # the pack alone


def test_a_field_name_spelt_with_escapes_is_still_read(tmp_path):
    """The rules read the words they need in the raw line first (cheap); an API server logs a
    patch body as it was sent, so a JSON escape can spell a field name without its letters
    (`host\\u0050ID`): such a line is read in full all the same."""
    ev = json_patch("daemonsets", ("add", "/spec/template/spec/hostPID", True))
    line = orjson.dumps(ev).replace(b"/hostPID", b"/host\\u0050ID")
    assert b"hostPID" not in line
    path = tmp_path / "escaped.log"
    path.write_bytes(line + b"\n")
    store = load(path)
    assert store.event(0)["requestObject"][0]["path"].endswith("/hostPID")
    fx, found, _ = evaluate(store, ENABLED)
    assert "hostpid-pod" in found and fx.errors == {}
