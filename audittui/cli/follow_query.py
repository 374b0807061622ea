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
from typing import BinaryIO

import numpy as np

from ..index.evaluate import evaluate
from ..index.loader import add_backup, read_sources
from ..index.store import Store
from ..ingest.batch import Batch
from ..ingest.follow import FileFollower, Follower, Notice, backups_before
from ..ingest.remote import Remote, open_remote
from ..ingest.remote.labels import Labelled, relabel, shown
from ..ingest.sources import (
    InputError,
    split_live,
)
from ..output.terminal import Out, event_json, fail, stdout, table_header, table_row, warn
from ..query.syntax import Node, QueryError, fields_of, parse


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
    try:
        paths, remote = open_remote(
            list(args.paths),
            ssh_command=args.ssh_command,
            sudo=args.sudo,
            follow=True,
            backups=args.backups,
        )
    except InputError as exc:
        return fail(str(exc))
    try:
        return _follow(args, node, paths, remote)
    finally:
        if remote is not None:
            remote.close()


def _follow(
    args: argparse.Namespace, node: Node | None, paths: list[str], remote: Remote | None
) -> int:
    store = Store()
    stop = threading.Event()
    stdin_done = threading.Event()
    if "-" in paths:
        # `kubectl logs -f … | audittui query -f -`: stdin is copied into the private spool,
        # which is followed like any file; when stdin ends and all is read, we are done.
        spooled, sink = store.spool.new_file("stdin")
        paths[paths.index("-")] = spooled
        threading.Thread(target=_copy_stdin, args=(sink, stdin_done), daemon=True).start()
    live = split_live(paths)
    folders = [p for p in paths if os.path.isdir(p)]
    follower = Follower(Labelled(store), live, poll=args.poll, folders=folders)
    if "-" in args.paths:
        spool_follower = follower.files[live.index(spooled)]
        threading.Thread(
            target=_stop_after_stdin, args=(spool_follower, stdin_done, stop), daemon=True
        ).start()
    first_batches, first_notices, _ = follower.read_once()  # opens the live files
    try:
        if any(os.path.isdir(p) for p in paths) or args.backups:
            start = len(store.sources)
            for path in backups_before(follower):
                add_backup(store, path)
            for source in store.sources[start:]:
                relabel(source)
            read_sources(store, store.sources[start:], dedupe=True)
            for source in store.sources[start:]:
                if source.bound:
                    warn("{}: {}", shown(source.path), source.bound)
    except InputError as exc:
        return fail(str(exc))

    out = stdout()
    if args.format == "table":
        out.line(table_header())
    mask = not args.reveal
    _print(out, store, node, np.arange(len(store)), args.format, mask)

    said: set[str] = set()

    def emit(batches: list[tuple[Batch, int]], notices: list[Notice]) -> None:
        for n in notices:
            if n.kind != "opened":
                warn("{}: {}: {}", shown(n.path), n.kind, n.detail)
        for problem in remote.problems() if remote is not None else ():
            if problem not in said:  # a file not read (its name), a rotation's end lost
                said.add(problem)
                warn("{}", problem)
        start = len(store)
        for batch, first_line in batches:
            store.append(batch, first_line, dedupe=True)
        _print(out, store, node, np.arange(start, len(store)), args.format, mask)

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


def _copy_stdin(sink: BinaryIO, done: threading.Event) -> None:
    try:
        with sink:
            while block := os.read(sys.stdin.fileno(), 1 << 16):
                sink.write(block)
                sink.flush()
    finally:
        done.set()


def _stop_after_stdin(follower: FileFollower, done: threading.Event, stop: threading.Event) -> None:
    done.wait()
    while not follower.caught_up() and not stop.is_set():
        stop.wait(0.02)
    stop.set()


def _print(
    out: Out, store: Store, node: Node | None, rows: np.ndarray, fmt: str, masked: bool
) -> None:
    """Print the matching events among ``rows``, in event-time order."""
    if not len(rows):
        return
    within = np.zeros(len(store), dtype=bool)
    within[rows] = True
    mask = within if node is None else evaluate(node, store, within) & within
    hits = np.flatnonzero(mask)
    hits = hits[np.argsort(store.column("time")[hits], kind="stable")]
    if fmt == "jsonl":
        out.chunks(event_json(store, i, masked) + b"\n" for i in hits.tolist())
    else:
        out.chunks(table_row(store, i).encode() + b"\n" for i in hits.tolist())
