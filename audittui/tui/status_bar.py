"""The status bar: counts, the filter in force, the list's mode, following or paused, input
and indexing state, malformed lines, findings."""

from __future__ import annotations

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

    def __init__(self, session: Session, view: RowView, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.session, self.view = session, view
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

    def text(self, state: ListState) -> Text:
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
