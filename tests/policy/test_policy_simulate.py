"""`policy simulate`: dropped events, bytes at the candidate's level, bodies never logged,
and the findings a candidate would blind."""

import json

import orjson
import pytest
from conftest import v1_event

from audittui.cli import main as cli
from audittui.findings import Findings, load_rules
from audittui.index.loader import load
from audittui.policy import parse
from audittui.policy.simulate import simulate

BODY = {"kind": "ConfigMap", "data": {"password": "x" * 400, "other": "y" * 300}}


def policy(*rules, omit=()):
    return parse(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": list(omit),
            "rules": list(rules),
        }
    )


@pytest.fixture
def store(write_lines):
    events = [
        v1_event(  # configmap writes logged with both bodies
            verb="create",
            level="RequestResponse",
            requestURI="/api/v1/namespaces/dev/configmaps",
            objectRef={"resource": "configmaps", "namespace": "dev", "name": f"c{k}"},
            requestObject=BODY,
            responseObject=BODY,
            responseStatus={"code": 201},
        )
        for k in range(6)
    ]
    events += [v1_event(user={"username": "bob"}) for _ in range(4)]  # pod gets, Metadata
    events += [v1_event(stage="RequestReceived") for _ in range(3)]
    return load(write_lines("a.log", events))


def test_drops_downgrades_and_bodies_never_logged(store):
    lengths = store.column("length")
    sim = simulate(
        policy(
            {"level": "None", "users": ["bob"]},
            {"level": "Metadata", "resources": [{"resources": ["configmaps"]}]},
            {"level": "RequestResponse"},
            omit=["RequestReceived"],
        ),
        store,
    )
    bob, configmaps, rest = sim.rules
    assert (bob.events, bob.dropped, bob.bytes_new) == (4, 4, 0)
    # Metadata keeps each configmap event without its two bodies (all sampled: exact).
    without = sum(
        len(orjson.dumps({k: v for k, v in store.event(i).items() if not k.endswith("Object")}))
        for i in range(6)
    )
    assert configmaps.events == 6 and configmaps.dropped == 0
    assert abs(configmaps.bytes_new - without) <= 6  # rounding per event
    assert configmaps.bytes_now == int(lengths[:6].sum()) > 2 * configmaps.bytes_new
    # The catch-all logs the rest at RequestResponse: the 3 RequestReceived are omitted, the
    # others were logged at Metadata, so their bodies were never logged.
    assert (rest.events, rest.dropped, rest.need_bodies) == (3, 3, 0)
    assert sim.bytes_now == int(lengths.sum()) and sim.bytes_new == configmaps.bytes_new


def test_bodies_never_logged_are_flagged(store):
    sim = simulate(policy({"level": "Request"}), store)
    [rule] = sim.rules
    assert rule.need_bodies == 7  # the 4 + 3 Metadata events; the configmaps lose a body
    assert rule.bytes_new < rule.bytes_now


def test_findings_that_would_go_blind(store):
    findings = Findings(load_rules(False).rules)
    metadata = simulate(policy({"level": "Metadata"}), store, findings)
    assert ("configmap-credentials", "6 events carry the request body now; none would") in (
        metadata.blind
    )
    request = simulate(policy({"level": "Request"}), store, findings)
    assert all(rid != "configmap-credentials" for rid, _ in request.blind)
    dropped = simulate(
        policy(
            {"level": "None", "resources": [{"resources": ["configmaps"]}]}, {"level": "Metadata"}
        ),
        store,
        findings,
    )
    assert ("configmap-created", "all 6 events it looks at would be dropped") in dropped.blind


def test_cli_simulate_json(tmp_path, store, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    log = store.sources[0].path
    assert (
        cli.main(["policy", "simulate", "--format", "json", "--rules", "none", str(path), log]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [r["rule"] for r in doc["rules"]] == [0]
    assert doc["rules"][0]["events"] == 13 and doc["bytesNew"] < doc["bytesNow"]
    assert any(b["rule"] == "configmap-credentials" for b in doc["blind"])
