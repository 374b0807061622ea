"""``audittui ship PATH... --to URL``: logs into a ClickHouse store, exactly once.

The argparse definition and the run function; :mod:`audittui.cli.main` only wires them in.
Follows the paths (rotation, truncation, backups first) until SIGTERM or SIGINT, or with
``--once`` ships what is there now and exits. State changes (the store down, back, a file
rotated) are one line each on stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from ..clickhouse import checkpoint
from ..clickhouse.client import Client, StoreError, connect
from ..clickhouse.ship import BACKOFF_FIRST, BACKOFF_MAX, Options, ShipError, Shipper
from ..clickhouse.url import BadURL, Target, exposed, parse
from ..ingest.sources import InputError
from ..output.terminal import fail, warn
from .options import add_follow_options, add_to_option, at_least


def add_parser(sub: Any) -> None:
    s = sub.add_parser(
        "ship",
        help="ship logs into a ClickHouse store (follows them; exactly once across restarts)",
        description="Follow audit logs (rotation, truncation, backups first) and insert their "
        "events into a ClickHouse table, created when missing. A checkpoint per file, written "
        "once the store has acknowledged, makes a restart go on where it stopped: nothing lost, "
        "nothing doubled. While the store is down, the batch is kept and retried.",
    )
    s.add_argument("paths", nargs="+", metavar="PATH", help="log files or folders")
    add_to_option(s, "the store (its table is created when missing)", required=True)
    s.add_argument("--cluster", default="", metavar="NAME", help="the cluster column's value")
    s.add_argument("--once", action="store_true", help="ship what is there now, then exit")
    s.add_argument(
        "--state",
        metavar="DIR",
        help="the checkpoint folder (default: $XDG_STATE_HOME/audittui/ship/<hash>)",
    )
    s.add_argument(
        "--batch",
        type=at_least(1),
        default=20_000,
        metavar="N",
        help="events per insert, about (default 20000)",
    )
    add_follow_options(s)


def run(args: argparse.Namespace) -> int:
    try:
        target = parse(args.to)
    except BadURL as exc:
        return fail(f"ship: {exc}")
    cluster = args.cluster or target.cluster
    state_dir = args.state or checkpoint.default_dir(target.display, args.paths)
    folders = {os.path.realpath(p) for p in args.paths if os.path.isdir(p)}
    folders |= {os.path.dirname(os.path.realpath(p)) for p in args.paths if not os.path.isdir(p)}
    if os.path.realpath(state_dir) in folders:
        return fail(f"ship: --state {state_dir}: a log folder; keep the checkpoint elsewhere")
    if not args.once:
        missing = [p for p in args.paths if not os.path.exists(os.path.dirname(p) or ".")]
        if missing:
            return fail(f"ship: {missing[0]}: no such folder")
    elif not all(os.path.exists(p) for p in args.paths):
        return fail(f"ship: {next(p for p in args.paths if not os.path.exists(p))}: no such file")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        client = _connect(target, args.once, stop)
    except StoreError as exc:
        return fail(f"ship: {exc}")
    if client is None:  # stopped while waiting for the store
        return 0
    if (warning := exposed(target)) is not None:  # once it worked: a failure stays one line
        warn("ship: {}", warning)
    options = Options(
        paths=list(args.paths),
        cluster=cluster,
        once=args.once,
        state_dir=state_dir,
        batch=args.batch,
        backups=args.backups,
        poll=args.poll,
        recursive=args.recursive,
    )
    shipper = Shipper(client, options, say=lambda text: warn("ship: {}", text))
    try:
        shipper.open_state()
        totals = shipper.run(stop)
    except (ShipError, InputError, StoreError) as exc:
        return fail(f"ship: {exc}")
    finally:
        shipper.close()
        client.close()
    if args.once and not totals.read and not totals.resumed:
        bad = f" ({totals.malformed:,} malformed lines)" if totals.malformed else ""
        return fail(f"ship: {', '.join(args.paths)}: no audit event read{bad}")
    skipped = f", {totals.skipped:,} already stored" if totals.skipped else ""
    bad = f"; {totals.malformed:,} malformed lines not shipped" if totals.malformed else ""
    warn(
        "ship: {:,} events into {} from {:,} file(s){}{}",
        totals.events,
        target.display,
        totals.files,
        skipped,
        bad,
    )
    return 0


def _connect(target: Target, once: bool, stop: threading.Event) -> Client | None:
    """The store's client, its table made or checked. Following (not ``--once``), a store that
    cannot be reached yet is waited for, as one that goes away later is: said once, retried
    with backoff (None when stopped meanwhile). Anything else raises StoreError."""
    delay, said = BACKOFF_FIRST, False
    while True:
        try:
            client = connect(target)
        except StoreError as exc:
            if once or not exc.retryable:
                raise
            if not said:
                warn("ship: {}; retrying until it answers", str(exc))
                said = True
            if stop.wait(delay):
                return None
            delay = min(delay * 2, BACKOFF_MAX)
            continue
        try:
            client.ensure_table()
        except BaseException:
            client.close()
            raise
        if said:
            warn("ship: ClickHouse at {} is back; shipping", target.display)
        return client
