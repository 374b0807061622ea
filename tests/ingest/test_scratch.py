"""The temporary folders of a process killed with SIGKILL are removed by the next audittui to
start (issue 29, 15): only this user's, only dead ones, only those made by audittui, never
through a symlink."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from conftest import v1_event

from audittui.ingest import scratch

LINE = orjson.dumps(v1_event()) + b"\n"


def folders(tmp: Path) -> set[str]:
    return {p.name for p in tmp.iterdir() if p.name.startswith("audittui-")}


def wait_for_folder(tmp: Path, prefix: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [n for n in folders(tmp) if n.startswith(prefix)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {prefix}* folder in {tmp}")


def audittui(args: list[str], tmp: Path, **kw: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "audittui", *args],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **kw,  # type: ignore[arg-type]
    )


def test_a_killed_commands_folders_are_removed_at_the_next_start_and_a_live_ones_kept(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "audit.log").write_bytes(LINE)
    older = orjson.dumps(v1_event(verb="list")) + b"\n"  # (a backup is known by its start)
    (logs / "audit-2026-12-01T10-00-00.000.log.gz").write_bytes(gzip.compress(older))
    # A .gz backup of a followed folder, decompressed into the spool; this one stays alive.
    alive = audittui(["query", "-f", str(logs), "--backups"], tmp)
    alive_folder = wait_for_folder(tmp, "audittui-spool-")
    piped = audittui(["query", "-f", "-"], tmp, stdin=subprocess.PIPE)  # a pipe: spooled
    deadline = time.monotonic() + 30
    while len(folders(tmp)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    [pipe_folder] = folders(tmp) - {alive_folder}
    piped.stdin.write(LINE)  # type: ignore[union-attr]
    piped.stdin.flush()  # type: ignore[union-attr]
    os.kill(piped.pid, signal.SIGKILL)
    piped.wait()
    assert pipe_folder in folders(tmp)  # left behind by the kill
    killed_gz = audittui(["query", "-f", str(logs), "--backups"], tmp)
    while (pipe_folder in folders(tmp) or len(folders(tmp)) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pipe_folder not in folders(tmp)  # removed as the next audittui started
    [gz_folder] = folders(tmp) - {alive_folder}
    os.kill(killed_gz.pid, signal.SIGKILL)
    killed_gz.wait()
    assert {gz_folder, alive_folder} <= folders(tmp)
    other = tmp / "audittui-spool-other"  # another user's (we run as root: give it away)
    other.mkdir()
    (other / scratch.MARKER).touch()
    os.chown(other / scratch.MARKER, 12345, 12345)
    os.chown(other, 12345, 12345)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "audittui", "stats", str(logs / "audit.log")],
            env={**os.environ, "TMPDIR": str(tmp)},
            capture_output=True,
        )
        assert done.returncode == 0, done.stderr
        left = folders(tmp)
        assert gz_folder not in left  # the dead one's: removed
        assert alive_folder in left and "audittui-spool-other" in left  # live, or not ours
    finally:
        alive.send_signal(signal.SIGINT)
        alive.wait(30)
    assert alive_folder not in folders(tmp)  # removed by its own exit


def test_sweep_takes_only_what_this_mechanism_made_and_follows_no_link(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    kept = tmp_path / "precious"
    kept.mkdir()
    (kept / scratch.MARKER).touch()
    (tmp / "audittui-link").symlink_to(kept)  # a link to a folder that looks like ours
    (tmp / "audittui-old-format").mkdir()  # no marker: not made here (or still being made)
    (tmp / "audittui-file").write_text("x")
    holder = subprocess.Popen(  # a live process holding its folder
        [sys.executable, "-c", "from audittui.ingest import scratch; import sys, time; "
         "print(scratch.make('spool'), flush=True); time.sleep(60)"],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    live = holder.stdout.readline().strip()  # type: ignore[union-attr]
    try:
        assert scratch.sweep(str(tmp)) == []
        assert os.path.isdir(live) and (kept / scratch.MARKER).exists()
        assert {"audittui-link", "audittui-old-format", "audittui-file"} <= folders(tmp)
    finally:
        holder.kill()
        holder.wait()
    assert scratch.sweep(str(tmp)) == [live]  # dead now: its lock went with it
    assert (kept / scratch.MARKER).exists() and (tmp / "audittui-link").is_symlink()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_IDLE_POOL = """
import os, signal, sys, time
from audittui.index.workers import pool
signal.signal(signal.SIGTERM, lambda *_: None)  # as the app's: asks a loop to exit
workers = pool(2)
list(workers.map(abs, range(8)))  # the workers started, now idle on the pool's pipe
print(*sorted(p.pid for p in workers._processes.values()), flush=True)
time.sleep(600)
"""


def test_the_index_workers_of_a_killed_process_go_with_it():
    """Idle workers of a process SIGKILLed (the app, a command) die with it: they held the
    pool's pipes, never saw them close and slept forever, and SIGTERM ran the app's handler
    they had inherited (found: a day's bench runs had left a dozen behind)."""
    proc = subprocess.Popen([sys.executable, "-c", _IDLE_POOL], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    workers = [int(w) for w in proc.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    os.kill(workers[0], signal.SIGTERM)  # the default action, not the parent's handler
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"{len(left)} worker(s) outlived their parent"
