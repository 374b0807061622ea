"""The query engine remembers which table values match a term (tables only grow): a store
queried after every batch must answer exactly as a store that never cached anything."""

import random

import numpy as np
import orjson

from audittui.index.evaluate import evaluate
from audittui.index.store import Store
from audittui.ingest.batch import BatchBuilder
from audittui.ingest.sources import Source
from audittui.query.syntax import parse

QUERIES = [
    "user:alice",
    "user:system:* -user:system:node:*",
    "uri:/api/v1/namespaces/*/secrets*",
    "uri:/api/v1/namespaces/dev/pods/p1",
    'name:"" verb:list',
    "name:/^p[0-9]$/",
    "ns:dev,prod",
    "ip:10.0.0.0/8",
    "group:system:masters",
    "api:core res:pods/exec",
    "res:pods/ res:*/log",
    "stage:responsecomplete",
]


def _event(rng: random.Random, k: int) -> dict:
    ns = rng.choice(["dev", "prod", "kube-system", None])
    res = rng.choice(["pods", "secrets", "configmaps"])
    name = rng.choice([f"p{k % 13}", f"n-{k}", None])
    sub = rng.choice([None, None, "exec", "log"]) if res == "pods" else None
    uri = (
        f"/api/v1/namespaces/{ns}/{res}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
    )
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"id-{k}",
        "stage": rng.choice(["RequestReceived", "ResponseComplete"]),
        "verb": rng.choice(["get", "list", "create"]),
        "requestURI": uri,
        "user": {
            "username": rng.choice(["alice", "system:node:n1", "system:kube-scheduler", f"u{k}"]),
            "groups": rng.choice([["system:masters"], ["dev"], []]),
        },
        "sourceIPs": [rng.choice(["10.1.2.3", "192.168.0.1", f"10.0.{k % 200}.1"])],
        "objectRef": {"resource": res, "namespace": ns, "name": name, "subresource": sub},
        "requestReceivedTimestamp": f"2025-01-01T00:00:{k % 60:02d}.000000Z",
        "stageTimestamp": f"2025-01-01T00:00:{k % 60:02d}.100000Z",
    }


def _store(events: list[dict], sizes: list[int], on_batch=None) -> Store:
    store = Store()
    store.add_source(Source(0, "x", "x"))
    offset = k = 0
    for size in sizes:
        block = b"".join(orjson.dumps(e) + b"\n" for e in events[k : k + size])
        builder = BatchBuilder(0)
        builder.add_lines(block, offset, 1, final=True)
        store.append(builder.finish())
        offset, k = offset + len(block), k + size
        if on_batch:
            on_batch(store)
    return store


def test_cached_lookups_extend_as_tables_grow():
    rng = random.Random(5)
    events = [_event(rng, k) for k in range(400)]
    sizes = [rng.randint(1, 40) for _ in range(40)]
    sizes[-1] += len(events) - sum(sizes)
    nodes = [parse(q) for q in QUERIES]
    checked = []

    def check(store: Store) -> None:
        n = len(store)
        fresh = _store(events[:n], [n])
        for q, node in zip(QUERIES, nodes, strict=True):
            got, want = evaluate(node, store), evaluate(node, fresh)
            assert np.array_equal(got, want), q
        checked.append(n)

    grown = _store(events, [s for s in sizes if s > 0], check)
    assert checked[-1] == len(events) and len(checked) > 10
    # The cache is in use: each table holds a lookup per distinct term on it.
    assert ("uri", nodes[2].values) in grown.tables["uri"].luts
    assert len(grown.tables["uri"].luts[("uri", nodes[2].values)]) == len(grown.tables["uri"])
