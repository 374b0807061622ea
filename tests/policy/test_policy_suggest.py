"""`policy suggest`: each suggested rule, pasted into a policy, selects exactly the events it
was suggested for and saves what it promised; nothing a finding looks at is silenced."""

import yaml

from audittui.cli import main as cli
from audittui.findings import Findings, load_rules
from audittui.index.evaluate import evaluate
from audittui.index.loader import load
from audittui.policy import parse
from audittui.policy.over_store import decide
from audittui.policy.simulate import simulate
from audittui.policy.suggest import suggest


def test_suggested_rules_select_and_save_what_they_promise():
    store = load("demo-logs")
    findings = Findings(load_rules(False).rules)
    picks = suggest(store, findings, top=5)
    assert picks and any(s.level == "None" for s in picks)
    assert [s.saves for s in picks] == sorted((s.saves for s in picks), reverse=True)
    for s in picks:
        rule = yaml.safe_load(s.yaml())[0]
        policy = parse({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [rule]})
        decided = decide(policy, store)
        assert int((decided == 0).sum()) == s.events
        [effect, *_] = simulate(policy, store).rules
        assert effect.bytes_now == s.bytes_now
        assert abs((effect.bytes_now - effect.bytes_new) - s.saves) <= max(64, s.saves // 20)
        if s.level == "None":
            # Nothing a finding looks at (first-seen rules aside) is dropped.
            for frule in findings.rules:
                if frule.node is None or frule.first_seen:
                    continue
                assert not (evaluate(frule.node, store) & (decided == 0)).any(), frule.id


def test_cli_suggest_prints_rules_to_paste(capsys):
    assert cli.main(["policy", "suggest", "--top", "2", "--rules", "none", "demo-logs"]) == 0
    text = capsys.readouterr().out
    rules = yaml.safe_load(text)
    assert len(rules) == 2 and all(r["level"] in ("None", "Metadata") for r in rules)
    policy = parse({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": rules})
    assert len(policy.rules) == 2
