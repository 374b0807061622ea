"""Store URLs: ``clickhouse://[user[:password]@]HOST[:PORT]/DB[?table=T&cluster=NAME]`` (HTTP,
port 8123 by default), ``clickhouses://…`` (HTTPS, 8443) and ``chdb:///absolute/folder[?table=T]``
(the embedded engine on a local folder). Parsed into a frozen :class:`Target`.

Credentials: a URL without a user or a password takes them from ``CLICKHOUSE_USER`` and
``CLICKHOUSE_PASSWORD`` (the ClickHouse client's own variables), so that they need not be in a
command line, which ``ps`` shows to every local user. No message ever shows any part of a URL's
user-info (:attr:`Target.display` leaves it out; a malformed URL is said without it), not even
when a password holding ``/``, ``?`` or ``#`` made the URL unreadable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import schema

SCHEMES = ("clickhouse", "clickhouses", "chdb")
DEFAULT_PORTS = {"clickhouse": 8123, "clickhouses": 8443}
ENV_USER, ENV_PASSWORD = "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a database or table name, written unquoted
_ENCODE = (
    "percent-encode / ? # @ in a user or password (%2F %3F %23 %40), or give them in "
    f"{ENV_USER} and {ENV_PASSWORD}"
)


class BadURL(ValueError):
    """The text is a store URL but a malformed one; its str is a one-line message."""


@dataclass(frozen=True)
class Target:
    scheme: str  # "clickhouse" | "clickhouses" | "chdb"
    host: str  # the folder for chdb
    port: int  # 0 for chdb
    database: str
    table: str = schema.TABLE
    cluster: str = ""
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    # where the user and the password came from: "URL", ENV_USER / ENV_PASSWORD, or ""
    user_from: str = ""
    password_from: str = ""

    @property
    def display(self) -> str:
        """The URL as a message may show it: without user or password."""
        query = f"?table={quote(self.table)}" if self.table != schema.TABLE else ""
        if self.cluster:
            query += ("&" if query else "?") + f"cluster={quote(self.cluster)}"
        if self.scheme == "chdb":
            return f"chdb://{self.host}{query}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{self.database}{query}"

    @property
    def credentials(self) -> str:
        """Where the credentials came from, in a few words (for an authentication failure)."""
        if not self.user_from and not self.password_from:
            return f"the default user: no user in the URL or {ENV_USER}"
        parts = [f"user from {self.user_from}" if self.user_from else "the default user"]
        if self.password_from:
            parts.append(f"password from {self.password_from}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.display


def is_store_url(text: str) -> bool:
    """Does ``text`` name a store (rather than a file or folder)?"""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def exposed(target: Target) -> str | None:
    """A warning when the password was given in the URL: in a command line, every local user
    sees it (``ps``); None otherwise."""
    if target.password_from != "the URL":
        return None
    return (
        f"the password in the store URL is visible to every local user (ps): give it in "
        f"{ENV_PASSWORD} instead"
    )


def parse(text: str, env: Mapping[str, str] | None = None) -> Target:
    """``text`` as a :class:`Target`; :class:`BadURL` with a one-line reason otherwise. ``env``
    (``os.environ`` by default) gives the user and password the URL does not."""
    if not is_store_url(text):
        raise BadURL(
            f"not a store URL (clickhouse://HOST:PORT/DB or chdb:///FOLDER): {_redacted(text)!r}"
        )
    after = text.partition("://")[2]
    authority = re.split(r"[/?#]", after, maxsplit=1)[0]
    if "@" in after[len(authority) :]:
        # The user-info held a / ? or #, which ended the host part early: none of it is shown
        raise BadURL(f"bad store URL: its user or password is not readable: {_ENCODE}")
    if "#" in after:
        raise BadURL("bad store URL: a store URL has no #fragment (a # in a password: %23)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        where = authority.rpartition("@")[2]  # the host part: the user-info is left out
        raise BadURL(f"bad store URL: not a host and port: {where!r}") from None
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"table", "cluster"})
    if unknown:
        raise BadURL(f"unknown option in store URL: {unknown[0]} (table and cluster are known)")
    table = query.get("table", [schema.TABLE])[-1]
    cluster = query.get("cluster", [""])[-1]
    if not _NAME.match(table):
        raise BadURL(f"bad table name in store URL: {table!r}")
    if scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise BadURL("a chdb URL names an absolute folder: chdb:///path/to/folder")
        return Target("chdb", unquote(parts.path), 0, "default", table, cluster)
    host = parts.hostname or ""
    if not host:
        raise BadURL(f"no host in store URL: {_redacted(text)!r}")
    if port == 0:
        raise BadURL(f"port 0 in store URL: {_redacted(text)!r}")
    database = unquote(parts.path.strip("/")) or "default"
    if not _NAME.match(database):
        raise BadURL(f"bad database name in store URL: {database!r}")
    env = os.environ if env is None else env
    user, user_from = unquote(parts.username or ""), "the URL"
    if not user:
        user, user_from = env.get(ENV_USER, ""), ENV_USER
    password, password_from = unquote(parts.password or ""), "the URL"
    if not password:
        password, password_from = env.get(ENV_PASSWORD, ""), ENV_PASSWORD
    return Target(
        scheme,
        host,
        DEFAULT_PORTS[scheme] if port is None else port,
        database,
        table,
        cluster,
        user,
        password,
        user_from if user else "",
        password_from if password else "",
    )


def _redacted(text: str) -> str:
    """``text`` for a message: anything that may be user-info (up to the last ``@`` after the
    scheme) replaced by ``***``."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
