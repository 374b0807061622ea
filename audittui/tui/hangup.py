"""Running the app so that SIGTERM and SIGHUP (a ``kill``, the terminal or the SSH session
gone) quit it as ``q`` does, its files removed (the mirrored copies of remote logs, the spool
of a pipe) and the terminal restored, and so that the process always ends.

Python's default, an exception raised wherever the main thread happens to be, broke
Textual's shutdown when it landed inside it: a hang-up just after ``q`` left the input thread
spinning on the dead terminal and the process waiting for it forever. Here the signal asks
the app's loop to exit. A terminal that vanished can still stall Textual's own shutdown (its
writer thread dies on the closed terminal and the next write waits for it), so a signal also
starts a watchdog: if the process has not ended :data:`GRACE` seconds later, it removes the
files itself and exits.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

SIGNALS = (signal.SIGTERM, signal.SIGHUP)
GRACE = 5.0  # s from the signal to a forced exit (a normal one takes well under a second)


def run(app: App[Any], cleanup: Callable[[], None]) -> int:
    """Run ``app``, then ``cleanup()`` (once, whatever happens): 0, or 128 + the signal that
    quit it."""
    once = _Once(cleanup)
    loops: list[asyncio.AbstractEventLoop] = []
    signalled: list[int] = []
    # Started now, not from the handler: a handler may run while the main thread holds
    # threading's own locks, and starting a thread takes them.
    alarm = threading.Event()
    threading.Thread(target=_watchdog, args=(alarm, once, signalled), daemon=True).start()

    def received(signum: int, _frame: object) -> None:
        if signalled:
            return  # the watchdog is already counting
        signalled.append(128 + signum)
        alarm.set()
        if loops and not loops[0].is_closed():
            loops[0].call_soon_threadsafe(app.exit, None, signalled[0])

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await app.run_async()

    main_thread = threading.current_thread() is threading.main_thread()
    # (only the main thread takes signals: an app run from another thread keeps the default)
    before = {sig: signal.signal(sig, received) for sig in SIGNALS} if main_thread else {}
    try:
        asyncio.run(main())
    finally:
        once()
        for sig, handler in before.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    return signalled[0] if signalled else app.return_code or 0


class _Once:
    """``cleanup`` run by the first caller; a second waits for it (a while) and returns."""

    def __init__(self, cleanup: Callable[[], None]) -> None:
        self._cleanup = cleanup
        self._lock = threading.Lock()
        self._done = False

    def __call__(self, timeout: float = -1) -> None:
        if not self._lock.acquire(timeout=timeout):
            return
        try:
            if not self._done:
                self._done = True
                self._cleanup()
        finally:
            self._lock.release()


def _watchdog(alarm: threading.Event, cleanup: _Once, code: list[int]) -> None:
    alarm.wait()
    time.sleep(GRACE)
    try:
        cleanup(timeout=GRACE)
    finally:
        for child in multiprocessing.active_children():  # the indexer's pool, if it runs
            child.kill()
        os._exit(code[0])
