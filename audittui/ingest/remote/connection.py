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
from .protocol import (
    MAX_FILES,
    NAME_MAX,
    ChannelClosed,
    FrameReader,
    ProtocolError,
    fields,
    file_name,
    new_token,
    number,
)
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
                    self.state = self._state("done")
                    self.ready.set()
                    return
                problem, kind = "the connection ended", "retrying"
            except (ConnectError, RemoteFailure) as exc:
                problem, kind = str(exc), exc.kind
            except ProtocolError as exc:
                problem, kind = f"{self.target.host}: not audittui's protocol: {exc}", "retrying"
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
        ended = False  # the channel was read to its end
        try:
            try:
                proc.stdin.write(self._prelude(token).encode() + SCRIPT.encode())
                proc.stdin.close()
            except OSError:
                pass  # it ended at once: its status and stderr say why
            failure = self._frames(reader)
            ended = True
        finally:
            self.received += reader.received
            # stopped reading early (a refusal, a protocol error): the host may still be
            # writing, and would never exit
            if proc.poll() is None and (not ended or failure is not None or self._stop.is_set()):
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
        """Apply the script's frames to the mirror until the channel ends; every field is
        checked (ProtocolError for anything the script does not send)."""
        mirror = self.mirror
        started = False
        while (line := reader.line()) is not None:
            kind, _, rest = line.partition(" ")
            if not started:
                if kind not in ("K", "E"):
                    continue  # what the login printed before the script ran (an rc file)
                started = True
            if kind == "D":
                (ino, offset), _ = fields(rest, 2)
                mirror.sent(ino, reader.data(mirror.sink(ino, offset)))
            elif line == "L":
                mirror.listing(_listing(reader))
            elif line == "R":
                mirror.round_end()
                self.state = self._state("connected")
                self.ready.set()
            elif kind in ("N", "T"):
                (ino,), _ = fields(rest, 1)
                (mirror.reused if kind == "N" else mirror.truncated)(ino)
            elif kind == "X":
                ino_text, _, why_name = rest.partition(" ")
                why, _, name = why_name.partition(" ")
                if why not in ("denied", "gone"):
                    raise ProtocolError(f"an X frame says {rest[:80]!r}")
                ino = number(ino_text)
                mirror.refused(ino, why, file_name(name))
                if why == "denied" and not self.ready.is_set():
                    return self._refused("denied", self._where(name))
            elif kind == "U":
                why, _, shown = rest.partition(" ")
                if why not in _NOT_READ or not shown or len(shown) > 2 * NAME_MAX:
                    raise ProtocolError(f"a U frame says {rest[:80]!r}")
                if why == "unlisted":
                    file_name(shown)
                mirror.not_read(self._where(shown), _NOT_READ[why])
            elif line in ("K file", "K folder"):
                self.kind = rest
                # only a file's backups may be left out: a folder's are always read
                mirror.skip_backups = rest == "file" and not self.backups
            elif kind == "E" and rest.partition(" ")[0] in ("denied", "nosuch"):
                why, _, path = rest.partition(" ")
                return self._refused(why, path)
            else:
                raise ProtocolError(f"an unknown frame: {line[:80]!r}")
        return None

    def _state(self, state: str) -> str:
        """``state`` and what was not read: ``connected, 2 file(s) unreadable``."""
        unreadable, unread = len(self.mirror.denied), len(self.mirror.unread)
        if unreadable:
            state += f", {unreadable} file(s) unreadable"
        if unread:
            state += f", {unread} file(s) not read (their names)"
        return state

    def _where(self, name: str) -> str:
        """The file ``name`` of the remote folder read, as the user named the folder."""
        path = self.target.path.rstrip("/")
        if self.kind == "file":
            path = path.rpartition("/")[0]
        return f"{path}/{name}" if path or self.target.path.startswith("/") else name

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
        held = self.mirror.state.files
        known = "".join(f"{ino} - {off} - {held[ino].name}\n" for ino, off in offsets.items())
        lines = [
            f"P={shlex.quote(path)}",
            f"T={shlex.quote(token)}",
            f"ONCE={0 if self.follow else 1}",
            f"SKIP={1 if first and not self.backups else 0}",
            f"BSTEM={shlex.quote(stem)}",
            f"BEXT={shlex.quote(dot + ext)}",
            "DONE=" + shlex.quote("\n" + "".join(f"{n}\n" for n in done)),
            "W=" + shlex.quote(known),
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


_NOT_READ = {
    "newline": "a file whose name holds a newline was not read",
    "unlisted": "a file that ls on the host did not list exactly was not read",
}


def _listing(reader: FrameReader) -> list[tuple[int, int, str]]:
    """The "<inode> <size> <name>" lines of an L frame, up to its "M"."""
    entries: list[tuple[int, int, str]] = []
    inodes: set[int] = set()
    while (entry := reader.line()) != "M":
        if entry is None:
            raise ChannelClosed("the channel ended inside a listing")
        if len(entries) == MAX_FILES:
            raise ProtocolError(f"a listing of more than {MAX_FILES:,} files")
        (ino, size), name = fields(entry, 2)
        if ino in inodes:
            raise ProtocolError(f"inode {ino} listed twice")
        inodes.add(ino)
        entries.append((ino, size, name))
    return entries


def _drain(stream: IO[bytes], into: bytearray) -> None:
    read = stream.read
    while chunk := read(4096):
        if len(into) < STDERR_KEPT:
            into += chunk[: STDERR_KEPT - len(into)]
