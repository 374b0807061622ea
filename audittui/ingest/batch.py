"""Raw bytes → a columnar batch of events with its own small string tables.

A batch is what a parser worker (another process while bulk loading, a thread while following)
hands to the store: numpy arrays of codes and numbers plus, per string column, the list of
distinct values the codes point into. The store remaps codes into its global tables, so workers
never share state. Nothing here keeps a dict per event.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import audit_ids, deep
from .bounds import LINE_MAX
from .field_types import wrong_types
from .formats import (
    PROFILE_FIELDS,
    UNIQUE_FIELDS,
    UUID_ID,
    WHAT_FIELDS,
    WHO_FIELDS,
    Packed,
    decode_line,
    decode_record,
    expand,
    fast_packed,
    pack,
    row,
    without_surrogates,
)
from .malformed import Capped
from .packed import PackedStrings
from .wrappers import cri_partial, docker_split, partial, stream_of

# String columns, dictionary-encoded; code 0 always means "the event lacks this field".
STRING_COLUMNS = PROFILE_FIELDS + UNIQUE_FIELDS
# Numeric columns and their numpy dtypes.
NUMBER_COLUMNS = {
    "time": np.int64,  # event time, µs since the epoch
    "latency": np.int64,  # µs, -1 unknown
    "code": np.int32,  # HTTP status, 0 unknown
    "flags": np.uint8,
    "offset": np.int64,  # byte offset of the line (or document) holding the event
    "length": np.int32,  # its length in bytes (may include a CR; a document is at most 1 GiB)
    "item": np.int32,  # -1: the line is the event; k: k-th event expanded from it
    # A UUID auditID as 128 bits (flag UUID_ID); any other auditID is in the audit_id table.
    "audit_hi": np.uint64,
    "audit_lo": np.uint64,
}
ROW_NUMBERS = ("time", "latency", "code", "flags", "offset", "length", "item")  # per event
_UNFINISHED = "a split line (CRI P, Docker 16 KiB) whose final piece never came (cut off)"
_OVERSIZED = f"a split line (CRI P, Docker 16 KiB) whose pieces run past {LINE_MAX:,} bytes"
_INTERLEAVED = "a split line begun amid the pieces of another stream's split line (not joined)"


@dataclass
class Batch:
    """Parsed events of one source, columnar, with batch-local string tables."""

    source: int
    numbers: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]  # code k > 0 points at tables[column][k - 1]
    tables: dict[str, list | PackedStrings]  # packed for the near-unique columns
    malformed: Capped[tuple[int, str]] = field(default_factory=Capped)  # (line number, reason)
    lines: int = 0  # newline-terminated lines consumed, for numbering the next batch
    # Fields of the wrong type, indexed as missing: (line number, "path: what it is")
    ignored: Capped[tuple[int, str]] = field(default_factory=Capped)

    def __len__(self) -> int:
        return len(self.numbers["time"])


class BatchBuilder:
    """Accumulates events from lines or documents of one source into a :class:`Batch`.

    The hot loop keeps per event its numbers and its four near-unique strings, and interns its
    two low-cardinality tuples, who and what (one dict lookup each; duplicates die young).
    :meth:`finish` encodes the distinct tuples column by column and gathers them for the
    events. Every column is dictionary-encoded with C-level builtins; the near-unique ones are
    packed for the arenas.
    """

    def __init__(self, source: int) -> None:
        self.source = source
        self._reset()

    def _reset(self) -> None:
        """Empty, for the next batch of the same source."""
        self._numbers = array("q")  # ROW_NUMBERS of each event, one after the other
        self._columns: tuple[list, ...] = ([], [], [], [])  # name, audit_id, uri, credential
        # who and what: each distinct tuple's code, and the code of each event's
        self._who: dict[tuple, int] = {}
        self._what: dict[tuple, int] = {}
        self._who_codes = array("i")
        self._what_codes = array("i")
        self.malformed: Capped[tuple[int, str]] = Capped()
        self.ignored: Capped[tuple[int, str]] = Capped()
        self.lines = 0

    def __len__(self) -> int:
        return len(self._numbers) // len(ROW_NUMBERS)

    def add_packed(self, p: Packed) -> None:
        self._numbers.extend(p[0])
        for column, value in zip(self._columns, p[1:5], strict=True):
            column.append(value)
        self._who_codes.append(self._who.setdefault(p[5], len(self._who)))
        self._what_codes.append(self._what.setdefault(p[6], len(self._what)))

    def add_event(self, ev: dict, offset: int, length: int, item: int) -> None:
        self.add_packed(pack(row(ev), offset, length, item))

    def add_value(
        self, value: object, offset: int, length: int, line_no: int, whole_line: bool = True
    ) -> int:
        """Add the events inside one parsed JSON value; record what was not an event; return
        how many events there were.

        With ``whole_line`` an event that is the entire value is re-read as the line itself.
        """
        events, why = expand(value)
        for ev in events:  # off the fast path: say which fields are read as missing
            for problem in wrong_types(ev):
                self.ignored.append((line_no, problem))
        if whole_line and len(events) == 1 and events[0] is value:
            self.add_event(value, offset, length, -1)
        else:
            for k, ev in enumerate(events):
                self.add_event(ev, offset, length, k)
        if why:
            self.malformed.append((line_no, why))
        return len(events)

    def add_lines(
        self, data: bytes, base_offset: int, first_line: int, final: bool, hold: bool = True
    ) -> int:
        """Parse the complete lines of ``data``; return how many bytes were consumed.

        A trailing piece without a newline is consumed only when ``final`` (end of a file read
        once): it is parsed if it is complete JSON and reported malformed otherwise. The pieces
        of a split line whose final piece is not in ``data`` are left for the next call, unless
        ``hold`` is off (they are over :data:`LINE_MAX`): then they are a malformed record.
        """
        pieces = data.split(b"\n")
        tail = pieces.pop()  # b"" when data ends with a newline
        if final and tail:
            pieces.append(tail)
        pos = base_offset
        line_no = first_line
        numbers = self._numbers.extend
        names, ids, uris, credentials = (c.append for c in self._columns)
        who, what = self._who, self._what
        who_code, what_code = who.get, what.get
        who_codes, what_codes = self._who_codes.append, self._what_codes.append
        joining: list[bytes] | None = None  # pieces of one split line (CRI P … P F, Docker)
        join_pos = join_line = 0
        join_stream: bytes | None = None
        between: list[tuple[bytes, int, int]] = []  # the other stream's lines amid the pieces
        for line in pieces:
            if joining is not None:
                joining.append(line)
                if stream_of(line) != join_stream:  # read once the split line is complete
                    if line.strip():
                        between.append((line, pos, line_no))
                elif not partial(line):  # the final piece
                    self._add_joined(joining, join_pos, join_line)
                    joining = None
                    for args in between:
                        self._add_other(*args, is_tail=False, may_split=False)
                    between = []
                pos += len(line) + 1
                line_no += 1
                continue
            p = fast_packed(line, pos)
            if p is not None:
                # add_packed, inlined: this loop runs once per event of every bulk load.
                numbers(p[0])
                names(p[1])
                ids(p[2])
                uris(p[3])
                credentials(p[4])
                code = who_code(p[5])
                if code is None:
                    code = who[p[5]] = len(who)
                who_codes(code)
                code = what_code(p[6])
                if code is None:
                    code = what[p[6]] = len(what)
                what_codes(code)
            elif line.strip() and self._add_other(line, pos, line_no, line is tail, True):
                joining, join_pos, join_line = [line], pos, line_no
                join_stream = stream_of(line)
            pos += len(line) + 1
            line_no += 1
        if joining is not None:
            if not final and hold:  # its last piece is still to come: read it again with the rest
                self.lines += join_line - first_line
                return join_pos - base_offset
            self.malformed.append((join_line, _UNFINISHED if final else _OVERSIZED))
            for args in between:
                self._add_other(*args, is_tail=args[0] is tail, may_split=False)
        self.lines += len(pieces) - (1 if final and tail else 0)
        return len(data) - (0 if final else len(tail))

    def too_long(self, line_no: int, length: int, newline: bool) -> None:
        """A line longer than :data:`LINE_MAX`, skipped unread: a malformed record."""
        self.malformed.append((line_no, too_long(length)))
        self.lines += newline

    def _add_other(
        self, line: bytes, pos: int, line_no: int, is_tail: bool, may_split: bool
    ) -> bool:
        """A line the fast path did not take: a wrapped, legacy, odd or malformed one. True
        when it is the first piece of a split line, to be joined with the pieces to come."""
        plain = line.lstrip()[:1] in (b"{", b"[")
        deep.collect()
        try:
            split = cri_partial(line)
            value, note = (None, None) if split else decode_record(line)
        except ValueError as exc:
            reason = str(exc)
            if is_tail:
                reason = f"last line without newline: {reason}"
            self.malformed.append((line_no, reason))
            return False
        if split or docker_split(value):  # the first piece of a split line
            if may_split:
                return True
            self.malformed.append((line_no, _INTERLEAVED))
            return False
        # A wrapped line's event is re-read through its wrapper (item 0).
        if self.add_value(value, pos, len(line), line_no, whole_line=plain):
            self.opaque(line_no, deep.taken())
        if note:
            self.malformed.append((line_no, note))
        return False

    def _add_joined(self, pieces: list[bytes], pos: int, line_no: int) -> None:
        """One line a container runtime split: re-read later through the same decode_line."""
        joined = b"\n".join(pieces)
        deep.collect()
        try:
            value = decode_line(joined)
        except ValueError:
            self.malformed.append((line_no, "the pieces of a split line joined are not JSON"))
        else:
            if self.add_value(value, pos, len(joined), line_no, whole_line=False):
                self.opaque(line_no, deep.taken())

    def opaque(self, line_no: int, members: list[str]) -> None:
        """Members nested too deep, read as notes in their place (see :mod:`.deep`), of a
        record that held events: fields read as missing, the events kept, as for a field of the
        wrong type."""
        for member in members:
            self.ignored.append((line_no, deep.reason(member)))

    def finish(self) -> Batch:
        numbers: dict[str, np.ndarray] = {}
        codes: dict[str, np.ndarray] = {}
        tables: dict[str, list | PackedStrings] = {}
        table = np.frombuffer(self._numbers, dtype=np.int64).reshape(-1, len(ROW_NUMBERS))
        for k, name in enumerate(ROW_NUMBERS):
            numbers[name] = table[:, k].astype(NUMBER_COLUMNS[name])
        for name, values in zip(UNIQUE_FIELDS, self._columns, strict=True):
            if name == "audit_id":
                hi, lo, uuid = audit_ids.parse(values)
                numbers["audit_hi"], numbers["audit_lo"] = hi, lo
                numbers["flags"] |= uuid.astype(np.uint8) * np.uint8(UUID_ID)
                other = np.flatnonzero(~uuid)
                local, distinct = _encode([values[k] for k in other.tolist()])
                codes[name] = np.zeros(len(values), dtype=np.int32)
                codes[name][other] = local
            else:
                codes[name], distinct = _encode(values)
            # Encoded and hashed here, in the worker: the parent only looks hashes up.
            try:
                tables[name] = PackedStrings.of(distinct, strict=True)
            except UnicodeEncodeError:  # a lone surrogate (see _without_lone_surrogates)
                codes[name], distinct = _without_lone_surrogates(codes[name], distinct)
                tables[name] = PackedStrings.of(distinct)
        for fields, index, per_event in (
            (WHO_FIELDS, self._who, self._who_codes),
            (WHAT_FIELDS, self._what, self._what_codes),
        ):
            gather = np.frombuffer(per_event, dtype=np.int32)
            columns = zip(*index, strict=True) if index else ((),) * len(fields)
            for name, column in zip(fields, columns, strict=True):
                # The core API group is "": a value, not a missing one.
                coded, distinct = _encode(column, name != "api")
                if not all(map(_is_text, distinct)):
                    coded, distinct = _without_lone_surrogates(coded, distinct)
                codes[name], tables[name] = coded[gather], distinct
        # Sent to the loading process through a pipe: each array as narrow as its values.
        for name in ("code", "length", "item"):
            numbers[name] = _narrow(numbers[name])
        codes = {name: _narrow(coded) for name, coded in codes.items()}
        batch = Batch(self.source, numbers, codes, tables, self.malformed, self.lines, self.ignored)
        self._reset()
        return batch


def too_long(length: int) -> str:
    """The reason of a line longer than :data:`LINE_MAX`."""
    return f"a line of {length:,} bytes, over the {LINE_MAX:,}-byte bound (AUDITTUI_LINE_MAX)"


def _narrow(values: np.ndarray) -> np.ndarray:
    """``values`` in the smallest integer dtype that holds them all."""
    if not len(values):
        return values
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.uint8, np.int8, np.uint16, np.int16):
        if np.iinfo(dtype).min <= lo and hi <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values


def _is_text(value: Any) -> bool:
    """Can ``value`` (a string or a tuple of them) be written as UTF-8?"""
    if type(value) is tuple:
        return all(map(_is_text, value))
    if type(value) is not str or value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _without_lone_surrogates(codes: np.ndarray, distinct: list) -> tuple[np.ndarray, list]:
    """The values with each lone surrogate (a JSON "\\ud800" escape, which msgspec and the
    standard library keep) as U+FFFD, as Go's encoding/json and :func:`formats.parse_json`
    read it, and the codes made dense again: two values that differed only there are one."""
    recoded, unique = _encode(without_surrogates(distinct), empty_is_missing=False)
    lut = np.concatenate([np.zeros(1, dtype=np.int32), recoded.astype(np.int32)])
    return lut[codes], unique


_EMPTY = (None, "", ())


def _encode(values: Sequence[Any], empty_is_missing: bool = True) -> tuple[np.ndarray, list]:
    """Dictionary-encode: 1-based codes (0 for None, and for "" and () unless told otherwise)
    and the distinct values in code order. One C-level dict operation per value.
    """
    first: dict = {}
    seen = np.fromiter(
        map(first.setdefault, values, itertools.count()), dtype=np.int64, count=len(values)
    )
    # `seen` holds the position of each value's first occurrence; make it dense and 1-based.
    dense = np.zeros(len(values), dtype=np.int32)
    # Missing values keep code 0: leave their first positions out of the dense numbering.
    for empty in _EMPTY if empty_is_missing else (None,):
        first.pop(empty, None)
    starts = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    dense[starts] = np.arange(1, len(starts) + 1, dtype=np.int32)
    return dense[seen], list(first)
