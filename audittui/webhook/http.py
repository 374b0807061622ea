"""The receiver's HTTP(S) side: one asyncio event loop holds every connection (its socket and
a little state, not a thread), h11 parses the request heads and frames chunked bodies, and a
pool of ``max_in_flight`` threads does the blocking work of a batch (decode, deduplicate,
write and fdatasync, or the store's INSERT). A body of known length is received straight into
its own buffer (no copy on the way).

Connections before requests, so that no one can keep an API server out without its
credentials:

- A connection is counted the moment it is accepted, before its TLS handshake, which is done
  here (``start_tls``) within the header deadline: ``max_connections`` in all,
  ``max_per_address`` from one address (an IPv6 address counts by its /64).
- When every slot is held, the oldest connection not yet authenticated (mutual TLS: its
  handshake done; a token: a request authorized) is closed to make room; only when all are
  authenticated is the new one closed.
- Deadlines: the handshake, request line and headers of a request within ``header_timeout``
  (from the accept for the first request, from its first byte for the next); a body within
  ``body_timeout``; a kept-alive connection waits ``idle_timeout`` for its next request.
- What a connection sends beyond the request being handled is held up to :data:`HOLD` bytes,
  then its reading pauses; an answer it does not read pauses the next request.
- When ``accept`` fails for want of file descriptors, asyncio stops accepting for a second
  (counted in ``accept_errors_total``), and the connection cap is kept below the limit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import h11

from .metrics import CONTENT_TYPE
from .server import RETRY_OVERLOAD, Answer, Body, Receiver, retry

SCRATCH = 1 << 16  # bytes read at a time outside a body
HOLD = 1 << 16  # bytes held beyond the request being handled before reading pauses
HEADERS_MAX = 64 << 10  # request line and headers; more: 431
DRAIN_MAX = 1 << 20  # a refused body up to this size is read so the connection can be reused
SERVER = "audittui-webhook"
STOP_POLL = 0.2  # seconds between looks at the stop event
CLOSE_WAIT = 2.0  # seconds a closing connection may take to send its last bytes


def serve(receiver: Receiver, stop: threading.Event) -> None:
    """Serve until ``stop`` is set, then stop gracefully: no new connections, idle ones
    closed, requests under way finished (at most ``stop_timeout`` for a body still
    arriving: not acknowledged, so sent again), every batch in the pool made durable."""
    asyncio.run(_Server(receiver).run(stop))


def address_key(host: str) -> str:
    """What the per-address cap counts: the IPv4 address, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Closed(Exception):
    """The connection ended, or is to be closed without another word."""


