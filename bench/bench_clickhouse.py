"""The store at scale: N realistic events (10 million by default) shipped into a real
ClickHouse server, then the app's and the CLI's reads on it, next to the same reads on the
in-memory index of the same file, in the same run.

    python bench/bench_clickhouse.py [--events 10000000] [--url clickhouse://HOST:PORT/DB]

Without ``--url`` it starts Debian's clickhouse-server (tests/clickhouse_server.py) on a free
port over a folder in bench/data that is kept, so a second run reuses the filled table.
Figures are medians of three runs; the store's are over HTTP on loopback.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from audittui.clickhouse.reads import open_reader  # noqa: E402

FILTER = "verb:delete"
NARROW = "user:system:serviceaccount:kube-system:replicaset-controller verb:update"


def median_ms(fn: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def data_file(events: int) -> Path:
    path = ROOT / "bench" / "data" / f"realistic-{events}.log"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "audittui.demo", "big", "--events", str(events), str(path)],
            check=True,
        )
    return path


def fill(url: str, path: Path, events: int) -> str:
    """Ship the file unless the table holds it already; returns the figure's line."""
    reader = open_reader(url)
    try:
        have = reader.count()
    except Exception:  # the table does not exist yet
        have = 0
    finally:
        reader.close()
    if have >= events:
        return f"table already holds {have:,} events (shipped by an earlier run)"
    state = ROOT / "bench" / "data" / f"ship-state-{events}"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "audittui", "ship", "--once", str(path), "--to", url,
         "--state", str(state)],
        check=True,
    )  # fmt: skip
    took = time.perf_counter() - t0
    size = path.stat().st_size
    return (
        f"ship --once: {events:,} events ({size / 1e9:.1f} GB) in {took:.0f} s, "
        f"{events / took:,.0f} events/s, {size / took / 1e6:.0f} MB/s"
    )


def store_reads(url: str) -> dict[str, float]:
    reader = open_reader(url)
    out: dict[str, float] = {}
    try:
        out["newest page (200 events)"], _ = median_ms(
            lambda: reader.page(None, limit=200, descending=True)
        )
        out["count"], n = median_ms(reader.count)
        out["events"] = n
        for text in (FILTER, NARROW):
            where = reader.where(text)
            out[f"{text}: newest page"], _ = median_ms(
                lambda w=where: reader.page(w, limit=200, descending=True)
            )
            out[f"{text}: count"], _ = median_ms(lambda w=where: reader.count(w))
        out["summary by user"], _ = median_ms(lambda: list(reader.summary("user")))
        out[f"summary by user, {FILTER}"], _ = median_ms(
            lambda: list(reader.summary("user", reader.where(FILTER)))
        )
        out["histogram (100 buckets)"], _ = median_ms(lambda: reader.histogram(None, 100))
    finally:
        reader.close()
    return out


def memory_reads(path: Path) -> dict[str, float]:
    import audittui

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    store = audittui.load(str(path))
    out["load (everything indexed)"] = (time.perf_counter() - t0) * 1000
    out["events"] = len(store)
    for text in (FILTER, NARROW):
        out[f"{text}: select"], _ = median_ms(lambda t=text: len(audittui.select(store, t)))
    out["summary by user"], _ = median_ms(
        lambda: list(audittui.summarize(store, audittui.select(store, ""), by="user"))
    )
    out[f"summary by user, {FILTER}"], _ = median_ms(
        lambda: list(audittui.summarize(store, audittui.select(store, FILTER), by="user"))
    )
    out["peak RSS (MiB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    return out


def show(title: str, figures: dict[str, float]) -> None:
    print(title)
    for name, value in figures.items():
        unit = "" if name == "events" or "MiB" in name else " ms"
        print(f"  {name:50.50s} {value:12,.0f}{unit}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--url", help="an existing server (default: start one)")
    p.add_argument("--no-memory", action="store_true", help="skip the in-memory comparison")
    p.add_argument("--no-app", action="store_true", help="skip the app's figures")
    args = p.parse_args()
    path = data_file(args.events)
    server = None
    url = args.url
    if url is None:
        from clickhouse_server import ClickHouseServer

        folder = ROOT / "bench" / "data" / f"clickhouse-{args.events}"
        folder.mkdir(parents=True, exist_ok=True)
        server = ClickHouseServer(folder)
        server.start()
        url = server.url
    url = url.rstrip("/") + f"?table=bench_{args.events}"
    try:
        print(fill(url, path, args.events))
        reader = open_reader(url)
        print(f"server {reader.client.version}, {reader.count():,} events in the table")
        reader.close()
        show("store (ClickHouse over HTTP), medians of 3:", store_reads(url))
        if not args.no_app:
            from bench_store_app import store_figures

            figures = store_figures(url, FILTER)
            figures.pop("events")
            show("the app on the store (Pilot, from start):", {
                k: v * 1000 for k, v in figures.items()
            })  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    if not args.no_memory:
        show(f"in-memory index of {path.name}:", memory_reads(path))


if __name__ == "__main__":
    main()
