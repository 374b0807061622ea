"""auditIDs kept as 128 bits when they are canonical UUIDs, as strings otherwise: the text
comes back exactly, queries and identity treat both alike, and only equal text is the same
request (an uppercase spelling of a UUID is another auditID)."""

from __future__ import annotations

import uuid

import numpy as np
import orjson
from conftest import v1_event
from hypothesis import given
from hypothesis import strategies as st

import audittui
from audittui.analyses.requests import Requests
from audittui.analyses.view import TIME, matching
from audittui.index.evaluate import select
from audittui.ingest import audit_ids
from audittui.ingest.formats import UUID_ID

U1, U2 = "5f0e8a52-3c1b-4b7e-9d2a-0c4e6f8a1b3d", "00000000-0000-0000-0000-000000000000"
ODD = [U1.upper(), "{" + U1 + "}", "req-42", U1 + " ", "ü" * 36, U1[:-1] + "g"]


@given(st.uuids())
def test_uuids_round_trip_exactly(value):
    text = str(value)
    hi, lo, ok = audit_ids.parse([text])
    assert ok[0]
    assert audit_ids.format_one(hi[0], lo[0]) == text
    assert audit_ids.format_many(hi, lo)[0].decode() == text


@given(st.lists(st.one_of(st.none(), st.text(max_size=40), st.uuids().map(str)), max_size=30))
def test_parse_accepts_exactly_the_canonical_spelling(values):
    hi, lo, ok = audit_ids.parse(values)
    for v, h, low, good in zip(values, hi, lo, ok, strict=True):
        canonical = False
        if isinstance(v, str) and len(v) == 36:
            try:
                canonical = str(uuid.UUID(v)) == v
            except ValueError:
                canonical = False
        assert bool(good) == canonical, v
        if good:
            assert audit_ids.format_one(h, low) == v


def write(tmp_path, ids: list[str | None]) -> str:
    lines = []
    for k, audit_id in enumerate(ids):
        e = v1_event(stage="ResponseComplete", stageTimestamp=f"2024-05-01T10:00:{k:02d}.000000Z")
        e["requestReceivedTimestamp"] = e["stageTimestamp"]
        if audit_id is None:
            e.pop("auditID")
        else:
            e["auditID"] = audit_id
        lines.append(orjson.dumps(e))
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


def test_a_mixed_log_reads_back_and_answers_queries(tmp_path):
    ids = [U1, U2, *ODD, None, U1, "req-42"]
    store = audittui.load(write(tmp_path, ids))
    assert [store.value("audit_id", i) for i in range(len(store))] == ids
    flags = store.column("flags") & UUID_ID
    assert flags.astype(bool).tolist() == [True, True] + [False] * 7 + [True, False]
    for value in set(v for v in ids if v):
        expected = [i for i, v in enumerate(ids) if v == value]
        assert list(select(store, f"id:{orjson.dumps(value).decode()}")) == expected, value
    assert list(select(store, 'id:""')) == [8]
    assert list(select(store, "id:5f0e8a52*")) == [0, 5, 7, 9]  # UUIDs and other spellings
    assert list(select(store, "id:5F0E8A52*")) == [2]  # only the uppercase spelling
    assert list(select(store, "id:/^0+-/")) == [1]
    assert list(select(store, f"-id:{U1}")) == [1, 2, 3, 4, 5, 6, 7, 8, 10]
    ids_of = store.ids("audit_id")
    assert ids_of[0] == ids_of[9] and ids_of[4] == ids_of[10]
    assert len({int(x) for x in ids_of[:8]}) == 8 and ids_of[8] == 0


def test_requests_fold_both_kinds_and_duplicates_are_dropped_by_value(tmp_path):
    ids = [U1, "req-1", U1, "req-1", U2]
    path = write(tmp_path, ids)
    store = audittui.load(path)
    rows = matching(store, None, TIME, Requests())
    assert len(rows) == 3  # U1, req-1 and U2: one row each
    # The same file twice: every event is a duplicate of one already held.
    with audittui.load(path, path) as twice:
        assert len(twice) == 2 * len(ids)
    from audittui.index.loader import read_sources
    from audittui.index.store import Store
    from audittui.ingest.sources import open_source

    deduped = Store()
    for _ in range(2):
        deduped.add_source(open_source(0, path, deduped.spool))
    read_sources(deduped, deduped.sources, dedupe=True)
    assert len(deduped) == len(ids) and deduped.duplicates == len(ids)


def test_identity_keeps_growing_with_new_batches(tmp_path):
    from audittui.index.store import Store
    from audittui.ingest.batch import BatchBuilder
    from audittui.ingest.sources import Source

    store = Store()
    store.add_source(Source(0, "x", "x"))
    seen: list[str] = []
    rng = np.random.default_rng(3)
    pool = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**62, 12)] + ["a", "b"]
    for _ in range(6):
        builder = BatchBuilder(0)
        for _ in range(5):
            value = pool[int(rng.integers(0, len(pool)))]
            seen.append(value)
            builder.add_event(v1_event(auditID=value), 0, 1, -1)
        store.append(builder.finish())
        ids = store.ids("audit_id")
        for i in range(len(seen)):
            assert ((ids == ids[i]) == np.array([v == seen[i] for v in seen])).all()
