"""The time histogram: bucket size for the span, outcomes counted apart, and selecting a
range in the app filters the list to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
from conftest import drive_app, shown, until, v1_event

from audittui.analyses.histogram import SECOND, histogram
from audittui.index.loader import load
from audittui.tui.event_list import EventList
from audittui.tui.histogram_pane import HistogramPane

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def at(seconds: float, code: int = 200) -> dict:
    t = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return v1_event(requestReceivedTimestamp=t, stageTimestamp=t, responseStatus={"code": code})


def test_buckets_fit_the_width_and_outcomes_are_apart(write_lines):
    events = [at(k * 7, code) for k, code in enumerate([200, 403, 404, 500, 201] * 20)]
    store = load(write_lines("a.log", events))
    rows = store.order()
    h = histogram(store, rows, 100)  # a 693 s span in at most 100 buckets: 10 s steps
    assert h.step == 10 * SECOND and len(h) <= 100
    assert h.start == (store.time_range()[0] // h.step) * h.step
    assert int(h.total.sum()) == 100
    assert (int(h.forbidden.sum()), int(h.client.sum()), int(h.server.sum())) == (20, 20, 20)
    h = histogram(store, rows, 5)  # fewer buckets: a coarser round step
    assert h.step == 300 * SECOND and len(h) <= 5 and int(h.total.sum()) == 100
    after, before = h.bounds(1, 0)
    assert (after, before) == (h.start, h.start + 2 * h.step)
    assert histogram(store, np.empty(0, dtype=np.int64), 10) is None


def test_select_a_range_in_the_app(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(at(k * 10)) + b"\n" for k in range(60)))

    async def check(app, pilot) -> None:
        assert len(app.view) == 60
        await pilot.press("3")
        pane = app.query_one(HistogramPane)
        await until(pilot, lambda: pane.hist is not None)
        assert app.focused is pane
        assert int(pane.hist.total.sum()) == 60 and pane.hist.step == 10 * SECOND
        assert "60 buckets of 10.0s" in pane.render().plain
        await pilot.press("home", "right", "space", "right", "right", "enter")
        await until(pilot, shown(app, "3 / 60 events  filter: after:"))
        assert app.view.text == ("after:2024-05-01T10:00:10Z before:2024-05-01T10:00:40Z")
        assert isinstance(app.focused, EventList)

    drive_app(str(path), tmp_path, check, size=(100, 30), follow=False)
