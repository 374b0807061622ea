"""What every rule says: ``audittui findings --list`` (table and JSON) names each rule's ATT&CK
techniques, its peers in Falco, Panther, Elastic and Sigma, what it reads, why it can be blind
and what it excludes; fired findings carry their techniques and peers. Rules here are written in
a rules file of the test's own (the pack's content changes as rules are added)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from findings_kit import M, evaluate, req, store_of, write

from audittui.cli import main as cli
from audittui.findings.attack import TECHNIQUES, technique_label, technique_name
from audittui.findings.engine import blind_when, exclusions, reads
from audittui.findings.rules import RuleError, build_rule
from audittui.index.evaluate import select
from audittui.output.inert import cell_len

RULES = """\
lists:
  quiet_users: [backup-bot, "ci:*"]
rules:
  - id: t-exec
    title: Exec by a person
    severity: high
    query: verb:create resource:pods sub:exec -user:$quiet_users -ns:$quiet_users
    techniques: [T1609, T1552.007]
    peers:
      falco: [Attach/Exec Pod]
      panther: [Kubernetes.Pod.Exec]
      sigma: [Pod Exec]
    allow: {users: ["system:node:*"], namespaces: [kube-system]}
  - id: t-burst
    title: Refusals
    severity: medium
    query: code:403
    threshold: {window: 1m, count: 10, group_by: [user], distinct: name}
  - id: t-body
    title: Privileged pod
    severity: low
    query: verb:create resource:pods
    needs: [request]
    where: requestObject.spec.containers[?securityContext.privileged]
    enabled: false
