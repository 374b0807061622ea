"""The receiver writing to a ClickHouse store (``audittui webhook --to URL``) instead of a spool.

A batch's event lines become the very rows ``audittui ship`` writes for the same events
(:func:`audittui.clickhouse.rows.encode`: the same columns, raw event and table key), with the
sender (the API server, by its client certificate or address) as ``server`` and
``webhook:SENDER`` as ``source``. One INSERT per batch; the answer is 200 only once the store
acknowledged it. A store down, restarting or slower than :data:`STORE_TIMEOUT` is a
:class:`StoreDown` (the receiver answers 429 with ``Retry-After``, and the API server sends the
batch again); since a timed-out INSERT may still land, a batch can reach the table twice, and
the table's key (a ReplacingMergeTree) keeps one row of each: counts are exact with ``FINAL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..clickhouse.client import Client, StoreError
from ..clickhouse.rows import encode
from ..ingest.formats import parse_json

# seconds an INSERT may take before the batch is answered 429: below the API server's webhook
# request timeout (30 s), so that it gets an answer it retries rather than a timeout
STORE_TIMEOUT = 20.0


class StoreDown(Exception):
    """The store cannot take the batch now (unreachable, restarting, busy, too slow)."""


class StoreRejected(Exception):
    """The store refused the batch for a reason a retry will not fix by itself (a schema
    changed under the receiver, a permission): answered 500, which the API server retries."""


class StoreSink:
    """Inserts batches of event lines through ``client``; ``observe(seconds)`` is told each
    INSERT's duration (successful or not). Thread-safe."""

    def __init__(
        self, client: Client, cluster: str, observe: Callable[[float], None] = lambda s: None
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.observe = observe
        self.down = False  # for one log line per outage, not one per batch
        self._lock = threading.Lock()

    @property
    def display(self) -> str:
        return self.client.target.display

    def rows(self, sender: str, lines: list[bytes]) -> bytes:
        """The JSONEachRow body for event lines (each ending in a newline), which it takes:
        each line is let go once its row is made, so the batch is not held twice. An event
        nested deeper than the decoders go, or holding a lone surrogate's escape, keeps its raw
        text as sent; its columns are read as the file reader reads them."""
        source = f"webhook:{sender}"
        out = bytearray()
        for k, line in enumerate(lines):
            lines[k] = b""
            raw = line.rstrip(b"\n")
            event = parse_json(raw)  # (as the file reader: deep members opaque, lone surrogates)
            row, _ = encode(event, raw, self.cluster, source, 0, sender)
            out += row
            out += b"\n"
        return bytes(out)

    def insert(self, sender: str, lines: list[bytes]) -> bool:
        """Insert the rows of ``lines``; True when this ended an outage (the store is back).
        Raises :class:`StoreDown` or :class:`StoreRejected`."""
        body = self.rows(sender, lines)
        if not body:
            return False
        t = time.perf_counter()
        try:
            self.client.insert(body)
        except StoreError as exc:
            self.observe(time.perf_counter() - t)
            if exc.retryable:
                raise StoreDown(str(exc)) from None
            raise StoreRejected(str(exc)) from None
        self.observe(time.perf_counter() - t)
        with self._lock:
            back, self.down = self.down, False
        return back

    def mark_down(self) -> bool:
        """Note the store down; True the first time since it last worked."""
        with self._lock:
            first, self.down = not self.down, True
        return first

    def close(self) -> None:
        self.client.close()
