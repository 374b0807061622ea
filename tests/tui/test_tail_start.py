"""Start-up ends in tail mode at the newest event, whatever the order in which the first
batches, the first layout, the callbacks queued for after a refresh and resizes arrive.

Each order is forced on a bare :class:`EventList` over a store grown slice by slice, so the
test does not depend on how the machine schedules threads: the race seen once in ten runs
under load (the list sat at the oldest events, not following) is reproduced every time."""

from __future__ import annotations

import asyncio
import itertools
import os

import orjson
import pytest
from conftest import v1_event
from textual.app import App, ComposeResult

from audittui.analyses.view import RowView
from audittui.index.loader import parse_slice
from audittui.index.store import Store
from audittui.ingest.sources import open_source
from audittui.tui.event_list import EventList, ListHeader
from audittui.tui.list_source import MemoryRows

N = 60  # events, in two batches: more than a screenful either way


def write_log(tmp_path) -> tuple[str, int]:
    lines = [
        orjson.dumps(
            v1_event(
                auditID=f"id-{k}",
                stageTimestamp=f"2024-05-01T10:{k // 60:02d}:{k % 60:02d}.000000Z",
                requestReceivedTimestamp=f"2024-05-01T10:{k // 60:02d}:{k % 60:02d}.000000Z",
            )
        )
        + b"\n"
        for k in range(N)
    ]
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines))
    return str(path), sum(len(x) for x in lines[: N // 2])


class Host(App[None]):
    """The list and its header, nothing else; ``early`` batches arrive before any layout."""

    CSS = "EventList { height: 1fr; }"

    def __init__(self, store: Store, grow, early: int) -> None:
        super().__init__()
        self.view = RowView(store)
        self.grow, self.early = grow, early

    def compose(self) -> ComposeResult:
        lst = EventList(MemoryRows(self.view), id="list")
        yield ListHeader(lst)
        yield lst

    def on_mount(self) -> None:
        for _ in range(self.early):  # no size yet: the first layout has not happened
            self.batch()

    def batch(self) -> None:
        self.grow()
        inserted = self.view.catch_up()
        if inserted is not None:
            self.query_one(EventList).rows_inserted(inserted)


def newest_on_screen(lst: EventList) -> bool:
    """What the user sees: the last screen line is the newest event, under the cursor."""
    height = lst.scrollable_content_region.height
    if height <= 0 or len(lst.view) != N:
        return False
    last = lst.render_line(min(height, N) - 1).text
    return "10:00:59" in last and lst.cursor == N - 1 and lst.following


def state(lst: EventList) -> str:
    return (
        f"rows={len(lst.view)} cursor={lst.cursor} following={lst.following} "
        f"scroll_y={lst.scroll_y} max_scroll_y={lst.max_scroll_y} size={lst.size} "
        f"scrollbar={lst.show_vertical_scrollbar} "
        f"last line={lst.render_line(lst.size.height - 1).text!r}"
    )


# Steps after mount: "batch" (a batch arrives), "layout" (the screen lays out and paints),
# "resize" (the terminal changes size), "eager" (callbacks queued for after the next refresh
# run before the layout pass, as Textual does when the screen's idle comes first).
STEPS = ("batch", "layout", "resize", "eager")
# (batches before the first layout, steps): with two early batches only the others remain.
CASES = [(early, order) for early in (0, 1) for order in itertools.permutations(STEPS)] + [
    (2, order) for order in itertools.permutations(STEPS[1:])
]


@pytest.mark.parametrize(
    ("early", "order"), CASES, ids=[f"{e}early-" + "-".join(o) for e, o in CASES]
)
def test_every_start_up_order_ends_following_at_the_newest_event(tmp_path, order, early):
    path, half = write_log(tmp_path)
    store = Store()
    store.add_source(open_source(0, path, store.spool))
    cuts = iter([(0, half), (half, os.path.getsize(path))])

    def grow() -> None:
        a, b = next(cuts, (0, 0))
        if b:
            store.append(parse_slice(0, path, a, b))

    app = Host(store, grow, early)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            lst = app.query_one(EventList)
            batches = early
            for step in order:
                if step == "batch" and batches < 2:
                    app.batch()
                    batches += 1
                elif step == "layout":
                    await pilot.pause()
                elif step == "resize":
                    await pilot.resize_terminal(100, 22)
                elif step == "eager":
                    lst.call_after_refresh = lambda cb, *a, **kw: bool(cb(*a, **kw)) or True
            while batches < 2:
                app.batch()
                batches += 1
            # Settle: a few frames, with no timer or thread left to fix things up later.
            for _ in range(5):
                await pilot.pause()
            assert newest_on_screen(lst), state(lst)
            assert lst.scroll_y == lst.max_scroll_y > 0, state(lst)
            assert lst.vertical_scrollbar.position == lst.scroll_y, state(lst)

    asyncio.run(main())
