"""The receiver's HTTP(S) side: one asyncio event loop holds every connection (its socket and
a little state, not a thread), h11 parses and frames the requests, and a pool of
``max_in_flight`` threads does the blocking work of a batch (decode, deduplicate, write and
fdatasync, or the store's INSERT).

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

READ = 1 << 18  # bytes per read (asyncio's own largest)
STREAM_LIMIT = 1 << 17  # a connection buffers up to twice this before its reading is paused
HEADERS_MAX = 64 << 10  # request line and headers; more: 431
DRAIN_MAX = 1 << 20  # a refused body up to this size is read so the connection can be reused
SERVER = "audittui-webhook"
STOP_POLL = 0.2  # seconds between looks at the stop event
CLOSE_WAIT = 2.0  # seconds a closing connection may take to send its last bytes (TLS: its alert)


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
    """The connection is to be closed without another word."""


class _Conn:
    """One connection's place in the accounting."""

    __slots__ = ("key", "writer", "task", "idle", "busy")

    def __init__(self, key: str, writer: asyncio.StreamWriter, task: asyncio.Task[Any]) -> None:
        self.key = key
        self.writer = writer
        self.task = task
        self.idle = True  # waiting for the first byte of a request: closed by a stop
        self.busy = False  # its batch is in the pool: finished even by a stop

    def kill(self) -> None:
        self.writer.transport.abort()  # the descriptor goes at once
        self.task.cancel()


