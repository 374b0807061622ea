"""What the front ends ask of events, whatever holds them: read this module first.

The app and the command line are written once, over :class:`Backend`. Two classes implement it:
the in-memory index of files (:mod:`.memory`: numpy columns over byte offsets, every answer
computed here) and a ClickHouse store (:mod:`.clickhouse`: every answer computed by the
server where SQL can, and by the same Python analyses over the few rows a question selects
where it cannot). A front end never asks which one it holds; it may ask what a backend can
offer (:attr:`Backend.capabilities`) and shows a capability that is missing, with its reason,
instead of failing.

Queries are the query language's text (:mod:`audittui.query`); each backend compiles them
(numpy masks, SQL). Every event has a stable :data:`Key` in the order events are listed (time,
then a tie-break that never changes), so a list pages by key, never by an offset that moves
as events arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..findings.result import FindingsResult as FindingsResult
from ..findings.result import Fired as Fired  # defined below the backends, which answer it
from ..query.completion import ValueSource

Key = tuple[Any, ...]  # an event's position in the listing order: (time µs, tie-break…)

# The orders a selection is listed in (analyses.view's): by time, or slowest first (timed
# requests only). A page of the slowest is after a *position*, (-latency, *key), that ascends
# along the list; by time the position is the key (:func:`position`).
TIME, SLOWEST = "time", "slowest"

# What a backend may offer; :attr:`Backend.capabilities` maps each to "" (offered) or to the
# one-line reason it is not, shown by the front ends where the capability would be.
LIST = "list"  # count, pages by key, one event's detail and raw text
FOLLOW = "follow"  # events newer than a key, as they arrive
SUMMARY = "summary"  # group-by aggregates, latency percentiles
HISTOGRAM = "histogram"
REQUESTS = "requests"  # the stages of one request (by auditID)
HISTORY = "history"  # an object's writes and the diffs between its versions
RBAC = "rbac"  # a subject's requests → the least-privilege role
FINDINGS = "findings"
POLICY = "policy"  # the policy lab: a policy checked and simulated over the events
COMPLETION = "completion"  # the values a field holds
CAPABILITIES = (LIST, FOLLOW, SUMMARY, HISTOGRAM, REQUESTS, HISTORY, RBAC, FINDINGS, POLICY,
                COMPLETION)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One event as a page holds it: its key, the values a list shows and its raw JSON (left
    out of a page that does not need it, None then)."""

    key: Key
    values: Mapping[str, Any]  # as Store.value gives them: None for missing
    raw: bytes | None = None

    def value(self, name: str) -> Any:
        return self.values.get(name)


@dataclass
class Sources:
    """Where the events came from, for ``stats`` and the status bar."""

    display: str  # the paths or the store URL, as the user gave them (inert before shown)
    events: int
    first: str | None  # the first and last event times, formatted (None: no timed event)
    last: str | None
    files: list[str] = field(default_factory=list)  # the files read, or the stored sources
    malformed: int | None = None  # None: unknown (a store holds only what ship kept)
    ignored: int | None = None
    clusters: list[str] | None = None  # a store's clusters (None: files have none)
    per_source: list[dict[str, Any]] | None = None  # a store's {cluster, source, events}


@dataclass
class Disagreement:
    """Events a policy check puts in one group: the rule (None: no rule matched), the level
    it gives and the level logged, why they disagree, and the events' auditIDs."""

    rule: int | None
    expected: str
    logged: str
    why: str
    count: int
    audit_ids: list[str | None]  # None: an event without one
    example: str  # the first event's requestURI ("" when it has none)


@dataclass
class PolicyCheck:
    disagreements: list[Disagreement]  # largest first
    checked: int  # events compared with the policy
    approximate: int  # events too incomplete to check


@dataclass
class Suggestions:
    picks: list[Any]  # policy.suggest.Suggestion
    total_bytes: int  # the bytes of every event (what each saving is a share of)


