"""Issue 31's figures: what a user waits for on a store of 10M realistic events, beside the
same on the in-memory index of a 1M-event file (the baseline), in the same run, as one table
with the targets.

    python bench/bench_store.py [--url URL] [--file LOG] [--runs 3]
        [--skip store,memory,reads,app,commands]

The store defaults to the chdb store bench/data/chdb-10m (``audittui ship --once`` of
bench/data/realistic-10000000.log; ``--fill`` ships it when the store is missing), the baseline
to bench/data/realistic-1000000.log. Three kinds of figure, medians of ``--runs`` each (one run
only when the first took longer than ``--slow`` seconds):

- the reads the front ends make, through the backend protocol (:mod:`audittui.backend`): the
  newest page, the count, field filters (page and count), the summary by user, the histogram,
  findings with the whole pack, the history of the busiest object (most writes, found by SQL),
  rbac for the busiest subject (most events), the completion values of ``user:``;
- the app (Pilot, headless, as bench_store_app.py drives it): from start to the first screen,
  and a field filter applied to its first screen;
- the commands from launch (child processes: ``audittui findings|history|rbac|summary``).

A figure the code cannot give yet is printed as "n/a: why" (a capability a backend declares
missing, a command that refuses a URL); one that fails says "error: …". chdb opens a folder in
one process at a time: the commands run while this process holds no session on the store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_clickhouse import FILTER, NARROW, data_file, fill, median_ms  # noqa: E402

from audittui.clickhouse.reads import open_reader  # noqa: E402

DATA = ROOT / "bench" / "data"
STORE = DATA / "chdb-10m"
USER_FILTER = NARROW.split()[0]  # user:system:serviceaccount:kube-system:replicaset-controller
PREFIX = "system:serviceaccount:kube-"  # the completion asked: values of user: starting so
PAGE = 200  # events on a screen's page (as bench_clickhouse reads it)
SECTIONS = ("store", "memory", "reads", "app", "commands")  # --skip's words for whole parts
READY = "ready to answer (store: opened; memory: loaded, everything indexed)"
WRITES = ("create", "update", "patch", "delete")

# Issue 31's targets (chdb, 10M events), ms; the in-memory figures may not get worse.
TARGETS = {
    "app: first screen": 1000,
    f"app: {FILTER} → its first screen": 1000,
    "summary by user": 2000,
    "findings, the whole pack": 10_000,
    "history of the busiest object": 1000,
    "rbac for the busiest subject": 3000,
}


class Unavailable(Exception):
    """A figure this tree cannot give yet: its one-line reason is printed as n/a."""


@dataclass
class Figure:
    name: str
    store: float | str = "not run"  # ms, or why not
    memory: float | str = "not run"
    note: str = ""


@dataclass
class Table:
    rows: dict[str, Figure] = field(default_factory=dict)

    def put(self, name: str, side: str, value: float | str, note: str = "") -> None:
        row = self.rows.setdefault(name, Figure(name))
        setattr(row, side, value)
        if note:
            row.note = f"{row.note}; {note}" if row.note else note
        print(f"  {side:6} {name}: {_cell(value)}", flush=True)


def measure(fn: Callable[[], Any], runs: int, slow: float) -> float | str:
    """The median of ``runs`` timings (ms) of ``fn``, one only when it took longer than
    ``slow`` s; "n/a: why" when it is :class:`Unavailable`, "error: …" when it fails."""
    times: list[float] = []
    try:
        for _ in range(runs):
            ms, _ = median_ms(fn, runs=1)
            times.append(ms)
            if ms > slow * 1000:
                break
    except Unavailable as exc:
        return f"n/a: {exc}"
    except Exception as exc:  # a figure that fails must not stop the others
        return f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return statistics.median(times)


# -- what each side answers ----------------------------------------------------------------


class Side:
    """The reads one side gives, each returning something that proves it ran (sizes)."""

    label: str

    def page(self, query: str) -> int: ...
    def count(self, query: str) -> int: ...
    def summary(self) -> int: ...
    def histogram(self) -> int: ...
    def findings(self, rules: list[Any]) -> int: ...
    def history(self, obj: Mapping[str, str]) -> int: ...
    def rbac(self, subject: str) -> int: ...
    def values(self, field_name: str, prefix: str) -> int: ...
    def close(self) -> None: ...


def _open_backend(paths: list[str]) -> Any | None:
    """The backend of ``paths`` (one URL, or files), None where this tree has no backend
    package yet."""
    try:
        from audittui.backend.open import open_backend
    except ImportError:
        return None
    return open_backend(paths)


class BackendSide(Side):
    """Through the backend protocol (audittui/backend/protocol.py)."""

    def __init__(self, backend: Any, label: str) -> None:
        self.backend, self.label = backend, label

    def _ask(self, capability: str, fn: Callable[[], Any]) -> Any:
        """``fn``'s answer; Unavailable where the backend declares ``capability`` missing or
        refuses it (protocol.Unsupported)."""
        from audittui.backend.protocol import Unsupported

        why = (getattr(self.backend, "capabilities", None) or {}).get(capability, "")
        if why:
            raise Unavailable(why)
        try:
            return fn()
        except Unsupported as exc:
            raise Unavailable(str(exc)) from None

    def page(self, query: str) -> int:
        return len(self.backend.page(query, None, True, PAGE))

    def count(self, query: str) -> int:
        return int(self.backend.count(query))

    def summary(self) -> int:
        return len(self._ask("summary", lambda: list(self.backend.summary("", "user", None))))

    def histogram(self) -> int:
        return 1 if self._ask("histogram", lambda: self.backend.histogram("", 100)) else 0

    def findings(self, rules: list[Any]) -> int:
        return len(self._ask("findings", lambda: self.backend.findings(rules, "")).fired)

    def history(self, obj: Mapping[str, str]) -> int:
        ns = obj["namespace"] or None
        found = self._ask("history", lambda: self.backend.history(obj["resource"], ns, obj["name"]))
        return len(found.entries)

    def rbac(self, subject: str) -> int:
        return int(self._ask("rbac", lambda: self.backend.rbac(subject)).result.events)

    def values(self, field_name: str, prefix: str) -> int:
        return len(self._ask("completion", lambda: self.backend.values(field_name, prefix, 20)))

    def close(self) -> None:
        self.backend.close()


class ReaderSide(Side):
    """A store read by clickhouse.reads.Reader directly: this tree has no backend yet."""

    label = "store (Reader, no backend yet)"

    def __init__(self, url: str) -> None:
        self.reader = open_reader(url)

    def page(self, query: str) -> int:
        return len(self.reader.page(query or None, limit=PAGE, descending=True))

    def count(self, query: str) -> int:
        return self.reader.count(query or None)

    def summary(self) -> int:
        return len(list(self.reader.summary("user")))

    def histogram(self) -> int:
        return 1 if self.reader.histogram(None, 100) is not None else 0

    def findings(self, rules: list[Any]) -> int:
        raise Unavailable("no backend findings yet (the command below: today's fetch path)")

    def history(self, obj: Mapping[str, str]) -> int:
        raise Unavailable("no backend yet; `history` refuses a URL today")

    def rbac(self, subject: str) -> int:
        raise Unavailable("no backend yet; `rbac` refuses a URL today")

    def values(self, field_name: str, prefix: str) -> int:
        raise Unavailable("no backend yet; the store app has no completion today")

    def close(self) -> None:
        self.reader.close()


class IndexSide(Side):
    """The in-memory index read by today's functions: this tree has no backend yet."""

    label = "memory (index, no backend yet)"

    def __init__(self, path: Path) -> None:
        import audittui

        self.store = audittui.load(str(path))

    def _select(self, query: str) -> Any:
        try:
            from audittui.index.evaluate import select
        except ImportError:  # the evaluator's new name (issue 31)
            from audittui.index.evaluate import select  # type: ignore[no-redef]
        return select(self.store, query)

    def page(self, query: str) -> int:
        rows = self._select(query)[-PAGE:]
        return sum(len(self.store.raw(int(i))) for i in rows)

    def count(self, query: str) -> int:
        return len(self._select(query))

    def summary(self) -> int:
        from audittui.analyses.summary import summarize

        return len(list(summarize(self.store, self._select(""), "user")))

    def histogram(self) -> int:
        from audittui.analyses.histogram import histogram

        return 1 if histogram(self.store, self._select(""), 100) is not None else 0

    def findings(self, rules: list[Any]) -> int:
        from audittui.findings.engine import Findings

        engine = Findings(rules)
        engine.update(self.store)
        return len(engine.results(self.store))

    def history(self, obj: Mapping[str, str]) -> int:
        from audittui.analyses.object_history import history, select
        from audittui.output.mask import mask_event

        ns = obj["namespace"] or None
        rows = select(self.store, obj["resource"], ns, obj["name"])
        return len(history(self.store, rows, lambda ev: mask_event(ev)[0]).entries)

    def rbac(self, subject: str) -> int:
        from audittui.analyses.rbac import analyze

        return analyze(self.store, subject).events

    def values(self, field_name: str, prefix: str) -> int:
        try:
            from audittui.index.values import complete
        except ImportError:
            raise Unavailable("completion moved (issue 31): no backend values here") from None
        text = f"{field_name}:{prefix}"
        return len(complete(text, len(text), self.store).candidates)

    def close(self) -> None:
        self.store.close()


