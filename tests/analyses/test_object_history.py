"""audittui history: one object's events in time order, and what each write changed."""

from __future__ import annotations

import itertools
import json

import orjson
from cli.test_cli import run
from conftest import v1_event

from audittui.analyses.object_history import Change, diff

TIMES = (f"2024-05-01T09:{k // 60 % 60:02d}:{k % 60:02d}.000000Z" for k in itertools.count())


def _write(
    verb, rv, spec, *, uri=None, sub=None, patch=None, level="RequestResponse",
    kind="Deployment", resource="deployments", ns="prod", name="web",
):  # fmt: skip
    obj = {
        "kind": kind,
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "resourceVersion": rv, "managedFields": [{"m": rv}],
                     "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": spec,
    }  # fmt: skip
    if ns:
        obj["metadata"]["namespace"] = ns
    ref = {"resource": resource, "name": name, "apiGroup": "apps", "apiVersion": "v1"}
    if ns:
        ref["namespace"] = ns
    if sub:
        ref["subresource"] = sub
    t = next(TIMES)
    ev = v1_event(
        verb=verb,
        level=level,
        objectRef=ref,
        requestURI=uri or f"/apis/apps/v1/namespaces/{ns}/{resource}/{name}",
        requestReceivedTimestamp=t,
        stageTimestamp=t,
    )
    if level == "RequestResponse":
        ev["requestObject"] = patch if patch is not None else obj
        ev["responseObject"] = obj
    return ev


def _log(tmp_path, events, name="audit.log"):
    path = tmp_path / name
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return str(path)


def test_diff_paths_ops_and_noise():
    old = {"metadata": {"resourceVersion": "1", "labels": {"a/b": "x", "t~": 1}},
           "spec": {"replicas": 1, "paused": True, "ports": [80, 443], "tags": [1]}}  # fmt: skip
    new = {"metadata": {"resourceVersion": "2", "labels": {"a/b": "y", "new": 2}},
           "spec": {"replicas": 3, "ports": [80, 8443], "tags": [1, 2]}}  # fmt: skip
    got = {(c.path, c.op, json.dumps(c.old), json.dumps(c.new)) for c in diff(old, new)}
    assert got == {
        ("/metadata/labels/a~1b", "replace", '"x"', '"y"'),
        ("/metadata/labels/new", "add", "null", "2"),
        ("/metadata/labels/t~0", "remove", "1", "null"),
        ("/spec/paused", "remove", "true", "null"),
        ("/spec/ports/1", "replace", "443", "8443"),
        ("/spec/replicas", "replace", "1", "3"),
        ("/spec/tags", "replace", "[1]", "[1, 2]"),  # lengths differ: the list as one value
    }
    assert Change("/metadata/resourceVersion", "replace", "1", "2") in diff(
        old, new, all_fields=True
    )
    assert diff({"a": [1, {"b": 1}]}, {"a": [1, {"b": 1}]}) == []


def test_history_shows_each_write_its_change_and_marks_the_noise(capsys, tmp_path):
    path = _log(tmp_path, [
        _write("create", "1", {"replicas": 1}),
        _write("update", "2", {"replicas": 3}),
        _write("patch", "3", {"replicas": 5}, patch={"spec": {"replicas": 5}}),
        _write("update", "3", {"replicas": 5}),  # the same resourceVersion: a no-op
        _write("update", "9", {"replicas": 7},
               uri="/apis/apps/v1/namespaces/prod/deployments/web?dryRun=All"),
        _write("update", "4", {"replicas": 5}, sub="status"),
        _write("update", "5", {"replicas": 6}),
        _write("delete", "6", {"replicas": 6}),
        _write("update", "7", {"replicas": 9}, name="other"),  # another object
    ])  # fmt: skip
    code, out, _ = run(capsys, "history", "deployments", "prod/web", "--format", "json", path)
    assert code == 0
    entries = json.loads(out)
    assert [e["verb"] for e in entries] == ["create", "update", "patch", "update", "update",
                                            "update", "update", "delete"]  # fmt: skip
    changes = [[(c["path"], c["old"], c["new"]) for c in e["changes"] or []] for e in entries]
    assert changes[1] == [("/spec/replicas", 1, 3)]
    assert changes[2] == [("/spec/replicas", 3, 5)] and entries[2]["patch"] == {
        "spec": {"replicas": 5}
    }
    assert changes[3] == [] and "no-op" in " ".join(entries[3]["notes"])
    assert "dry run" in " ".join(entries[4]["notes"])
    assert "status write" in entries[5]["notes"]
    # the dry run was not persisted: the next write is compared with what was
    assert ("/spec/replicas", 5, 6) in changes[6]
    assert "deleted" in entries[7]["notes"]
    assert all(c["path"] != "/metadata/managedFields" for e in entries for c in e["changes"] or [])
    code, text, _ = run(capsys, "history", "deployments", "prod/web", path)
    assert (
        code == 0 and "~ /spec/replicas: 1 → 3" in text and 'patch {"spec":{"replicas":5}}' in text
    )


