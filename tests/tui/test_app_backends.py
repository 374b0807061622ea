"""One app over both backends: each test opens the same events as a file (the in-memory
index) and shipped into a store (chdb; the paging test also the real 18.16 server), drives
the app through Pilot and asserts what it shows: the first screen, the filter with its live
preview, the detail (masked until x), the summary and histogram panes, paging by key to both
ends, following new events (and counting them while paused), hostile text inert, one row per
request (R), slowest first (L), malformed lines (!), export (ctrl+s), a policy rule's events
(rule:N) and Tab completion, each the same over both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import status, until, v1_event

from audittui.backend.open import open_store
from audittui.clickhouse.client import connect
from audittui.clickhouse.rows import from_lines
from audittui.clickhouse.url import parse
from audittui.index.session import Session
from audittui.tui.app import AuditApp
from audittui.tui.event_list import EventList
from audittui.tui.histogram_pane import HistogramPane
from audittui.tui.history import History
from audittui.tui.json_tree import JsonTree
from audittui.tui.run import run_app
from audittui.tui.summary_pane import SummaryPane

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
USERS = ("alice", "bob", "system:serviceaccount:kube-system:replicaset-controller")
HOSTILE = "ev\x1b[2Jil\u202e[bold]x[/bold]\nname"


def stamp(k: int) -> str:
    return (T0 + timedelta(milliseconds=100 * k)).isoformat().replace("+00:00", "Z")


def event(k: int, **kw: Any) -> dict:
    fields: dict[str, Any] = {
        "auditID": f"id-{k:05d}",
        "requestReceivedTimestamp": stamp(k),
        "stageTimestamp": stamp(k),
        "user": {"username": USERS[k % 3]},
        "verb": ("get", "list", "delete")[k % 3],
        "responseStatus": {"code": 403 if k % 10 == 7 else 200},
    }
    return v1_event(**{**fields, **kw})


def secret(k: int) -> dict:
    return event(
        k,
        level="RequestResponse",
        objectRef={"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        requestObject={"kind": "Secret", "apiVersion": "v1", "data": {"password": "c3VwZXJz"}},
    )


def lines(events: list[dict]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def insert(url: str, events: list[dict], first: int = 0) -> None:
    rows, _, _ = from_lines(lines(events), first, 1, "/var/log/audit.log", "", True)
    client = connect(parse(url))
    try:
        client.ensure_table()
        client.insert(rows.body())
    finally:
        client.close()


Check = Callable[[AuditApp, Any], Awaitable[None]]


class Opened:
    """The same events in one backend: ``drive`` opens the app on them, ``add`` appends."""

    def __init__(self, kind: str, tmp_path: Path, url: str = "") -> None:
        self.kind, self.tmp_path, self.url = kind, tmp_path, url
        self.log = tmp_path / "audit.log"
        self.written = 0

    def fill(self, events: list[dict]) -> None:
        if self.kind == "memory":
            self.log.write_bytes(lines(events))
        else:
            insert(self.url, events)
        self.written = len(events)

    def add(self, events: list[dict]) -> None:
        if self.kind == "memory":
            with self.log.open("ab") as f:
                f.write(lines(events))
        else:
            insert(self.url, events, first=10_000 + self.written)
        self.written += len(events)

    def drive(self, check: Check, size: tuple[int, int] = (120, 40), **app_args: Any) -> None:
        history = History(self.tmp_path / "state" / "history")
        session = None
        if self.kind == "memory":
            session = Session([str(self.log)], follow=True, backups=True)
            session.open()
            if session.follower is not None:
                session.follower.heartbeat_ms = 50
            app = AuditApp(session, history=history, **app_args)
        else:
            backend = open_store([self.url], print)
            app = AuditApp(None, history=history, backend=backend, **app_args)

        async def main() -> None:
            async with app.run_test(size=size) as pilot:
                await until(pilot, lambda: shown_count(app) == self.written, what="first screen")
                await check(app, pilot)

        try:
            asyncio.run(main())
        finally:
            if session is not None:
                session.close()
            if app.backend is not None:
                app.backend.close()


def shown_count(app: AuditApp) -> int | None:
    """The events the list's filter selects, as the app knows it."""
    if app.paged is not None:
        return app.paged.count
    return len(app.view) if not app.session.indexing and app.filter.pending is None else None


