"""Every key of the app, once: the widgets' ``BINDINGS``, the help screen, the command palette
and the README's key table are all produced from :data:`KEYMAP`, so they cannot drift apart.

A :class:`Row` is one line of the help (a key or a few related keys and what they do) with the
Textual bindings behind it; a row without bindings documents a key Textual itself handles
(``tab``, ``ctrl+p``, folding a JSON node). ``python -m audittui.tui.keymap`` prints the README
table (tests/tui/test_keymap.py fails when the README's differs).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

from . import tabs

# Where a key works: a help section, and the widget whose BINDINGS it is in.
ANYWHERE = "Anywhere"
FILTER_BAR = "Filter bar"
EVENT_LIST = "Event list"
DETAIL = "Detail"
FINDINGS = "Findings"
POLICY = "Policy"
HISTOGRAM = "Histogram"
SUMMARY = "Summary"
DIALOGS = "Dialogs"


@dataclass(frozen=True)
class Bind:
    """One Textual binding. ``owner`` names the widget holding it (``app`` for the App);
    ``palette`` (a description) puts the action in the command palette under ``label``."""

    keys: str
    action: str
    label: str
    owner: str = "app"
    show: bool = False
    priority: bool = False
    palette: str = ""


@dataclass(frozen=True)
class Row:
    section: str
    keys: str  # as the help writes them
    does: str
    binds: tuple[Bind, ...] = ()


KEYMAP: tuple[Row, ...] = (
    # -- anywhere ----------------------------------------------------------------------------
    Row(ANYWHERE, "/", "filter (Enter keeps it, Esc restores the previous one)", (
        Bind("slash", "focus_filter", "Filter", show=True, palette="Focus the filter bar"),
    )),
    Row(ANYWHERE, "tab / shift+tab", "next / previous pane"),
    Row(ANYWHERE, "1 / 2 / 3 / 4 / 5", "events / summary / histogram / findings / policy", (
        Bind("1", f"tab('{tabs.EVENTS}')", "Events", palette="The event list"),
        Bind("2", f"tab('{tabs.SUMMARY}')", "Summary", show=True, palette="Per-user summary"),
        Bind("3", f"tab('{tabs.HISTOGRAM}')", "Histogram",
             palette="Events over time; select a range"),
        Bind("4", f"tab('{tabs.FINDINGS}')", "Findings", show=True,
             palette="Detection rules that fired, and rules blind on this log"),
        Bind("5", f"tab('{tabs.POLICY}')", "Policy", palette="The audit-policy lab"),
    )),
    Row(ANYWHERE, "P", "load an audit policy (its rule per event, the policy pane, rule:N)", (
        Bind("P", "load_policy", "Load policy", palette="Load an audit policy file"),
    )),
    Row(ANYWHERE, "enter", "open the event (small screens), drill down (summary, findings, policy)",
        (Bind("enter", "open_detail", "Detail"),)),
    Row(ANYWHERE, "esc", "back one level: leave the filter, close the detail, clear the filter", (
        Bind("escape", "step_back", "Back"),
    )),
    Row(ANYWHERE, "ctrl+s", "export the filtered events to a JSONL file", (
        Bind("ctrl+s", "export", "Export", show=True,
             palette="Write the filtered events to a JSONL file"),
    )),
    Row(ANYWHERE, "!", "malformed lines (file, line, reason)", (
        Bind("exclamation_mark", "malformed", "Malformed lines",
             palette="List lines that are not audit events"),
    )),
    Row(ANYWHERE, "ctrl+p", "command palette"),
    Row(ANYWHERE, "?", "every key (this help)", (
        Bind("question_mark", "help", "Help", show=True, palette="Every key"),
    )),
    Row(ANYWHERE, "q", "quit", (Bind("q", "quit", "Quit", show=True),)),
    # -- filter bar --------------------------------------------------------------------------
    Row(FILTER_BAR, "up / down", "query history (kept across runs)", (
        Bind("up", "history(-1)", "Older query", owner="FilterBar"),
        Bind("down", "history(1)", "Newer query", owner="FilterBar"),
    )),
    Row(FILTER_BAR, "tab", "complete a field name or a value the log holds; again for the next", (
        Bind("tab", "complete", "Complete", owner="FilterBar", priority=True),
    )),
    # -- event list --------------------------------------------------------------------------
    Row(EVENT_LIST, "j k ↑ ↓", "move", (
        Bind("j,down", "move(1)", "Down", owner="EventList"),
        Bind("k,up", "move(-1)", "Up", owner="EventList"),
    )),
    Row(EVENT_LIST, "pgup pgdn space", "page", (
        Bind("pagedown,ctrl+f,space", "page(1)", "Page down", owner="EventList"),
        Bind("pageup,ctrl+b", "page(-1)", "Page up", owner="EventList"),
    )),
    Row(EVENT_LIST, "g / home", "first event", (
        Bind("g,home", "first", "Top", owner="EventList"),
    )),
    Row(EVENT_LIST, "G / end / F", "last event and follow new ones", (
        Bind("G,end", "last", "Bottom/follow", owner="EventList"),
        Bind("F", "follow", "Follow", owner="EventList", show=True,
             palette="Jump to the newest event and follow"),
    )),
    Row(EVENT_LIST, "e / E", "next / previous error (code ≥ 400)", (
        Bind("e", "error(1)", "Next error", owner="EventList", show=True),
        Bind("E", "error(-1)", "Prev error", owner="EventList"),
    )),
    Row(EVENT_LIST, "o / O", "next / previous stage of the same request (auditID)", (
        Bind("o", "stage(1)", "Next stage"),
        Bind("O", "stage(-1)", "Prev stage"),
    )),
    Row(EVENT_LIST, "L", "slowest requests first (watch, exec, followed logs left out); again: by "
        "time", (Bind("L", "slowest", "Slowest", palette="Slowest requests first, or by time"),)),
    Row(EVENT_LIST, "R", "one row per request (its stages folded; 'open' = never completed); "
        "again: events", (
            Bind("R", "per_request", "Per request", palette="One row per request, or per event"),
        )),
    # -- detail ------------------------------------------------------------------------------
    Row(DETAIL, "m", "show / hide managedFields", (
        Bind("m", "managed", "managedFields", palette="Show or hide managedFields"),
    )),
    Row(DETAIL, "x", "reveal / mask Secret data and tokens", (
        Bind("x", "reveal", "Reveal secrets", palette="Show or mask Secret data"),
    )),
    Row(DETAIL, "w", "what the event was read from (CRI or Docker line, GKE entry…) / the event", (
        Bind("w", "wrapper", "Wrapper",
             palette="Show what the event was read from: CRI line, GKE entry…"),
    )),
    Row(DETAIL, "c", "copy the event JSON (OSC 52: works over SSH)", (
        Bind("c", "copy", "Copy event", palette="Copy the event JSON"),
    )),
    Row(DETAIL, "h", "the history of the event's object: its writes and what each changed", (
        Bind("h", "object_history", "Object history",
             palette="The event's object: its writes and what each changed"),
    )),
    Row(DETAIL, "a", "the access of the event's user: permissions used, bindings, least "
        "privilege RBAC", (
        Bind("a", "access", "Access",
             palette="The event's user: permissions used, granting bindings, RBAC YAML"),
    )),
    Row(DETAIL, "space / enter", "fold or unfold a JSON node"),
    Row(DETAIL, "z", "fold or unfold everything", (
        Bind("z", "toggle_all", "Fold all", owner="JsonTree"),
    )),
    # -- panes -------------------------------------------------------------------------------
    Row(FINDINGS, "enter", "the finding's events in the list (finding:RULE)", (
        Bind("enter", "drill", "Show events", owner="FindingsPane", show=True),
    )),
    Row(FINDINGS, "t", "group by ATT&CK technique (a finding under each it names) / by severity", (
        Bind("t", "toggle_grouping", "Group", owner="FindingsPane", show=True),
    )),
    Row(FINDINGS, "↑ ↓", "the note under the table: what the rule looks for (its ATT&CK "
        "techniques too), or why it is blind"),
    Row(POLICY, "enter", "the events of the rule under the cursor (rule:N)", (
        Bind("enter", "drill", "Show events", owner="PolicyPane", show=True),
    )),
    Row(HISTOGRAM, "← → h l, home end", "move the cursor over the buckets", (
        Bind("left,h", "move(-1)", "Earlier", owner="HistogramPane"),
        Bind("right,l", "move(1)", "Later", owner="HistogramPane"),
        Bind("home,g", "jump(0)", "First", owner="HistogramPane"),
        Bind("end,G", "jump(-1)", "Last", owner="HistogramPane"),
    )),
    Row(HISTOGRAM, "space", "mark one end of a range (again: unmark)", (
        Bind("space", "mark", "Mark range", owner="HistogramPane", show=True),
    )),
    Row(HISTOGRAM, "enter", "filter the list to the range (after: … before: …)", (
        Bind("enter", "apply", "Filter to range", owner="HistogramPane", show=True),
    )),
    Row(SUMMARY, "b", "group by user, verb, resource, namespace, source IP, user agent, code", (
        Bind("b", "group", "Group by", owner="SummaryPane", show=True),
    )),
    Row(SUMMARY, "s / S", "sort by the next column / reverse the order", (
        Bind("s", "sort(1)", "Sort column", owner="SummaryPane", show=True),
        Bind("S", "sort(-1)", "Reverse sort", owner="SummaryPane"),
    )),
    Row(SUMMARY, "enter", "show this row's events in the list", (
        Bind("enter", "drill", "Drill down", owner="SummaryPane", show=True),
    )),
    Row(SUMMARY, "a", "this user's access (grouped by user): permissions, bindings, RBAC YAML", (
        Bind("a", "access", "Access", owner="SummaryPane", show=True),
    )),
    # -- dialogs -----------------------------------------------------------------------------
    Row(DIALOGS, "esc / q / ?", "close the help", (
        Bind("escape,q,question_mark", "dismiss", "Close", owner="HelpScreen", show=True),
    )),
    Row(DIALOGS, "esc / q", "close the list of malformed lines", (
        Bind("escape,q", "dismiss", "Close", owner="MalformedScreen", show=True),
    )),
    Row(DIALOGS, "esc / q / h", "close an object's history", (
        Bind("escape,q,h", "dismiss", "Close", owner="ObjectHistoryScreen", show=True),
    )),
    Row(DIALOGS, "c / ctrl+s / esc", "a subject's access: copy the YAML (OSC 52), write it to "
        "a file, close", (
        Bind("c", "copy_yaml", "Copy YAML", owner="AccessScreen", show=True),
        Bind("ctrl+s", "save_yaml", "Write YAML", owner="AccessScreen", show=True,
             priority=True),
        Bind("escape,q,a", "dismiss", "Close", owner="AccessScreen", show=True),
    )),
    Row(DIALOGS, "esc", "cancel a path prompt (export, policy)", (
        Bind("escape", "cancel", "Cancel", owner="PathScreen", show=True),
    )),
    Row(DIALOGS, "y / n", "answer a question (n or esc: no)", (
        Bind("y", "answer(True)", "Yes", owner="ConfirmScreen", show=True),
        Bind("n,escape", "answer(False)", "No", owner="ConfirmScreen", show=True),
    )),
)  # fmt: skip


def bindings(owner: str, only: frozenset[str] | None = None) -> list[BindingType]:
    """The ``BINDINGS`` of one widget (``app`` for the App); ``only``: just these actions
    (named alone, or with their arguments), for a front end that has a part of the app's."""
    return [
        Binding(b.keys, b.action, b.label, show=b.show, priority=b.priority)
        for row in KEYMAP
        for b in row.binds
        if b.owner == owner and (only is None or {b.action, b.action.split("(")[0]} & only)
    ]


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help screen: per section, its (keys, what they do) rows, in keymap order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for row in KEYMAP:
        sections.setdefault(row.section, []).append((row.keys, row.does))
    return list(sections.items())


def palette() -> list[tuple[str, str, str]]:
    """The command palette's entries: (title, description with the key, App action)."""
    out = []
    for row in KEYMAP:
        for b in row.binds:
            if b.palette:
                out.append((b.label, f"{b.palette} ({row_key(b)})", b.action))
    return out


def row_key(b: Bind) -> str:
    """How a binding's first key is written for a person (``!`` for exclamation_mark)."""
    first = b.keys.split(",")[0]
    return {"slash": "/", "question_mark": "?", "exclamation_mark": "!", "escape": "esc"}.get(
        first, first
    )


def markdown_table() -> str:
    """The README's key table."""
    lines = ["| key | where | does |", "|---|---|---|"]
    for row in KEYMAP:
        words = [k.strip(",") for k in row.keys.split(" ")]
        keys = " ".join(f"`{k}`" for k in words if k != "/") if row.keys != "/" else "`/`"
        does = row.does.replace("|", "\\|")
        lines.append(f"| {keys} | {row.section.lower()} | {does} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
