"""The objects requests carry (Pods, Deployments, ConfigMaps, Secrets, Leases, lists), made
from the templates under ``templates/`` with the cluster's names and fresh random values."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from .api import J
from .catalog import NODES, RESOURCES
from .ids import rand_name
from .inventory import Inventory
from .template import fill
from .times import micro_time, seconds_time

_PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Bodies(Inventory):
    """Object bodies of the inventory's objects at a time ``t_us`` (µs)."""

    def _meta(self, ns: str | None, name: str, t_us: int, server: bool, **more: Any) -> J:
        """ObjectMeta: as a client sends it, or with the server's uid, version and creation."""
        m: J = {"name": name}
        if ns:
            m["namespace"] = ns
        if server:
            m["uid"] = self._uid(f"{ns}/{name}")
            m["resourceVersion"] = str(self.rv)
            m["creationTimestamp"] = seconds_time(t_us - 86_400_000_000 * self.rng.randint(1, 40))
        else:
            m["creationTimestamp"] = None
        m.update(more)
        return m

    def _served(self, body: J, t_us: int) -> J:
        """A client's new object as the server stores and returns it: with its uid, version and
        creation time (``body`` itself is left as sent)."""
        out: J = orjson.loads(orjson.dumps(body))
        meta = out["metadata"]
        key = f"{meta.get('namespace', '')}/{out['kind']}/{meta['name']}"
        meta["uid"] = self._uid(key)
        meta["resourceVersion"] = self._next_rv()
        meta["creationTimestamp"] = seconds_time(t_us)
        return out

    def _pod_request(self, p: J, t_us: int) -> J:
        """The Pod a ReplicaSet's controller sends to create ``p``: a generateName and no name
        (the server makes it after the audit log has the body), no uid, version, node or
        status, no managedFields (the server records them)."""
        pod = self._pod(p, t_us)
        meta = pod["metadata"]
        for key in ("name", "uid", "resourceVersion", "managedFields"):
            meta.pop(key, None)
        meta["creationTimestamp"] = None
        pod["spec"].pop("nodeName", None)
        pod["status"] = {}
        return pod

    def _pod(self, p: J, t_us: int, in_list: bool = False) -> J:
        rng = self.rng
        node, deploy, image = p["node"], p["deploy"], p["image"]
        pod_ip = f"10.244.{NODES.index(node)}.{rng.randint(2, 250)}"
        started = seconds_time(t_us - 3_600_000_000 * rng.randint(1, 300))
        rv = str(self.rv - rng.randint(0, 5000))
        pod = fill(
            "pod",
            name=p["name"],
            ns=p["ns"],
            uid=p["uid"],
            deploy=deploy,
            rs=p["rs"],
            rv=rv,
            rs_uid=self._uid(f"{p['ns']}/rs/{deploy}"),
            cname=deploy.split("-")[0] if deploy.startswith("prom") else deploy,
            image=image,
            port=p["port"],
            node=node,
            host_ip=node.split(".")[0][3:].replace("-", "."),
            pod_ip=pod_ip,
            started=started,
            now=seconds_time(t_us),
            volume=rand_name(rng, 5),
            restarts=rng.choice([0, 0, 0, 1, 2]),
            image_id=image.split(":")[0] + "@sha256:" + f"{rng.getrandbits(256):064x}",
            container_id=f"{rng.getrandbits(256):064x}",
        )
        if in_list:  # list items carry no kind/apiVersion
            del pod["kind"], pod["apiVersion"]
        return pod

    def _configmap(self, ns: str, name: str, t_us: int, server: bool) -> J:
        rng = self.rng
        port = rng.choice([8080, 8443, 9000])
        workers = rng.randint(2, 16)
        max_open = rng.randint(10, 50)
        features = [
            f"  - flag-{rand_name(rng, 6)}: {rng.choice(['true', 'false'])}"
            for _ in range(rng.randint(4, 30))
        ]
        meta = self._meta(ns, name, t_us, server, labels={"app.kubernetes.io/part-of": "shop"})
        return fill(
            "configmap",
            metadata=meta,
            ns=ns,
            port=port,
            workers=workers,
            max_open=max_open,
            features="\n".join(features),
            log_level=rng.choice(["info", "debug", "warn"]),
        )

    def _secret(self, ns: str, name: str, t_us: int, server: bool) -> J:
        rng = self.rng
        password = "".join(rng.choice(_PASSWORD_ALPHABET) for _ in range(24))
        if name.endswith("-tls"):  # cert-manager style TLS secret (fake PEM)

            def pem(label: str, n: int) -> str:
                body = base64.b64encode(rng.randbytes(n)).decode()
                rows = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
                return f"-----BEGIN {label}-----\n{rows}\n-----END {label}-----\n"

            plain = fill(
                "tls-data",
                ca=pem("CERTIFICATE", 420),
                crt=pem("CERTIFICATE", 560),
                key=pem("EC PRIVATE KEY", 121),
            )
            kind = "kubernetes.io/tls"
        else:
            plain = fill("opaque-data", password=password, ns=ns)
            kind = "Opaque"
        data = {k: _b64(v) for k, v in plain.items()}
        return fill("secret", metadata=self._meta(ns, name, t_us, server), data=data, type=kind)

    def _deployment(self, d: J, t_us: int, server: bool, in_list: bool = False) -> J:
        name = d["name"]
        meta = self._meta(d["ns"], name, t_us, server, labels={"app.kubernetes.io/name": name})
        if server:
            meta["generation"] = self.rng.randint(1, 40)
            meta["annotations"] = {
                "deployment.kubernetes.io/revision": str(self.rng.randint(1, 30))
            }
        dep = fill(
            "deployment",
            metadata=meta,
            name=name,
            replicas=d["replicas"],
            image=d["image"],
            port=d["port"],
        )
        if server:
            dep["status"] = fill(
                "deployment-status",
                generation=meta["generation"],
                replicas=d["replicas"],
                now=seconds_time(t_us),
                name=name,
                rs=d["rs"],
            )
        if in_list:
            del dep["kind"], dep["apiVersion"]
        return dep

    def _lease(self, ns: str, name: str, holder: str, t_us: int, secs: int) -> J:
        return fill(
            "lease",
            metadata=self._meta(ns, name, t_us, True),
            holder=holder,
            seconds=secs,
            acquired=micro_time(t_us - 86_400_000_000),
            renewed=micro_time(t_us),
        )

    def _pod_list(self, ns: str | None, t_us: int) -> J:
        """A PodList of 8-26 pods (~30-100 KB) — the occasional huge responseObject."""
        pods = self._pods_in(ns) if ns else self.pods
        n = self.rng.randint(8, 26)
        items = [
            self._pod(pods[i % len(pods)] if pods else self.pods[i], t_us, True) for i in range(n)
        ]
        return fill("list", kind="Pod", api_version="v1", rv=str(self.rv), items=items)

    def _small_list(self, resource: str, ns: str | None, t_us: int) -> J:
        group, version, kind, _ = RESOURCES[resource]
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
        api_version = f"{group}/{version}" if group else version
        return fill("list", kind=kind, api_version=api_version, rv=str(self.rv), items=items)

    def _node_status_patch(self, t_us: int) -> J:
        return fill("node-status-patch", now=seconds_time(t_us))
