"""The app's engine without the UI: opening (live files followed from their end, everything
older indexed newest first), line numbers of files read out of order, and the filtered rows
kept current as the store grows."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from conftest import v1_event

from audittui.analyses.view import RowView, matching
from audittui.demo import write_demo
from audittui.index import session as session_mod
from audittui.index.loader import load
from audittui.index.session import Session
from audittui.ingest.sources import InputError
from audittui.query.syntax import parse

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def stamp(k: int) -> str:
    return (T0 + timedelta(milliseconds=k)).isoformat().replace("+00:00", "Z")


def event(k: int, **kw) -> bytes:
    ev = v1_event(
        auditID=f"id-{k}",
        requestReceivedTimestamp=stamp(k),
        stageTimestamp=stamp(k + 1),
        **kw,
    )
    return orjson.dumps(ev)


def write_file(path, ks, bad=()) -> None:
    lines = [b"not json at all %d" % k if k in bad else event(k) for k in ks]
    path.write_bytes(b"\n".join(lines) + b"\n")


def ids(store, rows=None) -> list[str]:
    rows = range(len(store)) if rows is None else rows
    return [store.value("audit_id", int(i)) for i in rows]


@pytest.fixture
def small_slices(monkeypatch):
    """Slices of a few KB so that small test files take the parallel, out-of-order path."""
    monkeypatch.setattr(session_mod, "FIRST_SLICE", 4096)
    monkeypatch.setattr(session_mod, "PARALLEL_MIN", 8192)
    monkeypatch.setattr("audittui.index.loader.SLICE", 16384)


def test_index_matches_load_including_malformed_line_numbers(tmp_path, small_slices):
    path = tmp_path / "audit.log"
    write_file(path, range(2000), bad={0, 7, 999, 1500, 1999})
    s = Session([str(path)], follow=False)
    s.open()
    s.index(lambda: None, threading.Event())
    ref = load(str(path))
    assert sorted(ids(s.store)) == sorted(ids(ref))
    assert sorted(m.line for m in s.store.malformed) == [1, 8, 1000, 1501, 2000]
    assert sorted(s.store.malformed) == sorted(ref.malformed)
    assert s.lines.pending == 0 and not s.indexing


def test_newest_events_come_first(tmp_path, small_slices):
    path = tmp_path / "audit.log"
    write_file(path, range(3000))
    s = Session([str(path)])
    s.open()
    seen: list[list[str]] = []
    s.index(lambda: seen.append(ids(s.store)), threading.Event())
    first = seen[0]
    assert "id-2999" in first and "id-0" not in first  # the first screen shows the tail
    assert len(first) < 3000
    assert sorted(ids(s.store), key=lambda x: int(x[3:])) == [f"id-{k}" for k in range(3000)]


def test_follow_continues_exactly_where_indexing_stops(tmp_path, small_slices):
    """Lines before the follow start are indexed, lines after it followed: none twice,
    none lost, even when the file ends in half a line at opening."""
    path = tmp_path / "audit.log"
    write_file(path, range(1000))
    with open(path, "ab") as fh:
        fh.write(event(1000)[:40])  # the writer is in the middle of a line
    s = Session([str(path)])
    s.open()
    with open(path, "ab") as fh:
        fh.write(event(1000)[40:] + b"\n" + b"garbage\n" + event(1001) + b"\n")
    s.index(lambda: None, threading.Event())
    stop = threading.Event()

    def on_batch(_notices) -> None:
        if len(s.store) >= 1002:
            stop.set()

    s.follower.heartbeat_ms = 50
    s.run_follower(on_batch, stop)
    assert sorted(ids(s.store), key=lambda x: int(x[3:])) == [f"id-{k}" for k in range(1002)]
    assert [m.line for m in s.store.malformed] == [1002]  # numbered from the file's start


def test_folder_with_backups_reads_everything_once(tmp_path):
    folder = tmp_path / "logs"
    write_demo(folder, 600, seed=3)
    s = Session([str(folder)])
    s.open()
    s.index(lambda: None, threading.Event())
    ref = load(str(folder))
    assert len(s.store) == len(ref) == 601
    assert sorted(ids(s.store)) == sorted(ids(ref))
    assert sorted(s.store.malformed) == sorted(ref.malformed)
    assert any(src.compressed for src in s.store.sources)  # the gzipped backup, spooled


def test_recursive_reads_and_follows_every_subfolder_like_a_folder(tmp_path):
    """``audittui --recursive DIR``: one folder per API server (say, copied from each node),
    each read with its backups and followed; without it, a folder of subfolders says so."""
    root = tmp_path / "nodes"
    for k, node in enumerate(("master-0", "master-1")):
        (root / node).mkdir(parents=True)
        write_file(root / node / "audit-2024-05-01T09-00-00.000.log", [10 * k])
        write_file(root / node / "audit.log", [10 * k + 1])
    (root / ".hidden").mkdir()
    write_file(root / ".hidden" / "audit.log", [99])
    plain = Session([str(root)], follow=False)
    plain.open()
    plain.index(lambda: None, threading.Event())
    assert len(plain.store) == 0
    s = Session([str(root)], recursive=True)
    s.open()
    s.index(lambda: None, threading.Event())
    assert sorted(ids(s.store)) == ["id-0", "id-1", "id-10", "id-11"]
    with open(root / "master-1" / "audit.log", "ab") as fh:
        fh.write(event(12) + b"\n")
    follow_until(s, 5)
    assert sorted(ids(s.store)) == ["id-0", "id-1", "id-10", "id-11", "id-12"]


def test_a_whole_file_document_is_parsed_once(tmp_path, monkeypatch):
    """The app asks whether a file is one document (not followed), plans it, then reads it:
    one parse of what may be a 100 MB gcloud export, and nothing kept once it is read."""
    from audittui.index import loader

    path = tmp_path / "export.json"
    events = [v1_event(auditID=f"d-{k}") for k in range(3)]
    path.write_bytes(orjson.dumps(events, option=orjson.OPT_INDENT_2))
    parses = []
    parse = loader._parse_document
    monkeypatch.setattr(loader, "_parse_document", lambda *a: parses.append(1) or parse(*a))
    s = Session([str(path)])
    s.open()
    s.index(lambda: None, threading.Event())
    assert s.follower is None and sorted(ids(s.store)) == ["d-0", "d-1", "d-2"]
    assert len(parses) == 1 and not loader._parsed


def test_gz_file_is_read_once_not_followed(tmp_path):
    import gzip

    path = tmp_path / "old.log.gz"
    path.write_bytes(gzip.compress(event(1) + b"\n" + event(2) + b"\n"))
    s = Session([str(path)])
    s.open()
    assert s.follower is None
    s.index(lambda: None, threading.Event())
    assert sorted(ids(s.store)) == ["id-1", "id-2"]


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        Session([str(tmp_path / "nope" / "audit.log")]).open()
    with pytest.raises(InputError, match="query -"):
        Session(["-"]).open()


def test_missing_live_file_in_existing_folder_is_waited_for(tmp_path):
    path = tmp_path / "audit.log"
    s = Session([str(path)])
    s.open()
    assert s.follower is not None and len(s.store) == 0
    write_file(path, range(3))
    follow_until(s, 3)
    assert ids(s.store) == ["id-0", "id-1", "id-2"]  # read from its start once it appears


def follow_until(s: Session, count: int) -> None:
    """Run the session's follower until the store holds ``count`` events."""
    stop = threading.Event()
    s.follower.heartbeat_ms = 50

    def on_batch(_):
        if len(s.store) >= count:
            stop.set()

    s.run_follower(on_batch, stop)


