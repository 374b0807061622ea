"""A ClickHouse store (``clickhouse://…``, ``chdb://…``) behind the :class:`~.protocol.Backend`
protocol, over :class:`~audittui.clickhouse.reads.Reader`.

The listing, counts, summaries, the histogram and completion's values are computed by the
server. An object's history, one request's stages and a subject's requests are selected by the
server (a few rows), which the same Python analyses as for files read: the history straight from
the rows (the columns it reads and the raw JSON), a subject's requests copied into a private
index (:class:`~audittui.clickhouse.fetched.Fetched`). Findings and the policy lab run as SQL
(:mod:`audittui.clickhouse.findings`, :mod:`audittui.clickhouse.policy`).

A key is the table's sort key (time, auditID, stage, stageTimestamp, digest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..analyses.histogram import Histogram
from ..analyses.object_history import History, object_query
from ..analyses.object_history import history as object_history
from ..analyses.rbac import analyze as analyze_rbac
from ..analyses.rbac_diff import diff as rbac_diff
from ..analyses.summary import Summary
from ..clickhouse import listing
from ..clickhouse.findings import run as run_findings
from ..clickhouse.policy import check as check_policy
from ..clickhouse.policy import rule_field
from ..clickhouse.policy import simulate as simulate_policy
from ..clickhouse.policy import suggest as suggest_rules
from ..clickhouse.rbac import Grouped
from ..clickhouse.reads import LATE, MISSING_TIME, Reader, StoredEvent, column_value, late_key
from ..clickhouse.sql import Where, compile_node
from ..clickhouse.values import ServerValues
from ..ingest.formats import parse_json
from ..output.mask import mask_event
from ..policy.simulate import Simulation
from ..query.completion import ValueSource, term
from ..query.fields import STRING_FIELDS
from ..query.syntax import parse
from .protocol import (
    CAPABILITIES,
    SLOWEST,
    TIME,
    Disagreement,
    FindingsResult,
    Key,
    PolicyCheck,
    Rbac,
    Row,
    Sources,
    Suggestions,
)

REQUEST_STAGES = 16  # rows one auditID may hold: its stages, a few copies (a bound, not a page)
# What the roles' bodies are read from, for rbac --diff (as rbac_diff.logged_with_body)
ROLE_BODIES = (
    "api:rbac.authorization.k8s.io resource:roles,clusterroles level:Request,RequestResponse"
)


def _row(e: StoredEvent, raw: bool = True) -> Row:
    return Row(e.key, _Columns(e), e.raw if raw else None)


class _Columns(dict[str, Any]):
    """A stored event's values as a mapping (Store.value's conventions: None for missing)."""

    def __init__(self, event: StoredEvent) -> None:
        super().__init__()
        self._event = event

    def get(self, name: str, default: Any = None) -> Any:
        value = self._event.value(name)
        return default if value is None else value

    def __getitem__(self, name: str) -> Any:
        return self._event.value(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and hasattr(self._event.columns, name)


# What a history reads of each event (analyses.object_history._entry, and its body)
HISTORY_COLUMNS = ("time", "audit_id", "verb", "user", "ips", "code", "subresource", "raw")


class _Selected:
    """A few rows of a store (:meth:`Reader.in_time_order`) as
    :func:`~audittui.analyses.object_history.history` reads events: by position, values as
    Store.value gives them, the event parsed from its raw JSON."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def event(self, i: int) -> dict[str, Any]:
        event = parse_json(self.rows[i].raw.encode("utf-8", "surrogatepass"))
        return event if isinstance(event, dict) else {}

    def value(self, name: str, i: int) -> Any:
        return column_value(self.rows[i], name)


