"""Live-follow benchmark: a writer appends at a fixed rate, rotating like lumberjack every 1 MB
and gzipping backups, while ``audittui query --follow --format jsonl`` runs; then the auditIDs
printed are compared with those written (one event = auditID + stage).

    python bench/bench_follow.py [--seconds 60] [--rate 2000] [--rates 2000,5000,10000,20000]

Prints: events lost and doubled (both must be 0), p50/p95 time from write to output, the
highest rate (of --rates, 10 s each) with every event out within 1 s of the writer stopping and
a p95 under 500 ms, and the follower's CPU use while the log is quiet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from audittui.demo import LumberjackWriter, iter_lines


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trial(seconds: float, rate: int, idle: float = 0.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="audittui-bench-") as tmp:
        folder = Path(tmp)
        writer = LumberjackWriter(folder / "audit.log", 1 << 20, True)
        writer.write(b"")  # create the live file before the follower starts
        proc = subprocess.Popen(
            [sys.executable, "-m", "audittui", "query", "--follow", "--format", "jsonl", tmp],
            stdout=subprocess.PIPE,
            stderr=open(folder.parent / f"{folder.name}.stderr", "wb"),  # noqa: SIM115
        )
        seen: dict[str, list[float]] = {}

        def read() -> None:
            for line in iter(proc.stdout.readline, b""):
                now = time.time()
                ev = orjson.loads(line)
                seen.setdefault((ev["auditID"], ev["stage"]), []).append(now)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        written: dict[str, float] = {}
        lines = iter_lines(int(seconds * rate) + 1, seed=5, rate=rate, body_fraction=0.02)
        start = time.time()
        for k, line in enumerate(lines):
            due = start + k / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)  # pacing the writer, not synchronising with it
            ev = orjson.loads(line)  # a request's stages share its auditID
            written[(ev["auditID"], ev["stage"])] = time.time()
            writer.write(line)
        stopped = time.time()
        writer.close()
        deadline = stopped + 10
        while time.time() < deadline and len(seen) < len(written):
            time.sleep(0.05)
        caught_up = time.time() - stopped
        result = {"rate": rate, "written": len(written), "caught_up": caught_up}
        if idle:
            before = cpu_seconds(proc.pid)
            time.sleep(idle)
            result["idle_cpu"] = (cpu_seconds(proc.pid) - before) / idle
        exited = proc.poll()
        proc.terminate()
        proc.wait(10)
        reader.join(5)
        errors = (folder.parent / f"{folder.name}.stderr").read_bytes().decode(errors="replace")
        (folder.parent / f"{folder.name}.stderr").unlink()
        if exited is not None:  # the follower should run until stopped
            result["exited"] = f"exit {exited}: " + errors.strip().splitlines()[-1:][0][:300]
        lags = sorted(seen[a][0] - t for a, t in written.items() if a in seen)
        result |= {
            "lost": sum(1 for a in written if a not in seen),
            "doubled": sum(len(v) - 1 for v in seen.values()),
            "unexpected": sum(1 for a in seen if a not in written),
            "p50": statistics.median(lags) if lags else float("nan"),
            "p95": lags[int(0.95 * (len(lags) - 1))] if lags else float("nan"),
        }
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--rates", default="2000,5000,10000,20000")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    main_run = trial(args.seconds, args.rate, idle=10)
    print(
        f"{args.seconds:.0f} s at {args.rate:,}/s, rotation every 1 MB with gzip: "
        f"written {main_run['written']:,}, lost {main_run['lost']}, doubled {main_run['doubled']}, "
        f"unexpected {main_run['unexpected']}"
    )
    print(
        f"write → output: p50 {main_run['p50'] * 1000:.0f} ms, p95 {main_run['p95'] * 1000:.0f} ms"
    )
    print(f"follower CPU while quiet (10 s): {main_run['idle_cpu'] * 100:.2f}% of a core")
    best = None
    for rate in (int(r) for r in args.rates.split(",")):
        r = trial(10, rate)
        ok = r["lost"] == 0 and r["doubled"] == 0 and r["caught_up"] < 1.0 and r["p95"] < 0.5
        print(
            f"  {rate:>6,}/s for 10 s: lost {r['lost']}, doubled {r['doubled']}, "
            f"p95 {r['p95'] * 1000:.0f} ms, caught up {r['caught_up']:.2f} s after stop"
            f" → {'sustained' if ok else 'falls behind'}"
        )
        if "exited" in r:
            print(f"    follower {r['exited']}")
        if ok:
            best = rate
    print(f"highest sustained rate tried: {best:,}/s" if best else "no rate sustained")


if __name__ == "__main__":
    main()
