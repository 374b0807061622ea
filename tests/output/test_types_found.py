"""Bugs the type checker found (mypy over the headless core), each kept fixed by a test."""

from __future__ import annotations

import io

import orjson
import pytest

import audittui
from audittui.output.terminal import write_chunks


@pytest.mark.parametrize("events", [None, "not a list", 7, {"a": 1}])
def test_cloudwatch_log_events_found_past_an_events_key_that_is_no_list(
    tmp_path, make_event, events
):
    # wrappers.cloudwatch read "events" whenever the key was there, though is_cloudwatch had
    # recognised the envelope by its "logEvents": a null crashed the whole load (TypeError),
    # a string or mapping lost the events without a word.
    event = make_event(auditID="a1")
    record = {"messageType": "DATA_MESSAGE", "events": events}
    record["logEvents"] = [{"id": "1", "message": orjson.dumps(event).decode()}]
    path = tmp_path / "cw.log"
    path.write_bytes(orjson.dumps(record) + b"\n")
    with audittui.load(str(path)) as store:
        assert len(store) == 1 and not store.malformed
        assert store.event(0)["auditID"] == "a1"
        assert store.wrapper(0)["logEvents"][0]["id"] == "1"  # the envelope it was read from


def test_write_chunks_writes_to_the_stream_it_is_given(capsys):
    # It flushed ``out`` but wrote the bytes to sys.stdout's buffer whatever ``out`` was.
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    out.write("head\n")
    write_chunks(out, [b"one\n", b"two\n"])
    assert raw.getvalue() == b"head\none\ntwo\n"
    assert capsys.readouterr().out == ""