# -- the busiest object and subject ----------------------------------------------------------


def busiest_in_store(url: str) -> tuple[dict[str, str], str]:
    """(the object with the most writes, the subject with the most events), by SQL."""
    with open_reader(url) as reader:
        source, params = reader._from(None, final=False)
        verbs = ", ".join(f"'{v}'" for v in WRITES)
        obj = reader.client.one(
            "SELECT resource, ifNull(namespace, '') AS ns, name, count() AS n "
            f"{source} AND verb IN ({verbs}) AND name IS NOT NULL AND resource IS NOT NULL "
            "GROUP BY resource, ns, name ORDER BY n DESC LIMIT 1",
            params,
        )
        who = reader.client.one(
            "SELECT ifNull(impersonated, ifNull(user, '')) AS s, count() AS n "
            f"{source} GROUP BY s ORDER BY n DESC LIMIT 1",
            params,
        )
    found = {
        "resource": str(obj["resource"]),
        "namespace": str(obj["ns"]),
        "name": str(obj["name"]),
    }
    print(
        f"  store: busiest object {_ref(found)} ({int(obj['n']):,} writes), "
        f"busiest subject {who['s']} ({int(who['n']):,} events)"
    )
    return found, str(who["s"])


def busiest_in_memory(path: Path) -> tuple[dict[str, str], str]:
    """The same two, on the in-memory index of ``path`` (its own busiest: not the store's)."""
    import numpy as np

    import audittui
    from audittui.analyses.rbac import table_code

    store = audittui.load(str(path))
    try:
        codes = [table_code(store, "verb", v) for v in WRITES]
        writes = np.flatnonzero(
            np.isin(store.column("verb"), [c for c in codes if c])
            & (store.column("name") != 0)
            & (store.column("resource") != 0)
        )
        triples = np.stack([store.column(c)[writes] for c in ("resource", "namespace", "name")])
        keys, inverse, counts = np.unique(triples, axis=1, return_inverse=True, return_counts=True)
        row = int(writes[np.flatnonzero(inverse.reshape(-1) == int(np.argmax(counts)))[0]])
        found = {c: str(store.value(c, row) or "") for c in ("resource", "namespace", "name")}
        # rbac's subject: the impersonated user where there is one, else the user
        imp, user = store.column("impersonated").astype(np.int64), store.column("user")
        subjects = np.where(imp != 0, -imp, user.astype(np.int64))
        values, counts_s = np.unique(subjects, return_counts=True)
        best = int(values[int(np.argmax(counts_s))])
        at = int(np.flatnonzero(subjects == best)[0])
        subject = str(store.value("impersonated" if best < 0 else "user", at))
        print(
            f"  memory: busiest object {_ref(found)} ({int(counts.max()):,} writes), "
            f"busiest subject {subject} ({int(counts_s.max()):,} events)"
        )
        return found, subject
    finally:
        store.close()


