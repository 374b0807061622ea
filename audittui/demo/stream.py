"""The endless stream of audit events in time order, and the functions that take ``n`` of it."""

from __future__ import annotations

import heapq
import os
import random
from collections.abc import Iterator
from datetime import datetime

import orjson

from .api import J
from .cluster import Cluster
from .events import RR, Req, build
from .fleet import Fleet
from .levels import demo_policy
from .times import DEFAULT_START, to_micros


def stream(
    seed: int,
    start: datetime | None,
    rate: float,
    body_fraction: float,
    realistic: bool = False,
    demo: bool = False,
) -> Iterator[tuple[int, J]]:
    """Endless (stageTimestamp µs, event dict) in non-decreasing time order.

    Requests arrive as a Poisson process; their stages are queued in a heap and released once no
    future request can produce an earlier event. Event dicts of one request share nested objects.
    ``realistic``: the cardinality of a big cluster's traffic (see :class:`.Fleet`).
    ``demo``: the demo's cluster: its audit policy (``templates/policy.yaml``) levels every
    request (``body_fraction`` is unused; requests at level None are not logged and take no
    time, so ``rate`` stays the logged rate) and attack stories are told among the traffic
    (:mod:`.scenarios.attacks`). Without it, the stream is byte for byte the benches' one.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    rng = random.Random(seed)
    cluster = Cluster(rng, body_fraction)
    fleet = Fleet(random.Random(seed + 1)) if realistic else None
    if fleet is not None:
        cluster.reweight(fleet.MIX)
    t = to_micros(start or DEFAULT_START)
    if demo:
        cluster.policy = demo_policy()
        cluster.demo_traffic()
        cluster.start_stories(t)
    heap: list[tuple[int, int, Req, str]] = []
    seq = 0
    push, pop = heapq.heappush, heapq.heappop
    while True:
        if demo:
            for story in cluster.stories_due(t):
                for us, stage in story.stages:
                    push(heap, (us, seq, story, stage))
                    seq += 1
        r = cluster.pick(t)
        if not r.stages:  # the policy's level None: the server logs nothing of it
            continue
        if fleet is not None:
            fleet.apply(r)
            # Production policies omit RequestReceived: one event per request, mostly.
            r.stages = [st for st in r.stages if st[1] != RR] or r.stages
        for us, stage in r.stages:
            push(heap, (us, seq, r, stage))
            seq += 1
        while heap and heap[0][0] <= t:
            us, _, req, stage = pop(heap)
            yield us, build(req, stage, us)
        # gap so that the long-run average is `rate` events per second
        t += max(1, int(rng.expovariate(rate / len(r.stages)) * 1e6))


def iter_events(
    n: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    rate: float = 50.0,
    body_fraction: float = 0.05,
    demo: bool = False,
) -> Iterator[dict]:
    """Yield ``n`` audit events (each stage is one event) as independent dicts.

    Equivalent to ``orjson.loads`` of each line of :func:`iter_lines` with the same arguments.
    ``rate`` is the average number of events per second; ``body_fraction`` the share of resource
    requests logged at Request/RequestResponse level (with bodies); ``demo``: the demo's
    cluster instead, its policy and its attack stories (see :func:`stream`).
    """
    lines = iter_lines(n, seed=seed, start=start, rate=rate, body_fraction=body_fraction, demo=demo)
    for line in lines:
        yield orjson.loads(line)


def iter_lines(
    n: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    rate: float = 50.0,
    body_fraction: float = 0.05,
    demo: bool = False,
) -> Iterator[bytes]:
    """Yield ``n`` newline-terminated JSON lines, exactly as the API server's log backend writes."""
    dumps = orjson.dumps
    events = stream(seed, start, rate, body_fraction, demo=demo)
    for _ in range(n):
        yield dumps(next(events)[1]) + b"\n"


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
    events = stream(seed, start, rate, body_fraction, realistic)
    total = 0
    chunk: list[bytes] = []
    with open(path, "wb", buffering=0) as f:
        for i in range(n):
            chunk.append(dumps(next(events)[1]))
            if len(chunk) == 2048 or i == n - 1:
                buf = b"\n".join(chunk) + b"\n"
                f.write(buf)
                total += len(buf)
                chunk.clear()
    return total
