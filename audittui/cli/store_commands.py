"""``query``, ``summary``, ``findings``, ``stats`` and ``policy check`` over a ClickHouse store URL
(``clickhouse://HOST:8123/DB?table=T`` or ``chdb:///FOLDER``) given in place of PATHs.

What the server can compute, it does: the query language compiled to SQL, the count, the
summary. ``query`` streams pages fetched by keyset, each event printed from its stored raw JSON
as the file path prints it from the file. ``findings`` and ``policy check`` need the Python
engines (JMESPath conditions, windows, first-seen state, the policy decision): the events the
rules' queries select (every event for a policy) are fetched in pages into a private JSON-lines
file, read into an in-memory :class:`~audittui.index.store.Store` and handed to the same code
as files are, so memory is bounded by the selection, not by the table.

Output formats are those of the file path (the printers of :mod:`.main` are passed in:
``main`` imports this module, never the reverse). Errors are one line and exit 2, as for files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..analyses.summary import Summary
from ..clickhouse.client import StoreError
from ..clickhouse.reads import (
    FOLLOW_EVERY,
    LATE,
    PAGE,
    Key,
    Reader,
    StoredEvent,
    late_key,
    open_reader,
)
from ..clickhouse.sql import PRESENT_TIME, SqlError, Where, compile_node
from ..clickhouse.url import BadURL, exposed, is_store_url
from ..clickhouse.url import parse as parse_url
from ..findings import Rule, load_rules
from ..findings.engine import BODY_LEVELS
from ..index.loader import load
from ..index.store import Store
from ..ingest import scratch
from ..ingest.formats import MISSING_TIME
from ..ingest.schema import COMPLETE
from ..output.terminal import Out, event_json, fail, stdout, table_header, table_row, warn
from ..policy import Policy
from ..query.syntax import And, Node, Not, Or, QueryError, Term, Text, Value, parse

# What runs on a store; the other commands read files (said in one line).
SUPPORTED = ("query", "summary", "findings", "stats", "policy check")
# Rows per page when fetching for the engines: each page runs the whole filter again on the
# server (the keyset bounds only time), so pages are big; a page is a few MB of raw events.
FETCH_PAGE = 5_000


@dataclass(frozen=True)
class Printers:
    """The file path's printers (cli.main's), run here on what the store gives."""

    summary: Callable[[Any, argparse.Namespace, Out], None]
    findings: Callable[..., int]
    policy_check: Callable[[Store, Policy, argparse.Namespace, Out], int]


def on_store(args: argparse.Namespace) -> bool:
    """Does the command name a store URL among its PATHs?"""
    return any(is_store_url(p) for p in getattr(args, "paths", None) or ())


def run(args: argparse.Namespace, policy: Policy | None, printers: Printers) -> int:
    """Run the command on the one store URL of ``args.paths``; its exit status."""
    if len(args.paths) != 1:
        return fail("give one store URL, or files: not a store with files, not two stores")
    command = args.command + (f" {args.policy_command}" if args.command == "policy" else "")
    if command not in SUPPORTED:
        return fail(
            f"{command} does not run on a store yet (it reads files): {', '.join(SUPPORTED)} do"
        )
    if command == "stats" and args.malformed:
        return fail("a store holds no malformed lines: ship said what it skipped when it read them")
    url = args.paths[0]
    try:
        target = parse_url(url)
        display = target.display
        reader = open_reader(url)
    except (BadURL, StoreError) as exc:
        return fail(_one_line(exc))
    if (warning := exposed(target)) is not None:  # once it worked: a failure stays one line
        warn("{}", warning)
    out = stdout()
    try:
        with reader:
            if command == "query":
                return _query(reader, display, args, out)
            if command == "summary":
                return _summary(reader, display, args, out, printers)
            if command == "findings":
                return _findings(reader, display, args, out, printers)
            if command == "stats":
                return _stats(reader, display, args, out)
            assert policy is not None  # read by main: policy check takes a POLICY
            return _policy_check(reader, display, policy, args, out, printers)
    except (QueryError, SqlError) as exc:
        return fail(f"bad query: {_one_line(exc)}")
    except (BadURL, StoreError) as exc:
        return fail(_one_line(exc))
    except BrokenPipeError:
        # The reader went away (| head): not an error. Keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the private copy of the selection (a full disk, TMPDIR unwritable)
        return fail(f"cannot copy the store's events to read them: {_one_line(exc)}")


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _empty(reader: Reader, display: str) -> int | None:
    """Exit 2 when the store holds no event at all (reading nothing is an error, as for files);
    None when it holds some."""
    if reader.count() == 0:
        return fail(f"{display}: empty, no audit event read")
    return None


# -- query ---------------------------------------------------------------------------------


class _Page:
    """One page of stored events with the :class:`Store` methods the printers call
    (``value``, ``raw``), so that a row prints exactly as the file path prints it."""

    def __init__(self, events: list[StoredEvent]) -> None:
        self.events = events

    def value(self, name: str, i: int) -> Any:
        return self.events[i].value(name)

    def raw(self, i: int) -> bytes:
        return self.events[i].raw


def _lines(events: list[StoredEvent], fmt: str, mask: bool) -> Iterator[bytes]:
    """Each event as the file path prints it. ``wrapper``: a store keeps the event, not what
    it was read from, so each is its own JSON line (as an event read bare is on files)."""
    page = cast(Store, _Page(events))
    for i in range(len(events)):
        if fmt == "table":
            yield table_row(page, i).encode() + b"\n"
        else:
            yield event_json(page, i, mask) + b"\n"


def _query(reader: Reader, display: str, args: argparse.Namespace, out: Out) -> int:
    where = reader.where(args.query)
    mask = not args.reveal
    if args.follow:
        if args.format not in ("jsonl", "table"):
            return fail("--follow prints jsonl or table")
        return _follow(reader, where, args, out, mask)
    if args.format == "count":
        n = reader.count(where)
        if not n and (status := _empty(reader, display)) is not None:
            return status
        out.line("{}", n)
        return 0
    pages = reader.pages(where, size=FETCH_PAGE)
    first = next(pages, [])
    if not first and (status := _empty(reader, display)) is not None:
        return status
    every = _chain([first], pages)
    if args.format == "json":
        out.chunks(_json_array(every, mask))
        return 0
    if args.format == "table":
        out.line(table_header())
    fmt = "table" if args.format == "table" else "jsonl"
    out.chunks(line for page in every for line in _lines(page, fmt, mask))
    return 0


def _chain(
    head: list[list[StoredEvent]], rest: Iterator[list[StoredEvent]]
) -> Iterator[list[StoredEvent]]:
    yield from (page for page in head if page)
    yield from rest


def _json_array(pages: Iterable[list[StoredEvent]], mask: bool) -> Iterator[bytes]:
    yield b"["
    comma = b""
    for page in pages:
        for line in _lines(page, "jsonl", mask):
            yield comma + line[:-1]
            comma = b","
    yield b"]\n"


def _follow(reader: Reader, where: Where, args: argparse.Namespace, out: Out, mask: bool) -> int:
    """The existing matches, then every FOLLOW_EVERY the rows from LATE before the newest one
    printed on (as the app polls), less those already printed. Runs until interrupted."""
    fmt = args.format
    if fmt == "table":
        out.line(table_header())
    shown: dict[Key, int] = {}  # key → time of what was printed within LATE of the newest
    newest = MISSING_TIME
    after: Key | None = None
    down = False
    try:
        while True:
            try:
                for page in reader.pages(where) if after is None else _since(reader, where, after):
                    fresh = [e for e in page if e.key not in shown]
                    for e in fresh:
                        shown[e.key] = e.key[0]
                        newest = max(newest, e.key[0])
                    out.chunks(_lines(fresh, fmt, mask))
                    _forget(shown, newest)  # per page: a first pass over a big table too
                if down:
                    warn("{}: reachable again", parse_url(args.paths[0]).display)
                down = False
            except StoreError as exc:
                if not exc.retryable:
                    raise
                if not down:  # a store that stays down is said once, not at every poll
                    warn("{} (retrying)", _one_line(exc))
                down = True
            if newest != MISSING_TIME:  # else nothing timed yet: everything is read again
                after = late_key(newest)
            time.sleep(FOLLOW_EVERY)  # a poll interval, as tail -F's: nothing to await
    except KeyboardInterrupt:
        return 0


def _forget(shown: dict[Key, int], newest: int) -> None:
    """Drop the keys before the next poll's range (LATE before ``newest``): never met again."""
    if newest != MISSING_TIME:
        for key in [k for k, t in shown.items() if t < newest - LATE]:
            del shown[key]


