"""The real app in a real terminal: tmux runs ``audittui FILE``, keys are sent, the screen is
read back. Skipped only where tmux is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from audittui.demo import write_big
from audittui.loader import load

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


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


def test_type_a_filter_and_read_the_count(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    write_big(log, 5000, seed=4)
    expected = len(load(str(log)).query("user:alice verb:get"))
    assert 0 < expected < 5000
    session = f"audittui-e2e-{uuid.uuid4().hex[:8]}"
    command = (
        f"env XDG_STATE_HOME={tmp_path / 'state'} TERM=xterm-256color "
        f"{sys.executable} -m audittui {log}"
    )
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", command)
    try:
        wait_for(session, r"5,000 / 5,000 events")
        tmux("send-keys", "-t", session, "/")
        # The filter bar has the focus once the footer stops offering the list's keys.
        wait_for(session, r"^(?![\s\S]*Next error)")
        tmux("send-keys", "-t", session, "user:alice verb:get", "Enter")
        screen = wait_for(session, rf"{expected:,} / 5,000 events")
        assert "filter: user:alice verb:get" in screen
        assert "alice" in screen and "get" in screen
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            panes = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True)
            if panes.returncode != 0:
                break  # the app quit and the session closed
            time.sleep(0.05)
        else:
            raise AssertionError("q did not quit the app")
        history = (tmp_path / "state" / "audittui" / "history").read_text()
        assert "user:alice verb:get" in history
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
