"""The demo folder: a lumberjack-rotated ``audit.log`` with three backups (the oldest gzipped)
and a few lines a reader must survive (klog text, a truncated line, binary garbage, a hostile
username)."""

from __future__ import annotations

import gzip
import os
import random
import time
from datetime import datetime
from pathlib import Path

import orjson

from ..ingest.sources import backup_key, backup_name
from . import api
from .api import J
from .catalog import KC, KV, PLATFORM
from .events import RC, Req, build
from .ids import uuid4
from .stream import stream

DEMO_RATE = 0.5  # logged events/s: a quiet cluster once leases and health checks go unlogged


def _hostile_event(rng: random.Random, us: int) -> J:
    """A valid event whose username carries ANSI escapes, a bidi override and Rich markup."""
    r = Req()
    r.level, r.audit_id, r.verb = "Metadata", uuid4(rng), "get"
    r.uri = "/api/v1/namespaces/prod/secrets/db"
    r.user = {
        "username": "\u001b[31mevil\u001b[0m\u202e[bold red]x[/]",
        "groups": ["system:authenticated"],
    }
    r.ips, r.ua = ["192.168.1.66"], f"kubectl/{KV} {PLATFORM} kubernetes/{KC}"
    r.ref = r.ref_rr = api.ref("secrets", "prod", "db")
    r.status = api.failure(
        403,
        "Forbidden",
        f'secrets "db" is forbidden: User "{r.user["username"]}" cannot get resource "secrets" '
        'in API group "" in the namespace "prod"',
        api.details("secrets", "db"),
    )
    r.t0 = us - 1_800
    r.ann = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    return build(r, RC, us)


def _clean_rotated(folder: Path, base: str = "audit") -> None:
    """Remove a previous demo's files: ``audit.log`` and lumberjack backups only."""
    for p in folder.iterdir():
        key = backup_key(p.name)
        if p.is_file() and (p.name == f"{base}.log" or (key and key[0] == f"{base}.log")):
            p.unlink()


def write_demo(
    folder: str | os.PathLike[str],
    n: int = 3000,
    *,
    seed: int = 7,
    rate: float = DEMO_RATE,
    start: datetime | None = None,
    demo: bool = True,
    body_fraction: float = 0.06,
) -> list[Path]:
    """Write a lumberjack-style folder: 3 backups (oldest gzipped) + ``audit.log``, oldest first.

    The events are the demo cluster's (:func:`.stream` with ``demo``): levelled by its audit
    policy, with its attack stories. At the default rate 3000 events span over an hour and a
    half, so that the findings that first learn an hour of each user's history can fire.
    ``demo=False``: the benches' traffic instead, ``body_fraction`` of it with bodies.

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
    source = stream(seed, start, rate, body_fraction, demo=demo)
    events = [next(source) for _ in range(n + 1)]  # one extra: the truncated line
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
            # the hostile event between part[j-1] and part[j], in time order
            j = max(1, 2 * len(part) // 3)
            lines.insert(j, dumps(_hostile_event(rng, part[j - 1][0])) + b"\n")
            garbage = bytes(b for b in rng.randbytes(96) if b not in (0x0A, 0x0D))
            lines.insert(len(part) // 3, b"\x00\xff\xfe\x1f\x8b" + garbage + b"\n")
        data = b"".join(lines)
        last_us = part[-1][0]
        if i < 3:
            # rotation happens when the next line is written: name = that moment in UTC
            rot_us = parts[i + 1][0][0] + 37
            name = backup_name("audit.log", rot_us)
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
