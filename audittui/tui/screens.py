"""Modal screens: key help, the malformed lines, an object's history, the export prompt and its
confirmation."""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable, Input, Label, Static

from ..index.query import FIELDS
from ..index.store import Malformed
from ..ingest.malformed import SAMPLE, Capped
from ..output.inert import inert
from .keymap import bindings, help_sections


class HelpScreen(ModalScreen[None]):
    BINDINGS = bindings("HelpScreen")
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 96; height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for section, keys in help_sections():
            table.add_row(Text(section, "bold underline"), "")
            for key, what in keys:
                table.add_row(key, what)
            table.add_row("", "")
        with VerticalScroll():
            yield Static(table)
            yield Static(
                Text(
                    f"Query language: field:value terms ({', '.join(FIELDS)}); a,b = either; "
                    "* glob; /re/; -term or NOT negates; OR; ( ); bare words or "
                    '"phrases" search the raw JSON. See README.',
                    "dim",
                )
            )


class MalformedScreen(ModalScreen[None]):
    BINDINGS = bindings("MalformedScreen")
    DEFAULT_CSS = """
    MalformedScreen { align: center middle; }
    MalformedScreen > Vertical { width: 95%; height: 90%; border: round $warning;
        background: $surface; }
    MalformedScreen Label { padding: 0 1; }
    """

    def __init__(self, malformed: Capped[Malformed]) -> None:
        super().__init__()
        self.malformed = malformed

    def compose(self) -> ComposeResult:
        n, kept = len(self.malformed), self.malformed.kept
        title = f"{n:,} malformed line(s)" + (
            f"; {kept:,} listed (the first {SAMPLE:,} and the first of each kind)"
            if kept < n
            else ""
        )
        kinds = self.malformed.by_kind()
        counts = "; ".join(f"{count:,} {inert(kind)}" for kind, count in kinds[:6])
        more = f"; {len(kinds) - 6:,} more kinds" if len(kinds) > 6 else ""
        with Vertical():
            yield Label(Text(title + "  (esc closes)", "bold"))
            yield Label(Text("by kind: " + counts + more, "dim"))
            yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("FILE", "LINE", "REASON")
        for m in self.malformed:
            table.add_row(
                Text(inert(m.path)), Text(f"{m.line:,}", justify="right"), Text(inert(m.reason))
            )
        table.focus()


class HistoryLines(ScrollView, can_focus=True):
    """An object's history as lines, drawn only where shown (the Line API): an object with
    100,000 writes costs a string per line, not a widget, and scrolls at once."""

    DEFAULT_CSS = "HistoryLines { height: 1fr; }"

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []  # already inert
        self._bold: list[bool] = []
        self._widest = 0

    def extend(self, lines: list[tuple[str, tuple[object, ...]]]) -> None:
        for template, values in lines:
            text = template.format(*(inert(v) if isinstance(v, str) else v for v in values))
            self.lines.append(text)
            self._bold.append(not template.startswith("    "))  # an event's line, not a change
            self._widest = max(self._widest, cell_len(text))
        self.virtual_size = Size(self._widest, len(self.lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        x, top = self.scroll_offset
        width = self.scrollable_content_region.width
        k = top + y
        if k >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        style = self.rich_style + Style(bold=True) if self._bold[k] else self.rich_style
        text = self.lines[k]
        strip = Strip([Segment(text, style)], cell_len(text))
        return strip.crop_extend(x, x + width, self.rich_style)


class ObjectHistoryScreen(ModalScreen[None]):
    """One object's history (``h``): its events and what each write changed, shown as they are
    read (the title counts them until the last)."""

    BINDINGS = bindings("ObjectHistoryScreen")
    DEFAULT_CSS = """
    ObjectHistoryScreen { align: center middle; }
    ObjectHistoryScreen > Vertical { width: 95%; height: 90%; border: round $accent;
        background: $surface; padding: 0 1; }
    ObjectHistoryScreen #title { width: 100%; text-style: bold; }
    """

    def __init__(self, title: str, total: int) -> None:
        super().__init__()
        self.title_text, self.total, self.read = title, total, 0
        self.done = self.closed = False  # closed: the reader stops

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(id="title")
            yield HistoryLines()

    def on_mount(self) -> None:
        self.query_one(HistoryLines).focus()
        self._title()

    def on_unmount(self) -> None:
        self.closed = True

    def add(self, lines: list[tuple[str, tuple[object, ...]]], read: int, done: bool) -> None:
        """More lines, once ``read`` of the object's events are read (``done``: all)."""
        self.query_one(HistoryLines).extend(lines)
        self.read, self.done = read, done
        self._title()

    def _title(self) -> None:
        progress = "" if self.done else f"  reading {self.read:,} of {self.total:,}…"
        label = self.query_one("#title", Label)
        label.update(Text(inert(self.title_text) + progress + "  (esc closes)"))


class PathScreen(ModalScreen[str | None]):
    """Asks for a file name; returns it (or None when cancelled)."""

    BINDINGS = bindings("PathScreen")
    DEFAULT_CSS = """
    PathScreen { align: center middle; }
    PathScreen > Vertical { width: 80%; max-width: 100; height: auto; border: round $accent;
        background: $surface; padding: 0 1; }
    PathScreen Label { width: 100%; }
    """

    def __init__(self, prompt: str, default: str, note: str) -> None:
        super().__init__()
        self.prompt, self.default, self.note = prompt, default, note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.prompt, "bold"))
            yield Input(value=self.default, id="path")
            yield Label(Text(self.note, "dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportScreen(PathScreen):
    """Asks where to export the filtered events."""

    def __init__(self, default: str, count: int, masked: bool, wrappers: bool = False) -> None:
        note = (
            "Secret data and tokens are masked (x in the detail pane reveals them first)."
            if masked
            else "Secrets are REVEALED in this export (x masks them again)."
        )
        what = "the wrappers of" if wrappers else "the"  # w in the detail pane chooses
        super().__init__(
            f"Export {what} {count:,} filtered event(s) as JSON lines to:",
            default,
            note + "  Enter writes, Esc cancels.",
        )


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = bindings("ConfirmScreen")
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Label { width: auto; max-width: 90%; border: round $warning;
        background: $surface; padding: 1 2; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Label(Text(self.question + "  [y/n]"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