def ids(app: AuditApp) -> list[str]:
    lst = app.main.query_one(EventList)
    if app.paged is not None:
        return [r.value("audit_id") for r in app.paged.rows]
    return [app.store.value("audit_id", i) for i in lst.view.rows]


def under_cursor(app: AuditApp) -> str | None:
    lst = app.main.query_one(EventList)
    if lst.event is None:
        return None
    if app.paged is not None:
        row = app.paged.by_key(lst.event)
        return None if row is None else row.value("audit_id")
    return app.store.value("audit_id", lst.event)


def tree_text(app: AuditApp) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        out.append(str(node.label.plain))
        for child in node.children:
            walk(child)

    walk(app.main.query_one(JsonTree).root)
    return "\n".join(out)


@pytest.fixture(params=["memory", "chdb"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Opened:
    if request.param == "memory":
        return Opened("memory", tmp_path)
    url = str(request.getfixturevalue("chdb_url"))
    return Opened("chdb", tmp_path, f"{url}?table=app_{uuid.uuid4().hex[:8]}")


N = 300


def test_first_screen_is_the_newest_event_under_the_cursor(opened: Opened) -> None:
    opened.fill([event(k) for k in range(N)] + [secret(N)])

    async def check(app: AuditApp, pilot: Any) -> None:
        lst = app.main.query_one(EventList)
        assert under_cursor(app) == f"id-{N:05d}" and lst.following
        await until(pilot, lambda: f"{N + 1:,}" in status(app), what="the count in the status")
        drawn = [lst.render_line(y).text for y in range(lst.scrollable_content_region.height)]
        assert any("secrets" in line for line in drawn)

    opened.drive(check)


def test_filter_previews_while_typed_and_a_bad_one_keeps_the_list(opened: Opened) -> None:
    opened.fill([event(k) for k in range(N)])
    want = [f"id-{k:05d}" for k in range(N) if k % 3 == 1 and k % 10 == 7]

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("slash")
        for ch in "user:bob code:403":
            await pilot.press(ch if ch != " " else "space")
        # the live preview: no Enter pressed
        await until(pilot, lambda: shown_count(app) == len(want), what="the preview")
        await until(pilot, lambda: ids(app)[-len(want) :] == want, what="the rows")
        await pilot.press("enter")
        assert app.filter.committed == "user:bob code:403"
        await pilot.press("slash", "space", "left_parenthesis")  # a query that does not parse
        hint = app.main.query_one("#filter-hint")
        await until(pilot, lambda: "the list keeps" in str(hint.render()), what="the error")
        assert f"the list keeps: {app.list_text}" in str(hint.render())
        await pilot.press("escape")  # the filter in force again, its rows
        await until(pilot, lambda: app.list_text == "user:bob code:403", what="restored")
        await until(pilot, lambda: shown_count(app) == len(want), what="its count")

    opened.drive(check)


def test_detail_masks_secrets_until_x(opened: Opened) -> None:
    opened.fill([event(k) for k in range(20)] + [secret(20)])

    async def check(app: AuditApp, pilot: Any) -> None:
        await until(pilot, lambda: "Secret" in tree_text(app), what="the detail")
        assert "c3VwZXJz" not in tree_text(app)
        await pilot.press("enter", "x")
        await until(pilot, lambda: "c3VwZXJz" in tree_text(app), what="revealed")

    opened.drive(check)


def test_summary_and_histogram_panes_over_the_backend(opened: Opened) -> None:
    opened.fill([event(k) for k in range(N)])

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("2")
        table = app.main.query_one(SummaryPane)
        await until(pilot, lambda: len(table.rows_data) == 3, what="three users")
        assert {r["key"]: r["events"] for r in table.rows_data} == {u: 100 for u in USERS}
        await pilot.press("enter")  # the top row's events
        top = table.rows_data[0]["key"]
        await until(pilot, lambda: app.list_text == f"user:{top}" and shown_count(app) == 100)
        await pilot.press("3")
        pane = app.main.query_one(HistogramPane)
        await until(pilot, lambda: pane.hist is not None and int(pane.hist.total.sum()) == 100)

    opened.drive(check)


def test_follows_events_written_after_it_opened(opened: Opened) -> None:
    opened.fill([event(k) for k in range(50)])

    async def check(app: AuditApp, pilot: Any) -> None:
        opened.add([event(k) for k in range(50, 55)])
        await until(pilot, lambda: under_cursor(app) == "id-00054", timeout=15, what="followed")
        assert ids(app)[-5:] == [f"id-{k:05d}" for k in range(50, 55)]

    opened.drive(check)


def test_hostile_text_stays_inert(opened: Opened) -> None:
    hostile = v1_event(
        auditID="h",
        requestReceivedTimestamp=stamp(1),
        stageTimestamp=stamp(1),
        user={"username": HOSTILE},
    )
    opened.fill([event(0), hostile])

    async def check(app: AuditApp, pilot: Any) -> None:
        lst = app.main.query_one(EventList)
        await until(pilot, lambda: under_cursor(app) == "h")
        drawn = "".join(lst.render_line(y).text for y in range(5))
        assert "\x1b" not in drawn and "\u202e" not in drawn and "\n" not in drawn
        header = app.main.query_one("#detail-header")
        await until(pilot, lambda: "ev\\x1b" in str(header.render()), what="the detail, escaped")
        assert "\x1b" not in str(header.render()) and "\u202e" not in str(header.render())
        assert "\x1b" not in tree_text(app)

    opened.drive(check)


def stages(app: AuditApp) -> list[tuple[str, str]]:
    """(auditID, stage) of the rows the list holds, in list order."""
    if app.paged is not None:
        return [(r.value("audit_id"), r.value("stage")) for r in app.paged.rows]
    lst = app.main.query_one(EventList)
    v = app.store.value
    return [(v("audit_id", i), v("stage", i)) for i in lst.view.rows]


def test_r_lists_one_row_per_request_its_furthest_stage(opened: Opened) -> None:
    evs = []
    for k in range(6):
        evs.append(event(k, auditID=f"r{k}", stage="RequestReceived", stageTimestamp=stamp(k)))
        if k != 3:  # r3 never completed: its row is the stage it reached
            evs.append(
                event(k, auditID=f"r{k}", stage="ResponseComplete", stageTimestamp=stamp(k + 2))
            )
    opened.fill(evs)

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("R")
        await until(pilot, lambda: shown_count(app) == 6 and len(stages(app)) == 6, what="R")
        want = [(f"r{k}", "RequestReceived" if k == 3 else "ResponseComplete") for k in range(6)]
        assert stages(app) == want
        assert "one row per request" in status(app)
        # followed: a request completing and a new one join the list
        opened.add(
            [
                event(3, auditID="r3", stage="ResponseComplete", stageTimestamp=stamp(9)),
                event(8, auditID="r8", stage="RequestReceived", stageTimestamp=stamp(8)),
            ]
        )
        want = [*[(f"r{k}", "ResponseComplete") for k in range(6)], ("r8", "RequestReceived")]
        await until(pilot, lambda: stages(app) == want, timeout=15, what="followed")
        await until(pilot, lambda: shown_count(app) == 7, what="counted")
        await pilot.press("slash", *"verb:list", "enter")  # the list requests: r1, r4
        await until(pilot, lambda: shown_count(app) == 2, what="R over a filter")
        assert stages(app) == [("r1", "ResponseComplete"), ("r4", "ResponseComplete")]
        await pilot.press("R")
        await until(pilot, lambda: shown_count(app) == 4, what="every event again")
        assert "one row per request" not in status(app)

    opened.drive(check)


def test_l_lists_the_slowest_requests_first_and_back(opened: Opened) -> None:
    latency = [(k * 7) % 10 + 1 for k in range(10)]  # tenths of a second, all different
    opened.fill([event(k, stageTimestamp=stamp(k + latency[k])) for k in range(10)])
    slowest = [f"id-{k:05d}" for k in sorted(range(10), key=lambda k: -latency[k])]

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("L")
        await until(pilot, lambda: ids(app) == slowest, what="slowest first")
        assert under_cursor(app) == slowest[0]
        await until(pilot, lambda: "slowest requests first" in status(app), what="said")
        await pilot.press("j", "j")
        assert under_cursor(app) == slowest[2]
        await pilot.press("L")
        await until(pilot, lambda: ids(app) == [f"id-{k:05d}" for k in range(10)], what="by time")

    opened.drive(check)


def test_paused_counts_new_events(opened: Opened) -> None:
    opened.fill([event(k) for k in range(50)])

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("k", "k")  # off the tail: paused
        lst = app.main.query_one(EventList)
        await until(pilot, lambda: not lst.following, what="paused")
        await pilot.pause(1.5)  # a poll or two with nothing new
        opened.add([event(k) for k in range(50, 53)])
        await until(pilot, lambda: "+3 new" in status(app), timeout=15, what="+3 new")
        assert under_cursor(app) == "id-00047"  # the cursor stays
        await pilot.press("F")
        await until(pilot, lambda: under_cursor(app) == "id-00052", what="followed again")

    opened.drive(check)


def test_ctrl_s_exports_the_filtered_events_masked(opened: Opened) -> None:
    from audittui.tui.screens import ExportScreen

    n = 450  # more than a page of the store's export
    opened.fill([event(k) for k in range(n)] + [secret(n)])
    target = opened.tmp_path / "out" / "x.jsonl"
    target.parent.mkdir()
    bob = [f"id-{k:05d}" for k in range(n) if k % 3 == 1]

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("slash", *"user:bob", "enter")
        await until(pilot, lambda: shown_count(app) == len(bob), what="the filter")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen), what="asked where")
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists(), what="written")
        got = [orjson.loads(x)["auditID"] for x in target.read_bytes().splitlines()]
        assert got == bob
        assert not list(target.parent.glob(".audittui-export-*"))  # renamed whole, no leftover
        await pilot.press("escape")  # every event, the secret masked
        await until(pilot, lambda: shown_count(app) == n + 1, what="no filter")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter", "y")
        await until(pilot, lambda: len(target.read_bytes().splitlines()) == n + 1)
        assert b"c3VwZXJz" not in target.read_bytes()

    opened.drive(check)


