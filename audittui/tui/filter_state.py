"""The list's filter as one object: the query in force, and the one being computed."""

from __future__ import annotations

from dataclasses import dataclass

from ..analyses.requests import Requests
from .messages import FilterResult


@dataclass(frozen=True)
class Pending:
    """A filter computed in a thread: its text, row order and per-request folding."""

    text: str
    order: str
    requests: Requests | None


@dataclass
class FilterState:
    """``committed``: the filter in force, what Esc in the bar restores (the bar may show a
    preview of another). ``pending``: the computation whose rows the list waits for; a
    result for anything else was superseded by later typing and is dropped."""

    committed: str = ""
    pending: Pending | None = None

    @property
    def pending_text(self) -> str | None:
        return self.pending.text if self.pending is not None else None

    def start(self, text: str, order: str, requests: Requests | None) -> Pending:
        self.pending = Pending(text, order, requests)
        return self.pending

    def takes(self, result: FilterResult) -> bool:
        """Is ``result`` the one the list waits for? (It then stops waiting.)"""
        if self.pending != Pending(result.text, result.order, result.requests):
            return False
        self.pending = None
        return True

    def failed(self, text: str) -> None:
        if self.pending_text == text:
            self.pending = None
