"""The worker processes that parse slices of big files: forked, and gone with their parent.

A forked worker inherits its parent's signal handlers (the app's SIGTERM asks a loop the worker
does not run to exit) and, as every worker holds the pool's pipes, never sees them close when
the parent dies: a SIGKILLed app or command left its workers sleeping forever. Each worker
therefore takes the default signal actions and asks the kernel for SIGKILL when its parent
goes (``PR_SET_PDEATHSIG``; it checks at once whether that already happened)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` forked processes that die with the process that made them."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_tie_to_parent,
        initargs=(os.getpid(),),
    )


def _tie_to_parent(parent: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to act on
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipes still end an orderly exit
        pass
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)
