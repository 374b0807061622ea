"""The receiver's counters, gauges and histograms, served in the Prometheus text format by
prometheus-client, with the process's own (resident memory, open files, CPU).

Label values come from the network (sender names are client certificates' CNs). The text
format escapes only backslash, double quote and newline, so every label value is first made
inert (:func:`audittui.output.inert.inert`): an escape sequence or a bidi override in a CN
reaches a terminal or a dashboard as visible ``\\x1b``, ``\\u202e``, never as itself."""

from __future__ import annotations

from collections.abc import Callable

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.process_collector import ProcessCollector

from ..output.inert import inert

Labels = tuple[str, ...]
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds: a write or an fsync of a batch takes from tens of µs (page cache) to seconds.
LATENCY_BUCKETS = (1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Registry:
    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # no `_created` series beside each counter
        self.registry = CollectorRegistry(auto_describe=False)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Counter:
    def __init__(self, registry: Registry, name: str, help: str, labels: Labels = ()) -> None:
        self._metric = prometheus_client.Counter(name, help, labels, registry=registry.registry)

    def inc(self, *labels: str, by: float = 1) -> None:
        metric = self._metric.labels(*map(inert, labels)) if labels else self._metric
        metric.inc(by)


class Gauge:
    """A value read when rendered (``read`` returns it)."""

    def __init__(self, registry: Registry, name: str, help: str, read: Callable[[], float]) -> None:
        prometheus_client.Gauge(name, help, registry=registry.registry).set_function(read)


class LabelledGauge:
    def __init__(self, registry: Registry, name: str, help: str, labels: Labels) -> None:
        self._metric = prometheus_client.Gauge(name, help, labels, registry=registry.registry)

    def set(self, value: float, *labels: str) -> None:
        self._metric.labels(*map(inert, labels)).set(value)


class Histogram:
    def __init__(
        self,
        registry: Registry,
        name: str,
        help: str,
        labels: Labels = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> None:
        self._metric = prometheus_client.Histogram(
            name, help, labels, registry=registry.registry, buckets=buckets
        )

    def observe(self, value: float, *labels: str) -> None:
        metric = self._metric.labels(*map(inert, labels)) if labels else self._metric
        metric.observe(value)


class ReceiverMetrics:
    """The receiver's series. ``sender`` labels name authenticated senders only (their number
    is the number of API servers); what failed before authentication has no sender label."""

    def __init__(
        self,
        in_flight: Callable[[], float],
        keys: Callable[[], float],
        connections: Callable[[], float],
    ) -> None:
        r = self.registry = Registry()
        ProcessCollector(registry=r.registry)
        p = "audittui_webhook_"
        sender = ("sender",)
        self.requests = Counter(
            r, p + "requests_total", "HTTP requests answered, by code", ("code",)
        )
        self.batches = Counter(r, p + "batches_total", "EventList batches made durable", sender)
        self.events = Counter(
            r, p + "events_received_total", "items of the batches accepted (kept or not)", sender
        )
        self.written = Counter(r, p + "events_written_total", "events written to the spool", sender)
        self.deduplicated = Counter(
            r,
            p + "events_deduplicated_total",
            "events already written (the same line), dropped",
            sender,
        )
        self.rejected = Counter(
            r,
            p + "events_rejected_total",
            "items that are not audit events, dropped (the rest of the batch kept)",
            ("sender", "reason"),
        )
        self.bytes_received = Counter(r, p + "bytes_received_total", "request body bytes", sender)
        self.bytes_written = Counter(
            r, p + "bytes_written_total", "bytes written to the spool", sender
        )
        self.bad_requests = Counter(
            r,
            p + "bad_requests_total",
            "batches refused as bad input (400, 411, 413, 415)",
            ("sender", "reason"),
        )
        self.throttled = Counter(
            r,
            p + "throttled_total",
            "batches answered 429 with Retry-After (the API server sends them again)",
            ("sender", "reason"),
        )
        self.unauthorized = Counter(r, p + "unauthorized_total", "requests refused 401")
        self.tls_failures = Counter(r, p + "tls_handshake_failures_total", "TLS handshakes failed")
        self.refused_connections = Counter(
            r,
            p + "connections_refused_total",
            "connections closed as soon as accepted: all slots held by authenticated "
            "connections (full), or too many from the address (per_address)",
            ("reason",),
        )
        self.evicted = Counter(
            r,
            p + "connections_evicted_total",
            "connections not yet authenticated closed to make room for a new one",
        )
        self.timeouts = Counter(
            r,
            p + "timeouts_total",
            "connections closed for being too slow: handshake and headers, or body",
            ("phase",),
        )
        self.accept_errors = Counter(
            r, p + "accept_errors_total", "accept() failures (out of file descriptors: backs off)"
        )
        self.rotations = Counter(r, p + "spool_rotations_total", "live files rotated", sender)
        self.write_seconds = Histogram(
            r, p + "spool_write_seconds", "time of each write() to the spool", sender
        )
        self.fsync_seconds = Histogram(
            r, p + "spool_fsync_seconds", "time of each fdatasync of the spool", sender
        )
        self.last_batch = LabelledGauge(
            r,
            p + "last_batch_timestamp_seconds",
            "when the sender's last batch was made durable",
            sender,
        )
        self.spool_ok = LabelledGauge(
            r,
            p + "spool_writable",
            "1 when the sender's last write succeeded, 0 after a failure",
            sender,
        )
        # with --to URL: the store's side
        self.store_seconds = Histogram(
            r,
            p + "store_insert_seconds",
            "time of each INSERT of a batch into the store (acknowledged or failed)",
        )
        self.store_ok = LabelledGauge(
            r,
            p + "store_writable",
            "1 when the store took the sender's last batch, 0 while it is down",
            sender,
        )
        self.store_errors = Counter(
            r, p + "store_rejected_total", "batches the store refused (answered 500)", sender
        )
        Gauge(r, p + "in_flight_batches", "batches being received or written now", in_flight)
        Gauge(r, p + "dedupe_keys", "event keys held for deduplication", keys)
        Gauge(r, p + "open_connections", "connections open now", connections)
