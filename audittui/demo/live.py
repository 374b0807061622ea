"""Live appends: events stamped with the current time, written at their rate like the API
server writes them (one ``write()`` per line, rotated by :class:`.LumberjackWriter`)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from .lumberjack import LumberjackWriter
from .stream import stream


def live_path(folder_or_file: str | os.PathLike[str]) -> Path:
    """The file appended to: ``<folder>/audit.log``, or the file given (parents created)."""
    p = Path(folder_or_file)
    if p.is_dir() or (not p.exists() and not p.suffix):
        p.mkdir(parents=True, exist_ok=True)
        return p / "audit.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def append_live(
    folder_or_file: str | os.PathLike[str],
    *,
    rate: float = 20.0,
    seed: int = 99,
    stop: threading.Event | None = None,
    rotate_bytes: int | None = None,
    compress: bool = True,
    body_fraction: float = 0.02,
    demo: bool = True,
) -> int:
    """Append events stamped with the current time to ``<folder>/audit.log`` at ``rate`` events/s.

    One ``write()`` per whole line on an ``O_APPEND`` fd (unbuffered). With ``rotate_bytes`` the
    file is rotated like lumberjack (close, rename to ``audit-<UTC %Y-%m-%dT%H-%M-%S.mmm>.log``,
    new ``audit.log``; if ``compress`` the backup is gzipped in a background thread). Runs until
    ``stop`` is set or KeyboardInterrupt; waits for pending compressions; returns events written.
    The event sequence equals ``iter_lines(seed=seed, rate=rate, body_fraction=body_fraction,
    demo=demo)`` apart from the timestamps: by default the demo cluster's (its audit policy and
    attack stories; ``body_fraction`` then unused).
    """
    stop = stop or threading.Event()
    writer = LumberjackWriter(live_path(folder_or_file), rotate_bytes, compress)
    start_us = time.time_ns() // 1000
    mono0 = time.monotonic()
    start = datetime.fromtimestamp(start_us // 1_000_000, UTC).replace(
        microsecond=start_us % 1_000_000
    )
    events = stream(seed, start, rate, body_fraction, demo=demo)
    count = 0
    dumps = orjson.dumps
    try:
        for us, ev in events:
            delay = (us - start_us) / 1e6 - (time.monotonic() - mono0)
            if delay > 0 and stop.wait(delay):
                break
            if stop.is_set():
                break
            writer.write(dumps(ev) + b"\n")
            count += 1
    except KeyboardInterrupt:
        pass
    finally:
        writer.close()
    return count
