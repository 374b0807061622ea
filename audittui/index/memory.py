"""Give freed heap memory back to the operating system.

Once big numpy arrays have been freed, glibc raises its mmap threshold, so later temporaries of
the same size come from the heap, and pages freed there stay in the process's RSS. After a bulk
load or a pass of analyses over every event, :func:`release` returns them (a few ms); on other
C libraries it does nothing.

:func:`fixed_mmap_threshold` (the command and the app call it first) keeps the threshold where
it is, so that every big array is mapped on its own and unmapped when freed. Measured on the
realistic 1M-event log with bench/bench_tui.py's procedure (2026-12-02): the app once indexed
held 339–368 MiB from run to run with the moving threshold (six runs) and 318–325 MiB with a
fixed 4 MiB one (six runs), with no difference in the time to the first screen or to
everything indexed between the two, measured in the same sitting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
BIG = 4 << 20  # bytes from which an allocation gets its own mapping

_trim: Callable[[int], int] | None
_mallopt: Callable[[int, int], int] | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim, _mallopt = _libc.malloc_trim, _libc.mallopt
except (OSError, AttributeError):  # not glibc
    _trim = _mallopt = None


def fixed_mmap_threshold() -> None:
    """Allocations of :data:`BIG` bytes or more are mapped on their own, whatever was freed
    before (glibc would otherwise raise the threshold after each big free)."""
    if _mallopt is not None:
        _mallopt(M_MMAP_THRESHOLD, BIG)


def release() -> None:
    if _trim is not None:
        _trim(0)
