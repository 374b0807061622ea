"""Hostile input never crashes a reader and costs bounded memory: nesting past every parser's
limit, huge lines, floods of malformed lines (kept as a sample with exact counts by kind)."""

from __future__ import annotations

import json
from unittest import mock

import orjson
from cli.test_cli import run
from conftest import v1_event

import audittui
from audittui.index import loader
from audittui.index.session import Session
from audittui.ingest.malformed import KINDS_MAX, OTHER, SAMPLE, Capped, kind_of


def _good(n: int = 2) -> bytes:
    return b"".join(orjson.dumps(v1_event()) + b"\n" for _ in range(n))


def test_nesting_past_every_parsers_limit_is_never_a_crash(tmp_path):
    path = tmp_path / "audit.log"
    deep = 100_000
    path.write_bytes(
        _good()
        + b"[" * deep + b"]" * deep + b"\n"
        + b'{"a":' * deep + b"1" + b"}" * deep + b"\n"
        + b"x: " + b"[" * deep + b"\n"  # YAML-looking
        + b'{"kind":"Event"}{' + b"[" * deep + b"\n"  # two documents: an event, then cut
        + _good()
    )  # fmt: skip
    with audittui.load(path) as store:
        assert len(store) == 5
        reasons = {m.line: m.reason for m in store.malformed}
        assert set(reasons) == {3, 4, 5, 6}
        assert reasons[3].startswith("JSON nested over 1,024 levels deep")  # an array
        # an object: its member read as a note in its place, and then it is no event
        assert reasons[4] == "not an audit event (no kind and fewer than two event fields)"
        assert not store.ignored  # (only the members of kept events are said to be ignored)
        assert reasons[5] == "not JSON (looks like a line of YAML)"
        assert reasons[6].startswith("the last of 2 JSON documents: a JSON document cut short")


def test_a_line_of_ten_million_commas_and_a_huge_event(tmp_path):
    path = tmp_path / "audit.log"
    big = v1_event(level="RequestResponse", requestObject={"data": "x" * 5_000_000})
    path.write_bytes(b"," * 10_000_000 + b"\n" + orjson.dumps(big) + b"\n" + _good(1))
    with audittui.load(path) as store:
        assert len(store) == 2 and [m.line for m in store.malformed] == [1]
        assert store.malformed[0].reason == "not JSON (text line)"
        assert len(store.event(0)["requestObject"]["data"]) == 5_000_000


def test_a_flood_of_malformed_lines_is_counted_exactly_and_sampled(tmp_path, capsys):
    path = tmp_path / "audit.log"
    flood = 3 * SAMPLE
    path.write_bytes(_good() + b"{}\n" * flood + b"not json\n" + b"[1,\n" + _good())
    with audittui.load(path) as store:
        assert len(store) == 4
        assert len(store.malformed) == flood + 2
        assert store.malformed.kinds == {
            "not an audit event": flood,
            "not JSON": 1,
            "invalid JSON": 1,
        }
        # the first SAMPLE, then the first of each later kind, each with its line
        assert store.malformed.kept == SAMPLE + 2
        assert [m.line for m in store.malformed][-2:] == [flood + 3, flood + 4]
        assert [m.line for m in store.malformed][:3] == [3, 4, 5]
    code, out, _ = run(capsys, "stats", "--malformed", str(path))
    assert code == 0
    assert f"malformed   {flood + 2:,}" in out
    assert f"{flood:>14,}  not an audit event" in out
    assert f"({flood + 2 - SAMPLE - 2:,} more not listed" in out
    code, out, _ = run(capsys, "stats", "--malformed", "--format", "json", str(path))
    info = json.loads(out)
    assert info["malformed"] == flood + 2 and len(info["malformed_lines"]) == SAMPLE + 2
    assert info["malformed_by_kind"]["not an audit event"] == flood


def test_counts_stay_exact_across_parallel_slices_and_the_session(tmp_path):
    path = tmp_path / "audit.log"
    lines = []
    for k in range(4000):
        lines.append(orjson.dumps(v1_event()) if k % 4 == 0 else b'{"k": %d}' % k)
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected_bad = sum(1 for k in range(4000) if k % 4)
    with (
        mock.patch.object(loader, "SLICE", 32 << 10),
        mock.patch.object(loader, "PARALLEL_MIN", 64 << 10),
        mock.patch("audittui.ingest.malformed.SAMPLE", 100),
    ):
        with audittui.load(path, workers=2) as store:
            assert len(store) == 1000 and len(store.malformed) == expected_bad
            assert store.malformed.kinds == {"not an audit event": expected_bad}
            assert store.malformed.kept == 100
            assert [m.line for m in store.malformed][:3] == [2, 3, 4]
        session = Session([str(path)], follow=False)
        session.open()
        import threading

        session.index(lambda: None, threading.Event())
        assert len(session.store) == 1000
        assert len(session.store.malformed) == expected_bad
        assert session.store.malformed.kinds == {"not an audit event": expected_bad}
        assert sorted(m.line for m in session.store.malformed)[:2] == [2, 3]


def test_kinds_fold_what_varies_and_stop_at_kinds_max():
    assert kind_of("array[3]: items[0]: not an audit event (kind Pod)") == "not an audit event"
    assert kind_of("invalid JSON (unexpected character: line 1 column 9 (char 8))") == (
        "invalid JSON"
    )
    assert kind_of("cut short after 1,549 bytes: read its 3 complete record(s)") == (
        "cut short after N bytes: read its N complete record(s)"
    )
    capped: Capped[tuple[int, str]] = Capped()
    for k in range(KINDS_MAX + 50):
        letters = "".join(chr(97 + k // 26**d % 26) for d in range(3))  # digits fold to N
        capped.append((k, f"reason {letters} at {k}"))
    assert len(capped) == KINDS_MAX + 50
    assert sum(capped.kinds.values()) == KINDS_MAX + 50
    assert OTHER in capped.kinds and len(capped.kinds) == KINDS_MAX + 1
