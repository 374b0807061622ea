"""The reads the CLI and the app make of a store: counts, pages of events by keyset, one event by
key, summaries and the histogram computed by the server, stats, and new rows for live follow.

Every read is ``FROM table FINAL``: the ReplacingMergeTree keeps one row per key only once its
parts are merged, and FINAL makes a read exact before that. Filters are :class:`.sql.Where`
(``reader.where(text)`` compiles the query language; a store URL's ``?cluster=NAME`` limits
every read to that cluster). Pages follow the table's sort key (time, audit_id, stage,
stage_time, nokey) with a keyset condition, never an OFFSET, so the millionth page costs what
the first does.

Usage::

    with open_reader("clickhouse://127.0.0.1:8123/default") as reader:
        where = reader.where("verb:delete ns:prod")
        total = reader.count(where)
        first = reader.page(where, limit=100)
        more = reader.page(where, after_key=first[-1].key, limit=100)
        rows = reader.summary("user", where)  # as analyses.summary.summarize gives them
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..analyses.histogram import STEPS, Histogram
from ..analyses.latency import LONG_SUBRESOURCES, LONG_VERBS, QUANTILES
from ..analyses.summary import GROUPINGS
from ..index.query import parse
from ..ingest.formats import MISSING_TIME, format_time
from ..ingest.schema import FINAL_STAGES
from . import schema
from .client import Client, connect
from .sql import _GRANT_LABELS, PRESENT_TIME, Where, compile_node
from .url import parse as parse_url

Key = tuple[int, str, str, int, int]  # (time, audit_id, stage, stage_time, nokey): schema.KEY
PAGE = 500
KEY_SQL = ", ".join(f"`{k}`" for k in schema.KEY)
FOLLOW_EVERY = 1.0  # s between the polls of a follow (the app's and query --follow's)
# µs before the newest event seen that a follow's poll reads again: shippers write in batches,
# several of them, so a row may land after newer ones (its key sorts before the newest seen)
LATE = 60_000_000


def late_key(newest: int) -> Key:
    """The key just before the stretch a follow's poll reads again (:data:`LATE` before the
    newest time seen): a keyset page after it holds the late rows and the new ones."""
    return (newest - LATE - 1, "", "", MISSING_TIME, 0)


_ARRAYS = {"groups", "ips"}
_NOT_NULL = {"stage", "audit_id", "cluster", "source"}  # "" there means absent


@dataclass(frozen=True)
class StoredEvent:
    """One row: its key, its columns (as the table holds them) and its raw JSON."""

    key: Key
    columns: dict[str, Any]
    raw: bytes

    def value(self, name: str) -> Any:
        """A column as :meth:`audittui.index.store.Store.value` gives it: None for a missing
        string, a tuple for groups and IPs (None when empty), numbers as they are."""
        v = self.columns.get(name)
        if name in _ARRAYS:
            return tuple(v) if v else None
        if name in _NOT_NULL and v == "":
            return None
        return v

    def event(self) -> Any:
        """The event as a dict (parsed from the raw JSON)."""
        return orjson.loads(self.raw)


def open_reader(url: str) -> Reader:
    """A :class:`Reader` on a store URL (:class:`.client.StoreError` or
    :class:`.url.BadURL` when it cannot be reached or read)."""
    target = parse_url(url)
    return Reader(connect(target), target.cluster)


class Reader:
    """The reads of one store over a connected :class:`.client.Client` (which it closes)."""

    def __init__(self, client: Client, cluster: str = "") -> None:
        self.client = client
        self.cluster = cluster
        self.modern = _major(client.version) >= 22
        self._lock = threading.Lock()
        self._checked = (-1, True)  # (stored rows, held copies then): asked again on a change

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

    def _holds_copies(self) -> bool:
        """Whether some row is stored twice (a batch resent after a crash, before the merge
        that collapses it). FINAL is one single-threaded merge on old servers (35 s for a
        summary of 10M rows on 18.16, against a few without it), so it is used only when
        copies exist: counted again only when the number of stored rows changes."""
        with self._lock:
            table = self.client.table
            stored = int(next(self.client.rows(f"SELECT count() AS n FROM {table}"))["n"])
            if stored != self._checked[0]:
                kept = int(next(self.client.rows(f"SELECT count() AS n FROM {table} FINAL"))["n"])
                self._checked = (stored, kept != stored)
            return self._checked[1]

    # -- reads -----------------------------------------------------------------------------

    def count(self, where: Where | str | None = None) -> int:
        source, params = self._from(where)
        return int(next(self.client.rows(f"SELECT count() AS n {source}", params))["n"])

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
            keyset = " AND " + _keyset(after_key, "<" if descending else ">", params)
            source, stored = source + keyset, stored + keyset
        way = "DESC" if descending else "ASC"
        order = ", ".join(f"`{k}` {way}" for k in schema.KEY)
        columns = _columns(raw)
        want = int(limit)
        while True:
            # The page's time span first, from the time column of the rows as stored (FINAL
            # over the whole table is one slow merge on 18.16); then the page itself, FINAL
            # within that span only, which the primary index narrows to a few granules.
            params["span_"] = want
            span = next(
                self.client.rows(
                    f"SELECT count() AS n, min(time) AS lo, max(time) AS hi FROM (SELECT time "
                    f"{stored} ORDER BY time {way} LIMIT {{span_:UInt64}})",
                    params,
                )
            )
            if not int(span["n"]):
                return []
            params["lo_"], params["hi_"] = int(span["lo"]), int(span["hi"])
            params["limit_"] = int(limit)
            sql = (
                f"SELECT {columns} {source} AND time >= {{lo_:Int64}} AND time <= {{hi_:Int64}} "
                f"ORDER BY {order} LIMIT {{limit_:UInt64}}"
            )
            rows = [_stored(r) for r in self.client.rows(sql, params)]
            # Short only because resent copies filled the span: widen it and ask again.
            if len(rows) >= limit or int(span["n"]) < want:
                return rows
            want *= 2

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

    def event(self, key: Key) -> StoredEvent | None:
        """The event with this key (None when the store holds none)."""
        source, params = self._from(None, final=False)  # a copy is the same row: LIMIT 1
        cond = " AND ".join(f"`{k}` = {{key_{n}:{t}}}" for n, (k, t) in enumerate(_KEY_TYPES))
        params.update({f"key_{n}": v for n, v in enumerate(key)})
        rows = list(
            self.client.rows(f"SELECT {_columns(True)} {source} AND {cond} LIMIT 1", params)
        )
        return _stored(rows[0]) if rows else None

    def stats(self) -> dict[str, Any]:
        """``{events, first, last, files, clusters, servers}`` as ``audittui stats`` shows them
        (files: the sources the shipper named, sorted)."""
        source, params = self._from(None)
        row = next(
            self.client.rows(
                f"SELECT count() AS n, countIf({PRESENT_TIME}) AS timed, "
                f"minIf(time, {PRESENT_TIME}) AS lo, maxIf(time, {PRESENT_TIME}) AS hi, "
                "groupUniqArray(source) AS files, groupUniqArray(cluster) AS clusters "
                f"{source}",
                params,
            )
        )
        timed = int(row["timed"])
        return {
            "events": int(row["n"]),
            "first": format_time(int(row["lo"])) if timed else None,
            "last": format_time(int(row["hi"])) if timed else None,
            "files": sorted(row["files"]),
            "clusters": sorted(c for c in row["clusters"] if c),
        }

    def time_range(self, where: Where | str | None = None) -> tuple[int, int] | None:
        source, params = self._from(where)
        row = next(
            self.client.rows(
                f"SELECT countIf({PRESENT_TIME}) AS timed, minIf(time, {PRESENT_TIME}) AS lo, "
                f"maxIf(time, {PRESENT_TIME}) AS hi {source}",
                params,
            )
        )
        return (int(row["lo"]), int(row["hi"])) if int(row["timed"]) else None

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
        source, params = self._from(where)
        params.update(start_=start, step_=step)
        sql = (
            "SELECT intDiv(time - {start_:Int64}, {step_:Int64}) AS b, count() AS total, "
            "countIf(code = 403) AS forbidden, "
            "countIf(code >= 400 AND code < 500 AND code != 403) AS client, "
            f"countIf(code >= 500) AS server {source} AND {PRESENT_TIME} GROUP BY b"
        )
        rows = list(self.client.rows(sql, params))
        n = max(int(r["b"]) for r in rows) + 1
        out = {k: np.zeros(n, dtype=np.int64) for k in ("total", "forbidden", "client", "server")}
        for r in rows:
            for k, arr in out.items():
                arr[int(r["b"])] = int(r[k])
        return Histogram(start, step, out["total"], out["forbidden"], out["client"], out["server"])

    def summary(self, by: str = "user", where: Where | str | None = None) -> list[dict[str, Any]]:
        """:func:`audittui.analyses.summary.summarize` computed by the server: the same rows
        and fields, most events first. Ties (equal counts; the most frequent IP; verbs of equal
        count) are broken by the key's text here, by reading order in memory."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot summarise by {by!r}; choose one of {', '.join(GROUPINGS)}")
        key, label = _group_key(by)
        source, params = self._from(where)
        percentile = ", ".join(
            f"if(length(lat) > 0, lat[toUInt64(greatest(ceil({q} * length(lat)), 1))], -1) AS p{k}"
            for k, q in enumerate(QUANTILES)
        )
        sql = (
            f"SELECT {label} AS label, count() AS events, "
            f"countIf({PRESENT_TIME}) AS timed, minIf(time, {PRESENT_TIME}) AS lo, "
            f"maxIf(time, {PRESENT_TIME}) AS hi, "
            "countIf(code = 403) AS forbidden, countIf(code >= 400 AND code != 403) AS errors, "
            # ifNull: 18.16 answers NULL, not 0, for a group whose values are all NULL
            "ifNull(uniqExactIf(resource, resource IS NOT NULL), 0) AS resources, "
            "ifNull(uniqExactIf(namespace, namespace IS NOT NULL), 0) AS namespaces, "
            "ifNull(uniqExactIf(ips[1], notEmpty(ips)), 0) AS ip_count, "
            # the sorted latencies stay on the server: only their length and ranks come back
            f"length(arraySort(groupArrayIf(latency, {_REQUEST})) AS lat) AS requests, "
            f"if(requests > 0, lat[-1], -1) AS top, {percentile} "
            f"{source} GROUP BY {key} ORDER BY events DESC, label ASC"
        )
        rows = list(self.client.rows(sql, params))
        top = self._top_ips(key, label, source, params)
        verbs_of = self._verbs(key, label, source, params)
        out = []
        for r in rows:
            verbs = sorted(verbs_of.get(r["label"], {}).items(), key=lambda kv: (-kv[1], kv[0]))
            requests = int(r["requests"])
            out.append(
                {
                    "key": r["label"] or "(none)",
                    "events": int(r["events"]),
                    "first": format_time(int(r["lo"])) if r["timed"] else "",
                    "last": format_time(int(r["hi"])) if r["timed"] else "",
                    "verbs": {k: int(n) for k, n in verbs},
                    "forbidden": int(r["forbidden"]),
                    "errors": int(r["errors"]),
                    "resources": int(r["resources"]),
                    "namespaces": int(r["namespaces"]),
                    "ips": int(r["ip_count"]),
                    "top_ip": top.get(r["label"], "(none)"),
                    "requests": requests,
                    "p50": int(r["p0"]) if requests else None,
                    "p95": int(r["p1"]) if requests else None,
                    "p99": int(r["p2"]) if requests else None,
                    "max": int(r["top"]) if requests else None,
                }
            )
        return out

    def _verbs(
        self, key: str, label: str, source: str, params: dict[str, Any]
    ) -> dict[str, dict[str, int]]:
        """Each group's events per verb (one more query: sumMap over strings is refused by
        ClickHouse 18.16)."""
        sql = (
            f"SELECT {label} AS label, ifNull(verb, '(none)') AS v, count() AS n {source} "
            f"GROUP BY {key}, v"
        )
        out: dict[str, dict[str, int]] = {}
        for r in self.client.rows(sql, params):
            out.setdefault(r["label"], {})[r["v"]] = int(r["n"])
        return out

    def _top_ips(self, key: str, label: str, source: str, params: dict[str, Any]) -> dict[str, str]:
        """Each group's most frequent first source IP (ties: the greatest IP text)."""
        sql = (
            "SELECT label, argMax(ip, (n, ip)) AS top FROM ("
            f"SELECT {label} AS label, ips[1] AS ip, count() AS n {source} AND notEmpty(ips) "
            f"GROUP BY {key}, ip) GROUP BY label"
        )
        return {r["label"]: r["top"] for r in self.client.rows(sql, params)}

    def distinct_sources(self) -> list[str]:
        source, params = self._from(None)
        return sorted(
            r["s"] for r in self.client.rows(f"SELECT DISTINCT source AS s {source}", params)
        )

    def source_counts(self) -> list[dict[str, Any]]:
        """``{cluster, source, events}`` per source the shippers named, by cluster then source
        (``audittui stats`` over a store)."""
        source, params = self._from(None)
        sql = (
            f"SELECT cluster, source, count() AS n {source} "
            "GROUP BY cluster, source ORDER BY cluster, source"
        )
        return [
            {"cluster": r["cluster"], "source": r["source"], "events": int(r["n"])}
            for r in self.client.rows(sql, params)
        ]