def test_bang_shows_the_malformed_lines_or_what_a_store_keeps(opened: Opened) -> None:
    from audittui.tui.screens import MalformedScreen

    opened.fill([event(k) for k in range(5)])
    if opened.kind == "memory":
        with opened.log.open("ab") as f:
            f.write(b"{not json\n")

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, MalformedScreen), what="the pane")
        text = " ".join(str(w.render()) for w in app.screen.query("Label"))
        if app.backend is None:
            assert "1 malformed line(s)" in text
        else:
            assert "A store keeps events only" in text and "audittui ship" in text
        assert not any(n.severity == "error" for n in app._notifications)

    opened.drive(check)


def test_pages_by_key_to_both_ends_on_a_store(store_url: str, tmp_path: Path) -> None:
    """A store holds a stretch of the selection: g fetches its first page, page-down past
    the stretch the next ones (no gap, no repeat), G the newest again."""
    n = 1_000  # five pages of 200
    url = f"{store_url}{'&' if '?' in store_url else '?'}table=app_{uuid.uuid4().hex[:8]}"
    opened = Opened("store", tmp_path, url)
    opened.fill([event(k) for k in range(n)] + [secret(n)])

    async def check(app: AuditApp, pilot: Any) -> None:
        assert app.paged is not None
        lst = app.main.query_one(EventList)
        assert app.paged.more_before and not app.paged.more_after
        assert ids(app) == [f"id-{k:05d}" for k in range(n - 199, n + 1)]
        await pilot.press("g")
        await until(pilot, lambda: under_cursor(app) == "id-00000", what="the first page")
        assert not lst.following and not app.paged.more_before
        for _ in range(12):
            await pilot.press("pagedown")
            await pilot.pause(0.05)
        await until(pilot, lambda: len(app.paged) > 200, what="a page after the first")
        held = ids(app)
        assert held == sorted(held) and len(held) == len(set(held))
        assert held[0] == "id-00000" and held[-1] == f"id-{len(held) - 1:05d}"
        await pilot.press("G")
        await until(pilot, lambda: under_cursor(app) == f"id-{n:05d}", what="the newest")
        assert lst.following

    opened.drive(check)


