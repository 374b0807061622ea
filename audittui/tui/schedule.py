"""The app's one rate limiter: work that is asked for often (merge new events into the list,
recount a summary, evaluate the rules) runs at most once per interval and never twice at once,
and what was asked for meanwhile runs once after; plus the filter's debounce.

Timers come from the widget that owns the work, so they stop with it; a timer of the App can
still fire during shutdown, which ``alive`` (the App's "not closing") covers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump
from textual.timer import Timer


class Throttle:
    """Runs ``start`` when :meth:`request` ed, at most every ``every`` seconds counted from
    the end of the previous run. ``start`` returns True when it launched a worker (the
    worker's result handler then calls :meth:`done`), False when it ran to the end at once.
    While ``ready`` says no (a pane not shown, a histogram not yet laid out) a request waits:
    call :meth:`poke` when that changes."""

    def __init__(
        self,
        owner: MessagePump,
        every: float,
        start: Callable[[], bool],
        ready: Callable[[], bool] = lambda: True,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self._owner, self._every, self._start = owner, every, start
        self._ready, self._alive = ready, alive
        self.dirty = False
        self.running = False
        self._last = float("-inf")
        self._timer: Timer | None = None

    def request(self) -> None:
        self.dirty = True
        self.poke()

    def done(self) -> None:
        """The worker that ``start`` launched has shown its result."""
        self.running = False
        self._last = time.monotonic()
        self.poke()

    def poke(self) -> None:
        if not self.dirty or self.running or self._timer is not None or not self._alive():
            return
        if not self._ready():
            return
        wait = self._every - (time.monotonic() - self._last)
        if wait > 0:
            self._timer = self._owner.set_timer(wait, self._fire)
            return
        self.dirty = False
        self.running = self._start()
        if not self.running:
            self._last = time.monotonic()

    def _fire(self) -> None:
        self._timer = None
        self.poke()


class Debounce:
    """Runs the last :meth:`call` once ``quiet`` seconds passed without another."""

    def __init__(self, owner: MessagePump, quiet: float) -> None:
        self._owner, self._quiet = owner, quiet
        self._timer: Timer | None = None

    def call(self, action: Callable[[], object]) -> None:
        self.cancel()
        self._timer = self._owner.set_timer(self._quiet, action)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