# -- SQL pieces -----------------------------------------------------------------------------

_KEY_TYPES = (
    ("time", "Int64"),
    ("audit_id", "String"),
    ("stage", "String"),
    ("stage_time", "Int64"),
    ("nokey", "UInt64"),
)
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


def _columns(raw: bool) -> str:
    names = [n for n in schema.COLUMN_NAMES if raw or n != "raw"]
    return ", ".join(f"`{n}`" for n in names)


def _stored(row: dict[str, Any]) -> StoredEvent:
    key = (
        int(row["time"]),
        str(row["audit_id"]),
        str(row["stage"]),
        int(row["stage_time"]),
        int(row["nokey"]),
    )
    raw = row.pop("raw", "")
    return StoredEvent(key, row, raw.encode("utf-8", "surrogatepass"))


def _keyset(key: Key, op: str, params: dict[str, Any]) -> str:
    """Rows after (``>``) or before (``<``) ``key`` in key order, written out column by column
    (18.16 compares no tuples), led by a plain bound on time for the primary key's range."""
    names = [f"`{k}`" for k, _ in _KEY_TYPES]
    holders = []
    for n, ((_, kind), value) in enumerate(zip(_KEY_TYPES, key, strict=True)):
        params[f"after_{n}"] = value
        holders.append(f"{{after_{n}:{kind}}}")
    cond = f"{names[-1]} {op} {holders[-1]}"
    for name, holder in zip(reversed(names[:-1]), reversed(holders[:-1]), strict=True):
        cond = f"({name} {op} {holder} OR ({name} = {holder} AND {cond}))"
    bound = ">=" if op == ">" else "<="
    return f"(`time` {bound} {holders[0]} AND {cond})"


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else 0


__all__ = ["Key", "Reader", "StoredEvent", "open_reader", "MISSING_TIME", "math"]
