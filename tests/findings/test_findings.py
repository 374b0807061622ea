"""The findings engine: exec/attach stages, threshold windows and first-seen values at their
edges, incremental evaluation equal to one pass, the user's rules file, image allow-lists,
``finding:`` queries, and ``audittui findings``. (Each pack rule's own cases: test_findings_rules.)
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
from findings_kit import (
    FALCO,
    PACK,
    RULE,
    H,
    M,
    S,
    evaluate,
    falco,
    on,
    req,
    rules_file,
    store_of,
    write,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audittui.cli import main as cli
from audittui.findings import Findings, load_rules
from audittui.findings.rules import build_rule
from audittui.findings.windows import NewValues, group_ids, threshold_hits
from audittui.index.evaluate import select
from audittui.index.loader import load, read_sources
from audittui.ingest.sources import open_source

US = 1  # one microsecond


def fired_rows(store, rule):
    """(count, rows) of ``rule``'s finding, or None."""
    _, fired, _ = evaluate(store, [rule])
    f = fired.get(rule.id)
    return None if f is None else (f.count, sorted(int(i) for i in f.rows))


# -- exec / attach ------------------------------------------------------------------------------


def _exec(stage: str, audit_id: str = "exec-1", at: int = 0) -> dict:
    ev = copy.deepcopy(falco("exec_pod.json")[0])
    ev["stage"] = stage
    ev["auditID"] = audit_id
    if stage == "ResponseComplete":
        ev["stageTimestamp"] = "2018-10-26T13:40:02.000000Z"  # the session ended later
    return ev


def test_exec_and_attach_fixtures_fire_at_response_started(tmp_path):
    for name in ("exec_pod.json", "attach_pod.json"):
        store = store_of(tmp_path, name)
        assert store.value("stage", 0) == "ResponseStarted"
        _, fired, _ = evaluate(store, [RULE["exec-attach"]])
        assert fired["exec-attach"].count == 1
        assert fired["exec-attach"].users == ["minikube-user"]


def test_exec_fires_at_response_complete_alone(tmp_path):
    store = store_of(tmp_path, [_exec("ResponseComplete")])
    assert fired_rows(store, RULE["exec-attach"]) == (1, [0])


def test_exec_seen_at_both_stages_is_one_request(tmp_path):
    events = [_exec("ResponseStarted"), _exec("ResponseComplete")]
    events += [_exec("ResponseStarted", "exec-2"), _exec("ResponseComplete", "exec-2")]
    events.append(_exec("RequestReceived", "exec-3"))  # not a session (yet)
    store = store_of(tmp_path, events)
    _, fired, _ = evaluate(store, [RULE["exec-attach"]])
    finding = fired["exec-attach"]
    assert finding.count == 2  # two requests ...
    assert len(finding.rows) == 4  # ... four events
    assert finding.audit_ids == ["exec-1", "exec-2"]
    only_one = store_of(tmp_path, events[:2])
    assert fired_rows(only_one, RULE["exec-attach"]) == (1, [0, 1])


# -- threshold windows --------------------------------------------------------------------------


RAPID = RULE["secrets-rapid-read"]


def reads(spec: list[tuple[str, int]], ip="10.0.0.9", ua="kubectl/v1.30.0", user="alice"):
    return [req("get", "secrets", name=n, at=t, ip=ip, ua=ua, user=user) for n, t in spec]


@pytest.mark.parametrize(
    ("spec", "fires"),
    [
        ([("a", 0), ("b", 3 * M), ("c", 6 * M)], True),  # both ends of the window count
        ([("a", 0), ("b", 3 * M), ("c", 6 * M + US)], False),  # one µs too late
        ([("c", 6 * M), ("a", 0), ("b", 3 * M)], True),  # logged out of time order
        ([("a", 0), ("a", 1 * M), ("a", 2 * M)], False),  # one secret three times
        ([("a", 0), ("b", 1 * M), ("a", 2 * M), ("b", 3 * M)], False),  # two distinct
    ],
)
def test_rapid_secret_reads_window_edges(tmp_path, spec, fires):
    store = store_of(tmp_path, reads(spec))
    got = fired_rows(store, RAPID)
    assert (got is not None) is fires
    if fires:
        assert got == (3, [0, 1, 2])


def test_rapid_secret_reads_group_by_user_ip_and_client(tmp_path):
    spec = [("a", 0), ("b", M), ("c", 2 * M)]
    varied = [
        [*reads(spec[:2]), *reads(spec[2:], ip="10.0.0.10")],
        [*reads(spec[:2]), *reads(spec[2:], ua="curl/8.5.0")],
        [*reads(spec[:2]), *reads(spec[2:], user="bob")],
        reads(spec, user="system:node:node-1"),  # kubelets are allowed
    ]
    for events in varied:
        assert fired_rows(store_of(tmp_path, events), RAPID) is None
    # The same three plus a fourth read in the window: every read of the window is reported.
    events = reads([*spec, ("d", 5 * M), ("e", 30 * M)])
    assert fired_rows(store_of(tmp_path, events), RAPID) == (4, [0, 1, 2, 3])


def untimed(events: list[dict]) -> list[dict]:
    for ev in events:
        del ev["requestReceivedTimestamp"], ev["stageTimestamp"]
    return events


def test_rapid_secret_reads_without_times_never_join_a_timed_window(tmp_path):
    """Regression: events without any timestamp took part in every window (the time column's
    missing marker is the smallest int64, and the window arithmetic overflowed). They share
    a window of their own: two of them and a timed third are not three in a window."""
    events = untimed(reads([("a", 0), ("b", M)])) + reads([("c", 5 * H)])
    assert fired_rows(store_of(tmp_path, events), RAPID) is None


def test_events_without_times_share_one_window_of_their_own(tmp_path):
    """Panther's test events mostly have no time: N of them reach a threshold of N, as if
    they happened at one instant; distinct values count among them alike."""
    assert fired_rows(store_of(tmp_path, untimed(reads([("a", 0), ("b", 0), ("c", 0)]))), RAPID)
    assert (
        fired_rows(store_of(tmp_path, untimed(reads([("a", 0), ("a", 0), ("b", 0)]))), RAPID)
        is None
    )
    burst = RULE["forbidden-burst"]
    ten = untimed(forbidden([0] * 10))
    assert fired_rows(store_of(tmp_path, ten), burst) == (10, list(range(10)))
    nine_and_one = untimed(forbidden([0] * 9)) + forbidden([0])  # the timed one is elsewhere
    assert fired_rows(store_of(tmp_path, nine_and_one), burst) is None


