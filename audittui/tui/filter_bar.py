"""The filter bar: the query language with history (up/down, kept across runs) and Tab
completion of field names and of the values the backend knows (its
:class:`~audittui.query.completion.ValueSource`: the index's tables, or a store's server).

Nothing raw from a log reaches the terminal through it: its value never holds a control, bidi
or invisible character (:class:`InertInput`), the values the app puts in (completion,
drill-downs, history) are written with escapes that the query language reads back as the very
character (``user:"ev\\x1b[2J"``), and what it shows is never parsed as Rich markup."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.message import Message
from textual.widgets import Input

from ..output.inert import inert
from ..query.completion import Completion, ValueSource, apply, complete
from .history import History
from .keymap import bindings

MAX_SHOWN = 8  # candidates listed in the hint line


class InertInput(Input):
    """An Input whose value never holds an unsafe character: each one typed, pasted or set is
    written as its visible escape (``\\x1b``, ``\\u202e``), so a hostile line pasted in shows
    as text and cannot drive the terminal. Inside a quoted value the escape stands for the
    character itself, so a quoted paste still selects what it was copied from."""

    def validate_value(self, value: str) -> str:
        return inert(value)

    def replace(self, text: str, start: int, end: int) -> None:
        # Escaped before it goes in, so the cursor lands after the escape, not inside it.
        super().replace(inert(text), start, end)


@dataclass(frozen=True)
class TabResult:
    """What Tab does to the bar: its new text and cursor, the hint line, and the completion
    a second Tab cycles through (None: nothing to cycle)."""

    text: str
    cursor: int
    hint: str
    cycle: tuple[Completion, int, str] | None = None


def tab(text: str, cursor: int, values: ValueSource) -> TabResult:
    """Tab at ``cursor`` in ``text``: the one candidate, or the candidates' common prefix, or
    the first of them (a second Tab cycles); asks ``values`` (the backend's: it may read
    every event, or ask a server), so the bar runs it in a thread."""

    def ask(text: str, cursor: int) -> Completion:
        return complete(text, cursor, values)

    comp = ask(text, cursor)
    if not comp.candidates:
        return TabResult(text, cursor, "no completions")
    if len(comp.candidates) == 1:
        return TabResult(*apply(text, comp, comp.candidates[0]), "")
    cycle = None
    if len(comp.common) > len(text[comp.start : comp.end]):
        text = text[: comp.start] + comp.common + text[comp.end :]
        cursor = comp.start + len(comp.common)
        comp = ask(text, cursor)
    else:
        text, cursor = apply(text, comp, comp.candidates[0])
        cycle = (comp, 0, text)
    shown = "  ".join(comp.candidates[:MAX_SHOWN])
    more = len(comp.candidates) - MAX_SHOWN
    return TabResult(text, cursor, shown + (f"  … {more} more" if more > 0 else ""), cycle)


class FilterBar(InertInput):
    BINDINGS = bindings("FilterBar")

    class Hint(Message):
        """Text for the line under the bar (completion candidates), or "" to clear it."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, values: ValueSource, history: History, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="/ filter: user:alice verb:delete,patch ns:kube-* code:>=400 -ua:*kubelet*",
            id=id,
        )
        self.values = values  # the backend's: the index's tables, or a store's server
        self.history = history
        self._cycle: tuple[Completion, int, str] | None = None  # completion, index, text after

    def action_history(self, step: int) -> None:
        text = self.history.previous(self.value) if step < 0 else self.history.next()
        if text is not None:
            self.value = text
            self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        # Tab is a priority binding (ahead of the app's next-pane): the app runs it at once,
        # while keys typed just before it may still wait in this bar's queue. Completing
        # from there, in turn, sees them.
        self.call_later(self._tab)

    def _tab(self) -> None:
        if self._cycle is not None and self._cycle[2] == self.value:
            # Tab again: the next candidate in turn.
            comp, k, _ = self._cycle
            k = (k + 1) % len(comp.candidates)
            self.value, self.cursor_position = apply(self.value, comp, comp.candidates[k])
            self._cycle = (comp, k, self.value)
            return
        self._cycle = None
        self._complete(self.value, self.cursor_position)

    @work(thread=True, group="complete", exclusive=True, exit_on_error=False)
    def _complete(self, text: str, cursor: int) -> None:
        # In a thread: the values of a big log's names take a few hundred ms to go through.
        try:
            result = tab(text, cursor, self.values)
        except Exception as exc:  # said in the hint line; the bar stays as it is
            result = TabResult(text, cursor, f"completion failed: {exc}")
        self.app.call_from_thread(self._completed, text, cursor, result)

    def _completed(self, text: str, cursor: int, result: TabResult) -> None:
        if (self.value, self.cursor_position) != (text, cursor) or not self.has_focus:
            return  # typed on (or left the bar) meanwhile: that Tab no longer applies
        self.value, self.cursor_position = result.text, result.cursor
        self._cycle = result.cycle
        self.post_message(self.Hint(result.hint))
