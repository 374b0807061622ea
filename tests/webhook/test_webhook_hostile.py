"""`audittui webhook` against hostile peers and input (issue 29): the real receiver, started
as a subprocess on a free loopback port (test_webhook.py's helpers), attacked over real
sockets from other loopback addresses (127.0.0.0/8 is all loopback), with TLS material made
by openssl.

- Slow and silent connections (headers trickled a byte at a time, TLS handshakes never
  begun) cannot keep an authenticated sender out; one address cannot take every slot; the
  header deadline closes a connection that keeps trickling.
- An item nested 10,000 levels deep is an event like the others: 200, written as sent.
- Gzip bombs of minimal items, eight at once: the receiver's peak memory stays within the
  bound the README states.
- A spool folder others may write in, or holding a link, is refused; a link planted later is
  never followed.
- /metrics shows a client certificate's CN with ESC and bidi characters made inert.
- A gzip body is every member, and nothing after them.
- Deduplication drops only true copies, also after a restart."""

from __future__ import annotations

import concurrent.futures
import gzip
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest

from webhook.test_webhook import (
    PY,
    Receiver,
    TLSFiles,
    await_,
    batches,
    canonical,
    event_list,
    events,
    spool_events,
)

MiB = 1 << 20


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles(tmp_path_factory.mktemp("tls"))


