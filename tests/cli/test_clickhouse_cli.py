"""The CLI over a store URL (``audittui query|summary|findings|stats|policy check clickhouse://…``)
against the real 18.16 server and chdb: for a fixed set of queries, every command prints over the
store what it prints over the same events read from the file, and a bad URL, an unreachable
server, a missing or empty table and hostile queries are one line and exit 2.

The data is real: the JSON-lines samples under shared/ (audit2rbac's demo log, Panther's EKS,
GKE and AKS events) and the demo generator's realistic 5,000 events, in one file that is shipped
into a table of its own per test (rows.from_lines, as ``ship`` reads it) and read by the file path.

What cannot match, and why (normalised below, nothing else):
- the order of events of equal time in ``query``: the file path keeps reading order, the store
  pages by its sort key (time, auditID, stage, …); compared as multisets, the store's order
  checked to be by time;
- ties in ``summary``: rows of equal count, verbs of equal count and the most frequent IP among
  equal ones are broken by text on the server, by reading order in memory (Reader.summary);
- the order of users of equal count in a finding (and so the table's top three): users rank by
  first appearance among ties, and the store's copy holds only the events the rules selected;
- a finding's auditIDs are compared as sets (one per request either way, ties in time aside).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from backend_kit import fill
from clickhouse_server import free_port
from conftest import REALDATA, SAMPLES, v1_event

from audittui.analyses.summary import GROUPINGS
from audittui.cli import main as cli
from audittui.clickhouse.client import connect
from audittui.clickhouse.rows import from_lines
from audittui.clickhouse.url import parse

JSON_LINES = [
    SAMPLES / "audit2rbac" / "demo.log",
    REALDATA / "panther-analysis" / "derived" / "eks.jsonl",
    REALDATA / "panther-analysis" / "derived" / "gke.jsonl",
    REALDATA / "panther-analysis" / "derived" / "aks.jsonl",
]
POLICY = SAMPLES / "policies" / "gce-default-policy.yaml"
QUERIES = [
    "",
    "verb:delete",
    "user:system:serviceaccount:* code:4xx",
    "resource:secrets,configmaps -verb:get",
    "ns:kube-system OR code:>=500",
    "kubectl",
    "dur:>100ms",
    "ip:10.0.0.0/8 verb:list,watch",
    "group:system:authenticated -user:system:*",
    "resource:pods/exec,pods/log",
    "decision:allow authorizer:RBAC",
    "level:RequestResponse stage:ResponseComplete",
]
USERS_AT = 9 + 1 + 7 + 2 + 19 + 2 + 28 + 1  # findings' table: where its USERS column starts
HOSTILE = (
    "user:\"a'b\\\\c\" {p0:String} '; DROP TABLE x; --",
    "'; DROP TABLE audit_events; --",
    'ns:"{p1:String}" name:\\\' uri:"\\\\\'"',
)


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real samples and 5,000 demo events in one JSON-lines file."""
    folder = tmp_path_factory.mktemp("cli_store")
    demo = folder / "demo.log"
    subprocess.run(
        [sys.executable, "-m", "audittui.demo", "big", "--events", "5000", str(demo)],
        check=True,
        capture_output=True,
    )
    path = folder / "audit.log"
    seen: set = set()
    with path.open("wb") as out:
        for sample in JSON_LINES:
            for line in sample.read_bytes().splitlines():
                # A line repeated in the samples is one row in a store (its key holds the
                # event's digest): later copies are left out of the file, so that the file
                # and the store hold the same events.
                keys = set(from_lines(line + b"\n", 0, 1, str(path), "", True)[0].keys)
                if not keys & seen:
                    seen |= keys
                    out.write(line + b"\n")
        out.write(demo.read_bytes())
    return path


def _table(store_url: str) -> str:
    sep = "&" if "?" in store_url else "?"
    return f"{store_url}{sep}table=t_{uuid.uuid4().hex}"


@pytest.fixture
def url(store_url: str, log_file: Path) -> str:
    """A table of its own holding the events of ``log_file``."""
    full = _table(store_url)
    fill(full, log_file)
    return full


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def both(capsys, log_file: Path, url: str, *argv: str) -> tuple[tuple, tuple]:
    """The same command over the file and over the store: (code, out, err) each."""
    return run(capsys, *argv, str(log_file)), run(capsys, *argv, url)


