"""Recorded logs moved in time: a copy of a log folder whose newest event is a given moment.

Every time in an event line (``requestReceivedTimestamp``, ``stageTimestamp``, the legacy
``timestamp``, times inside request and response bodies) moves by one whole number of seconds,
so the spacing of events, their sub-second digits and the objects' second-precision times all
stay exact. Lumberjack backups are renamed to their rotation time moved by the same delta. Lines
that are not JSON events (klog text, a truncated line, garbage) are copied byte for byte."""

from __future__ import annotations

import calendar
import gzip
import os
import re
import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import orjson

from ..ingest.sources import GZIP_MAGIC, backup_key, backup_name
from .times import to_micros

# A JSON string holding an RFC 3339 UTC time: metav1.Time or MicroTime (any fraction digits).
_TIME = re.compile(rb'"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})((?:\.\d+)?Z)"')
_EVENT_TIMES = ("stageTimestamp", "timestamp", "requestReceivedTimestamp")


class _File:
    """One log file of the folder: its lines and, per line, the event's time (µs) or None."""

    def __init__(self, path: Path) -> None:
        self.path = path
        raw = path.read_bytes()
        self.compressed = raw[:2] == GZIP_MAGIC
        data = gzip.decompress(raw) if self.compressed else raw
        parts = data.split(b"\n")
        self.lines = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        self.times = [_event_time(line) for line in self.lines]

    def newest(self) -> int | None:
        return max((t for t in self.times if t is not None), default=None)


def copy_shifted(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], end_micros: int
) -> list[Path]:
    """Copy the files of the folder ``src`` into ``dst``, times moved so that the newest event
    falls in the second up to ``end_micros`` (µs since the epoch, UTC); ``src`` is only read.

    Returns the files written, in name order. A gzipped file stays gzipped (deterministically,
    mtime 0); each file's mtime is its newest event's time, as the API server leaves it."""
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise ValueError(f"{dst}: the shifted copy must be outside {src}")
    files = [_File(p) for p in sorted(src.iterdir()) if p.is_file()]
    newest = max((t for f in files if (t := f.newest()) is not None), default=None)
    if newest is None:
        raise ValueError(f"{src}: no audit events to move in time")
    delta = (end_micros - newest) // 1_000_000  # whole seconds
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        data = b"".join(
            line if t is None else _shift_line(line, delta)
            for line, t in zip(f.lines, f.times, strict=True)
        )
        out = dst / _shifted_name(f.path.name, delta)
        if f.compressed:
            with (
                open(out, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            ):
                gz.write(data)
        else:
            out.write_bytes(data)
        if (t := f.newest()) is not None:
            ns = (t + delta * 1_000_000) * 1000
            os.utime(out, ns=(ns, ns))
        written.append(out)
    return sorted(written)


def _event_time(line: bytes) -> int | None:
    """The time of the audit event on ``line`` (µs), or None for a line that is no event."""
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(ev, dict):
        return None
    for key in _EVENT_TIMES:
        value = ev.get(key)
        if isinstance(value, str):
            try:
                return to_micros(datetime.fromisoformat(value))
            except ValueError:
                return None
    return None


def _shift_line(line: bytes, delta: int) -> bytes:
    """``line`` with every quoted UTC time moved by ``delta`` seconds (fractions untouched)."""
    return _TIME.sub(lambda m: b'"%s%s"' % (_moved(m[1], delta), m[2]), line)


@lru_cache(maxsize=1 << 16)
def _moved(second: bytes, delta: int) -> bytes:
    """``YYYY-MM-DDTHH:MM:SS`` moved by ``delta`` seconds."""
    sec = calendar.timegm(time.strptime(second.decode(), "%Y-%m-%dT%H:%M:%S")) + delta
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()


def _shifted_name(name: str, delta: int) -> str:
    """A backup's name with its rotation time moved by ``delta`` seconds; others unchanged."""
    key = backup_key(name)
    if key is None:
        return name
    live, stamp, gz = key
    sec = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H-%M-%S")) + delta
    micros = sec * 1_000_000 + int(stamp[20:23]) * 1000
    return backup_name(live, micros) + (".gz" if gz else "")