def test_a_cluster_object_a_metadata_log_and_nothing_found(capsys, tmp_path):
    path = _log(tmp_path, [
        _write("create", "1", {}, resource="clusterroles", ns=None, name="admin", level="Metadata"),
        _write("update", "2", {}, resource="clusterroles", ns=None, name="admin", level="Metadata"),
    ])  # fmt: skip
    code, out, _ = run(capsys, "history", "clusterroles", "-/admin", path)
    assert code == 0 and out.count("update") == 1
    assert "no request or response bodies" in out and "RequestResponse" in out
    code, out, err = run(capsys, "history", "clusterroles", "-/nope", path)
    assert code == 2 and out == "" and "no event touched clusterroles -/nope" in err
    code, _, err = run(capsys, "history", "clusterroles", "admin", path)
    assert code == 2 and "NAMESPACE/NAME" in err


def test_secrets_stay_masked_in_diffs_until_revealed(capsys, tmp_path):
    def secret(verb, rv, password):
        ev = _write(verb, rv, {}, resource="secrets", kind="Secret", name="db")
        for body in (ev["requestObject"], ev["responseObject"]):
            body.pop("spec", None)
            body["data"] = {"password": password}
        return ev

    path = _log(tmp_path, [secret("create", "1", "b2xk"), secret("update", "2", "bmV3c2VjcmV0")])
    code, out, _ = run(capsys, "history", "secrets", "prod/db", "--format", "json", path)
    assert code == 0 and "bmV3c2VjcmV0" not in out and "b2xk" not in out
    code, out, _ = run(
        capsys, "history", "secrets", "prod/db", "--format", "json", "--reveal", path
    )
    (change,) = json.loads(out)[1]["changes"]
    assert (change["path"], change["old"], change["new"]) == (
        "/data/password",
        "b2xk",
        "bmV3c2VjcmV0",
    )


def test_h_in_the_app_shows_the_history_of_the_events_object(tmp_path):
    from conftest import drive_app, until

    from audittui.tui.screens import ObjectHistoryScreen

    path = _log(tmp_path, [
        _write("create", "1", {"replicas": 1}),
        _write("update", "2", {"replicas": 4}),
    ])  # fmt: skip

    async def check(app, pilot) -> None:
        await pilot.press("h")  # the newest event is selected: the update
        await until(pilot, lambda: isinstance(app.screen, ObjectHistoryScreen))
        await until(pilot, lambda: app.screen.done)
        title = str(app.screen.query_one("#title").render())
        assert "deployments prod/web: 2 write(s)" in title and "reading" not in title
        assert "    ~ /spec/replicas: 1 → 4" in app.screen.query_one("TextLines").lines
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ObjectHistoryScreen))

    drive_app(path, tmp_path, check)


def test_conflicts_and_refused_writes_are_marked_and_change_nothing(tmp_path):
    from audittui.analyses.object_history import history

    uri = "/apis/apps/v1/namespaces/prod/deployments/web?fieldManager=ci&force=false"
    ssa = _write("patch", "1", None, patch={"spec": {"replicas": 9}}, uri=uri)
    message = (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using '
        'apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name="web"].image'
    )
    ssa["responseStatus"] = {"code": 409, "status": "Failure", "reason": "Conflict",
                             "message": message}  # fmt: skip
    ssa["responseObject"] = {"kind": "Status", "code": 409}
    stale = _write("update", "1", {"replicas": 7})
    stale["responseStatus"] = {"code": 409, "message": "the object has been modified"}
    stale["responseObject"] = {"kind": "Status", "code": 409}
    forbidden = _write("delete", "1", None, level="Metadata")
    forbidden["responseStatus"] = {"code": 403}
    path = _log(tmp_path, [
        _write("create", "1", {"replicas": 1}),
        ssa,
        stale,
        forbidden,
        _write("update", "2", {"replicas": 2}),
    ])  # fmt: skip
    with __import__("audittui").load(path) as store:
        entries = history(store, list(range(len(store)))).entries
    notes = [e.notes for e in entries]
    assert notes[1] == [
        "server-side apply conflict (409, not applied): fields owned by "
        '"kubectl-client-side-apply" (.spec.replicas, '
        '.spec.template.spec.containers[name="web"].image)'
    ]
    assert entries[1].patch == {"spec": {"replicas": 9}} and entries[1].changes is None
    assert notes[2] == ["conflict (409, not written: the object changed since it was read)"]
    assert entries[2].changes is None
    assert notes[3] == ["refused (403): not written"]  # not "deleted"
    # The next write is compared with the last version written, the create's.
    assert [(c.path, c.old, c.new) for c in entries[4].changes] == [("/spec/replicas", 1, 2)]


def test_a_long_history_is_shown_while_it_is_read(tmp_path):
    from conftest import drive_app, until

    events = []
    for k in range(3000):
        t = f"2024-05-01T{10 + k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d}.000000Z"
        ev = _write("update" if k else "create", str(k + 1), {"replicas": k})
        ev["requestReceivedTimestamp"] = ev["stageTimestamp"] = t
        events.append(ev)
    path = _log(tmp_path, events)

    async def check(app, pilot) -> None:
        await pilot.press("h")
        await until(pilot, lambda: getattr(app.screen, "done", False), timeout=60)
        lines = app.screen.query_one("TextLines").lines
        assert len(lines) == 1 + 3000 + 2999  # the header, each event, each change
        assert lines[-1] == "    ~ /spec/replicas: 2998 → 2999"
        assert "3,000 write(s)" in str(app.screen.query_one("#title").render())
        await pilot.press("end")
        await pilot.pause()
        assert app.screen.query_one("TextLines").scroll_offset.y > 5000

    drive_app(path, tmp_path, check)
