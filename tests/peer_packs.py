"""The public detection packs' own cases, for replaying through audittui's findings.

Panther's Kubernetes, EKS and GKE rules carry unit tests (a ``Log`` and its ``ExpectedResult``);
the byte-exact copies are in ``../shared/realdata/panther-analysis/rules``. A case is replayed
by writing its events to a file, loading it as a user would and running the whole pack (every
enabled rule) over it; a rule of the pack answers for a Panther rule when its ``peers.panther``
names that RuleID.

Panther decides per event and counts to a ``Threshold`` afterwards: a positive of a rule whose
threshold is N is replayed as N requests like it (distinct auditIDs, one second apart), as
Panther would need to see them to alert.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from conftest import REALDATA

from audittui.findings import Finding, Findings, Rule
from audittui.index.loader import load

PANTHER = REALDATA / "panther-analysis" / "rules"
_files = itertools.count()


class _Loader(yaml.SafeLoader):
    """YAML without the timestamp resolver: Panther's times stay the strings it stores."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class PeerCase:
    pack: str  # panther | falco | elastic | sigma
    rule: str  # the peer rule's name as its pack spells it (Panther: the RuleID)
    name: str  # the case's name
    expected: bool  # the peer rule fires on it
    events: tuple[dict[str, Any], ...]
    source: str  # where the case comes from (repository path)

    @property
    def id(self) -> str:
        return f"{self.rule}: {self.name}"


def panther_cases() -> list[PeerCase]:
    """Every test of every Panther rule file, in file order."""
    cases = []
    for path in sorted(PANTHER.glob("*/*.yml")):
        doc = yaml.load(path.read_text(), Loader=_Loader)
        threshold = int(doc.get("Threshold") or 1)
        for test in doc.get("Tests") or []:
            expected = bool(test["ExpectedResult"])
            log = test["Log"]
            events = repeated(log, threshold) if expected else [log]
            cases.append(
                PeerCase(
                    "panther",
                    doc["RuleID"],
                    str(test["Name"]),
                    expected,
                    tuple(events),
                    f"panther-labs/panther-analysis rules/{path.parent.name}/{path.name}",
                )
            )
    return cases


def repeated(event: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``event`` as ``n`` distinct requests (their own auditIDs), as a threshold needs."""
    if n <= 1:
        return [event]
    out = []
    for k in range(n):
        ev = copy.deepcopy(event)
        audit_id = f"00000000-0000-4000-8000-{k:012d}"
        inner = (
            ev.get("properties", {}).get("log") if isinstance(ev.get("properties"), dict) else None
        )
        if "protoPayload" in ev:  # a GKE LogEntry: the request is its insertId
            ev["insertId"] = f"{ev.get('insertId', 'replay')}-{k}"
        elif isinstance(inner, str):  # an AKS record: the event is a JSON string inside
            ev["properties"]["log"] = orjson.dumps(
                orjson.loads(inner) | {"auditID": audit_id}
            ).decode()
        elif isinstance(inner, dict):
            inner["auditID"] = audit_id
        else:
            ev["auditID"] = audit_id
        out.append(ev)
    return out


def run(directory: Path, events: tuple[dict[str, Any], ...] | list[dict], rules: list[Rule]):
    """The findings of ``rules`` over ``events`` written as a log file: {rule id: Finding}."""
    path = directory / f"case-{next(_files)}.log"
    path.write_bytes(b"".join(orjson.dumps(ev) + b"\n" for ev in events))
    store = load(path)
    fx = Findings(rules)
    fx.update(store)
    return {f.rule.id: f for f in fx.results(store)}, store


def answering(rules: list[Rule], pack: str, name: str) -> list[Rule]:
    """The rules of ``rules`` that name ``name`` among their ``pack`` peers."""
    return [r for r in rules if name in dict(r.peers).get(pack, ())]


def fired_for(found: dict[str, Finding], rules: list[Rule], pack: str, name: str) -> list[str]:
    """The ids of the rules answering for the peer rule that fired."""
    return [r.id for r in answering(rules, pack, name) if r.id in found]
