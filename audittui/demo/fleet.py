"""A big cluster's cardinality over the scenarios' shapes (``realistic`` streams)."""

from __future__ import annotations

import random

import orjson

from .actors import sa_user
from .api import J
from .events import Req
from .ids import b64url, rand_name, uuid4

OPERATOR_NAMES = (
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


class Fleet:
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
            sa_user(rng, f"team-{k % 60:02d}", f"{rng.choice(OPERATOR_NAMES)}-{k}")
            for k in range(self.ACCOUNTS)
        ]
        self.nodes: list[tuple[J, str, str]] = []  # (user with its X.509 credential id, IP, name)
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

    def apply(self, r: Req) -> None:
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
            return f"{name.rsplit('-', 1)[0]}-{rand_name(rng, 5)}"
        return f"{name}-{rand_name(rng, 5)}"

    def _rename(self, r: Req, old: str, new: str) -> None:
        def renamed(ref: J | None) -> J | None:
            if ref is None or ref.get("name") != old:
                return ref
            return {**ref, "name": new}

        ref = r.ref if r.ref is not None else r.ref_rr
        resource = ref.get("resource") if ref is not None else None
        same = r.ref_rr is r.ref
        r.ref = renamed(r.ref)
        r.ref_rr = r.ref if same else renamed(r.ref_rr)
        # The name is the segment after its resource's: "/api/v1/…/services/api" must not
        # become "/api-x7k2p/v1/…" (a name can equal any other segment).
        path, sep, query = r.uri.partition("?")
        parts = path.split("/")
        for k in range(len(parts) - 1, 0, -1):
            if parts[k] == old and parts[k - 1] == resource:
                parts[k] = new
                r.uri = "/".join(parts) + sep + query
                break

    def _query_string(self, r: Req) -> None:
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
                start = f"{path.rsplit('/', 1)[-1]}/{rand_name(rng, 8)}\x00"
                token = {"v": "meta.k8s.io/v1", "rv": self.rv, "start": start}
                params.append("continue=" + b64url(orjson.dumps(token)))
            params.append(f"resourceVersion={self.rv - rng.randint(0, 300)}")
        elif r.verb == "get" and path.startswith(("/api/", "/apis/")) and rng.random() < 0.9:
            params.append(f"resourceVersion={self.rv - rng.randint(0, 300)}")
        else:
            params = query.split("&") if query else []
        r.uri = f"{path}?{'&'.join(sorted(params))}" if params else path

    def _token(self, r: Req) -> None:
        """Each pod's bound token, rotated (a new credential id) at random requests."""
        name = r.user["username"]
        token = self.tokens.get(name)
        if token is None or self.rng.random() < self.NEW_TOKEN:
            token = self.tokens[name] = f"JTI={uuid4(self.rng)}"
        extra = dict(r.user.get("extra") or {})
        extra["authentication.kubernetes.io/credential-id"] = [token]
        r.user = {**r.user, "extra": dict(sorted(extra.items()))}
