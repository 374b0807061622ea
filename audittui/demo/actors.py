"""The cluster's clients: nodes, controllers, pods' service accounts, humans with kubectl, an
anonymous scanner; and what RBAC answers each of them."""

from __future__ import annotations

import random

from . import api
from .api import J
from .catalog import CONTROL_PLANE_IP, KC, KV, NODES, PLATFORM
from .ids import uuid4
from .inventory import Inventory


class Actor:
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


def sa_user(rng: random.Random, ns: str, name: str, pod: tuple[str, str, str] | None = None) -> J:
    """The UserInfo of a service account (of a pod's bound token when ``pod`` is given)."""
    u: J = {
        "username": f"system:serviceaccount:{ns}:{name}",
        "uid": uuid4(rng),
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{ns}",
            "system:authenticated",
        ],
    }
    if pod:  # bound token of a pod: 1.30 adds these extras (keys sorted like a Go map)
        pod_name, pod_uid, node = pod
        u["extra"] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={uuid4(rng)}"],
            "authentication.kubernetes.io/node-name": [node],
            "authentication.kubernetes.io/node-uid": [uuid4(rng)],
            "authentication.kubernetes.io/pod-name": [pod_name],
            "authentication.kubernetes.io/pod-uid": [pod_uid],
        }
    return u


class Cast(Inventory):
    """The inventory plus the actors who use the cluster, drawn from the same ``rng``."""

    def __init__(self, rng: random.Random, body_fraction: float) -> None:
        super().__init__(rng, body_fraction)
        rng = self.rng
        kubectl = f"kubectl/{KV} {PLATFORM} kubernetes/{KC}"
        self.alice = Actor(
            "human",
            {"username": "alice", "groups": ["dev-team", "system:authenticated"]},
            ["192.168.1.42"],
            kubectl,
        )
        self.bob = Actor(
            "human",
            {"username": "bob", "groups": ["system:authenticated"]},
            ["192.168.1.57", "192.168.1.61"],
            "kubectl/v1.29.4 (darwin/arm64) kubernetes/55019c8",
            peer="10.0.0.5",
        )
        self.carol = Actor(
            "human",
            {"username": "carol@example.com", "groups": ["system:masters", "system:authenticated"]},
            ["192.168.10.23"],
            f"kubectl/{KV} (darwin/arm64) kubernetes/{KC}",
            peer="10.0.0.5",
        )
        self.humans = [self.alice, self.alice, self.bob, self.carol]
        self.writers = [self.alice, self.alice, self.alice, self.carol, self.carol, self.bob]
        kcm = f"kube-controller-manager/{KV} {PLATFORM} kubernetes/{KC}"
        self.controllers: dict[str, Actor] = {}
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
            self.controllers[c] = Actor(
                "controller",
                sa_user(rng, "kube-system", c),
                [CONTROL_PLANE_IP],
                f"{kcm}/system:serviceaccount:kube-system:{c}",
            )
        op_pod = next(p for p in self.pods if p["deploy"] == "prometheus-kube-prometheus-operator")
        self.prom_operator = Actor(
            "pod-sa",
            sa_user(
                rng,
                "monitoring",
                "prometheus-kube-prometheus-operator",
                (op_pod["name"], op_pod["uid"], op_pod["node"]),
            ),
            ["10.244.2.17"],
            "Go-http-client/2.0",
        )
        self.prometheus = Actor(
            "pod-sa",
            sa_user(rng, "monitoring", "prometheus-kube-prometheus-prometheus"),
            ["10.244.1.9"],
            "Prometheus/2.53.0",
        )
        self.coredns = Actor(
            "pod-sa",
            sa_user(rng, "kube-system", "coredns"),
            ["10.244.0.4", "10.244.3.6"],
            "coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
        )
        self.kube_proxy = Actor(
            "pod-sa",
            sa_user(rng, "kube-system", "kube-proxy"),
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
            Actor(
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
        self.kcm = Actor(
            "component",
            {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]},
            [CONTROL_PLANE_IP],
            kcm,
        )
        self.scheduler = Actor(
            "component",
            {"username": "system:kube-scheduler", "groups": ["system:authenticated"]},
            [CONTROL_PLANE_IP],
            f"kube-scheduler/{KV} {PLATFORM} kubernetes/{KC}",
        )
        self.apiserver = Actor(
            "component",
            {"username": "system:apiserver", "uid": uuid4(rng), "groups": ["system:masters"]},
            ["127.0.0.1"],
            f"kube-apiserver/{KV} {PLATFORM} kubernetes/{KC}",
        )
        self.apiserver_lease_name = "apiserver-" + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(26)
        )
        self.anonymous = Actor(
            "anonymous",
            {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
            [CONTROL_PLANE_IP],
            "kube-probe/1.30",
        )

    def _authz(self, actor: Actor, verb: str, resource: str, ns: str | None) -> tuple[bool, str]:
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
                return True, api.rb(f"bob-view/{ns}", "view", 'User "bob"')
            return False, ""
        return False, ""

    def _component_reason(self, actor: Actor) -> str:
        """The RBAC (or Node authorizer) reason that allows a component's request."""
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
