"""Load and query benchmark on two generated logs, next to baselines measured in the same run.

    python bench/bench_load.py [--events 1000000] [--runs 5] [--only realistic|easy]
                               [--no-lnav] [--no-duckdb]

The two files: **realistic** (``python -m audittui.demo big``: unique auditIDs, URIs with
resourceVersion, timeouts and continue tokens, generated names, ~250k credential ids, 2,000
source IPs: the cardinality of a big cluster's log) and **easy** (``--easy``: the small
cluster's few names, URIs and clients). For each, in one run: the plain ``orjson.loads`` loop
over the file (the floor any Python reader pays), ``audittui.load`` in a fresh process (time,
peak RSS as ``ru_maxrss``, RSS after load), lnav 0.11 loading it with the k8s-audit format
from ../shared/bench/lnav-k8s-audit.json, DuckDB's ``read_json`` into a table of the indexed
fields (both cores), queries (first run with no cache, then the median of ``--runs``), the
findings pack and three summaries. Ratios are to the loop and to lnav of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import json, resource, sys, time, statistics
t0 = time.perf_counter()
import audittui
imported = time.perf_counter()
store = audittui.load(sys.argv[1])
load = time.perf_counter() - imported
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
queries = json.loads(sys.argv[2])
runs = int(sys.argv[3])
out = {"events": len(store), "malformed": len(store.malformed), "load": load,
       "import": imported - t0, "rss": rss, "peak": peak, "queries": []}
for label, q in queries:
    t = time.perf_counter()
    n = len(audittui.select(store, q))
    first = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        audittui.select(store, q)
        times.append(time.perf_counter() - t)
    out["queries"].append({"label": label, "query": q, "matches": n, "first": first,
                           "median": statistics.median(times)})
from audittui.findings import Findings, load_rules
from audittui.index.store import Snapshot
rules = load_rules(False).rules
t = time.perf_counter()
findings = Findings(rules)
findings.update(store)
fired = findings.results(store)
blind = findings.blind(store)
out["findings"] = {"time": time.perf_counter() - t, "fired": len(fired), "blind": len(blind),
                   "rules": len(findings.rules)}
# Following: the last 5,000 events (a second at 5,000 events/s) on top of all the others.
live = Findings(rules)
live.update(Snapshot(store, len(store) - 5000))
t = time.perf_counter()
live.update(store)
live.results(store)
out["findings"]["live"] = time.perf_counter() - t
out["summaries"] = {}
for by in ("user", "resource", "code"):
    t = time.perf_counter()
    list(audittui.summarize(store, audittui.select(store, ""), by=by))  # every row made
    out["summaries"][by] = time.perf_counter() - t
out["peak_end"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""

_DUCKDB = r"""
import sys, time, duckdb
cols = {
    "auditID": "VARCHAR", "stage": "VARCHAR", "level": "VARCHAR", "requestURI": "VARCHAR",
    "verb": "VARCHAR", "userAgent": "VARCHAR", "sourceIPs": "VARCHAR[]",
    "user": "STRUCT(username VARCHAR, groups VARCHAR[], extra MAP(VARCHAR, VARCHAR[]))",
    "impersonatedUser": "STRUCT(username VARCHAR)",
    "objectRef": "STRUCT(resource VARCHAR, namespace VARCHAR, name VARCHAR, apiGroup VARCHAR, "
                 "apiVersion VARCHAR, subresource VARCHAR)",
    "responseStatus": "STRUCT(code BIGINT)",
    "requestReceivedTimestamp": "TIMESTAMP", "stageTimestamp": "TIMESTAMP",
    "annotations": "MAP(VARCHAR, VARCHAR)",
}
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(
    f"CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited', "
    f"maximum_object_size=104857600, columns={cols!r})", [sys.argv[1]]
)
print(time.perf_counter() - t)
"""


def orjson_loop(path: Path) -> float:
    import orjson

    t = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
    return time.perf_counter() - t


def timed(command: list[str]) -> tuple[float, int, str]:
    """Run a command: (wall seconds, its peak RSS in bytes, its stdout)."""
    t = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{command[0]} failed with {proc.returncode}")
    return time.perf_counter() - t, usage.ru_maxrss * 1024, out.decode()


def lnav_load(path: Path) -> tuple[float, int] | None:
    lnav = shutil.which("lnav")
    if lnav is None:
        print("lnav not found: its baseline is left out (apt-get install lnav)", file=sys.stderr)
        return None
    fmt_dir = Path.home() / ".lnav" / "formats" / "installed"
    fmt = fmt_dir / "k8s_audit_log.json"
    if not fmt.exists():
        src = HERE.parent.parent / "shared" / "bench" / "lnav-k8s-audit.json"
        if not src.exists():
            print(f"{src} not found: the lnav baseline is left out", file=sys.stderr)
            return None
        fmt_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, fmt)
    runs = [
        timed([lnav, "-n", "-c", ";SELECT count(*) FROM k8s_audit_log", str(path)])
        for _ in range(3)
    ]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)  # as for audittui


def duckdb_load(path: Path) -> tuple[float, int] | None:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return None
    _, peak, out = timed([sys.executable, "-c", _DUCKDB, str(path)])
    return float(out.strip().splitlines()[-1]), peak


def middle_audit_id(path: Path) -> str:
    import orjson

    with open(path, "rb") as fh:
        fh.seek(path.stat().st_size // 2)
        fh.readline()
        return orjson.loads(fh.readline())["auditID"]


def ensure(path: Path, events: int, realistic: bool) -> None:
    if path.exists():
        return
    from audittui.demo import write_big

    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "realistic" if realistic else "easy"
    print(f"generating {events:,} {kind} events into {path} ...", flush=True)
    write_big(path, events, seed=1, body_fraction=0.05, realistic=realistic)


def measure(path: Path, args) -> dict:
    """Everything for one file."""
    with open(path, "rb") as fh:  # warm the page cache: every reader sees the same conditions
        while fh.read(1 << 24):
            pass
    queries = [
        ("field: user", "user:alice"),
        ("field: verb", "verb:delete,deletecollection"),
        ("field: code", "code:>=400"),
        ("field: glob + negation + dur", "user:system:serviceaccount:* -verb:watch dur:>500ms"),
        ("name glob", "name:web-1*"),
        ("uri glob", "uri:*watch=true*"),
        ("one auditID", f"id:{middle_audit_id(path)}"),
        ("free text", '"forbidden"'),
    ]
    # Alternate the baseline and audittui, three times each; report medians.
    bases, results = [], []
    for _ in range(3):
        bases.append(orjson_loop(path))
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), json.dumps(queries), str(args.runs)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(child.stdout))
    res = sorted(results, key=lambda r: r["load"])[1]
    res["base"] = statistics.median(bases)
    res["peak"] = max(r["peak"] for r in results)
    res["rss"] = max(r["rss"] for r in results)
    for k, q in enumerate(res["queries"]):
        q["first"] = statistics.median(r["queries"][k]["first"] for r in results)
        q["median"] = statistics.median(r["queries"][k]["median"] for r in results)
    res["findings"]["time"] = statistics.median(r["findings"]["time"] for r in results)
    res["findings"]["live"] = statistics.median(r["findings"]["live"] for r in results)
    for by in res["summaries"]:
        res["summaries"][by] = statistics.median(r["summaries"][by] for r in results)
    res["lnav"] = None if args.no_lnav else lnav_load(path)
    res["duckdb"] = None if args.no_duckdb else duckdb_load(path)
    res["size"] = path.stat().st_size
    return res


def report(files: dict[str, dict]) -> None:
    names = list(files)
    w = 38

    def row(label: str, cells: list[str]) -> None:
        print(f"{label:34}" + "".join(f"{c:>{w}}" for c in cells))

    def secs(t: float, r: dict) -> str:
        ratios = f"{t / r['base']:.2f}x loop"
        if r["lnav"]:
            ratios += f", {t / r['lnav'][0]:.2f}x lnav"
        return f"{t:.2f}s ({ratios})"

    mib = 2**20
    row("", names)
    row("file", [f"{r['events']:,} events, {r['size'] / 1e9:.2f} GB" for r in files.values()])
    row("plain orjson.loads loop", [f"{r['base']:.2f}s" for r in files.values()])
    row("audittui.load (2 cores)", [secs(r["load"], r) for r in files.values()])
    row("  events/s", [f"{r['events'] / r['load']:,.0f}" for r in files.values()])
    row("  peak RSS (ru_maxrss)", [f"{r['peak'] / mib:,.0f} MiB" for r in files.values()])
    row("  RSS after load", [f"{r['rss'] / mib:,.0f} MiB" for r in files.values()])
    row(
        "lnav -n (k8s_audit_log)",
        [
            f"{r['lnav'][0]:.2f}s, peak {r['lnav'][1] / mib:,.0f} MiB" if r["lnav"] else "-"
            for r in files.values()
        ],
    )
    row(
        "DuckDB read_json (2 cores)",
        [
            f"{r['duckdb'][0]:.2f}s, peak {r['duckdb'][1] / mib:,.0f} MiB" if r["duckdb"] else "-"
            for r in files.values()
        ],
    )
    print()
    first = next(iter(files.values()))
    print(f"queries: first run (no cache) / median of later runs, matches   ({', '.join(names)})")
    for k, q in enumerate(first["queries"]):
        cells = []
        for r in files.values():
            qk = r["queries"][k]
            first_ms, median_ms = qk["first"] * 1e3, qk["median"] * 1e3
            cells.append(f"{first_ms:.0f} / {median_ms:.0f} ms, {qk['matches']:,}")
        row(f"{q['label']}", cells)
    print("   " + "; ".join(f"{q['label']}: {q['query'][:60]}" for q in first["queries"][-3:]))
    print()
    row(
        "findings (all events)",
        [
            f"{r['findings']['time']:.2f}s = {r['findings']['time'] / r['load']:.0%} of load"
            for r in files.values()
        ],
    )
    row(
        "findings: 5,000 new on top",
        [f"{r['findings']['live'] * 1e3:.0f} ms" for r in files.values()],
    )
    for by in first["summaries"]:
        row(f"summary by {by}", [f"{r['summaries'][by] * 1e3:.0f} ms" for r in files.values()])
    row("peak RSS at the end", [f"{r['peak_end'] / mib:,.0f} MiB" for r in files.values()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=["realistic", "easy"])
    ap.add_argument("--no-lnav", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    kinds = [args.only] if args.only else ["realistic", "easy"]
    files = {}
    for kind in kinds:
        path = HERE / "data" / f"{kind}-{args.events}.log"
        ensure(path, args.events, realistic=kind == "realistic")
        files[kind] = measure(path, args)
    print()
    report(files)


if __name__ == "__main__":
    main()