def forbidden(times: list[int], user="mallory") -> list[dict]:
    return [
        req("list", "secrets", code=403, decision="forbid", user=user, at=t, name=f"s{k}")
        for k, t in enumerate(times)
    ]


def test_forbidden_burst_edges(tmp_path):
    rule = RULE["forbidden-burst"]
    ten = [k * 6 * S for k in range(9)] + [M]  # ten within exactly one minute
    assert fired_rows(store_of(tmp_path, forbidden(ten)), rule) == (10, list(range(10)))
    assert fired_rows(store_of(tmp_path, forbidden(ten[:9])), rule) is None
    late = [*ten[:9], M + US]
    assert fired_rows(store_of(tmp_path, forbidden(late)), rule) is None
    # Ten from two users do not add up; an old refusal an hour before is not part of the burst.
    assert (
        fired_rows(store_of(tmp_path, forbidden(ten[:5]) + forbidden(ten[5:], "eve")), rule) is None
    )
    old = forbidden([-H]) + forbidden(ten)
    assert fired_rows(store_of(tmp_path, old), rule) == (10, list(range(1, 11)))


def ssar(times: list[int], ip="10.0.0.9", user="mallory") -> list[dict]:
    return [
        req(
            "create",
            "selfsubjectaccessreviews",
            api="authorization.k8s.io/v1",
            ns=None,
            code=201,
            user=user,
            ip=ip,
            at=t,
        )
        for t in times
    ]


def test_permission_enumeration_edges(tmp_path):
    rule = RULE["permission-enumeration"]
    five = [0, 10 * S, 20 * S, 30 * S, M]
    assert fired_rows(store_of(tmp_path, ssar(five)), rule) == (5, [0, 1, 2, 3, 4])
    assert fired_rows(store_of(tmp_path, ssar(five[:4])), rule) is None
    assert fired_rows(store_of(tmp_path, ssar([*five[:4], M + US])), rule) is None
    split = ssar(five[:3]) + ssar(five[3:], ip="10.0.0.10")  # same user, two addresses
    assert fired_rows(store_of(tmp_path, split), rule) is None


CRED = {"authentication.kubernetes.io/credential-id": ["JTI=x"]}


def token_uses(spec: list[tuple[str, int]], extra=CRED) -> list[dict]:
    return [
        req(
            "get",
            "configmaps",
            name="c",
            user="system:serviceaccount:dev:web",
            ip=ip,
            at=t,
            extra=extra,
        )
        for ip, t in spec
    ]


def test_credential_used_from_two_addresses_within_an_hour(tmp_path):
    rule = RULE["credential-multi-ip"]
    two = token_uses([("10.0.0.1", 0), ("203.0.113.7", H)])
    assert fired_rows(store_of(tmp_path, two), rule) == (2, [0, 1])
    one = token_uses([("10.0.0.1", 0), ("10.0.0.1", 10 * M)])
    assert fired_rows(store_of(tmp_path, one), rule) is None
    apart = token_uses([("10.0.0.1", 0), ("203.0.113.7", H + US)])
    assert fired_rows(store_of(tmp_path, apart), rule) is None
    other = token_uses([("10.0.0.1", 0)]) + token_uses(
        [("203.0.113.7", M)], {"authentication.kubernetes.io/credential-id": ["JTI=y"]}
    )
    assert fired_rows(store_of(tmp_path, other), rule) is None


def test_credential_rule_is_blind_without_credential_ids(tmp_path):
    rule = RULE["credential-multi-ip"]
    plain = token_uses([("10.0.0.1", 0), ("203.0.113.7", M)], extra={})
    store = store_of(tmp_path, plain)
    fx, fired, blind = evaluate(store, [rule])
    assert fired == {} and blind == ["credential-multi-ip"]
    assert "credential" in fx.blind(store)[0][1]
    some = plain + token_uses([("10.0.0.1", 2 * M)])
    assert evaluate(store_of(tmp_path, some), [rule])[2] == []


# -- windows.py directly ------------------------------------------------------------------------


def test_threshold_hits_counts_both_ends_and_any_order():
    times = np.array([60, 0, 30, 61, 500], dtype=np.int64)
    groups = np.zeros(5, dtype=np.int64)
    assert threshold_hits(times, groups, 60, 3).tolist() == [True, True, True, True, False]
    assert threshold_hits(times, groups, 59, 3).tolist() == [True, False, True, True, False]
    assert threshold_hits(times, groups, 60, 5).tolist() == [False] * 5
    assert threshold_hits(times[:2], groups[:2], 60, 3).tolist() == [False, False]


def test_threshold_hits_groups_do_not_mix():
    times = np.array([0, 1, 2, 3, 4, 5], dtype=np.int64)
    groups = np.array([0, 1, 0, 1, 0, 2], dtype=np.int64)
    assert threshold_hits(times, groups, 10, 3).tolist() == [True, False, True, False, True, False]
    assert not threshold_hits(times, groups, 3, 3).any()  # group 0 spans 4


def test_threshold_hits_distinct_values():
    times = np.array([5, 0, 10, 11, 3], dtype=np.int64)
    groups = np.zeros(5, dtype=np.int64)
    values = np.array([1, 1, 2, 3, 1], dtype=np.int64)
    # distinct 1, 2, 3 within [1, 11]: the events at 3, 5, 10, 11 (not the one at 0)
    got = threshold_hits(times, groups, 10, 3, values)
    assert got.tolist() == [True, False, True, True, True]
    # window 6: only 1@5, 2@10, 3@11 (span 6, both ends included)
    assert threshold_hits(times, groups, 6, 3, values).tolist() == [True, False, True, True, False]
    assert not threshold_hits(times, groups, 5, 3, values).any()
    # the same value many times is one value
    same = np.ones(5, dtype=np.int64)
    assert not threshold_hits(times, groups, 100, 2, same).any()


def test_group_ids_combine_columns():
    a = np.array([1, 1, 2, 2], dtype=np.int32)
    b = np.array([7, 8, 7, 7], dtype=np.int32)
    ids = group_ids([a, b], 4)
    assert ids[2] == ids[3] and len({ids[0], ids[1], ids[2]}) == 3
    assert group_ids([], 3).tolist() == [0, 0, 0]