@dataclass
class Rbac:
    """``rbac``'s answer: the analysis (analyses.rbac.Result) and, when asked, the diff
    against the roles that granted the requests (analyses.rbac_diff.Diff)."""

    result: Any
    diff: Any = None


class Unsupported(Exception):
    """A capability this backend does not offer; its text is the one-line reason."""


class Backend(Protocol):
    """The events one front end shows: files indexed in memory, or a store."""

    display: str
    capabilities: Mapping[str, str]

    # the listing
    def count(self, query: str = "", order: str = TIME, per_request: bool = False) -> int:
        """The rows :meth:`page` lists for the same arguments."""
        ...

    def page(
        self,
        query: str,
        after: Key | None,
        descending: bool,
        limit: int,
        raw: bool = False,
        order: str = TIME,
        per_request: bool = False,
    ) -> list[Row]:
        """Up to ``limit`` events after position ``after`` in ``order`` (before it when
        descending); None starts at the first event (the newest when descending). ``raw``:
        with each event's JSON. ``per_request`` (by time only): one row per request that has
        a matching event, its furthest stage (analyses.requests)."""
        ...

    def event(self, key: Key) -> Row | None:
        """One event with its raw JSON; None when it is gone (rotated away, deleted)."""
        ...

    def newer(self, query: str, after: Key | None) -> list[Row]:
        """Events after ``after`` that arrived since the last call (following)."""
        ...

    def time_range(self, query: str = "") -> tuple[int, int] | None: ...
    def sources(self) -> Sources: ...

    # the analyses, each answering with the analyses' own result types
    def summary(self, query: str, by: str, top: int | None, latency: bool = False) -> Any:
        """analyses.summary.Summary: its rows streamed (iterate once) or the top ones."""
        ...

    def histogram(self, query: str, buckets: int) -> Any:
        """analyses.histogram.Histogram, None without timed events."""
        ...

    def requests(self, audit_id: str) -> list[Row]:
        """The events (stages) of one request, in key order, with their raw JSON."""
        ...

    def history(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        reads: bool = False,
        reveal: bool = False,
        all_fields: bool = False,
    ) -> Any:
        """analyses.object_history.History of one object (resource may name a subresource:
        pods/status); no entries when no event touched it. Secrets masked unless ``reveal``."""
        ...

    def rbac(
        self,
        user: str,
        *,
        namespace: str | None = None,
        clean: bool = False,
        include_denied: bool = False,
        diff: bool = False,
        query: str = "",
    ) -> Rbac: ...

    def findings(self, rules: Sequence[Any], query: str = "") -> FindingsResult: ...
    def policy_check(self, policy: Any) -> PolicyCheck: ...
    def policy_simulate(self, policy: Any, rules: Sequence[Any], query: str = "") -> Any:
        """policy.simulate.Simulation: per policy rule, the events and bytes it would keep."""
        ...

    def policy_suggest(self, rules: Sequence[Any], top: int) -> Suggestions: ...

    def value_source(self) -> ValueSource:
        """The values of the query's fields, as the filter bar's completion asks for them."""
        ...

    def values(self, field_name: str, prefix: str, limit: int) -> list[tuple[str, int]]:
        """The values of a query field (user, ns, verb…) starting with ``prefix``, most
        frequent first (ties by text), with counts (the filter bar's completion)."""
        ...

    def use_policy(self, policy: Any) -> None:
        """Make ``rule:N`` in queries select the events ``policy``'s rule N decides."""
        ...

    def close(self) -> None: ...


def position(row: Row, order: str) -> Key:
    """Where ``row`` sits in a list in ``order`` (what :meth:`Backend.page` pages after)."""
    if order == SLOWEST:
        return (-int(row.value("latency") or 0), *row.key)
    return row.key


def missing(backend: Backend, capability: str) -> str | None:
    """Why ``backend`` cannot offer ``capability``; None when it can."""
    return backend.capabilities.get(capability) or None
