"""Assembling a request: its level, stages, latency and annotations, and RBAC denials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import api
from .actors import Actor, Cast
from .api import J
from .bodies import Bodies
from .catalog import RESOURCES
from .events import RC, RR, RS, Req
from .ids import uuid4
from .levels import Policy
from .times import go_duration


class Requests(Cast, Bodies):
    """The inventory, its actors and object bodies, and the skeleton every scenario fills."""

    # The audit policy that levels each request (the demo's); None: a random share
    # ``body_fraction`` of the requests with bodies gets them (the benches' traffic).
    policy: Policy | None = None

    def _latency(self, slow: float = 0.012, base_ms: float = 6.0) -> int:
        """Request latency in µs: log-normal around ``base_ms``, with a rare slow tail (>500 ms)."""
        rng = self.rng
        if rng.random() < slow:
            return int(rng.uniform(0.52, 3.5) * 1e6)
        return max(300, int(rng.lognormvariate(0.0, 0.75) * base_ms * 1000))

    def _level(self, body_ok: bool) -> str:
        """The audit level: with bodies for ``body_fraction`` of the requests that have any."""
        if body_ok and self.rng.random() < self.body_fraction:
            return "RequestResponse" if self.rng.random() < 0.6 else "Request"
        return "Metadata"

    def _req(
        self,
        t0: int,
        actor: Actor,
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
    ) -> Req:
        """Assemble a request: level, stages, timings and annotations."""
        rng = self.rng
        r = Req()
        r.audit_id = uuid4(rng)
        r.verb = verb
        r.uri = uri
        r.user = actor.user if user is None else user
        r.imp = imp
        r.ips = actor.source_ips(rng)
        r.ua = actor.ua
        r.ref = ref
        r.ref_rr = ref_rr if ref_rr is not None else ref
        r.status = status or api.ok(200)
        r.t0 = t0
        omit: frozenset[str] = frozenset()
        if self.policy is None:
            r.level = self._level(
                ref is not None and (req_body is not None or resp_body is not None)
            )
        else:
            audit = self.policy.decide(r.user, verb, uri, r.ref_rr)
            r.level, omit = audit.level, audit.omit_stages
            if r.level == "None":  # not logged: nothing more to build
                r.stages = []
                return r
        if r.level not in ("Metadata", "None"):
            # RBAC refuses a request before its body is read: the demo logs none for it (the
            # benches' stream keeps the bytes it always had)
            if req_body is not None and (self.policy is None or decision != "forbid"):
                r.req_obj = req_body()
            if r.level == "RequestResponse" and resp_body is not None:
                r.resp_obj = resp_body() if r.status["code"] < 400 else api.status_object(r.status)
        ann: J = {}
        if decision:
            ann["authorization.k8s.io/decision"] = decision
            ann["authorization.k8s.io/reason"] = reason
        if long_running:
            rs_code, dur = long_running
            rs_at = t0 + rng.randint(600, 4000)
            r.rs_status = api.ok(rs_code)  # written with the headers: only the code is known yet
            if status is None:
                r.status = api.ok(rs_code)
            r.ann_rs = dict(sorted(ann.items())) if ann else None
            if extra_ann:
                ann.update(extra_ann)
            r.ann = dict(sorted(ann.items())) if ann else None
            r.stages = [(t0, RR), (rs_at, RS), (rs_at + dur, RC)]
            if omit:
                r.stages = [st for st in r.stages if st[1] not in omit]
            return r
        lat = latency if latency is not None else self._latency()
        if extra_ann:
            ann.update(extra_ann)
        if lat > 500_000:  # apiserver adds latency breakdown annotations above 500 ms
            webhook = "failed calling webhook" in r.status.get("message", "")
            ann.update(self._latency_annotations(lat, verb, webhook))
        r.ann = dict(sorted(ann.items())) if ann else None
        r.stages = [(t0, RR), (t0 + lat, RC)]
        if omit:
            r.stages = [st for st in r.stages if st[1] not in omit]
        return r

    def _latency_annotations(self, lat_us: int, verb: str, webhook: bool) -> J:
        rng = self.rng
        total = lat_us * 1000 + rng.randint(0, 999)
        etcd = int(total * rng.uniform(0.55, 0.95)) if not webhook else rng.randint(2, 9) * 10**6
        out = {
            "apiserver.latency.k8s.io/etcd": go_duration(etcd),
            "apiserver.latency.k8s.io/response-write": go_duration(rng.randint(900, 40_000)),
            "apiserver.latency.k8s.io/serialize-response-object": go_duration(
                rng.randint(20_000, 9_000_000)
            ),
            "apiserver.latency.k8s.io/total": go_duration(total),
            "apiserver.latency.k8s.io/transform-response-object": go_duration(
                rng.randint(500, 90_000)
            ),
        }
        if verb == "list":
            out["apiserver.latency.k8s.io/decode-response-object"] = go_duration(
                rng.randint(100_000, 50_000_000)
            )
        if webhook:  # the time went into a validating admission webhook call
            out["apiserver.latency.k8s.io/validating-webhook"] = go_duration(total - etcd - 10**6)
        if rng.random() < 0.3:
            out["apiserver.latency.k8s.io/apf-queue-wait"] = go_duration(
                rng.randint(1_000, 3_000_000)
            )
        return out

    def _forbidden(  # the 403 Status RBAC answers, worded as the API server words it
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
        subject = f'{api.qualified(resource)} "{name}"' if name else api.qualified(resource)
        scope = (
            f'in the namespace "{ns}"' if ns and RESOURCES[resource][3] else "at the cluster scope"
        )
        msg = (
            f'{subject} is forbidden: User "{username}" cannot {verb} resource "{what}" '
            f'in API group "{group}" {scope}'
        )
        return api.failure(403, "Forbidden", msg, api.details(resource, name))
