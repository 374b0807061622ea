"""The event index: columnar, append-only, dictionary-encoded; raw JSON re-read by offset.

Per event the store keeps a source id, the byte offset and length of the line (or document)
that holds it, and numpy columns of numbers and codes into per-column tables of distinct
values. It never keeps a dict per event: :meth:`Store.event` re-reads and parses the original
bytes. Batches from any parser (bulk loader, follower) are merged with :meth:`Store.append`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import orjson

from ..ingest import audit_ids, deep
from ..ingest.batch import NUMBER_COLUMNS, STRING_COLUMNS, Batch
from ..ingest.formats import (
    MISSING_TIME,
    UNIQUE_FIELDS,
    UUID_ID,
    decode_line,
    expand,
    parse_json,
    wrappers_of,
)
from ..ingest.malformed import Capped
from ..ingest.packed import PackedStrings
from ..ingest.sources import Source, Spool
from .strings import Strings


class EventGone(LookupError):
    """The bytes of an indexed event are no longer on disk (its file was truncated in place)."""


class Malformed(NamedTuple):
    """A line that held no audit event, and why."""

    path: str
    line: int
    reason: str


# An event kept for comparing duplicates' JSON: its store index, or (while its own batch is
# merged) the batch and its position there.
_Held = tuple[Batch, int] | int


# A query field computed by an analysis (finding:, rule:): a predicate over the field's values
# → the matching event indices.
Derived = Callable[[Callable[[str], bool]], np.ndarray]

# A string column's distinct values (code → value, code 0 for "missing"): an arena for the
# near-unique columns, a list for the others.
TableValues = Strings | list[Any]


class Table:
    """Distinct values of one string column, code 0 meaning "missing": equal values share one
    code, so codes are identities. Low-cardinality columns keep a list and a dict; near-unique
    ones (auditID, URI, name, credential) a :class:`~audittui.index.strings.Strings` arena (a
    sequence too)."""

    __slots__ = ("values", "_index", "luts")

    def __init__(self, arena: bool = False) -> None:
        # An arena, or a list whose items are strings (tuples of them for groups and IPs)
        self.values: TableValues = Strings() if arena else [None]
        self._index: dict[Any, int] = {}
        # query term → which values match it, over a prefix of ``values`` (see evaluate.table_lut)
        self.luts: dict[Any, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.values)

    def codes_for(self, values: list[Any] | PackedStrings) -> np.ndarray:
        """Global codes for distinct batch-local values, prefixed with 0 for "missing".

        C-level passes (map over dict methods, or numpy over an arena's hashes): this runs in
        the parent while workers parse."""
        if isinstance(self.values, Strings):
            packed = values if isinstance(values, PackedStrings) else PackedStrings.of(values)
            return self.values.add(packed)
        index = self._index
        new = [v for v in values if v not in index]
        if new:
            start = len(self.values)
            index.update(zip(new, range(start, start + len(new)), strict=True))
            self.values.extend(new)
        out = np.zeros(len(values) + 1, dtype=np.int32)
        out[1:] = np.fromiter(map(index.__getitem__, values), dtype=np.int32, count=len(values))
        return out


class _AuditIdentity:
    """Dense identity codes for auditIDs, grown with the store: one per distinct UUID (found
    by its 128 bits in a sorted array of those seen) or per other spelling (its table code)."""

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self._keys = np.zeros(0, dtype=audit_ids.KEY)  # sorted
        self._key_ids = np.zeros(0, dtype=np.int64)
        self._code_ids = np.zeros(1, dtype=np.int64)  # canonical table code → id (0: none yet)
        self._next = 1
        self._lock = threading.Lock()

    def extend(self, store: Store, n: int) -> np.ndarray:
        with self._lock:
            done = len(self.ids)
            if n > done:
                self.ids = np.concatenate([self.ids, self._new(store, done, n)])
            return self.ids[:n]

    def _new(self, store: Store, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, dtype=np.int64)
        uuid = (store.column("flags")[a:b] & UUID_ID) != 0
        where = np.flatnonzero(uuid)
        if len(where):
            hi, lo = store.column("audit_hi")[a:b][where], store.column("audit_lo")[a:b][where]
            uniq, inverse = audit_ids.unique(hi, lo)
            ids = np.empty(len(uniq), dtype=np.int64)
            pos = np.searchsorted(self._keys, uniq)
            known = pos < len(self._keys)
            known[known] = self._keys[pos[known]] == uniq[known]
            ids[known] = self._key_ids[pos[known]]
            fresh = np.flatnonzero(~known)
            ids[fresh] = np.arange(self._next, self._next + len(fresh))
            self._next += len(fresh)
            self._keys = np.insert(self._keys, pos[fresh], uniq[fresh])
            self._key_ids = np.insert(self._key_ids, pos[fresh], ids[fresh])
            out[where] = ids[inverse.reshape(-1)]
        codes = store.column("audit_id")[a:b]
        other = np.flatnonzero(~uuid & (codes > 0))
        if len(other):
            mine = codes[other].astype(np.int64)
            if len(self._code_ids) <= int(mine.max()):
                grown = np.zeros(len(store.tables["audit_id"].values), dtype=np.int64)
                grown[: len(self._code_ids)] = self._code_ids
                self._code_ids = grown
            for c in np.unique(mine[self._code_ids[mine] == 0]).tolist():
                self._code_ids[c] = self._next
                self._next += 1
            out[other] = self._code_ids[mine]
        return out


class _Column:
    """A growable numpy array (amortised O(1) append of whole batches)."""

    __slots__ = ("data", "n")

    def __init__(self, dtype: Any) -> None:
        self.data = np.empty(1024, dtype=dtype)
        self.n = 0

    def reserve(self, capacity: int) -> None:
        if capacity > len(self.data):
            grown = np.empty(capacity, dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown

    def extend(self, values: np.ndarray, mapping: np.ndarray | None = None) -> None:
        """Append ``values`` (or ``mapping[values]``, gathered straight into place)."""
        need = self.n + len(values)
        if need > len(self.data):
            self.reserve(max(need, len(self.data) * 2))
        if mapping is None:
            self.data[self.n : need] = values
        else:
            np.take(
                mapping.astype(self.data.dtype, copy=False), values, out=self.data[self.n : need]
            )
        self.n = need

    def fit(self, largest: int) -> None:
        """Widen the dtype (int8 → int16 → int32) so that codes up to ``largest`` fit: a
        column of verbs or stages costs a byte an event, not four."""
        if largest > np.iinfo(self.data.dtype).max:
            wider = np.int16 if largest <= np.iinfo(np.int16).max else np.int32
            self.data = self.data.astype(wider)

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class Store:
    """All events read so far. Thread-safe for one writer and many readers."""

    def __init__(self) -> None:
        self.sources: list[Source] = []
        self.malformed: Capped[Malformed] = Capped()  # exact counts, a sample kept
        # Fields of the wrong type read as missing (the event kept): where, and what they were
        self.ignored: Capped[Malformed] = Capped()
        self.spool = Spool()
        self.tables = {name: Table(name in UNIQUE_FIELDS) for name in STRING_COLUMNS}
        self._numbers = {name: _Column(dtype) for name, dtype in NUMBER_COLUMNS.items()}
        # Codes start narrow and widen as their tables grow (see _Column.fit); near-unique
        # columns are int32 from the start.
        self._codes = {
            name: _Column(np.int32 if name in UNIQUE_FIELDS else np.int8) for name in STRING_COLUMNS
        }
        self._source_col = _Column(np.uint16)
        self._n = 0
        self._order: np.ndarray | None = None  # event indices in time order (see order())
        self._order_times = np.empty(0, dtype=np.int64)
        self._audit_ids = _AuditIdentity()
        # (auditID, stage, stageTimestamp) → the events held with them, when deduplicating
        self._seen: dict[tuple[Any, str | None, int], list[_Held]] = {}
        self.duplicates = 0  # identical events dropped
        self._lock = threading.Lock()
        self._handles: dict[int, int] = {}  # source → the file descriptor it reads
        # (source, offset) of the last few records looked at → their events, their wrappers
        self._containers: OrderedDict[tuple[int, int], list[dict]] = OrderedDict()
        self._wrappers: OrderedDict[tuple[int, int], list | None] = OrderedDict()
        # Query fields computed by analyses over the store (finding:): name → a function from
        # a predicate over the field's values to the matching event indices.
        self.derived: dict[str, Derived] = {}

    # -- building -------------------------------------------------------------------------

    def add_source(self, source: Source, fd: int | None = None) -> Source:
        """Register a source; ``fd`` (which the store then owns) pins the exact file, so that
        events stay readable after a live log is renamed or deleted by rotation."""
        with self._lock:  # the follower and the app's indexer add sources concurrently
            source.id = len(self.sources)
            self.sources.append(source)
            if fd is not None:
                self._handles[source.id] = fd
        return source

    def append(self, batch: Batch, first_line: int = 1, dedupe: bool = False) -> range:
        """Merge a batch; its malformed line numbers are shifted by ``first_line - 1``.

        With ``dedupe``, an event identical to one already held (same auditID, stage and
        stageTimestamp, and the same JSON: a file given twice, a retried webhook batch, a backup
        also read live) is dropped and counted in :attr:`duplicates`.
        """
        src = self.sources[batch.source]
        if src.server:
            batch = _with_server(batch, src.server)
        with self._lock:
            if dedupe:
                batch = self._without_duplicates(batch)
            start = self._n
            for name, col in self._numbers.items():
                col.extend(batch.numbers[name])
            for name, col in self._codes.items():
                table = self.tables[name]
                mapping = table.codes_for(batch.tables[name])
                col.fit(len(table.values) - 1)
                col.extend(batch.codes[name], mapping)
            self._source_col.extend(np.full(len(batch), batch.source, dtype=np.uint16))
            self._n += len(batch)
            self.add_records(src.path, batch.malformed, batch.ignored, first_line - 1)
        return range(start, self._n)

    def add_records(self, path: str, malformed: Capped, ignored: Capped, shift: int) -> None:
        """A batch's malformed lines and fields of the wrong type, their lines numbered in
        ``path`` (``shift`` lines before the batch's first)."""
        self.malformed.merge(malformed, lambda m: Malformed(path, m[0] + shift, m[1]))
        self.ignored.merge(ignored, lambda m: Malformed(path, m[0] + shift, m[1]))

    def _without_duplicates(self, batch: Batch) -> Batch:
        n = len(batch)
        ids = batch.codes["audit_id"].tolist()
        stages = batch.codes["stage"].tolist()
        id_values, stage_values = batch.tables["audit_id"], batch.tables["stage"]
        time, latency = batch.numbers["time"], batch.numbers["latency"]
        staged = np.where(latency >= 0, time + latency, time).tolist()
        uuid = (batch.numbers["flags"] & UUID_ID) != 0
        hi, lo = batch.numbers["audit_hi"].tolist(), batch.numbers["audit_lo"].tolist()
        uuids = list(zip(hi, lo, strict=True))
        keep = np.ones(n, dtype=bool)
        seen = self._seen
        added: list[tuple[tuple[Any, str | None, int], int]] = []
        for k in range(n):
            if not ids[k] and not uuid[k]:
                continue  # without an auditID nothing says two events are the same
            stage = stage_values[stages[k] - 1] if stages[k] else None
            key = (id_values[ids[k] - 1] if ids[k] else uuids[k], stage, staged[k])
            held = seen.setdefault(key, [])
            if any(self._same_json(h, batch, k) for h in held):
                keep[k] = False
            else:
                held.append((batch, k))
                added.append((key, k))
        # Kept events get their store index, for comparing later duplicates' JSON.
        positions = np.cumsum(keep) - 1 + self._n
        for key, k in added:
            held = seen[key]
            held[held.index((batch, k))] = int(positions[k])
        dropped = n - int(keep.sum())
        if not dropped:
            return batch
        self.duplicates += dropped
        return Batch(
            batch.source,
            {name: v[keep] for name, v in batch.numbers.items()},
            {name: v[keep] for name, v in batch.codes.items()},
            batch.tables,
            batch.malformed,
            batch.lines,
            batch.ignored,
        )

    def _same_json(self, held: _Held, batch: Batch, k: int) -> bool:
        """Is event k of ``batch`` the same JSON as the held one (an index, or an earlier
        event of the same batch)?"""
        mine = self._batch_raw(batch, k)
        if isinstance(held, tuple):
            return mine == self._batch_raw(held[0], held[1])
        return mine == self.raw(held)

    def _batch_raw(self, batch: Batch, k: int) -> bytes:
        n = batch.numbers
        return self._raw_at(
            batch.source, int(n["offset"][k]), int(n["length"][k]), int(n["item"][k])
        )

    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` events at once (saves regrowing while bulk loading);
        arenas grow in proportion to what they hold now (pages never written cost nothing)."""
        with self._lock:
            for col in (*self._numbers.values(), *self._codes.values(), self._source_col):
                col.reserve(capacity)
            if self._n:
                for name in UNIQUE_FIELDS:
                    arena = self.tables[name].values
                    assert isinstance(arena, Strings)  # near-unique columns keep arenas
                    arena.reserve(capacity / self._n)

    # -- columns --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def column(self, name: str) -> np.ndarray:
        """The numbers, or the codes, of one column for all events (a read-only view)."""
        if name == "source":
            return self._source_col.view()
        col = self._numbers.get(name) or self._codes[name]
        return col.view()

    def ids(self, name: str) -> np.ndarray:
        """Identity codes of a string column, one per event: two events hold equal values
        exactly when their ids are equal (0: the event lacks the field). Stable as the store
        grows, small (usable as an array index: below ``ids(name).max() + 1``).

        The codes themselves, but for auditIDs: UUIDs have no code (see
        :mod:`audittui.ingest.audit_ids`)."""
        if name == "audit_id":
            with self._lock:
                n = self._n
            return self._audit_ids.extend(self, n)
        return self.column(name)

    def group_numbers(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Dense group numbers of ``rows`` for a string column: equal exactly when the values
        are (0 for a missing value). Valid within this result only; cheaper than :meth:`ids`
        for a few rows of auditIDs, as only their own UUIDs are compared."""
        codes = self.column(name)[rows]
        out = np.zeros(len(rows), dtype=np.int64)
        if name == "audit_id":  # UUIDs by their 128 bits, the other spellings below
            uuid = (self.column("flags")[rows] & UUID_ID) != 0
            hi, lo = self.column("audit_hi")[rows][uuid], self.column("audit_lo")[rows][uuid]
            out[uuid] = audit_ids.unique(hi, lo)[1] + 1
            codes = np.where(uuid, 0, codes)
        present = np.flatnonzero(codes != 0)
        base = int(out.max(initial=0))
        out[present] = base + 1 + np.unique(codes[present], return_inverse=True)[1].reshape(-1)
        return out

    def values_at(self, name: str, rows: np.ndarray) -> list[Any]:
        """The values of a string column for ``rows`` (UUID auditIDs formatted at once)."""
        values, codes = self.tables[name].values, self.column(name)[rows]
        if isinstance(values, Strings):
            out = values.take(codes)
        else:
            out = [values[c] for c in codes.tolist()]
        if name == "audit_id":
            uuid = np.flatnonzero((self.column("flags")[rows] & UUID_ID) != 0)
            at = rows[uuid]
            texts = audit_ids.format_many(self.column("audit_hi")[at], self.column("audit_lo")[at])
            for k, text in zip(uuid.tolist(), texts.tolist(), strict=True):
                out[k] = text.decode()
        return out

    def same(self, name: str, i: int) -> np.ndarray:
        """The events whose value of a string column equals event ``i``'s (``i`` included;
        empty when it lacks one). For one event, cheaper than :meth:`ids` on a fresh store."""
        if name == "audit_id" and self._numbers["flags"].data[i] & UUID_ID:
            n = len(self)
            hi, lo = self.column("audit_hi")[:n], self.column("audit_lo")[:n]
            uuid = (self.column("flags")[:n] & UUID_ID) != 0
            return np.flatnonzero((hi == hi[i]) & (lo == lo[i]) & uuid)
        ids = self.ids(name)
        return np.flatnonzero(ids == ids[i]) if ids[i] else np.empty(0, dtype=np.int64)

    def value(self, name: str, i: int) -> Any:
        """One event's value of a column: a string, a tuple of strings, a number, or None."""
        if name == "audit_id" and self._numbers["flags"].data[i] & UUID_ID:
            hi, lo = self._numbers["audit_hi"].data[i], self._numbers["audit_lo"].data[i]
            return audit_ids.format_one(hi, lo)
        if name in self._codes:
            return self.tables[name].values[self._codes[name].data[i]]
        return self.column(name)[i].item()

    def order(self) -> np.ndarray:
        """All event indices sorted by event time (stable: ties keep reading order).

        Kept up to date incrementally: events appended since the last call are sorted among
        themselves and merged in (a live log mostly appends in time order), instead of
        sorting everything again."""
        with self._lock:
            n = self._n
            if self._order is not None and len(self._order) == n:
                return self._order
            times = self._numbers["time"].view()[:n]
            if self._order is None or not len(self._order):
                # the first sort: the sorted indices are the order itself
                self._order = np.argsort(times, kind="stable")
                self._order_times = times[self._order]
                return self._order
            done = len(self._order)
            new = np.arange(done, n, dtype=np.int64)
            self._order, self._order_times, _ = merge_by_time(
                self._order, self._order_times, new, times[done:n]
            )
            return self._order

    def snapshot(self) -> Snapshot:
        """The events held now, unaffected by appends that follow: for queries that run in
        another thread while the store grows."""
        return Snapshot(self, self._n)

    def time_range(self) -> tuple[int, int] | None:
        times = self.column("time")
        present = times[times != MISSING_TIME]
        if not len(present):
            return None
        return int(present.min()), int(present.max())

    # -- raw access -----------------------------------------------------------------------

    def pread(self, source: int, offset: int, length: int) -> bytes:
        """Bytes of a source as they are on disk."""
        if self.sources[source].gone:
            raise EventGone(f"{self.sources[source].path}: {self.sources[source].gone}")
        fd = self._handles.get(source)
        if fd is None:
            fd = self._handles[source] = os.open(self.sources[source].read_path, os.O_RDONLY)
        return os.pread(fd, length, offset)

    def pinned_path(self, source: int) -> str:
        """A path to exactly the file the store holds open for ``source``, even after it was
        renamed or deleted (valid in forked workers too)."""
        return f"/proc/self/fd/{self._handles[source]}"

    def _read(self, source: int, offset: int, length: int) -> bytes:
        data = self.pread(source, offset, length)
        return data[:-1] if data.endswith(b"\r") else data  # a CRLF line's CR is not JSON

    def _container(self, source: int, offset: int, length: int) -> list[dict]:
        """The events expanded from one line or document."""
        return _recent(
            self._containers,
            (source, offset),
            lambda: expand(decode_line(self._record(source, offset, length)))[0],
        )

    def _record(self, source: int, offset: int, length: int) -> bytes:
        """A line or document as read (a leading BOM left out)."""
        return self._read(source, offset, length).removeprefix(b"\xef\xbb\xbf")

    def _raw_at(self, source: int, offset: int, length: int, item: int) -> bytes:
        if item < 0:
            return self._read(source, offset, length)
        return orjson.dumps(self._container(source, offset, length)[item])

    def raw(self, i: int) -> bytes:
        """The event's own JSON text: its line as written, or re-serialised from a container."""
        n = self._numbers
        return self._raw_at(
            int(self._source_col.data[i]),
            int(n["offset"].data[i]),
            int(n["length"].data[i]),
            int(n["item"].data[i]),
        )

    def wrapper(self, i: int) -> Any:
        """What event ``i`` was read from, when that is more than the event (the CRI line,
        the GKE entry…; see :func:`formats.wrappers_of`); None for an event line as written."""
        n = self._numbers
        source, offset = int(self._source_col.data[i]), int(n["offset"].data[i])
        length = int(n["length"].data[i])
        holders = _recent(  # a document's, worked out once for all its events
            self._wrappers,
            (source, offset),
            lambda: wrappers_of(self._record(source, offset, length)),
        )
        item = max(0, int(n["item"].data[i]))
        return holders[item] if holders is not None and item < len(holders) else None

    def event(self, i: int, bounded: bool = False) -> dict:
        """The full original event as a dict (parsed from disk on demand; a copy to keep);
        ``bounded``: to be shown or written, members nested too deep for that opaque."""
        if not 0 <= i < self._n:
            raise IndexError(i)
        raw = self.raw(i)
        return parse_json(deep.bounded(raw) if bounded else raw)

    def close(self) -> None:
        for fd in self._handles.values():
            os.close(fd)
        self._handles.clear()
        self.spool.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recent(
    cache: OrderedDict[tuple[int, int], Any], key: tuple[int, int], compute: Callable[[], Any]
) -> Any:
    """``compute()`` for a record, remembered for the last few records: a document's events
    are looked at one after another."""
    if key not in cache:
        cache[key] = compute()
        if len(cache) > 8:
            cache.popitem(last=False)
    return cache[key]


def _with_server(batch: Batch, server: str) -> Batch:
    """The batch with its source's API server where its events name none."""
    table = list(batch.tables["server"])
    if server not in table:
        table.append(server)
    code = table.index(server) + 1
    codes = batch.codes["server"]
    filled = np.where(codes == 0, code, codes).astype(codes.dtype)
    return dataclasses.replace(
        batch, codes={**batch.codes, "server": filled}, tables={**batch.tables, "server": table}
    )


def merge_by_time(
    rows: np.ndarray, times: np.ndarray, new: np.ndarray, new_times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge events ``new`` (store indices above every one in ``rows``, in index order) into
    ``rows`` (sorted by ``times``, ties by index). Returns the new rows and times, and for each
    new event the position in the old rows it was inserted before. New arrays: callers may
    still hold the old ones."""
    order = np.argsort(new_times, kind="stable")
    new, new_times = new[order], new_times[order]
    if not len(rows) or not len(new) or new_times[0] >= times[-1]:
        positions = np.full(len(new), len(rows), dtype=np.int64)
        return np.concatenate([rows, new]), np.concatenate([times, new_times]), positions
    # A later event sorts after earlier ones of the same time: side="right".
    positions = np.searchsorted(times, new_times, side="right")
    return np.insert(rows, positions, new), np.insert(times, positions, new_times), positions


class Events(Protocol):
    """What reading code needs of events 0 to ``len - 1``: the interface :class:`Store`,
    :class:`Snapshot` and :class:`Window` share. Indices are the container's own (a window's
    count from its start); ``tables``, ``sources`` and ``derived`` are the whole store's."""

    def __len__(self) -> int: ...

    @property
    def tables(self) -> dict[str, Table]: ...

    @property
    def sources(self) -> list[Source]: ...

    @property
    def derived(self) -> dict[str, Derived]: ...

    def column(self, name: str) -> np.ndarray: ...

    def ids(self, name: str) -> np.ndarray: ...

    def raw(self, i: int) -> bytes: ...

    def pread(self, source: int, offset: int, length: int) -> bytes: ...


class _Over:
    """What a view of a store (:class:`Snapshot`, :class:`Window`) answers as the store does:
    no event indices in them (derived fields answer store indices)."""

    _store: Store | Snapshot

    @property
    def tables(self) -> dict[str, Table]:
        return self._store.tables

    @property
    def sources(self) -> list[Source]:
        return self._store.sources

    @property
    def derived(self) -> dict[str, Derived]:
        return self._store.derived

    def pread(self, source: int, offset: int, length: int) -> bytes:
        return self._store.pread(source, offset, length)


class Snapshot(_Over):
    """The first ``n`` events of a growing store, with the store's reading interface."""

    _store: Store

    def __init__(self, store: Store, n: int) -> None:
        self._store = store
        self._n = n

    def __len__(self) -> int:
        return self._n

    def column(self, name: str) -> np.ndarray:
        return self._store.column(name)[: self._n]

    def ids(self, name: str) -> np.ndarray:
        return self._store.ids(name)[: self._n]

    def order(self) -> np.ndarray:
        order = self._store.order()
        return order if len(order) == self._n else order[order < self._n]

    # The store's, for indices below n (append-only, so unaffected by later events).

    def raw(self, i: int) -> bytes:
        return self._store.raw(i)

    def event(self, i: int) -> dict[str, Any]:
        return self._store.event(i)

    def values_at(self, name: str, rows: np.ndarray) -> list[Any]:
        return self._store.values_at(name, rows)

    def group_numbers(self, name: str, rows: np.ndarray) -> np.ndarray:
        return self._store.group_numbers(name, rows)

    if not TYPE_CHECKING:  # anything else of the store, unchecked: declare what is used above

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)


class Window(_Over):
    """Events ``start`` to ``end`` of a store, with the store's reading interface and indices
    counted from ``start``: to run a query over only the events appended since last time."""

    def __init__(self, store: Store | Snapshot, start: int, end: int) -> None:
        self._store = store
        self.start = start
        self._end = end

    def __len__(self) -> int:
        return self._end - self.start

    def column(self, name: str) -> np.ndarray:
        return self._store.column(name)[self.start : self._end]

    def ids(self, name: str) -> np.ndarray:
        return self._store.ids(name)[self.start : self._end]

    def raw(self, i: int) -> bytes:
        return self._store.raw(self.start + i)

    if not TYPE_CHECKING:  # anything else of the store, unchecked: event indices there are
        # the store's, not the window's (order(), event(), values_at() would be wrong here)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)
