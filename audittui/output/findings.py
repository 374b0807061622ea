"""What ``audittui findings`` prints about rules and findings: ``--list`` as a table that fits
120 columns (one line a rule, then indented lines for its peers, when it can be blind and what it
excludes) or as JSON, and a fired finding as JSON. Rule text can come from the user's rules
file, so every string is made inert here (the JSON by :func:`~.terminal.write_json`)."""

from __future__ import annotations

import textwrap
from typing import Any, Protocol

from ..findings import Rule
from ..findings.attack import technique_name
from ..findings.engine import blind_when, exclusions, reads
from ..ingest.formats import format_duration, format_time
from .inert import fit, inert, pad

WIDTH = 120
# (header, width) of the first line of each rule; the title takes what is left of WIDTH.
COLUMNS = (("SEVERITY", 8), ("ON", 3), ("RULE", 30), ("ATT&CK", 15), ("READS", 12))
INDENT = 13  # detail lines start under the RULE column
SHOWN = 4  # allow-list patterns shown in the table (the JSON has them all)


def rule_document(rule: Rule) -> dict[str, Any]:
    """Everything a rule says, for ``findings --list --format json``."""
    t, f = rule.threshold, rule.first_seen
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity,
        "enabled": rule.enabled,
        "source": rule.source,
        "description": rule.description,
        "techniques": list(rule.techniques),
        "technique_names": {x: technique_name(x) or None for x in rule.techniques},
        "peers": {pack: list(names) for pack, names in rule.peers},
        "needs": list(rule.needs),
        "reads": reads(rule),
        "blind_when": blind_when(rule),
        "exclusions": exclusions(rule),
        "query": rule.query,
        "where": rule.where or None,
        "threshold": None
        if t is None
        else {
            "window": format_duration(t.window),
            "count": t.count,
            "group_by": list(t.group_by),
            "distinct": t.distinct,
        },
        "first_seen": None
        if f is None
        else {"key": list(f.key), "value": f.value, "learn": format_duration(f.learn)},
    }


class Fired(Protocol):
    """A fired rule as a finding's JSON reads it (engine.Finding, a backend's Fired)."""

    rule: Rule
    count: int
    first: int
    last: int
    users: list[str]

    @property
    def audit_ids(self) -> list[str]: ...


def finding_document(f: Fired) -> dict[str, Any]:
    """A fired rule, for ``findings --format json``."""
    return {
        "rule": f.rule.id,
        "title": f.rule.title,
        "severity": f.rule.severity,
        "techniques": list(f.rule.techniques),
        "peers": {pack: list(names) for pack, names in f.rule.peers},
        "count": f.count,
        "first": format_time(f.first),
        "last": format_time(f.last),
        "users": f.users,
        "auditIDs": f.audit_ids,
    }


def rule_table(rules: list[Rule], width: int = WIDTH) -> list[str]:
    """The ``--list`` table: a header, then per rule (most severe first) its line and its
    details, each line at most ``width`` cells, inert."""
    title_width = width - sum(w + 1 for _, w in COLUMNS)
    lines = [" ".join(pad(h, w) for h, w in COLUMNS) + " TITLE"]
    for r in sorted(rules, key=lambda r: (r.rank, r.id)):
        cells = (
            r.severity,
            "yes" if r.enabled else "no",
            r.id,
            " ".join(r.techniques) or "-",
            "+".join(reads(r)),
        )
        head = " ".join(pad(fit(inert(c), w), w) for c, (_, w) in zip(cells, COLUMNS, strict=True))
        lines.append(f"{head} {fit(inert(r.title), title_width)}")
        for label, text in _details(r):
            lines += textwrap.wrap(
                inert(text),
                width,
                initial_indent=" " * INDENT + label + " ",
                subsequent_indent=" " * (INDENT + len(label) + 1),
                break_on_hyphens=False,
            )
    return lines


def _details(rule: Rule) -> list[tuple[str, str]]:
    out = []
    if rule.peers:
        out.append(("peers:", "; ".join(f"{p} {', '.join(n)}" for p, n in rule.peers)))
    why = blind_when(rule)
    if why:
        out.append(("blind when:", why))
    ex = exclusions(rule)
    parts = []
    for key, patterns in ex.get("allow", {}).items():
        more = f" +{len(patterns) - SHOWN} more" if len(patterns) > SHOWN else ""
        parts.append(f"allowed {key} {', '.join(patterns[:SHOWN])}{more}")
    parts += [f"query -{e['field']}:${e['list']}" for e in ex.get("query", [])]
    if parts:
        out.append(("excludes:", "; ".join(parts)))
    return out
