"""Globs and regexes: first-run times on the realistic file, and the hostile cases of issue 29.

    python bench/bench_match.py [--file bench/data/realistic-1000000.log] [--runs 3]
                                [--query Q ...] [--no-hostile] [--timeout 60]

Part one loads the file once (in this process) and times each query as a first run: every
table's cached lookup tables are dropped before each run, so each run decides every distinct
value again; the median of ``--runs`` is reported with the number of matches. Part two writes a
few hostile events (a 22 KB and a 440 KB URI, a long ``aaaa…b`` user, a 16 MB user of a's) and
times the queries that were cubic or exponential before RE2 (and free text over an event that
holds the phrase millions of times), each in a child process killed after ``--timeout`` seconds
("did not finish" then).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUERIES = [
    "name:web-1*",
    "uri:*watch=true*",
    "uri:*/pods*watch*",
    "uri:/api/*/pods*",
    "name:*-7*",
    "user:system:serviceaccount:*",
    "id:*abc*",
    "uri:/watch=(true|1)/",
    "uri:/pods.*watch/",
    "name:/^web-1/",
    r"ua:/kubectl\/v1\.(29|30)/",
    "level:/^meta/",
    "res:/exec$/",
    '"forbidden"',
]

_HOSTILE = r"""
import sys, time, audittui
store = audittui.load(sys.argv[1])
t = time.perf_counter()
n = len(audittui.select(store, sys.argv[2]))
print(n, time.perf_counter() - t)
"""

HOSTILE = [
    ("uri:*exec*stdin*command*", "a 22 KB URI"),
    ("uri:*exec*stdin*command*", "a 440 KB URI"),
    ("user:/^(a+)+$/", "a user of 30 a's then b"),
    ("user:/^(a+)+$/", "a user of 100,000 a's then b"),
    ('"aaaa"', "a user of 16 MB of a's"),  # free text: the phrase 4 million times
]


def first_runs(store, query: str, runs: int) -> tuple[float, int]:
    import audittui

    times, n = [], 0
    for _ in range(runs):
        for table in store.tables.values():
            table.luts = {}
        t = time.perf_counter()
        n = len(audittui.select(store, query))
        times.append(time.perf_counter() - t)
    return statistics.median(times), n


def hostile_file(folder: Path) -> dict[str, Path]:
    def event(k: int, uri: str, user: str) -> bytes:
        return json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": f"00000000-0000-0000-0000-{k:012d}",
                "stage": "ResponseComplete",
                "requestURI": uri,
                "verb": "get",
                "user": {"username": user},
                "stageTimestamp": "2024-11-15T10:00:00.000000Z",
            }
        ).encode()

    files = {}
    for label, size in (("a 22 KB URI", 22_000), ("a 440 KB URI", 440_000)):
        path = folder / f"uri-{size}.log"
        # all three parts, but no "command" after an "exec" and a "stdin"
        uri = "/api/v1/namespaces/command/pods/p/" + "exec?stdin&" * (size // 11)
        path.write_bytes(event(1, uri, "u") + b"\n")
        files[label] = path
    for label, n in (("a user of 30 a's then b", 30), ("a user of 100,000 a's then b", 100_000)):
        path = folder / f"user-{n}.log"
        path.write_bytes(event(1, "/api", "a" * n + "b") + b"\n")
        files[label] = path
    path = folder / "user-16mb.log"
    path.write_bytes(event(1, "/api", "a" * (16 << 20)) + b"\n" + event(2, "/api", "b") + b"\n")
    files["a user of 16 MB of a's"] = path
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=HERE / "data" / "realistic-1000000.log")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--query", action="append", help="instead of the built-in list")
    ap.add_argument("--no-hostile", action="store_true")
    ap.add_argument("--no-realistic", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    if not args.no_realistic:
        import audittui

        t = time.perf_counter()
        store = audittui.load(str(args.file))
        print(f"{args.file.name}: {len(store):,} events loaded in {time.perf_counter() - t:.1f} s")
        for q in args.query or QUERIES:
            secs, n = first_runs(store, q, args.runs)
            print(f"  {q:34} {secs * 1e3:8.0f} ms  {n:>9,} events")
    if args.no_hostile:
        return
    print(f"hostile (each in a child process, killed after {args.timeout:.0f} s):")
    with tempfile.TemporaryDirectory() as tmp:
        files = hostile_file(Path(tmp))
        for q, label in HOSTILE:
            try:
                out = subprocess.run(
                    [sys.executable, "-c", _HOSTILE, str(files[label]), q],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    check=True,
                ).stdout.split()
                print(f"  {q:28} over {label:30} {float(out[1]) * 1e3:10.1f} ms, {out[0]} events")
            except subprocess.TimeoutExpired:
                print(f"  {q:28} over {label:30} did not finish in {args.timeout:.0f} s")


if __name__ == "__main__":
    main()
