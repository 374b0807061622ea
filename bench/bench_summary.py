"""Summaries over attacker-chosen keys: time and peak memory of ``audittui summary`` on logs
where every event has its own user (or its own user agent), next to the realistic figures.

    python bench/bench_summary.py [--events 3000000] [--dir bench/data] [--runs 1]
                                  [--realistic bench/data/realistic-1000000.log]

Each hostile file (written on first use, ~1.3 GB for 3M events) is summarised by a fresh
``python -m audittui summary`` process, its output to /dev/null; printed: wall time and peak
RSS (``ru_maxrss`` of the child, from ``wait4``), for all rows (the default) and ``--top
1000``. With ``--realistic FILE`` (``python -m audittui.demo big FILE``), the three in-memory
summaries ``bench_load.py`` times (by user, resource, code, after loading the file in one
process; best of ``--runs``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# One event per line, its user (or user agent) numbered; verbs, codes and latencies vary so
# that every column of a row has work to do.
_LINE = (
    '{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",'
    '"auditID":"{id:08x}-0000-4000-8000-000000000000","stage":"ResponseComplete",'
    '"requestURI":"/api/v1/namespaces/ns-{ns}/pods","verb":"{verb}",'
    '"user":{{"username":"{user}","groups":["system:authenticated"]}},'
    '"sourceIPs":["10.0.{a}.{b}"],"userAgent":"{ua}",'
    '"objectRef":{{"resource":"pods","namespace":"ns-{ns}","apiVersion":"v1"}},'
    '"responseStatus":{{"metadata":{{}},"code":{code}}},'
    '"requestReceivedTimestamp":"2026-12-01T10:{m:02d}:{s:02d}.{us:06d}Z",'
    '"stageTimestamp":"2026-12-01T10:{m:02d}:{s:02d}.{us2:06d}Z"}}\n'
)
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
CODES = (200, 200, 200, 201, 403, 404, 500)

_CHILD = r"""
import json, sys, time
import audittui
store = audittui.load(sys.argv[1])
out = {}
for by in ("user", "resource", "code"):
    times = []
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter()
        list(audittui.summarize(store, audittui.select(store, ""), by=by))  # every row made
        times.append(time.perf_counter() - t)
    out[by] = min(times)
print(json.dumps(out))
"""


def write(path: Path, events: int, distinct: str) -> None:
    """``events`` lines, each with its own user (``distinct`` "user") or user agent ("ua")."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing {path} ({events:,} events, a distinct {distinct} each) ...", flush=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        lines = []
        for i in range(events):
            s, us = divmod(i, 1_000_000)
            lines.append(
                _LINE.format(
                    id=i,
                    ns=i % 50,
                    verb=VERBS[i % len(VERBS)],
                    user=f"user-{i:08d}" if distinct == "user" else f"sa-{i % 40}",
                    ua=f"agent/{i:08d}" if distinct == "ua" else "kubectl/v1.30",
                    a=i % 200,
                    b=i % 250,
                    code=CODES[i % len(CODES)],
                    m=s // 60 % 60,
                    s=s % 60,
                    us=us,
                    us2=min(us + (i * 7919) % 5000, 999_999),
                )
            )
            if len(lines) == 10_000:
                fh.write("".join(lines))
                lines = []
        fh.write("".join(lines))
    tmp.rename(path)


def timed(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of a command, its output discarded."""
    t = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{command} failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - t, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--dir", type=Path, default=HERE / "data")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--realistic", type=Path, help="also the in-memory summaries of this file")
    ap.add_argument("--only-realistic", action="store_true")
    args = ap.parse_args()
    py = [sys.executable, "-m", "audittui", "summary"]
    if not args.only_realistic:
        for distinct, by in (("user", "user"), ("ua", "ua")):
            path = args.dir / f"distinct-{distinct}-{args.events}.log"
            write(path, args.events, distinct)
            for extra in ([], ["--top", "1000"]):
                label = f"summary --by {by} {' '.join(extra)}".strip()
                try:
                    runs = [timed([*py, "--by", by, *extra, str(path)]) for _ in range(args.runs)]
                except RuntimeError as exc:  # an older audittui without --top
                    print(f"{path.name}: {label}: failed: {str(exc)[-200:]}")
                    continue
                secs, peak = min(r[0] for r in runs), max(r[1] for r in runs)
                print(f"{path.name}: {label}: {secs:.1f} s, peak RSS {peak / 2**20:,.0f} MiB")
    if args.realistic:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(args.realistic), str(max(args.runs, 3))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        ms = {k: f"{v * 1e3:.0f} ms" for k, v in json.loads(out).items()}
        print(f"{args.realistic.name}: summary by user / resource / code: {ms}")


if __name__ == "__main__":
    main()
