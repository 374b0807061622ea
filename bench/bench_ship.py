"""``audittui ship --once`` throughput (events/s) into a local ClickHouse, next to the baseline
of the same rows, pre-encoded, inserted by ClickHouse's own client in the same run:

    clickhouse-client --query "INSERT INTO t FORMAT JSONEachRow" < rows.jsonl

and by one HTTP POST of that file (the transport ship uses). The log is the demo's realistic
one (``python -m audittui.demo big``); the rows are encoded by ship's own code
(:func:`audittui.clickhouse.rows.from_lines`), so both sides insert byte-identical data.

    python bench/bench_ship.py [--events 1000000] [--url clickhouse://127.0.0.1:8123/default]

Without ``--url`` it starts Debian's 18.16 server (tests/clickhouse_server.py) on a temporary
folder and free ports, and stops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from audittui.clickhouse import schema  # noqa: E402
from audittui.clickhouse.client import connect  # noqa: E402
from audittui.clickhouse.rows import from_lines  # noqa: E402
from audittui.clickhouse.url import parse  # noqa: E402

PY = sys.executable
PIECE = 32 << 20  # bytes of log encoded at a time for the baseline's file


def encode_file(log: Path, out: Path) -> int:
    """The rows ship would insert for ``log``, into ``out`` (JSONEachRow); their number."""
    n = 0
    offset, line = 0, 1
    with open(log, "rb") as fh, open(out, "wb") as dst:
        rest = b""
        while True:
            block = fh.read(PIECE)
            data = rest + block
            if not data:
                break
            final = not block
            cut = len(data) if final else data.rfind(b"\n") + 1
            rows, used, lines = from_lines(data[:cut], offset, line, str(log), "", final)
            dst.write(rows.body())
            n += len(rows)
            offset, line, rest = offset + used, line + lines, data[used:]
            if final:
                break
    return n


def count(url: str) -> int:
    with connect(parse(url)) as c:
        return int(next(iter(c.rows(f"SELECT count() AS n FROM {parse(url).table}")))["n"])


def fresh(base: str) -> str:
    url = f"{base}?table=b_{uuid.uuid4().hex}"
    with connect(parse(url)) as c:
        c.ensure_table()
    return url


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--url", help="a running server (default: start 18.16 here)")
    ap.add_argument("--keep", metavar="DIR", help="keep (and reuse) the log in DIR")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-ship-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    tcp_port = 9000
    if args.url:
        base = args.url
    else:
        from clickhouse_server import ClickHouseServer

        server = ClickHouseServer(work / "ch")
        server.start()
        base, tcp_port = server.url, server.tcp_port
    try:
        log = work / f"audit-{args.events}.log"
        if not log.exists():
            subprocess.run(
                [PY, "-m", "audittui.demo", "big", "--events", str(args.events), str(log)],
                check=True,
                cwd=ROOT,
            )
        size = log.stat().st_size
        target = parse(base)
        print(f"log: {args.events:,} events, {size / 1e6:,.0f} MB; ClickHouse at {target}")

        url = fresh(base)
        state = work / f"state-{uuid.uuid4().hex}"
        t = time.perf_counter()
        subprocess.run(
            [PY, "-m", "audittui", "ship", str(log), "--to", url, "--once", "--state", str(state)],
            check=True,
            cwd=ROOT,
        )
        ship_s = time.perf_counter() - t
        shipped = count(url)
        assert shipped == args.events, (shipped, args.events)

        rows = work / "rows.jsonl"
        t = time.perf_counter()
        encoded = encode_file(log, rows)
        encode_s = time.perf_counter() - t
        assert encoded == args.events

        figures: list[tuple[str, float]] = [("audittui ship --once", ship_s)]
        client = shutil.which("clickhouse-client")
        if client and target.host in ("127.0.0.1", "localhost", "::1"):
            url = fresh(base)
            sql = f"INSERT INTO {target.database}.{parse(url).table} FORMAT JSONEachRow"
            t = time.perf_counter()
            with open(rows, "rb") as fh:
                subprocess.run(
                    [client, "--host", target.host, "--port", str(tcp_port), "--query", sql],
                    stdin=fh,
                    check=True,
                )
            figures.append(("clickhouse-client < rows.jsonl", time.perf_counter() - t))
            assert count(url) == args.events
        import urllib3

        url = fresh(base)
        pool = urllib3.HTTPConnectionPool(target.host, target.port, timeout=600, retries=False)
        query = f"INSERT INTO {target.database}.{parse(url).table} FORMAT JSONEachRow"
        t = time.perf_counter()
        with open(rows, "rb") as fh:
            resp = pool.urlopen(
                "POST",
                "/?" + urlencode({"query": query}),
                body=fh,
                headers={"Content-Length": str(rows.stat().st_size)},
            )
        assert resp.status == 200, resp.data[:300]
        figures.append(("one HTTP POST of rows.jsonl", time.perf_counter() - t))
        assert count(url) == args.events

        print(
            f"rows pre-encoded by ship's encoder (not timed below): {encode_s:.1f} s, "
            f"{args.events / encode_s:,.0f} events/s, {rows.stat().st_size / 1e6:,.0f} MB"
        )
        for name, seconds in figures:
            print(
                f"{name:34} {seconds:7.1f} s  {args.events / seconds:10,.0f} events/s"
                f"  ship / this: {ship_s / seconds:5.2f}x the time"
            )
        if len(figures) > 1:
            best = min(s for _, s in figures[1:])
            print(f"ratio: ship reaches {best / ship_s:.2f} of the fastest baseline's rate")
        print(f"({os.cpu_count()} cores, shared; table schema v{schema.VERSION})")
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
