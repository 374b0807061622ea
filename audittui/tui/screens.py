"""Modal screens: key help, the malformed lines, an object's history, the export prompt and its
confirmation."""

from __future__ import annotations

import os

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

from ..analyses.rbac import Result
from ..index.store import Malformed
from ..ingest.formats import MISSING_TIME, format_time
from ..ingest.malformed import SAMPLE, Capped
from ..output.inert import inert
from ..query.fields import FIELDS
from .keymap import bindings, help_sections
from .messages import SaveText


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
    MalformedScreen Label { padding: 0 1; width: 100%; }
    """

    def __init__(
        self, malformed: Capped[Malformed], ignored: Capped[Malformed], note: str = ""
    ) -> None:
        super().__init__()
        self.malformed, self.ignored = malformed, ignored
        self.note = note  # what is known instead (a store keeps no malformed lines)

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
            if self.note:
                yield Label(Text(self.note), id="malformed-note")
            if kinds:
                yield Label(Text("by kind: " + counts + more, "dim"))
            if self.ignored:
                first = self.ignored[0]
                yield Label(
                    Text(
                        f"{len(self.ignored):,} field(s) of the wrong type or nested too deep "
                        "ignored (read as "
                        f"missing, the events kept), e.g. {inert(first.path)} line "
                        f"{first.line:,} {inert(first.reason)}",
                        "dim",
                    )
                )
            yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("FILE", "LINE", "REASON")
        for m in self.malformed:
            table.add_row(
                Text(inert(m.path)), Text(f"{m.line:,}", justify="right"), Text(inert(m.reason))
            )
        table.focus()


class TextLines(ScrollView, can_focus=True):
    """Lines of text drawn only where shown (the Line API): an object's history of 100,000
    writes costs a string per line, not a widget, and scrolls at once. Lines that do not start
    with four spaces (an event's, not a change's) are bold unless ``plain``."""

    DEFAULT_CSS = "TextLines { height: 1fr; }"

    def __init__(self, plain: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []  # already inert
        self._bold: list[bool] = []
        self._widest = 0
        self.plain = plain

    def extend(self, lines: list[tuple[str, tuple[object, ...]]]) -> None:
        for template, values in lines:
            text = template.format(*(inert(v) if isinstance(v, str) else v for v in values))
            self.lines.append(text)
            self._bold.append(not self.plain and not template.startswith("    "))
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
            yield TextLines()

    def on_mount(self) -> None:
        self.query_one(TextLines).focus()
        self._title()

    def on_unmount(self) -> None:
        self.closed = True

    def add(self, lines: list[tuple[str, tuple[object, ...]]], read: int, done: bool) -> None:
        """More lines, once ``read`` of the object's events are read (``done``: all)."""
        self.query_one(TextLines).extend(lines)
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


class AccessScreen(ModalScreen[None]):
    """A subject's access (``a``): the permissions its requests used, the bindings that
    granted them, and least-privilege RBAC for it (``audittui rbac``'s YAML), to copy (OSC 52)
    or write to a file."""

    BINDINGS = bindings("AccessScreen")
    DEFAULT_CSS = """
    AccessScreen { align: center middle; }
    AccessScreen > Vertical { width: 95%; height: 95%; border: round $accent;
        background: $surface; padding: 0 1; }
    AccessScreen Label { width: 100%; }
    AccessScreen #title { text-style: bold; }
    AccessScreen .part { text-style: bold; margin-top: 1; }
    AccessScreen #permissions { height: auto; max-height: 45%; }
    AccessScreen #grants { height: auto; max-height: 20%; }
    AccessScreen #yaml { height: 1fr; min-height: 6; border: solid $primary-darken-2; }
    """

    def __init__(self, result: Result, yaml_text: str, scope: str) -> None:
        super().__init__()
        self.result, self.yaml_text, self.scope = result, yaml_text, scope

    def compose(self) -> ComposeResult:
        r = self.result
        denied = sum(p.usage.denied for p in r.permissions)
        title = (
            f"access of {r.user}: {r.events:,} event(s), {len(r.permissions):,} permission(s) "
            f"used, {denied:,} denied; {self.scope}"
        )
        with Vertical():
            yield Label(Text(inert(title) + "  (c copies the YAML, ctrl+s writes it, esc)"),
                        id="title")  # fmt: skip
            yield Label(Text("Permissions used (most used first)"), classes="part")
            yield DataTable(id="permissions", cursor_type="row", zebra_stripes=True)
            yield Label(Text("Granted by (the authorizer's reasons)"), classes="part")
            yield DataTable(id="grants", cursor_type="row", zebra_stripes=True)
            yield Label(Text("Least privilege (audittui rbac, audit2rbac-compatible)"),
                        classes="part")  # fmt: skip
            yield TextLines(plain=True, id="yaml")

    def on_mount(self) -> None:
        permissions = self.query_one("#permissions", DataTable)
        permissions.add_columns("VERB", "RESOURCE / URL", "NAMESPACE", "EVENTS", "DENIED",
                                "NAMES", "FIRST", "LAST")  # fmt: skip
        for p in self.result.permissions:
            what = p.resource if p.api_group in (None, "") else f"{p.resource}.{p.api_group}"
            u = p.usage
            permissions.add_row(
                Text(inert(p.verb)), Text(inert(what)), Text(inert(p.namespace or "*")),
                _count(u.events), _count(u.denied), _count(p.names),
                _when(u.first), _when(u.last),
            )  # fmt: skip
        grants = self.query_one("#grants", DataTable)
        grants.add_columns("AUTHORIZER", "BINDING", "ROLE", "EVENTS", "FIRST", "LAST")
        for g in self.result.grants:
            u = g.usage
            grants.add_row(
                Text(inert(g.grant.authorizer or "-")),
                Text(inert(g.binding or ("-" if g.grant.authorizer else "(denied, or no reason)"))),
                Text(inert(g.role or "-")), _count(u.events),
                _when(u.first), _when(u.last),
            )  # fmt: skip
        text = self.yaml_text or "# nothing to grant: every request is covered by discovery\n"
        self.query_one("#yaml", TextLines).extend([("{}", (line,)) for line in text.splitlines()])
        permissions.focus()

    def action_copy_yaml(self) -> None:
        self.app.copy_to_clipboard(self.yaml_text)
        self.notify("RBAC YAML copied (OSC 52)", timeout=2)

    def action_save_yaml(self) -> None:
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.result.user)
        default = os.path.join(os.getcwd(), f"rbac-{name[:60]}.yaml")

        def chosen(path: str | None) -> None:
            if path:
                self.app.post_message(SaveText(path, self.yaml_text))

        self.app.push_screen(
            PathScreen("Write the RBAC YAML to", default, "kubectl apply -f FILE grants it."),
            chosen,
        )


def _count(n: int) -> Text:
    return Text(f"{n:,}", justify="right")


def _when(micros: int) -> Text:
    return Text("-" if micros == MISSING_TIME else format_time(micros)[:19].replace("T", " "))
