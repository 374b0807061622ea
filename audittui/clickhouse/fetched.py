"""A few selected events of a store read into a private in-memory store, for the Python engines
that must look inside events (a JMESPath ``where``, free text, a body, the roles behind an
authorizer's reason): only the rows a filter selects are fetched, never the table.

The rows are written in the order the shipper read them (by source, then byte offset), so that
what the engines break ties by (reading order) falls as over the files themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..index.loader import load
from ..index.store import Store
from ..ingest import scratch
from .reads import Reader
from .sql import Where

# Rows per batch: a batch is a range of time (the primary key narrows its read to that range's
# granules), found from the selected rows' times; a batch is some 100 MB of raw events.
FETCH_BATCH = 100_000


class Fetched:
    """``with Fetched(reader, where) as store:`` the selected events as a :class:`Store`
    (removed with its private folder on exit)."""

    def __init__(self, reader: Reader, where: Where, at_most: int | None = None) -> None:
        """``at_most``: a bound the caller knows on the rows selected (then, when it is at
        most one batch, the scan for the batches' bounds is spared)."""
        self.folder = scratch.make("store")
        self.store: Store | None = None
        try:
            self.store = self._fetch(reader, where, at_most)
        except BaseException:
            scratch.remove(self.folder)
            raise

    def _fetch(self, reader: Reader, where: Where, at_most: int | None) -> Store:
        sources: dict[str, int] = {}
        order: list[tuple[int, int, int, int]] = []  # (source, offset, position, length)
        fetched = os.path.join(self.folder, "fetched.jsonl")
        with open(fetched, "wb") as fh:
            pos = 0

            for row in _selected(reader, where, at_most):
                line = str(row["raw"]).encode("utf-8", "surrogatepass") + b"\n"
                src = sources.setdefault(str(row["source"]), len(sources))
                order.append((src, int(row["offset"]), pos, len(line)))
                fh.write(line)
                pos += len(line)
        names = sorted(sources)  # sources by name: the order a shipper given them reads them
        rank = np.array([names.index(s) for s in sources] or [0], dtype=np.int64)
        table = np.array(order, dtype=np.int64).reshape(-1, 4)
        ranked: list[int] = (
            np.lexsort((table[:, 1], rank[table[:, 0]])).tolist() if len(table) else []
        )
        path = os.path.join(self.folder, "audit.log")
        with open(fetched, "rb") as src_fh, open(path, "wb") as fh:
            for k in ranked:
                fh.write(os.pread(src_fh.fileno(), int(table[k, 3]), int(table[k, 2])))
        os.unlink(fetched)
        return load(path)

    def __enter__(self) -> Store:
        assert self.store is not None
        return self.store

    def __exit__(self, *_: object) -> None:
        if self.store is not None:
            self.store.close()
        scratch.remove(self.folder)


def _selected(reader: Reader, where: Where, at_most: int | None) -> Iterator[dict[str, Any]]:
    """The selected rows' source, offset and raw text, in batches of about FETCH_BATCH rows:
    one scan finds the times that bound the batches (the rows as stored: only bounds), then
    each batch is read within its range of time (once each, copies collapsed as reads do)."""
    stored, params = reader._from(where, final=False)
    if at_most is not None and at_most <= FETCH_BATCH:
        source, params = reader._from(where)
        yield from reader.client.rows(f"SELECT source, offset, raw {source}", params)
        return
    times = [
        int(r["time"]) for r in reader.client.rows(f"SELECT time {stored} ORDER BY time", params)
    ]
    bounds: list[int] = []  # each batch starts at a time later than the previous one's
    for k in range(FETCH_BATCH, len(times), FETCH_BATCH):
        if times[k] > (bounds[-1] if bounds else times[0]):
            bounds.append(times[k])
    source, params = reader._from(where)
    for lo, hi in zip([None, *bounds], [*bounds, None], strict=True):
        batch = dict(params)
        sql = f"SELECT source, offset, raw {source}"
        if lo is not None:
            sql += " AND time >= {lo_:Int64}"
            batch["lo_"] = lo
        if hi is not None:
            sql += " AND time < {hi_:Int64}"
            batch["hi_"] = hi
        yield from reader.client.rows(sql, batch)
