"""The backend protocol over the same events in memory and in a chdb store: counts, pages by key
both ways, one event, following, summaries, the histogram, a request's stages, an object's
history, a subject's least-privilege roles and completion's values give equal answers.

What may differ, and why: the order of events of equal time (reading order in memory, the
table's sort key in a store), so listings are compared as multisets and checked to be in time
order; a summary's ties (rows, verbs of equal count) likewise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from backend_kit import fill, table, write_events

from audittui.analyses.rbac import render_yaml
from audittui.analyses.summary import GROUPINGS
from audittui.backend.clickhouse import ClickHouseBackend
from audittui.backend.memory import MemoryBackend
from audittui.backend.open import empty, open_backend
from audittui.backend.protocol import CAPABILITIES, SLOWEST, TIME, Backend, Row, position

QUERIES = [
    "",
    "verb:delete",
    "user:system:serviceaccount:* code:4xx",
    "resource:secrets,configmaps -verb:get",
    "ns:kube-system OR code:>=500",
    "group:system:authenticated -user:system:*",
]


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("backends") / "audit.log")


@pytest.fixture(scope="module")
def chdb_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One chdb folder for the module (a process opens one chdb folder at a time)."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="module")
def both(log_file: Path, chdb_base: str) -> Iterator[list[Backend]]:
    url = table(chdb_base)
    fill(url, log_file)
    backends = [open_backend([str(log_file)]), open_backend([url])]
    yield backends
    for b in backends:
        b.close()


def _identity(row: Row) -> bytes:
    assert row.raw is not None
    return row.raw


def _walk(b: Backend, query: str, descending: bool, size: int = 7) -> list[Row]:
    out: list[Row] = []
    after = None
    while True:
        page = b.page(query, after, descending, size)
        out += page
        if len(page) < size:
            return out
        after = page[-1].key


def test_the_two_backends_are_what_they_say(both: list[Backend]) -> None:
    memory, store = both
    assert isinstance(memory, MemoryBackend) and isinstance(store, ClickHouseBackend)
    for b in both:
        assert set(b.capabilities) == set(CAPABILITIES)
        assert empty(b, [b.display]) is None


@pytest.mark.parametrize("query", QUERIES)
def test_counts_and_pages_both_ways_hold_the_same_events(both: list[Backend], query: str) -> None:
    memory, store = both
    assert memory.count(query) == store.count(query) > 0
    listings = []
    for b in both:
        forward = _walk(b, query, descending=False)
        backward = _walk(b, query, descending=True)
        assert [r.key for r in backward] == [r.key for r in reversed(forward)]
        times = [r.key[0] for r in forward]
        assert times == sorted(times)
        assert len({r.key for r in forward}) == len(forward) == b.count(query)
        raws = [b.event(r.key) for r in forward[:20]]
        assert all(e is not None and e.raw for e in raws)
        listings.append(sorted(orjson.dumps(orjson.loads(e.raw)) for e in raws if e and e.raw))
        # a page's values are the listing's columns, equal over both
        listings.append(sorted((r.key[0], str(r.value("user")), r.value("code")) for r in forward))
    assert listings[1] == listings[3]


def test_one_event_by_key_and_a_key_that_is_gone(both: list[Backend]) -> None:
    for b in both:
        first = b.page("verb:delete", None, False, 1)[0]
        got = b.event(first.key)
        assert got is not None and orjson.loads(got.raw or b"")["verb"] == "delete"
        gone = (first.key[0] + 1, *first.key[1:])
        assert b.event(gone) is None


def test_following_starts_with_every_match_then_only_what_arrives(both: list[Backend]) -> None:
    counts = []
    for b in both:
        b2 = b
        rows = b2.newer("verb:get", None)
        counts.append(len(rows))
        assert [r.key[0] for r in rows] == sorted(r.key[0] for r in rows)
        assert b2.newer("verb:get", None) == []
    assert counts[0] == counts[1] == both[0].count("verb:get")


def test_a_store_follow_returns_rows_shipped_later(
    tmp_path: Path, log_file: Path, chdb_base: str
) -> None:
    url = table(chdb_base)
    head = tmp_path / "head.log"
    lines = log_file.read_bytes().splitlines(keepends=True)
    head.write_bytes(b"".join(lines[:10]))
    fill(url, head)
    backend = open_backend([url])
    try:
        last = backend.page("", None, True, 1)[0].key
        assert backend.newer("", last) == []
        tail = tmp_path / "tail.log"
        tail.write_bytes(b"".join(lines[10:20]))
        fill(url, tail)
        fresh = backend.newer("", None)
        assert len(fresh) == backend.count() - 10
        assert backend.newer("", None) == []
    finally:
        backend.close()


def _normalised(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["key"], r["events"]))


@pytest.mark.parametrize("by", sorted(GROUPINGS))
def test_summaries_by_every_grouping_are_equal(both: list[Backend], by: str) -> None:
    memory, store = both
    for query in ("", "verb:get,list"):
        a, b = list(memory.summary(query, by, None)), list(store.summary(query, by, None))
        # the most frequent IP among equal ones: by reading order in memory, by text in a store
        for rows in (a, b):
            for r in rows:
                r.pop("top_ip")
                r["verbs"] = sorted(r["verbs"].items())
        assert _normalised(a) == _normalised(b)
    top_a, top_b = memory.summary("", by, 2), store.summary("", by, 2)
    assert (top_a.rest_keys, top_a.rest_total) == (top_b.rest_keys, top_b.rest_total)


def test_latency_summary_and_histogram_are_equal(both: list[Backend]) -> None:
    memory, store = both
    a = [
        (r["key"], r["requests"], r["p50"], r["max"])
        for r in memory.summary("", "verb", None, True)
    ]
    b = [
        (r["key"], r["requests"], r["p50"], r["max"]) for r in store.summary("", "verb", None, True)
    ]
    assert sorted(a) == sorted(b)
    for buckets in (1, 10, 200):
        ha, hb = memory.histogram("", buckets), store.histogram("", buckets)
        assert ha is not None and hb is not None
        assert (ha.start, ha.step) == (hb.start, hb.step)
        assert ha.total.tolist() == hb.total.tolist()
        assert ha.forbidden.tolist() == hb.forbidden.tolist()
    assert memory.time_range("verb:delete") == store.time_range("verb:delete")


def test_a_requests_stages_are_the_same_events(both: list[Backend]) -> None:
    memory, store = both
    ids = [r.value("audit_id") for r in memory.page("stage:ResponseComplete", None, False, 30)]
    ids = [i for i in ids if i]
    assert ids
    assert memory.requests("") == store.requests("") == []
    for audit_id in ids:
        a = sorted(map(_identity, memory.requests(audit_id)))
        b = sorted(map(_identity, store.requests(audit_id)))
        assert a == b and a


def _busy_objects(memory: MemoryBackend) -> list[tuple[str, str | None, str]]:
    out = []
    for name, _ in memory.values("name", "", 8):
        first = memory.page(f'name:"{name}" verb:create,update,patch,delete', None, False, 1)
        if first:
            v = first[0].values
            out.append((str(v.get("resource")), v.get("namespace"), name))
    return out


def test_an_objects_history_is_the_same(both: list[Backend]) -> None:
    memory, store = both
    assert isinstance(memory, MemoryBackend)
    objects = _busy_objects(memory)
    assert objects
    for resource, namespace, name in objects:
        for reads in (False, True):
            a = memory.history(resource, namespace, name, reads=reads)
            b = store.history(resource, namespace, name, reads=reads)
            assert a.entries, (resource, namespace, name)

            def shown(h: object) -> list:
                return [(e.audit_id, e.time, e.verb, e.code, e.notes, e.changes, e.patch)
                        for e in h.entries]  # type: ignore[attr-defined]  # fmt: skip

            assert shown(a) == shown(b)


def test_the_least_privilege_roles_of_each_subject_are_the_same(both: list[Backend]) -> None:
    memory, store = both
    users = [r["key"] for r in memory.summary("", "user", 6) if not r["missing"]]
    assert users
    for user in users:
        for clean in (False, True):
            a = memory.rbac(user, clean=clean, diff=True)
            b = store.rbac(user, clean=clean, diff=True)
            assert a.result.events == b.result.events
            assert render_yaml(a.result, counts=clean) == render_yaml(b.result, counts=clean)
            assert (a.diff is None) == (b.diff is None)


def test_completion_values_are_the_same(both: list[Backend]) -> None:
    memory, store = both
    for field, prefix in [("user", ""), ("user", "system:"), ("verb", "l"), ("ns", "kube"),
                          ("resource", ""), ("group", "system:"), ("ip", "1")]:  # fmt: skip
        a, b = memory.values(field, prefix, 10), store.values(field, prefix, 10)
        assert a == b, field
        assert all(v.startswith(prefix) for v, _ in a)
    assert memory.values("nosuchfield", "", 5) == store.values("nosuchfield", "", 5) == []


def test_a_store_follow_polls_a_quiet_store_and_a_resent_batch_to_nothing(
    tmp_path: Path, log_file: Path, chdb_base: str
) -> None:
    url = table(chdb_base)
    lines = log_file.read_bytes().splitlines(keepends=True)
    head, tail = tmp_path / "head.log", tmp_path / "tail.log"
    head.write_bytes(b"".join(lines[:10]))
    tail.write_bytes(b"".join(lines[10:20]))
    fill(url, head)
    backend = open_backend([url])
    assert isinstance(backend, ClickHouseBackend)
    try:
        shown = {r.key for r in backend.newer("", None)}
        assert len(shown) == 10
        assert backend.reader.stored() == (10, False)
        assert backend.newer("", None) == []  # quiet: the row count alone says so
        fill(url, head)  # the same batch again (a shipper's retry): copies, nothing new
        assert backend.reader.stored() == (20, True)
        assert backend.newer("", None) == []
        fill(url, tail)
        fresh = backend.newer("", None)
        assert {r.key for r in fresh} == {r.key for r in _walk(backend, "", False)} - shown
        assert len(fresh) == 10
        assert backend.newer("", None) == []
    finally:
        backend.close()


def test_following_another_query_starts_it_afresh(both: list[Backend]) -> None:
    for b in both:
        assert len(b.newer("verb:list", None)) == b.count("verb:list") > 0
        assert b.newer("verb:list", None) == []
        last = b.page("verb:get", None, True, 3)[-1].key  # the third newest
        assert len(b.newer("verb:get", last)) == 2
        assert b.newer("verb:get", last) == []


def test_memory_follow_returns_events_appended_later(tmp_path: Path, log_file: Path) -> None:
    from audittui.index.loader import add_backup, read_sources

    lines = log_file.read_bytes().splitlines(keepends=True)
    head, tail = tmp_path / "head.log", tmp_path / "tail.log"
    head.write_bytes(b"".join(lines[:10]))
    tail.write_bytes(b"".join(lines[10:30]))
    backend = open_backend([str(head)])
    try:
        assert isinstance(backend, MemoryBackend)
        assert len(backend.newer("", None)) == 10
        start = len(backend.store.sources)
        add_backup(backend.store, str(tail))
        read_sources(backend.store, backend.store.sources[start:])
        fresh = backend.newer("", None)
        assert len(fresh) == 20 and backend.count() == 30
        assert [r.key[0] for r in fresh] == sorted(r.key[0] for r in fresh)
        assert backend.newer("", None) == []
    finally:
        backend.close()


def _walk_listing(
    b: Backend, query: str, descending: bool, order: str, per_request: bool, size: int = 7
) -> list[Row]:
    out: list[Row] = []
    after = None
    while True:
        page = b.page(query, after, descending, size, False, order, per_request)
        out += page
        if len(page) < size:
            return out
        after = position(page[-1], order)


@pytest.mark.parametrize("query", QUERIES[:4])
def test_slowest_first_pages_the_same_requests_both_ways(both: list[Backend], query: str) -> None:
    """L's listing: timed requests only, latency descending, paged by (latency, key)."""
    listings = []
    for b in both:
        forward = _walk_listing(b, query, False, SLOWEST, False)
        backward = _walk_listing(b, query, True, SLOWEST, False)
        assert [r.key for r in backward] == [r.key for r in reversed(forward)]
        latencies = [int(r.value("latency")) for r in forward]
        assert latencies == sorted(latencies, reverse=True) and min(latencies, default=0) >= 0
        assert len(forward) == b.count(query, SLOWEST)
        listings.append(
            sorted((r.key[0], str(r.value("user")), r.value("latency")) for r in forward)
        )
    assert listings[0] == listings[1] and (listings[0] or query)


