"""What the command line writes: JSON and CSV made inert here, table cells and rows, error
lines. A user name, URI or body from a log cannot reach the terminal (or a spreadsheet) as
escapes, bidi controls or formulas: every cell and message passes :func:`inert.inert`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import orjson

from ..index.store import Store
from ..ingest.formats import format_duration, format_time
from ..policy import Policy, PolicyError
from ..policy import load as load_policy
from .inert import fit, inert, inert_json

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would evaluate


def write_json(out: TextIO, value: Any) -> None:
    """``value`` as indented JSON, every unsafe character written as a ``\\uXXXX`` escape."""
    out.write(inert_json(orjson.dumps(value, option=orjson.OPT_INDENT_2)).decode() + "\n")


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


def read_policy(path: str) -> Policy | None:
    """The audit policy at ``path``, or None after printing every error (made inert)."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        for error in exc.errors:
            print(f"{PROG}: {inert(path)}: {inert(error)}", file=sys.stderr)
        return None


def fail(message: str) -> int:
    print(f"{PROG}: {inert(message)}", file=sys.stderr)
    return 2


TABLE_COLUMNS = (("TIME", 23), ("USER", 30), ("VERB", 7), ("RESOURCE", 22), ("NAMESPACE/NAME", 36))


def table_header() -> str:
    head = " ".join(name.ljust(width) for name, width in TABLE_COLUMNS)
    return f"{head} CODE LATENCY  SOURCE-IP\n"


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


def table_row(store: Store, i: int) -> str:
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
