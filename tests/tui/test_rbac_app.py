"""The access view (``a``): a subject's permissions used, the bindings that granted them and
its least-privilege RBAC, from the Summary and from an event; copied and written to a file."""

from __future__ import annotations

import orjson
import yaml
from conftest import drive_app, until, v1_event

from audittui.tui.screens import AccessScreen, PathScreen, TextLines

REASON = 'RBAC: allowed by ClusterRoleBinding "dev-view" of ClusterRole "view" to Group "dev"'


def _log(tmp_path) -> str:
    events = []
    for k, (verb, resource, ns) in enumerate(
        [("get", "pods", "web"), ("list", "pods", "web"), ("get", "configmaps", "web"),
         ("list", "pods", "api"), ("watch", "pods", "api")]
    ):  # fmt: skip
        t = f"2024-05-01T10:00:{k:02d}.000000Z"
        events.append(
            v1_event(
                verb=verb,
                user={"username": "dana", "groups": ["dev"]},
                objectRef={
                    "resource": resource,
                    "namespace": ns,
                    "apiVersion": "v1",
                    **({"name": "p1"} if verb == "get" else {}),
                },
                requestURI=f"/api/v1/namespaces/{ns}/{resource}" + ("/p1" if verb == "get" else ""),
                requestReceivedTimestamp=t,
                stageTimestamp=t,
                annotations={
                    "authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": REASON,
                },
            )  # fmt: skip
        )
    path = tmp_path / "logs" / "audit.log"
    path.parent.mkdir()
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return str(path)


def test_a_on_an_event_shows_the_users_access_copies_and_writes_the_yaml(tmp_path):
    path = _log(tmp_path)
    target = tmp_path / "dana.yaml"

    async def check(app, pilot) -> None:
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccessScreen))
        screen = app.screen
        perms = screen.query_one("#permissions")
        rows = {tuple(str(c) for c in perms.get_row_at(k)[:4]) for k in range(perms.row_count)}
        assert ("list", "pods", "api", "1") in rows and ("get", "configmaps", "web", "1") in rows
        grants = screen.query_one("#grants")
        assert [str(c) for c in grants.get_row_at(0)[:4]] == [
            "RBAC",
            "ClusterRoleBinding/dev-view",
            "ClusterRole/view",
            "5",
        ]
        docs = list(yaml.safe_load_all(screen.yaml_text))
        assert {d["kind"] for d in docs} == {"ClusterRole", "ClusterRoleBinding", "Role",
                                             "RoleBinding"}  # fmt: skip
        assert "kind: ClusterRole" in screen.query_one("#yaml", TextLines).lines
        await pilot.press("c")
        assert app.clipboard == screen.yaml_text
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, PathScreen))
        field = app.screen.query_one("Input")
        field.value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists(), what="the YAML written")
        assert target.read_text() == screen.yaml_text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AccessScreen))

    drive_app(path, tmp_path, check)


def test_a_in_the_summary_shows_the_selected_users_access(tmp_path):
    path = _log(tmp_path)

    async def check(app, pilot) -> None:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccessScreen))
        assert app.screen.result.user == "dana" and app.screen.result.events == 5

    drive_app(path, tmp_path, check)
