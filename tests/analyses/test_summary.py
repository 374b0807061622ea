"""Per-key summaries: what a row names must be a real value when there is one."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import orjson
import pytest
from conftest import drive_app, until, v1_event

import audittui
from audittui.analyses.summary import summarize
from audittui.cli import main as cli
from audittui.index.evaluate import select
from audittui.tui.filter_bar import FilterBar


def test_a_missing_source_ip_never_wins_the_top_ip(tmp_path):
    events = [v1_event(user={"username": "alice"}, sourceIPs=None) for _ in range(5)]
    events += [v1_event(user={"username": "alice"}, sourceIPs=["10.0.0.7"])]
    events += [v1_event(user={"username": "bob"}, sourceIPs=None)]
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    with audittui.load(path) as store:
        rows = {r["key"]: r for r in summarize(store, select(store, ""), by="user")}
        assert rows["alice"]["top_ip"] == "10.0.0.7"  # not "(none)", though most lack one
        assert rows["bob"]["top_ip"] == "(none)"  # nothing else to name


# -- keys an attacker chooses: bounded rows, the rest counted ---------------------------------

MANY = 200_000  # distinct users (and user agents): one event each, a few with more


def _many_keys(path: Path, field: str) -> int:
    """A log where nearly every event has its own ``field`` value ("user" or "ua"); the
    first ten keys have more events (a top that is not a tie). Its event count."""
    lines = []
    for i in range(MANY):
        user = f"user-{i:07d}" if field == "user" else "alice"
        agent = f"agent/{i:07d}" if field == "ua" else "kubectl/v1.30"
        for _ in range(1 + (10 - i if i < 10 else 0)):
            lines.append(
                orjson.dumps(
                    v1_event(
                        user={"username": user},
                        userAgent=agent,
                        verb=("get", "list", "delete")[i % 3],
                        responseStatus={"code": 403 if i % 7 == 0 else 200},
                    )
                )
            )
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


@pytest.fixture(scope="module")
def many_users(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("many") / "users.log"
    return path, _many_keys(path, "user")


def test_the_top_rows_and_the_rest_add_up(many_users, capsys) -> None:
    path, total = many_users
    assert cli.main(["summary", "--top", "100", "--format", "json", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 101
    assert [r["key"] for r in rows[:10]] == [f"user-{i:07d}" for i in range(10)]
    assert rows[-1] == {"key": None, "more_keys": MANY - 100, "events": MANY - 100}
    assert sum(r["events"] for r in rows) == total

    assert cli.main(["summary", "--top", "5", "--format", "csv", str(path)]) == 0
    csv_rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert csv_rows[-1][:2] == [f"({MANY - 5:,} more keys)", str(total - sum(range(7, 12)))]
    assert sum(int(r[1]) for r in csv_rows[1:]) == total

    assert cli.main(["summary", "--top", "3", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 1 + 3 + 2
    assert table[-2].split()[:2] == ["(199,997", "more"]
    assert table[-1] == f"{MANY:,} user value(s), {total:,} events"


def test_every_row_streamed_by_default(many_users, capsys) -> None:
    path, total = many_users
    assert cli.main(["summary", "--format", "csv", str(path)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
    assert len(rows) == MANY and len({r[0] for r in rows}) == MANY
    assert sum(int(r[1]) for r in rows) == total  # no rest row: nothing left out


def test_memory_per_distinct_key_is_small(many_users) -> None:
    """Numbers per key in arrays, a row's dict made only while it is read: summarising
    200,000 distinct users and reading every row takes tens of MB, where a dict per key and a
    dense keys × verbs matrix took hundreds."""
    path, total = many_users
    with audittui.load(path) as store:
        summarize(
            store, select(store, ""), by="verb"
        )  # the first summary's one-time costs (the request mask…)
        tracemalloc.start()
        try:
            events = sum(r["events"] for r in summarize(store, select(store, ""), by="user"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert events == total
    assert peak < 80 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_latency_top_counts_the_rest_in_requests(many_users, capsys) -> None:
    path, _ = many_users
    assert cli.main(["summary", "--latency", "--top", "4", "--format", "json", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and rows[-1]["key"] is None and rows[-1]["more_keys"] == MANY - 4
    assert cli.main(["summary", "--latency", "--format", "json", str(path)]) == 0
    every = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in every[:4]] == [r["key"] for r in rows[:4]]
    assert rows[-1]["requests"] == sum(r["requests"] for r in every[4:])


def test_many_user_agents_too(tmp_path: Path, capsys) -> None:
    path = tmp_path / "agents.log"
    total = _many_keys(path, "ua")
    assert cli.main(["summary", "--by", "ua", "--top", "10", "--format", "json", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {**rows[0], "key": "agent/0000000", "events": 11}
    assert rows[-1] == {"key": None, "more_keys": MANY - 10, "events": MANY - 10}
    assert sum(r["events"] for r in rows) == total


def test_the_app_lists_the_top_keys_and_counts_the_rest(tmp_path: Path) -> None:
    from audittui.tui.summary_pane import MAX_ROWS, SummaryPane

    path = tmp_path / "audit.log"
    n = MAX_ROWS + 250
    path.write_bytes(
        b"".join(
            orjson.dumps(v1_event(user={"username": f"u{i:05d}"})) + b"\n"
            for i in range(n)
            for _ in range(2 if i < 3 else 1)  # three keys with more events: the top
        )
    )

    async def check(app, pilot) -> None:
        await pilot.press("2")
        pane = app.query_one(SummaryPane)
        await until(pilot, lambda: len(pane.rows_data) == MAX_ROWS, what="the top rows")
        assert pane.rest == (250, 250) and pane.total_groups == n
        assert [r["key"] for r in pane.rows_data[:3]] == ["u00000", "u00001", "u00002"]
        assert pane.row_count == MAX_ROWS + 1  # the rest: one row
        last = pane.get_row_at(MAX_ROWS)
        assert (str(last[0]), str(last[1])) == ("(250 more keys)", "250")
        pane.move_cursor(row=MAX_ROWS)
        await pilot.press("enter")  # on the rest: nothing to drill into
        await pilot.pause(0.1)
        assert app.query_one(FilterBar).value == ""

    drive_app(str(path), tmp_path, check)