def first_seen_hits(
    times: np.ndarray, keys: np.ndarray, values: np.ndarray, learn: int
) -> np.ndarray:
    """Which events are the first of a (key, value) pair appearing more than ``learn`` µs
    after the key's own first event: a value new for a key with a history."""
    state = NewValues(learn)
    state.add(times, [keys], values, np.arange(len(times)))
    hit = np.zeros(len(times), dtype=bool)
    hit[state.hits()] = True
    return hit


def test_first_seen_hits_only_the_first_of_a_new_value_and_any_order():
    learn = 100
    # key 0: value 1 at 0 (history starts), value 2 at 150 and 300, value 3 at 50 (learning)
    times = np.array([300, 0, 150, 50, 10, 400], dtype=np.int64)
    keys = np.array([0, 0, 0, 0, 1, 1], dtype=np.int64)
    values = np.array([2, 1, 2, 3, 1, 1], dtype=np.int64)
    got = first_seen_hits(times, keys, values, learn)
    assert got.tolist() == [False, False, True, False, False, False]
    # exactly learn after the key's first: still learning
    edge = first_seen_hits(np.array([0, 100, 101]), np.zeros(3), np.array([1, 2, 3]), learn)
    assert edge.tolist() == [False, False, True]
    # a brand-new key has no history: its first values are not new
    fresh = first_seen_hits(np.array([1000, 1001]), np.array([5, 5]), np.array([1, 2]), learn)
    assert not fresh.any()


# -- first seen ---------------------------------------------------------------------------------

NEW_UA = RULE["new-user-agent"]
NEW_IP = RULE["new-source-ip"]


def pod_gets(user: str, spec: list[tuple[int, dict]]) -> list[dict]:
    return [req("get", "pods", name="p1", user=user, at=t, **kw) for t, kw in spec]


def routine(hours: int = 3) -> list[tuple[int, dict]]:
    """A request every 20 minutes from kubectl at 10.0.0.1."""
    return [(k * 20 * M, {}) for k in range(hours * 3 + 1)]


def test_new_user_agent_after_an_hour_fires_once_on_its_first_event(tmp_path):
    curl = [(H + S, {"ua": "curl/8.5.0"}), (2 * H, {"ua": "curl/8.5.0"})]
    events = pod_gets("alice", routine() + curl)
    store = store_of(tmp_path, events)
    first_curl = len(routine())
    assert fired_rows(store, NEW_UA) == (1, [first_curl])
    # Logged out of time order (a backup read after the live file): the same event is first.
    shuffled = events[first_curl:][::-1] + events[:first_curl][::-1]
    store = store_of(tmp_path, shuffled)
    (count, rows) = fired_rows(store, NEW_UA)
    assert count == 1 and store.value("time", rows[0]) == store.value("time", 1)  # H + 1 s


def test_new_user_agent_edges(tmp_path):
    def got(events):
        return fired_rows(store_of(tmp_path, events), NEW_UA)

    # new within the first hour: still learning the user's clients
    assert got(pod_gets("alice", routine() + [(30 * M, {"ua": "curl/8.5.0"})])) is None
    # exactly one hour after the user's first request: still learning; one µs later it is new
    assert got(pod_gets("alice", routine() + [(H, {"ua": "curl/8.5.0"})])) is None
    assert got(pod_gets("alice", routine() + [(H + US, {"ua": "curl/8.5.0"})])) is not None
    # a brand-new user (bob appears late, with curl): nothing to compare with
    late_bob = pod_gets("alice", routine()) + pod_gets("bob", [(2 * H, {"ua": "curl/8.5.0"})])
    assert got(late_bob) is None
    # another user's client is not new for alice
    both = pod_gets("bob", [(0, {"ua": "curl/8.5.0"})]) + pod_gets(
        "alice", routine() + [(2 * H, {"ua": "curl/8.5.0"})]
    )
    store = store_of(tmp_path, both)
    assert [store.value("user", i) for i in fired_rows(store, NEW_UA)[1]] == ["alice"]


def test_new_source_ip_fires_for_people_not_service_accounts(tmp_path):
    moved = routine() + [(2 * H, {"ip": "203.0.113.7"})]
    store = store_of(tmp_path, pod_gets("alice", moved))
    assert fired_rows(store, NEW_IP) == (1, [len(moved) - 1])
    sa = store_of(tmp_path, pod_gets("system:serviceaccount:dev:web", moved))
    assert fired_rows(sa, NEW_IP) is None
    node = store_of(tmp_path, pod_gets("system:node:node-1", moved))
    assert fired_rows(node, NEW_IP) is None


def test_first_seen_rules_are_blind_on_a_log_shorter_than_their_learning(tmp_path):
    short = pod_gets("alice", [(0, {}), (30 * M, {}), (H, {"ua": "curl/8.5.0"})])  # spans 1 h
    store = store_of(tmp_path, short)
    fx, fired, blind = evaluate(store, [NEW_UA, NEW_IP])
    assert fired == {} and sorted(blind) == ["new-source-ip", "new-user-agent"]
    assert "spans 1h" in dict((r.id, w) for r, w in fx.blind(store))["new-user-agent"]
    longer = store_of(tmp_path, pod_gets("alice", [(0, {}), (H + US, {})]))
    assert evaluate(longer, [NEW_UA, NEW_IP])[2] == []


def test_first_seen_ignores_events_without_a_time(tmp_path):
    """Regression: one request without any timestamp made the user's history start at the
    dawn of time, so every client of the user was "new" (and the rule both fired and was
    reported blind)."""
    untimed = pod_gets("alice", [(0, {})])
    del untimed[0]["requestReceivedTimestamp"], untimed[0]["stageTimestamp"]
    events = untimed + pod_gets("alice", [(k * M, {}) for k in range(5)])
    events += pod_gets("alice", [(6 * M, {"ua": "curl/8.5.0"})])
    fx, fired, blind = evaluate(store_of(tmp_path, events), [NEW_UA])
    assert fired == {} and blind == ["new-user-agent"]


# -- incremental = batch ------------------------------------------------------------------------

