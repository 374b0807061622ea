"""The policy decided on a store's columns gives the per-event checker's answer, and
`audittui policy check` reports where a log disagrees with the policy said to produce it."""

import json

import numpy as np
import pytest
from conftest import SAMPLES

from audittui.cli import main as cli
from audittui.index.loader import load
from audittui.policy import load as load_policy
from audittui.policy import parse
from audittui.policy.over_store import NO_RULE, decide

AUDIT2RBAC = SAMPLES / "audit2rbac"
GCE = SAMPLES / "policies" / "gce-default-policy.yaml"
SELECTORS = parse(
    {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
            {
                "level": "Request",
                "resources": [{"resources": ["secrets"], "resourceNames": ["db", "web-tls"]}],
            },
            {"level": "Metadata", "userGroups": ["system:nodes"], "verbs": ["get"]},
            {
                "level": "RequestResponse",
                "namespaces": [""],
                "resources": [{"group": "*", "resources": ["pods/*", "*/scale"]}],
            },
            {"level": "Request", "resources": [{"group": "rbac.authorization.k8s.io"}]},
            {"level": "Metadata", "namespaces": ["kube-system", "prod"]},
            {"level": "None", "users": ["alice"]},
        ],
    }
)
LOGS = [
    "demo-logs",
    AUDIT2RBAC / "demo.log",
    *sorted((SAMPLES / "falco-k8s-audit").glob("*.json")),
    *sorted((SAMPLES / "sysdiglabs-aks-audit-log").glob("*")),
]


@pytest.mark.parametrize("policy", [GCE, AUDIT2RBAC / "demo-policy.yaml", "selectors"])
def test_columns_agree_with_the_per_event_checker(policy):
    pol = SELECTORS if policy == "selectors" else load_policy(policy)
    compared = 0
    for log in LOGS:
        store = load(log)
        decided = decide(pol, store)
        for i in range(len(store)):
            result = pol.evaluate(store.event(i))
            assert decided[i] == (NO_RULE if result.rule is None else result.rule), (log, i)
            compared += 1
    assert compared > 3000
    # Every rule of the selectors policy decides some event of the demo logs.
    if policy == "selectors":
        hit = set(decide(pol, load("demo-logs")).tolist())
        assert set(range(len(pol.rules))) <= hit


def test_check_reproduces_the_log_of_its_own_policy(capsys):
    code = cli.main(
        ["policy", "check", str(AUDIT2RBAC / "demo-policy.yaml"), str(AUDIT2RBAC / "demo.log")]
    )
    assert code == 0
    assert "0 of 37 events disagree" in capsys.readouterr().out


def test_check_lists_a_drifted_policy(tmp_path, capsys):
    drifted = (AUDIT2RBAC / "demo-policy.yaml").read_text().replace("Metadata", "Request", 1)
    path = tmp_path / "drifted.yaml"
    path.write_text(drifted)
    code = cli.main(
        ["policy", "check", "--format", "json", str(path), str(AUDIT2RBAC / "demo.log")]
    )
    assert code == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["checked"] == 37 and doc["approximate"] == 0
    [group] = doc["disagreements"]
    assert group["rule"] == 0 and group["policyLevel"] == "Request"
    assert group["loggedLevel"] == "Metadata" and group["count"] == 37
    assert len(set(group["auditIDs"])) == 37


def policy_and_log(tmp_path, rules: str, events: list[dict]) -> list[str]:
    """A policy omitting RequestReceived with ``rules`` (YAML), and a log of ``events``."""
    policy = tmp_path / "p.yaml"
    policy.write_text(
        f"apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n{rules}"
    )
    log = tmp_path / "a.log"
    log.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    return [str(policy), str(log)]


def test_check_finds_omitted_stages_and_unlogged_requests(tmp_path, capsys, make_event):
    events = [
        make_event(stage="RequestReceived", level="Metadata"),
        make_event(user={"username": "bob"}, level="Metadata"),
        make_event(level="Metadata"),
    ]
    paths = policy_and_log(tmp_path, "- level: None\n  users: [bob]\n- level: Metadata\n", events)
    assert cli.main(["policy", "check", "--format", "json", *paths]) == 1
    whys = {g["why"]: g["count"] for g in json.loads(capsys.readouterr().out)["disagreements"]}
    assert whys == {"stage RequestReceived is omitted": 1, "not logged by this policy": 1}


def test_check_counts_each_event_once(tmp_path, capsys, make_event):
    """An event at another level and in an omitted stage is one disagreement, not two."""
    events = [make_event(stage="RequestReceived", level="Metadata"), make_event(level="Request")]
    paths = policy_and_log(tmp_path, "- level: Request\n", events)
    assert cli.main(["policy", "check", *paths]) == 1
    out = capsys.readouterr().out
    assert "logged at another level" in out and "is omitted" not in out
    assert "1 of 2 events disagree" in out


def test_a_broken_policy_is_reported_with_every_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n"
        "- level: None\n  nonResourceURLs: [healthz]\n  namespaces: [a]\n"
    )
    assert cli.main(["policy", "check", str(path), str(AUDIT2RBAC / "demo.log")]) == 2
    err = capsys.readouterr().err
    assert "rules[0].level" in err and "rules[1].nonResourceURLs[0]" in err
    assert "rules[1].nonResourceURLs: a rule cannot apply to both" in err


@pytest.mark.parametrize(
    ("policy", "rule", "rules"),
    [
        (GCE, "8", [8]),
        (GCE, "1*", [1, *range(10, 17)]),
        (AUDIT2RBAC / "demo-policy.yaml", "none", [NO_RULE]),
    ],
)
def test_rule_field_selects_what_a_rule_matches(capsys, policy, rule, rules):
    demo = "demo-logs"
    decided = decide(load_policy(policy), load(demo))
    args = ["query", "--policy", str(policy), "-q", f"rule:{rule}", "--format", "count", demo]
    assert cli.main(args) == 0
    want = int(np.isin(decided, rules).sum())
    assert int(capsys.readouterr().out) == want and want > 0


def test_rule_field_needs_a_policy(capsys):
    assert cli.main(["query", "-q", "rule:8", "demo-logs"]) == 2
    assert "rule:N needs --policy FILE" in capsys.readouterr().err


def test_rule_field_grows_with_the_store():
    """rule:N on a growing store: decided for the new events only, same as all at once."""
    import random

    from index.test_query_cache import _event, _store

    from audittui.policy.over_store import RuleField

    rng = random.Random(3)
    events = [_event(rng, k) for k in range(300)]
    seen = []

    def check(store):
        if not seen:
            seen.append(RuleField(SELECTORS, store))
        field = seen[0]
        assert np.array_equal(field.decided(), decide(SELECTORS, store))

    _store(events, [40] * 7 + [20], check)
    assert len(seen[0].decided()) == 300


def test_an_invalid_policy_stops_the_app_with_every_error_inert(tmp_path, capsys):
    from audittui.tui.run import run_app

    path = tmp_path / "p.yaml"
    path.write_text('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: "\\e[31mLoud"\n')
    assert run_app(["--policy", str(path), "demo-logs"]) == 2
    err = capsys.readouterr().err
    assert "rules[0].level" in err and "\x1b" not in err and "\\x1b[31mLoud" in err
