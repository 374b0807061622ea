"""The summary pane: one row per user (or verb, resource, namespace, source IP, user agent,
code) over the active filter, sortable by any column; Enter drills down into the list.

Summaries are computed by :func:`audittui.analyses.summary.summarize` in a thread and shown here; a
DataTable suits this pane (hundreds or a few thousand rows, never a million): the
:data:`MAX_ROWS` keys with the most events are listed, and one last row counts the others
("N more keys", their events). ``s``/``S`` sort the rows listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from ..analyses.summary import GROUPINGS, Summary, summarize
from ..analyses.view import RowView
from ..backend.protocol import Backend
from ..index.store import Store
from ..ingest.formats import format_duration
from ..output.inert import fit, inert
from ..query.completion import term
from .columns import short_user
from .keymap import bindings
from .live import LiveAnalysis
from .messages import SummaryResult

GROUP_ORDER = tuple(GROUPINGS)  # b cycles through the groupings summarize() offers
GROUP_TITLES = {
    "user": "USER",
    "verb": "VERB",
    "resource": "RESOURCE",
    "ns": "NAMESPACE",
    "ip": "SOURCE IP",
    "ua": "USER AGENT",
    "code": "CODE",
    "binding": "BINDING",
    "role": "ROLE",
}
# (row key, title, numeric)
FIELDS = (
    ("key", None, False),
    ("events", "EVENTS", True),
    ("verbs", "VERBS", False),
    ("resources", "RES", True),
    ("namespaces", "NS", True),
    ("forbidden", "403", True),
    ("errors", "ERR", True),
    ("ips", "IPS", True),
    ("p50", "P50", True),
    ("p95", "P95", True),
    ("p99", "P99", True),
    ("first", "FIRST", False),
    ("last", "LAST", False),
)
MAX_ROWS = 2000  # keys listed (the most events first); the rest are counted in one last row


def drill_term(field: str, value: str | None) -> str:
    """The term that selects exactly a row's events: its key written so that it reads back
    as itself (quoted, unsafe characters as escapes; None, the "(none)" row: ``field:""``),
    and a resource without a subresource as ``res:pods/``, as the row counts it."""
    if field == "resource" and value is not None and "/" not in value:
        value += "/"
    return term(field, value)


def verbs_text(verbs: dict[str, int]) -> str:
    names = list(verbs)
    text = ",".join(names[:2])
    return text + (f" +{len(names) - 2}" if len(names) > 2 else "")


class SummaryTable(DataTable):
    """Rows of a summary, wherever they were computed (here, or by a store's server);
    ``s``/``S`` sort, ``b`` changes the grouping (:meth:`regroup` recomputes), Enter drills
    down, ``a`` shows a user's access."""

    BINDINGS = bindings("SummaryPane")

    class Drill(Message):
        """Show the events of one row: ``field`` (a query field) equals ``value``."""

        def __init__(self, field: str, value: str | None) -> None:
            super().__init__()
            self.field = field
            self.value = value

    class Access(Message):
        """Show one user's access (``a``)."""

        def __init__(self, user: str) -> None:
            super().__init__()
            self.user = user

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.by = "user"
        self.sort_field = "events"
        self.descending = True
        self.rows_data: list[dict[str, Any]] = []  # as displayed (sorted), the rest row not
        self._all: list[dict[str, Any]] = []
        self.rest = (0, 0)  # the keys not listed, and their events
        self.total_groups = 0

    def on_mount(self) -> None:
        self._columns()

    def regroup(self) -> None:
        """The grouping changed: compute the rows again (:meth:`show` them when done)."""
        raise NotImplementedError

    def _columns(self) -> None:
        self.clear(columns=True)
        for key, title, _ in FIELDS:
            label = GROUP_TITLES[self.by] if title is None else title
            if key == self.sort_field:
                label += " ▼" if self.descending else " ▲"
            self.add_column(label, key=key)

    def show(self, summary: Summary) -> None:
        """Display a summary's rows (as :func:`summarize` gives them, capped at
        :data:`MAX_ROWS`) and a row for the rest, keeping the cursor on the same key where
        possible."""
        self._all = list(summary)
        self.rest = (summary.rest_keys, summary.rest_total)
        self._display()

    def _display(self) -> None:
        rows = self._all
        row = self._current()
        current = row["key"] if row is not None else None
        self.total_groups = len(rows) + self.rest[0]
        numeric = {k for k, _, num in FIELDS if num}
        if self.sort_field in numeric:
            # Groups without a timed request sort below every latency.
            rows = sorted(
                rows,
                key=lambda r: -1 if r[self.sort_field] is None else r[self.sort_field],
                reverse=self.descending,
            )
        else:
            rows = sorted(
                rows, key=lambda r: _sort_text(r, self.sort_field), reverse=self.descending
            )
        self.rows_data = rows[:MAX_ROWS]
        self._columns()
        target = 0
        for k, r in enumerate(self.rows_data):
            self.add_row(*self._cells(r), key=str(k))
            if r["key"] == current:
                target = k
        more, events = self.rest
        if more:  # not a key: the cursor may rest on it, Enter does nothing
            cells = [Text(f"({more:,} more keys)", "dim"), Text(f"{events:,}", justify="right")]
            self.add_row(*cells, *[Text("")] * (len(FIELDS) - 2), key="rest")
        if self.rows_data:
            self.move_cursor(row=target, animate=False)

    def _cells(self, r: dict[str, Any]) -> list:
        width = max(20, min(48, self.size.width - 60))
        key = inert(r["key"])
        key = short_user(key, width) if self.by == "user" else key
        return [
            Text(fit(key, width, middle=True)),
            Text(f"{r['events']:,}", justify="right"),
            Text(inert(verbs_text(r["verbs"]))),
            Text(str(r["resources"]), justify="right"),
            Text(str(r["namespaces"]), justify="right"),
            Text(str(r["forbidden"] or ""), "bold magenta", justify="right"),
            Text(str(r["errors"] or ""), "yellow", justify="right"),
            Text(f"{r['ips']} {inert(r['top_ip'])}" if r["ips"] else "-"),
            *(Text(_duration(r[q]), justify="right") for q in ("p50", "p95", "p99")),
            Text(r["first"][5:19].replace("T", " ")),
            Text(r["last"][5:19].replace("T", " ")),
        ]

    def _current(self) -> dict[str, Any] | None:
        """The row under the cursor (None on the row counting the keys not listed)."""
        if not self.rows_data or self.cursor_row >= len(self.rows_data):
            return None
        return self.rows_data[self.cursor_row]

    def action_drill(self) -> None:
        row = self._current()
        if row is None:
            return
        # the events without a value (field:""), or exactly the value, "(none)" included
        self.post_message(self.Drill(self.by, None if row.get("missing") else row["key"]))

    def action_access(self) -> None:
        row = self._current()
        if row is None or row.get("missing"):
            return
        key = row["key"]
        if self.by != "user":
            self.notify("a shows a user's access: group by user first (b)", timeout=3)
            return
        self.post_message(self.Access(key))

    def action_group(self) -> None:
        self.by = GROUP_ORDER[(GROUP_ORDER.index(self.by) + 1) % len(GROUP_ORDER)]
        self.rows_data, self._all, self.rest = [], [], (0, 0)
        self._columns()
        self.regroup()

    def action_sort(self, step: int) -> None:
        keys = [k for k, _, _ in FIELDS]
        if step < 0:
            self.descending = not self.descending
        else:
            self.sort_field = keys[(keys.index(self.sort_field) + 1) % len(keys)]
            self.descending = self.sort_field != "key"
        self._display()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_field:
            self.descending = not self.descending
        else:
            self.sort_field, self.descending = key, key != "key"
        self._display()


class SummaryPane(LiveAnalysis, SummaryTable):
    """The summary of the list's rows, computed here in a thread while shown."""

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

    def compute(self) -> bool:
        backend, query = self.backend, self.asked
        if backend is not None and query is not None:
            by, text = self.by, query()
            self.in_thread(lambda: SummaryResult(by, backend.summary(text, by, top=MAX_ROWS)))
            return True
        by, rows, snap = self.by, self.view.rows, self.store.snapshot()
        self.in_thread(lambda: SummaryResult(by, summarize(snap, rows, by, top=MAX_ROWS)))
        return True

    def on_summary_result(self, message: SummaryResult) -> None:
        if message.by == self.by:
            self.show(message.summary)
        self.finished()

    def regroup(self) -> None:
        self.stale()


def _duration(micros: int | None) -> str:
    return "" if micros is None else format_duration(micros)


def _sort_text(row: dict[str, Any], field: str) -> str:
    value = row[field]
    return verbs_text(value) if isinstance(value, dict) else str(value)
