"""Store credentials: from CLICKHOUSE_USER and CLICKHOUSE_PASSWORD when the URL has none (so that
no password need be in a command line, which ``ps`` shows every local user), and never a piece
of a URL's user-info in a message, even when a password holding ``/``, ``?`` or ``#`` made the
URL unreadable. Against the real 18.16 server, whose users.xml has a user with such a password
(tests/clickhouse_server.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from clickhouse_server import ODD_PASSWORD, ODD_USER, ClickHouseServer, table_url

from audittui.clickhouse.client import StoreError, connect
from audittui.clickhouse.url import BadURL, parse
from audittui.demo.stream import iter_lines

PY = sys.executable
# every piece of the user-info between its separators: none may be shown
PIECES = [p for p in re.split(r"[/?#@:]", f"{ODD_USER}:{ODD_PASSWORD}") if p]


def audittui(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
    return subprocess.run(
        [PY, "-m", "audittui", *argv],
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )


def who(url: str, env: dict[str, str]) -> str:
    """The user the server says this connection is (18.16 has no currentUser())."""
    with connect(parse(url, env=env)) as client:
        marker = "who-am-i-" + os.urandom(4).hex()
        # the query itself is among the processes: found by a word only it holds
        [row] = client.rows(f"SELECT user FROM system.processes WHERE query LIKE '%{marker}%'")
        return str(row["user"])


def test_the_environment_gives_user_and_password(clickhouse_server: ClickHouseServer) -> None:
    url = clickhouse_server.url
    env = {"CLICKHOUSE_USER": ODD_USER, "CLICKHOUSE_PASSWORD": ODD_PASSWORD}
    target = parse(url, env=env)
    assert (target.user, target.password) == (ODD_USER, ODD_PASSWORD)
    assert (target.user_from, target.password_from) == ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD")
    with connect(target) as client:
        assert client.version.startswith("18.16")
    assert who(url, env) == ODD_USER
    assert who(url, {}) == "default"  # nothing given: the server's default user
    # the URL's own user and password come first; the environment fills what it lacks
    encoded = quote(ODD_PASSWORD, safe="")
    mixed = url.replace("://", f"://{ODD_USER}@")
    assert parse(mixed, env={"CLICKHOUSE_PASSWORD": ODD_PASSWORD}).password_from == (
        "CLICKHOUSE_PASSWORD"
    )
    assert who(mixed, {"CLICKHOUSE_PASSWORD": ODD_PASSWORD}) == ODD_USER
    full = url.replace("://", f"://{ODD_USER}:{encoded}@")
    assert who(full, {"CLICKHOUSE_USER": "nobody", "CLICKHOUSE_PASSWORD": "wrong"}) == ODD_USER
    wrong = {"CLICKHOUSE_USER": ODD_USER, "CLICKHOUSE_PASSWORD": "not it"}
    with pytest.raises(StoreError) as err:
        connect(parse(url, env=wrong))
    assert str(err.value).endswith(
        "authentication failed (user from CLICKHOUSE_USER, password from CLICKHOUSE_PASSWORD)"
    )
    assert not any(p in str(err.value) for p in PIECES)


def test_ship_and_read_with_the_password_in_the_environment_only(
    tmp_path: Path, clickhouse_server: ClickHouseServer
) -> None:
    """Nothing secret in any command line: the writer and the reader authenticate from the
    environment; a wrong password there is refused (so the environment is what is used)."""
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(50)))
    url, _ = table_url(clickhouse_server.url)
    env = {"CLICKHOUSE_USER": ODD_USER, "CLICKHOUSE_PASSWORD": ODD_PASSWORD}
    argv = ("ship", str(log), "--to", url, "--once", "--state", "st")
    r = audittui(*argv, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not any(ODD_PASSWORD in a for a in argv)
    r = audittui("query", "--format", "count", url, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "50\n", "")
    bad = {**env, "CLICKHOUSE_PASSWORD": ODD_PASSWORD + "x"}
    for command in (("query", "--format", "count", url), ("stats", url), argv):
        r = audittui(*command, env=bad, cwd=tmp_path)
        assert r.returncode == 2, (command, r.stderr)
        assert "authentication failed (user from CLICKHOUSE_USER" in r.stderr, r.stderr
        assert not any(p in r.stderr + r.stdout for p in PIECES), r.stderr


def _unreadable_urls(port: int) -> list[str]:
    """URLs whose user-info holds / ? # @ as they are (not percent-encoded)."""
    return [
        f"clickhouse://{ODD_USER}:{ODD_PASSWORD}@127.0.0.1:{port}/default",
        f"clickhouse://{ODD_USER}:Zq7/Kx9@127.0.0.1:{port}/default",
        f"clickhouse://{ODD_USER}:Zq7?Kx9@127.0.0.1:{port}/default",
        f"clickhouse://{ODD_USER}:Zq7#Kx9@127.0.0.1:{port}/default",
        f"clickhouse://{ODD_USER}:Zq7/1234@127.0.0.1:{port}/default",  # a port-like piece
        f"clickhouse://{ODD_USER}:1234#Kx9@127.0.0.1:{port}/default",  # read as host:port
        f"clickhouses://{ODD_USER}:Wv3?Jm5@Lp2@127.0.0.1/default?table=t",
    ]


def test_a_bad_url_never_shows_its_user_info(
    tmp_path: Path, clickhouse_server: ClickHouseServer
) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(5)))
    for url in _unreadable_urls(clickhouse_server.http_port):
        with pytest.raises(BadURL) as err:
            parse(url)
        assert not any(p in str(err.value) for p in PIECES), (url, str(err.value))
        for argv in (
            ("stats", url),
            ("summary", url),
            ("query", "-q", "verb:get", url),
            ("ship", str(log), "--to", url, "--once", "--state", "st"),
            ("webhook", "--to", url, "--listen", "127.0.0.1:0"),
            (url,),  # the app: refused before it starts
        ):
            r = audittui(*argv, cwd=tmp_path)
            assert r.returncode == 2, (argv, r.stderr)
            shown = r.stdout + r.stderr
            assert not any(p in shown for p in PIECES), (argv, shown)
            assert "bad store URL" in shown, (argv, shown)


def test_a_readable_url_with_credentials_is_shown_without_them(
    tmp_path: Path, clickhouse_server: ClickHouseServer
) -> None:
    from clickhouse_server import free_port

    encoded = quote(ODD_PASSWORD, safe="")
    port = free_port()  # nothing listens: the message names where it tried, and only that
    url = f"clickhouse://{ODD_USER}:{encoded}@127.0.0.1:{port}/default"
    for argv in (("stats", url), ("query", url), ("summary", url)):
        r = audittui(*argv, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"clickhouse://127.0.0.1:{port}/default:" in r.stderr, r.stderr
        assert not any(p in r.stderr or quote(p) in r.stderr for p in PIECES), r.stderr
    # a store that answers: its URL shown bare, and a word on the password in the command line
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(5)))
    bare, table = table_url(clickhouse_server.url)
    url = bare.replace("://", f"://{ODD_USER}:{encoded}@")
    r = audittui("ship", str(log), "--to", url, "--once", "--state", "st", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r2 = audittui("stats", url, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert f"store       {bare}\n" in r2.stdout
    for shown in (r.stderr, r2.stdout + r2.stderr):
        assert not any(p in shown or quote(p) in shown for p in PIECES), shown
        assert "visible to every local user (ps): give it in CLICKHOUSE_PASSWORD" in shown