def _ref(obj: Mapping[str, str]) -> str:
    return f"{obj['resource']} {obj['namespace'] or '-'}/{obj['name']}"


# -- the reads -----------------------------------------------------------------------------


def reads(
    side: Side,
    key: str,
    table: Table,
    args: argparse.Namespace,
    obj: Mapping[str, str],
    subject: str,
    rules: list[Any],
) -> None:
    """Every read of the protocol figures on one side."""

    def put(name: str, fn: Callable[[], Any]) -> None:
        if not skipped(name, args):
            table.put(name, key, measure(fn, args.runs, args.slow))

    put(f"newest page ({PAGE} events)", lambda: side.page(""))
    put("count", lambda: side.count(""))
    for text in (FILTER, USER_FILTER):
        put(f"{text}: newest page", lambda t=text: side.page(t))
        put(f"{text}: count", lambda t=text: side.count(t))
    put("summary by user", side.summary)
    put("histogram (100 buckets)", side.histogram)
    put("findings, the whole pack", lambda: side.findings(rules))
    put("history of the busiest object", lambda: side.history(obj))
    put("rbac for the busiest subject", lambda: side.rbac(subject))
    put(f"completion: user:{PREFIX}…", lambda: side.values("user", PREFIX))


def skipped(name: str, args: argparse.Namespace) -> bool:
    """Is a figure left out by a word of --skip (findings, history, rbac, summary…)?"""
    words = [w for w in args.skip.split(",") if w and w not in SECTIONS]
    return any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", name) for w in words)


