"""Tests for audittui.demo.copy_shifted and the app's demo folder: the recorded demo logs
moved in time so that they end now."""

from __future__ import annotations

import calendar
import gzip
import hashlib
import re
import time
from pathlib import Path

import orjson
import pytest

from audittui.demo import copy_shifted, write_demo
from audittui.ingest.sources import backup_key
from audittui.tui.run import DEMO_LOGS, _demo_folder

TIME = re.compile(rb'"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})((?:\.\d+)?)Z"')


def _now_us() -> int:
    return time.time_ns() // 1000


def _secs(text: bytes) -> int:
    return calendar.timegm(time.strptime(text.decode(), "%Y-%m-%dT%H:%M:%S"))


def _micros(stamp: str) -> int:
    """``2025-11-26T09:00:00.123456Z`` → µs."""
    return _secs(stamp[:19].encode()) * 1_000_000 + int(stamp[20:26].ljust(6, "0"))


def _backup_micros(ts: str) -> int:
    """A lumberjack stamp ``2025-11-26T09-03-51.993`` → µs."""
    return (
        calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H-%M-%S")) * 1_000_000
        + int(ts[20:23]) * 1000
    )


def _ordered(folder: Path) -> list[Path]:
    """The files as the app reads them: backups by the time in their name, then audit.log."""
    files = list(folder.iterdir())
    backups = sorted((f for f in files if backup_key(f.name)), key=lambda f: backup_key(f.name))
    return [*backups, folder / "audit.log"]


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.split(b"\n")[:-1]


def _event(line: bytes) -> dict | None:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _check_shifted(src: Path, dst: Path, end_us: int) -> int:
    """The copy ``dst`` of ``src`` ends at ``end_us``; returns the delta (whole seconds)."""
    src_files, dst_files = _ordered(src), _ordered(dst)
    assert len(src_files) == len(dst_files) == 4
    deltas: set[int] = set()
    pairs = []
    for a, b in zip(src_files, dst_files, strict=True):
        assert (a.suffix == ".gz") == (b.suffix == ".gz")
        assert (b.read_bytes()[:2] == b"\x1f\x8b") == (a.suffix == ".gz")
        pairs += zip(_lines(a), _lines(b), strict=True)
    malformed = 0
    for old, new in pairs:
        if _event(old) is None:  # klog text, a truncated line, binary garbage: as they were
            assert new == old
            malformed += 1
            continue
        # the same line but for its times, each moved by the same whole number of seconds
        assert TIME.sub(b"T", old) == TIME.sub(b"T", new)
        olds, news = TIME.findall(old), TIME.findall(new)
        assert len(olds) == len(news) >= 2
        for (s0, f0), (s1, f1) in zip(olds, news, strict=True):
            assert f0 == f1  # sub-second digits untouched
            deltas.add(_secs(s1) - _secs(s0))
    assert malformed == 3
    assert len(deltas) == 1
    delta = deltas.pop()

    # the newest event is the last second before the end; event order and spacing as recorded
    stamps = [ev["stageTimestamp"] for _, new in pairs if (ev := _event(new))]
    assert stamps == sorted(stamps)
    assert end_us - 1_000_000 < max(_micros(s) for s in stamps) <= end_us

    # each backup's name is its rotation time, moved too: after its last event, before the next
    for a, b in zip(src_files[:-1], dst_files[:-1], strict=True):
        ka, kb = backup_key(a.name), backup_key(b.name)
        assert ka and kb and ka[0] == kb[0] == "audit.log" and ka[2] == kb[2]
        assert _backup_micros(kb[1]) - _backup_micros(ka[1]) == delta * 1_000_000
    for older, newer in zip(dst_files, dst_files[1:], strict=False):
        rotated = _backup_micros(backup_key(older.name)[1])
        last = max(_micros(ev["stageTimestamp"]) for x in _lines(older) if (ev := _event(x)))
        first = min(_micros(ev["stageTimestamp"]) for x in _lines(newer) if (ev := _event(x)))
        assert last // 1000 <= rotated // 1000 <= first // 1000 + 1
    # mtimes: each file's newest event, as the API server leaves them
    for f in dst_files:
        newest = max(_micros(ev["stageTimestamp"]) for x in _lines(f) if (ev := _event(x)))
        assert f.stat().st_mtime_ns == newest * 1000
    return delta


def test_copy_shifted_moves_the_demo_logs_to_now(tmp_path: Path) -> None:
    before = _digests(DEMO_LOGS)
    end = _now_us()
    written = copy_shifted(DEMO_LOGS, tmp_path / "logs", end)
    assert written == sorted((tmp_path / "logs").iterdir())
    delta = _check_shifted(DEMO_LOGS, tmp_path / "logs", end)
    assert delta > 0
    assert _digests(DEMO_LOGS) == before  # the recorded folder is only read


def test_copy_shifted_bodies_times_move_too(tmp_path: Path) -> None:
    # times inside objects (creationTimestamp, managedFields, conditions, leases) move with
    # the event, so an object is as old, relative to its event, as it was when recorded
    src = tmp_path / "src"
    write_demo(src, 400, seed=3, demo=False, body_fraction=1.0)  # bodies everywhere
    end = 1_700_000_000_123_456  # 2023-11-14T22:13:20.123456Z
    copy_shifted(src, tmp_path / "dst", end)
    delta = _check_shifted(src, tmp_path / "dst", end)
    assert delta < 0  # into the past works as well
    bodies = 0
    for path in _ordered(tmp_path / "dst"):
        for line in _lines(path):
            ev = _event(line)
            if ev is None or "responseObject" not in ev:
                continue
            created = ev["responseObject"].get("metadata", {}).get("creationTimestamp")
            if created:
                bodies += 1
                assert created < ev["stageTimestamp"]
                assert created.startswith("2023-")  # moved from 2025 back to end in 2023-11
    assert bodies > 20


def test_copy_shifted_refuses_to_write_into_its_source(tmp_path: Path) -> None:
    write_demo(tmp_path / "logs", 100)
    before = _digests(tmp_path / "logs")
    with pytest.raises(ValueError):
        copy_shifted(tmp_path / "logs", tmp_path / "logs", _now_us())
    with pytest.raises(ValueError):
        copy_shifted(tmp_path / "logs", tmp_path / "logs" / "inner", _now_us())
    assert _digests(tmp_path / "logs") == before


def test_demo_folder_ends_now(tmp_path: Path) -> None:
    before = _digests(DEMO_LOGS)
    start = _now_us()
    folder = Path(_demo_folder(tmp_path))
    assert folder == tmp_path / "logs"
    _check_shifted(DEMO_LOGS, folder, _newest(folder))
    assert start - 1_000_000 < _newest(folder) <= _now_us()
    assert _digests(DEMO_LOGS) == before


def test_demo_folder_without_demo_logs_generates_one_that_ends_now(tmp_path: Path) -> None:
    start = _now_us()
    folder = Path(_demo_folder(tmp_path / "work", recorded=tmp_path / "no-demo-logs"))
    assert not (tmp_path / "no-demo-logs").exists()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["logs"]  # no leftovers
    generated = tmp_path / "generated"
    write_demo(generated, 3000, seed=7)  # what the fallback writes, then moves in time
    _check_shifted(generated, folder, _newest(folder))
    assert start - 1_000_000 < _newest(folder) <= _now_us()


def _newest(folder: Path) -> int:
    return max(
        _micros(ev["stageTimestamp"])
        for f in folder.iterdir()
        for line in _lines(f)
        if (ev := _event(line))
    )