# -- query ---------------------------------------------------------------------------------


def test_query_prints_what_the_file_path_prints(capsys, log_file, url):
    matched = 0
    for q in QUERIES:
        (fc, fcount, _), (sc, scount, serr) = both(capsys, log_file, url, "query", "-q", q,
                                                  "--format", "count")  # fmt: skip
        assert (sc, scount, serr) == (fc, fcount, ""), q
        matched += int(fcount) > 0
        for fmt in ("jsonl", "table"):
            (fc, fout, _), (sc, sout, serr) = both(capsys, log_file, url, "query", "-q", q,
                                                  "--format", fmt)  # fmt: skip
            assert (sc, serr) == (fc, "") == (0, ""), (q, fmt)
            assert sorted(sout.splitlines()) == sorted(fout.splitlines()), (q, fmt)
            if fmt == "table":
                times = [line[:23] for line in sout.splitlines()[1:]]
                assert times == sorted(times), q  # the store's order is time order
                assert sout.splitlines()[:1] == fout.splitlines()[:1]  # the header
        (_, fout, _), (sc, sout, _) = both(capsys, log_file, url, "query", "-q", q, "--format",
                                           "json")  # fmt: skip
        key = orjson.dumps
        assert sc == 0
        assert sorted(map(key, json.loads(sout))) == sorted(map(key, json.loads(fout))), q
    assert matched >= len(QUERIES) - 2  # the queries select something in this data


def test_query_masks_secrets_unless_revealed_as_on_files(capsys, log_file, url):
    for extra in ((), ("--reveal",)):
        argv = ("query", "-q", "resource:secrets,configmaps", "--format", "jsonl", *extra)
        (_, fout, _), (sc, sout, _) = both(capsys, log_file, url, *argv)
        assert sc == 0 and sout and sorted(sout.splitlines()) == sorted(fout.splitlines())


def test_a_query_matching_nothing_prints_the_header_and_exits_0(capsys, url):
    code, out, err = run(capsys, "query", "-q", "user:nobody-at-all", url)
    assert (code, err) == (0, "") and len(out.splitlines()) == 1 and out.startswith("TIME")
    assert run(capsys, "query", "-q", "user:nobody-at-all", "--format", "count", url)[:2] == (
        0,
        "0\n",
    )


# -- summary -------------------------------------------------------------------------------


def _rows(text: str) -> list[dict]:
    """Summary rows without what ties decide (see the module's docstring)."""
    rows = json.loads(text)
    for r in rows:
        r.pop("top_ip", None)
        r["verbs"] = sorted(r.get("verbs", {}).items())
    return sorted(rows, key=lambda r: (-r.get("events", r.get("requests", 0)), r["key"]))


def test_summary_by_every_grouping_as_on_files(capsys, log_file, url):
    for by in GROUPINGS:
        for q in ("", "verb:delete", "code:4xx"):
            argv = ("summary", "--by", by, "-q", q, "--format", "json")
            (fc, fout, _), (sc, sout, serr) = both(capsys, log_file, url, *argv)
            assert (sc, serr) == (fc, "") == (0, ""), (by, q)
            assert _rows(sout) == _rows(fout), (by, q)
    (_, fout, _), (_, sout, _) = both(capsys, log_file, url, "summary", "--by", "user")
    f_lines, s_lines = fout.splitlines(), sout.splitlines()
    verbs = f_lines[0].index("VERBS")  # the verbs column: ties (see above)
    assert s_lines[0] == f_lines[0] and s_lines[-1] == f_lines[-1]
    assert sorted(x[:verbs] for x in s_lines) == sorted(x[:verbs] for x in f_lines)
    (_, fout, _), (_, sout, _) = both(capsys, log_file, url, "summary", "--by", "verb",
                                      "--format", "csv")  # fmt: skip
    assert sorted(sout.splitlines()[1:]) == sorted(fout.splitlines()[1:])
    argv = ("summary", "--latency", "--by", "resource", "--format", "json")
    (_, fout, _), (sc, sout, _) = both(capsys, log_file, url, *argv)
    assert sc == 0 and json.loads(sout)
    assert sorted(json.loads(sout), key=lambda r: r["key"]) == sorted(
        json.loads(fout), key=lambda r: r["key"]
    )


