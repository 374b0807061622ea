"""A real OpenSSH server for the SSH tests and the benchmark: ``/usr/sbin/sshd`` on a free
loopback port, with a temporary host key, a temporary client key authorised, and a client
config (``ssh -F``) that checks the host key against a known_hosts holding only it.

Hosts ``cp1`` and ``cp2`` are two aliases of the one server (two "API servers"), logging in
as the current user; ``cpuser`` logs in as an unprivileged user made for the tests, when
:meth:`Sshd.add_user` made one (as root: to read a root-only file honestly refused).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
USER = "audittui-ssh"  # the unprivileged login made for permission tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """Start with :meth:`start`, stop with :meth:`stop` (a context manager does both)."""

    def __init__(self) -> None:
        # Readable by the unprivileged login: sshd reads authorized_keys as that user.
        self.dir = Path(tempfile.mkdtemp(prefix="audittui-sshd-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = self.dir / "ssh_config"
        self.user_made = False
        self.me = pwd.getpwuid(os.getuid()).pw_name

    def _keygen(self, name: str) -> Path:
        key = self.dir / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
            check=True,
        )
        return key

    def start(self) -> Sshd:
        host = self._keygen("host_key")
        client = self._keygen("client_key")
        auth = self.dir / "authorized_keys"
        shutil.copy(f"{client}.pub", auth)
        auth.chmod(0o644)
        known = self.dir / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.port} {Path(f'{host}.pub').read_text()}")
        (self.dir / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host}\n"
            f"AuthorizedKeysFile {auth}\nPidFile {self.dir / 'sshd.pid'}\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nMaxSessions 64\nMaxStartups 64\n"
            "LogLevel ERROR\n"
        )
        self.config.write_text(
            "Host cp1 cp2 cpuser\n  HostName 127.0.0.1\n"
            f"  Port {self.port}\n  IdentityFile {client}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n"
            # ssh keeps the first value it reads of an option: one User per alias
            f"Host cp1 cp2\n  User {self.me}\n"
            f"Host cpuser\n  User {USER}\n"
        )
        self.config.chmod(0o644)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "wb"),  # noqa: SIM115 (closed with the process)
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {self.log()}") from None
                time.sleep(0.02)
        return self

    @property
    def ssh_command(self) -> str:
        return f"ssh -F {self.config}"

    def log(self) -> str:
        try:
            return (self.dir / "sshd.log").read_text(errors="replace")
        except OSError:
            return ""

    def add_user(self) -> bool:
        """Make the unprivileged login ``cpuser`` uses (as root only); False when not root."""
        if os.getuid() != 0:
            return False
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(
                ["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-p", "*", USER],
                check=True,
            )
            self.user_made = True
        return True

    @contextlib.contextmanager
    def sudo_rule(self, rule: str) -> Iterator[None]:
        """A sudoers line for ``cpuser`` (``NOPASSWD: /bin/sh``…) while the block runs, in a
        drop-in file of its own, removed afterwards."""
        assert shutil.which("sudo"), "the sudo tests need sudo (.ci/run installs it)"
        path = Path(f"/etc/sudoers.d/audittui-tests-{os.getpid()}")
        path.write_text(f"{USER} ALL=(root) {rule}\n")
        path.chmod(0o440)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def connections(self) -> list[int]:
        """The pids of the server's per-connection processes (its children and theirs)."""
        assert self.proc is not None
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = [], [self.proc.pid]
        while frontier:
            pid = frontier.pop()
            kids = [p for p, pp in parents.items() if pp == pid]
            found += kids
            frontier += kids
        return [p for p in found if _comm(p) == "sshd"]

    def kill_connections(self) -> int:
        """SIGKILL every connection's sshd processes (the network dropping; what ran in the
        sessions is left to notice): how many."""
        pids = self.connections()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        if self.proc is not None:
            self.kill_connections()
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        if self.user_made:
            subprocess.run(["userdel", USER], check=False)
            self.user_made = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    """A real sshd on a free loopback port, for one test module."""
    server = Sshd().start()
    try:
        yield server
    finally:
        server.stop()
