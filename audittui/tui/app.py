"""The Textual app: filter bar, event list, detail and summary panes, status bar.

Two thread workers fill the store (the indexer, newest first, and the follower) and post a
coalescing ``StoreGrew`` message; the UI merges new events into the visible rows at most ten
times a second. Filters and summaries are computed in thread workers over a snapshot of the
store, so typing never blocks on a million events.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from ..analyses.histogram import histogram
from ..analyses.requests import Requests
from ..analyses.summary import summarize
from ..analyses.view import SLOWEST, TIME, RowView, matching
from ..findings import Findings, RuleSet, load_rules
from ..index import memory
from ..index.completion import term
from ..index.loader import nothing_read
from ..index.query import QueryError, parse
from ..index.session import Session
from ..ingest.follow import Notice
from ..ingest.formats import format_time
from ..ingest.stdin_spool import StdinSpool
from ..output.export import ExportError, export_jsonl
from ..output.inert import inert
from ..policy import Policy, PolicyError
from ..policy import load as load_policy
from ..policy.over_store import attach as attach_policy
from ..policy.simulate import simulate
from .detail import DetailPane
from .event_list import EventList, ListHeader
from .filter_bar import FilterBar
from .findings_pane import FindingsPane
from .histogram_pane import HistogramPane
from .history import History
from .json_tree import JsonTree
from .keymap import bindings, palette
from .policy_pane import PolicyPane
from .screens import ConfirmScreen, ExportScreen, HelpScreen, MalformedScreen, PathScreen
from .summary_pane import SummaryPane

UPDATE_EVERY = 0.1  # s between merges of new events into the list (10 Hz at most)
SUMMARY_EVERY = 0.5  # s between live summary refreshes
NO_POLICY = "No audit policy loaded: P loads one (or start with --policy FILE)."
FINDINGS_EVERY = 1.0  # s between evaluations of the rules over new events
FILTER_DEBOUNCE = 0.15  # s of quiet typing before the preview runs
QUEUE_HIGH = 20  # the follower waits while the app has this many messages queued
WIDE = 150  # columns from which list and detail sit side by side
TALL = 40  # rows from which the detail sits under the list


class StoreGrew(Message):
    """New events are in the store (coalesced: one queued at a time is enough)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreGrew)


class FileNotices(Message):
    """What happened to the files read: rotated, truncated, unreadable..."""

    def __init__(self, notices: list[Notice]) -> None:
        super().__init__()
        self.notices = notices


class InputEnded(Message):
    """Standard input, spooled for the app, has ended: say so in the status."""


class FilterResult(Message):
    def __init__(self, text: str, node, rows, upto: int, order: str, requests) -> None:
        super().__init__()
        self.text, self.node, self.rows, self.upto = text, node, rows, upto
        self.order, self.requests = order, requests


class HistogramResult(Message):
    def __init__(self, hist) -> None:
        super().__init__()
        self.hist = hist


class FindingsResult(Message):
    def __init__(self, findings: list, blind: list, changed: bool) -> None:
        super().__init__()
        self.findings, self.blind, self.changed = findings, blind, changed


class PolicyResult(Message):
    def __init__(self, simulation) -> None:
        super().__init__()
        self.simulation = simulation


class SummaryResult(Message):
    def __init__(self, by: str, rows: list) -> None:
        super().__init__()
        self.by = by
        self.rows = rows


def _while_open(handler: Callable) -> Callable:
    """A handler of what a worker thread posted: a no-op once the app's screens are gone (a
    result may arrive while the app shuts down)."""

    @functools.wraps(handler)
    def guarded(self, *args):
        if self.screen_stack:
            return handler(self, *args)
        return None

    return guarded


