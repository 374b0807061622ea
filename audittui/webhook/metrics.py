"""Counters, gauges and histograms rendered in the Prometheus text format (version 0.0.4).

The standard library is enough for the few series the receiver keeps, and it keeps the
receiver free of another dependency. Label values come from the network (sender names): they
are escaped as the format requires (backslash, double quote, newline)."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable

Labels = tuple[str, ...]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a write or an fsync of a batch takes from tens of µs (page cache) to seconds.
LATENCY_BUCKETS = (1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Labels, values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, registry: Registry, name: str, help: str, labels: Labels) -> None:
        self.name, self.help, self.labelnames = name, help, labels
        self._lock = registry.lock
        registry.metrics.append(self)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, registry: Registry, name: str, help: str, labels: Labels = ()) -> None:
        super().__init__(registry, name, help, labels)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, by: float = 1) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + by

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0)

    def render(self) -> list[str]:
        out = self.header()
        if not self._values and not self.labelnames:
            out.append(f"{self.name} 0")
        for labels, v in sorted(self._values.items()):
            out.append(f"{self.name}{_labels(self.labelnames, labels)} {_number(v)}")
        return out


class Gauge(_Metric):
    """A value read when rendered (``read`` returns it)."""

    kind = "gauge"

    def __init__(self, registry: Registry, name: str, help: str, read: Callable[[], float]) -> None:
        super().__init__(registry, name, help, ())
        self._read = read

    def render(self) -> list[str]:
        return [*self.header(), f"{self.name} {_number(self._read())}"]


class LabelledGauge(_Metric):
    kind = "gauge"

    def __init__(self, registry: Registry, name: str, help: str, labels: Labels) -> None:
        super().__init__(registry, name, help, labels)
        self._values: dict[Labels, float] = {}

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[labels] = value

    def render(self) -> list[str]:
        out = self.header()
        for labels, v in sorted(self._values.items()):
            out.append(f"{self.name}{_labels(self.labelnames, labels)} {_number(v)}")
        return out


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        registry: Registry,
        name: str,
        help: str,
        labels: Labels = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(registry, name, help, labels)
        self.buckets = buckets
        self._series: dict[Labels, list[float]] = {}  # per bucket counts, then +Inf, sum

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
            series[bisect.bisect_left(self.buckets, value)] += 1
            series[-1] += value

    def render(self) -> list[str]:
        out = self.header()
        for labels, series in sorted(self._series.items()):
            running = 0.0
            for bound, count in zip((*self.buckets, math.inf), series[:-1], strict=True):
                running += count
                le = 'le="' + _number(bound) + '"'
                out.append(
                    f"{self.name}_bucket{_labels(self.labelnames, labels, le)} {_number(running)}"
                )
            out.append(f"{self.name}_sum{_labels(self.labelnames, labels)} {_number(series[-1])}")
            out.append(f"{self.name}_count{_labels(self.labelnames, labels)} {_number(running)}")
        return out


class Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: list[_Metric] = []

    def render(self) -> bytes:
        lines: list[str] = []
        with self.lock:
            for metric in self.metrics:
                lines.extend(metric.render())
        return ("\n".join(lines) + "\n").encode()


class ReceiverMetrics:
    """The receiver's series. ``sender`` labels name authenticated senders only (their number
    is the number of API servers); what failed before authentication has no sender label."""

    def __init__(self, in_flight: Callable[[], float], keys: Callable[[], float]) -> None:
        r = self.registry = Registry()
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
            r, p + "events_deduplicated_total", "events already in the spool, dropped", sender
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
            "batches refused as bad input (400, 413, 415)",
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
            r, p + "connections_refused_total", "connections closed at once: too many open"
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
