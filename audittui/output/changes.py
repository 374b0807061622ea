"""An object's history (:mod:`audittui.analyses.object_history`) as lines of text: one per
event, then one per change. Each line is a template and its values, for :class:`Out.line
<audittui.output.terminal.Out>` (the command) or for the app, which makes the values inert the
same way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from ..analyses.object_history import Entry
from .inert import fit, inert

HEADER = ("TIME", "VERB", "USER", "SOURCE-IP", "CODE", "NOTES")
ROW = "{:<27} {:<13} {:<36} {:<15} {:>4}  {}"
MARKS = {"add": "+", "remove": "-", "replace": "~"}


def history_lines(
    entries: Iterable[Entry], resource: str
) -> Iterator[tuple[str, tuple[object, ...]]]:
    """(template, values) per line: a header, each event and its changes as the entries come
    (the app shows them while the rest are read), and a closing word when none of them carried
    a body of the object."""
    yield ROW, HEADER
    bodies = False
    for e in entries:
        bodies |= e.body
        yield from _entry_lines(e)
    if not bodies:
        yield _closing_line(resource)


def _entry_lines(e: Entry) -> Iterator[tuple[str, tuple[object, ...]]]:
    """One event's line, then its patch and its changes."""
    verb = f"{e.verb}/{e.subresource}" if e.subresource else e.verb
    user = fit(inert(e.user or "-"), 36)
    yield ROW, (e.time, verb or "-", user, e.ip or "-", e.code or "-", "; ".join(e.notes))
    if e.patch is not None:
        yield "    patch {}", (_value(e.patch, 100),)
    for c in e.changes or ():
        if c.op == "replace":
            yield "    ~ {}: {} → {}", (c.path, _value(c.old, 50), _value(c.new, 50))
        else:
            value = c.new if c.op == "add" else c.old
            yield "    " + MARKS[c.op] + " {}: {}", (c.path, _value(value, 90))


def _closing_line(resource: str) -> tuple[str, tuple[object, ...]]:
    """What to say when no event of the object carried a body."""
    return (
        "no request or response bodies of this object in the log (level Metadata): a policy "
        "rule at level RequestResponse for {} would log what each write changed",
        (resource.split("/")[0],),
    )


def _value(value: object, width: int) -> str:
    return fit(inert(orjson.dumps(value).decode()), width)
