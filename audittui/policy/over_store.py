"""A policy decided for every event of a store at once, on the indexed columns.

Each rule becomes a mask from lookup tables over the distinct values of a column (users,
groups, verbs, API groups, resources, namespaces); the first rule whose mask holds decides, as
in the checker. ``objectRef`` carries the API server's own request info (group, resource,
subresource, namespace), so those columns stand for it; the name a ``resourceNames`` rule needs
and the path a ``nonResourceURLs`` rule needs are derived from ``requestURI``, once per distinct
URI, and only when some rule asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..index.evaluate import table_lut
from ..ingest.requestinfo import parse_uri, url_path
from .model import LEVELS, GroupResources, Policy, Rule, resource_matches, url_matches

if TYPE_CHECKING:
    from ..index.store import Events, Store, TableValues

NO_RULE = -1


def decide(policy: Policy, store: Events) -> np.ndarray:
    """The index of the matching rule for every event (``NO_RULE`` where none matches)."""
    n = len(store)
    out = np.full(n, NO_RULE, dtype=np.int16)
    open_ = np.ones(n, dtype=bool)
    ctx = _Columns(store)
    for k, rule in enumerate(policy.rules):
        mask = _rule_mask(rule, ctx) & open_
        out[mask] = k
        open_ &= ~mask
        if not open_.any():
            break
    return out


class RuleField:
    """``rule:N`` in queries: the events whose matching rule is N (``rule:none``: no rule),
    decided again whenever the store has grown."""

    def __init__(self, policy: Policy, store: Store) -> None:
        self.policy, self.store = policy, store
        self._decided = np.empty(0, dtype=np.int16)

    def decided(self) -> np.ndarray:
        """Decided for the events appended since the last call only."""
        from ..index.store import Window

        done, n = len(self._decided), len(self.store)
        if n > done:
            new = decide(self.policy, Window(self.store, done, n))
            self._decided = np.concatenate([self._decided, new])
        return self._decided

    def rows(self, predicate: Callable[[str], bool]) -> np.ndarray:
        names = ["none", *map(str, range(len(self.policy.rules)))]
        wanted = np.array([predicate(name) for name in names], dtype=bool)
        return np.flatnonzero(wanted[self.decided() + 1])


def attach(policy: Policy, store: Store) -> RuleField:
    """Make ``rule:N`` queries over ``store`` select the events ``policy``'s rule N matches."""
    field = RuleField(policy, store)
    store.derived["rule"] = field.rows
    return field


def levels(policy: Policy, decided: np.ndarray) -> np.ndarray:
    """Per event, the level name's index in LEVELS (0 "None" where no rule matches)."""
    lut = np.array([LEVELS.index(r.level) for r in policy.rules] + [0], dtype=np.int8)
    return lut[decided]  # NO_RULE (-1) picks the trailing 0


def logged_levels(store: Events, n: int) -> np.ndarray:
    """Per event, the index in LEVELS of the level it was logged at (-1 when unknown)."""
    values = store.tables["level"].values
    lut = np.array([LEVELS.index(v) if v in LEVELS else -1 for v in values], dtype=np.int8)
    return lut[store.column("level")[:n]]


def omitted(policy: Policy, store: Events, decided: np.ndarray) -> np.ndarray:
    """Events logged at a stage that their deciding rule (or, with no rule, the policy)
    omits."""
    stage_values = store.tables["stage"].values
    stages = store.column("stage")[: len(decided)]
    out = np.zeros(len(decided), dtype=bool)
    for k, off in [*enumerate(r.omit_stages for r in policy.rules), (NO_RULE, policy.omit_stages)]:
        if off:
            lut = np.array([v in off for v in stage_values], dtype=bool)
            out |= lut[stages] & (decided == k)
    return out


