"""Write a selection of events to a JSONL file the user named (or a text, such as generated
RBAC YAML): secrets masked unless asked
otherwise, never into a folder the logs are read from, and never half-written (a temporary
file beside the target is renamed over it only once complete)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator

import orjson

from ..index.store import EventGone, Store
from .inert import inert_json
from .mask import mask_raw, mask_wrapper_text
from .terminal import event_json, event_line


class ExportError(Exception):
    """A one-line reason the export could not be written."""


def log_folders(store: Store) -> set[str]:
    """The folders holding the files being read (exports must not go there)."""
    return {
        os.path.realpath(os.path.dirname(os.path.abspath(s.path)))
        for s in store.sources
        if s.path != "-"
    }


def check_target(store: Store, path: str) -> str:
    """The absolute target path, or ExportError when it must not be written."""
    target = os.path.abspath(os.path.expanduser(path))
    folder = os.path.realpath(os.path.dirname(target))
    if folder in log_folders(store):
        raise ExportError(f"{folder} holds the logs being read; audittui never writes there")
    if os.path.isdir(target):
        raise ExportError(f"{target} is a folder")
    if not os.path.isdir(folder):
        raise ExportError(f"{folder}: no such folder")
    return target


def export_jsonl(
    store: Store, rows: Iterable[int], path: str, mask: bool = True, wrappers: bool = False
) -> int:
    """Write events ``rows`` to ``path`` (one JSON object per line; with ``wrappers``, what
    each was read from: see :func:`wrapper_record`); returns how many were written. Events
    whose file is gone are skipped. Raises ExportError."""

    def lines() -> Iterator[bytes]:
        last = b""
        for i in rows:
            try:
                if wrappers:
                    line = inert_json(wrapper_record(store, int(i), mask))
                else:
                    line = event_json(store, int(i), mask)
            except EventGone:
                continue
            if wrappers and line == last:
                continue  # a record holding several events, once
            last = line
            yield line + b"\n"

    return _write(store, path, lines())


def export_raw(store: Store, events: Iterable[bytes], path: str, mask: bool = True) -> int:
    """Write events given as their JSON (a store's pages, streamed) to ``path`` as
    :func:`export_jsonl` writes them; returns how many were written. Raises ExportError."""

    def lines() -> Iterator[bytes]:
        for raw in events:
            yield event_line(raw, mask) + b"\n"

    return _write(store, path, lines())


def export_text(store: Store, path: str, text: str) -> None:
    """Write ``text`` (generated YAML, say) to ``path`` with the same care. Raises
    ExportError."""
    _write(store, path, iter([text.encode()]))


def _write(store: Store, path: str, chunks: Iterator[bytes]) -> int:
    """Write ``chunks`` to a temporary file beside ``path``, then rename it over ``path``;
    returns how many chunks were written."""
    target = check_target(store, path)
    folder = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".audittui-export-")
    except OSError as exc:
        raise ExportError(f"{folder}: {exc.strerror or exc}") from None
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += 1
        os.chmod(tmp, 0o600)  # audit events name users and resources
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ExportError(f"{target}: {exc.strerror or exc}") from None
    return written


def wrapper_record(store: Store, i: int, mask: bool) -> bytes:
    """Event ``i``'s wrapper as one JSON line (a record; a wrapped text line as the array of
    its lines), secrets masked when ``mask``; the event's own line when it has no wrapper."""
    wrapper = store.wrapper(i)
    if wrapper is None:
        raw = store.raw(i)
        return mask_raw(raw) if mask else raw
    return orjson.dumps(mask_wrapper_text(wrapper) if mask else wrapper)
