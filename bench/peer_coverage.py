"""How much of Falco's, Panther's, Elastic's and Sigma's Kubernetes audit detections the
shipped pack answers for: every peer case replayed as tests/findings/test_peer_packs.py replays it.

Per pack: rules covered (a peer rule is covered when a rule of the pack names it in its peers
and every in-scope positive of it fires), positives fired, negatives fired (strict: a rule
answering for that peer rule fired; loose: any rule of severity medium or above fired), and
the misses. Out-of-scope cases (tests/peer_cases/out_of_scope.yaml, and the Elastic and Sigma
rules listed out of scope) are counted apart. Falco is its own regression suite: cases passed.

    python -m bench.peer_coverage              # a table and the misses
    python -m bench.peer_coverage --format json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import peer_packs as pp  # noqa: E402  (tests/ on the path first)

from audittui.findings import Rule, load_rules  # noqa: E402


def measure_pack(pack: str, cases: list[pp.PeerCase], rules: list[Rule], tmp: Path) -> dict:
    """The figures of one pack of written or shipped cases."""
    out = pp.out_of_scope()
    by_rule: dict[str, list[pp.Outcome]] = defaultdict(list)
    outside: list[dict[str, Any]] = []
    for case in cases:
        outcome = pp.replay(tmp, case, rules)
        listed = out.get(f"{pack}/{case.id}")
        if listed is not None:
            outside.append(
                {
                    "case": case.id,
                    "reason": listed["reason"],
                    "as_listed": outcome.fires is listed["fires"],
                }
            )
            continue
        by_rule[case.rule].append(outcome)
    rule_names = sorted({c.rule for c in cases})
    scoped = [r for r in rule_names if any(o.case.expected for o in by_rule[r])]
    covered = [
        r
        for r in scoped
        if any(o.answering for o in by_rule[r])
        and all(o.fires for o in by_rule[r] if o.case.expected)
    ]
    pos = [o for r in rule_names for o in by_rule[r] if o.case.expected]
    neg = [o for r in rule_names for o in by_rule[r] if not o.case.expected]
    unscoped = {}
    if pack in ("elastic", "sigma"):
        unscoped = pp.written_rules(pack)[1]
    unscoped.update({r: "every positive out of scope" for r in rule_names if r not in scoped})
    return {
        "pack": pack,
        "rules": len(scoped),
        "rules_out_of_scope": unscoped,
        "covered": len(covered),
        "positives": len(pos),
        "positives_fired": sum(o.fires for o in pos),
        "negatives": len(neg),
        "negatives_fired": sum(o.fires for o in neg),
        "negatives_fired_loose": sum(bool(o.loud) for o in neg),
        "uncovered": [r for r in scoped if r not in covered],
        "unanswered": [r for r in scoped if not any(o.answering for o in by_rule[r])],
        "missed_positives": [o.case.id for o in pos if not o.fires],
        "unread_positives": [o.case.id for o in pos if not o.loaded],
        "fired_negatives": [{"case": o.case.id, "fired": list(o.fired)} for o in neg if o.fires],
        "loud_negatives": [{"case": o.case.id, "fired": list(o.loud)} for o in neg if o.loud],
        "out_of_scope_cases": outside,
    }


def measure_falco(tmp: Path) -> dict:
    """Falco's suite: cases passed; its rules with a detect count, covered when every case
    counting it passes."""
    meaning = pp.falco_meaning()
    cases = pp.falco_cases()
    outcomes = [pp.replay_falco(tmp, c, meaning) for c in cases]
    named: dict[str, list[bool]] = defaultdict(list)
    for o in outcomes:
        for rule, _, _ in o.counts:
            named[rule].append(o.passed)
    positives = [o for o in outcomes if o.case.detect]
    negatives = [o for o in outcomes if not o.case.detect]
    pack = load_rules(False).rules
    shipped = meaning["files"]["k8s_audit_rules.yaml"]["rules"]
    return {
        "pack": "falco",
        "cases": len(outcomes),
        "cases_passed": sum(o.passed for o in outcomes),
        "rules": len(named),
        "covered": sum(all(v) for v in named.values()),
        "positives": len(positives),
        "positives_fired": sum(o.passed for o in positives),
        "negatives": len(negatives),
        "negatives_fired": sum(not o.passed for o in negatives),
        "k8saudit_rules_answered": sum(bool(pp.answering(pack, "falco", n)) for n in shipped),
        "k8saudit_rules": len(shipped),
        "failed": [
            {"case": o.case.name, "counts": o.counts, "unexpected": o.unexpected}
            for o in outcomes
            if not o.passed
        ],
    }


def measure() -> list[dict]:
    rules = load_rules(False).rules
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        return [
            measure_falco(d),
            measure_pack("panther", pp.panther_cases(), rules, d),
            measure_pack("elastic", pp.written_cases("elastic"), rules, d),
            measure_pack("sigma", pp.written_cases("sigma"), rules, d),
        ]


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.0f}%)" if d else "0/0"


def report(figures: list[dict]) -> str:
    lines = [
        f"{'pack':8} {'rules covered':18} {'positives fired':18} {'negatives fired':18} loose",
    ]
    for f in figures:
        loose = "" if f["pack"] == "falco" else _pct(f["negatives_fired_loose"], f["negatives"])
        lines.append(
            f"{f['pack']:8} {_pct(f['covered'], f['rules']):18} "
            f"{_pct(f['positives_fired'], f['positives']):18} "
            f"{_pct(f['negatives_fired'], f['negatives']):18} {loose}"
        )
    falco = figures[0]
    lines.append(
        f"\nfalco: {falco['cases_passed']}/{falco['cases']} cases of its k8s-audit suite pass; "
        f"{falco['k8saudit_rules_answered']}/{falco['k8saudit_rules']} rules of "
        "k8s_audit_rules.yaml have a rule of the pack answering"
    )
    for c in falco["failed"]:
        lines.append(f"  failed {c['case']}: {c['counts']} {c['unexpected']}")
    for f in figures[1:]:
        lines.append(f"\n{f['pack']}:")
        if f["rules_out_of_scope"]:
            lines.append(f"  out of scope ({len(f['rules_out_of_scope'])} rules):")
            lines += [f"    {r}: {why}" for r, why in f["rules_out_of_scope"].items()]
        if f["out_of_scope_cases"]:
            lines.append(f"  out-of-scope cases ({len(f['out_of_scope_cases'])}):")
            for c in f["out_of_scope_cases"]:
                state = "as listed" if c["as_listed"] else "NOT AS LISTED: update the list"
                lines.append(f"    {c['case']} ({state})")
        if f["unanswered"]:
            lines.append(f"  no rule of the pack names ({len(f['unanswered'])}):")
            lines += [f"    {r}" for r in f["unanswered"]]
        missed = [m for m in f["missed_positives"] if m.split(": ")[0] not in f["unanswered"]]
        if missed:
            lines.append(f"  positives missed, rule answered ({len(missed)}):")
            lines += [f"    {m}" for m in missed]
        if f["unread_positives"]:
            lines.append(
                f"  positives the loader read no event from ({len(f['unread_positives'])}):"
            )
            lines += [f"    {m}" for m in f["unread_positives"]]
        if f["fired_negatives"]:
            lines.append(f"  negatives fired ({len(f['fired_negatives'])}):")
            lines += [f"    {n['case']} ← {', '.join(n['fired'])}" for n in f["fired_negatives"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    figures = measure()
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(report(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