class _Columns:
    """Lookup tables over one store's columns, computed once per distinct value."""

    def __init__(self, store: Events) -> None:
        self.store = store
        self.n = len(store)
        self._cache: dict[Any, np.ndarray] = {}
        self._uris: list | None = None

    def lut(self, column: str, test: Callable[[Any], bool], key: Any) -> np.ndarray:
        """``test`` over the column's distinct values, gathered for the events; the table's
        answers are kept with the table (it only grows), so a growing store pays for new
        values only: a live ``rule:N`` filter does not parse every URI again."""
        full = (column, key)
        if full not in self._cache:

            def compute(values: TableValues, start: int) -> np.ndarray:
                return np.fromiter(map(test, values[start:]), dtype=bool, count=len(values) - start)

            table = table_lut(self.store.tables[column], ("policy", key), compute)
            self._cache[full] = table[self.store.column(column)[: self.n]]
        return self._cache[full]

    def resource_request(self) -> np.ndarray:
        return self.lut("api", lambda v: v is not None, "resource-request")

    def uri_info(
        self, derive: Callable[[str], Any], test: Callable[[Any], bool], key: Any
    ) -> np.ndarray:
        """A test on what ``derive`` makes of each distinct URI."""
        return self.lut("uri", lambda uri: uri is not None and test(derive(uri)), key)


def _in(values: tuple[str, ...]) -> Callable[[Any], bool]:
    wanted = set(values)
    return lambda v: v in wanted


def _rule_mask(rule: Rule, c: _Columns) -> np.ndarray:
    mask = np.ones(c.n, dtype=bool)
    if rule.users:
        mask &= c.lut("user", _in(rule.users), ("users", rule.users))
    if rule.user_groups:
        wanted = set(rule.user_groups)
        groups = c.lut("groups", lambda g: bool(g) and not wanted.isdisjoint(g), rule.user_groups)
        mask &= groups & c.lut("user", lambda u: u is not None, "has-user")
    if rule.verbs:
        mask &= c.lut("verb", _in(rule.verbs), ("verbs", rule.verbs))
    if rule.namespaces or rule.resources:
        mask &= c.resource_request()
        if rule.namespaces:
            wanted = set(rule.namespaces)
            mask &= c.lut("namespace", lambda v: (v or "") in wanted, ("ns", rule.namespaces))
        if rule.resources:
            any_group = np.zeros(c.n, dtype=bool)
            for gr in rule.resources:
                any_group |= _group_mask(gr, c)
            mask &= any_group
        return mask
    if rule.non_resource_urls:
        urls = rule.non_resource_urls

        def path_matches(path: str) -> bool:
            return any(url_matches(u, path) for u in urls)

        return mask & ~c.resource_request() & c.uri_info(url_path, path_matches, urls)
    return mask


def _group_mask(gr: GroupResources, c: _Columns) -> np.ndarray:
    mask = c.lut("api", lambda v: v is not None and gr.group in ("*", v), ("group", gr.group))
    if not gr.resources:
        return mask
    if gr.resource_names:
        # The name in the URL path; a list or watch's from its fieldSelector (requestinfo.go).
        names, key = set(gr.resource_names), gr.resource_names
        in_path = c.uri_info(
            lambda u: parse_uri(u, "").name, names.__contains__, ("path-name", key)
        )
        in_selector = c.uri_info(
            lambda u: parse_uri(u, "").selector_name, names.__contains__, ("sel-name", key)
        )
        listing = c.lut("verb", _in(("list", "watch")), ("verbs", ("list", "watch")))
        mask = mask & (in_path | (in_selector & listing))
    store = c.store
    res_values = store.tables["resource"].values
    sub_values = store.tables["subresource"].values
    # Decide per (resource, subresource) pair of codes: both tables are small.
    pair = np.zeros((len(res_values), len(sub_values)), dtype=bool)
    for r, res in enumerate(res_values):
        for s, sub in enumerate(sub_values):
            pair[r, s] = resource_matches(gr.resources, res or "", sub or "")
    codes = store.column("resource")[: c.n], store.column("subresource")[: c.n]
    return mask & pair[codes]
