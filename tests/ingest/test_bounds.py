"""Bounds on decompression and on the longest line (issue 29, 8): a gzip bomb read by
``stats``, ``query``, the follower and the app's session stops at a cap said in one line, in
bounded memory and temporary space; a full $TMPDIR likewise; an endless line is a malformed
record saying its size, never held whole. Memory is the subprocess's own peak (wait4)."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from conftest import v1_event

from audittui.ingest import inflate

MiB = 1 << 20
LINE = orjson.dumps(v1_event(user={"username": "alice"})) + b"\n"


HEAD_EVENTS = 2000


def bomb(path: Path, members: int = 64, member_bytes: int = 64 * MiB) -> int:
    """A gzip bomb: 2,000 events, then zero bytes that inflate to ``members`` × ``member_bytes``
    (4 GiB by default) from about 4 MB: one deflated member written again and again
    (concatenated gzip members are one stream). Returns the decompressed size."""
    zeros = gzip.compress(bytes(member_bytes), compresslevel=9, mtime=0)
    with open(path, "wb") as fh:
        # events unlike LINE: the follower knows a file it read by its first bytes
        head = orjson.dumps(v1_event(user={"username": "alice"}, verb="list")) + b"\n"
        fh.write(gzip.compress(head * HEAD_EVENTS, mtime=0))
        for _ in range(members):
            fh.write(zeros)
    assert path.stat().st_size < 5 * MiB
    return members * member_bytes


# The command, reporting its own peak at exit: VmHWM (a wait4 ru_maxrss would include the
# pytest process's, which Linux carries across fork and exec) and its workers' (RUSAGE_CHILDREN).
_PEAK = """
import atexit, resource, sys
peak_file = sys.argv.pop(1)

def peak():
    status = open("/proc/self/status").read()
    own = int(status.split("VmHWM:")[1].split()[0])
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    open(peak_file, "w").write(str(max(own, workers) * 1024))

atexit.register(peak)
from audittui.command import main
sys.exit(main(sys.argv[1:]))
"""


def start(args: list[str], tmp: Path, *, script: str = _PEAK, **env: str) -> subprocess.Popen:
    tmp.mkdir(exist_ok=True)
    peak = tmp.parent / f"peak-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(peak), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmp), **env},
    )
    proc.peak_file = peak  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str, int]:
    """Wait for ``proc``: (exit status, stdout, stderr, its peak RSS in bytes)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    peak = int(proc.peak_file.read_text())  # type: ignore[attr-defined]
    return proc.returncode, out.decode(), err.decode(), peak


def run(args: list[str], tmp: Path, **env: str) -> tuple[int, str, str, int]:
    return finish(start(args, tmp, **env))


def events_of(stats: str) -> int:
    return int(re.search(r"events\s+([\d,]+)", stats).group(1).replace(",", ""))  # type: ignore[union-attr]


def test_a_gzip_bomb_stops_at_the_ratio_cap_in_stats_and_query(tmp_path):
    path = tmp_path / "audit.log.gz"
    total = bomb(path)
    for args in (
        ["stats", str(path)],
        ["query", "-q", "user:alice", str(path), "--format", "count"],
    ):
        code, out, err, peak = run(args, tmp_path / "tmp")
        assert code == 0, err
        [said] = [x for x in err.splitlines() if "AUDITTUI_GUNZIP_RATIO" in x]
        assert said.startswith(f"audittui: {path}: stopped at ") and "over 100×" in said
        read = events_of(out) if args[0] == "stats" else int(out)
        assert read == HEAD_EVENTS and total > 4e9  # the events before the cap: kept
        assert peak < 300 * MiB, f"peak RSS {peak / MiB:.0f} MiB"
    assert not list((tmp_path / "tmp").iterdir())  # the spool removed at exit


def test_the_size_cap_and_the_free_space_of_tmpdir_are_bounds_too(tmp_path):
    noisy = tmp_path / "audit.log.gz"  # ~8×, as a real log: no ratio cap reached
    rows = (orjson.dumps(v1_event(auditID=os.urandom(12).hex())) + b"\n" for _ in range(120_000))
    noisy.write_bytes(gzip.compress(b"".join(rows), compresslevel=1))
    size = 30 * MiB
    code, out, err, _ = run(["stats", str(noisy)], tmp_path / "tmp", AUDITTUI_GUNZIP_MAX="30M")
    assert (
        code == 0
        and f"{noisy}: stopped at 30 MiB decompressed, the cap (AUDITTUI_GUNZIP_MAX)" in err
    )
    assert events_of(out) * 200 < size + MiB
    # $TMPDIR with 20 MiB to spare before its reserve: as a small tmpfs filling up
    free = inflate.free_space(str(tmp_path))
    reserve = str(free - 20 * MiB)
    code, out, err, _ = run(["stats", str(noisy)], tmp_path / "tmp", AUDITTUI_TMP_RESERVE=reserve)
    assert code == 0 and "would have less than" in err and "(AUDITTUI_TMP_RESERVE)" in err
    [said] = [x for x in err.splitlines() if "AUDITTUI_TMP_RESERVE" in x]  # one line
    assert said.startswith(f"audittui: {noisy}: stopped after ")  # naming the file
    # no room at all: nothing read, exit 2 with the reason
    code, out, err, _ = run(
        ["stats", str(noisy)], tmp_path / "tmp", AUDITTUI_TMP_RESERVE=str(free * 2)
    )
    assert code == 2 and "AUDITTUI_TMP_RESERVE" in err