def test_r_and_l_page_on_a_store(store_url: str, tmp_path: Path) -> None:
    """R and L over the 18.16 server and chdb: their first page, their count and the pages
    past the stretch (by (latency, key) for L, by request for R), with no gap nor repeat."""
    n = 600
    url = f"{store_url}{'&' if '?' in store_url else '?'}table=app_{uuid.uuid4().hex[:8]}"
    opened = Opened("store", tmp_path, url)
    latency = [(k * 7919) % n for k in range(n)]  # all different
    evs = [event(k, stageTimestamp=stamp(k + latency[k])) for k in range(n)]
    evs += [event(k, stage="RequestReceived", stageTimestamp=stamp(k)) for k in range(0, n, 2)]
    opened.fill(evs)
    slowest = [f"id-{k:05d}" for k in sorted(range(n), key=lambda k: -latency[k])]

    async def check(app: AuditApp, pilot: Any) -> None:
        assert app.paged is not None
        await pilot.press("L")
        await until(pilot, lambda: ids(app)[:200] == slowest[:200], what="slowest first")
        await until(pilot, lambda: shown_count(app) == n, what="the requests counted")
        for _ in range(12):
            await pilot.press("pagedown")
            await pilot.pause(0.05)
        await until(pilot, lambda: len(app.paged) > 200, what="a page after the first")
        assert ids(app) == slowest[: len(ids(app))]
        await pilot.press("L")
        await until(pilot, lambda: app.paged.order == "time" and shown_count(app) == len(evs))
        await pilot.press("R")
        await until(pilot, lambda: shown_count(app) == n, what="one row per request")
        await pilot.press("g")
        await until(pilot, lambda: under_cursor(app) == "id-00000", what="the first page")
        for _ in range(12):
            await pilot.press("pagedown")
            await pilot.pause(0.05)
        await until(pilot, lambda: len(app.paged) > 200, what="a page after the first")
        assert ids(app) == [f"id-{k:05d}" for k in range(len(ids(app)))]
        assert {r.value("stage") for r in app.paged.rows} == {"ResponseComplete"}

    opened.drive(check)


