"""The simulated cluster's state: its Deployments and Pods, object uids, the etcd revision."""

from __future__ import annotations

import random

from .api import J
from .catalog import NODES, WORKLOADS
from .ids import rand_name, uuid4


class Inventory:
    """What exists in the cluster, drawn once from ``rng``; the base of :class:`Cluster`."""

    def __init__(self, rng: random.Random, body_fraction: float) -> None:
        self.rng = rng
        self.body_fraction = body_fraction  # share of resource requests logged with bodies
        self.rv = 48_211_337  # etcd revision, grows with every write
        self.node_uids = {n: uuid4(rng) for n in NODES}
        self.pods: list[J] = []  # {ns, deploy, name, uid, node, image, port, rs}
        self.deploys: list[J] = []  # {ns, name, uid, image, port, rs, replicas}
        for ns, items in WORKLOADS.items():
            for deploy, image, port in items:
                rs = rand_name(rng, 10)
                d: J = {"ns": ns, "name": deploy, "uid": uuid4(rng), "image": image, "port": port}
                d["rs"] = rs
                d["replicas"] = 1 if ns in ("dev", "ci", "kube-system") else rng.choice([2, 3])
                self.deploys.append(d)
                for _ in range(d["replicas"]):
                    self.pods.append(
                        {
                            "ns": ns,
                            "deploy": deploy,
                            "name": f"{deploy}-{rs}-{rand_name(rng, 5)}",
                            "uid": uuid4(rng),
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
            u = self.uids[key] = uuid4(self.rng)
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