# -- the commands, from launch -------------------------------------------------------------


def commands(
    target: str,
    key: str,
    table: Table,
    args: argparse.Namespace,
    obj: Mapping[str, str],
    subject: str,
) -> None:
    """``audittui findings|history|rbac|summary`` on ``target`` (a URL or a file), each a
    child process timed from launch to exit."""
    ns = obj["namespace"] or "-"
    runs = {
        "command: summary --by user": ["summary", "--by", "user", target],
        "command: findings": ["findings", "--rules", "none", target],
        "command: history (busiest object)": [
            "history",
            obj["resource"],
            f"{ns}/{obj['name']}",
            target,
        ],
        "command: rbac --user (busiest subject)": ["rbac", "--user", subject, target],
    }
    for name, argv in runs.items():
        if skipped(name, args):
            continue
        table.put(
            name, key, measure(lambda a=argv: _command(a, args.timeout), args.runs, args.slow)
        )


def _command(argv: list[str], timeout: float) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "audittui", *argv],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            text=True,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"still running after {timeout:.0f} s (stopped)") from None
    # findings exits 1 when a rule fired; 2 is a refusal or an error (said in one line)
    if done.returncode not in (0, 1):
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise Unavailable(lines[-1][:140] if lines else f"exit {done.returncode}")


# -- the app -------------------------------------------------------------------------------


def app_on_store(url: str, table: Table, runs: int) -> None:
    """The app on the store (Pilot, from start, as bench_store_app.py drives it): its first
    screen, then a filter's first screen."""
    try:
        from bench_store_app import store_figures
    except ImportError as exc:
        for name in ("app: first screen", f"app: {FILTER} → its first screen"):
            table.put(name, "store", f"n/a: {exc}")
        return
    figures = _medians([store_figures(url, FILTER) for _ in range(runs)])
    table.put("app: first screen", "store", figures["first screen"] * 1000)
    filtered = figures[f"filter {FILTER}: first screen"] * 1000
    table.put(f"app: {FILTER} → its first screen", "store", filtered)


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def app_on_file(path: Path, table: Table, runs: int) -> None:
    """The file app (Pilot, from start): its first screen (the newest events drawn while the
    rest is indexed), then, everything indexed, a filter's first screen."""
    figures = _medians([_file_app(path) for _ in range(runs)])
    table.put("app: first screen", "memory", figures["first screen"] * 1000)
    table.put(
        f"app: {FILTER} → its first screen",
        "memory",
        figures[f"filter {FILTER}: first screen"] * 1000,
    )


def _file_app(path: Path) -> dict[str, float]:
    from bench_store_app import until

    from audittui.index.session import Session
    from audittui.tui.app import AuditApp
    from audittui.tui.history import History

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    session = Session([str(path)], follow=False, backups=False)
    session.open()
    app = AuditApp(session, history=History(Path(tempfile.mkdtemp()) / "h"))

    async def main() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            out["first screen"] = await until(pilot, lambda: len(app.view) > 0) - t0
            await until(pilot, lambda: not session.indexing and len(app.view) == len(app.store))
            t1 = time.perf_counter()
            app.apply_filter(FILTER)
            await until(pilot, lambda: app.filter.pending is None and app.view.text == FILTER)
            out[f"filter {FILTER}: first screen"] = time.perf_counter() - t1

    try:
        asyncio.run(main())
    finally:
        session.close()
    return out


# -- the table -----------------------------------------------------------------------------


