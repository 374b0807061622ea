"""A store's selected events copied into a private in-memory index, for the Python analyses
that need whole events (a finding's JMESPath conditions and windows, a policy's decision, an
object's diffs, a subject's requests): the rows a question selects are fetched in pages into a
private JSON-lines file in the order the shipper read them and read into a
:class:`~audittui.index.store.Store`, so memory is bounded by the selection, not by the table.

The selection the findings engine needs (:func:`selection`, :func:`facts`) is here until the
pack runs as SQL on the server.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..clickhouse.reads import Key, Reader, StoredEvent
from ..clickhouse.sql import PRESENT_TIME, SqlError, Where, compile_node
from ..findings import Rule
from ..findings.engine import BODY_LEVELS
from ..index.loader import load
from ..index.query import And, Node, Not, Or, Term, Text, Value, parse
from ..index.store import Store
from ..ingest import scratch
from ..ingest.schema import COMPLETE

# Rows per page when fetching for the engines: each page runs the whole filter again on the
# server (the keyset bounds only time), so pages are big; a page is a few MB of raw events.
FETCH_PAGE = 5_000


def selection(reader: Reader, rules: list[Rule]) -> Where:
    """A superset of the events the rules can match: any rule's query in one of its stages
    (the engine applies every condition again in Python, so more is only slower, never wrong).
    A rule whose query SQL cannot express (an RE2-less regex) makes it every event."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for k, rule in enumerate(rules):
        node = _widened(rule.node)
        try:
            query = compile_node(node, modern=reader.modern, prefix=f"r{k}_")
        except SqlError:
            return Where("1")
        stages = []
        for n, stage in enumerate(rule.stages):
            params[f"s{k}_{n}"] = stage
            stages.append(f"stage = {{s{k}_{n}:String}}")
        if COMPLETE in rule.stages:
            stages.append("stage = ''")  # no stage (old or cloud shapes) counts as complete
        params.update(query.params)
        parts.append(f"(({query.sql}) AND ({' OR '.join(stages) or '1'}))")
    if any(r.role_grants is not None for r in rules):
        # the roles' bodies, which say what the role behind an event grants
        bodies = _where(reader, "api:rbac.authorization.k8s.io resource:roles,clusterroles", "b_")
        parts.append(f"({bodies.sql})")
        params.update(bodies.params)
    return Where(f"({' OR '.join(parts) or '0'})", params)  # parenthesised: reads add AND terms


def _widened(node: Node | None) -> Node | None:
    """A rule's query without what only narrows it further (negations, free text): what
    remains selects a superset, in a statement a server takes whole (the pack's exclusion lists
    written out made one OR of every rule past ClickHouse's 50,000 syntax elements). None:
    every event."""
    if node is None or isinstance(node, Not | Text):
        return None
    if isinstance(node, And):
        kept = [c for c in (_widened(c) for c in node.nodes) if c is not None]
        return None if not kept else kept[0] if len(kept) == 1 else And(tuple(kept))
    if isinstance(node, Or):
        alternatives = [_widened(c) for c in node.nodes]
        if any(a is None for a in alternatives):
            return None
        return Or(tuple(a for a in alternatives if a is not None))
    return node


def _where(reader: Reader, text: str | Node, prefix: str) -> Where:
    return compile_node(parse(text) if isinstance(text, str) else text, reader.modern, prefix)


def facts(reader: Reader, rules: list[Rule]) -> list[tuple[Where, bool]]:
    """Filters of which one event each (both ends when True: the span) is fetched besides the
    selection, so that what the engine judges over the whole log to call a rule blind (the
    span, any credential id, any RBAC reason, any body of a kind) is judged as over the whole
    table. An event that matches no rule changes no finding."""
    facts = [(Where(PRESENT_TIME), True)]
    if any("credential" in r.needs for r in rules):
        facts.append((Where("credential IS NOT NULL"), False))
    if any("reason" in r.needs for r in rules):
        facts.append((_where(reader, "authorizer:RBAC", "a_"), False))
    asked: set[tuple[str, frozenset[str]]] = set()  # rules share their kinds: asked once
    for k, rule in enumerate(rules):
        body = next((b for b in rule.needs if b in BODY_LEVELS), None)
        resources = _resources(rule.node)
        if body is None or (body, frozenset(resources)) in asked:
            continue
        asked.add((body, frozenset(resources)))
        levels = Term("level", tuple(Value("exact", v) for v in BODY_LEVELS[body]), 0)
        scope: Node | None = None
        if resources:
            scope = Term("resource", tuple(Value("exact", r) for r in sorted(resources)), 0)
            facts.append((_where(reader, scope, f"f{k}_"), False))
        node = levels if scope is None else And((scope, levels))
        facts.append((_where(reader, node, f"l{k}_"), False))
    return facts


def _resources(node: Node | None) -> set[str]:
    """Exact resource names a query requires (as findings.engine reads them for blindness)."""
    if isinstance(node, Term) and node.field == "resource":
        return {v.text.split("/")[0] for v in node.values if v.kind == "exact"}
    if isinstance(node, And):
        return set().union(*(_resources(child) for child in node.nodes))
    return set()


class Fetched:
    """The selected events (and one event per fact) read into a :class:`Store` of a private
    file, in the order the shipper read them (by source, then byte offset), so that ties
    (equal times, a group's example) fall as over the files themselves."""

    def __init__(self, reader: Reader, where: Where, facts: list[tuple[Where, bool]]) -> None:
        self.folder = scratch.make("store")
        self.store: Store | None = None
        try:
            self.store = self._fetch(reader, where, facts)
        except BaseException:
            scratch.remove(self.folder)
            raise

    def _fetch(self, reader: Reader, where: Where, facts: list[tuple[Where, bool]]) -> Store:
        extra: dict[Key, StoredEvent] = {}
        for fact, ends in facts:
            last = reader.page(fact, limit=1, descending=True) if ends else []
            for e in reader.page(fact, limit=1) + last:
                extra[e.key] = e
        sources: dict[str, int] = {}
        order: list[tuple[int, int, int, int]] = []  # (source, offset, position, length)
        fetched = os.path.join(self.folder, "fetched.jsonl")
        with open(fetched, "wb") as fh:
            pos = 0

            def write(events: Iterable[StoredEvent]) -> None:
                nonlocal pos
                for e in events:
                    line = e.raw + b"\n"
                    src = sources.setdefault(e.value("source") or "", len(sources))
                    order.append((src, int(e.value("offset") or 0), pos, len(line)))
                    fh.write(line)
                    pos += len(line)

            for page in reader.pages(where, size=FETCH_PAGE):
                write(page)
                for e in page:  # selected anyway: not written twice
                    extra.pop(e.key, None)
            write(extra.values())
        table = np.array(order, dtype=np.int64).reshape(-1, 4)
        ranked = np.lexsort((table[:, 1], table[:, 0]))  # stable: key order within a record
        path = os.path.join(self.folder, "audit.log")
        with open(fetched, "rb") as src_fh, open(path, "wb") as fh:
            for k in ranked.tolist():
                fh.write(os.pread(src_fh.fileno(), int(table[k, 3]), int(table[k, 2])))
        os.unlink(fetched)
        return load(path)

    def __enter__(self) -> Store:
        assert self.store is not None
        return self.store

    def __exit__(self, *_: object) -> None:
        if self.store is not None:
            self.store.close()
        scratch.remove(self.folder)
