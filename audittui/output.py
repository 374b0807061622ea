"""The one way the command line writes structured output: JSON and CSV made inert here, so a
user name, URI or body from a log cannot reach the terminal (or a spreadsheet) as escapes,
bidi controls or formulas. Tables and plain lines pass ``sanitize.inert`` per cell."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from .sanitize import inert, inert_json

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would evaluate


def write_json(out: io.TextIOBase, value: Any) -> None:
    """``value`` as indented JSON, every unsafe character written as a ``\\uXXXX`` escape."""
    out.write(inert_json(orjson.dumps(value, option=orjson.OPT_INDENT_2)).decode() + "\n")


def csv_cell(value: Any) -> Any:
    """A CSV cell: log text made inert, and a text a spreadsheet would run as a formula
    quoted (OWASP's advice: a leading apostrophe)."""
    if not isinstance(value, str):
        return value
    text = inert(value)
    return "'" + text if text.startswith(_FORMULA) else text


def write_csv(out: io.TextIOBase, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    w = csv.writer(out)
    w.writerow(header)
    w.writerows([csv_cell(v) for v in row] for row in rows)
