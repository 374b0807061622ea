"""The receiver's HTTP(S) side: TLS (optionally mutual), bearer tokens, admission, the answers
the API server's webhook client acts on, ``/metrics``, ``/healthz`` and a graceful stop.

What the API server does with an answer (staging/src/k8s.io/apiserver/pkg/util/webhook): any
2xx is delivered; it retries only on a connection reset, 500, 504, 429 or an answer carrying
``Retry-After``; anything else loses the batch. Hence: 200 only once the batch is durable;
429 with ``Retry-After`` when it cannot be made durable now (too many batches in flight, a
full or unwritable spool); 400 and 413 only for input that no retry can fix; 500 (retried)
for a fault of the receiver itself. Never 502, never 503 without ``Retry-After``.

One thread per connection (the API servers keep a few connections open); at most
``max_in_flight`` batches are read and written at once, so memory stays within about
``max_in_flight × 3 × max_body``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

import orjson

from .batch import BadBatch, Parsed, parse_batch
from .dedupe import KeysBusy, RecentKeys, rebuild
from .metrics import CONTENT_TYPE, ReceiverMetrics
from .spool import Spool, SpoolError, Timings
from .store import StoreDown, StoreRejected, StoreSink

Log = Callable[..., None]  # (template, *values): one line on stderr, the values made inert
MiB = 1 << 20
RETRY_OVERLOAD = 1  # seconds: another request is done in a few ms; the API server waits ≥ 10 s
RETRY_SPOOL = 10  # seconds: a full disk is not freed in a moment
RETRY_STORE = 5  # seconds: a store restarting takes a few
WAIT_FOR_SENDER = 20.0  # seconds a batch waits for the sender's previous batch (30 s timeout)
DRAIN_MAX = 1 * MiB  # a refused body up to this size is read so the connection can be reused


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
    dedupe_keys: int = 1_000_000
    idle_timeout: float = 60.0  # seconds a connection may stay silent (also within a body)
    stop_timeout: float = 30.0  # seconds a stop waits for requests still arriving

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


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


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class Receiver:
    """The spool (or the store), the deduplication window, the metrics and the HTTP server
    over them. With ``store``, batches go to it and no spool is kept (``config.spool`` unused);
    the deduplication window then starts empty, and the table's key is what keeps a batch
    sent again after a restart from being doubled."""

    def __init__(self, config: Config, log: Log, store: StoreSink | None = None) -> None:
        self.config = config
        self.store = store
        self.log = log
        self.stopping = False
        self._in_flight = 0
        self._admit = threading.Lock()
        self._tokens = tuple(_digest(t) for t in config.tokens)
        self.keys = RecentKeys(config.dedupe_keys)
        self.metrics = ReceiverMetrics(lambda: self._in_flight, lambda: len(self.keys))
        m = self.metrics
        timings = Timings(
            write=lambda s, t: m.write_seconds.observe(t, s),
            fsync=lambda s, t: m.fsync_seconds.observe(t, s),
            rotated=lambda s: m.rotations.inc(s),
        )
        ctx = tls_context(config)  # before the spool: a bad certificate leaves nothing behind
        self._failing: set[str] = set()  # senders whose last write failed (logged once)
        self.spool: Spool | None = None
        self.repaired: list[str] = []
        self.rebuilt, self.rebuild_seconds = (0, 0), 0.0
        if store is not None:
            store.observe = m.store_seconds.observe
            self.httpd = _Server(self, ctx)
            return
        spool = self.spool = Spool(config.spool, config.max_size, config.max_backups, timings)
        try:
            self.repaired = spool.repair()
            t = time.perf_counter()
            self.rebuilt = rebuild(self.keys, spool.folder)
            self.rebuild_seconds = time.perf_counter() - t
            self.httpd = _Server(self, ctx)
        except BaseException:
            spool.close()
            raise

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
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

    def authorized(self, header: str | None) -> bool:
        """A bearer token among the configured ones (compared in constant time, as digests,
        so neither content nor length shows in the timing); True when none is configured."""
        if not self._tokens:
            return True
        scheme, _, value = (header or "").partition(" ")
        given = _digest(value.strip().encode() if scheme.lower() == "bearer" else b"")
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(given, token)
        return ok

    # -- one batch ------------------------------------------------------------------------

    def handle_batch(self, sender: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) for one EventList from ``sender``: 200 once durable."""
        m = self.metrics
        try:
            parsed = parse_batch(body)
        except BadBatch as exc:
            reason = "not_json" if str(exc).startswith("not JSON") else "not_eventlist"
            m.bad_requests.inc(sender, reason)
            return 400, f"{exc}\n".encode(), {}
        del body  # the lines are copies: the body's memory can go
        for why, n in parsed.rejected.items():
            m.rejected.inc(sender, why, by=n)
        m.events.inc(sender, by=parsed.items)
        if self.store is not None:
            return self._to_store(self.store, sender, parsed)
        assert self.spool is not None
        file = self.spool.sender(sender)
        if not file.lock.acquire(timeout=WAIT_FOR_SENDER):
            m.throttled.inc(sender, "sender_busy")
            return _retry(RETRY_OVERLOAD, "the sender's previous batch is still being written")
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
                    return _retry(RETRY_OVERLOAD, exc.detail)
                m.spool_ok.set(0, sender)
                if sender not in self._failing:
                    self._failing.add(sender)
                    self.log("spool: {} (answering 429 until it works again)", exc.detail)
                return _retry(RETRY_SPOOL, f"the spool cannot take the batch: {exc.detail}")
            except BaseException:
                self.keys.release(keys[done:])
                raise
        finally:
            file.lock.release()
        if sender in self._failing:
            self._failing.discard(sender)
            self.log("spool: writing {} again", file.name)
        m.spool_ok.set(1, sender)
        m.batches.inc(sender)
        m.deduplicated.inc(sender, by=len(parsed.keys) - len(keys))
        m.last_batch.set(time.time(), sender)
        return _accepted(parsed, len(keys))

    def _claim(self, sender: str, parsed: Parsed) -> list[bool] | tuple[int, bytes, dict[str, str]]:
        """Which of the batch's keys are new (claimed until committed or released), or the
        429 to answer when the dedupe window is busy."""
        try:
            return self.keys.claim(parsed.keys, timeout=WAIT_FOR_SENDER)
        except KeysBusy as exc:
            self.metrics.throttled.inc(sender, "keys_busy")
            return _retry(RETRY_OVERLOAD, str(exc))

    def _to_store(
        self, store: StoreSink, sender: str, parsed: Parsed
    ) -> tuple[int, bytes, dict[str, str]]:
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
            return _retry(RETRY_STORE, f"the store cannot take the batch now: {exc}")
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
        m.batches.inc(sender)
        m.deduplicated.inc(sender, by=len(parsed.keys) - len(keys))
        m.last_batch.set(time.time(), sender)
        return _accepted(parsed, len(keys))

    # -- running and stopping -------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then stop gracefully: no new connections, idle ones
        closed, requests under way finished (at most ``stop_timeout`` for a body still
        arriving), every write completed, the spool closed."""
        thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        thread.start()
        while not stop.wait(0.5):
            pass
        self.stopping = True
        self.httpd.shutdown()
        self.httpd.server_close()
        deadline = time.monotonic() + self.config.stop_timeout
        while self.httpd.connections and time.monotonic() < deadline:
            self.httpd.close_idle()
            time.sleep(0.05)
        self.httpd.close_all()  # bodies still arriving: not acknowledged, sent again later
        if self.spool is not None:
            self.spool.close()  # waits for each sender's write under way
        if self.store is not None:
            self.store.close()


def _accepted(parsed: Parsed, written: int) -> tuple[int, bytes, dict[str, str]]:
    summary = {
        "items": parsed.items,
        "written": written,
        "duplicates": len(parsed.keys) - written,
        "rejected": sum(parsed.rejected.values()),
    }
    return 200, orjson.dumps(summary) + b"\n", {"Content-Type": "application/json"}


def _retry(seconds: int, why: str) -> tuple[int, bytes, dict[str, str]]:
    return 429, f"{why}\n".encode(), {"Retry-After": str(seconds)}


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.idle = True  # waiting for a request line: may be closed by a stop
        self.lock = threading.Lock()

    def shut(self) -> None:
        with contextlib.suppress(OSError):  # closed already
            self.sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, receiver: Receiver, ctx: ssl.SSLContext | None) -> None:
        self.receiver = receiver
        self.ctx = ctx
        self.connections: set[_Connection] = set()
        self._conn_lock = threading.Lock()
        host = receiver.config.host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, receiver.config.port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN (a DNS query): not needed here.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.ctx is not None:
            # The handshake runs in the connection's thread (setup), not in the accept loop.
            sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            full = len(self.connections) >= self.receiver.config.max_connections
        if full:
            self.receiver.metrics.refused_connections.inc()
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLError):
            self.receiver.metrics.tls_failures.inc()
        elif not isinstance(exc, OSError):  # a client going away is no error of ours
            self.receiver.log("unexpected error serving {}: {!r}", str(client_address[0]), exc)

    def track(self, sock: socket.socket) -> _Connection:
        conn = _Connection(sock)
        with self._conn_lock:
            self.connections.add(conn)
        return conn

    def untrack(self, conn: _Connection) -> None:
        with self._conn_lock:
            self.connections.discard(conn)

    def close_idle(self) -> None:
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with conn.lock:
                if conn.idle:
                    conn.shut()

    def close_all(self) -> None:
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            conn.shut()


class _TooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses its connections
    # Headers and body are two writes: with Nagle on, the body would wait for the client's
    # delayed ACK (40 ms a batch).
    disable_nagle_algorithm = True
    server_version = "audittui-webhook"
    sys_version = ""
    server: _Server
    conn: _Connection | None = None

    # -- connection -----------------------------------------------------------------------

    def setup(self) -> None:
        self.request.settimeout(self.server.receiver.config.idle_timeout)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # raises: handle_error counts it
        super().setup()
        self.conn = self.server.track(self.request)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.conn is not None:
                self.server.untrack(self.conn)

    def handle_one_request(self) -> None:
        conn = self.conn
        assert conn is not None
        if self.server.receiver.stopping:
            self.close_connection = True
            return
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        with conn.lock:
            conn.idle = False
        try:
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self._reply(405, b"method not allowed\n", {"Allow": "GET, POST"}, close=True)
                return
            method()
            self.wfile.flush()
        except (TimeoutError, OSError):
            self.close_connection = True
        finally:
            with conn.lock:
                conn.idle = True

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per request: /metrics counts them

    # -- answers --------------------------------------------------------------------------

    def _reply(
        self, code: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False
    ) -> None:
        self.send_response(code)
        headers = headers or {}
        self.send_header("Content-Type", headers.pop("Content-Type", "text/plain; charset=utf-8"))
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        if close or self.server.receiver.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.server.receiver.metrics.requests.inc(str(code))

    def _refuse(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer before reading the body: a small body is read and dropped (the connection
        stays usable), a big one is not read and the connection is closed."""
        length = self._length()
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        keep = not chunked and length is not None and length <= DRAIN_MAX
        if keep and length:
            try:
                self.rfile.read(length)
            except OSError:
                keep = False
        self._reply(code, body, headers, close=not keep)

    def _length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            n = int(value)
        except ValueError:
            return None
        return n if n >= 0 else None

    def _sender(self) -> str:
        """The certificate's CN with mutual TLS, else the client's address."""
        if isinstance(self.request, ssl.SSLSocket) and self.server.receiver.config.client_ca:
            cert: dict[str, Any] = dict(self.request.getpeercert() or {})
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName" and value:
                        return str(value)
        host = str(self.client_address[0])
        return host.removeprefix("::ffff:")  # an IPv4 client of a dual-stack socket

    # -- endpoints ------------------------------------------------------------------------

    def do_GET(self) -> None:
        receiver = self.server.receiver
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, b"ok\n")
        elif path == "/metrics":
            if not receiver.authorized(self.headers.get("Authorization")):
                receiver.metrics.unauthorized.inc()
                self._reply(401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
                return
            self._reply(200, receiver.metrics.registry.render(), {"Content-Type": CONTENT_TYPE})
        else:
            self._reply(404, b"not found: POST EventList batches; GET /healthz, /metrics\n")

    def do_POST(self) -> None:
        receiver = self.server.receiver
        config = receiver.config
        m = receiver.metrics
        if not receiver.authorized(self.headers.get("Authorization")):
            m.unauthorized.inc()
            self._refuse(401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
            return
        sender = self._sender()
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        transfer = self.headers.get("Transfer-Encoding", "").strip().lower()
        length = self._length()
        if transfer not in ("", "chunked"):
            m.bad_requests.inc(sender, "transfer_encoding")
            self._reply(400, b"unsupported Transfer-Encoding\n", close=True)
            return
        if not transfer and length is None:
            m.bad_requests.inc(sender, "no_length")
            self._reply(411, b"Content-Length required\n", close=True)
            return
        if length is not None and length > config.max_body:
            m.bad_requests.inc(sender, "too_large")
            self._reply(413, f"body over {config.max_body:,} bytes\n".encode(), close=True)
            return
        if encoding not in ("identity", "gzip"):
            m.bad_requests.inc(sender, "content_encoding")
            self._refuse(415, b"Content-Encoding must be identity or gzip\n")
            return
        if not receiver.admit():
            m.throttled.inc(sender, "stopping" if receiver.stopping else "in_flight")
            code, reply, headers = _retry(RETRY_OVERLOAD, "too many batches in flight")
            self._refuse(code, reply, headers)
            return
        try:
            answer = self._receive(sender, None if transfer else length, encoding)
        finally:
            receiver.leave()  # before answering: the sender's next batch may follow at once
        if answer is None:  # the client went away or stalled: nothing to answer
            self.close_connection = True
            return
        code, reply, headers, close = answer
        self._reply(code, reply, headers, close=close)

    def _receive(
        self, sender: str, length: int | None, encoding: str
    ) -> tuple[int, bytes, dict[str, str], bool] | None:
        """Read, decode and write one batch (an in-flight slot held): the answer, or None
        when the client went away."""
        receiver = self.server.receiver
        config = receiver.config
        m = receiver.metrics
        too_large = f"body over {config.max_body:,} bytes\n".encode()
        try:
            body = self._read_body(length, config.max_body)
        except _TooLarge:
            m.bad_requests.inc(sender, "too_large")
            return 413, too_large, {}, True
        if body is None:
            return None
        m.bytes_received.inc(sender, by=len(body))
        if encoding == "gzip":
            try:
                body = _gunzip(body, config.max_body)
            except _TooLarge:
                m.bad_requests.inc(sender, "too_large")
                return 413, too_large, {}, False
            except zlib.error:
                m.bad_requests.inc(sender, "bad_gzip")
                return 400, b"not gzip\n", {}, False
        try:
            code, reply, headers = receiver.handle_batch(sender, body)
        except Exception as exc:  # a fault of ours: 500 is retried by the API server
            receiver.log("error on a batch from {}: {!r}", sender, exc)
            return 500, b"internal error\n", {}, False
        return code, reply, headers, False

    def _read_body(self, length: int | None, limit: int) -> bytes | None:
        """The body (``length`` bytes, or chunked when None); None when the client went
        away or stalled past the idle timeout."""
        try:
            if length is not None:
                data = self.rfile.read(length)
                return data if len(data) == length else None
            parts: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\n"):
                    return None
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > limit:
                    raise _TooLarge
                data = self.rfile.read(size)
                if len(data) < size:
                    return None
                parts.append(data)
                self.rfile.readline(3)
        except ValueError:  # a bad chunk size
            return None
        except (TimeoutError, OSError):
            return None


def _gunzip(data: bytes, limit: int) -> bytes:
    inflate = zlib.decompressobj(wbits=31)
    out = inflate.decompress(data, limit + 1)
    if len(out) > limit or inflate.unconsumed_tail:
        raise _TooLarge
    return out


def _fresh(parsed: Parsed, fresh: list[bool]) -> tuple[list[bytes], list[bytes]]:
    """The lines and keys of a batch's events not seen before."""
    lines = [line for line, new in zip(parsed.lines, fresh, strict=True) if new]
    keys = [key for key, new in zip(parsed.keys, fresh, strict=True) if new]
    return lines, keys
