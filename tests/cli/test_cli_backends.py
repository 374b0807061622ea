"""Every command over files and over a store holding the same events prints the same: stdout and
exit status, text and JSON. Run over chdb and the real 18.16 server (``store_url``). The events are
bare (not in GKE's or AKS's wrappers, whose bytes a store does not keep).

What may differ, and why (normalised here, nothing else): a summary's
ties (rows of equal count, verbs of equal count, the most frequent IP among equal ones: by
reading order in memory, by text on a server: compared as sets of rows); a finding's users of
equal count and the auditIDs of a finding or a disagreement (ties in time: compared as sets).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from backend_kit import BARE, fill, table, write_events
from conftest import SAMPLES

from audittui.analyses.summary import GROUPINGS
from audittui.backend.open import open_backend
from audittui.cli import main as cli

POLICY = SAMPLES / "policies" / "gce-default-policy.yaml"


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli_backends")
    demo = folder / "demo.log"
    subprocess.run(
        [sys.executable, "-m", "audittui.demo", "big", "--events", "3000", str(demo)],
        check=True,
        capture_output=True,
    )
    return write_events(folder / "audit.log", [demo], samples=BARE)


@pytest.fixture
def url(store_url: str, log_file: Path) -> str:
    full = table(store_url)
    fill(full, log_file)
    return full


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def same(capsys: pytest.CaptureFixture[str], log_file: Path, url: str, *argv: str) -> str:
    """Run ``argv`` over the file and over the store: equal exit status and stdout, nothing
    on the store's stderr the file's lacks; the output."""
    fc, fout, ferr = run(capsys, *argv, str(log_file))
    sc, sout, serr = run(capsys, *argv, url)
    assert sc == fc, (argv, serr)
    assert sout == fout, argv
    assert serr == ferr, argv
    return sout


@pytest.fixture(scope="module")
def objects(log_file: Path) -> list[tuple[str, str]]:
    """Busy objects of the log: (RESOURCE, NS/NAME) as ``history`` takes them."""
    backend = open_backend([str(log_file)])
    out = []
    try:
        for name, _ in backend.values("name", "", 30):
            if any(c in name for c in "\"'\\ "):
                continue
            rows = backend.page(f"name:{name} verb:create,update,patch", None, False, 1)
            if rows:
                v = rows[0].values
                out.append((str(v.get("resource")), f"{v.get('namespace') or '-'}/{name}"))
    finally:
        backend.close()
    return out[:6]


@pytest.fixture(scope="module")
def users(log_file: Path) -> list[str]:
    backend = open_backend([str(log_file)])
    try:
        return [str(r["key"]) for r in backend.summary("", "user", 8) if not r["missing"]]
    finally:
        backend.close()


def test_history_of_busy_objects(capsys, log_file, url, objects):
    assert objects
    for resource, target in objects:
        for extra in ((), ("--format", "json"), ("--reads",), ("--all-fields", "--reveal")):
            out = same(capsys, log_file, url, "history", resource, target, *extra)
            assert out
    same(capsys, log_file, url, "history", "pods", "nowhere/nothing-at-all")


def test_rbac_of_each_subject(capsys, log_file, url, users):
    assert users
    for user in users:
        for extra in ((), ("--format", "json"), ("--clean",), ("--clean", "--include-denied"),
                      ("--diff",), ("--diff", "--format", "json")):  # fmt: skip
            same(capsys, log_file, url, "rbac", "--user", user, *extra)
    same(capsys, log_file, url, "rbac", "--user", users[0], "-n", "kube-system")
    same(capsys, log_file, url, "rbac", "--serviceaccount", "kube-system:default")
    same(capsys, log_file, url, "rbac", "--user", "nobody-at-all")


def test_query_counts_and_a_summary_without_ties(capsys, log_file, url):
    for q in ("", "verb:delete", "resource:secrets", "code:>=400", "ns:kube-system -verb:get"):
        same(capsys, log_file, url, "query", "-q", q, "--format", "count")
    out = same(capsys, log_file, url, "summary", "--by", "verb", "--top", "1")
    assert out.count("\n") >= 3
    same(capsys, log_file, url, "query", "-q", "user:nobody-at-all")
    same(capsys, log_file, url, "query", "-q", "verb:(", "--format", "count")  # a bad query


def test_query_prints_the_same_events_in_the_same_order(capsys, log_file, url):
    """Events of equal time too: a store prints them in reading order (source, offset)."""
    for q in ("", "verb:get,list", "resource:secrets,configmaps", "code:>=400"):
        for fmt in ("table", "jsonl", "json"):
            assert same(capsys, log_file, url, "query", "-q", q, "--format", fmt), (q, fmt)
    same(capsys, log_file, url, "query", "-q", "resource:secrets", "--reveal", "--format", "jsonl")


def test_summary_rows_are_the_same(capsys, log_file, url):
    """Every grouping, printed exactly alike: ties (rows, verbs, the top IP of equal counts)
    fall by text on both."""
    for by in GROUPINGS:
        for fmt in ("table", "json"):
            same(capsys, log_file, url, "summary", "--by", by, "--format", fmt)
        same(capsys, log_file, url, "summary", "--by", by, "--top", "3")
    same(capsys, log_file, url, "summary", "--by", "user", "--latency")
    same(capsys, log_file, url, "summary", "--by", "verb", "--latency", "--format", "json")


def _ids_as_sets(doc: dict) -> dict:
    for d in doc.get("disagreements", []):
        d["auditIDs"] = sorted(d["auditIDs"], key=str)
    for f in doc.get("findings", []):
        f["auditIDs"] = sorted(f["auditIDs"], key=str)
        f["users"] = sorted(f["users"])
    return doc


def test_policy_lab(capsys, log_file, url):
    for fmt in ("table", "json"):
        same(capsys, log_file, url, "policy", "simulate", str(POLICY), "--format", fmt)
        same(capsys, log_file, url, "policy", "simulate", str(POLICY), "--rules", "none",
             "--format", fmt)  # fmt: skip
    for fmt in ("yaml", "json"):
        same(capsys, log_file, url, "policy", "suggest", "--top", "5", "--format", fmt)
    fc, fout, _ = run(capsys, "policy", "check", str(POLICY), "--format", "json", str(log_file))
    sc, sout, _ = run(capsys, "policy", "check", str(POLICY), "--format", "json", url)
    assert sc == fc
    assert _ids_as_sets(json.loads(sout)) == _ids_as_sets(json.loads(fout))


def test_findings(capsys, log_file, url):
    for severity in ("low", "high"):
        argv = ("findings", "--min-severity", severity, "--format", "json", "--rules", "none")
        fc, fout, _ = run(capsys, *argv, str(log_file))
        sc, sout, _ = run(capsys, *argv, url)
        assert sc == fc
        assert _ids_as_sets(json.loads(sout)) == _ids_as_sets(json.loads(fout))


def test_stats_agree_on_what_both_know(capsys, log_file, url):
    fc, fout, _ = run(capsys, "stats", "--format", "json", str(log_file))
    sc, sout, _ = run(capsys, "stats", "--format", "json", url)
    f, s = json.loads(fout), json.loads(sout)
    assert sc == fc == 0
    assert (s["events"], s["first"], s["last"]) == (f["events"], f["first"], f["last"])
    assert s["malformed"] is None and s["store"]  # a store says what it cannot know


def test_a_store_without_a_capability_says_so_in_one_line(capsys, url):
    for argv in (("query", "-q", "finding:k8s-exec"), ("stats", "--malformed")):
        code, out, err = run(capsys, *argv, url)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, argv
        assert "Traceback" not in err


def test_rule_terms_select_the_same_events(capsys, log_file, url):
    """rule:N (the events a policy's rule N decides) on a store: its distinct attribute tuples
    decided as in memory, the same events printed."""
    printed = [
        same(capsys, log_file, url, "query", f"--query={query}", "--policy", str(POLICY))
        for query in ("rule:0", "rule:1,2 verb:get", "-rule:none", "rule:none")
    ]
    assert sum(bool(p.strip()) for p in printed) >= 2  # events were selected, not only none