def _cell(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if value < 10:  # a cached in-memory answer: its tenths still say something
        return f"{value:.1f} ms"
    return f"{value / 1000:,.2f} s" if value >= 1000 else f"{value:,.0f} ms"


def _verdict(row: Figure) -> str:
    target = TARGETS.get(row.name)
    if target is None:
        return ""
    if not isinstance(row.store, float):
        return f"≤ {_cell(target)}: ?"
    return f"≤ {_cell(target)} {'✓' if row.store <= target else '✗'}"


def markdown(table: Table, store_title: str, memory_title: str) -> Iterator[str]:
    yield f"| figure | {store_title} | {memory_title} | target (store) |"
    yield "|---|---:|---:|---:|"
    for row in sorted(table.rows.values(), key=_group):
        yield f"| {row.name} | {_cell(row.store)} | {_cell(row.memory)} | {_verdict(row)} |"


def _group(row: Figure) -> int:
    """Reads first (in the order measured), then the app, then the commands."""
    return 2 if row.name.startswith("command:") else 1 if row.name.startswith("app:") else 0


@contextmanager
def section(title: str) -> Iterator[None]:
    print(f"{title}…", flush=True)
    t0 = time.perf_counter()
    yield
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def on_store(args: argparse.Namespace, skip: set[str], table: Table, rules: list[Any]) -> str:
    """The store's figures into ``table``; the store's column title."""
    with open_reader(args.url) as reader:
        events = reader.count()
        engine = reader.client.version
    kind = "chdb" if args.url.startswith("chdb:") else "ClickHouse"
    title = f"store: {kind} {engine}, {events / 1e6:,.1f}M events"
    print(f"{title} ({args.url}); {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    obj, subject = busiest_in_store(args.url)
    # the commands first: chdb's folder must not be held by this process while they run
    if "commands" not in skip:
        with section("store: commands from launch"):
            commands(args.url, "store", table, args, obj, subject)
    if "reads" not in skip:
        with section("store: reads"):
            t0 = time.perf_counter()
            backend = _open_backend([args.url])
            side = BackendSide(backend, "store") if backend is not None else ReaderSide(args.url)
            table.put(READY, "store", (time.perf_counter() - t0) * 1000)
            try:
                reads(side, "store", table, args, obj, subject, rules)
            finally:
                side.close()
    if "app" not in skip:
        with section("store: the app"):
            app_on_store(args.url, table, args.runs)
    return title


def on_memory(args: argparse.Namespace, skip: set[str], table: Table, rules: list[Any]) -> str:
    """The in-memory baseline's figures into ``table``; its column title."""
    obj, subject = busiest_in_memory(args.file)
    if "commands" not in skip:
        with section("memory: commands from launch"):
            commands(str(args.file), "memory", table, args, obj, subject)
    if "reads" not in skip:
        with section("memory: load, then reads"):
            t0 = time.perf_counter()
            backend = _open_backend([str(args.file)])
            side = BackendSide(backend, "memory") if backend is not None else IndexSide(args.file)
            table.put(READY, "memory", (time.perf_counter() - t0) * 1000)
            try:
                reads(side, "memory", table, args, obj, subject, rules)
            finally:
                side.close()
    if "app" not in skip:
        with section("memory: the app"):
            app_on_file(args.file, table, args.runs)
    return f"in-memory index, {args.file.name}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--url", default=f"chdb://{STORE.resolve()}", help="the store (default: %(default)s)"
    )
    p.add_argument(
        "--file",
        type=Path,
        default=DATA / "realistic-1000000.log",
        help="the baseline's log, indexed in memory (default: %(default)s)",
    )
    p.add_argument(
        "--fill",
        type=int,
        metavar="EVENTS",
        help="ship bench/data/realistic-EVENTS.log into the store first if it holds fewer events",
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--slow",
        type=float,
        default=30.0,
        help="s: a read slower than this is run once (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="s: a command still running after this is stopped (default: %(default)s)",
    )
    p.add_argument(
        "--skip",
        default="",
        help="comma-separated: store, memory, reads, app, commands, or a word of the figures "
        "to leave out (findings, history, rbac, summary…)",
    )
    args = p.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.fill:
        print(fill(args.url, data_file(args.fill), args.fill))
    from audittui.findings.rules import load_rules

    rules = load_rules(False).rules  # the pack alone: a user's file must not change figures
    table = Table()
    store_title = "store (not run)"
    if "store" not in skip:
        store_title = on_store(args, skip, table, rules)
    memory_title = "in-memory index (not run)"
    if "memory" not in skip:
        memory_title = on_memory(args, skip, table, rules)
    print()
    print(
        f"medians of {args.runs} (one run where the first took over {args.slow:.0f} s); "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    for line in markdown(table, store_title, memory_title):
        print(line)


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
