"""The status bar: counts, the filter in force, the list's mode, following or paused, input
and indexing state, malformed lines, findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from ..analyses.view import SLOWEST, RowView
from ..index.session import Session
from ..output.inert import inert


@dataclass
class ListState:
    """What the status says about the list: its filter computing, following, unseen rows."""

    filtering: bool = False
    following: bool = True
    unseen: int = 0


class StatusBar(Static):
    """One line; :meth:`show` redraws it from the session, the view and the list."""

    def __init__(
        self,
        session: Session,
        view: RowView,
        *,
        id: str | None = None,
        paged: Callable[[], tuple[int | None, int, bool, bool, str, str]] | None = None,
    ) -> None:
        super().__init__("", id=id)
        self.session, self.view = session, view
        self.paged = paged  # a list over a backend that pages: what the app says of it
        self.stdin_state = ""  # what a pipe's spool says ("input ended", …)
        self.finding_count = 0
        self._state = ListState()
        self._hosts = ""  # the SSH hosts' states last drawn
        self._said: set[str] = set()  # the hosts' problems already notified

    def on_mount(self) -> None:
        if self.session.remote is not None:  # a host's state changes with no event arriving
            self.set_interval(0.5, self._hosts_changed)

    def _hosts_changed(self) -> None:
        remote = self.session.remote
        if remote is None:
            return
        if remote.status() != self._hosts:
            self.show(self._state)
        for problem in remote.problems():  # a file not read, a rotation's end lost…
            if problem not in self._said:
                self._said.add(problem)
                self.app.notify(inert(problem), title="ssh", severity="warning", markup=False)

    def paged_text(self, state: ListState) -> Text:
        """A list over a backend that pages: the count it gave, the filter, the rows held,
        following or paused, the backend's state and where the events are."""
        assert self.paged is not None
        count, held, before, after, backend_state, display = self.paged()
        text = Text()
        text.append("counting…" if count is None else f"{count:,} events", "bold")
        filter_text = self.app.list_text if hasattr(self.app, "list_text") else ""
        if filter_text:
            text.append(f"  filter: {inert(filter_text)}", "cyan")
        rows = getattr(self.app, "paged", None)
        if rows is not None and rows.order == SLOWEST:
            text.append("  slowest requests first (L: by time)", "magenta")
        elif rows is not None and rows.per_request:
            text.append("  one row per request (R: every event)", "magenta")
        if state.filtering:
            text.append("  filtering…", "yellow")
        if held:
            text.append(f"  {held:,} rows held", "dim")
            text.append(" ↑ more" if before else "", "dim")
            text.append(" ↓ more" if after else "", "dim")
        if state.following:
            mode = "following"
        else:
            mode = "paused" + (f" +{state.unseen:,} new (F follows)" if state.unseen else "")
            mode += "" if state.unseen else " (G follows)"
        text.append(f"  ● {mode}", "green" if state.following else "yellow")
        if backend_state != "ok":
            text.append(f"  {inert(backend_state)}",
                        "red" if backend_state.startswith("error") else "yellow")  # fmt: skip
        text.append(f"  {inert(display)}", "dim")
        return text

    def text(self, state: ListState) -> Text:
        if self.paged is not None:
            return self.paged_text(state)
        session, view = self.session, self.view
        store = session.store
        text = Text()
        text.append(f"{len(view):,}", "bold")
        text.append(f" / {len(store):,} events", "")
        if view.text:
            text.append(f"  filter: {inert(view.text)}", "cyan")
        if view.order == SLOWEST:
            text.append("  slowest requests first (L: by time)", "magenta")
        elif view.requests is not None:
            text.append("  one row per request (R: every event)", "magenta")
        if state.filtering:
            text.append("  filtering…", "yellow")
        if session.follower is None:
            mode = "read once"
        elif state.following:
            mode = "following"
        else:
            mode = "paused" + (f" +{state.unseen:,} new (F follows)" if state.unseen else "")
        text.append(f"  ● {mode}", "green" if mode == "following" else "yellow")
        if self.stdin_state:
            text.append(f"  {inert(self.stdin_state)}", "yellow")
        if session.remote is not None:
            self._hosts = session.remote.status()
            ok = all(p.state in ("connected", "done") for p in session.remote.paths)
            text.append(f"  ssh {inert(self._hosts)}", "green" if ok else "bold red")
        if session.indexing and session.total_bytes:
            pct = 100 * session.done_bytes / session.total_bytes
            text.append(f"  indexing {pct:.0f}%", "yellow")
        bad = len(store.malformed) + session.lines.pending
        if bad:
            text.append(f"  {bad:,} malformed (!)", "red")
        if store.ignored:  # the events are kept: a note, not an alarm
            text.append(f"  {len(store.ignored):,} field(s) read as missing (!)", "yellow")
        if self.finding_count:
            text.append(f"  ⚑ {self.finding_count} finding(s) (4)", "bold red")
        text.append(f"  {len(store.sources)} source(s)", "dim")
        return text

    def show(self, state: ListState) -> None:
        self._state = state
        self.update(self.text(state), layout=False)
