"""Audit logs read over SSH: ``host:/path`` and ``ssh://[user@]host[:port]/path`` for every
command and the app, nothing installed on the hosts.

Each remote path is mirrored, byte for byte, into a private local folder (mode 0700 under
the temporary directory, removed at exit); the loader, the follower and the detail view then
read that folder as they read a local one. See ``mirror.py`` for how rotations are replayed,
``script.sh`` for what runs on the host (POSIX sh, ls, awk, tail, cat: nothing it reads is run),
``protocol.py`` for how its frames are read (every field checked, every line bounded),
``link.py`` for the one connection per host.

:func:`open_remote` turns command-line paths into local ones and returns the
:class:`Remote` that keeps them mirrored (until :meth:`Remote.close`).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import threading
from typing import TYPE_CHECKING

from .. import scratch
from ..sources import InputError
from . import labels
from .connection import RemotePath
from .link import ConnectError, HostLink
from .target import Target, is_remote, parse_target

if TYPE_CHECKING:
    import argparse

__all__ = ["Remote", "add_options", "is_remote", "open_remote", "parse_target", "relabel"]

relabel = labels.relabel


class Remote:
    """The remote paths of one command, each mirrored into its own local folder."""

    def __init__(
        self,
        targets: list[Target],
        *,
        ssh_command: str | None = None,
        sudo: bool = False,
        follow: bool = False,
        backups: bool = True,
    ) -> None:
        self.root = scratch.make("ssh")  # mode 0700, swept after a kill (scratch)
        atexit.register(self.close)
        _exit_on_sigterm()
        self.links: dict[tuple[str | None, str, int | None], HostLink] = {}
        self.paths: list[RemotePath] = []
        for k, target in enumerate(targets):
            key = (target.user, target.host, target.port)
            if key not in self.links:
                control = self._folder(f".control-{len(self.links)}")
                self.links[key] = HostLink(target, ssh_command, control)
            folder = self._folder(f"{k}-{re.sub(r'[^A-Za-z0-9_.-]', '_', target.server)}")
            staging = self._folder(f".staging-{k}")
            self.paths.append(
                RemotePath(
                    target,
                    self.links[key],
                    folder,
                    staging,
                    sudo=sudo,
                    follow=follow,
                    backups=backups,
                )
            )

    def _folder(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.mkdir(path, 0o700)
        return path

    def start(self) -> Remote:
        """Connect to every host and mirror what is there now; raises InputError (one line)
        for the first path that cannot be read."""
        for p in self.paths:
            p.start()
        for p in self.paths:
            p.ready.wait()
        for p in self.paths:
            if p.error:
                self.close()
                raise InputError(p.error)
        for p in self.paths:
            prefix = p.target.shown.rstrip("/")
            if p.kind == "file":
                prefix = (
                    prefix.rsplit("/", 1)[0] if "/" in p.target.path else prefix.split(":")[0] + ":"
                )
            labels.register(p.folder, p.target.server, prefix)
        return self

    def status(self) -> str:
        """Each host's state, for the status bar: ``cp1 connected  cp2 retrying in 0.8 s``."""
        return "  ".join(f"{p.target.host} {p.state}" for p in self.paths)

    def problems(self) -> list[str]:
        """What a user should know that the states do not say (data lost at a rotation)."""
        return [f"{p.target.host}: {note}" for p in self.paths for note in p.mirror.notes]

    def disconnect(self) -> None:
        """Stop mirroring and close the connections; the copies stay until :meth:`close`
        (or the exit)."""
        for p in self.paths:
            p.close()
        for link in self.links.values():
            link.close()

    def close(self) -> None:
        self.disconnect()
        for p in self.paths:
            labels.unregister(p.folder)
        shutil.rmtree(self.root, ignore_errors=True)


def _exit_on_sigterm() -> None:
    """SIGTERM (kill, a service manager) and SIGHUP (the terminal closed) exit through the
    finally blocks and atexit: their default action would leave the mirrored copies behind."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _terminated)


def _terminated(signum: int, _frame: object) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # once: a second one would cut the exit path
    raise SystemExit(128 + signum)


def open_remote(
    paths: list[str],
    *,
    ssh_command: str | None = None,
    sudo: bool = False,
    follow: bool = False,
    backups: bool = True,
    recursive: bool = False,
) -> tuple[list[str], Remote | None]:
    """``paths`` with each remote one replaced by its local mirror, and the :class:`Remote`
    keeping them (None when every path is local). ``follow``: keep mirroring what the hosts
    append; else mirror what is there now and stop. ``backups``: a remote *file*'s rotated
    backups too (a folder's are always read). ``recursive``: refused for remote paths (their
    subfolders are not listed). Raises InputError with a one-line message."""
    parsed: list[Target | None] = []
    for p in paths:
        try:
            parsed.append(parse_target(p))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    targets = [t for t in parsed if t is not None]
    if not targets:
        return list(paths), None
    if recursive:
        # the remote script lists one folder: say so rather than leave subfolders out
        raise InputError(
            f"{targets[0].spec}: --recursive reads local subfolders only; "
            "give each remote folder as host:/path"
        )
    try:
        remote = Remote(
            targets, ssh_command=ssh_command, sudo=sudo, follow=follow, backups=backups
        ).start()
    except ConnectError as exc:
        raise InputError(str(exc)) from None
    local = iter(p.local_path for p in remote.paths)
    return [next(local) if t is not None else p for p, t in zip(paths, parsed, strict=True)], remote


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--ssh-command`` and ``--sudo``, for every command that reads PATHs (and the app)."""
    group = parser.add_argument_group(
        "remote paths ([user@]host:/path, ssh://[user@]host[:port]/path)"
    )
    group.add_argument(
        "--ssh-command",
        metavar="CMD",
        help="the ssh to run instead of `ssh` (like rsync -e), e.g. 'ssh -F ~/.ssh/lab.conf'",
    )
    group.add_argument(
        "--sudo",
        action="store_true",
        help="read root-only logs through `sudo -n` on the host (never prompts)",
    )
