"""The filter bar: the query language with history (up/down, kept across runs) and Tab
completion of field names and of the values the index knows."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import Input

from ..index.completion import Completion, apply, complete
from ..index.store import Store
from .history import History
from .keymap import bindings

MAX_SHOWN = 8  # candidates listed in the hint line


class FilterBar(Input):
    BINDINGS = bindings("FilterBar")

    class Hint(Message):
        """Text for the line under the bar (completion candidates), or "" to clear it."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, store: Store, history: History, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="/ filter: user:alice verb:delete,patch ns:kube-* code:>=400 -ua:*kubelet*",
            id=id,
        )
        self.store = store
        self.history = history
        self._cycle: tuple[Completion, int, str] | None = None  # completion, index, text after

    def action_history(self, step: int) -> None:
        text = self.history.previous(self.value) if step < 0 else self.history.next()
        if text is not None:
            self.value = text
            self.cursor_position = len(text)

    def action_complete(self) -> None:
        if self._cycle is not None and self._cycle[2] == self.value:
            # Tab again: the next candidate in turn.
            comp, k, _ = self._cycle
            k = (k + 1) % len(comp.candidates)
            self._put(comp, comp.candidates[k])
            self._cycle = (comp, k, self.value)
            return
        comp = complete(self.value, self.cursor_position, self.store)
        self._cycle = None
        if not comp.candidates:
            self.post_message(self.Hint("no completions"))
            return
        if len(comp.candidates) == 1:
            self._put(comp, comp.candidates[0])
            self.post_message(self.Hint(""))
            return
        token = self.value[comp.start : comp.end]
        if len(comp.common) > len(token):
            self._put(comp, comp.common, partial=True)
            comp = complete(self.value, self.cursor_position, self.store)
        else:
            self._put(comp, comp.candidates[0])
            self._cycle = (comp, 0, self.value)
        shown = "  ".join(comp.candidates[:MAX_SHOWN])
        more = len(comp.candidates) - MAX_SHOWN
        self.post_message(self.Hint(shown + (f"  … {more} more" if more > 0 else "")))

    def _put(self, comp: Completion, candidate: str, partial: bool = False) -> None:
        if partial:
            text = self.value[: comp.start] + candidate + self.value[comp.end :]
            cursor = comp.start + len(candidate)
        else:
            text, cursor = apply(self.value, comp, candidate)
        self.value = text
        self.cursor_position = cursor
