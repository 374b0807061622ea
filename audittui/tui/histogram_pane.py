"""The time histogram: events per bucket for the active filter, stacked by outcome (5xx red,
403 magenta, other 4xx yellow, the rest blue), with a cursor and a range to filter to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.style import Style
from rich.text import Text
from textual.message import Message
from textual.widget import Widget

from ..analyses.histogram import SECOND, Histogram, histogram
from ..analyses.view import RowView
from ..backend.protocol import Backend
from ..index.store import Store
from ..ingest.formats import format_duration
from .keymap import bindings
from .live import LiveAnalysis
from .messages import HistogramResult

BLOCKS = " ▁▂▃▄▅▆▇█"
LAYERS = (  # bottom to top
    ("server", Style(color="red")),
    ("forbidden", Style(color="magenta")),
    ("client", Style(color="yellow")),
    ("total", Style(color="blue")),
)
AXIS = 7  # columns for the count scale on the left
CHROME = 3  # lines: title, time axis, bucket details


def clock(micros: int, step: int) -> str:
    dt = datetime.fromtimestamp(micros / SECOND, UTC)
    if step >= 86400 * SECOND:
        return dt.strftime("%m-%d")
    if step >= 60 * SECOND:
        return dt.strftime("%H:%M")
    return dt.strftime("%H:%M:%S")


class HistogramPane(LiveAnalysis, Widget, can_focus=True):
    """←/→ move, space marks one end of a range, Enter filters the list to it."""

    BINDINGS = bindings("HistogramPane")
    DEFAULT_CSS = "HistogramPane { height: 1fr; padding: 0 1; }"

    class Selected(Message):
        """Filter to [after, before) (µs since the epoch)."""

        def __init__(self, after: int, before: int) -> None:
            super().__init__()
            self.after = after
            self.before = before

    def on_resize(self) -> None:
        self.stale()  # the buckets follow the width

    @property
    def laid_out(self) -> bool:
        return self.content_region.width > AXIS

    def __init__(
        self,
        store: Store,
        view: RowView,
        *,
        id: str | None = None,
        backend: Backend | None = None,
        query: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store, self.view = store, view
        # A backend that pages (a store) answers for the list's query instead of the rows.
        self.backend, self.asked = backend, query
        self.hist: Histogram | None = None
        self.cursor = -1  # -1: the last bucket
        self.marked: int | None = None

    @property
    def buckets(self) -> int:
        """How many buckets fit the width."""
        return max(1, self.content_region.width - AXIS)

    def ready(self) -> bool:
        # No width yet (a loaded machine lays out late): on_resize asks again.
        return self.shown and self.laid_out

    def compute(self) -> bool:
        backend, query = self.backend, self.asked
        if backend is not None and query is not None:
            buckets, text = self.buckets, query()
            self.in_thread(lambda: HistogramResult(backend.histogram(text, buckets)))
            return True
        buckets, rows, snap = self.buckets, self.view.rows, self.store.snapshot()
        self.in_thread(lambda: HistogramResult(histogram(snap, rows, buckets)))
        return True

    def on_histogram_result(self, message: HistogramResult) -> None:
        self.show(message.hist)
        self.finished()

    def show(self, hist: Histogram | None) -> None:
        old = self.hist
        self.hist = hist
        # Keep the cursor (and a marked end) on the same time when the buckets stay the same.
        if hist is not None and old is not None and hist.step == old.step and self.cursor >= 0:
            shift = (old.start - hist.start) // hist.step
            self.cursor = min(max(0, self.cursor + shift), len(hist) - 1)
            if self.marked is not None:
                self.marked = min(max(0, self.marked + shift), len(hist) - 1)
        else:
            self.cursor, self.marked = -1, None
        self.refresh()

    def _cursor(self) -> int:
        n = len(self.hist) if self.hist is not None else 0
        return n - 1 if self.cursor < 0 or self.cursor >= n else self.cursor

    def action_move(self, step: int) -> None:
        if self.hist is not None:
            self.cursor = min(max(0, self._cursor() + step), len(self.hist) - 1)
            self.refresh()

    def action_jump(self, where: int) -> None:
        if self.hist is not None:
            self.cursor = 0 if where == 0 else len(self.hist) - 1
            self.refresh()

    def action_mark(self) -> None:
        self.marked = None if self.marked == self._cursor() else self._cursor()
        self.refresh()

    def action_apply(self) -> None:
        if self.hist is None or not len(self.hist):
            return
        cursor = self._cursor()
        first = cursor if self.marked is None else self.marked
        after, before = self.hist.bounds(first, cursor)
        self.marked = None
        self.post_message(self.Selected(after, before))

    def render(self) -> Text:
        width, height = self.content_region.width, self.content_region.height
        hist = self.hist
        if hist is None or not len(hist):
            return Text("No events with a time in the current filter.", "dim")
        plot = max(1, height - CHROME)
        top = max(1, int(hist.total.max()))
        cursor = self._cursor()
        lo, hi = sorted((cursor, cursor if self.marked is None else self.marked))
        text = Text()
        text.append(
            f"{len(hist)} buckets of {format_duration(hist.step)}, up to {top:,} events each",
            "bold",
        )
        layers = [getattr(hist, name) for name, _ in LAYERS]
        cumulative = [sum(layers[: k + 1]) if k < 3 else layers[3] for k in range(4)]
        for y in range(plot - 1, -1, -1):
            text.append("\n")
            label = f"{top:,}" if y == plot - 1 else ("0" if y == 0 else "")
            text.append(label.rjust(AXIS - 1) + " ", "dim")
            for x in range(min(len(hist), width - AXIS)):
                eighths = int(hist.total[x]) * plot * 8 // top
                level = eighths - 8 * y
                style = Style()
                if level > 0:
                    middle = (8 * y + 4) * top / (plot * 8)
                    for (_, layer_style), cum in zip(LAYERS, cumulative, strict=True):
                        if middle < cum[x]:
                            style = layer_style
                            break
                    else:
                        style = LAYERS[-1][1]
                char = BLOCKS[min(8, level)] if level > 0 else " "
                if lo <= x <= hi:
                    style += Style(bgcolor="grey23")
                if x == cursor:
                    style += Style(reverse=True) if level <= 0 else Style(bold=True)
                text.append(char, style)
        text.append("\n" + " " * AXIS)
        axis = [" "] * min(len(hist), width - AXIS)
        x = 0
        while x < len(axis):
            label = clock(hist.start + x * hist.step, hist.step)
            if x + len(label) <= len(axis):
                axis[x : x + len(label)] = list(label)
            x += max(len(label) + 4, 16)
        text.append("".join(axis), "dim")
        after, before = hist.bounds(lo, hi)
        picked = slice(lo, hi + 1)
        text.append(
            f"\n{clock(after, 1)} – {clock(before, 1)}  {int(hist.total[picked].sum()):,} events"
            f" · {int(hist.forbidden[picked].sum()):,} 403 · {int(hist.client[picked].sum()):,}"
            f" other 4xx · {int(hist.server[picked].sum()):,} 5xx"
            + ("   ←/→ move, space marks, Enter filters" if width >= 110 else ""),
        )
        return text
