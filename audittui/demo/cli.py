"""``python -m audittui.demo write|big|live``: the generator's command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .folder import write_demo
from .live import append_live, live_path
from .stream import write_big

DESCRIPTION = (
    "Synthetic Kubernetes API-server audit logs (``audit.k8s.io/v1``) for demos, tests and "
    "benchmarks."
)


def _summary(paths: list[Path]) -> str:
    """One line per file written: its name and size."""
    return "\n".join(f"  {p.name:45s} {p.stat().st_size:>10,d} B" for p in paths)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    ap = argparse.ArgumentParser(prog="python -m audittui.demo", description=DESCRIPTION)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write a lumberjack-style demo folder")
    w.add_argument("dir")
    w.add_argument("--events", type=int, default=3000)
    w.add_argument("--seed", type=int, default=7)
    b = sub.add_parser("big", help="write one large JSONL file (benchmarks)")
    b.add_argument("file")
    b.add_argument("--events", type=int, default=1_000_000)
    b.add_argument("--body-fraction", type=float, default=0.05)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument(
        "--easy",
        action="store_true",
        help="the small cluster's cardinality (few names, URIs and clients); default: realistic",
    )
    lv = sub.add_parser("live", help="append events in real time (Ctrl-C to stop)")
    lv.add_argument("dir")
    lv.add_argument("--rate", type=float, default=20.0)
    lv.add_argument("--seed", type=int, default=99)
    lv.add_argument("--rotate-bytes", type=int, default=None)
    lv.add_argument("--no-compress", action="store_true")
    args = ap.parse_args(argv)

    if args.cmd == "write":
        paths = write_demo(args.dir, args.events, seed=args.seed)
        print(f"wrote {len(paths)} files to {args.dir}:\n{_summary(paths)}")
    elif args.cmd == "big":
        t = time.perf_counter()
        size = write_big(
            args.file,
            args.events,
            seed=args.seed,
            body_fraction=args.body_fraction,
            realistic=not args.easy,
        )
        dt = time.perf_counter() - t
        print(f"wrote {args.events:,d} events, {size:,d} bytes to {args.file} in {dt:.1f} s")
    else:
        print(
            f"appending to {live_path(args.dir)} at {args.rate}/s; Ctrl-C to stop", file=sys.stderr
        )
        n = append_live(
            args.dir,
            rate=args.rate,
            seed=args.seed,
            rotate_bytes=args.rotate_bytes,
            compress=not args.no_compress,
        )
        print(f"wrote {n} events", file=sys.stderr)
    return 0
