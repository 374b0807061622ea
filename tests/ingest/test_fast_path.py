"""The bulk loader's fast path (typed msgspec decoding of plain v1 lines) must index exactly what
the general path (orjson dicts through formats.row) indexes, for any event, however odd."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audittui
from audittui.index import loader
from audittui.index.evaluate import select
from audittui.ingest.batch import NUMBER_COLUMNS, STRING_COLUMNS
from audittui.ingest.formats import pack, row

text = st.sampled_from(["", "a", "pods", "kube-system", "Get", "é", "a\x1bb", "x" * 40])
odd = st.one_of(
    st.none(),
    st.integers(-5, 500),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    text,
)
times = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2024-11-15T10:20:30.123456Z",
            "2024-11-15T10:20:30.1234567Z",
            "2024-11-15T10:20:30Z",
            "2024-11-15T10:20:30.123456+02:00",
            "2024-11-15T10:20:30.12345xZ",
            "2024-11-15T10:20:30.١٢٣٤٥٦Z",
            "2024-11-15 10:20:30",
            "not a time",
            "",
        ]
    ),
    odd,
)
strings = st.lists(st.one_of(text, odd), max_size=3)
user = st.one_of(
    odd,
    st.fixed_dictionaries(
        {}, optional={"username": st.one_of(text, odd), "groups": st.one_of(strings, odd)}
    ),
)
object_ref = st.one_of(
    odd,
    st.fixed_dictionaries(
        {},
        optional={
            k: st.one_of(text, odd)
            for k in ("resource", "namespace", "name", "apiGroup", "apiVersion", "subresource")
        },
    ),
)
event = st.fixed_dictionaries(
    {"kind": st.sampled_from(["Event", "Event", "Event", "EventList", None])},
    optional={
        "auditID": st.one_of(text, odd),
        "stage": st.one_of(text, odd),
        "level": st.one_of(text, odd),
        "verb": st.one_of(text, odd),
        "requestURI": st.one_of(text, odd),
        "userAgent": st.one_of(text, odd),
        "user": user,
        "impersonatedUser": user,
        "sourceIPs": st.one_of(strings, odd),
        "objectRef": object_ref,
        "responseStatus": st.one_of(odd, st.fixed_dictionaries({}, optional={"code": odd})),
        "annotations": st.one_of(
            odd,
            st.fixed_dictionaries(
                {},
                optional={
                    "authorization.k8s.io/decision": odd,
                    "authorization.k8s.io/reason": odd,
                    "audittui/server": odd,
                    "authentication.openshift.io/username": odd,
                    "other": odd,
                },
            ),
        ),
        "requestReceivedTimestamp": times,
        "stageTimestamp": times,
        "timestamp": times,
        "metadata": st.one_of(
            odd, st.fixed_dictionaries({}, optional={"creationTimestamp": times})
        ),
        "namespace": st.one_of(text, odd),
        "resource": st.one_of(text, odd),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=8))
def test_fast_path_indexes_what_the_general_path_indexes(events):
    # Drop the "kind": None entries so that the value is really absent.
    events = [{k: v for k, v in e.items() if not (k == "kind" and v is None)} for e in events]
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(loader, "READ_BLOCK", 256),  # small reads: lines cut by blocks
    ):
        path = Path(tmp) / "audit.log"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        with audittui.load(path) as store:
            expected = []
            for e in events:
                if audittui.ingest.formats.is_event(e):
                    expected.append(pack(row(e), 0, 0, -1))
            assert len(store) == len(expected)
            for i, packed in enumerate(expected):
                want = _columns(packed)
                got = {name: store.value(name, i) for name in want}
                diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
                assert not diff, (i, diff, orjson.dumps(events).decode())


def _columns(packed: tuple) -> dict:
    numbers, name, audit_id, uri, credential, who, what = packed
    out = dict(zip(("time", "latency", "code", "flags"), numbers[:4], strict=True))
    fields = dict(zip(STRING_COLUMNS, (*who, *what, name, audit_id, uri, credential), strict=True))
    for column in STRING_COLUMNS:
        value = fields[column]
        # The store keeps "" and () as missing, except the core API group "".
        if value in ("", ()) and column != "api":
            value = None
        out[column] = value
    assert set(out) <= set(NUMBER_COLUMNS) | set(STRING_COLUMNS)
    return out


def test_a_code_out_of_range_is_missing_and_the_event_kept(tmp_path):
    ev = {"kind": "Event", "auditID": "a", "verb": "get", "user": {"username": "u"},
          "requestReceivedTimestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
    codes = [200, 2**31, 2**40, 2**63, 2**70, -5, 403]
    # json, not orjson: orjson refuses to write integers past 64 bits
    lines = [json.dumps({**ev, "responseStatus": {"code": c}}) for c in codes]
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    with audittui.load(path) as store:
        assert store.column("code").tolist() == [200, 0, 0, 0, 0, 0, 403]
        assert len(select(store, "code:403")) == 1