def test_a_gzip_bomb_among_the_apps_backups_is_said_and_bounded(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    bomb(folder / "audit-2026-12-01T10-00-00.000.log.gz")
    (folder / "audit.log").write_bytes(LINE * 3)
    script = (
        "import sys, threading\n"
        "peak_file = sys.argv.pop(1)\n"
        "from audittui.index.session import Session\n"
        "s = Session([sys.argv[1]], follow=False)\n"
        "s.open()\n"
        "s.index(lambda: None, threading.Event())\n"
        "print(len(s.store))\n"
        "for n in s.problems: print(n.path, n.kind, n.detail)\n"
        "s.close()\n"
        "status = open('/proc/self/status').read()\n"
        "open(peak_file, 'w').write(str(int(status.split('VmHWM:')[1].split()[0]) * 1024))\n"
    )
    proc = start([str(folder)], tmp_path / "tmp", script=script)
    code, out, err, peak = finish(proc)
    assert code == 0, err
    count, said = out.splitlines()
    assert int(count) == HEAD_EVENTS + 3
    assert said.startswith(f"{folder}/audit-2026-12-01T10-00-00.000.log.gz incomplete stopped at")
    assert "AUDITTUI_GUNZIP_RATIO" in said
    assert peak < 400 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_a_gzip_bomb_beside_a_followed_file_is_bounded(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    live = folder / "audit.log"
    live.write_bytes(LINE)
    proc = start(["query", "-f", str(live), "--format", "jsonl"], tmp_path / "tmp")
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert b"alice" in first
        # Two rotations between two looks: the older backup, gzipped by now, is a bomb.
        bomb(folder / "audit-2026-12-01T10-00-00.000.log.gz")
        os.rename(live, folder / "audit-2026-12-01T10-00-01.000.log")
        live.write_bytes(orjson.dumps(v1_event(user={"username": "bob"})) + b"\n")
        watchdog = threading.Timer(60, proc.kill)  # (a read that never comes fails, not hangs)
        watchdog.start()
        for line in proc.stdout:  # type: ignore[union-attr]
            if b"bob" in line:  # the new file, read after the backups rotated before it
                break
        watchdog.cancel()
    finally:
        proc.send_signal(signal.SIGINT)
    code, out, err, peak = finish(proc)
    said = [x for x in err.splitlines() if "AUDITTUI_GUNZIP_RATIO" in x]
    assert said and "audit-2026-12-01T10-00-00.000.log.gz: stopped at" in said[0], err
    assert peak < 300 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_an_endless_line_is_a_malformed_record_with_its_size(tmp_path):
    path = tmp_path / "audit.log"
    endless = 300 * MiB  # no newline: a sparse run of zero bytes
    with open(path, "wb") as fh:
        fh.write(LINE)
        fh.truncate(len(LINE) + endless)
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n" + LINE)
    code, out, err, peak = run(["stats", "--malformed", str(path)], tmp_path / "tmp")
    assert code == 0, err
    assert "events      2" in out or "events      2" in out.replace(",", "")
    assert (
        f"a line of {endless:,} bytes, over the 134,217,728-byte bound (AUDITTUI_LINE_MAX)" in out
    )
    assert peak < 320 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_an_endless_line_followed_is_passed_over_unheld(tmp_path):
    live = tmp_path / "audit.log"
    live.write_bytes(LINE)
    proc = start(
        ["query", "-f", str(live), "--format", "jsonl"], tmp_path / "tmp", AUDITTUI_LINE_MAX="8M"
    )
    try:
        assert b"alice" in proc.stdout.readline()  # type: ignore[union-attr]
        with open(live, "r+b") as fh:
            fh.truncate(len(LINE) + 200 * MiB)  # a writer's endless line (sparse zeros)
        time.sleep(0.3)  # (passed over in the meantime: the follower may read it in rounds)
        with open(live, "ab") as fh:
            fh.write(b"\n" + orjson.dumps(v1_event(user={"username": "bob"})) + b"\n")
        assert b"bob" in proc.stdout.readline()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGINT)
    code, out, err, peak = finish(proc)
    assert peak < 250 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_inflate_keeps_concatenated_members_and_says_a_cut(tmp_path):
    data = b"".join(gzip.compress(LINE * k) for k in (1, 2, 3))
    out: list[bytes] = []
    bounds = inflate.Bounds.for_folder(str(tmp_path))
    result = inflate.gunzip(data[:10], _Reader(data[10:]), out.append, bounds)
    assert b"".join(out) == LINE * 6 and result.note is None
    out.clear()
    result = inflate.gunzip(data[:-5], _Reader(b""), out.append, bounds)
    assert b"".join(out) == LINE * 6 and result.note is not None and "ends early" in result.note
    assert inflate.head(str(_write(tmp_path / "h.gz", data)), 10) == LINE[:10]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
