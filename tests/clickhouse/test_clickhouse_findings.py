"""Findings computed by a ClickHouse server (clickhouse/findings.py) equal the in-memory engine's on
the same events, on the real 18.16 server and on chdb (``store_url``): the whole shipped pack
over the demo generator's events (its attack stories fire many rules), and targeted rules
(threshold, distinct, first seen, where, free text, allow-lists) over events with copies and
events without a time.

The log is read into memory by the file path and shipped into a table of its own
(rows.from_lines, as ``ship`` reads it). Users of equal count are compared as sets (ties fall
by first appearance, which a store knows only per source and offset)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from backend_kit import fill, table
from findings_kit import M, S, req

from audittui.clickhouse.findings import run
from audittui.clickhouse.reads import open_reader
from audittui.findings import Findings, Rule, load_rules
from audittui.findings.rules import build_rule
from audittui.index.evaluate import select
from audittui.index.loader import load

PACK = load_rules(False).rules


def _fill(store_url: str, path: Path) -> str:
    """A table of its own holding the events of ``path`` (every line, copies too)."""
    url = table(store_url)
    fill(url, path)
    return url


def _users(users: list[str], counts: dict[str, int]) -> list[tuple[int, list[str]]]:
    """Users by count, each count's users as a set (ties fall by first appearance)."""
    out: dict[int, list[str]] = {}
    for u in users:
        out.setdefault(counts.get(u, 0), []).append(u)
    return [(n, sorted(us)) for n, us in sorted(out.items(), reverse=True)]


def _same(path: Path, url: str, rules: list[Rule], query: str = "") -> list[str]:
    """Run the engine over the file and the server over the store; assert equal answers;
    the ids of the rules that fired."""
    store = load(str(path))
    engine = Findings(rules)
    engine.update(store)
    memory = engine.results(store)
    with open_reader(url) as reader:
        got = run(reader, rules, query)
    assert got.events == len(store) - _copies(path)
    assert [f.rule.id for f in got.fired] == [f.rule.id for f in memory]
    for f, m in zip(got.fired, memory, strict=True):
        assert (f.rule.id, f.count, f.first, f.last) == (m.rule.id, m.count, m.first, m.last)
        assert sorted(f.users) == sorted(m.users)
        assert f.audit_ids == m.audit_ids  # one per request, in time order
    assert sorted((r.id, why) for r, why in got.blind) == sorted(
        (r.id, why) for r, why in engine.blind(store)
    )
    assert got.errors == engine.errors
    return [f.rule.id for f in got.fired]


def _copies(path: Path) -> int:
    lines = path.read_bytes().splitlines()
    return len(lines) - len(set(lines))


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo generator's realistic 5,000 events (its attack stories among them)."""
    path = tmp_path_factory.mktemp("fsql") / "demo.log"
    subprocess.run(
        [sys.executable, "-m", "audittui.demo", "big", "--events", "5000", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def test_the_whole_pack_as_in_memory(store_url, demo_log):
    fired = _same(demo_log, _fill(store_url, demo_log), PACK)
    assert len(fired) >= 10  # the attack stories fire many rules: something to compare


def test_a_query_limits_the_events_the_pack_runs_over(store_url, demo_log):
    url = _fill(store_url, demo_log)
    with open_reader(url) as reader:
        everything = run(reader, PACK)
        some = run(reader, PACK, "verb:create,delete")
    assert 0 < some.events < everything.events
    assert {f.rule.id for f in some.fired} < {f.rule.id for f in everything.fired}


def test_touching_keeps_the_findings_with_an_event_among_a_querys_matches(store_url, demo_log):
    """The backends' ``findings(rules, query)``: the rules over every event, the findings kept
    when one of their events matches the query (as the in-memory backend keeps them)."""
    url = _fill(store_url, demo_log)
    store = load(str(demo_log))
    engine = Findings(PACK)
    engine.update(store)
    for query in ("verb:create,delete", "user:system:anonymous", "code:403"):
        chosen = select(store, query)
        want = [f.rule.id for f in engine.results(store) if np.isin(f.rows, chosen).any()]
        with open_reader(url) as reader:
            got = run(reader, PACK, touching=query)
        assert [f.rule.id for f in got.fired] == want
        assert got.events == len(store)


def _rule(**fields: object) -> Rule:
    base = {"id": "r", "title": "t", "severity": "medium", "query": "verb:get"}
    return build_rule(base | fields, {})


TARGETED = [
    _rule(
        id="burst",
        query="code:403",
        threshold={"window": "1m", "count": 3, "group_by": ["user"]},
    ),
    _rule(
        id="spread",
        query="verb:get resource:secrets",
        threshold={"window": "10m", "count": 3, "group_by": ["user", "ip"], "distinct": "name"},
    ),
    _rule(
        id="new-ua", query="verb:list", first_seen={"key": ["user"], "value": "ua", "learn": "1h"}
    ),
    _rule(
        id="password",
        query="verb:create resource:configmaps",
        needs=["request"],
        where="requestObject.data.password",
    ),
    _rule(id="text", query='verb:delete "evil-tool"'),
    _rule(id="not-ci", query="verb:delete", allow={"users": ["ci:*"]}),
    _rule(id="no-time-burst", query="verb:patch", threshold={"window": "1m", "count": 3}),
]


def _events() -> list[dict]:
    out = []
    for k in range(4):  # a burst of refusals for alice, one too few for bob
        out.append(req("get", "pods", code=403, at=k * 10 * S, user="alice"))
        if k < 2:
            out.append(req("get", "pods", code=403, at=k * 10 * S, user="bob"))
    for k, name in enumerate(["a", "b", "c", "c"]):  # distinct secrets read from one ip
        out.append(req("get", "secrets", name=name, at=k * M, user="mallory", ip="1.2.3.4"))
    for k, ua in enumerate(["kubectl/1", "kubectl/1", "curl/8", "kubectl/1"]):
        out.append(req("list", "pods", ua=ua, at=k * 50 * M, user="carol"))
    out.append(req("create", "configmaps", name="x", at=S, body={"data": {"password": "p"}}))
    out.append(req("create", "configmaps", name="y", at=2 * S, body={"data": {"user": "u"}}))
    out.append(req("delete", "pods", name="p", at=3 * S, ua="evil-tool/1.0", user="ci:bot"))
    out.append(req("delete", "pods", name="q", at=4 * S, user="dave"))
    for k in range(3):  # without a time: one window of their own
        ev = req("patch", "deployments", name=f"d{k}", user="erin")
        ev.pop("requestReceivedTimestamp")
        ev.pop("stageTimestamp")
        out.append(ev)
    return out


def test_targeted_rules_over_copies_and_undated_events(store_url, tmp_path):
    events = _events()
    path = tmp_path / "audit.log"
    # every line twice, and the refusals a third time: copies count once everywhere
    lines = [orjson.dumps(e) + b"\n" for e in events]
    path.write_bytes(b"".join(line * (3 if b'"code":403' in line else 2) for line in lines))
    fired = _same(path, _fill(store_url, path), TARGETED)
    assert set(fired) == {
        "burst",
        "spread",
        "new-ua",
        "password",
        "text",
        "not-ci",
        "no-time-burst",
    }
