"""Files, gzip, folders with lumberjack backups, stdin, unreadable paths, parallel parsing."""

from __future__ import annotations

import builtins
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import audittui
from audittui.index import loader
from audittui.index.evaluate import select
from audittui.ingest.batch import NUMBER_COLUMNS, STRING_COLUMNS

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]

COLUMNS = [*STRING_COLUMNS, *NUMBER_COLUMNS, "source"]


def column(store, name: str) -> list:
    return [store.value(name, i) for i in range(len(store))]


def jsonl(events) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


# -- gzip ----------------------------------------------------------------------------------------


def test_gzip_detected_by_magic_whatever_the_name(tmp_path, make_event):
    events = [make_event(user={"username": f"z{k}"}) for k in range(3)]
    gz = tmp_path / "x.log"  # gzip content, plain name
    gz.write_bytes(gzip.compress(jsonl(events) + b"oops\n"))
    plain = tmp_path / "y.gz"  # plain content, gzip name
    plain.write_bytes(jsonl([make_event(user={"username": "plain"})]))
    with audittui.load(gz, plain) as store:
        assert column(store, "user") == ["z0", "z1", "z2", "plain"]
        assert [(m.path, m.line) for m in store.malformed] == [(str(gz), 4)]
        assert [store.event(i) for i in range(3)] == events
        assert store.raw(1) == orjson.dumps(events[1])
        assert [s.path for s in store.sources] == [str(gz), str(plain)]
        assert store.sources[0].compressed
        assert not store.sources[1].compressed


def test_gzip_is_spooled_never_next_to_the_logs(tmp_path, make_event):
    folder = tmp_path / "audit"
    folder.mkdir()
    old = [make_event(user={"username": f"old{k}"}) for k in range(3)]
    new = [make_event(user={"username": f"new{k}"}) for k in range(2)]
    (folder / "audit-2025-03-04T06-22-18.819.log.gz").write_bytes(gzip.compress(jsonl(old)))
    (folder / "audit.log").write_bytes(jsonl(new))
    (folder / "audit.log").chmod(0o600)
    before = listing(folder)
    store = audittui.load(folder)
    assert column(store, "user") == ["old0", "old1", "old2", "new0", "new1"]
    for i in range(len(store)):
        assert store.event(i) == (old + new)[i]
        store.raw(i)
    assert listing(folder) == before
    spooled = Path(store.sources[0].read_path)
    assert folder not in spooled.parents
    assert spooled.is_file()
    store.close()
    assert not spooled.exists()
    assert listing(folder) == before


