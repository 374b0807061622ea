"""Stopping the evaluation of a query nobody waits for any more.

The app evaluates its filter in a thread; a newer filter (the next character typed, Enter, a
drill-down) supersedes the one still running, whose result would only be dropped. A thread
that evaluates on behalf of something that can be superseded does so inside
:func:`interruptible`; the evaluation calls :func:`checkpoint` between its steps (each node of
the query, each block of a free-text scan), which raises :class:`Interrupted` once the event is
set, so the old filter stops within one step instead of competing for the CPU with the new one.
Outside :func:`interruptible` a checkpoint costs one attribute lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Interrupted(Exception):
    """The evaluation was superseded: its result is not wanted."""


_local = threading.local()


@contextmanager
def interruptible(stop: threading.Event) -> Iterator[None]:
    """Evaluations in this thread, within the block, end at their next checkpoint once
    ``stop`` is set."""
    previous = getattr(_local, "stop", None)
    _local.stop = stop
    try:
        yield
    finally:
        _local.stop = previous


def checkpoint() -> None:
    """Raise :class:`Interrupted` if this thread's evaluation was superseded."""
    stop = getattr(_local, "stop", None)
    if stop is not None and stop.is_set():
        raise Interrupted