def test_an_unreachable_store_is_one_line_and_exit_2(capsys: pytest.CaptureFixture) -> None:
    from clickhouse_server import free_port

    assert run_app([f"clickhouse://127.0.0.1:{free_port()}/default"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "127.0.0.1" in err


def deployment_write(k: int, verb: str, replicas: int) -> dict:
    body = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "prod", "resourceVersion": str(k)},
        "spec": {"replicas": replicas},
    }
    ref = {"resource": "deployments", "namespace": "prod", "name": "web", "apiGroup": "apps",
           "apiVersion": "v1"}  # fmt: skip
    return event(k, verb=verb, level="RequestResponse", objectRef=ref, requestObject=body,
                 responseObject=body, responseStatus={"code": 200})  # fmt: skip


def test_h_shows_the_history_of_the_events_object(opened: Opened) -> None:
    from audittui.tui.screens import ObjectHistoryScreen

    opened.fill([deployment_write(0, "create", 1), event(1), deployment_write(2, "update", 4)])

    async def check(app: AuditApp, pilot: Any) -> None:
        await until(pilot, lambda: "Deployment" in tree_text(app), what="the detail")
        await pilot.press("h")
        await until(pilot, lambda: getattr(app.screen, "done", False), what="the history")
        assert isinstance(app.screen, ObjectHistoryScreen)
        title = str(app.screen.query_one("#title").render())
        assert "deployments prod/web: 2 write(s)" in title
        assert "    ~ /spec/replicas: 1 → 4" in app.screen.query_one("TextLines").lines
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ObjectHistoryScreen))

    opened.drive(check)


def test_a_shows_the_access_of_the_events_user(opened: Opened) -> None:
    from audittui.tui.screens import AccessScreen

    opened.fill([event(k) for k in range(5)])  # the newest, 4: bob lists pods

    async def check(app: AuditApp, pilot: Any) -> None:
        await until(pilot, lambda: "bob" in str(app.main.query_one("#detail-header").render()))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccessScreen), what="the access")
        perms = app.screen.query_one("#permissions")
        rows = {tuple(str(c) for c in perms.get_row_at(k)[:2]) for k in range(perms.row_count)}
        assert ("list", "pods") in rows

    opened.drive(check)


