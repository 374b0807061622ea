"""Modal screens: key help, the malformed lines, the export prompt and its confirmation."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from ..index.store import Malformed
from ..output.inert import inert

KEYS = (
    (
        "Anywhere",
        (
            ("/", "filter (Enter keeps it, Esc restores the previous one)"),
            ("tab / shift+tab", "next / previous pane"),
            ("1 / 2 / 3 / 4 / 5", "events / summary / histogram / findings / policy"),
            ("P", "load an audit policy (its rule per event, the policy pane, rule:N)"),
            ("enter", "open the event (small screens), drill down (summary, findings, policy)"),
            ("esc", "back one level: leave the filter, close the detail, clear the filter"),
            ("ctrl+s", "export the filtered events to a JSONL file"),
            ("!", "malformed lines (file, line, reason)"),
            ("ctrl+p", "command palette"),
            ("?", "this help"),
            ("q", "quit"),
        ),
    ),
    (
        "Filter bar",
        (
            ("up / down", "query history (kept across runs)"),
            ("tab", "complete a field name or a value the log holds; again for the next"),
        ),
    ),
    (
        "Event list",
        (
            ("j k ↑ ↓", "move"),
            ("pgup pgdn space", "page"),
            ("g / home", "first event"),
            ("G / end / F", "last event and follow new ones"),
            ("e / E", "next / previous error (code ≥ 400)"),
            ("o / O", "next / previous stage of the same request (auditID)"),
            ("L", "slowest requests first (watch, exec, followed logs left out); again: by time"),
            (
                "R",
                "one row per request (its stages folded; 'open' = never completed); again: events",
            ),
        ),
    ),
    (
        "Detail",
        (
            ("m", "show / hide managedFields"),
            ("x", "reveal / mask Secret data and tokens"),
            ("w", "what the event was read from (CRI or Docker line, GKE entry…) / the event"),
            ("c", "copy the event JSON (OSC 52: works over SSH)"),
            ("space / enter", "fold or unfold a JSON node"),
        ),
    ),
    (
        "Findings",
        (
            ("enter", "the finding's events in the list (finding:RULE)"),
            ("↑ ↓", "the note under the table: what the rule looks for, or why it is blind"),
        ),
    ),
    (
        "Policy",
        (("enter", "the events of the rule under the cursor (rule:N)"),),
    ),
    (
        "Histogram",
        (
            ("← → h l, home end", "move the cursor over the buckets"),
            ("space", "mark one end of a range (again: unmark)"),
            ("enter", "filter the list to the range (after: … before: …)"),
        ),
    ),
    (
        "Summary",
        (
            ("b", "group by user, verb, resource, namespace, source IP, user agent, code"),
            ("s / S", "sort by the next column / reverse the order"),
            ("enter", "show this row's events in the list"),
        ),
    ),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 96; height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for section, keys in KEYS:
            table.add_row(Text(section, "bold underline"), "")
            for key, what in keys:
                table.add_row(key, what)
            table.add_row("", "")
        with VerticalScroll():
            yield Static(table)
            yield Static(
                Text(
                    "Query language: field:value terms (user, group, as, verb, resource, sub, "
                    "api, ns, name, code, stage, level, decision, ip, ua, id, uri, dur, after, "
                    "before, since); a,b = either; * glob; /re/; -term or NOT negates; OR; "
                    '( ); bare words or "phrases" search the raw JSON. See README.',
                    "dim",
                )
            )


class MalformedScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    MalformedScreen { align: center middle; }
    MalformedScreen > Vertical { width: 95%; height: 90%; border: round $warning;
        background: $surface; }
    MalformedScreen Label { padding: 0 1; }
    """
    LIMIT = 10_000

    def __init__(self, malformed: list[Malformed]) -> None:
        super().__init__()
        self.malformed = malformed

    def compose(self) -> ComposeResult:
        n = len(self.malformed)
        title = f"{n:,} malformed line(s)" + (
            f"; the first {self.LIMIT:,} are listed" if n > self.LIMIT else ""
        )
        with Vertical():
            yield Label(Text(title + "  (esc closes)", "bold"))
            yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("FILE", "LINE", "REASON")
        for m in self.malformed[: self.LIMIT]:
            table.add_row(
                Text(inert(m.path)), Text(f"{m.line:,}", justify="right"), Text(inert(m.reason))
            )
        table.focus()


class PathScreen(ModalScreen[str | None]):
    """Asks for a file name; returns it (or None when cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
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
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
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
