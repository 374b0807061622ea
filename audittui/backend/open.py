"""The one door to events: PATHs (files, folders, ``host:path`` over SSH, ``-`` for standard
input) → a :class:`~.memory.MemoryBackend`; a store URL (``clickhouse://…``, ``chdb://…``) → a
:class:`~.clickhouse.ClickHouseBackend`. Problems are one-line exceptions: InputError for
paths, BadURL or StoreError for a store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..clickhouse.reads import open_reader
from ..clickhouse.url import BadURL, exposed, is_store_url
from ..clickhouse.url import parse as parse_url
from ..index.loader import load, nothing_read
from ..ingest.remote import open_remote
from ..ingest.sources import InputError
from .clickhouse import ClickHouseBackend
from .memory import MemoryBackend
from .protocol import Backend

Warn = Callable[[str], None]  # a one-line warning for the user (stderr, the status bar)


def is_store(paths: Sequence[str]) -> bool:
    """Do ``paths`` name a store (one URL) rather than files?"""
    return any(is_store_url(p) for p in paths)


def open_backend(
    paths: Sequence[str],
    *,
    recursive: bool = False,
    ssh_command: str | None = None,
    sudo: bool = False,
    warn: Warn | None = None,
) -> Backend:
    """The events of ``paths``: one store URL, or files read now into memory (the app's
    :class:`~audittui.index.session.Session` reads them in the background instead)."""
    said = warn or (lambda _line: None)
    if is_store(paths):
        return open_store(paths, said)
    # a file PATH is read alone here (its backups only when followed)
    local, remote = open_remote(
        list(paths), ssh_command=ssh_command, sudo=sudo, backups=False, recursive=recursive
    )
    if remote is not None:
        remote.disconnect()  # mirrored: its copies are read by offset until exit
        for problem in remote.problems():  # a file not read (its name), an end lost
            said(problem)
    store = load(*local, recursive=recursive)
    for source in store.sources:  # a gzip bomb, a full $TMPDIR: said at once, in a line
        if source.bound:
            said(f"{source.path}: {source.bound}")
    return MemoryBackend(store, " ".join(paths))


def open_store(paths: Sequence[str], warn: Warn) -> ClickHouseBackend:
    if len(paths) != 1:
        raise BadURL("give one store URL, or files: not a store with files, not two stores")
    target = parse_url(paths[0])
    reader = open_reader(paths[0])
    if (warning := exposed(target)) is not None:  # once it worked: a failure stays one line
        warn(warning)
    return ClickHouseBackend(reader, target.display)


def empty(backend: Backend, paths: Sequence[str]) -> str | None:
    """Why no event was read, when none was (reading nothing is an error, never an empty
    result); None when there are events."""
    if isinstance(backend, MemoryBackend):
        return nothing_read(backend.store, paths)
    if backend.count() == 0:
        return f"{backend.display}: empty, no audit event read"
    return None


__all__ = ["open_backend", "open_store", "is_store", "empty", "InputError"]
