"""The events of files, indexed in memory (:class:`~audittui.index.store.Store`), behind the
:class:`~.protocol.Backend` protocol: every answer is computed here by the analyses.

A key is (time, store index): the store lists events by time, ties in reading order, which is
the order of their indices, so a key's place in any selection is two binary searches.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analyses.histogram import Histogram
from ..analyses.histogram import histogram as histogram_of
from ..analyses.object_history import History
from ..analyses.object_history import history as object_history
from ..analyses.object_history import select as select_history
from ..analyses.rbac import analyze as analyze_rbac
from ..analyses.rbac_diff import diff as rbac_diff
from ..analyses.requests import Requests
from ..analyses.summary import Summary, summarize
from ..analyses.view import matching
from ..findings import Findings
from ..index.evaluate import evaluate, select
from ..index.store import Store, Window
from ..index.values import StoreValues
from ..ingest.formats import MISSING_TIME, format_time
from ..output.mask import mask_event
from ..policy.check import check as check_policy
from ..policy.over_store import attach as attach_policy
from ..policy.simulate import Simulation
from ..policy.simulate import simulate as simulate_policy
from ..policy.suggest import suggest as suggest_rules
from ..query.completion import ValueSource, term
from ..query.fields import STRING_FIELDS
from ..query.syntax import fields_of, parse
from .protocol import (
    CAPABILITIES,
    SLOWEST,
    TIME,
    Disagreement,
    FindingsResult,
    Fired,
    Key,
    PolicyCheck,
    Rbac,
    Row,
    Sources,
    Suggestions,
    position,
)

if TYPE_CHECKING:
    from ..index.session import Session
    from ..policy.model import Policy


class _Values(Mapping[str, Any]):
    """One event's column values, read from the store when asked (a page shows a few)."""

    __slots__ = ("_store", "_i")

    def __init__(self, store: Store, i: int) -> None:
        self._store, self._i = store, i

    def __getitem__(self, name: str) -> Any:
        try:
            return self._store.value(name, self._i)
        except KeyError:
            raise KeyError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self._store.value(name, self._i)
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.tables)

    def __len__(self) -> int:
        return len(self._store.tables)


