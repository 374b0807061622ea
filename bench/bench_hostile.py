"""Hostile input: time and peak memory of ``audittui.load`` on files made to hurt a reader.

    python bench/bench_hostile.py [--dir /tmp/audittui-hostile]

Each file is loaded in a fresh process (both cores); printed: events, malformed lines (exact)
and how many are kept, the load time and the peak RSS (``ru_maxrss``), next to the file's
longest line. Files: one 100 MB event (a RequestResponse body), a line nested 100,000 levels
deep, an event whose body is nested 100,000 levels deep, a line of ten million commas, ten
million empty objects (one per line), a gzip bomb (2,000 events, then 4 GiB of zeros in 4 MB)
and 300 MB without a newline after ten events. The peak is the larger of the loading process's
and its largest worker's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, resource, sys, time
import audittui
t = time.perf_counter()
store = audittui.load(sys.argv[1])
print(json.dumps({"events": len(store), "malformed": len(store.malformed),
                  "kept": store.malformed.kept, "load": time.perf_counter() - t,
                  "peak": max(resource.getrusage(who).ru_maxrss * 1024  # workers included
                              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))}))
"""

EVENT = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
    "auditID": "6a1f3c1e-4a7e-4b0e-9a55-0c3f1f2b9d10", "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/default/configmaps", "verb": "create",
    "user": {"username": "alice"}, "requestReceivedTimestamp": "2026-12-01T10:00:00.000000Z",
    "stageTimestamp": "2026-12-01T10:00:00.004000Z",
}  # fmt: skip


def files(folder: Path) -> dict[str, tuple[Path, int]]:
    """name → (path, longest line in bytes), written on first use."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, tuple[Path, int]] = {}

    def make(name: str, write) -> None:
        path = folder / name
        if not path.exists():
            with open(path, "wb") as fh:
                write(fh)
        longest = run = 0  # in small blocks, with numpy: the parent's peak RSS is inherited
        with open(path, "rb") as fh:  # by the children it starts (Linux keeps it across exec)
            for block in iter(lambda: fh.read(1 << 20), b""):
                ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                if not len(ends):
                    run += len(block)
                    continue
                gaps = np.diff(ends) - 1
                longest = max(longest, run + int(ends[0]), int(gaps.max()) if len(gaps) else 0)
                run = len(block) - int(ends[-1]) - 1
        longest = max(longest, run)
        made[name] = (path, -1 if name.endswith(".gz") else longest)

    def big_event(fh) -> None:  # written in pieces: the parent's peak RSS carries into the
        head = json.dumps({**EVENT, "requestObject": {"data": {"blob": ""}}})  # children
        fh.write(head[: -len('""}}}')].encode() + b'"')
        for _ in range(100):
            fh.write(b"x" * 1_000_000)
        fh.write(b'"}}}\n')

    def deep_event(fh) -> None:  # Go's decoder takes it (10,000 levels); a patch is logged as sent
        head = json.dumps({**EVENT, "verb": "patch", "user": {"username": "mallory"}})
        fh.write(head[:-1].encode() + b', "requestObject": ')
        fh.write(b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}\n")

    def bomb(fh) -> None:
        line = json.dumps(EVENT).encode() + b"\n"
        fh.write(gzip.compress(line * 2000, mtime=0))
        zeros = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
        for _ in range(64):  # concatenated members are one stream: 4 GiB of zeros
            fh.write(zeros)

    def endless(fh) -> None:
        fh.write((json.dumps(EVENT).encode() + b"\n") * 10)
        for _ in range(300):
            fh.write(b"x" * 1_000_000)

    make("one-100MB-event.log", big_event)
    make("nested-100k.log", lambda fh: fh.write(b"[" * 100_000 + b"]" * 100_000 + b"\n"))
    make("deep-body-100k.log", deep_event)
    make("ten-million-commas.log", lambda fh: fh.write(b"," * 10_000_000 + b"\n"))
    make("ten-million-empty-objects.log", lambda fh: fh.write(b"{}\n" * 10_000_000))
    make("gzip-bomb-4GiB.log.gz", bomb)
    make("300MB-without-newline.log", endless)
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/audittui-hostile"))
    args = ap.parse_args()
    row = "{:<32} {:>10} {:>12} {:>9} {:>9} {:>11} {:>12}"
    print(row.format("file", "events", "malformed", "kept", "load", "peak RSS", "longest line"))
    for name, (path, longest) in files(args.dir).items():
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout)
        print(
            row.format(
                name, f"{r['events']:,}", f"{r['malformed']:,}", f"{r['kept']:,}",
                f"{r['load']:.2f}s", f"{r['peak'] / 2**20:,.0f} MiB",
                f"{longest / 2**20:,.1f} MiB" if longest >= 0 else "(gzip)",
            )
        )  # fmt: skip


if __name__ == "__main__":
    main()
