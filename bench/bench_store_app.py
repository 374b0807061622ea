"""The app (the same one as over files) on a ClickHouse store, timed as a user meets it: from
start to the first screen (the newest page drawn), to the count, the histogram and the
summary; a field filter applied to its new first screen; the summary regrouped; paging to
the first event and back.

Next to it, in the same run, the file app's first screen on the same events where a file is
given (``--file``): the in-memory index must read the whole file first.

    python bench/bench_store_app.py clickhouse://127.0.0.1:8123/default [--file LOG]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audittui.backend.open import open_store  # noqa: E402
from audittui.clickhouse.url import parse  # noqa: E402
from audittui.tui.app import AuditApp  # noqa: E402
from audittui.tui.event_list import EventList  # noqa: E402
from audittui.tui.histogram_pane import HistogramPane  # noqa: E402
from audittui.tui.summary_pane import SummaryPane  # noqa: E402


async def until(pilot, condition, timeout: float = 600.0) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("not reached")
        await pilot.pause(0.005)
    return time.perf_counter()


def store_figures(url: str, filter_text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    app = AuditApp(None, backend=open_store([url], print))

    async def main() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            rows = app.paged
            assert rows is not None
            out["first screen"] = await until(pilot, lambda: len(rows) > 0) - t0
            out["count"] = await until(pilot, lambda: rows.count is not None) - t0
            await pilot.press("3")
            hist = app.main.query_one(HistogramPane)
            out["histogram"] = await until(pilot, lambda: hist.hist is not None) - t0
            await pilot.press("2")
            summary = app.main.query_one(SummaryPane)
            out["summary by user"] = await until(pilot, lambda: bool(summary.rows_data)) - t0
            await pilot.press("1")
            total = rows.count or 0
            shown = rows.pages.rows
            t1 = time.perf_counter()
            app.apply_filter(filter_text)
            # the filter's own newest page in place (a new list), not the old one still shown
            await until(pilot, lambda: rows.pages.rows is not shown and rows.text == filter_text)
            out[f"filter {filter_text}: first screen"] = time.perf_counter() - t1
            await until(pilot, lambda: rows.count is not None)
            out[f"filter {filter_text}: count"] = time.perf_counter() - t1
            app.apply_filter("")
            await until(pilot, lambda: rows.text == "" and rows.count == total)
            t2 = time.perf_counter()
            await pilot.press("g")
            await until(
                pilot, lambda: not rows.more_before and app.main.query_one(EventList).cursor == 0
            )
            out["home (first event)"] = time.perf_counter() - t2
            t3 = time.perf_counter()
            await pilot.press("G")
            await until(
                pilot, lambda: not rows.more_after and app.main.query_one(EventList).following
            )
            out["end (newest event)"] = time.perf_counter() - t3
            out["events"] = float(total)

    try:
        asyncio.run(main())
    finally:
        if app.backend is not None:
            app.backend.close()
    return out


def file_first_screen(path: str) -> float:
    """The file app's time to its newest events shown and everything indexed."""
    from audittui.index.session import Session
    from audittui.tui.app import AuditApp

    t0 = time.perf_counter()
    session = Session([path], follow=False, backups=False)
    session.open()
    app = AuditApp(session)
    took: list[float] = []

    async def main() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await until(pilot, lambda: not session.indexing and len(app.view) == len(app.store))
            took.append(time.perf_counter() - t0)

    try:
        asyncio.run(main())
    finally:
        session.close()
    return took[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--filter", default="verb:delete")
    p.add_argument("--file", help="the same events as a log file, for the file app's figure")
    args = p.parse_args()
    figures = store_figures(args.url, args.filter)
    events = int(figures.pop("events"))
    print(f"the app on a store of {events:,} events ({parse(args.url).display})")
    for name, seconds in figures.items():
        print(f"  {name:40s} {seconds * 1000:9.0f} ms")
    if args.file:
        whole = file_first_screen(args.file)
        print(f"file app, {args.file}: everything indexed and shown in {whole:.2f} s")


if __name__ == "__main__":
    main()
