"""The follower's reading half: every complete line exactly once, in order, through lumberjack
rotation (with the backup gzipped and deleted later), copytruncate, lines written in two
halves, a path that appears late, and a second file."""

from __future__ import annotations

import gzip
import os
import threading
import time
from pathlib import Path

import orjson
from conftest import v1_event

from audittui.ingest.batch import BatchBuilder
from audittui.ingest.follow import FileFollower, watch_wakeups


def lines_of(chunks) -> list[bytes]:
    return [line for c in chunks for line in c.data.splitlines()]


class Lumberjack:
    """Writes like the API server's lumberjack: one write per line, rotation by rename."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "audit.log"
        self.fh = open(self.path, "ab")  # noqa: SIM115 - kept open like the real writer
        self.rotations = 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.fh.flush()

    def rotate(self) -> Path:
        self.fh.close()
        self.rotations += 1
        backup = self.folder / f"audit-2026-11-26T10-00-{self.rotations:02d}.000.log"
        os.rename(self.path, backup)
        self.fh = open(self.path, "wb")  # noqa: SIM115
        return backup


def test_lumberjack_rotation_loses_and_doubles_nothing(tmp_path):
    writer = Lumberjack(tmp_path)
    follower = FileFollower(str(writer.path))
    seen: list[bytes] = []
    expected: list[bytes] = []
    n = 0
    for round_ in range(5):
        for _ in range(7):
            line = b'{"n":%d}' % n
            expected.append(line)
            writer.write(line + b"\n")
            n += 1
            if n % 3 == 0:
                seen += lines_of(follower.poll())
        # Lines written to the old file after the last poll must still be drained.
        tail = b'{"n":%d}' % n
        expected.append(tail)
        writer.write(tail + b"\n")
        n += 1
        backup = writer.rotate()
        if round_ % 2:  # the mill gzips the backup and deletes the plain one
            backup.with_suffix(".log.gz").write_bytes(gzip.compress(backup.read_bytes()))
            backup.unlink()
    seen += lines_of(follower.poll())
    assert seen == expected
    assert [x.kind for x in follower.notices].count("rotated") == 5


def test_rotations_between_two_polls_lose_nothing(tmp_path):
    """Several rotations between two looks: the files that were live only in between are read
    from their backups, plain or already gzipped (and deleted)."""
    writer = Lumberjack(tmp_path)
    old_backup = tmp_path / "audit-2026-11-26T09-00-00.000.log"
    old_backup.write_bytes(b"from before\n")  # older than the follower: not its to read
    writer.write(b"a\n")
    follower = FileFollower(str(writer.path))
    seen = lines_of(follower.poll())
    writer.write(b"b\n")
    writer.rotate()  # the followed file
    writer.write(b"c\n")
    gz = writer.rotate()  # live only between two polls, then gzipped and deleted
    gz.with_suffix(".log.gz").write_bytes(gzip.compress(gz.read_bytes()))
    gz.unlink()
    writer.write(b"d\n")
    writer.rotate()  # live only between two polls, still plain
    writer.write(b"e\n")
    seen += lines_of(follower.poll())
    writer.write(b"f\n")
    seen += lines_of(follower.poll())
    assert seen == [b"a", b"b", b"c", b"d", b"e", b"f"]


def test_a_backup_that_appears_under_an_older_timestamp_is_still_read(tmp_path):
    """A backup is new by its name, not by being newer than the newest seen: a copy finished
    late (an SSH mirror completing a file from its late .gz) or a clock set back names one
    below a backup already read, and it must not be skipped."""
    writer = Lumberjack(tmp_path)
    writer.write(b"a\n")
    follower = FileFollower(str(writer.path))
    seen = lines_of(follower.poll())
    writer.write(b"b\n")
    writer.rotate()  # audit-...-01, read through the rotation
    writer.write(b"c\n")
    seen += lines_of(follower.poll())
    late = tmp_path / "audit-2026-11-26T09-59-59.000.log"  # older than -01
    late.write_bytes(b"late\n")
    seen += lines_of(follower.poll())
    writer.write(b"d\n")
    seen += lines_of(follower.poll())
    assert seen == [b"a", b"b", b"c", b"late", b"d"]
    assert lines_of(follower.poll()) == []  # read once


def test_copytruncate_restarts_at_zero_in_a_new_segment(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b"a\nb\n")
    follower = FileFollower(str(path))
    first = follower.poll()
    assert lines_of(first) == [b"a", b"b"]
    (tmp_path / "audit.log.1").write_bytes(path.read_bytes())
    with open(path, "r+b") as fh:
        fh.truncate(0)
    with open(path, "ab") as fh:
        fh.write(b"c\n")
    second = follower.poll()
    assert lines_of(second) == [b"c"]
    assert second[0].offset == 0
    assert second[0].segment != first[0].segment
    assert second[0].segment.ino == first[0].segment.ino
    assert "truncated" in [x.kind for x in follower.notices]


def test_a_line_written_in_two_halves_arrives_once_whole(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"a":1}\n{"b":')
    follower = FileFollower(str(path))
    assert lines_of(follower.poll()) == [b'{"a":1}']
    assert follower.poll() == []  # the half line waits for its newline
    with open(path, "ab") as fh:
        fh.write(b"2}\n")
    chunks = follower.poll()
    assert lines_of(chunks) == [b'{"b":2}']
    assert chunks[0].offset == len(b'{"a":1}\n')


def test_an_unfinished_line_taken_back_is_dropped_not_a_truncation(tmp_path):
    """A file cut back to the end of its last whole line (the SSH mirror does so before it
    shows a copy whose last line never came as a backup): the lines handed over stay, nothing
    is read twice, and what follows is read from there."""
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"a":1}\n{"b":')
    follower = FileFollower(str(path))
    first = follower.poll()
    assert lines_of(first) == [b'{"a":1}']
    with open(path, "r+b") as fh:
        fh.truncate(len(b'{"a":1}\n'))
    assert follower.poll() == []
    with open(path, "ab") as fh:
        fh.write(b'{"c":3}\n')
    chunks = follower.poll()
    assert lines_of(chunks) == [b'{"c":3}']
    assert chunks[0].segment == first[0].segment
    assert "truncated" not in [x.kind for x in follower.notices]


def test_cri_pieces_wait_for_their_final_piece(tmp_path):
    """An API server on a container runtime: a long event split into P pieces is handed over
    only with its F piece, so the batch that parses it sees the whole event."""
    event = orjson.dumps(v1_event(auditID="long-one"))
    a, b, c = event[:20], event[20:40], event[40:]
    path = tmp_path / "0.log"
    done = b"2024-05-01T10:00:00Z stdout F " + orjson.dumps(v1_event()) + b"\n"
    path.write_bytes(done + b"2024-05-01T10:00:01Z stdout P " + a + b"\n")
    follower = FileFollower(str(path))
    assert lines_of(follower.poll()) == [done.strip()]
    assert follower.poll() == []  # the piece waits for the rest of its line
    with open(path, "ab") as fh:
        fh.write(b"2024-05-01T10:00:01Z stdout P " + b + b"\n2024-05-01T10:00:01Z stdout F ")
    assert follower.poll() == []
    with open(path, "ab") as fh:
        fh.write(c + b"\n")
    chunks = follower.poll()
    assert len(lines_of(chunks)) == 3 and chunks[0].offset == len(done)
    builder = BatchBuilder(0)
    builder.add_lines(chunks[0].data, chunks[0].offset, 2, final=False)
    batch = builder.finish()
    assert len(batch) == 1 and not batch.malformed
    assert batch.tables["audit_id"][0] == "long-one"


def test_cri_pieces_wait_past_the_other_streams_lines(tmp_path):
    """A stderr line written after a stdout P piece does not end the wait for its F piece."""
    event = orjson.dumps(v1_event(auditID="long-one"))
    path = tmp_path / "0.log"
    path.write_bytes(
        b"2024-05-01T10:00:01Z stdout P " + event[:30] + b"\n"
        b"2024-05-01T10:00:01Z stderr F I0501 10:00:01.000000 1 x.go:1] note\n"
    )
    follower = FileFollower(str(path))
    assert follower.poll() == []  # held back, the stderr line with it
    with open(path, "ab") as fh:
        fh.write(b"2024-05-01T10:00:01Z stdout F " + event[30:] + b"\n")
    chunks = follower.poll()
    assert len(lines_of(chunks)) == 3 and chunks[0].offset == 0
    builder = BatchBuilder(0)
    builder.add_lines(chunks[0].data, chunks[0].offset, 1, final=False)
    batch = builder.finish()
    assert len(batch) == 1 and batch.tables["audit_id"][0] == "long-one"
    assert [line for line, _ in batch.malformed] == [2]  # the klog line, reported once


def test_missing_path_is_waited_for_then_read(tmp_path):
    path = tmp_path / "later" / "audit.log"
    follower = FileFollower(str(path))
    assert follower.poll() == []
    assert follower.poll() == []
    assert [x.kind for x in follower.notices] == ["waiting"]  # said once, not every retry
    path.parent.mkdir()
    path.write_bytes(b"x\n")
    assert lines_of(follower.poll()) == [b"x"]


def test_from_end_skips_what_exists(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b"old\n")
    follower = FileFollower(str(path), from_end=True)
    assert follower.poll() == []
    with open(path, "ab") as fh:
        fh.write(b"new\n")
    assert lines_of(follower.poll()) == [b"new"]


def test_two_api_servers_are_followed_independently(tmp_path):
    a, b = tmp_path / "a" / "audit.log", tmp_path / "b" / "audit.log"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_bytes(b"a1\n")
    b.write_bytes(b"b1\nb2\n")
    followers = [FileFollower(str(a)), FileFollower(str(b))]
    got = {f.path: lines_of(f.poll()) for f in followers}
    assert got == {str(a): [b"a1"], str(b): [b"b1", b"b2"]}


def test_watch_wakes_up_on_a_write(tmp_path):
    """A write into the watched folder wakes the loop long before the 60 s heartbeat. (The
    watcher starts inside the thread, so the test writes until it is seen.)"""
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    stop = threading.Event()
    follower = FileFollower(str(path))
    follower.poll()
    got: list[bytes] = []
    seen = threading.Event()

    def loop() -> None:
        for _ in watch_wakeups([str(path)], stop, heartbeat_ms=60_000):
            got.extend(lines_of(follower.poll()))
            if got:
                seen.set()

    thread = threading.Thread(target=loop)
    thread.start()
    written: list[bytes] = []
    try:
        for k in range(40):
            written.append(b"line %d" % k)
            with open(path, "ab") as fh:
                fh.write(written[-1] + b"\n")
            if seen.wait(0.25):
                break
        assert seen.is_set(), "no wake-up in 10 s although the heartbeat is 60 s"
    finally:
        stop.set()
        thread.join(10)
    assert got == written[: len(got)]


def test_query_follow_prints_existing_then_new_matches_exactly_once(tmp_path, make_event):
    """`audittui query --follow` over a folder: backups and the live file first, then what is
    written, through a lumberjack rotation whose backup is gzipped and deleted."""
    import subprocess
    import sys

    import orjson

    def batch(n: int) -> list[bytes]:
        return [
            orjson.dumps(make_event(verb="delete" if k % 2 else "get")) + b"\n" for k in range(n)
        ]

    def deletes(lines: list[bytes]) -> list[bytes]:
        return [x.rstrip(b"\n") for x in lines if b'"verb":"delete"' in x]

    old = batch(6)
    (tmp_path / "audit-2026-11-26T09-00-00.000.log").write_bytes(b"".join(old[:3]))
    writer = Lumberjack(tmp_path)
    writer.write(b"".join(old[3:]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "audittui", "query", "--follow", "--format", "jsonl"]
        + ["-q", "verb:delete", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(iter(proc.stdout.readline, b"")))
    reader.start()
    try:
        expected = deletes(old)
        _wait_for(lambda: len(got) >= len(expected))
        new = batch(10)
        for line in new[:5]:
            writer.write(line)
        backup = writer.rotate()
        backup.with_suffix(".log.gz").write_bytes(gzip.compress(backup.read_bytes()))
        backup.unlink()
        for line in new[5:]:
            writer.write(line)
        expected += deletes(new)
        _wait_for(lambda: len(got) >= len(expected))
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
    assert [x.rstrip(b"\n") for x in got] == expected
    assert b"rotated" in proc.stderr.read()


def _wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        threading.Event().wait(0.02)


def test_budget_reads_a_backlog_in_rounds(tmp_path):
    path = tmp_path / "audit.log"
    lines = [b"%05d" % k for k in range(4000)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    follower = FileFollower(str(path))
    got, rounds = [], 0
    while True:
        got += lines_of(follower.poll(budget=4096))
        rounds += 1
        if not follower.behind:
            break
    assert got == lines
    assert rounds > 4


def test_follower_keeps_rotated_events_readable_and_flags_truncated_ones(tmp_path, make_event):
    import orjson

    from audittui.index.store import EventGone, Store
    from audittui.ingest.follow import Follower

    first, second, third = (make_event(verb=v) for v in ("get", "list", "watch"))
    writer = Lumberjack(tmp_path)
    writer.write(orjson.dumps(first) + b"\n")
    store = Store()
    follower = Follower(store, [str(writer.path)])

    def take() -> None:
        for batch, line in follower.read_once()[0]:
            store.append(batch, line)

    take()
    backup = writer.rotate()
    writer.write(orjson.dumps(second) + b"\n")
    take()
    backup.unlink()  # rotated away and deleted: still readable through the held descriptor
    assert [store.event(i) for i in range(len(store))] == [first, second]
    writer.fh.close()
    with open(writer.path, "r+b") as fh:  # copytruncate; writers that survive it append
        fh.truncate(0)
    with open(writer.path, "ab") as fh:
        fh.write(orjson.dumps(third) + b"\n")
    take()
    assert store.event(2) == third
    assert store.event(0) == first
    try:
        store.event(1)
    except EventGone as exc:
        assert "truncated" in str(exc)
    else:
        raise AssertionError("an event of a truncated file must not be read from new bytes")
    store.close()


def test_query_follow_reads_stdin_live_and_ends_with_it(make_event):
    """`kubectl logs -f … | audittui query -f -`: lines are printed as they arrive, and the
    command ends once standard input does."""
    import subprocess
    import sys

    import orjson

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audittui",
            "query",
            "-f",
            "--format",
            "jsonl",
            "-q",
            "verb:get",
            "-",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(iter(proc.stdout.readline, b"")))
    reader.start()
    first = [orjson.dumps(make_event(verb=v)) for v in ("get", "list", "get")]
    proc.stdin.write(b"\n".join(first) + b"\n")
    proc.stdin.flush()
    _wait_for(lambda: len(got) >= 2)  # printed while stdin is still open
    last = orjson.dumps(make_event(verb="get"))
    proc.stdin.write(last + b"\n")
    proc.stdin.close()
    assert proc.wait(15) == 0
    reader.join(5)
    assert [x.rstrip(b"\n") for x in got] == [first[0], first[2], last]


def test_identical_events_are_kept_once_when_following(tmp_path, make_event):
    """A file given twice, a retried webhook batch, overlapping files: the same event (same
    auditID, stage, stageTimestamp and JSON) is held once; a different event that merely
    shares those three fields (test fixtures do that) is kept."""
    import orjson

    from audittui.index.store import Store
    from audittui.ingest.follow import Follower

    a, b = make_event(verb="get"), make_event(verb="list")
    look_alike = dict(b, user={"username": "someone-else"})
    batch = orjson.dumps({"kind": "EventList", "items": [a, b]})
    log = tmp_path / "webhook.log"
    log.write_bytes(batch + b"\n" + batch + b"\n" + orjson.dumps(look_alike) + b"\n")
    store = Store()
    follower = Follower(store, [str(log), str(log)])  # and the same file given twice
    for part, line in follower.read_once()[0]:
        store.append(part, line, dedupe=True)
    assert [store.event(i) for i in range(len(store))] == [a, b, look_alike]
    assert store.duplicates == 7  # 2 in the first copy (the retry), all 5 of the second
    store.close()


def test_a_folder_that_vanishes_is_reported_and_retried(tmp_path):
    import shutil

    folder = tmp_path / "audit"
    folder.mkdir()
    path = folder / "audit.log"
    path.write_bytes(b"one\n")
    follower = FileFollower(str(path))
    assert lines_of(follower.poll()) == [b"one"]
    shutil.rmtree(folder)
    assert follower.poll() == []
    assert follower.poll() == []
    kinds = [x.kind for x in follower.notices]
    assert kinds[-2:] == ["removed", "waiting"]
    folder.mkdir()
    path.write_bytes(b"two\n")
    assert lines_of(follower.poll()) == [b"two"]


def test_a_live_log_new_in_a_followed_folder_is_followed_from_its_start(tmp_path):
    from audittui.index.session import Session

    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / "cp1.log").write_bytes(orjson.dumps(v1_event(auditID="a")) + b"\n")
    session = Session([str(folder)], follow=True)
    session.open()
    session.index(lambda: None, threading.Event())
    stop = threading.Event()
    thread = threading.Thread(target=session.run_follower, args=(lambda notices: None, stop))
    thread.start()
    try:
        # a second API server's log appears after the start, with two events already in it
        lines = [orjson.dumps(v1_event(auditID=k)) + b"\n" for k in ("b", "c")]
        (folder / "cp2.log").write_bytes(b"".join(lines))
        deadline = time.monotonic() + 10
        while len(session.store) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        ids = sorted(session.store.value("audit_id", i) for i in range(len(session.store)))
        assert ids == ["a", "b", "c"]
        with open(folder / "cp2.log", "ab") as fh:  # and it is followed from then on
            fh.write(orjson.dumps(v1_event(auditID="d")) + b"\n")
        while len(session.store) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(session.store) == 4
    finally:
        stop.set()
        thread.join(5)
        session.close()
