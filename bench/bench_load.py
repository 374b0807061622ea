"""Load and query benchmark on a generated audit log, next to baselines measured in the same run.

    python bench/bench_load.py [--events 1000000] [--file bench/data/big-1m.log] [--runs 5]

Prints: the plain ``orjson.loads`` loop over the file (the floor any Python reader pays),
audittui's load (time, events/s, ratio to the loop, RSS after load, measured in a fresh
process), the median latency of five representative queries, the findings pack's cost (all
events, then 5,000 new ones as when following) as a share of the load time, and lnav's load
of the same file when lnav is installed (with the k8s-audit format from
../shared/bench/lnav-k8s-audit.json).
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
QUERIES = [
    ("field: one user", "user:alice"),
    ("field: verb + resource", "verb:delete,deletecollection res:secrets,configmaps"),
    ("field: errors in a namespace", "code:>=400 ns:kube-system"),
    ("field: glob + negation + dur", "user:system:serviceaccount:* -verb:watch dur:>500ms"),
    ("free text", '"forbidden"'),
]

_CHILD = r"""
import json, sys, time, statistics
t0 = time.perf_counter()
import audittui
imported = time.perf_counter()
store = audittui.load(sys.argv[1])
load = time.perf_counter() - imported
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
queries = json.loads(sys.argv[2])
runs = int(sys.argv[3])
out = {"events": len(store), "malformed": len(store.malformed), "load": load,
       "import": imported - t0, "rss": rss, "queries": []}
for label, q in queries:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        n = len(store.query(q))
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    out["queries"].append({"label": label, "query": q, "matches": n, "median": median})
from audittui.findings import Findings, load_rules
from audittui.store import Snapshot
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
    store.summary(by=by)
    out["summaries"][by] = time.perf_counter() - t
print(json.dumps(out))
"""


def orjson_loop(path: Path) -> float:
    import orjson

    t = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
    return time.perf_counter() - t


def lnav_load(path: Path) -> float | None:
    lnav = shutil.which("lnav")
    if lnav is None:
        return None
    fmt_dir = Path.home() / ".lnav" / "formats" / "installed"
    fmt = fmt_dir / "k8s_audit_log.json"
    if not fmt.exists():
        src = HERE.parent.parent / "shared" / "bench" / "lnav-k8s-audit.json"
        if not src.exists():
            return None
        fmt_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, fmt)
    t = time.perf_counter()
    subprocess.run(
        [lnav, "-n", "-c", ";SELECT count(*) FROM k8s_audit_log", str(path)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-lnav", action="store_true")
    args = ap.parse_args()
    path = args.file or HERE / "data" / f"big-{args.events}.log"
    if not path.exists():
        from audittui.demo import write_big

        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.events:,} events into {path} ...", flush=True)
        write_big(path, args.events, seed=1, body_fraction=0.05)
    size = path.stat().st_size
    print(f"file: {path} ({size / 1e9:.2f} GB)")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")

    # Warm the page cache so every reader sees the same conditions.
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass
    # Alternate the baseline and audittui, three times each; report medians (this machine's
    # timings vary by ±15% from run to run).
    bases, results = [], []
    for _ in range(3):
        bases.append(orjson_loop(path))
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), json.dumps(QUERIES), str(args.runs)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(child.stdout))
    base = statistics.median(bases)
    res = sorted(results, key=lambda r: r["load"])[1]
    res["rss"] = max(r["rss"] for r in results)
    for k, q in enumerate(res["queries"]):
        q["median"] = statistics.median(r["queries"][k]["median"] for r in results)
    n = res["events"]
    print()
    print(f"{'reader (median of 3)':34} {'time':>8} {'events/s':>12} {'vs orjson loop':>15}")
    print(f"{'plain orjson.loads loop':34} {base:7.2f}s {n / base:12,.0f} {1.0:14.2f}x")
    print(
        f"{'audittui.load (2 cores)':34} {res['load']:7.2f}s {n / res['load']:12,.0f} "
        f"{res['load'] / base:14.2f}x"
    )
    lnav = None if args.no_lnav else lnav_load(path)
    if lnav is not None:
        label = "lnav -n (k8s_audit_log format)"
        print(f"{label:34} {lnav:7.2f}s {n / lnav:12,.0f} {lnav / base:14.2f}x")
    else:
        print("lnav: not installed (apt-get install lnav) or format missing; skipped")
    print()
    print(
        f"events {n:,}, malformed {res['malformed']:,}, "
        f"RSS after load {res['rss'] / 2**20:,.0f} MiB "
        f"(import of audittui, not counted above: {res['import']:.2f}s)"
    )
    print()
    print(f"{'query':34} {'matches':>10} {'median of ' + str(args.runs):>14}")
    for q in res["queries"]:
        print(f"{q['label']:34} {q['matches']:10,} {q['median'] * 1000:11.0f} ms   {q['query']}")
    print()
    f = res["findings"]
    ftime = statistics.median(r["findings"]["time"] for r in results)
    live = statistics.median(r["findings"]["live"] for r in results)
    print(
        f"findings: {f['rules']} rules over all events {ftime:.2f}s = "
        f"{ftime / res['load']:.0%} of the load time; {f['fired']} fired, {f['blind']} blind"
    )
    print(f"findings while following: 5,000 new events on top {live * 1000:.0f} ms")
    print()
    for by in res["summaries"]:
        times = [r["summaries"][by] for r in results]
        print(f"summary by {by:24} {statistics.median(times) * 1000:22.0f} ms   (latency included)")


if __name__ == "__main__":
    main()
