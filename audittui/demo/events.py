"""One API request (:class:`Req`) and the audit events of its stages, in the server's key order."""

from __future__ import annotations

from typing import Any

from .api import J
from .times import micro_time

RR, RS, RC, PANIC = "RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"


class Req:
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
    level: str
    audit_id: str
    uri: str
    verb: str
    user: J
    ips: list[str]
    ua: str
    status: J
    t0: int  # requestReceivedTimestamp, µs
    stages: list[tuple[int, str]]  # (stageTimestamp µs, stage)

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


def build(r: Req, stage: str, us: int) -> J:
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
        r.t0s = micro_time(r.t0)
    ev["requestReceivedTimestamp"] = r.t0s
    ev["stageTimestamp"] = micro_time(us)
    ann = r.ann_rs if stage == RS else r.ann
    if ann and not rr:  # authorization annotations are added after RequestReceived
        ev["annotations"] = ann
    return ev
