"""Remote targets on the command line: ``[user@]host:/path`` (scp's form) and
``ssh://[user@]host[:port]/path``, told apart from local paths.

A path that exists locally stays local whatever it contains; a ``:`` after a ``/`` is a local
path's (``./a:b``, ``/x/y:z``); other URL schemes (``clickhouse://``) are not SSH targets.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# scp's form: a host (no slash; IPv6 in brackets), a colon, then the remote path
_SCP = re.compile(
    r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\s\[\]]+):(?P<path>.*)$"
)
# no leading "-": ssh would take such a "host" as one of its options
_HOST_OK = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-]*$|^\[[0-9A-Fa-f:.]+\]$")


@dataclass(frozen=True)
class Target:
    """One remote path: where it is and how the user wrote it."""

    host: str  # as ssh takes it: an alias of the user's ssh config, a name or an address
    path: str  # on the host; relative paths are relative to the login's home
    user: str | None = None
    port: int | None = None
    spec: str = ""  # as given on the command line

    @property
    def server(self) -> str:
        """The ``server:`` value of its events: the host as named (without user or port)."""
        return self.host.strip("[]")

    @property
    def shown(self) -> str:
        """How its files are shown: ``host:/path`` (``user@`` kept when given)."""
        who = f"{self.user}@{self.host}" if self.user else self.host
        return f"{who}:{self.path}"

    def destination(self) -> list[str]:
        """The ``ssh`` arguments that name the host: ``[-l user] [-p port] host``."""
        out: list[str] = []
        if self.user:
            out += ["-l", self.user]
        if self.port:
            out += ["-p", str(self.port)]
        return [*out, self.host.strip("[]")]


def parse_target(spec: str) -> Target | None:
    """The remote target ``spec`` names, or None for a local path (or another scheme).

    Raises ValueError for an ``ssh://`` URL that is not one (no host, no path, bad port)."""
    if spec.startswith("ssh://"):
        return _parse_url(spec)
    if spec == "-" or "://" in spec or os.path.lexists(spec):
        return None
    m = _SCP.match(spec)
    if m is None or not m["path"] or not _HOST_OK.match(m["host"]):
        return None
    return Target(m["host"], m["path"], m["user"], None, spec)


def _parse_url(spec: str) -> Target:
    try:
        url = urlsplit(spec)
        port = url.port
    except ValueError as exc:
        raise ValueError(f"{spec}: not an ssh:// URL ({exc})") from None
    host = url.hostname
    if not host or not url.path or url.path == "/":
        raise ValueError(
            f"{spec}: an ssh:// URL needs a host and a path: ssh://[user@]host[:port]/path"
        )
    if ":" in host:
        host = f"[{host}]"
    elif not _HOST_OK.match(host):
        raise ValueError(f"{spec}: {host!r} is not a host name or address")
    user = unquote(url.username) if url.username else None
    return Target(host, unquote(url.path), user, port, spec)


def is_remote(spec: str) -> bool:
    """Does ``spec`` name a remote path (``host:/path`` or ``ssh://…``)?"""
    try:
        return parse_target(spec) is not None
    except ValueError:
        return True  # a malformed ssh:// URL: still meant as remote (its error is reported)