STATEFUL = (
    "secrets-rapid-read",
    "forbidden-burst",
    "permission-enumeration",
    "credential-multi-ip",
    "new-user-agent",
    "new-source-ip",
    "exec-attach",
)
STATEFUL_AND_FRIENDS = [
    on(rid) for rid in (*STATEFUL, "secret-get", "privileged-pod", "disallowed-user")
]
USERS = ["alice", "bob", "system:serviceaccount:dev:web"]
IPS = ["10.0.0.1", "10.0.0.2", "203.0.113.7"]
UAS = ["kubectl/v1.30.0", "curl/8.5.0"]


def random_event(rng: random.Random, k: int) -> list[dict]:
    user, ip, ua = rng.choice(USERS), rng.choice(IPS), rng.choice(UAS)
    at = rng.randrange(0, 3 * H, 7 * S)
    if at > 2 * H and rng.random() < 0.2:  # clients and addresses that appear late
        ua, ip = "python-requests/2.31", "198.51.100.1"
    kind = rng.randrange(6)
    if kind == 0:  # half of the reads in one busy half hour, from one client
        if rng.random() < 0.5:
            ip, ua, at = IPS[0], UAS[0], H + rng.randrange(0, 30 * M, S)
        return [req("get", "secrets", name=rng.choice("abcd"), user=user, ip=ip, ua=ua, at=at)]
    if kind == 1:  # half of the refusals in one probing minute and a half
        if rng.random() < 0.5:
            user, at = "mallory", 2 * H + rng.randrange(0, 90 * S, S)
        return [req("list", "pods", code=403, decision="forbid", user=user, ip=ip, ua=ua, at=at)]
    if kind == 2:  # a third of the access reviews in one busy minute by eve
        if rng.random() < 0.3:
            return ssar([3 * H + rng.randrange(0, M, S)], ip=IPS[1], user="eve")
        return ssar([at], ip=ip, user=user)
    if kind == 3:
        jti = {"authentication.kubernetes.io/credential-id": [f"JTI={rng.randrange(2)}"]}
        return [req("get", "pods", name="p", user=user, ip=ip, ua=ua, at=at, extra=jti)]
    if kind == 4:
        kw = dict(sub="exec", name="web", code=101, user=user, ip=ip, at=at, audit_id=f"x{k}")
        out = [req("create", "pods", stage="ResponseStarted", **kw)]
        if rng.random() < 0.5:
            out.append(req("create", "pods", stage="ResponseComplete", **kw))
        return out
    spec = {
        "containers": [
            {"name": "c", "image": "nginx", "securityContext": {"privileged": rng.random() < 0.5}}
        ]
    }
    return [req("create", "pods", name="p", code=201, user=user, ip=ip, at=at, body={"spec": spec})]


def summary(findings) -> dict:
    return {
        f.rule.id: (
            f.count,
            sorted(int(i) for i in f.rows),
            f.first,
            f.last,
            f.users,
            sorted(f.audit_ids),
        )
        for f in findings
    }


def grow_and_compare(directory: Path, chunks: list[list[dict]]) -> dict:
    """Load ``chunks`` one file at a time into one store, updating after each; compare with
    a single update over the final store (same rows)."""
    paths = [write(directory, chunk) for chunk in chunks]
    store = load(paths[0])
    live = Findings(STATEFUL_AND_FRIENDS)
    live.update(store)
    for k, path in enumerate(paths[1:], start=1):
        source = store.add_source(open_source(k, str(path), store.spool))
        read_sources(store, [source])
        live.update(store)
        live.results(store)  # reading results in between must not disturb anything
    batch = Findings(STATEFUL_AND_FRIENDS)
    batch.update(store)
    assert summary(live.results(store)) == summary(batch.results(store))
    assert [(r.id, w) for r, w in live.blind(store)] == [(r.id, w) for r, w in batch.blind(store)]
    assert live.update(store) is False  # nothing new
    return summary(batch.results(store))


@pytest.mark.parametrize("seed", range(6))
def test_incremental_updates_equal_one_pass(tmp_path, seed):
    rng = random.Random(seed)
    events = [e for k in range(400) for e in random_event(rng, k)]
    cuts = sorted(rng.sample(range(1, len(events)), 5))
    chunks = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    result = grow_and_compare(tmp_path, chunks)
    # The data is dense enough that the stateful rules take part.
    for rid in STATEFUL:
        assert rid in result, rid


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.lists(st.integers(1, 60), min_size=1, max_size=4))
def test_incremental_equals_batch_for_any_split(seed, sizes):
    rng = random.Random(seed)
    chunks = [[e for k in range(n) for e in random_event(rng, k)] for n in sizes]
    with tempfile.TemporaryDirectory() as d:
        grow_and_compare(Path(d), chunks)


# -- the user's rules file ----------------------------------------------------------------------


