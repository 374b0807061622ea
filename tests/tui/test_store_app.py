"""The app over a ClickHouse store (``audittui clickhouse://…``), driven through Pilot against the
real 18.16 server and chdb: the newest page first, paging by keyset to either end, a filter
compiled to SQL, the summary the server computed, the detail fetched by key with secrets
masked, new rows followed, and a store that fails mid-session said in a notice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from conftest import until, v1_event

from audittui.clickhouse.client import connect
from audittui.clickhouse.reads import open_reader
from audittui.clickhouse.rows import from_lines
from audittui.clickhouse.url import parse
from audittui.tui.json_tree import JsonTree
from audittui.tui.run import run_app
from audittui.tui.store_app import StoreApp, StoreList, StoreSummary

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
USERS = ("alice", "bob", "system:serviceaccount:kube-system:replicaset-controller")
N = 1_000  # five pages of the list's 200


def stamp(k: int) -> str:
    return (T0 + timedelta(milliseconds=100 * k)).isoformat().replace("+00:00", "Z")


def event(k: int, **kw) -> dict:
    return v1_event(
        auditID=f"id-{k:05d}",
        requestReceivedTimestamp=stamp(k),
        stageTimestamp=stamp(k),
        user={"username": USERS[k % 3]},
        verb=("get", "list", "delete")[k % 3],
        responseStatus={"code": 403 if k % 10 == 7 else 200},
        **kw,
    )


SECRET = event(
    N,
    level="RequestResponse",
    objectRef={"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
    requestObject={"kind": "Secret", "apiVersion": "v1", "data": {"password": "c3VwZXJz"}},
)


def insert(url: str, events: list[dict], first: int = 0) -> None:
    data = b"".join(orjson.dumps(e) + b"\n" for e in events)
    rows, _, _ = from_lines(data, first, 1, "/var/log/audit.log", "", True)
    client = connect(parse(url))
    try:
        client.ensure_table()
        client.insert(rows.body())
    finally:
        client.close()


@pytest.fixture
def url(store_url: str) -> str:
    """A table of its own on the shared server, filled with N events and a Secret's."""
    table = f"app_{uuid.uuid4().hex[:12]}"
    full = f"{store_url}{'&' if '?' in store_url else '?'}table={table}"
    insert(full, [event(k) for k in range(N)] + [SECRET])
    return full


def drive(url: str, check, size=(120, 40)) -> None:
    reader = open_reader(url)
    app = StoreApp(reader, parse(url).display)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            lst = app.query_one(StoreList)
            await until(pilot, lambda: len(lst.window) and app.count is not None, what="shown")
            await check(app, pilot, lst)

    asyncio.run(main())


def ids(lst: StoreList) -> list[str]:
    return [r.value("audit_id") for r in lst.window.rows]


def test_opens_on_the_newest_page_and_pages_by_key_to_both_ends(url):
    async def check(app, pilot, lst):
        assert app.count == N + 1
        assert lst.row.value("audit_id") == SECRET["auditID"] and lst.following
        assert lst.window.more_before and not lst.window.more_after
        assert ids(lst) == [f"id-{k:05d}" for k in range(N - 199, N + 1)]
        await pilot.press("g")  # home: the first page, fetched from the start
        await until(pilot, lambda: lst.row is not None and lst.row.value("audit_id") == "id-00000")
        assert not lst.following and not lst.window.more_before
        for _ in range(12):  # page down past the window's end: the next pages arrive
            await pilot.press("pagedown")
            await pilot.pause(0.05)
        await until(pilot, lambda: len(lst.window) > 200, what="a page after the first")
        held = ids(lst)
        assert held == sorted(held) and len(held) == len(set(held))  # keyset: no gap, no repeat
        assert held[0] == "id-00000" and held[-1] == f"id-{len(held) - 1:05d}"
        await pilot.press("G")
        await until(pilot, lambda: lst.row.value("audit_id") == SECRET["auditID"])
        assert lst.following

    drive(url, check)


def test_a_filter_runs_on_the_server_and_a_bad_one_is_said(url):
    async def check(app, pilot, lst):
        await pilot.press("slash")
        app.query_one("#filter").value = "user:bob code:403"
        await pilot.press("enter")
        want = [k for k in range(N) if k % 3 == 1 and k % 10 == 7]
        await until(pilot, lambda: app.count == len(want), what="the filtered count")
        await until(pilot, lambda: ids(lst) == [f"id-{k:05d}" for k in want])
        await pilot.press("slash")
        app.query_one("#filter").value = "user:(bob"
        await pilot.press("enter")
        await until(pilot, lambda: any("filter:" in n.message for n in app._notifications))
        assert app.text == "user:bob code:403" and app.count == len(want)  # kept

    drive(url, check)


def test_summary_from_the_server_and_enter_drills_into_the_list(url):
    async def check(app, pilot, lst):
        await pilot.press("2")
        table = app.query_one(StoreSummary)
        await until(pilot, lambda: len(table.rows_data) == 3, what="three users")
        by_user = {r["key"]: r["events"] for r in table.rows_data}
        assert by_user == {"alice": 334, "bob": 334, USERS[2]: 333}  # the Secret's is alice's
        await pilot.press("enter")  # alice or bob: the top row
        top = table.rows_data[0]["key"]
        await until(pilot, lambda: app.count == by_user[top], what="drilled")
        assert app.text == f"user:{top}"

    drive(url, check)


def test_detail_by_key_masks_secrets_until_asked(url):
    async def check(app, pilot, lst):
        await pilot.press("enter")
        tree = app.query_one(JsonTree)

        def text() -> str:
            out: list[str] = []

            def walk(node) -> None:
                out.append(node.label.plain)
                for child in node.children:
                    walk(child)

            walk(tree.root)
            return "\n".join(out)

        await until(pilot, lambda: "secrets" in text() or "Secret" in text(), what="detail")
        assert "c3VwZXJz" not in text()
        await pilot.press("x")
        await until(pilot, lambda: "c3VwZXJz" in text(), what="revealed")

    drive(url, check)


def test_follows_rows_written_after_it_opened(url):
    async def check(app, pilot, lst):
        assert lst.following
        late = {**event(N - 3), "auditID": "late"}  # written now, timed before the newest
        insert(url, [event(k) for k in range(N + 1, N + 6)] + [late], first=10_000)
        await until(pilot, lambda: lst.row.value("audit_id") == f"id-{N + 5:05d}", timeout=10)
        await until(pilot, lambda: "late" in ids(lst), what="the late row in its place")
        assert app.count == N + 7
        at = ids(lst).index("late")
        assert ids(lst)[at - 1 : at + 2] == [f"id-{N - 3:05d}", "late", f"id-{N - 2:05d}"]

    drive(url, check)


def test_an_unreachable_store_is_one_line_and_exit_2(capsys):
    from clickhouse_server import free_port

    assert run_app([f"clickhouse://127.0.0.1:{free_port()}/default"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "127.0.0.1" in err
