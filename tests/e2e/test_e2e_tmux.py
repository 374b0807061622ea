"""The real app in a real terminal: tmux runs ``audittui FILE`` (or a pipe into ``audittui``),
keys are sent, the screen is read back. tmux is installed by ``.ci/run`` where missing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

from audittui.demo import write_big
from audittui.index.evaluate import select
from audittui.index.loader import load
from audittui.ingest.formats import format_time
from audittui.tui.hangup import GRACE


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def wait_for(session: str, pattern: str, timeout: float = 30.0) -> str:
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = tmux("capture-pane", "-p", "-t", session)
        if rx.search(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} never appeared; the screen:\n{text}")
        time.sleep(0.05)


def start(tmp_path, command: str, size: tuple[int, int], env: str = "") -> str:
    """A new tmux session of ``size`` running ``command`` (state kept under ``tmp_path``)."""
    session = f"audittui-e2e-{uuid.uuid4().hex[:8]}"
    full = f"env {env} XDG_STATE_HOME={tmp_path / 'state'} TERM=xterm-256color {command}"
    tmux("new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), full)
    return session


def quit_and_wait(session: str) -> None:
    tmux("send-keys", "-t", session, "q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode:
            return  # the app quit and the session closed
        time.sleep(0.05)
    raise AssertionError("q did not quit the app")


def test_type_a_filter_and_read_the_count(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    write_big(log, 5000, seed=4)
    expected = len(select(load(str(log)), "user:alice verb:get"))
    assert 0 < expected < 5000
    session = start(tmp_path, f"{sys.executable} -m audittui {log}", (100, 30))
    try:
        wait_for(session, r"5,000 / 5,000 events")
        tmux("send-keys", "-t", session, "/")
        # The filter bar has the focus once the footer offers only the filter's own keys (a
        # footer caught mid-repaint lacks the list's keys too: look for what it shows instead).
        wait_for(session, r"(?m)^ / Filter  \^s Export\s")
        tmux("send-keys", "-t", session, "user:alice verb:get", "Enter")
        screen = wait_for(session, rf"{expected:,} / 5,000 events")
        assert "filter: user:alice verb:get" in screen
        assert "alice" in screen and "get" in screen
        quit_and_wait(session)
        history = (tmp_path / "state" / "audittui" / "history").read_text()
        assert "user:alice verb:get" in history
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_a_pipe_into_the_app_is_followed_and_keys_come_from_the_terminal(tmp_path):
    log = tmp_path / "audit.log"
    write_big(log, 2000, seed=6)
    newest = format_time(int(load(str(log)).column("time").max()))[11:23]  # HH:MM:SS.mmm
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    pipe = f"sh -c 'cat {log} | {sys.executable} -m audittui'"
    session = start(tmp_path, pipe, (120, 30), env=f"TMPDIR={spool_root}")
    try:
        # The newest event under the titles, and the status saying the input has ended.
        screen = wait_for(session, r"2,000 / 2,000 events  ● following  input ended")
        screen = wait_for(session, rf"TIME +USER[\s\S]*{newest}[\s\S]*2,000 / 2,000 events")
        assert screen.index(newest) > screen.index("TIME")
        assert [p.name for p in spool_root.iterdir()][0].startswith("audittui-stdin-")
        tmux("send-keys", "-t", session, "2")  # a key from the terminal, not from the pipe
        wait_for(session, r"EVENTS ▼")
        quit_and_wait(session)
        assert not list(spool_root.iterdir())  # the private spool is removed at exit
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _pipe_app(tmp_path, log, spool_root, tail: str = "") -> tuple[str, object]:
    """The app on a pipe of ``log`` in tmux, its spool under ``spool_root``; returns the
    session and the file its pid is written to."""
    pid = tmp_path / f"pid-{uuid.uuid4().hex[:6]}"
    app = f"echo \\$\\$ > {pid}; exec {sys.executable} -m audittui"  # the inner sh's $$
    command = f"sh -c 'cat {log} | sh -c \"{app}\"{tail}'"
    return start(tmp_path, command, (120, 30), env=f"TMPDIR={spool_root}"), pid


def _ended(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_quits_the_app_as_q_does_restoring_the_terminal(tmp_path):
    log = tmp_path / "audit.log"
    write_big(log, 2000, seed=6)
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    session, pid_file = _pipe_app(tmp_path, log, spool_root, tail="; echo status=$?; sleep 30")
    try:
        wait_for(session, r"2,000 / 2,000 events")
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        screen = wait_for(session, r"status=143")  # 128 + SIGTERM, on the shell's screen
        assert "events" not in screen  # the app's screen is gone: the terminal was restored
        assert not list(spool_root.iterdir())  # the pipe's spool removed on the way out
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_the_terminal_closed_while_running_or_quitting_ends_the_app_and_its_files(tmp_path):
    """A closed terminal (an SSH session dropped) is SIGHUP; when it lands while the app is
    quitting, Textual's shutdown could stall on the dead terminal: the process still ends,
    its spool removed, within the watchdog's grace."""
    log = tmp_path / "audit.log"
    write_big(log, 20_000, seed=6)
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    for k, quit_first in enumerate([False, True, True, True, True, True]):
        session, pid_file = _pipe_app(tmp_path, log, spool_root)
        wait_for(session, r"20,000 events")
        pid = int(pid_file.read_text())
        if quit_first:
            tmux("send-keys", "-t", session, "q")
            time.sleep(0.01 * k)  # the hang-up at different points of the way out
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        assert _ended(pid, GRACE + 10), f"run {k}: the app outlived its terminal"
        assert not list(spool_root.iterdir()), f"run {k}: its spool was left behind"
