"""The app's list over a backend that pages (a store): every question to the backend in a
thread worker, every answer taken in on the app's thread.

A filter is its count and its first page (the newest by time, the slowest first with L; one
row per request with R); scrolling near the held stretch's edge asks for the next page, g/G
past it for the selection's first or last page; in a list by time :meth:`poll` asks for the
events newer than the newest seen every :data:`POLL_EVERY` seconds, followed or counted
("+N new") while paused. A backend error is a notice and
a word in the status (said once while it lasts), never a crash; an answer for a filter since
replaced is dropped (:attr:`PagedRows.generation <audittui.tui.paged_rows.PagedRows>`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from textual.app import App
from textual.worker import get_current_worker

from ..backend.protocol import REQUESTS, TIME, Backend, Row
from ..ingest.formats import parse_json
from ..output.inert import inert
from .paged_rows import PagedRows


class Owner(Protocol):
    """What the feed needs of the app it fills the list of."""

    @property
    def closing(self) -> bool: ...
    def paged_replaced(self, at_end: bool) -> None: ...
    def paged_shifted(self, front: int, new: int = 0) -> None: ...
    def paged_status(self) -> None: ...
    def filter_failed_quietly(self) -> None: ...


# show(event, latency, gone, key, stages): the detail of a fetched event
Show = Callable[[dict | None, int, str, Any, list[tuple[Any, str]]], None]
POLL_EVERY = 1.0  # s between the follower's asks for newer events
RECOUNT_EVERY = 10.0  # s: while following, the count is asked again this often


class PagedFeed:
    """Fills ``rows`` (the list's source) from ``backend`` for ``app``."""

    def __init__(self, app: App[None], owner: Owner, backend: Backend, rows: PagedRows) -> None:
        self.app, self.owner, self.backend, self.rows = app, owner, backend, rows
        self.state = "connecting"  # "ok", "loading", or "error (what): why"
        self.fetching = False  # a page is being fetched: edges and polls wait
        # A poll is out. Polls never overlap nor get dropped: Backend.newer remembers what it
        # returned, so an answer thrown away would be events never shown.
        self.polling = False
        self.counted = 0.0

    # -- what the app asks --------------------------------------------------------------------

    def apply(
        self,
        text: str,
        done: Callable[[str, int], None],
        order: str = TIME,
        per_request: bool = False,
    ) -> None:
        """Put ``text`` in force in ``order``, one row per request or per event: its first
        page (the newest by time, the slowest first), then its count; ``done(text,
        generation)`` once the page is in (the list then shows it)."""
        generation = self.rows.start_pending()
        self.state, self.fetching = "loading", True

        def ask() -> list[Row]:
            return self.rows.fetch_start(text, order, per_request)

        def got(rows: list[Row]) -> None:
            self.fetching = False
            self.rows.install(text, rows, order, per_request)
            done(text, generation)
            self.count()

        self._run(ask, got, generation, "events", group="paged-page")

    def count(self) -> None:
        text, order, per_request = self.rows.text, self.rows.order, self.rows.per_request
        self.counted = time.monotonic()
        self._run(lambda: self.backend.count(text, order, per_request), self._got_count,
                  self.rows.generation, "count", group="paged-count")  # fmt: skip

    def edge(self, side: str) -> None:
        if self.fetching:
            return
        self.fetching = True
        text = self.rows.text

        def got(rows: list[Row]) -> None:
            self.fetching = False
            if side == "after":
                self.owner.paged_shifted(-self.rows.add_after(rows))
            else:
                self.owner.paged_shifted(self.rows.add_before(rows))

        self._run(lambda: self.rows.fetch_more(text, side), got, self.rows.generation,
                  "events", group="paged-page")  # fmt: skip

    def end(self, which: str) -> None:
        """g/G past the held stretch: the selection's first or last page."""
        self.fetching = True
        text = self.rows.text
        ask = self.rows.fetch_first if which == "first" else self.rows.fetch_last

        def got(rows: list[Row]) -> None:
            self.fetching = False
            (self.rows.set_first if which == "first" else self.rows.set_last)(rows)
            self.owner.paged_replaced(at_end=which == "last")

        self._run(lambda: ask(text), got, self.rows.generation, "events", group="paged-page")

    def poll(self, following: bool) -> None:
        """Ask for new events, followed or not: while paused the list counts them ("+N
        new"). A list by time, one row per event, takes new events at its end; one row per
        request, followed, takes its newest page again (a request's row changes as its
        later stages arrive)."""
        if self.fetching or self.polling or self.state == "loading":
            return
        if not self.rows.follows:
            if following and self.rows.per_request:
                self._newest_requests()
            return
        self.polling = True
        text = self.rows.text

        def got(rows: list[Row]) -> None:
            if rows:
                self.rows.add_newer(rows)
                self.owner.paged_shifted(0, new=len(rows))
                if time.monotonic() - self.counted > RECOUNT_EVERY:
                    self.count()

        def done() -> None:
            self.polling = False

        self._run(lambda: self.rows.fetch_newer(text), got, self.rows.generation, "events",
                  group="paged-poll", exclusive=False, done=done)  # fmt: skip

    def _newest_requests(self) -> None:
        self.polling = True
        text = self.rows.text

        def got(rows: list[Row]) -> None:
            held = self.rows.rows[-len(rows) :] if rows else []
            if [(r.key, r.value("stage")) for r in rows[::-1]] != [
                (r.key, r.value("stage")) for r in held
            ]:
                self.rows.set_last(rows)
                self.owner.paged_replaced(at_end=True)
                self.count()

        def done() -> None:
            self.polling = False

        self._run(lambda: self.rows.fetch_last(text), got, self.rows.generation, "events",
                  group="paged-poll", exclusive=False, done=done)  # fmt: skip

    def detail(self, key: Any, show: Show) -> None:
        """The event of ``key`` with its raw JSON, parsed, and its request's stages (when the
        backend offers them), to ``show(event, latency, gone, key, stages)``."""

        def ask() -> tuple[dict | None, int, str, Any, list[tuple[Any, str]]]:
            row = self.backend.event(key)
            if row is None or row.raw is None:
                gone = "This event is no longer there (rotated away or deleted)."
                return None, -1, gone, key, []
            event = parse_json(row.raw)
            if not isinstance(event, dict):
                event = {"raw": inert(row.raw.decode("utf-8", "replace"))}
            latency = row.value("latency")
            audit_id = row.value("audit_id")
            stages: list[tuple[Any, str]] = []
            if audit_id and not self.backend.capabilities.get(REQUESTS):
                same = sorted(self.backend.requests(str(audit_id)), key=lambda r: r.key)
                stages = [(r.key, str(r.value("stage") or "")) for r in same]
            return event, -1 if latency is None else int(latency), "", key, stages

        self._run(ask, lambda got: show(*got), None, "detail", group="paged-detail")

    # -- plumbing -------------------------------------------------------------------------------

    def _got_count(self, count: int) -> None:
        self.rows.count = count
        self.owner.paged_status()

    def _run(
        self,
        ask: Callable[[], Any],
        then: Callable[[Any], None],
        generation: int | None,
        what: str,
        group: str,
        exclusive: bool = True,
        done: Callable[[], None] | None = None,
    ) -> None:
        """``ask()`` in a thread worker (the newest of its group when ``exclusive``), then
        ``then(answer)`` on the app's thread unless the filter changed meanwhile
        (``generation``); a failure is said. ``done()`` follows on the app's thread whatever
        happened."""
        app = self.app

        def work() -> None:
            try:
                try:
                    answer = ask()
                except Exception as exc:  # a dropped connection, a timeout: said, not fatal
                    app.call_from_thread(self._failed, what, exc)
                    return
                # A thread cannot be stopped: a fetch superseded by a newer one of its group
                # (G pressed while a page loaded) ends here, or its rows would replace the
                # newer's.
                if exclusive and get_current_worker().is_cancelled:
                    return
                app.call_from_thread(self._answered, then, answer, generation, what)
            finally:
                if done is not None and not self.owner.closing:
                    app.call_from_thread(done)

        app.run_worker(work, thread=True, group=group, exclusive=exclusive, exit_on_error=False)

    def _answered(self, then: Callable[[Any], None], answer: Any, generation: int | None,
                  what: str) -> None:  # fmt: skip
        if self.owner.closing:
            return
        if what == "events" and (self.state.startswith("error (events)") or self.state in
                                 ("connecting", "loading")):  # fmt: skip
            self.state = "ok"
        if generation is None or generation == self.rows.generation:
            then(answer)
        self.owner.paged_status()

    def _failed(self, what: str, exc: Exception) -> None:
        if self.owner.closing:
            return
        if what == "events":
            self.fetching = False
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        state = f"error ({what}): {inert(reason)}"
        if state != self.state:  # a backend that stays down is said once, not at every poll
            self.app.notify(state, severity="error", timeout=8, markup=False)
        if what == "events" or self.state == "ok":
            self.state = state
        self.owner.filter_failed_quietly()
        self.owner.paged_status()