def test_summary_top_and_rest_as_on_files(capsys, log_file, url):
    """The server keeps the top rows (LIMIT) and counts the rest itself: the same rest as the
    file path's, and the rows and the rest add up to the selection."""
    for by in ("user", "resource", "ua", "code"):
        argv = ("summary", "--by", by, "--top", "5", "--format", "json")
        (fc, fout, _), (sc, sout, serr) = both(capsys, log_file, url, *argv)
        assert (sc, serr) == (fc, "") == (0, ""), by
        frows, srows = json.loads(fout), json.loads(sout)
        assert srows[-1] == frows[-1] and srows[-1]["key"] is None, by  # the rest
        assert [r["events"] for r in srows] == [r["events"] for r in frows], by
        total = run(capsys, "query", "--format", "count", url)[1]
        assert sum(r["events"] for r in srows) == int(total), by
    argv = ("summary", "--latency", "--by", "user", "--top", "3", "--format", "json")
    (_, fout, _), (sc, sout, _) = both(capsys, log_file, url, *argv)
    frows, srows = json.loads(fout), json.loads(sout)
    assert sc == 0 and len(srows) == 4 and srows[-1]["more_keys"] == frows[-1]["more_keys"]
    every = json.loads(run(capsys, "summary", "--latency", "--by", "user", "--format", "json",
                           url)[1])  # fmt: skip
    assert sum(r["requests"] for r in srows) == sum(r["requests"] for r in every)


# -- findings ------------------------------------------------------------------------------


def _findings(doc: dict) -> dict:
    for f in doc["findings"]:
        f["users"] = sorted(f["users"])
        f["auditIDs"] = sorted(f["auditIDs"], key=str)
    return doc


def test_findings_as_on_files(capsys, log_file, url):
    for severity in ("medium",):
        argv = ("findings", "--rules", "none", "--min-severity", severity, "--format", "json")
        (fc, fout, _), (sc, sout, serr) = both(capsys, log_file, url, *argv)
        assert (sc, serr) == (fc, "")
        doc = _findings(json.loads(sout))
        assert doc == _findings(json.loads(fout))
        assert doc["findings"]  # something to compare
    (fc, fout, _), (sc, sout, _) = both(capsys, log_file, url, "findings", "--rules", "none")
    assert sc == fc == 1

    def table(text: str) -> list[str]:  # a finding's row without its users (ties, above)
        cut = {"critical", "high", "medium", "low", "info"}
        # the columns before USERS (LAST may be blank: a finding of undated events)
        return [
            line[:USERS_AT] if line.split()[:1] and line.split()[0] in cut else line
            for line in text.splitlines()
        ]

    assert table(sout) == table(fout)


def test_blind_rules_are_judged_over_the_whole_store(capsys, store_url, log_file):
    """The demo's events alone: no bodies for some rules, a short span. Blindness is judged
    over the whole table (one event per fact is fetched besides the selection), and the count
    said is the table's, not the selection's."""
    demo = log_file.parent / "demo.log"
    url = _table(store_url)
    fill(url, demo)
    (fc, fout, _), (sc, sout, _) = both(capsys, demo, url, "findings", "--format", "json")
    s, f = _findings(json.loads(sout)), _findings(json.loads(fout))
    assert sc == fc and s["blind"] and s == f
    (_, fout, _), (_, sout, _) = both(capsys, demo, url, "findings")
    said = [x for x in sout.splitlines() if "finding(s) at" in x or x.startswith("blind:")]
    assert said == [x for x in fout.splitlines() if "finding(s) at" in x or x.startswith("blind:")]
    assert any("on 5,000 events" in x for x in said)


# -- policy check --------------------------------------------------------------------------


def test_policy_check_as_on_files(capsys, log_file, url):
    for fmt in ("table", "json"):
        argv = ("policy", "check", str(POLICY), "--format", fmt)
        (fc, fout, _), (sc, sout, serr) = both(capsys, log_file, url, *argv)
        assert (sc, serr) == (fc, "")
        if fmt == "json":
            s, f = json.loads(sout), json.loads(fout)
            for d in (*s["disagreements"], *f["disagreements"]):
                d["auditIDs"] = sorted(d["auditIDs"], key=str)  # None: no auditID
            assert s == f and s["checked"] > 5000
        else:
            assert sout == fout  # read back in the shipper's order: even the examples match


# -- stats ---------------------------------------------------------------------------------