def test_tab_completes_a_value_from_the_backend_and_history_recalls(opened: Opened) -> None:
    from audittui.tui.filter_bar import FilterBar

    opened.fill([event(k) for k in range(30)])

    async def check(app: AuditApp, pilot: Any) -> None:
        bar = app.main.query_one(FilterBar)
        await pilot.press("slash", "u", "s", "e", "r", "colon", "b", "tab")
        await until(pilot, lambda: bar.value == "user:bob ", what="user:b completed")
        await pilot.press("enter")
        await until(pilot, lambda: app.list_text == "user:bob " and shown_count(app) == 10)
        await pilot.press("slash", "ctrl+u")
        await pilot.press("up")  # the filter just used, from the history
        assert bar.value.strip() == "user:bob"
        # one completion path over either backend: codes, a case typed otherwise, and the
        # common prefix of several values
        await pilot.press("ctrl+u", *"code:4", "tab")
        await until(pilot, lambda: bar.value == "code:403 ", what="code:4 completed")
        await pilot.press("ctrl+u", *"verb:LI", "tab")
        await until(pilot, lambda: bar.value == "verb:list ", what="any case")
        await pilot.press("ctrl+u", *"user:s", "tab")
        await until(pilot, lambda: bar.value == f"user:{USERS[2]} ", what="a long name")
        await pilot.press("ctrl+u", *"user:", "tab")
        hint = app.main.query_one("#filter-hint")
        await until(pilot, lambda: "alice" in str(hint.render()) and "bob" in str(hint.render()))

    opened.drive(check)


def exec_event(k: int) -> dict:
    return event(
        k,
        auditID=f"exec-{k}",
        stage="ResponseStarted",
        verb="create",
        requestURI=f"/api/v1/namespaces/dev/pods/web-{k}/exec?command=sh",
        objectRef={"resource": "pods", "subresource": "exec", "namespace": "dev", "name": "w"},
        responseStatus={"code": 101},
    )


def test_findings_pane_and_enter_lists_a_findings_events(opened: Opened) -> None:
    from audittui.tui.findings_pane import FindingsPane

    opened.fill([event(k) for k in range(20)] + [exec_event(20)])

    async def check(app: AuditApp, pilot: Any) -> None:
        pane = app.main.query_one(FindingsPane)
        await pilot.press("4")
        await until(pilot, lambda: "exec-attach" in pane.rule_ids, what="exec-attach fired")
        finding = next(f for f in pane.findings if f.rule.id == "exec-attach")
        assert finding.count == 1 and finding.users == [USERS[20 % 3]]
        pane.move_cursor(row=pane.rule_ids.index("exec-attach"))
        await pilot.press("enter")
        await until(pilot, lambda: shown_count(app) == 1, what="the finding's events")
        assert ids(app) == ["exec-20"]

    opened.drive(check)


def test_policy_pane_simulates_a_policy_over_the_filter(opened: Opened) -> None:
    from conftest import SAMPLES

    from audittui.policy import load as load_policy
    from audittui.tui.policy_pane import PolicyPane

    path = str(SAMPLES / "policies" / "gce-default-policy.yaml")
    opened.fill([event(k) for k in range(30)] + [secret(30)])

    async def check(app: AuditApp, pilot: Any) -> None:
        await pilot.press("5")
        pane = app.main.query_one(PolicyPane)
        await until(pilot, lambda: pane.simulation is not None, what="the simulation")
        assert pane.simulation is not None
        assert sum(e.events for e in pane.simulation.rules) == 31
        # Enter on a rule: rule:N, the events it decides, listed (on a store too)
        effects = {e.rule: e.events for e in pane.simulation.rules}
        row = next(k for k, r in enumerate(pane.rules) if isinstance(r, int) and effects[r] == 1)
        rule = pane.rules[row]
        pane.focus()
        pane.move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: app.list_text == f"rule:{rule}", what="rule:N in force")
        await until(pilot, lambda: shown_count(app) == 1, what="the rule's events")
        assert ids(app) == [f"id-{30:05d}"]  # the secret: the policy's rule for secrets
        header = app.main.query_one("#detail-header")
        await until(pilot, lambda: "policy: rule" in str(header.render()), what="its rule")
        await pilot.press("escape")
        await until(pilot, lambda: shown_count(app) == 31, what="every event again")

    opened.drive(check, policy=load_policy(path), policy_path=path)


