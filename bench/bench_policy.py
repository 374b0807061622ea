"""Policy evaluation benchmark: a 30-rule policy (bench/policy-30-rules.yaml) decided for every
event of the 1M-event file, next to the per-event checker measured in the same run.

    python bench/bench_policy.py [--file bench/data/realistic-1000000.log] [--sample 50000]

Prints the time to decide every event on the indexed columns (the engine the CLI and the app
use), and the per-event checker (parse each event's JSON, derive its request info, try the rules)
on a sample, scaled to the whole file, as the baseline; and checks both agree on the sample.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import audittui
from audittui.policy import load
from audittui.policy.over_store import NO_RULE, decide

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=HERE / "data" / "realistic-1000000.log")
    ap.add_argument("--sample", type=int, default=50_000)
    args = ap.parse_args()
    if not args.file.exists():
        raise SystemExit(f"{args.file}: run bench/bench_load.py first (it generates the file)")
    policy = load(HERE / "policy-30-rules.yaml")
    store = audittui.load(args.file)
    n = len(store)
    print(f"file: {args.file} ({n:,} events); policy: {len(policy.rules)} rules")
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        decided = decide(policy, store)
        runs.append(time.perf_counter() - t)
    columns = statistics.median(runs)
    rng = np.random.default_rng(1)
    sample = rng.choice(n, size=min(args.sample, n), replace=False)
    t = time.perf_counter()
    per_event = [policy.evaluate(store.event(int(i))) for i in sample]
    checker = (time.perf_counter() - t) * n / len(sample)
    agree = all(
        (NO_RULE if r.rule is None else r.rule) == decided[i]
        for r, i in zip(per_event, sample, strict=True)
    )
    print(f"decide every event on the columns (median of 3): {columns:6.2f} s")
    print(f"per-event checker, {len(sample):,} events scaled to {n:,}: {checker:6.2f} s")
    print(f"ratio {columns / checker:.3f}; both agree on the sample: {agree}")
    counts = np.bincount(decided + 1, minlength=len(policy.rules) + 1)
    print(
        "events per rule:",
        {("none" if k == 0 else k - 1): int(c) for k, c in enumerate(counts) if c},
    )


if __name__ == "__main__":
    main()
