"""What an exec ran, as the app shows it: the list's resource cell says ``exec: <command>`` and
the detail header the command's words, quoted as a shell takes them and inert (the command is
attacker text: control, bidi and markup shown, never obeyed)."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from conftest import drive_app, shows_newest, until, v1_event

from audittui.tui.columns import exec_command_cell, row_cells
from audittui.tui.detail import DetailPane, header
from audittui.tui.event_list import EventList

HOSTILE = "echo \x1b[2J\u202eevil [bold red]x[/]"


def exec_event(k: int, argv: list[str], **kw) -> dict:
    query = "&".join("command=" + quote(w, safe="") for w in argv)
    return v1_event(
        auditID=f"ex-{k}",
        verb="create",
        stage="ResponseStarted",
        requestURI=f"/api/v1/namespaces/shop/pods/web-{k}/exec?{query}&container=app&tty=true",
        objectRef={"resource": "pods", "subresource": "exec", "namespace": "shop", "name": f"p{k}"},
        responseStatus={"code": 101},
        requestReceivedTimestamp=f"2024-05-01T10:00:{k:02d}.000000Z",
        stageTimestamp=f"2024-05-01T10:00:{k:02d}.002000Z",
        **kw,
    )


def fields(ev: dict):
    ref = ev.get("objectRef") or {}
    values = {
        "resource": ref.get("resource"),
        "subresource": ref.get("subresource"),
        "namespace": ref.get("namespace"),
        "name": ref.get("name"),
        "uri": ev.get("requestURI"),
        "user": "u",
        "verb": ev.get("verb"),
        "time": 0,
        "latency": 0,
        "code": 101,
        "ips": [],
        "stage": "ResponseStarted",
        "impersonated": None,
    }
    return values.get


def test_the_list_cell_shows_the_command_quoted_and_inert():
    cell = row_cells(fields(exec_event(1, ["sh", "-c", HOSTILE])), False)["what"]
    assert cell == "exec: sh -c 'echo \\x1b[2J\\u202eevil [bold red]x[/]'"
    plain = row_cells(fields(exec_event(2, ["ls", "-la"])), False)["what"]
    assert plain == "exec: ls -la"
    # no command (a bare exec URI, an attach, a log) keeps the resource
    bare = exec_event(3, [])
    bare["requestURI"] = "/api/v1/namespaces/shop/pods/web-3/exec"
    assert row_cells(fields(bare), False)["what"] == "pods/exec"
    log = exec_event(4, ["id"])
    log["objectRef"]["subresource"] = "log"
    assert row_cells(fields(log), False)["what"] == "pods/log"
    # a legacy line has no resource: its path says exec
    assert exec_command_cell(None, None, "api/v1/namespaces/a/pods/b/exec?command=id") == "exec: id"


def test_the_detail_header_shows_the_command_from_the_uri_or_the_body():
    head = header(exec_event(1, ["sh", "-c", HOSTILE]), 2000).plain
    assert "exec: sh -c 'echo \\x1b[2J\\u202eevil [bold red]x[/]'" in head
    assert "\x1b" not in head and "\u202e" not in head
    gke = exec_event(2, [])
    gke["requestObject"] = {"command": ["cat", "/etc/shadow"]}
    assert "exec: cat /etc/shadow" in header(gke, 0).plain
    assert "exec:" not in header(v1_event(), 0).plain


def test_the_app_shows_what_the_exec_ran_in_the_list_and_the_detail(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "audit.log"
    events = [
        v1_event(auditID="g-0"),
        exec_event(1, ["sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"]),
        exec_event(2, ["sh", "-c", HOSTILE]),
    ]
    log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    async def check(app, pilot) -> None:
        await until(pilot, lambda: shows_newest(app) and len(app.view) == 3)
        lst = app.query_one(EventList)
        rows = [lst.render_line(y).text for y in range(3)]
        assert "exec: sh -c 'cat" in rows[1]
        assert "exec: sh -c 'ech" in rows[2] and "\x1b" not in rows[2]
        detail = app.query_one(DetailPane)
        await until(pilot, lambda: detail.event is not None and detail.event["auditID"] == "ex-2")
        head = app.query_one("#detail-header").render().plain
        assert "exec: sh -c 'echo \\x1b[2J\\u202eevil [bold red]x[/]'" in head
        assert "\x1b" not in head and "\u202e" not in head
        await pilot.press("k")
        await until(pilot, lambda: detail.event is not None and detail.event["auditID"] == "ex-1")
        head = app.query_one("#detail-header").render().plain
        assert "exec: sh -c 'cat /var/run/secrets/kubernetes.io/serviceaccount/token'" in head

    drive_app(str(log), tmp_path, check)
