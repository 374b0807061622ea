"""Real ClickHouse for the tests: Debian's 18.16 server started on free loopback ports with a
temporary data folder (the "old" server), and chdb, the embedded current engine, on a temporary
folder (the "current" one).

Fixtures (registered by tests/conftest.py):

- ``clickhouse_server`` (session): the running :class:`ClickHouseServer`; ``clickhouse_url``
  (session): its ``clickhouse://127.0.0.1:PORT/default`` URL.
- ``chdb_url`` (function): a ``chdb:///…`` URL on a fresh folder under ``tmp_path``.
- ``store_url`` (function, parametrized "old" / "current"): one of the two.

Tests that kill the server (fault tests) start their own :class:`ClickHouseServer` so that the
shared one stays up for everyone else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARY = "/usr/sbin/clickhouse-server"
# A second user with a password, for the bad-credentials tests (the default one has none).
USER = "auditor"
PASSWORD = "s3cret pass"
# A third, whose password holds / ? # and @ (given in CLICKHOUSE_PASSWORD as it is, or
# percent-encoded in a URL): pieces no message may ever show.
ODD_USER = "qjuser7"
ODD_PASSWORD = "Zq7/Kx9?Wv3#Jm5@Lp2"

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password></password><networks><ip>::/0</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <{user}><password>{password}</password><networks><ip>::/0</ip></networks>
      <profile>default</profile><quota>default</quota></{user}>
    <{odd_user}><password>{odd_password}</password><networks><ip>::/0</ip></networks>
      <profile>default</profile><quota>default</quota></{odd_user}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClickHouseServer:
    """One 18.16 server process on ``root`` (config, data, log). ``start`` waits until
    ``/ping`` answers; ``kill`` is SIGKILL (a crash), ``stop`` SIGTERM and wait; ``start`` again
    reuses the same ports and data, as a restarted server would."""

    def __init__(self, root: Path, http_port: int | None = None) -> None:
        self.root = root
        self.http_port = http_port or free_port()
        self.tcp_port = free_port()
        while self.tcp_port == self.http_port:
            self.tcp_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "config.xml").write_text(
            _CONFIG.format(http=self.http_port, tcp=self.tcp_port, root=root)
        )
        (root / "users.xml").write_text(
            _USERS.format(
                user=USER, password=PASSWORD, odd_user=ODD_USER, odd_password=ODD_PASSWORD
            )
        )

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.http_port}/default"

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ping", timeout=1) as r:
                return bool(r.read() == b"Ok.\n")
        except (OSError, urllib.error.URLError):
            return False

    def start(self, timeout: float = 30.0) -> None:
        if shutil.which(BINARY) is None and not os.path.exists(BINARY):
            raise RuntimeError(f"{BINARY} missing: install Debian's clickhouse-server (.ci/run)")
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [BINARY, f"--config-file={self.root / 'config.xml'}"],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"clickhouse-server not up in {timeout} s: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash; returns once the process is gone and the port is closed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[ClickHouseServer]:
    root = Path(tempfile.mkdtemp(prefix="audittui-ch-"))
    server = ClickHouseServer(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def clickhouse_url(clickhouse_server: ClickHouseServer) -> str:
    return clickhouse_server.url


@pytest.fixture
def chdb_url(tmp_path: Path) -> str:
    folder = tmp_path / "chdb"
    folder.mkdir()
    return f"chdb://{folder}"


@pytest.fixture(params=["old", "current"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The 18.16 server ("old") and chdb ("current"); a test using it runs on both."""
    if request.param == "old":
        return str(request.getfixturevalue("clickhouse_url"))
    return str(request.getfixturevalue("chdb_url"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    """A server of the test's own, so that killing it leaves the shared one up."""
    server = ClickHouseServer(tmp_path / "ch")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def table_url(base: str) -> tuple[str, str]:
    """``base`` with a fresh table of its own: (URL, table name)."""
    name = "t_" + uuid.uuid4().hex
    return f"{base}?table={name}", name
