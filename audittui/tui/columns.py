"""The event list's columns: which ones fit a width, and each event's cells as inert text.

Pure functions over the store (no Textual), so layout and shortening are tested directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..index.store import Store
from ..ingest.exec_command import is_exec_uri, shell_line, uri_argv
from ..ingest.formats import MISSING_TIME, format_duration
from ..ingest.schema import RECEIVED
from ..output.inert import fit, inert


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int  # fixed width, or the minimum of a flexible column
    flex: int = 0  # share of the spare width
    right: bool = False


# In order of display; the last entries are dropped first when the terminal is narrow.
COLUMNS = (
    Column("time", "TIME", 12),
    Column("user", "USER", 16, flex=3),
    Column("verb", "VERB", 7),
    Column("what", "RESOURCE", 12, flex=2),
    Column("where", "NAMESPACE/NAME", 14, flex=3),
    Column("code", "CODE", 4),
    Column("latency", "LAT", 6, right=True),
    Column("ip", "SOURCE IP", 15),
)
DROP_ORDER = ("ip", "latency")  # removed, in this order, when the width is short
WIDE_TIME = 100  # from this width the time column shows the date too


def fit_columns(width: int) -> list[tuple[Column, int]]:
    """The columns shown at ``width`` cells and the width of each (one space between)."""
    cols = list(COLUMNS)
    for key in DROP_ORDER:
        if _need(cols) <= width:
            break
        cols = [c for c in cols if c.key != key]
    wide = [Column("time", "TIME", 18) if c.key == "time" else c for c in cols]
    if width >= WIDE_TIME and _need(wide) <= width:
        cols = wide
    sizes = [c.width for c in cols]
    flexible = [k for k, c in enumerate(cols) if c.flex]
    spare = width - _need(cols)
    if spare < 0:
        # Narrower than every minimum: the flexible columns give up room, down to 4 cells.
        while spare < 0 and any(sizes[k] > 4 for k in flexible):
            widest = max(flexible, key=sizes.__getitem__)
            sizes[widest] -= 1
            spare += 1
    else:
        flex = sum(c.flex for c in cols)
        for k in flexible:
            sizes[k] += spare * cols[k].flex // flex
        # Rounding leftovers go to the last flexible column, so rows fill the width.
        sizes[flexible[-1]] += width - sum(sizes) - (len(sizes) - 1)
    return list(zip(cols, sizes, strict=True))


def _need(cols: list[Column]) -> int:
    return sum(c.width for c in cols) + len(cols) - 1


def short_user(name: str, width: int = 1 << 30) -> str:
    """Service-account and node names, shortened the way people say them and then to
    ``width``: a service account keeps its name before its namespace, a node its host name."""
    if name.startswith("system:serviceaccount:"):
        ns, _, sa = name[len("system:serviceaccount:") :].partition(":")
        full = f"sa:{ns}/{sa}"
        if len(full) <= width:
            return full
        room = width - len(sa) - 4  # "sa:" + "/"
        if room >= 3:
            return f"sa:{fit(ns, room)}/{sa}"
        return "sa:" + fit(sa, width - 3, middle=True)
    if name.startswith("system:node:"):
        host = name[len("system:node:") :]
        full = "node:" + host
        if len(full) <= width:
            return full
        return "node:" + fit(host.split(".", 1)[0], width - 5, middle=True)
    return name


def format_clock(micros: int, with_date: bool) -> str:
    if micros == MISSING_TIME:
        return "-"
    dt = datetime.fromtimestamp(micros / 1e6, UTC)
    return dt.strftime("%m-%d %H:%M:%S.%f")[:18] if with_date else dt.strftime("%H:%M:%S.%f")[:12]


def cells(store: Store, i: int, with_date: bool) -> dict[str, str]:
    """Display text of event ``i`` per column key, every piece of log text made inert."""
    return row_cells(lambda field: store.value(field, i), with_date)


def row_cells(v: Callable[[str], Any], with_date: bool) -> dict[str, str]:
    """The cells of one event whose indexed fields ``v(field)`` gives (a store's column, a row
    read from ClickHouse), every piece of log text made inert."""
    resource, sub = v("resource"), v("subresource")
    what = f"{resource}/{sub}" if resource and sub else resource or v("uri") or "-"
    command = exec_command_cell(resource, sub, v("uri"))
    if command is not None:
        what = command  # what ran says more than "pods/exec"
    ns, name = v("namespace"), v("name")
    where = f"{ns}/{name}" if ns and name else ns or name or ""
    user = v("user") or "-"
    if v("impersonated"):
        user = f"{short_user(user, 16)}→{short_user(v('impersonated'), 16)}"
    code = v("code")
    ips = v("ips")
    return {
        "time": format_clock(v("time"), with_date),
        "user": inert(user),  # shortened to the column width by the list
        "verb": inert(v("verb") or "-"),
        "what": what if command is not None else inert(what),  # the command is inert already
        "where": inert(where),
        "code": str(code) if code else "-",
        # A RequestReceived event has no latency yet (its two timestamps are the same).
        "latency": "" if v("stage") == RECEIVED else format_duration(v("latency")),
        "ip": inert(ips[0]) if ips else "-",
    }


LIST_URI_MAX = 16 << 10  # characters of a URI read for the list's cell: more than a row shows


def exec_command_cell(resource: str | None, sub: str | None, uri: str | None) -> str | None:
    """``exec: sh -c 'cat …'`` for an exec whose URI carries its command (the words quoted
    as a shell would take them, every one inert: the command is attacker text); None for
    any other event. An event without a resource (legacy text lines) is judged by its path."""
    if not uri or not (resource == "pods" and sub == "exec" or not resource and is_exec_uri(uri)):
        return None
    argv = uri_argv(uri[:LIST_URI_MAX])
    return "exec: " + shell_line(argv, limit=400) if argv else None