def _connect(port: int, source: str, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout, source_address=(source, 0))


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Does the server close ``sock`` within ``within`` seconds (whatever it sent first)?"""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


# -- connections ----------------------------------------------------------------------------------


class _Flood:
    """Connections held open from many addresses, reopened when the server closes them:
    ``trickling`` TLS connections sending a request's headers a byte every half second, and
    ``silent`` ones that never begin their TLS handshake. Bounded in time (``limit``)."""

    def __init__(self, port: int, ca: Path, trickling: int, silent: int, limit: float) -> None:
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.trickling = [f"127.0.1.{k % 250 + 1}" for k in range(trickling)]
        self.silent = [f"127.0.2.{k % 250 + 1}" for k in range(silent)]
        self.done = threading.Event()
        self.handshakes = 0
        self.deadline = time.monotonic() + limit
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _open_trickling(self, source: str) -> socket.socket | None:
        try:
            sock = self.ctx.wrap_socket(_connect(self.port, source), server_hostname="127.0.0.1")
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            self.handshakes += 1
            return sock
        except OSError:
            return None

    def _open_silent(self, source: str) -> socket.socket | None:
        try:
            return _connect(self.port, source)
        except OSError:
            return None

    def _run(self) -> None:
        trickle: dict[int, socket.socket | None] = {}
        silent: dict[int, socket.socket | None] = {}
        try:
            while not self.done.is_set() and time.monotonic() < self.deadline:
                for k, source in enumerate(self.trickling):
                    sock = trickle.get(k)
                    try:
                        if sock is None:
                            raise OSError
                        sock.sendall(b"X")  # one more byte of a header that never ends
                    except OSError:
                        if sock is not None:
                            sock.close()
                        trickle[k] = self._open_trickling(source)
                for k, source in enumerate(self.silent):
                    sock = silent.get(k)
                    if sock is None or _closed_by_server(sock, 0.001):
                        if sock is not None:
                            sock.close()
                        silent[k] = self._open_silent(source)
                self.done.wait(0.5)
        finally:
            for sock in (*trickle.values(), *silent.values()):
                if sock is not None:
                    sock.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=60)


def test_slow_and_silent_connections_cannot_keep_a_sender_out(tmp_path, tls, corpus):
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--token-file", str(token), tls=tls, auth=(None, "t0ken"))
    # 130 trickling (more than the 128 slots) and 200 silent, from 450 addresses
    flood = _Flood(rx.port, tls.ca_crt, trickling=130, silent=200, limit=60)
    try:
        # most slots held (every one, but for the churn of the connections closed)
        await_(lambda: flood.handshakes >= 120, "the trickling connections in", timeout=60)
        sender = rx.client(token="t0ken", timeout=10)
        for part in batches(corpus[:800]):
            status, _, reply = sender.post(event_list(part))
            assert status == 200, reply
        assert canonical(spool_events(spool)) == canonical(corpus[:800])
        assert rx.metric("audittui_webhook_connections_evicted_total") >= 1
        flood.stop()
        sender.close()
        # every slot given back (those of handshakes cut short too): the reader's own left
        await_(
            lambda: rx.metric("audittui_webhook_open_connections") <= 1,
            "the connections counted out",
        )
    finally:
        flood.stop()
        assert rx.stop() == 0


def test_one_address_cannot_take_every_slot(tmp_path):
    rx = Receiver(tmp_path, tmp_path / "spool")  # defaults: 128 slots, 32 per address
    held = []
    try:
        for _ in range(32):
            sock = _connect(rx.port, "127.0.0.5")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")  # kept alive
            held.append(sock)
        extra = _connect(rx.port, "127.0.0.5")
        held.append(extra)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _closed_by_server(extra, 10)  # the 33rd from that address: closed, unanswered
        other = _connect(rx.port, "127.0.0.6")
        held.append(other)
        other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert other.recv(4096).startswith(b"HTTP/1.1 200 ")
        assert rx.metric("audittui_webhook_connections_refused_total", reason="per_address") == 1
    finally:
        for sock in held:
            sock.close()
        assert rx.stop() == 0


def test_an_ipv6_peer_counts_by_its_64_and_a_mapped_ipv4_as_ipv4():
    from audittui.webhook.http import address_key

    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:10.0.0.7") == address_key("10.0.0.7") == "10.0.0.7"


def test_more_connections_than_open_files_allow_is_refused_at_start(tmp_path):
    done = _start("--spool", str(tmp_path / "s"), "--max-connections", "100000000")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "open files" in done.stderr and "--max-connections" in done.stderr
    assert not (tmp_path / "s").exists()  # checked before anything is made


def test_the_header_deadline_closes_trickling_and_silent_connections(tmp_path, tls):
    rx = Receiver(tmp_path, tmp_path / "spool", "--header-timeout", "1", tls=tls)
    silent = _connect(rx.port, "127.0.0.7")  # never says hello
    ctx = ssl.create_default_context(cafile=str(tls.ca_crt))
    trickling = ctx.wrap_socket(_connect(rx.port, "127.0.0.8"), server_hostname="127.0.0.1")
    try:
        trickling.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < 10:
            try:
                trickling.sendall(b"X")  # progress, a byte at a time: not enough
            except OSError:
                closed = True
            closed = closed or _closed_by_server(trickling, 0.2)
        assert closed and time.monotonic() - started < 5
        assert _closed_by_server(silent, 5)
        await_(
            lambda: rx.metric("audittui_webhook_timeouts_total", phase="headers") >= 2,
            "both timeouts counted",
        )
        assert rx.client().get("/healthz")[0] == 200  # a prompt client is served
    finally:
        silent.close()
        trickling.close()
        assert rx.stop() == 0


# -- deep items -----------------------------------------------------------------------------------


def test_an_item_nested_10000_deep_is_written_as_sent_with_its_batch(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool)
    try:
        normal = [
            orjson.dumps({k: v for k, v in ev.items() if k not in ("kind", "apiVersion")})
            for ev in corpus[:399]
        ]
        patch = b'{"spec":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}"  # Go takes it
        deep = (
            b'{"level":"RequestResponse","auditID":"deep-1","stage":"ResponseComplete",'
            b'"stageTimestamp":"2026-12-01T10:00:00.000000Z","verb":"patch",'
            b'"user":{"username":"mallory"},"requestObject":' + patch + b"}"
        )
        items = [*normal[:200], deep, *normal[200:]]
        body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(items)
        body += b"]}"
        status, _, reply = rx.client().post(body)
        assert status == 200, reply
        assert orjson.loads(reply) == {"items": 400, "written": 400, "duplicates": 0, "rejected": 0}
        lines = (spool / "127.0.0.1.log").read_bytes().splitlines()
        assert len(lines) == 400
        assert lines[200] == b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",' + deep[1:]
        shallow = [orjson.loads(line) for k, line in enumerate(lines) if k != 200]
        assert canonical(shallow) == canonical(corpus[:399])
    finally:
        assert rx.stop() == 0


def test_an_item_with_a_lone_surrogate_is_written_as_sent_with_its_batch(tmp_path, corpus):
    """A patch logged as sent may hold ``"\\udc80"``, JSON text Go reads (as U+FFFD) and
    msgspec refuses: that item is an event like the others, read as the file reader reads it,
    and its batch is not refused (a 400 is never retried: the batch was lost)."""
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool)
    try:
        normal = [
            orjson.dumps({k: v for k, v in ev.items() if k not in ("kind", "apiVersion")})
            for ev in corpus[:99]
        ]
        odd = (
            b'{"level":"Request","auditID":"odd-1","stage":"ResponseComplete","verb":"patch",'
            b'"user":{"username":"mallory"},"requestObject":{"a":"\\udc80"}}'
        )
        body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        body += b",".join([*normal[:50], odd, *normal[50:]]) + b"]}"
        status, _, reply = rx.client().post(body)
        assert status == 200, reply
        assert orjson.loads(reply)["written"] == 100
        lines = (spool / "127.0.0.1.log").read_bytes().splitlines()
        assert lines[50] == b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",' + odd[1:]
        bad = b'{"kind":"EventList","items":[{"auditID":"x","stage":"s","a":tru}]}'
        assert rx.client().post(bad)[0] == 400  # not JSON at all is still refused
    finally:
        assert rx.stop() == 0


# -- memory ---------------------------------------------------------------------------------------


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _items_body(items: list[bytes]) -> bytes:
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
    return head + b",".join(items) + b"]}"


def _fill(make: object, size: int) -> bytes:
    """An EventList of ``make(n)`` items, n = 0, 1, …, just under ``size`` bytes."""
    assert callable(make)
    items, total, n = [], 100, 0
    while True:
        item = make(n)
        if total + len(item) + 1 > size:
            return _items_body(items)
        items.append(item)
        total += len(item) + 1
        n += 1


def test_eight_gzip_bombs_at_once_stay_within_the_memory_bound(tmp_path):
    """The README's bound: at most --max-in-flight × 3 × --max-body above the receiver at rest
    (here 8 × 3 × 8 MiB = 192 MiB). Three kinds of bodies, each just under --max-body once
    decoded and a few kB as sent, eight at once: ``{}`` items and minimal events (millions of
    items: refused, 413) and tiny events that just fit the item budget (accepted: written)."""
    max_body = 8 * MiB
    limit = 8 * 3 * max_body
    minimal = _fill(lambda n: b'{"auditID":"%d","stage":"x"}' % n, max_body)
    empty = _fill(lambda n: b"{}", max_body)
    fits = max_body // 512  # the item budget: 512 bytes an item

    def small_event(n: int) -> bytes:
        item = b'{"auditID":"t-%08d","stage":"ResponseComplete","verb":"get","x":""}' % n
        return item[:-2] + b"p" * (513 - len(item)) + b'"}'  # 514 bytes, with its comma

    tiny = _fill(small_event, max_body)
    assert fits - 100 < len(orjson.loads(tiny)["items"]) <= fits
    bombs = {name: gzip.compress(body) for name, body in
             (("minimal", minimal), ("empty", empty), ("tiny", tiny))}  # fmt: skip
    assert all(len(b) < max_body // 10 for b in bombs.values())

    def cap_address_space() -> None:  # a receiver that blows up fails, not the machine
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--max-body", "8M", preexec=cap_address_space)
    try:
        rest = _rss(rx.proc.pid)
        expected = {"minimal": 413, "empty": 413, "tiny": 200}
        for name, bomb in bombs.items():

            def post(_: int, bomb: bytes = bomb) -> int:
                client = rx.client()
                status = client.post(bomb, **{"Content-Encoding": "gzip"})[0]
                client.close()
                return status

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(post, range(8)))
            grown = _peak_rss(rx.proc.pid) - rest
            assert grown <= limit, f"{name}: {grown / MiB:.0f} MiB over {limit / MiB:.0f} MiB"
            assert statuses == [expected[name]] * 8, (name, statuses)
        assert rx.metric("audittui_webhook_bad_requests_total", reason="too_many_items") == 16
        assert len(spool_events(spool)) == len(orjson.loads(tiny)["items"])  # 8 copies: one
    finally:
        assert rx.stop() == 0


# -- the spool folder -----------------------------------------------------------------------------


def _start(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "audittui", "webhook", "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_spool_others_can_write_or_holding_a_link_is_refused_and_no_link_followed(
    tmp_path, corpus
):
    open_spool = tmp_path / "open"
    open_spool.mkdir()
    open_spool.chmod(0o777)
    done = _start("--spool", str(open_spool))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "writable by others" in done.stderr and str(open_spool) in done.stderr
    assert list(open_spool.iterdir()) == []  # not even the lock file

    target = tmp_path / "precious.txt"
    target.write_bytes(b"precious, no newline at the end")
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    (spool / "127.0.0.1.log").symlink_to(target)
    done = _start("--spool", str(spool))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "symbolic link" in done.stderr and "127.0.0.1.log" in done.stderr
    assert target.read_bytes() == b"precious, no newline at the end"

    # a link planted while it runs: refused (429, retried later), never followed
    (spool / "127.0.0.1.log").unlink()
    rx = Receiver(tmp_path, spool)
    try:
        (spool / "127.0.0.1.log").symlink_to(target)
        status, headers, reply = rx.client().post(event_list(corpus[:10]))
        assert status == 429 and int(headers["Retry-After"]) >= 1, reply
        assert b"symbolic link" in reply
        assert target.read_bytes() == b"precious, no newline at the end"
        (spool / "127.0.0.1.log").unlink()
        assert rx.client().post(event_list(corpus[:10]))[0] == 200  # the retry
    finally:
        assert rx.stop() == 0
    assert canonical(spool_events(spool)) == canonical(corpus[:10])


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_show_a_hostile_certificate_name_inert(tmp_path, tls, corpus):
    spool = tmp_path / "spool"
    cn = "api\x1b[31m\u202eserver"
    rx = Receiver(
        tmp_path, spool, "--client-ca", str(tls.ca_crt), tls=tls, auth=("metrics-reader", None)
    )
    try:
        assert rx.client(cert=cn).post(event_list(corpus[:5]))[0] == 200
        status, _, text = rx.client(cert="metrics-reader").get("/metrics")
        assert status == 200
        assert b"\x1b" not in text and "\u202e".encode() not in text
        shown = 'sender="api\\\\x1b[31m\\\\u202eserver"'  # \x1b, \u202e: visible escapes
        assert f"audittui_webhook_events_written_total{{{shown}}} 5.0" in text.decode()
    finally:
        assert rx.stop() == 0


# -- gzip -----------------------------------------------------------------------------------------


def test_a_gzip_body_is_every_member_and_nothing_after(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool)
    try:
        client = rx.client()
        body = event_list(corpus[:400])
        half = len(body) // 2
        members = gzip.compress(body[:half]) + gzip.compress(body[half:])  # as `cat a.gz b.gz`
        status, _, reply = client.post(members, **{"Content-Encoding": "gzip"})
        assert status == 200, reply
        assert canonical(spool_events(spool)) == canonical(corpus[:400])
        for bad, why in (
            (gzip.compress(event_list(corpus[400:800])) + b"trailing junk", b"after the gzip"),
            (gzip.compress(event_list(corpus[400:800]))[:-20], b"cut short"),
        ):
            status, _, reply = client.post(bad, **{"Content-Encoding": "gzip"})
            assert status == 400 and why in reply, reply
        assert rx.metric("audittui_webhook_bad_requests_total", reason="bad_gzip") == 2
        assert canonical(spool_events(spool)) == canonical(corpus[:400])
    finally:
        assert rx.stop() == 0


# -- deduplication --------------------------------------------------------------------------------


def test_only_true_copies_are_dropped_also_after_a_restart(tmp_path, corpus):
    spool = tmp_path / "spool"
    first = corpus[:400]
    # other events that reuse the auditID, stage and stage time of the first batch's (a
    # client picks its Audit-ID): not copies
    others = [{**ev, "verb": "delete", "requestURI": "/api/v1/secrets"} for ev in first[:50]]
    rx = Receiver(tmp_path, spool)
    try:
        client = rx.client()
        assert client.post(event_list(first))[0] == 200
        status, _, reply = client.post(event_list([*others, *first[:50]]))
        assert status == 200 and orjson.loads(reply)["written"] == 50, reply
        status, _, reply = client.post(event_list(first))  # the API server's retry
        assert status == 200 and orjson.loads(reply)["duplicates"] == 400, reply
    finally:
        assert rx.stop() == 0
    again = Receiver(tmp_path, spool, name="rx2")  # the window rebuilt from the spool
    try:
        status, _, reply = again.client().post(event_list([*first, *others]))
        assert status == 200 and orjson.loads(reply)["written"] == 0, reply
        assert orjson.loads(reply)["duplicates"] == 450
    finally:
        assert again.stop() == 0
    assert canonical(spool_events(spool)) == canonical([*first, *others])


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return events(1000, seed=29)
