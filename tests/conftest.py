"""Shared helpers: a factory for small, valid audit.k8s.io/v1 events."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

# The real ClickHouse servers (18.16 and chdb) for the store tests
from clickhouse_server import (  # noqa: F401
    chdb_url,
    clickhouse_server,
    clickhouse_url,
    own_server,
    store_url,
)

# The real sshd the SSH tests read through
from sshd import sshd  # noqa: F401

_ids = itertools.count()


def _find_samples() -> Path:
    """The shared real-world samples: $AUDITTUI_SAMPLES, else ../shared/samples beside the
    checkout (as CI lays it out), else /work/shared/samples. Missing samples fail the run:
    these tests are not optional."""
    here = Path(__file__).resolve().parent.parent
    candidates = [os.environ.get("AUDITTUI_SAMPLES", ""), here.parent / "shared" / "samples"]
    candidates.append("/work/shared/samples")
    for candidate in candidates:
        if candidate and Path(candidate, "SOURCES.md").is_file():
            return Path(candidate)
    raise RuntimeError(f"shared samples not found (tried {candidates}); set AUDITTUI_SAMPLES")


SAMPLES = _find_samples()
REALDATA = SAMPLES.parent / "realdata"  # the real captures beside the samples


@pytest.fixture(autouse=True)
def _own_config(tmp_path, monkeypatch):
    """No test reads the developer's own ~/.config/audittui/rules.yaml."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def v1_event(**overrides: object) -> dict:
    """A compact ``audit.k8s.io/v1`` Event; keyword arguments replace (None: remove) keys."""
    n = next(_ids)
    ev: dict = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods/p1",
        "verb": "get",
        "user": {"username": "alice", "groups": ["dev", "system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "p1", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
        "stageTimestamp": "2024-05-01T10:00:00.002500Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    for key, value in overrides.items():
        if value is None:
            ev.pop(key, None)
        else:
            ev[key] = value
    return ev


@pytest.fixture
def make_event() -> Callable[..., dict]:
    return v1_event


@pytest.fixture
def write_lines(tmp_path) -> Callable[..., str]:
    """Write events (dicts) and raw lines (bytes/str) as one file; returns its path."""

    def write(name: str, items: list, sep: bytes = b"\n", final_newline: bool = True) -> str:
        parts = []
        for item in items:
            if isinstance(item, dict | list):
                parts.append(orjson.dumps(item))
            elif isinstance(item, str):
                parts.append(item.encode())
            else:
                parts.append(item)
        data = sep.join(parts) + (sep if final_newline else b"")
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write


async def until(
    pilot, condition: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """Let a Textual app run until ``condition`` holds; after ``timeout`` seconds, fail with
    what was awaited and what the app showed and held at that moment."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not reached in {timeout:g} s: {what or 'condition'}\n{app_state(pilot.app)}"
            )
        await pilot.pause(0.02)


def app_state(app) -> str:
    """What a running app shows (status bar, the list's screen lines, the screen and focus)
    and holds (store, rows, indexing, scroll), for the message of a wait that timed out."""
    from audittui.tui.event_list import EventList

    out = [f"screen={type(app.screen).__name__} focused={type(app.focused).__name__}"]
    try:
        out.append(f"status: {app.main.query_one('#status').render().plain!r}")
        out.append(f"tab: {app.main.query_one('#tabs').active}")
    except Exception:  # not the audittui app, or already closed
        pass
    session = getattr(app, "session", None)
    if session is not None:
        out.append(
            f"store={len(app.store)} view={len(app.view)} filter={app.view.text!r} "
            f"pending={app.filter.pending_text!r} indexing={session.indexing} "
            f"follower={'none' if session.follower is None else 'running'}"
        )
    try:
        lst = app.main.query_one(EventList)
    except Exception:
        return "\n".join(out)
    out.append(
        f"list: rows={len(lst.source)} cursor={lst.cursor} following={lst.following} "
        f"scroll_y={lst.scroll_y} max_scroll_y={lst.max_scroll_y} size={lst.size} "
        f"scrollbar={lst.show_vertical_scrollbar}"
    )
    height = lst.scrollable_content_region.height
    lines = [lst.render_line(y).text.rstrip() for y in range(height)]
    shown = [x for x in lines if x]
    out.append("list lines: " + (" | ".join(shown[:2] + ["…"] + shown[-2:]) if shown else "none"))
    return "\n".join(out)


def status(app) -> str:
    """The status bar as drawn."""
    return app.main.query_one("#status").render().plain


def shown(app, text: str) -> Callable[[], bool]:
    """The status bar shows ``text`` and no filter is still running."""
    return lambda: text in status(app) and "filtering" not in status(app)


def shows_newest(app) -> bool:
    """What a user sees at the tail: the newest event drawn on the list's last drawn line,
    under the cursor, and the column titles above it."""
    from audittui.tui.event_list import EventList

    lst = app.main.query_one(EventList)
    n, height = len(lst.source), lst.scrollable_content_region.height
    if not n or height <= 0 or lst.cursor != n - 1:
        return False
    y = n - 1 - int(lst.scroll_y)
    if not 0 <= y < height:
        return False
    drawn = lst.render_line(y).text
    newest = lst.render_row(n - 1, lst.scrollable_content_region.width, True)
    below = [lst.render_line(k).text.strip() for k in range(y + 1, height)]
    header = app.main.query_one("#list-header").render().plain
    return drawn == newest.text and not any(below) and "TIME" in header


def drive_app(
    path: str, tmp_path, check, *, size=(120, 40), follow: bool = True, **app_args
) -> None:
    """Open ``path`` in the app as ``audittui PATH`` does (history kept under ``tmp_path``),
    wait until everything is indexed and shown, then ``await check(app, pilot)``."""
    import asyncio

    from audittui.index.session import Session
    from audittui.tui.app import AuditApp
    from audittui.tui.history import History

    session = Session([path], follow=follow, backups=True)
    session.open()
    if session.follower is not None:
        session.follower.heartbeat_ms = 50  # a quick heartbeat: tests wait less
    app = AuditApp(session, history=History(tmp_path / "state" / "history"), **app_args)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await until(
                pilot,
                lambda: not session.indexing and len(app.view) == len(app.store),
                what="everything indexed and in the list",
            )
            await check(app, pilot)

    try:
        asyncio.run(main())
    finally:
        session.close()
