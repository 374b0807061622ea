"""Shared helpers: a factory for small, valid audit.k8s.io/v1 events."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

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


async def until(pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let a Textual app run until ``condition`` holds (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await pilot.pause(0.02)


def drive_app(
    path: str, tmp_path, check, *, size=(120, 40), follow: bool = True, **app_args
) -> None:
    """Open ``path`` in the app as ``audittui PATH`` does (history kept under ``tmp_path``),
    wait until everything is indexed and shown, then ``await check(app, pilot)``."""
    import asyncio

    from audittui.history import History
    from audittui.session import Session
    from audittui.tui.app import AuditApp

    session = Session([path], follow=follow, backups=True)
    session.open()
    if session.follower is not None:
        session.follower.heartbeat_ms = 50  # a quick heartbeat: tests wait less
    app = AuditApp(session, history=History(tmp_path / "state" / "history"), **app_args)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: not session.indexing and len(app.view) == len(app.store))
            await check(app, pilot)

    try:
        asyncio.run(main())
    finally:
        session.close()
