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
from .query import QueryError, evaluate, parse
from .sanitize import inert, inert_json
from .sources import BACKUP_RE, InputError, backup_key, folder_files, open_source
from .store import Store


def split_live(paths: list[str], backups: bool) -> tuple[list[str], list[str]]:
    """(rotated backups to read once, oldest first; live files to follow)."""
    once: list[str] = []
    live: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for f in folder_files(Path(p)):
                (once if BACKUP_RE.match(f.name) else live).append(str(f))
        else:
            live.append(p)  # a missing file is waited for
            if backups and os.path.isdir(os.path.dirname(os.path.abspath(p))):
                folder = Path(os.path.abspath(p)).parent
                name = os.path.basename(p)
                once.extend(
                    str(f)
                    for f in folder_files(folder)
                    if (key := backup_key(f.name)) is not None and key[0] == name
                )
    return once, live


def follow_query(args: argparse.Namespace) -> int:
    if args.format not in ("jsonl", "table"):
        return fail("--follow prints jsonl or table")
    if "-" in args.paths:
        return fail("following standard input is not supported yet; pipe into a file instead")
    try:
        node = parse(args.query)
        once, live = split_live(args.paths, args.backups)
        store = Store()
        for path in once:
            store.add_source(open_source(0, path, store.spool))
        read_sources(store, list(store.sources))
    except QueryError as exc:
        return fail(f"bad query: {exc}")
    except InputError as exc:
        return fail(str(exc))

    out = sys.stdout
    if args.format == "table":
        out.write(table_header())
    _print(store, node, np.arange(len(store)), args.format)
    stop = threading.Event()

    def emit(batches: list, notices: list[Notice]) -> None:
        for n in notices:
            if n.kind != "opened":
                print(f"audittui: {inert(n.path)}: {n.kind}: {inert(n.detail)}", file=sys.stderr)
        start = len(store)
        for batch, first_line in batches:
            store.append(batch, first_line)
        _print(store, node, np.arange(start, len(store)), args.format)

    try:
        Follower(store, live, poll=args.poll).run(emit, stop)
    except KeyboardInterrupt:
        stop.set()
    except BrokenPipeError:  # the reader went away (| head)
        stop.set()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.close()
    return 0


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
