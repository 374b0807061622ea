"""The public detection packs' own cases, replayed through the loader and the shipped pack.

- Panther: every test of its 42 Kubernetes, EKS and GKE rule files (tests/peer_packs.py makes
  the cases). A positive passes when a rule of the pack whose ``peers.panther`` names the RuleID
  fires; a negative when none of those fires.
- Falco: its own k8s-audit regression suite (66 cases), each with the rules files it loads said
  as the user's rules.yaml (tests/peer_cases/falco.yaml).
- Elastic and Sigma: no test events ship with their rules, so tests/peer_cases/{elastic,sigma}.yaml
  holds events written here from each rule's logic (a positive, and the closest benign event the
  rule leaves out).

A case audittui cannot decide from an audit log (an IOC feed, a cloud's address ranges, an
event that is not an audit event) is listed with its reason in tests/peer_cases/
out_of_scope.yaml, and must still behave as listed: when it starts passing, the list is wrong.
Every other case must pass. ``bench/peer_coverage.py`` prints the same replay as figures.
"""

from __future__ import annotations

import numpy as np
import pytest
from peer_packs import (
    FALCO_TRACES,
    PANTHER,
    falco_cases,
    falco_meaning,
    falco_user_file,
    out_of_scope,
    panther_cases,
    replay,
    replay_falco,
    run,
    written_cases,
    written_rules,
    written_total,
)

from audittui.findings import load_rules
from audittui.findings.attack import technique_name

PACK = load_rules(False).rules
PANTHER_CASES = panther_cases()
ELASTIC_CASES = written_cases("elastic")
SIGMA_CASES = written_cases("sigma")
FALCO_CASES = falco_cases()
MEANING = falco_meaning()
OUT = out_of_scope()


def _explain(outcome) -> str:
    case = outcome.case
    want = "fire" if case.expected else "stay quiet"
    if not outcome.answering:
        return f"no rule of the pack names {case.pack} rule {case.rule!r} in its peers"
    return (
        f"{case.pack} expects the rule to {want}; answering {list(outcome.answering)}, "
        f"fired {list(outcome.fired)} ({case.source})"
    )


def _check(tmp_path, case) -> None:
    outcome = replay(tmp_path, case, PACK)
    if case.pack in ("elastic", "sigma"):  # written here: every event must load, or a
        assert outcome.loaded == len(case.events)  # negative would pass on nothing
    listed = OUT.get(f"{case.pack}/{case.id}")
    if listed is not None:
        assert listed["fires"] is not case.expected  # the list says what differs
        assert outcome.fires is listed["fires"], (
            f"out of scope ({listed['reason']}) but now {'fires' if outcome.fires else 'quiet'}"
            ": remove it from tests/peer_cases/out_of_scope.yaml"
        )
        return
    assert outcome.passed, _explain(outcome)


# -- Panther ------------------------------------------------------------------------------------


def test_every_panther_rule_file_gives_cases():
    files = sorted(PANTHER.glob("*/*.yml"))
    assert len(files) == 42
    rules = {c.rule for c in PANTHER_CASES}
    assert len(rules) == 42  # one RuleID a file, each with tests
    assert len(PANTHER_CASES) == 282
    assert {c.expected for c in PANTHER_CASES} == {True, False}


def test_out_of_scope_entries_name_real_cases_with_a_reason():
    ids = {f"{c.pack}/{c.id}": c for pack in (PANTHER_CASES, ELASTIC_CASES, SIGMA_CASES)
           for c in pack}  # fmt: skip
    for key, entry in OUT.items():
        assert key in ids, f"{key}: no such case"
        assert entry["reason"].strip()
        assert entry["fires"] is not ids[key].expected, key


def test_threshold_positives_are_as_many_distinct_requests(tmp_path):
    """A positive of a rule with a Threshold of N loads as N requests, whatever its shape
    (native, AKS record with the event in properties.log, GKE entry)."""
    repeated = [c for c in PANTHER_CASES if len(c.events) > 1]
    assert {len(c.events) for c in repeated} == {10, 15, 20}
    shapes = set()
    for case in repeated:
        _, store = run(tmp_path, case.events, [])
        ids = set(store.values_at("audit_id", np.arange(len(store))))
        assert len(store) == len(ids) == len(case.events), case.id
        shapes.add(next(iter({"protoPayload", "properties"} & set(case.events[0])), "native"))
    assert shapes == {"native", "protoPayload", "properties"}


@pytest.mark.parametrize("case", PANTHER_CASES, ids=lambda c: c.id)
def test_panther_case(tmp_path, case):
    _check(tmp_path, case)


# -- Falco --------------------------------------------------------------------------------------


