"""``host:path`` over SSH, against a real OpenSSH server (``tests/sshd.py``): counts equal the
local file's, a log rotated every megabyte followed with nothing lost or doubled (also across a
killed connection), two hosts merged, one-line failures, and the app on a remote log."""

from __future__ import annotations

import asyncio
import gzip
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from conftest import REALDATA, SAMPLES, shows_newest, status, until, v1_event
from sshd import Sshd

from audittui.ingest.remote import Remote, open_remote
from audittui.ingest.sources import backup_name

ROTATE_AT = 1 << 20  # bytes: the live log rotates at 1 MB, as in the issue
RATE = 1000  # events per second
PAD = "x" * 700  # about 1 KB an event: a rotation about every second


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """A demo log (one file), a demo folder (lumberjack backups, plain and gzipped), and two
    halves of one log for two hosts; world-readable, as the unprivileged login needs."""
    root = tmp_path_factory.mktemp("ssh-logs")
    py = [sys.executable, "-m", "audittui.demo"]
    subprocess.run([*py, "big", "--events", "5000", str(root / "big.log")], check=True)
    subprocess.run([*py, "write", "--events", "3000", str(root / "folder")], check=True)
    lines = (root / "big.log").read_bytes().splitlines(keepends=True)
    (root / "cp1").mkdir()
    (root / "cp2").mkdir()
    (root / "cp1" / "audit.log").write_bytes(b"".join(lines[: len(lines) // 3]))
    (root / "cp2" / "audit.log").write_bytes(b"".join(lines[len(lines) // 3 :]))
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    for parent in root.parents:  # the unprivileged login must reach the logs
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    return root


def cli(sshd: Sshd, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audittui", *argv[:1], "--ssh-command", sshd.ssh_command, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def local(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audittui", *argv], capture_output=True, text=True, timeout=60
    )


def stats(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    out = orjson.loads(proc.stdout)
    out.pop("files", None)
    return out


def count(proc: subprocess.CompletedProcess[str]) -> int:
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip().replace(",", ""))


def await_condition(
    condition: Callable[[], bool], timeout: float, what: str, seen: Callable[[], object] = str
) -> None:
    """Poll ``condition``; after ``timeout`` s fail with ``what`` and what ``seen`` says."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g} s: {what} ({seen()})")
        time.sleep(0.05)


# -- a: counts equal the local file's ------------------------------------------------------


def test_stats_and_query_of_a_remote_file_equal_the_local_files(sshd, logs):
    big = str(logs / "big.log")
    remote = stats(cli(sshd, "stats", "--format", "json", f"cp1:{big}"))
    assert remote == stats(local("stats", "--format", "json", big))
    assert remote["events"] == 5000
    for q in ("verb:get", "-code:200 user:system:*"):
        want = count(local("query", f"--query={q}", "--format", "count", big))
        assert count(cli(sshd, "query", f"--query={q}", "--format", "count", f"cp1:{big}")) == want


def test_a_remote_folder_with_plain_and_gzipped_backups_counts_as_the_local_one(sshd, logs):
    folder = logs / "folder"
    names = sorted(os.listdir(folder))
    assert any(n.endswith(".gz") for n in names), names
    assert any(n.endswith(".log") and "-20" in n for n in names), names  # a plain backup
    remote = stats(cli(sshd, "stats", "--format", "json", f"cp1:{folder}/"))
    assert remote == stats(local("stats", "--format", "json", str(folder)))
    shown = cli(sshd, "stats", f"cp1:{folder}")
    assert f"cp1:{folder}/" in shown.stdout
    want = count(local("query", "-q", "verb:list", "--format", "count", str(folder)))
    got = count(cli(sshd, "query", "-q", "verb:list", "--format", "count", f"cp1:{folder}"))
    assert got == want


def test_a_remote_file_alone_is_fetched_without_its_backups(sshd, logs):
    """``stats host:audit.log`` reads that file, as locally: its backups are not fetched."""
    live = logs / "folder" / "audit.log"
    _, remote = open_remote([f"cp1:{live}"], ssh_command=sshd.ssh_command, backups=False)
    assert remote is not None
    try:
        (path,) = remote.paths
        await_condition(lambda: path.state == "done", 15, "read once, the script ended")
        assert sorted(os.listdir(path.folder)) == ["audit.log"]
        assert live.stat().st_size <= path.received < live.stat().st_size + 4096
        assert path.state == "done"
    finally:
        remote.close()
    want = count(local("query", "--format", "count", str(live)))
    assert count(cli(sshd, "query", "--format", "count", f"cp1:{live}")) == want
    url = f"ssh://cp1:{sshd.port}{live}"  # the URL form, with the port
    assert count(cli(sshd, "query", "--format", "count", url)) == want


def test_relative_and_home_paths_are_the_logins_home_as_scp_takes_them(sshd, logs):
    """``cp1:rel/path`` and ``cp1:~/rel/path`` start from the login's home (reached here by
    climbing out of it: nothing is written there)."""
    big = logs / "big.log"
    rel = os.path.relpath(big, pwd.getpwuid(os.getuid()).pw_dir)
    want = count(local("query", "--format", "count", str(big)))
    for spec in (f"cp1:{rel}", f"cp1:~/{rel}"):
        assert count(cli(sshd, "query", "--format", "count", spec)) == want, spec


def test_a_real_sample_over_ssh_counts_as_the_local_file(sshd):
    sample = next(p for p in sorted(SAMPLES.rglob("*")) if p.is_file() and p.suffix == ".log")
    want = stats(local("stats", "--format", "json", str(sample)))
    assert stats(cli(sshd, "stats", "--format", "json", f"cp1:{sample}")) == want


def test_every_real_data_folder_over_ssh_counts_as_the_local_folders(sshd):
    """The shared real captures, each folder read over SSH as a folder: the same events,
    malformed lines and reasons as the local read (a last line without a newline included:
    read once, it is the file's last line, not one still being written)."""
    folders = sorted(
        {p.parent for root in (SAMPLES, REALDATA) for p in root.rglob("*") if p.is_file()}
    )
    assert len(folders) > 10
    want = stats(local("stats", "--format", "json", *map(str, folders)))
    got = stats(cli(sshd, "stats", "--format", "json", *(f"cp1:{f}/" for f in folders)))
    assert got == want
    assert want["malformed"] > 0


# -- b, c: following a log rotated every megabyte ------------------------------------------


class Rotating(threading.Thread):
    """Appends ``RATE`` events a second to ``folder/audit.log`` for ``seconds``, rotating it
    as lumberjack does at 1 MB: renamed to ``audit-<time>.log``, a new live file opened, the
    backup gzipped and the plain one removed."""

    def __init__(self, folder: Path, seconds: float, rotate_at: int = ROTATE_AT) -> None:
        super().__init__(daemon=True)
        self.folder, self.seconds, self.rotate_at = folder, seconds, rotate_at
        self.ids: list[str] = []
        self.rotations = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # the test says so, rather than hanging
            self.error = exc

    def _write(self) -> None:
        live = self.folder / "audit.log"
        out = open(live, "ab")  # noqa: SIM115 (rotated by hand)
        t0 = time.monotonic()
        total = int(self.seconds * RATE)
        k = 0
        while k < total:
            due = min(total, int((time.monotonic() - t0) * RATE) + 1)
            chunk = []
            for n in range(k, due):
                aid = f"ev-{n:07d}"
                self.ids.append(aid)
                chunk.append(orjson.dumps(v1_event(auditID=aid, requestObject={"pad": PAD})))
            k = due
            if chunk:
                out.write(b"\n".join(chunk) + b"\n")
                out.flush()
            if out.tell() >= self.rotate_at:
                out.close()
                backup = self.folder / backup_name("audit.log", time.time_ns() // 1000)
                os.rename(live, backup)
                out = open(live, "ab")  # noqa: SIM115
                with open(backup, "rb") as src, gzip.open(f"{backup}.gz", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.unlink(backup)
                self.rotations += 1
            time.sleep(0.01)
        out.close()


class Lines(threading.Thread):
    """The auditIDs of the JSON lines a process prints, as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.ids: list[str] = []

    def run(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.ids.append(orjson.loads(raw)["auditID"])


@pytest.mark.parametrize("form", ["folder", "file"])
def test_follow_over_ssh_a_log_rotated_every_megabyte_loses_and_doubles_nothing(
    sshd, tmp_path, form
):
    folder = tmp_path / "rot"
    folder.mkdir()
    mirrors = set(Path(tempfile.gettempdir()).glob("audittui-ssh-*"))
    first = [orjson.dumps(v1_event(auditID=f"pre-{k}")) + b"\n" for k in range(5)]
    (folder / "audit.log").write_bytes(b"".join(first))
    proc = subprocess.Popen(
        [sys.executable, "-m", "audittui", "query", "--follow", "--format", "jsonl"]
        + ["--ssh-command", sshd.ssh_command]
        + ([f"cp1:{folder}/"] if form == "folder" else [f"cp1:{folder}/audit.log"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines = Lines(proc)
    lines.start()
    try:
        # what is there at the start is printed first: then the follower is under way
        await_condition(lambda: len(lines.ids) >= 5, 20, "the first 5 events printed")
        seconds = 10.0 if form == "folder" else 5.0  # the 10 s once: time is shared
        writer = Rotating(folder, seconds)
        writer.start()
        writer.join(30)
        assert writer.error is None, writer.error
        assert writer.rotations >= seconds * 0.8, writer.rotations
        await_condition(
            lambda: len(lines.ids) >= 5 + len(writer.ids) or proc.poll() is not None,
            60,
            f"{len(writer.ids)} events printed",
            lambda: f"{len(lines.ids) - 5} printed; " + _mirror_state(mirrors, lines.ids),
        )
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        dup = [i for i, n in Counter(lines.ids).items() if n > 1]
        assert not dup, dup[:5]
        assert sorted(lines.ids) == sorted([f"pre-{k}" for k in range(5)] + writer.ids)
    finally:
        proc.terminate()
        _, err = proc.communicate(10)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode in (0, 128 + 15)  # SIGTERM: it stops through its cleanup
    left = set(Path(tempfile.gettempdir()).glob("audittui-ssh-*")) - mirrors
    assert not left, left  # the mirrored copies of the logs are removed


def _mirror_state(before: set[Path], printed: list[str]) -> str:
    """What a running command's mirror folders hold (for the message of a wait that failed)."""
    seen = set(printed)
    out = []
    for root in set(Path(tempfile.gettempdir()).glob("audittui-ssh-*")) - before:
        for folder in sorted(root.glob("0-*")):
            for p in sorted(folder.iterdir()):
                data = p.read_bytes()
                if p.name.endswith(".gz"):
                    data = gzip.decompress(data)
                ids = [orjson.loads(x)["auditID"] for x in data.splitlines() if x.strip()]
                unseen = [i for i in ids if i not in seen]
                out.append(f"{p.name}: {len(ids)} ({len(unseen)} unprinted {unseen[:1]})")
    return "; ".join(out)


def mirrored_ids(remote: Remote) -> list[str]:
    """Every event held in the local mirror folders (gzipped backups decompressed)."""
    ids = []
    for p in remote.paths:
        for name in sorted(os.listdir(p.folder)):
            path = os.path.join(p.folder, name)
            data = Path(path).read_bytes()
            if name.endswith(".gz"):
                data = gzip.decompress(data)
            ids += [orjson.loads(x)["auditID"] for x in data.splitlines() if x.strip()]
    return ids


def test_a_connection_killed_mid_run_resumes_with_nothing_lost_or_doubled(sshd, tmp_path):
    folder = tmp_path / "rot"
    folder.mkdir()
    (folder / "audit.log").write_bytes(b"")
    _, remote = open_remote([f"cp1:{folder}/"], ssh_command=sshd.ssh_command, follow=True)
    assert remote is not None
    path = remote.paths[0]
    try:
        # rotated twice as often, the connection killed every second: the resume, the
        # rotations replayed locally and the .gz fetched for a file deleted meanwhile
        writer = Rotating(folder, 6.0, ROTATE_AT // 2)
        writer.start()
        killed = 0
        for at in (1, 2, 3, 4, 5):
            await_condition(lambda at=at: len(writer.ids) >= at * RATE, 20, "events written")
            await_condition(lambda: path.state == "connected", 20, "connected again")
            before = path.reconnects
            if sshd.kill_connections():
                killed += 1
                # "connected" stays until the loss is noticed: wait for that before the next
                await_condition(lambda b=before: path.reconnects > b, 20, "the loss noticed")
        writer.join(30)
        assert writer.error is None, writer.error
        assert killed >= 5
        await_condition(
            lambda: len(mirrored_ids(remote)) >= len(writer.ids),
            60,
            "every event mirrored",
            lambda: (
                f"{len(mirrored_ids(remote))} of {len(writer.ids)}, {path.state}, {path.problem}"
            ),
        )
        assert path.wait_round() and path.wait_round()  # and nothing more comes
        ids = mirrored_ids(remote)
        dup = [i for i, n in Counter(ids).items() if n > 1]
        assert not dup, dup[:5]
        assert sorted(ids) == sorted(writer.ids)
        assert path.reconnects >= 5
        assert path.link.connections >= 6
        assert path.state == "connected"
    finally:
        remote.close()


def test_a_log_truncated_in_place_keeps_what_was_read_and_reads_the_new_lines(sshd, tmp_path):
    """copytruncate: the host's file emptied under the same inode, then written again."""
    live = tmp_path / "audit.log"
    live.write_bytes(
        b"".join(orjson.dumps(v1_event(auditID=f"old-{k}")) + b"\n" for k in range(100))
    )
    _, remote = open_remote([f"cp1:{live}"], ssh_command=sshd.ssh_command, follow=True)
    assert remote is not None
    try:
        with open(live, "r+b") as out:
            out.truncate(0)
        new = [f"new-{k}" for k in range(50)]
        with open(live, "ab") as out:
            out.write(b"".join(orjson.dumps(v1_event(auditID=a)) + b"\n" for a in new))
        want = sorted([f"old-{k}" for k in range(100)] + new)
        await_condition(lambda: sorted(mirrored_ids(remote)) == want, 15, "old and new lines")
        with open(os.path.join(remote.paths[0].folder, "audit.log"), "rb") as fh:
            assert [orjson.loads(x)["auditID"] for x in fh] == new
    finally:
        remote.close()


# -- d: two hosts merged -------------------------------------------------------------------


def test_two_hosts_are_merged_and_server_selects_one(sshd, logs):
    a, b = str(logs / "cp1" / "audit.log"), str(logs / "cp2" / "audit.log")
    both = stats(cli(sshd, "stats", "--format", "json", f"cp1:{a}", f"cp2:{b}"))
    assert both["events"] == 5000
    n1 = stats(local("stats", "--format", "json", a))["events"]
    for host, want in (("cp1", n1), ("cp2", 5000 - n1)):
        proc = cli(
            sshd, "query", "-q", f"server:{host}", "--format", "count", f"cp1:{a}", f"cp2:{b}"
        )
        assert count(proc) == want, host
    listed = cli(sshd, "stats", f"cp1:{a}", f"cp2:{b}").stdout
    assert f"cp1:{a}" in listed and f"cp2:{b}" in listed


# -- e: failures, one line each ------------------------------------------------------------


def one_line_failure(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_permission_denied_and_a_missing_path_are_one_line_each(sshd, logs):
    assert sshd.add_user()
    secret = logs / "root-only.log"
    shutil.copy(logs / "cp1" / "audit.log", secret)
    secret.chmod(0o600)
    said = one_line_failure(cli(sshd, "stats", f"cpuser:{secret}"))
    assert "permission denied" in said and f"cpuser:{secret}" in said, said
    said = one_line_failure(cli(sshd, "stats", f"cp1:{logs}/nothing-here.log"))
    assert "no such file" in said and "nothing-here.log" in said, said
    said = one_line_failure(cli(sshd, "query", "--format", "count", f"cp1:{logs}/nowhere/"))
    assert "no such file" in said, said
    said = one_line_failure(cli(sshd, "stats", "--recursive", f"cp1:{logs}/"))
    assert "--recursive" in said, said
    said = one_line_failure(local("--recursive", "--ssh-command", sshd.ssh_command, f"cp1:{logs}/"))
    assert "--recursive" in said, said  # the app says the same, before connecting


def test_sudo_reads_a_root_only_log_and_is_one_line_when_it_would_ask(sshd, logs):
    """--sudo runs the script as root through `sudo -n`: a root-only log reads as the local
    one where sudo lets the login run sh without a password; where it would ask (no rule,
    or a password rule), one line says so, and no prompt waits."""
    assert sshd.add_user()
    secret = logs / "root-only-sudo.log"
    shutil.copy(logs / "cp1" / "audit.log", secret)
    secret.chmod(0o600)
    plain = one_line_failure(cli(sshd, "stats", f"cpuser:{secret}"))
    assert "permission denied" in plain and "--sudo" in plain, plain
    said = one_line_failure(cli(sshd, "stats", "--sudo", f"cpuser:{secret}"))
    assert "sudo asks for a password" in said, said
    with sshd.sudo_rule("ALL"):  # allowed, but with the login's password
        said = one_line_failure(cli(sshd, "stats", "--sudo", f"cpuser:{secret}", timeout=30))
        assert "sudo asks for a password" in said, said
    with sshd.sudo_rule("NOPASSWD: /bin/sh"):
        proc = cli(sshd, "stats", "--format", "json", "--sudo", f"cpuser:{secret}")
        assert stats(proc) == stats(local("stats", "--format", "json", str(secret)))
        proc = cli(sshd, "query", "--format", "count", "--sudo", f"cpuser:{secret}")
        assert count(proc) == count(local("query", "--format", "count", str(secret)))


# -- f: the app ----------------------------------------------------------------------------


def test_the_app_on_a_remote_log_shows_its_events_and_the_hosts_state(sshd, tmp_path):
    from audittui.index.session import Session
    from audittui.tui.app import AuditApp
    from audittui.tui.history import History

    folder = tmp_path / "app"
    folder.mkdir()
    log = folder / "audit.log"
    log.write_bytes(b"".join(orjson.dumps(v1_event(auditID=f"a-{k}")) + b"\n" for k in range(40)))
    paths, remote = open_remote([f"cp1:{log}"], ssh_command=sshd.ssh_command, follow=True)
    assert remote is not None
    session = Session(paths, follow=True, backups=True)
    session.remote = remote
    session.open()
    assert session.follower is not None
    session.follower.heartbeat_ms = 50
    app = AuditApp(session, history=History(tmp_path / "state" / "history"))

    async def main() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: len(app.view) == 40, what="the 40 remote events listed")
            await until(pilot, lambda: shows_newest(app), what="the newest event shown")
            await until(pilot, lambda: "ssh cp1 connected" in status(app), what="cp1 connected")
            with open(log, "ab") as out:
                out.write(orjson.dumps(v1_event(auditID="a-new", verb="delete")) + b"\n")
            await until(pilot, lambda: len(app.view) == 41, timeout=15, what="the new event")
            sshd.kill_connections()
            await until(
                pilot,
                lambda: "retrying" in status(app) or "connecting" in status(app),
                timeout=15,
                what="cp1 retrying",
            )
            await until(pilot, lambda: "ssh cp1 connected" in status(app), timeout=15, what="back")

    try:
        asyncio.run(main())
    finally:
        session.close()
        remote.close()
