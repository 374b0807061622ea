"""Times and durations in the layouts the API server writes (all UTC, in µs since the epoch)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

DEFAULT_START = datetime(2025, 11, 26, 9, 0, 0, tzinfo=UTC)

_SEC_CACHE: dict[int, str] = {}


def to_micros(dt: datetime) -> int:
    """Microseconds since the epoch (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (int(dt.timestamp()) * 1_000_000) + dt.microsecond


def micro_time(us: int) -> str:
    """MicroTime as the API server writes it: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    sec, frac = divmod(us, 1_000_000)
    prefix = _SEC_CACHE.get(sec)
    if prefix is None:
        if len(_SEC_CACHE) > 8192:
            _SEC_CACHE.clear()
        prefix = _SEC_CACHE[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{prefix}.{frac:06d}Z"


def seconds_time(us: int) -> str:
    """metav1.Time (second precision), used inside objects."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us // 1_000_000))


def go_duration(ns: int) -> str:
    """Go ``time.Duration.String()`` for a positive duration in nanoseconds."""

    def trim(x: str) -> str:
        return x.rstrip("0").rstrip(".") if "." in x else x

    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return trim(f"{ns / 1e3:.3f}") + "µs"
    if ns < 1_000_000_000:
        return trim(f"{ns / 1e6:.6f}") + "ms"
    m, rest = divmod(ns, 60_000_000_000)
    s = trim(f"{rest / 1e9:.9f}") + "s"
    return f"{m}m{s}" if m else s
