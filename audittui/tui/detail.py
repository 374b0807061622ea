"""The detail pane: one event, read from disk by offset when selected, as a one-line header
(who, verb, what, when, decision and reason, latency, impersonation) over foldable JSON.
Secrets are masked and managedFields hidden until the user asks; ``w`` shows what the event
was read from (a CRI line, a GKE entry, a CloudWatch record…) in place of the event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..analyses.latency import annotations as latency_annotations
from ..index.store import EventGone, Store
from ..ingest.authz import parse_reason
from ..ingest.exec_command import event_argv, shell_line
from ..ingest.formats import REASON, format_duration
from ..output.inert import inert
from ..output.mask import mask_event, mask_wrapper
from ..policy import Policy
from ..query.completion import term
from .event_list import code_style
from .json_tree import JsonTree

DECISION = "authorization.k8s.io/decision"


def header(event: dict[str, Any], latency: int) -> Text:
    """``alice get secrets ns/name → 403 forbid 12ms <time> from <ip>``, and on a second line
    the command an exec ran, the authorizer's reason and the API server's latency breakdown
    when there are any."""
    get = _getter(event)
    user = get("user", "username") or "-"
    text = Text()
    text.append(inert(str(user)), "bold")
    imp = get("impersonatedUser", "username")
    if imp:
        text.append(" as ", "dim")
        text.append(inert(str(imp)), "bold magenta")
    text.append(f" {inert(str(event.get('verb') or '-'))} ", "bold cyan")
    ref = _object(event.get("objectRef"))
    what = ref.get("resource") or event.get("requestURI") or "-"
    if ref.get("subresource"):
        what = f"{what}/{ref['subresource']}"
    text.append(inert(str(what)))
    where = "/".join(str(x) for x in (ref.get("namespace"), ref.get("name")) if x)
    if where:
        text.append(" " + inert(where))
    code = get("responseStatus", "code")
    text.append(" → ", "dim")
    text.append(str(code or "-"), code_style(str(code or "")))
    annotations = _object(event.get("annotations"))
    decision = annotations.get(DECISION)
    if decision:
        text.append(f" {inert(str(decision))}", "red" if decision == "forbid" else "green")
    text.append(f"  {format_duration(latency)}" if latency >= 0 else "", "dim")
    when = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
    if when:
        text.append(f"  {inert(str(when))}", "dim")
    ips = event.get("sourceIPs")
    if isinstance(ips, list) and ips:
        text.append(f"  from {inert(str(ips[0]))}", "dim")
    details: list[Text] = []
    argv = event_argv(event)
    if argv:  # what an exec ran, first: it is what the event is about (quoted, inert)
        command = Text("exec: ", "dim")
        command.append(shell_line(argv, limit=2000), "bold yellow")
        details.append(command)
    reason = annotations.get(REASON)
    if isinstance(reason, str) and reason:
        details.append(_reason(reason))
    spent = latency_annotations(event)
    if spent:
        spent_text = "latency " + ", ".join(f"{inert(k)} {inert(v)}" for k, v in spent)
        details.append(Text(spent_text, "dim"))
    if details:
        text.append("\n")
        text.append(Text("  ·  ", "dim").join(details))
    return text


def _reason(reason: str) -> Text:
    """The reason, and the binding and role it names as links that filter the list to them
    (``binding:…``, ``role:…``: the filter in force, narrowed)."""
    out = Text()
    grant = parse_reason(reason)
    for field in ("binding", "role"):  # first: a narrow detail cuts the line's end
        label = grant.label(field)
        if label is None:
            continue
        link = f"app.narrow({term(field, label)!r})"  # quoted as the filter bar would
        out.append(inert(label), Style(underline=True, meta={"@click": link}))
        out.append("  ")
    out.append(inert(reason), "dim")
    return out


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (hostile logs have any type)."""
    return value if isinstance(value, dict) else {}


def _getter(event: dict[str, Any]) -> Callable[[str, str], Any]:
    def get(outer: str, inner: str) -> Any:
        value = event.get(outer)
        return value.get(inner) if isinstance(value, dict) else None

    return get