def test_falco_suite_is_66_cases_over_the_shared_traces():
    """The issue's "66 of 66" counts the suite's cases (each a trace, the rules files it loads,
    detect_counts or detect: False), not rules or events."""
    assert len(FALCO_CASES) == 66
    assert len({c.name for c in FALCO_CASES}) == 66
    assert all(c.trace.parent == FALCO_TRACES and c.trace.is_file() for c in FALCO_CASES)
    assert sum(c.detect for c in FALCO_CASES) == 45  # and 21 detect: False
    # every rules file a case loads is said in falco.yaml
    assert {f for c in FALCO_CASES for f in c.files} <= set(MEANING["files"])


@pytest.mark.parametrize("case", FALCO_CASES, ids=lambda c: c.name)
def test_falco_case(tmp_path, case):
    outcome = replay_falco(tmp_path, case, MEANING)
    assert outcome.problems == ()
    for falco_rule, want, got in outcome.counts:
        assert got == want, f"{falco_rule}: {got} requests, Falco counts {want}"
    assert outcome.unexpected == ()
    if case.detect:
        assert outcome.counts and all(got for _, _, got in outcome.counts)


@pytest.mark.parametrize(
    "name",
    [
        "create_privileged_trusted_pod",  # trust_nginx_container.yaml
        "create_hostnetwork_trusted_pod",
        "create_sensitive_mount_trusted_pod",
        "create_nonodeport_service",  # disallow_kactivity.yaml: no "K8s Service Created"
        "user_in_allowed_set",  # allow_user_some-user.yaml, allow_namespace_foo.yaml
        "namespace_in_allowed_set",  # allow_namespace_foo.yaml
    ],
)
def test_falco_quiet_cases_are_quiet_because_of_their_rules_files(tmp_path, name):
    """Without what its extra rules files say, the case's trace does fire: the user's file is
    what keeps it quiet, as in Falco."""
    (case,) = [c for c in FALCO_CASES if c.name == name]
    assert not case.detect
    assert replay_falco(tmp_path, case, MEANING).passed
    rules_only = tuple(f for f in case.files if MEANING["files"][f].get("rules"))
    bare = type(case)(case.name, case.trace, case.detect, case.counts, rules_only)
    assert not replay_falco(tmp_path, bare, MEANING).passed


def test_falco_user_file_says_what_the_rules_files_say():
    (case,) = [c for c in FALCO_CASES if c.name == "create_privileged_trusted_pod"]
    text = falco_user_file(case, PACK, MEANING)
    rules = load_rules(False).by_id()
    assert "disallowed-user" in text  # Falco ships "Disallowed K8s User" on
    assert "privileged-pod" in text and "nginx:*" in text
    assert all(rid in rules for rid in ("privileged-pod", "sensitive-mount-pod"))


# -- Elastic and Sigma --------------------------------------------------------------------------


@pytest.mark.parametrize("pack", ["elastic", "sigma"])
def test_written_rules_have_a_positive_and_a_negative_each(pack):
    cases = written_cases(pack)
    scope, out = written_rules(pack)
    assert len(scope) == len(set(scope)) and not set(scope) & set(out)
    for name in scope:
        kinds = {c.expected for c in cases if c.rule == name}
        assert kinds == {True, False}, name
    assert all(reason.strip() for reason in out.values())
    # every rule of the repository's folders, in scope or not (45 Elastic, 20 Sigma)
    assert len(scope) + len(out) == written_total(pack) == {"elastic": 45, "sigma": 20}[pack]


@pytest.mark.parametrize("case", ELASTIC_CASES, ids=lambda c: c.id)
def test_elastic_case(tmp_path, case):
    _check(tmp_path, case)


@pytest.mark.parametrize("case", SIGMA_CASES, ids=lambda c: c.id)
def test_sigma_case(tmp_path, case):
    _check(tmp_path, case)


# -- the pack's own words about its peers ----------------------------------------------------------


def test_peers_are_spelled_as_their_packs_spell_them():
    """A peer name that no rule of that pack has would never be replayed: Panther's RuleIDs
    from its files, Elastic's and Sigma's names from the rules read into peer_cases (in scope
    or not), Falco's from the rules its suite names."""
    known = {
        "panther": {c.rule for c in PANTHER_CASES},
        "elastic": {n for names in written_rules("elastic") for n in names},
        "sigma": {n for names in written_rules("sigma") for n in names},
    }
    for rule in PACK:
        for pack, names in rule.peers:
            if pack in known:
                assert set(names) <= known[pack], (rule.id, set(names) - known[pack])


def test_every_technique_the_pack_names_has_its_name():
    named = {t for r in PACK for t in r.techniques}
    assert named and all(technique_name(t) for t in named), sorted(
        t for t in named if not technique_name(t)
    )