class MemoryBackend:
    """Files read into a :class:`Store` (a :class:`Session`'s while it is being filled)."""

    def __init__(self, store: Store, display: str, session: Session | None = None) -> None:
        self.store = store
        self.display = display
        self.session = session
        self.capabilities: Mapping[str, str] = {c: "" for c in CAPABILITIES}
        self._selected: tuple[str, int, np.ndarray] | None = None  # (query, events, indices)
        self._followed: int | None = None  # events already handed out by newer()
        self._following = ""  # for this query
        self._rules: list[Any] | None = None  # what finding: selects, once asked

    # -- derived query fields (finding:, rule:) ---------------------------------------------

    def use_policy(self, policy: Policy) -> None:
        """Make ``rule:N`` select the events ``policy``'s rule N matches."""
        attach_policy(policy, self.store)

    def use_rules(self, rules: Sequence[Any]) -> None:
        """Make ``finding:RULE`` select the events of the findings of ``rules``."""
        findings = Findings(list(rules))
        findings.update(self.store)
        findings.attach(self.store)

    # -- the listing ---------------------------------------------------------------------------

    def selection(self, query: str = "") -> np.ndarray:
        """Indices of the events matching ``query`` in listing order (the last one is kept)."""
        n = len(self.store)
        if self._selected is not None and self._selected[:2] == (query, n):
            return self._selected[2]
        rows = select(self.store, query)
        self._selected = (query, n, rows)
        return rows

    def count(self, query: str = "", order: str = TIME, per_request: bool = False) -> int:
        if order != TIME or per_request:
            return len(self._listed(query, order, per_request))
        return len(self.selection(query))

    def _listed(self, query: str, order: str, per_request: bool) -> np.ndarray:
        """The events of the other listings (slowest first, one row per request) in position
        order (:func:`~.protocol.position`): as the app lists them, ties by key."""
        requests = Requests() if per_request and order == TIME else None
        rows = matching(self.store, parse(query), order, requests)
        if order == SLOWEST:
            times, latency = self.store.column("time")[rows], self.store.column("latency")[rows]
            rows = rows[np.lexsort((rows, times, -latency))]
        return rows

    def _row(self, i: int, raw: bool = False) -> Row:
        key = (int(self.store.column("time")[i]), int(i))
        return Row(key, _Values(self.store, int(i)), self.store.raw(int(i)) if raw else None)

    def _position(self, rows: np.ndarray, key: Key) -> tuple[int, int]:
        """The slice of ``rows`` (in listing order) before ``key`` ends at the first number,
        the slice after it starts at the second."""
        time, index = int(key[0]), int(key[1])
        times = self.store.column("time")[rows]
        lo = int(np.searchsorted(times, time, side="left"))
        hi = int(np.searchsorted(times, time, side="right"))
        within = rows[lo:hi]  # equal times: ascending indices
        return lo + int(np.searchsorted(within, index, side="left")), lo + int(
            np.searchsorted(within, index, side="right")
        )

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
        if order == SLOWEST:
            return self._slowest_page(query, after, descending, limit, raw)
        rows = self._listed(query, order, True) if per_request else self.selection(query)
        if descending:
            end = len(rows) if after is None else self._position(rows, after)[0]
            chosen = rows[max(0, end - limit) : end][::-1]
        else:
            start = 0 if after is None else self._position(rows, after)[1]
            chosen = rows[start : start + limit]
        return [self._row(i, raw) for i in chosen.tolist()]

    def _slowest_page(
        self, query: str, after: Key | None, descending: bool, limit: int, raw: bool
    ) -> list[Row]:
        rows = self._listed(query, SLOWEST, False)
        at = [position(self._row(i), SLOWEST) for i in rows.tolist()] if after else []
        if descending:
            end = len(rows) if after is None else bisect.bisect_left(at, tuple(after))
            chosen = rows[max(0, end - limit) : end][::-1]
        else:
            start = 0 if after is None else bisect.bisect_right(at, tuple(after))
            chosen = rows[start : start + limit]
        return [self._row(i, raw) for i in chosen.tolist()]

    def rows(self, query: str = "") -> Iterator[int]:
        """Every matching event's store index in listing order (the CLI's fast path)."""
        return iter(self.selection(query).tolist())

    def event(self, key: Key) -> Row | None:
        i = int(key[1])
        if not 0 <= i < len(self.store) or int(self.store.column("time")[i]) != int(key[0]):
            return None
        return self._row(i, raw=True)

    def newer(self, query: str, after: Key | None = None) -> list[Row]:
        """The first call (for this query): every matching event after ``after`` (None: all
        of them). Later calls: the matching events appended since, in time order (nothing
        is appended twice, so no key is needed)."""
        n = len(self.store)
        if self._followed is None or query != self._following:
            self._following = query
            self._followed = n
            rows = self.selection(query)
            rows = rows[rows < n]  # appended meanwhile: the next call's
            start = 0 if after is None else self._position(rows, after)[1]
            return [self._row(i, raw=True) for i in rows[start:].tolist()]
        start, self._followed = self._followed, n
        if n <= start:
            return []
        window = Window(self.store, start, n)
        node = parse(query)
        hits = np.arange(len(window)) if node is None else np.flatnonzero(evaluate(node, window))
        hits = hits + start
        hits = hits[np.argsort(self.store.column("time")[hits], kind="stable")]
        return [self._row(i, raw=True) for i in hits.tolist()]

    def time_range(self, query: str = "") -> tuple[int, int] | None:
        if not query:
            return self.store.time_range()
        times = self.store.column("time")[self.selection(query)]
        present = times[times != MISSING_TIME]
        return (int(present.min()), int(present.max())) if len(present) else None

    def sources(self) -> Sources:
        span = self.store.time_range()
        return Sources(
            display=self.display,
            events=len(self.store),
            first=format_time(span[0]) if span else None,
            last=format_time(span[1]) if span else None,
            files=[s.path for s in self.store.sources],
            malformed=len(self.store.malformed),
            ignored=len(self.store.ignored),
        )

    # -- the analyses --------------------------------------------------------------------------

    def summary(
        self, query: str = "", by: str = "user", top: int | None = None, latency: bool = False
    ) -> Summary:
        return summarize(self.store, self.selection(query), by, top, latency)

    def histogram(self, query: str, buckets: int) -> Histogram | None:
        return histogram_of(self.store, self.selection(query), buckets)

    def requests(self, audit_id: str) -> list[Row]:
        if not audit_id:  # an event without an auditID is a request of its own
            return []
        return [self._row(i, raw=True) for i in select(self.store, term("id", audit_id)).tolist()]

    def history(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        reads: bool = False,
        reveal: bool = False,
        all_fields: bool = False,
    ) -> History:
        rows = select_history(self.store, resource, namespace, name, reads=reads)
        shown = None if reveal else (lambda ev: mask_event(ev)[0])
        return object_history(self.store, rows, shown, all_fields=all_fields)

    def rbac(
        self,
        user: str,
        *,
        namespace: str | None = None,
        clean: bool = False,
        include_denied: bool = False,
        diff: bool = False,
        query: str = "",
    ) -> Rbac:
        rows = self.selection(query) if query else None
        result = analyze_rbac(
            self.store,
            user,
            rows=rows,
            namespace=namespace,
            clean=clean,
            include_denied=include_denied,
        )
        return Rbac(result, rbac_diff(self.store, result) if diff and result.requests else None)

    def findings(self, rules: Sequence[Any], query: str = "") -> FindingsResult:
        """The rules over every event (their windows and first-seen state need them all);
        ``query`` keeps the findings with an event among its matches."""
        findings = Findings(list(rules))
        findings.update(self.store)
        fired = findings.results(self.store)
        if query:
            chosen = self.selection(query)
            fired = [f for f in fired if np.isin(f.rows, chosen).any()]
        return FindingsResult(
            fired=[
                Fired(
                    f.rule,
                    f.count,
                    f.first,
                    f.last,
                    f.users,
                    f.audit_ids,
                    query=f"finding:{f.rule.id}",
                )  # fmt: skip
                for f in fired
            ],
            blind=findings.blind(self.store),
            errors=dict(findings.errors),
            events=len(self.store),
        )

    def policy_check(self, policy: Policy) -> PolicyCheck:
        groups, checked, approximate = check_policy(policy, self.store)
        out = []
        for g in groups:
            rows = np.asarray(g.rows, dtype=np.int64)
            example = self.store.value("uri", int(rows[0])) or ""
            ids = self.store.values_at("audit_id", rows)
            out.append(Disagreement(g.rule, g.expected, g.logged, g.why, len(rows), ids, example))
        return PolicyCheck(out, checked, approximate)

    def policy_simulate(self, policy: Policy, rules: Sequence[Any], query: str = "") -> Simulation:
        findings = Findings(list(rules))
        rows = self.selection(query) if query else None
        return simulate_policy(policy, self.store, findings, rows)

    def policy_suggest(self, rules: Sequence[Any], top: int) -> Suggestions:
        picks = suggest_rules(self.store, Findings(list(rules)), top)
        total = int(self.store.column("length").astype("int64").sum())
        return Suggestions(picks, total)

    def value_source(self) -> ValueSource:
        return StoreValues(self.store)

    def values(self, field_name: str, prefix: str, limit: int) -> list[tuple[str, int]]:
        column = STRING_FIELDS.get(field_name)
        if column is None:
            return []
        codes = self.store.column(column)
        counts = np.bincount(codes, minlength=len(self.store.tables[column].values))
        table = self.store.tables[column].values
        found: dict[str, int] = {}
        for code in np.flatnonzero(counts).tolist():
            value = table[code]
            if value is None:
                continue
            for v in value if isinstance(value, tuple) else (value,):  # groups, IPs
                if isinstance(v, str) and v.startswith(prefix):
                    found[v] = found.get(v, 0) + int(counts[code])
        ranked = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
        return ranked[:limit]

    def uses(self, query: str) -> set[str]:
        """The fields a query reads (finding:, rule: need :meth:`use_rules`, :meth:`use_policy`)."""
        return set(fields_of(parse(query)))

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        else:
            self.store.close()
