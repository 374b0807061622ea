"""The policy lab in the app: the Policy pane simulates a loaded policy over the filter, Enter
shows a rule's events, the detail header names the rule, and P loads a policy."""

from conftest import SAMPLES, drive_app, shown, until
from textual.widgets import TabbedContent

from audittui.index.loader import load
from audittui.policy import load as load_policy
from audittui.policy.over_store import decide
from audittui.tui.detail import DetailPane
from audittui.tui.policy_pane import PolicyPane

GCE = str(SAMPLES / "policies" / "gce-default-policy.yaml")


def test_policy_pane_rule_events_and_detail_header(tmp_path):
    policy = load_policy(GCE)
    decided = decide(policy, load("demo-logs"))
    expected = int((decided == 3).sum())

    async def check(app, pilot) -> None:
        await pilot.press("5")
        assert app.main.query_one(TabbedContent).active == "policy"
        pane = app.main.query_one(PolicyPane)
        await until(pilot, lambda: pane.simulation is not None)
        assert [e.rule for e in pane.simulation.rules][:17] == list(range(17))
        assert pane.simulation.rules[3].events == expected
        pane.move_cursor(row=3)
        await pilot.press("enter")
        await until(pilot, shown(app, f"{expected:,} / {len(app.store):,} events  filter: rule:3"))
        header = app.main.query_one("#detail-header")
        await until(pilot, lambda: "policy: rule 3 → None" in str(header.render()))

    drive_app("demo-logs", tmp_path, check, follow=False, policy=policy, policy_path=GCE)


def test_load_a_policy_with_p(tmp_path, monkeypatch):
    from audittui.tui.app import AuditApp

    messages = []
    monkeypatch.setattr(
        AuditApp, "notify", lambda self, message, **kw: messages.append((message, kw))
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n")

    async def check(app, pilot) -> None:
        assert app.policy is None
        await pilot.press("P")
        app.screen.query_one("#path").value = str(bad)
        await pilot.press("enter")
        await until(pilot, lambda: messages)
        assert "rules[0].level" in messages[0][0] and messages[0][1]["severity"] == "error"
        assert app.policy is None
        await pilot.press("P")
        app.screen.query_one("#path").value = GCE
        await pilot.press("enter")
        await until(pilot, lambda: app.policy is not None)
        assert len(app.policy.rules) == 17
        assert app.main.query_one(TabbedContent).active == "policy"
        await until(pilot, lambda: app.main.query_one(PolicyPane).simulation is not None)
        assert app.main.query_one(DetailPane).policy is app.policy

    drive_app("demo-logs", tmp_path, check, follow=False)
