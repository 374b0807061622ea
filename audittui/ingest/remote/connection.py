"""One remote path kept mirrored: the script run over the host's connection, its frames
applied to the :class:`~.mirror.Mirror`, and the connection retried with backoff when it
drops, resuming from each file's last complete line.

States (for the status bar): connecting, connected, retrying, done (read once), and the
ones that need the user: permission denied, no such path, sudo asks for a password, login
refused, host key not trusted, unreachable.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from importlib.resources import files
from typing import IO

from .link import ConnectError, HostLink, connect_error, spawn
from .mirror import Mirror
from .protocol import ChannelClosed, FrameReader, new_token
from .target import Target

BACKOFF_FIRST = 0.2  # s before the first retry, doubled on each failure
BACKOFF_MAX = 5.0
STDERR_KEPT = 8192  # bytes of the remote side's stderr kept for a message

SCRIPT = files(__package__).joinpath("script.sh").read_text()


class RemoteFailure(Exception):
    """The host refused (no such path, permission denied, sudo wants a password)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class RemotePath:
    """Mirrors ``target`` into ``folder`` (files staged in ``staging`` until whole)."""

    def __init__(
        self,
        target: Target,
        link: HostLink,
        folder: str,
        staging: str,
        *,
        sudo: bool = False,
        follow: bool = False,
        backups: bool = True,
    ) -> None:
        self.target = target
        self.link = link
        self.folder = folder
        self.sudo = sudo
        self.follow = follow
        self.backups = backups
        self.mirror = Mirror(folder, staging)
        self.kind = ""  # "file" or "folder", as the host says
        self.state = "connecting"
        self.error = ""  # why the first connection failed (a one-line message)
        self.ready = threading.Event()  # the first round is here, or it failed
        self.reconnects = 0
        self.problem = ""  # why the last connection ended
        self.received = 0  # bytes read from the channel, over all connections
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"ssh-{target.host}", daemon=True)
        self._lock = threading.Lock()

    @property
    def local_path(self) -> str:
        """What the loader reads: the folder, or the file in it."""
        if self.kind == "file":
            import os

            return os.path.join(self.folder, self.target.path.rstrip("/").rsplit("/", 1)[-1])
        return self.folder

    def start(self) -> RemotePath:
        self._thread.start()
        return self

    # -- the connection loop ---------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            rounds = self.mirror.rounds
            try:
                self.link.ensure(batch=self.ready.is_set())
                self._session(batch=self.ready.is_set())
                if not self.follow and self.mirror.rounds:
                    self.mirror.read_to_end()
                    self.state = "done"
                    self.ready.set()
                    return
                problem, kind = "the connection ended", "retrying"
            except (ConnectError, RemoteFailure) as exc:
                problem, kind = str(exc), exc.kind
            except (ChannelClosed, ValueError, OSError) as exc:
                problem, kind = f"{self.target.host}: {exc}", "retrying"
            if self._stop.is_set():
                return
            if not self.ready.is_set():
                self.error, self.state = problem, kind
                self.ready.set()
                return
            self.problem = problem
            if self.mirror.rounds > rounds:
                delay = BACKOFF_FIRST  # it worked for a while: start the backoff over
            self.reconnects += 1
            self.state = f"retrying in {delay:.1f} s" if kind == "retrying" else f"{kind}, retrying"
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX)

    def _session(self, batch: bool) -> None:
        token = new_token()
        remote = "sudo -n sh -s" if self.sudo else "sh -s"
        cmd = self.link.session(remote, batch)
        with self._lock:
            if self._stop.is_set():
                return
            proc = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        errors = bytearray()
        drain = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
        drain.start()
        failure: RemoteFailure | None = None
        reader = FrameReader(proc.stdout, token)
        try:
            try:
                proc.stdin.write(self._prelude(token).encode() + SCRIPT.encode())
                proc.stdin.close()
            except OSError:
                pass  # it ended at once: its status and stderr say why
            failure = self._frames(reader)
        finally:
            self.received += reader.received
            if proc.poll() is None and (failure is not None or self._stop.is_set()):
                proc.terminate()
            status = proc.wait()
            drain.join(5)
            proc.stdout.close()
            with self._lock:
                self._proc = None
        if failure is not None:
            raise failure
        said = errors.decode("utf-8", "replace")
        if self._stop.is_set():
            return
        if "a password is required" in said or "a terminal is required" in said:
            raise RemoteFailure(
                f"{self.target.host}: sudo asks for a password (--sudo runs `sudo -n`, which "
                "never prompts): allow sh without a password there, or grant read access "
                f"instead (setfacl -m u:USER:r {self.target.path})",
                "sudo asks for a password",
            )
        if self.sudo and "sudo" in said and "not found" in said:
            raise RemoteFailure(f"{self.target.host}: no sudo on the host", "no sudo")
        if status == 255:
            raise connect_error(self.target, said, status)
        if status != 0 and not self.mirror.rounds:
            line = said.strip().splitlines()[-1:] or [f"the remote script exited with {status}"]
            raise RemoteFailure(f"{self.target.host}: {line[0]}", "failed")

    def _frames(self, reader: FrameReader) -> RemoteFailure | None:
        mirror = self.mirror
        while (line := reader.line()) is not None:
            kind, _, rest = line.partition(" ")
            if kind == "D":
                ino, off, _name = rest.split(" ", 2)
                status = reader.data(mirror.sink(int(ino), int(off)))
                mirror.sent(int(ino), status)
            elif kind == "L":
                entries = []
                while (entry := reader.line()) is not None and entry != "M":
                    parts = entry.split(" ", 2)
                    if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                        entries.append((int(parts[0]), int(parts[1]), parts[2]))
                mirror.listing(entries)
            elif kind == "R":
                mirror.round_end()
                unreadable = len(mirror.denied)
                self.state = "connected" + (f", {unreadable} file(s) unreadable" * bool(unreadable))
                self.ready.set()
            elif kind == "N":
                mirror.reused(int(rest.split(" ", 1)[0]))
            elif kind == "T":
                mirror.truncated(int(rest.split(" ", 1)[0]))
            elif kind == "X":
                ino, why, name = rest.split(" ", 2)
                mirror.refused(int(ino), why, name)
                if why == "denied" and not self.ready.is_set():
                    return self._refused("denied", f"{self.target.path.rstrip('/')}/{name}")
            elif kind == "K":
                self.kind = rest
                # only a file's backups may be left out: a folder's are always read
                mirror.skip_backups = rest == "file" and not self.backups
            elif kind == "E":
                why, _, path = rest.partition(" ")
                return self._refused(why, path)
        return None

    def _refused(self, why: str, path: str) -> RemoteFailure:
        shown = f"{self.target.host}:{path}"
        if why == "denied":
            hint = (
                ""
                if self.sudo
                else " (audit logs are usually root-only: add --sudo, or grant "
                f"read access there: sudo setfacl -m u:$USER:r {path})"
            )
            return RemoteFailure(
                f"{shown}: permission denied on the host{hint}", "permission denied"
            )
        return RemoteFailure(f"{shown}: no such file or folder on the host", "no such path")

    def _prelude(self, token: str) -> str:
        """The variables the script starts from: the path, and where every file stands."""
        path = self.target.path
        if path == "~" or path.startswith("~/"):
            path = path[2:] or "."  # the script runs in the login's home
        name = path.rstrip("/").rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        offsets, done = self.mirror.resume()
        first = self.mirror.rounds == 0
        lines = [
            f"P={shlex.quote(path)}",
            f"T={shlex.quote(token)}",
            f"ONCE={0 if self.follow else 1}",
            f"SKIP={1 if first and not self.backups else 0}",
            f"BSTEM={shlex.quote(stem)}",
            f"BEXT={shlex.quote(dot + ext)}",
            "DONE=" + shlex.quote("\n" + "".join(f"{n}\n" for n in done)),
            *(f"O_{ino}={off}" for ino, off in offsets.items()),
            *(f"N_{ino}={shlex.quote(self.mirror.state.files[ino].name)}" for ino in offsets),
            "K=" + shlex.quote(" ".join(str(ino) for ino in offsets)),
        ]
        return "\n".join(lines) + "\n"

    # -- stopping --------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Drop the current connection (as a network failure would): the loop reconnects."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
        if self._thread.is_alive():
            self._thread.join(10)
        self.mirror.close()

    def wait_round(self, timeout: float = 30.0) -> bool:
        """Wait until one more round than now has been applied (tests, the benchmark)."""
        target = self.mirror.rounds + 1
        deadline = time.monotonic() + timeout
        while self.mirror.rounds < target:
            if time.monotonic() > deadline or self._stop.is_set():
                return False
            time.sleep(0.01)
        return True


def _drain(stream: IO[bytes], into: bytearray) -> None:
    read = stream.read
    while chunk := read(4096):
        if len(into) < STDERR_KEPT:
            into += chunk[: STDERR_KEPT - len(into)]
