"""A page of a backend's rows as the event printers read events (``value``, ``raw``), so that
an event prints the same whichever backend holds it."""

from __future__ import annotations

from typing import Any

from ..backend.protocol import Row


class Printed:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def value(self, name: str, i: int) -> Any:
        return self.rows[i].values.get(name)

    def raw(self, i: int) -> bytes:
        raw = self.rows[i].raw
        assert raw is not None  # asked for with the page
        return raw