class AuditApp(App[None]):
    """audittui: browse and follow Kubernetes audit logs."""

    TITLE = "audittui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = bindings("app")

    def __init__(
        self,
        session: Session,
        history: History | None = None,
        rules: RuleSet | None = None,
        policy: Policy | None = None,
        policy_path: str = "",
        stdin: StdinSpool | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.stdin = stdin  # the pipe the log comes from, if it does
        self.store = session.store
        self.view = RowView(self.store)
        self.history = history if history is not None else History()
        self.committed = ""  # the filter in force (the bar may show a preview of another)
        self.pending_text: str | None = None
        self.pending_order = TIME
        self.requests = Requests()  # the stages of each request, for one row per request
        self.pending_requests: Requests | None = None
        self._last_update = 0.0
        self._update_timer = None
        self._filter_timer = None
        self._summary_dirty = True
        self._summary_running = False
        self.rules = rules if rules is not None else load_rules()
        self.findings = Findings(self.rules.rules)
        self._empty_key: tuple = ()  # what the empty list's note was made for (see below)
        self.findings.attach(self.store)  # finding:RULE in the filter
        self.finding_count = 0
        self._findings_running = False
        self._findings_last = 0.0
        self._findings_timer = None
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
        yield FilterBar(self.store, self.history, id="filter")
        yield Static("", id="filter-hint")
        with TabbedContent(id="tabs", initial="events"):
            with TabPane("Events", id="events"), Container(id="events-body"):
                with Vertical(id="list-box"):
                    event_list = EventList(self.view, id="list")
                    yield ListHeader(event_list, id="list-header")
                    yield event_list
                yield DetailPane(self.store, id="detail")
            with TabPane("Summary", id="summary"):
                yield SummaryPane(id="summary-table")
            with TabPane("Histogram", id="histogram"):
                yield HistogramPane(id="histogram-pane")
            with TabPane("Findings", id="findings"):
                yield FindingsPane(id="findings-table")
                yield Static(FindingsPane.WAITING, id="finding-note")
            with TabPane("Policy", id="policy"):
                yield Static(NO_POLICY, id="policy-note")
                yield PolicyPane(id="policy-table")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.main.query_one(EventList).on_move = self._cursor_moved
        if self.policy is not None:
            self._show_policy_state()
        self.main.query_one(EventList).focus()
        self._layout(self.size.width, self.size.height)
        self._run_indexer()
        self._run_follower()
        if self.stdin is not None:
            self.stdin.on_end(lambda: self.post_message(InputEnded()))
        self._update_status()
        for problem in self.rules.problems:
            self.notify(inert(problem), title="rules.yaml", severity="warning", markup=False)

    def on_resize(self, event) -> None:
        self._layout(event.size.width, event.size.height)
        self._summary_dirty = True  # the histogram's buckets follow the width
        self._maybe_summarize()

    def _layout(self, width: int, height: int) -> None:
        body = self.main.query_one("#events-body")
        body.set_class(width >= WIDE, "-wide")
        body.set_class(width < WIDE and height >= TALL, "-tall")
        body.set_class(width < WIDE and height < TALL, "-small")

    # -- workers: indexing and following --------------------------------------------------

    @work(thread=True, group="index", exit_on_error=False)
    def _run_indexer(self) -> None:
        worker = get_current_worker()
        self.session.index(lambda: self.post_message(StoreGrew()), worker.cancelled_event)
        self.post_message(StoreGrew())
        if self.session.problems:
            self.post_message(FileNotices(self.session.problems))

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
        wait = UPDATE_EVERY - (time.monotonic() - self._last_update)
        if wait <= 0:
            self._merge_new()
        elif self._update_timer is None:
            self._update_timer = self.set_timer(wait, self._merge_new)

    def _merge_new(self) -> None:
        if self.closing:  # timer callbacks are not messages: they can fire during shutdown
            return
        self._update_timer = None
        self._last_update = time.monotonic()
        inserted = self.view.catch_up()
        if inserted is not None:
            self.main.query_one(EventList).rows_inserted(inserted)
            self._summary_dirty = True
        self._update_status()
        self._maybe_summarize()
        self._maybe_find()

    @_while_open
    def on_input_ended(self) -> None:
        self._update_status()

    @_while_open
    def on_file_notices(self, message: FileNotices) -> None:
        for n in message.notices:
            if n.kind in ("rotated", "truncated", "removed", "unreadable", "incomplete", "waiting"):
                severity = "warning" if n.kind in ("unreadable", "incomplete") else "information"
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
        if self._filter_timer is not None:
            self._filter_timer.stop()
        try:
            parse(text)
        except QueryError as exc:
            self._show_hint(
                Text(f"✗ {exc}  (the list keeps: {self.view.text or 'all events'})", "bold red")
            )
            return
        self._show_hint(Text(""))
        self._filter_timer = self.set_timer(FILTER_DEBOUNCE, lambda: self.apply_filter(text))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        try:
            parse(text)
        except QueryError:
            self.bell()
            return
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self.committed = text
        self.history.add(text)
        self.history.reset()
        if text != self.view.text:
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
        if per_request is None:
            per_request = self.view.requests is not None
        self.pending_text = text
        self.pending_order = order or self.view.order
        self.pending_requests = self.requests if per_request else None
        self._filter_worker(text, self.pending_order, self.pending_requests)
        self._update_status()

    @work(thread=True, group="filter", exclusive=True, exit_on_error=False)
    def _filter_worker(self, text: str, order: str, requests: Requests | None) -> None:
        snap = self.store.snapshot()
        try:
            node = parse(text)
            rows = matching(snap, node, order, requests)
        except Exception as exc:  # never leave the list "filtering…" for ever
            self.call_from_thread(self._filter_failed, text, exc)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(FilterResult(text, node, rows, len(snap), order, requests))

    def _filter_failed(self, text: str, exc: Exception) -> None:
        if text == self.pending_text:
            self.pending_text = None
        self.notify(f"Filter failed: {inert(str(exc))}", severity="error", markup=False)
        self._update_status()

    @_while_open
    def on_filter_result(self, message: FilterResult) -> None:
        wanted = (self.pending_text, self.pending_order, self.pending_requests)
        if (message.text, message.order, message.requests) != wanted:
            return  # superseded by later typing
        self.pending_text = None
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
        self.view.catch_up()
        event_list.rows_replaced(keep)
        self._summary_dirty = True
        self._update_status()
        self._maybe_summarize()

    # -- detail ---------------------------------------------------------------------------

    def _cursor_moved(self, event: int | None) -> None:
        self.main.query_one(DetailPane).show(event)

    def on_event_list_follow_changed(self) -> None:
        if self.main.query_one(EventList).following and self.view.order == SLOWEST:
            self.apply_filter(self.view.text, TIME)  # F / End: back to the live tail
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

    def action_stage(self, step: int) -> None:
        detail = self.main.query_one(DetailPane)
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

    # -- summary --------------------------------------------------------------------------

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id in ("summary", "histogram"):
            self._summary_dirty = True
            self.call_after_refresh(self._maybe_summarize)  # once laid out: buckets fit it
            pane = SummaryPane if event.pane.id == "summary" else HistogramPane
            self.main.query_one(pane).focus()
        elif event.pane.id == "findings":
            self.main.query_one(FindingsPane).focus()
        elif event.pane.id == "policy":
            self._summary_dirty = True
            self.call_after_refresh(self._maybe_summarize)
            self.main.query_one(PolicyPane).focus()
        else:
            self.main.query_one(EventList).focus()

    def _maybe_summarize(self) -> None:
        """Recompute the summary or the histogram, whichever is shown, when the rows changed
        (in a thread, at most every SUMMARY_EVERY seconds)."""
        if self.closing:  # called from timers, which can fire during shutdown
            return
        tabs = self.main.query_one(TabbedContent)
        if tabs.active not in ("summary", "histogram", "policy"):
            return
        if tabs.active == "policy" and self.policy is None:
            return
        if not self._summary_dirty or self._summary_running:
            return
        self._summary_dirty = False
        self._summary_running = True
        if tabs.active == "summary":
            self._summary_worker(self.main.query_one(SummaryPane).by, self.view.rows)
        elif tabs.active == "policy":
            self._policy_worker(self.view.rows)
        elif self.main.query_one(HistogramPane).laid_out:
            self._histogram_worker(self.main.query_one(HistogramPane).buckets, self.view.rows)
        else:  # no width yet (a loaded machine lays out late): HistogramPane.Resized will do
            self._summary_dirty = True
            self._summary_running = False

    @work(thread=True, group="summary", exit_on_error=False)
    def _histogram_worker(self, buckets: int, rows) -> None:
        self.post_message(HistogramResult(histogram(self.store.snapshot(), rows, buckets)))

    @_while_open
    def on_histogram_result(self, message: HistogramResult) -> None:
        self.main.query_one(HistogramPane).show(message.hist)
        self.set_timer(SUMMARY_EVERY, self._summary_done)

    def on_histogram_pane_resized(self) -> None:
        self._summary_dirty = True
        self._maybe_summarize()

    def on_histogram_pane_selected(self, message: HistogramPane.Selected) -> None:
        after, before = (
            format_time(t).replace(".000000Z", "Z") for t in (message.after, message.before)
        )
        self._narrow(f"after:{after} before:{before}")

    @work(thread=True, group="summary", exit_on_error=False)
    def _summary_worker(self, by: str, rows) -> None:
        result = summarize(self.store.snapshot(), rows, by)
        self.post_message(SummaryResult(by, result))

    @_while_open
    def on_summary_result(self, message: SummaryResult) -> None:
        pane = self.main.query_one(SummaryPane)
        if message.by == pane.by:
            pane.show(message.rows)
        # Live, but at most every SUMMARY_EVERY seconds.
        self.set_timer(SUMMARY_EVERY, self._summary_done)

    # -- policy -----------------------------------------------------------------------------

    def use_policy(self, policy: Policy, path: str) -> None:
        """Evaluate ``policy`` from now on: rule:N, the detail header, the policy pane."""
        self.policy, self.policy_path = policy, path
        attach_policy(policy, self.store)
        self._summary_dirty = True
        if self.screen_stack:  # (before mount the widgets pick it up in on_mount)
            self._show_policy_state()

    def _show_policy_state(self) -> None:
        self.main.query_one(DetailPane).policy = self.policy
        note = self.main.query_one("#policy-note", Static)
        note.update(
            Text(
                f"{inert(self.policy_path)}: {len(self.policy.rules)} rules, simulated over the "
                "events of the filter. Enter: a rule's events (rule:N). P loads another.",
                "dim",
            )
        )
        self._maybe_summarize()

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
            self.action_tab("policy")

        self.push_screen(
            PathScreen(
                "Load an audit policy (audit.k8s.io/v1, YAML or JSON):",
                self.policy_path,
                "Its rules then show in the detail header, the Policy pane (5) and rule:N.",
            ),
            chosen,
        )

    @work(thread=True, group="summary", exit_on_error=False)
    def _policy_worker(self, rows) -> None:
        snap = self.store.snapshot()
        self.post_message(PolicyResult(simulate(self.policy, snap, self.findings, rows)))

    @_while_open
    def on_policy_result(self, message: PolicyResult) -> None:
        self.main.query_one(PolicyPane).show(message.simulation, self.policy_path)
        self.set_timer(SUMMARY_EVERY, self._summary_done)

    def on_policy_pane_drill(self, message: PolicyPane.Drill) -> None:
        self._show_events(f"rule:{'none' if message.rule is None else message.rule}")

    def _summary_done(self) -> None:
        self._summary_running = False
        self._maybe_summarize()

    def on_summary_pane_group_changed(self) -> None:
        self._summary_dirty = True
        self._maybe_summarize()

    def on_summary_pane_drill(self, message: SummaryPane.Drill) -> None:
        self._narrow(term(message.field, message.value))

    def _narrow(self, terms: str) -> None:
        """Drill down from another pane: add ``terms`` to the filter in force and show the
        list."""
        self._show_events(f"{self.committed} {terms}".strip())

    def _show_events(self, text: str) -> None:
        """Put ``text`` in force as the filter (bar, history) and show the list."""
        self.main.query_one(FilterBar).value = text
        self.committed = text
        self.history.add(text)
        self.apply_filter(text)
        self.main.query_one(TabbedContent).active = "events"
        self.main.query_one(EventList).focus()

    # -- findings -------------------------------------------------------------------------

    def _maybe_find(self) -> None:
        """Evaluate the rules over new events in a thread, at most once a second (the first
        time once the logs are indexed: the indexer's final StoreGrew comes here)."""
        if self.closing or self._findings_running or len(self.store) <= self.findings.upto:
            return
        if self.session.indexing:
            return  # one pass once indexed: while indexing, the cores are the indexer's
        wait = FINDINGS_EVERY - (time.monotonic() - self._findings_last)
        if wait > 0:
            if self._findings_timer is None:
                self._findings_timer = self.set_timer(wait, self._find_later)
            return
        self._findings_running = True
        self._findings_last = time.monotonic()
        self._findings_worker()

    def _find_later(self) -> None:
        self._findings_timer = None
        self._maybe_find()

    @work(thread=True, group="findings", exit_on_error=False)
    def _findings_worker(self) -> None:
        snap = self.store.snapshot()
        try:
            changed = self.findings.update(snap)
            result = FindingsResult(self.findings.results(snap), self.findings.blind(snap), changed)
            memory.release()  # a pass over every event leaves big temporaries in the heap
        except Exception as exc:  # a rule must not take the app down; say so once
            self.call_from_thread(
                self.notify, f"Findings failed: {inert(str(exc))}", severity="error", markup=False
            )
            return
        self.post_message(result)

    @_while_open
    def on_findings_result(self, message: FindingsResult) -> None:
        self._findings_running = False
        pane = self.main.query_one(FindingsPane)
        pane.show(message.findings, message.blind)
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
        self.finding_count = sum(1 for f in message.findings if f.rule.severity != "info")
        if message.changed and "finding:" in self.view.text:
            self.apply_filter(self.view.text)  # old events may have joined a finding
        self._update_status()
        self._maybe_find()

    @on(DataTable.RowHighlighted, "#findings-table")
    def _finding_highlighted(self) -> None:
        pane = self.main.query_one(FindingsPane)
        self.main.query_one("#finding-note", Static).update(pane.note())

    def on_findings_pane_drill(self, message: FindingsPane.Drill) -> None:
        self._show_events(f"finding:{message.rule_id}")  # replaces the filter: a finding's events

    # -- other actions --------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.main.query_one(TabbedContent).active = "events"
        bar = self.main.query_one(FilterBar)
        # At once, not on the next idle: keys typed right after "/" (or pasted with it)
        # must land in the bar.
        self.main.set_focus(bar)
        bar.cursor_position = len(bar.value)

    def action_per_request(self) -> None:
        """R: fold the stages of each request into one row, or show every event again."""
        self.apply_filter(self.view.text, TIME, per_request=self.view.requests is None)

    def action_slowest(self) -> None:
        """L: the filtered requests slowest first, or back to time order."""
        self.apply_filter(self.view.text, TIME if self.view.order == SLOWEST else SLOWEST)

    def action_tab(self, tab: str) -> None:
        self.main.query_one(TabbedContent).active = tab

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_malformed(self) -> None:
        self.push_screen(MalformedScreen(list(self.store.malformed)))

    def action_back(self) -> None:
        """Esc: leave the filter bar (restoring the filter in force), close the detail, or
        clear the filter, one level per press."""
        focused = self.focused
        body = self.main.query_one("#events-body")
        if isinstance(focused, FilterBar):
            self._show_hint(Text(""))
            if focused.value != self.committed:
                focused.value = self.committed
                if self._filter_timer is not None:
                    self._filter_timer.stop()
                if self.view.text != self.committed or self.pending_text is not None:
                    self.apply_filter(self.committed)
            self.main.query_one(EventList).focus()
        elif body.has_class("-detail-open") or isinstance(focused, JsonTree):
            body.remove_class("-detail-open")
            self.main.query_one(EventList).focus()
        elif self.main.query_one(TabbedContent).active in (
            "summary",
            "histogram",
            "findings",
            "policy",
        ):
            self.action_tab("events")
        elif self.committed:
            self.main.query_one(FilterBar).value = ""
            self.committed = ""
            self.apply_filter("")

    def action_export(self) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        default = os.path.join(os.getcwd(), f"audittui-export-{stamp}.jsonl")
        detail = self.main.query_one(DetailPane)
        # As the detail shows them: masked unless revealed, the wrappers once w shows them.
        masked, wrappers = not detail.reveal, detail.show_wrapper

        def chosen(path: str | None) -> None:
            if not path:
                return
            target = os.path.abspath(os.path.expanduser(path))
            if os.path.exists(target):
                self.push_screen(
                    ConfirmScreen(f"{inert(target)} exists. Overwrite it?"),
                    lambda yes: self._export(target, masked, wrappers) if yes else None,
                )
            else:
                self._export(target, masked, wrappers)

        self.push_screen(ExportScreen(default, len(self.view), masked, wrappers), chosen)

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

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in palette():
            yield SystemCommand(title, help_text, partial(self.run_action, action))

    def action_follow(self) -> None:
        """F in the list, and "Follow" in the palette."""
        self.main.query_one(EventList).action_follow()

    # -- status ---------------------------------------------------------------------------

    def status_text(self) -> Text:
        store, session = self.store, self.session
        text = Text()
        text.append(f"{len(self.view):,}", "bold")
        text.append(f" / {len(store):,} events", "")
        if self.view.text:
            text.append(f"  filter: {inert(self.view.text)}", "cyan")
        if self.view.order == SLOWEST:
            text.append("  slowest requests first (L: by time)", "magenta")
        elif self.view.requests is not None:
            text.append("  one row per request (R: every event)", "magenta")
        if self.pending_text is not None:
            text.append("  filtering…", "yellow")
        lst = self.main.query_one(EventList)
        if session.follower is None:
            state = "read once"
        elif lst.following:
            state = "following"
        else:
            state = "paused" + (f" +{lst.unseen:,} new (F follows)" if lst.unseen else "")
        text.append(f"  ● {state}", "green" if state == "following" else "yellow")
        if self.stdin is not None and self.stdin.state():
            text.append(f"  {inert(self.stdin.state())}", "yellow")
        if session.indexing and session.total_bytes:
            pct = 100 * session.done_bytes / session.total_bytes
            text.append(f"  indexing {pct:.0f}%", "yellow")
        bad = len(store.malformed) + session.lines.pending
        if bad:
            text.append(f"  {bad:,} malformed (!)", "red")
        if self.finding_count:
            text.append(f"  ⚑ {self.finding_count} finding(s) (4)", "bold red")
        text.append(f"  {len(store.sources)} source(s)", "dim")
        return text

    def _update_status(self) -> None:
        self.main.query_one("#status", Static).update(self.status_text(), layout=False)
        lst = self.main.query_one(EventList)
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
        self.workers.cancel_all()
