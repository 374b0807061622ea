"""Scenarios of other clients and failures: probes, metrics scrapes, discovery, an anonymous
scanner, rejected credentials, and a handler panic."""

from __future__ import annotations

from .. import api
from ..actors import Actor
from ..catalog import DISCOVERY_REASON, KC, KV, PLATFORM, PUBLIC_INFO_REASON
from ..events import PANIC, RR, RS, Req
from ..ids import uuid4
from ..requests import Requests


class Clients(Requests):
    """Non-resource traffic, authentication failures and panics (one request at ``t0``)."""

    def probe(self, t0: int) -> Req:
        path = self.rng.choice(["/healthz", "/readyz", "/livez", "/readyz", "/healthz"])
        return self._req(
            t0,
            self.anonymous,
            "get",
            path,
            reason=PUBLIC_INFO_REASON,
            latency=self._latency(slow=0.0, base_ms=1.2),
        )

    def metrics_scrape(self, t0: int) -> Req:
        return self._req(
            t0,
            self.prometheus,
            "get",
            "/metrics",
            reason=api.crb(
                "prometheus-kube-prometheus-prometheus",
                'ServiceAccount "prometheus-kube-prometheus-prometheus/monitoring"',
            ),
            latency=self._latency(slow=0.1, base_ms=120.0),
        )

    def discovery(self, t0: int) -> Req:
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

    def anonymous_probe(self, t0: int) -> Req:
        """An unauthenticated scanner: allowed /version, forbidden elsewhere."""
        rng = self.rng
        scanner = Actor(
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
            st = api.failure(
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
            api.path(resource, ns),
            ref=api.ref(resource, ns),
            status=st,
            decision="forbid",
        )

    def auth_failure(self, t0: int) -> Req:
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
            verb, uri, ref = "list", api.path(resource, ns), api.ref(resource, ns)
        else:
            verb, uri, ref = "get", rng.choice(["/api", "/version", "/apis"]), None
        r = Req()
        r.audit_id = uuid4(rng)
        r.level, r.verb, r.uri, r.user = "Metadata", verb, uri, {}
        r.ips = [rng.choice(["203.0.113.45", "198.51.100.77", "192.168.1.99", "10.244.3.31"])]
        r.ua, r.ref_rr, r.ref, r.t0 = ua, ref, ref, t0
        r.rs_status = r.status = {"metadata": {}, "message": msg, "code": 401}
        r.stages = [(t0 + rng.randint(40, 900), RS)]
        return r

    def panic(self, t0: int) -> Req:
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
            api.path(resource, ns) + "?limit=500",
            ref=api.ref(resource, ns),
            reason=self._component_reason(actor)
            or api.rb(f"dev-team-edit/{ns}", "edit", 'Group "dev-team"'),
            status=api.failure(
                500,
                "InternalError",
                "APIServer panic'd: runtime error: invalid memory address or nil pointer "
                "dereference",
            ),
        )
        if r.stages:  # logged at all (the demo's policy decides)
            r.stages = [(t0, RR), (r.stages[-1][0], PANIC)]
        r.resp_obj = None
        return r
