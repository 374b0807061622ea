"""The reads the CLI and the app make of a store: counts, pages of events by keyset, one event by
key, summaries and the histogram computed by the server, stats, and new rows for live follow.

Every read is exact as if ``FROM table FINAL``: the ReplacingMergeTree keeps one row per key
only once its parts are merged, and FINAL makes a read exact before that (used only while the
table holds copies). Filters are :class:`.sql.Where` (``reader.where(text)`` compiles the query
language; a store URL's ``?cluster=NAME`` limits every read to that cluster). Pages follow the
table's sort key (time, audit_id, stage, stage_time, digest) with a keyset condition, never an
OFFSET, so the millionth page costs what the first does. A table of schema version 1 (``nokey``
in place of ``digest``) is read too.

What the server answers is checked as it is read: rows of the shape asked for (an event's
columns by their types), no more rows than the query's LIMIT, histogram buckets within the
range asked; anything else is a one-line :class:`.client.StoreError`.

Usage::

    with open_reader("clickhouse://127.0.0.1:8123/default") as reader:
        where = reader.where("verb:delete ns:prod")
        total = reader.count(where)
        first = reader.page(where, limit=100)
        more = reader.page(where, after_key=first[-1].key, limit=100)
        rows = list(reader.summary("user", where, top=100))  # as summarize gives them
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import numpy as np
import orjson

from ..analyses.histogram import STEPS, Histogram
from ..analyses.latency import LONG_SUBRESOURCES, LONG_VERBS, QUANTILES
from ..analyses.summary import GROUPINGS, Summary
from ..ingest.formats import MISSING_TIME, format_time
from ..ingest.schema import FINAL_STAGES
from ..query.syntax import parse
from . import schema
from .client import Client, StoreError, connect, schema_difference
from .sql import _GRANT_LABELS, PRESENT_TIME, Where, compile_node
from .url import parse as parse_url

Key = tuple[int, str, str, int, str]  # (time, audit_id, stage, stage_time, digest): schema.KEY
ZERO_DIGEST = "00000000-0000-0000-0000-000000000000"  # the least digest (a version 1 table: "0")
PAGE = 500
SOURCES = 100_000  # source files a store may name (stats): more is a broken answer
FOLLOW_EVERY = 1.0  # s between the polls of a follow (the app's and query --follow's)
# µs before the newest event seen that a follow's poll reads again: shippers write in batches,
# several of them, so a row may land after newer ones (its key sorts before the newest seen)
LATE = 60_000_000


def late_key(newest: int) -> Key:
    """The key just before the stretch a follow's poll reads again (:data:`LATE` before the
    newest time seen): a keyset page after it holds the late rows and the new ones."""
    return (newest - LATE - 1, "", "", MISSING_TIME, ZERO_DIGEST)


_ARRAYS = {"groups", "ips"}
_NOT_NULL = {"stage", "audit_id", "cluster", "source"}  # "" there means absent


@dataclass(frozen=True)
class StoredEvent:
    """One row: its key, its columns (as the table holds them, checked by type) and its raw
    JSON."""

    key: Key
    columns: Any  # a msgspec Struct with the table's columns as attributes
    raw: bytes

    def value(self, name: str) -> Any:
        """A column as :meth:`audittui.index.store.Store.value` gives it."""
        return column_value(self.columns, name)

    def event(self) -> Any:
        """The event as a dict (parsed from the raw JSON)."""
        return orjson.loads(self.raw)


def column_value(columns: Any, name: str) -> Any:
    """A column of a read row as :meth:`audittui.index.store.Store.value` gives it: None for a
    missing string (or a column not read), a tuple for groups and IPs (None when empty),
    numbers as they are."""
    v = getattr(columns, name, None)
    if name in _ARRAYS:
        return tuple(v) if v else None
    if name in _NOT_NULL and v == "":
        return None
    return v


_PYTHON = {
    "Int64": int,
    "Int32": int,
    "UInt8": int,
    "UInt64": int,
    "String": str,
    "UUID": str,
    "Nullable(String)": str | None,
    "Array(String)": list[str],
}


def _row_type(columns: Sequence[tuple[str, str]], name: str) -> type[msgspec.Struct]:
    """A Struct for a row of the table: every column required and typed (raw may be left
    out of a read)."""
    fields: list[Any] = [(n, _PYTHON[kind]) for n, kind in columns if n != "raw"]
    return msgspec.defstruct(name, [*fields, ("raw", str, "")])


@functools.cache
def _narrow_row(row: type[msgspec.Struct], columns: tuple[str, ...]) -> type[msgspec.Struct]:
    """A Struct of some of ``row``'s columns, typed as there (raw, if among them, may be
    left out of a read, as in ``row``)."""
    hints = {f: t for f, t in zip(row.__struct_fields__, _field_types(row), strict=True)}
    fields: list[Any] = [(c, hints[c]) for c in columns if c != "raw"]
    return msgspec.defstruct(f"{row.__name__}Of", [*fields, ("raw", str, "")])


def _field_types(row: type[msgspec.Struct]) -> list[Any]:
    return [f.type for f in msgspec.structs.fields(row)]


_ROWS = {False: _row_type(schema.COLUMNS, "Row"), True: _row_type(schema.LEGACY_COLUMNS, "Row1")}
_T = TypeVar("_T")


def _answered(method: Callable[..., _T]) -> Callable[..., _T]:
    """A read whose rows lack a field or hold one of another type (a broken or hostile
    server) raises :class:`StoreError`, not whatever Python meets first."""

    @functools.wraps(method)
    def read(self: Reader, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            where = self.client.target.display
            raise StoreError(f"{where} answered rows of another shape ({exc!r:.80})") from None

    return read


def open_reader(url: str) -> Reader:
    """A :class:`Reader` on a store URL (:class:`.client.StoreError` or
    :class:`.url.BadURL` when it cannot be reached or read)."""
    target = parse_url(url)
    return Reader(connect(target), target.cluster)  # the reader closes the client, also failing


class Reader:
    """The reads of one store over a connected :class:`.client.Client` (which it closes)."""

    legacy: bool  # a version 1 table (read, not written)
    _digest: tuple[str, str]  # the key's last column and its type
    _row: type[msgspec.Struct]  # a row of the table
    _key_row: type[msgspec.Struct]  # a row of the key's columns only

    def __init__(self, client: Client, cluster: str = "") -> None:
        self.client = client
        self.cluster = cluster
        self.modern = _major(client.version) >= 22
        self._lock = threading.Lock()
        self._checked = (-1, True)  # (stored rows, held copies then): asked again on a change
        try:
            self._check_table()
        except BaseException:
            client.close()
            raise

    def _check_table(self) -> None:
        """Which schema the table has (this one, or version 1: read, not written); a store
        without the table, or with a table of another schema, raises StoreError."""
        client, target = self.client, self.client.target
        found = client.columns()
        if not found:
            raise StoreError(
                f"no table {target.database}.{target.table} at {target.display} "
                "(`audittui ship … --to URL` or `audittui webhook --to URL` creates it)"
            )
        self.legacy = found == list(schema.LEGACY_COLUMNS)  # version 1: read, not written
        if found != list(schema.COLUMNS) and not self.legacy:
            raise StoreError(
                f"table {target.database}.{target.table} has another schema: "
                f"{schema_difference(found, list(schema.COLUMNS))}"
            )
        self._digest = ("nokey", "UInt64") if self.legacy else ("digest", "UUID")
        self._row = _ROWS[self.legacy]
        key_columns = tuple(k for k, _ in self._key_types())
        self._key_row = _narrow_row(self._row, key_columns)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- filters ---------------------------------------------------------------------------

    def where(self, query: str = "", now: float | None = None) -> Where:
        """A query compiled for this server (QueryError, SqlError as compile_query raises)."""
        return compile_node(parse(query, now=now), modern=self.modern)

    def _from(
        self, where: Where | str | None, final: bool | None = None
    ) -> tuple[str, dict[str, Any]]:
        """``FROM t [FINAL] WHERE …`` and its parameters. ``final`` False: the rows as stored,
        a resent one twice; True: collapsed by key; None: collapsed if the table holds copies."""
        if final is None:
            final = self._holds_copies()
        if where is None:
            where = Where("1")
        elif isinstance(where, str):
            where = self.where(where)
        sql, params = f"({where.sql})", dict(where.params)  # callers append " AND …"
        if self.cluster:
            sql = f"({sql}) AND cluster = {{cluster_:String}}"
            params["cluster_"] = self.cluster
        return f"FROM {self.client.table}{' FINAL' if final else ''} WHERE {sql}", params

    def stored(self) -> tuple[int, bool]:
        """(rows stored, whether some of them are copies), from the table's row count (no
        scan) and, when that changed since last asked, one count of it collapsed. Rows
        only arrive by an insert and leave by the merge of copies, so the same count with
        no copies held means that nothing arrived (a follow's cheap question)."""
        copies = self._holds_copies()
        return self._checked[0], copies

    def _holds_copies(self) -> bool:
        """Whether some row is stored twice (a batch resent after a crash, before the merge
        that collapses it). FINAL is one single-threaded merge on old servers (35 s for a
        summary of 10M rows on 18.16, against a few without it), so it is used only when
        copies exist: counted again only when the number of stored rows changes."""
        with self._lock:
            table = self.client.table
            stored = int(self.client.one(f"SELECT count() AS n FROM {table}")["n"])
            if stored != self._checked[0]:
                kept = int(self.client.one(f"SELECT count() AS n FROM {table} FINAL")["n"])
                self._checked = (stored, kept != stored)
            return self._checked[1]

    # -- reads -----------------------------------------------------------------------------

    @_answered
    def count(self, where: Where | str | None = None) -> int:
        source, params = self._from(where)
        return int(self.client.one(f"SELECT count() AS n {source}", params)["n"])

    @_answered
    def page(
        self,
        where: Where | str | None = None,
        after_key: Key | None = None,
        limit: int = PAGE,
        descending: bool = False,
        raw: bool = True,
    ) -> list[StoredEvent]:
        """Up to ``limit`` events in key order (time first) after ``after_key`` (before it
        when ``descending``: the list read from its end)."""
        if isinstance(where, str):
            where = self.where(where)  # compiled once for both queries below
        source, params = self._from(where, final=True)  # within the span only: cheap
        stored, _ = self._from(where, final=False)
        if after_key is not None:
            keyset = " AND " + self._keyset(after_key, "<" if descending else ">", params)
            source, stored = source + keyset, stored + keyset
        way = "DESC" if descending else "ASC"
        order = ", ".join(f"`{k}` {way}" for k, _ in self._key_types())
        columns = self._columns(raw)
        want = int(limit)
        while True:
            # The page's time span first, from the time column of the rows as stored (FINAL
            # over the whole table is one slow merge on 18.16); then the page itself, FINAL
            # within that span only, which the primary index narrows to a few granules.
            span = self.time_span(stored, way, want, params)
            if span is None:
                return []
            n, params["lo_"], params["hi_"] = span
            params["limit_"] = int(limit)
            sql = (
                f"SELECT {columns} {source} AND time >= {{lo_:Int64}} AND time <= {{hi_:Int64}} "
                f"ORDER BY {order} LIMIT {{limit_:UInt64}}"
            )
            rows = [self._stored(r) for r in self.client.structs(sql, params, self._row, limit)]
            # Short only because resent copies filled the span: widen it and ask again.
            if len(rows) >= limit or n < want:
                return rows
            want *= 2

    def time_span(
        self, stored: str, way: str, want: int, params: dict[str, Any]
    ) -> tuple[int, int, int] | None:
        """(rows, lo, hi): how many of the next ``want`` rows of ``stored`` (a FROM … WHERE of
        the rows as stored) in ``way`` (ASC, DESC) time order there are, and the span of their
        times; None when there are none."""
        params["span_"] = want
        span = self.client.one(
            f"SELECT count() AS n, min(time) AS lo, max(time) AS hi FROM (SELECT time "
            f"{stored} ORDER BY time {way} LIMIT {{span_:UInt64}})",
            params,
        )
        n = int(span["n"])
        return (n, int(span["lo"]), int(span["hi"])) if n else None

    def pages(
        self, where: Where | str | None = None, size: int = PAGE, raw: bool = True
    ) -> Iterator[list[StoredEvent]]:
        """Every matching event, page by page in key order."""
        key: Key | None = None
        while True:
            rows = self.page(where, after_key=key, limit=size, raw=raw)
            if not rows:
                return
            yield rows
            if len(rows) < size:
                return
            key = rows[-1].key

    @_answered
    def in_time_order(
        self, where: Where | str | None, columns: Sequence[str], limit: int | None = None
    ) -> list[Any]:
        """The matching events (up to ``limit``) in time order, ties in the order the
        shippers read them (source, then byte offset), as the in-memory engine selects them:
        rows (msgspec Structs, read with :func:`column_value`) of only ``columns`` (raw
        among them if asked), in one statement. For the few rows a filter narrows to (an
        object's history), never a listing: their rows lie in most of the table's granules,
        so every column read is one read across the table, and only the ones asked are.
        Copies collapse by key among the selected rows (LIMIT 1 BY), never by a FINAL."""
        if isinstance(where, str):
            where = self.where(where)
        source, params = self._from(where, final=False)
        fields = self._row.__struct_fields__
        unknown = [c for c in columns if c not in fields]
        if unknown:
            raise ValueError(f"no column {unknown[0]!r}")
        row = _narrow_row(self._row, tuple(columns))
        names = ", ".join(f"`{n}`" for n in columns)
        sql = f"SELECT {names} {source} ORDER BY `time`, `source`, `offset`"
        if self._holds_copies():
            sql += " LIMIT 1 BY " + ", ".join(f"`{k}`" for k, _ in self._key_types())
        if limit is not None:
            params["limit_"] = int(limit)
            sql += " LIMIT {limit_:UInt64}"
        return list(self.client.structs(sql, params, row, limit))

    @_answered
    def keys_after(self, where: Where | str | None, after_key: Key) -> list[Key]:
        """The keys of the matching rows after ``after_key``, in no order, copies once: a
        follow's stretch of what is already shown, read in one statement of the key's
        columns (no page of events)."""
        if isinstance(where, str):
            where = self.where(where)
        source, params = self._from(where, final=False)
        source += " AND " + self._keyset(after_key, ">", params)
        names = ", ".join(f"`{k}`" for k, _ in self._key_types())
        rows = self.client.structs(f"SELECT DISTINCT {names} {source}", params, self._key_row)
        return [self._stored(r).key for r in rows]

    @_answered
    def event(self, key: Key) -> StoredEvent | None:
        """The event with this key (None when the store holds none)."""
        source, params = self._from(None, final=False)  # a copy is the same row: LIMIT 1
        types = self._key_types()
        cond = " AND ".join(f"`{k}` = {_holder(f'key_{n}', t)}" for n, (k, t) in enumerate(types))
        params.update({f"key_{n}": v for n, v in enumerate(self._key_params(key))})
        sql = f"SELECT {self._columns(True)} {source} AND {cond} LIMIT 1"
        rows = list(self.client.structs(sql, params, self._row, limit=1))
        return self._stored(rows[0]) if rows else None

    @_answered
    def stats(self) -> dict[str, Any]:
        """``{events, first, last, files, clusters, servers}`` as ``audittui stats`` shows them
        (files: the sources the shipper named, sorted)."""
        source, params = self._from(None)
        row = self.client.one(
            f"SELECT count() AS n, countIf({PRESENT_TIME}) AS timed, "
            f"minIf(time, {PRESENT_TIME}) AS lo, maxIf(time, {PRESENT_TIME}) AS hi, "
            "groupUniqArray(source) AS files, groupUniqArray(cluster) AS clusters "
            f"{source}",
            params,
        )
        timed = int(row["timed"])
        return {
            "events": int(row["n"]),
            "first": format_time(int(row["lo"])) if timed else None,
            "last": format_time(int(row["hi"])) if timed else None,
            "files": sorted(_strings(row["files"])),
            "clusters": sorted(c for c in _strings(row["clusters"]) if c),
        }

    @_answered
    def time_range(self, where: Where | str | None = None) -> tuple[int, int] | None:
        source, params = self._from(where)
        row = self.client.one(
            f"SELECT countIf({PRESENT_TIME}) AS timed, minIf(time, {PRESENT_TIME}) AS lo, "
            f"maxIf(time, {PRESENT_TIME}) AS hi {source}",
            params,
        )
        return (int(row["lo"]), int(row["hi"])) if int(row["timed"]) else None

    @_answered
    def histogram(self, where: Where | str | None, buckets: int) -> Histogram | None:
        """:func:`audittui.analyses.histogram.histogram` computed by the server: the same
        step, start and counts."""
        span = self.time_range(where)
        if span is None or buckets < 1:
            return None
        lo, hi = span
        step = next((s for s in STEPS if (hi // s - lo // s) < buckets), None)
        if step is None:  # as analyses.histogram: a step in whole days
            step = -(-(hi - lo + 1) // buckets // (86400 * 1_000_000)) * 86400 * 1_000_000
        start = lo // step * step
        n = (hi - start) // step + 1  # the buckets the span covers: an answer's bound
        source, params = self._from(where)
        params.update(start_=start, step_=step)
        sql = (
            "SELECT intDiv(time - {start_:Int64}, {step_:Int64}) AS b, count() AS total, "
            "countIf(code = 403) AS forbidden, "
            "countIf(code >= 400 AND code < 500 AND code != 403) AS client, "
            f"countIf(code >= 500) AS server {source} AND {PRESENT_TIME} GROUP BY b"
        )
        out = {k: np.zeros(n, dtype=np.int64) for k in ("total", "forbidden", "client", "server")}
        for r in self.client.rows(sql, params, limit=n):
            b = int(r["b"])
            if not 0 <= b < n:
                raise ValueError(f"bucket {b} outside 0..{n - 1}")
            for k, arr in out.items():
                arr[b] = int(r[k])
        return Histogram(start, step, out["total"], out["forbidden"], out["client"], out["server"])

    @_answered
    def summary(
        self,
        by: str = "user",
        where: Where | str | None = None,
        top: int | None = None,
        latency: bool = False,
    ) -> Summary:
        """:func:`audittui.analyses.summary.summarize` computed by the server: the same rows
        and fields in the same order, all of them (streamed as the server sends them: iterate
        once) or the ``top`` N (a list) with the rest counted by the server. Ties (equal
        counts; the most frequent IP; verbs of equal count) are broken by the key's text here,
        by reading order in memory. One scan on 22.x and later (:func:`_summary_one_scan`),
        three joined on 18.16 (:func:`_summary_joined`); nothing is held here per key."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot summarise by {by!r}; choose one of {', '.join(GROUPINGS)}")
        key, label = _group_key(by)
        source, params = self._from(where)
        percentile = ", ".join(
            f"if(length(lat) > 0, lat[toUInt64(greatest(ceil({q} * length(lat)), 1))], -1) AS p{k}"
            for k, q in enumerate(QUANTILES)
        )
        order = "p1 DESC, events DESC, label ASC" if latency else "events DESC, label ASC"
        limit = ""
        if top is not None:
            params["top_"] = max(int(top), 0)
            limit = " LIMIT {top_:UInt64}"
        # The columns every shape shares: one GROUP BY over the selection
        columns = (
            f"{label} AS label, count() AS events, "
            f"countIf({PRESENT_TIME}) AS timed, minIf(time, {PRESENT_TIME}) AS lo, "
            f"maxIf(time, {PRESENT_TIME}) AS hi, "
            "countIf(code = 403) AS forbidden, countIf(code >= 400 AND code != 403) AS errors, "
            # ifNull: 18.16 answers NULL, not 0, for a group whose values are all NULL
            "ifNull(uniqExactIf(resource, resource IS NOT NULL), 0) AS resources, "
            "ifNull(uniqExactIf(namespace, namespace IS NOT NULL), 0) AS namespaces, "
            # the sorted latencies stay on the server: only their length and ranks come back
            f"length(arraySort(groupArrayIf(latency, {_REQUEST})) AS lat) AS requests, "
            f"if(requests > 0, lat[-1], -1) AS top, {percentile}"
        )
        having = " HAVING requests > 0" if latency else ""
        weight = "requests" if latency else "events"
        if self.modern:
            sql = _summary_one_scan(columns, key, source, having, order, limit, weight)
        else:
            sql = _summary_joined(columns, key, label, source, having, order, limit)
        answered = self.client.rows(sql, params, limit=top)
        if top is None:
            return Summary(_Guarded(map(_summary_row, answered), self.client.target.display))
        everything: dict[str, Any] = {}
        shown = []
        for r in answered:
            everything = r
            shown.append(_summary_row(r))
        if len(shown) < top:  # every key is shown: no rest to count
            return Summary(shown)
        if not self.modern:  # the one scan counts them along (keys_, total_): not 18.16
            counted = (
                f"uniqExactIf({key}, {_REQUEST}) AS keys_, countIf({_REQUEST}) AS total_"
                if latency
                else f"uniqExact({key}) AS keys_, count() AS total_"
            )
            everything = self.client.one(f"SELECT {counted} {source}", params)
        rest_keys = int(everything["keys_"]) - len(shown)
        rest_total = int(everything["total_"]) - sum(r[weight] for r in shown)
        return Summary(shown, max(rest_keys, 0), max(rest_total, 0))

    @_answered
    def distinct_sources(self) -> list[str]:
        source, params = self._from(None)
        sql = f"SELECT DISTINCT source AS s {source}"
        return sorted(str(r["s"]) for r in self.client.rows(sql, params, limit=SOURCES))

    @_answered
    def source_counts(self) -> list[dict[str, Any]]:
        """``{cluster, source, events}`` per source the shippers named, by cluster then source
        (``audittui stats`` over a store)."""
        source, params = self._from(None)
        sql = (
            f"SELECT cluster, source, count() AS n {source} "
            "GROUP BY cluster, source ORDER BY cluster, source"
        )
        return [
            {"cluster": str(r["cluster"]), "source": str(r["source"]), "events": int(r["n"])}
            for r in self.client.rows(sql, params, limit=SOURCES)
        ]

    @_answered
    def raw_bytes(self, where: Where | str | None = None) -> int:
        """The bytes of the matching events' JSON (what the in-memory index calls length)."""
        source, params = self._from(where)
        return int(self.client.one(f"SELECT sum(length(raw)) AS b {source}", params)["b"])

    @_answered
    def values(
        self, column: str, prefix: str, limit: int, where: Where | str | None = None
    ) -> list[tuple[str, int]]:
        """The values of a column (an event's, each of an array's) starting with ``prefix``,
        most frequent first, ties by text, with their events: completion's candidates."""
        if column not in dict(schema.COLUMNS) or column in ("raw", "digest"):
            raise ValueError(f"no column {column!r}")
        source, params = self._from(where)
        value = f"arrayJoin(`{column}`)" if column in _ARRAYS else f"`{column}`"
        params.update(prefix_=prefix, limit_=int(limit))
        sql = (
            f"SELECT v, count() AS n FROM (SELECT {value} AS v {source}) "
            "WHERE v IS NOT NULL AND v != '' "
            "AND substring(v, 1, length({prefix_:String})) = {prefix_:String} "
            "GROUP BY v ORDER BY n DESC, v ASC LIMIT {limit_:UInt64}"
        )
        return [(str(r["v"]), int(r["n"])) for r in self.client.rows(sql, params, limit=limit)]

    # -- the key, as this table writes it ---------------------------------------------------

    def _key_types(self) -> tuple[tuple[str, str], ...]:
        return (
            ("time", "Int64"),
            ("audit_id", "String"),
            ("stage", "String"),
            ("stage_time", "Int64"),
            self._digest,
        )

    def _key_params(self, key: Key) -> tuple[Any, ...]:
        """A key's values as query parameters (a version 1 table's last one is a number)."""
        digest: Any = key[4]
        if self.legacy:
            digest = int(digest) if digest.isdigit() else 0
        return (*key[:4], digest)

    def _columns(self, raw: bool) -> str:
        names = [n for n in self._row.__struct_fields__ if raw or n != "raw"]
        return ", ".join(f"`{n}`" for n in names)

    def _stored(self, row: Any) -> StoredEvent:
        digest = str(row.nokey if self.legacy else row.digest)
        key = (row.time, row.audit_id, row.stage, row.stage_time, digest)
        return StoredEvent(key, row, row.raw.encode("utf-8", "surrogatepass"))

    def _keyset(self, key: Key, op: str, params: dict[str, Any]) -> str:
        """Rows after (``>``) or before (``<``) ``key`` in key order, written out column by
        column (18.16 compares no tuples), led by a plain bound on time for the primary key's
        range."""
        types = self._key_types()
        names = [f"`{k}`" for k, _ in types]
        holders = []
        for n, ((_, kind), value) in enumerate(zip(types, self._key_params(key), strict=True)):
            params[f"after_{n}"] = value
            holders.append(_holder(f"after_{n}", kind))
        cond = f"{names[-1]} {op} {holders[-1]}"
        for name, holder in zip(reversed(names[:-1]), reversed(holders[:-1]), strict=True):
            cond = f"({name} {op} {holder} OR ({name} = {holder} AND {cond}))"
        bound = ">=" if op == ">" else "<="
        return f"(`time` {bound} {holders[0]} AND {cond})"


class _Guarded:
    """A stream of summary rows whose shape errors are StoreErrors (as :func:`_answered`'s)."""

    def __init__(self, rows: Iterator[dict[str, Any]], where: str) -> None:
        self.rows, self.where = rows, where

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self.rows
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise StoreError(f"{self.where} answered rows of another shape ({exc!r:.80})") from None


def _summary_one_scan(
    columns: str, key: str, source: str, having: str, order: str, limit: str, weight: str
) -> str:
    """A summary in one scan (22.x and later): each group's events per verb and its first
    source IPs summed into maps (sumMap over strings) as it is read, the most frequent IP
    (ties: the greatest text) and the IPs' number taken from the map; the groups' number and
    total (what the top N leaves out) counted over the groups by window functions."""
    return (
        f"SELECT {columns}, "
        "sumMap([ifNull(verb, '(none)')], [toUInt64(1)]) AS verb_map, "
        "arrayZip(verb_map.1, verb_map.2) AS verbs, "
        "sumMapIf([ips[1]], [toUInt64(1)], notEmpty(ips)) AS ip_map, "
        "length(ip_map.1) AS ip_count, "
        "if(ip_count > 0, arrayReduce('argMax', ip_map.1, "
        "arrayMap((ip, n) -> (n, ip), ip_map.1, ip_map.2)), '') AS top_ip, "
        f"count() OVER () AS keys_, sum({weight}) OVER () AS total_ "
        f"{source} GROUP BY {key}{having} ORDER BY {order}{limit}"
    )


def _summary_joined(
    columns: str, key: str, label: str, source: str, having: str, order: str, limit: str
) -> str:
    """A summary as 18.16 can compute it (no sumMap over strings): each group's verbs and
    top IP by a GROUP BY of their own, joined to its row on the server, so that nothing is
    held here per key."""
    groups = (
        f"SELECT {columns}, ifNull(uniqExactIf(ips[1], notEmpty(ips)), 0) AS ip_count "
        f"{source} GROUP BY {key}{having} ORDER BY {order}{limit}"
    )
    verbs = (
        "SELECT label, groupArray((v, n)) AS verbs FROM ("
        f"SELECT {label} AS label, ifNull(verb, '(none)') AS v, count() AS n {source} "
        f"GROUP BY {key}, v) GROUP BY label"
    )
    ips = (
        "SELECT label, argMax(ip, (n, ip)) AS top_ip FROM ("
        f"SELECT {label} AS label, ips[1] AS ip, count() AS n {source} AND notEmpty(ips) "
        f"GROUP BY {key}, ip) GROUP BY label"
    )
    return (
        f"SELECT * FROM (SELECT * FROM ({groups}) AS g ANY LEFT JOIN ({verbs}) AS v "
        f"USING label) AS gv ANY LEFT JOIN ({ips}) AS i USING label ORDER BY {order}"
    )


def _holder(name: str, kind: str) -> str:
    """A placeholder for a key's value. A UUID goes as text: 18.16 turns a scalar subquery
    (how it gets parameters) into a literal, and has no literal for a UUID's 128 bits."""
    return f"toUUID({{{name}:String}})" if kind == "UUID" else f"{{{name}:{kind}}}"


def _summary_row(r: dict[str, Any]) -> dict[str, Any]:
    """A row of :meth:`Reader.summary`'s answer as :func:`summarize` makes it."""
    pairs = [(str(v), int(n)) for v, n in r["verbs"]]
    pairs.sort(key=lambda kv: (-kv[1], kv[0]))
    requests = int(r["requests"])
    timed = int(r["timed"])
    return {
        "key": str(r["label"]) or "(none)",
        "missing": not str(r["label"]),  # "(none)": no value (not a value "(none)")
        "events": int(r["events"]),
        "first": format_time(int(r["lo"])) if timed else "",
        "last": format_time(int(r["hi"])) if timed else "",
        "verbs": dict(pairs),
        "forbidden": int(r["forbidden"]),
        "errors": int(r["errors"]),
        "resources": int(r["resources"]),
        "namespaces": int(r["namespaces"]),
        "ips": int(r["ip_count"]),
        "top_ip": str(r["top_ip"]) or "(none)",
        "requests": requests,
        "p50": int(r["p0"]) if requests else None,
        "p95": int(r["p1"]) if requests else None,
        "p99": int(r["p2"]) if requests else None,
        "max": int(r["top"]) if requests else None,
    }


def _strings(values: Any) -> list[str]:
    if not isinstance(values, list) or len(values) > SOURCES:
        raise ValueError("not a list of names")
    return [str(v) for v in values]


# -- SQL pieces -----------------------------------------------------------------------------

# analyses.latency._FOLLOW, whose $ (Python's) also holds before a final newline
_FOLLOW = r"[?&]follow=(true|1)(&|(?:\n?\z))"


def _quoted_list(words: Sequence[str] | frozenset[str]) -> str:
    return ", ".join("'" + w + "'" for w in sorted(words))  # constants of this codebase


# analyses.latency.request_mask: final stages with a latency, long-running requests left out
_REQUEST = (
    f"(stage IN ({_quoted_list(FINAL_STAGES)}) AND latency >= 0"
    f" AND ifNull(verb, '') NOT IN ({_quoted_list(LONG_VERBS)})"
    f" AND ifNull(subresource, '') NOT IN ({_quoted_list(LONG_SUBRESOURCES)})"
    f" AND NOT (ifNull(subresource, '') = 'log' AND match(ifNull(uri, ''), '(?-s){_FOLLOW}'))"
    " AND NOT (resource IS NULL AND startsWith(ifNull(uri, ''), '/debug/pprof')))"
)


def _group_key(by: str) -> tuple[str, str]:
    """(GROUP BY expression, label expression) for a summary: the label is '' for "(none)"."""
    if by == "code":
        return "code", "if(code = 0, '', toString(code))"
    if by in _GRANT_LABELS:
        return _GRANT_LABELS[by], _GRANT_LABELS[by]
    if by == "ip":
        return "if(empty(ips), '', ips[1])", "if(empty(ips), '', ips[1])"
    if by == "resource":
        label = (
            "if(resource IS NULL, '', if(ifNull(subresource, '') != '', "
            "concat(resource, '/', subresource), resource))"
        )
        return label, label
    column = GROUPINGS[by]
    return f"ifNull({column}, '')", f"ifNull({column}, '')"


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else 0


__all__ = ["Key", "Reader", "StoredEvent", "open_reader", "MISSING_TIME", "math"]
