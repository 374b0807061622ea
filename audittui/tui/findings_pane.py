"""The findings pane: fired rules by severity with counts, users and last seen, then the rules
that cannot fire on this log and why. Enter filters the event list to a finding's events.

``t`` groups the findings by MITRE ATT&CK technique instead: a heading row per technique (its id
and name, the groups of the most severe findings first), the findings that name it below. A
finding that names several techniques is listed under each of them (a technique's group is then
its whole coverage, and no technique looks quieter than it is); one that names none is listed
under "no technique" last. The note under the table names a finding's techniques in both modes.

Findings are computed by :class:`audittui.findings.Findings` in a thread as events arrive; a
DataTable suits this pane (at most one row per rule). Over a backend that pages (a store) they
are the backend's :meth:`~audittui.backend.protocol.Backend.findings`, asked in a thread when
the pane is first shown (a pass over the store's events: not at start, where the list and the
panes ask the server too) and again, as events arrive, at most every :data:`STORE_EVERY`
seconds; Enter
then lists a finding's requests by their auditIDs (``finding:`` is computed in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import DataTable

from ..backend.protocol import Backend
from ..findings import Finding, Findings, Rule
from ..findings.attack import technique_name
from ..index import memory
from ..index.store import Store
from ..ingest.formats import format_time
from ..output.inert import fit, inert
from ..query.completion import term
from .columns import short_user
from .keymap import bindings
from .messages import FindingsResult
from .schedule import Throttle

EVERY = 1.0  # s between evaluations of the rules over new events
STORE_EVERY = 60.0  # s between a store's evaluations (each a pass of the server's events)
DRILL_IDS = 1_000  # auditIDs a drill-down over a store lists at most
TITLE_WIDTH = 44  # titles are short; the table scrolls sideways on narrow terminals

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
BY_SEVERITY, BY_TECHNIQUE = "severity", "technique"
HEADING = "technique:"  # rule_ids entry of a technique's heading row
NO_TECHNIQUE = "-"  # the group of findings that name no technique


class FindingsPane(DataTable):
    """One row per fired rule, most severe first; blind rules below, dimmed."""

    BINDINGS = bindings("FindingsPane")
    WAITING = "No findings yet: the rules run once the logs are indexed."
    WAITING_STORE = "Running the rules over the store's events…"

    class Drill(Message):
        """Show the events of the finding of rule ``rule_id``."""

        def __init__(self, rule_id: str) -> None:
            super().__init__()
            self.rule_id = rule_id

    @dataclass
    class Evaluated(Message):
        """The rules ran over new events: ``count`` findings above info; ``changed``: events
        already in a finding's list may have changed."""

        count: int
        changed: bool

    def __init__(
        self,
        store: Store,
        findings: Findings,
        indexing: Callable[[], bool],
        *,
        id: str | None = None,
        backend: Backend | None = None,
        rules: Sequence[Rule] = (),
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.store, self.engine = store, findings
        self.backend, self.rules = backend, list(rules)  # a store's findings are its backend's
        every = EVERY if backend is None else STORE_EVERY
        # The first pass once the logs are indexed: while indexing, the cores are the indexer's.
        self.schedule = Throttle(self, every, self._start, ready=lambda: not indexing())
        self.rule_ids: list[str] = []  # per displayed row; "blind:ID" for a blind rule
        # Finding, or the backend's protocol.Fired (the same fields shown)
        self.findings: list[Any] = []
        self.notes: list[Text] = []  # per displayed row: what the rule looks for, or why blind
        self.blind: list[tuple[Rule, str]] = []
        self.evaluated = False
        self.grouping = BY_SEVERITY

    def on_mount(self) -> None:
        for label, key in (
            ("SEVERITY", "sev"),
            ("COUNT", "count"),
            ("LAST SEEN", "last"),
            ("RULE", "rule"),
            ("USERS", "users"),
        ):
            self.add_column(label, key=key)

    def stale(self) -> None:
        """New events are in the store: evaluate the rules over them (at most every EVERY s)."""
        self.schedule.request()

    def _start(self) -> bool:
        if self.backend is not None:
            self._ask_backend(self.backend)
            return True
        if len(self.store) <= self.engine.upto:
            return False
        self._evaluate()
        return True

    @work(thread=True, group="findings", exit_on_error=False)
    def _ask_backend(self, backend: Backend) -> None:
        try:
            found = backend.findings(self.rules)
        except Exception as exc:  # said; the next new events ask again
            self.app.call_from_thread(
                self.notify, f"Findings failed: {inert(str(exc))}", severity="error", markup=False
            )
            self.app.call_from_thread(self.schedule.done)
            return
        for rule_id, error in found.errors.items():
            self.engine.errors.setdefault(rule_id, error)  # said once by the app
        self.post_message(FindingsResult(found.fired, found.blind, False))

    def drill_query(self, rule_id: str) -> str:
        """The filter that lists the events of ``rule_id``'s finding."""
        if self.backend is None:
            return term("finding", rule_id)
        fired = next((f for f in self.findings if f.rule.id == rule_id), None)
        ids = fired.audit_ids[:DRILL_IDS] if fired is not None else []
        return "id:" + ",".join(term("id", i).split(":", 1)[1] for i in ids) if ids else 'id:""'

    @work(thread=True, group="findings", exit_on_error=False)
    def _evaluate(self) -> None:
        snap = self.store.snapshot()
        try:
            changed = self.engine.update(snap)
            result = FindingsResult(self.engine.results(snap), self.engine.blind(snap), changed)
            memory.release()  # a pass over every event leaves big temporaries in the heap
        except Exception as exc:  # a rule must not take the app down; say so once, stop
            self.app.call_from_thread(
                self.notify, f"Findings failed: {inert(str(exc))}", severity="error", markup=False
            )
            return
        self.post_message(result)

    def on_findings_result(self, message: FindingsResult) -> None:
        self.show(message.findings, message.blind)
        count = sum(1 for f in message.findings if f.rule.severity != "info")
        self.post_message(self.Evaluated(count, message.changed))
        self.schedule.done()

    def show(self, findings: Sequence[Finding | Any], blind: list[tuple[Rule, str]]) -> None:
        self.findings, self.blind = list(findings), blind
        self.evaluated = True
        self._fill()

    def action_toggle_grouping(self) -> None:
        """Group by severity (one row per finding) or by ATT&CK technique."""
        self.grouping = BY_TECHNIQUE if self.grouping == BY_SEVERITY else BY_SEVERITY
        if self.evaluated:
            self._fill()

    def _fill(self) -> None:
        current = self.rule_ids[self.cursor_row] if self.rule_ids and self.row_count else None
        self.clear()
        self.rule_ids, self.notes = [], []
        if self.grouping == BY_TECHNIQUE:
            for technique, members in technique_groups(self.findings):
                self._heading(technique, members)
                for f in members:
                    self._finding_row(f)
        else:
            for f in self.findings:
                self._finding_row(f)
        for rule, why in self.blind:
            self.add_row(
                Text("blind", "dim italic"),
                Text(""),
                Text(""),
                Text(fit(rule.title, TITLE_WIDTH), "dim"),
                Text(f"cannot fire on this log: {why}", "dim"),
            )
            self.rule_ids.append(f"blind:{rule.id}")
            self.notes.append(_note(rule, f"cannot fire on this log: {why}"))
        # The cursor stays on its rule (its first row, when grouped under several techniques).
        target = self.rule_ids.index(current) if current in self.rule_ids else 0
        if self.row_count:
            self.move_cursor(row=target, animate=False)

    def _heading(self, technique: str, members: list[Finding]) -> None:
        name = technique_name(technique) if technique != NO_TECHNIQUE else "no ATT&CK technique"
        label = "" if technique == NO_TECHNIQUE else technique
        self.add_row(
            Text(label, "bold reverse" if label else "dim"),
            Text(""),
            Text(""),
            Text(fit(name or "(not in audittui's table of names)", TITLE_WIDTH), "bold"),
            Text(f"{len(members)} finding(s)", "dim"),
        )
        self.rule_ids.append(HEADING + technique)
        note = Text()
        note.append(f"{label or 'no technique'}  {name}\n", "bold")
        note.append(inert(", ".join(f.rule.id for f in members)))
        self.notes.append(note)

    def _finding_row(self, f: Finding) -> None:
        users = ", ".join(short_user(inert(u), 28) for u in f.users[:2])
        if len(f.users) > 2:
            users += f" +{len(f.users) - 2}"
        self.add_row(
            Text(f.rule.severity, SEVERITY_STYLE[f.rule.severity]),
            Text(f"{f.count:,}", justify="right"),
            Text(format_time(f.last)[5:19].replace("T", " ")),
            Text(fit(f.rule.title, TITLE_WIDTH)),
            Text(fit(users, 40)),
        )
        self.rule_ids.append(f.rule.id)
        self.notes.append(_note(f.rule, f"{f.count:,} request(s); users: {', '.join(f.users)}"))

    def note(self) -> Text:
        """About the row under the cursor: the rule's id, description and query, and who."""
        if not self.notes or self.cursor_row >= len(self.notes):
            waiting = self.WAITING if self.backend is None else self.WAITING_STORE
            return Text(waiting if not self.evaluated else "No rule fired.", "dim")
        return self.notes[self.cursor_row]

    def action_drill(self) -> None:
        if not self.rule_ids or self.cursor_row >= len(self.rule_ids):
            return
        rule_id = self.rule_ids[self.cursor_row]
        if rule_id.startswith(("blind:", HEADING)):
            self.app.bell()  # a blind rule has no events to show, a heading is no rule
        else:
            self.post_message(self.Drill(rule_id))


def technique_groups(findings: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """The findings under each technique they name (a finding under each of its techniques),
    the group of the most severe finding first, then the larger, then by id; the findings that
    name none last, under :data:`NO_TECHNIQUE`. Each group keeps the findings' order."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        for technique in f.rule.techniques or (NO_TECHNIQUE,):
            groups.setdefault(technique, []).append(f)
    return sorted(
        groups.items(),
        key=lambda g: (
            g[0] == NO_TECHNIQUE,
            min(f.rule.rank for f in g[1]),
            -len(g[1]),
            g[0],
        ),
    )


def _note(rule: Rule, detail: str) -> Text:
    text = Text()
    text.append(f"{rule.id}", "bold")
    text.append(f"  {rule.severity}  {rule.source}", SEVERITY_STYLE[rule.severity])
    if rule.peers:
        text.append("  peers: " + ", ".join(pack for pack, _ in rule.peers), "dim")
    text.append("\n")
    if rule.techniques:
        named = (f"{t} {technique_name(t)}".rstrip() for t in rule.techniques)
        text.append("ATT&CK " + " · ".join(named) + "\n", "italic")
    text.append(inert(detail) + "\n")
    text.append(inert(rule.description) + "\n")
    text.append(f"query: {rule.query}" + ("  where: …" if rule.where else ""), "dim")
    return text
