"""Everything the command line writes, through one object per stream (:class:`Out`): text
lines whose values are made inert before they are formatted in, JSON and CSV made inert here,
events as JSON lines (secrets masked unless revealed), table cells and rows, error lines. A
user name, URI or body from a log cannot reach the terminal (or a spreadsheet) as escapes, bidi
controls or formulas, and the commands have no other way to write (tests/test_layers.py)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TextIO

import orjson

from ..index.store import Store
from ..ingest.formats import format_duration, format_time
from ..ingest.wrappers import is_text_wrapper
from ..policy import Policy, PolicyError
from ..policy import load as load_policy
from .inert import fit, inert, inert_json
from .mask import mask_raw, mask_wrapper_text, might_need_mask

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would evaluate


def write_json(out: TextIO, value: Any) -> None:
    """``value`` as indented JSON, every unsafe character written as a ``\\uXXXX`` escape. A
    string no UTF-8 can hold (a file name of bytes that are not UTF-8, read as surrogates) is
    written with ``\\udcXX`` escapes, the JSON that reads back as exactly that name."""
    try:
        text = inert_json(orjson.dumps(value, option=orjson.OPT_INDENT_2)).decode()
    except TypeError:
        import json

        text = json.dumps(value, indent=2)  # ASCII: every other character escaped too
    out.write(text + "\n")


def csv_cell(value: Any) -> Any:
    """A CSV cell: log text made inert, and a text a spreadsheet would run as a formula
    quoted (OWASP's advice: a leading apostrophe)."""
    if not isinstance(value, str):
        return value
    text = inert(value)
    return "'" + text if text.startswith(_FORMULA) else text


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    w = csv.writer(out)
    w.writerow(header)
    w.writerows([csv_cell(v) for v in row] for row in rows)


PROG = "audittui"


class Out:
    """A text stream for the commands. :meth:`line` formats the program's own ``template``
    with ``values``, each string among them made inert first; the other methods write JSON,
    CSV and events, inert by construction."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def line(self, template: str = "", *values: object) -> None:
        safe = (inert(v) if isinstance(v, str) else v for v in values)
        self.stream.write(template.format(*safe) + "\n")

    def lines(self, template: str, rows: Iterable[Sequence[object]]) -> None:
        for row in rows:
            self.line(template, *row)

    def json(self, value: Any) -> None:
        """``value`` as indented JSON, every unsafe character a ``\\uXXXX`` escape."""
        write_json(self.stream, value)

    def json_stream(self, values: Iterable[Any]) -> None:
        """A JSON array of ``values`` as :meth:`json` writes it, one element at a time (a
        stream: never a list of them all)."""
        opening = "[\n"
        sep = opening
        for value in values:
            text = inert_json(orjson.dumps(value, option=orjson.OPT_INDENT_2)).decode()
            self.stream.write(sep + "  " + text.replace("\n", "\n  "))
            sep = ",\n"
        self.stream.write("[]\n" if sep is opening else "\n]\n")

    def csv(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        write_csv(self.stream, header, rows)

    def chunks(self, parts: Iterable[bytes]) -> None:
        """Bytes made inert by :func:`event_json` and the like, in big writes."""
        write_chunks(self.stream, parts)

    def flush(self) -> None:
        self.stream.flush()


def stdout() -> Out:
    return Out(sys.stdout)


def warn(template: str, *values: object) -> None:
    """``audittui: …`` on stderr (values made inert)."""
    Out(sys.stderr).line(f"{PROG}: {template}", *values)


def fail(message: str) -> int:
    """The one-line message of a command that cannot go on: exit status 2."""
    warn("{}", message)
    return 2


def read_policy(path: str) -> Policy | None:
    """The audit policy at ``path``, or None after printing every error (made inert)."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        for error in exc.errors:
            warn("{}: {}", path, error)
        return None


class Printable(Protocol):
    """What the event printers read of events: a Store, or a page of a backend's rows."""

    def value(self, name: str, i: int) -> Any: ...
    def raw(self, i: int) -> bytes: ...


def event_json(store: Printable, i: int, mask: bool = True) -> bytes:
    """Event ``i`` as one inert JSON line (without the newline), secrets masked when
    ``mask``: what ``query --format jsonl`` prints and an export writes."""
    return event_line(store.raw(i), mask)


def event_line(raw: bytes, mask: bool = True) -> bytes:
    """An event's JSON as one inert line (without the newline), masked when ``mask``."""
    if mask and might_need_mask(raw):
        raw = mask_raw(raw)
    return inert_json(raw)


def wrapper_lines(store: Store, rows: Iterable[int], mask: bool = True) -> Iterator[bytes]:
    """Each event's wrapper as read (``query --format wrapper``): text lines as they are,
    JSON records one per line, an event that is its own line as that line; a record holding
    several events, once. Secrets masked when ``mask``, the event's text folded with them."""
    last = None
    for i in rows:
        wrapper = store.wrapper(i)
        if wrapper is None:
            yield event_json(store, i, mask) + b"\n"
            continue
        if mask:
            wrapper = mask_wrapper_text(wrapper)
        text = (
            "\n".join(map(inert, wrapper)).encode()
            if is_text_wrapper(wrapper)
            else inert_json(orjson.dumps(wrapper))
        )
        if text != last:
            yield text + b"\n"
        last = text


TABLE_COLUMNS = (("TIME", 23), ("USER", 30), ("VERB", 7), ("RESOURCE", 22), ("NAMESPACE/NAME", 36))


def table_header() -> str:
    head = " ".join(name.ljust(width) for name, width in TABLE_COLUMNS)
    return f"{head} CODE LATENCY  SOURCE-IP"


def write_chunks(out: TextIO, parts: Iterable[bytes]) -> None:
    """Bytes to ``out``'s binary buffer (after what was written to ``out`` as text)."""
    out.flush()
    buf = out.buffer
    chunk: list[bytes] = []
    size = 0
    for part in parts:
        chunk.append(part)
        size += len(part)
        if size > 1 << 20:
            buf.write(b"".join(chunk))
            chunk, size = [], 0
    buf.write(b"".join(chunk))
    buf.flush()


def cell(value: object, width: int, middle: bool = False) -> str:
    """Fit a value into ``width`` columns; ``middle`` keeps both ends of long names."""
    return fit(inert(str(value)) if value is not None else "-", width, middle)


def table_row(store: Printable, i: int) -> str:
    v = store.value
    resource = v("resource", i)
    sub = v("subresource", i)
    what = f"{resource}/{sub}" if resource and sub else resource or v("uri", i)
    ns, name = v("namespace", i), v("name", i)
    where = f"{ns}/{name}" if ns and name else ns or name
    user = v("user", i)
    if v("impersonated", i):
        user = f"{user}→{v('impersonated', i)}"
    ips = v("ips", i)
    cells = (format_time(v("time", i))[:23], user, v("verb", i), what, where)
    text = " ".join(
        cell(c, w, middle=k == 1).ljust(w)
        for k, (c, (_, w)) in enumerate(zip(cells, TABLE_COLUMNS, strict=True))
    )
    code = v("code", i)
    return f"{text} {str(code or '-').ljust(4)} {format_duration(v('latency', i)).rjust(7)}  " + (
        cell(ips[0], 39) if ips else "-"
    )
