"""The structure reader for JSON nested deeper than the decoders go (audittui.ingest.nesting)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audittui.ingest.nesting import DEPTH_LIMIT, elements, members, opaque_deep

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@given(st.dictionaries(st.text(), json_values, max_size=6), st.sampled_from([None, 1]))
@settings(max_examples=300)
def test_members_are_the_objects_members_as_written(obj: dict, indent: int | None) -> None:
    text = json.dumps(obj, indent=indent).encode()
    found = members(text)
    assert [name for name, _ in found] == list(obj)
    for name, span in found:
        assert orjson.loads(text[span.start : span.end]) == obj[name]


@given(st.lists(json_values, max_size=6))
@settings(max_examples=200)
def test_elements_are_the_arrays_elements(items: list) -> None:
    text = json.dumps(items).encode()
    assert [orjson.loads(text[s.start : s.end]) for s in elements(text)] == items


def test_a_body_nested_past_every_decoder_is_replaced_and_the_rest_kept() -> None:
    depth = 10_000  # what Go's encoding/json accepts
    body = b'{"a":[' * depth + b'"]}\\""' + b"]}" * depth
    raw = (
        b'{"kind":"Event","auditID":"x","user":{"username":"mallory"},"requestObject":'
        + body
        + b',"verb":"patch"}'
    )
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    out = opaque_deep(raw)
    assert out is not None and out.members == ("requestObject",)
    event = orjson.loads(out.text)
    assert event["user"] == {"username": "mallory"} and event["verb"] == "patch"
    assert event["requestObject"].startswith(f"(not read: nested over {DEPTH_LIMIT} levels deep")


def test_a_shallow_object_needs_nothing_replaced() -> None:
    assert opaque_deep(b'{"a": [[1]], "b": {"c": "]"}}') is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":[' + b"[" * 600 + b"]" * 600 + b"}",  # brackets that do not pair
        b'{"a":' + b"[" * 600,  # cut
        b'{"a":"' + b"[" * 600,  # an unclosed string
        b"[" + b"[" * 600 + b"]" * 601,  # not an object
        b'{"a":' + b"[" * 600 + b"]" * 600 + b"} trailing",
        b'{"a" ' + b"[" * 600 + b"]" * 600 + b"}",
        b"{1:" + b"[" * 600 + b"]" * 600 + b"}",
    ],
)
def test_broken_structure_is_not_salvaged(raw: bytes) -> None:
    assert opaque_deep(raw) is None


def test_a_million_levels_read_without_recursion() -> None:
    n = 1_000_000
    out = opaque_deep(b'{"a":1,"b":' + b"[" * n + b"]" * n + b"}")
    assert out is not None and out.members == ("b",)
