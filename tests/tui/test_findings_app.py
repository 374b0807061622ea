"""The findings pane in the running app: rules fire as events arrive, blind rules say why,
Enter shows a finding's events, and a broken rules file is reported without stopping the app."""

from pathlib import Path

import orjson
from conftest import drive_app, shown, status, until, v1_event
from textual.widgets import TabbedContent

from audittui.findings import Rule, RuleSet
from audittui.findings.rules import build_rule
from audittui.tui.findings_pane import FindingsPane


def exec_event(k: int, stage: str = "ResponseStarted") -> dict:
    return v1_event(
        auditID=f"exec-{k}",
        stage=stage,
        verb="create",
        requestURI=f"/api/v1/namespaces/dev/pods/web-{k}/exec?command=sh",
        objectRef={
            "resource": "pods",
            "subresource": "exec",
            "namespace": "dev",
            "name": f"web-{k}",
        },
        responseStatus={"code": 101},
        requestReceivedTimestamp=f"2024-05-01T10:00:{k:02d}.000000Z",
        stageTimestamp=f"2024-05-01T10:00:{k:02d}.100000Z",
    )


def pod_create_metadata() -> dict:
    return v1_event(
        verb="create",
        requestURI="/api/v1/namespaces/dev/pods",
        objectRef={"resource": "pods", "namespace": "dev", "name": "p2"},
        responseStatus={"code": 201},
    )


def _write(path: Path, events: list[dict], mode: str = "wb") -> None:
    with open(path, mode) as fh:
        fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events))


def test_findings_pane_fires_live_shows_blind_rules_and_filters(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    _write(log, [v1_event() for _ in range(5)] + [exec_event(1), pod_create_metadata()])

    async def check(app, pilot) -> None:
        pane = app.main.query_one(FindingsPane)
        await pilot.press("4")
        assert app.main.query_one(TabbedContent).active == "findings"
        await until(pilot, lambda: "exec-attach" in pane.rule_ids)
        finding = next(f for f in pane.findings if f.rule.id == "exec-attach")
        assert finding.count == 1 and finding.users == ["alice"]
        # The pod create was logged at Metadata: the pod rules say they cannot fire.
        blind = [r.id for r, _ in app.findings.blind(app.store)]
        assert "privileged-pod" in blind
        assert "blind:privileged-pod" in pane.rule_ids  # listed under the findings
        # The cursor stays on its row (a blind one too) as the pane refreshes.
        pane.move_cursor(row=pane.rule_ids.index("blind:privileged-pod"))
        pane.show(list(pane.findings), app.findings.blind(app.store))
        assert pane.rule_ids[pane.cursor_row] == "blind:privileged-pod"
        await pilot.pause()
        note = app.main.query_one("#finding-note").render()
        assert "cannot fire on this log" in str(note)
        assert "finding" in status(app)
        # Enter on the finding: the list shows its events.
        pane.move_cursor(row=pane.rule_ids.index("exec-attach"))
        await pilot.press("enter")
        await until(pilot, shown(app, "1 / 7 events  filter: finding:exec-attach"))
        assert app.main.query_one(TabbedContent).active == "events"
        # A new exec arrives: the finding counts it, and the filtered list shows it.
        _write(log, [exec_event(2), exec_event(2, "ResponseComplete")], "ab")
        await until(pilot, shown(app, "3 / 9 events  filter: finding:exec-attach"), timeout=15)
        current = next(f for f in app.findings.results(app.store) if f.rule.id == "exec-attach")
        assert current.count == 2  # two requests; the second seen at two stages

    drive_app(str(log.parent), tmp_path, check)


def test_a_broken_rules_file_is_reported_and_the_pack_still_runs(tmp_path, monkeypatch):
    from audittui.tui.app import AuditApp

    config = tmp_path / "config" / "audittui"
    config.mkdir(parents=True)
    (config / "rules.yaml").write_text("rules:\n  - id: x\n    query: [unclosed\n")
    messages = []
    monkeypatch.setattr(
        AuditApp, "notify", lambda self, message, **kw: messages.append((message, kw))
    )
    log = tmp_path / "audit.log"
    _write(log, [exec_event(1)])

    async def check(app, pilot) -> None:
        await until(pilot, lambda: "exec-attach" in app.main.query_one(FindingsPane).rule_ids)
        assert any("not valid YAML" in m and kw.get("severity") == "warning" for m, kw in messages)

    drive_app(str(log), tmp_path, check, follow=False)


def _rule(rid: str, severity: str, query: str, techniques: list[str]) -> Rule:
    return build_rule(
        {"id": rid, "title": rid.upper(), "severity": severity, "query": query,
         "techniques": techniques},
        {},
    )  # fmt: skip


def test_t_groups_the_findings_by_technique_and_back(tmp_path):
    """A finding naming two techniques is under each; one naming none is under "no
    technique" last; a heading is no finding (Enter does nothing); the note names techniques."""
    rules = RuleSet(
        [
            _rule("r-exec", "high", "verb:create sub:exec", ["T1609", "T1552.007"]),
            _rule("r-get", "info", "verb:get resource:pods", ["T1613"]),
            _rule("r-plain", "low", "verb:get", []),
        ]
    )
    log = tmp_path / "audit.log"
    _write(log, [v1_event(), exec_event(1, "ResponseComplete")])

    async def check(app, pilot) -> None:
        pane = app.main.query_one(FindingsPane)
        await pilot.press("4")
        await until(pilot, lambda: len(pane.findings) == 3)
        assert pane.rule_ids == ["r-exec", "r-plain", "r-get"]
        pane.focus()
        await pilot.press("t")
        assert pane.rule_ids == [
            "technique:T1552.007", "r-exec",
            "technique:T1609", "r-exec",
            "technique:T1613", "r-get",
            "technique:-", "r-plain",
        ]  # fmt: skip
        assert pane.cursor_row == 1  # still on r-exec (its first row)
        heading = pane.get_row_at(2)
        assert str(heading[0]) == "T1609" and str(heading[3]) == "Container Administration Command"
        assert str(heading[4]) == "1 finding(s)"
        assert str(pane.get_row_at(6)[3]) == "no ATT&CK technique"
        note = str(app.main.query_one("#finding-note").render())
        assert "ATT&CK T1609 Container Administration Command" in note
        assert "T1552.007 Unsecured Credentials: Container API" in note
        pane.move_cursor(row=2)
        await pilot.pause()
        assert "T1609  Container Administration Command" in str(
            app.main.query_one("#finding-note").render()
        )
        await pilot.press("enter")  # a heading: nothing to show
        await pilot.pause()
        assert app.main.query_one(TabbedContent).active == "findings"
        assert "finding:" not in app.view.text
        await pilot.press("t")
        assert pane.rule_ids == ["r-exec", "r-plain", "r-get"]
        await pilot.press("enter")
        await until(pilot, lambda: app.view.text == "finding:r-exec")

    drive_app(str(log), tmp_path, check, follow=False, rules=rules)
