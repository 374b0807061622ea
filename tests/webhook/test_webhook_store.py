"""`audittui webhook --to URL`: the real receiver, as a subprocess, writing into Debian's real
ClickHouse 18.16 (one table per test), driven as the API server's webhook client drives it
(EventList batches of 400 without kind, sent again, out of order).

- Batches become rows, the very rows `audittui ship` writes for the same events.
- A batch sent again (also after a restart of the receiver) is not doubled (``count() FINAL``).
- The store killed: 429 with ``Retry-After`` (never 502 or 503), said once on stderr; started
  again: 200, and every event is in the table.
- Bad ``--to``: one line, exit 2.

Every wait polls a condition with a timeout."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import orjson
from clickhouse_server import ClickHouseServer, free_port, table_url

from audittui.clickhouse.client import connect
from audittui.clickhouse.url import parse
from webhook.test_webhook import Receiver, await_, batches, event_list, events

PY = sys.executable


def store_receiver(tmp: Path, url: str, name: str = "rx", *more: str) -> Receiver:
    """One `audittui webhook --to URL` process."""
    return Receiver(tmp, None, "--to", url, *more, name=name)


def count(url: str, table: str, final: bool = False) -> int:
    try:
        with connect(parse(url)) as c:
            sql = f"SELECT count() AS n FROM {table}" + (" FINAL" if final else "")
            return int(next(iter(c.rows(sql)))["n"])
    except Exception:  # the server restarting
        return -1


def test_batches_become_ships_rows(tmp_path: Path, clickhouse_url: str) -> None:
    evs = events(2000, seed=21)
    url, table = table_url(clickhouse_url)
    rx = store_receiver(tmp_path, url)
    try:
        c = rx.client()
        parts = batches(evs)
        for part in reversed(parts):  # out of order
            status, _, body = c.post(event_list(part))
            assert status == 200, body
        # a batch sent again (its request timed out at the API server): not written again
        status, _, body = c.post(event_list(parts[2]))
        assert status == 200 and orjson.loads(body)["duplicates"] == len(parts[2])
        assert count(url, table) == count(url, table, final=True) == len(evs)
        assert rx.metric("audittui_webhook_store_insert_seconds_count") == len(parts)
        assert rx.metric("audittui_webhook_events_written_total") == len(evs)
        assert rx.stop() == 0
    finally:
        rx.kill()
    # the same events shipped from a log file: the same rows but for where they came from
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(orjson.dumps(ev) + b"\n" for ev in evs))
    shipped, stable = table_url(clickhouse_url)
    r = subprocess.run(
        [PY, "-m", "audittui", "ship", str(log), "--to", shipped, "--once", "--state", "st"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    order = "ORDER BY time, audit_id, stage, stage_time, digest"
    with connect(parse(url)) as ch:
        ours = list(ch.rows(f"SELECT * FROM {table} {order}"))
        theirs = list(ch.rows(f"SELECT * FROM {stable} {order}"))
    assert len(ours) == len(theirs) == len(evs)
    for a, b in zip(ours, theirs, strict=True):
        assert a["source"] == "webhook:127.0.0.1" and a["server"] == "127.0.0.1"
        for row in (a, b):
            for col in ("source", "offset", "server"):
                row.pop(col)
        assert a == b


def test_sent_again_after_a_restart_is_not_doubled(tmp_path: Path, clickhouse_url: str) -> None:
    evs = events(800, seed=22)
    url, table = table_url(clickhouse_url)
    rx = store_receiver(tmp_path, url, "rx1")
    try:
        assert rx.client().post(event_list(evs[:400]))[0] == 200
        assert rx.stop() == 0
    finally:
        rx.kill()
    rx = store_receiver(tmp_path, url, "rx2")  # its window starts empty: the table's key counts
    try:
        assert rx.client().post(event_list(evs))[0] == 200
        assert rx.stop() == 0
    finally:
        rx.kill()
    with connect(parse(url)) as ch:
        ch.execute(f"OPTIMIZE TABLE {table} FINAL")
    assert count(url, table, final=True) == len(evs)
    assert count(url, table) == len(evs)  # merged: one row per key


def test_an_item_nested_10000_deep_becomes_a_row_with_its_raw_as_sent(
    tmp_path: Path, clickhouse_url: str
) -> None:
    evs = events(399, seed=24)
    url, table = table_url(clickhouse_url)
    deep = (
        b'{"auditID":"deep-1","stage":"ResponseComplete","verb":"patch",'
        b'"user":{"username":"mallory"},"requestObject":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    )
    body = orjson.loads(event_list(evs))
    items = [orjson.dumps(item) for item in body["items"]]
    items.insert(100, deep)
    posted = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
    posted += b",".join(items) + b"]}"
    rx = store_receiver(tmp_path, url)
    try:
        status, _, reply = rx.client().post(posted)
        assert status == 200, reply
        assert orjson.loads(reply)["written"] == 400
        assert rx.stop() == 0
    finally:
        rx.kill()
    assert count(url, table, final=True) == 400
    with connect(parse(url)) as ch:
        (row,) = ch.rows(f"SELECT user, verb, raw FROM {table} WHERE audit_id = 'deep-1'")
    assert row["user"] == "mallory" and row["verb"] == "patch"
    assert row["raw"].encode() == b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",' + deep[1:]


def test_an_item_with_a_lone_surrogate_becomes_a_row_as_the_file_reader_reads_it(
    tmp_path: Path, clickhouse_url: str
) -> None:
    """``"\\ud800"`` is JSON text Go's decoder reads (as U+FFFD) and orjson refuses: the item
    is a row like the others (its batch failed with 500 before), its raw as sent."""
    evs = events(9, seed=25)
    url, table = table_url(clickhouse_url)
    odd = b'{"auditID":"odd-1","stage":"ResponseComplete","verb":"get","userAgent":"x\\ud800y"}'
    body = orjson.loads(event_list(evs))
    items = [orjson.dumps(item) for item in body["items"]] + [odd]
    posted = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
    posted += b",".join(items) + b"]}"
    rx = store_receiver(tmp_path, url)
    try:
        status, _, reply = rx.client().post(posted)
        assert status == 200, reply
        assert orjson.loads(reply)["written"] == 10
        assert rx.stop() == 0
    finally:
        rx.kill()
    with connect(parse(url)) as ch:
        (row,) = ch.rows(f"SELECT user_agent, raw FROM {table} WHERE audit_id = 'odd-1'")
    assert row["user_agent"] == "x\ufffdy"


def test_store_killed_429_then_all_rows(tmp_path: Path, own_server: ClickHouseServer) -> None:
    evs = events(2400, seed=23)
    parts = batches(evs)
    url, table = table_url(own_server.url)
    rx = store_receiver(tmp_path, url)
    try:
        c = rx.client()
        assert c.post(event_list(parts[0]))[0] == 200
        own_server.kill()
        refused = []
        for part in parts[1:4]:
            status, headers, body = c.post(event_list(part))
            assert status == 429, (status, body)
            assert int(headers["Retry-After"]) > 0
            refused.append(part)
        assert c.get("/healthz")[0] == 200
        assert rx.metric("audittui_webhook_store_writable") == 0
        own_server.start()
        # the API server sends the refused batches again after Retry-After; they now land
        pending = refused + parts[4:]

        def send() -> bool:
            while pending:
                status, _, body = c.post(event_list(pending[0]))
                if status != 200:
                    assert status == 429, (status, body)  # a stale connection to the old server
                    return False
                pending.pop(0)
            return True

        await_(send, "every batch accepted after the restart")
        assert rx.metric("audittui_webhook_store_writable") == 1
        assert rx.stop() == 0
    finally:
        rx.kill()
    assert count(url, table, final=True) == len(evs)
    err = rx.err.read_text()
    assert err.count("answering 429 until it works again") == 1, err
    assert err.count("takes batches again") == 1, err
    assert "Traceback" not in err


def test_store_too_slow_429_then_all_rows(tmp_path: Path, own_server: ClickHouseServer) -> None:
    # A server that hangs (SIGSTOP: it holds the connection and answers nothing) is a slow
    # store: 429 once the INSERT has waited --store-timeout, and nothing lost once it answers.
    evs = events(1200, seed=29)
    parts = batches(evs)
    url, table = table_url(own_server.url)
    rx = store_receiver(tmp_path, url, "rx", "--store-timeout", "1")
    try:
        c = rx.client()
        assert c.post(event_list(parts[0]))[0] == 200
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGSTOP)
        try:
            status, headers, body = c.post(event_list(parts[1]))
            assert status == 429, (status, body)
            assert int(headers["Retry-After"]) > 0
        finally:
            own_server.proc.send_signal(signal.SIGCONT)
        pending = parts[1:]  # the refused batch is sent again, as the API server does

        def send() -> bool:
            while pending:
                status, _, body = c.post(event_list(pending[0]))
                if status != 200:
                    assert status == 429, (status, body)
                    return False
                pending.pop(0)
            return True

        await_(send, "every batch accepted once the store answers again")
        assert rx.stop() == 0
    finally:
        rx.kill()
    # the timed-out INSERT may have landed too, once resumed: its copies collapse by key
    assert count(url, table, final=True) == len(evs)
    assert "Traceback" not in rx.err.read_text()


def one_line_exit_2(cmd: list[str], cwd: Path) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_bad_to(tmp_path: Path, clickhouse_url: str) -> None:
    base = [PY, "-m", "audittui", "webhook", "--listen", "127.0.0.1:0"]
    line = one_line_exit_2([*base, "--to", "clickhouse://127.0.0.1:x/default"], tmp_path)
    assert "bad store URL" in line
    down = f"clickhouse://127.0.0.1:{free_port()}/default"
    line = one_line_exit_2([*base, "--to", down], tmp_path)
    assert "cannot reach ClickHouse" in line
    line = one_line_exit_2([*base, "--to", clickhouse_url, "--spool", "sp"], tmp_path)
    assert "not both" in line
    assert not (tmp_path / "sp").exists()
    line = one_line_exit_2(base, tmp_path)
    assert "--spool DIR or --to URL" in line
    url, table = table_url(clickhouse_url)
    with connect(parse(url)) as ch:
        ch.execute(f"CREATE TABLE {table} (x Int32) ENGINE = MergeTree ORDER BY x")
    line = one_line_exit_2([*base, "--to", url], tmp_path)
    assert "has another schema" in line
