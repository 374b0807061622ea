"""Webhook receiver throughput: events/s made durable by `audittui webhook`, next to a baseline
measured in the same run.

    python bench/bench_webhook.py [--file bench/data/realistic-200000.log] [--events 200000]
                                  [--clients 2] [--batch 400] [--runs 3]

The events are the realistic generator's (`python -m audittui.demo big --events N FILE`, run
when the file is missing). They are posted as the API server posts them: EventList bodies of
400 items without kind/apiVersion, from 2 keep-alive client connections, to a receiver started
on a free loopback port (plain HTTP) with its spool in a temporary folder on the same disk as
the baseline (fsync on, the default 100 MiB rotation). The throughput is events / the time from
the first request to the last 200.

Baseline: the same bytes the spool receives (each batch's event lines), written and
fdatasync'd by a plain Python loop, one write and one fdatasync per batch, into one file in the
same folder: what durable storage alone costs per batch on this disk. A second loop also
parses each body with orjson and writes its items back with their kind (what a plain Python
receiver does, without HTTP). Prints each, the ratios, the client-side latency per batch, the
receiver's CPU per event and its peak resident memory. Medians over ``--runs``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(path: Path, n: int, batch: int) -> tuple[list[bytes], list[bytes]]:
    """(EventList bodies, the spool bytes of each batch) for the first ``n`` events."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "audittui.demo", "big", "--events", str(n), str(path)],
            check=True,
        )
    bodies, spooled = [], []
    with open(path, "rb") as fh:
        lines = [line for _, line in zip(range(n), fh, strict=False)]
    for i in range(0, len(lines), batch):
        part = lines[i : i + batch]
        items = []
        for line in part:
            ev = orjson.loads(line)
            ev.pop("kind", None)
            ev.pop("apiVersion", None)
            items.append(ev)
        doc = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}}
        bodies.append(orjson.dumps({**doc, "items": items}))
        spooled.append(b"".join(part))
    return bodies, spooled


def _write_durably(fd: int, data: bytes) -> None:
    """All of ``data``, then fdatasync: what the receiver does per batch, without the rest."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fdatasync(fd)


def baseline(folder: Path, spooled: list[bytes]) -> float:
    """Seconds for a plain loop to write and fdatasync each batch's bytes."""
    path = folder / "baseline.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    t = time.perf_counter()
    for data in spooled:
        _write_durably(fd, data)
    elapsed = time.perf_counter() - t
    os.close(fd)
    path.unlink()
    return elapsed


def naive(folder: Path, bodies: list[bytes]) -> float:
    """Seconds for a plain loop that parses each body with orjson, writes each item back with
    its kind and apiVersion, and fdatasyncs each batch: no HTTP, no deduplication."""
    path = folder / "naive.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    t = time.perf_counter()
    for body in bodies:
        doc = orjson.loads(body)
        data = b"".join(
            orjson.dumps({"kind": "Event", "apiVersion": doc["apiVersion"], **item}) + b"\n"
            for item in doc["items"]
        )
        _write_durably(fd, data)
    elapsed = time.perf_counter() - t
    os.close(fd)
    path.unlink()
    return elapsed


def start_receiver(spool: Path, log: Path) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "audittui", "webhook", "--listen", "127.0.0.1:0"]
    proc = subprocess.Popen([*cmd, "--spool", str(spool)], stdout=open(log, "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(rb"127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            port = int(m.group(1))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return proc, port
            except OSError:
                pass
        if proc.poll() is not None:
            raise SystemExit(f"the receiver exited {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit("the receiver did not start")


def post_all(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """Seconds to have every body answered 200, and each request's latency."""
    lock = threading.Lock()
    todo = iter(range(len(bodies)))
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            while True:
                t = time.perf_counter()
                conn.request("POST", "/", body=bodies[k], headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    break
                if resp.status != 429:
                    errors.append(f"{resp.status}")
                    return
                time.sleep(float(resp.headers.get("Retry-After", "1")))  # as the API server
            with lock:
                latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise SystemExit(f"requests failed: {errors[:5]}")
    return time.perf_counter() - t, latencies


def run_once(folder: Path, bodies: list[bytes], spooled: list[bytes], clients: int) -> dict:
    spool = folder / "spool"
    proc, port = start_receiver(spool, folder / "receiver.out")
    try:
        cpu0 = cpu_seconds(proc.pid)
        elapsed, latencies = post_all(port, bodies, clients)
        cpu = cpu_seconds(proc.pid) - cpu0
        peak = peak_rss(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    written = sum(p.read_bytes().count(b"\n") for p in spool.iterdir() if p.suffix == ".log")
    events = sum(s.count(b"\n") for s in spooled)
    if written != events:
        raise SystemExit(f"spool holds {written} events, {events} were posted")
    shutil.rmtree(spool)
    base = baseline(folder, spooled)
    parse = naive(folder, bodies)
    latencies.sort()
    return {
        "receiver": events / elapsed,
        "baseline": events / base,
        "naive": events / parse,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "cpu_us": cpu / events * 1e6,
        "mb_s": sum(map(len, spooled)) / elapsed / 1e6,
        "peak_mib": peak / (1 << 20),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=HERE / "data" / "realistic-200000.log")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where the spool goes (default: TMP)")
    args = ap.parse_args()
    bodies, spooled = prepare(args.file, args.events, args.batch)
    events = sum(s.count(b"\n") for s in spooled)
    size = sum(map(len, spooled))
    print(f"{events:,} events, {size / 1e6:,.0f} MB, {len(bodies):,} batches of {args.batch}, "
          f"{args.clients} client connections, fsync on")  # fmt: skip
    runs = []
    for k in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="audittui-bench-webhook-", dir=args.dir) as tmp:
            r = run_once(Path(tmp), bodies, spooled, args.clients)
        runs.append(r)
        print(
            f"run {k + 1}: receiver {r['receiver']:,.0f} events/s ({r['mb_s']:.0f} MB/s), "
            f"baseline write+fdatasync loop {r['baseline']:,.0f} events/s "
            f"(ratio {r['receiver'] / r['baseline']:.2f}), orjson parse+write+fdatasync loop "
            f"{r['naive']:,.0f} (ratio {r['receiver'] / r['naive']:.2f}); "
            f"per batch p50 {r['p50'] * 1e3:.1f} ms, "
            f"p99 {r['p99'] * 1e3:.1f} ms; receiver CPU {r['cpu_us']:.1f} µs/event, "
            f"peak RSS {r['peak_mib']:.0f} MiB"
        )
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"median of {len(runs)}: receiver {med['receiver']:,.0f} events/s, baseline "
        f"{med['baseline']:,.0f} events/s (ratio {med['receiver'] / med['baseline']:.2f}), "
        f"orjson loop {med['naive']:,.0f} events/s (ratio {med['receiver'] / med['naive']:.2f}), "
        f"batch p50 {med['p50'] * 1e3:.1f} ms / p99 {med['p99'] * 1e3:.1f} ms, "
        f"receiver CPU {med['cpu_us']:.1f} µs/event, peak RSS {med['peak_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
