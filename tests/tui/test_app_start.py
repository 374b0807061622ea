"""Every way of opening the app ends where a user expects: the newest event on the last line
under the cursor, and the status saying whether the list follows. A big file indexed in the
background, a folder with backups, a path that appears later, standard input, --no-follow."""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
import subprocess
import sys
import threading

import orjson
from conftest import drive_app, shows_newest, until, v1_event

from audittui.demo import write_big
from audittui.index.session import Session
from audittui.ingest.stdin_spool import StdinSpool
from audittui.tui.app import AuditApp
from audittui.tui.event_list import EventList
from audittui.tui.history import History
from tui.test_app import ev, line, make_log, status


async def opened(app, pilot, count: str, state: str = "following") -> None:
    """The user-visible end of start-up: ``count`` (e.g. "30 / 30 events") in the status,
    the newest event drawn on the last line under the cursor, and ``state``."""
    await until(
        pilot,
        lambda: shows_newest(app) and count in status(app) and state in status(app),
        what=f"the newest event on the last line, {count!r} and {state!r} in the status",
    )


def test_a_big_file_shows_its_tail_first_and_keeps_it_while_indexing(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    write_big(log, 12_000, seed=3)  # ~6 MB: a first slice, then the rest in the background
    assert os.path.getsize(log) > 3 * (2 << 20)
    session = Session([str(log)], follow=True)
    session.open()
    session.follower.heartbeat_ms = 50
    app = AuditApp(session, history=History(tmp_path / "history"))

    async def main() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            # The first screen may come before everything is indexed: it is the tail.
            await until(pilot, lambda: shows_newest(app), what="the newest event on screen")
            await opened(app, pilot, "12,000 / 12,000 events")
            assert app.main.query_one(EventList).following
            # New events still arrive at the bottom.
            with open(log, "ab") as fh:
                fh.write(line(ev(10**6, auditID="newest-of-all")))
            await opened(app, pilot, "12,001 / 12,001 events")

    try:
        asyncio.run(main())
    finally:
        session.close()


def test_a_folder_with_backups_opens_at_the_newest_event_of_the_live_file(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    events = [line(ev(k)) for k in range(60)]
    (folder / "audit-2024-05-01T09-00-00.000.log.gz").write_bytes(
        gzip.compress(b"".join(events[:20]))
    )
    (folder / "audit-2024-05-01T09-30-00.000.log").write_bytes(b"".join(events[20:40]))
    (folder / "audit.log").write_bytes(b"".join(events[40:]))

    async def check(app, pilot):
        await opened(app, pilot, "60 / 60 events")
        lst = app.main.query_one(EventList)
        assert app.store.value("audit_id", int(lst.view.rows[lst.cursor])) == "id-59"

    drive_app(str(folder), tmp_path, check, size=(120, 30))


def test_a_path_that_appears_later_is_followed_from_its_first_event(tmp_path):
    path = tmp_path / "logs" / "audit.log"
    path.parent.mkdir()

    async def check(app, pilot):
        await until(pilot, lambda: "0 / 0 events" in status(app), what="an empty list")
        path.write_bytes(b"".join(line(ev(k)) for k in range(40)))
        await opened(app, pilot, "40 / 40 events")
        with open(path, "ab") as fh:
            fh.write(b"".join(line(ev(k)) for k in range(40, 45)))
        await opened(app, pilot, "45 / 45 events")

    drive_app(str(path), tmp_path, check, size=(120, 30))


def test_no_follow_starts_at_the_newest_event_and_says_it_reads_once(tmp_path):
    path = make_log(tmp_path, 50)

    async def check(app, pilot):
        await opened(app, pilot, "50 / 50 events", state="read once")
        assert app.session.follower is None

    drive_app(path, tmp_path, check, size=(120, 30), follow=False)


def test_standard_input_is_spooled_privately_followed_and_its_end_shown(tmp_path):
    read, write = os.pipe()
    os.write(write, b"".join(line(ev(k)) for k in range(25)))
    spool = StdinSpool(read)
    os.close(read)
    assert stat.S_IMODE(os.stat(spool.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spool.folder).st_mode) == 0o700
    spool.start()

    async def check(app, pilot):
        await opened(app, pilot, "25 / 25 events")
        assert "input ended" not in status(app)
        # The last event comes without a newline: it is read once the input ends.
        os.write(write, b"".join(line(ev(k)) for k in range(25, 40)) + orjson.dumps(ev(40)))
        await opened(app, pilot, "40 / 40 events")
        os.close(write)
        await opened(app, pilot, "41 / 41 events")
        await until(pilot, lambda: "input ended" in status(app), what="'input ended' shown")

    try:
        drive_app(spool.path, tmp_path, check, size=(120, 30), stdin=spool)
    finally:
        spool.close()
    assert not os.path.exists(spool.folder)


def test_the_app_on_a_pipe_without_a_terminal_says_so(tmp_path):
    path = make_log(tmp_path, 3)
    with open(path, "rb") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "audittui"],
            stdin=fh,
            capture_output=True,
            text=True,
            start_new_session=True,  # no controlling terminal, as under cron or CI
            timeout=60,
        )
    assert done.returncode == 2
    assert "no terminal to read keys from" in done.stderr
    assert "audittui query -" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_log_with_no_event_says_what_it_looks_like_in_place_of_the_list(tmp_path):
    log = tmp_path / "gcp.json"
    log.write_bytes(b'{"protoPayload": {"serviceName": "compute.googleapis.com"}}\n' * 2)

    async def check(app, pilot) -> None:
        note = await note_saying(app, pilot, "a GCP audit entry of another service")
        assert "no audit event read; 2 record(s) malformed" in note

    drive_app(str(log), tmp_path, check)


async def note_saying(app, pilot, text: str) -> str:
    """Wait until the event list says ``text`` in place of its rows; what it says."""
    lst = app.main.query_one(EventList)

    def note() -> str:
        return " ".join(lst.render_line(y).text.strip() for y in range(1, 6))

    await until(pilot, lambda: text in note(), what=f"{text!r} in place of the list")
    return note()


def test_a_folder_whose_logs_are_in_subfolders_says_so_and_recursive_reads_them(tmp_path):
    root = tmp_path / "nodes"
    (root / "master-0").mkdir(parents=True)
    (root / "master-0" / "audit.log").write_bytes(orjson.dumps(v1_event(auditID="deep")) + b"\n")

    async def check(app, pilot) -> None:
        await note_saying(app, pilot, "no log files here; subfolders are read with --recursive")

    drive_app(str(root), tmp_path, check)
    session = Session([str(root)], follow=False, recursive=True)
    session.open()
    session.index(lambda: None, threading.Event())
    assert session.store.value("audit_id", 0) == "deep"
