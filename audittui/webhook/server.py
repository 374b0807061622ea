"""The receiver: its configuration, the spool (or the store), the deduplication window, the
metrics, authentication, admission, and one batch from body to answer. The HTTP(S) side that
drives it is :mod:`.http`; :meth:`Receiver.close` ends it.

What the API server does with an answer (staging/src/k8s.io/apiserver/pkg/util/webhook): any
2xx is delivered; it retries only on a connection reset, 500, 504, 429 or an answer carrying
``Retry-After``; anything else loses the batch. Hence: 200 only once the batch is durable;
429 with ``Retry-After`` when it cannot be made durable now (too many batches in flight, a
full or unwritable spool); 400 and 413 only for input that no retry can fix; 500 (retried)
for a fault of the receiver itself. Never 502, never 503 without ``Retry-After``.

Memory: at most ``max_in_flight`` batches are read and handled at once, and each holds at
most about ``3 × max_body`` bytes: its body as received (≤ ``max_body``), decoded (≤
``max_body``; the received one is freed then), and its lines, keys and per-item objects
(≤ the decoded size plus :data:`.batch.ITEM_COST` per item, for at most ``max_body /
ITEM_COST`` items).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .batch import BadBatch, Key, Parsed, TooManyItems, max_items, parse_batch
from .dedupe import KeysBusy, RecentKeys, rebuild
from .gunzip import GzipError, TooLarge, gunzip
from .metrics import ReceiverMetrics
from .spool import Spool, SpoolError, Timings
from .store import StoreDown, StoreRejected, StoreSink

Log = Callable[..., None]  # (template, *values): one line on stderr, the values made inert
Answer = tuple[int, bytes, dict[str, str]]  # status, body, headers
MiB = 1 << 20
RETRY_OVERLOAD = 1  # seconds: another request is done in a few ms; the API server waits ≥ 10 s
RETRY_SPOOL = 10  # seconds: a full disk is not freed in a moment
RETRY_STORE = 5  # seconds: a store restarting takes a few
WAIT_FOR_SENDER = 20.0  # seconds a batch waits for the sender's previous batch (30 s timeout)
FILES_BESIDES_CONNECTIONS = 256  # descriptors kept for the spool's files, the pool, the rest


@dataclass
class Config:
    host: str
    port: int
    spool: str
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    tokens: tuple[bytes, ...] = ()
    max_size: int = 100 * MiB  # the API server's own default (--audit-log-maxsize 100)
    max_backups: int = 100  # likewise (--audit-log-maxbackup, 1.36)
    max_body: int = 64 * MiB
    max_in_flight: int = 8
    max_connections: int = 128
    max_per_address: int = 32
    dedupe_keys: int = 1_000_000
    header_timeout: float = 10.0  # seconds for the TLS handshake, request line and headers
    body_timeout: float = 60.0  # seconds for a whole body
    idle_timeout: float = 60.0  # seconds a kept-alive connection may wait for its next request
    stop_timeout: float = 30.0  # seconds a stop waits for requests still arriving

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


class Body:
    """A received body handed to the worker that decodes it, which takes the only reference
    (so that the received bytes are freed as soon as they are decoded)."""

    def __init__(self, data: bytearray) -> None:
        self._data: bytearray | None = data

    def take(self) -> bytearray:
        data, self._data = self._data, None
        assert data is not None
        return data


def is_loopback(host: str) -> bool:
    """Does ``host`` name only loopback addresses (``127.0.0.1``, ``::1``, ``localhost``)?"""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context (None for plain HTTP); with a client CA, a client certificate
    signed by it is required during the handshake. Raises OSError / ssl.SSLError."""
    if not config.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    if config.client_ca:
        ctx.load_verify_locations(cafile=config.client_ca)  # only this CA: no system store
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (both IPv4 and IPv6 on ``::``). Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    dual = family == socket.AF_INET6 and socket.has_dualstack_ipv6()
    return socket.create_server((host, port), family=family, backlog=128, dualstack_ipv6=dual)


