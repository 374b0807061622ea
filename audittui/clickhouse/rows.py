"""Events → table rows (JSONEachRow lines), read as the loader reads them.

Lines go through :class:`~audittui.ingest.batch.BatchBuilder` (the same decoding the loader
uses: wrappers, EventLists, split container lines, the malformed reasons), and each event it
found is taken back out of the bytes by its offset, length and item, as
:meth:`Store.raw <audittui.index.store.Store.raw>` does: the line itself, or the event
re-serialised from the record holding it. Whole-file inputs (gzip, one JSON or YAML document)
are read by the loader into a small store and taken out of it the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..ingest.batch import BatchBuilder
from ..ingest.formats import MISSING_TIME, decode_line, expand, parse_json, parse_time, row
from ..ingest.sources import gathered_server

BOM = b"\xef\xbb\xbf"
Key = tuple[int, str, str, int, str]  # the table's KEY: time, audit_id, stage, stage_time, digest


@dataclass
class Rows:
    """Encoded rows, their keys and time range, and the malformed lines met."""

    lines: list[bytes] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    malformed: list[tuple[str, int, str]] = field(default_factory=list)  # (path, line, reason)
    bad: int = 0  # malformed lines (only the first SAMPLE of them are listed)
    tmin: int = 2**63 - 1
    tmax: int = -(2**63)

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: bytes, key: Key) -> None:
        self.lines.append(line)
        self.keys.append(key)
        self.tmin = min(self.tmin, key[0])
        self.tmax = max(self.tmax, key[0])

    def extend(self, other: Rows) -> None:
        # list operations, not one add() per row: a batch is tens of thousands of rows
        self.lines.extend(other.lines)
        self.keys.extend(other.keys)
        if other.lines:
            self.tmin = min(self.tmin, other.tmin)
            self.tmax = max(self.tmax, other.tmax)
        self.malformed.extend(other.malformed)
        self.bad += other.bad

    def body(self) -> bytes:
        return b"\n".join(self.lines) + b"\n" if self.lines else b""


def digest(raw: bytes) -> str:
    """The ``digest`` column: 128 bits of BLAKE2b over an event's exact bytes, written as the
    UUID ClickHouse prints (so that a key read back compares equal). Two events are one row
    only when their bytes are equal: a copy sent again, never two events that share an
    auditID, stage and stage time but differ in anything else."""
    h = hashlib.blake2b(raw, digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(
    event: dict[str, Any], raw: bytes, cluster: str, source: str, offset: int, server: str | None
) -> tuple[bytes, Key]:
    """One event as a JSONEachRow line (the columns of schema.COLUMNS) and its key. ``raw``
    is the event's bytes as read (a file's line, the webhook's spool line; the event
    serialised again when it was read out of a wrapper): the digest is theirs."""
    r = row(event)
    stage_time = parse_time(event.get("stageTimestamp"))
    stage_time = MISSING_TIME if stage_time is None else stage_time
    audit_id, stage = r.audit_id or "", r.stage or ""
    hashed = digest(raw)
    values = {
        "time": r.time,
        "stage_time": stage_time,
        "latency": r.latency,
        "user": r.user,
        "groups": list(r.groups or ()),
        "impersonated": r.impersonated,
        "verb": r.verb,
        "api": r.api,
        "resource": r.resource,
        "subresource": r.subresource,
        "namespace": r.namespace,
        "name": r.name,
        "code": r.code,
        "stage": stage,
        "level": r.level,
        "decision": r.decision,
        "ips": list(r.ips or ()),
        "user_agent": r.user_agent,
        "audit_id": audit_id,
        "uri": r.uri,
        "credential": r.credential,
        "server": r.server or server,
        "login": r.login,
        "reason": r.reason,
        "flags": r.flags,
        "cluster": cluster,
        "source": source,
        "offset": offset,
        "digest": hashed,
        "raw": raw.decode("utf-8", "replace"),
    }
    return orjson.dumps(values), (r.time, audit_id, stage, stage_time, hashed)


def from_lines(
    data: bytes, base_offset: int, first_line: int, path: str, cluster: str, final: bool
) -> tuple[Rows, int, int]:
    """The events of complete lines ``data`` (read at ``base_offset`` of ``path``, its first
    line numbered ``first_line``): (rows, bytes consumed, lines consumed). With ``final`` a
    last piece without newline is read too (a file read to its end)."""
    skip = len(BOM) if base_offset == 0 and data.startswith(BOM) else 0
    builder = BatchBuilder(0)
    consumed = skip + builder.add_lines(data[skip:], base_offset + skip, first_line, final)
    batch = builder.finish()
    out = Rows()
    server = gathered_server(path)
    numbers = batch.numbers
    records: dict[int, list[dict[str, Any]]] = {}
    for offset, length, item in zip(
        numbers["offset"].tolist(),
        numbers["length"].tolist(),
        numbers["item"].tolist(),
        strict=True,
    ):
        start = offset - base_offset
        record = data[start : start + length]
        record = record[:-1] if record.endswith(b"\r") else record
        if item < 0:
            raw = record
            event = parse_json(raw)
        else:
            if offset not in records:
                records[offset] = expand(decode_line(record.removeprefix(BOM)))[0]
            event = records[offset][item]
            raw = orjson.dumps(event)
        line, key = encode(event, raw, cluster, path, offset, server)
        out.add(line, key)
    out.malformed = [(path, n, why) for n, why in batch.malformed]
    out.bad = len(batch.malformed)
    return out, consumed, batch.lines


def from_whole_file(path: str, cluster: str, skip: int) -> Iterator[tuple[int, int, Rows]]:
    """A file the loader reads whole (gzip, a JSON or YAML document): its events after the
    first ``skip``, in pieces of (events so far, all its events, rows); malformed lines come
    with the first."""
    from ..index.loader import read_sources
    from ..index.store import Store
    from ..ingest.sources import open_source

    with Store() as store:
        source = store.add_source(open_source(0, path, store.spool))
        read_sources(store, [source], workers=1)
        n = len(store)
        first = Rows(malformed=[(m.path, m.line, m.reason) for m in store.malformed])
        first.bad = len(store.malformed)
        if n <= skip:
            yield n, n, first
            return
        rows = first
        offsets = store.column("offset")
        servers = store.values_at("server", _range(skip, n))
        for i in range(skip, n):
            raw = store.raw(i)
            line, key = encode(
                parse_json(raw), raw, cluster, path, int(offsets[i]), servers[i - skip]
            )
            rows.add(line, key)
            if len(rows) >= 10_000:
                yield i + 1, n, rows
                rows = Rows()
        yield n, n, rows


def _range(a: int, b: int) -> Any:
    import numpy as np

    return np.arange(a, b)
