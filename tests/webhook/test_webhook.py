"""`audittui webhook`: the real receiver, started as a subprocess on a free loopback port with a
temporary spool, driven as the API server's webhook client drives it (EventList batches of up
to 400 events, items without kind, re-sent after a timeout, out of order), and read back with
the reader's own code paths (`audittui query DIR`, `audittui.load(DIR)`, `query --follow`).

TLS material is made with the openssl command line. A full disk is a small tmpfs (as root,
which CI is) and, everywhere, a file-size limit (RLIMIT_FSIZE: the writes fail with EFBIG).
Every wait is for a condition (a line printed, /healthz, a metric, a file's content)."""

from __future__ import annotations

import http.client
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import pytest

import audittui
from audittui.demo.stream import iter_lines
from audittui.webhook.batch import BadBatch, event_key, line_key, parse_batch
from audittui.webhook.dedupe import GENERATIONS, RecentKeys
from audittui.webhook.metrics import Counter as MetricCounter
from audittui.webhook.metrics import Registry
from audittui.webhook.names import live_name, spool_stem

PY = sys.executable
BACKUP = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}"


# -- helpers ------------------------------------------------------------------------------


def await_(condition: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def events(n: int, seed: int) -> list[dict]:
    """``n`` realistic events, every resource request logged with its bodies (the levels
    Request and RequestResponse, as a policy that logs bodies writes them)."""
    return [orjson.loads(line) for line in iter_lines(n, seed=seed, body_fraction=1.0)]


def event_list(evs: Iterable[dict]) -> bytes:
    """The body the API server posts: an EventList whose items carry no kind/apiVersion."""
    items = [{k: v for k, v in ev.items() if k not in ("kind", "apiVersion")} for ev in evs]
    doc = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    return orjson.dumps(doc)


def batches(evs: list[dict], size: int = 400) -> list[list[dict]]:
    return [evs[i : i + size] for i in range(0, len(evs), size)]


def key(ev: dict) -> tuple:
    return ev["auditID"], ev["stage"], ev.get("stageTimestamp")


def canonical(evs: Iterable[dict]) -> Counter:
    return Counter(orjson.dumps(ev, option=orjson.OPT_SORT_KEYS) for ev in evs)


def spool_events(folder: Path, killed: bool = False) -> list[dict]:
    """Every line of every spool file, each of which must be one complete Event. With
    ``killed`` (the receiver was SIGKILLed and not started again), a file may end in the cut
    piece of a line it was writing (never acknowledged; the next start removes it)."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        data = path.read_bytes()
        if killed:
            data = data[: data.rfind(b"\n") + 1]
        assert not data or data.endswith(b"\n"), f"{path.name} ends inside a line"
        for line in data.splitlines():
            ev = orjson.loads(line)
            assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1"
            out.append(ev)
    return out


class Receiver:
    """One `audittui webhook` process; ``client()`` makes a keep-alive client for it."""

    def __init__(
        self,
        tmp: Path,
        spool: Path | None,  # None: ``args`` say where to (``--to URL``)
        *args: str,
        tls: TLSFiles | None = None,
        preexec: Callable[[], None] | None = None,
        name: str = "rx",
        auth: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.spool = spool
        self._auth = auth  # (client certificate CN, token) for /healthz and /metrics
        self.tls = tls
        self.out = tmp / f"{name}.out"
        self.err = tmp / f"{name}.err"
        cmd = [PY, "-m", "audittui", "webhook", "--listen", "127.0.0.1:0"]
        if spool is not None:
            cmd += ["--spool", str(spool)]
        if tls is not None:
            cmd += ["--tls-cert", str(tls.server_crt), "--tls-key", str(tls.server_key)]
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [*cmd, *args], stdout=out, stderr=err, preexec_fn=preexec, cwd=tmp
            )
        try:
            found = await_(self._port, "the receiver's start-up line")
            assert isinstance(found, int)
            self.port = found
            await_(self._healthy, "/healthz")
        except BaseException:
            self.kill()  # never left running by a failed start
            raise

    def _port(self) -> int | None:
        m = re.search(rb"listening on https?://127\.0\.0\.1:(\d+)", self.out.read_bytes())
        if m:
            return int(m.group(1))
        if self.proc.poll() is not None:
            pytest.fail(f"receiver exited {self.proc.returncode}: {self.err.read_text()}")
        return None

    def _healthy(self) -> bool:
        try:
            status, _, body = self.client(*self._auth).get("/healthz")
        except OSError:
            return False
        return status == 200 and body == b"ok\n"

    def client(
        self, cert: str | None = None, token: str | None = None, timeout: float = 60
    ) -> Client:
        ctx = None
        if self.tls is not None:
            ctx = ssl.create_default_context(cafile=str(self.tls.ca_crt))
            if cert is not None:
                ctx.load_cert_chain(self.tls.client(cert)[0], self.tls.client(cert)[1])
        return Client(self.port, ctx, token, timeout)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the series of ``name`` whose labels include ``labels``."""
        _, _, text = self.client(*self._auth).get("/metrics")
        total = 0.0
        for line in text.decode().splitlines():
            m = re.match(r"^(\w+)(\{.*\})? (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(3))
        return total

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("the receiver did not stop on SIGTERM")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Client:
    """A keep-alive HTTP(S) connection, reopened after the server closed it."""

    def __init__(
        self, port: int, ctx: ssl.SSLContext | None, token: str | None, timeout: float = 60
    ) -> None:
        self.port, self.ctx, self.token, self.timeout = port, ctx, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            if self.ctx is not None:
                self.conn = http.client.HTTPSConnection(
                    "127.0.0.1", self.port, context=self.ctx, timeout=self.timeout
                )
            else:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        headers = dict(headers or {})
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, resp.headers, data

    def get(self, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("GET", path)

    def post(self, body: bytes, **headers: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("POST", "/", body, {"Content-Type": "application/json", **headers})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class TLSFiles:
    """A CA, a server certificate for 127.0.0.1 and client certificates by CN (openssl)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca_crt, self.ca_key = folder / "ca.crt", folder / "ca.key"
        self._openssl(
            "req", "-x509", *self._new_key(self.ca_key), "-out", str(self.ca_crt),
            "-days", "2", "-subj", "/CN=audittui test CA",
        )  # fmt: skip
        self.server_crt, self.server_key = self._issue("server", "127.0.0.1", "serverAuth")
        self._clients: dict[str, tuple[str, str]] = {}

    def _new_key(self, path: Path) -> list[str]:
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(path)]  # fmt: skip

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.folder)

    def _issue(self, name: str, cn: str, usage: str) -> tuple[Path, Path]:
        crt, key, csr = (self.folder / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
        ext = self.folder / f"{name}.ext"
        san = "subjectAltName=IP:127.0.0.1\n" if usage == "serverAuth" else ""
        ext.write_text(f"{san}extendedKeyUsage={usage}\n")
        self._openssl("req", *self._new_key(key), "-out", str(csr), "-utf8", "-subj", f"/CN={cn}")
        self._openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca_crt), "-CAkey", str(self.ca_key),
            "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext),
        )  # fmt: skip
        return crt, key

    def client(self, cn: str) -> tuple[str, str]:
        if cn not in self._clients:
            crt, key = self._issue(f"client-{len(self._clients)}", cn, "clientAuth")
            self._clients[cn] = (str(crt), str(key))
        return self._clients[cn]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    """4,000 realistic events (10 batches of 400), bodies included: about 6 MB."""
    return events(4000, seed=11)


def _mtls(tmp: Path, tls: TLSFiles, spool: Path, *args: str) -> Receiver:
    return Receiver(
        tmp, spool, "--client-ca", str(tls.ca_crt), *args, tls=tls, auth=("metrics-reader", None)
    )


# -- end to end ---------------------------------------------------------------------------


def test_two_api_servers_over_mutual_tls_reach_the_reader_exactly_once(tmp_path, tls, corpus):
    spool = tmp_path / "spool"
    rx = _mtls(tmp_path, tls, spool)
    try:
        one, two = rx.client(cert="apiserver-1"), rx.client(cert="apiserver-2")
        first, second = batches(corpus[:2000]), batches(corpus[2000:])
        # out of order: the API server sends batches concurrently; one arrives late
        for client, group in ((one, first), (two, second)):
            for b in (group[1], group[0], *group[2:]):
                status, _, reply = client.post(event_list(b))
                assert status == 200, reply
                assert orjson.loads(reply)["written"] == len(b)
        # a batch sent again (its first request timed out): deduplicated, still 200
        status, _, reply = one.post(event_list(first[2]))
        assert status == 200 and orjson.loads(reply) == {
            "items": 400, "written": 0, "duplicates": 400, "rejected": 0,
        }  # fmt: skip
        # one item that is not an event: counted, the rest of the batch kept
        extra = events(3, seed=99)
        body = orjson.loads(event_list(extra))
        body["items"].insert(1, "not an event")
        body["items"].append({"kind": "Pod", "auditID": "x", "stage": "ResponseComplete"})
        status, _, reply = two.post(orjson.dumps(body))
        assert status == 200 and orjson.loads(reply)["rejected"] == 2
        posted = corpus + extra

        names = sorted(p.name for p in spool.iterdir() if not p.name.startswith("."))
        assert names == ["apiserver-1.log", "apiserver-2.log"]  # one live file per CN
        assert all((spool / n).stat().st_mode & 0o777 == 0o600 for n in names)
        assert canonical(spool_events(spool)) == canonical(posted)

        assert rx.metric("audittui_webhook_events_deduplicated_total", sender="apiserver-1") == 400
        assert rx.metric("audittui_webhook_events_written_total") == len(posted)
        assert rx.metric("audittui_webhook_events_rejected_total", sender="apiserver-2") == 2
        assert rx.metric("audittui_webhook_batches_total", sender="apiserver-2") == 6
        assert rx.metric("audittui_webhook_spool_fsync_seconds_count") >= 11
        assert rx.metric("audittui_webhook_bytes_received_total") > 6_000_000

        # the reader, unchanged: the command line and the Python API
        out = subprocess.run(
            [PY, "-m", "audittui", "query", "--format", "jsonl", "--reveal", str(spool)],
            capture_output=True,
            check=True,
        )
        assert canonical(map(orjson.loads, out.stdout.splitlines())) == canonical(posted)
        with audittui.load(spool) as store:
            loaded = [orjson.loads(store.raw(i)) for i in range(len(store))]
        assert canonical(loaded) == canonical(posted)
    finally:
        assert rx.stop() == 0


def test_rotation_makes_lumberjack_backups_read_with_nothing_lost_or_doubled(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--max-size", "64K", "--max-backups", "0")
    try:
        client = rx.client()
        for b in batches(corpus[:2400]):
            assert client.post(event_list(b))[0] == 200
    finally:
        assert rx.stop() == 0
    files = sorted(p.name for p in spool.iterdir() if not p.name.startswith("."))
    backups = [n for n in files if n != "127.0.0.1.log"]
    assert len(backups) > 20
    assert all(re.fullmatch(rf"127\.0\.0\.1-{BACKUP}\.log", n) for n in backups), backups
    for name in files:  # rotated before a line would pass 64 KiB; a longer line stands alone
        data = (spool / name).read_bytes()
        assert len(data) <= 64 << 10 or data.count(b"\n") == 1, name
    with audittui.load(spool) as store:
        loaded = [orjson.loads(store.raw(i)) for i in range(len(store))]
    assert canonical(loaded) == canonical(corpus[:2400])
    # the reader's order (backups oldest first, then the live file) is the order written
    assert [key(ev) for ev in spool_events_in_reading_order(spool)] == [
        key(ev) for ev in corpus[:2400]
    ]


def spool_events_in_reading_order(folder: Path) -> list[dict]:
    from audittui.ingest.sources import folder_files

    return [
        orjson.loads(line) for p in folder_files(folder) for line in p.read_bytes().splitlines()
    ]


def test_retention_keeps_max_backups_per_sender(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--max-size", "64K", "--max-backups", "3")
    try:
        client = rx.client()
        for b in batches(corpus[:1200]):
            assert client.post(event_list(b))[0] == 200
        assert rx.metric("audittui_webhook_spool_rotations_total") > 3
    finally:
        assert rx.stop() == 0
    names = sorted(p.name for p in spool.iterdir() if not p.name.startswith("."))
    assert len(names) == 4 and "127.0.0.1.log" in names, names


def test_the_follower_reads_the_spool_live_through_rotations(tmp_path, tls, corpus):
    spool = tmp_path / "spool"
    rx = _mtls(tmp_path, tls, spool, "--max-size", "64K")
    follow_out = tmp_path / "follow.jsonl"
    follower = None
    try:
        one, two = rx.client(cert="apiserver-1"), rx.client(cert="apiserver-2")
        parts = batches(corpus[:3200])
        assert one.post(event_list(parts[0]))[0] == 200  # both live files exist
        assert two.post(event_list(parts[1]))[0] == 200
        with open(follow_out, "wb") as out:
            follower = subprocess.Popen(
                [PY, "-m", "audittui", "query", "--follow", "--format", "jsonl", "--reveal",
                 str(spool)],
                stdout=out, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        await_(lambda: follow_out.read_bytes().count(b"\n") >= 800, "the existing events")
        for k, b in enumerate(parts[2:]):
            assert (one if k % 2 else two).post(event_list(b))[0] == 200
        assert rx.metric("audittui_webhook_spool_rotations_total") > 20
        expected = canonical(corpus[:3200])
        want = sum(expected.values())
        try:
            await_(lambda: want <= follow_out.read_bytes().count(b"\n"), "every event printed")
        except BaseException:  # say whether events were lost or late, and which
            seen = canonical(orjson.loads(x) for x in follow_out.read_bytes().splitlines())
            missing = [key(orjson.loads(k)) for k in expected if k not in seen]
            raise AssertionError(
                f"{sum(seen.values()):,} of {want:,} printed; {len(missing)} missing, e.g. "
                f"{missing[:3]}; spool files: {sorted(p.name for p in spool.iterdir())}"
            ) from None
        printed = [orjson.loads(line) for line in follow_out.read_bytes().splitlines()]
        assert canonical(printed) == expected
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait(timeout=30)
        assert rx.stop() == 0


# -- authentication and transport ----------------------------------------------------------


def test_bearer_token_wrong_or_missing_is_401(tmp_path, corpus):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--token-file", str(token_file), auth=(None, "s3cret-token"))
    try:
        body = event_list(corpus[:10])
        for token in (None, "wrong", "s3cret-token-but-longer", ""):
            status, headers, _ = rx.client(token=token).post(body)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert rx.client().get("/metrics")[0] == 401
        assert rx.client().get("/healthz")[0] == 200  # probes need no token
        assert rx.client(token="s3cret-token").post(body)[0] == 200
        assert rx.metric("audittui_webhook_unauthorized_total") == 5
        assert canonical(spool_events(spool)) == canonical(corpus[:10])
    finally:
        assert rx.stop() == 0


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path, tls, corpus):
    spool = tmp_path / "spool"
    rx = _mtls(tmp_path, tls, spool)
    try:
        anonymous = rx.client()  # trusts the server, shows no certificate
        with pytest.raises((ssl.SSLError, ConnectionError)):
            anonymous.post(event_list(corpus[:5]))
        await_(
            lambda: rx.metric("audittui_webhook_tls_handshake_failures_total") >= 1,
            "the failed handshake counted",
        )
        assert rx.client(cert="apiserver-1").post(event_list(corpus[:5]))[0] == 200
        assert [p.name for p in spool.iterdir() if not p.name.startswith(".")] == [
            "apiserver-1.log"
        ]
    finally:
        assert rx.stop() == 0


def _run_webhook(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "audittui", "webhook", *args], capture_output=True, text=True, timeout=60
    )


def test_plain_http_on_a_non_loopback_address_is_refused_at_start(tmp_path):
    done = _run_webhook("--listen", "0.0.0.0:0", "--spool", str(tmp_path / "s"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "refusing plain HTTP on 0.0.0.0" in done.stderr
    assert "--allow-plain-http" in done.stderr
    assert not (tmp_path / "s").exists()
    # --to a store nobody listens on: one line, exit 2 (tests/webhook/test_webhook_store.py)
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    url = f"clickhouse://127.0.0.1:{port.getsockname()[1]}/audit"
    done = _run_webhook("--listen", "127.0.0.1:0", "--to", url)
    port.close()
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "cannot reach ClickHouse" in done.stderr


# -- bad input ----------------------------------------------------------------------------


def test_bad_bodies_are_400_or_413_with_a_short_reason(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--max-body", "64K")
    try:
        client = rx.client()
        cases = {
            b"not json at all": b"not JSON",
            b"[1, 2]": b"not an EventList",
            b'{"kind":"Pod","items":[]}': b'kind is "Pod"',
            b'{"kind":"EventList","items":{"a":1}}': b"items are not a list",
            b'{"kind":"EventList","apiVersion":"v1","items":[]}': b"apiVersion",
        }
        for body, reason in cases.items():
            status, _, reply = client.post(body)
            assert status == 400 and reason in reply and reply.count(b"\n") == 1, reply
        big = event_list(corpus[:200])
        assert len(big) > 64 << 10
        status, headers, _ = client.post(big)
        assert status == 413 and headers["Connection"] == "close"
        assert rx.metric("audittui_webhook_bad_requests_total", reason="not_json") == 1
        assert rx.metric("audittui_webhook_bad_requests_total", reason="too_large") == 1
        assert rx.metric("audittui_webhook_bad_requests_total") == 6
        assert spool_events(spool) == []
    finally:
        assert rx.stop() == 0


# -- overload, full and unwritable spool ---------------------------------------------------


def _hold_a_request(rx: Receiver, body: bytes) -> socket.socket:
    """A request whose body arrives slowly: it holds an in-flight slot until finished."""
    sock = socket.create_connection(("127.0.0.1", rx.port), timeout=60)
    head = (
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:100])
    await_(lambda: rx.metric("audittui_webhook_in_flight_batches") == 1, "the slow request in")
    return sock


def _finish(sock: socket.socket, body: bytes) -> bytes:
    sock.sendall(body[100:])
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.endswith(b"}\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    sock.close()
    return reply


def test_overload_is_429_with_retry_after(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool, "--max-in-flight", "1")
    try:
        slow_body = event_list(corpus[:400])
        sock = _hold_a_request(rx, slow_body)
        status, headers, _ = rx.client().post(event_list(corpus[400:800]))
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert rx.metric("audittui_webhook_throttled_total", reason="in_flight") == 1
        assert _finish(sock, slow_body).startswith(b"HTTP/1.1 200 ")
        assert rx.client().post(event_list(corpus[400:800]))[0] == 200  # the retry
        assert canonical(spool_events(spool)) == canonical(corpus[:800])
    finally:
        assert rx.stop() == 0


def _post_until_refused(client: Client, parts: list[list[dict]]) -> tuple[list[int], int]:
    """Post batches in order until one is refused: (acknowledged batches, refused one)."""
    acked = []
    for k, b in enumerate(parts):
        status, headers, reply = client.post(event_list(b))
        if status == 200:
            acked.append(k)
            continue
        assert status == 429, reply
        assert int(headers["Retry-After"]) >= 1
        return acked, k
    pytest.fail("the spool never filled up")


def _check_nothing_acknowledged_unwritten(
    spool: Path, parts: list[list[dict]], acked: list[int], killed: bool = False
):
    held = Counter(key(ev) for ev in spool_events(spool, killed))
    assert max(held.values(), default=1) == 1  # nothing doubled
    for k in acked:
        assert all(held[key(ev)] == 1 for ev in parts[k]), f"batch {k} acknowledged, not held"


def _can_mount() -> bool:
    return (
        os.geteuid() == 0
        and subprocess.run(["which", "mount"], capture_output=True).returncode == 0
    )


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MiB tmpfs (root only; CI runs as root): a disk that really fills up."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if not _can_mount():
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True)  # fmt: skip
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_429_and_nothing_unwritten_is_acknowledged(tmp_path, tmpfs, corpus):
    rx = Receiver(tmp_path, tmpfs)
    try:
        client = rx.client()
        parts = batches(corpus)
        acked, refused = _post_until_refused(client, parts)
        assert acked and refused == acked[-1] + 1
        assert rx.metric("audittui_webhook_throttled_total", reason="spool_full") == 1
        assert rx.metric("audittui_webhook_spool_writable") == 0
        _check_nothing_acknowledged_unwritten(tmpfs, parts, acked)
        # space again: the API server's retry of the refused batch, then the rest, go in
        subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
        for b in parts[refused:]:
            assert client.post(event_list(b))[0] == 200
        assert canonical(spool_events(tmpfs)) == canonical(corpus)
        assert "spool: writing" in rx.err.read_text()  # said once when it failed, once when back
    finally:
        assert rx.stop() == 0


def _file_size_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        # Python starts with SIGXFSZ ignored: past the limit write() fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_file_size_limit_is_429_then_a_restart_takes_the_retries_once(tmp_path, corpus):
    spool = tmp_path / "spool"
    parts = batches(corpus)
    rx = Receiver(tmp_path, spool, preexec=_file_size_limit(2 << 20))
    try:
        acked, refused = _post_until_refused(rx.client(), parts)
        assert rx.metric("audittui_webhook_throttled_total", reason="spool_full") == 1
        _check_nothing_acknowledged_unwritten(spool, parts, acked)
    finally:
        assert rx.stop() == 0
    again = Receiver(tmp_path, spool, name="rx2")  # no limit now; the same spool
    try:
        client = again.client()
        for b in parts:  # acknowledged batches sent again are dropped as duplicates
            assert client.post(event_list(b))[0] == 200
        dropped = again.metric("audittui_webhook_events_deduplicated_total")
        assert dropped >= sum(len(parts[k]) for k in acked)
        assert canonical(spool_events(spool)) == canonical(corpus)
    finally:
        assert again.stop() == 0


def test_an_unwritable_spool_is_429_until_it_is_writable(tmp_path, corpus):
    if _can_mount():
        spool = tmp_path / "ro"
        spool.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(spool)]
        )
        if mounted.returncode:
            pytest.skip("cannot mount a tmpfs here")

        def lock() -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(spool)], check=True)

        def unlock() -> None:
            subprocess.run(["mount", "-o", "remount,rw", str(spool)], check=True)
    else:
        spool = tmp_path / "spool"

        def lock() -> None:
            spool.chmod(0o500)

        def unlock() -> None:
            spool.chmod(0o700)

    rx = Receiver(tmp_path, spool)
    try:
        lock()
        status, headers, _ = rx.client().post(event_list(corpus[:400]))
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert rx.metric("audittui_webhook_throttled_total", reason="spool_error") == 1
        unlock()
        assert rx.client().post(event_list(corpus[:400]))[0] == 200
        assert canonical(spool_events(spool)) == canonical(corpus[:400])
    finally:
        assert rx.stop() == 0
        if _can_mount():
            subprocess.run(["umount", "-l", str(spool)], check=False)


# -- crashes and stops ----------------------------------------------------------------------


def test_killed_during_a_stream_every_acknowledged_batch_is_held_once(tmp_path, corpus):
    spool = tmp_path / "spool"
    parts = batches(corpus, 100)
    rx = Receiver(tmp_path, spool)
    acked: list[int] = []

    def stream() -> None:
        client = rx.client()
        for k, b in enumerate(parts):
            try:
                if client.post(event_list(b))[0] == 200:
                    acked.append(k)
            except OSError:
                return  # the receiver is gone: the API server would retry later

    sender = threading.Thread(target=stream)
    sender.start()
    await_(lambda: len(acked) >= 6, "a few acknowledged batches")
    rx.kill()  # SIGKILL, in the middle of the stream
    sender.join(timeout=60)
    assert 6 <= len(acked) < len(parts)
    _check_nothing_acknowledged_unwritten(spool, parts, acked, killed=True)

    again = Receiver(tmp_path, spool, name="rx2")
    try:
        client = again.client()
        for b in reversed(parts):  # everything sent again, in another order
            assert client.post(event_list(b))[0] == 200
        assert again.metric("audittui_webhook_events_deduplicated_total") >= 100 * len(acked)
        assert canonical(spool_events(spool)) == canonical(corpus)
    finally:
        assert again.stop() == 0


def test_sigterm_finishes_the_batch_in_flight_then_exits_0(tmp_path, corpus):
    spool = tmp_path / "spool"
    rx = Receiver(tmp_path, spool)
    body = event_list(corpus[:400])
    sock = _hold_a_request(rx, body)
    rx.proc.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", rx.port), timeout=5).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: in the backlog at close
            return True
        return False

    await_(refused, "the listening socket closed")
    reply = _finish(sock, body)
    assert reply.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in reply
    assert rx.proc.wait(timeout=60) == 0
    assert canonical(spool_events(spool)) == canonical(corpus[:400])
    assert rx.out.read_text().rstrip().endswith("audittui webhook: stopped")


# -- the parts, on their own ----------------------------------------------------------------


def test_sender_names_become_safe_distinct_file_names():
    assert live_name("apiserver-1") == "apiserver-1.log"
    assert live_name("10.0.0.7") == "10.0.0.7.log"
    hostile = ["../../etc/passwd", ".hidden", "a/b", "a_b", "a:b", "", "x\u202e\x1b[2J",
               "x-2025-03-04T06-22-18.819"]  # fmt: skip
    stems = [spool_stem(s) for s in hostile]
    assert len(set(stems)) == len(stems)
    for stem in stems:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", stem), stem
        assert not re.search(rf"-{BACKUP}$", stem)  # never read as another file's backup
    assert len(spool_stem("x" * 1000)) < 120


def test_parse_batch_puts_kind_back_and_keys_each_event():
    items = [
        {"auditID": "a", "stage": "ResponseComplete", "stageTimestamp": "t1", "verb": "get"},
        {"kind": "Event", "auditID": "b", "stage": "ResponseStarted"},
        {"auditID": "a", "stage": "ResponseComplete", "stageTimestamp": "t1", "verb": "get"},
        {"auditID": "", "stage": "x"},
        7,
    ]
    body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
    parsed = parse_batch(body.replace(b'"verb"', b'\n  "verb"', 1), 100)  # pretty in part
    assert parsed.items == 5 and parsed.rejected == {"no_audit_id": 1, "not_object": 1}
    assert parsed.repeated == 1
    first, second = (orjson.loads(line) for line in parsed.lines)
    assert list(first)[:2] == ["kind", "apiVersion"] and first["verb"] == "get"
    assert second["kind"] == "Event" and second["apiVersion"] == "audit.k8s.io/v1"
    assert all(line.count(b"\n") == 1 for line in parsed.lines)
    # the key: the digest of the line as written, the same when read back from the spool
    fields = [(e["auditID"], e["stage"], e.get("stageTimestamp")) for e in (first, second)]
    assert parsed.keys == [
        event_key(line, *f) for line, f in zip(parsed.lines, fields, strict=True)
    ]
    assert parsed.keys == [line_key(line) for line in parsed.lines]
    with pytest.raises(BadBatch, match="not JSON"):
        parse_batch(b'{"kind":"EventList","items":[{"a":tru}]}', 100)
    with pytest.raises(BadBatch, match="without items"):
        parse_batch(b'{"kind":"EventList"}', 100)


def test_recent_keys_stay_bounded_and_keep_the_newest():
    keys = RecentKeys(1000)
    for n in range(10_000):
        keys.add([n.to_bytes(16, "big")])
    assert len(keys) <= 1000
    newest = [
        n.to_bytes(16, "big")
        for n in range(10_000 - 1000 * (GENERATIONS - 1) // GENERATIONS, 10_000)
    ]
    assert all(k in keys for k in newest)
    fresh = keys.claim([newest[0], b"new".ljust(16)], timeout=1)
    assert fresh == [False, True]
    keys.release([b"new".ljust(16)])
    assert b"new".ljust(16) not in keys


def test_metric_label_values_are_escaped_and_inert():
    registry = Registry()
    c = MetricCounter(registry, "x_total", "help", ("sender",))
    c.inc('a"b\\c\nd\x1b[2J\u202e')
    text = registry.render().decode()
    assert 'x_total{sender="a\\"b\\\\c\\\\x0ad\\\\x1b[2J\\\\u202e"} 1.0' in text, text
    assert "\x1b" not in text and "\u202e" not in text


def test_a_live_file_removed_by_hand_is_made_again(tmp_path):
    from audittui.webhook.spool import SenderFile, Timings

    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    file = SenderFile(folder, "apiserver-1", 1 << 20, 0, Timings())
    told = []
    with file.lock:
        file.append([b'{"a":1}\n', b'{"a":2}\n'], lambda *span: told.append(span))
        (tmp_path / "apiserver-1.log").unlink()
        file.append([b'{"a":3}\n'], lambda *span: told.append(span))
        file.close()
    os.close(folder)
    assert told == [(0, 2, 16), (0, 1, 8)]
    assert (tmp_path / "apiserver-1.log").read_bytes() == b'{"a":3}\n'