def _since(reader: Reader, where: Where, after: Key) -> Iterator[list[StoredEvent]]:
    key: Key | None = after
    while key is not None:
        page = reader.page(where, after_key=key, limit=PAGE)
        if page:
            yield page
        key = page[-1].key if len(page) == PAGE else None


# -- summary -------------------------------------------------------------------------------


class _Summaries:
    """What :func:`cli.main._summary` asks of a store (``summary(by, query, top, latency)``),
    answered by the server: its rows streamed, or the top ones with the rest counted there."""

    def __init__(self, reader: Reader, where: Where) -> None:
        self.reader = reader
        self.where = where

    def summary(
        self, by: str = "user", query: str = "", top: int | None = None, latency: bool = False
    ) -> Summary:
        return self.reader.summary(by, self.where, top, latency)


def _summary(
    reader: Reader, display: str, args: argparse.Namespace, out: Out, printers: Printers
) -> int:
    where = reader.where(args.query)  # a bad query is said before anything is printed
    if (status := _empty(reader, display)) is not None:
        return status
    printers.summary(_Summaries(reader, where), args, out)
    return 0


# -- stats ---------------------------------------------------------------------------------


def _stats(reader: Reader, display: str, args: argparse.Namespace, out: Out) -> int:
    info = reader.stats()
    if not info["events"]:
        return fail(f"{display}: empty, no audit event read")
    sources = reader.source_counts()
    if args.format == "json":
        # The file path's keys; malformed and ignored are unknown here (null): the store holds
        # the events ship kept, and ship reported the lines it skipped when it read them.
        out.json(
            {
                "events": info["events"],
                "malformed": None,
                "ignored": None,
                "files": info["files"],
                "first": info["first"],
                "last": info["last"],
                "store": display,
                "clusters": info["clusters"],
                "sources": sources,
            }
        )
        return 0
    out.line("events      {:,}", info["events"])
    out.line("malformed   - (a store holds the events ship kept; it said what it skipped)")
    out.line("first       {}", info["first"] or "-")
    out.line("last        {}", info["last"] or "-")
    out.line("store       {}", display)
    clusters: dict[str, int] = {}
    for s in sources:
        clusters[s["cluster"]] = clusters.get(s["cluster"], 0) + s["events"]
    named = {c: n for c, n in clusters.items() if c}
    out.line("clusters    {}", len(named))
    out.lines("  {:>12,}  {}", ((n, c) for c, n in sorted(named.items())))
    out.line("files       {}", len(info["files"]))
    out.lines(
        "  {:>12,}  {}{}",
        ((s["events"], f"{s['cluster']}: " if s["cluster"] else "", s["source"]) for s in sources),
    )
    return 0


# -- findings and policy check: the Python engines on the selected events ------------------


def _findings(
    reader: Reader, display: str, args: argparse.Namespace, out: Out, printers: Printers
) -> int:
    total = reader.count()
    if not total:
        return fail(f"{display}: empty, no audit event read")
    choice = getattr(args, "rules", None)
    # Read quietly: the printer reads them again and says their problems once.
    rules = load_rules(False if choice == "none" else Path(choice) if choice else True).rules
    rules = [r for r in rules if r.enabled]
    with _Fetched(reader, _selection(reader, rules), _facts(reader, rules)) as store:
        return int(printers.findings(store, args, out, total))


def _policy_check(
    reader: Reader,
    display: str,
    policy: Policy,
    args: argparse.Namespace,
    out: Out,
    printers: Printers,
) -> int:
    if (status := _empty(reader, display)) is not None:
        return status
    with _Fetched(reader, Where("1"), []) as store:  # a policy decides on every event
        return printers.policy_check(store, policy, args, out)


def _selection(reader: Reader, rules: list[Rule]) -> Where:
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


def _facts(reader: Reader, rules: list[Rule]) -> list[tuple[Where, bool]]:
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


class _Fetched:
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
