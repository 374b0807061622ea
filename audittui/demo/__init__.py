"""Synthetic Kubernetes API-server audit logs (``audit.k8s.io/v1``) for demos, tests and benchmarks.

The generator simulates a small cluster (nodes, controllers, service accounts, humans using
kubectl, probes, scrapers, an anonymous scanner) and emits compact JSON lines exactly as the
kube-apiserver log backend writes them: struct key order, ``...ffffffZ`` MicroTimes, sorted
annotation keys, RequestReceived/ResponseStarted/ResponseComplete/Panic stages with matching
``auditID``s, lines in non-decreasing ``stageTimestamp`` order. Output is fully deterministic
for a given seed (and start time): every random choice, UUIDs included, comes from
``random.Random(seed)``.

Public API::

    iter_events(n, *, seed, start, rate, body_fraction) -> Iterator[dict]
    iter_lines(n, *, seed, start, rate, body_fraction)  -> Iterator[bytes]
    write_big(path, n, *, seed, body_fraction)           -> bytes written
    write_demo(folder, n=3000, *, seed=7)                -> files written (lumberjack-style folder)
    append_live(folder_or_file, *, rate, seed, stop, rotate_bytes, compress) -> events written
    copy_shifted(src, dst, end_micros)                   -> files written (times moved to end then)

CLI::

    python -m audittui.demo write DIR [--events N] [--seed S]
    python -m audittui.demo big FILE [--events N] [--body-fraction F] [--seed S] [--easy]
    python -m audittui.demo live DIR [--rate R] [--rotate-bytes B] [--no-compress]

Modules, bottom up: ``times`` and ``ids`` (formats, random ids), ``catalog`` (the cluster's
fixed facts), ``api`` (paths, objectRefs, Status), ``events`` (a request → its audit events),
``template`` with the data files ``templates/*.yaml`` (the objects' shapes), ``inventory``,
``actors``, ``bodies`` and ``requests`` (the cluster's state, clients, objects and request
skeleton), ``scenarios/`` (the kinds of traffic), ``cluster`` (their weights), ``fleet`` (a big
cluster's cardinality), ``stream`` (events in time order; ``write_big``), ``folder``
(``write_demo``), ``lumberjack`` and ``live`` (``append_live``), ``shift`` (``copy_shifted``),
``cli`` (``main``).
"""

from __future__ import annotations

from .cli import main
from .folder import write_demo
from .live import append_live
from .lumberjack import LumberjackWriter
from .shift import copy_shifted
from .stream import iter_events, iter_lines, write_big
from .times import DEFAULT_START

__all__ = [
    "DEFAULT_START",
    "LumberjackWriter",
    "append_live",
    "copy_shifted",
    "iter_events",
    "iter_lines",
    "main",
    "write_big",
    "write_demo",
]