def open_files_for(connections: int) -> int:
    """Raise the soft limit of open files to the hard one; the number of connections that
    fits under it (each takes a descriptor, and the rest of the receiver some more)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return connections
    return min(connections, soft - FILES_BESIDES_CONNECTIONS)


class StartError(Exception):
    """The receiver cannot start as configured (a one-line message)."""


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class Receiver:
    """The spool (or the store), the deduplication window and the metrics, with the listening
    socket bound. With ``store``, batches go to it and no spool is kept (``config.spool``
    unused); the deduplication window then starts empty, and the table's key is what keeps a
    batch sent again after a restart from being doubled. Raises OSError (the address or the
    spool), ssl.SSLError, or StartError (too few file descriptors)."""

    def __init__(self, config: Config, log: Log, store: StoreSink | None = None) -> None:
        self.config = config
        self.store = store
        self.log = log
        self.stopping = False
        self.open_connections = 0  # kept by the HTTP side
        self.max_items = max_items(config.max_body)
        self._in_flight = 0
        self._admit = threading.Lock()
        self._tokens = tuple(_digest(t) for t in config.tokens)
        self.keys = RecentKeys(config.dedupe_keys)
        self.metrics = ReceiverMetrics(
            lambda: self._in_flight, lambda: len(self.keys), lambda: self.open_connections
        )
        m = self.metrics
        timings = Timings(
            write=lambda s, t: m.write_seconds.observe(t, s),
            fsync=lambda s, t: m.fsync_seconds.observe(t, s),
            rotated=lambda s: m.rotations.inc(s),
        )
        fits = open_files_for(config.max_connections)
        if fits < config.max_connections:
            raise StartError(
                f"--max-connections {config.max_connections} needs "
                f"{config.max_connections + FILES_BESIDES_CONNECTIONS} open files, more than the "
                f"limit (ulimit -n): give at most {max(fits, 0)}"
            )
        self.ctx = tls_context(config)  # before the spool: a bad certificate leaves nothing
        self._failing: set[str] = set()  # senders whose last write failed (logged once)
        self.spool: Spool | None = None
        self.repaired: list[str] = []
        self.rebuilt, self.rebuild_seconds = (0, 0), 0.0
        if store is not None:
            store.observe = m.store_seconds.observe
            self.sock = listening_socket(config.host, config.port)
            return
        spool = self.spool = Spool(config.spool, config.max_size, config.max_backups, timings)
        try:
            self.repaired = spool.repair()
            t = time.perf_counter()
            self.rebuilt = rebuild(self.keys, spool)
            self.rebuild_seconds = time.perf_counter() - t
            self.sock = listening_socket(config.host, config.port)
        except BaseException:
            spool.close()
            raise

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    # -- admission ------------------------------------------------------------------------

    def admit(self) -> bool:
        with self._admit:
            if self._in_flight >= self.config.max_in_flight or self.stopping:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._admit:
            self._in_flight -= 1

    def authorized(self, header: bytes | None) -> bool:
        """A bearer token among the configured ones (compared in constant time, as digests,
        so neither content nor length shows in the timing); True when none is configured."""
        if not self._tokens:
            return True
        scheme, _, value = (header or b"").partition(b" ")
        given = _digest(value.strip() if scheme.lower() == b"bearer" else b"")
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(given, token)
        return ok

    # -- one batch ------------------------------------------------------------------------

    def handle_batch(self, sender: str, body: Body, encoding: str) -> Answer:
        """The answer to one EventList from ``sender`` (200 once durable); blocking, run by a
        worker thread. ``encoding``: ``identity`` or ``gzip``."""
        m = self.metrics
        data = body.take()
        m.bytes_received.inc(sender, by=len(data))
        if encoding == "gzip":
            try:
                data = gunzip(data, self.config.max_body)  # the received bytes freed here
            except TooLarge:
                m.bad_requests.inc(sender, "too_large")
                return 413, f"body over {self.config.max_body:,} bytes decoded\n".encode(), {}
            except GzipError as exc:
                m.bad_requests.inc(sender, "bad_gzip")
                return 400, f"{exc}\n".encode(), {}
        try:
            parsed = parse_batch(data, self.max_items)
        except BadBatch as exc:
            reason = "not_json" if str(exc).startswith("not JSON") else "not_eventlist"
            m.bad_requests.inc(sender, reason)
            return 400, f"{exc}\n".encode(), {}
        except TooManyItems as exc:
            m.bad_requests.inc(sender, "too_many_items")
            return 413, (
                f"{exc}: each item counts {self.config.max_body // self.max_items:,} bytes "
                f"against --max-body ({self.config.max_body:,})\n"
            ).encode(), {}  # fmt: skip
        del data  # the lines are copies: the body's memory can go
        for why, n in parsed.rejected.items():
            m.rejected.inc(sender, why, by=n)
        m.events.inc(sender, by=parsed.items)
        if self.store is not None:
            return self._to_store(self.store, sender, parsed)
        return self._to_spool(sender, parsed)

    def _to_spool(self, sender: str, parsed: Parsed) -> Answer:
        m = self.metrics
        assert self.spool is not None
        file = self.spool.sender(sender)
        if not file.lock.acquire(timeout=WAIT_FOR_SENDER):
            m.throttled.inc(sender, "sender_busy")
            return retry(RETRY_OVERLOAD, "the sender's previous batch is still being written")
        try:
            claimed = self._claim(sender, parsed)
            if not isinstance(claimed, list):
                return claimed
            lines, keys = _fresh(parsed, claimed)
            done = 0

            def durable(start: int, end: int, size: int) -> None:
                nonlocal done
                self.keys.commit(keys[start:end])
                done = end
                m.written.inc(sender, by=end - start)
                m.bytes_written.inc(sender, by=size)

            try:
                file.append(lines, durable)
            except SpoolError as exc:
                self.keys.release(keys[done:])
                m.throttled.inc(sender, exc.reason)
                if exc.reason == "stopping":
                    return retry(RETRY_OVERLOAD, exc.detail)
                m.spool_ok.set(0, sender)
                if sender not in self._failing:
                    self._failing.add(sender)
                    self.log("spool: {} (answering 429 until it works again)", exc.detail)
                return retry(RETRY_SPOOL, f"the spool cannot take the batch: {exc.detail}")
            except BaseException:
                self.keys.release(keys[done:])
                raise
        finally:
            file.lock.release()
        if sender in self._failing:
            self._failing.discard(sender)
            self.log("spool: writing {} again", file.name)
        m.spool_ok.set(1, sender)
        return self._done(sender, parsed, len(keys))

    def _done(self, sender: str, parsed: Parsed, written: int) -> Answer:
        m = self.metrics
        duplicates = len(parsed.keys) - written + parsed.repeated
        m.batches.inc(sender)
        m.deduplicated.inc(sender, by=duplicates)
        m.last_batch.set(time.time(), sender)
        summary = {
            "items": parsed.items,
            "written": written,
            "duplicates": duplicates,
            "rejected": sum(parsed.rejected.values()),
        }
        return 200, orjson.dumps(summary) + b"\n", {"Content-Type": "application/json"}

    def _claim(self, sender: str, parsed: Parsed) -> list[bool] | Answer:
        """Which of the batch's keys are new (claimed until committed or released), or the
        429 to answer when the dedupe window is busy."""
        try:
            return self.keys.claim(parsed.keys, timeout=WAIT_FOR_SENDER)
        except KeysBusy as exc:
            self.metrics.throttled.inc(sender, "keys_busy")
            return retry(RETRY_OVERLOAD, str(exc))

    def _to_store(self, store: StoreSink, sender: str, parsed: Parsed) -> Answer:
        """One batch into the store: 200 once the INSERT was acknowledged, 429 with
        Retry-After while the store is down or slow."""
        m = self.metrics
        claimed = self._claim(sender, parsed)
        if not isinstance(claimed, list):
            return claimed
        lines, keys = _fresh(parsed, claimed)
        try:
            back = store.insert(sender, lines)
        except StoreDown as exc:
            self.keys.release(keys)
            m.throttled.inc(sender, "store_down")
            m.store_ok.set(0, sender)
            if store.mark_down():
                self.log("store: {} (answering 429 until it works again)", str(exc))
            return retry(RETRY_STORE, f"the store cannot take the batch now: {exc}")
        except StoreRejected as exc:
            self.keys.release(keys)
            m.store_errors.inc(sender)
            self.log("store: rejected a batch from {}: {}", sender, str(exc))
            return 500, f"the store rejected the batch: {exc}\n".encode(), {}
        except BaseException:
            self.keys.release(keys)
            raise
        self.keys.commit(keys)
        if back:
            self.log("store: {} takes batches again", store.display)
        m.store_ok.set(1, sender)
        m.written.inc(sender, by=len(keys))
        return self._done(sender, parsed, len(keys))

    def close(self) -> None:
        """After the last batch: the spool closed (each sender's write under way waited
        for), or the store's connection."""
        self.sock.close()
        if self.spool is not None:
            self.spool.close()
        if self.store is not None:
            self.store.close()


def retry(seconds: int, why: str) -> Answer:
    """429 with ``Retry-After``: the API server sends the batch again."""
    return 429, f"{why}\n".encode(), {"Retry-After": str(seconds)}


def _fresh(parsed: Parsed, fresh: list[bool]) -> tuple[list[bytes], list[Key]]:
    """The lines and keys of a batch's events not seen before; the batch gives its lines up,
    so that each line has one holder (the writer may free them as it goes)."""
    lines = [line for line, new in zip(parsed.lines, fresh, strict=True) if new]
    keys = [key for key, new in zip(parsed.keys, fresh, strict=True) if new]
    parsed.lines = []
    return lines, keys
