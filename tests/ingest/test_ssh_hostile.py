"""A hostile host, or hostile names on an honest one: nothing read over SSH is ever run, every
name is read exactly (or reported), and whatever a host sends is read in bounded memory and
linear time, or ends in one line.

The names are made in real folders read through a real sshd (``tests/sshd.py``), as the login
and through ``sudo``; the hostile hosts are ``tests/fake_ssh.py`` run as ``--ssh-command``."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import v1_event

from audittui.ingest.remote import open_remote
from audittui.ingest.remote.protocol import MAX_FILES, MAX_LINE

FAKE = Path(__file__).resolve().parents[1] / "fake_ssh.py"
# the file name of the issue: ls prints a second line whose fields its creator chose, and the
# old script ran its "inode" as shell code (here: writing PROOF next to the folder)
HOSTILE = 'a\nx-};id>"$D"PROOF;# -rw 1 0 0 5 J 1 0 audit.log.gz'


def events(prefix: str, n: int) -> bytes:
    return b"".join(orjson.dumps(v1_event(auditID=f"{prefix}-{k}")) + b"\n" for k in range(n))


def cli(ssh_command: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audittui", argv[0], "--ssh-command", ssh_command, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stats(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    out = orjson.loads(proc.stdout)
    out.pop("files", None)
    return out


def local_stats(*paths: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "audittui", "stats", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return stats(proc)


def logs_folder(root: Path, name: str) -> Path:
    """A folder of good logs (a live file, a plain and a gzipped backup), world-readable."""
    import gzip

    folder = root / name
    folder.mkdir()
    (folder / "audit.log").write_bytes(events("live", 30))
    (folder / "audit-2024-05-01T10-00-00.000.log").write_bytes(events("plain", 20))
    (folder / "audit-2024-05-01T09-00-00.000.log.gz").write_bytes(gzip.compress(events("gz", 10)))
    return folder


def readable(root: Path) -> None:
    """Let the unprivileged login reach and read what is under ``root``."""
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    for parent in root.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)


# -- names: never run, read exactly or reported --------------------------------------------


@pytest.mark.parametrize("sudo", [False, True], ids=["login", "sudo"])
def test_a_file_name_with_a_newline_runs_nothing_and_is_reported(sshd, tmp_path, sudo):
    """The issue's name, in a folder read over SSH: its payload never runs (as the login, or
    as root through --sudo), the other logs read as the local ones, and the user is told
    which file was not read."""
    good = logs_folder(tmp_path, "good")
    folder = logs_folder(tmp_path, "hostile")
    (folder / HOSTILE).write_bytes(b"junk\n")
    readable(tmp_path)
    proofs = [folder.parent / "hostilePROOF", folder / "PROOF"]
    host, extra = ("cp1", ())
    if sudo:
        assert sshd.add_user()
        host, extra = "cpuser", ("--sudo",)
    rule = sshd.sudo_rule("NOPASSWD: /bin/sh") if sudo else _nothing()
    with rule:
        proc = cli(sshd.ssh_command, "stats", "--format", "json", *extra, f"{host}:{folder}")
        for proof in proofs:
            assert not proof.exists(), f"the name's payload ran: {proof.read_text()}"
        assert stats(proc) == local_stats(good)
        assert stats(proc)["events"] == 60
        _, remote = open_remote(
            [f"{host}:{folder}"], ssh_command=sshd.ssh_command, sudo=sudo, follow=True
        )
        assert remote is not None
        try:
            (path,) = remote.paths
            assert sorted(os.listdir(path.folder)) == sorted(os.listdir(good))
            shown = HOSTILE.replace("\n", "\\n")
            said = f"{host}: {folder}/{shown}: a file whose name holds a newline was not read"
            assert remote.problems() == [said]
            assert f"audittui: {said}" in proc.stderr.splitlines()  # the command says so too
            assert path.state == "connected, 1 file(s) not read (their names)"
            assert path.wait_round() and remote.problems() == [said]  # said once
        finally:
            remote.close()
    assert not any(proof.exists() for proof in proofs)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_names_with_spaces_tabs_backslashes_and_odd_bytes_are_read_exactly(sshd, tmp_path):
    """A name beginning with spaces was read as the name without them (its events lost);
    every name the shell can hold is read as it is, as a local read does."""
    folder = tmp_path / "odd"
    folder.mkdir()
    names = [
        b"audit.log",
        b" spaced.log",
        b"  two-spaces.log",
        b"tab\there.log",
        b"back\\slash.log",
        b"\xff\xfenot-utf8.log",
        b"-looks-like-an-option.log",
        b"*.log",
        b"$(id>PWNED).log",
        b"quote'and\"double.log",
        b"x" * 251 + b".log",  # 255 bytes: the longest name
    ]
    for k, name in enumerate(names):
        with open(os.path.join(os.fsencode(folder), name), "wb") as fh:
            fh.write(events(f"odd{k}", 10 + k))
    readable(tmp_path)
    # (stats --format json cannot print a file name that is not UTF-8: the events are compared)
    proc = cli(sshd.ssh_command, "query", "--format", "jsonl", f"cp1:{folder}")
    want = jsonl(folder)
    assert proc.returncode == 0, proc.stderr
    assert len(want.splitlines()) == sum(10 + k for k in range(len(names)))
    assert sorted(proc.stdout.splitlines()) == sorted(want.splitlines())
    _, remote = open_remote([f"cp1:{folder}"], ssh_command=sshd.ssh_command)
    assert remote is not None
    try:
        mirrored = sorted(os.listdir(os.fsencode(remote.paths[0].folder)))
        assert mirrored == sorted(names)
        assert remote.problems() == []
    finally:
        remote.close()
    assert not (folder / "PWNED").exists() and not Path("PWNED").exists()


ODD = [b" spaced.log", b"tab\there.log", b"\xff\xfenot-utf8.log", b"back\\slash.log"]


@pytest.mark.parametrize("shell", ["bash", "busybox"])
def test_the_script_reads_alike_under_bash_and_busybox(tmp_path, shell):
    """sshd runs the login's sh (dash here). Under bash, and busybox's sh, ls and awk (whose
    ls prints a tab or a byte not ASCII as ?), the hostile name runs nothing and every other
    name is read exactly (the shell run locally, as ``ssh`` would run it)."""
    good = logs_folder(tmp_path, "good")
    folder = logs_folder(tmp_path, "hostile")
    (folder / HOSTILE).write_bytes(b"junk\n")
    for k, name in enumerate(ODD):
        for where in (good, folder):
            with open(os.path.join(os.fsencode(where), name), "wb") as fh:
                fh.write(events(f"odd{k}", 5))
    if shell == "busybox":
        applets = tmp_path / "busybox"
        applets.mkdir()
        for tool in ("sh", "ls", "awk", "dd", "cksum", "tail", "cat", "sleep", "grep"):
            (applets / tool).symlink_to(shutil.which("busybox"))
        command = f"env PATH={applets} {applets}/sh"
    else:
        command = "bash --posix"
    proc = cli(fake("shell", command), "query", "--format", "jsonl", f"cp1:{folder}")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == sorted(jsonl(good).splitlines())
    assert len(proc.stdout.splitlines()) == 60 + 5 * len(ODD)
    assert not (tmp_path / "hostilePROOF").exists()


def test_a_file_ls_does_not_list_as_asked_is_reported_not_read(tmp_path):
    """An ls whose lines do not hold an inode and a size where they go (here one that prints
    sizes as 2.9K): nothing is taken from its lines, and each file is reported."""
    folder = logs_folder(tmp_path, "odd-ls")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ls").write_text(f'#!/bin/sh\nexec {shutil.which("ls")} --block-size=K "$@"\n')
    (tools / "ls").chmod(0o755)
    command = f"env PATH={tools}:{os.environ['PATH']} sh"
    _, remote = open_remote([f"cp1:{folder}"], ssh_command=fake("shell", command))
    assert remote is not None
    try:
        assert os.listdir(remote.paths[0].folder) == []
        said = ": a file that ls on the host did not list exactly was not read"
        assert sorted(remote.problems()) == sorted(
            f"cp1: {folder}/{name}{said}" for name in os.listdir(folder)
        )
    finally:
        remote.close()


def jsonl(folder: Path) -> str:
    """The events of the local read of ``folder``."""
    proc = subprocess.run(
        [sys.executable, "-m", "audittui", "query", "--format", "jsonl", str(folder)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


# -- a hostile host: bounded, linear, one line ---------------------------------------------


def fake(mode: str, arg: str) -> str:
    return f"{shlex.quote(sys.executable)} {FAKE} {mode} {shlex.quote(arg)} -o ControlMaster=no"


# Run as the child: its own peak (VmHWM) written at exit. wait4's ru_maxrss would not do: Linux
# carries the parent's peak across fork and exec, and pytest's grows to a GB in a full run.
_PEAK = """
import atexit, sys
peak_file = sys.argv.pop(1)

