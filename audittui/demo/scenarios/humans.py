"""Scenarios of people with kubectl reading and streaming: gets, lists, watches, exec, logs,
port-forwards, and what RBAC denies them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import api
from ..actors import Actor
from ..api import J
from ..catalog import KV, NAMESPACES, WORKLOADS
from ..events import Req
from ..ids import rand_name
from ..requests import Requests


class Humans(Requests):
    """kubectl users' reads and streams, each checked by RBAC (one request at ``t0``)."""

    def _human_ns(self, actor: Actor) -> str:
        rng = self.rng
        if actor is self.alice:
            return rng.choice(["dev", "dev", "dev", "staging", "ci", "prod"])
        if actor is self.bob:
            return rng.choice(["staging", "staging", "staging", "dev", "dev", "prod"])
        return rng.choice(NAMESPACES)

    def _human(
        self,
        t0: int,
        actor: Actor,
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
    ) -> Req:
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
                ref=ref_rr or api.ref(resource, ns, name, sub),
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
            ref=ref or api.ref(resource, ns, name, sub),
            ref_rr=ref_rr,
            status=ok_status,
            reason=reason,
            **kw,
        )

    def human_read(self, t0: int) -> Req:
        rng = self.rng
        actor = rng.choice(self.humans)
        ns = self._human_ns(actor)
        resource = rng.choice(
            ["pods", "pods", "deployments", "configmaps", "services", "secrets", "events"]
        )
        if rng.random() < 0.45:  # kubectl get <kind>
            uri = api.path(resource, ns) + "?limit=500"
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
            name = p["name"] if p["ns"] == ns else f"{ns}-debug-{rand_name(rng, 5)}"
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
            name = name if "-debug-" in name else f"{name}-{rand_name(rng, 3)}"
            status = api.failure(
                404,
                "NotFound",
                f'{api.qualified(resource)} "{name}" not found',
                api.details(resource, name),
            )
        return self._human(
            t0,
            actor,
            "get",
            resource,
            ns,
            name,
            api.path(resource, ns, name),
            ok_status=status,
            resp_body=body,
        )

    def human_watch(self, t0: int) -> Req:
        """``kubectl get -w``: a watch that the user ends after seconds to minutes."""
        rng = self.rng
        actor = rng.choice(self.humans)
        ns = self._human_ns(actor)
        resource = rng.choice(["pods", "deployments", "events"])
        uri = (
            api.path(resource, ns) + f"?resourceVersion={self.rv - rng.randint(0, 500)}&watch=true"
        )
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

    def human_stream(self, t0: int) -> Req:
        """exec / attach / port-forward (code 101 upgrades) and logs (200): long-running."""
        rng = self.rng
        actor = rng.choice(self.humans)
        ns = self._human_ns(actor)
        p = self._pick_pod(ns)
        ns = p["ns"]
        kind = rng.choice(["exec", "exec", "log", "log", "attach", "portforward"])
        base = api.path("pods", ns, p["name"], kind)
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

    def human_forbidden(self, t0: int) -> Req:
        """Typical denials: bob reading prod secrets, listing nodes, exec into prod."""
        rng = self.rng
        x = rng.random()
        if x < 0.5:
            name = "db"
            return self._human(
                t0, self.bob, "get", "secrets", "prod", name, api.path("secrets", "prod", name)
            )
        if x < 0.75:
            actor = rng.choice([self.bob, self.alice])
            return self._human(
                t0, actor, "list", "nodes", None, None, api.path("nodes") + "?limit=500"
            )
        p = self._pick_pod("prod")
        uri = (
            api.path("pods", "prod", p["name"], "exec")
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
