"""Sources read from a mirror folder, named as the user knows them: ``host:/remote/path`` for
their path, and the host as their API server (the ``server:`` term).

Mirror folders are registered here when they are made; :func:`relabel` is applied where
sources are created (the loader, the session, the follower through :class:`Labelled`).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..follow import SourceRegistry
    from ..sources import Source

_folders: dict[str, tuple[str, str]] = {}  # local folder → (server, shown folder)
_lock = threading.Lock()


def register(folder: str, server: str, shown: str) -> None:
    with _lock:
        _folders[os.path.abspath(folder)] = (server, shown.rstrip("/") or shown)


def unregister(folder: str) -> None:
    with _lock:
        _folders.pop(os.path.abspath(folder), None)


def relabel(source: Source) -> Source:
    """``source`` named after the remote file its mirror copy holds (unchanged otherwise)."""
    if not _folders:
        return source
    folder, name = os.path.split(os.path.abspath(source.path))
    with _lock:
        known = _folders.get(folder)
    if known is not None:
        server, shown = known
        source.path = f"{shown}/{name}"
        source.server = server
    return source


def shown(path: str) -> str:
    """A local mirror path as the user knows it (other paths as they are)."""
    folder, name = os.path.split(os.path.abspath(path))
    with _lock:
        known = _folders.get(folder) or _folders.get(os.path.abspath(path))
    if known is None:
        return path
    return known[1] if os.path.isdir(path) else f"{known[1]}/{name}"


class Labelled:
    """A store (as the follower sees it) whose new sources are relabelled."""

    def __init__(self, store: SourceRegistry) -> None:
        self._store = store

    @property
    def sources(self) -> list[Source]:
        return self._store.sources

    def add_source(self, source: Source, fd: int | None = None) -> Source:
        return self._store.add_source(relabel(source), fd)
