"""The policy pane: a loaded audit policy simulated over the events of the active filter, one
row per rule (events, dropped, bytes now and at its level, bodies never logged), then the
findings it would blind. Enter filters the list to the events of the rule under the cursor.
Over a backend that pages (a store) the simulation is the backend's
(:meth:`~audittui.backend.protocol.Backend.policy_simulate`), for the list's filter.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from ..analyses.view import RowView
from ..backend.protocol import Backend
from ..findings import Findings
from ..index.store import Store
from ..output.inert import inert
from ..policy import Policy
from ..policy.simulate import Simulation, format_bytes, format_change, simulate
from .keymap import bindings
from .live import LiveAnalysis
from .messages import PolicyResult

COLUMNS = (
    "RULE (from 0)", "LEVEL", "EVENTS", "DROPPED", "BYTES NOW", "BYTES NEW", "CHANGE", "NOTE",
)  # fmt: skip


class PolicyPane(LiveAnalysis, DataTable):
    """Rows of a simulation; Enter shows a rule's events (``rule:N``)."""

    BINDINGS = bindings("PolicyPane")

    class Drill(Message):
        def __init__(self, rule: int | None) -> None:
            super().__init__()
            self.rule = rule

    def __init__(
        self,
        store: Store,
        view: RowView,
        findings: Findings,
        *,
        id: str | None = None,
        backend: Backend | None = None,
        query: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.store, self.view, self.findings = store, view, findings
        self.backend, self.asked = backend, query  # a store: simulated by its backend
        self.policy: Policy | None = None
        self.path = ""
        self.rules: list[int | None | str] = []  # per row: rule index, None (no rule), "blind"
        self.simulation: Simulation | None = None

    def on_mount(self) -> None:
        for label in COLUMNS:
            self.add_column(label, key=label)

    def use(self, policy: Policy, path: str) -> None:
        self.policy, self.path = policy, path
        self.stale()

    def ready(self) -> bool:
        return self.shown and self.policy is not None

    def compute(self) -> bool:
        policy, rows, snap, findings = (
            self.policy,
            self.view.rows,
            self.store.snapshot(),
            self.findings,
        )
        assert policy is not None  # ready() said so
        backend, asked = self.backend, self.asked
        if backend is not None and asked is not None:
            text, rules = asked(), findings.rules
            self.in_thread(lambda: PolicyResult(backend.policy_simulate(policy, rules, text)))
            return True
        self.in_thread(lambda: PolicyResult(simulate(policy, snap, findings, rows)))
        return True

    def on_policy_result(self, message: PolicyResult) -> None:
        self.show(message.simulation, self.path)
        self.finished()

    def show(self, sim: Simulation, path: str) -> None:
        row = self.cursor_row
        self.simulation = sim
        self.clear()
        self.rules = []
        for e in sim.rules:
            note = f"{e.need_bodies:,} need bodies never logged" if e.need_bodies else ""
            self.add_row(
                Text("none" if e.rule is None else str(e.rule), justify="right"),
                Text(e.level, "dim" if e.level == "None" else ""),
                Text(f"{e.events:,}", justify="right"),
                Text(f"{e.dropped:,}" if e.dropped else "", "yellow", justify="right"),
                Text(format_bytes(e.bytes_now), justify="right"),
                Text(format_bytes(e.bytes_new), justify="right"),
                Text(format_change(e.bytes_now, e.bytes_new), justify="right"),
                Text(note, "magenta"),
            )
            self.rules.append(e.rule)
        self.add_row(
            Text("all"),
            Text(inert(path)[-15:], "dim"),
            Text(""),
            Text(""),
            Text(format_bytes(sim.bytes_now), "bold", justify="right"),
            Text(format_bytes(sim.bytes_new), "bold", justify="right"),
            Text(format_change(sim.bytes_now, sim.bytes_new), "bold", justify="right"),
            Text("bodies removed: measured on a sample", "dim"),
        )
        self.rules.append("total")
        for rule_id, why in sim.blind:
            self.add_row(
                Text("blind", "red"),
                *(Text("") for _ in range(6)),
                Text(f"{rule_id}: {why}", "red"),
            )
            self.rules.append("blind")
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), animate=False)

    def action_drill(self) -> None:
        if self.cursor_row < len(self.rules):
            rule = self.rules[self.cursor_row]
            if not isinstance(rule, str):
                self.post_message(self.Drill(rule))
