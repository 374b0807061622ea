"""An event nested past every reader's limit is an event on its shallow fields (issue 29, 3):
indexed (``user:mallory`` finds it) in files, followed live, inside a CRI line and a GKE entry;
its deep body read as a note that says why, in the detail, the outputs and ``stats``."""

from __future__ import annotations

import orjson
from cli.test_cli import run
from conftest import drive_app, until, v1_event
from tui.test_app import tree_text

import audittui
from audittui.index.evaluate import select
from audittui.index.store import Store
from audittui.ingest.follow import Follower
from audittui.tui.detail import DetailPane

DEPTH = 100_000  # Go's decoder takes 10,000; orjson stops at 1,024
MARKER = "(not read: nested over 200 levels deep, 200,000 bytes)"


def deep_line(**overrides: object) -> bytes:
    """Mallory's event whose requestObject.spec is nested DEPTH levels deep, with a token
    beside it (masked in the outputs), as one line."""
    ev = v1_event(
        user={"username": "mallory", "extra": {"x": ["y"]}},
        verb="patch",
        level="RequestResponse",
        **overrides,
    )
    head = orjson.dumps(ev)[:-1]
    body = b"[" * DEPTH + b"]" * DEPTH
    return head + b',"requestObject":{"spec":' + body + b',"token":"s3cr3t-t0ken"}}'


def plain_line(user: str = "alice") -> bytes:
    return orjson.dumps(v1_event(user={"username": user})) + b"\n"


def test_a_deep_event_in_a_file_is_found_counted_and_written_with_its_body_opaque(tmp_path, capsys):
    log = tmp_path / "audit.log"
    log.write_bytes(plain_line() + deep_line() + b"\n" + plain_line("bob"))
    code, out, err = run(capsys, "query", "-q", "user:mallory", str(log), "--format", "count")
    assert (code, out) == (0, "1\n")
    code, out, _ = run(capsys, "query", "-q", "user:mallory", str(log), "--format", "jsonl")
    event = orjson.loads(out)
    assert event["user"]["username"] == "mallory" and event["verb"] == "patch"
    # the deep member says why it is not there; the token beside it is masked as usual
    assert event["requestObject"] == {"spec": MARKER, "token": event["requestObject"]["token"]}
    assert "s3cr3t" not in out
    code, out, _ = run(capsys, "query", "-q", "user:mallory", str(log), "--format", "json")
    assert orjson.loads(out)[0]["requestObject"]["spec"] == MARKER
    code, out, _ = run(capsys, "stats", str(log))
    assert "events      3" in out and "malformed   0" in out
    assert "requestObject.spec: nested over 200 levels deep, not read" in out
    assert f"{log} line 2" in out  # where, as for a field of the wrong type
    with audittui.load(log) as store:
        [ignored] = list(store.ignored)
        assert (ignored.path, ignored.line) == (str(log), 2)
        assert store.event(select(store, "user:mallory")[0], bounded=True)["requestObject"] == {
            "spec": MARKER,
            "token": "s3cr3t-t0ken",
        }


def test_deep_events_inside_wrappers_and_documents_keep_their_fields(tmp_path, capsys):
    cri = tmp_path / "cri.log"
    cri.write_bytes(b"2026-12-01T10:00:00.1Z stdout F " + deep_line() + b"\n")
    deep = b"[" * DEPTH + b"]" * DEPTH
    gke = (
        b'{"insertId":"g1","timestamp":"2026-12-01T10:00:00Z","protoPayload":{'
        b'"serviceName":"k8s.io","methodName":"io.k8s.core.v1.configmaps.patch",'
        b'"resourceName":"core/v1/namespaces/d/configmaps/c",'
        b'"authenticationInfo":{"principalEmail":"mallory"},"request":{"data":' + deep + b"}}}"
    )
    (tmp_path / "gke.log").write_bytes(gke + b"\n")
    document = tmp_path / "doc.json"  # one pretty-printed event, a whole-file document
    document.write_bytes(deep_line().replace(b',"verb"', b',\n  "verb"'))
    for path, member in (
        (cri, "requestObject.spec"),
        (tmp_path / "gke.log", "protoPayload.request.data"),
        (document, "requestObject.spec"),
    ):
        code, out, err = run(capsys, "query", "-q", "user:mallory", str(path), "--format", "count")
        assert (code, out) == (0, "1\n"), (path, err)
        with audittui.load(path) as store:
            assert [m.reason.split(":")[0] for m in store.ignored] == [member]
            assert not store.malformed
    # the wrapper (w, --format wrapper) of the GKE entry is the entry, its deep part a note
    code, out, _ = run(capsys, "query", "-q", "user:mallory", str(tmp_path / "gke.log"),
                       "--format", "wrapper")  # fmt: skip
    request = orjson.loads(out)["protoPayload"]["request"]
    assert request == {"data": MARKER}


def test_a_deep_event_followed_live_is_indexed(tmp_path):
    log = tmp_path / "audit.log"
    log.write_bytes(plain_line())
    store = Store()
    follower = Follower(store, [str(log)])

    def take() -> None:
        for batch, line in follower.read_once()[0]:
            store.append(batch, line)

    take()
    with open(log, "ab") as fh:
        fh.write(deep_line() + b"\n" + plain_line("bob"))
    take()
    assert len(store) == 3 and not store.malformed
    [i] = select(store, "user:mallory")
    assert store.event(int(i), bounded=True)["requestObject"]["spec"] == MARKER
    assert [(m.line, m.reason.split(":")[0]) for m in store.ignored] == [(2, "requestObject.spec")]
    follower.files[0].close()
    store.close()


def test_the_detail_shows_the_deep_body_as_a_note_saying_why(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    log.write_bytes(plain_line() + deep_line() + b"\n")  # mallory's is the newest: selected

    async def check(app, pilot):
        detail = app.query_one(DetailPane)
        await until(pilot, lambda: detail.event is not None, what="the detail")
        head = app.query_one("#detail-header").render().plain
        assert "mallory" in head and "patch" in head
        text = tree_text(app)
        assert MARKER in text  # the reason, where the body was
        assert "s3cr3t" not in text  # masked
        await pilot.press("w")  # the line is the event: no wrapper, said so
        assert "no wrapper" in app.query_one("#detail-header").render().plain

    drive_app(str(log), tmp_path, check)


def test_lines_followed_are_numbered_once(tmp_path):
    """A malformed line of a followed file is said at its own line (it was shifted twice: line
    4 for the third line)."""
    log = tmp_path / "audit.log"
    log.write_bytes(plain_line())
    store = Store()
    follower = Follower(store, [str(log)])
    for _ in range(2):
        for batch, line in follower.read_once()[0]:
            store.append(batch, line)
        with open(log, "ab") as fh:
            fh.write(plain_line() + b"not json\n")
    assert [m.line for m in store.malformed] == [3]
    follower.files[0].close()
    store.close()
