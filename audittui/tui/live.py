"""What the summary, histogram and policy panes share: each computes its content in a thread
over the list's rows, while it is shown, again when the rows change, at most every
:data:`EVERY` seconds (:class:`~audittui.tui.schedule.Throttle`)."""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message
from textual.widget import Widget

from ..output.inert import inert
from .schedule import Throttle

EVERY = 0.5  # s between live refreshes of the pane shown


class LiveAnalysis:
    """Mixed into a pane (before its widget class, which Textual's CSS then follows) whose
    :meth:`compute` starts a worker that posts its result back."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self, Widget)
        self.shown = False
        self.schedule = Throttle(self, EVERY, self.compute, ready=self.ready)

    def stale(self) -> None:
        """The rows (or what the pane groups them by) changed: recompute when shown."""
        self.schedule.request()

    def show_pane(self, shown: bool) -> None:
        self.shown = shown
        self.schedule.poke()

    def ready(self) -> bool:
        return self.shown

    def compute(self) -> bool:
        """Start the worker (:meth:`in_thread`); True: its result calls :meth:`finished`."""
        raise NotImplementedError

    def in_thread(self, result: Callable[[], Message]) -> None:
        """Compute ``result`` in a worker thread and post it to this pane (its handler shows
        it and calls :meth:`finished`); a failure is said, and the refreshes go on."""
        assert isinstance(self, Widget)
        pane = self

        def work() -> None:
            try:
                pane.post_message(result())
            except Exception as exc:
                pane.app.call_from_thread(pane.failed, exc)

        pane.run_worker(work, thread=True, group=type(pane).__name__, exit_on_error=False)

    def finished(self) -> None:
        self.schedule.done()

    def failed(self, exc: Exception) -> None:
        """From the worker's thread, through ``call_from_thread``: say so, go on."""
        assert isinstance(self, Widget)
        self.notify(f"{type(self).__name__}: {inert(str(exc))}", severity="error", markup=False)
        self.schedule.done()
