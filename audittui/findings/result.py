"""What a findings run answers, whatever ran it (the in-memory engine, a ClickHouse server):
the rules that fired, the blind ones, the errors. Re-exported by :mod:`audittui.backend.protocol`
(defined here, below both backends, so that a backend answers it without importing upward)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Fired:
    """A rule that fired, as every backend reports it (the CLI prints it, the app lists it)."""

    rule: Any  # audittui.findings.rules.Rule
    count: int  # requests (an event and its byte-identical copies count once)
    first: int  # µs
    last: int
    users: list[str]
    audit_ids: list[str]  # one per request, in time order
    query: str = ""  # the query that lists its events in this backend (the app's drill-down)


@dataclass
class FindingsResult:
    fired: list[Fired]
    blind: list[tuple[Any, str]]  # (rule, why it cannot fire on these events)
    errors: dict[str, str]  # rule id → why its where failed
    events: int  # the events the rules ran over
