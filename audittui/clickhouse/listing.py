"""The two other orders a store lists a selection in, paged by keyset like
:meth:`Reader.page <audittui.clickhouse.reads.Reader.page>`: slowest first (the app's L) and
one row per request (its R), as :func:`audittui.analyses.view.matching` lists them in memory.

Slowest first keeps the requests with a meaningful latency (:data:`~.reads._REQUEST`, as
:func:`audittui.analyses.latency.request_mask`) in (latency descending, key) order: a page's
position is ``(-latency, *key)``, so that positions ascend along the list.

One row per request is each request that has a matching event, shown as its furthest stage
(ResponseComplete or Panic, else ResponseStarted, else RequestReceived; the latest of equals),
which need not match itself. Every stage of a request carries its received time, so the
requests of a page are the first (time, auditID) pairs after the last one shown; an event
without an auditID stands alone. The pairs are found in one query, their stages in a second.
"""

from __future__ import annotations

from typing import cast

from ..analyses.requests import RANK
from .reads import _REQUEST, PAGE, ZERO_DIGEST, Key, Reader, StoredEvent, _answered
from .sql import Where


@_answered
def count_slowest(reader: Reader, where: Where) -> int:
    source, params = reader._from(where)
    return int(reader.client.one(f"SELECT count() AS n {source} AND {_REQUEST}", params)["n"])


@_answered
def page_slowest(
    reader: Reader,
    where: Where,
    after: Key | None = None,
    limit: int = PAGE,
    descending: bool = False,
    raw: bool = False,
) -> list[StoredEvent]:
    """Up to ``limit`` timed requests after position ``after`` (before it when descending),
    slowest first."""
    source, params = reader._from(where)
    source += f" AND {_REQUEST}"
    if after is not None:
        # after the position: faster, or as slow and later in key order (before: mirrored)
        params["lat_"] = -int(after[0])
        keyset = reader._keyset(cast(Key, tuple(after[1:])), "<" if descending else ">", params)
        faster = ">" if descending else "<"
        source += (
            f" AND (latency {faster} {{lat_:Int64}} OR (latency = {{lat_:Int64}} AND {keyset}))"
        )
    way, back = ("DESC", "ASC") if descending else ("ASC", "DESC")
    keys = ", ".join(f"`{k}` {way}" for k, _ in reader._key_types())
    params["limit_"] = int(limit)
    sql = (
        f"SELECT {reader._columns(raw)} {source} ORDER BY latency {back}, {keys} "
        "LIMIT {limit_:UInt64}"
    )
    return [reader._stored(r) for r in reader.client.structs(sql, params, reader._row, limit)]


def _alone(reader: Reader) -> str:
    """What tells apart the events of one (time, auditID) pair that are no request's stages:
    those without an auditID each stand alone."""
    digest = reader._key_types()[-1][0]
    return f"if(audit_id = '', toString(`{digest}`), '')"


@_answered
def count_requests(reader: Reader, where: Where) -> int:
    source, params = reader._from(where)
    sql = f"SELECT count() AS n FROM (SELECT 1 {source} GROUP BY time, audit_id, {_alone(reader)})"
    return int(reader.client.one(sql, params)["n"])


@_answered
def page_requests(
    reader: Reader,
    where: Where,
    after: Key | None = None,
    limit: int = PAGE,
    descending: bool = False,
    raw: bool = False,
) -> list[StoredEvent]:
    """Up to ``limit`` requests with a matching event after the request of key ``after``
    (before it when descending), each as its furthest stage, in key order."""
    source, params = reader._from(where)
    stored, _ = reader._from(where, final=False)  # the rows as stored: for the span only
    op = "<" if descending else ">"
    if after is not None:
        if after[1]:  # past every stage of after's request: the next (time, auditID) pairs
            params["at_"], params["aid_"] = int(after[0]), str(after[1])
            past = (
                f" AND (time {op} {{at_:Int64}} OR (time = {{at_:Int64}} AND "
                f"audit_id {op} {{aid_:String}}))"
            )
        else:  # an event alone: past its key
            past = " AND " + reader._keyset(cast(Key, tuple(after)), op, params)
        source, stored = source + past, stored + past
    way = "DESC" if descending else "ASC"
    params["limit_"] = int(limit)
    # A request is its (time, auditID); an event alone is its key, in the key's order.
    (digest, kind), zero = reader._key_types()[-1], ZERO_DIGEST
    blank = "0" if kind != "UUID" else f"toUUID('{zero}')"
    grouping = (
        f"if(audit_id = '', stage, '') AS a_stage, if(audit_id = '', stage_time, 0) AS a_st, "
        f"if(audit_id = '', `{digest}`, {blank}) AS a_dg"
    )
    order = ", ".join(f"{c} {way}" for c in ("time", "audit_id", "a_stage", "a_st", "a_dg"))
    # Not a GROUP BY over the whole selection: the requests of a page lie within the span of
    # its first rows in time order (each has a matching row; all its rows share its time), so
    # the span of the next ``want`` rows bounds it, widened until it holds a page of them.
    want = int(limit)
    while True:
        span = reader.time_span(stored, way, want, params)
        if span is None:
            return []
        n, lo, hi = span
        params["edge_"] = lo if descending else hi
        bound = f" AND time {'>=' if descending else '<='} {{edge_:Int64}}"
        pairs = list(
            reader.client.rows(
                f"SELECT time, audit_id, {grouping} {source}{bound} "
                f"GROUP BY time, audit_id, a_stage, a_st, a_dg ORDER BY {order} "
                "LIMIT {limit_:UInt64}",
                params,
                limit=limit,
            )
        )
        if len(pairs) >= limit or n < want:
            break
        want *= 2
    if not pairs:
        return []
    times = [int(p["time"]) for p in pairs]
    ids = sorted({str(p["audit_id"]) for p in pairs if p["audit_id"]})
    singles = sorted({str(p["a_dg"]) for p in pairs if not p["audit_id"]})
    # Every stage of those requests, matching or not (the furthest need not match).
    stages, sparams = reader._from(None)
    sparams.update(lo_=min(times), hi_=max(times), ids_=ids, singles_=singles)
    sql = (
        f"SELECT {reader._columns(raw)} {stages} "
        "AND time >= {lo_:Int64} AND time <= {hi_:Int64} AND ("
        "(audit_id != '' AND audit_id IN {ids_:Array(String)}) OR "
        f"(audit_id = '' AND toString(`{digest}`) IN {{singles_:Array(String)}}))"
    )
    # each group's place in the listing: the server's order (a UUID sorts as the server does)
    place = {
        (int(p["time"]), str(p["audit_id"]), "" if p["audit_id"] else str(p["a_dg"])): n
        for n, p in enumerate(pairs)
    }
    best: dict[tuple[int, str, str], tuple[int, StoredEvent]] = {}
    for row in reader.client.structs(sql, sparams, reader._row):
        event = reader._stored(row)
        group = (event.key[0], event.key[1], "" if event.key[1] else str(event.key[4]))
        if group not in place:  # the same auditID at another time: another request
            continue
        rank = RANK.get(str(event.value("stage") or ""), 0)
        held = best.get(group)
        if held is None or (rank, event.key) > (held[0], held[1].key):
            best[group] = (rank, event)
    return [best[g][1] for g in sorted(best, key=place.__getitem__)]
