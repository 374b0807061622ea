"""Identity is exact: two events share a request, a name, a URI or a user exactly when their
values are equal, however the store took them in. Every consumer that asks "the same?" (one
row per request, the detail's stages, a finding's request count and its distinct values) must
answer by value. Stores here are grown from many small batches, as a bulk load of a big log
is: a value seen in one batch comes back in others, and must get the code it had."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest
from conftest import v1_event

from audittui.analyses.requests import Requests
from audittui.analyses.view import TIME, RowView, matching
from audittui.findings import Findings, load_rules
from audittui.index.loader import parse_slice
from audittui.index.store import Store
from audittui.ingest.sources import open_source

STRING_COLUMNS = ("audit_id", "name", "uri", "user", "verb", "credential", "ips", "stage")


def stamp(s: int) -> str:
    return f"2024-05-01T10:{s // 60:02d}:{s % 60:02d}.000000Z"


def multi_batch_store(tmp_path, events: list[dict], per_batch: int = 3) -> Store:
    """``events`` written as one log, taken in ``per_batch`` lines at a time."""
    lines = [orjson.dumps(e) + b"\n" for e in events]
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines))
    store = Store()
    store.add_source(open_source(0, str(path), store.spool))
    offsets = np.cumsum([0] + [len(x) for x in lines])
    for a in range(0, len(lines), per_batch):
        b = min(a + per_batch, len(lines))
        store.append(parse_slice(0, str(path), int(offsets[a]), int(offsets[b])))
    return store


def stage(audit_id: str, s: int, name: str, code: int | None = 200, **kw) -> dict:
    return v1_event(
        auditID=audit_id,
        stage=name,
        requestReceivedTimestamp=stamp(s),
        stageTimestamp=stamp(s),
        responseStatus=None if code is None else {"code": code},
        **kw,
    )


def test_ids_are_equal_exactly_when_values_are_in_every_column(tmp_path):
    rng = random.Random(5)
    events = []
    for _ in range(90):
        events.append(
            v1_event(
                auditID=f"req-{rng.randint(0, 30)}",
                stage=rng.choice(["RequestReceived", "ResponseComplete"]),
                requestURI=f"/api/v1/namespaces/ns/pods/p{rng.randint(0, 20)}",
                objectRef={"resource": "pods", "namespace": "ns", "name": f"p{rng.randint(0, 9)}"},
                user={
                    "username": rng.choice(["alice", "bob"]),
                    "extra": {
                        "authentication.kubernetes.io/credential-id": [f"JTI={rng.randint(0, 5)}"]
                    },
                },
                sourceIPs=[rng.choice(["10.0.0.1", "10.0.0.2"])],
            )
        )
    store = multi_batch_store(tmp_path, events, per_batch=4)
    for column in STRING_COLUMNS:
        values = [store.value(column, i) for i in range(len(store))]
        # each distinct value held once, however many batches brought it
        assert len(store.tables[column]) == 1 + len({v for v in values if v not in ("", ())})
        ids = store.ids(column)
        for i in range(len(store)):
            same_value = np.array([v == values[i] for v in values])
            assert ((ids == ids[i]) == same_value).all(), (column, i, values[i])
            assert (ids[i] == 0) == (values[i] in (None, "", ()))
        assert ids.max() < len(store.tables[column].values)  # usable as an array index
        groups = store.group_numbers(column, np.arange(len(store)))
        for i in range(len(store)):
            assert ((groups == groups[i]) == np.array([v == values[i] for v in values])).all()


def test_ids_grow_with_the_store_and_keep_their_earlier_codes(tmp_path):
    events = [stage(f"r{k % 7}", k, "ResponseComplete") for k in range(40)]
    store = multi_batch_store(tmp_path, events[:20], per_batch=3)
    before = store.ids("audit_id").copy()
    path = store.sources[0].read_path
    with open(path, "ab") as fh:
        size = fh.tell()
        fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events[20:]))
    end = size
    with open(path, "rb") as fh:
        data = fh.read()
    for k in range(4):  # four more batches
        nxt = data.find(b"\n", size + (len(data) - size) * (k + 1) // 4 - 1) + 1
        store.append(parse_slice(0, path, end, nxt))
        end = nxt
    after = store.ids("audit_id")
    assert (after[:20] == before).all()
    values = [store.value("audit_id", i) for i in range(len(store))]
    assert len(set(after.tolist())) == len(set(values)) == 7


def test_one_row_per_request_when_its_stages_are_in_different_batches(tmp_path):
    events = []
    for k in range(30):
        events.append(stage(f"req-{k}", k, "RequestReceived", None))
    for k in range(30):
        events.append(stage(f"req-{k}", k, "ResponseComplete", 200 + k % 2))
    store = multi_batch_store(tmp_path, events, per_batch=7)
    rows = matching(store, None, TIME, Requests())
    assert len(rows) == 30  # was 60: nothing folded when codes were taken for identities
    assert {store.value("stage", int(r)) for r in rows} == {"ResponseComplete"}
    requests = Requests()
    requests.update(store)
    assert not any(requests.is_open(store, int(r)) for r in rows)
    # The live rows, merged batch by batch, agree.
    view = RowView(store)
    view.replace("", None, rows, len(store), TIME, requests)
    assert view.rows.tolist() == rows.tolist()


def test_the_live_rows_fold_stages_arriving_in_later_batches(tmp_path):
    first = [stage(f"req-{k}", k, "RequestReceived", None) for k in range(12)]
    store = multi_batch_store(tmp_path, first, per_batch=5)
    requests = Requests()
    view = RowView(store)
    view.replace(
        "", None, matching(store.snapshot(), None, TIME, requests), len(store), TIME, requests
    )
    assert len(view) == 12 and all(requests.is_open(store, int(r)) for r in view.rows)
    path = store.sources[0].read_path
    with open(path, "rb") as fh:
        start = len(fh.read())
    with open(path, "ab") as fh:
        fh.write(
            b"".join(
                orjson.dumps(stage(f"req-{k}", k, "ResponseComplete")) + b"\n" for k in range(12)
            )
        )
    with open(path, "rb") as fh:
        data = fh.read()
    middle = data.find(b"\n", (start + len(data)) // 2) + 1
    store.append(parse_slice(0, path, start, middle))
    view.catch_up()
    store.append(parse_slice(0, path, middle, len(data)))
    view.catch_up()
    assert len(view) == 12
    assert not any(requests.is_open(store, int(r)) for r in view.rows)
    assert view.rows.tolist() == matching(store, None, TIME, Requests()).tolist()


def test_the_detail_lists_every_stage_of_a_request_across_batches(tmp_path):
    from audittui.tui.detail import DetailPane

    events = [stage("req-x", 1, "RequestReceived", None)]
    events += [stage(f"other-{k}", 1, "ResponseComplete") for k in range(7)]
    events += [stage("req-x", 1, "ResponseStarted", 101), stage("req-x", 1, "ResponseComplete")]
    store = multi_batch_store(tmp_path, events, per_batch=2)
    pane = DetailPane(store)
    pane.event_index = 9
    stages = [store.value("stage", i) for i in pane.same_request()]
    assert stages == ["RequestReceived", "ResponseStarted", "ResponseComplete"]


def exec_stage(audit_id: str, s: int, name: str) -> dict:
    return stage(
        audit_id,
        s,
        name,
        101,
        verb="create",
        requestURI="/api/v1/namespaces/prod/pods/web-1/exec?command=sh&stdin=true&tty=true",
        objectRef={
            "resource": "pods",
            "namespace": "prod",
            "name": "web-1",
            "subresource": "exec",
            "apiVersion": "v1",
        },
    )


def test_a_finding_counts_an_exec_seen_at_two_stages_once(tmp_path):
    events = [exec_stage("exec-1", 1, "ResponseStarted")]
    events += [stage(f"filler-{k}", 2, "ResponseComplete") for k in range(8)]
    events += [
        exec_stage("exec-1", 1, "ResponseComplete"),
        exec_stage("exec-2", 3, "ResponseStarted"),
    ]
    store = multi_batch_store(tmp_path, events, per_batch=3)
    findings = Findings(load_rules(False).rules)
    findings.update(store)
    found = next(f for f in findings.results(store) if f.rule.id == "exec-attach")
    assert found.count == 2
    assert found.audit_ids == ["exec-1", "exec-2"]


def secret_read(k: int, name: str, s: int) -> dict:
    return v1_event(
        auditID=f"read-{k}",
        verb="get",
        requestURI=f"/api/v1/namespaces/prod/secrets/{name}",
        objectRef={"resource": "secrets", "namespace": "prod", "name": name, "apiVersion": "v1"},
        user={"username": "mallory", "groups": ["system:authenticated"]},
        requestReceivedTimestamp=stamp(s),
        stageTimestamp=stamp(s),
    )


@pytest.mark.parametrize(
    ("names", "fires"), [(["db", "db", "db", "db"], False), (["db", "api", "db", "tls"], True)]
)
def test_a_distinct_threshold_counts_values_not_codes(tmp_path, names, fires):
    # The same secret read in four batches is one distinct secret, not four.
    events = []
    for k, name in enumerate(names):
        events.append(secret_read(k, name, k))
        events += [stage(f"pad-{k}-{j}", k, "ResponseComplete") for j in range(3)]
    store = multi_batch_store(tmp_path, events, per_batch=2)
    rules = [r for r in load_rules(False).rules if r.threshold and r.threshold.distinct == "name"]
    assert rules, "the pack has a distinct-name threshold rule (the secrets burst)"
    findings = Findings(rules)
    findings.update(store)
    fired = {f.rule.id for f in findings.results(store)}
    assert bool(fired) == fires, fired


def test_after_r_an_open_request_shows_open_at_once(tmp_path):
    """The list's row cache is keyed by what a row shows: R (and a completing stage arriving)
    changes a row's code column from the event's own to "open" and back."""
    from conftest import drive_app, status, until

    from audittui.tui.event_list import EventList

    path = tmp_path / "audit.log"
    events = [stage(f"done-{k}", k, "ResponseComplete") for k in range(5)]
    events.append(stage("hung", 9, "RequestReceived", None))
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    async def check(app, pilot) -> None:
        lst = app.main.query_one(EventList)

        def newest_line() -> str:
            return lst.render_line(len(lst.view) - 1 - int(lst.scroll_y)).text

        await until(pilot, lambda: "open" not in newest_line() and len(lst.view) == 6)
        await pilot.press("R")
        await until(pilot, lambda: "one row per request" in status(app))
        await until(pilot, lambda: " open " in newest_line(), what="the hung request: open")
        with open(path, "ab") as fh:
            fh.write(orjson.dumps(stage("hung", 9, "ResponseComplete", 504)) + b"\n")
        await until(pilot, lambda: " 504 " in newest_line(), what="its final code")

    drive_app(str(path), tmp_path, check)
