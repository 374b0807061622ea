"""The headless CLI: query / summary / stats, output formats, exit codes and stderr messages."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import SAMPLES, v1_event

from audittui.cli import main as cli

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def log(tmp_path, make_event) -> tuple[Path, list[bytes], list[dict]]:
    """A small log, written out of time order, with one malformed line."""
    specs = [
        ("alice", "get", "pods", 200, "2024-05-01T10:00:03.000000Z"),
        ("bob", "delete", "secrets", 403, "2024-05-01T10:00:01.000000Z"),
        ("alice", "list", "configmaps", 200, "2024-05-01T10:00:02.000000Z"),
        ("carol", "create", "deployments", 500, "2024-05-01T10:00:04.000000Z"),
    ]
    events = []
    for user, verb, resource, code, ts in specs:
        events.append(
            make_event(
                user={"username": user, "groups": ["system:authenticated"]},
                verb=verb,
                objectRef={"resource": resource, "namespace": "ns1", "name": "x"},
                responseStatus={"metadata": {}, "code": code},
                requestReceivedTimestamp=ts,
                stageTimestamp=ts,
            )
        )
    lines = [orjson.dumps(e) for e in events]
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join(lines[:2] + [b"this is not json"] + lines[2:]) + b"\n")
    return path, lines, events


TIME_ORDER = [1, 2, 0, 3]


# -- query ---------------------------------------------------------------------------------------


def test_query_jsonl_lines_equal_original_lines(capsys, log):
    path, lines, _ = log
    code, out, err = run(capsys, "query", "--format", "jsonl", str(path))
    assert code == 0
    assert out.encode().split(b"\n") == [lines[k] for k in TIME_ORDER] + [b""]
    assert "1 malformed line" in err
    assert len(err.strip().splitlines()) == 1


def test_query_jsonl_with_filter(capsys, log):
    path, lines, _ = log
    code, out, _ = run(capsys, "query", "-q", "user:alice", "--format", "jsonl", str(path))
    assert code == 0
    assert out.encode().splitlines() == [lines[2], lines[0]]


def test_query_jsonl_of_envelopes_is_one_event_per_line(capsys, tmp_path, make_event):
    inner = [make_event(user={"username": f"a{k}"}) for k in range(2)]
    records = [{"category": "kube-audit", "properties": {"log": json.dumps(e)}} for e in inner]
    path = tmp_path / "aks.json"
    path.write_bytes(b"\n".join(map(orjson.dumps, records)) + b"\n")
    code, out, err = run(capsys, "query", "--format", "jsonl", str(path))
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == inner
    assert err == ""


def test_query_jsonl_of_pretty_printed_document_is_one_line(capsys):
    """JSON Lines output needs one event per line, also for a pretty-printed input file."""
    path = SAMPLES / "sysdiglabs-aks-audit-log" / "sample_KubeAuditLog_event.json"
    code, out, _ = run(capsys, "query", "--format", "jsonl", str(path))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == json.loads(path.read_text(encoding="utf-8-sig"))


def test_query_json(capsys, log):
    path, _, events = log
    code, out, _ = run(capsys, "query", "--format", "json", str(path))
    assert code == 0
    assert json.loads(out) == [events[k] for k in TIME_ORDER]
    code, out, _ = run(capsys, "query", "--format", "json", "-q", "user:nobody", str(path))
    assert json.loads(out) == []


def test_query_count(capsys, log):
    path, _, _ = log
    assert run(capsys, "query", "--format", "count", str(path))[1] == "4\n"
    assert run(capsys, "query", "--format", "count", "-q", "code:>=400", str(path))[1] == "2\n"
    assert run(capsys, "query", "--format", "count", "--query=-user:alice", str(path))[1] == "2\n"


def test_query_table(capsys, log):
    path, _, _ = log
    code, out, _ = run(capsys, "query", str(path))  # table is the default
    assert code == 0
    rows = out.splitlines()
    header = rows[0].split()
    assert header[:5] == ["TIME", "USER", "VERB", "RESOURCE", "NAMESPACE/NAME"]
    assert "CODE" in header
    assert len(rows) == 5
    assert [r.split()[1] for r in rows[1:]] == ["bob", "alice", "alice", "carol"]
    assert rows[1].startswith("2024-05-01T10:00:01")
    assert "secrets" in rows[1] and "403" in rows[1] and "ns1/x" in rows[1]


HOSTILE_USERS = [
    "evil\x1b[2J\x1b[31mroot",
    "rtl\u202egnp.exe",
    "two\nlines",
    "bell\x07\x9bcsi",
]


def test_table_sanitizes_hostile_values(capsys, tmp_path, make_event):
    events = [
        make_event(
            user={"username": name},
            objectRef={"resource": "pods", "namespace": "n\x1b[0m", "name": "p\u200bq"},
            userAgent="ua\x1b]0;title\x07",
            requestURI="/api\x1b[1m",
        )
        for name in HOSTILE_USERS
    ]
    path = tmp_path / "hostile.log"
    path.write_bytes(b"\n".join(map(orjson.dumps, events)) + b"\n")
    code, out, _ = run(capsys, "query", "--format", "table", str(path))
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out and "\x9b" not in out
    assert "\u202e" not in out and "\u200b" not in out
    assert "\\x1b" in out
    assert "\\u202e" in out
    assert len(out.splitlines()) == 1 + len(events)  # an embedded newline cannot add rows
    code, out, _ = run(capsys, "summary", "--format", "table", str(path))
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b" in out
    # jsonl/json are data: the original bytes, escapes and all, round-trip exactly.
    code, out, _ = run(capsys, "query", "--format", "json", str(path))
    assert {e["user"]["username"] for e in json.loads(out)} == set(HOSTILE_USERS)


# Every character a terminal acts on or hides: C0 and DEL, C1, bidi, zero-width, BOM.
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)
HOSTILE_COMMANDS = [
    ("query", "--format", "table"),
    ("query", "--format", "jsonl"),
    ("query", "--format", "json"),
    ("query", "--format", "wrapper"),
    ("summary", "--format", "table"),
    ("summary", "--format", "json"),
    ("summary", "--format", "csv"),
    ("summary", "--by", "ua", "--format", "csv"),
    ("summary", "--latency", "--format", "table"),
    ("summary", "--latency", "--format", "json"),
    ("summary", "--latency", "--format", "csv"),
    ("findings", "--format", "table"),
    ("findings", "--format", "json"),
    ("stats", "--format", "text", "--malformed"),
    ("stats", "--format", "json", "--malformed"),
    ("policy", "check", "POLICY", "--format", "table"),
    ("policy", "check", "POLICY", "--format", "json"),
    ("policy", "simulate", "POLICY", "--format", "table"),
    ("policy", "simulate", "POLICY", "--format", "json"),
    ("policy", "suggest", "--format", "yaml"),
    ("policy", "suggest", "--format", "json"),
]


@pytest.mark.parametrize("argv", HOSTILE_COMMANDS, ids=" ".join)
def test_every_command_and_format_prints_log_text_inert(capsys, tmp_path, make_event, argv):
    """A hostile user name, URI, user agent, object name and body reach no output raw, in
    any command or format (JSON keeps the value: the characters become \\u escapes)."""
    hostile = "evil\x1b[2J\x1b]0;t\x07\x9b\u202egnp\u200b\u2066\ufeff[bold]x[/]"
    events = [
        make_event(
            auditID=f"h-{k}",
            user={"username": hostile + str(k)},
            objectRef={"resource": "secrets", "namespace": hostile, "name": hostile},
            userAgent=hostile,
            requestURI="/api/v1/namespaces/x/secrets/" + hostile,
            verb="get",
            responseStatus={"code": 403},
            requestObject={"note": hostile},
        )
        for k in range(30)
    ]
    path = tmp_path / "hostile.log"
    lines = [orjson.dumps(e) for e in events]
    path.write_bytes(b"\n".join(lines) + b"\n" + b"2024 " + hostile.encode() + b"\n")
    policy = str(SAMPLES / "policies" / "gce-default-policy.yaml")
    code, out, err = run(capsys, *(policy if a == "POLICY" else a for a in argv), str(path))
    assert code == (1 if argv[0] == "findings" else 0), err  # findings: 1 when there are
    text = out.replace("\r\n", "\n") if "csv" in argv else out  # CSV's own line ends
    assert out and not UNSAFE.search(text), UNSAFE.findall(text)[:5]
    assert not UNSAFE.search(err)
    if "csv" in argv:
        assert not any(cell.startswith("=") for row in csv.reader(io.StringIO(out)) for cell in row)


def test_csv_cells_a_spreadsheet_would_run_are_quoted(capsys, tmp_path, make_event):
    path = tmp_path / "formula.log"
    path.write_bytes(orjson.dumps(make_event(user={"username": '=HYPERLINK("x")'})) + b"\n")
    code, out, _ = run(capsys, "summary", "--format", "csv", str(path))
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[1][0] == '\'=HYPERLINK("x")'


# -- summary -------------------------------------------------------------------------------------


def test_summary_json(capsys, log):
    path, _, _ = log
    code, out, err = run(capsys, "summary", "--format", "json", str(path))
    assert code == 0
    rows = json.loads(out)
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == {"alice", "bob", "carol"}
    assert rows[0]["key"] == "alice"  # most events first
    assert by_key["alice"]["events"] == 2
    assert by_key["alice"]["verbs"] == {"get": 1, "list": 1}
    assert by_key["bob"]["forbidden"] == 1 and by_key["bob"]["errors"] == 0
    assert by_key["carol"]["errors"] == 1 and by_key["carol"]["forbidden"] == 0
    assert by_key["alice"]["first"].startswith("2024-05-01T10:00:02")
    assert by_key["alice"]["last"].startswith("2024-05-01T10:00:03")
    assert set(rows[0]) >= {"key", "events", "first", "last", "verbs", "forbidden", "errors"}
    assert "malformed" in err


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("verb", {"get": 1, "delete": 1, "list": 1, "create": 1}),
        ("resource", {"pods": 1, "secrets": 1, "configmaps": 1, "deployments": 1}),
        ("code", {"200": 2, "403": 1, "500": 1}),
        ("ns", {"ns1": 4}),
        ("ip", {"10.0.0.1": 4}),
        ("ua", {"kubectl/v1.30.0": 4}),
    ],
)
def test_summary_by(capsys, log, by, expected):
    path, _, _ = log
    code, out, _ = run(capsys, "summary", "--by", by, "--format", "json", str(path))
    assert code == 0
    assert {r["key"]: r["events"] for r in json.loads(out)} == expected


def test_summary_csv(capsys, log):
    path, _, _ = log
    code, out, _ = run(capsys, "summary", "--format", "csv", "-q", "code:>=300", str(path))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"key", "events", "forbidden", "errors", "first", "last", "verbs"} <= set(rows[0])
    assert {r["key"]: (r["events"], r["forbidden"], r["errors"]) for r in rows} == {
        "bob": ("1", "1", "0"),
        "carol": ("1", "0", "1"),
    }
    assert {r["key"]: r["verbs"] for r in rows} == {"bob": "delete=1", "carol": "create=1"}


def test_summary_table(capsys, log):
    path, _, _ = log
    code, out, _ = run(capsys, "summary", "--by", "verb", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["VERB", "EVENTS"]
    assert {line.split()[0] for line in lines[1:5]} == {"get", "delete", "list", "create"}
    assert "4" in lines[-1] and "events" in lines[-1]


# -- stats ---------------------------------------------------------------------------------------


def test_stats_json(capsys, log):
    path, _, _ = log
    code, out, err = run(capsys, "stats", "--format", "json", str(path))
    assert code == 0
    info = json.loads(out)
    assert {"events", "malformed", "files", "first", "last"} <= set(info)
    assert info["events"] == 4
    assert info["malformed"] == 1
    assert info["files"] == [str(path)]
    assert info["first"].startswith("2024-05-01T10:00:01")
    assert info["last"].startswith("2024-05-01T10:00:04")
    assert "malformed" in err


def test_stats_json_names_a_file_whose_name_is_not_utf8_exactly(capsys, tmp_path):
    """A name of bytes that are not UTF-8 (read as surrogates) is JSON that reads back as
    exactly that name, inert, not a traceback."""
    name = os.fsdecode(b"bad\xff\x1b.log")
    path = tmp_path / name
    path.write_bytes(orjson.dumps(v1_event()) + b"\n")
    for argv in (("stats",), ("stats", "--malformed")):
        code, out, _ = run(capsys, *argv, "--format", "json", str(tmp_path))
        assert code == 0 and out.isascii() and "\x1b" not in out
        assert json.loads(out)["files"] == [str(path)]


def test_stats_malformed_lists_lines(capsys, log):
    path, _, _ = log
    code, out, err = run(capsys, "stats", "--format", "json", "--malformed", str(path))
    assert code == 0
    info = json.loads(out)
    assert [(m["path"], m["line"]) for m in info["malformed_lines"]] == [(str(path), 3)]
    code, out, err = run(capsys, "stats", "--malformed", str(path))
    assert code == 0
    assert f"{path}:3:" in out
    assert "4" in out.splitlines()[0]


def test_stats_of_folder(capsys, tmp_path, make_event):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "audit.log").write_bytes(orjson.dumps(make_event()) + b"\n")
    (folder / "audit-2025-01-01T00-00-00.000.log").write_bytes(orjson.dumps(make_event()) + b"\n")
    code, out, err = run(capsys, "stats", "--format", "json", str(folder))
    assert code == 0
    info = json.loads(out)
    assert info["events"] == 2 and info["malformed"] == 0
    assert [Path(f).name for f in info["files"]] == [
        "audit-2025-01-01T00-00-00.000.log",
        "audit.log",
    ]
    assert err == ""  # no malformed note when nothing was skipped


def test_reading_nothing_is_an_error_for_every_command(capsys, tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    other = tmp_path / "gcp.json"
    other.write_bytes(b'{"protoPayload": {"serviceName": "compute.googleapis.com"}}\n' * 3)
    folder = tmp_path / "nothing"
    folder.mkdir()
    not_logs = tmp_path / "reports"
    not_logs.mkdir()
    for name in ("report.pdf", "notes.csv", ".hidden.pdf"):
        (not_logs / name).write_text("x")
    for path, says in (
        (empty, "empty, no audit event read"),
        (other, "3 of them a GCP audit entry of another service (compute.googleapis.com)"),
        (folder, "no log files here"),
        (not_logs, "no log files here (skipped: notes.csv, report.pdf)"),
    ):
        for command in (["stats"], ["query"], ["summary"], ["findings"]):
            code, out, err = run(capsys, *command, str(path))
            assert code == 2 and out == "", (command, path)
            assert says in one_line(err), (command, err)
    code, out, err = run(capsys, "stats", "--malformed", str(other))  # shown, still an error
    assert code == 2 and out.count("compute.googleapis.com") == 3


# -- errors --------------------------------------------------------------------------------------


def one_line(err: str) -> str:
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    return lines[0]


def test_bad_query_unknown_field(capsys, log):
    path, _, _ = log
    code, out, err = run(capsys, "query", "-q", "verb:get usr:bob", str(path))
    assert code == 2
    assert out == ""
    msg = one_line(err)
    assert "usr" in msg
    assert "at 10" in msg  # 1-based position of the bad term
    assert "did you mean 'user'" in msg


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("verb:get (user:a", "at 10"),
        ("code:abc", "at 6"),
        ('user:"alice', "at 6"),
        ("user:a OR", "at 8"),
        ("dur:fast", "at 5"),
    ],
)
def test_bad_query_names_position(capsys, log, query, where):
    path, _, _ = log
    for command in ("query", "summary"):
        code, out, err = run(capsys, command, "-q", query, str(path))
        assert code == 2
        assert out == ""
        assert where in one_line(err)


def test_bad_query_is_reported_before_reading(capsys, tmp_path):
    code, _, err = run(capsys, "query", "-q", "vrb:get", str(tmp_path / "missing.log"))
    assert code == 2
    assert "did you mean 'verb'" in one_line(err)


def test_missing_file(capsys, tmp_path):
    missing = tmp_path / "missing.log"
    for argv in (["query"], ["summary"], ["stats"]):
        code, out, err = run(capsys, *argv, str(missing))
        assert code == 2
        assert out == ""
        msg = one_line(err)
        assert str(missing) in msg
        assert "Traceback" not in err


def test_permission_denied(capsys, monkeypatch, log):
    path, _, _ = log
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, *a, **k: False if Path(p) == path else real_access(p, mode, *a, **k),
    )
    code, out, err = run(capsys, "query", str(path))
    assert code == 2
    assert out == ""
    msg = one_line(err)
    assert str(path) in msg
    assert "sudo" in msg and ("ACL" in msg or "setfacl" in msg)


def test_permission_denied_on_open(capsys, monkeypatch, log):
    import builtins

    path, _, _ = log
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike) and Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    code, out, err = run(capsys, "stats", str(path))
    assert code == 2
    assert "sudo" in one_line(err)


def test_no_malformed_note_when_clean(capsys, tmp_path, make_event):
    path = tmp_path / "clean.log"
    path.write_bytes(orjson.dumps(make_event()) + b"\n")
    code, out, err = run(capsys, "query", "--format", "count", str(path))
    assert (code, out, err) == (0, "1\n", "")


def test_malformed_note_counts_lines(capsys, tmp_path, make_event):
    path = tmp_path / "bad.log"
    path.write_bytes(b"x\n" + orjson.dumps(make_event()) + b"\ny\n{\n")
    code, out, err = run(capsys, "query", "--format", "count", str(path))
    assert code == 0 and out == "1\n"
    msg = one_line(err)
    assert "3 malformed lines" in msg


def test_no_command_is_usage_error(capsys):
    assert cli.main([]) == 2


# -- real processes ------------------------------------------------------------------------------


def test_subprocess_module_and_stdin(log):
    path, lines, events = log
    proc = subprocess.run(
        [PY, "-m", "audittui", "query", "--format", "jsonl", "-q", "user:alice", "-"],
        input=path.read_bytes(),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [lines[2], lines[0]]
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "malformed" in err[0]


def test_subprocess_bad_query_exit_code(log):
    path, _, _ = log
    proc = subprocess.run(
        [PY, "-m", "audittui", "summary", "-q", "user:(", str(path)],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert len(proc.stderr.decode().strip().splitlines()) == 1
    assert b"Traceback" not in proc.stderr


def test_broken_pipe_does_not_crash(tmp_path, make_event):
    """`audittui query ... | head -1`: the reader leaves early; exit quietly, no traceback."""
    events = [make_event(requestObject={"pad": "z" * 1000}) for _ in range(3000)]  # ~5 MB
    path = tmp_path / "many.log"
    path.write_bytes(b"\n".join(map(orjson.dumps, events)) + b"\nnot json\n")
    for fmt in ("jsonl", "table"):
        proc = subprocess.Popen(
            [PY, "-m", "audittui", "query", "--format", fmt, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, err
        assert first.strip()
        assert b"Traceback" not in err
        assert b"BrokenPipe" not in err
        assert b"Exception ignored" not in err


def test_query_finding_selects_a_findings_events_and_refuses_to_follow(capsys):
    exec_pod = str(SAMPLES / "falco-k8s-audit" / "exec_pod.json")
    unprivileged = str(SAMPLES / "falco-k8s-audit" / "create_nginx_pod_unprivileged.json")
    assert cli.main(["query", "-q", "finding:exec-attach", "--format", "count", exec_pod]) == 0
    assert capsys.readouterr().out == "1\n"
    assert cli.main(["query", "-q", "finding:*", "--format", "count", unprivileged]) == 0
    assert capsys.readouterr().out == "0\n"
    assert cli.main(["query", "-f", "-q", "verb:get OR finding:x", exec_pod]) == 2
    assert "finding: cannot be followed" in capsys.readouterr().err


def test_query_masks_secrets_by_default_and_reveal_prints_them_as_logged(capsys, tmp_path):
    secret = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "db", "namespace": "prod"},
        "data": {"password": "c3VwZXJzZWNyZXQ="},
        "stringData": {"dsn": "postgres://admin:hunter2@db"},
    }
    ev = v1_event(
        verb="create",
        level="RequestResponse",
        objectRef={"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        requestObject=secret,
    )
    path = tmp_path / "audit.log"
    path.write_bytes(orjson.dumps(ev) + b"\n")
    plain = tmp_path / "cri.log"  # the same event inside a CRI line: the wrapper format
    plain.write_bytes(b"2024-01-01T00:00:00.000000000Z stdout F " + orjson.dumps(ev) + b"\n")
    for fmt, source in (("jsonl", path), ("json", path), ("wrapper", plain)):
        code, out, _ = run(capsys, "query", "--format", fmt, str(source))
        assert code == 0 and "hunter2" not in out and "c3VwZXJzZWNyZXQ=" not in out, fmt
        assert "masked" in out and "password" in out, fmt  # keys stay, values go
        code, out, _ = run(capsys, "query", "--format", fmt, "--reveal", str(source))
        assert code == 0 and "hunter2" in out and "c3VwZXJzZWNyZXQ=" in out, fmt
