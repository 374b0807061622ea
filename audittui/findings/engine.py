"""Findings: the rule pack evaluated over a growing store, incrementally.

Each update looks only at the events appended since the last one. A rule's query runs on the
indexed columns of those events (cheap, vectorised); only the survivors that the rule must look
inside are read from disk and parsed (once for all such rules), and only when their level says a
body was logged. Window conditions are recomputed over a rule's matched events when that set
grows (a late event can complete an old window); first-seen state grows with the new events.

A rule that needs a request body which the log never carries for the rule's events (a
Metadata-only policy) is reported *blind* instead of silently never firing; body conditions
never hold on a missing body, so a test for the absence of something cannot fire on it either.

Identity is exact, and a duplicate is one event. A line written twice, a file given twice, a
rotated copy that overlaps the live file: the copies are kept in the store (they are in the
logs), but thresholds, distinct counts, a finding's count and its users count them once. Two
events are copies when their JSON text is byte-identical; for events with an auditID that means
the same auditID, stage and content (two events sharing an auditID and stage whose content
differs are two events), and events without an auditID are copies only when byte-identical.
See :class:`Copies` for how that is found cheaply. A finding's count is of requests: its events
with one auditID (the stages of one request) count once, as do copies of an event without one.

Events without a time share one threshold window of their own (see :mod:`.windows`) and have no
place in a first-seen history.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

import jmespath
import numpy as np
from jmespath.exceptions import JMESPathError

from ..index.evaluate import evaluate
from ..index.store import EventGone, Window
from ..index.textsearch import searchable
from ..ingest.authz import parse_reason
from ..ingest.formats import MISSING_TIME, format_duration, parse_json
from ..ingest.schema import COMPLETE, REQUEST, REQUEST_RESPONSE
from ..query.fields import STRING_FIELDS
from ..query.syntax import And, Node, Not, Or, Term, Text, Value, has_text
from .role_grants import RoleRules, any_role_body
from .rules import FirstSeen, Rule
from .windows import NewValues, copy_candidates, group_ids, threshold_hits

if TYPE_CHECKING:
    from ..index.store import Events, Snapshot, Store, TableValues

# Which levels log which body.
BODY_LEVELS = {"request": (REQUEST, REQUEST_RESPONSE), "response": (REQUEST_RESPONSE,)}
BODY_KEY = {"request": "requestObject", "response": "responseObject"}
# The columns copies of one line agree on: they narrow the events whose bytes are compared.
_COPY_COLUMNS = (
    "audit_hi", "audit_lo", "audit_id", "stage", "time", "latency", "code", "user", "verb", "uri"
)  # fmt: skip
# Every container image of a pod, or of a workload's pod template.
_IMAGES = jmespath.compile(
    "[requestObject.spec, requestObject.spec.template.spec, requestObject.spec.jobTemplate.spec"
    ".template.spec][].[containers, initContainers, ephemeralContainers][][][].image"
)


@dataclass
class Finding:
    """A rule that fired: its events (time order), counted once per request."""

    rule: Rule
    rows: np.ndarray
    count: int
    first: int
    last: int
    users: list[str]
    request_rows: np.ndarray  # one event per request, in time order
    store: Store | Snapshot = dataclass_field(repr=False, compare=False)

    @property
    def audit_ids(self) -> list[str]:
        """One per request, in time order (made on demand: a million of them as text is
        tens of MB)."""
        return self.store.values_at("audit_id", self.request_rows)


class Copies:
    """Which events are copies of one another: their JSON text is byte-identical.

    Cheap where there are none: one 64-bit mix of a few columns per event and a sort
    (:func:`~.windows.copy_candidates`); only events equal in every one of those columns have
    their bytes read, once each (a 16-byte BLAKE2b digest is kept per such event: the store is
    append-only, so an event's bytes never change). An event whose bytes cannot be read any
    more (its file truncated) is its own event."""

    def __init__(self) -> None:
        self._digests: dict[int, bytes | None] = {}

    def first(self, store: Events, rows: np.ndarray) -> np.ndarray:
        """For each of ``rows`` (distinct event indices), the smallest index among its copies
        in ``rows``: itself when it has none. ``rows[first(rows) == rows]`` is each event once."""
        out = rows.copy()
        if len(rows) < 2:
            return out
        pos, mix = copy_candidates([store.column(c)[rows] for c in _COPY_COLUMNS])
        if not len(pos):
            return out
        keys: list[tuple[int, bytes] | None] = []
        smallest: dict[tuple[int, bytes], int] = {}
        for r, m in zip(rows[pos].tolist(), mix.tolist(), strict=True):
            digest = self._digest(store, r)
            key = None if digest is None else (m, digest)
            keys.append(key)
            if key is not None and r < smallest.get(key, r + 1):
                smallest[key] = r
        for p, key in zip(pos.tolist(), keys, strict=True):
            if key is not None:
                out[p] = smallest[key]
        return out

    def _digest(self, store: Events, row: int) -> bytes | None:
        if row not in self._digests:
            try:
                raw = store.raw(row)
            except (EventGone, OSError, ValueError):
                self._digests[row] = None
            else:
                self._digests[row] = hashlib.blake2b(raw, digest_size=16).digest()
        return self._digests[row]


@dataclass
class _State:
    candidates: int = 0  # events the query selected (before looking inside them)
    with_body: int = 0  # of those, logged at a level that carries the body the rule needs
    # passed every per-event condition (not first-seen rules)
    matched: np.ndarray = dataclass_field(default_factory=lambda: np.empty(0, np.int64))
    fresh: list[np.ndarray] = dataclass_field(default_factory=list)  # matched since the hits
    hits: np.ndarray | None = None  # of a threshold rule, as last computed
    dirty: bool = False
    new_values: NewValues | None = None  # first-seen state, kept incrementally


class Findings:
    """The enabled rules of a rule set over one store; call :meth:`update` as it grows."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = [r for r in rules if r.enabled]
        self.upto = 0
        self._state = {r.id: _State() for r in self.rules}
        self._lock = threading.Lock()  # one updater; readers take consistent arrays
        self._hits: dict[str, np.ndarray] = {}
        self._findings: dict[str, tuple[np.ndarray, Finding]] = {}  # by rule: from which hits
        self.errors: dict[str, str] = {}  # rule id → the first error of its where expression
        self._roles = RoleRules()
        self._copies = Copies()
        # each rule's query as (its column part, its free-text parts): split once
        self._split = {r.id: _split_text(r.node) for r in self.rules}

    # -- evaluation -------------------------------------------------------------------------

    def update(self, store: Store | Snapshot) -> bool:
        """Evaluate the events appended since the last call; True when any finding changed."""
        with self._lock:
            n = len(store)
            start = self.upto
            if n <= start:
                return False
            window = Window(store, start, n)
            stage = window.column("stage")
            level = window.column("level")
            stage_values = store.tables["stage"].values
            level_values = store.tables["level"].values
            changed = False
            # (rule, body, candidates, the free text its query asks of their lines)
            inside: list[tuple[Rule, str | None, np.ndarray, _TextCheck | None]] = []
            # rules share terms (verb:create, code:2xx): decide each once
            terms: dict[Any, np.ndarray] = {}
            stages: dict[tuple[str, ...], np.ndarray] = {}
            for rule in self.rules:
                st = self._state[rule.id]
                if rule.stages not in stages:
                    stages[rule.stages] = _stage_mask(stage, stage_values, rule.stages)
                mask = stages[rule.stages].copy()
                columns, texts = self._split[rule.id]
                if columns is not None and mask.any():
                    mask &= _mask(columns, window, mask, terms)
                if mask.any() and (rule.allow.users or rule.allow.namespaces):
                    mask &= ~_allowed(window, rule)
                cand = np.flatnonzero(mask)
                if len(cand) and rule.role_grants is not None:
                    cand = cand[self._roles.granting(store, rule.role_grants, cand + start)]
                if not len(cand):
                    continue
                st.candidates += len(cand)
                body = next((b for b in rule.needs if b in BODY_LEVELS), None)
                unknown = cand[:0]
                if body:
                    # No level (SIEM exports, trimmed events): the event itself says whether
                    # it carries the body, so it is looked inside.
                    unknown = cand[level[cand] == 0]
                    logged = np.isin(level[cand], _codes(level_values, BODY_LEVELS[body]))
                    cand = cand[logged]
                    st.with_body += len(cand) + len(unknown)
                if texts:
                    # the free text of a rule's query is read in the candidates' own lines
                    cand = np.concatenate([cand, unknown])
                    unknown = cand[:0]
                    inside.append(
                        (rule, body, cand + start, _TextCheck(texts, window, start, terms))
                    )
                    continue
                if rule.where_expr is not None or rule.allow.images:
                    inside.append((rule, body, np.concatenate([cand, unknown]) + start, None))
                    continue
                if len(unknown):
                    inside.append((rule, body, unknown + start, None))
                if len(cand):
                    self._matched(store, rule, cand + start)
                    changed = True
            for rule, rows in _look_inside(store, inside, self.errors).items():
                self._matched(store, rule, rows)
                changed = True
            self.upto = n
            hits = dict(self._hits)  # readers in other threads keep the previous dict
            for rule in self.rules:
                st = self._state[rule.id]
                if st.dirty:
                    st.dirty = False
                    hits[rule.id] = (
                        st.new_values.hits()
                        if st.new_values
                        else _stateful(store, rule, st, self._copies)
                    )
            self._hits = hits
            return changed

    def _matched(self, store: Store | Snapshot, rule: Rule, rows: np.ndarray) -> None:
        """Events that passed a rule's per-event conditions: kept, or (first-seen rules, whose
        state is all they need) fed to its state."""
        st = self._state[rule.id]
        st.dirty = True
        if rule.first_seen:
            _add_new_values(store, rule.first_seen, st, rows)
        else:
            st.matched = np.concatenate([st.matched, rows])
            st.fresh.append(rows)

    # -- results ----------------------------------------------------------------------------

    def results(self, store: Store | Snapshot) -> list[Finding]:
        """Fired rules, most severe first, then by count."""
        out: list[Finding] = []
        hits = self._hits
        by_id = {r.id: r for r in self.rules}
        n = len(store)
        times = store.column("time")
        users = store.column("user")
        for rid, hit_rows in hits.items():
            rows = hit_rows[hit_rows < n]
            if not len(rows):
                continue
            cached = self._findings.get(rid)
            if cached is not None and cached[0] is hit_rows and len(cached[1].rows) == len(rows):
                out.append(cached[1])  # unchanged since the last call
                continue
            rows = rows[np.argsort(times[rows], kind="stable")]
            known = times[rows][times[rows] != MISSING_TIME]
            once = self._copies.first(store, rows) == rows  # each event once, copies aside
            # One per request (its stages share an auditID, compared by value), in time order;
            # an event without an auditID is a request of its own (its copies are not).
            codes = store.group_numbers("audit_id", rows)
            firsts = _first_positions(codes)
            count = len(firsts) + int(((codes == 0) & once).sum())
            user_codes, user_counts = np.unique(users[rows[once]], return_counts=True)
            user_table = store.tables["user"].values
            ranked = user_codes[np.argsort(-user_counts, kind="stable")]
            finding = Finding(
                rule=by_id[rid],
                rows=rows,
                count=count,
                first=int(known[0]) if len(known) else MISSING_TIME,
                last=int(known[-1]) if len(known) else MISSING_TIME,
                users=[user_table[c] for c in ranked if c],
                request_rows=rows[firsts],
                store=store,
            )
            self._findings[rid] = (hit_rows, finding)
            out.append(finding)
        out.sort(key=lambda f: (f.rule.rank, -f.count, f.rule.id))
        return out

    def rows_of(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """Event indices of the findings whose rule id passes ``predicate`` (for finding:)."""
        parts = [rows for rid, rows in self._hits.items() if predicate(rid)]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def attach(self, store: Store) -> None:
        """Make ``finding:RULE`` queries over ``store`` select these findings' events."""
        store.derived["finding"] = self.rows_of

    def blind(self, store: Store | Snapshot) -> list[tuple[Rule, str]]:
        """Rules that cannot fire on this log, and why."""
        out: list[tuple[Rule, str]] = []
        n = len(store)
        if not n:
            return out
        level = store.column("level")
        level_values = store.tables["level"].values
        for rule in self.rules:
            st = self._state[rule.id]
            why = None
            body = next((b for b in rule.needs if b in BODY_LEVELS), None)
            if body:
                why = _body_blind(store, rule, st, body, level, level_values)
            if why is None and "credential" in rule.needs and not store.column("credential").any():
                why = NO_CREDENTIAL
            if why is None and "reason" in rule.needs and not _any_rbac_reason(store):
                why = NO_REASON
            if why is None and rule.role_grants and not any_role_body(store):
                why = NO_ROLE_BODY
            if why is None and rule.first_seen:
                span = _span(store)
                if span is not None and span <= rule.first_seen.learn:
                    why = (
                        f"the log spans {format_duration(span)}; the rule first learns "
                        f"{format_duration(rule.first_seen.learn)} of each key's history"
                    )
            if why:
                out.append((rule, why))
        return out


# Why a rule is blind on a log (blind(); blind_when() says the same before any log is read).
NO_CREDENTIAL = (
    "no event carries a credential id (user.extra "
    "authentication.kubernetes.io/credential-id; Kubernetes 1.30+ logs it)"
)
NO_REASON = (
    "no event carries an RBAC reason (authorization.k8s.io/reason: the "
    "bindings that allowed requests are not in this log)"
)
NO_ROLE_BODY = (
    "no Role or ClusterRole body in this log (their writes at Request level or "
    "above): what the roles that allowed requests grant is unknown"
)
# A negated query term on a list: ``-field:$list`` or ``NOT field:$list``.
_EXCLUDED_LIST = re.compile(r"(?:(?<![^\s(])-|\bNOT\s+)([a-z_]+):\$([A-Za-z_][A-Za-z0-9_]*)")


def reads(rule: Rule) -> list[str]:
    """What a rule reads of each event beyond the indexed columns: ``request`` or
    ``response`` (a body), ``credential`` (the credential-id column, filled by Kubernetes
    1.30+), ``reason`` (the authorizer's), ``roles`` (the bodies of the roles the reason names),
    ``event`` (a where expression over the event without a body); ``["columns"]`` alone when
    the query is all it needs."""
    out = [n for n in ("request", "response", "credential", "reason") if n in rule.needs]
    if rule.role_grants is not None:
        out.append("roles")
    if rule.where and not any(b in rule.needs for b in BODY_LEVELS):
        out.append("event")
    return out or ["columns"]


def blind_when(rule: Rule) -> str | None:
    """Why the rule can be blind on a log (before any log is read), or None: it cannot."""
    why = []
    if "request" in rule.needs:
        why.append("it reads the request body, which a Metadata-level policy does not log")
    if "response" in rule.needs:
        why.append("it reads the response body, which only a RequestResponse-level policy logs")
    if "credential" in rule.needs:
        why.append("no event carries a credential id (Kubernetes 1.30+ logs them in user.extra)")
    if "reason" in rule.needs:
        why.append("no event carries an RBAC reason (authorization.k8s.io/reason)")
    if rule.role_grants is not None:
        why.append("the log holds no Role or ClusterRole body (their writes at Request level)")
    if rule.first_seen is not None:
        learn = format_duration(rule.first_seen.learn)
        why.append(f"the log spans {learn} or less (it first learns {learn} of each key)")
    return "; or ".join(why) or None


def exclusions(rule: Rule) -> dict[str, Any]:
    """What a rule leaves out: its allow-lists (globs, the pack's $lists expanded) and the
    lists its query excludes (``-field:$list``), as ``{"allow": {…}, "query": [{field,
    list}]}`` (each part only when there is something)."""
    out: dict[str, Any] = {}
    allow = {
        key: list(getattr(rule.allow, key))
        for key in ("users", "namespaces", "images")
        if getattr(rule.allow, key)
    }
    if allow:
        out["allow"] = allow
    excluded = [{"field": f, "list": n} for f, n in _EXCLUDED_LIST.findall(rule.query)]
    if excluded:
        out["query"] = excluded
    return out


def _any_rbac_reason(store: Store | Snapshot) -> bool:
    values = store.tables["reason"].values
    seen = np.flatnonzero(np.bincount(store.column("reason")))  # the codes events hold, in O(n)
    return any(parse_reason(values[int(c)]).authorizer == "RBAC" for c in seen if c)


def _mask(
    node: Node, window: Window, within: np.ndarray, terms: dict[Any, np.ndarray]
) -> np.ndarray:
    """``evaluate``, with field terms (and their negations) remembered across rules."""
    if isinstance(node, Term):
        key = (node.field, node.values)
        if key not in terms:
            terms[key] = evaluate(node, window)
        return terms[key]
    if isinstance(node, Not) and isinstance(node.node, Term):
        return ~_mask(node.node, window, within, terms)
    if isinstance(node, And):
        mask = within.copy()
        for child in sorted(node.nodes, key=has_text):  # free text last, on survivors only
            mask &= _mask(child, window, mask, terms)
            if not mask.any():
                break
        return mask
    return evaluate(node, window, within)


def _look_inside(
    store: Store | Snapshot,
    work: list[tuple[Rule, str | None, np.ndarray, _TextCheck | None]],
    errors: dict[str, str],
) -> dict[Rule, np.ndarray]:
    """The candidates that pass their rule's free text, body condition and image allow-list.
    Each event is read (and parsed, when a rule looks inside it) once however many rules look
    at it (six rules read every pod create). A where expression that fails on an event (a
    type error, a bad regex) does not match it; the first such error of each rule is kept in
    ``errors``."""
    if not work:
        return {}
    rows = np.concatenate([w[2] for w in work])
    which = np.concatenate([np.full(len(w[2]), k) for k, w in enumerate(work)])
    order = np.argsort(rows, kind="stable")
    passed: dict[int, list[int]] = {}
    current, raw, lowered, event = -1, b"", "", None
    for i, k in zip(rows[order].tolist(), which[order].tolist(), strict=True):
        if i != current:
            current, lowered, event = i, "", None
            try:
                raw = store.raw(i)
            except (EventGone, OSError, ValueError):
                raw = b""
        if not raw:
            continue
        rule, body, _, texts = work[k]
        if texts is not None:
            if not lowered:
                lowered = searchable(raw)
            if not texts.holds(i, lowered):
                continue
        if body is None and rule.where_expr is None and not rule.allow.images:
            passed.setdefault(k, []).append(i)
            continue
        if event is None:
            try:
                event = parse_json(raw)
            except ValueError:
                raw = b""
                continue
        try:
            ok = _passes(rule, body, event)
        except (JMESPathError, TypeError, ValueError) as exc:  # ValueError: a bad regex too
            errors.setdefault(rule.id, f"{type(exc).__name__}: {exc}")
            continue
        if ok:
            passed.setdefault(k, []).append(i)
    return {work[k][0]: np.array(v, dtype=np.int64) for k, v in passed.items()}


def selection_mask(rule: Rule, store: Events) -> np.ndarray:
    """The events a rule's query selects, its free text left out when the rest of the query
    decides on columns (a superset, at column speed: the policy lab asks it of every rule)."""
    columns, texts = _split_text(rule.node)
    node = columns if columns is not None or not texts else rule.node
    if node is None:
        return np.ones(len(store), dtype=bool)
    return evaluate(node, store)


def _split_text(node: Node | None) -> tuple[Node | None, tuple[Node, ...]]:
    """A rule's query as (the part decided on columns, the parts holding free text): the free
    text is checked in each candidate's line, read once for every rule, instead of searched in
    the whole file for each rule."""
    if node is None or not has_text(node):
        return node, ()
    if isinstance(node, And):
        columns = tuple(c for c in node.nodes if not has_text(c))
        texts = tuple(c for c in node.nodes if has_text(c))
        return (And(columns) if len(columns) > 1 else columns[0] if columns else None), texts
    return None, (node,)


class _TextCheck:
    """The free-text parts of a query, decided for one event from its lower-cased line (its
    field terms from the window's masks)."""

    def __init__(
        self, nodes: tuple[Node, ...], window: Window, start: int, terms: dict[Any, np.ndarray]
    ) -> None:
        self.nodes, self.window, self.start, self.terms = nodes, window, start, terms

    def holds(self, row: int, lowered: str) -> bool:
        return all(self._holds(node, row - self.start, lowered) for node in self.nodes)

    def _holds(self, node: Node, i: int, lowered: str) -> bool:
        if isinstance(node, Text):
            return node.text.lower() in lowered
        if isinstance(node, Not):
            return not self._holds(node.node, i, lowered)
        if isinstance(node, And):
            return all(self._holds(c, i, lowered) for c in node.nodes)
        if isinstance(node, Or):
            return any(self._holds(c, i, lowered) for c in node.nodes)
        key = (node.field, node.values)  # a field term: decided once for the window
        if key not in self.terms:
            self.terms[key] = evaluate(node, self.window)
        return bool(self.terms[key][i])


def _passes(rule: Rule, body: str | None, event: dict[str, Any]) -> bool:
    if body and not _is_body(event, BODY_KEY[body]):
        return False  # no body: a condition on it cannot hold, nor its absence be seen
    if rule.where_expr is not None and not _truthy(rule.where_expr.search(event)):
        return False
    if rule.allow.images:
        images = [im for im in _IMAGES.search(event) or [] if isinstance(im, str)]
        if images and all(rule.allow.image_allowed(im) for im in images):
            return False
    return True


def _is_body(event: dict[str, Any], key: str) -> bool:
    """An object; or, for a patch, the list of operations of a JSON patch (only a patch's
    body can be one: a list elsewhere is not a body, so absence tests stay quiet on it)."""
    value = event.get(key)
    return isinstance(value, dict) or (
        isinstance(value, list) and key == "requestObject" and event.get("verb") == "patch"
    )


def _body_blind(
    store: Events,
    rule: Rule,
    st: _State,
    body: str,
    level: np.ndarray,
    level_values: TableValues,
) -> str | None:
    levels = BODY_LEVELS[body]
    need = " or ".join(levels)
    if st.candidates:
        if st.with_body:
            return None
        return (
            f"the {st.candidates} events it looks at were logged without a {body} body; "
            f"it needs level {need}"
        )
    resources = _resources(rule.node)
    values = tuple(Value("exact", r) for r in sorted(resources))
    scope = evaluate(Term("resource", values, 0), store) if resources else np.ones(len(store), bool)
    if not scope.any():
        return None  # nothing of the kind happened: nothing to judge the policy by
    if np.isin(level[scope], _codes(level_values, levels)).any():
        return None
    what = ", ".join(sorted(resources)) if resources else "any resource"
    return f"no {body} bodies are logged for {what} here (level {need} needed)"


def _resources(node: Node | None) -> set[str]:
    """Exact resource names a query requires (positive ``resource:`` terms under its ANDs, and
    under an OR whose every branch names some: pods, or workloads with a pod template)."""
    if isinstance(node, Term) and node.field == "resource":
        return {v.text.split("/")[0] for v in node.values if v.kind == "exact"}
    if isinstance(node, And):
        out: set[str] = set()
        for child in node.nodes:
            out |= _resources(child)
        return out
    if isinstance(node, Or):
        branches = [_resources(child) for child in node.nodes]
        return set().union(*branches) if all(branches) else set()
    return set()


def _span(store: Events) -> int | None:
    times = store.column("time")
    known = times[times != MISSING_TIME]
    return int(known.max() - known.min()) if len(known) else None


def _stateful(store: Events, rule: Rule, st: _State, copies: Copies) -> np.ndarray:
    """The hits of a rule: its matched events, or those in a window reaching its threshold.

    Copies of one event count once toward the threshold (and its distinct values); every copy
    of an event that takes part in a firing window is a hit (the copies are in the log). Events
    without a time share one window of their own.

    A window can gain events from any time (backups are read after the live file), so a group
    that got new events is recomputed over its events within a window's width of the new ones;
    every earlier hit stands (adding events never undoes a window that reached the count).
    Groups are found by identity codes: a new event's group values mark, column by column, the
    events that may share its group (a superset of whole groups)."""
    matched = st.matched
    fresh, st.fresh = st.fresh, []
    if not rule.threshold or not len(matched):
        return matched
    t = rule.threshold
    time = store.column("time")
    columns = [store.ids(STRING_FIELDS[f]) for f in t.group_by]
    rows, previous = matched, np.empty(0, dtype=np.int64)
    new = np.concatenate(fresh) if fresh else np.empty(0, dtype=np.int64)
    if st.hits is not None and columns and len(new):
        touched = np.ones(len(matched), dtype=bool)
        for col in columns:
            lut = np.zeros(int(col[new].max()) + 1, dtype=bool)
            lut[col[new]] = True
            touched &= _looked_up(lut, col[matched])
        # Adding events never undoes a window that reached the count, so every earlier hit
        # stands; and a window that gains a new event lies within its width of it: only the
        # touched groups' events within that span of the new ones are counted again (a busy
        # user's whole history is not recounted at every batch).
        rows, previous = matched[touched], st.hits
        dated = new[time[new] != MISSING_TIME]
        if len(dated):
            at = time[rows]
            lo, hi = int(time[dated].min()) - t.window, int(time[dated].max()) + t.window
            rows = rows[((at >= lo) & (at <= hi)) | (at == MISSING_TIME)]
    first = copies.first(store, rows)
    once = rows[first == rows]
    distinct = store.ids(STRING_FIELDS[t.distinct]) if t.distinct else None
    fired = []
    untimed = time[once] == MISSING_TIME
    # Timed events by their times; the untimed ones all at one instant of their own (their
    # marker, the smallest int64, would overflow the window arithmetic).
    for part, at in ((once[~untimed], None), (once[untimed], 0)):
        if not len(part):
            continue
        times = time[part] if at is None else np.zeros(len(part), dtype=np.int64)
        groups = group_ids([col[part] for col in columns], len(part))
        values = None if distinct is None else distinct[part]
        fired.append(part[threshold_hits(times, groups, t.window, t.count, values)])
    hit_once = np.concatenate(fired) if fired else np.empty(0, dtype=np.int64)
    hits = rows[np.isin(first, hit_once)]  # with their copies
    st.hits = np.union1d(previous, hits) if len(previous) else hits
    return st.hits


def _looked_up(lut: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``lut[codes]``, False for codes past its end."""
    out = np.zeros(len(codes), dtype=bool)
    inside = codes < len(lut)
    out[inside] = lut[codes[inside]]
    return out


def _add_new_values(store: Events, f: FirstSeen, st: _State, rows: np.ndarray) -> None:
    rows = rows[store.column("time")[rows] != MISSING_TIME]  # no time: no place in a history
    if st.new_values is None:
        st.new_values = NewValues(f.learn)
    st.new_values.add(
        store.column("time")[rows],
        [_codes_of(store, k, rows) for k in f.key],
        _codes_of(store, f.value, rows),
        rows,
    )


def _codes_of(store: Events, field: str, rows: np.ndarray) -> np.ndarray:
    """Identity codes, stable across updates (first-seen state keeps them)."""
    return store.ids(STRING_FIELDS[field])[rows]


def _stage_mask(stage: np.ndarray, values: TableValues, stages: tuple[str, ...]) -> np.ndarray:
    """The rule's stages; an event without a stage (old or cloud shapes) counts as complete."""
    want = set(stages) | ({None} if COMPLETE in stages else set())
    lut = np.fromiter((v in want for v in values), dtype=bool, count=len(values))
    return lut[stage]


def _codes(values: TableValues, wanted: tuple[str, ...]) -> np.ndarray:
    return np.array([k for k, v in enumerate(values) if v in wanted], dtype=np.int64)


def _allowed(window: Window, rule: Rule) -> np.ndarray:
    """Events of the rule's allowed users or namespaces (globs): query terms, so the lookups
    are kept with the tables like any filter's."""
    mask = np.zeros(len(window), dtype=bool)
    for field, patterns in (("user", rule.allow.users), ("ns", rule.allow.namespaces)):
        if patterns:
            values = tuple(Value("glob" if "*" in p else "exact", p) for p in patterns)
            mask |= evaluate(Term(field, values, 0), window)
    return mask


def _first_positions(groups: np.ndarray) -> np.ndarray:
    """Where each group (0: none) first occurs, in order."""
    present = np.flatnonzero(groups != 0)
    _, first = np.unique(groups[present], return_index=True)
    return present[np.sort(first)]


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, and empty strings, lists and objects are false."""
    if value is None or value is False:
        return False
    return not isinstance(value, str | list | dict) or len(value) > 0