"""


def rules_file(tmp_path: Path, text: str = RULES) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return str(path)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, tmp_path: Path) -> dict[str, dict]:
    code, out, err = run_cli(
        capsys, "findings", "--list", "--format", "json", "--rules", rules_file(tmp_path)
    )
    assert code == 0 and err == ""
    return {r["id"]: r for r in json.loads(out)["rules"]}


def test_list_json_says_everything_a_rule_says(capsys, tmp_path):
    rules = listed(capsys, tmp_path)
    ex = rules["t-exec"]
    assert list(ex) == [
        "id", "title", "severity", "enabled", "source", "description", "techniques",
        "technique_names", "peers", "needs", "reads", "blind_when", "exclusions", "query",
        "where", "threshold", "first_seen",
    ]  # fmt: skip
    assert ex["techniques"] == ["T1609", "T1552.007"]
    assert ex["technique_names"] == {
        "T1609": "Container Administration Command",
        "T1552.007": "Unsecured Credentials: Container API",
    }
    # Peers in the packs' fixed order, whatever order the file gives.
    assert ex["peers"] == {
        "falco": ["Attach/Exec Pod"],
        "panther": ["Kubernetes.Pod.Exec"],
        "sigma": ["Pod Exec"],
    }
    assert list(ex["peers"]) == ["falco", "panther", "sigma"]
    assert ex["reads"] == ["columns"] and ex["blind_when"] is None
    assert ex["exclusions"] == {
        "allow": {"users": ["system:node:*"], "namespaces": ["kube-system"]},
        "query": [{"field": "user", "list": "quiet_users"}, {"field": "ns", "list": "quiet_users"}],
    }
    assert ex["query"].startswith("verb:create") and "$quiet_users" in ex["query"]
    assert ex["where"] is None and ex["threshold"] is None and ex["enabled"] is True
    burst = rules["t-burst"]
    assert burst["threshold"] == {
        "window": format_minute(),
        "count": 10,
        "group_by": ["user"],
        "distinct": "name",
    }
    assert burst["exclusions"] == {} and burst["techniques"] == [] and burst["peers"] == {}
    body = rules["t-body"]
    assert body["enabled"] is False and body["reads"] == ["request"]
    assert "Metadata-level policy" in body["blind_when"]
    assert body["where"] == "requestObject.spec.containers[?securityContext.privileged]"


def format_minute() -> str:
    from audittui.ingest.formats import format_duration

    return format_duration(60_000_000)


def test_list_table_fits_120_columns_and_shows_the_details(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "findings", "--list", "--rules", rules_file(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 120
    start = next(k for k, line in enumerate(lines) if line.split()[2:3] == ["t-exec"])
    head = lines[start].split()
    assert head[:5] == ["high", "yes", "t-exec", "T1609", "T1552.007"]
    assert head[5] == "columns" and lines[start].endswith("Exec by a person")
    details = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        details.append(line.strip())
    text = " ".join(details)
    assert details[0].startswith("peers: falco Attach/Exec Pod; panther Kubernetes.Pod.Exec")
    assert "sigma Pod Exec" in text
    assert "allowed users system:node:*" in text and "allowed namespaces kube-system" in text
    assert "query -user:$quiet_users" in text and "query -ns:$quiet_users" in text
    body = next(k for k, line in enumerate(lines) if line.split()[2:3] == ["t-body"])
    assert lines[body].split()[:2] == ["low", "no"]
    assert lines[body + 1].strip().startswith("blind when: it reads the request body")


def test_list_table_of_hostile_rule_text_is_inert(capsys, tmp_path):
    hostile = RULES + (
        "  - id: t-hostile\n"
        '    title: "evil\\e[31m\\u202eroot"\n'
        "    severity: info\n"
        "    query: verb:get\n"
        '    peers: {elastic: ["x\\e]8;;http://evil\\a"]}\n'
    )
    code, out, _ = run_cli(capsys, "findings", "--list", "--rules", rules_file(tmp_path, hostile))
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "evil\\x1b[31m\\u202eroot" in out
    code, out, _ = run_cli(
        capsys, "findings", "--list", "--format", "json", "--rules", rules_file(tmp_path, hostile)
    )
    assert "\x1b" not in out and "\u202e" not in out
    rule = next(r for r in json.loads(out)["rules"] if r["id"] == "t-hostile")
    assert rule["title"] == "evil\x1b[31m\u202eroot"  # the same value, escaped


def test_fired_findings_json_carries_techniques_and_peers(capsys, tmp_path):
    events = [
        req("create", "pods", sub="exec", name="web", code=101, user="alice", at=0),
        req("create", "pods", sub="exec", name="web", code=101, user="ci:bot", at=1),
    ]
    log = str(write(tmp_path, events))
    code, out, _ = run_cli(
        capsys, "findings", "--format", "json", "--rules", rules_file(tmp_path), log
    )
    assert code == 1
    found = {f["rule"]: f for f in json.loads(out)["findings"]}
    ex = found["t-exec"]
    assert ex["techniques"] == ["T1609", "T1552.007"]
    assert ex["peers"]["falco"] == ["Attach/Exec Pod"]
    assert ex["users"] == ["alice"]  # ci:bot is excluded by the query's $quiet_users


def rule(**fields) -> object:
    base = {"id": "r", "title": "t", "severity": "low", "query": "verb:get"}
    return build_rule(base | fields, {"quiet": ["a"]})


def test_reads_names_what_a_rule_looks_at_beyond_the_columns():
    assert reads(rule()) == ["columns"]
    assert reads(rule(needs=["request"], where="requestObject")) == ["request"]
    assert reads(rule(needs=["response"])) == ["response"]
    assert reads(rule(needs=["credential"])) == ["credential"]
    grants = rule(needs=["reason"], role_grants={"verbs": ["*"]})
    assert reads(grants) == ["reason", "roles"]
    assert reads(rule(where="user.username == 'x'")) == ["event"]  # no body: the event's fields


def test_blind_when_names_every_way_a_rule_can_be_blind():
    assert blind_when(rule()) is None
    assert blind_when(rule(where="user")) is None  # the event is always there
    assert "Metadata-level" in blind_when(rule(needs=["request"]))
    assert "RequestResponse" in blind_when(rule(needs=["response"]))
    assert "credential id" in blind_when(rule(needs=["credential"]))
    both = blind_when(rule(needs=["reason"], role_grants={"resources": ["secrets"]}))
    assert "RBAC reason" in both and "Role or ClusterRole body" in both
    learn = blind_when(rule(first_seen={"key": ["user"], "value": "ua", "learn": "2h"}))
    assert "2h" in learn


def test_exclusions_find_negated_lists_only():
    r = rule(query="verb:get -user:$quiet NOT ns:$quiet (-name:$quiet) ip:$quiet")
    assert exclusions(r)["query"] == [
        {"field": "user", "list": "quiet"},
        {"field": "ns", "list": "quiet"},
        {"field": "name", "list": "quiet"},
    ]
    assert exclusions(rule()) == {}


def test_technique_names_are_data_with_a_fallback():
    assert technique_name("T1609") == "Container Administration Command"
    assert technique_name("T1552.007") == "Unsecured Credentials: Container API"
    assert technique_name("T1552.999") == "Unsecured Credentials: 999"  # the parent's name
    assert technique_name("T9999") == "" and technique_label("T9999") == "T9999"
    assert technique_label("T1610") == "T1610 Deploy Container"
    assert all(k.startswith("T") and v for k, v in TECHNIQUES.items())
    assert orjson.dumps(TECHNIQUES)  # plain data


def test_first_seen_with_no_key_learns_the_whole_selection(tmp_path):
    """key: [] is new across the rule's selection (anyone's), after learn of its history; a
    first_seen without a key is a mistake, not a default."""
    rule = build_rule(
        {"id": "t", "title": "t", "severity": "low", "query": "code:403",
         "first_seen": {"key": [], "value": "ua", "learn": "1h"}},
        {},
    )  # fmt: skip
    known = [req("get", "pods", code=403, user=u, ua="kubectl", at=k * 20 * M)
             for k, u in enumerate(["a", "b", "c", "d"])]  # fmt: skip
    late = [req("get", "pods", code=403, user="e", ua="curl/8", at=70 * M)]
    again = [req("get", "pods", code=403, user="e", ua="kubectl", at=70 * M)]
    assert "t" in evaluate(store_of(tmp_path, known + late), [rule])[1]
    assert "t" not in evaluate(store_of(tmp_path, known + again), [rule])[1]
    with pytest.raises(RuleError, match="first_seen.key"):
        build_rule(
            {"id": "u", "title": "u", "severity": "low", "query": "code:403",
             "first_seen": {"value": "ua"}},
            {},
        )  # fmt: skip


@pytest.mark.parametrize(
    "query",
    [
        'verb:create "privileged"',
        'verb:create -"privileged"',
        'verb:create ("privileged" OR user:bob)',
        '"PRIVILEGED" -(user:bob "nginx")',
        '"privileged"',
    ],
)
def test_free_text_in_a_rule_selects_what_the_query_language_does(tmp_path, query):
    """The free text of a rule's query is read in each candidate's own line (not searched in
    the whole file for every rule): the events it selects are the filter's."""
    body = {"spec": {"containers": [{"name": "c", "image": "nginx",
                                     "securityContext": {"privileged": True}}]}}  # fmt: skip
    events = [
        req("create", "pods", name="a", body=body),
        req("create", "pods", name="b", user="bob", body=body),
        req("create", "pods", name="c", body={"spec": {"containers": [{"name": "c"}]}}),
        req("get", "pods", name="d", user="bob", uri="/api/v1/namespaces/default/pods/privileged"),
    ]
    store = store_of(tmp_path, events)
    rule = build_rule({"id": "t", "title": "t", "severity": "low", "query": query}, {})
    fx = evaluate(store, [rule])[0]
    fired = fx.results(store)
    got = sorted(fired[0].rows.tolist()) if fired else []
    assert got == sorted(select(store, query).tolist())
