"""The app's rate limiter and debounce, in a running Textual app (real timers)."""

from __future__ import annotations

import asyncio
import time

from textual.app import App

from audittui.tui.schedule import Debounce, Throttle


async def _until(pilot, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached"
        await pilot.pause(0.01)


def test_throttle_runs_at_once_then_once_per_interval_for_many_requests():
    async def run() -> None:
        app = App()
        async with app.run_test() as pilot:
            runs: list[float] = []
            t = Throttle(app, 0.2, lambda: runs.append(time.monotonic()) is None and False)
            for _ in range(10):
                t.request()
            assert len(runs) == 1  # the first at once; the nine others wait as one
            await _until(pilot, lambda: len(runs) == 2)
            assert runs[1] - runs[0] >= 0.2
            assert not t.dirty and t._timer is None  # nothing more is due

    asyncio.run(run())


def test_throttle_never_overlaps_a_worker_and_runs_once_after_it():
    async def run() -> None:
        app = App()
        async with app.run_test() as pilot:
            started: list[int] = []
            t = Throttle(app, 0.05, lambda: started.append(1) is None)  # True: a worker
            t.request()
            t.request()
            t.request()
            assert len(started) == 1 and t.running  # asked again while running: held
            await pilot.pause(0.1)
            assert len(started) == 1  # still running: never two at once
            t.done()
            await _until(pilot, lambda: len(started) == 2)  # what was asked meanwhile
            t.done()
            assert not t.dirty

    asyncio.run(run())


def test_throttle_waits_while_not_ready_and_runs_when_poked():
    async def run() -> None:
        app = App()
        async with app.run_test():
            ready, runs = [False], []
            t = Throttle(app, 0.0, lambda: runs.append(1) is None and False, lambda: ready[0])
            t.request()
            assert not runs and t.dirty
            ready[0] = True
            t.poke()
            assert runs == [1] and not t.dirty

    asyncio.run(run())


def test_debounce_runs_only_the_last_call_after_quiet():
    async def run() -> None:
        app = App()
        async with app.run_test() as pilot:
            seen: list[str] = []
            d = Debounce(app, 0.05)
            for text in ("u", "us", "use", "user"):
                d.call(lambda text=text: seen.append(text))
            await _until(pilot, lambda: seen)
            await pilot.pause(0.1)
            assert seen == ["user"]
            d.call(lambda: seen.append("x"))
            d.cancel()
            await pilot.pause(0.1)
            assert seen == ["user"]

    asyncio.run(run())
