"""``audittui query --follow``: the structured ``tail -F | grep``.

Existing matches first (rotated backups, then what the live files already hold), then new
matches as they are written, one flushed write per batch. Live files are read by the follower
from their start, so nothing written between the first read and the first wake-up is lost.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

import numpy as np

from .cli import fail, table_header, table_row, write_chunks
from .follow import Follower, Notice
from .loader import read_sources
from .query import QueryError, evaluate, fields_of, parse
from .sanitize import inert, inert_json
from .sources import (
    GZIP_MAGIC,
    InputError,
    Source,
    backup_key,
    explain,
    folder_files,
    open_source,
)
from .store import Store


def split_live(paths: list[str]) -> list[str]:
    """The files to follow. For a folder: its live logs, including those that its backups name
    (the live file may be missing for a moment during a rotation), else ``audit.log``."""
    live: list[str] = []
    for p in paths:
        if not os.path.isdir(p):
            live.append(p)  # a missing file is waited for
            continue
        names = set()
        for f in folder_files(Path(p)):
            key = backup_key(f.name)
            names.add(key[0] if key else f.name)
        live.extend(os.path.join(p, name) for name in sorted(names or {"audit.log"}))
    return live


def backups_before(follower: Follower) -> list[str]:
    """Backups that were rotated before the followers first opened their files, oldest first.

    Listed after the live files are open, so a rotation during start-up is either before
    (its backup is here) or after (the follower reads it): nothing falls in between."""
    once: list[str] = []
    for f in follower.files:
        for ts, gz, path in f.backups():
            if ts <= f.floor and not f.was_read(path, gz):
                once.append(path)
    return once


def _add_backup(path: str, store: Store) -> None:
    """Add a backup to the store holding it open at once: while we start, the API server's
    mill may gzip and delete a plain backup (then its .gz, complete by then, has the lines)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if not os.path.exists(path + ".gz"):
            raise InputError(f"{path}: vanished while starting") from None
        store.add_source(open_source(0, path + ".gz", store.spool))
        return
    except OSError as exc:
        raise InputError(explain(path, exc)) from None
    if os.pread(fd, 2, 0) == GZIP_MAGIC:
        os.close(fd)
        store.add_source(open_source(0, path, store.spool))
        return
    # Read through the descriptor: the name may be gone before the loader gets to it.
    store.add_source(Source(0, path, f"/proc/self/fd/{fd}"), fd=fd)


def follow_query(args: argparse.Namespace) -> int:
    if args.format not in ("jsonl", "table"):
        return fail("--follow prints jsonl or table")
    try:
        node = parse(args.query)
    except QueryError as exc:
        return fail(f"bad query: {exc}")
    if "finding" in fields_of(node):
        # A window rule can mark events already printed: follow with the app or cron instead.
        return fail("finding: cannot be followed; use `audittui findings` or the app")
    store = Store()
    stop = threading.Event()
    paths = list(args.paths)
    stdin_done = threading.Event()
    if "-" in paths:
        # `kubectl logs -f … | audittui query -f -`: stdin is copied into the private spool,
        # which is followed like any file; when stdin ends and all is read, we are done.
        spooled, sink = store.spool.new_file("stdin")
        paths[paths.index("-")] = spooled
        threading.Thread(target=_copy_stdin, args=(sink, stdin_done), daemon=True).start()
    live = split_live(paths)
    follower = Follower(store, live, poll=args.poll)
    if "-" in args.paths:
        spool_follower = follower.files[live.index(spooled)]
        threading.Thread(
            target=_stop_after_stdin, args=(spool_follower, stdin_done, stop), daemon=True
        ).start()
    first_batches, first_notices, _ = follower.read_once()  # opens the live files
    try:
        if any(os.path.isdir(p) for p in args.paths) or args.backups:
            start = len(store.sources)
            for path in backups_before(follower):
                _add_backup(path, store)
            read_sources(store, store.sources[start:], dedupe=True)
    except InputError as exc:
        return fail(str(exc))

    out = sys.stdout
    if args.format == "table":
        out.write(table_header())
    _print(store, node, np.arange(len(store)), args.format)

    def emit(batches: list, notices: list[Notice]) -> None:
        for n in notices:
            if n.kind != "opened":
                print(f"audittui: {inert(n.path)}: {n.kind}: {inert(n.detail)}", file=sys.stderr)
        start = len(store)
        for batch, first_line in batches:
            store.append(batch, first_line, dedupe=True)
        _print(store, node, np.arange(start, len(store)), args.format)

    try:
        emit(first_batches, first_notices)
        follower.run(emit, stop)
    except KeyboardInterrupt:
        stop.set()
    except BrokenPipeError:  # the reader went away (| head)
        stop.set()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.close()
    return 0


def _copy_stdin(sink, done: threading.Event) -> None:
    try:
        with sink:
            while block := os.read(sys.stdin.fileno(), 1 << 16):
                sink.write(block)
                sink.flush()
    finally:
        done.set()


def _stop_after_stdin(follower, done: threading.Event, stop: threading.Event) -> None:
    done.wait()
    while not follower.caught_up() and not stop.is_set():
        stop.wait(0.02)
    stop.set()


def _print(store: Store, node, rows: np.ndarray, fmt: str) -> None:
    """Print the matching events among ``rows``, in event-time order."""
    if not len(rows):
        return
    within = np.zeros(len(store), dtype=bool)
    within[rows] = True
    mask = within if node is None else evaluate(node, store, within) & within
    hits = np.flatnonzero(mask)
    hits = hits[np.argsort(store.column("time")[hits], kind="stable")]
    if fmt == "jsonl":
        write_chunks(sys.stdout, (inert_json(store.raw(i)) + b"\n" for i in hits.tolist()))
    else:
        write_chunks(sys.stdout, (table_row(store, i).encode() + b"\n" for i in hits.tolist()))
