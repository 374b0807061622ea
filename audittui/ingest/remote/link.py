"""One SSH connection per host, shared by every path read from it: the user's own ``ssh`` (or
``--ssh-command``), with its config, agent, ProxyJump and known hosts, run as a control
master whose socket lives in a private folder; each remote script runs over it.

Host keys are never accepted blindly: audittui adds no ``StrictHostKeyChecking`` option, so
ssh asks (the first connection, on the terminal) or refuses as the user's config says.
Reconnections run with ``BatchMode=yes``: no prompt may appear under the app.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import threading
import time

from .target import Target

CONNECT_TIMEOUT = 30.0  # s for a master to come up (ssh's own ConnectTimeout may be shorter)
ALIVE = ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]  # a dead link in 15 s


class ConnectError(Exception):
    """ssh could not connect (or authenticate); ``kind`` says which, for the status."""

    def __init__(self, message: str, kind: str = "unreachable") -> None:
        super().__init__(message)
        self.kind = kind


def ssh_words(command: str | None) -> list[str]:
    words = shlex.split(command) if command else ["ssh"]
    if not words:
        raise ConnectError("--ssh-command is empty", "usage")
    return words


def _sets(words: list[str], option: str) -> bool:
    """Does the user's command set ``option`` (``-o ControlPath=…``, ``-S path``)?"""
    joined = " ".join(words).lower()
    return option.lower() in joined or (option == "ControlPath" and "-S" in words)


class HostLink:
    """The control master for one host (user, port): started on demand, restarted after
    the connection drops."""

    def __init__(self, target: Target, command: str | None, folder: str) -> None:
        self.target = target
        self.words = ssh_words(command)
        # The user's command already multiplexes (or opts out): leave it alone.
        self.own_master = not (
            _sets(self.words, "ControlPath") or _sets(self.words, "ControlMaster")
        )
        self.control = os.path.join(folder, "%C")
        self._master: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.connections = 0  # masters started (1 + reconnections)

    def _base(self, batch: bool) -> list[str]:
        opts = ["-o", "BatchMode=yes"] if batch else []
        return [*self.words, *opts, *ALIVE]

    def session(self, remote: str, batch: bool) -> list[str]:
        """The command line that runs ``remote`` (a command for the login's shell) on the host."""
        mux = (
            ["-o", "ControlMaster=no", "-o", f"ControlPath={self.control}"]
            if self.own_master
            else []
        )
        return [*self._base(batch), "-T", *mux, *self.target.destination(), remote]

    def ensure(self, batch: bool) -> None:
        """Make sure the master is up; raises ConnectError with ssh's own words."""
        if not self.own_master:
            return
        with self._lock:
            if self._master is not None and self._master.poll() is None and self._alive():
                return
            self._stop_master()
            cmd = [
                *self._base(batch),
                "-M",
                "-N",
                "-T",
                "-o",
                "ControlPersist=no",
                "-o",
                f"ControlPath={self.control}",
                *self.target.destination(),
            ]
            master = spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            self._master = master
            self.connections += 1
            deadline = time.monotonic() + CONNECT_TIMEOUT
            while not self._alive():
                if master.poll() is not None:
                    assert master.stderr is not None
                    err = master.stderr.read().decode("utf-8", "replace")
                    self._master = None
                    raise connect_error(self.target, err, master.returncode)
                if time.monotonic() > deadline:
                    self._stop_master()
                    raise ConnectError(
                        f"{self.target.host}: no connection in {CONNECT_TIMEOUT:g} s"
                    )
                time.sleep(0.01)  # the socket appears once ssh has authenticated

    def _alive(self) -> bool:
        """Is the master's socket there? (ssh expands %C itself: look for any socket.)"""
        folder = os.path.dirname(self.control)
        try:
            return any(not name.startswith(".") for name in os.listdir(folder))
        except OSError:
            return False

    def _stop_master(self) -> None:
        master, self._master = self._master, None
        if master is not None and master.poll() is None:
            master.terminate()
            try:
                master.wait(5)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
        if master is not None and master.stderr is not None:
            master.stderr.close()
        folder = os.path.dirname(self.control)
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            with contextlib.suppress(OSError):  # a stale socket of a dead master
                os.unlink(os.path.join(folder, name))

    def close(self) -> None:
        with self._lock:
            self._stop_master()


def spawn(cmd: list[str], stdin: int, stdout: int) -> subprocess.Popen[bytes]:
    """Start ``cmd`` (an ssh command line), its stderr piped for the message; raises
    ConnectError (one line) when the ssh program itself cannot be run."""
    try:
        return subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    except OSError as exc:
        raise ConnectError(f"{cmd[0]}: {exc.strerror or exc}", "usage") from None


def connect_error(target: Target, stderr: str, status: int) -> ConnectError:
    """ssh's failure as one line, and its kind for the status."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip()]
    lines = [x for x in lines if not x.lower().startswith(("warning:", "debug"))] or lines
    said = lines[-1] if lines else f"ssh exited with status {status}"
    low = stderr.lower()
    if "host key verification failed" in low or "remote host identification has changed" in low:
        kind = "host key not trusted"
    elif "permission denied" in low:
        kind = "login refused"
    else:
        kind = "unreachable"
    return ConnectError(f"{target.host}: {said}", kind)