def peak():
    status = open("/proc/self/status").read()
    open(peak_file, "w").write(status.split("VmHWM:")[1].split()[0])

atexit.register(peak)
"""
_COMMAND = "from audittui.command import main\nsys.exit(main(sys.argv[1:]))\n"


def measured(
    code: str, args: list[str], folder: Path, timeout: float, env: dict | None = None
) -> tuple:
    """Run the Python ``code`` with ``args`` in a child: (status, stdout, stderr, its peak RSS
    in MB), its output kept in ``folder``; killed after ``timeout`` s (the status is then -9)."""
    peak = folder / "peak"
    argv = [sys.executable, "-c", _PEAK + code, str(peak), *args]
    with open(folder / "out", "w+b") as out, open(folder / "err", "w+b") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.seek(0)
        err.seek(0)
        kb = int(peak.read_text()) if peak.exists() else 0
        return proc.returncode, out.read().decode(), err.read().decode(), kb / 1024


def test_an_endless_header_line_is_one_line_and_read_no_further(tmp_path):
    """A host sends a frame header of a gigabyte without a newline: the reader gives up past
    MAX_LINE bytes with one line, having read a few MB of it, and hangs up on the host (it was
    read to its end before, the buffer rescanned on every read: quadratic)."""
    wrote = tmp_path / "wrote"
    env = {**os.environ, "FAKE_SSH_WROTE": str(wrote)}
    argv = ["stats", "--ssh-command", fake("line", "1024"), "cp1:/var/log/audit"]
    status, _, err, peak = measured(_COMMAND, argv, tmp_path, 60, env)
    assert status == 2, err
    assert err == (
        f"audittui: cp1: not audittui's protocol: a header line longer than {MAX_LINE:,} bytes\n"
    )
    assert int(wrote.read_text()) < 64 << 20  # the host was hung up on
    assert peak < 200, peak


DRIVER = """
import os, resource, sys
from audittui.ingest.remote import open_remote
paths, remote = open_remote([sys.argv[1]], ssh_command=sys.argv[2])
folder = paths[0]
print({n: os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)})
remote.close()
"""


def test_an_endless_line_of_file_data_streams_to_disk_in_bounded_memory(tmp_path):
    """256 MiB of a log without a newline: written to the local copy as it comes (it was held
    in memory and copied whole on every read: 92 s and 341 MB for 100 MB)."""
    mb = 256
    status, out, err, peak = measured(
        DRIVER,
        ["cp1:/var/log/audit/", fake("data", str(mb))],
        tmp_path,
        120,
    )
    assert status == 0, err
    assert out.strip() == str({"audit.log": mb << 20})
    assert peak < 120, peak  # a few MB over the interpreter's own


def test_a_listing_of_more_files_than_the_bound_is_one_line():
    proc = cli(fake("listing", str(MAX_FILES + 1)), "stats", "cp1:/var/log/audit/", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"audittui: cp1: not audittui's protocol: a listing of more than {MAX_FILES:,} files\n"
    )


BAD_FRAMES = {
    "a field missing": ("L\n1 2\nM\nR\n", "a frame cut short: '1 2'"),
    "an inode not a number": ("L\nx 2 a.log\nM\nR\n", "not a number: 'x'"),
    "a number of 21 digits": ("L\n" + "9" * 21 + " 2 a.log\nM\nR\n", "not a number"),
    "a Unicode digit": ("L\n\u0661 2 a.log\nM\nR\n", "not a number"),
    "a name climbing out": ("L\n1 2 ../a.log\nM\nR\n", "not a file name of the folder"),
    "a path for a name": ("L\n1 2 /etc/a.log\nM\nR\n", "not a file name of the folder"),
    "a hidden name": ("L\n1 2 .a.log\nM\nR\n", "not a file name of the folder"),
    "a name of 256 bytes": ("L\n1 2 " + "a" * 256 + "\nM\nR\n", "not a file name of the folder"),
    "an inode listed twice": ("L\n1 2 a.log\n1 3 b.log\nM\nR\n", "inode 1 listed twice"),
    "data past what is held": (
        "L\n1 5 a.log\nM\nD 1 9 a.log\nhello\n{T} 0\nR\n",
        "a.log: sent from 9, 0 bytes held",
    ),
    "an unknown frame": ("Z what\n", "an unknown frame: 'Z what'"),
    "an X frame's reason": ("L\n1 5 a.log\nM\nX 1 maybe a.log\n", "an X frame says"),
    "a U frame without a name": ("U newline \n", "a U frame says"),
    "a listing cut short": ("L\n1 5 a.log\n", "the channel ended inside a listing"),
}


@pytest.mark.parametrize("case", BAD_FRAMES)
def test_frames_the_script_never_sends_are_one_line_and_nothing_leaves_the_mirror(tmp_path, case):
    """Each malformed frame ends the read in one line that says what was wrong; nothing is
    written outside the private mirror folder (which is removed)."""
    frames, said = BAD_FRAMES[case]
    path = tmp_path / "frames"
    path.write_text("K folder\n" + frames)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.run(
        [sys.executable, "-m", "audittui", "stats", "--ssh-command", fake("frames", str(path))]
        + ["cp1:/var/log/audit/"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("audittui: cp1: ") and said in lines[0], lines[0]
    assert os.listdir(scratch) == []
    assert sorted(os.listdir(tmp_path)) == ["frames", "tmp"]


def test_a_login_banner_before_the_script_is_passed_over(tmp_path):
    """What the login's shell prints before the script runs (an rc file's echo) is not a
    frame: it is skipped, as far as the script's first frame."""
    event = events("banner", 1).decode()
    path = tmp_path / "frames"
    path.write_text(
        "Welcome to cp1\nL 1 2 3 not a frame\nK file\n"
        f"L\n1 {len(event)} audit.log\nM\nD 1 0 audit.log\n{event}\n{{T}} 0\nR\n"
    )
    proc = cli(fake("frames", str(path)), "query", "--format", "count", "cp1:/x/audit.log")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