def test_no_rules_file_is_the_pack(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    rules = load_rules()
    assert rules.problems == [] and [r.id for r in rules.rules] == [r.id for r in PACK]
    named = load_rules(tmp_path / "nope.yaml")  # one named on the command line must exist
    assert named.problems == [f"{tmp_path / 'nope.yaml'}: no such file"]
    assert len(named.rules) == len(PACK)


def test_user_rule_is_added_and_fires(monkeypatch, tmp_path):
    rules_file(
        monkeypatch,
        tmp_path,
        "rules:\n"
        "  - id: mallory-anything\n"
        "    title: Mallory did something\n"
        "    severity: critical\n"
        "    query: user:mallory\n",
    )
    rules = load_rules()
    assert rules.problems == []
    assert len(rules.rules) == len(PACK) + 1
    rule = rules.by_id()["mallory-anything"]
    assert rule.severity == "critical" and rule.enabled
    events = [req("get", "pods", name="p", user=u) for u in ("alice", "mallory")]
    _, fired, _ = evaluate(store_of(tmp_path, events), rules.rules)
    assert fired["mallory-anything"].users == ["mallory"]
    assert "mallory-anything" not in evaluate(store_of(tmp_path, events[:1]), rules.rules)[1]


def test_global_allow_suppresses_every_rule(monkeypatch, tmp_path):
    store = store_of(tmp_path, "exec_pod.json")  # minikube-user
    assert "exec-attach" in evaluate(store, load_rules().rules)[1]
    rules_file(monkeypatch, tmp_path, "allow:\n  users: [minikube-*]\n")
    rules = load_rules()
    assert rules.problems == []
    assert evaluate(store, rules.rules)[1] == {}
    assert all("minikube-*" in r.allow.users for r in rules.rules)


def test_per_rule_override_merges_allow_lists_and_keeps_the_rest(monkeypatch, tmp_path):
    rules_file(
        monkeypatch,
        tmp_path,
        "rules:\n  - id: secret-get\n    severity: critical\n    allow: {users: [backup-bot]}\n",
    )
    rules = load_rules()
    assert rules.problems == []
    rule = rules.by_id()["secret-get"]
    pack_allow = RULE["secret-get"].allow.users
    assert "system:node:*" in pack_allow
    assert rule.allow.users == (*pack_allow, "backup-bot")  # merged, not replaced
    assert rule.severity == "critical" and rule.query == RULE["secret-get"].query
    events = [
        req("get", "secrets", name="s", user=u, at=k * S)
        for k, u in enumerate(["backup-bot", "system:node:n1", "alice"])
    ]
    finding = evaluate(store_of(tmp_path, events), [rule])[1]["secret-get"]
    assert finding.users == ["alice"] and finding.count == 1


def test_enable_and_disable_by_id_and_glob(monkeypatch, tmp_path):
    rules_file(
        monkeypatch,
        tmp_path,
        "enable: [untrusted-node-*, admin-access]\ndisable: ['*-deleted', secret-get]\n",
    )
    rules = load_rules()
    assert rules.problems == []
    on_ = {r.id for r in rules.rules if r.enabled}
    assert {"untrusted-node-joined", "untrusted-node-failed", "admin-access"} <= on_
    assert "secret-get" not in on_ and "secret-get-failed" in on_
    deleted = {r.id for r in PACK if r.id.endswith("-deleted")}
    assert len(deleted) >= 10 and not deleted & on_
    assert "disallowed-user" not in on_  # left as shipped
    store = store_of(tmp_path, "delete_deployment.json")
    assert evaluate(store, rules.rules)[1].keys() == {"admin-access"}


def test_a_switch_that_matches_nothing_is_reported(monkeypatch, tmp_path):
    rules_file(monkeypatch, tmp_path, "enable: [no-such-rule]\n")
    rules = load_rules()
    assert len(rules.problems) == 1 and "no-such-rule" in rules.problems[0]


def test_user_lists_extend_the_pack_lists_in_queries(monkeypatch, tmp_path):
    store = store_of(tmp_path, "some-user_creates_namespace_foo.json")
    assert "disallowed-namespace" in evaluate(store, load_rules().rules)[1]
    rules_file(monkeypatch, tmp_path, "lists:\n  allowed_namespaces: [foo]\n")
    rules = load_rules()
    assert rules.problems == []
    assert "disallowed-namespace" not in evaluate(store, rules.rules)[1]
    # extended, not replaced: the pack's namespaces are still allowed
    kube = store_of(
        tmp_path,
        [req("create", "namespaces", ns=None, name="kube-node-lease", code=201)]
        + [req("create", "namespaces", ns=None, name="shop", code=201)],
    )
    finding = evaluate(kube, rules.rules)[1]["disallowed-namespace"]
    assert [kube.value("name", i) for i in finding.rows] == ["shop"]


def test_user_lists_reach_where_expressions_and_allow_lists(monkeypatch, tmp_path):
    """sensitive_mounts is used inside a JMESPath where, trusted_host_images in allow.images."""
    pod = copy.deepcopy(falco("create_nginx_pod_sensitive_mount.json")[0])
    pod["requestObject"]["spec"]["volumes"] = [{"name": "d", "hostPath": {"path": "/data"}}]
    priv = privileged_pod(["example.com/node-agent:1.2"])
    store = store_of(tmp_path, [pod, priv])
    # /data is a hostPath like any other: the low hostpath-pod, not sensitive-mount-pod
    assert evaluate(store, load_rules().rules)[1].keys() == {"privileged-pod", "hostpath-pod"}
    rules_file(
        monkeypatch,
        tmp_path,
        "lists:\n  sensitive_mounts: [/data]\n  trusted_host_images: [example.com/node-agent*]\n",
    )
    rules = load_rules()
    assert rules.problems == []
    assert evaluate(store, rules.rules)[1].keys() == {"sensitive-mount-pod"}


GOOD = "  - id: mine\n    title: Mine\n    severity: low\n    query: user:mallory\n"


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("rules: [\n  - id: x\n", ["not valid YAML"]),
        (
            GOOD + "  - id: typo\n    title: T\n    severity: low\n    query: verb:get\n"
            "    colour: red\n",
            ["rule 2", "'typo'", "colour", "unknown key"],
        ),
        (
            GOOD + "  - id: bad-query\n    title: T\n    severity: low\n    query: 'verb:('\n",
            ["rule 2", "'bad-query'", "query"],
        ),
        (
            GOOD + "  - id: bad-where\n    title: T\n    severity: low\n    query: verb:get\n"
            "    where: 'requestObject.[['\n",
            ["rule 2", "'bad-where'", "where", "bad JMESPath"],
        ),
        (
            GOOD
            + "  - id: bad-severity\n    title: T\n    severity: urgent\n    query: verb:get\n",
            ["rule 2", "'bad-severity'", "severity"],
        ),
        (
            GOOD + "  - id: bad-list\n    title: T\n    severity: low\n    query: user:$nobody\n",
            ["rule 2", "'bad-list'", "query", "no list named nobody"],
        ),
        (
            GOOD + "  - id: bad-window\n    title: T\n    severity: low\n    query: verb:get\n"
            "    threshold: {window: soon, count: 2, group_by: [user]}\n",
            ["rule 2", "'bad-window'", "threshold.window"],
        ),
        (GOOD + "colour: red\n", ["colour", "unknown key"]),
    ],
)
def test_problems_in_the_rules_file_are_reported_not_fatal(monkeypatch, tmp_path, text, expect):
    path = rules_file(monkeypatch, tmp_path, "rules:\n" + text if text[0] == " " else text)
    rules = load_rules()
    assert len(rules.problems) == 1, rules.problems
    problem = rules.problems[0]
    assert problem.startswith(f"{path}: ")
    for word in expect:
        assert word in problem
    ids = [r.id for r in rules.rules]
    assert ids[: len(PACK)] == [r.id for r in PACK]  # the pack still loads
    if "not valid YAML" not in expect:
        assert ids[len(PACK) :] == ["mine"]  # the good rule beside the bad one too
    # and it still finds things
    assert "exec-attach" in evaluate(store_of(tmp_path, "exec_pod.json"), rules.rules)[1]