@pytest.mark.parametrize("query", QUERIES[:4])
def test_one_row_per_request_pages_each_requests_furthest_stage(
    both: list[Backend], query: str
) -> None:
    """R's listing: every request with a matching event once, as its furthest stage.

    A request is its auditID received at one time (every stage carries the received time).
    The samples reuse a few auditIDs at other times (logs of other clusters): the index folds
    those by auditID alone, a store keeps them apart, so they are left out of the comparison.
    """
    from audittui.analyses.requests import RANK

    everything = both[0].page("", None, False, 1_000_000)
    times: dict[str, set[int]] = {}
    for r in everything:
        times.setdefault(str(r.value("audit_id") or ""), set()).add(r.key[0])
    reused = {a for a, t in times.items() if a and len(t) > 1}
    listings = []
    for b in both:
        forward = _walk_listing(b, query, False, TIME, True)
        backward = _walk_listing(b, query, True, TIME, True)
        assert [r.key for r in backward] == [r.key for r in reversed(forward)]
        assert [r.key[0] for r in forward] == sorted(r.key[0] for r in forward)
        ids = [r.value("audit_id") for r in forward if r.value("audit_id") not in (None, *reused)]
        assert len(ids) == len(set(ids))  # one row per request
        assert len(forward) == b.count(query, TIME, True) <= b.count(query)
        for r in forward[:30]:  # no stage of the request goes further than the one shown
            if r.value("audit_id"):
                stages = b.requests(str(r.value("audit_id")))
                same = [s for s in stages if s.key[0] == r.key[0]] or stages
                best = max(RANK.get(str(s.value("stage") or ""), 0) for s in same)
                assert RANK.get(str(r.value("stage") or ""), 0) == best
        listings.append(
            sorted(
                (r.key[0], str(r.value("audit_id")), str(r.value("stage")))
                for r in forward
                if r.value("audit_id") not in reused
            )
        )
    assert listings[0] == listings[1] and (listings[0] or query)


def test_a_store_following_another_query_starts_afresh(both: list[Backend]) -> None:
    """newer() keeps its state per query: after a filter change the new query's events after
    the given key all come, also those older than the old query's newest."""
    store = both[1]
    lists = store.page("verb:list", None, False, 10_000)  # all before 2018
    assert len(lists) >= 2
    store.newer("verb:create", None)  # following another filter first (up to 2025)
    half = len(lists) // 2
    got = store.newer("verb:list", lists[half].key)
    assert [r.key for r in got] == [r.key for r in lists[half + 1 :]]
    assert store.newer("verb:list", lists[half].key) == []  # then only what arrives
