"""The access pack (secrets, credentials, identities, probing): the choices it makes where a peer
pack would cry wolf or miss (private addresses, controllers, refused requests, metrics
scraping, undated events in thresholds, lists that are the user's). Panther's own cases are
replayed with the other packs' in tests/findings/test_peer_packs.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from findings_kit import PACK, RULE, M, S, evaluate, on, req, store_of

from audittui.findings import load_rules

SA = "system:serviceaccount:"
ENABLED = [r for r in PACK if r.enabled]

# -- thresholds over events without a time ------------------------------------------------------


def undated(events: list[dict]) -> list[dict]:
    for ev in events:
        del ev["requestReceivedTimestamp"], ev["stageTimestamp"]
    return events


def failed_gets(n: int, user: str = "mallory", at: int = 0) -> list[dict]:
    return [
        req("get", "secrets", name=f"s{k}", code=403, decision="forbid", user=user, at=at + k * S)
        for k in range(n)
    ]


def test_undated_events_of_a_group_count_as_one_window(tmp_path):
    rule = on("secret-access-denied-burst")
    fired = evaluate(store_of(tmp_path, undated(failed_gets(20))), [rule])[1]
    assert fired["secret-access-denied-burst"].count == 20
    # one short, or split between two users: nothing
    assert evaluate(store_of(tmp_path, undated(failed_gets(19))), [rule])[1] == {}
    split = undated(failed_gets(10) + failed_gets(10, user="trudy"))
    assert evaluate(store_of(tmp_path, split), [rule])[1] == {}


def test_undated_events_never_share_a_window_with_dated_ones(tmp_path):
    rule = on("secret-access-denied-burst")
    events = undated(failed_gets(10)) + failed_gets(10, at=M)
    assert evaluate(store_of(tmp_path, events), [rule])[1] == {}


# -- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip, public",
    [
        ("44.238.138.237", True),
        ("2001:4860:4860::8888", True),
        ("10.128.5.42", False),
        ("172.20.1.15", False),
        ("172.32.0.1", True),  # just past 172.16.0.0/12
        ("192.168.10.20", False),
        ("100.64.3.4", False),  # CGNAT
        ("169.254.169.254", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("::ffff:10.1.2.3", False),
        ("::ffff:8.8.8.8", True),
        ("not-an-ip", False),
    ],
)
def test_anonymous_probe_is_reported_from_public_addresses_only(tmp_path, ip, public):
    ev = req("get", None, uri="/version", user="system:anonymous", ip=ip)
    fired = evaluate(store_of(tmp_path, [ev]), ENABLED)[1]
    assert ("anonymous-public-probe" in fired) is public
    assert "anonymous-allowed" not in fired  # /version is public information


def test_anonymous_read_of_the_api_is_reported_from_anywhere(tmp_path):
    ev = req("get", "pods", name="p", user="system:anonymous", ip="10.0.0.1")
    assert "anonymous-allowed" in evaluate(store_of(tmp_path, [ev]), ENABLED)[1]


def test_googles_health_checkers_may_probe_health_endpoints_only(tmp_path):
    def probe(uri: str) -> dict:
        return req("get", None, uri=uri, user="system:anonymous", ip="35.191.7.8")

    rule = on("anonymous-public-probe")
    assert evaluate(store_of(tmp_path, [probe("/readyz")]), [rule])[1] == {}
    assert "anonymous-public-probe" in evaluate(store_of(tmp_path, [probe("/api")]), [rule])[1]


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, code, fired",
    [
        ("mallory", 200, {"secrets-dump-all-namespaces"}),
        (f"{SA}dev:web", 200, {"secrets-dump-all-namespaces"}),  # a stolen token
        ("mallory", 403, {"secrets-dump-all-namespaces-attempt"}),
        (f"{SA}kube-system:namespace-controller", 200, set()),
        ("system:kube-controller-manager", 200, set()),
        ("system:node:node-1", 200, set()),
        ("eks:cloud-controller-manager", 200, set()),
        (f"{SA}ingress-nginx:ingress-nginx", 200, set()),
    ],
)
def test_cluster_wide_secret_list(tmp_path, user, code, fired):
    ids = {"secrets-dump-all-namespaces", "secrets-dump-all-namespaces-attempt"}
    for verb in ("list", "watch"):
        ev = req(verb, "secrets", ns=None, user=user, code=code)
        found = evaluate(store_of(tmp_path, [ev]), ENABLED)[1]
        assert set(found) & ids == fired, verb
    assert RULE["secrets-dump-all-namespaces"].severity == "critical"


def test_secrets_enumeration_counts_distinct_names_within_30_minutes(tmp_path):
    rule = on("secrets-enumeration")

    def gets(names: list[str], gap: int) -> list[dict]:
        return [req("get", "secrets", name=n, at=k * gap) for k, n in enumerate(names)]

    fifteen = [f"s{k}" for k in range(15)]
    assert "secrets-enumeration" in evaluate(store_of(tmp_path, gets(fifteen, 2 * M)), [rule])[1]
    # the same secret 30 times, or 15 spread over more than 30 minutes: not enumeration
    assert evaluate(store_of(tmp_path, gets(["db"] * 30, S)), [rule])[1] == {}
    assert evaluate(store_of(tmp_path, gets(fifteen, 3 * M)), [rule])[1] == {}


def test_denied_secret_read_by_a_script(tmp_path):
    rule = on("secret-denied-script")

    def denied(ua: str, user: str = "mallory", code: int = 403) -> list[dict]:
        return [req("get", "secrets", name="db", code=code, ua=ua, user=user)]

    for ua in ("curl/8.5.0", "python-requests/2.31.0", "OpenAPI-Generator/29.0.0/python"):
        assert "secret-denied-script" in evaluate(store_of(tmp_path, denied(ua)), [rule])[1]
    quiet = [
        denied("kubectl/v1.30.0"),
        denied("curl/8.5.0", code=200),
        denied("Go-http-client/2.0", user=f"{SA}kube-system:coredns"),
    ]
    for events in quiet:
        assert evaluate(store_of(tmp_path, events), [rule])[1] == {}


# -- system credentials from public addresses -----------------------------------------------------


def test_system_principal_from_a_public_address(tmp_path):
    rule = on("system-principal-public-ip")

    def fires(ev: dict) -> bool:
        return "system-principal-public-ip" in evaluate(store_of(tmp_path, [ev]), [rule])[1]

    assert fires(req("get", "pods", user=f"{SA}dev:web", ip="1.2.3.4"))
    assert fires(req("get", "pods", user="system:kube-scheduler", ip="1.2.3.4"))
    assert not fires(req("get", "pods", user="alice", ip="1.2.3.4"))
    assert not fires(req("get", "pods", user="system:anonymous", ip="1.2.3.4"))
    assert not fires(req("get", "pods", user=f"{SA}dev:web", ip="1.2.3.4", code=403))
    # one private address among them: a pod behind its node
    mixed = req("get", "pods", user=f"{SA}dev:web", ip="10.0.1.5")
    mixed["sourceIPs"].append("54.212.83.236")
    assert not fires(mixed)
    # EKS's managed add-on manager from its Lambda; the same name without that role fires
    lam = req("get", "deployments", user="eks:addon-manager", ip="35.163.244.48")
    arn = "arn:aws:sts::1:assumed-role/AWSWesleyClusterManagerLambda-Add-AddonManagerRole/s"
    lam["user"]["extra"] = {"arn": [arn]}
    assert not fires(lam)
    lam["user"]["extra"] = {"arn": ["arn:aws:sts::1:assumed-role/Attacker/s"]}
    assert fires(lam)


def test_a_node_is_trusted_on_its_clouds_address_only_by_the_events_enrichment(tmp_path):
    rule = on("system-principal-public-ip")
    node = req(
        "create",
        "leases",
        user="system:node:ip-10-0-0-1",
        groups=["system:nodes", "system:authenticated"],
        ip="54.212.83.236",
    )
    assert "system-principal-public-ip" in evaluate(store_of(tmp_path, [node]), [rule])[1]
    node["p_enrichment"] = {"ipinfo_asn": {"sourceIPs": [{"asn": "AS16509"}]}}
    assert evaluate(store_of(tmp_path, [node]), [rule])[1] == {}
    node["p_enrichment"] = {"ipinfo_asn": {"sourceIPs": [{"asn": "AS12345"}]}}
    assert "system-principal-public-ip" in evaluate(store_of(tmp_path, [node]), [rule])[1]


def user_rules(tmp_path: Path, text: str) -> list:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    rules = load_rules(path)
    assert rules.problems == []
    return [r for r in rules.rules if r.enabled]


def test_the_clusters_egress_is_the_users_list(tmp_path):
    events = [req("get", "pods", user=f"{SA}kube-system:metrics-server", ip="172.214.9.229")]
    store = store_of(tmp_path, events)
    assert "system-principal-public-ip" in evaluate(store, ENABLED)[1]
    mine = user_rules(tmp_path, "lists:\n  access_cluster_egress_ranges: [172.214.9.0/24]\n")
    assert "system-principal-public-ip" not in evaluate(store, mine)[1]


def test_ioc_lists_are_empty_until_the_user_fills_them(tmp_path):
    events = [
        req("get", "pods", ip="185.220.101.7"),
        req("get", "pods", ip="10.0.0.1", ua="sqlmap/1.8"),
        req("get", "pods", ip="10.0.0.2"),
    ]
    store = store_of(tmp_path, events)
    assert "ioc-match" not in evaluate(store, ENABLED)[1]
    mine = user_rules(
        tmp_path,
        "lists:\n  access_ioc_ips: [185.220.101.0/24]\n  access_ioc_user_agents: [sqlmap/*]\n",
    )
    assert evaluate(store, mine)[1]["ioc-match"].count == 2


# -- probing ----------------------------------------------------------------------------------


def test_forbidden_from_a_public_address(tmp_path):
    rule = on("forbidden-public-ip")

    def forbidden(ip: str, n: int, gap: int) -> list[dict]:
        return [req("get", "pods", code=403, ip=ip, user=f"u{k}", at=k * gap) for k in range(n)]

    # ten users from one address: grouped by the address
    assert (
        "forbidden-public-ip"
        in evaluate(store_of(tmp_path, forbidden("5.5.5.5", 10, 3 * M)), [rule])[1]
    )
    for events in (forbidden("5.5.5.5", 9, M), forbidden("10.0.27.115", 10, M)):
        assert evaluate(store_of(tmp_path, events), [rule])[1] == {}


def test_self_subject_review_by_a_workload(tmp_path):
    rule = on("self-subject-review-by-workload")

    def review(user: str, ua: str = "kubectl/v1.30.0", as_user: dict | None = None) -> list[dict]:
        ev = req(
            "create",
            "selfsubjectaccessreviews",
            api="authorization.k8s.io/v1",
            ns=None,
            code=201,
            user=user,
            ua=ua,
            as_user=as_user,
        )
        return [ev]

    fired = "self-subject-review-by-workload"
    assert fired in evaluate(store_of(tmp_path, review(f"{SA}dev:web")), [rule])[1]
    assert fired in evaluate(store_of(tmp_path, review("system:node:n1")), [rule])[1]
    impersonating = review("alice", as_user={"username": f"{SA}dev:web"})
    assert fired in evaluate(store_of(tmp_path, impersonating), [rule])[1]
    controller = review(f"{SA}dev:web", ua="operator/v0.0.0 (linux/amd64) kubernetes/$Format")
    assert evaluate(store_of(tmp_path, controller), [rule])[1] == {}
    assert evaluate(store_of(tmp_path, review("alice")), [rule])[1] == {}


def test_resource_discovery_is_distinct_kinds_per_user_and_address(tmp_path):
    rule = on("resource-discovery")
    kinds = ["namespaces", "nodes", "pods", "secrets", "clusterroles"]

    def walk(user: str, ips: list[str], gap: int = 10 * S, ua: str = "kubectl/v1.30.0") -> list:
        return [
            req("list", r, user=user, ip=ip, at=k * gap, ua=ua)
            for k, (r, ip) in enumerate(zip(kinds, ips, strict=True))
        ]

    assert (
        "resource-discovery"
        in evaluate(store_of(tmp_path, walk("mallory", ["1.1.1.1"] * 5)), [rule])[1]
    )
    quiet = [
        walk("mallory", ["1.1.1.1"] * 4 + ["2.2.2.2"]),  # two addresses
        walk("mallory", ["1.1.1.1"] * 5, gap=20 * S),  # over 80 s
        walk(f"{SA}kube-system:generic-garbage-collector", ["10.0.0.5"] * 5),
        walk(f"{SA}shop:operator", ["10.0.0.5"] * 5, ua="manager/v0.0.0 kubernetes/$Format"),
    ]
    # a workload's token used by hand walks like a person
    for ua in ("kubectl/v1.30.0", "curl/8.5.0"):
        store = store_of(tmp_path, walk(f"{SA}shop:operator", ["10.0.0.5"] * 5, ua=ua))
        assert "resource-discovery" in evaluate(store, [rule])[1], ua
    for events in quiet:
        assert evaluate(store_of(tmp_path, events), [rule])[1] == {}


def test_unauthenticated_and_refused_creates_are_apart_from_created_objects(tmp_path):
    events = [
        req("get", "pods", code=401, user=""),
        req("create", "pods", name="p", code=403, decision="forbid"),
        req("create", "serviceaccounts", sub="token", name="web", code=403, decision="forbid"),
    ]
    fired = evaluate(store_of(tmp_path, events), ENABLED)[1]
    assert {"unauthenticated-request", "create-denied", "token-request-attempt"} <= set(fired)
    assert "token-request" not in fired


# -- node proxy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, path, fires",
    [
        (f"{SA}monitoring:prometheus-k8s", "metrics", False),
        (f"{SA}monitoring:prometheus-k8s", "metrics/cadvisor", False),
        (f"{SA}monitoring:prometheus-k8s", "metrics/resource?timeout=10s", False),
        (f"{SA}monitoring:prometheus-k8s", "pods", True),
        (f"{SA}monitoring:prometheus-k8s", "run/default/web/web?cmd=id", True),
        (f"{SA}monitoring:prometheus-k8s", "metrics/../pods", True),
        ("alice", "metrics", False),  # Elastic leaves monitoring reads out, by anyone
        (f"{SA}dev:web", "metrics/cadvisor", False),
        ("alice", "healthz", False),
        ("alice", "stats/summary", False),
        ("alice", "configz", True),  # the kubelet's configuration: Elastic spares it, not this
        ("alice", "containerLogs/default/web/web", True),
        ("alice", "metrics-x", True),
    ],
)
def test_node_proxy_spares_monitoring_reads_only(tmp_path, user, path, fires):
    uri = f"/api/v1/nodes/node-1/proxy/{path}"
    ev = req("get", "nodes", sub="proxy", ns=None, name="node-1", user=user, uri=uri)
    assert ("node-proxy" in evaluate(store_of(tmp_path, [ev]), [on("node-proxy")])[1]) is fires


# -- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, ns, fires",
    [
        ("alice", "production", True),
        ("alice", "kube-system", True),
        ("system:kube-controller-manager", "production", True),
        ("system:kube-controller-manager", "kube-system", False),
        ("system:node:node-1", "production", False),
        (f"{SA}calico-system:calico-node", "calico-system", False),
    ],
)
def test_token_request(tmp_path, user, ns, fires):
    ev = req("create", "serviceaccounts", sub="token", ns=ns, name="web", code=201, user=user)
    assert (
        "token-request" in evaluate(store_of(tmp_path, [ev]), [on("token-request")])[1]
    ) is fires


def test_every_access_rule_has_techniques():
    text = (Path(__file__).parents[2] / "audittui/findings/pack/access.yaml").read_text()
    ids = [
        line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  - id:")
    ]
    assert len(ids) >= 30
    for rid in ids:
        assert RULE[rid].techniques, rid


def test_odd_shapes_in_the_exclusions_neither_crash_nor_hide(tmp_path):
    """user.extra, groups and a SIEM's enrichment in shapes the API server never writes: the
    where expression errs on none of them, and none of them spares the request."""
    rule = on("system-principal-public-ip")
    odd = []
    for extra, enrichment in [
        ("x", {"ipinfo_asn": {"sourceIPs": "AS16509"}}),
        ({"arn": "arn:aws:sts::1:assumed-role/AWSWesleyClusterManagerLambda"}, ["AS16509"]),
        ({"arn": [7]}, {"ipinfo_asn": {"sourceIPs": [{"asn": 16509}, None]}}),
    ]:
        ev = req("get", "pods", user="eks:addon-manager", ip="35.163.244.48", extra=extra)
        ev["p_enrichment"] = enrichment
        odd.append(ev)
    fx, fired, _ = evaluate(store_of(tmp_path, odd), [rule])
    assert fx.errors == {}
    assert fired["system-principal-public-ip"].count == 3