def test_an_override_with_a_bad_field_keeps_the_pack_rule(monkeypatch, tmp_path):
    rules_file(monkeypatch, tmp_path, "rules:\n  - id: secret-get\n    severity: urgent\n")
    rules = load_rules()
    assert len(rules.problems) == 1 and "'secret-get' severity" in rules.problems[0]
    assert rules.by_id()["secret-get"] == RULE["secret-get"]


# -- image allow-lists --------------------------------------------------------------------------


def privileged_pod(images: list[str], init: list[str] = ()) -> dict:
    ev = copy.deepcopy(falco("create_nginx_pod_privileged.json")[0])
    spec = ev["requestObject"]["spec"]

    def container(k, image):
        return {"name": f"c{k}", "image": image, "securityContext": {"privileged": True}}

    spec["containers"] = [container(k, im) for k, im in enumerate(images)]
    if init:
        spec["initContainers"] = [{"name": f"i{k}", "image": im} for k, im in enumerate(init)]
    return ev


PROXY = "registry.k8s.io/kube-proxy:v1.30.0"
CILIUM = "quay.io/cilium/cilium:v1.15.1"


@pytest.mark.parametrize(
    ("images", "init", "fires"),
    [
        ([PROXY], [], False),
        ([PROXY, CILIUM], [], False),  # every image trusted
        ([PROXY, "nginx"], [], True),  # one trusted, one not
        ([PROXY], ["busybox"], True),  # an untrusted init container counts too
        (["registry.k8s.io/kube-proxy-evil:1"], [], False),  # glob: kube-proxy* matches
        (["evil.io/registry.k8s.io/kube-proxy:1"], [], True),  # globs are anchored
    ],
)
def test_privileged_pod_image_allow_list(tmp_path, images, init, fires):
    store = store_of(tmp_path, [privileged_pod(images, init)])
    assert (fired_rows(store, RULE["privileged-pod"]) is not None) is fires


# -- finding: in queries ------------------------------------------------------------------------


def test_finding_query_selects_exactly_the_hit_events(tmp_path):
    names = [
        "create_nginx_pod_privileged.json",
        "create_nginx_pod_unprivileged.json",
        "create_nginx_pod_hostnetwork.json",
        "exec_pod.json",
        "create_nginx_pod_privileged_2nd_container.json",
        "create_configmap.json",
    ]
    events = [e for n in names for e in falco(n)]
    store = store_of(tmp_path, events)
    assert len(select(store, "finding:privileged-pod")) == 0  # nothing attached yet
    fx = Findings(load_rules(False).rules)
    fx.update(store)
    fx.attach(store)
    assert sorted(select(store, "finding:privileged-pod")) == [0, 4]
    assert sorted(select(store, "finding:exec-attach")) == [3]
    assert sorted(select(store, "finding:*pod*")) == [0, 2, 4]  # privileged-, hostnetwork-pod
    assert sorted(select(store, "finding:*")) == [0, 2, 3, 4, 5]  # and configmap-created
    assert sorted(select(store, "finding:privileged-pod,exec-attach")) == [0, 3, 4]
    assert sorted(select(store, "finding:*pod* -finding:hostnetwork-pod")) == [0, 4]
    assert sorted(select(store, "-finding:*")) == [1]
    assert len(select(store, "finding:no-such-rule")) == 0


# -- audittui findings --------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exit_status_follows_min_severity(capsys):
    exec_pod = str(FALCO / "exec_pod.json")  # exec-attach: low
    code, out, _ = run_cli(capsys, "findings", exec_pod)
    assert code == 1 and "exec-attach" in out
    code, out, _ = run_cli(capsys, "findings", "--min-severity", "low", exec_pod)
    assert code == 1
    code, out, _ = run_cli(capsys, "findings", "--min-severity", "medium", exec_pod)
    assert code == 0 and "exec-attach" not in out and "0 finding(s)" in out
    unprivileged = str(FALCO / "create_nginx_pod_unprivileged.json")
    assert run_cli(capsys, "findings", "--min-severity", "info", unprivileged)[0] == 0


def test_cli_json_shape(capsys):
    path = str(FALCO / "create_nginx_pod_privileged.json")
    code, out, err = run_cli(capsys, "findings", "--format", "json", "--min-severity", "info", path)
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert list(doc) == ["findings", "blind"]
    assert [f["rule"] for f in doc["findings"]] == ["privileged-pod"]
    (finding,) = doc["findings"]
    (event,) = falco("create_nginx_pod_privileged.json")
    assert list(finding) == [
        "rule",
        "title",
        "severity",
        "techniques",
        "peers",
        "count",
        "first",
        "last",
        "users",
        "auditIDs",
    ]
    assert finding == {
        "rule": "privileged-pod",
        "title": "Create Privileged Pod",
        "severity": "high",
        "techniques": list(RULE["privileged-pod"].techniques),
        "peers": {pack: list(names) for pack, names in RULE["privileged-pod"].peers},
        "count": 1,
        "first": event["requestReceivedTimestamp"],
        "last": event["requestReceivedTimestamp"],
        "users": ["system:serviceaccount:kube-system:replicaset-controller"],
        "auditIDs": [event["auditID"]],
    }
    assert {b["rule"] for b in doc["blind"]} == {
        "credential-multi-ip",
        "new-user-agent",
        "new-source-ip",
        "secret-read-new-client",
        "denied-service-account-new-client",
        "self-subject-review-new-client",
        "forbidden-new-client",
        "new-decision-for-client",
        "anonymous-allowed-new-client",
        "workload-change-new-client",
        "wildcard-role-by-person",  # the log holds no role's body
    }
    assert all(list(b) == ["rule", "why"] and b["why"] for b in doc["blind"])


def test_cli_rules_none_ignores_the_users_file(capsys, monkeypatch, tmp_path):
    rules_file(monkeypatch, tmp_path, "disable: ['*']\n")
    exec_pod = str(FALCO / "exec_pod.json")
    assert run_cli(capsys, "findings", exec_pod)[0] == 0  # everything off
    code, out, _ = run_cli(capsys, "findings", "--rules", "none", exec_pod)
    assert code == 1 and "exec-attach" in out
    other = tmp_path / "other.yaml"
    other.write_text("disable: [exec-attach]\n")
    assert run_cli(capsys, "findings", "--rules", str(other), exec_pod)[0] == 0


