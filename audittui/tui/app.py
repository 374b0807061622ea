"""The Textual app: its layout and the wiring between its parts.

Two thread workers fill the store (the indexer, newest first, and the follower) and post a
coalescing ``StoreGrew``; the app merges new events into the list at most ten times a second
(:class:`~audittui.tui.schedule.Throttle`) and tells the panes their rows changed. No query is
evaluated on the UI thread: the filter is computed in a thread over a snapshot of the store,
and so is its evaluation over the events that arrive later (the UI thread only merges the
rows); a newer filter stops an older one still running (:mod:`~audittui.index.interrupt`).
Keys wait only for what holds the GIL in one go (a backtracking ``re`` match does; numpy,
file reads and google-re2 release it). Each analysis pane (summary, histogram, findings,
policy) runs its own worker on its own schedule. Messages are in
:mod:`~audittui.tui.messages`, keys in :mod:`~audittui.tui.keymap`.

The same app opens a backend that pages (a store, ``audittui clickhouse://…``): the list is
then a :class:`~audittui.tui.paged_rows.PagedRows` filled by a
:class:`~audittui.tui.paged_feed.PagedFeed`, the summary and histogram ask the backend, and
what it does not offer is said where it would be.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import partial
from typing import TypeVar, cast

import numpy as np
from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from ..analyses.object_history import Entry
from ..analyses.object_history import entries as object_entries
from ..analyses.object_history import select as select_history
from ..analyses.rbac import analyze as analyze_access
from ..analyses.rbac import render_yaml as render_rbac
from ..analyses.requests import Requests
from ..analyses.view import SLOWEST, TIME, CatchUp, RowView, matching
from ..backend.protocol import FINDINGS, POLICY, Backend, position
from ..findings import Findings, RuleSet, load_rules
from ..index.evaluate import select
from ..index.interrupt import Interrupted, interruptible
from ..index.loader import nothing_read
from ..index.session import Session
from ..index.values import StoreValues
from ..ingest.follow import Notice
from ..ingest.formats import format_time
from ..ingest.stdin_spool import StdinSpool
from ..output.changes import history_lines
from ..output.export import ExportError, export_jsonl, export_raw, export_text
from ..output.inert import inert
from ..output.mask import mask_event
from ..policy import Policy, PolicyError
from ..policy import load as load_policy
from ..policy.over_store import attach as attach_policy
from ..query.completion import term
from ..query.syntax import QueryError, parse
from . import tabs
from .detail import DetailPane
from .event_list import EventList, ListHeader
from .filter_bar import FilterBar
from .filter_state import FilterState
from .findings_pane import FindingsPane
from .histogram_pane import HistogramPane
from .history import History
from .json_tree import JsonTree
from .keymap import bindings, palette
from .list_source import MemoryRows
from .live import LiveAnalysis
from .messages import CaughtUp, FileNotices, FilterResult, InputEnded, SaveText, StoreGrew
from .paged_feed import POLL_EVERY, PagedFeed
from .paged_rows import PagedRows
from .policy_pane import PolicyPane
from .schedule import Debounce, Throttle
from .screens import (
    AccessScreen,
    ConfirmScreen,
    ExportScreen,
    HelpScreen,
    MalformedScreen,
    ObjectHistoryScreen,
    PathScreen,
)
from .status_bar import ListState, StatusBar
from .summary_pane import SummaryPane, SummaryTable, drill_term

UPDATE_EVERY = 0.1  # s between merges of new events into the list (10 Hz at most)
NO_POLICY = "No audit policy loaded: P loads one (or start with --policy FILE)."
FILTER_DEBOUNCE = 0.15  # s of quiet typing before the preview runs
QUEUE_HIGH = 20  # the follower waits while the app has this many messages queued
WIDE = 150  # columns from which list and detail sit side by side
TALL = 40  # rows from which the detail sits under the list
EXPORT_PAGE = 2_000  # events per page asked of a store while exporting
STORE_KEEPS_NO_MALFORMED = (
    "A store keeps events only: the lines ship could not read stayed in the files, and "
    "`audittui ship` said how many as it shipped (its output, or its checkpoint's log)."
)
ACTIVITY = ("rotated", "truncated", "removed", "unreadable", "incomplete", "waiting")


Handler = TypeVar("Handler", bound=Callable[..., None])


def _while_open(handler: Handler) -> Handler:
    """A handler of what a worker thread posted: a no-op once the app's screens are gone (a
    result may arrive while the app shuts down)."""

    @functools.wraps(handler)
    def guarded(self: App[None], *args: object) -> None:
        if self.screen_stack:
            handler(self, *args)

    return cast(Handler, guarded)


class AuditApp(App[None]):
    """audittui: browse and follow Kubernetes audit logs."""

    TITLE = "audittui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = bindings("app")

    def __init__(
        self,
        session: Session | None,
        history: History | None = None,
        rules: RuleSet | None = None,
        policy: Policy | None = None,
        policy_path: str = "",
        stdin: StdinSpool | None = None,
        backend: Backend | None = None,
    ) -> None:
        """``session``: files indexed here; or ``backend``, a backend that pages (a store),
        with ``session`` None."""
        super().__init__()
        # A store has no session: an empty one (never opened) stands for the files not read.
        session = session if session is not None else Session([], follow=False)
        self.session = session
        self.backend = backend
        self.paged: PagedRows | None = None
        self.feed: PagedFeed | None = None
        if backend is not None:
            self.paged = PagedRows(backend)
            self.feed = PagedFeed(self, self, backend, self.paged)
        if backend is not None:
            self.sub_title = inert(backend.display)
        self.stdin = stdin  # the pipe the log comes from, if it does
        self.store = session.store
        self.view = RowView(self.store)
        self.history = history if history is not None else History()
        self.filter = FilterState()
        self.requests = Requests()  # the stages of each request, for one row per request
        self._merge = Throttle(self, UPDATE_EVERY, self._merge_new, alive=lambda: not self.closing)
        self._debounce = Debounce(self, FILTER_DEBOUNCE)
        self._catch_up_stop = threading.Event()  # set: the running catch-up is not wanted
        self.rules = rules if rules is not None else load_rules()
        self.findings = Findings(self.rules.rules)
        self.findings.attach(self.store)  # finding:RULE in the filter
        self._empty_key: tuple = ()  # what the empty list's note was made for (see below)
        self._rule_errors_shown: set[str] = set()
        self.policy: Policy | None = None
        self.policy_path = ""
        if policy is not None:
            self.use_policy(policy, policy_path)

    # -- layout ---------------------------------------------------------------------------

    @property
    def main(self) -> Screen:
        """The main screen (queries must not look into a modal screen on top of it)."""
        return self.screen_stack[0]

    @property
    def closing(self) -> bool:
        """The app is shutting down (its loop has stopped, widgets may be gone, then the
        screens): there is nothing to update."""
        return not self.screen_stack or not self._running

    def check_message_enabled(self, message: Message) -> bool:
        # Workers may still report while the app shuts down: nothing to show then.
        return not self.closing and super().check_message_enabled(message)

    def compose(self) -> ComposeResult:
        backend = self.backend
        values = backend.value_source() if backend is not None else StoreValues(self.store)
        yield FilterBar(values, self.history, id="filter")
        yield Static("", id="filter-hint")
        store, view = self.store, self.view
        paged, backend = self.paged, self.backend
        asked = (lambda: paged.text) if paged is not None else None
        with TabbedContent(id="tabs", initial=tabs.EVENTS):
            with TabPane("Events", id=tabs.EVENTS), Container(id="events-body"):
                with Vertical(id="list-box"):
                    event_list = EventList(
                        paged if paged is not None else MemoryRows(view), id="list"
                    )
                    yield ListHeader(event_list, id="list-header")
                    yield event_list
                yield DetailPane(store, id="detail")
            with TabPane("Summary", id=tabs.SUMMARY):
                yield SummaryPane(store, view, id="summary-table", backend=backend, query=asked)
            with TabPane("Histogram", id=tabs.HISTOGRAM):
                yield HistogramPane(store, view, id="histogram-pane", backend=backend,
                                    query=asked)  # fmt: skip
            with TabPane("Findings", id=tabs.FINDINGS):
                indexing = lambda: self.session.indexing  # noqa: E731
                yield FindingsPane(store, self.findings, indexing, id="findings-table",
                                   backend=backend, rules=self.rules.rules)  # fmt: skip
                waiting = FindingsPane.WAITING if backend is None else FindingsPane.WAITING_STORE
                yield Static(self._lacking(FINDINGS) or waiting, id="finding-note")
            with TabPane("Policy", id=tabs.POLICY):
                yield Static(self._lacking(POLICY) or NO_POLICY, id="policy-note")
                yield PolicyPane(store, view, self.findings, id="policy-table", backend=backend,
                                 query=asked)  # fmt: skip
        paged_state = self._paged_state if paged is not None else None
        yield StatusBar(self.session, view, id="status", paged=paged_state)
        yield Footer()

    def on_mount(self) -> None:
        self.main.query_one(EventList).on_move = self._cursor_moved
        if self.policy is not None:
            self._show_policy_state()
        self.main.query_one(EventList).focus()
        self._layout(self.size.width, self.size.height)
        if self.feed is not None:
            feed, event_list = self.feed, self.main.query_one(EventList)
            event_list.on_edge, event_list.on_end = feed.edge, feed.end
            for lacking, pane in ((FINDINGS, FindingsPane), (POLICY, PolicyPane)):
                self.main.query_one(pane).display = not self._lacking(lacking)
            self.apply_filter(self.filter.committed)
            self.set_interval(POLL_EVERY, lambda: feed.poll(event_list.following))
        else:
            self._run_indexer()
            self._run_follower()
        if self.stdin is not None:
            self.stdin.on_end(self._input_ended)
        self._update_status()
        for problem in self.rules.problems:
            self.notify(inert(problem), title="rules.yaml", severity="warning", markup=False)

    def _lacking(self, capability: str) -> str:
        """Why this app cannot show ``capability`` here ("" when it can): the backend's own
        reason (:attr:`Backend.capabilities <audittui.backend.protocol.Backend>`)."""
        if self.backend is None:
            return ""
        return inert(self.backend.capabilities.get(capability, ""))

    def on_resize(self, event: events.Resize) -> None:
        self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        body = self.main.query_one("#events-body")
        body.set_class(width >= WIDE, "-wide")
        body.set_class(width < WIDE and height >= TALL, "-tall")
        body.set_class(width < WIDE and height < TALL, "-small")

    # -- workers: indexing and following --------------------------------------------------

    @work(thread=True, group="index", exit_on_error=False)
    def _run_indexer(self) -> None:
        worker = get_current_worker()
        self.session.index(self._grew, worker.cancelled_event)
        self.post_message(StoreGrew())
        if self.session.problems:
            self.post_message(FileNotices(self.session.problems))

    def _grew(self) -> None:
        self.post_message(StoreGrew())

    def _input_ended(self) -> None:
        self.post_message(InputEnded())

    @work(thread=True, group="follow", exit_on_error=False)
    def _run_follower(self) -> None:
        worker = get_current_worker()
        stop = worker.cancelled_event

        def on_batch(notices: list[Notice]) -> None:
            if notices:
                self.post_message(FileNotices(notices))
            self.post_message(StoreGrew())
            # Backpressure: a busy UI makes the follower wait rather than queue without end.
            while self.message_queue_size > QUEUE_HIGH and not stop.is_set():
                stop.wait(0.01)

        self.session.run_follower(on_batch, stop)

    @_while_open
    def on_store_grew(self, _: StoreGrew) -> None:
        self._merge.request()

    def _merge_new(self) -> bool:
        """New events into the list's rows (at most every UPDATE_EVERY s). The filter runs
        over them in a thread (:meth:`_catch_up`): only a list without a filter merges here
        (True: a catch-up was started, its result calls the throttle's done)."""
        if self.closing:  # timer callbacks are not messages: they can fire during shutdown
            return False
        job = self.view.pending()
        started = False
        if job is not None and job.node is None:
            self._merged(job, job.matches())  # no query: the new events themselves
        elif job is not None:
            self._catch_up_stop = threading.Event()
            self._catch_up(job, self._catch_up_stop)
            started = True
        self._update_status()
        self.main.query_one(FindingsPane).stale()
        return started

    @work(thread=True, group="catch-up", exit_on_error=False)
    def _catch_up(self, job: CatchUp, stop: threading.Event) -> None:
        # Never cancelled as a worker (one cancelled before it ran would never report, and
        # the throttle would wait for ever): ``stop`` interrupts the evaluation instead.
        found = None
        try:
            with interruptible(stop):
                found = job.matches()
        except Interrupted:
            pass
        except Exception as exc:  # said, and these events skipped: the list goes on
            message = f"Filter failed on new events: {inert(str(exc))}"
            self.call_from_thread(self.notify, message, severity="error", markup=False)
            found = np.empty(0, dtype=np.int64)
        self.post_message(CaughtUp(job, found))

    @_while_open
    def on_caught_up(self, message: CaughtUp) -> None:
        if message.found is not None:
            self._merged(message.job, message.found)
        self._update_status()
        self._merge.done()

    def _merged(self, job: CatchUp, found: np.ndarray) -> None:
        inserted = self.view.merge(job, found)
        if inserted is not None:
            self.main.query_one(EventList).rows_inserted(inserted)
            self._rows_changed()

    def _live_panes(self) -> list[tuple[LiveAnalysis, str]]:
        """The panes computed over the list's rows, and their tabs."""
        main = self.main
        return [
            (main.query_one(SummaryPane), tabs.SUMMARY),
            (main.query_one(HistogramPane), tabs.HISTOGRAM),
            (main.query_one(PolicyPane), tabs.POLICY),
        ]

    def _rows_changed(self) -> None:
        """The list's rows changed: the panes computed over them are stale."""
        for pane, _ in self._live_panes():
            pane.stale()

    @_while_open
    def on_input_ended(self) -> None:
        self._update_status()

    @_while_open
    def on_file_notices(self, message: FileNotices) -> None:
        for n in message.notices:
            if n.kind in ACTIVITY:
                severity: SeverityLevel = (
                    "warning" if n.kind in ("unreadable", "incomplete") else "information"
                )
                self.notify(
                    f"{inert(n.path)}: {n.kind}: {inert(n.detail)}",
                    severity=severity,
                    markup=False,
                    timeout=8 if severity == "warning" else 4,
                )

    # -- filtering ------------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        text = event.value
        # Any edit supersedes the preview still waiting for quiet typing: one for a valid text
        # typed just before would otherwise replace the list under a query that has an error.
        self._debounce.cancel()
        try:
            parse(text)
        except QueryError as exc:
            kept = self.list_text or "all events"
            self._show_hint(Text(inert(f"✗ {exc}  (the list keeps: {kept})"), "bold red"))
            return
        self._show_hint(Text(""))
        self._debounce.call(lambda: self.apply_filter(text))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        try:
            parse(text)
        except QueryError:
            self.bell()
            return
        self._debounce.cancel()
        self.filter.committed = text
        self.history.add(text)
        self.history.reset()
        if text != self.list_text:
            self.apply_filter(text)
        self.main.query_one(EventList).focus()

    def on_filter_bar_hint(self, message: FilterBar.Hint) -> None:
        self._show_hint(Text(inert(message.text), "dim"))

    def _show_hint(self, text: Text) -> None:
        hint = self.main.query_one("#filter-hint", Static)
        if not text.plain and not hint.display:
            return  # nothing shown, nothing to clear: no layout pass per keystroke
        hint.update(text)
        hint.display = bool(text.plain)

    def apply_filter(
        self, text: str, order: str | None = None, per_request: bool | None = None
    ) -> None:
        """Compute ``text``'s rows in a thread (in ``order``: time, or slowest first; one row
        per request or per event; by default as the list is now); the list switches when
        they are ready."""
        if self.closing:  # the debounce timer can fire during shutdown
            return
        if self.feed is not None and self.paged is not None:
            order = order or self.paged.order
            per_request = self.paged.per_request if per_request is None else per_request
            self.filter.start(text, order, None)
            self.feed.apply(text, self._paged_filtered, order, per_request)
            self._update_status()
            return
        if per_request is None:
            per_request = self.view.requests is not None
        pending = self.filter.start(
            text, order or self.view.order, self.requests if per_request else None
        )
        self._filter_worker(pending.text, pending.order, pending.requests)
        self._update_status()

    @property
    def list_text(self) -> str:
        """The filter the list shows the events of."""
        return self.paged.text if self.paged is not None else self.view.text

    @property
    def list_order(self) -> str:
        """The order the list shows: by time, or slowest first."""
        return self.paged.order if self.paged is not None else self.view.order

    # -- a backend that pages (a store): what its feed tells ----------------------------------

    def _paged_filtered(self, text: str, _generation: int) -> None:
        if self.filter.pending_text == text:
            self.filter.pending = None
        event_list = self.main.query_one(EventList)
        event_list.empty_note = "" if len(event_list.source) else "No events match the filter."
        event_list.pages_replaced(at_end=self.paged is None or self.paged.order == TIME)
        self._rows_changed()
        self._update_status()

    def paged_replaced(self, at_end: bool) -> None:
        self.main.query_one(EventList).pages_replaced(at_end)
        self._update_status()

    def paged_shifted(self, front: int, new: int = 0) -> None:
        self.main.query_one(EventList).pages_shifted(front, new)
        if not front:  # new events: the panes' answers are stale
            self._rows_changed()
            findings = self.main.query_one(FindingsPane)
            if findings.evaluated:  # asked once shown first (a pass over the store's events)
                findings.stale()
        self._update_status()

    def paged_status(self) -> None:
        self._update_status()

    def filter_failed_quietly(self) -> None:
        """The backend failed: the list no longer waits for the filter (the error was said)."""
        self.filter.pending = None

    def _paged_state(self) -> tuple[int | None, int, bool, bool, str, str]:
        """What the status says of a paged list: the count (None: being counted), the rows
        held, more before and after them, the feed's state and the backend."""
        assert self.paged is not None and self.feed is not None and self.backend is not None
        rows = self.paged
        return (rows.count, len(rows), rows.more_before, rows.more_after, self.feed.state,
                self.backend.display)  # fmt: skip

    @work(thread=True, group="filter", exclusive=True, exit_on_error=False)
    def _filter_worker(self, text: str, order: str, requests: Requests | None) -> None:
        snap = self.store.snapshot()
        try:
            node = parse(text)
            # A newer filter cancels this worker (exclusive): it then stops at its next
            # checkpoint rather than compete with the newer one for the CPU.
            with interruptible(get_current_worker().cancelled_event):
                rows = matching(snap, node, order, requests)
        except Interrupted:
            return  # superseded: the newer filter is pending
        except Exception as exc:  # never leave the list "filtering…" for ever
            self.call_from_thread(self._filter_failed, text, exc)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(FilterResult(text, node, rows, len(snap), order, requests))

    def _filter_failed(self, text: str, exc: Exception) -> None:
        self.filter.failed(text)
        self.notify(f"Filter failed: {inert(str(exc))}", severity="error", markup=False)
        self._update_status()

    @_while_open
    def on_filter_result(self, message: FilterResult) -> None:
        if not self.filter.takes(message):
            return  # superseded by later typing
        event_list = self.main.query_one(EventList)
        keep = event_list.event
        self.view.replace(
            message.text,
            message.node,
            message.rows,
            message.upto,
            message.order,
            message.requests,
        )
        # A catch-up still running was for the filter replaced: stop it. The events appended
        # since this result's snapshot are merged by the next one, in a thread too.
        self._catch_up_stop.set()
        event_list.rows_replaced(keep)
        self._rows_changed()
        if len(self.store) > self.view.upto:
            self._merge.request()
        self._update_status()

    # -- detail ---------------------------------------------------------------------------

    def _cursor_moved(self, event: object) -> None:
        detail = self.main.query_one(DetailPane)
        if self.feed is None:
            detail.show(cast(int | None, event))
        elif event is None:
            detail.show(None)
        else:
            self.feed.detail(event, detail.show_fetched)

    def on_event_list_follow_changed(self) -> None:
        if self.main.query_one(EventList).following and self.list_order == SLOWEST:
            self.apply_filter(self.list_text, TIME)  # F / End: back to the live tail
        self._update_status()

    def action_open_detail(self) -> None:
        focused = self.focused
        if isinstance(focused, EventList):
            body = self.main.query_one("#events-body")
            if body.has_class("-small"):
                body.add_class("-detail-open")
            self.main.query_one(JsonTree).focus()

    def action_managed(self) -> None:
        self.main.query_one(DetailPane).toggle_managed()

    def action_reveal(self) -> None:
        self.main.query_one(DetailPane).toggle_reveal()

    def action_wrapper(self) -> None:
        self.main.query_one(DetailPane).toggle_wrapper()

    def action_copy(self) -> None:
        text = self.main.query_one(DetailPane).clipboard_text()
        if text is None:
            self.bell()
            return
        self.copy_to_clipboard(text)
        self.notify("Event JSON copied (OSC 52)", timeout=2)

    def action_object_history(self) -> None:
        """h: the history of the detail's event's object, computed in a thread."""
        if self.backend is not None:
            self._paged_history()
            return
        detail = self.main.query_one(DetailPane)
        i = detail.event_index
        v = self.store.value
        if i is None or not v("resource", i) or not v("name", i):
            self.notify("This event names no object (h needs a resource and a name)", timeout=3)
            return
        self._object_history(i, detail.reveal)

    @work(thread=True, group="history", exclusive=True, exit_on_error=False)
    def _object_history(self, i: int, reveal: bool) -> None:
        v = self.store.value
        resource, namespace, name = v("resource", i), v("namespace", i), v("name", i)
        rows = select_history(self.store, resource, namespace, name)
        shown = None if reveal else (lambda ev: mask_event(ev)[0])
        title = f"{resource} {namespace or '-'}/{name}: {len(rows):,} write(s)"
        screen = ObjectHistoryScreen(title, len(rows))
        self.call_from_thread(self.push_screen, screen)
        # Shown as read, a page at a time at most every 100 ms: the first events of a long
        # history are on screen while the rest are read and compared.
        read = 0

        def counted() -> Iterator[Entry]:
            nonlocal read
            for entry in object_entries(self.store, rows, shown):
                read += 1
                yield entry

        lines: list[tuple[str, tuple[object, ...]]] = []
        sent = time.monotonic()
        worker = get_current_worker()
        for line in history_lines(counted(), resource):
            if worker.is_cancelled or screen.closed:
                return
            lines.append(line)
            if time.monotonic() - sent >= 0.1:
                self.call_from_thread(screen.add, lines, read, False)
                lines, sent = [], time.monotonic()
        self.call_from_thread(screen.add, lines, read, True)

    @work(thread=True, group="history", exclusive=True, exit_on_error=False)
    def _paged_history(self) -> None:
        """h over a backend that pages: it reads the object's writes and compares them."""
        detail = self.main.query_one(DetailPane)
        event, reveal, backend = detail.event, detail.reveal, self.backend
        assert backend is not None
        ref = event.get("objectRef") if event is not None else None
        ref = ref if isinstance(ref, dict) else {}
        resource, namespace, name = (ref.get(k) for k in ("resource", "namespace", "name"))
        if not isinstance(resource, str) or not isinstance(name, str) or not resource or not name:
            self.call_from_thread(self.notify, "This event names no object (h needs a resource "
                                  "and a name)", timeout=3)  # fmt: skip
            return
        if backend.capabilities.get("history"):
            reason = inert(backend.capabilities["history"])
            self.call_from_thread(self.notify, f"history: {reason}", markup=False)
            return
        ns = namespace if isinstance(namespace, str) and namespace else None
        found = backend.history(resource, ns, name, reveal=reveal)
        lines = list(history_lines(found.entries, resource))
        title = f"{resource} {ns or '-'}/{name}: {len(found.entries):,} write(s)"
        screen = ObjectHistoryScreen(title, len(found.entries))
        self.call_from_thread(self.push_screen, screen)
        self.call_from_thread(screen.add, lines, len(found.entries), True)

    def action_stage(self, step: int) -> None:
        detail = self.main.query_one(DetailPane)
        if self.feed is not None and self.paged is not None:
            keys = [key for key, _ in detail.fetched_stages]
            if detail.fetched_key not in keys or len(keys) < 2:
                self.notify("No other stage of this request", timeout=2)
                return
            target = keys[(keys.index(detail.fetched_key) + step) % len(keys)]
            if self.paged.by_key(target) is not None:
                event_list = self.main.query_one(EventList)
                event_list._user_move(self.paged.nearest(target))
            else:  # filtered out of the list, or not held: show it anyway
                self.feed.detail(target, detail.show_fetched)
            return
        same = detail.same_request()
        if detail.event_index is None or len(same) < 2:
            self.notify("No other stage of this request is loaded", timeout=2)
            return
        k = same.index(detail.event_index)
        target = same[(k + step) % len(same)]
        event_list = self.main.query_one(EventList)
        row = self.view.position(target)
        if row is None:
            detail.show(target)  # filtered out of the list: show it anyway
            return
        event_list._user_move(row)

    # -- the analysis panes -----------------------------------------------------------------

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        active = event.pane.id
        for pane, tab in self._live_panes():
            pane.show_pane(tab == active)
        focused: dict[str, type[Widget]] = {
            tabs.SUMMARY: SummaryPane,
            tabs.HISTOGRAM: HistogramPane,
            tabs.FINDINGS: FindingsPane,
            tabs.POLICY: PolicyPane,
        }
        if active == tabs.FINDINGS and self.feed is not None:
            findings = self.main.query_one(FindingsPane)
            if not findings.evaluated:
                findings.stale()  # over a store: asked the first time it is shown
        focus = focused.get(active or "", EventList)
        self.main.query_one(focus).focus()

    def on_histogram_pane_selected(self, message: HistogramPane.Selected) -> None:
        after, before = (
            format_time(t).replace(".000000Z", "Z") for t in (message.after, message.before)
        )
        self._narrow(f"after:{after} before:{before}")

    # -- policy -----------------------------------------------------------------------------

    def use_policy(self, policy: Policy, path: str) -> None:
        """Evaluate ``policy`` from now on: rule:N, the detail header, the policy pane."""
        self.policy, self.policy_path = policy, path
        attach_policy(policy, self.store)
        if self.backend is not None:
            self.backend.use_policy(policy)
        if self.screen_stack:  # (before mount the widgets pick it up in on_mount)
            self._show_policy_state()

    def _show_policy_state(self) -> None:
        assert self.policy is not None
        self.main.query_one(PolicyPane).use(self.policy, self.policy_path)
        self.main.query_one(DetailPane).policy = self.policy
        note = self.main.query_one("#policy-note", Static)
        note.update(
            Text(
                f"{inert(self.policy_path)}: {len(self.policy.rules)} rules, simulated over the "
                "events of the filter. Enter: a rule's events (rule:N). P loads another.",
                "dim",
            )
        )

    def action_load_policy(self) -> None:

        def chosen(path: str | None) -> None:
            if not path:
                return
            try:
                policy = load_policy(os.path.expanduser(path))
            except PolicyError as exc:
                self.notify(
                    inert("\n".join(exc.errors[:8])), title="policy", severity="error", markup=False
                )
                return
            self.use_policy(policy, path)
            self.action_tab(tabs.POLICY)

        self.push_screen(
            PathScreen(
                "Load an audit policy (audit.k8s.io/v1, YAML or JSON):",
                self.policy_path,
                "Its rules then show in the detail header, the Policy pane (5) and rule:N.",
            ),
            chosen,
        )

    def on_policy_pane_drill(self, message: PolicyPane.Drill) -> None:
        self._show_events(f"rule:{'none' if message.rule is None else message.rule}")

    def on_summary_table_drill(self, message: SummaryTable.Drill) -> None:
        self._narrow(drill_term(message.field, message.value))

    def on_summary_table_access(self, message: SummaryTable.Access) -> None:
        self._access(message.user)

    def action_access(self) -> None:
        """a: the access of the detail's event's user (the impersonated one when there is)."""
        if self.backend is not None:
            event = self.main.query_one(DetailPane).event or {}
            who = [event.get(k) for k in ("impersonatedUser", "user")]
            names = [w.get("username") for w in who if isinstance(w, dict)]
            user = next((n for n in names if isinstance(n, str) and n), None)
            if user is None:
                self.notify("This event names no user", timeout=3)
            else:
                self._access(user)
            return
        i = self.main.query_one(DetailPane).event_index
        user = (
            None
            if i is None
            else self.store.value("impersonated", i) or self.store.value("user", i)
        )
        if not user:
            self.notify("This event names no user", timeout=3)
            return
        self._access(user)

    @work(thread=True, group="access", exclusive=True, exit_on_error=False)
    def _access(self, user: str) -> None:
        """The user's access over the events the filter in force selects (all: no filter)."""
        self.call_from_thread(self.notify, f"Reading the access of {inert(user)}…", markup=False,
                              timeout=2)  # fmt: skip
        text = self.list_text
        if self.backend is not None:
            if self.backend.capabilities.get("rbac"):
                reason = inert(self.backend.capabilities["rbac"])
                self.call_from_thread(self.notify, f"access: {reason}", markup=False)
                return
            result = self.backend.rbac(user, query=text).result
        else:
            snapshot = self.store.snapshot()
            rows = self.view.rows.copy() if text else None
            result = analyze_access(snapshot, user, rows=rows)
        if not result.events:
            made = (
                len(select(self.store, term("user", user))) if not text and not self.backend else 0
            )
            why = (
                f"{inert(user)}'s {made:,} event(s) all impersonate other users: a on one of "
                "them shows the impersonated user's access"
                if made
                else f"No event of {inert(user)} here"
            )
            self.call_from_thread(self.notify, why, markup=False, timeout=5)
            return
        scope = f"filter: {text}" if text else "all events"
        screen = AccessScreen(result, render_rbac(result, counts=True), scope)
        self.call_from_thread(self.push_screen, screen)

    def action_narrow(self, terms: str) -> None:
        """A link in the detail (the binding or role that allowed the event): the filter in
        force with ``terms`` added, then the list."""
        self._narrow(terms)

    def _narrow(self, terms: str) -> None:
        """Drill down from another pane: add ``terms`` to the filter in force and show the
        list."""
        self._show_events(f"{self.filter.committed} {terms}".strip())

    def _show_events(self, text: str) -> None:
        """Put ``text`` in force as the filter (bar, history) and show the list."""
        self.main.query_one(FilterBar).value = text
        self.filter.committed = text
        self.history.add(text)
        self.apply_filter(text)
        self.main.query_one(TabbedContent).active = tabs.EVENTS
        self.main.query_one(EventList).focus()

    # -- findings -------------------------------------------------------------------------

    @_while_open
    def on_findings_pane_evaluated(self, message: FindingsPane.Evaluated) -> None:
        if self.feed is not None and self._lacking(FINDINGS):
            return  # the pane is hidden: its note says why
        pane = self.main.query_one(FindingsPane)
        for rule_id, error in self.findings.errors.items():
            if rule_id not in self._rule_errors_shown:
                self._rule_errors_shown.add(rule_id)
                self.notify(
                    inert(f"rule {rule_id}: where failed: {error}"),
                    title="rules.yaml",
                    severity="warning",
                    markup=False,
                )
        if not pane.row_count:  # no row to highlight: say so
            self.main.query_one("#finding-note", Static).update(pane.note())
        self.main.query_one(StatusBar).finding_count = message.count
        if message.changed and "finding:" in self.view.text:
            self.apply_filter(self.view.text)  # old events may have joined a finding
        self._update_status()
        pane.stale()

    @on(DataTable.RowHighlighted, "#findings-table")
    def _finding_highlighted(self) -> None:
        pane = self.main.query_one(FindingsPane)
        self.main.query_one("#finding-note", Static).update(pane.note())

    def on_findings_pane_drill(self, message: FindingsPane.Drill) -> None:
        pane = self.main.query_one(FindingsPane)
        self._show_events(pane.drill_query(message.rule_id))  # replaces the filter

    # -- other actions --------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.main.query_one(TabbedContent).active = tabs.EVENTS
        bar = self.main.query_one(FilterBar)
        # At once, not on the next idle: keys typed right after "/" (or pasted with it)
        # must land in the bar.
        self.main.set_focus(bar)
        bar.cursor_position = len(bar.value)

    def action_per_request(self) -> None:
        """R: fold the stages of each request into one row, or show every event again."""
        if self.paged is not None:
            per_request = not self.paged.per_request
            self.apply_filter(self.list_text, TIME, per_request=per_request)
            return
        self.apply_filter(self.view.text, TIME, per_request=self.view.requests is None)

    def action_slowest(self) -> None:
        """L: the filtered requests slowest first, or back to time order."""
        order = TIME if self.list_order == SLOWEST else SLOWEST
        self.apply_filter(self.list_text, order)

    def action_tab(self, tab: str) -> None:
        self.main.query_one(TabbedContent).active = tab

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_malformed(self) -> None:
        if self.backend is not None:  # a store holds what ship kept: events, no bad lines
            self.push_screen(MalformedScreen(self.store.malformed, self.store.ignored,
                                             STORE_KEEPS_NO_MALFORMED))  # fmt: skip
            return
        self.push_screen(MalformedScreen(self.store.malformed, self.store.ignored))

    def action_step_back(self) -> None:
        """Esc: leave the filter bar (restoring the filter in force), close the detail, or
        clear the filter, one level per press."""
        focused = self.focused
        body = self.main.query_one("#events-body")
        if isinstance(focused, FilterBar):
            self._show_hint(Text(""))
            committed = self.filter.committed
            if focused.value != committed:
                focused.value = committed
                self._debounce.cancel()
                if self.list_text != committed or self.filter.pending is not None:
                    self.apply_filter(committed)
            self.main.query_one(EventList).focus()
        elif body.has_class("-detail-open") or isinstance(focused, JsonTree):
            body.remove_class("-detail-open")
            self.main.query_one(EventList).focus()
        elif self.main.query_one(TabbedContent).active in tabs.ANALYSES:
            self.action_tab(tabs.EVENTS)
        elif self.filter.committed:
            self.main.query_one(FilterBar).value = ""
            self.filter.committed = ""
            self.apply_filter("")

    def action_export(self) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        default = os.path.join(os.getcwd(), f"audittui-export-{stamp}.jsonl")
        detail = self.main.query_one(DetailPane)
        # As the detail shows them: masked unless revealed, the wrappers once w shows them.
        masked, wrappers = not detail.reveal, detail.show_wrapper

        if self.paged is not None:  # a store's pages of the list, streamed to the file
            paged = self.paged
            text, order, per_request = paged.text, paged.order, paged.per_request

            def chosen_paged(path: str | None) -> None:
                if path:
                    self._write_or_ask(path, lambda target: self._export_pages(
                        target, masked, text, order, per_request))  # fmt: skip

            count = paged.count if paged.count is not None else len(paged)
            self.push_screen(ExportScreen(default, count, masked), chosen_paged)
            return

        def chosen(path: str | None) -> None:
            if path:
                self._write_or_ask(path, lambda target: self._export(target, masked, wrappers))

        self.push_screen(ExportScreen(default, len(self.view), masked, wrappers), chosen)

    def _write_or_ask(self, path: str, write: Callable[[str], object]) -> None:
        """``write(target)`` for the file the user named, asking first when it exists."""
        target = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(target):
            write(target)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                write(target)

        self.push_screen(ConfirmScreen(f"{inert(target)} exists. Overwrite it?"), confirmed)

    def on_save_text(self, message: SaveText) -> None:
        self._write_or_ask(message.path, lambda target: self._save_text(target, message.text))

    @work(thread=True, group="export", exit_on_error=False)
    def _save_text(self, path: str, text: str) -> None:
        try:
            export_text(self.store, path, text)
        except ExportError as exc:
            self.call_from_thread(self.notify, f"Not written: {inert(str(exc))}",
                                  severity="error", markup=False, timeout=8)  # fmt: skip
            return
        self.call_from_thread(self.notify, f"Wrote {inert(path)}", markup=False, timeout=5)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, path: str, masked: bool, wrappers: bool) -> None:
        rows = self.view.rows.copy()
        try:
            n = export_jsonl(self.store, rows, path, mask=masked, wrappers=wrappers)
        except ExportError as exc:
            self.call_from_thread(
                self.notify,
                f"Export failed: {inert(str(exc))}",
                severity="error",
                markup=False,
                timeout=8,
            )
            return
        self.call_from_thread(
            self.notify, f"Exported {n:,} events to {inert(path)}", markup=False, timeout=5
        )

    @work(thread=True, group="export", exit_on_error=False)
    def _export_pages(
        self, path: str, masked: bool, text: str, order: str, per_request: bool
    ) -> None:
        """Export over a backend that pages: the list's events, page after page in its
        order, to the file (the wrappers of files are no store's)."""
        backend = self.backend
        assert backend is not None

        def events() -> Iterator[bytes]:
            after = None
            while True:
                page = backend.page(text, after, False, EXPORT_PAGE, True, order, per_request)
                yield from (row.raw for row in page if row.raw is not None)
                if len(page) < EXPORT_PAGE:
                    return
                after = position(page[-1], order)

        try:
            n = export_raw(self.store, events(), path, mask=masked)
        except Exception as exc:  # ExportError, or the store failing mid-way: said
            self.call_from_thread(self.notify, f"Export failed: {inert(str(exc))}",
                                  severity="error", markup=False, timeout=8)  # fmt: skip
            return
        self.call_from_thread(
            self.notify, f"Exported {n:,} events to {inert(path)}", markup=False, timeout=5
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in palette():
            yield SystemCommand(title, help_text, partial(self.run_action, action))

    def action_follow(self) -> None:
        """F in the list, and "Follow" in the palette."""
        self.main.query_one(EventList).action_follow()

    # -- status ---------------------------------------------------------------------------

    def _update_status(self) -> None:
        lst = self.main.query_one(EventList)
        bar = self.main.query_one(StatusBar)
        bar.stdin_state = self.stdin.state() if self.stdin is not None else ""
        bar.show(ListState(self.filter.pending is not None, lst.following, lst.unseen))
        if self.feed is not None:
            return
        # Nothing read: say what the input looks like, or that it holds no log file.
        store = self.store
        key = (self.session.indexing, len(store), len(store.malformed), len(store.sources))
        if key == self._empty_key:
            return
        self._empty_key, note = key, ""
        if not self.session.indexing and not len(store):
            if store.malformed:
                note = nothing_read(store, [s.path for s in store.sources]) or ""
            elif not store.sources:  # a folder with no log file (yet): maybe in subfolders
                note = nothing_read(store, self.session.paths) or ""
        if note != lst.empty_note:
            lst.empty_note = note
            lst.refresh()

    def on_unmount(self) -> None:
        self._catch_up_stop.set()
        self.workers.cancel_all()