def test_o_moves_between_the_stages_of_a_request(opened: Opened) -> None:
    from audittui.tui.detail import DetailPane

    started = event(5, auditID="req", stage="RequestReceived", stageTimestamp=stamp(5))
    done = event(5, auditID="req", stage="ResponseComplete", stageTimestamp=stamp(6))
    opened.fill([event(k) for k in range(5)] + [started, done])

    async def check(app: AuditApp, pilot: Any) -> None:
        detail = app.main.query_one(DetailPane)
        header = app.main.query_one("#detail-header")
        await until(pilot, lambda: "stages:" in str(header.render()), what="the stages line")
        first = (detail.event or {}).get("stage")
        await pilot.press("o")
        await until(pilot, lambda: (detail.event or {}).get("stage") not in (None, first))
        await pilot.press("o")
        await until(pilot, lambda: (detail.event or {}).get("stage") == first, what="back")

    opened.drive(check)


def test_every_pane_shows_the_same_on_a_file_and_on_a_store(tmp_path: Path) -> None:
    """The same events as a file and in chdb: the list, the status count, the detail header,
    the summary by user and by verb, the histogram, the findings and the policy lab agree."""
    from conftest import SAMPLES

    from audittui.policy import load as load_policy
    from audittui.tui.findings_pane import FindingsPane
    from audittui.tui.policy_pane import PolicyPane

    policy_path = str(SAMPLES / "policies" / "gce-default-policy.yaml")
    events = [event(k) for k in range(120)] + [exec_event(120), secret(121)]
    seen: dict[str, dict[str, object]] = {}

    def collector(kind: str) -> Check:
        async def collect(app: AuditApp, pilot: Any) -> None:
            got = seen.setdefault(kind, {})
            got["ids"] = ids(app)[-100:]
            header = app.main.query_one("#detail-header")
            await until(pilot, lambda: "secrets" in str(header.render()), what="the detail")
            got["header"] = str(header.render())
            await pilot.press("2")
            table = app.main.query_one(SummaryPane)
            for by in ("user", "verb"):
                await until(pilot, lambda by=by: table.by == by and bool(table.rows_data))
                got[f"summary {by}"] = sorted((r["key"], r["events"]) for r in table.rows_data)
                await pilot.press("b")
                await until(pilot, lambda by=by: table.by != by, what="regrouped")
            await pilot.press("3")
            pane = app.main.query_one(HistogramPane)
            await until(pilot, lambda: pane.hist is not None, what="the histogram")
            assert pane.hist is not None
            got["histogram"] = (int(pane.hist.total.sum()), int(pane.hist.server.sum()))
            await pilot.press("4")
            findings = app.main.query_one(FindingsPane)
            await until(pilot, lambda: findings.evaluated, what="the findings", timeout=30)
            got["findings"] = sorted((f.rule.id, f.count) for f in findings.findings)
            await pilot.press("5")
            policy = app.main.query_one(PolicyPane)
            await until(pilot, lambda: policy.simulation is not None, what="the simulation")
            assert policy.simulation is not None
            got["policy"] = [(e.rule, e.events, e.dropped) for e in policy.simulation.rules]

        return collect

    policy = load_policy(policy_path)
    file_side = Opened("memory", tmp_path / "file")
    (tmp_path / "file").mkdir()
    file_side.fill(events)
    file_side.drive(collector("memory"), policy=policy, policy_path=policy_path)
    (tmp_path / "store").mkdir()
    store_side = Opened("chdb", tmp_path / "store", f"chdb://{tmp_path / 'store'}?table=same")
    store_side.fill(events)
    store_side.drive(collector("chdb"), policy=policy, policy_path=policy_path)
    assert seen["memory"] == seen["chdb"]
    memory = seen["memory"]
    assert len(memory["ids"]) == 100 and ("exec-attach", 1) in memory["findings"]
    assert memory["histogram"] == (122, 0) and len(memory["summary user"]) == 3