# -- gzip over SSH: the same bounds as a local file ----------------------------------------


def test_a_gzip_bomb_on_the_host_stops_at_the_cap_with_its_events_kept(sshd, tmp_path):
    """A backup that inflates to 4 GiB, fetched over SSH: read through the bounded gunzip as a
    local file is (one line naming it and the cap; the events before the cap kept)."""
    from ingest.test_bounds import HEAD_EVENTS, bomb

    folder = tmp_path / "bombed"
    folder.mkdir()
    (folder / "audit.log").write_bytes(events("live", 30))
    bomb(folder / "audit-2024-05-01T09-00-00.000.log.gz")
    readable(tmp_path)
    proc = cli(sshd.ssh_command, "stats", "--format", "json", f"cp1:{folder}/", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["events"] == 30 + HEAD_EVENTS
    [said] = [x for x in proc.stderr.splitlines() if "AUDITTUI_GUNZIP_RATIO" in x]
    assert "audit-2024-05-01T09-00-00.000.log.gz: stopped at " in said


def test_a_late_gzip_that_is_a_bomb_completes_its_copy_only_up_to_the_cap(tmp_path):
    """The mirror's own inflation (a .gz listed after its live file was rotated, whose end it
    completes) goes through the same bounds: a bomb stops at the cap, said in a note."""
    from audittui.ingest.remote.mirror import _after_prefix
    from ingest.test_bounds import bomb

    gz = tmp_path / "audit-2024-05-01T09-00-00.000.log.gz"
    bomb(gz)
    import gzip

    with gzip.open(gz) as fh:
        first = fh.read(1000)
    held = tmp_path / "copy"
    held.write_bytes(first)
    out = os.open(tmp_path / "rest", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        rest = _after_prefix(str(gz), str(held), len(first), out)
    finally:
        os.close(out)
    assert rest is not None and rest.bound is not None and "AUDITTUI_GUNZIP_RATIO" in rest.bound
    assert rest.size == (tmp_path / "rest").stat().st_size < 64 << 20
    held.write_bytes(b"x" * 1000)  # another file under that name: nothing appended
    out = os.open(tmp_path / "rest2", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert _after_prefix(str(gz), str(held), 1000, out) is None
    finally:
        os.close(out)
