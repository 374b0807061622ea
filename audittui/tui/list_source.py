"""What the event list draws its rows from: a :class:`ListSource`, one of two kinds.

:class:`MemoryRows` is the in-memory index's selection (a numpy
:class:`~audittui.analyses.view.RowView`): every row is held, positions are exact and pages
are free. :class:`~audittui.tui.paged_rows.PagedRows` is a stretch of a backend's selection
fetched by keyset (a store): it holds a few pages and says whether the selection goes on
before and after them. The list asks both the same few questions.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from ..analyses.view import RowView
from .columns import cells


class ListSource(Protocol):
    """Rows in list order, the event under each named by an identity the list caches by."""

    @property
    def order(self) -> str:  # analyses.view.TIME or SLOWEST
        ...

    @property
    def requests(self) -> Any:  # set: one row per request (memory only)
        ...

    @property
    def more_before(self) -> bool:  # the selection goes on before the rows held (paged only)
        ...

    @property
    def more_after(self) -> bool: ...

    def __len__(self) -> int: ...
    def ident(self, row: int) -> Hashable:
        """The event shown on ``row`` (memory: its store index; paged: its key)."""
        ...

    def line(self, row: int, with_date: bool) -> tuple[dict[str, str], bool]:
        """``row``'s cells (:func:`~audittui.tui.columns.row_cells`) and whether its request is
        still open (started, never completed)."""
        ...

    def nearest(self, ident: Any) -> int:
        """The row of event ``ident``, or of the closest one in list order."""
        ...

    def next_error(self, row: int, step: int) -> int | None: ...


class MemoryRows:
    """The in-memory selection as a list source: the view's rows, read from its columns."""

    more_before = False
    more_after = False

    def __init__(self, view: RowView) -> None:
        self.view = view

    @property
    def order(self) -> str:
        return self.view.order

    @property
    def requests(self) -> Any:
        return self.view.requests

    def __len__(self) -> int:
        return len(self.view.rows)

    def ident(self, row: int) -> int:
        return int(self.view.rows[row])

    def line(self, row: int, with_date: bool) -> tuple[dict[str, str], bool]:
        event = int(self.view.rows[row])
        requests = self.view.requests
        is_open = requests is not None and requests.is_open(self.view.store, event)
        return cells(self.view.store, event, with_date), is_open

    def is_open(self, row: int) -> bool:
        requests = self.view.requests
        return requests is not None and requests.is_open(self.view.store, self.ident(row))

    def nearest(self, ident: Any) -> int:
        return self.view.nearest(int(ident))

    def next_error(self, row: int, step: int) -> int | None:
        return self.view.next_error(row, step)