class _Server:
    def __init__(self, receiver: Receiver) -> None:
        self.rx = receiver
        self.config = receiver.config
        self.m = receiver.metrics
        self.conns: dict[_Conn, None] = {}
        self.untrusted: dict[_Conn, None] = {}  # oldest first: the first to make room
        self.per_key: dict[str, int] = {}
        self.pool = ThreadPoolExecutor(self.config.max_in_flight, "audittui-batch")
        self._logged: dict[str, float] = {}

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        server = await asyncio.start_server(
            self._accepted, sock=self.rx.sock, limit=STREAM_LIMIT, backlog=128
        )
        try:
            while not stop.is_set():
                await asyncio.sleep(STOP_POLL)
            self.rx.stopping = True
            server.close()  # no new connections
            deadline = loop.time() + self.config.stop_timeout
            while self.conns and loop.time() < deadline:
                for conn in list(self.conns):
                    if conn.idle:
                        conn.kill()
                await asyncio.sleep(0.05)
            for conn in list(self.conns):  # bodies still arriving: not acknowledged
                if not conn.busy:
                    conn.kill()
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

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        task = asyncio.current_task()
        assert task is not None
        conn = _Conn(address_key(host), writer, task)
        if not self._open(conn):
            writer.transport.abort()
            return
        try:
            await self._serve(conn, reader, writer, host.removeprefix("::ffff:"))
            writer.close()  # what is left of the last answer is sent first
            async with asyncio.timeout(CLOSE_WAIT):
                await writer.wait_closed()
        except (
            _Closed,
            TimeoutError,
            asyncio.CancelledError,
            OSError,  # ssl.SSLError too
            h11.LocalProtocolError,
        ):
            pass  # went away, stalled, evicted or stopped
        finally:
            writer.transport.abort()
            self._close(conn)

    def _open(self, conn: _Conn) -> bool:
        """Count a new connection in, making room if need be; False when it is refused."""
        c = self.config
        if self.per_key.get(conn.key, 0) >= c.max_per_address:
            self.m.refused_connections.inc("per_address")
            return False
        if len(self.conns) >= c.max_connections:
            if not self.untrusted:
                self.m.refused_connections.inc("full")
                return False
            victim = next(iter(self.untrusted))
            self._close(victim)
            victim.kill()
            self.m.evicted.inc()
        self.conns[conn] = None
        self.untrusted[conn] = None
        self.per_key[conn.key] = self.per_key.get(conn.key, 0) + 1
        self.rx.open_connections = len(self.conns)
        return True

    def _close(self, conn: _Conn) -> None:
        if conn not in self.conns:
            return
        del self.conns[conn]
        self.untrusted.pop(conn, None)
        left = self.per_key[conn.key] - 1
        if left:
            self.per_key[conn.key] = left
        else:
            del self.per_key[conn.key]
        self.rx.open_connections = len(self.conns)

    def _trust(self, conn: _Conn) -> None:
        self.untrusted.pop(conn, None)

    async def _serve(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.header_timeout  # the handshake and first headers
        sender = host
        if self.rx.ctx is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    await writer.start_tls(self.rx.ctx)
            except TimeoutError:
                self.m.timeouts.inc("headers")
                return
            except ssl.SSLError:
                self.m.tls_failures.inc()
                return
            if self.config.client_ca:
                sender = _common_name(writer.get_extra_info("ssl_object")) or host
                self._trust(conn)  # a certificate of the client CA: authenticated
        h = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADERS_MAX)
        first: float | None = deadline
        while True:
            request = await self._request(conn, h, reader, writer, first)
            if request is None:
                return
            first = None
            conn.idle = False
            if not await self._respond(conn, h, reader, writer, request, sender):
                return
            if self.rx.stopping or h.our_state is not h11.DONE or h.their_state is not h11.DONE:
                return
            h.start_next_cycle()
            conn.idle = True

    async def _request(
        self,
        conn: _Conn,
        h: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        deadline: float | None,
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
                text = f"bad request: {exc}\n".encode()
                await self._send(h, writer, (code, text, {}), close=True)
                return None
            if event is not h11.NEED_DATA:
                return event if isinstance(event, h11.Request) else None
            if self.rx.stopping and not started:
                return None
            try:
                async with asyncio.timeout_at(limit):
                    data = await reader.read(READ)
            except TimeoutError:
                if started:
                    self.m.timeouts.inc("headers")
                return None
            if data:
                conn.idle = False
                if not started:
                    started = True
                    limit = loop.time() + self.config.header_timeout
            h.receive_data(data)

    # -- requests ---------------------------------------------------------------------------

    async def _respond(
        self,
        conn: _Conn,
        h: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        sender: str,
    ) -> bool:
        """Answer one request; False when the connection is to close."""
        headers = dict(request.headers)
        path = request.target.split(b"?", 1)[0]
        if request.method == b"POST":
            return await self._post(conn, h, reader, writer, headers, sender)
        if request.method != b"GET":
            allow = {"Allow": "GET, POST"}
            await self._send(h, writer, (405, b"method not allowed\n", allow), close=True)
            return False
        if path == b"/healthz":
            answer: Answer = (200, b"ok\n", {})
        elif path == b"/metrics":
            if not self.rx.authorized(headers.get(b"authorization")):
                self.m.unauthorized.inc()
                answer = (401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
            else:
                self._trust(conn)
                answer = (200, self.m.registry.render(), {"Content-Type": CONTENT_TYPE})
        else:
            answer = (404, b"not found: POST EventList batches; GET /healthz, /metrics\n", {})
        return await self._refuse(h, reader, writer, headers, answer)

    async def _post(
        self,
        conn: _Conn,
        h: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[bytes, bytes],
        sender: str,
    ) -> bool:
        rx, m, c = self.rx, self.m, self.config
        if not rx.authorized(headers.get(b"authorization")):
            m.unauthorized.inc()
            answer = (401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
            return await self._refuse(h, reader, writer, headers, answer)
        self._trust(conn)
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        length = headers.get(b"content-length")
        too_large: Answer = (413, f"body over {c.max_body:,} bytes\n".encode(), {})
        if length is None and b"transfer-encoding" not in headers:
            m.bad_requests.inc(sender, "no_length")
            await self._send(h, writer, (411, b"Content-Length required\n", {}), close=True)
            return False
        if length is not None and int(length) > c.max_body:
            m.bad_requests.inc(sender, "too_large")
            await self._send(h, writer, too_large, close=True)
            return False
        if encoding not in (b"identity", b"gzip"):
            m.bad_requests.inc(sender, "content_encoding")
            answer = (415, b"Content-Encoding must be identity or gzip\n", {})
            return await self._refuse(h, reader, writer, headers, answer)
        if not rx.admit():
            m.throttled.inc(sender, "stopping" if rx.stopping else "in_flight")
            answer = retry(RETRY_OVERLOAD, "too many batches in flight")
            return await self._refuse(h, reader, writer, headers, answer)
        try:
            if h.they_are_waiting_for_100_continue:
                writer.write(h.send(h11.InformationalResponse(status_code=100, headers=[])))
            body = await self._body(h, reader, c.max_body)
            if body is None:
                m.bad_requests.inc(sender, "too_large")
                await self._send(h, writer, too_large, close=True)
                return False
            conn.busy = True
            try:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.pool, rx.handle_batch, sender, body, encoding.decode()
                )
            except Exception as exc:  # a fault of ours: 500 is retried by the API server
                rx.log("error on a batch from {}: {!r}", sender, exc)
                answer = (500, b"internal error\n", {})
        finally:
            conn.busy = False
            rx.leave()  # before answering: the sender's next batch may follow at once
        await self._send(h, writer, answer)
        return True

    async def _body(
        self, h: h11.Connection, reader: asyncio.StreamReader, limit: int
    ) -> Body | None:
        """The whole body within ``body_timeout``; None when it is larger than ``limit``;
        raises _Closed when the client went away, stalled or broke the framing."""
        data = bytearray()
        try:
            async with asyncio.timeout(self.config.body_timeout):
                while True:
                    event = h.next_event()
                    if event is h11.NEED_DATA:
                        h.receive_data(await reader.read(READ))
                    elif isinstance(event, h11.Data):
                        data += event.data
                        if len(data) > limit:
                            return None
                    elif isinstance(event, h11.EndOfMessage):
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
        h: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[bytes, bytes],
        answer: Answer,
    ) -> bool:
        """Answer before reading the body (or one without a body): a small body (by its
        Content-Length) is read and dropped so the connection stays usable; a big or chunked
        one is not read and the connection is closed."""
        small = int(headers.get(b"content-length", b"0")) <= DRAIN_MAX  # none: no body
        keep = small and b"transfer-encoding" not in headers and not self.rx.stopping
        await self._send(h, writer, answer, close=not keep)
        if not keep:
            return False
        try:
            async with asyncio.timeout(self.config.body_timeout):
                while not isinstance(event := h.next_event(), h11.EndOfMessage):
                    if event is h11.NEED_DATA:
                        h.receive_data(await reader.read(READ))
                    elif not isinstance(event, h11.Data):
                        return False
        except (TimeoutError, h11.RemoteProtocolError):
            return False
        return True

    async def _send(
        self, h: h11.Connection, writer: asyncio.StreamWriter, answer: Answer, close: bool = False
    ) -> None:
        code, body, extra = answer
        headers = [
            ("Server", SERVER),
            ("Content-Type", extra.pop("Content-Type", "text/plain; charset=utf-8")),
            ("Content-Length", str(len(body))),
            *extra.items(),
        ]
        if close or self.rx.stopping:
            headers.append(("Connection", "close"))
        reason = HTTPStatus(code).phrase.encode()
        parts = [h.send(h11.Response(status_code=code, headers=headers, reason=reason))]
        if body:
            parts.append(h.send(h11.Data(data=body)))
        parts.append(h.send(h11.EndOfMessage()))
        writer.write(b"".join(p for p in parts if p))  # one write: one segment
        self.m.requests.inc(str(code))
        async with asyncio.timeout(self.config.body_timeout):
            await writer.drain()


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
