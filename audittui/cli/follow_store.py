"""``audittui query --follow`` over a store URL: the existing matches, then every
:data:`~audittui.clickhouse.reads.FOLLOW_EVERY` what the shippers wrote since (the backend's
:meth:`~audittui.backend.protocol.Backend.newer`), until interrupted. A store that goes down is
said once and read again when it is back.
"""

from __future__ import annotations

import argparse
import time

from ..backend.protocol import Backend
from ..clickhouse.client import StoreError
from ..clickhouse.reads import FOLLOW_EVERY
from ..output.terminal import event_json, fail, stdout, table_header, table_row, warn
from .printed import Printed


def follow_backend(backend: Backend, args: argparse.Namespace) -> int:
    if args.format not in ("jsonl", "table"):
        return fail("--follow prints jsonl or table")
    out = stdout()
    if args.format == "table":
        out.line(table_header())
    mask = not args.reveal
    down = False
    try:
        while True:
            try:
                rows = backend.newer(args.query, None)
                page = Printed(rows)
                if args.format == "table":
                    out.chunks(table_row(page, i).encode() + b"\n" for i in range(len(rows)))
                else:
                    out.chunks(event_json(page, i, mask) + b"\n" for i in range(len(rows)))
                if down:
                    warn("{}: reachable again", backend.display)
                down = False
            except StoreError as exc:
                if not exc.retryable:
                    raise
                if not down:  # a store that stays down is said once, not at every poll
                    warn("{} (retrying)", str(exc).strip().splitlines()[0])
                down = True
            time.sleep(FOLLOW_EVERY)  # a poll interval, as tail -F's: nothing to await
    except KeyboardInterrupt:
        return 0