class ClickHouseBackend:
    """The events of one store table (a cluster of it, with ``?cluster=``)."""

    def __init__(self, reader: Reader, display: str) -> None:
        self.reader = reader
        self.display = display
        self.capabilities: Mapping[str, str] = {c: "" for c in CAPABILITIES}
        self._wheres: dict[str, Where] = {}
        self._policy: Any = None  # what rule:N is decided by (use_policy)
        # following: the keys printed within LATE of the newest one, and that newest time
        self._following = ""  # the query followed
        self._shown: dict[Key, int] | None = None
        self._newest = MISSING_TIME
        self._stored = -1  # the table's rows when last polled

    def where(self, query: str) -> Where:
        """The query compiled for this server (QueryError, SqlError when it cannot be)."""
        if query not in self._wheres:
            derived = {"rule": rule_field(self.reader, self._policy)} if self._policy else None
            node = parse(query)
            self._wheres[query] = compile_node(node, self.reader.modern, derived=derived)
        return self._wheres[query]

    def use_policy(self, policy: Any) -> None:
        """Make ``rule:N`` select the events ``policy``'s rule N decides."""
        self._policy = policy
        self._wheres.clear()

    # -- the listing ---------------------------------------------------------------------------

    def count(self, query: str = "", order: str = TIME, per_request: bool = False) -> int:
        if order == SLOWEST:
            return listing.count_slowest(self.reader, self.where(query))
        if per_request:
            return listing.count_requests(self.reader, self.where(query))
        return self.reader.count(self.where(query))

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
        where = self.where(query)
        if order == SLOWEST:
            events = listing.page_slowest(self.reader, where, after, limit, descending, raw)
        elif per_request:
            events = listing.page_requests(self.reader, where, after, limit, descending, raw)
        else:
            events = self.reader.page(
                where, after_key=after, limit=limit, descending=descending, raw=raw
            )
        return [_row(e, raw) for e in events]

    def pages(self, query: str, size: int) -> Any:
        """Every matching event, page by page in key order, with its raw JSON."""
        for events in self.reader.pages(self.where(query), size=size):
            yield [_row(e) for e in events]

    def event(self, key: Key) -> Row | None:
        found = self.reader.event(key)
        return None if found is None else _row(found)

    def newer(self, query: str, after: Key | None = None) -> list[Row]:
        """The first call (for this query): every matching event after ``after`` (None: all
        of them, for a list that starts following at once), the keys within LATE of
        ``after`` noted as already shown. Later calls: the rows from LATE before the newest
        one seen (shippers write in batches: a row may land after newer ones), less those
        already returned."""
        where = self.where(query)
        if query != self._following:  # another filter: its own first call
            self._following, self._shown, self._newest = query, None, MISSING_TIME
        # Asked before reading: a row landing during the read makes the next poll read again.
        stored, copies = self.reader.stored()
        first = self._shown is None
        if not first and stored == self._stored and not copies:
            return []  # nothing arrived (a poll of a quiet store reads nothing)
        self._stored = stored
        if self._shown is None:
            self._shown = {}
            if after is not None:
                self._newest = int(after[0])
                for key in self.reader.keys_after(where, late_key(int(after[0]))):
                    if key <= tuple(after):
                        self._shown[key] = key[0]
        start: Key | None
        if first:
            start = None if after is None else tuple(after)
        else:
            start = None if self._newest == MISSING_TIME else late_key(self._newest)
        fresh: list[Row] = []
        events = self._since(where, start) if start is not None else self._all(where)
        for e in events:
            if e.key in self._shown:
                continue
            self._shown[e.key] = e.key[0]
            self._newest = max(self._newest, e.key[0])
            fresh.append(_row(e))
        if self._newest != MISSING_TIME:  # what the next poll cannot meet again
            for key in [k for k, t in self._shown.items() if t < self._newest - LATE]:
                del self._shown[key]
        return fresh

    def _all(self, where: Where) -> Any:
        for page in self.reader.pages(where):
            yield from page

    def _since(self, where: Where, after: Any) -> Any:
        key = after
        while key is not None:
            page = self.reader.page(where, after_key=key)
            yield from page
            key = page[-1].key if len(page) == 500 else None

    def time_range(self, query: str = "") -> tuple[int, int] | None:
        return self.reader.time_range(self.where(query))

    def sources(self) -> Sources:
        info = self.reader.stats()
        return Sources(
            display=self.display,
            events=int(info["events"]),
            first=info["first"],
            last=info["last"],
            files=list(info["files"]),
            clusters=list(info["clusters"]),
            per_source=self.reader.source_counts(),
        )

    # -- the analyses --------------------------------------------------------------------------

    def summary(
        self, query: str = "", by: str = "user", top: int | None = None, latency: bool = False
    ) -> Summary:
        return self.reader.summary(by, self.where(query), top, latency)

    def histogram(self, query: str, buckets: int) -> Histogram | None:
        return self.reader.histogram(self.where(query), buckets)

    def requests(self, audit_id: str) -> list[Row]:
        if not audit_id:  # an event without an auditID is a request of its own
            return []
        where = Where("audit_id = {request_:String}", {"request_": audit_id})
        return [_row(e) for e in self.reader.page(where, limit=REQUEST_STAGES)]

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
        # The object's events in one statement, in time order (as select_history gives a
        # file's): the server's filter is object_query's, so every row it answers is one.
        query = object_query(resource, namespace, name, reads)
        selected = _Selected(self.reader.in_time_order(self.where(query), HISTORY_COLUMNS))
        shown = None if reveal else (lambda ev: mask_event(ev)[0])
        return object_history(selected, list(range(len(selected.rows))), shown, all_fields)

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
        subject = f'({term("as", user)} OR (as:"" {term("user", user)}))'
        if namespace:
            subject += f" {term('ns', namespace)}"
        if query:
            subject = f"{subject} ({query})"
        # grouped in the server by what the analysis reads; with --diff, the events the roles'
        # bodies are read from as well, each its own row
        with Grouped(self.reader, subject, ROLE_BODIES if diff else None) as (
            store,
            weights,
            rows,
        ):
            result = analyze_rbac(
                store,
                user,
                rows=rows,
                namespace=namespace,
                clean=clean,
                include_denied=include_denied,
                weights=weights,
            )
            return Rbac(result, rbac_diff(store, result) if diff and result.requests else None)

    def findings(self, rules: Sequence[Any], query: str = "") -> FindingsResult:
        """The pack computed by the server (:mod:`audittui.clickhouse.findings`)."""
        return run_findings(self.reader, rules, "", touching=query)

    def policy_check(self, policy: Any) -> PolicyCheck:
        groups, checked, approximate = check_policy(self.reader, policy)
        return PolicyCheck(
            [
                Disagreement(
                    g.rule,
                    g.expected,
                    g.logged,
                    g.why,
                    g.count,
                    list(g.audit_ids),
                    g.example,
                )  # fmt: skip
                for g in groups
            ],
            checked,
            approximate,
        )

    def policy_simulate(self, policy: Any, rules: Sequence[Any], query: str = "") -> Simulation:
        return simulate_policy(self.reader, policy, rules, query)

    def policy_suggest(self, rules: Sequence[Any], top: int) -> Suggestions:
        picks = suggest_rules(self.reader, rules, top)
        return Suggestions(picks, self.reader.raw_bytes())

    def value_source(self) -> ValueSource:
        return ServerValues(self.reader)

    def values(self, field_name: str, prefix: str, limit: int) -> list[tuple[str, int]]:
        column = STRING_FIELDS.get(field_name)
        if column is None:
            return []
        return self.reader.values(column, prefix, limit)

    def close(self) -> None:
        self.reader.close()
