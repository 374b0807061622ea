"""No filter blocks the app: every evaluation of a query (the preview while typing, Enter, a
drill-down, the new events merged into a filtered list) runs in a thread, keys are handled
while it runs, and a newer filter stops an older one still running.

A filter's cost is made as long as the test needs by holding the evaluation of one phrase at
a gate, as a slow term (free text over a big file, a regex over half a million URIs) holds
it: waiting without the GIL, passing its checkpoints (:mod:`audittui.index.interrupt`)."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import shown, status, until

import audittui.analyses.view as view_module
import audittui.index.evaluate as query_module
from audittui.index.interrupt import Interrupted, checkpoint
from audittui.query.syntax import Text
from audittui.tui import tabs
from audittui.tui.event_list import EventList
from audittui.tui.filter_bar import FilterBar
from tui.test_app import ev, line, make_log, run

SLOW = "slowphrase"  # the phrase whose evaluation waits at the gate


class Spy:
    """Wraps the evaluation of queries: which thread each ran on, and a gate for SLOW."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.on_main: list[str] = []  # queries evaluated on the UI thread
        self.threads = 0  # evaluations elsewhere
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = 0  # evaluations of SLOW held at the gate now
        self.interrupted = 0
        self.real = query_module.evaluate
        monkeypatch.setattr(query_module, "evaluate", self.evaluate)
        monkeypatch.setattr(view_module, "evaluate", self.evaluate)

    def evaluate(self, node, store, within=None):
        if threading.current_thread() is threading.main_thread():
            self.on_main.append(repr(node))
        else:
            self.threads += 1
        if isinstance(node, Text) and node.text == SLOW:
            self.waiting += 1
            try:
                deadline = time.monotonic() + 20  # (code that blocks would hang the test)
                while not self.gate.wait(0.005) and time.monotonic() < deadline:
                    checkpoint()
            except Interrupted:
                self.interrupted += 1
                raise
            finally:
                self.waiting -= 1
        return self.real(node, store, within)


def test_every_evaluation_runs_off_the_ui_thread(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    path = make_log(tmp_path, 30)

    async def check(app, pilot):
        await pilot.press("slash", *"user:bob")  # the preview while typing
        await until(pilot, shown(app, "10 / 30 events  filter: user:bob"))
        await pilot.press("enter")
        # New events arriving under the filter: merged without evaluating it on the UI thread.
        with open(path, "ab") as fh:
            fh.write(b"".join(line(ev(k)) for k in range(30, 36)))
        await until(pilot, shown(app, "12 / 36 events  filter: user:bob"))
        # A drill-down from the summary (its first row: the most events, with the filter).
        app.action_tab(tabs.SUMMARY)
        await until(pilot, lambda: app.query_one("#summary-table").row_count == 1)
        await pilot.press("enter")
        await until(pilot, shown(app, "12 / 36 events  filter: user:bob user:bob"))
        assert spy.threads and not spy.on_main, spy.on_main

    run(check, path, tmp_path)


def test_a_slow_filter_blocks_no_key_and_a_newer_one_stops_it(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    path = make_log(tmp_path, 30)

    async def check(app, pilot):
        spy.gate.clear()
        await pilot.press("slash", *SLOW, "enter")
        await until(pilot, lambda: spy.waiting == 1, what="the slow filter running")
        assert "filtering…" in status(app)
        # Keys are handled at once while it runs: panes switch, the list moves, text is typed.
        await pilot.press("2")
        assert app.query_one("#tabs").active == tabs.SUMMARY
        await pilot.press("1", "g")
        assert app.query_one(EventList).cursor == 0
        await pilot.press("slash", *"verb:delete")
        assert app.query_one(FilterBar).value == "verb:delete"
        # The newer filter is shown while the slow one would still run, and stops it.
        await pilot.press("enter")
        await until(pilot, shown(app, "10 / 30 events  filter: verb:delete"))
        await until(pilot, lambda: spy.interrupted == 1, what="the slow filter stopped")
        assert spy.waiting == 0 and not spy.on_main

    run(check, path, tmp_path)


def test_a_slow_catch_up_blocks_nothing_and_a_new_filter_supersedes_it(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    path = make_log(tmp_path, 30)

    async def check(app, pilot):
        await pilot.press("slash", *f"{SLOW} OR user:bob", "enter")
        await until(pilot, shown(app, f"10 / 30 events  filter: {SLOW} OR user:bob"))
        spy.gate.clear()
        with open(path, "ab") as fh:  # merged under the filter: the slow phrase holds it
            fh.write(b"".join(line(ev(k)) for k in range(30, 36)))
        await until(pilot, lambda: spy.waiting == 1, what="the catch-up running")
        await pilot.press("2")  # handled meanwhile
        assert app.query_one("#tabs").active == tabs.SUMMARY
        await pilot.press("1", "slash", *"user:alice", "enter")
        # The new filter's rows, then the new events merged under it; the old catch-up
        # stopped, and the list kept following.
        await until(pilot, shown(app, "12 / 36 events  filter: user:alice"))
        await until(pilot, lambda: spy.interrupted == 1, what="the old catch-up stopped")
        with open(path, "ab") as fh:
            fh.write(b"".join(line(ev(k)) for k in range(36, 39)))
        await until(pilot, shown(app, "13 / 39 events  filter: user:alice"))
        assert not spy.on_main, spy.on_main

    run(check, path, tmp_path)
