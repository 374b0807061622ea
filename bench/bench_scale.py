"""Is loading linear? Time and peak RSS per event at 1M and 4M realistic events.

    python bench/bench_scale.py [--sizes 1000000,4000000]

Each size is loaded in a fresh process (``audittui.load``, both cores); the file is the
realistic one of ``python -m audittui.demo big`` (generated on first use: 1.15 GB per million
events). Prints per-event time and peak RSS (``ru_maxrss``) and their ratio to the smallest
size, then the largest log this machine's memory holds at that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench_load import ensure  # this folder is on the path when a script of it runs

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import json, resource, sys, time
import audittui
t = time.perf_counter()
store = audittui.load(sys.argv[1])
load = time.perf_counter() - t
print(json.dumps({"events": len(store), "load": load,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,4000000")
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        path = HERE / "data" / f"realistic-{n}.log"
        ensure(path, n, realistic=True)  # the same file bench_load.py makes and measures
        with open(path, "rb") as fh:  # warm the page cache where it fits
            while fh.read(1 << 24):
                pass
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True
        )
        res = json.loads(out.stdout)
        res["bytes"] = path.stat().st_size
        rows.append(res)
    first = rows[0]
    per_t0, per_m0 = first["load"] / first["events"], first["peak"] / first["events"]
    print(f"machine: {os.cpu_count()} cores")
    print(f"{'events':>12} {'GB':>6} {'load':>8} {'µs/event':>9} {'peak RSS':>10} {'B/event':>8}")
    for r in rows:
        per_t, per_m = r["load"] / r["events"], r["peak"] / r["events"]
        print(
            f"{r['events']:>12,} {r['bytes'] / 1e9:6.2f} {r['load']:7.2f}s {per_t * 1e6:9.2f} "
            f"{r['peak'] / 2**20:8,.0f} MiB {per_m:8.0f}   "
            f"(x{per_t / per_t0:.2f} time, x{per_m / per_m0:.2f} memory per event)"
        )
    last = rows[-1]
    per_m = last["peak"] / last["events"]
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    fits = int(total * 0.9 / per_m)
    gb = fits * last["bytes"] / last["events"] / 1e9
    print(f"this machine ({total / 2**30:.0f} GiB) holds about {fits:,} such events ({gb:.0f} GB)")


if __name__ == "__main__":
    main()