def test_cli_list(capsys, monkeypatch, tmp_path):
    rules_file(monkeypatch, tmp_path, "enable: [admin-access]\n")
    code, out, err = run_cli(capsys, "findings", "--list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["SEVERITY", "ON", "RULE", "ATT&CK", "READS", "TITLE"]
    heads = [line for line in lines[1:] if not line.startswith(" ")]  # details are indented
    assert len(heads) == len(PACK)
    rows = {line.split()[2]: line.split()[:2] for line in heads}
    assert rows["admin-access"] == ["medium", "yes"]
    assert rows["disallowed-user"] == ["medium", "no"]
    assert rows["secret-get"] == ["low", "yes"]
    code, out, _ = run_cli(capsys, "findings", "--list", "--format", "json", "--rules", "none")
    listed = json.loads(out)["rules"]
    assert [r["id"] for r in listed] == [r.id for r in PACK]
    assert next(r for r in listed if r["id"] == "admin-access")["enabled"] is False


def test_cli_broken_rules_file_warns_and_still_runs(capsys, monkeypatch, tmp_path):
    rules_file(monkeypatch, tmp_path, "rules: [\n  - id: x\n")
    code, out, err = run_cli(capsys, "findings", str(FALCO / "exec_pod.json"))
    assert code == 1 and "exec-attach" in out
    assert err.startswith("audittui: rules: ") and "not valid YAML" in err


def test_cli_output_is_inert(capsys, tmp_path):
    hostile = "evil\x1b[31m\u202eroot"
    events = [
        req("create", "pods", sub="exec", name="web", code=101, user=hostile, at=k * S)
        for k in range(2)
    ]
    path = str(write(tmp_path, events))
    code, out, _ = run_cli(capsys, "findings", path)
    assert code == 1
    assert "\x1b" not in out and "\u202e" not in out
    assert "evil\\x1b[31m\\u202eroot" in out
    code, out, _ = run_cli(capsys, "findings", "--format", "json", path)
    assert "\x1b" not in out and "\u202e" not in out
    doc = json.loads(out)  # the same value, escaped
    assert doc["findings"][0]["users"] == [hostile]
    assert "\\u202e" in out and "\\u001b" in out


def test_cli_hostile_rules_file_content_is_inert(capsys, monkeypatch, tmp_path):
    rules_file(
        monkeypatch,
        tmp_path,
        'rules:\n  - id: "bad\\e[2J"\n    title: "\\u202e"\n    severity: low\n    query: x\n',
    )
    _, _, err = run_cli(capsys, "findings", str(FALCO / "exec_pod.json"))
    assert "bad" in err and "\x1b" not in err


def test_group_ids_beyond_packed_codes():
    """Codes too large to pack three to an int64 take the slower exact path: same groups."""
    from audittui.findings.windows import group_ids

    big = np.array([1 << 22, 5, 1 << 22, 5, 7], dtype=np.int64)
    other = np.array([1, 1, 1, 2, 1], dtype=np.int64)
    ids = group_ids([big, other], 5)
    assert ids[0] == ids[2] and len({ids[0], ids[1], ids[3], ids[4]}) == 4
    small = group_ids([big % 8, other], 5)
    assert small[0] == small[2] and len({small[0], small[1], small[3], small[4]}) == 4


def test_a_where_expression_that_fails_on_an_event_does_not_stop_the_others(
    tmp_path, monkeypatch, capsys
):
    """A bad regex in matches() (one the rule computes: one written in it is refused when the
    rule is loaded), or a JMESPath type error on one event, makes that rule not match it; the
    error is reported once; every other rule still runs."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    (config / "audittui").mkdir(parents=True)
    (config / "audittui" / "rules.yaml").write_text(
        "rules:\n"
        "  - {id: bad-regex, title: t, severity: high, query: 'verb:create',\n"
        "     stages: [ResponseStarted], where: \"matches(requestURI, join('', ['[']))\"}\n"
        "  - {id: type-error, title: t, severity: high, query: 'verb:create',\n"
        "     stages: [ResponseStarted], where: \"contains(objectRef.nothing, 'x')\"}\n"
    )
    path = str(FALCO / "exec_pod.json")
    store = load(path)
    findings = Findings(load_rules().rules)
    findings.update(store)
    assert [f.rule.id for f in findings.results(store)] == ["exec-attach"]
    assert set(findings.errors) == {"bad-regex", "type-error"}
    assert cli.main(["findings", path]) == 1
    err = capsys.readouterr().err
    assert "rule bad-regex: where failed" in err and "rule type-error: where failed" in err


# -- events without a level ---------------------------------------------------------------------


def test_an_event_without_a_level_is_judged_by_its_body(tmp_path):
    """SIEM exports and trimmed events drop "level": whether the body is there decides, not
    the missing level (a rule needing a body must still look, and must not fire without)."""
    spec = {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]}
    with_body = req("create", "pods", name="p", code=201, body={"spec": spec})
    without = req("create", "pods", name="q", code=201)
    for ev in (with_body, without):
        ev.pop("level")
    store = store_of(tmp_path, [with_body, without])
    assert store.value("level", 0) is None
    assert fired_rows(store, RULE["privileged-pod"]) == (1, [0])


# -- copies: a duplicate is one event -----------------------------------------------------------

BURST = build_rule(
    {
        "id": "burst",
        "title": "Burst of refusals",
        "severity": "medium",
        "query": "code:403",
        "threshold": {"window": "1m", "count": 10, "group_by": ["user"]},
    },
    {},
)


def write_lines(path: Path, events: list[dict], times: int = 1) -> Path:
    """``events`` as a log, each line written ``times`` times in a row."""
    path.write_bytes(b"".join((orjson.dumps(e) + b"\n") * times for e in events))
    return path


def test_a_line_written_twice_counts_once_toward_a_threshold(tmp_path):
    five = forbidden([k * S for k in range(5)])
    store = load(write_lines(tmp_path / "twice.log", five, times=2))
    assert len(store) == 10  # the copies are in the log, and in the store
    assert fired_rows(store, BURST) is None  # five requests are not ten
    # Ten distinct requests, each written twice, do fire: every copy is one of its events.
    ten = forbidden([k * S for k in range(10)])
    store = load(write_lines(tmp_path / "ten.log", ten, times=2))
    assert fired_rows(store, BURST) == (10, list(range(20)))
    # The same with a threshold of 5 on the first file: five requests, ten rows.
    store = load(write_lines(tmp_path / "twice.log", five, times=2))
    assert fired_rows(store, replace(BURST, threshold=replace(BURST.threshold, count=5))) == (
        5,
        list(range(10)),
    )


def test_an_overlapping_rotated_copy_counts_once(tmp_path):
    """A backup that overlaps the live file (the same lines in two files) is one event each;
    it makes no difference whether the second file is read before or after an update."""
    events = forbidden([k * S for k in range(10)])
    old = write_lines(tmp_path / "audit-old.log", events[:7])
    live = write_lines(tmp_path / "audit.log", events[3:])
    store = load(old, live)
    assert len(store) == 14
    count, rows = fired_rows(store, BURST)
    assert count == 10 and rows == list(range(14))
    eleven = replace(BURST, threshold=replace(BURST.threshold, count=11))
    assert fired_rows(store, eleven) is None
    # Read one file at a time, updating in between: the copies are found across updates.
    store = load(old)
    fx = Findings([BURST])
    fx.update(store)
    assert fx.results(store) == []
    read_sources(store, [store.add_source(open_source(1, str(live), store.spool))])
    fx.update(store)
    (finding,) = fx.results(store)
    assert finding.count == 10 and len(finding.rows) == 14


def test_events_sharing_an_auditid_and_stage_but_not_content_count_twice(tmp_path):
    """Identity is exact: the same auditID and stage with other content is another event."""
    pairs = []
    for k in range(5):
        for name in ("a", "b"):
            ev = req("list", "secrets", code=403, decision="forbid", user="mallory", at=k * S)
            ev["auditID"] = f"00000000-0000-4000-8000-{k:012d}"
            ev["objectRef"]["name"] = name
            pairs.append(ev)
    count, rows = fired_rows(load(write_lines(tmp_path / "pairs.log", pairs)), BURST)
    assert rows == list(range(10))
    assert count == 5  # a finding counts requests: one auditID is one request


def test_events_without_an_auditid_are_copies_only_when_byte_identical(tmp_path):
    refusal = req("list", "secrets", code=403, decision="forbid", user="mallory", name="s")
    same = [{k: v for k, v in refusal.items() if k != "auditID"} for _ in range(10)]
    # Ten identical lines without an auditID: one event.
    assert fired_rows(load(write_lines(tmp_path / "same.log", same)), BURST) is None
    # The same ten with one byte of difference each (the order of two keys): ten events.
    shuffled = []
    for k, ev in enumerate(same):
        keys = list(ev)
        if k % 2:
            keys[0], keys[1] = keys[1], keys[0]
        shuffled.append({key: ev[key] for key in keys})
    assert fired_rows(load(write_lines(tmp_path / "two.log", shuffled)), BURST) is None  # 2
    spaced = [dict(ev, userAgent="kubectl" + " " * k) for k, ev in enumerate(same)]
    assert fired_rows(load(write_lines(tmp_path / "ten.log", spaced)), BURST) == (
        10,
        list(range(10)),
    )
    # A finding without a threshold: one request for the ten copies.
    plain = replace(BURST, threshold=None)
    assert fired_rows(load(write_lines(tmp_path / "same.log", same)), plain) == (
        1,
        list(range(10)),
    )


def test_a_findings_users_count_copies_once(tmp_path):
    """Users are ranked by their events: alice's three requests written twice are three."""
    alice = [req("get", "secrets", name=f"a{k}", user="alice", at=k * S) for k in range(3)]
    bob = [req("get", "secrets", name=f"b{k}", user="bob", at=k * S) for k in range(4)]
    log = tmp_path / "audit.log"
    log.write_bytes(
        b"".join((orjson.dumps(e) + b"\n") * 2 for e in alice)
        + b"".join(orjson.dumps(e) + b"\n" for e in bob)
    )
    _, fired, _ = evaluate(load(log), [on("secret-get")])
    finding = fired["secret-get"]
    assert finding.users == ["bob", "alice"]
    assert finding.count == 7 and len(finding.rows) == 10


def test_a_distinct_threshold_and_first_seen_are_unchanged_by_copies(tmp_path):
    spec = [("a", 0), ("b", 3 * M), ("c", 6 * M)]
    once = load(write_lines(tmp_path / "once.log", reads(spec)))
    twice = load(write_lines(tmp_path / "twice.log", reads(spec), times=2))
    assert fired_rows(once, RAPID) == (3, [0, 1, 2])
    assert fired_rows(twice, RAPID) == (3, list(range(6)))
    two = load(write_lines(tmp_path / "two.log", reads(spec[:2]), times=3))
    assert fired_rows(two, RAPID) is None  # two secrets, however often
    events = pod_gets("alice", routine()) + pod_gets("alice", [(3 * H + M, {"ua": "curl/8.5.0"})])
    _, fired, _ = evaluate(load(write_lines(tmp_path / "ua.log", events, times=2)), [NEW_UA])
    assert fired["new-user-agent"].count == 1


def said(findings) -> dict:
    """What the findings say, whatever rows hold the events: counts, times, users, requests."""
    return {f.rule.id: (f.count, f.first, f.last, f.users, sorted(f.audit_ids)) for f in findings}


@pytest.mark.parametrize("seed", [3, 17])
def test_a_log_written_twice_or_overlapping_says_what_it_says_once(tmp_path, seed):
    """Every line twice, or two files overlapping by a third: the same findings as the log
    read once, for thresholds, distinct counts, first-seen values and plain rules alike."""
    rng = random.Random(seed)
    events = [ev for k in range(300) for ev in random_event(rng, k)]
    once = load(write_lines(tmp_path / "once.log", events))
    _, fired, _ = evaluate(once, STATEFUL_AND_FRIENDS)
    expected = said(fired.values())
    assert {"secrets-rapid-read", "forbidden-burst", "new-user-agent"} <= set(expected)
    twice = load(write_lines(tmp_path / "twice.log", events, times=2))
    _, fired, _ = evaluate(twice, STATEFUL_AND_FRIENDS)
    assert said(fired.values()) == expected
    third = len(events) // 3
    old = write_lines(tmp_path / "audit-1.log", events[: 2 * third])
    live = write_lines(tmp_path / "audit.log", events[third:])
    _, fired, _ = evaluate(load(old, live), STATEFUL_AND_FRIENDS)
    assert said(fired.values()) == expected
