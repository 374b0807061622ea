"""Log text printed to a terminal must be inert: no control, bidi or invisible character
survives, and JSON output stays the same JSON value."""

from __future__ import annotations

import re

import orjson
from hypothesis import given
from hypothesis import strategies as st

from audittui.output.inert import inert, inert_json

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def test_inert_escapes_ansi_bidi_and_invisible_characters():
    hostile = "\x1b[31mevil\x1b[0m\u202e[bold red]x[/]\u200b\x07\x85"
    out = inert(hostile)
    assert out == "\\x1b[31mevil\\x1b[0m\\u202e[bold red]x[/]\\u200b\\x07\\x85"
    assert not UNSAFE.search(out)


def test_inert_keeps_ordinary_text():
    text = "system:serviceaccount:kube-system:replicaset-controller é 日本 🙂"
    assert inert(text) == text


@given(st.text())
def test_inert_never_leaves_unsafe_characters(text):
    assert not UNSAFE.search(inert(text))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=10,
    )
)
def test_inert_json_is_the_same_json_without_unsafe_characters(value):
    raw = orjson.dumps(value)
    out = inert_json(raw)
    assert orjson.loads(out) == value
    assert not UNSAFE.search(out.decode())
