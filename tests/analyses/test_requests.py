"""One row per request: stages folded into the furthest one, open requests marked, kept
current as stages arrive (live, and out of order from the background indexer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
from conftest import drive_app, shown, status, until, v1_event

from audittui.analyses.requests import Requests
from audittui.analyses.view import TIME, RowView, matching
from audittui.index.loader import load
from audittui.tui.event_list import EventList

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def stage(req: str, k: int, name: str, code: int | None = 200, **kw) -> dict:
    at = (T0 + timedelta(seconds=k)).isoformat().replace("+00:00", "Z")
    return v1_event(
        auditID=req,
        stage=name,
        requestReceivedTimestamp=at,
        stageTimestamp=at,
        responseStatus=None if code is None else {"code": code},
        **kw,
    )


def test_representatives_and_open_requests(write_lines):
    events = [
        stage("a", 0, "RequestReceived", None),
        stage("a", 0, "ResponseComplete"),
        stage("b", 1, "RequestReceived", None),  # never completes
        stage("c", 2, "RequestReceived", None, verb="watch"),
        stage("c", 2, "ResponseStarted", verb="watch"),  # still streaming
        stage("d", 3, "ResponseStarted", 401),  # rejected before auditing: complete
        stage("", 4, "ResponseComplete"),  # no auditID: a request of its own
        stage("", 5, "ResponseComplete"),
        stage("e", 6, "ResponseComplete"),  # written before its RequestReceived
        stage("e", 6, "RequestReceived", None),
    ]
    store = load(write_lines("a.log", events))
    requests = Requests()
    requests.update(store)
    reps = requests.representatives(store, np.arange(len(store)))
    assert reps.tolist() == [1, 1, 2, 4, 4, 5, 6, 7, 8, 8]
    assert [requests.is_open(store, int(i)) for i in (1, 2, 4, 5, 6, 8)] == [
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    rows = matching(store, None, TIME, requests)
    assert rows.tolist() == [1, 2, 4, 5, 6, 7, 8]


def test_stages_arriving_later_replace_their_row_in_place(tmp_path):
    from audittui.index.store import Store
    from audittui.ingest.batch import BatchBuilder
    from audittui.ingest.sources import Source

    lines = [
        orjson.dumps(e)
        for e in [
            stage("a", 0, "RequestReceived", None),
            stage("b", 1, "RequestReceived", None),
            stage("a", 0, "ResponseComplete", 201),
            stage("c", 2, "ResponseComplete", 403),
            stage("b", 1, "ResponseComplete", 500),
        ]
    ]
    store = Store()
    store.add_source(Source(0, "x", "x"))
    view = RowView(store)
    requests = Requests()
    view.replace("", None, matching(store.snapshot(), None, TIME, requests), 0, TIME, requests)
    offset = 0
    for line in lines:  # one event per batch, as a slow follower would deliver them
        builder = BatchBuilder(0)
        builder.add_lines(line + b"\n", offset, 1, final=True)
        offset += len(line) + 1
        store.append(builder.finish())
        view.catch_up()
    codes = [int(store.column("code")[i]) for i in view.rows]
    assert codes == [201, 500, 403]  # a, b, c: one row each, with the final code
    assert view.rows.tolist() == matching(store, None, TIME, Requests()).tolist()


def test_per_request_rows_in_the_app(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(
        b"".join(
            orjson.dumps(e) + b"\n"
            for k in range(10)
            for e in (
                stage(f"r{k}", k, "RequestReceived", None),
                stage(f"r{k}", k, "ResponseComplete"),
            )
        )
    )

    async def check(app, pilot) -> None:
        assert len(app.view) == 20
        await pilot.press("R")
        await until(pilot, shown(app, "10 / 20 events  one row per request"))
        assert "one row per request" in status(app)
        lst = app.query_one(EventList)
        with open(path, "ab") as fh:  # a new request starts...
            fh.write(orjson.dumps(stage("new", 20, "RequestReceived", None)) + b"\n")
        await until(pilot, shown(app, "11 / 21 events"))
        assert "open" in lst.render_line(lst.cursor - int(lst.scroll_y)).text
        with open(path, "ab") as fh:  # ...and completes: the same row, now with its code
            fh.write(orjson.dumps(stage("new", 20, "ResponseComplete", 404)) + b"\n")
        await until(pilot, lambda: " 404 " in lst.render_line(lst.cursor - int(lst.scroll_y)).text)
        assert len(app.view) == 11
        assert " 404 " in lst.render_line(lst.cursor - int(lst.scroll_y)).text
        await pilot.press("R")
        await until(
            pilot, lambda: shown(app, "22 / 22 events")() and "per request" not in status(app)
        )

    drive_app(str(path), tmp_path, check)


def test_incremental_rows_match_a_recomputation_on_random_arrivals():
    """Stages of 40 requests arrive in random order and random batches, some matching the
    filter only at some stage: the live rows equal a fresh computation every time."""
    import random

    from audittui.index.store import Store
    from audittui.ingest.batch import BatchBuilder
    from audittui.ingest.sources import Source
    from audittui.query.syntax import parse

    rng = random.Random(11)
    names = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
    events = []
    for r in range(40):
        for name in rng.sample(names[:3], rng.randint(1, 3)) + (["Panic"] if r % 9 == 0 else []):
            events.append(
                stage(
                    f"r{r}" if r % 7 else "",
                    r % 13,
                    name,
                    200 if r % 2 else 404,
                    user={"username": rng.choice(["alice", "bob"])},
                )
            )
    rng.shuffle(events)
    node = parse("user:alice")
    store = Store()
    store.add_source(Source(0, "x", "x"))
    view = RowView(store)
    view.replace(
        "user:alice", node, matching(store.snapshot(), node, TIME, Requests()), 0, TIME, Requests()
    )
    offset, k = 0, 0
    while k < len(events):
        size = rng.randint(1, 6)
        block = b"".join(orjson.dumps(e) + b"\n" for e in events[k : k + size])
        builder = BatchBuilder(0)
        builder.add_lines(block, offset, 1, final=True)
        offset, k = offset + len(block), k + size
        store.append(builder.finish())
        view.catch_up()
        expected = matching(store.snapshot(), node, TIME, Requests())
        assert sorted(view.rows.tolist()) == sorted(expected.tolist())
        times = store.column("time")[view.rows]
        assert (np.diff(times) >= 0).all()


def test_a_representative_past_the_snapshot_waits_for_the_next_catch_up(write_lines):
    """Another thread (a filter worker) may have indexed stages past the snapshot a
    catch-up or a filter works on: rows never point past the snapshot, and the stage
    arrives with the next catch-up."""
    from audittui.index.store import Snapshot

    events = [
        stage("a", 0, "RequestReceived", None),
        stage("b", 1, "ResponseComplete"),
        stage("a", 0, "ResponseComplete", 404),
    ]
    store = load(write_lines("a.log", events))
    requests = Requests()
    requests.update(store)  # knows all three events
    early = Snapshot(store, 2)
    assert matching(early, None, TIME, requests).tolist() == [0, 1]  # not 2: past the end
    view = RowView(store)
    view.replace("", None, np.empty(0, dtype=np.int64), 0, TIME, requests)
    real = store.snapshot
    store.snapshot = lambda: early
    view.catch_up()
    assert view.rows.tolist() == [0, 1]
    store.snapshot = real
    view.catch_up()
    assert view.rows.tolist() == [2, 1]  # request a now shows its final stage, in place
