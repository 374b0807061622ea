"""Raw bytes → a columnar batch of events with its own small string tables.

A batch is what a parser worker (another process while bulk loading, a thread while following)
hands to the store: numpy arrays of codes and numbers plus, per string column, the list of
distinct values the codes point into. The store remaps codes into its global tables, so workers
never share state. Nothing here keeps a dict per event.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .formats import PROFILE_FIELDS, UNIQUE_FIELDS, decode_line, expand, fast_packed, pack, row

# String columns, dictionary-encoded; code 0 always means "the event lacks this field".
STRING_COLUMNS = PROFILE_FIELDS + UNIQUE_FIELDS
# Numeric columns and their numpy dtypes.
NUMBER_COLUMNS = {
    "time": np.int64,  # event time, µs since the epoch
    "latency": np.int64,  # µs, -1 unknown
    "code": np.int32,  # HTTP status, 0 unknown
    "flags": np.uint8,
    "offset": np.int64,  # byte offset of the line (or document) holding the event
    "length": np.int64,  # its length in bytes (may include a CR)
    "item": np.int32,  # -1: the line is the event; k: k-th event expanded from it
}


@dataclass
class Batch:
    """Parsed events of one source, columnar, with batch-local string tables."""

    source: int
    numbers: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]  # code k > 0 points at tables[column][k - 1]
    tables: dict[str, list]
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    lines: int = 0  # newline-terminated lines consumed, for numbering the next batch

    def __len__(self) -> int:
        return len(self.numbers["time"])


class BatchBuilder:
    """Accumulates events from lines or documents of one source into a :class:`Batch`.

    The hot loop only appends one packed tuple per event; :meth:`finish` transposes and
    dictionary-encodes them with C-level builtins (zip, dict.fromkeys, map).
    """

    def __init__(self, source: int) -> None:
        self.source = source
        self._rows: list[tuple] = []
        self.malformed: list[tuple[int, str]] = []
        self.lines = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add_event(self, ev: dict, offset: int, length: int, item: int) -> None:
        self._rows.append(pack(row(ev), offset, length, item))

    def add_value(self, value: object, offset: int, length: int, line_no: int) -> None:
        """Add the events inside one parsed JSON value; record what was not an event."""
        events, why = expand(value)
        if len(events) == 1 and events[0] is value:
            self.add_event(value, offset, length, -1)
        else:
            for k, ev in enumerate(events):
                self.add_event(ev, offset, length, k)
        if why:
            self.malformed.append((line_no, why))

    def add_lines(self, data: bytes, base_offset: int, first_line: int, final: bool) -> int:
        """Parse the complete lines of ``data``; return how many bytes were consumed.

        A trailing piece without a newline is consumed only when ``final`` (end of a file read
        once): it is parsed if it is complete JSON and reported malformed otherwise.
        """
        pieces = data.split(b"\n")
        tail = pieces.pop()  # b"" when data ends with a newline
        if final and tail:
            pieces.append(tail)
        pos = base_offset
        line_no = first_line
        append = self._rows.append
        for line in pieces:
            packed = fast_packed(line, pos)
            if packed is not None:
                append(packed)
            elif line.strip():
                try:
                    value = decode_line(line)
                except ValueError as exc:
                    reason = str(exc)
                    if line is tail:
                        reason = f"last line without newline: {reason}"
                    self.malformed.append((line_no, reason))
                else:
                    self.add_value(value, pos, len(line), line_no)
            pos += len(line) + 1
            line_no += 1
        self.lines += len(pieces) - (1 if final and tail else 0)
        return len(data) - (0 if final else len(tail))

    def finish(self) -> Batch:
        rows = self._rows
        self._rows = []
        numbers: dict[str, np.ndarray] = {}
        codes: dict[str, np.ndarray] = {}
        tables: dict[str, list] = {}
        if not rows:
            for name, dtype in NUMBER_COLUMNS.items():
                numbers[name] = np.empty(0, dtype)
            for name in STRING_COLUMNS:
                codes[name] = np.empty(0, np.int32)
                tables[name] = []
            return Batch(self.source, numbers, codes, tables, self.malformed, self.lines)
        columns = list(zip(*rows, strict=True))
        for k, (name, dtype) in enumerate(NUMBER_COLUMNS.items()):
            numbers[name] = np.array(columns[k], dtype=dtype)
        for k, name in enumerate(UNIQUE_FIELDS, start=len(NUMBER_COLUMNS)):
            codes[name], tables[name] = _encode(columns[k])
        profile_codes, profiles = _encode(columns[-1], none_is_zero=False)
        for k, name in enumerate(PROFILE_FIELDS):
            per_profile, tables[name] = _encode([p[k] for p in profiles])
            codes[name] = per_profile[profile_codes]
        return Batch(self.source, numbers, codes, tables, self.malformed, self.lines)


def _encode(values: tuple | list, none_is_zero: bool = True) -> tuple[np.ndarray, list]:
    """Dictionary-encode: codes (1-based, or 0-based without none_is_zero; None → 0) and the
    distinct values in code order. One C-level dict operation per value."""
    first: dict = {}
    seen = np.fromiter(
        map(first.setdefault, values, itertools.count()), dtype=np.int64, count=len(values)
    )
    distinct = list(first)
    # `seen` holds the position of each value's first occurrence; make it dense.
    starts = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    dense = np.zeros(len(values), dtype=np.int32)
    dense[starts] = np.arange(len(starts), dtype=np.int32)
    codes = dense[seen]
    if none_is_zero:
        codes += 1
        if None in first:
            none_code = int(dense[first[None]]) + 1
            codes[codes == none_code] = 0
            codes[codes > none_code] -= 1
            distinct.remove(None)
    return codes, distinct
