"""The app over a ClickHouse store (``audittui clickhouse://…``): the event list, the detail,
the histogram and the per-user summary, each computed by the server.

Nothing here holds the selection: the list is a :class:`~audittui.tui.store_window.Window`
of a few pages fetched by keyset, the count, the histogram and the summary are aggregates the
server returns, and the detail is one row fetched by its key. Every call to the server runs in
a thread worker; a failure is a notice (the app keeps running) and the status says it.
Following polls for rows after the newest one while the cursor is on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from ..analyses.histogram import Histogram
from ..analyses.summary import Summary
from ..clickhouse.reads import FOLLOW_EVERY, Reader, late_key
from ..clickhouse.sql import SqlError, Where
from ..ingest.formats import parse_json
from ..output.inert import fit, inert, pad
from ..output.mask import mask_event
from ..query.syntax import QueryError
from . import tabs
from .columns import WIDE_TIME, fit_columns, row_cells
from .detail import header as detail_header
from .event_list import DIM, row_strip
from .filter_bar import InertInput
from .histogram_pane import BLOCKS
from .json_tree import JsonTree
from .keymap import bindings
from .store_window import Fetch, Key, Row, Window
from .summary_pane import MAX_ROWS, SummaryTable, drill_term

RECOUNT_EVERY = 10.0  # s: while following, the count is also asked of the server this often
POLL_PAGES = 10  # pages a poll reads at most; a store growing faster is caught up next poll
EDGE = 20  # rows from the window's edge at which the next page is fetched


class StoreList(ScrollView, can_focus=True):
    """The window's rows, one event per line (the Line API: only what is shown is drawn)."""

    BINDINGS = bindings("EventList")  # the same keys as the list over files
    COMPONENT_CLASSES = {"store-list--cursor"}
    DEFAULT_CSS = """
    StoreList { background: $surface; overflow-x: hidden; height: 1fr; }
    StoreList > .store-list--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    StoreList:focus > .store-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """

    def __init__(self, window: Window, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.window = window
        self.cursor = 0
        self.following = True
        self.empty_note = ""
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._columns: list = []
        self._width = -1
        # Set by the app: asked for more rows past an edge ("after" or "before"), told of moves
        self.on_edge: Callable[[str], None] | None = None
        self.on_move: Callable[[Row | None], None] | None = None
        self.on_end: Callable[[str], None] | None = None  # "first" / "last": a jump to an end
        self._last: Key | None = None

    @property
    def row(self) -> Row | None:
        rows = self.window.rows
        return rows[min(self.cursor, len(rows) - 1)] if rows else None

    def replaced(self, at_end: bool) -> None:
        """The window was filled anew: the cursor to its last row (``at_end``) or its first."""
        self._cache.clear()
        self.virtual_size = Size(0, len(self.window))
        self.cursor = max(len(self.window) - 1, 0) if at_end else 0
        self.following = at_end and not self.window.more_after
        self._scroll_cursor(center=True)
        self._moved()
        self.refresh()

    def shifted(self, front: int) -> None:
        """Rows were added (``front`` > 0: put in front) or dropped (< 0) at the window's start,
        or added at its end (0): the same event stays under the cursor."""
        self._cache.clear()
        self.virtual_size = Size(0, len(self.window))
        self.cursor = max(0, min(self.cursor + front, len(self.window) - 1))
        if front:
            self.scroll_to(y=max(0, self.scroll_y + front), animate=False, immediate=True)
        if self.following:
            self.cursor = max(len(self.window) - 1, 0)
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self._moved()
        self.refresh()

    def _scroll_cursor(self, center: bool = False) -> None:
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_y)
        if center and not top <= self.cursor < top + height:
            self.scroll_to(y=max(0, self.cursor - height // 2), animate=False, immediate=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def _moved(self) -> None:
        row = self.row
        key = row.key if row is not None else None
        if key != self._last:
            self._last = key
            if self.on_move is not None:
                self.on_move(row)

    def _go(self, cursor: int) -> None:
        n = len(self.window)
        if not n:
            return
        self.cursor = max(0, min(cursor, n - 1))
        self.following = self.cursor == n - 1 and not self.window.more_after
        self._scroll_cursor()
        self._moved()
        self.refresh()
        if self.on_edge is not None:
            if self.cursor >= n - EDGE and self.window.more_after:
                self.on_edge("after")
            elif self.cursor < EDGE and self.window.more_before:
                self.on_edge("before")

    def action_move(self, step: int) -> None:
        self._go(self.cursor + step)

    def action_page(self, step: int) -> None:
        self._go(self.cursor + step * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        if self.window.more_before and self.on_end is not None:
            self.on_end("first")
        else:
            self._go(0)

    def action_last(self) -> None:
        if self.window.more_after and self.on_end is not None:
            self.on_end("last")
        else:
            self._go(len(self.window) - 1)

    def action_follow(self) -> None:
        self.action_last()

    def action_error(self, step: int) -> None:
        rows = self.window.rows
        k = self.cursor + step
        while 0 <= k < len(rows) and int(rows[k].value("code") or 0) < 400:
            k += step
        if 0 <= k < len(rows):
            self._go(k)
        else:
            self.notify("No more errors in the rows held (filter with code:>=400)", timeout=3)

    def on_click(self, event: events.Click) -> None:
        self._go(int(self.scroll_y) + event.y)

    def on_resize(self) -> None:
        self.virtual_size = Size(0, len(self.window))
        self._cache.clear()
        self.call_after_refresh(self._scroll_cursor)  # the detail opened: keep the cursor shown

    def columns(self) -> list:
        width = self.scrollable_content_region.width
        if width != self._width:
            self._columns, self._width = fit_columns(width), width
        return self._columns

    def header_text(self) -> str:
        cols = self.columns()
        return " ".join(c.title.rjust(w) if c.right else c.title.ljust(w) for c, w in cols)

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        rows = self.window.rows
        if index >= len(rows) or width <= 0:
            if not rows and y == 1 and self.empty_note:
                note = pad(" " + fit(inert(self.empty_note), width - 2), width)
                return Strip([Segment(note, self.rich_style + DIM)], width)
            return Strip.blank(width, self.rich_style)
        is_cursor = index == self.cursor
        key = (rows[index].key, width, is_cursor)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._row_strip(rows[index], width, is_cursor)
            self._cache[key] = strip
        return strip

    def _row_strip(self, row: Row, width: int, is_cursor: bool) -> Strip:
        base = self.rich_style
        if is_cursor:
            base = base + self.get_component_rich_style("store-list--cursor")
        text = row_cells(row.value, with_date=width >= WIDE_TIME)
        return row_strip(text, self.columns(), width, base, is_cursor)


class StoreSummary(SummaryTable):
    """The summary as the store's server computed it; a new grouping asks the app again."""

    class Regrouped(Message):
        pass

    def regroup(self) -> None:
        self.post_message(self.Regrouped())


class StoreHeader(Widget):
    DEFAULT_CSS = "StoreHeader { height: 1; background: $panel; color: $text-muted; }"

    def __init__(self, store_list: StoreList) -> None:
        super().__init__()
        self.store_list = store_list

    def render(self) -> Text:
        return Text(self.store_list.header_text(), "bold")


def sparkline(hist: Histogram | None, width: int) -> Text:
    """One line of the selection over time: a block per bucket, red where 5xx, magenta 403."""
    if hist is None or not len(hist) or width <= 0:
        return Text("no events in time", "dim")
    top = max(int(hist.total.max()), 1)
    text = Text()
    for k in range(min(len(hist), width)):
        n = int(hist.total[k])
        block = BLOCKS[0 if not n else max(1, round(n / top * (len(BLOCKS) - 1)))]
        style = "red" if hist.server[k] else "magenta" if hist.forbidden[k] else "blue"
        text.append(block, style)
    return text


class StoreApp(App[None]):
    """audittui over a ClickHouse store."""

    TITLE = "audittui"
    # The file app's keys, those that apply here
    BINDINGS = bindings(
        "app",
        only=frozenset(
            {"focus_filter", "open_detail", "step_back", "reveal", "copy", "quit"}
            | {f"tab('{tabs.EVENTS}')", f"tab('{tabs.SUMMARY}')"}
        ),
    )
    CSS = """
    #spark { height: 1; padding: 0 1; }
    #filter { height: 3; }
    TabbedContent { height: 1fr; }
    TabbedContent > ContentSwitcher { height: 1fr; }
    TabPane { height: 1fr; padding: 0; }
    #users { height: 1fr; }
    #detail { height: 45%; border-top: solid $panel; display: none; }
    #detail.open { display: block; }
    #head { height: auto; padding: 0 1; background: $boost; }
    #status { height: 1; background: $panel; padding: 0 1; }
    """

    def __init__(self, reader: Reader, display: str, query: str = "") -> None:
        super().__init__()
        self.reader = reader
        self.where_from = display  # the URL as the user may see it (no password)
        self.text = query
        self.where = reader.where(query)
        self.window = Window(lambda row: row.key)
        self.count: int | None = None
        self.counted = 0.0  # when the server last counted
        self.hist: Histogram | None = None
        self.revealed = False
        self.detail_event: dict | None = None
        self.state = "connecting"
        self.fetching = False
        self.sub_title = display

    def compose(self) -> ComposeResult:
        yield InertInput(self.text, placeholder="filter: user:alice verb:delete,patch code:4xx …",
                         id="filter")  # fmt: skip
        yield Static(id="spark")
        with TabbedContent(initial=tabs.EVENTS):
            with TabPane("Events", id=tabs.EVENTS):
                self.list = StoreList(self.window, id="list")
                yield StoreHeader(self.list)
                yield self.list
                with Vertical(id="detail"):
                    yield Static(id="head")
                    yield JsonTree(id="tree")
            with TabPane("Summary", id=tabs.SUMMARY):
                yield StoreSummary(id="users")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.list.on_edge = self._edge
        self.list.on_move = self._moved
        self.list.on_end = self._jump
        self.list.focus()
        self._reload()
        self.set_interval(FOLLOW_EVERY, self._poll)

    def on_unmount(self) -> None:
        self.reader.close()

    # -- workers: every call to the server runs in a thread ---------------------------------

    def _fetch(self, where: Where) -> Fetch:
        def fetch(after: Key | None, descending: bool, limit: int) -> list[Row]:
            return self.reader.page(where, after, limit, descending, raw=False)

        return fetch

    def _reload(self) -> None:
        """The filter changed (or the app opened): count, histogram, newest page, summary."""
        self.count, self.state = None, "loading"
        self._load_last(self.where)
        self._count(self.where)
        self._histogram(self.where, max(10, self.size.width - 2))
        self._summary(self.where)
        self._show_status()

    @work(thread=True, exclusive=True, group="page")
    def _load_last(self, where: Where) -> None:
        self._call(lambda: self.window.last(self._fetch(where)), self._got_last, where)

    @work(thread=True, exclusive=True, group="page")
    def _load_first(self, where: Where) -> None:
        self._call(lambda: self.window.first(self._fetch(where)), self._got_first, where)

    @work(thread=True, exclusive=True, group="page")
    def _load_more(self, where: Where, side: str) -> None:
        fetch = self._fetch(where)
        get = self.window.after if side == "after" else self.window.before
        self._call(lambda: get(fetch), lambda rows: self._got_more(side, rows), where)

    # Three workers, not one: a server that cannot compute one of them (an old release
    # lacking a function) still shows the others.
    @work(thread=True, exclusive=True, group="count")
    def _count(self, where: Where) -> None:
        self._call(lambda: self.reader.count(where), self._got_count, where, "count")

    @work(thread=True, exclusive=True, group="histogram")
    def _histogram(self, where: Where, width: int) -> None:
        self._call(
            lambda: self.reader.histogram(where, width), self._got_histogram, where, "histogram"
        )

    @work(thread=True, exclusive=True, group="summary")
    def _summary(self, where: Where) -> None:
        by = self.query_one(StoreSummary).by
        self._call(
            lambda: (by, self.reader.summary(by, where, top=MAX_ROWS)),
            self._got_summary,
            where,
            "summary",
        )

    @work(thread=True, exclusive=True, group="poll")
    def _poll_worker(self, where: Where) -> None:
        rows = self.window.rows
        newest = rows[-1].value("time") if rows else None
        self._call(lambda: self._recent(where, newest), self._got_new, where)

    def _recent(self, where: Where, newest: int | None) -> list[Row]:
        """The rows of the last :data:`~audittui.clickhouse.reads.LATE` before the newest held,
        and after it: a keyset
        page from just before that time, so that rows written late are seen too."""
        if newest is None:
            return self.window.last(self._fetch(where))[::-1]
        fetch = self._fetch(where)
        after: Key = late_key(newest)
        out: list[Row] = []
        for _ in range(POLL_PAGES):
            page = fetch(after, False, self.window.page)
            out += page
            if len(page) < self.window.page:
                break
            after = page[-1].key
        return out

    @work(thread=True, exclusive=True, group="detail")
    def _load_detail(self, row: Row) -> None:
        def raw() -> bytes | None:
            stored = self.reader.event(row.key)
            return stored.raw if stored is not None else None

        self._call(raw, lambda got: self._got_detail(row, got), None, "detail")

    def _call(
        self,
        ask: Callable[[], Any],
        then: Callable[[Any], None],
        where: Where | None,
        what: str = "events",
    ) -> None:
        """Run ``ask`` (in this worker's thread), then ``then`` with its result on the app's
        thread unless the filter changed meanwhile; a failure becomes a notice."""
        try:
            result = ask()
        except Exception as exc:  # a store error, a timeout, a dropped connection: said, not fatal
            self.call_from_thread(self._failed, what, exc)
            return
        if what == "events":
            self.call_from_thread(self._reached)
        # A thread cannot be stopped: a fetch superseded by a newer one of its group (home
        # pressed while the end was loading) ends here, or its rows would replace the newer.
        if get_current_worker().is_cancelled:
            return
        if where is None or where is self.where:
            self.call_from_thread(then, result)

    def _failed(self, what: str, exc: Exception) -> None:
        if what == "events":
            self.fetching = False
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        state = f"error ({what}): {inert(reason)}"
        if state != self.state:  # a store that stays down is said once, not at every poll
            self.notify(state, severity="error", timeout=8, markup=False)
        if what == "events" or self.state == "ok":
            self.state = state
        self._show_status()

    def _reached(self) -> None:
        if self.state.startswith("error (events)") or self.state in ("connecting", "loading"):
            self.state = "ok"

    # -- results, on the app's thread ------------------------------------------------------

    def _got_last(self, rows: list[Row]) -> None:
        self.fetching = False
        self.window.set_last(rows)
        self.list.empty_note = "" if rows else "No events match the filter."
        self.list.replaced(at_end=True)
        self._show_status()

    def _got_first(self, rows: list[Row]) -> None:
        self.fetching = False
        self.window.set_first(rows)
        self.list.replaced(at_end=False)
        self._show_status()

    def _got_more(self, side: str, rows: list[Row]) -> None:
        self.fetching = False
        if side == "after":
            self.list.shifted(-self.window.append(rows))
        else:
            self.list.shifted(self.window.prepend(rows))
        self._show_status()

    def _got_new(self, rows: list[Row]) -> None:
        added = self.window.merge(rows)
        if added:
            if self.count is not None:
                self.count += added  # at once; counted again by the server now and then
            if time.monotonic() - self.counted > RECOUNT_EVERY:
                self._count(self.where)
            self.list.shifted(0)
            self._show_status()

    def _got_count(self, count: int) -> None:
        self.count, self.counted = count, time.monotonic()
        self._show_status()

    def _got_histogram(self, hist: Histogram | None) -> None:
        self.hist = hist
        self.query_one("#spark", Static).update(sparkline(hist, self.size.width - 2))

    def _got_summary(self, result: tuple[str, Summary]) -> None:
        by, summary = result
        table = self.query_one(StoreSummary)
        if by == table.by:
            table.show(summary)

    @on(StoreSummary.Regrouped)
    def _regrouped(self) -> None:
        self._summary(self.where)

    @on(SummaryTable.Drill)
    def _drill(self, message: SummaryTable.Drill) -> None:
        """Enter on a summary row: the events of that row, with the filter in force."""
        narrowed = drill_term(message.field, message.value)
        filter_bar = self.query_one("#filter", Input)
        filter_bar.value = f"{self.text} {narrowed}".strip()
        self.action_tab(tabs.EVENTS)
        self._apply(filter_bar.value)

    @on(SummaryTable.Access)
    def _access(self) -> None:
        self.notify("The access view reads files: audittui rbac over a store is not built yet.")

    def _got_detail(self, row: Row, raw: bytes | None) -> None:
        latency = row.value("latency")
        if self.list.row is not row:
            return  # the cursor moved on
        head = self.query_one("#head", Static)
        tree = self.query_one("#tree", JsonTree)
        if raw is None:
            head.update(Text("This event is no longer in the store.", "yellow"))
            tree.show(None)
            self.detail_event = None
            return
        event = parse_json(raw)
        if not isinstance(event, dict):
            event = {"raw": inert(raw.decode("utf-8", "replace"))}
        self.detail_event = event
        shown, masked = (event, 0) if self.revealed else mask_event(event)
        text = detail_header(event, -1 if latency is None else int(latency))
        if masked:
            text.append(f"\n{masked} secret value(s) masked (x reveals)", "dim")
        head.update(text)
        tree.show(shown)

    # -- the list's requests ---------------------------------------------------------------

    def _edge(self, side: str) -> None:
        if not self.fetching:
            self.fetching = True
            self._load_more(self.where, side)

    def _jump(self, end: str) -> None:
        self.fetching = True
        if end == "first":
            self._load_first(self.where)
        else:
            self._load_last(self.where)

    def _moved(self, row: Row | None) -> None:
        if row is not None and self.query_one("#detail").has_class("open"):
            self._load_detail(row)
        self._show_status()

    def _poll(self) -> None:
        if self.list.following and not self.fetching and self.state != "loading":
            self._poll_worker(self.where)

    # -- keys ------------------------------------------------------------------------------

    @on(Input.Submitted, "#filter")
    def _filter(self, event: Input.Submitted) -> None:
        self._apply(event.value)

    def _apply(self, text: str) -> None:
        text = text.strip()
        try:
            where = self.reader.where(text)
        except (QueryError, SqlError) as exc:  # said where it is; the filter in force stays
            self.notify(f"filter: {inert(str(exc))}", severity="error", timeout=6, markup=False)
            return
        self.text, self.where = text, where
        self.list.focus()
        self._reload()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        (self.list if tab == tabs.EVENTS else self.query_one(StoreSummary)).focus()

    def action_open_detail(self) -> None:
        detail = self.query_one("#detail")
        detail.add_class("open")
        if self.list.row is not None:
            self._load_detail(self.list.row)

    def action_step_back(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            self.list.focus()
        else:
            self.query_one("#detail").remove_class("open")

    def action_reveal(self) -> None:
        self.revealed = not self.revealed
        if self.list.row is not None and self.query_one("#detail").has_class("open"):
            self._load_detail(self.list.row)

    def action_copy(self) -> None:
        if self.detail_event is None:
            self.bell()
            return
        import orjson

        shown = self.detail_event if self.revealed else mask_event(self.detail_event)[0]
        self.copy_to_clipboard(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        self.notify("Event JSON copied (OSC 52)", timeout=2)

    def _show_status(self) -> None:
        text = Text()
        count = "counting…" if self.count is None else f"{self.count:,} events"
        text.append(count, "bold")
        if self.text:
            text.append(f"  filter: {inert(self.text)}", "cyan")
        w = self.window
        if w.rows:
            text.append(f"  {len(w.rows):,} rows held", "dim")
            if w.more_before:
                text.append(" ↑ more", "dim")
            if w.more_after:
                text.append(" ↓ more", "dim")
        mode = "following" if self.list.following else "paused (G follows)"
        text.append(f"  ● {mode}", "green" if self.list.following else "yellow")
        if self.state not in ("ok",):
            text.append(f"  {self.state}", "red" if self.state.startswith("error") else "yellow")
        text.append(f"  {inert(self.where_from)}", "dim")
        self.query_one("#status", Static).update(text)
