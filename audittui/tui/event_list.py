"""The event list: a Line-API widget (``ScrollView`` + ``render_line``) over the filtered rows,
so a million events cost no more than a screenful. Rows come from a
:class:`~audittui.tui.list_source.ListSource`: the in-memory selection (every row held, drawn
from the index's columns) or a backend's keyset pages (a stretch held; near its edge the list
asks the app for the next page, and g/G past it for the selection's first or last page). The
raw JSON is never read here.

Tail mode: while the cursor is on the last row, new events move it down (the list follows);
any move away pauses following and counts "+N new" until End, G or F resumes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Hashable
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from ..analyses.view import SLOWEST, Inserted
from ..output.inert import fit, inert, pad
from .columns import WIDE_TIME, fit_columns, short_user
from .keymap import bindings
from .list_source import ListSource

CODE_STYLES = {
    2: Style(color="green"),
    3: Style(color="cyan"),
    4: Style(color="yellow"),
    5: Style(color="red", bold=True),
}
FORBIDDEN = Style(color="magenta", bold=True)
DIM = Style(dim=True)
OPEN = Style(color="yellow", italic=True)
EDGE = 20  # rows from the held stretch's edge at which a paged source's next page is asked


def code_style(code: str) -> Style:
    if code == "open":
        return OPEN
    if code == "403":
        return FORBIDDEN
    return CODE_STYLES.get(int(code) // 100, DIM) if code.isdigit() else DIM


def row_strip(
    text: dict[str, str], columns: list, width: int, base: Style, is_cursor: bool
) -> Strip:
    """One event's line: its cells (:func:`~audittui.tui.columns.row_cells`) fitted to the
    columns, the code coloured, time, latency and IP dimmed off the cursor."""
    segments = []
    for k, (col, w) in enumerate(columns):
        value = text[col.key]
        if col.key == "user":
            value = short_user(value, w)
        value = pad(fit(value, w, middle=col.key in ("user", "where")), w, col.right)
        style = base
        if col.key == "code":
            style = base + code_style(text["code"])
        elif col.key in ("time", "latency", "ip") and not is_cursor:
            style = base + DIM
        if k:
            segments.append(Segment(" ", base))
        segments.append(Segment(value, style))
    return Strip(segments).crop_extend(0, width, base)


class ListHeader(Widget):
    """The column titles above an :class:`EventList`, aligned with its rows."""

    DEFAULT_CSS = "ListHeader { height: 1; background: $panel; color: $text-muted; }"

    def __init__(self, event_list: EventList, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event_list = event_list
        event_list.header = self

    def render(self) -> Text:
        return Text(self.event_list.header_text(), "bold")


class EventList(ScrollView, can_focus=True):
    """Rows of a :class:`~audittui.tui.list_source.ListSource`, one event per line, with a
    cursor."""

    BINDINGS = bindings("EventList")
    COMPONENT_CLASSES = {"event-list--cursor", "event-list--header"}
    DEFAULT_CSS = """
    EventList { background: $surface; overflow-x: hidden; }
    EventList > .event-list--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    EventList:focus > .event-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """

    class FollowChanged(Message):
        """Following started or paused, or the count of unseen events changed."""

    def __init__(self, source: ListSource, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.view: Any = getattr(source, "view", source)  # the RowView in memory
        self.empty_note = ""  # said in place of an empty list (why nothing was read)
        self.cursor = 0  # the row under the cursor
        self.following = True
        self.unseen = 0  # rows added after the cursor while paused
        self._cache: LRUCache[tuple, Strip] = LRUCache(2048)
        self._columns: list = []
        self._columns_width = -1
        self._last_event: Hashable | None = -1
        self.header: Widget | None = None  # redrawn when the columns are refitted
        # Told of the event under the cursor (None: no rows) at once, not by a message, so
        # the detail pane repaints in the same frame as the list.
        self.on_move: Callable[[Any], None] | None = None
        # A paged source's: asked for the page past an edge ("after"/"before") near it, and
        # for the selection's first or last page ("first"/"last") on g/G past the stretch.
        self.on_edge: Callable[[str], None] | None = None
        self.on_end: Callable[[str], None] | None = None

    # -- rows changing --------------------------------------------------------------------

    def rows_replaced(self, keep_event: Hashable | None) -> None:
        """The filter changed: keep the cursor on ``keep_event`` (or the nearest by time)."""
        self.unseen = 0
        n = len(self.source)
        if self.source.order == SLOWEST:
            self.following = False  # nothing to follow: the slowest request is on top
            row = 0
            self.post_message(self.FollowChanged())
        elif self.following or keep_event is None or not n:
            row = max(n - 1, 0)
        else:
            row = self.source.nearest(keep_event)
        self._resize_virtual()
        self._set_cursor(row, center=True)
        self.refresh()

    def pages_replaced(self, at_end: bool) -> None:
        """A paged source holds a new stretch: the cursor on its last row (``at_end``, then
        following unless more rows come after) or its first."""
        self.unseen = 0
        self._cache.clear()
        n = len(self.source)
        self.following = at_end and not self.source.more_after
        self._resize_virtual()
        self._set_cursor(max(n - 1, 0) if at_end else 0, center=True)
        self.post_message(self.FollowChanged())
        self.refresh()

    def pages_shifted(self, front: int, new: int = 0) -> None:
        """A paged source put ``front`` rows before its stretch (< 0: dropped them from its
        front), or added rows after or inside it (0), ``new`` of them new events (counted
        while paused): the same event stays under the cursor, or the newest while
        following."""
        self._cache.clear()
        if new and not self.following:
            self.unseen += new
            self.post_message(self.FollowChanged())
        keep = self.event
        self._resize_virtual()
        if self.following:
            self._set_cursor(len(self.source) - 1)
        elif keep is not None:
            if front:
                self.scroll_to(y=max(0, self.scroll_y + front), animate=False, immediate=True)
            self._set_cursor(self.source.nearest(keep))
        self.refresh()

    def rows_inserted(self, inserted: Inserted) -> None:
        """New events were merged into the rows: follow them, or stay on the same event."""
        n = len(self.source)
        self._resize_virtual()
        if self.following:
            self._set_cursor(n - 1)
        else:
            # Keep the same events on screen and under the cursor.
            old_cursor = self.cursor
            self.unseen += int((inserted.positions > old_cursor).sum())
            self.scroll_to(y=inserted.shift(int(self.scroll_y)), animate=False, immediate=True)
            self._set_cursor(inserted.shift(old_cursor))
            self.post_message(self.FollowChanged())
        self.refresh()

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(0, len(self.source))  # columns always fit: no sideways scroll
        # At once, not after the next refresh: scrolling is decided on our own row count
        # (see allow_vertical_scroll), and any later change of height comes with a Resize.
        self._reveal_cursor()

    @property
    def allow_vertical_scroll(self) -> bool:
        # Textual allows a scroll only once a layout pass has shown the scrollbar, which lags
        # behind the rows. A scroll to the tail asked for between the first batch and that
        # pass was dropped, so the list sat at the oldest events while "following" (when the
        # screen ran the after-refresh callbacks before laying out: about one start in ten
        # under load). The rows are ours: the list scrolls whenever they overflow it.
        return not self.disabled and self.max_scroll_y > 0

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        if shown:  # the thumb was not moved while hidden: put it where the rows are
            self.vertical_scrollbar.position = self.scroll_y

    def _reveal_cursor(self) -> None:
        if self.following:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            return
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_y)
        if not top <= self.cursor < top + height:
            self.scroll_to(y=max(0, self.cursor - height // 2), animate=False, immediate=True)

    # -- cursor ---------------------------------------------------------------------------

    @property
    def event(self) -> Any:
        """The event under the cursor: its store index in memory, its key when paged."""
        n = len(self.source)
        if not n:
            return None
        return self.source.ident(min(self.cursor, n - 1))

    def _set_cursor(self, row: int, center: bool = False) -> None:
        n = len(self.source)
        row = max(0, min(row, n - 1))
        old = self.cursor
        self.cursor = row
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_y)
        if center and not top <= row < top + height:
            self.scroll_to(y=max(0, row - height // 2), animate=False, immediate=True)
        elif row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)
        self.refresh_line(old - int(self.scroll_y))
        self.refresh_line(row - int(self.scroll_y))
        if self.event != self._last_event:
            self._last_event = self.event
            if self.on_move is not None:
                self.on_move(self.event)

    def _user_move(self, row: int) -> None:
        source = self.source
        n = len(source)
        self._set_cursor(row)
        at_end = self.cursor >= n - 1 and not source.more_after
        if self.on_edge is not None:
            if self.cursor >= n - EDGE and source.more_after:
                self.on_edge("after")
            elif self.cursor < EDGE and source.more_before:
                self.on_edge("before")
        if at_end != self.following:
            self.following = at_end
            if at_end:
                self.unseen = 0
            self.post_message(self.FollowChanged())

    def action_move(self, step: int) -> None:
        self._user_move(self.cursor + step)

    def action_page(self, step: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        self._user_move(self.cursor + step * height)

    def action_first(self) -> None:
        if self.source.more_before and self.on_end is not None:
            self.on_end("first")
            return
        self._user_move(0)

    def action_last(self) -> None:
        self.action_follow()

    def action_follow(self) -> None:
        if self.source.more_after and self.on_end is not None:
            self.on_end("last")  # the newest page, then following
            return
        self.following = True
        self.unseen = 0
        self._set_cursor(len(self.source) - 1)
        self.post_message(self.FollowChanged())

    def action_error(self, step: int) -> None:
        row = self.source.next_error(self.cursor, step)
        if row is None:
            self.notify("No more errors in that direction", timeout=2)
            return
        self._user_move(row)

    def on_mouse_scroll_up(self) -> None:
        if self.following:
            self.following = False
            self.post_message(self.FollowChanged())

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y
        if row < len(self.source):
            self._user_move(row)

    def on_resize(self) -> None:
        self._resize_virtual()

    # -- drawing --------------------------------------------------------------------------

    def columns(self) -> list:
        width = self.scrollable_content_region.width
        if width != self._columns_width:
            self._columns = fit_columns(width)
            self._columns_width = width
            if self.header is not None:
                self.header.refresh()
        return self._columns

    def header_text(self) -> str:
        """Column titles aligned with the rows (drawn by the list's header line)."""
        return " ".join(c.title.rjust(w) if c.right else c.title.ljust(w) for c, w in self._columns)

    def render_line(self, y: int) -> Strip:
        row = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        source = self.source
        if row >= len(source) or width <= 0:
            if not len(source) and self.empty_note and width > 2:
                lines = textwrap.wrap(inert(self.empty_note), width - 2)
                if 1 <= y <= len(lines):
                    note = pad(" " + lines[y - 1], width)
                    return Strip([Segment(note, self.rich_style + Style(dim=True))], width)
            return Strip.blank(width, self.rich_style)
        event = source.ident(row)
        is_cursor = row == self.cursor
        requests = source.requests
        # Part of the key: R switches it on, and a later stage arriving switches it off.
        is_open = requests is not None and requests.is_open(self.view.store, event)
        key = (event, width, is_cursor, is_open)
        strip = self._cache.get(key)
        if strip is None:
            strip = self.render_row(row, width, is_cursor)
            self._cache[key] = strip
        return strip

    def render_row(self, row: int, width: int, is_cursor: bool) -> Strip:
        """Row ``row`` drawn ``width`` wide (under the cursor or not)."""
        base = self.rich_style
        if is_cursor:
            base = base + self.get_component_rich_style("event-list--cursor")
        text, is_open = self.source.line(row, width >= WIDE_TIME)
        if is_open:
            text["code"] = "open"  # started, never completed: hung, streaming, or rotated away
        return row_strip(text, self.columns(), width, base, is_cursor)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
