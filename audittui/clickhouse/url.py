"""Store URLs: ``clickhouse://[user[:password]@]HOST[:PORT]/DB[?table=T&cluster=NAME]`` (HTTP,
port 8123 by default), ``clickhouses://…`` (HTTPS, 8443) and ``chdb:///absolute/folder[?table=T]``
(the embedded engine on a local folder). Parsed into a frozen :class:`Target`; the password is
kept for the connection but never shown (:attr:`Target.display`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import schema

SCHEMES = ("clickhouse", "clickhouses", "chdb")
DEFAULT_PORTS = {"clickhouse": 8123, "clickhouses": 8443}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a database or table name, written unquoted


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
    user: str = ""
    password: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        """The URL as a user may see it: the password replaced by ``***``."""
        query = f"?table={quote(self.table)}" if self.table != schema.TABLE else ""
        if self.cluster:
            query += ("&" if query else "?") + f"cluster={quote(self.cluster)}"
        if self.scheme == "chdb":
            return f"chdb://{self.host}{query}"
        auth = ""
        if self.user:
            auth = quote(self.user, safe="") + (":***" if self.password else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}/{self.database}{query}"

    def __str__(self) -> str:
        return self.display


def is_store_url(text: str) -> bool:
    """Does ``text`` name a store (rather than a file or folder)?"""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def parse(text: str) -> Target:
    """``text`` as a :class:`Target`; :class:`BadURL` with a one-line reason otherwise."""
    if not is_store_url(text):
        raise BadURL(f"not a store URL (clickhouse://HOST:PORT/DB or chdb:///FOLDER): {text!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"bad store URL: {exc}") from None
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
        raise BadURL(f"no host in store URL: {_hide(text)!r}")
    if port == 0:
        raise BadURL(f"port 0 in store URL: {_hide(text)!r}")
    database = unquote(parts.path.strip("/")) or "default"
    if not _NAME.match(database):
        raise BadURL(f"bad database name in store URL: {database!r}")
    return Target(
        scheme,
        host,
        DEFAULT_PORTS[scheme] if port is None else port,
        database,
        table,
        cluster,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    )


def _hide(text: str) -> str:
    """``text`` with a password (``user:secret@``) replaced, for a message."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", text)
