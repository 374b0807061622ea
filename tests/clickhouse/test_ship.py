"""`audittui ship`: the real command, run as a subprocess, into Debian's real ClickHouse 18.16
(`tests/clickhouse_server.py`), one table per test.

- ``--once`` on realistic logs (the demo's lumberjack folder with plain and gzip backups, a big
  demo file, real samples from ../shared) holds exactly the events the in-memory loader finds,
  and every malformed line is reported.
- Exactly once across restarts: the shipper SIGKILLed while it follows a growing, rotating log,
  then the ClickHouse server SIGKILLed and restarted (the shipper backs off and retries): every
  written event is in the table once, by plain ``count()``, ``count() FINAL`` and distinct keys.
- Bad targets and paths: one line on stderr, exit 2.

Every wait polls a condition (the table's count, a line on stderr) with a timeout."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from clickhouse_server import ClickHouseServer, free_port, table_url
from conftest import SAMPLES

from audittui.clickhouse.client import Client, connect
from audittui.clickhouse.url import parse
from audittui.demo.stream import iter_lines
from audittui.index.loader import load

PY = sys.executable
SHARED = SAMPLES.parent  # conftest finds it (beside the checkout, or /work/shared)


# -- helpers ------------------------------------------------------------------------------


def await_(
    condition: Callable[[], object],
    what: str,
    timeout: float = 60.0,
    said: Callable[[], str] | None = None,
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            told = f"; ship said: {said()}" if said else ""
            pytest.fail(f"timed out waiting for {what}{told}")
        time.sleep(0.05)


def ship(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "audittui", "ship", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


class Ship:
    """A following `audittui ship` process; stderr goes to a file read by the test."""

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.err = tmp / f"{name}.err"
        with open(self.err, "ab") as err:
            self.proc = subprocess.Popen(
                [PY, "-m", "audittui", "ship", *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=tmp,
            )

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("ship did not stop on SIGTERM")


def client(url: str) -> Client:
    return connect(parse(url))


def scalar(url: str, sql: str) -> int:
    """One number from the store (0 when the server or the table is not there now)."""
    try:
        with client(url) as c:
            return int(next(iter(c.rows(sql)))["n"])
    except Exception:  # the server being restarted, the table not yet made
        return 0


def counts(url: str, table: str) -> tuple[int, int, int]:
    """(count(), count() FINAL, distinct (audit_id, stage))."""
    with client(url) as c:
        row = next(
            iter(c.rows(f"SELECT count() AS a, uniqExact(audit_id, stage) AS c FROM {table}"))
        )
        final = next(iter(c.rows(f"SELECT count() AS n FROM {table} FINAL")))["n"]
    return int(row["a"]), int(final), int(row["c"])


def ids_in(url: str, table: str) -> set[tuple[str, str]]:
    with client(url) as c:
        return {(r["audit_id"], r["stage"]) for r in c.rows(f"SELECT audit_id, stage FROM {table}")}


def loader_keys(
    *paths: Path, recursive: bool = False
) -> tuple[list[tuple[str, str]], list[tuple[str, int]], int]:
    """What audittui's own loader finds: (auditID, stage) per event, the malformed lines kept
    as a sample (path, line), and how many there are."""
    with load(*paths, recursive=recursive) as store:
        keys = []
        for i in range(len(store)):
            ev = orjson.loads(store.raw(i))
            keys.append((ev.get("auditID") or "", ev.get("stage") or ""))
        return keys, [(m.path, m.line) for m in store.malformed], len(store.malformed)


# -- a: --once on realistic logs ----------------------------------------------------------


def demo_folder(folder: Path, events: int) -> None:
    subprocess.run(
        [PY, "-m", "audittui.demo", "write", "--events", str(events), str(folder)],
        check=True,
        capture_output=True,
    )


def test_once_demo_folder_backups_and_malformed(tmp_path: Path, clickhouse_url: str) -> None:
    logs = tmp_path / "logs"
    demo_folder(logs, 6000)
    names = sorted(p.name for p in logs.iterdir())
    assert any(n.endswith(".log.gz") for n in names), names  # lumberjack backups, gzip ones
    assert sum(n.endswith(".log") for n in names) >= 2, names  # plain ones and the live file
    with open(logs / "audit.log", "ab") as fh:  # a few malformed lines of our own
        fh.write(b'not json at all\n{"kind":"Event","auditID":\n\x00\x01\x02\n')
    big = tmp_path / "big.log"
    subprocess.run(
        [PY, "-m", "audittui.demo", "big", "--events", "20000", "--seed", "7", str(big)],
        check=True,
        capture_output=True,
    )
    url, table = table_url(clickhouse_url)
    r = ship(str(logs), str(big), "--to", url, "--once", "--state", "state", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    keys, malformed, bad = loader_keys(logs, big)
    assert bad >= 3
    total, final, distinct = counts(url, table)
    # every event one row. (The two demo files share some auditIDs, drawn from seeded
    # random streams, with other times: other events, which the table's key keeps apart.)
    assert total == final == len(keys)
    assert distinct == len(set(keys))
    assert ids_in(url, table) == set(keys)
    # every malformed line reported, by file and line (the first 20), and counted
    for path, line in malformed[:20]:
        assert f"{path}:{line}: malformed, not shipped" in r.stderr, (path, line)
    assert f"{bad:,} malformed lines not shipped" in r.stderr
    # run again: all of it was checkpointed; nothing is doubled
    again = ship(str(logs), str(big), "--to", url, "--once", "--state", "state", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert counts(url, table) == (total, final, distinct)
    assert "ship: 0 events into" in again.stderr


# -- the table's key: only true copies collapse -------------------------------------------


def twins(extra: int = 20) -> list[bytes]:
    """Two different events sharing auditID, stage and stageTimestamp (a client chooses its
    auditID with the Audit-ID header: a delete hidden behind a get), then ``extra`` others."""
    get = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "11111111-2222-4333-8444-555555555555", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/prod/secrets/db", "verb": "get",
        "user": {"username": "alice"}, "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-05-01T10:00:00.000000Z",
        "stageTimestamp": "2026-05-01T10:00:00.002000Z",
    }  # fmt: skip
    delete = {**get, "verb": "delete", "user": {"username": "mallory"}}
    return [orjson.dumps(get) + b"\n", orjson.dumps(delete) + b"\n", *iter_lines(extra, seed=5)]


def stored(url: str, query: str = "") -> list[dict]:
    """The events a store read gives back (``audittui query``), as dicts."""
    r = subprocess.run(
        [PY, "-m", "audittui", "query", "-q", query, "--format", "jsonl", url],
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return [orjson.loads(line) for line in r.stdout.splitlines()]


def test_different_events_sharing_a_key_are_both_kept(tmp_path: Path, store_url: str) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(twins()))
    url, _ = table_url(store_url)
    r = ship(str(log), "--to", url, "--once", "--state", "st", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    events = stored(url, "id:11111111-2222-4333-8444-555555555555")
    assert sorted(e["user"]["username"] for e in events) == ["alice", "mallory"]
    assert len(stored(url)) == 22


def test_the_same_event_shipped_twice_is_read_once(tmp_path: Path, store_url: str) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(twins()))
    url, table = table_url(store_url)
    for state in ("st1", "st2"):  # two checkpoints: the second run sends everything again
        r = ship(str(log), "--to", url, "--once", "--state", state, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    with client(url) as c:
        assert c.one(f"SELECT count() AS n FROM {table}")["n"] == 44  # stored twice
    events = stored(url)
    assert len(events) == 22  # read once each: the same bytes are one event
    assert sorted(orjson.dumps(e) for e in events) == sorted(
        orjson.dumps(orjson.loads(line)) for line in twins()
    )


def test_a_line_over_the_bound_is_passed_over_and_said(tmp_path: Path, store_url: str) -> None:
    """A line longer than AUDITTUI_LINE_MAX is never held whole: passed over, said in one line
    with its place, and the events on both sides of it shipped."""
    log = tmp_path / "audit.log"
    good = [orjson.dumps({**orjson.loads(t), "auditID": f"a-{k}"}) for k, t in enumerate(twins())]
    with open(log, "wb") as fh:
        fh.write(b"\n".join(good[:10]) + b"\n")
        fh.write(b"x" * (12 << 20) + b"\n")  # 12 MiB, over an 8 MiB bound
        fh.write(b"\n".join(good[10:]) + b"\n")
    url, _ = table_url(store_url)
    r = subprocess.run(
        [PY, "-m", "audittui", "ship", str(log), "--to", url, "--once", "--state", "st"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "AUDITTUI_LINE_MAX": "8M"},
    )
    assert r.returncode == 0, r.stderr
    assert (
        f"{log}: line 11: a line of {12 << 20:,} bytes, over the {8 << 20:,}-byte bound" in r.stderr
    )
    assert len(stored(url)) == len(good)


def test_a_gzip_bomb_among_followed_backups_stops_at_the_cap(
    tmp_path: Path, store_url: str
) -> None:
    """A followed folder's .gz backup is shipped through the shared bounded gunzip: a bomb
    stops at the ratio cap, said in one line, its events before the cap shipped."""
    from ingest.test_bounds import HEAD_EVENTS, bomb

    logs = tmp_path / "logs"
    logs.mkdir()
    bomb(logs / "audit-2026-12-01T10-00-00.000.log.gz")
    (logs / "audit.log").write_bytes(b"".join(twins()))
    url, table = table_url(store_url)
    s = Ship(tmp_path, "ship", str(logs), "--to", url, "--state", "st")
    try:
        await_(lambda: "AUDITTUI_GUNZIP_RATIO" in s.stderr(), "the cap said", said=s.stderr)
    finally:
        assert s.stop() == 0, s.stderr()  # (a chdb folder takes one process at a time)
    assert f"ship: {HEAD_EVENTS + 22:,} events into" in s.stderr()
    # the bomb's events are one line written 2,000 times: true copies, one row once merged
    assert scalar(url, f"SELECT count() AS n FROM {table} FINAL") == 1 + 22


def test_a_batch_the_store_took_before_a_crash_is_recognised(
    tmp_path: Path, clickhouse_url: str
) -> None:
    """The crash between an insert and its checkpoint, made by hand: the checkpoint says the
    file was not read and the batch is pending; the restart finds every row of it (the twins
    by their digests) and sends none again."""
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(twins()))
    url, table = table_url(clickhouse_url)
    r = ship(str(log), "--to", url, "--once", "--state", "st", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with client(url) as c:
        span = c.one(f"SELECT min(time) AS lo, max(time) AS hi FROM {table}")
    checkpoint = tmp_path / "st" / "checkpoint.json"
    state = orjson.loads(checkpoint.read_bytes())
    state["records"] = []
    state["pending"] = {"tmin": span["lo"], "tmax": span["hi"], "sources": [str(log)],
                        "offsets": [0], "rows": 22}  # fmt: skip
    checkpoint.write_bytes(orjson.dumps(state))
    r = ship(str(log), "--to", url, "--once", "--state", "st", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming: the store already holds 22 events" in r.stderr, r.stderr
    with client(url) as c:
        assert c.one(f"SELECT count() AS n FROM {table}")["n"] == 22  # nothing sent again
    assert len(stored(url, "id:11111111-2222-4333-8444-555555555555")) == 2


REAL = [
    "samples/audit2rbac/demo.log",
    "samples/aks/aks_logs.json",
    "samples/sysdiglabs-aks-audit-log",
    "samples/falco-k8s-audit",
    "realdata/panther-analysis/derived/eks.jsonl",
    "realdata/panther-analysis/derived/gke.jsonl",
    "realdata/panther-analysis/derived/aks.jsonl",
    "realdata/stackdriver-webhook-bridge/log_entries",
    "realdata/stackdriver-webhook-bridge/k8s_audit_events",
    "realdata/kubernetes-website",
    "realdata/afcollins-kube-audit-log-tool",
    "realdata/elastic-integrations",
]


@pytest.mark.parametrize("sample", REAL)
def test_once_real_samples(tmp_path: Path, clickhouse_url: str, sample: str) -> None:
    path = SHARED / sample
    assert path.exists(), path
    keys, malformed, bad = loader_keys(path, recursive=True)
    assert keys, f"the loader finds no event in {sample}"
    url, table = table_url(clickhouse_url)
    r = ship(str(path), "--recursive", "--to", url, "--once", "--state", "st", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with client(url) as c:
        rows = list(c.rows(f"SELECT audit_id, stage, raw FROM {table}"))
    # the same events, one row each (raw events compared: many real ones have no auditID)
    assert len(rows) == len(keys)
    assert sorted((r["audit_id"], r["stage"]) for r in rows) == sorted(keys)
    for p, line in malformed[:20]:
        assert f"{p}:{line}: malformed, not shipped" in r.stderr
    if bad:
        assert f"{bad:,} malformed lines not shipped" in r.stderr


# -- b: exactly once across restarts ------------------------------------------------------


class Writer(threading.Thread):
    """Appends demo events to ``folder/audit.log`` as the API server does, rotating it
    lumberjack-style (rename to a timestamped backup, a new live file) every ``rotate``
    events; the last backup is gzipped as lumberjack's compress option does."""

    def __init__(self, folder: Path, total: int, rotate: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.folder, self.total, self.rotate = folder, total, rotate
        self.lines = list(iter_lines(total, seed=seed))
        self.written = 0
        self.rotations = 0
        self.paused = threading.Event()  # set: write nothing until cleared
        self.failed: BaseException | None = None

    def keys(self) -> set[tuple[str, str]]:
        out = set()
        for line in self.lines[: self.written]:
            ev = orjson.loads(line)
            out.add((ev["auditID"], ev["stage"]))
        return out

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.failed = exc

    def _run(self) -> None:
        live = self.folder / "audit.log"
        fh = open(live, "ab")  # noqa: SIM115 - reopened at each rotation
        while self.written < self.total:
            while self.paused.is_set():
                time.sleep(0.01)
            n = min(50, self.total - self.written)
            fh.write(b"".join(self.lines[self.written : self.written + n]))
            fh.flush()
            self.written += n
            if self.written % self.rotate == 0 and self.written < self.total:
                fh.close()
                self.rotations += 1
                stamp = f"2026-01-01T00-00-{self.rotations:02d}.000"
                backup = self.folder / f"audit-{stamp}.log"
                os.rename(live, backup)
                if self.rotations == 1:  # compressed later, as lumberjack does
                    with open(backup, "rb") as src, gzip.open(str(backup) + ".gz", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.unlink(backup)
                fh = open(live, "ab")  # noqa: SIM115
            time.sleep(0.005)  # pacing: the log grows while it is shipped
        fh.close()


def assert_exactly_once(url: str, table: str, writer: Writer) -> None:
    written = writer.keys()
    assert len(written) == writer.total  # the demo's keys are unique
    total, final, distinct = counts(url, table)
    assert (total, final, distinct) == (writer.total,) * 3
    assert ids_in(url, table) == written


def test_ship_killed_and_restarted_exactly_once(tmp_path: Path, clickhouse_url: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    url, table = table_url(clickhouse_url)
    writer = Writer(logs, total=30000, rotate=7000, seed=11)
    writer.start()
    args = (str(logs), "--to", url, "--state", str(tmp_path / "state"), "--batch", "300")
    stored = f"SELECT count() AS n FROM {table}"
    killed_at = []
    # killed three times mid-run; each time the writer goes on, and rotates, while nobody
    # ships. The second kill lands while the first backup, gzipped meanwhile, is being read.
    for k, (at, rotations) in enumerate([(4000, 1), (5000, 2), (16000, 3)]):
        shipper = Ship(tmp_path, f"ship{k}", *args)
        try:
            await_(lambda at=at: scalar(url, stored) >= at, f"{at} events stored")
            shipper.kill()
            killed_at.append(scalar(url, stored))
            await_(lambda n=rotations: writer.rotations >= n, "a rotation while ship is down")
        finally:
            shipper.kill()
    last = Ship(tmp_path, "last", *args)
    try:
        writer.join(timeout=120)
        assert writer.failed is None and writer.written == writer.total
        await_(lambda: scalar(url, stored) >= writer.total, "every event in the table", timeout=120)
        assert last.stop() == 0
    finally:
        last.kill()
    assert all(0 < n < writer.total for n in killed_at), killed_at
    assert_exactly_once(url, table, writer)


def test_store_killed_and_restarted_exactly_once(
    tmp_path: Path, own_server: ClickHouseServer
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    url, table = table_url(own_server.url)
    writer = Writer(logs, total=30000, rotate=8000, seed=12)
    writer.start()
    args = (str(logs), "--to", url, "--state", str(tmp_path / "state"), "--batch", "300")
    shipper = Ship(tmp_path, "ship", *args)
    try:
        await_(lambda: scalar(url, f"SELECT count() AS n FROM {table}") >= 8000, "a first part")
        own_server.kill()
        await_(lambda: "retrying" in shipper.stderr(), "ship saying the store is down")
        # the writer goes on (and rotates) while the store is down
        await_(lambda: writer.written >= 20000, "the log growing while the store is down")
        assert shipper.proc.poll() is None, shipper.stderr()
        own_server.start()
        writer.join(timeout=120)
        assert writer.failed is None and writer.written == writer.total
        await_(
            lambda: (
                scalar(url, f"SELECT count() AS n FROM {table}") >= writer.total
                or shipper.proc.poll() is not None
            ),
            "every event in the table after the restart",
            timeout=120,
            said=shipper.stderr,
        )
        assert shipper.proc.poll() is None, shipper.stderr()
        assert shipper.stop() == 0
    finally:
        shipper.kill()
    err = shipper.stderr()
    # said once while down (not a line per retry), and once when back
    assert err.count("retrying") == 1, err
    assert err.count("is back") == 1, err
    assert_exactly_once(url, table, writer)


# -- c: bad targets and paths -------------------------------------------------------------


def one_line_exit_2(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_unreachable_server(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(10)))
    url = f"clickhouse://127.0.0.1:{free_port()}/default"
    line = one_line_exit_2(ship(str(log), "--to", url, "--once", "--state", "s", cwd=tmp_path))
    assert "cannot reach ClickHouse" in line and "connection refused" in line


def test_following_waits_for_a_store_not_up_yet(tmp_path: Path) -> None:
    """Following, a store down at the start is waited for as one down later: said once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "audit.log").write_bytes(b"".join(iter_lines(500, seed=5)))
    server = ClickHouseServer(tmp_path / "ch")  # not started yet
    url, table = table_url(server.url)
    shipper = Ship(tmp_path, "ship", str(logs), "--to", url, "--state", "st")
    try:
        await_(lambda: "retrying until it answers" in shipper.stderr(), "ship waiting")
        assert shipper.proc.poll() is None
        server.start()
        await_(lambda: scalar(url, f"SELECT count() AS n FROM {table}") >= 500, "the events")
        assert shipper.stop() == 0
    finally:
        shipper.kill()
        server.stop()
    err = shipper.stderr()
    assert err.count("retrying") == 1 and err.count("is back") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "url, words",
    [
        ("clickhouse://127.0.0.1:notaport/default", "bad store URL"),
        ("clickhouse:///default", "no host"),
        ("clickhouse://127.0.0.1:8123/default?tabel=x", "unknown option"),
        ("clickhouse://127.0.0.1:8123/default?table=a-b", "bad table name"),
        ("http://127.0.0.1:8123/", "not a store URL"),
        ("chdb://relative/folder", "absolute folder"),
    ],
)
def test_bad_url(tmp_path: Path, url: str, words: str) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(10)))
    line = one_line_exit_2(ship(str(log), "--to", url, "--once", cwd=tmp_path))
    assert words in line


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_not_a_clickhouse_server(tmp_path: Path) -> None:
    """An HTTP server that is not ClickHouse (here: a plain http.server)."""
    port = free_port()
    web = subprocess.Popen(
        [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await_(lambda: listening(port), "the web server")
        log = tmp_path / "audit.log"
        log.write_bytes(b"".join(iter_lines(10)))
        url = f"clickhouse://127.0.0.1:{port}/default"
        line = one_line_exit_2(ship(str(log), "--to", url, "--once", "--state", "s", cwd=tmp_path))
        assert "no ClickHouse HTTP interface" in line
    finally:
        web.kill()
        web.wait()


def test_table_of_another_schema(tmp_path: Path, clickhouse_url: str) -> None:
    url, table = table_url(clickhouse_url)
    with client(url) as c:
        c.execute(f"CREATE TABLE {table} (x Int32, time Int64) ENGINE = MergeTree ORDER BY x")
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(10)))
    line = one_line_exit_2(ship(str(log), "--to", url, "--once", "--state", "s", cwd=tmp_path))
    assert f"default.{table} has another schema" in line
    assert scalar(url, f"SELECT count() AS n FROM {table}") == 0


def test_unknown_database(tmp_path: Path, clickhouse_url: str) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(10)))
    url = clickhouse_url.replace("/default", "/nosuchdb")
    line = one_line_exit_2(ship(str(log), "--to", url, "--once", "--state", "s", cwd=tmp_path))
    assert "nosuchdb" in line


def test_missing_paths(tmp_path: Path, clickhouse_url: str) -> None:
    url, _ = table_url(clickhouse_url)
    missing = tmp_path / "nope" / "audit.log"
    line = one_line_exit_2(ship(str(missing), "--to", url, "--once", cwd=tmp_path))
    assert "no such file" in line
    line = one_line_exit_2(ship(str(missing), "--to", url, cwd=tmp_path))
    assert "no such folder" in line
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    line = one_line_exit_2(ship(str(empty), "--to", url, "--once", "--state", "s", cwd=tmp_path))
    assert "no audit event read" in line
