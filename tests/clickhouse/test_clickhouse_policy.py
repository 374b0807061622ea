"""The policy lab over a ClickHouse store (clickhouse/policy.py) answers what audittui.policy
answers over the same events in memory, on the real 18.16 server and on chdb (``store_url``):
``check`` (every group, its count, its auditIDs in reading order, its example), ``simulate``
(every rule's events, drops and bytes, and the findings rules it would blind) and ``suggest``.

The events: the real samples (audit2rbac's demo, Panther's EKS, GKE and AKS events: flattened
shapes among them, which a check counts apart) and the demo generator's 5,000, in one file read
into memory and shipped into a table of its own. Two policies: GCE's default, and one whose
rules read names and non-resource paths from the request URI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_kit import fill, table
from conftest import REALDATA, SAMPLES

from audittui.clickhouse import policy as on_store
from audittui.clickhouse.reads import open_reader
from audittui.findings import Findings, load_rules
from audittui.index.evaluate import select
from audittui.index.loader import load
from audittui.policy import Policy
from audittui.policy import load as load_policy
from audittui.policy.check import check
from audittui.policy.simulate import simulate
from audittui.policy.suggest import suggest

SAMPLE_LOGS = [
    SAMPLES / "audit2rbac" / "demo.log",
    REALDATA / "panther-analysis" / "derived" / "eks.jsonl",
    REALDATA / "panther-analysis" / "derived" / "gke.jsonl",
    REALDATA / "panther-analysis" / "derived" / "aks.jsonl",
]
PACK = load_rules(False).rules
URI_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/version", "/openapi/*"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["configmaps", "secrets"]
        resourceNames: ["kube-proxy", "coredns", "cluster-info"]
  - level: Request
    userGroups: ["system:serviceaccounts"]
    namespaces: ["kube-system"]
  - level: None
    users: ["system:kube-scheduler"]
    verbs: ["get", "watch"]
  - level: Metadata
    omitStages: ["ResponseStarted"]
"""


def _log(folder: Path, samples: list[Path]) -> Path:
    """``samples`` and the demo's 5,000 events in one JSON-lines file (a line repeated in the
    samples is one row of a store: left out of the file, so both hold the same events)."""
    demo = folder / "demo.log"
    subprocess.run(
        [sys.executable, "-m", "audittui.demo", "big", "--events", "5000", str(demo)],
        check=True,
        capture_output=True,
    )
    path = folder / "audit.log"
    seen: set[bytes] = set()
    with path.open("wb") as out:
        for sample in samples:
            for line in sample.read_bytes().splitlines():
                if line.strip() and line not in seen:
                    seen.add(line)
                    out.write(line + b"\n")
        out.write(demo.read_bytes())
    return path


@pytest.fixture(scope="module")
def samples_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every sample (flattened and converted shapes among them) and the demo's events."""
    return _log(tmp_path_factory.mktemp("policy_samples"), SAMPLE_LOGS)


@pytest.fixture(scope="module")
def bare_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bare events only, one per line (audit2rbac's and the demo's): a store keeps each event,
    not the record it was read from, so the bytes a policy is simulated on are the event's,
    which for a wrapped or converted record (Panther's, GKE's) are not the line's. Bytes are
    compared on these."""
    return _log(tmp_path_factory.mktemp("policy_bare"), SAMPLE_LOGS[:1])


@pytest.fixture(params=["gce", "uri"])
def policy(request: pytest.FixtureRequest, tmp_path: Path) -> Policy:
    if request.param == "gce":
        return load_policy(SAMPLES / "policies" / "gce-default-policy.yaml")
    path = tmp_path / "policy.yaml"
    path.write_text(URI_POLICY)
    return load_policy(path)


def _filled(store_url: str, log: Path) -> str:
    """A table of its own holding the events of ``log``."""
    url = table(store_url)
    fill(url, log)
    return url


@pytest.fixture
def url(store_url: str, bare_log: Path) -> str:
    return _filled(store_url, bare_log)


@pytest.mark.parametrize("which", ["samples_log", "bare_log"])
def test_check_as_in_memory(request, store_url, which, policy):
    log_file = request.getfixturevalue(which)
    url = _filled(store_url, log_file)
    store = load(str(log_file))
    groups, checked, approximate = check(policy, store)
    want = [
        (
            g.rule,
            g.expected,
            g.logged,
            g.why,
            len(g.rows),
            store.values_at("audit_id", np.asarray(g.rows, dtype=np.int64)),
            store.value("uri", g.rows[0]) or "",
        )
        for g in groups
    ]
    with open_reader(url) as reader:
        got, got_checked, got_approximate = on_store.check(reader, policy)
    assert (got_checked, got_approximate) == (checked, approximate)
    assert checked > 5000  # plenty to compare
    assert approximate or which == "bare_log"  # the samples' flattened shapes are counted apart
    assert [
        (g.rule, g.expected, g.logged, g.why, g.count, g.audit_ids, g.example) for g in got
    ] == want
    assert want  # some disagreement to compare


def test_simulate_as_in_memory(url, bare_log, policy):
    store = load(str(bare_log))
    want = simulate(policy, store, Findings(PACK))
    with open_reader(url) as reader:
        got = on_store.simulate(reader, policy, PACK)
    assert got == want
    assert any(e.dropped for e in got.rules) and got.bytes_new < got.bytes_now


def test_simulate_over_some_events(url, bare_log, policy):
    store = load(str(bare_log))
    query = "verb:get,list resource:secrets,configmaps,pods"
    want = simulate(policy, store, None, select(store, query))
    with open_reader(url) as reader:
        got = on_store.simulate(reader, policy, None, query)
    assert got.rules == want.rules and got.bytes_new == want.bytes_new


def test_suggest_as_in_memory(url, bare_log):
    store = load(str(bare_log))
    for findings in (None, Findings(PACK)):
        want = suggest(store, findings, 10)
        with open_reader(url) as reader:
            got = on_store.suggest(reader, PACK if findings else None, 10)
        assert got == want
        assert got  # something suggested
