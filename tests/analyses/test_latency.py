"""Request latency: which events are timed requests, percentiles per group, the CLI's
``summary --latency``, the slowest-first list, and the latency annotations in the detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from conftest import drive_app, shown, status, until, v1_event

from audittui.analyses.latency import annotations, percentiles, request_mask
from audittui.analyses.summary import summarize
from audittui.analyses.view import SLOWEST, matching
from audittui.cli.main import main
from audittui.index.evaluate import select
from audittui.index.loader import load
from audittui.tui.event_list import EventList

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def timed(k: int, ms: int, stage: str = "ResponseComplete", **kw) -> dict:
    start = T0 + timedelta(seconds=k)
    end = start + timedelta(milliseconds=ms)
    return v1_event(
        auditID=f"id-{k}",
        stage=stage,
        requestReceivedTimestamp=start.isoformat().replace("+00:00", "Z"),
        stageTimestamp=end.isoformat().replace("+00:00", "Z"),
        **kw,
    )


def pods(sub: str | None = None) -> dict:
    ref = {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1"}
    if sub:
        ref["subresource"] = sub
    return ref


EVENTS = [
    timed(0, 10),  # a get: timed
    timed(1, 20, stage="RequestReceived"),  # not the end of a request
    timed(2, 600_000, verb="watch"),  # long-running verbs
    timed(3, 60_000, verb="create", objectRef=pods("exec")),
    timed(4, 60_000, objectRef=pods("attach")),
    timed(5, 60_000, objectRef=pods("portforward")),
    timed(6, 60_000, verb="proxy"),
    timed(
        7,
        90_000,
        objectRef=pods("log"),
        requestURI="/api/v1/namespaces/default/pods/p/log?follow=true",
    ),
    timed(
        8, 30, objectRef=pods("log"), requestURI="/api/v1/namespaces/default/pods/p/log?tailLines=5"
    ),
    timed(9, 40_000, objectRef=None, requestURI="/debug/pprof/profile?seconds=40"),
    timed(10, 5, objectRef=None, requestURI="/healthz"),
    timed(11, 500, stage="Panic"),
]


def test_only_completed_short_requests_are_timed(write_lines):
    store = load(write_lines("a.log", EVENTS))
    timed_ids = sorted(store.value("audit_id", i) for i in request_mask(store).nonzero()[0])
    # A log without follow, /healthz and a panic are timed too; nothing long-running is.
    assert timed_ids == ["id-0", "id-10", "id-11", "id-8"]


def test_percentiles_are_nearest_rank_per_group():
    import numpy as np

    keys = np.array([1] * 100 + [2] * 3)
    lat = np.array(list(range(100, 0, -1)) + [7, 5, 9])  # 1..100 shuffled by reversal
    stats = percentiles(keys, lat)
    assert stats[1] == (100, 50, 95, 99, 100)
    assert stats[2] == (3, 7, 9, 9, 9)
    assert percentiles(np.array([], dtype=int), np.array([], dtype=int)) == {}


def test_summary_rows_carry_latency(write_lines):
    store = load(
        write_lines(
            "a.log",
            [timed(k, 10 * (k + 1), user={"username": "alice"}) for k in range(10)]
            + [timed(20, 5_000, verb="watch", user={"username": "bob"})],
        )
    )
    rows = {r["key"]: r for r in summarize(store, select(store, ""), by="user")}
    assert rows["alice"]["requests"] == 10
    assert (rows["alice"]["p50"], rows["alice"]["p95"], rows["alice"]["max"]) == (
        50_000,
        100_000,
        100_000,
    )
    assert rows["bob"]["requests"] == 0 and rows["bob"]["p95"] is None  # only a watch


def test_cli_summary_latency(write_lines, capsys):
    path = write_lines(
        "a.log",
        [timed(k, 10, verb="get") for k in range(5)] + [timed(9, 2_000, verb="list")],
    )
    assert main(["summary", "--latency", "--by", "verb", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["VERB", "REQUESTS", "P50", "P95", "P99", "MAX"]
    assert lines[1].split()[:3] == ["list", "1", "2.0s"]  # the slowest p95 first
    assert lines[2].split()[:3] == ["get", "5", "10ms"]
    assert main(["summary", "--latency", "--by", "verb", "--format", "json", path]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data[0] == {
        "key": "list",
        "requests": 1,
        "p50": 2_000_000,
        "p95": 2_000_000,
        "p99": 2_000_000,
        "max": 2_000_000,
    }


def test_latency_annotations():
    ev = v1_event(
        annotations={
            "apiserver.latency.k8s.io/etcd": "2.1s",
            "apiserver.latency.k8s.io/total": "2.4s",
            "authorization.k8s.io/decision": "allow",
        }
    )
    assert annotations(ev) == [("etcd", "2.1s"), ("total", "2.4s")]
    assert annotations(v1_event(annotations=None)) == []


def test_slowest_first_in_the_app(tmp_path):
    events = [timed(k, (k * 37) % 11 + 1) for k in range(12)] + [timed(30, 9_000, verb="watch")]
    events[5]["annotations"] = {"apiserver.latency.k8s.io/etcd": "1.5s"}
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    async def check(app, pilot) -> None:
        assert len(app.view) == 13
        await pilot.press("L")
        await until(pilot, shown(app, "12 / 13 events  slowest requests first"))
        lst = app.query_one(EventList)
        latencies = [int(app.store.column("latency")[i]) for i in app.view.rows]
        assert latencies == sorted(latencies, reverse=True)
        assert len(app.view) == 12  # the watch is not a timed request
        assert lst.cursor == 0 and "slowest requests first" in status(app)
        assert list(app.view.rows) == list(matching(app.store, None, SLOWEST))
        # The detail shows the API server's own breakdown when the event has one.
        lst._user_move(int(list(app.view.rows).index(5)))
        await pilot.pause()
        assert "latency etcd 1.5s" in app.query_one("#detail-header").render().plain
        await pilot.press("L")
        await until(pilot, lambda: shown(app, "13 / 13 events")() and "slowest" not in status(app))
        assert len(app.view) == 13

    drive_app(str(path), tmp_path, check, follow=False)
