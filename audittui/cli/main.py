"""Headless commands over the same core the TUI uses: query, summary, findings, stats.

Exit status: 0 on success, 1 when ``findings`` found something at or above its threshold, 2 on
a bad query, an unreadable path or bad usage (with a one-line message on stderr). When lines
were skipped as malformed, a one-line note goes to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from .. import __version__
from ..analyses.rbac import dump_yaml, list_document, render_yaml, service_account_user
from ..analyses.rbac_diff import diff_document
from ..analyses.summary import GROUPINGS, Summary
from ..backend.memory import MemoryBackend
from ..backend.open import empty, is_store, open_backend
from ..backend.protocol import Backend, Row, Unsupported
from ..clickhouse.client import StoreError
from ..clickhouse.sql import SqlError
from ..clickhouse.url import BadURL
from ..findings import SEVERITIES, RuleSet, load_rules, user_rules_path
from ..index.store import Store
from ..ingest.formats import format_duration, format_time
from ..ingest.malformed import SAMPLE
from ..ingest.remote import add_options as add_remote_options
from ..ingest.sources import InputError
from ..output.changes import history_lines
from ..output.findings import finding_document, rule_document, rule_table
from ..output.inert import inert
from ..output.terminal import (
    PROG,
    Out,
    Printable,
    event_json,
    fail,
    read_policy,
    stdout,
    table_header,
    table_row,
    warn,
    wrapper_lines,
)
from ..output.terminal import cell as _cell
from ..policy import Policy
from ..policy.simulate import format_bytes as _size
from ..policy.simulate import format_change as _change
from ..query.syntax import QueryError, fields_of, parse
from . import ship_command, webhook_command
from .follow_store import follow_backend
from .options import add_follow_options, at_least
from .printed import Printed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read, filter and summarise Kubernetes API-server audit logs.",
        epilog="PATH is a file (plain or gzip), a folder (audit.log plus its rotated "
        "backups, oldest first) or - for standard input. Without a command, `audittui "
        "PATH…` opens the terminal app (audittui --demo shows it on live demo logs; "
        "see audittui --demo --help).",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("query", help="print matching events in event-time order")
    q.add_argument("-q", "--query", default="", help="filter (see README, Query language)")
    q.add_argument(
        "--format",
        choices=("jsonl", "table", "json", "count", "wrapper"),
        default="table",
        help="wrapper: what each event was read from (CRI line, GKE entry…), once per record",
    )
    q.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="after the existing matches, print new ones as they are written (jsonl or table)",
    )
    q.add_argument(
        "--policy",
        metavar="FILE",
        help="an audit policy, for rule:N (the events its rule N matches)",
    )
    q.add_argument(
        "--reveal",
        action="store_true",
        help="print Secret data, tokens and passwords as logged (jsonl, json, wrapper: masked "
        "by default)",
    )
    q.add_argument("paths", nargs="+", metavar="PATH")
    add_follow_options(q)  # --backups, --poll, --recursive (as `ship`)
    add_remote_options(q)

    s = sub.add_parser("summary", help="one row per user (or verb, resource, ...)")
    s.add_argument("-q", "--query", default="")
    s.add_argument("--by", choices=tuple(GROUPINGS), default="user")
    s.add_argument("--format", choices=("table", "json", "csv"), default="table")
    s.add_argument(
        "--latency",
        action="store_true",
        help="request latency per key instead: p50/p95/p99/max, slowest p95 first "
        "(long-running requests such as watch, exec and followed logs are left out)",
    )
    s.add_argument(
        "--top",
        type=at_least(1),
        metavar="N",
        help="only the N keys with the most events (with --latency: the slowest); one last row "
        "counts the others and their events (default: every key)",
    )
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(s)

    fd = sub.add_parser(
        "findings",
        help="run the detection rules; exit 1 when a finding at or above --min-severity exists",
    )
    fd.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="low",
        help="report (and fail on) findings at least this severe (default: low)",
    )
    fd.add_argument("--format", choices=("table", "json"), default="table")
    fd.add_argument(
        "--rules",
        metavar="FILE",
        help=f"your rules file (default: {user_rules_path()}); --rules none for the pack alone",
    )
    fd.add_argument("--list", action="store_true", help="list the rules in effect and exit")
    fd.add_argument("paths", nargs="*", metavar="PATH")
    fd.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(fd)

    pol = sub.add_parser("policy", help="the audit-policy lab (see README, Policy lab)")
    pol_sub = pol.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    pc = pol_sub.add_parser(
        "check",
        help="assume POLICY produced the log: list the events it disagrees with "
        "(exit 1 when there are any)",
    )
    pc.add_argument("policy", metavar="POLICY")
    pc.add_argument("--format", choices=("table", "json"), default="table")
    pc.add_argument("paths", nargs="+", metavar="PATH")
    pc.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(pc)
    ps = pol_sub.add_parser(
        "simulate",
        help="what a candidate POLICY would log of this traffic: per rule, events kept and "
        "dropped, bytes against now, and the findings it would blind",
    )
    ps.add_argument("policy", metavar="POLICY")
    ps.add_argument("--format", choices=("table", "json"), default="table")
    ps.add_argument("--rules", metavar="FILE", help="findings rules file (as for findings)")
    ps.add_argument("paths", nargs="+", metavar="PATH")
    ps.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(ps)
    pg = pol_sub.add_parser(
        "suggest",
        help="the noisiest (user, verb, resource) combinations by bytes, each with a rule "
        "to paste (level None or Metadata) and what it saves",
    )
    pg.add_argument("--top", type=int, default=10, help="how many (default 10)")
    pg.add_argument("--format", choices=("yaml", "json"), default="yaml")
    pg.add_argument("--rules", metavar="FILE", help="findings rules file (as for findings)")
    pg.add_argument("paths", nargs="+", metavar="PATH")
    pg.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(pg)

    hi = sub.add_parser(
        "history", help="one object's events in time order, with what each write changed"
    )
    hi.add_argument("object", metavar="RESOURCE[/SUB]", help="pods, deployments/scale, …")
    hi.add_argument("target", metavar="NS/NAME", help="its namespace and name (-/NAME: cluster)")
    hi.add_argument("--format", choices=("text", "json"), default="text")
    hi.add_argument("--reads", action="store_true", help="reads (get) too, not only writes")
    hi.add_argument(
        "--all-fields",
        action="store_true",
        help="diff managedFields, resourceVersion and timestamps too",
    )
    hi.add_argument("--reveal", action="store_true", help="Secret data unmasked in diffs")
    hi.add_argument("paths", nargs="+", metavar="PATH")
    hi.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(hi)

    rb = sub.add_parser(
        "rbac",
        help="least-privilege Roles, ClusterRoles and bindings for what one subject did "
        "(audit2rbac-compatible; see README, Least privilege)",
    )
    who = rb.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="NAME", help="the user (the impersonated one, if any)")
    who.add_argument(
        "--serviceaccount", metavar="NS:NAME", help="a service account: NAMESPACE:NAME"
    )
    rb.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="only events in this namespace (objectRef.namespace: no non-resource requests)",
    )
    rb.add_argument("--format", choices=("yaml", "json"), default="yaml")
    rb.add_argument(
        "--clean",
        action="store_true",
        help="beyond audit2rbac: URLs without their query, extensions resources in their "
        "current group, API versions not compared, denied requests left out, --counts",
    )
    rb.add_argument(
        "--include-denied",
        action="store_true",
        help="with --clean, keep denied requests (401, 403, decision forbid)",
    )
    rb.add_argument(
        "--counts",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each rule's events and first/last seen as a YAML comment (default: with --clean)",
    )
    rb.add_argument(
        "--diff",
        action="store_true",
        help="instead: the roles that granted its requests (from the reason annotations), "
        "with their rules it used and never used where the log holds their bodies",
    )
    rb.add_argument("paths", nargs="+", metavar="PATH")
    rb.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(rb)

    st = sub.add_parser("stats", help="events, malformed lines, files, time span")
    st.add_argument("--format", choices=("text", "json"), default="text")
    st.add_argument("--malformed", action="store_true", help="list every malformed line")
    st.add_argument("paths", nargs="+", metavar="PATH")
    st.add_argument("--recursive", action="store_true", help="read subfolders too")
    add_remote_options(st)
    webhook_command.add_parser(sub)  # a server: reads no PATH, dispatched before any load
    ship_command.add_parser(sub)  # follows its PATHs itself, dispatched before any load
    return p


COMMANDS = (
    "query", "summary", "findings", "policy", "history", "rbac", "stats", "webhook", "ship"
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (``audittui COMMAND …``); the app is opened by :mod:`audittui.command`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["history"]:  # -/NAME (a cluster-scoped object) is a value, not an option
        argv = [CLUSTER_SCOPED + a[1:] if a.startswith("-/") else a for a in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "webhook":
        return webhook_command.run(args)
    if args.command == "ship":
        return ship_command.run(args)
    if args.command == "findings" and (args.list or not args.paths):
        if not args.list:
            parser.error("findings: give a PATH (or --list)")
        return _list_rules(args, stdout())
    used: set[str] = set()
    if getattr(args, "query", ""):
        try:
            used = set(fields_of(parse(args.query)))  # fail fast, before reading a gigabyte
        except QueryError as exc:
            return fail(f"bad query: {exc}")
    if args.command == "query" and "rule" in used and (args.follow or not args.policy):
        return fail("rule:N needs --policy FILE, and cannot be followed")
    if args.command == "rbac" and args.serviceaccount is not None:
        args.user = service_account_user(args.serviceaccount)
        if args.user is None:
            return fail("rbac: --serviceaccount must be NAMESPACE:NAME")
    policy = None
    if getattr(args, "policy", None):  # query --policy, policy check / simulate
        policy = read_policy(args.policy)
        if policy is None:
            return 2
    on_store = is_store(args.paths)
    if args.command == "query" and args.follow and not on_store:
        from .follow_query import follow_query

        return follow_query(args)
    if on_store and args.command == "stats" and args.malformed:
        return fail("a store holds no malformed lines: ship said what it skipped when it read them")
    try:
        backend = open_backend(
            args.paths,
            recursive=getattr(args, "recursive", False),
            ssh_command=args.ssh_command,
            sudo=args.sudo,
            warn=lambda line: warn("{}", line),
        )
    except (InputError, BadURL, StoreError) as exc:
        return fail(_one_line(exc))
    try:
        with closing(backend):
            return _run(backend, args, policy, used)
    except (QueryError, SqlError) as exc:
        return fail(f"bad query: {_one_line(exc)}")
    except (BadURL, StoreError, Unsupported) as exc:
        return fail(_one_line(exc))
    except BrokenPipeError:
        # The reader went away (| head): not an error. Keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a store's private copy of a selection (a full disk, TMPDIR)
        return fail(f"cannot copy the store's events to read them: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(backend: Backend, args: argparse.Namespace, policy: Policy | None, used: set[str]) -> int:
    """Run the command over ``backend``; its exit status."""
    memory = backend.store if isinstance(backend, MemoryBackend) else None
    if args.command == "query" and memory is None and "finding" in used:
        _derive(backend, "rules", None)  # says why not
    if args.command == "query" and args.follow:  # an empty table too: ship may start later
        return follow_backend(backend, args)
    nothing = empty(backend, args.paths)
    if nothing and not (args.command == "stats" and args.malformed):
        return fail(nothing)
    out = stdout()
    status = 2 if nothing else 0
    if args.command == "query":
        if policy is not None and "rule" in used:
            _derive(backend, "policy", policy)
        if "finding" in used:
            _derive(backend, "rules", _rule_set(args).rules)
        _query(backend, args, out)
    elif args.command == "history":
        status = _history(backend, args, out)
    elif args.command == "rbac":
        status = _rbac(backend, args, out)
    elif args.command == "summary":
        _summary(backend, args, out)
    elif args.command == "findings":
        status = _findings(backend, args, out)
    elif args.command == "policy" and args.policy_command == "check":
        assert policy is not None  # read above: check and simulate take a POLICY
        status = _policy_check(backend, policy, args, out)
    elif args.command == "policy" and args.policy_command == "simulate":
        assert policy is not None
        _policy_simulate(backend, policy, args, out)
    elif args.command == "policy":
        _policy_suggest(backend, args, out)
    else:
        _stats(backend, args, out)
    out.flush()
    if memory is not None:
        _malformed_note(memory, args)
    if nothing:
        fail(nothing)
    return status


def _derive(backend: Backend, what: str, value: Any) -> None:
    """A query field an analysis computes: rule:N from a policy (both backends: a store
    decides its distinct attribute tuples), finding:RULE from the rules (the in-memory index
    only: a store's findings name requests, not the events a rule matched; one line, exit 2)."""
    if what == "policy":
        backend.use_policy(value)
    elif isinstance(backend, MemoryBackend):
        backend.use_rules(value)
    else:
        raise Unsupported("finding: does not run on a store yet: query files for it")


def _malformed_note(store: Store, args: argparse.Namespace) -> None:
    count = len(store.malformed)
    if count and not (args.command == "stats" and args.malformed):
        where = " ".join(args.paths)
        plural = "s" * (count != 1)
        warn("skipped {:,} malformed line{} (list them: {} stats --malformed {})",
             count, plural, PROG, where)  # fmt: skip


# -- query --------------------------------------------------------------------------------


QUERY_PAGE = 5_000  # events per page printed (a store's page is one round trip)


def _query(backend: Backend, args: argparse.Namespace, out: Out) -> None:
    mask = not args.reveal
    if args.format == "count":
        out.line("{}", backend.count(args.query))
        return
    if args.format == "wrapper" and isinstance(backend, MemoryBackend):
        # what each event was read from; a store keeps the events, each its own JSON line
        out.chunks(wrapper_lines(backend.store, backend.rows(args.query), mask))
        return
    events = _events(backend, args.query, raw=args.format != "table")
    if args.format == "json":
        parts = (b"," + event_json(page, i, mask) for page, i in events)
        first = next(parts, None)
        head = [b"[", first[1:]] if first is not None else [b"["]
        out.chunks(itertools.chain(head, parts, [b"]\n"]))
    elif args.format == "table":
        out.line(table_header())
        out.chunks(table_row(page, i).encode() + b"\n" for page, i in events)
    else:  # jsonl, and wrapper on a store
        out.chunks(event_json(page, i, mask) + b"\n" for page, i in events)


def _events(backend: Backend, query: str, raw: bool) -> Iterator[tuple[Printable, int]]:
    """Every matching event in listing order, as (what holds it, its index there) for the
    printers: the in-memory store itself (its pages are free), or a store's pages by key."""
    if isinstance(backend, MemoryBackend):
        store = backend.store
        for i in backend.rows(query):
            yield store, i
        return
    for rows in _read_order(_pages(backend, query, raw)):
        page = Printed(rows)
        for i in range(len(rows)):
            yield page, i


def _pages(backend: Backend, query: str, raw: bool) -> Iterator[list[Row]]:
    after = None
    while True:
        rows = backend.page(query, after, False, QUERY_PAGE, raw=raw)
        yield rows
        if len(rows) < QUERY_PAGE:
            return
        after = rows[-1].key


def _read_order(pages: Iterator[list[Row]]) -> Iterator[list[Row]]:
    """Events of equal time in the order they were read (by source, then byte offset: a
    file's order, as files print them), not the store's key order; the last time of a page
    is held back until the next page shows it complete."""
    held: list[Row] = []
    for rows in pages:
        held += rows
        if not held:
            continue
        last = held[-1].key[0]
        cut = len(held)
        while cut and held[cut - 1].key[0] == last:
            cut -= 1
        if cut:
            yield _by_reading(held[:cut])
            held = held[cut:]
    if held:
        yield _by_reading(held)


def _by_reading(rows: list[Row]) -> list[Row]:
    """Sorted by (time, source, offset); stable, so one record's events keep their order."""
    return sorted(rows, key=lambda r: (r.key[0], r.values.get("source") or "",
                                       r.values.get("offset") or 0))  # fmt: skip


# -- findings ---------------------------------------------------------------------------


def _rule_set(args: argparse.Namespace) -> RuleSet:
    choice = getattr(args, "rules", None)
    rules = load_rules(False if choice == "none" else Path(choice) if choice else True)
    for problem in rules.problems:
        warn("rules: {}", problem)
    return rules


def _list_rules(args: argparse.Namespace, out: Out) -> int:
    rules = _rule_set(args).rules
    if args.format == "json":
        out.json({"rules": [rule_document(r) for r in rules]})
        return 0
    out.lines("{}", ([line] for line in rule_table(rules)))
    return 0


def _findings(backend: Backend, args: argparse.Namespace, out: Out) -> int:
    rules = [r for r in _rule_set(args).rules if r.enabled]
    answer = backend.findings(rules)
    limit = SEVERITIES.index(args.min_severity)
    results = [f for f in answer.fired if f.rule.rank <= limit]
    for rule_id, error in answer.errors.items():
        warn("rule {}: where failed: {}", rule_id, error)
    blind = answer.blind
    if args.format == "json":
        doc = {
            "findings": [finding_document(f) for f in results],
            "blind": [{"rule": r.id, "why": why} for r, why in blind],
        }
        out.json(doc)
    else:
        row = "{:<9} {:>7}  {:<19}  {:<28} {}"
        out.line(row, "SEVERITY", "COUNT", "LAST", "RULE", "USERS")
        for f in results:
            users = ", ".join(f.users[:3]) + (f" +{len(f.users) - 3}" if len(f.users) > 3 else "")
            last = format_time(f.last)[:19]
            out.line(row, f.rule.severity, f"{f.count:,}", last, f.rule.id, _cell(users, 60))
        out.line("{} finding(s) at {} or above ({} rules on {:,} events)",
                 len(results), args.min_severity, len(rules), answer.events)  # fmt: skip
        for r, why in blind:
            out.line("blind: {}: {}", r.id, why)
    return 1 if results else 0


# -- policy -----------------------------------------------------------------------------


# Rule numbers are the API server's own: indices into the policy's rules, from 0.
RULE_NUMBERS = "rule N is rules[N] of the policy file, counted from 0 (as rule:N filters)"


def _policy_check(backend: Backend, policy: Policy, args: argparse.Namespace, out: Out) -> int:
    answer = backend.policy_check(policy)
    groups = answer.disagreements
    if args.format == "json":
        doc = {
            "checked": answer.checked,
            "approximate": answer.approximate,
            "disagreements": [
                {
                    "rule": g.rule,
                    "policyLevel": g.expected,
                    "loggedLevel": g.logged,
                    "why": g.why,
                    "count": g.count,
                    "auditIDs": g.audit_ids,
                }
                for g in groups
            ],
        }
        out.json(doc)
        return 1 if groups else 0
    row = "{:>5} {:<15} {:<15} {:>8}  {}"
    out.line(row, "RULE", "POLICY", "LOGGED", "EVENTS", "WHY / EXAMPLE")
    for g in groups:
        rule = "-" if g.rule is None else str(g.rule)
        why = f"{g.why}: {_cell(g.example, 60)}"
        out.line(row, rule, g.expected, g.logged, f"{g.count:,}", why)
    total = sum(g.count for g in groups)
    approximate = answer.approximate
    incomplete = f"; {approximate:,} events too incomplete to check" if approximate else ""
    out.line("{:,} of {:,} events disagree with {}{}", total, answer.checked, args.policy,
             incomplete)  # fmt: skip
    if groups:
        out.line(RULE_NUMBERS)
    return 1 if groups else 0


def _policy_simulate(backend: Backend, policy: Policy, args: argparse.Namespace, out: Out) -> None:
    sim = backend.policy_simulate(policy, [r for r in _rule_set(args).rules if r.enabled])
    if args.format == "json":
        doc = {
            "bytesNow": sim.bytes_now,
            "bytesNew": sim.bytes_new,
            "rules": [
                {
                    "rule": e.rule,
                    "level": e.level,
                    "events": e.events,
                    "dropped": e.dropped,
                    "bytesNow": e.bytes_now,
                    "bytesNew": e.bytes_new,
                    "needBodiesNeverLogged": e.need_bodies,
                }
                for e in sim.rules
            ],
            "blind": [{"rule": r, "why": why} for r, why in sim.blind],
        }
        out.json(doc)
        return
    row = "{:>5} {:<15} {:>9} {:>9} {:>11} {:>11} {:>8}  {}"
    out.line(row, "RULE", "LEVEL", "EVENTS", "DROPPED", "BYTES NOW", "BYTES NEW", "CHANGE", "NOTE")
    for e in sim.rules:
        note = f"{e.need_bodies:,} need bodies never logged" if e.need_bodies else ""
        rule = "none" if e.rule is None else str(e.rule)
        out.line(row, rule, e.level, f"{e.events:,}", f"{e.dropped:,}", _size(e.bytes_now),
                 _size(e.bytes_new), _change(e.bytes_now, e.bytes_new), note)  # fmt: skip
    out.line(
        "total: {} logged now, about {} under {} ({}); bodies removed are measured on a "
        "sample, bodies never logged count as nothing",
        _size(sim.bytes_now), _size(sim.bytes_new), args.policy,
        _change(sim.bytes_now, sim.bytes_new),
    )  # fmt: skip
    out.line(RULE_NUMBERS)
    for rule_id, why in sim.blind:
        out.line("would blind: {}: {}", rule_id, why)


def _policy_suggest(backend: Backend, args: argparse.Namespace, out: Out) -> None:
    answer = backend.policy_suggest([r for r in _rule_set(args).rules if r.enabled], args.top)
    picks = answer.picks
    if args.format == "json":
        rows = [
            {
                "level": s.level,
                "users": s.users,
                "userGroups": s.user_groups,
                "verb": s.verb,
                "group": s.group,
                "resource": s.resource,
                "events": s.events,
                "bytes": s.bytes_now,
                "saves": s.saves,
                "rule": s.yaml(),
            }
            for s in picks
        ]
        out.json(rows)
        return
    total = answer.total_bytes
    out.line("# Put these first under rules: (first match wins). Log: {}.", _size(total))
    for s in picks:
        out.line("# {:,} events, {}; saves about {} ({:.1%} of the log)",
                 s.events, _size(s.bytes_now), _size(s.saves), s.saves / total)  # fmt: skip
        out.lines("{}", ([line] for line in s.yaml().splitlines()))


# -- summary ------------------------------------------------------------------------------


def _summary(backend: Backend, args: argparse.Namespace, out: Out) -> None:
    """All rows, streamed (as a database client prints every row of a GROUP BY: a script
    reading the CSV or JSON gets the whole answer), or ``--top N`` with one row counting the
    rest. Memory is the summary's arrays and the row being printed, not a dict per key."""
    summary = backend.summary(args.query, args.by, args.top, args.latency)
    if args.latency:
        _latency(summary, args, out)
        return
    rows: Iterator[dict[str, Any]] = iter(summary)
    more, rest = summary.rest_keys, summary.rest_total
    if args.format == "json":
        tail = [{"key": None, "more_keys": more, "events": rest}] if more else []
        out.json_stream(itertools.chain(rows, tail))
        return
    if args.format == "csv":
        cells = (
            [r["key"], r["events"], r["forbidden"], r["errors"], r["first"], r["last"],
             ";".join(f"{k}={n}" for k, n in r["verbs"].items())]
            for r in rows
        )  # fmt: skip
        last: list[list[Any]] = [[f"({more:,} more keys)", rest, "", "", "", "", ""]]
        out.csv(
            ["key", "events", "forbidden", "errors", "first", "last", "verbs"],
            itertools.chain(cells, last if more else []),
        )
        return
    head = list(itertools.islice(rows, WIDTH_ROWS))  # the key column fits these
    key_width = min(64, max([len(args.by)] + [len(inert(r["key"])) for r in head]))
    row = "{} {:>9} {:>6} {:>6}  {:<19}  {:<19}  {}"  # the key padded to key_width
    title = args.by.upper().ljust(key_width)
    out.line(row, title, "EVENTS", "403", "ERRORS", "FIRST", "LAST", "VERBS")
    keys = total = 0
    for r in itertools.chain(head, rows):
        verbs = " ".join(f"{k}:{n}" for k, n in list(r["verbs"].items())[:4])
        key = _cell(r["key"], key_width, middle=True).ljust(key_width)
        out.line(row, key, f"{r['events']:,}", f"{r['forbidden']:,}", f"{r['errors']:,}",
                 r["first"][:19], r["last"][:19], verbs)  # fmt: skip
        keys, total = keys + 1, total + r["events"]
    if more:
        out.line(row, f"({more:,} more keys)".ljust(key_width), f"{rest:,}", "", "", "", "", "")
    out.line("{:,} {} value(s), {:,} events", keys + more, args.by, total + rest)


WIDTH_ROWS = 1000  # rows the table's key column is fitted to (later, longer keys are cut)
LATENCY_FIELDS = ("requests", "p50", "p95", "p99", "max")


def _latency(summary: Summary, args: argparse.Namespace, out: Out) -> None:
    rows: Iterator[dict[str, Any]] = iter(summary)
    more, rest = summary.rest_keys, summary.rest_total
    if args.format == "json":
        picked = ({"key": r["key"], **{f: r[f] for f in LATENCY_FIELDS}} for r in rows)
        tail = [{"key": None, "more_keys": more, "requests": rest}] if more else []
        out.json_stream(itertools.chain(picked, tail))
        return
    if args.format == "csv":
        cells = ([r["key"], *(r[f] for f in LATENCY_FIELDS)] for r in rows)
        last: list[list[Any]] = [[f"({more:,} more keys)", rest, "", "", "", ""]]
        out.csv(["key", *LATENCY_FIELDS], itertools.chain(cells, last if more else []))
        return
    head = list(itertools.islice(rows, WIDTH_ROWS))
    key_width = min(64, max([len(args.by)] + [len(inert(r["key"])) for r in head]))
    row = "{} {:>9}" + " {:>7}" * (len(LATENCY_FIELDS) - 1)  # the key padded to key_width
    out.line(row, args.by.upper().ljust(key_width), *(f.upper() for f in LATENCY_FIELDS))
    keys = total = 0
    for r in itertools.chain(head, rows):
        key = _cell(r["key"], key_width, middle=True).ljust(key_width)
        times = (format_duration(r[f]) for f in LATENCY_FIELDS[1:])
        out.line(row, key, f"{r['requests']:,}", *times)
        keys, total = keys + 1, total + r["requests"]
    if more:
        blank = [""] * (len(LATENCY_FIELDS) - 1)
        out.line(row, f"({more:,} more keys)".ljust(key_width), f"{rest:,}", *blank)
    out.line("{:,} {} value(s), {:,} requests timed", keys + more, args.by, total + rest)


# -- history ------------------------------------------------------------------------------


CLUSTER_SCOPED = "\0"  # stands for the "-" of -/NAME while argparse reads the line


def _history(backend: Backend, args: argparse.Namespace, out: Out) -> int:
    args.target = args.target.replace(CLUSTER_SCOPED, "-", 1)
    namespace, slash, name = args.target.partition("/")
    if not slash or not name:
        return fail(f"history: {args.target}: give NAMESPACE/NAME (-/NAME for a cluster object)")
    result = backend.history(
        args.object,
        None if namespace == "-" else namespace,
        name,
        reads=args.reads,
        reveal=args.reveal,
        all_fields=args.all_fields,
    )
    if not result.entries:
        return fail(f"no event touched {args.object} {args.target}")
    if args.format == "json":
        out.json(
            [
                {
                    "auditID": e.audit_id, "time": e.time, "verb": e.verb, "user": e.user,
                    "sourceIP": e.ip, "code": e.code, "subresource": e.subresource,
                    "notes": e.notes, "patch": e.patch,
                    "changes": None if e.changes is None
                    else [{"path": c.path, "op": c.op, "old": c.old, "new": c.new}
                          for c in e.changes],
                }
                for e in result.entries
            ]
        )  # fmt: skip
        return 0
    for template, values in history_lines(result.entries, args.object):
        out.line(template, *values)
    return 0


# -- rbac ---------------------------------------------------------------------------------


def _rbac(backend: Backend, args: argparse.Namespace, out: Out) -> int:
    user = args.user
    answer = backend.rbac(
        user,
        namespace=args.namespace or None,
        clean=args.clean,
        include_denied=args.include_denied,
        diff=args.diff,
    )
    result = answer.result
    if not result.events:
        where = f" in namespace {args.namespace}" if args.namespace else ""
        return fail(f"No audit events matched user {user}{where}")
    if not result.requests:
        return fail(
            f"all {result.events:,} events of user {user} were denied "
            "(--clean leaves them out; --include-denied keeps them)"
        )
    if args.diff:
        doc = diff_document(answer.diff)
        if args.format == "json":
            out.json(doc)
        else:  # printable ASCII already (YAML escapes): the inert boundary leaves it as it is
            out.lines("{}", ([line] for line in dump_yaml(doc, sort_keys=False).split("\n")[:-1]))
        return 0
    if args.format == "json":
        out.json(list_document(result))
    else:
        counts = args.clean if args.counts is None else args.counts
        text = render_yaml(result, counts=counts)
        out.lines("{}", ([line] for line in text.split("\n")[:-1]))
    if not result.objects:
        warn(
            "{} needs nothing beyond what every user is granted (discovery): {:,} events",
            user,
            result.events,
        )
    return 0


# -- stats --------------------------------------------------------------------------------


def stats(backend: Backend) -> dict[str, Any]:
    """``stats --format json``'s keys: a store's malformed and ignored are unknown (null), it
    names its store, clusters and sources besides."""
    src = backend.sources()
    info: dict[str, Any] = {
        "events": src.events,
        "malformed": src.malformed,
        "ignored": src.ignored,
        "files": src.files,
        "first": src.first,
        "last": src.last,
    }
    if src.per_source is not None:
        info.update(store=src.display, clusters=src.clusters, sources=src.per_source)
    return info


def _stats(backend: Backend, args: argparse.Namespace, out: Out) -> None:
    info = stats(backend)
    if not isinstance(backend, MemoryBackend):
        _store_stats(info, args, out)
        return
    store = backend.store
    if args.format == "json":
        if args.malformed:
            info["malformed_lines"] = [
                {"path": m.path, "line": m.line, "reason": m.reason} for m in store.malformed
            ]
            info["malformed_by_kind"] = dict(store.malformed.by_kind())
            info["ignored_fields"] = [
                {"path": m.path, "line": m.line, "field": m.reason} for m in store.ignored
            ]
        out.json(info)
        return
    out.line("events      {:,}", info["events"])
    out.line("malformed   {:,}", info["malformed"])
    for kind, count in store.malformed.by_kind()[:10]:
        out.line("  {:>12,}  {}", count, kind)
    if store.ignored:
        first = store.ignored[0]
        out.line(
            "ignored     {:,} field(s) of the wrong type or nested too deep, read as missing (the "
            "events kept), "
            "e.g. {} line {:,} {}",
            len(store.ignored), first.path, first.line, first.reason,
        )  # fmt: skip
    out.line("first       {}", info["first"] or "-")
    out.line("last        {}", info["last"] or "-")
    out.line("files       {}", len(info["files"]))
    out.lines("  {}", ([path] for path in info["files"]))
    if args.malformed:
        out.lines("{}:{}: {}", ((m.path, m.line, m.reason) for m in store.malformed))
        if store.malformed.kept < len(store.malformed):
            out.line(
                "({:,} more not listed: the first {:,} are kept with their line, then the "
                "first of each kind; the counts above are exact)",
                len(store.malformed) - store.malformed.kept,
                SAMPLE,
            )


def _store_stats(info: dict[str, Any], args: argparse.Namespace, out: Out) -> None:
    """A store holds the events ship kept (it said what it skipped when it read them): no
    malformed lines; its clusters and the sources the shippers named instead."""
    if args.format == "json":
        out.json(info)
        return
    sources = info["sources"]
    out.line("events      {:,}", info["events"])
    out.line("malformed   - (a store holds the events ship kept; it said what it skipped)")
    out.line("first       {}", info["first"] or "-")
    out.line("last        {}", info["last"] or "-")
    out.line("store       {}", info["store"])
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
