"""Property tests of what users type and write: any query text gives a result or a
QueryError; any policy or rules document gives a Policy / rule set or errors that say what
is wrong, never another exception."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import orjson
import pytest
import yaml
from conftest import v1_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audittui
from audittui.findings import Findings
from audittui.findings.rules import RuleError, load_rules
from audittui.index.evaluate import select
from audittui.policy import PolicyError, attributes
from audittui.policy.model import parse as parse_policy
from audittui.query.fields import FIELDS
from audittui.query.syntax import QueryError

_STORE: audittui.Store | None = None


def _store() -> audittui.Store:
    """A small store whose columns hold every kind of value a term compares with."""
    global _STORE
    if _STORE is None:
        events = [
            v1_event(),
            v1_event(
                user={"username": "system:serviceaccount:kube-system:x"},
                verb="watch",
                sourceIPs=["fe80::1", "10.1.2.3"],
                responseStatus={"code": 403},
            ),  # fmt: skip
            v1_event(objectRef=None, requestURI="/healthz?verbose", stage="ResponseStarted"),
        ]
        folder = Path(tempfile.mkdtemp(prefix="audittui-fuzz-"))
        path = folder / "audit.log"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        _STORE = audittui.load(path)
    return _STORE


SYMBOLS = ':,*/()"\\-<>=!.[]{}|^$?+ ~#@%&'
query_char = st.sampled_from(string.ascii_letters[:10] + string.digits + SYMBOLS + "\x00é\u202e")
field_name = st.sampled_from([*FIELDS, "ns", "sub", "ua", "dur", "after", "before", "bogus"])
value = st.one_of(
    st.text(query_char, max_size=12),
    st.sampled_from(
        [
            "",
            "*",
            "**",
            "/[/",
            "/(?P<x>)/",
            "/a{99999}/",
            ">=400",
            "<",
            "2xx",
            "10.0.0.0/8",
            "::1/129",
            "1e309",
            "-1",
            "9" * 30,
            "5m",
            "-5ms",
            "now-1h",
            "2024-13-45",
            '"',
            '""',
            "a,",
            ",,",
            "(",
            ")",
        ]
    ),  # fmt: skip
)
term = st.builds(lambda f, v, neg: ("-" if neg else "") + f"{f}:{v}", field_name, value,
                 st.booleans())  # fmt: skip
query = st.one_of(
    st.text(query_char, max_size=40),
    st.lists(
        st.one_of(term, st.sampled_from(["OR", "NOT", "(", ")", "AND", '"x y"'])), max_size=8
    ).map(" ".join),  # fmt: skip
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query)
def test_any_query_is_a_result_or_a_query_error(text):
    store = _store()
    try:
        rows = select(store, text)
    except QueryError as exc:
        assert str(exc)  # says what is wrong
        return
    assert all(0 <= i < len(store) for i in rows)


yaml_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["*", "RequestResponse", "None", "Metadata", "get",
                                          "pods", "audit.k8s.io/v1", "Policy", "{", "- x"]),
)  # fmt: skip
yaml_value = st.recursive(
    yaml_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "level",
                    "verbs",
                    "resources",
                    "users",
                    "rules",
                    "namespaces",
                    "group",
                    "omitStages",
                    "x",
                    "kind",
                ]
            ),
            inner,
            max_size=4,
        ),  # fmt: skip
    ),
    max_leaves=12,
)
policy_doc = st.one_of(
    yaml_value,
    st.builds(
        lambda rules, extra: {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "rules": rules,
            **extra,
        },
        st.one_of(yaml_value, st.lists(yaml_value, max_size=4)),
        st.dictionaries(
            st.sampled_from(["omitStages", "omitManagedFields", "x"]), yaml_value, max_size=2
        ),
    ),  # fmt: skip
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_doc)
def test_any_policy_document_is_a_policy_or_errors(doc):
    try:
        policy = parse_policy(doc)
    except PolicyError as exc:
        assert exc.args[0] and all(isinstance(e, str) and e for e in exc.args[0])
        return
    store = _store()
    for i in range(len(store)):  # a policy that parses decides every event
        policy.decide(attributes(store.event(i)))


rule_item = st.one_of(
    yaml_value,
    st.fixed_dictionaries(
        {"id": st.one_of(st.sampled_from(["r1", "x-y", "BAD ID", ""]), yaml_scalar),
         "title": st.one_of(st.just("T"), yaml_scalar),
         "severity": st.one_of(st.sampled_from(["high", "info", "urgent"]), yaml_scalar),
         "query": st.one_of(query, yaml_scalar)},
        optional={"where": st.one_of(st.sampled_from(["verb == 'get'", "matches(verb, '[')",
                                                      "$nolist", "a[?", "`1`"]), yaml_value),
                  "threshold": yaml_value, "first_seen": yaml_value, "role_grants": yaml_value,
                  "needs": yaml_value, "stages": yaml_value, "allow": yaml_value,
                  "enabled": yaml_value},
    ),
)  # fmt: skip
rules_doc = st.one_of(
    yaml_value,
    st.fixed_dictionaries(
        {},
        optional={
            "rules": st.lists(rule_item, max_size=3),
            "disable": yaml_value,
            "allow": yaml_value,
            "lists": yaml_value,
            "enable": yaml_value,
        },
    ),  # fmt: skip
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_doc)
def test_any_rules_file_gives_rules_and_problems_never_an_exception(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(yaml.safe_dump(doc))
        ruleset = load_rules(path)
    assert all(isinstance(p, str) and p for p in ruleset.problems)
    store = _store()
    findings = Findings(ruleset.rules)  # every rule that loaded runs
    findings.update(store)
    findings.results(store)
    findings.blind(store)


@pytest.mark.parametrize(
    "text", ["{", "rules: [", "\t- x", "a: *b", "!!python/object:os.system x", "- - - -", "\x00"]
)
def test_a_rules_file_that_is_not_yaml_is_one_problem(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    try:
        ruleset = load_rules(path)
    except RuleError:  # only the shipped pack may raise
        pytest.fail("a user's broken file must be reported, not raised")
    assert len(ruleset.problems) == 1 and str(path) in ruleset.problems[0]