# -- RowView ---------------------------------------------------------------------------------


def test_rows_merge_in_time_order_and_agree_with_recomputation(tmp_path):
    rng = random.Random(5)
    ks = list(range(400))
    rng.shuffle(ks)  # events arrive out of time order (backfill, stages of long requests)
    users = ["alice", "bob", "carol"]
    path = tmp_path / "a.log"
    lines = [
        orjson.dumps(
            v1_event(
                auditID=f"id-{k}",
                requestReceivedTimestamp=stamp(k // 3),  # ties in time
                user={"username": users[k % 3]},
            )
        )
        for k in ks
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    full = load(str(path))
    # Grow a store batch by batch and keep a view current with catch_up().
    from audittui.index.store import Store
    from audittui.ingest.batch import BatchBuilder
    from audittui.ingest.sources import Source

    store = Store()
    store.add_source(Source(0, str(path), str(path)))
    view = RowView(store)
    node = parse("user:alice,carol")
    view.replace("user:alice,carol", node, matching(store.snapshot(), node), 0)
    data = path.read_bytes()
    offset = 0
    cursor_event = None
    for chunk in np.array_split(np.arange(len(lines)), 9):
        block = b"".join(lines[i] + b"\n" for i in chunk)
        builder = BatchBuilder(0)
        builder.add_lines(block, offset, 1, final=True)
        offset += len(block)
        store.append(builder.finish())
        before = view.rows.copy()
        inserted = view.catch_up()
        if inserted is not None and cursor_event is not None:
            # An old row keeps its event after the merge.
            old_row = int(np.flatnonzero(before == cursor_event)[0])
            assert view.rows[inserted.shift(old_row)] == cursor_event
        if len(view):
            cursor_event = int(view.rows[len(view) // 2])
    assert offset == len(data)
    expected = matching(full, node)
    assert ids(store, view.rows) == ids(full, expected)
    for row in (0, len(view) // 2, len(view) - 1):
        assert view.position(int(view.rows[row])) == row


def test_next_error(tmp_path, write_lines):
    codes = [200, 404, 200, 500, 201, 403]
    path = write_lines(
        "a.log",
        [
            v1_event(requestReceivedTimestamp=stamp(k), responseStatus={"code": c})
            for k, c in enumerate(codes)
        ],
    )
    store = load(path)
    view = RowView(store)
    view.replace("", None, matching(store, None), len(store))
    assert view.next_error(0, 1) == 1
    assert view.next_error(1, 1) == 3
    assert view.next_error(3, 1) == 5
    assert view.next_error(5, 1) is None
    assert view.next_error(5, -1) == 3
    assert view.next_error(1, -1) is None
