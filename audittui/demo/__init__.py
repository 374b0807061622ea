"""Synthetic Kubernetes API-server audit logs (``audit.k8s.io/v1``) for demos, tests and benchmarks.

The generator simulates a small cluster (nodes, controllers, service accounts, humans using
kubectl, probes, scrapers, an anonymous scanner) and emits compact JSON lines exactly as the
kube-apiserver log backend writes them: struct key order, ``...ffffffZ`` MicroTimes, sorted
annotation keys, RequestReceived/ResponseStarted/ResponseComplete/Panic stages with matching
``auditID``s, lines in non-decreasing ``stageTimestamp`` order. Output is fully deterministic
for a given seed (and start time): every random choice, UUIDs included, comes from
``random.Random(seed)``.

Public API::

    iter_events(n, *, seed, start, rate, body_fraction) -> Iterator[dict]
    iter_lines(n, *, seed, start, rate, body_fraction)  -> Iterator[bytes]
    write_big(path, n, *, seed, body_fraction)           -> bytes written
    write_demo(folder, n=3000, *, seed=7)                -> files written (lumberjack-style folder)
    append_live(folder_or_file, *, rate, seed, stop, rotate_bytes, compress) -> events written

CLI::

    python -m audittui.demo write DIR [--events N] [--seed S]
    python -m audittui.demo big FILE [--events N] [--body-fraction F] [--seed S]
    python -m audittui.demo live DIR [--rate R] [--rotate-bytes B] [--no-compress]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import heapq
import os
import random
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "BACKUP_RE",
    "DEFAULT_START",
    "append_live",
    "iter_events",
    "iter_lines",
    "write_big",
    "write_demo",
]

DEFAULT_START = datetime(2025, 11, 26, 9, 0, 0, tzinfo=UTC)
BACKUP_RE = re.compile(r"^audit-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})\.log(\.gz)?$")

RR, RS, RC, PANIC = "RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"
J = dict[str, Any]

# Component versions; GitVersion commit is the 7-char short hash Kubernetes puts in user agents.
KV, KC = "v1.30.2", "3968350"
PLATFORM = "(linux/amd64)"
REGION = "eu-west-1"
NODES = [
    f"ip-10-0-1-23.{REGION}.compute.internal",
    f"ip-10-0-1-87.{REGION}.compute.internal",
    f"ip-10-0-2-141.{REGION}.compute.internal",
    f"ip-10-0-3-12.{REGION}.compute.internal",
]
CONTROL_PLANE_IP = "10.0.0.10"

# resource -> (apiGroup, version, Kind, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "pods": ("", "v1", "Pod", True),
    "configmaps": ("", "v1", "ConfigMap", True),
    "secrets": ("", "v1", "Secret", True),
    "services": ("", "v1", "Service", True),
    "endpoints": ("", "v1", "Endpoints", True),
    "serviceaccounts": ("", "v1", "ServiceAccount", True),
    "events": ("", "v1", "Event", True),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim", True),
    "nodes": ("", "v1", "Node", False),
    "namespaces": ("", "v1", "Namespace", False),
    "deployments": ("apps", "v1", "Deployment", True),
    "replicasets": ("apps", "v1", "ReplicaSet", True),
    "statefulsets": ("apps", "v1", "StatefulSet", True),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "leases": ("coordination.k8s.io", "v1", "Lease", True),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSlice", True),
    "clusterroles": ("rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
    "roles": ("rbac.authorization.k8s.io", "v1", "Role", True),
    "rolebindings": ("rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    "jobs": ("batch", "v1", "Job", True),
    "ingresses": ("networking.k8s.io", "v1", "Ingress", True),
    "servicemonitors": ("monitoring.coreos.com", "v1", "ServiceMonitor", True),
    "prometheusrules": ("monitoring.coreos.com", "v1", "PrometheusRule", True),
    "subjectaccessreviews": ("authorization.k8s.io", "v1", "SubjectAccessReview", False),
    "customresourcedefinitions": (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        False,
    ),
}

# namespace -> deployments (name, image, port)
WORKLOADS: dict[str, list[tuple[str, str, int]]] = {
    "prod": [
        ("web", "registry.example.com/shop/web:2.14.1", 8080),
        ("api", "registry.example.com/shop/api:3.2.0", 8080),
        ("worker", "registry.example.com/shop/worker:3.2.0", 9090),
        ("postgres", "docker.io/library/postgres:16.4", 5432),
    ],
    "staging": [
        ("web", "registry.example.com/shop/web:2.15.0-rc.2", 8080),
        ("api", "registry.example.com/shop/api:3.3.0-rc.1", 8080),
    ],
    "dev": [
        ("web", "registry.example.com/shop/web:main-4f2a9c1", 8080),
        ("api", "registry.example.com/shop/api:main-77b01de", 8080),
        ("redis", "docker.io/library/redis:7.2.5", 6379),
    ],
    "ci": [("runner", "ghcr.io/actions/actions-runner:2.317.0", 8080)],
    "monitoring": [
        (
            "prometheus-kube-prometheus-operator",
            "quay.io/prometheus-operator/prometheus-operator:v0.75.0",
            10250,
        ),
        ("grafana", "docker.io/grafana/grafana:11.1.0", 3000),
        (
            "kube-state-metrics",
            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0",
            8080,
        ),
    ],
    "kube-system": [
        ("coredns", "registry.k8s.io/coredns/coredns:v1.11.1", 53),
        ("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.1", 10250),
    ],
    "ingress-nginx": [
        ("ingress-nginx-controller", "registry.k8s.io/ingress-nginx/controller:v1.10.1", 80)
    ],
}
NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease", *WORKLOADS]
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString alphabet

WEBHOOK_ERR = (
    'failed calling webhook "validate.kyverno.svc-fail": failed to call webhook: Post '
    '"https://kyverno-svc.kyverno.svc:443/validate/fail?timeout=10s": context deadline exceeded'
)
DISCOVERY_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" '
    'to Group "system:authenticated"'
)
PUBLIC_INFO_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
    '"system:public-info-viewer" to Group "system:unauthenticated"'
)


# ----------------------------------------------------------------------------- small helpers


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (deterministic)."""
    h = rng.getrandbits(128)
    h = (h & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    h = (h & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    s = f"{h:032x}"
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


def _us(dt: datetime) -> int:
    """Microseconds since the epoch (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (int(dt.timestamp()) * 1_000_000) + dt.microsecond


_SEC_CACHE: dict[int, str] = {}


def _micro(us: int) -> str:
    """MicroTime as the API server writes it: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    sec, frac = divmod(us, 1_000_000)
    prefix = _SEC_CACHE.get(sec)
    if prefix is None:
        if len(_SEC_CACHE) > 8192:
            _SEC_CACHE.clear()
        prefix = _SEC_CACHE[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{prefix}.{frac:06d}Z"


def _secs(us: int) -> str:
    """metav1.Time (second precision), used inside objects."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us // 1_000_000))


def _backup_stamp(us: int) -> str:
    """Lumberjack backup time layout ``2006-01-02T15-04-05.000`` (UTC)."""
    sec, frac = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(sec)) + f".{frac // 1000:03d}"


def _go_duration(ns: int) -> str:
    """Go ``time.Duration.String()`` for a positive duration in nanoseconds."""

    def trim(x: str) -> str:
        return x.rstrip("0").rstrip(".") if "." in x else x

    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return trim(f"{ns / 1e3:.3f}") + "µs"
    if ns < 1_000_000_000:
        return trim(f"{ns / 1e6:.6f}") + "ms"
    m, rest = divmod(ns, 60_000_000_000)
    s = trim(f"{rest / 1e9:.9f}") + "s"
    return f"{m}m{s}" if m else s


def _rand_name(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HASH_ALPHABET) for _ in range(n))


def _path(
    resource: str, ns: str | None = None, name: str | None = None, sub: str | None = None
) -> str:
    """requestURI path for a resource (core ``/api/v1`` or group ``/apis/G/V``)."""
    group, version, _, namespaced = RESOURCES[resource]
    p = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if ns and namespaced:
        p += f"/namespaces/{ns}"
    p += f"/{resource}"
    if name:
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    return p


def _ref(
    resource: str,
    ns: str | None = None,
    name: str | None = None,
    sub: str | None = None,
    uid: str | None = None,
    rv: str | None = None,
) -> J:
    """ObjectReference with the server's key order; empty fields omitted, core apiGroup omitted."""
    group, version, _, namespaced = RESOURCES[resource]
    ref: J = {"resource": resource}
    if resource == "namespaces" and name:
        ref["namespace"] = name  # the server fills namespace for the namespace object itself
    elif ns and namespaced:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    if uid:
        ref["uid"] = uid
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if rv:
        ref["resourceVersion"] = rv
    if sub:
        ref["subresource"] = sub
    return ref


def _qualified(resource: str) -> str:
    """``pods`` or ``deployments.apps`` as used in API error messages."""
    group = RESOURCES[resource][0]
    return f"{resource}.{group}" if group else resource


def _rb(binding: str, role: str, subject: str) -> str:
    """RBAC reason for a RoleBinding (``binding`` is ``name/namespace``)."""
    return f'RBAC: allowed by RoleBinding "{binding}" of ClusterRole "{role}" to {subject}'


def _crb(name: str, subject: str, role: str | None = None) -> str:
    """RBAC reason for a ClusterRoleBinding."""
    return (
        f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole "{role or name}" to {subject}'
    )


def _conflict_msg(qualified: str, name: str) -> str:
    return (
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def _ok(code: int = 200) -> J:
    return {"metadata": {}, "code": code}


def _failure(code: int, reason: str, message: str, details: J | None = None) -> J:
    st: J = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


def _details(resource: str, name: str | None = None, **extra: Any) -> J:
    d: J = {}
    if name:
        d["name"] = name
    group = RESOURCES[resource][0]
    if group:
        d["group"] = group
    d["kind"] = resource
    d.update(extra)
    return d


def _status_object(st: J) -> J:
    """The Status body a RequestResponse-level failure carries as responseObject."""
    return {"kind": "Status", "apiVersion": "v1", **st}


# ----------------------------------------------------------------------------- actors


class _Actor:
    """A client identity: UserInfo, source IPs and user agent."""

    __slots__ = ("name", "user", "ips", "ua", "peer", "kind")

    def __init__(self, kind: str, user: J, ips: list[str], ua: str, peer: str | None = None):
        self.kind = kind
        self.name = user.get("username", "")
        self.user = user
        self.ips = ips
        self.ua = ua
        self.peer = peer  # a proxy in front of the apiserver: sometimes sourceIPs = [client, peer]

    def source_ips(self, rng: random.Random) -> list[str]:
        ip = self.ips[0] if len(self.ips) == 1 else rng.choice(self.ips)
        if self.peer and rng.random() < 0.3:
            return [ip, self.peer]
        return [ip]


def _sa_user(rng: random.Random, ns: str, name: str, pod: tuple[str, str, str] | None = None) -> J:
    u: J = {
        "username": f"system:serviceaccount:{ns}:{name}",
        "uid": _uuid(rng),
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{ns}",
            "system:authenticated",
        ],
    }
    if pod:  # bound token of a pod: 1.30 adds these extras (keys sorted like a Go map)
        pod_name, pod_uid, node = pod
        u["extra"] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={_uuid(rng)}"],
            "authentication.kubernetes.io/node-name": [node],
            "authentication.kubernetes.io/node-uid": [_uuid(rng)],
            "authentication.kubernetes.io/pod-name": [pod_name],
            "authentication.kubernetes.io/pod-uid": [pod_uid],
        }
    return u


# ----------------------------------------------------------------------------- requests


class _Req:
    """One API request; expands into 1-3 audit events (stages)."""

    __slots__ = (
        "level",
        "audit_id",
        "uri",
        "verb",
        "user",
        "imp",
        "ips",
        "ua",
        "ref_rr",
        "ref",
        "status",
        "rs_status",
        "req_obj",
        "resp_obj",
        "ann_rs",
        "ann",
        "t0",
        "t0s",
        "stages",
    )

    def __init__(self) -> None:
        self.imp: J | None = None
        self.ref_rr: J | None = None
        self.ref: J | None = None
        self.rs_status: J | None = None
        self.req_obj: Any = None
        self.resp_obj: Any = None
        self.ann_rs: J | None = None
        self.ann: J | None = None
        self.t0s: str | None = None  # formatted requestReceivedTimestamp, cached


def _build(r: _Req, stage: str, us: int) -> J:
    """Materialise one stage of a request as an audit Event dict in the server's key order."""
    rr = stage == RR
    ev: J = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": r.level,
        "auditID": r.audit_id,
        "stage": stage,
        "requestURI": r.uri,
        "verb": r.verb,
        "user": r.user,
    }
    if r.imp is not None and not rr:  # impersonation is resolved after RequestReceived
        ev["impersonatedUser"] = r.imp
    ev["sourceIPs"] = r.ips
    ev["userAgent"] = r.ua
    ref = r.ref_rr if rr else r.ref
    if ref is not None:
        ev["objectRef"] = ref
    if not rr:
        if stage == RS:
            ev["responseStatus"] = r.rs_status
        else:
            ev["responseStatus"] = r.status
            if r.req_obj is not None:
                ev["requestObject"] = r.req_obj
            if r.resp_obj is not None and stage == RC:
                ev["responseObject"] = r.resp_obj
    if r.t0s is None:
        r.t0s = _micro(r.t0)
    ev["requestReceivedTimestamp"] = r.t0s
    ev["stageTimestamp"] = _micro(us)
    ann = r.ann_rs if stage == RS else r.ann
    if ann and not rr:  # authorization annotations are added after RequestReceived
        ev["annotations"] = ann
    return ev


# ----------------------------------------------------------------------------- the cluster


class _Cluster:
    """Simulated cluster state plus one method per kind of traffic."""

    def __init__(self, rng: random.Random, body_fraction: float):
        self.rng = rng
        self.body_fraction = body_fraction
        self.rv = 48_211_337  # etcd revision, grows with every write
        self._build_inventory()
        self._build_actors()
        # (weight, scenario) — shares of requests, roughly those of a small busy cluster
        table: list[tuple[float, Callable[[int], _Req]]] = [
            (14, self.node_lease),
            (9, self.leader_lease),
            (2, self.apiserver_lease),
            (4, self.kubelet_get_node),
            (3, self.kubelet_node_status),
            (3, self.kubelet_pod_status),
            (2, self.kubelet_get_object),
            (1.5, self.kubelet_token),
            (2, self.component_event),
            (6, self.controller_watch),
            (3, self.controller_list),
            (5, self.controller_write),
            (1.5, self.scheduler_bind),
            (6, self.probe),
            (2, self.metrics_scrape),
            (3.5, self.discovery),
            (4.5, self.human_read),
            (0.6, self.human_watch),
            (1.6, self.human_stream),
            (2.5, self.human_write),
            (0.5, self.human_scale),
            (0.6, self.human_forbidden),
            (0.8, self.auth_failure),
            (0.6, self.anonymous_probe),
            (1.0, self.impersonation),
            (0.7, self.namespace_cleanup),
            (1.0, self.rbac_admin),
            (0.15, self.panic),
        ]
        self._table = table
        self.reweight({})

    def reweight(self, factors: dict[str, float]) -> None:
        """Scale the share of some scenarios (by method name)."""
        self._cum: list[float] = []
        acc = 0.0
        for w, scenario in self._table:
            acc += w * factors.get(scenario.__name__, 1.0)
            self._cum.append(acc)
        self._scenarios = [s for _, s in self._table]

    # --- inventory -------------------------------------------------------------------------

    def _build_inventory(self) -> None:
        rng = self.rng
        self.node_uids = {n: _uuid(rng) for n in NODES}
        self.pods: list[J] = []  # {ns, deploy, name, uid, node, image, port, rs}
        self.deploys: list[J] = []
        for ns, items in WORKLOADS.items():
            for deploy, image, port in items:
                rs = _rand_name(rng, 10)
                d = {"ns": ns, "name": deploy, "uid": _uuid(rng), "image": image, "port": port}
                d["rs"] = rs
                d["replicas"] = 1 if ns in ("dev", "ci", "kube-system") else rng.choice([2, 3])
                self.deploys.append(d)
                for _ in range(d["replicas"]):
                    self.pods.append(
                        {
                            "ns": ns,
                            "deploy": deploy,
                            "name": f"{deploy}-{rs}-{_rand_name(rng, 5)}",
                            "uid": _uuid(rng),
                            "node": rng.choice(NODES),
                            "image": image,
                            "port": port,
                            "rs": rs,
                        }
                    )
        self.uids: dict[str, str] = {}  # stable uids for named objects

    def _uid(self, key: str) -> str:
        u = self.uids.get(key)
        if u is None:
            u = self.uids[key] = _uuid(self.rng)
        return u

    def _next_rv(self) -> str:
        self.rv += self.rng.randint(1, 9)
        return str(self.rv)

    def _pods_in(self, ns: str) -> list[J]:
        return [p for p in self.pods if p["ns"] == ns]

    def _pick_pod(self, ns: str | None = None) -> J:
        pods = self._pods_in(ns) if ns else self.pods
        return self.rng.choice(pods or self.pods)

    def _pick_deploy(self, ns: str | None = None) -> J:
        ds = [d for d in self.deploys if d["ns"] == ns] if ns else self.deploys
        return self.rng.choice(ds or self.deploys)

    def _configmap_names(self, ns: str) -> list[str]:
        return ["kube-root-ca.crt"] + [f"{d}-config" for d, _, _ in WORKLOADS.get(ns, [])]

    def _secret_names(self, ns: str) -> list[str]:
        names = ["db", "registry-creds"] if ns in ("prod", "staging", "dev") else []
        return names + [f"{d}-tls" for d, _, _ in WORKLOADS.get(ns, [])][:2] or ["default-token"]

    # --- actors ----------------------------------------------------------------------------

    def _build_actors(self) -> None:
        rng = self.rng
        kubectl = f"kubectl/{KV} {PLATFORM} kubernetes/{KC}"
        self.alice = _Actor(
            "human",
            {"username": "alice", "groups": ["dev-team", "system:authenticated"]},
            ["192.168.1.42"],
            kubectl,
        )
        self.bob = _Actor(
            "human",
            {"username": "bob", "groups": ["system:authenticated"]},
            ["192.168.1.57", "192.168.1.61"],
            "kubectl/v1.29.4 (darwin/arm64) kubernetes/55019c8",
            peer="10.0.0.5",
        )
        self.carol = _Actor(
            "human",
            {"username": "carol@example.com", "groups": ["system:masters", "system:authenticated"]},
            ["192.168.10.23"],
            f"kubectl/{KV} (darwin/arm64) kubernetes/{KC}",
            peer="10.0.0.5",
        )
        self.humans = [self.alice, self.alice, self.bob, self.carol]
        self.writers = [self.alice, self.alice, self.alice, self.carol, self.carol, self.bob]
        kcm = f"kube-controller-manager/{KV} {PLATFORM} kubernetes/{KC}"
        self.controllers: dict[str, _Actor] = {}
        for c in (
            "replicaset-controller",
            "deployment-controller",
            "namespace-controller",
            "endpointslice-controller",
            "generic-garbage-collector",
            "daemon-set-controller",
            "clusterrole-aggregation-controller",
            "resourcequota-controller",
        ):
            self.controllers[c] = _Actor(
                "controller",
                _sa_user(rng, "kube-system", c),
                [CONTROL_PLANE_IP],
                f"{kcm}/system:serviceaccount:kube-system:{c}",
            )
        op_pod = next(p for p in self.pods if p["deploy"] == "prometheus-kube-prometheus-operator")
        self.prom_operator = _Actor(
            "pod-sa",
            _sa_user(
                rng,
                "monitoring",
                "prometheus-kube-prometheus-operator",
                (op_pod["name"], op_pod["uid"], op_pod["node"]),
            ),
            ["10.244.2.17"],
            "Go-http-client/2.0",
        )
        self.prometheus = _Actor(
            "pod-sa",
            _sa_user(rng, "monitoring", "prometheus-kube-prometheus-prometheus"),
            ["10.244.1.9"],
            "Prometheus/2.53.0",
        )
        self.coredns = _Actor(
            "pod-sa",
            _sa_user(rng, "kube-system", "coredns"),
            ["10.244.0.4", "10.244.3.6"],
            "coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
        )
        self.kube_proxy = _Actor(
            "pod-sa",
            _sa_user(rng, "kube-system", "kube-proxy"),
            ["10.0.1.23", "10.0.1.87", "10.0.2.141", "10.0.3.12"],
            f"kube-proxy/{KV} {PLATFORM} kubernetes/{KC}",
        )
        self.deployer_user: J = {
            "username": "system:serviceaccount:ci:deployer",
            "groups": [
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated",
            ],
        }
        self.nodes = [
            _Actor(
                "node",
                {
                    "username": f"system:node:{n}",
                    "groups": ["system:nodes", "system:authenticated"],
                },
                [n.split(".")[0][3:].replace("-", ".")],
                f"kubelet/{KV} {PLATFORM} kubernetes/{KC}",
            )
            for n in NODES
        ]
        self.kcm = _Actor(
            "component",
            {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]},
            [CONTROL_PLANE_IP],
            kcm,
        )
        self.scheduler = _Actor(
            "component",
            {"username": "system:kube-scheduler", "groups": ["system:authenticated"]},
            [CONTROL_PLANE_IP],
            f"kube-scheduler/{KV} {PLATFORM} kubernetes/{KC}",
        )
        self.apiserver = _Actor(
            "component",
            {"username": "system:apiserver", "uid": _uuid(rng), "groups": ["system:masters"]},
            ["127.0.0.1"],
            f"kube-apiserver/{KV} {PLATFORM} kubernetes/{KC}",
        )
        self.apiserver_lease_name = "apiserver-" + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(26)
        )
        self.anonymous = _Actor(
            "anonymous",
            {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
            [CONTROL_PLANE_IP],
            "kube-probe/1.30",
        )

    # --- request skeleton ------------------------------------------------------------------

    def pick(self, t0: int) -> _Req:
        i = 0
        x = self.rng.random() * self._cum[-1]
        cum = self._cum
        while cum[i] < x:
            i += 1
        return self._scenarios[i](t0)

    def _latency(self, slow: float = 0.012, base_ms: float = 6.0) -> int:
        """Request latency in µs: log-normal around ``base_ms``, with a rare slow tail (>500 ms)."""
        rng = self.rng
        if rng.random() < slow:
            return int(rng.uniform(0.52, 3.5) * 1e6)
        return max(300, int(rng.lognormvariate(0.0, 0.75) * base_ms * 1000))

    def _level(self, body_ok: bool) -> str:
        if body_ok and self.rng.random() < self.body_fraction:
            return "RequestResponse" if self.rng.random() < 0.6 else "Request"
        return "Metadata"

    def _req(
        self,
        t0: int,
        actor: _Actor,
        verb: str,
        uri: str,
        *,
        ref: J | None = None,
        ref_rr: J | None = None,
        status: J | None = None,
        reason: str = "",
        decision: str | None = "allow",
        latency: int | None = None,
        long_running: tuple[int, int] | None = None,  # (RS status code, duration µs)
        imp: J | None = None,
        req_body: Callable[[], Any] | None = None,
        resp_body: Callable[[], Any] | None = None,
        extra_ann: J | None = None,
        user: J | None = None,
    ) -> _Req:
        """Assemble a request: level, stages, timings and annotations."""
        rng = self.rng
        r = _Req()
        r.audit_id = _uuid(rng)
        r.verb = verb
        r.uri = uri
        r.user = actor.user if user is None else user
        r.imp = imp
        r.ips = actor.source_ips(rng)
        r.ua = actor.ua
        r.ref = ref
        r.ref_rr = ref_rr if ref_rr is not None else ref
        r.status = status or _ok(200)
        r.t0 = t0
        r.level = self._level(ref is not None and (req_body is not None or resp_body is not None))
        if r.level != "Metadata":
            if req_body is not None:
                r.req_obj = req_body()
            if r.level == "RequestResponse" and resp_body is not None:
                r.resp_obj = resp_body() if r.status["code"] < 400 else _status_object(r.status)
        ann: J = {}
        if decision:
            ann["authorization.k8s.io/decision"] = decision
            ann["authorization.k8s.io/reason"] = reason
        if long_running:
            rs_code, dur = long_running
            rs_at = t0 + rng.randint(600, 4000)
            r.rs_status = _ok(rs_code)  # written with the headers: only the code is known yet
            if status is None:
                r.status = _ok(rs_code)
            r.ann_rs = dict(sorted(ann.items())) if ann else None
            if extra_ann:
                ann.update(extra_ann)
            r.ann = dict(sorted(ann.items())) if ann else None
            r.stages = [(t0, RR), (rs_at, RS), (rs_at + dur, RC)]
            return r
        lat = latency if latency is not None else self._latency()
        if extra_ann:
            ann.update(extra_ann)
        if lat > 500_000:  # apiserver adds latency breakdown annotations above 500 ms
            webhook = "failed calling webhook" in r.status.get("message", "")
            ann.update(self._latency_annotations(lat, verb, webhook))
        r.ann = dict(sorted(ann.items())) if ann else None
        r.stages = [(t0, RR), (t0 + lat, RC)]
        return r

    def _latency_annotations(self, lat_us: int, verb: str, webhook: bool) -> J:
        rng = self.rng
        total = lat_us * 1000 + rng.randint(0, 999)
        etcd = int(total * rng.uniform(0.55, 0.95)) if not webhook else rng.randint(2, 9) * 10**6
        out = {
            "apiserver.latency.k8s.io/etcd": _go_duration(etcd),
            "apiserver.latency.k8s.io/response-write": _go_duration(rng.randint(900, 40_000)),
            "apiserver.latency.k8s.io/serialize-response-object": _go_duration(
                rng.randint(20_000, 9_000_000)
            ),
            "apiserver.latency.k8s.io/total": _go_duration(total),
            "apiserver.latency.k8s.io/transform-response-object": _go_duration(
                rng.randint(500, 90_000)
            ),
        }
        if verb == "list":
            out["apiserver.latency.k8s.io/decode-response-object"] = _go_duration(
                rng.randint(100_000, 50_000_000)
            )
        if webhook:  # the time went into a validating admission webhook call
            out["apiserver.latency.k8s.io/validating-webhook"] = _go_duration(total - etcd - 10**6)
        if rng.random() < 0.3:
            out["apiserver.latency.k8s.io/apf-queue-wait"] = _go_duration(
                rng.randint(1_000, 3_000_000)
            )
        return out

    # --- object bodies ---------------------------------------------------------------------

    def _meta(self, ns: str | None, name: str, t_us: int, server: bool, **more: Any) -> J:
        m: J = {"name": name}
        if ns:
            m["namespace"] = ns
        if server:
            m["uid"] = self._uid(f"{ns}/{name}")
            m["resourceVersion"] = str(self.rv)
            m["creationTimestamp"] = _secs(t_us - 86_400_000_000 * self.rng.randint(1, 40))
        else:
            m["creationTimestamp"] = None
        m.update(more)
        return m

    def _managed(
        self, manager: str, t_us: int, fields: J, op: str = "Update", api: str = "v1"
    ) -> J:
        return {
            "manager": manager,
            "operation": op,
            "apiVersion": api,
            "time": _secs(t_us),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }

    def _pod(self, p: J, t_us: int, in_list: bool = False) -> J:
        ns, name, node = p["ns"], p["name"], p["node"]
        cname = p["deploy"].split("-")[0] if p["deploy"].startswith("prom") else p["deploy"]
        labels = {"app.kubernetes.io/name": p["deploy"], "pod-template-hash": p["rs"]}
        rng = self.rng
        ip = f"10.244.{NODES.index(node)}.{rng.randint(2, 250)}"
        started = _secs(t_us - 3_600_000_000 * rng.randint(1, 300))
        meta = {
            "name": name,
            "generateName": f"{p['deploy']}-{p['rs']}-",
            "namespace": ns,
            "uid": p["uid"],
            "resourceVersion": str(self.rv - rng.randint(0, 5000)),
            "creationTimestamp": started,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{p['deploy']}-{p['rs']}",
                    "uid": self._uid(f"{ns}/rs/{p['deploy']}"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                self._managed(
                    "kube-controller-manager",
                    t_us,
                    {
                        "f:metadata": {
                            "f:generateName": {},
                            "f:labels": {
                                ".": {},
                                "f:app.kubernetes.io/name": {},
                                "f:pod-template-hash": {},
                            },
                            "f:ownerReferences": {".": {}, f'k:{{"uid":"{p["uid"]}"}}': {}},
                        },
                        "f:spec": {
                            "f:containers": {
                                f'k:{{"name":"{cname}"}}': {".": {}, "f:image": {}, "f:name": {}}
                            },
                            "f:dnsPolicy": {},
                            "f:restartPolicy": {},
                            "f:schedulerName": {},
                        },
                    },
                ),
                self._managed(
                    "kubelet",
                    t_us,
                    {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:podIP": {}}},
                    op="Update",
                ),
            ],
        }
        pod: J = {} if in_list else {"kind": "Pod", "apiVersion": "v1"}
        pod["metadata"] = meta
        pod["spec"] = {
            "volumes": [
                {
                    "name": f"kube-api-access-{_rand_name(rng, 5)}",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
            "containers": [
                {
                    "name": cname,
                    "image": p["image"],
                    "ports": [{"name": "http", "containerPort": p["port"], "protocol": "TCP"}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {
                            "name": "POD_NAME",
                            "valueFrom": {
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}
                            },
                        },
                    ],
                    "resources": {
                        "limits": {"memory": "512Mi"},
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": p["port"], "scheme": "HTTP"},
                        "timeoutSeconds": 1,
                        "periodSeconds": 10,
                        "successThreshold": 1,
                        "failureThreshold": 3,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": node,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        }
        pod["status"] = {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "hostIP": node.split(".")[0][3:].replace("-", "."),
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "containerStatuses": [
                {
                    "name": cname,
                    "state": {"running": {"startedAt": started}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": rng.choice([0, 0, 0, 1, 2]),
                    "image": p["image"],
                    "imageID": p["image"].split(":")[0]
                    + "@sha256:"
                    + f"{rng.getrandbits(256):064x}",
                    "containerID": f"containerd://{rng.getrandbits(256):064x}",
                    "started": True,
                }
            ],
            "qosClass": "Burstable",
        }
        return pod

    def _configmap(self, ns: str, name: str, t_us: int, server: bool) -> J:
        rng = self.rng
        lines = [
            "server:",
            f"  port: {rng.choice([8080, 8443, 9000])}",
            f"  workers: {rng.randint(2, 16)}",
            "  shutdownTimeout: 30s",
            "database:",
            f"  host: postgres.{ns}.svc.cluster.local",
            "  pool:",
            f"    maxOpen: {rng.randint(10, 50)}",
            "    maxIdle: 5",
            "features:",
        ] + [
            f"  - flag-{_rand_name(rng, 6)}: {rng.choice(['true', 'false'])}"
            for _ in range(rng.randint(4, 30))
        ]
        return {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": self._meta(
                ns, name, t_us, server, labels={"app.kubernetes.io/part-of": "shop"}
            ),
            "data": {
                "app.yaml": "\n".join(lines) + "\n",
                "LOG_LEVEL": rng.choice(["info", "debug", "warn"]),
                "TZ": "UTC",
            },
        }

    def _secret(self, ns: str, name: str, t_us: int, server: bool) -> J:
        rng = self.rng

        def b64(s: str) -> str:
            return base64.b64encode(s.encode()).decode()

        pw = "".join(
            rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789")
            for _ in range(24)
        )
        if name.endswith("-tls"):  # cert-manager style TLS secret (fake PEM)

            def pem(label: str, n: int) -> str:
                body = base64.b64encode(rng.randbytes(n)).decode()
                rows = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
                return f"-----BEGIN {label}-----\n{rows}\n-----END {label}-----\n"

            data = {
                "ca.crt": b64(pem("CERTIFICATE", 420)),
                "tls.crt": b64(pem("CERTIFICATE", 560)),
                "tls.key": b64(pem("EC PRIVATE KEY", 121)),
            }
            kind = "kubernetes.io/tls"
        else:
            data = {
                "password": b64(pw),
                "url": b64(f"postgres://app:{pw}@postgres.{ns}.svc:5432/shop?sslmode=require"),
                "username": b64("app"),
            }
            kind = "Opaque"
        return {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": self._meta(ns, name, t_us, server),
            "data": data,
            "type": kind,
        }

    def _deployment(self, d: J, t_us: int, server: bool, in_list: bool = False) -> J:
        ns, name = d["ns"], d["name"]
        labels = {"app.kubernetes.io/name": name}
        dep: J = {} if in_list else {"kind": "Deployment", "apiVersion": "apps/v1"}
        meta = self._meta(ns, name, t_us, server, labels=labels)
        if server:
            meta["generation"] = self.rng.randint(1, 40)
            meta["annotations"] = {
                "deployment.kubernetes.io/revision": str(self.rng.randint(1, 30))
            }
        dep["metadata"] = meta
        dep["spec"] = {
            "replicas": d["replicas"],
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": d["image"],
                            "ports": [
                                {"name": "http", "containerPort": d["port"], "protocol": "TCP"}
                            ],
                            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {},
                    "schedulerName": "default-scheduler",
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        }
        if server:
            ts = _secs(t_us)
            dep["status"] = {
                "observedGeneration": meta["generation"],
                "replicas": d["replicas"],
                "updatedReplicas": d["replicas"],
                "readyReplicas": d["replicas"],
                "availableReplicas": d["replicas"],
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "lastUpdateTime": ts,
                        "lastTransitionTime": ts,
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "lastUpdateTime": ts,
                        "lastTransitionTime": ts,
                        "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{name}-{d["rs"]}" has successfully progressed.',
                    },
                ],
            }
        return dep

    def _lease(self, ns: str, name: str, holder: str, t_us: int, secs: int) -> J:
        return {
            "kind": "Lease",
            "apiVersion": "coordination.k8s.io/v1",
            "metadata": self._meta(ns, name, t_us, True),
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": secs,
                "acquireTime": _micro(t_us - 86_400_000_000),
                "renewTime": _micro(t_us),
                "leaseTransitions": 3,
            },
        }

    def _pod_list(self, ns: str | None, t_us: int) -> J:
        """A PodList of 8-30 pods (~30-100 KB) — the occasional huge responseObject."""
        pods = self._pods_in(ns) if ns else self.pods
        n = self.rng.randint(8, 26)
        items = [
            self._pod(pods[i % len(pods)] if pods else self.pods[i], t_us, True) for i in range(n)
        ]
        return {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def _small_list(self, resource: str, ns: str | None, t_us: int) -> J:
        group, version, kind, _ = RESOURCES[resource]
        api = f"{group}/{version}" if group else version
        items: list[J] = []
        if resource == "deployments":
            items = [
                self._deployment(d, t_us, True, True) for d in self.deploys if ns in (None, d["ns"])
            ]
        elif resource in ("configmaps", "secrets") and ns:
            make, names = (
                (self._configmap, self._configmap_names(ns))
                if resource == "configmaps"
                else (self._secret, self._secret_names(ns))
            )
            for n in names:
                item = make(ns, n, t_us, True)
                del item["kind"], item["apiVersion"]  # list items carry no kind/apiVersion
                items.append(item)
        return {
            "kind": f"{kind}List",
            "apiVersion": api,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def _node_status_patch(self, t_us: int) -> J:
        now = _secs(t_us)
        conds = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        return {
            "status": {
                "$setElementOrder/conditions": [{"type": c} for c in conds],
                "conditions": [{"lastHeartbeatTime": now, "type": c} for c in conds],
            }
        }

    # --- authorization ---------------------------------------------------------------------

    def _authz(self, actor: _Actor, verb: str, resource: str, ns: str | None) -> tuple[bool, str]:
        """(allowed, RBAC reason) for the human actors."""
        read = verb in ("get", "list", "watch")
        if actor is self.carol:
            return True, ""  # system:masters short-circuits RBAC with an empty reason
        if actor is self.alice:
            if ns in ("dev", "staging", "ci"):
                return True, (
                    f'RBAC: allowed by RoleBinding "dev-team-edit/{ns}" of ClusterRole "edit" '
                    'to Group "dev-team"'
                )
            if read and ns and resource != "secrets":
                return True, (
                    'RBAC: allowed by ClusterRoleBinding "dev-team-view" of ClusterRole "view" '
                    'to Group "dev-team"'
                )
            return False, ""
        if actor is self.bob:
            if read and ns in ("staging", "dev") and resource != "secrets":
                return True, _rb(f"bob-view/{ns}", "view", 'User "bob"')
            return False, ""
        return False, ""

    def _forbidden(
        self,
        username: str,
        verb: str,
        resource: str,
        ns: str | None,
        name: str | None,
        sub: str | None = None,
    ) -> J:
        group = RESOURCES[resource][0]
        what = f"{resource}/{sub}" if sub else resource
        subject = f'{_qualified(resource)} "{name}"' if name else _qualified(resource)
        scope = (
            f'in the namespace "{ns}"' if ns and RESOURCES[resource][3] else "at the cluster scope"
        )
        msg = (
            f'{subject} is forbidden: User "{username}" cannot {verb} resource "{what}" '
            f'in API group "{group}" {scope}'
        )
        return _failure(403, "Forbidden", msg, _details(resource, name))

    # --- scenarios: nodes and control plane ------------------------------------------------

    def node_lease(self, t0: int) -> _Req:
        i = self.rng.randrange(len(NODES))
        node, actor = NODES[i], self.nodes[i]
        rv = self._next_rv()
        conflict = self.rng.random() < 0.004
        status = (
            _failure(
                409,
                "Conflict",
                _conflict_msg("leases.coordination.k8s.io", node),
                _details("leases", node),
            )
            if conflict
            else None
        )
        return self._req(
            t0,
            actor,
            "update",
            _path("leases", "kube-node-lease", node) + "?timeout=10s",
            ref=_ref("leases", "kube-node-lease", node, uid=self._uid("lease/" + node), rv=rv),
            ref_rr=_ref("leases", "kube-node-lease", node),
            status=status,
            req_body=lambda: self._lease("kube-node-lease", node, node, t0, 40),
            resp_body=lambda: self._lease("kube-node-lease", node, node, t0, 40),
        )

    def leader_lease(self, t0: int) -> _Req:
        rng = self.rng
        actor, name, reason = rng.choice(
            [
                (
                    self.kcm,
                    "kube-controller-manager",
                    _crb("system:kube-controller-manager", 'User "system:kube-controller-manager"'),
                ),
                (
                    self.scheduler,
                    "kube-scheduler",
                    'RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole '
                    '"system:kube-scheduler" to User "system:kube-scheduler"',
                ),
            ]
        )
        ua_actor = _Actor(actor.kind, actor.user, actor.ips, actor.ua + "/leader-election")
        holder = f"ip-10-0-0-10.{REGION}.compute.internal_{self._uid('holder/' + name)}"
        verb = "get" if rng.random() < 0.25 else "update"
        rv = self._next_rv() if verb == "update" else None
        return self._req(
            t0,
            ua_actor,
            verb,
            _path("leases", "kube-system", name) + "?timeout=5s",
            ref=_ref(
                "leases", "kube-system", name, uid=self._uid("lease/" + name) if rv else None, rv=rv
            ),
            ref_rr=_ref("leases", "kube-system", name),
            reason=reason,
            req_body=(lambda: self._lease("kube-system", name, holder, t0, 15)) if rv else None,
            resp_body=lambda: self._lease("kube-system", name, holder, t0, 15),
        )

    def apiserver_lease(self, t0: int) -> _Req:
        name = self.apiserver_lease_name
        rv = self._next_rv()
        return self._req(
            t0,
            self.apiserver,
            "update",
            _path("leases", "kube-system", name),
            ref=_ref("leases", "kube-system", name, uid=self._uid("lease/" + name), rv=rv),
            ref_rr=_ref("leases", "kube-system", name),
            req_body=lambda: self._lease("kube-system", name, name, t0, 3600),
        )

    def kubelet_get_node(self, t0: int) -> _Req:
        i = self.rng.randrange(len(NODES))
        node = NODES[i]
        return self._req(
            t0,
            self.nodes[i],
            "get",
            _path("nodes", None, node) + "?resourceVersion=0&timeout=10s",
            ref=_ref("nodes", None, node),
            latency=self._latency(base_ms=1.5),
        )

    def kubelet_node_status(self, t0: int) -> _Req:
        i = self.rng.randrange(len(NODES))
        node = NODES[i]
        return self._req(
            t0,
            self.nodes[i],
            "patch",
            _path("nodes", None, node, "status") + "?timeout=10s",
            ref=_ref("nodes", None, node, "status"),
            req_body=lambda: self._node_status_patch(t0),
        )

    def kubelet_pod_status(self, t0: int) -> _Req:
        p = self._pick_pod()
        i = NODES.index(p["node"])
        return self._req(
            t0,
            self.nodes[i],
            "patch",
            _path("pods", p["ns"], p["name"], "status"),
            ref=_ref("pods", p["ns"], p["name"], "status"),
            req_body=lambda: {
                "metadata": {"uid": p["uid"]},
                "status": {
                    "$setElementOrder/conditions": [
                        {"type": t}
                        for t in (
                            "PodReadyToStartContainers",
                            "Initialized",
                            "Ready",
                            "ContainersReady",
                            "PodScheduled",
                        )
                    ],
                    "conditions": [
                        {"lastTransitionTime": _secs(t0), "status": "True", "type": "Ready"}
                    ],
                },
            },
            resp_body=lambda: self._pod(p, t0),
            extra_ann={"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}
            if p["ns"] in ("prod", "staging", "dev")
            else None,
        )

    def kubelet_get_object(self, t0: int) -> _Req:
        p = self._pick_pod()
        i = NODES.index(p["node"])
        rng = self.rng
        if rng.random() < 0.5:
            resource, name = "configmaps", rng.choice(self._configmap_names(p["ns"]))
            body = lambda: self._configmap(p["ns"], name, t0, True)  # noqa: E731
        else:
            resource, name = "secrets", rng.choice(self._secret_names(p["ns"]))
            body = lambda: self._secret(p["ns"], name, t0, True)  # noqa: E731
        status = None
        if rng.random() < 0.06:
            status = _failure(
                404, "NotFound", f'{resource} "{name}" not found', _details(resource, name)
            )
        return self._req(
            t0,
            self.nodes[i],
            "get",
            _path(resource, p["ns"], name),
            ref=_ref(resource, p["ns"], name),
            status=status,
            resp_body=body,
        )

    def kubelet_token(self, t0: int) -> _Req:
        p = self._pick_pod()
        i = NODES.index(p["node"])
        sa = "prometheus-kube-prometheus-operator" if p["ns"] == "monitoring" else "default"
        return self._req(
            t0,
            self.nodes[i],
            "create",
            _path("serviceaccounts", p["ns"], sa, "token"),
            ref=_ref("serviceaccounts", p["ns"], sa, "token"),
            status=_ok(201),
        )  # never a body: TokenRequest responses hold credentials

    def component_event(self, t0: int) -> _Req:
        rng = self.rng
        p = self._pick_pod()
        node_i = NODES.index(p["node"])
        name = f"{p['name']}.{rng.getrandbits(64):016x}"[:63]
        reason, msg = rng.choice(
            [
                ("Pulled", f'Container image "{p["image"]}" already present on machine'),
                ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                ("BackOff", "Back-off restarting failed container"),
                ("Started", f"Started container {p['deploy']}"),
            ]
        )
        body = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": p["ns"], "creationTimestamp": None},
            "involvedObject": {
                "kind": "Pod",
                "namespace": p["ns"],
                "name": p["name"],
                "uid": p["uid"],
                "apiVersion": "v1",
                "fieldPath": f"spec.containers{{{p['deploy']}}}",
            },
            "reason": reason,
            "message": msg,
            "source": {"component": "kubelet", "host": p["node"]},
            "firstTimestamp": _secs(t0),
            "lastTimestamp": _secs(t0),
            "count": 1,
            "type": "Warning" if reason in ("Unhealthy", "BackOff") else "Normal",
            "eventTime": None,
            "reportingComponent": "kubelet",
            "reportingInstance": p["node"],
        }
        return self._req(
            t0,
            self.nodes[node_i],
            "create",
            _path("events", p["ns"]),
            ref=_ref("events", p["ns"], name),
            ref_rr=_ref("events", p["ns"]),
            status=_ok(201),
            req_body=lambda: body,
        )

    def controller_watch(self, t0: int) -> _Req:
        """Informer watches: minutes long, RS 200 then RC when the server times the watch out."""
        rng = self.rng
        choice = rng.random()
        ns: str | None = None
        name: str | None = None
        selector = ""
        if choice < 0.35:
            c = rng.choice(list(self.controllers.values()))
            actor = c
            resource = rng.choice(
                ["replicasets", "deployments", "pods", "endpointslices", "namespaces", "daemonsets"]
            )
        elif choice < 0.55:
            i = rng.randrange(len(NODES))
            actor = self.nodes[i]
            kind = rng.random()
            if kind < 0.4:
                resource, selector = "pods", f"fieldSelector=spec.nodeName%3D{NODES[i]}&"
            elif kind < 0.7:
                resource, name = "nodes", NODES[i]
                selector = f"fieldSelector=metadata.name%3D{name}&"
            else:
                p = self._pick_pod()
                resource, ns = "configmaps", p["ns"]
                name = rng.choice(self._configmap_names(ns))
                selector = f"fieldSelector=metadata.name%3D{name}&"
        elif choice < 0.7:
            actor = self.scheduler
            actor = _Actor(actor.kind, actor.user, actor.ips, actor.ua + "/scheduler")
            resource = rng.choice(["pods", "nodes", "persistentvolumeclaims", "namespaces"])
        elif choice < 0.85:
            actor = self.prom_operator
            resource = rng.choice(
                ["servicemonitors", "prometheusrules", "secrets", "configmaps", "statefulsets"]
            )
            ns = "monitoring" if resource in ("secrets", "configmaps", "statefulsets") else None
        else:
            actor = rng.choice([self.coredns, self.kube_proxy])
            resource = rng.choice(["endpointslices", "services"])
        timeout = rng.randint(300, 599)  # client-go picks [minWatchTimeout, 2*minWatchTimeout)
        rv = str(self.rv - rng.randint(0, 20_000))
        uri = (
            f"{_path(resource, ns)}?allowWatchBookmarks=true&{selector}resourceVersion={rv}"
            f"&timeout={timeout // 60}m{timeout % 60}s&timeoutSeconds={timeout}&watch=true"
        )
        reason = self._component_reason(actor)
        return self._req(
            t0,
            actor,
            "watch",
            uri,
            ref=_ref(resource, ns, name),
            reason=reason,
            long_running=(200, timeout * 1_000_000 + rng.randint(1_000, 900_000)),
        )

    def _component_reason(self, actor: _Actor) -> str:
        u = actor.name
        if u.startswith("system:node:"):
            return ""  # Node authorizer allows with an empty reason
        if u.startswith("system:serviceaccount:"):
            _, _, ns, sa = u.split(":")
            if ns == "kube-system" and sa.endswith(("controller", "collector")):
                return (
                    f'RBAC: allowed by ClusterRoleBinding "system:controller:{sa}" of ClusterRole '
                    f'"system:controller:{sa}" to ServiceAccount "{sa}/{ns}"'
                )
            role = (
                "system:coredns"
                if sa == "coredns"
                else ("system:node-proxier" if sa == "kube-proxy" else sa)
            )
            return (
                f'RBAC: allowed by ClusterRoleBinding "{role}" of ClusterRole "{role}" '
                f'to ServiceAccount "{sa}/{ns}"'
            )
        if u in ("system:kube-scheduler", "system:kube-controller-manager"):
            return f'RBAC: allowed by ClusterRoleBinding "{u}" of ClusterRole "{u}" to User "{u}"'
        return ""

    def controller_list(self, t0: int) -> _Req:
        rng = self.rng
        actor = rng.choice(
            [*self.controllers.values(), self.kcm, self.prom_operator, self.scheduler]
        )
        resource = rng.choice(
            [
                "pods",
                "replicasets",
                "deployments",
                "configmaps",
                "nodes",
                "leases",
                "endpointslices",
            ]
        )
        ns = (
            "monitoring"
            if actor is self.prom_operator and resource in ("configmaps", "pods")
            else None
        )
        big = resource == "pods"
        return self._req(
            t0,
            actor,
            "list",
            _path(resource, ns) + "?limit=500&resourceVersion=0",
            ref=_ref(resource, ns),
            reason=self._component_reason(actor),
            latency=self._latency(slow=0.05, base_ms=25.0 if big else 8.0),
            resp_body=(lambda: self._pod_list(ns, t0))
            if big
            else (lambda: self._small_list(resource, ns, t0)),
        )

    def controller_write(self, t0: int) -> _Req:
        rng = self.rng
        x = rng.random()
        d = self._pick_deploy()
        if x < 0.35:  # deployment-controller updates deployment status
            actor = self.controllers["deployment-controller"]
            rv = self._next_rv()
            return self._req(
                t0,
                actor,
                "update",
                _path("deployments", d["ns"], d["name"], "status"),
                ref=_ref("deployments", d["ns"], d["name"], "status", uid=d["uid"], rv=rv),
                ref_rr=_ref("deployments", d["ns"], d["name"], "status"),
                reason=self._component_reason(actor),
                req_body=lambda: self._deployment(d, t0, True),
                resp_body=lambda: self._deployment(d, t0, True),
            )
        if x < 0.6:  # replicaset-controller creates a pod
            actor = self.controllers["replicaset-controller"]
            p = dict(self._pick_pod(d["ns"]))
            p["name"] = f"{d['name']}-{d['rs']}-{_rand_name(rng, 5)}"
            p["uid"] = _uuid(rng)
            fail = rng.random() < 0.03
            status = _ok(201)
            lat = None
            extra = {"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}
            if fail:  # a validating webhook timed out
                lat = 10_000_000 + rng.randint(1_000, 40_000)
                status = _failure(
                    500,
                    "InternalError",
                    "Internal error occurred: " + WEBHOOK_ERR,
                    {"causes": [{"message": WEBHOOK_ERR}]},
                )
            return self._req(
                t0,
                actor,
                "create",
                _path("pods", d["ns"]),
                ref=_ref("pods", d["ns"], p["name"]),
                ref_rr=_ref("pods", d["ns"]),
                status=status,
                latency=lat,
                reason=self._component_reason(actor),
                req_body=lambda: self._pod(p, t0),
                resp_body=lambda: self._pod(p, t0),
                extra_ann=extra,
            )
        if x < 0.8:  # endpointslice-controller
            actor = self.controllers["endpointslice-controller"]
            name = f"{d['name']}-{_rand_name(rng, 5)}"
            rv = self._next_rv()
            return self._req(
                t0,
                actor,
                "update",
                _path("endpointslices", d["ns"], name),
                ref=_ref("endpointslices", d["ns"], name, uid=self._uid(name), rv=rv),
                ref_rr=_ref("endpointslices", d["ns"], name),
                reason=self._component_reason(actor),
            )
        # replicaset-controller deletes a pod (scale down / rollout)
        actor = self.controllers["replicaset-controller"]
        p = self._pick_pod(d["ns"])
        return self._req(
            t0,
            actor,
            "delete",
            _path("pods", d["ns"], p["name"]),
            ref=_ref("pods", d["ns"], p["name"]),
            reason=self._component_reason(actor),
            req_body=lambda: {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": {"uid": p["uid"]},
            },
            resp_body=lambda: self._pod(p, t0),
        )

    def scheduler_bind(self, t0: int) -> _Req:
        p = self._pick_pod()
        actor = self.scheduler
        actor = _Actor(actor.kind, actor.user, actor.ips, actor.ua + "/scheduler")
        return self._req(
            t0,
            actor,
            "create",
            _path("pods", p["ns"], p["name"], "binding"),
            ref=_ref("pods", p["ns"], p["name"], "binding"),
            status=_ok(201),
            reason=self._component_reason(self.scheduler),
            req_body=lambda: {
                "kind": "Binding",
                "apiVersion": "v1",
                "metadata": {
                    "name": p["name"],
                    "namespace": p["ns"],
                    "uid": p["uid"],
                    "creationTimestamp": None,
                },
                "target": {"kind": "Node", "name": p["node"]},
            },
        )

    # --- scenarios: non-resource traffic ---------------------------------------------------

    def probe(self, t0: int) -> _Req:
        path = self.rng.choice(["/healthz", "/readyz", "/livez", "/readyz", "/healthz"])
        return self._req(
            t0,
            self.anonymous,
            "get",
            path,
            reason=PUBLIC_INFO_REASON,
            latency=self._latency(slow=0.0, base_ms=1.2),
        )

    def metrics_scrape(self, t0: int) -> _Req:
        return self._req(
            t0,
            self.prometheus,
            "get",
            "/metrics",
            reason=_crb(
                "prometheus-kube-prometheus-prometheus",
                'ServiceAccount "prometheus-kube-prometheus-prometheus/monitoring"',
            ),
            latency=self._latency(slow=0.1, base_ms=120.0),
        )

    def discovery(self, t0: int) -> _Req:
        rng = self.rng
        actor = rng.choice(
            [
                *self.humans,
                self.controllers["generic-garbage-collector"],
                self.controllers["resourcequota-controller"],
            ]
        )
        path = rng.choice(["/api", "/apis", "/apis", "/version", "/openapi/v2", "/openapi/v3"])
        if actor.kind == "human":
            path += "?timeout=32s"
        reason = (
            PUBLIC_INFO_REASON.replace("system:unauthenticated", "system:authenticated")
            if path.startswith("/version")
            else DISCOVERY_REASON
        )
        if actor is self.carol:
            reason = ""
        return self._req(
            t0,
            actor,
            "get",
            path,
            reason=reason,
            latency=self._latency(base_ms=4.0 if "openapi" not in path else 60.0),
        )

    def anonymous_probe(self, t0: int) -> _Req:
        """An unauthenticated scanner: allowed /version, forbidden elsewhere."""
        rng = self.rng
        scanner = _Actor(
            "anonymous",
            self.anonymous.user,
            ["203.0.113.45"],
            rng.choice(["curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1"]),
        )
        x = rng.random()
        if x < 0.3:
            return self._req(t0, scanner, "get", "/version", reason=PUBLIC_INFO_REASON)
        if x < 0.55:
            path = rng.choice(["/metrics", "/api/v1", "/.env", "/debug/pprof/"])
            st = _failure(
                403, "Forbidden", f'forbidden: User "system:anonymous" cannot get path "{path}"', {}
            )
            return self._req(t0, scanner, "get", path, status=st, decision="forbid")
        resource = rng.choice(["secrets", "pods", "configmaps"])
        ns = rng.choice(["kube-system", "default"])
        st = self._forbidden("system:anonymous", "list", resource, ns, None)
        return self._req(
            t0,
            scanner,
            "list",
            _path(resource, ns),
            ref=_ref(resource, ns),
            status=st,
            decision="forbid",
        )

    def auth_failure(self, t0: int) -> _Req:
        """Rejected by authentication: one lone ResponseStarted with an empty user and code 401."""
        rng = self.rng
        ua, methods = rng.choice(
            [
                (f"kubectl/{KV} {PLATFORM} kubernetes/{KC}", "bearer"),
                ("curl/8.5.0", "no credentials provided"),
                ("python-requests/2.32.3", "bearer"),
                ("Go-http-client/2.0", "x509, bearer"),
                ("kubectl/v1.29.4 (darwin/arm64) kubernetes/55019c8", "basic"),
            ]
        )
        msg = "Authentication failed, " + (
            "no credentials provided" if methods.startswith("no") else f"attempted: {methods}"
        )
        if rng.random() < 0.5:
            resource, ns = rng.choice(
                [
                    ("secrets", "kube-system"),
                    ("pods", "default"),
                    ("namespaces", None),
                    ("nodes", None),
                ]
            )
            verb, uri, ref = "list", _path(resource, ns), _ref(resource, ns)
        else:
            verb, uri, ref = "get", rng.choice(["/api", "/version", "/apis"]), None
        r = _Req()
        r.audit_id = _uuid(rng)
        r.level, r.verb, r.uri, r.user = "Metadata", verb, uri, {}
        r.ips = [rng.choice(["203.0.113.45", "198.51.100.77", "192.168.1.99", "10.244.3.31"])]
        r.ua, r.ref_rr, r.ref, r.t0 = ua, ref, ref, t0
        r.rs_status = r.status = {"metadata": {}, "message": msg, "code": 401}
        r.stages = [(t0 + rng.randint(40, 900), RS)]
        return r

    # --- scenarios: humans -----------------------------------------------------------------

    def _human_ns(self, actor: _Actor) -> str:
        rng = self.rng
        if actor is self.alice:
            return rng.choice(["dev", "dev", "dev", "staging", "ci", "prod"])
        if actor is self.bob:
            return rng.choice(["staging", "staging", "staging", "dev", "dev", "prod"])
        return rng.choice(NAMESPACES)

    def _human(
        self,
        t0: int,
        actor: _Actor,
        verb: str,
        resource: str,
        ns: str | None,
        name: str | None,
        uri: str,
        *,
        sub: str | None = None,
        ok_status: J | None = None,
        ref_rr: J | None = None,
        ref: J | None = None,
        **kw: Any,
    ) -> _Req:
        """A kubectl request: RBAC-checked; forbidden requests get 403 + decision forbid."""
        check = f"{resource}/{sub}" if sub else resource
        allowed, reason = self._authz(actor, verb, check.split("/")[0], ns)
        if not allowed:
            st = self._forbidden(actor.name, verb, resource, ns, name, sub)
            kw.pop("req_body", None)
            # a denied long-running request still gets ResponseStarted (code only) with the headers
            lr = (403, self.rng.randint(200, 2_000)) if kw.get("long_running") else None
            return self._req(
                t0,
                actor,
                verb,
                uri,
                ref=ref_rr or _ref(resource, ns, name, sub),
                status=st,
                decision="forbid",
                resp_body=kw.pop("resp_body", None),
                latency=self._latency(slow=0.0, base_ms=1.0),
                long_running=lr,
            )
        return self._req(
            t0,
            actor,
            verb,
            uri,
            ref=ref or _ref(resource, ns, name, sub),
            ref_rr=ref_rr,
            status=ok_status,
            reason=reason,
            **kw,
        )

    def human_read(self, t0: int) -> _Req:
        rng = self.rng
        actor = rng.choice(self.humans)
        ns = self._human_ns(actor)
        resource = rng.choice(
            ["pods", "pods", "deployments", "configmaps", "services", "secrets", "events"]
        )
        if rng.random() < 0.45:  # kubectl get <kind>
            uri = _path(resource, ns) + "?limit=500"
            big = resource == "pods"
            return self._human(
                t0,
                actor,
                "list",
                resource,
                ns,
                None,
                uri,
                latency=self._latency(slow=0.03, base_ms=12.0),
                resp_body=(lambda: self._pod_list(ns, t0))
                if big
                else (lambda: self._small_list(resource, ns, t0)),
            )
        status = None
        body: Callable[[], Any] | None = None
        if resource == "pods":
            p = self._pick_pod(ns)
            name = p["name"] if p["ns"] == ns else f"{ns}-debug-{_rand_name(rng, 5)}"
            body = lambda: self._pod(p, t0)  # noqa: E731
        elif resource == "deployments":
            d = self._pick_deploy(ns)
            name = d["name"]
            body = lambda: self._deployment(d, t0, True)  # noqa: E731
        elif resource == "configmaps":
            name = rng.choice(self._configmap_names(ns))
            body = lambda: self._configmap(ns, name, t0, True)  # noqa: E731
        elif resource == "secrets":
            name = rng.choice(self._secret_names(ns))
            body = lambda: self._secret(ns, name, t0, True)  # noqa: E731
        else:
            name = rng.choice([d for d, _, _ in WORKLOADS.get(ns, [("kubernetes", "", 0)])])
        if rng.random() < 0.07 or (resource == "pods" and "-debug-" in name):
            name = name if "-debug-" in name else f"{name}-{_rand_name(rng, 3)}"
            status = _failure(
                404,
                "NotFound",
                f'{_qualified(resource)} "{name}" not found',
                _details(resource, name),
            )
        return self._human(
            t0,
            actor,
            "get",
            resource,
            ns,
            name,
            _path(resource, ns, name),
            ok_status=status,
            resp_body=body,
        )

    def human_watch(self, t0: int) -> _Req:
        """``kubectl get -w``: a watch that the user ends after seconds to minutes."""
        rng = self.rng
        actor = rng.choice(self.humans)
        ns = self._human_ns(actor)
        resource = rng.choice(["pods", "deployments", "events"])
        uri = _path(resource, ns) + f"?resourceVersion={self.rv - rng.randint(0, 500)}&watch=true"
        return self._human(
            t0,
            actor,
            "watch",
            resource,
            ns,
            None,
            uri,
            long_running=(200, rng.randint(8, 240) * 1_000_000 + rng.randint(0, 999_999)),
        )

    def human_stream(self, t0: int) -> _Req:
        """exec / attach / port-forward (code 101 upgrades) and logs (200): long-running."""
        rng = self.rng
        actor = rng.choice(self.humans)
        ns = self._human_ns(actor)
        p = self._pick_pod(ns)
        ns = p["ns"]
        kind = rng.choice(["exec", "exec", "log", "log", "attach", "portforward"])
        base = _path("pods", ns, p["name"], kind)
        c = p["deploy"]
        # kubectl >=1.30 uses WebSockets (GET -> verb get) for exec; older SPDY POST -> create
        verb = (
            "get"
            if kind == "log" or (kind == "exec" and actor.ua.startswith(f"kubectl/{KV}"))
            else "create"
        )
        if kind == "exec":
            cmd = rng.choice(
                [
                    "command=sh",
                    "command=bash",
                    "command=env",
                    "command=cat&command=%2Fetc%2Fresolv.conf",
                ]
            )
            uri = f"{base}?{cmd}&container={c}&stdin=true&stdout=true&tty=true"
            code, dur = 101, rng.randint(3, 900)
        elif kind == "attach":
            uri = f"{base}?container={c}&stdin=true&stdout=true&tty=true"
            code, dur = 101, rng.randint(5, 300)
        elif kind == "portforward":
            uri = base
            code, dur = 101, rng.randint(20, 1200)
        else:
            follow = rng.random() < 0.5
            uri = (
                f"{base}?container={c}"
                + ("&follow=true" if follow else "")
                + f"&tailLines={rng.choice([10, 100, 500])}"
            )
            code, dur = 200, rng.randint(20, 600) if follow else 0
        dur_us = dur * 1_000_000 + rng.randint(2_000, 900_000)
        return self._human(
            t0, actor, verb, "pods", ns, p["name"], uri, sub=kind, long_running=(code, dur_us)
        )

    def human_write(self, t0: int) -> _Req:
        rng = self.rng
        actor = rng.choice(self.writers)
        ns = self._human_ns(actor)
        x = rng.random()
        if x < 0.3:  # kubectl create configmap/secret
            resource = rng.choice(["configmaps", "configmaps", "secrets"])
            names = (
                self._configmap_names(ns) if resource == "configmaps" else self._secret_names(ns)
            )
            exists = rng.random() < 0.15
            name = (
                rng.choice(names)
                if exists
                else f"{rng.choice(['app', 'feature', 'tmp'])}-{_rand_name(rng, 5)}"
            )
            st = (
                _failure(
                    409,
                    "AlreadyExists",
                    f'{resource} "{name}" already exists',
                    _details(resource, name),
                )
                if exists
                else _ok(201)
            )
            make = self._configmap if resource == "configmaps" else self._secret
            return self._human(
                t0,
                actor,
                "create",
                resource,
                ns,
                name,
                _path(resource, ns) + "?fieldManager=kubectl-create&fieldValidation=Strict",
                ref_rr=_ref(resource, ns),
                ok_status=st,
                req_body=lambda: make(ns, name, t0, False),
                resp_body=lambda: make(ns, name, t0, True),
            )
        if x < 0.6:  # kubectl apply (client-side): strategic-merge PATCH
            d = self._pick_deploy(ns)
            ns = d["ns"]
            invalid = rng.random() < 0.1
            image = "" if invalid else d["image"]
            st = None
            if invalid:
                field = "spec.template.spec.containers[0].image"
                st = _failure(
                    422,
                    "Invalid",
                    f'Deployment.apps "{d["name"]}" is invalid: {field}: Required value',
                    {
                        "name": d["name"],
                        "group": "apps",
                        "kind": "Deployment",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value",
                                "field": field,
                            }
                        ],
                    },
                )
            last = orjson.dumps(self._deployment(d, t0, False)).decode() + "\n"
            patch = {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last}
                },
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": d["name"]}],
                            "containers": [{"image": image, "name": d["name"]}],
                        }
                    }
                },
            }
            return self._human(
                t0,
                actor,
                "patch",
                "deployments",
                ns,
                d["name"],
                _path("deployments", ns, d["name"])
                + "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
                ok_status=st,
                req_body=lambda: patch,
                resp_body=lambda: self._deployment(d, t0, True),
            )
        if x < 0.8:  # kubectl edit/replace configmap: PUT, sometimes a 409 Conflict
            name = rng.choice(self._configmap_names(ns))
            conflict = rng.random() < 0.12
            rv = self._next_rv()
            st = (
                _failure(
                    409,
                    "Conflict",
                    _conflict_msg("configmaps", name),
                    _details("configmaps", name),
                )
                if conflict
                else None
            )
            return self._human(
                t0,
                actor,
                "update",
                "configmaps",
                ns,
                name,
                _path("configmaps", ns, name) + "?fieldManager=kubectl-edit&fieldValidation=Strict",
                ref=_ref("configmaps", ns, name, uid=self._uid(f"{ns}/{name}"), rv=rv),
                ref_rr=_ref("configmaps", ns, name),
                ok_status=st,
                req_body=lambda: self._configmap(ns, name, t0, True),
                resp_body=lambda: self._configmap(ns, name, t0, True),
            )
        # kubectl delete pod
        p = self._pick_pod(ns)
        return self._human(
            t0,
            actor,
            "delete",
            "pods",
            p["ns"],
            p["name"],
            _path("pods", p["ns"], p["name"]),
            req_body=lambda: {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "propagationPolicy": "Background",
            },
            resp_body=lambda: self._pod(p, t0),
        )

    def human_scale(self, t0: int) -> _Req:
        rng = self.rng
        actor = rng.choice(self.writers)
        d = self._pick_deploy(self._human_ns(actor))
        replicas = rng.randint(0, 6)
        return self._human(
            t0,
            actor,
            "patch",
            "deployments",
            d["ns"],
            d["name"],
            _path("deployments", d["ns"], d["name"], "scale"),
            sub="scale",
            req_body=lambda: {"spec": {"replicas": replicas}},
            resp_body=lambda: {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": self._meta(d["ns"], d["name"], t0, True),
                "spec": {"replicas": replicas},
                "status": {
                    "replicas": d["replicas"],
                    "selector": f"app.kubernetes.io/name={d['name']}",
                },
            },
        )

    def human_forbidden(self, t0: int) -> _Req:
        """Typical denials: bob reading prod secrets, listing nodes, exec into prod."""
        rng = self.rng
        x = rng.random()
        if x < 0.5:
            name = "db"
            return self._human(
                t0, self.bob, "get", "secrets", "prod", name, _path("secrets", "prod", name)
            )
        if x < 0.75:
            actor = rng.choice([self.bob, self.alice])
            return self._human(
                t0, actor, "list", "nodes", None, None, _path("nodes") + "?limit=500"
            )
        p = self._pick_pod("prod")
        uri = (
            _path("pods", "prod", p["name"], "exec")
            + f"?command=sh&container={p['deploy']}&stdin=true&stdout=true&tty=true"
        )
        return self._human(
            t0,
            self.bob,
            "create",
            "pods",
            "prod",
            p["name"],
            uri,
            sub="exec",
            long_running=(101, 0),
        )

    def impersonation(self, t0: int) -> _Req:
        """alice ``--as=system:serviceaccount:ci:deployer``; carol ``--as=bob``."""
        rng = self.rng
        if rng.random() < 0.7:
            ns = rng.choice(["ci", "ci", "staging", "prod"])
            d = self._pick_deploy(ns if ns != "ci" else "ci")
            ok = ns in ("ci", "staging")
            verb = rng.choice(["get", "patch", "list"])
            name = None if verb == "list" else d["name"]
            uri = _path("deployments", ns, name)
            if verb == "patch":
                uri += "?fieldManager=kubectl-patch"
            if ok:
                st, decision = None, "allow"
                reason = _rb(f"deployer/{ns}", "edit", 'ServiceAccount "deployer/ci"')
            else:
                st, decision, reason = (
                    self._forbidden(self.deployer_user["username"], verb, "deployments", ns, name),
                    "forbid",
                    "",
                )
            return self._req(
                t0,
                self.alice,
                verb,
                uri,
                ref=_ref("deployments", ns, name),
                status=st,
                decision=decision,
                reason=reason,
                imp=self.deployer_user,
                req_body=(
                    lambda: {
                        "spec": {
                            "template": {
                                "metadata": {
                                    "annotations": {"kubectl.kubernetes.io/restartedAt": _secs(t0)}
                                }
                            }
                        }
                    }
                )
                if verb == "patch"
                else None,
            )
        ns = rng.choice(["staging", "prod"])
        ok = ns == "staging"
        st = None if ok else self._forbidden("bob", "list", "pods", ns, None)
        return self._req(
            t0,
            self.carol,
            "list",
            _path("pods", ns) + "?limit=500",
            ref=_ref("pods", ns),
            status=st,
            decision="allow" if ok else "forbid",
            reason=_rb(f"bob-view/{ns}", "view", 'User "bob"') if ok else "",
            imp={"username": "bob", "groups": ["system:authenticated"]},
        )

    def namespace_cleanup(self, t0: int) -> _Req:
        """carol deletes a preview namespace; namespace-controller empties it (deletecollection)."""
        rng = self.rng
        ns = f"preview-{rng.randint(100, 999)}"
        if rng.random() < 0.2:
            return self._req(
                t0,
                self.carol,
                "delete",
                _path("namespaces", None, ns),
                ref=_ref("namespaces", None, ns),
                req_body=lambda: {
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )
        actor = self.controllers["namespace-controller"]
        resource = rng.choice(
            [
                "configmaps",
                "secrets",
                "pods",
                "deployments",
                "replicasets",
                "serviceaccounts",
                "leases",
                "roles",
                "rolebindings",
                "jobs",
                "ingresses",
            ]
        )
        return self._req(
            t0,
            actor,
            "deletecollection",
            _path(resource, ns),
            ref=_ref(resource, ns),
            reason=self._component_reason(actor),
            latency=self._latency(slow=0.05, base_ms=9.0),
            req_body=lambda: {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "propagationPolicy": "Background",
            },
        )

    def rbac_admin(self, t0: int) -> _Req:
        """carol managing ClusterRoles/ClusterRoleBindings; aggregation controller updates."""
        rng = self.rng
        x = rng.random()
        if x < 0.25:
            name = rng.choice(["admin", "edit", "view"])
            actor = self.controllers["clusterrole-aggregation-controller"]
            return self._req(
                t0,
                actor,
                "patch",
                _path("clusterroles", None, name),
                ref=_ref("clusterroles", None, name),
                reason=self._component_reason(actor),
            )
        resource = rng.choice(["clusterroles", "clusterrolebindings"])
        name = rng.choice(["pod-reader", "ci-deployer", "monitoring-reader", "namespace-admin"])
        body = (
            {
                "kind": "ClusterRole",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": {"name": name, "creationTimestamp": None},
                "rules": [
                    {
                        "verbs": ["get", "list", "watch"],
                        "apiGroups": [""],
                        "resources": ["pods", "pods/log"],
                    },
                    {
                        "verbs": ["get", "list"],
                        "apiGroups": ["apps"],
                        "resources": ["deployments", "replicasets"],
                    },
                ],
            }
            if resource == "clusterroles"
            else {
                "kind": "ClusterRoleBinding",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": {"name": name, "creationTimestamp": None},
                "subjects": [
                    {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "dev-team"}
                ],
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
            }
        )
        verb = rng.choice(["get", "list", "create", "create", "delete"])
        if verb == "list":
            return self._req(
                t0,
                self.carol,
                "list",
                _path(resource) + "?limit=500",
                ref=_ref(resource),
                resp_body=lambda: self._small_list(resource, None, t0),
            )
        if verb == "create":
            exists = rng.random() < 0.2
            st = (
                _failure(
                    409,
                    "AlreadyExists",
                    f'{_qualified(resource)} "{name}" already exists',
                    _details(resource, name),
                )
                if exists
                else _ok(201)
            )
            return self._req(
                t0,
                self.carol,
                "create",
                _path(resource) + "?fieldManager=kubectl-create&fieldValidation=Strict",
                ref=_ref(resource, None, name),
                ref_rr=_ref(resource),
                status=st,
                req_body=lambda: body,
                resp_body=lambda: body,
            )
        return self._req(
            t0,
            self.carol,
            verb,
            _path(resource, None, name),
            ref=_ref(resource, None, name),
            resp_body=lambda: body,
        )

    def panic(self, t0: int) -> _Req:
        """A handler panic: RequestReceived then a Panic stage with 500 InternalError."""
        rng = self.rng
        actor = rng.choice(
            [self.controllers["generic-garbage-collector"], self.alice, self.prom_operator]
        )
        resource = rng.choice(["pods", "configmaps", "servicemonitors"])
        ns = "monitoring" if actor is self.prom_operator else rng.choice(["dev", "prod"])
        r = self._req(
            t0,
            actor,
            "list",
            _path(resource, ns) + "?limit=500",
            ref=_ref(resource, ns),
            reason=self._component_reason(actor)
            or _rb(f"dev-team-edit/{ns}", "edit", 'Group "dev-team"'),
            status=_failure(
                500,
                "InternalError",
                "APIServer panic'd: runtime error: invalid memory address or nil pointer "
                "dereference",
            ),
        )
        r.stages = [(t0, RR), (r.stages[-1][0], PANIC)]
        r.resp_obj = None
        return r


# ----------------------------------------------------------------------------- a big fleet


class _Fleet:
    """Real traffic's cardinality over the scenarios' shapes: the scenarios model a small
    cluster, whose few hundred names, URIs and clients make every index look good. A busy
    cluster's log holds mostly values seen once: Events and Pods of churning ReplicaSets with
    generated names, reads with resourceVersion, lists paged with continue tokens, watches
    with their own timeouts, thousands of client IPs, and bound service-account tokens that
    rotate, each with its own credential id.

    Applied to each request before its stages are built (so they agree), with the stage
    RequestReceived omitted as production policies do.
    """

    # A big cluster's mix: fewer lease renewals and probes per request, more operators'
    # reads and writes, Events and pod status updates.
    MIX = {
        "node_lease": 0.4,
        "leader_lease": 0.2,
        "kubelet_get_node": 0.4,
        "kubelet_node_status": 0.5,
        "probe": 0.4,
        "metrics_scrape": 0.5,
        "component_event": 3.0,
        "kubelet_pod_status": 2.0,
        "controller_list": 1.5,
        "human_read": 2.0,
    }
    CHURN = 0.95  # share of named objects given a generated name of their own
    OPERATORS = 0.9  # share of service-account and human requests made by the fleet's pods
    NEW_TOKEN = 0.5  # share of a pod's requests made with a freshly minted token
    IPS = 1600  # pod IPs the fleet's clients call from (and one per node)
    ACCOUNTS = 1600  # the fleet's service accounts (one pod IP each), in 60 namespaces
    NODES = 400

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ips = [
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            for _ in range(self.IPS)
        ]
        self.accounts = [
            _sa_user(rng, f"team-{k % 60:02d}", f"{rng.choice(_OPERATOR_NAMES)}-{k}")
            for k in range(self.ACCOUNTS)
        ]
        self.nodes = []  # (user, IP, name, X.509 credential id)
        for _ in range(self.NODES):
            ip = f"10.{rng.randint(0, 63)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            name = f"ip-{ip.replace('.', '-')}.eu-west-1.compute.internal"
            user = {
                "username": f"system:node:{name}",
                "groups": ["system:nodes", "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/credential-id": [
                        f"X509SHA256={rng.getrandbits(256):064x}"
                    ]
                },
            }
            self.nodes.append((user, ip, name))
        self.tokens: dict[str, str] = {}  # username → the token its pod uses now
        self.rv = 48_211_337

    def apply(self, r: _Req) -> None:
        rng = self.rng
        self.rv += rng.randint(1, 40)
        if r.user.get("username", "").startswith("system:node:"):
            user, ip, name = self.nodes[rng.randrange(self.NODES)]
            old = r.user["username"].removeprefix("system:node:")
            r.user, r.ips = user, [ip]
            r.uri = r.uri.replace(old, name)
            for attr in ("ref", "ref_rr"):
                ref = getattr(r, attr)
                if ref is not None and ref.get("name") == old:
                    setattr(r, attr, {**ref, "name": name})
            self._query_string(r)
            return  # a node's own objects keep its name
        ref = r.ref if r.ref is not None else r.ref_rr
        if ref is not None and ref.get("name") and rng.random() < self.CHURN:
            self._rename(r, ref["name"], self._generated(ref["resource"], ref["name"]))
        self._query_string(r)
        name = r.user.get("username", "")
        human = not name.startswith("system:")
        if (human or name.startswith("system:serviceaccount:")) and r.imp is None:
            if rng.random() < self.OPERATORS:
                k = int(rng.paretovariate(0.7)) % self.ACCOUNTS
                r.user, r.ips = self.accounts[k], [self.ips[k % self.IPS]]  # its pod's IP
            if r.user.get("username", "").startswith("system:serviceaccount:"):
                self._token(r)

    def _generated(self, resource: str, name: str) -> str:
        rng = self.rng
        if resource == "events":
            return f"{name.split('.')[0]}.{rng.getrandbits(64):016x}"
        if resource == "pods" and name.count("-") >= 2:
            return f"{name.rsplit('-', 1)[0]}-{_rand_name(rng, 5)}"
        return f"{name}-{_rand_name(rng, 5)}"

    def _rename(self, r: _Req, old: str, new: str) -> None:
        def renamed(ref: J | None) -> J | None:
            if ref is None or ref.get("name") != old:
                return ref
            return {**ref, "name": new}

        same = r.ref_rr is r.ref
        r.ref = renamed(r.ref)
        r.ref_rr = r.ref if same else renamed(r.ref_rr)
        path, sep, query = r.uri.partition("?")
        head, slash, tail = path.partition(f"/{old}")
        if slash and (not tail or tail.startswith("/")):
            r.uri = f"{head}/{new}{tail}{sep}{query}"

    def _query_string(self, r: _Req) -> None:
        rng = self.rng
        path, _, query = r.uri.partition("?")
        params = [p for p in query.split("&") if p and not p.startswith("resourceVersion=")]
        if r.verb == "watch" or "watch=true" in params:
            params = [p for p in params if not p.startswith(("timeout", "watch="))]
            t = rng.randint(300, 599)
            params += [f"resourceVersion={self.rv - rng.randint(0, 5000)}"]
            params += [f"timeout={t // 60}m{t % 60}s", f"timeoutSeconds={t}", "watch=true"]
        elif r.verb == "list":
            if rng.random() < 0.5:
                params = [p for p in params if not p.startswith("limit=")] + ["limit=500"]
                start = f"{path.rsplit('/', 1)[-1]}/{_rand_name(rng, 8)}\x00"
                token = {"v": "meta.k8s.io/v1", "rv": self.rv, "start": start}
                params.append("continue=" + _b64(orjson.dumps(token)))
            params.append(f"resourceVersion={self.rv - rng.randint(0, 300)}")
        elif r.verb == "get" and path.startswith(("/api/", "/apis/")) and rng.random() < 0.9:
            params.append(f"resourceVersion={self.rv - rng.randint(0, 300)}")
        else:
            params = query.split("&") if query else []
        r.uri = f"{path}?{'&'.join(sorted(params))}" if params else path

    def _token(self, r: _Req) -> None:
        """Each pod's bound token, rotated (a new credential id) at random requests."""
        name = r.user["username"]
        token = self.tokens.get(name)
        if token is None or self.rng.random() < self.NEW_TOKEN:
            token = self.tokens[name] = f"JTI={_uuid(self.rng)}"
        extra = dict(r.user.get("extra") or {})
        extra["authentication.kubernetes.io/credential-id"] = [token]
        r.user = {**r.user, "extra": dict(sorted(extra.items()))}


_OPERATOR_NAMES = (
    "argo-workflow",
    "cert-manager",
    "external-dns",
    "flux-kustomize",
    "istio-proxy",
    "keda-operator",
    "runner",
    "spark-driver",
    "velero",
    "vault-agent",
)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# ----------------------------------------------------------------------------- streams


def _stream(
    seed: int,
    start: datetime | None,
    rate: float,
    body_fraction: float,
    realistic: bool = False,
) -> Iterator[tuple[int, J]]:
    """Endless (stageTimestamp µs, event dict) in non-decreasing time order.

    Requests arrive as a Poisson process; their stages are queued in a heap and released once no
    future request can produce an earlier event. Event dicts of one request share nested objects.
    ``realistic``: the cardinality of a big cluster's traffic (see :class:`_Fleet`).
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    rng = random.Random(seed)
    cluster = _Cluster(rng, body_fraction)
    fleet = _Fleet(random.Random(seed + 1)) if realistic else None
    if fleet is not None:
        cluster.reweight(fleet.MIX)
    t = _us(start or DEFAULT_START)
    heap: list[tuple[int, int, _Req, str]] = []
    seq = 0
    push, pop = heapq.heappush, heapq.heappop
    while True:
        r = cluster.pick(t)
        if fleet is not None:
            fleet.apply(r)
            # Production policies omit RequestReceived: one event per request, mostly.
            r.stages = [st for st in r.stages if st[1] != RR] or r.stages
        for us, stage in r.stages:
            push(heap, (us, seq, r, stage))
            seq += 1
        while heap and heap[0][0] <= t:
            us, _, req, stage = pop(heap)
            yield us, _build(req, stage, us)
        # gap so that the long-run average is `rate` events per second
        t += max(1, int(rng.expovariate(rate / len(r.stages)) * 1e6))


def iter_events(
    n: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    rate: float = 50.0,
    body_fraction: float = 0.05,
) -> Iterator[dict]:
    """Yield ``n`` audit events (each stage is one event) as independent dicts.

    Equivalent to ``orjson.loads`` of each line of :func:`iter_lines` with the same arguments.
    ``rate`` is the average number of events per second; ``body_fraction`` the share of resource
    requests logged at Request/RequestResponse level (with bodies).
    """
    for line in iter_lines(n, seed=seed, start=start, rate=rate, body_fraction=body_fraction):
        yield orjson.loads(line)


def iter_lines(
    n: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    rate: float = 50.0,
    body_fraction: float = 0.05,
) -> Iterator[bytes]:
    """Yield ``n`` newline-terminated JSON lines, exactly as the API server's log backend writes."""
    dumps = orjson.dumps
    stream = _stream(seed, start, rate, body_fraction)
    for _ in range(n):
        yield dumps(next(stream)[1]) + b"\n"


def write_big(
    path: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 1,
    body_fraction: float = 0.05,
    rate: float = 250.0,
    start: datetime | None = None,
    realistic: bool = False,
) -> int:
    """Write ``n`` events as one JSONL file (buffered, no malformed lines); return bytes written.

    The default rate (250 events/s, ~1 GB/h) is that of a busy cluster, so 1M events span ~67 min.
    ``realistic``: a big cluster's cardinality (unique names and URIs, many clients and tokens).
    """
    dumps = orjson.dumps
    stream = _stream(seed, start, rate, body_fraction, realistic)
    total = 0
    chunk: list[bytes] = []
    with open(path, "wb", buffering=0) as f:
        for i in range(n):
            chunk.append(dumps(next(stream)[1]))
            if len(chunk) == 2048 or i == n - 1:
                buf = b"\n".join(chunk) + b"\n"
                f.write(buf)
                total += len(buf)
                chunk.clear()
    return total


# ----------------------------------------------------------------------------- demo folder


def _hostile_event(rng: random.Random, us: int) -> J:
    """A valid event whose username carries ANSI escapes, a bidi override and Rich markup."""
    r = _Req()
    r.level, r.audit_id, r.verb = "Metadata", _uuid(rng), "get"
    r.uri = "/api/v1/namespaces/prod/secrets/db"
    r.user = {
        "username": "\u001b[31mevil\u001b[0m\u202e[bold red]x[/]",
        "groups": ["system:authenticated"],
    }
    r.ips, r.ua = ["192.168.1.66"], f"kubectl/{KV} {PLATFORM} kubernetes/{KC}"
    r.ref = r.ref_rr = _ref("secrets", "prod", "db")
    r.status = _failure(
        403,
        "Forbidden",
        f'secrets "db" is forbidden: User "{r.user["username"]}" cannot get resource "secrets" '
        'in API group "" in the namespace "prod"',
        _details("secrets", "db"),
    )
    r.t0 = us - 1_800
    r.ann = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    return _build(r, RC, us)


def _clean_rotated(folder: Path, base: str = "audit") -> None:
    """Remove a previous demo's files: ``audit.log`` and lumberjack backups only."""
    for p in folder.iterdir():
        if p.is_file() and (p.name == f"{base}.log" or BACKUP_RE.match(p.name)):
            p.unlink()


def write_demo(
    folder: str | os.PathLike[str],
    n: int = 3000,
    *,
    seed: int = 7,
    rate: float = 4.0,
    start: datetime | None = None,
    body_fraction: float = 0.06,
) -> list[Path]:
    """Write a lumberjack-style folder: 3 backups (oldest gzipped) + ``audit.log``, oldest first.

    Besides the ``n`` generated events it holds 4 extra lines: a klog text line (in the gzipped
    backup), a truncated JSON line (second backup), a line of binary garbage and one valid event
    with a hostile username (both in ``audit.log``). Returns the paths written, oldest first.
    """
    if n < 20:
        raise ValueError("write_demo needs at least 20 events")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _clean_rotated(folder)
    rng = random.Random(seed * 7919 + 1)  # extras use their own rng: the events stay as iter_lines
    dumps = orjson.dumps
    stream = _stream(seed, start, rate, body_fraction)
    events = [next(stream) for _ in range(n + 1)]  # one extra: the truncated line
    # split oldest -> newest: 30% / 30% / 25% / rest
    cuts = [0, int(n * 0.30), int(n * 0.60), int(n * 0.85), n + 1]
    parts = [events[cuts[i] : cuts[i + 1]] for i in range(4)]
    written: list[Path] = []
    for i, part in enumerate(parts):
        lines = [dumps(ev) + b"\n" for _, ev in part]
        if i == 0:  # klog error line as written to a log that also captured stderr
            us = part[len(part) // 2][0]
            sec, frac = divmod(us, 1_000_000)
            tm = time.gmtime(sec)
            klog = (
                f"E{time.strftime('%m%d %H:%M:%S', tm)}.{frac:06d}       1 audit.go:84] "
                "Error in audit plugin 'log' affecting 1 audit events: "
                "write /var/log/kubernetes/audit/audit.log: no space left on device\n"
            )
            lines.insert(len(lines) // 2, klog.encode())
        elif i == 1:  # a crash mid-write: the line of one event (a ResponseComplete) cut short
            rcs = [j for j in range(len(part) // 2, len(part)) if part[j][1]["stage"] == RC]
            k = rcs[0] if rcs else len(part) - 1
            lines[k] = lines[k][: len(lines[k]) * 3 // 5] + b"\n"
        elif i == 3:
            j = max(
                1, 2 * len(part) // 3
            )  # hostile event between part[j-1] and part[j], in time order
            lines.insert(j, dumps(_hostile_event(rng, part[j - 1][0])) + b"\n")
            garbage = bytes(b for b in rng.randbytes(96) if b not in (0x0A, 0x0D))
            lines.insert(len(part) // 3, b"\x00\xff\xfe\x1f\x8b" + garbage + b"\n")
        data = b"".join(lines)
        last_us = part[-1][0]
        if i < 3:
            # rotation happens when the next line is written: name = that moment in UTC
            rot_us = parts[i + 1][0][0] + 37
            name = f"audit-{_backup_stamp(rot_us)}.log"
            if i == 0:
                path = folder / (name + ".gz")
                with (
                    open(path, "wb") as raw,
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
                ):
                    gz.write(data)
            else:
                path = folder / name
                path.write_bytes(data)
        else:
            path = folder / "audit.log"
            path.write_bytes(data)
        os.utime(path, ns=(last_us * 1000, last_us * 1000))
        written.append(path)
    return written


# ----------------------------------------------------------------------------- live writer


class LumberjackWriter:
    """Appends whole lines to a file and rotates like natefinch/lumberjack v2.2.1.

    Deviations (so tests never lose data): backup names are kept strictly increasing (+1 ms on a
    clash) and a line larger than ``max_bytes`` is written alone to a fresh file, not dropped.
    """

    def __init__(self, path: Path, max_bytes: int | None, compress: bool):
        self.path = path
        self.max = max_bytes
        self.compress = compress
        self.fd: int | None = None
        self.size = 0
        self.last_ms = 0
        self.threads: list[threading.Thread] = []
        self.backups: list[Path] = []

    def _open_new(self) -> None:
        self.fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        self.size = 0

    def _open_existing_or_new(self, n: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._open_new()
            return
        if self.max and size + n >= self.max:
            self._rotate()
            return
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = size

    def _backup_path(self) -> Path:
        ms = max(time.time_ns() // 1_000_000, self.last_ms + 1)
        stem, ext = self.path.stem, self.path.suffix
        while True:
            p = self.path.with_name(f"{stem}-{_backup_stamp(ms * 1000)}{ext}")
            if not p.exists() and not p.with_name(p.name + ".gz").exists():
                self.last_ms = ms
                return p
            ms += 1

    def _rotate(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path.exists():
            backup = self._backup_path()
            os.rename(self.path, backup)
            self.backups.append(backup)
            if self.compress:
                t = threading.Thread(target=_gzip_later, args=(backup,), daemon=True)
                t.start()
                self.threads.append(t)
        self._open_new()

    def write(self, line: bytes) -> None:
        n = len(line)
        if self.fd is None:
            self._open_existing_or_new(n)
        elif self.max and self.size + n > self.max and self.size > 0:
            self._rotate()
        view = memoryview(line)
        while view:  # one write() per line; loop only on a (rare) short write
            assert self.fd is not None
            done = os.write(self.fd, view)
            view = view[done:]
        self.size += n

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for t in self.threads:
            t.join()


def _gzip_later(backup: Path, delay: float = 0.05) -> None:
    """Lumberjack's mill: compress ``backup`` to ``backup.gz`` a moment later, then delete it."""
    time.sleep(delay)  # the mill goroutine runs asynchronously after the rotation
    gz_path = backup.with_name(backup.name + ".gz")
    try:
        with (
            open(backup, "rb") as src,
            open(gz_path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        ):
            shutil.copyfileobj(src, gz, 1 << 20)
        os.remove(backup)
    except OSError:
        gz_path.unlink(missing_ok=True)  # like lumberjack: drop a partial .gz, keep the .log


def _live_path(folder_or_file: str | os.PathLike[str]) -> Path:
    p = Path(folder_or_file)
    if p.is_dir() or (not p.exists() and not p.suffix):
        p.mkdir(parents=True, exist_ok=True)
        return p / "audit.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def append_live(
    folder_or_file: str | os.PathLike[str],
    *,
    rate: float = 20.0,
    seed: int = 99,
    stop: threading.Event | None = None,
    rotate_bytes: int | None = None,
    compress: bool = True,
    body_fraction: float = 0.02,
) -> int:
    """Append events stamped with the current time to ``<folder>/audit.log`` at ``rate`` events/s.

    One ``write()`` per whole line on an ``O_APPEND`` fd (unbuffered). With ``rotate_bytes`` the
    file is rotated like lumberjack (close, rename to ``audit-<UTC %Y-%m-%dT%H-%M-%S.mmm>.log``,
    new ``audit.log``; if ``compress`` the backup is gzipped in a background thread). Runs until
    ``stop`` is set or KeyboardInterrupt; waits for pending compressions; returns events written.
    The event sequence equals ``iter_lines(seed=seed, rate=rate, body_fraction=body_fraction)``
    apart from the timestamps.
    """
    stop = stop or threading.Event()
    writer = LumberjackWriter(_live_path(folder_or_file), rotate_bytes, compress)
    start_us = time.time_ns() // 1000
    mono0 = time.monotonic()
    start = datetime.fromtimestamp(start_us // 1_000_000, UTC).replace(
        microsecond=start_us % 1_000_000
    )
    stream = _stream(seed, start, rate, body_fraction)
    count = 0
    dumps = orjson.dumps
    try:
        for us, ev in stream:
            delay = (us - start_us) / 1e6 - (time.monotonic() - mono0)
            if delay > 0 and stop.wait(delay):
                break
            if stop.is_set():
                break
            writer.write(dumps(ev) + b"\n")
            count += 1
    except KeyboardInterrupt:
        pass
    finally:
        writer.close()
    return count


# ----------------------------------------------------------------------------- CLI


def _summary(paths: list[Path]) -> str:
    return "\n".join(f"  {p.name:45s} {p.stat().st_size:>10,d} B" for p in paths)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m audittui.demo", description=__doc__.splitlines()[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write a lumberjack-style demo folder")
    w.add_argument("dir")
    w.add_argument("--events", type=int, default=3000)
    w.add_argument("--seed", type=int, default=7)
    b = sub.add_parser("big", help="write one large JSONL file (benchmarks)")
    b.add_argument("file")
    b.add_argument("--events", type=int, default=1_000_000)
    b.add_argument("--body-fraction", type=float, default=0.05)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument(
        "--easy",
        action="store_true",
        help="the small cluster's cardinality (few names, URIs and clients); default: realistic",
    )
    lv = sub.add_parser("live", help="append events in real time (Ctrl-C to stop)")
    lv.add_argument("dir")
    lv.add_argument("--rate", type=float, default=20.0)
    lv.add_argument("--seed", type=int, default=99)
    lv.add_argument("--rotate-bytes", type=int, default=None)
    lv.add_argument("--no-compress", action="store_true")
    args = ap.parse_args(argv)

    if args.cmd == "write":
        paths = write_demo(args.dir, args.events, seed=args.seed)
        print(f"wrote {len(paths)} files to {args.dir}:\n{_summary(paths)}")
    elif args.cmd == "big":
        t = time.perf_counter()
        size = write_big(
            args.file,
            args.events,
            seed=args.seed,
            body_fraction=args.body_fraction,
            realistic=not args.easy,
        )
        dt = time.perf_counter() - t
        print(f"wrote {args.events:,d} events, {size:,d} bytes to {args.file} in {dt:.1f} s")
    else:
        print(
            f"appending to {_live_path(args.dir)} at {args.rate}/s; Ctrl-C to stop", file=sys.stderr
        )
        n = append_live(
            args.dir,
            rate=args.rate,
            seed=args.seed,
            rotate_bytes=args.rotate_bytes,
            compress=not args.no_compress,
        )
        print(f"wrote {n} events", file=sys.stderr)
    return 0
