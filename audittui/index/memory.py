"""Give freed heap memory back to the operating system.

Once big numpy arrays have been freed, glibc raises its mmap threshold, so later temporaries of
the same size come from the heap, and pages freed there stay in the process's RSS. After a bulk
load or a pass of analyses over every event, :func:`release` returns them (a few ms); on other
C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

_trim: Callable[[int], int] | None
try:
    _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _trim = None


def release() -> None:
    if _trim is not None:
        _trim(0)