class DetailPane(Vertical, can_focus=False):
    """The selected event; ``m`` shows managedFields, ``x`` reveals secrets, ``w`` shows the
    wrapper it was read from."""

    DEFAULT_CSS = """
    DetailPane { height: 1fr; }
    DetailPane > #detail-header { height: 3; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis;
        background: $boost; }
    DetailPane > JsonTree { height: 1fr; }
    """

    def __init__(self, store: Store, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.event_index: int | None = None
        self.event: dict | None = None  # as read from disk
        self.shown: dict | None = None  # as displayed (masked unless revealed)
        self.show_managed = False
        self.reveal = False
        self.show_wrapper = False
        self.masked = 0
        self.policy: Policy | None = None  # the header names the rule that logs the event
        # An event a backend sent (a store's, read by key): no store index, no wrapper kept;
        # its key and its request's stages as (key, stage), in time order.
        self.fetched_latency: int | None = None
        self.fetched_key: Any = None
        self.fetched_stages: list[tuple[Any, str]] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-header")
        yield JsonTree("event", id="detail-tree")

    def show_fetched(
        self,
        event: dict | None,
        latency: int,
        gone: str = "",
        key: Any = None,
        stages: list[tuple[Any, str]] | None = None,
    ) -> None:
        """Display ``event`` as a backend returned it (None: ``gone`` says why it is not),
        with the stages of its request."""
        self.event_index, self.event, self.fetched_latency = None, event, latency
        self.fetched_key, self.fetched_stages = key, stages or []
        if event is None:
            self.shown = None
            head = Text(gone or "No event selected", "yellow" if gone else "dim")
            self.query_one("#detail-header", Static).update(head, layout=False)
            self.query_one(JsonTree).show(None)
            return
        self._refresh_view()

    def show(self, index: int | None) -> None:
        """Read event ``index`` from disk and display it."""
        self.event_index = index
        self.event = None
        self.fetched_latency = None
        head = self.query_one("#detail-header", Static)
        tree = self.query_one(JsonTree)
        if index is None:
            head.update(Text("No event selected", "dim"), layout=False)
            tree.show(None)
            return
        try:
            self.event = self.store.event(index, bounded=True)  # a deep body: opaque
        except (EventGone, OSError, ValueError) as exc:
            head.update(
                Text(f"This event cannot be read any more: {inert(str(exc))}", "red"), layout=False
            )
            tree.show(None)
            return
        self._refresh_view()

    def _refresh_view(self) -> None:
        if self.event is None:
            return
        if self.event_index is not None:
            latency = int(self.store.column("latency")[self.event_index])
            extra = self.stages_line() or Text()
        elif self.fetched_latency is not None:
            latency, extra = self.fetched_latency, self._fetched_stages_line() or Text()
        else:
            return
        text = header(self.event, latency)
        wrapper = self._wrapper(extra) if self.show_wrapper else None
        if wrapper is not None:
            shown, self.masked = (wrapper, 0) if self.reveal else mask_wrapper(wrapper)
        else:
            shown, self.masked = (self.event, 0) if self.reveal else mask_event(self.event)
        self.shown = shown
        if self.policy is not None:
            result = self.policy.evaluate(self.event)
            rule = "no rule" if result.rule is None else f"rule {result.rule}"
            text_level = f"policy: {rule} → {result.level}" + (
                " (approx.)" if result.approximate else ""
            )
            extra.append(("  " if extra.plain else "") + text_level, "cyan")
        if self.masked:
            what = "value(s) masked or folded" if wrapper is not None else "secret value(s) masked"
            extra.append(f"  {self.masked} {what}; x reveals", "yellow")
        elif self.reveal:
            extra.append("  secrets revealed; x masks them again", "bold red")
        if extra.plain:
            text.append("\n")
            text.append_text(extra)
        # A fixed height: a new event repaints the header without a layout pass.
        self.query_one("#detail-header", Static).update(text, layout=False)
        hide = frozenset() if self.show_managed else frozenset({"managedFields"})
        self.query_one(JsonTree).show(shown, hide=hide)

    def stages_line(self) -> Text | None:
        """``stages: RequestReceived ▸ ResponseComplete (o/O)`` for events sharing the auditID."""
        assert self.event_index is not None
        others = self.same_request()
        if len(others) < 2:
            return None
        line = Text("stages: ", "dim")
        for k, i in enumerate(others):
            stage = self.store.value("stage", i) or "?"
            if k:
                line.append(" ▸ ", "dim")
            line.append(inert(stage), "reverse" if i == self.event_index else "")
        line.append("  (o/O jump)", "dim")
        return line

    def _fetched_stages_line(self) -> Text | None:
        if len(self.fetched_stages) < 2:
            return None
        line = Text("stages: ", "dim")
        for k, (key, stage) in enumerate(self.fetched_stages):
            if k:
                line.append(" ▸ ", "dim")
            line.append(inert(stage or "?"), "reverse" if key == self.fetched_key else "")
        line.append("  (o/O jump)", "dim")
        return line

    def same_request(self) -> list[int]:
        """Store indices of the events with this event's auditID, in time order."""
        if self.event_index is None:
            return []
        hits = self.store.same("audit_id", self.event_index).tolist()
        if not hits:
            return [self.event_index]
        times = self.store.column("time")
        return sorted(hits, key=lambda i: (int(times[i]), i))

    def _wrapper(self, note: Text) -> Any:
        """The wrapper of the event shown, with a note on ``note`` saying what is shown."""
        if self.event_index is None:  # a backend's event: only the event itself is kept
            note.append(("  " if note.plain else "") + "no wrapper kept here", "cyan")
            return None
        try:
            wrapper = self.store.wrapper(self.event_index)
        except (EventGone, OSError) as exc:
            wrapper, text, style = None, f"the wrapper cannot be read: {inert(str(exc))}", "red"
        else:
            text, style = "the wrapper, as read (w: the event)", "bold cyan"
            if wrapper is None:
                text, style = "no wrapper: the event is its line as written", "cyan"
        note.append(("  " if note.plain else "") + text, style)
        return wrapper

    def toggle_wrapper(self) -> None:
        self.show_wrapper = not self.show_wrapper
        self._refresh_view()

    def toggle_managed(self) -> None:
        self.show_managed = not self.show_managed
        self._refresh_view()

    def toggle_reveal(self) -> None:
        self.reveal = not self.reveal
        self._refresh_view()

    def clipboard_text(self) -> str | None:
        """The displayed event (or wrapper) as JSON (masked unless revealed)."""
        import orjson

        if self.shown is None:
            return None
        return orjson.dumps(self.shown, option=orjson.OPT_INDENT_2).decode()
