"""The ClickHouse table audittui writes (``ship``, ``webhook --to``) and reads (the app, the CLI).

One row per event stage: a typed column for every field the in-memory index has (the names are
:class:`audittui.ingest.formats.Row`'s, so the query language maps one to one), where it came from
(cluster, server, source file and byte offset) and the raw event. Written only with types an
18.16 server knows (Debian's package), so the same table works there and on a current server.

Identity is exact: ``Nullable(String)`` keeps a missing field apart from an empty one, as the
index does. The sort key is the dedupe key (a ReplacingMergeTree keeps one row per key), led by
time so that a time range is a range scan and the event list can page by keyset on it, and
ended by a digest of the event's exact bytes: only true copies collapse (a batch shipped again
after a crash, sent again to the webhook), never two different events that share an auditID,
stage and stage time (a client chooses its auditID with the Audit-ID header).

A table of version 1 (its key had the digest only for events without an auditID: such events
collapsed) is still read (:data:`LEGACY_COLUMNS`), but not written to.
"""

from __future__ import annotations

TABLE = "audit_events"
VERSION = 2  # bumped when a column changes; a table of another shape is refused, not guessed

# (name, type) in table order. time and stage_time are µs since the epoch (MISSING_TIME when an
# event has none); latency µs or -1; code 0 when absent; arrays empty when absent.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "Int64"),
    ("stage_time", "Int64"),  # stageTimestamp: part of the key (auditID, stage, stageTs, digest)
    ("latency", "Int64"),
    ("user", "Nullable(String)"),
    ("groups", "Array(String)"),
    ("impersonated", "Nullable(String)"),
    ("verb", "Nullable(String)"),
    ("api", "Nullable(String)"),  # "" = core group; NULL = a non-resource request
    ("resource", "Nullable(String)"),
    ("subresource", "Nullable(String)"),
    ("namespace", "Nullable(String)"),
    ("name", "Nullable(String)"),
    ("code", "Int32"),
    ("stage", "String"),  # in the key, so not Nullable: "" when absent
    ("level", "Nullable(String)"),
    ("decision", "Nullable(String)"),
    ("ips", "Array(String)"),
    ("user_agent", "Nullable(String)"),
    ("audit_id", "String"),  # in the key: "" when absent
    ("uri", "Nullable(String)"),
    ("credential", "Nullable(String)"),
    ("server", "Nullable(String)"),
    ("login", "Nullable(String)"),
    ("reason", "Nullable(String)"),
    ("flags", "UInt8"),
    ("cluster", "String"),  # the --cluster the shipper was given ("" when none)
    ("source", "String"),  # the file as the user named it (host:path for a remote one)
    ("offset", "UInt64"),  # byte offset of the record in that file
    # 128 bits of BLAKE2b over the event's bytes as read (the file's line, the webhook's spool
    # line), as a UUID (16 bytes, a type 18.16 knows): equal only for a copy of the same event
    ("digest", "UUID"),
    ("raw", "String"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
KEY = ("time", "audit_id", "stage", "stage_time", "digest")

# Version 1: ``nokey`` UInt64 in place of ``digest``, 0 for an event with an auditID (a hash of
# its bytes for one without), so that two events sharing auditID, stage and stage time were one.
LEGACY_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    ("nokey", "UInt64") if name == "digest" else (name, kind) for name, kind in COLUMNS
)


def create_sql(table: str) -> str:
    """The DDL of the table (``table`` database-qualified and quoted), valid on 18.16 and on a
    current server: a ReplacingMergeTree on KEY, one partition per month of ``time`` (an event
    without a time, MISSING_TIME, lands in the first one)."""
    columns = ",\n    ".join(f"`{name}` {kind}" for name, kind in COLUMNS)
    key = ", ".join(f"`{name}`" for name in KEY)
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)\n"
        "ENGINE = ReplacingMergeTree\n"
        "PARTITION BY toYYYYMM(toDateTime(intDiv(greatest(`time`, 0), 1000000), 'UTC'))\n"
        f"ORDER BY ({key})"
    )