def test_stats_says_what_the_store_holds(capsys, log_file, url):
    (_, fout, _), (sc, sout, serr) = both(capsys, log_file, url, "stats", "--format", "json")
    s, f = json.loads(sout), json.loads(fout)
    assert (sc, serr) == (0, "")
    assert {k: s[k] for k in ("events", "first", "last", "files")} == {
        k: f[k] for k in ("events", "first", "last", "files")
    }
    assert s["malformed"] is None and s["sources"] == [
        {"cluster": "", "source": str(log_file), "events": f["events"]}
    ]
    assert parse(url).display == s["store"]
    (_, ftext, _), (code, text, _) = both(capsys, log_file, url, "stats")
    assert code == 0
    for label in ("events ", "first ", "last "):
        said = [x for x in text.splitlines() if x.startswith(label)]
        assert len(said) == 1 and said == [x for x in ftext.splitlines() if x.startswith(label)]
    assert run(capsys, "stats", "--malformed", url)[0] == 2


# -- bad input -----------------------------------------------------------------------------


def one_line_exit_2(capsys, *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "", argv
    lines = [line for line in err.splitlines() if line.startswith("audittui:")]
    assert len(lines) == 1, err
    return lines[0]


def test_hostile_queries_are_values_never_sql(capsys, url):
    total = run(capsys, "query", "--format", "count", url)[1]
    for q in HOSTILE:
        code, out, err = run(capsys, "query", "-q", q, "--format", "count", url)
        assert (code, out, err) == (0, "0\n", ""), q
        code, _, err = run(capsys, "summary", "-q", q, url)
        assert (code, err) == (0, ""), q
    assert run(capsys, "query", "--format", "count", url)[1] == total  # nothing dropped
    assert "bad query" in one_line_exit_2(capsys, "query", "-q", "user:(", url)
    assert "RE2" in one_line_exit_2(capsys, "query", "-q", "user:/(?=x)/", url)
    assert "finding" in one_line_exit_2(capsys, "query", "-q", "finding:secret-get", url)


def test_bad_urls_unreachable_and_missing_or_empty_tables(capsys, store_url, log_file):
    port = free_port()
    started = time.monotonic()
    line = one_line_exit_2(capsys, "stats", f"clickhouse://127.0.0.1:{port}/default")
    assert f"127.0.0.1:{port}" in line and time.monotonic() - started < 30
    line = one_line_exit_2(capsys, "query", f"clickhouse://me:hunter2@127.0.0.1:{port}/default")
    assert "hunter2" not in line
    for bad in (
        "clickhouse://127.0.0.1:99999/default",
        "clickhouse://127.0.0.1:8123/default?table=a-b",
        "clickhouse://127.0.0.1:8123/default?drop=1",
        "clickhouse://127.0.0.1:8123/bad-db",
        "chdb://relative/folder",
    ):
        assert "URL" in one_line_exit_2(capsys, "summary", bad), bad
    missing = _table(store_url)
    for argv in (("query",), ("stats",), ("findings",), ("summary",)):
        assert one_line_exit_2(capsys, *argv, missing)
    empty = _table(store_url)
    nothing = log_file.parent / "nothing.log"
    nothing.write_bytes(b"")
    fill(empty, nothing)  # the table created, no row
    for argv in (("query",), ("query", "--format", "count"), ("stats",), ("summary",),
                 ("findings",), ("policy", "check", str(POLICY))):  # fmt: skip
        assert "empty" in one_line_exit_2(capsys, *argv, empty), argv
    assert "one store URL" in one_line_exit_2(capsys, "stats", empty, str(log_file))
    # every command runs on a store: on an empty one, each says so
    for argv in (("history", "pods", "ns/x"), ("rbac", "--user", "u"),
                 ("policy", "simulate", str(POLICY)), ("policy", "suggest")):  # fmt: skip
        assert "empty" in one_line_exit_2(capsys, *argv, empty), argv
    # what a store cannot do yet is one line, not a traceback
    assert "not run on a store" in one_line_exit_2(capsys, "query", "-q", "finding:x", empty)


# -- query --follow ------------------------------------------------------------------------


def test_follow_prints_new_rows_once_until_interrupted(clickhouse_url, tmp_path):
    """Followed in a child process (chdb opens a folder in one process only: the real server
    here), as a user runs it; rows written after it started are printed once each, a row
    written late (its time before the newest printed) too."""
    url = _table(clickhouse_url)
    t0 = "2024-05-01T10:00:{:02d}.000000Z"

    def ev(k: int, verb: str = "delete") -> dict:
        return v1_event(auditID=f"f-{k}", verb=verb, requestReceivedTimestamp=t0.format(k),
                        stageTimestamp=t0.format(k))  # fmt: skip

    def write(events: list[dict]) -> None:
        path = tmp_path / f"batch-{uuid.uuid4().hex}.log"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        fill(url, path)

    write([ev(1), ev(2), ev(3, "get")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "audittui", "query", "-f", "--format", "jsonl", "-q",
         "verb:delete", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None
    sel.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""

    def await_ids(want: list[str], timeout: float = 20.0) -> None:
        nonlocal buffer
        deadline = time.monotonic() + timeout
        while not set(want) <= set(seen):
            left = deadline - time.monotonic()
            assert left > 0, f"awaited {want}, printed {seen}"
            if sel.select(left):
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                assert chunk, f"the follower exited: {proc.stderr.read() if proc.stderr else ''}"
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                seen.extend(orjson.loads(line)["auditID"] for line in lines if line)

    try:
        await_ids(["f-1", "f-2"])
        write([ev(5), ev(6, "get")])
        await_ids(["f-5"])
        write([ev(4)])  # written after f-5, its time before: late, within LATE
        await_ids(["f-4"])
        write([ev(7), ev(8)])
        await_ids(["f-7", "f-8"])
        assert seen == ["f-1", "f-2", "f-5", "f-4", "f-7", "f-8"]  # each once, no get
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 0


def test_following_an_empty_table_waits_for_its_first_rows(clickhouse_url, tmp_path):
    """A table ship has created but not written to yet is followed, not refused as empty."""
    url = _table(clickhouse_url)
    nothing = tmp_path / "nothing.log"
    nothing.write_bytes(b"")
    fill(url, nothing)
    proc = subprocess.Popen(
        [sys.executable, "-m", "audittui", "query", "-f", "--format", "jsonl", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        later = tmp_path / "later.log"
        later.write_bytes(orjson.dumps(v1_event(auditID="first-row")) + b"\n")
        fill(url, later)
        assert proc.stdout is not None
        guard = threading.Timer(30, proc.kill)  # a follower that never prints fails, no hang
        guard.start()
        line = proc.stdout.readline()
        guard.cancel()
        assert line, proc.stderr.read() if proc.stderr else ""
        assert orjson.loads(line)["auditID"] == "first-row"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 0


def test_clusters_are_counted_and_a_cluster_url_reads_only_its_own(capsys, store_url, log_file):
    """Two clusters in one table (as two shippers with --cluster write it): stats counts per
    cluster and source, ``?cluster=NAME`` limits every command to that cluster's events, and
    ``--format wrapper`` prints each stored event as its own line (a store keeps no wrapper)."""
    url = _table(store_url)
    demo = log_file.parent / "demo.log"
    client = connect(parse(url))
    try:
        client.ensure_table()
        for cluster, path in (("prod", demo), ("lab", JSON_LINES[0])):
            client.insert(from_lines(path.read_bytes(), 0, 1, str(path), cluster, True)[0].body())
    finally:
        client.close()
    code, out, err = run(capsys, "stats", "--format", "json", url)
    doc = json.loads(out)
    assert (code, err) == (0, "") and doc["clusters"] == ["lab", "prod"]
    per = {s["cluster"]: s["events"] for s in doc["sources"]}
    assert per["prod"] == 5000 and per["lab"] > 0 and doc["events"] == 5000 + per["lab"]
    prod = f"{url}&cluster=prod"
    assert run(capsys, "query", "--format", "count", prod)[1] == "5000\n"
    assert run(capsys, "query", "-q", "cluster:lab", "--format", "count", url)[1] == (
        f"{per['lab']}\n"
    )
    (_, fout, _), (_, sout, _) = both(capsys, demo, prod, "summary", "--by", "verb", "--format",
                                      "json")  # fmt: skip
    assert _rows(sout) == _rows(fout)
    jsonl = run(capsys, "query", "-q", "verb:delete", "--format", "jsonl", prod)[1]
    assert (
        jsonl and run(capsys, "query", "-q", "verb:delete", "--format", "wrapper", prod)[1] == jsonl
    )
