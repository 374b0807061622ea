"""A few selected events of a store read into a private in-memory store, for the Python engines
that must look inside events (a JMESPath ``where``, free text, a body, the roles behind an
authorizer's reason): only the rows a filter selects are fetched, never the table.

The rows are written in the order the shipper read them (by source, then byte offset), so that
what the engines break ties by (reading order) falls as over the files themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from ..index.loader import load
from ..index.store import Store
from ..ingest import scratch
from .reads import Reader, StoredEvent
from .sql import Where

# Rows per page: each page runs the whole filter again on the server (the keyset bounds only
# time), so pages are big; a page is a few MB of raw events.
FETCH_PAGE = 5_000


class Fetched:
    """``with Fetched(reader, where) as store:`` the selected events as a :class:`Store`
    (removed with its private folder on exit)."""

    def __init__(self, reader: Reader, where: Where) -> None:
        self.folder = scratch.make("store")
        self.store: Store | None = None
        try:
            self.store = self._fetch(reader, where)
        except BaseException:
            scratch.remove(self.folder)
            raise

    def _fetch(self, reader: Reader, where: Where) -> Store:
        sources: dict[str, int] = {}
        order: list[tuple[int, int, int, int]] = []  # (source, offset, position, length)
        fetched = os.path.join(self.folder, "fetched.jsonl")
        with open(fetched, "wb") as fh:
            pos = 0

            def write(events: Iterable[StoredEvent]) -> None:
                nonlocal pos
                for e in events:
                    line = e.raw + b"\n"
                    src = sources.setdefault(e.value("source") or "", len(sources))
                    order.append((src, int(e.value("offset") or 0), pos, len(line)))
                    fh.write(line)
                    pos += len(line)

            for page in reader.pages(where, size=FETCH_PAGE):
                write(page)
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