def test_truncated_gzip_is_tolerated(tmp_path, make_event):
    events = [make_event(requestObject={"pad": os.urandom(300).hex()}) for _ in range(40)]
    whole = gzip.compress(jsonl(events))
    path = tmp_path / "audit-2025-03-04T06-22-18.819.log.gz"
    path.write_bytes(whole[: len(whole) // 2])  # still being written
    with audittui.load(path) as store:
        assert 0 < len(store) < len(events)
        for i in range(len(store)):
            assert store.event(i) == events[i]
        assert store.malformed
        assert all(m.path == str(path) for m in store.malformed)
        assert any("gzip" in m.reason for m in store.malformed)


# -- folders -------------------------------------------------------------------------------------


def test_folder_reads_backups_oldest_first_then_live(tmp_path, make_event):
    folder = tmp_path / "logs"
    folder.mkdir()

    def evs(tag: str, n: int = 2) -> list[dict]:
        return [make_event(user={"username": f"{tag}{k}"}) for k in range(n)]

    files = {
        "audit-2025-03-04T06-22-18.819.log.gz": evs("b2"),
        "audit-2025-03-03T23-59-59.001.log": evs("b1"),
        "audit-2025-03-05T00-00-00.000.log": evs("b3"),
        "audit-2024-12-31T10-11-12.345.log.gz": evs("b0"),
        "audit.log": evs("live"),
    }
    for name, events in files.items():
        data = jsonl(events)
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    # b3 is being compressed right now: a half-written .gz beside the plain backup.
    partial = gzip.compress(jsonl(files["audit-2025-03-05T00-00-00.000.log"]))
    (folder / "audit-2025-03-05T00-00-00.000.log.gz").write_bytes(partial[: len(partial) // 2])
    (folder / "policy.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "audit.log").write_bytes(jsonl(evs("nested")))
    before = listing(folder)

    with audittui.load(folder) as store:
        assert [Path(s.path).name for s in store.sources] == [
            "audit-2024-12-31T10-11-12.345.log.gz",
            "audit-2025-03-03T23-59-59.001.log",
            "audit-2025-03-04T06-22-18.819.log.gz",
            "audit-2025-03-05T00-00-00.000.log",
            "audit.log",
        ]
        users = column(store, "user")
        assert users == [f"{t}{k}" for t in ("b0", "b1", "b2", "b3", "live") for k in range(2)]
        assert store.malformed == []
        assert len(set(column(store, "audit_id"))) == len(store)
        for i in range(len(store)):
            store.event(i)
    assert listing(folder) == before


def test_folder_with_backups_only(tmp_path, make_event):
    folder = tmp_path / "logs"
    folder.mkdir()
    a, b = make_event(user={"username": "a"}), make_event(user={"username": "b"})
    (folder / "audit-2025-01-02T00-00-00.000.log").write_bytes(jsonl([b]))
    (folder / "audit-2025-01-01T00-00-00.000.log.gz").write_bytes(gzip.compress(jsonl([a])))
    with audittui.load(folder) as store:
        assert column(store, "user") == ["a", "b"]


def test_several_paths_keep_their_sources(tmp_path, make_event):
    early = make_event(requestReceivedTimestamp="2024-01-01T00:00:00.000000Z")
    late = make_event(requestReceivedTimestamp="2024-06-01T00:00:00.000000Z")
    (tmp_path / "one.log").write_bytes(jsonl([late]))
    (tmp_path / "two.log").write_bytes(jsonl([early]))
    with audittui.load(tmp_path / "one.log", str(tmp_path / "two.log")) as store:
        assert column(store, "source") == [0, 1]
        assert list(select(store, "")) == [1, 0]
        assert store.event(1) == early


# -- stdin -----------------------------------------------------------------------------------


def test_stdin_dash(tmp_path, make_event):
    events = [make_event(user={"username": f"in{k}"}) for k in range(3)]
    other = make_event(user={"username": "file"})
    (tmp_path / "f.log").write_bytes(jsonl([other]))
    data = jsonl(events[:2]) + b"garbage\n" + orjson.dumps(events[2])  # no final newline
    script = (
        "import audittui, json, sys\n"
        "s = audittui.load('-', sys.argv[1])\n"
        "print(json.dumps({'users': [s.value('user', i) for i in range(len(s))],\n"
        "  'events': [s.event(i) for i in range(len(s))],\n"
        "  'malformed': [list(m) for m in s.malformed],\n"
        "  'paths': [x.path for x in s.sources]}))\n"
    )
    proc = subprocess.run(
        [PY, "-c", script, str(tmp_path / "f.log")],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["users"] == ["in0", "in1", "in2", "file"]
    assert out["events"] == [*events, other]
    assert [m[:2] for m in out["malformed"]] == [["-", 3]]
    assert out["paths"] == ["-", str(tmp_path / "f.log")]


def test_stdin_gzip_is_decompressed(make_event):
    """`cat audit-….log.gz | audittui stats -`: gzip is recognised by its magic bytes on stdin
    too, as for files whatever their name."""
    events = [make_event() for _ in range(5)]
    proc = subprocess.run(
        [PY, "-m", "audittui", "stats", "--format", "json", "-"],
        input=gzip.compress(jsonl(events)),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["events"], info["malformed"]) == (5, 0)


# -- unreadable paths --------------------------------------------------------------------------


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.log"
    with pytest.raises(audittui.InputError) as info:
        audittui.load(missing)
    assert str(missing) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_path_among_good_ones(tmp_path, make_event):
    (tmp_path / "ok.log").write_bytes(jsonl([make_event()]))
    with pytest.raises(audittui.InputError):
        audittui.load(tmp_path / "ok.log", tmp_path / "gone")


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_permission_denied_via_access(tmp_path, make_event, monkeypatch, kind):
    folder = tmp_path / "audit"
    folder.mkdir()
    log = folder / "audit.log"
    log.write_bytes(jsonl([make_event()]))
    target = log if kind == "file" else folder
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) == target:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(audittui.InputError) as info:
        audittui.load(target)
    message = str(info.value)
    assert str(target) in message
    assert "sudo" in message or "ACL" in message or "setfacl" in message
    assert "\n" not in message


def test_permission_denied_on_open(tmp_path, make_event, monkeypatch):
    log = tmp_path / "audit.log"
    log.write_bytes(jsonl([make_event()]))
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike) and Path(file) == log:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(audittui.InputError) as info:
        audittui.load(log)
    message = str(info.value)
    assert str(log) in message
    assert "sudo" in message


# -- parallel parsing --------------------------------------------------------------------------


def mixed_log(make_event) -> tuple[bytes, list[int]]:
    """~250 events with malformed lines, blank lines, CRLF and envelopes spread through."""
    parts: list[bytes] = []
    bad_lines: list[int] = []
    for k in range(250):
        ev = make_event(
            user={"username": f"user{k % 17}", "groups": [f"g{k % 5}"]},
            verb=("get", "list", "create", "delete")[k % 4],
            requestReceivedTimestamp=f"2024-05-01T10:{k // 60:02d}:{k % 60:02d}.{k:06d}Z",
            responseStatus={"code": (200, 403, 404, 201)[k % 4]},
            requestObject={"pad": "p" * (k * 7 % 900)},
        )
        if k % 23 == 0:
            line = orjson.dumps({"kind": "EventList", "items": [ev, ev]})
        elif k % 29 == 0:
            line = orjson.dumps({"category": "kube-audit", "properties": {"log": json.dumps(ev)}})
        else:
            line = orjson.dumps(ev)
        parts.append(line + (b"\r" if k % 11 == 0 else b""))
        if k % 13 == 5:
            parts.append(b'{"kind":"Event","auditID":"trunc')
            bad_lines.append(len(parts))
        if k % 31 == 7:
            parts.append(b"")
        if k % 37 == 3:
            parts.append(b"\xff\xfe\x00binary")
            bad_lines.append(len(parts))
    parts.append(b'{"kind":"Event","verb":"cut-off-at-end')
    bad_lines.append(len(parts))
    return b"\n".join(parts), bad_lines


@pytest.mark.parametrize("compressed", [False, True])
def test_parallel_slices_match_single_process(tmp_path, make_event, monkeypatch, compressed):
    data, bad_lines = mixed_log(make_event)
    path = tmp_path / "big.log"
    path.write_bytes(gzip.compress(data) if compressed else data)

    with audittui.load(path, workers=1) as serial:
        expected = {name: column(serial, name) for name in COLUMNS}
        expected_malformed = list(serial.malformed)
        expected_events = [serial.event(i) for i in range(len(serial))]
    assert [m.line for m in expected_malformed] == bad_lines
    assert len(expected_events) > 250

    bounds_seen: list[list[int]] = []
    real_bounds = loader.slice_bounds

    def spy(*args, **kwargs):
        bounds = real_bounds(*args, **kwargs)
        bounds_seen.append(bounds)
        return bounds

    monkeypatch.setattr(loader, "PARALLEL_MIN", 0)
    monkeypatch.setattr(loader, "SLICE", 4096)
    monkeypatch.setattr(loader, "slice_bounds", spy)
    with audittui.load(path, workers=3) as parallel:
        assert bounds_seen and len(bounds_seen[0]) > 10  # really cut into many slices
        for name in COLUMNS:
            assert column(parallel, name) == expected[name], name
        assert parallel.malformed == expected_malformed
        assert [parallel.event(i) for i in range(len(parallel))] == expected_events
        assert list(select(parallel, "verb:delete code:404")) == list(
            serial_query(path, "verb:delete code:404")
        )


def serial_query(path: Path, text: str) -> list[int]:
    with audittui.load(path, workers=1) as store:
        return list(select(store, text))


def test_parallel_with_several_files(tmp_path, make_event, monkeypatch):
    data, bad_lines = mixed_log(make_event)
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(data)
    b.write_bytes(data + b"\n")
    with audittui.load(a, b, workers=1) as serial:
        expected = {name: column(serial, name) for name in COLUMNS}
        expected_malformed = list(serial.malformed)
    monkeypatch.setattr(loader, "PARALLEL_MIN", 0)
    monkeypatch.setattr(loader, "SLICE", 4096)
    with audittui.load(a, b, workers=2) as parallel:
        for name in COLUMNS:
            assert column(parallel, name) == expected[name], name
        assert parallel.malformed == expected_malformed
    assert [(Path(m.path).name, m.line) for m in expected_malformed] == [
        ("a.log", n) for n in bad_lines
    ] + [("b.log", n) for n in bad_lines]