class _Wire(asyncio.BufferedProtocol):
    """One connection: its bytes, its place in the accounting, the task that serves it."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.host = ""
        self.key = ""
        self.task: asyncio.Task[None] | None = None
        self.idle = True  # waiting for the first byte of a request: closed by a stop
        self.busy = False  # its batch is in the pool: finished even by a stop
        self._scratch = memoryview(bytearray(SCRATCH))  # a view: asyncio's TLS reads slice it
        self._pending = bytearray()  # received, not yet taken
        self._sink: memoryview | None = None  # a body being received in place
        self._into_sink = False  # the last buffer handed to asyncio was the sink
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._ended = False  # the peer sent its last byte, or the connection is gone
        self._lost = False
        self._paused = False

    # -- asyncio's side -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.host = str(peer[0]).removeprefix("::ffff:") if peer else ""
        self.key = address_key(self.host)
        if not self.server.open(self):
            transport.abort()
            return
        if self.server.rx.ctx is not None:
            transport.pause_reading()  # the ClientHello is start_tls's to read, not ours
        self.task = asyncio.get_running_loop().create_task(self.server.serve(self))

    def get_buffer(self, sizehint: int) -> memoryview:
        # never an empty buffer: asyncio would read it as the end of the connection
        self._into_sink = self._sink is not None and len(self._sink) > 0
        return self._sink if self._sink is not None and self._into_sink else self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self._into_sink and self._sink is not None:
            self._sink = self._sink[nbytes:]
        else:
            self._pending += self._scratch[:nbytes]
            if len(self._pending) > HOLD and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._ended = True
        self._wake()
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = self._lost = True
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self.server.close(self)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- the serving task's side --------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def data(self) -> bytes:
        """The bytes received and not yet taken; b"" once the peer has sent its last."""
        while not self._pending and not self._ended:
            await self._wait()
        data = bytes(self._pending)
        self._pending.clear()
        return data

    def unread(self, data: bytes) -> None:
        """Bytes taken but not used (what came after a request's head): first in line."""
        self._pending[:0] = data

    async def fill(self, view: memoryview) -> None:
        """Fill ``view`` with the next bytes, received into it; raises _Closed when the
        connection ends first."""
        n = min(len(self._pending), len(view))
        view[:n] = self._pending[:n]
        del self._pending[:n]
        self._sink = view[n:]
        try:
            while len(self._sink):
                if self._ended:
                    raise _Closed
                await self._wait()
        finally:
            self._sink = None

    async def write(self, data: bytes) -> None:
        """Send ``data``; returns once the peer reads it fast enough (its buffer back under
        asyncio's mark)."""
        if self._lost or self.transport is None:
            raise _Closed
        self.transport.write(data)
        if self._writable is not None:
            await self._writable

    def close(self) -> None:
        """Close after what is written is sent, or abort after :data:`CLOSE_WAIT`."""
        if self.transport is not None and not self._lost:
            self.transport.close()
            asyncio.get_running_loop().call_later(CLOSE_WAIT, self.transport.abort)

    def kill(self) -> None:
        """Close at once (the descriptor goes now), and stop serving."""
        if self.transport is not None:
            self.transport.abort()
        if self.task is not None:
            self.task.cancel()


class _Server:
    def __init__(self, receiver: Receiver) -> None:
        self.rx = receiver
        self.config = receiver.config
        self.m = receiver.metrics
        self.conns: dict[_Wire, None] = {}
        self.untrusted: dict[_Wire, None] = {}  # oldest first: the first to make room
        self.per_key: dict[str, int] = {}
        self.pool = ThreadPoolExecutor(self.config.max_in_flight, "audittui-batch")
        self._logged: dict[str, float] = {}

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        server = await loop.create_server(lambda: _Wire(self), sock=self.rx.sock, backlog=128)
        try:
            while not stop.is_set():
                await asyncio.sleep(STOP_POLL)
            self.rx.stopping = True
            server.close()  # no new connections
            deadline = loop.time() + self.config.stop_timeout
            while self.conns and loop.time() < deadline:
                for wire in list(self.conns):
                    if wire.idle:
                        wire.kill()
                await asyncio.sleep(0.05)
            for wire in list(self.conns):  # bodies still arriving: not acknowledged
                if not wire.busy:
                    wire.kill()
            while self.conns:  # batches in the pool: made durable and answered
                await asyncio.sleep(0.05)
        finally:
            server.close()
            await loop.run_in_executor(None, self.pool.shutdown)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            self.m.accept_errors.inc()  # asyncio tries again in a second
            self._log_rarely("accept", "cannot accept connections: {}", context.get("exception"))
            return
        self._log_rarely(message, "unexpected error: {} {!r}", message, context.get("exception"))

    def _log_rarely(self, what: str, template: str, *values: object) -> None:
        now = time.monotonic()
        if now - self._logged.get(what, -1e9) >= 60:
            self._logged[what] = now
            self.rx.log(template, *(str(v) for v in values))

    # -- connections ------------------------------------------------------------------------

    def open(self, wire: _Wire) -> bool:
        """Count a new connection in, making room if need be; False when it is refused."""
        c = self.config
        if self.per_key.get(wire.key, 0) >= c.max_per_address:
            self.m.refused_connections.inc("per_address")
            return False
        if len(self.conns) >= c.max_connections:
            if not self.untrusted:
                self.m.refused_connections.inc("full")
                return False
            victim = next(iter(self.untrusted))
            self.close(victim)
            victim.kill()
            self.m.evicted.inc()
        self.conns[wire] = None
        self.untrusted[wire] = None
        self.per_key[wire.key] = self.per_key.get(wire.key, 0) + 1
        self.rx.open_connections = len(self.conns)
        return True

    def close(self, wire: _Wire) -> None:
        """Count a connection out (closed, or being closed at once)."""
        if wire not in self.conns:
            return
        del self.conns[wire]
        self.untrusted.pop(wire, None)
        left = self.per_key[wire.key] - 1
        if left:
            self.per_key[wire.key] = left
        else:
            del self.per_key[wire.key]
        self.rx.open_connections = len(self.conns)

    def _trust(self, wire: _Wire) -> None:
        self.untrusted.pop(wire, None)

    async def serve(self, wire: _Wire) -> None:
        try:
            await self._conversation(wire)
        except (_Closed, TimeoutError, asyncio.CancelledError, OSError, h11.LocalProtocolError):
            pass  # went away, stalled, evicted or stopped (ssl.SSLError is an OSError)
        finally:
            wire.close()
            # Counted out now: a connection lost during its handshake is never told so (its
            # transport then belongs to the TLS layer), and a closing one is gone within
            # CLOSE_WAIT.
            self.close(wire)

    async def _conversation(self, wire: _Wire) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.header_timeout  # the handshake and first head
        sender = wire.host
        if self.rx.ctx is not None:
            assert wire.transport is not None
            try:
                async with asyncio.timeout_at(deadline):
                    tls = await loop.start_tls(wire.transport, wire, self.rx.ctx, server_side=True)
            except TimeoutError:
                self.m.timeouts.inc("headers")
                return
            except ssl.SSLError:
                self.m.tls_failures.inc()
                return
            assert tls is not None
            wire.transport = tls
            if self.config.client_ca:
                sender = _common_name(tls.get_extra_info("ssl_object")) or sender
                self._trust(wire)  # a certificate of the client CA: authenticated
        first: float | None = deadline
        while True:
            h = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADERS_MAX)
            request = await self._request(wire, h, first)
            if request is None:
                return
            first = None
            wire.idle = False
            if not await self._respond(wire, h, request, sender) or self.rx.stopping:
                return
            wire.idle = True

    async def _request(
        self, wire: _Wire, h: h11.Connection, deadline: float | None
    ) -> h11.Request | None:
        """The next request's line and headers, or None when the connection is to close. The
        first request has the deadline of the accept; a next one waits ``idle_timeout`` for
        its first byte, then has ``header_timeout`` for the rest."""
        loop = asyncio.get_running_loop()
        started = deadline is not None
        limit = deadline if deadline is not None else loop.time() + self.config.idle_timeout
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                code = 431 if exc.error_status_hint == 431 else 400
                await self._send(wire, (code, f"bad request: {exc}\n".encode(), {}), True)
                return None
            if event is not h11.NEED_DATA:
                return event if isinstance(event, h11.Request) else None
            if self.rx.stopping and not started:
                return None
            try:
                async with asyncio.timeout_at(limit):
                    data = await wire.data()
            except TimeoutError:
                if started:
                    self.m.timeouts.inc("headers")
                return None
            if data:
                wire.idle = False
                if not started:
                    started = True
                    limit = loop.time() + self.config.header_timeout
            h.receive_data(data)

    # -- requests ---------------------------------------------------------------------------

    async def _respond(
        self, wire: _Wire, h: h11.Connection, request: h11.Request, sender: str
    ) -> bool:
        """Answer one request; False when the connection is to close."""
        headers = dict(request.headers)
        if b"transfer-encoding" not in headers:
            # A body of known length (or none) is read here, not by h11: what h11 took past
            # the head goes back in line.
            wire.unread(h.trailing_data[0])
        keep = _keep_alive(request)
        path = request.target.split(b"?", 1)[0]
        if request.method == b"POST":
            return await self._post(wire, h, headers, sender, keep)
        if request.method != b"GET":
            await self._send(wire, (405, b"method not allowed\n", {"Allow": "GET, POST"}), True)
            return False
        if path == b"/healthz":
            answer: Answer = (200, b"ok\n", {})
        elif path == b"/metrics":
            if not self.rx.authorized(headers.get(b"authorization")):
                self.m.unauthorized.inc()
                answer = (401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
            else:
                self._trust(wire)
                answer = (200, self.m.registry.render(), {"Content-Type": CONTENT_TYPE})
        else:
            answer = (404, b"not found: POST EventList batches; GET /healthz, /metrics\n", {})
        return await self._refuse(wire, h, headers, answer, keep)

    async def _post(
        self,
        wire: _Wire,
        h: h11.Connection,
        headers: dict[bytes, bytes],
        sender: str,
        keep: bool,
    ) -> bool:
        rx, m, c = self.rx, self.m, self.config
        if not rx.authorized(headers.get(b"authorization")):
            m.unauthorized.inc()
            answer = (401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
            return await self._refuse(wire, h, headers, answer, keep)
        self._trust(wire)
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        length = headers.get(b"content-length")
        chunked = b"transfer-encoding" in headers
        too_large: Answer = (413, f"body over {c.max_body:,} bytes\n".encode(), {})
        if length is None and not chunked:
            m.bad_requests.inc(sender, "no_length")
            await self._send(wire, (411, b"Content-Length required\n", {}), True)
            return False
        if not chunked and length is not None and int(length) > c.max_body:
            m.bad_requests.inc(sender, "too_large")
            await self._send(wire, too_large, True)
            return False
        if encoding not in (b"identity", b"gzip"):
            m.bad_requests.inc(sender, "content_encoding")
            answer = (415, b"Content-Encoding must be identity or gzip\n", {})
            return await self._refuse(wire, h, headers, answer, keep)
        if not rx.admit():
            m.throttled.inc(sender, "stopping" if rx.stopping else "in_flight")
            answer = retry(RETRY_OVERLOAD, "too many batches in flight")
            return await self._refuse(wire, h, headers, answer, keep)
        try:
            if h.they_are_waiting_for_100_continue:
                await wire.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._body(wire, h, None if chunked else int(length or 0))
            if body is None:
                m.bad_requests.inc(sender, "too_large")
                await self._send(wire, too_large, True)
                return False
            wire.busy = True
            try:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.pool, rx.handle_batch, sender, body, encoding.decode()
                )
            except Exception as exc:  # a fault of ours: 500 is retried by the API server
                rx.log("error on a batch from {}: {!r}", sender, exc)
                answer = (500, b"internal error\n", {})
        finally:
            wire.busy = False
            rx.leave()  # before answering: the sender's next batch may follow at once
        await self._send(wire, answer, not keep)
        return keep

    async def _body(self, wire: _Wire, h: h11.Connection, length: int | None) -> Body | None:
        """The whole body within ``body_timeout`` (``length`` bytes, received in place, or
        chunked, through h11); None when a chunked one passes ``max_body``. Raises _Closed
        when the client went away, stalled or broke the framing."""
        try:
            async with asyncio.timeout(self.config.body_timeout):
                if length is not None:
                    data = bytearray(length)
                    await wire.fill(memoryview(data))
                    return Body(data)
                data = bytearray()
                while True:
                    event = h.next_event()
                    if event is h11.NEED_DATA:
                        h.receive_data(await wire.data())
                    elif isinstance(event, h11.Data):
                        data += event.data
                        if len(data) > self.config.max_body:
                            return None
                    elif isinstance(event, h11.EndOfMessage):
                        wire.unread(h.trailing_data[0])
                        return Body(data)
                    else:
                        raise _Closed
        except TimeoutError:
            self.m.timeouts.inc("body")
            raise _Closed from None
        except h11.RemoteProtocolError:
            raise _Closed from None

    async def _refuse(
        self,
        wire: _Wire,
        h: h11.Connection,
        headers: dict[bytes, bytes],
        answer: Answer,
        keep: bool,
    ) -> bool:
        """Answer before reading the body (or one without a body): a small body (by its
        Content-Length) is read and dropped so the connection stays usable; a big or chunked
        one is not read and the connection is closed."""
        length = int(headers.get(b"content-length", b"0"))  # none: no body
        keep = keep and length <= DRAIN_MAX and b"transfer-encoding" not in headers
        keep = keep and not h.they_are_waiting_for_100_continue
        await self._send(wire, answer, not keep)
        if keep and length:
            try:
                async with asyncio.timeout(self.config.body_timeout):
                    await wire.fill(memoryview(bytearray(length)))
            except TimeoutError:
                return False
        return keep

    async def _send(self, wire: _Wire, answer: Answer, close: bool) -> None:
        """Write an answer (headers and body in one segment). Written here rather than by
        h11: the values are the receiver's own, and this is the hot path of every batch."""
        code, body, extra = answer
        head = [
            f"HTTP/1.1 {code} {HTTPStatus(code).phrase}",
            f"Server: {SERVER}",
            f"Content-Type: {extra.pop('Content-Type', 'text/plain; charset=utf-8')}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in extra.items()),
        ]
        if close or self.rx.stopping:
            head.append("Connection: close")
        self.m.requests.inc(str(code))
        async with asyncio.timeout(self.config.body_timeout):
            await wire.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)


def _keep_alive(request: h11.Request) -> bool:
    """May the connection serve another request after this one (h11's own rule)?"""
    if request.http_version < b"1.1":
        return False
    return not any(
        name == b"connection" and b"close" in value.lower() for name, value in request.headers
    )


def _common_name(ssl_object: ssl.SSLObject | None) -> str | None:
    """The CN of the client certificate checked in the handshake."""
    if ssl_object is None:
        return None
    cert: dict[str, Any] = dict(ssl_object.getpeercert() or {})
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value:
                return str(value)
    return None
