"""The public detection packs' own cases, for replaying through audittui's findings.

Panther's Kubernetes, EKS and GKE rules carry unit tests (a ``Log`` and its ``ExpectedResult``);
the byte-exact copies are in ``../shared/realdata/panther-analysis/rules``. A case is replayed
by writing its events to a file, loading it as a user would and running the whole pack (every
enabled rule) over it; a rule of the pack answers for a Panther rule when its ``peers.panther``
names that RuleID.

Panther decides per event and counts to a ``Threshold`` afterwards: a positive of a rule whose
threshold is N is replayed as N requests like it (distinct auditIDs; the times as the test
wrote them, mostly none), as Panther would need to see them to alert.

Elastic and Sigma ship no test events: ``peer_cases/elastic.yaml`` and ``sigma.yaml`` hold
events written from each rule's query (compact specs, filled in by :func:`event`). Falco's own
k8s-audit regression suite (``falco_cases``) is replayed with the rules files each case loads
said as the user's rules.yaml (``peer_cases/falco.yaml``). Cases audittui cannot decide from a
log are in ``peer_cases/out_of_scope.yaml`` with the reason. ``bench/peer_coverage.py`` prints
the figures; ``test_peer_packs.py`` holds every case.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from conftest import REALDATA, SAMPLES

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
            unique = doc["RuleID"] in PANTHER_UNIQUE_NAME
            events = repeated(log, threshold, unique) if expected else [log]
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


# Panther rules whose threshold counts distinct values of a field (their unique() function):
# Kubernetes.BulkSecretAccess returns the secret's name (panther-labs/panther-analysis,
# rules/kubernetes_rules/k8s_secret_enumeration.py), so it alerts on 15 distinct secrets.
PANTHER_UNIQUE_NAME = {"Kubernetes.BulkSecretAccess"}


def repeated(event: dict[str, Any], n: int, unique_name: bool = False) -> list[dict[str, Any]]:
    """``event`` as ``n`` distinct requests (their own auditIDs), as a threshold needs; with
    ``unique_name``, each on an object of its own name (native events with a name)."""
    if n <= 1:
        return [event]
    out = []
    for k in range(n):
        ev = copy.deepcopy(event)
        ref = ev.get("objectRef")
        if unique_name and isinstance(ref, dict) and ref.get("name"):
            ref["name"] = f"{ref['name']}-{k}"
        audit_id = f"00000000-0000-4000-8000-{k:012d}"
        props = ev.get("properties")
        if "protoPayload" in ev:  # a GKE LogEntry: the request is its insertId
            ev["insertId"] = f"{ev.get('insertId', 'replay')}-{k}"
        elif isinstance(props, dict) and "log" in props:
            # an AKS diagnostic record: the request is the event in properties.log (a JSON
            # string or an object); an auditID beside it would be ignored
            log = props["log"]
            inner = orjson.loads(log) if isinstance(log, str) else log
            inner["auditID"] = audit_id
            props["log"] = orjson.dumps(inner).decode() if isinstance(log, str) else inner
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


# -- what a replay found ------------------------------------------------------------------------

LOUD = 2  # rank of "medium": the looser view counts any rule this severe or more


def peer_names(rule: Rule, pack: str) -> tuple[str, ...]:
    """The ``pack`` rules ``rule`` answers for (its ``peers``)."""
    return tuple(dict(rule.peers).get(pack, ()))


def answering(rules: list[Rule], pack: str, name: str) -> list[Rule]:
    """The rules of ``rules`` that name ``name`` among their ``pack`` peers."""
    return [r for r in rules if name in peer_names(r, pack)]


def fired_for(found: dict[str, Finding], rules: list[Rule], pack: str, name: str) -> list[str]:
    """The ids of the rules answering for the peer rule that fired."""
    return [r.id for r in answering(rules, pack, name) if r.id in found]


@dataclass(frozen=True)
class Outcome:
    """One case replayed: which pack rules answer for its peer rule, which of them fired, and
    which rules of severity medium or above fired at all (the looser view of a negative)."""

    case: PeerCase
    answering: tuple[str, ...]
    fired: tuple[str, ...]
    loud: tuple[str, ...]
    loaded: int  # events the loader read from the case's file

    @property
    def fires(self) -> bool:
        return bool(self.fired)

    @property
    def passed(self) -> bool:
        return self.fires == self.case.expected


def replay(directory: Path, case: PeerCase, rules: list[Rule]) -> Outcome:
    """``case`` through the loader and every enabled rule of ``rules``."""
    found, store = run(directory, case.events, rules)
    names = answering(rules, case.pack, case.rule)
    return Outcome(
        case,
        tuple(r.id for r in names),
        tuple(r.id for r in names if r.id in found),
        tuple(sorted(i for i, f in found.items() if f.rule.rank <= LOUD)),
        len(store),
    )


# -- cases written here: Elastic's and Sigma's rules, from their logic -------------------------

PEER_CASES = Path(__file__).with_name("peer_cases")
_REQ_KEYS = {
    "verb", "resource", "sub", "ns", "name", "api", "code", "user", "groups", "ip", "ua",
    "stage", "body", "level", "decision", "extra", "as_user", "uri",
}  # fmt: skip


def event(spec: dict[str, Any], k: int = 0) -> dict[str, Any]:
    """One audit event from a compact spec (tests/peer_cases/README in elastic.yaml's head):
    the keywords of :func:`findings_kit.req` (``at`` in seconds), ``gke:`` for a GKE
    LogEntry, ``set:`` for dotted fields to put on the result (None removes)."""
    from findings_kit import S, req  # the pack loads on import: only when cases are built

    if "gke" in spec:
        ev = gke(spec["gke"], k)
    else:
        unknown = set(spec) - _REQ_KEYS - {"at", "set", "repeat", "vary"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} in {spec}")
        kw = {key: value for key, value in spec.items() if key in _REQ_KEYS}
        kw.setdefault("verb", "get")
        kw.setdefault("resource", None)
        ev = req(at=int((spec.get("at", 0) + k) * S), **kw)
        ref = ev.get("objectRef") or {}
        if "/" in ref.get("apiVersion", ""):  # as the API server writes it: group, version
            ref["apiGroup"], ref["apiVersion"] = ref["apiVersion"].rsplit("/", 1)
    for path, value in (spec.get("set") or {}).items():
        _put(ev, path, value)
    return ev


def _put(ev: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("|") if "|" in path else path.split(".")
    for key in parents:
        ev = ev.setdefault(key, {})
    if value is None:
        ev.pop(last, None)
    else:
        ev[last] = value


def gke(spec: dict[str, Any], k: int = 0) -> dict[str, Any]:
    """A GKE Cloud Logging entry (``serviceName: k8s.io``) from method, resource, user, granted
    and an optional request body."""
    granted = spec.get("granted", True)
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "k8s.io",
        "methodName": spec["method"],
        "resourceName": spec["resource"],
        "authenticationInfo": {"principalEmail": spec.get("user", "alice@example.com")},
        "authorizationInfo": [
            {"granted": granted, "permission": spec["method"], "resource": spec["resource"]}
        ],
        "requestMetadata": {"callerIp": spec.get("ip", "10.0.0.1"), "callerSuppliedUserAgent":
                            spec.get("ua", "kubectl/v1.30.0")},
        "status": {} if granted else {"code": 7, "message": "PERMISSION_DENIED"},
    }  # fmt: skip
    if "body" in spec:
        payload["request"] = spec["body"]
    return {
        "insertId": f"replay-{next(_files)}-{k}",
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": payload,
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "c1", "project_id": "p"}},
        "timestamp": f"2024-05-01T10:{k // 60:02d}:{k % 60:02d}.000000Z",
        "receiveTimestamp": f"2024-05-01T10:{k // 60:02d}:{k % 60:02d}.100000Z",
    }


def events_of(specs: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The events of a case: each spec once, or ``repeat`` times as distinct requests a second
    apart (``vary``: a list of spec updates, one a repeat, e.g. a different secret each)."""
    out = []
    for spec in specs:
        vary = spec.get("vary") or []
        n = int(spec.get("repeat", len(vary) or 1))
        for k in range(n):
            one = {**spec, **vary[k]} if vary else spec
            out.append(event(one, k))
    return tuple(out)


def written_cases(pack: str) -> list[PeerCase]:
    """The cases of ``peer_cases/<pack>.yaml``: per rule, its positives and negatives."""
    doc = yaml.safe_load((PEER_CASES / f"{pack}.yaml").read_text())
    cases = []
    for rule in doc["rules"]:
        source = f"{doc['repository']} {rule['path']} at {doc['commit']}"
        for expected, key in ((True, "positive"), (False, "negative")):
            for item in rule.get(key) or []:
                events = events_of(item["events"])
                cases.append(PeerCase(pack, rule["name"], item["name"], expected, events, source))
    return cases


def written_rules(pack: str) -> tuple[list[str], dict[str, str]]:
    """The rule names of ``peer_cases/<pack>.yaml``: those with cases, and those out of scope
    (name → why)."""
    doc = yaml.safe_load((PEER_CASES / f"{pack}.yaml").read_text())
    scope = [r["name"] for r in doc["rules"]]
    out = {r["name"]: r["reason"] for r in doc.get("out_of_scope") or []}
    return scope, out


def written_total(pack: str) -> int:
    """How many rules the repository's folders held when read (``total`` in the file)."""
    return int(yaml.safe_load((PEER_CASES / f"{pack}.yaml").read_text())["total"])


def out_of_scope() -> dict[str, dict[str, Any]]:
    """``peer_cases/out_of_scope.yaml``: case id → {reason, fires} (``fires``: what audittui
    does on it today, the opposite of the peer's expectation)."""
    doc = yaml.safe_load((PEER_CASES / "out_of_scope.yaml").read_text())
    return {f"{pack}/{cid}": entry for pack, cases in doc.items() for cid, entry in cases.items()}


# -- Falco's own regression suite -----------------------------------------------------------

FALCO_SUITE = REALDATA / "falco-tests" / "falco_k8s_audit_tests.yaml"
FALCO_TRACES = SAMPLES / "falco-k8s-audit"


class _MuxLoader(yaml.SafeLoader):
    """Avocado's ``!mux`` tag read as the mapping it tags."""


_MuxLoader.add_constructor("!mux", lambda loader, node: loader.construct_mapping(node, deep=True))


@dataclass(frozen=True)
class FalcoCase:
    """One case of Falco's suite: a trace, the rules files it loads, what must fire."""

    name: str
    trace: Path
    detect: bool
    counts: tuple[tuple[str, int], ...]  # (Falco rule, events) for a detect case
    files: tuple[str, ...]  # the rules files it loads, as falco.yaml's ``files`` names them


def falco_cases() -> list[FalcoCase]:
    """Every case of the suite, in its order (66)."""
    doc = yaml.load(FALCO_SUITE.read_text(), Loader=_MuxLoader)
    cases = []
    for name, case in doc["trace_files"].items():
        opts = case["addl_cmdline_opts"]
        trace = opts.rsplit("trace_files/k8s_audit/", 1)[1].split()[0]
        counts = tuple(
            (k, int(v)) for item in case.get("detect_counts") or [] for k, v in item.items()
        )
        files = tuple(_file_key(f) for f in case["rules_file"])
        cases.append(FalcoCase(name, FALCO_TRACES / trace, bool(case["detect"]), counts, files))
    return cases


def _file_key(path: str) -> str:
    tail = path.split("rules/k8s_audit/", 1)
    return tail[1] if len(tail) == 2 else path.rsplit("/", 1)[1]


def falco_meaning() -> dict[str, Any]:
    return yaml.safe_load((PEER_CASES / "falco.yaml").read_text())


def falco_names(name: str, meaning: dict[str, Any]) -> list[str]:
    """A Falco rule's name as the pack's peers spell it today (split rules: the new names)."""
    return list(meaning["renamed"].get(name, [name]))


def falco_loaded(case: FalcoCase, meaning: dict[str, Any]) -> list[str]:
    """The Falco rules the case loads, in today's names."""
    out: list[str] = []
    for key in case.files:
        for name in meaning["files"][key].get("rules") or []:
            out += [n for n in falco_names(name, meaning) if n not in out]
    return out


def falco_user_file(case: FalcoCase, pack: list[Rule], meaning: dict[str, Any]) -> str:
    """The user's rules.yaml that says what the case's extra rules files say in Falco."""
    lists: dict[str, list[str]] = {}
    enable: list[str] = []
    disable: list[str] = []
    rules: dict[str, dict[str, Any]] = {}
    parts = [meaning["base"]] + [meaning["files"][key] for key in case.files]

    def ids(names: list[str]) -> list[str]:
        return [r.id for n in names for r in answering(pack, "falco", n)]

    for part in parts:
        for name, values in (part.get("lists") or {}).items():
            lists.setdefault(name, []).extend(values)
        enable += ids(part.get("enable_falco") or [])
        disable += ids(part.get("disable_falco") or [])
        for name, images in (part.get("allow_images") or {}).items():
            for rid in ids([name]):
                rule = rules.setdefault(rid, {"id": rid, "allow": {"images": []}})
                rule["allow"]["images"] += images
        for rule in part.get("user_rules") or []:
            rules[rule["id"]] = rule
    doc: dict[str, Any] = {"lists": lists, "enable": enable, "disable": disable}
    doc["rules"] = list(rules.values())
    return yaml.safe_dump({k: v for k, v in doc.items() if v}, sort_keys=False)


@dataclass(frozen=True)
class FalcoOutcome:
    case: FalcoCase
    counts: tuple[tuple[str, int, int], ...]  # (Falco rule, expected, requests fired)
    unexpected: tuple[tuple[str, str], ...]  # a detect False case: (Falco rule, pack rule) fired
    problems: tuple[str, ...]  # the user file's, if any

    @property
    def passed(self) -> bool:
        right = all(want == got for _, want, got in self.counts)
        return right and not self.unexpected and not self.problems


def replay_falco(directory: Path, case: FalcoCase, meaning: dict[str, Any]) -> FalcoOutcome:
    """The case's trace through the loader and the pack with the case's user file: each
    Falco rule of detect_counts must be answered on that many requests (distinct audit
    IDs over the rules answering for it); a detect False case must fire no rule answering
    for a Falco rule it loads."""
    from audittui.findings import load_rules

    pack = load_rules(False).rules
    user = directory / f"rules-{next(_files)}.yaml"
    user.write_text(falco_user_file(case, pack, meaning))
    ruleset = load_rules(user)
    rules = ruleset.rules
    store = load(case.trace)
    fx = Findings(rules)
    fx.update(store)
    found = {f.rule.id: f for f in fx.results(store)}
    counts = []
    for falco_rule, want in case.counts:
        ids: set[str] = set()
        for name in falco_names(falco_rule, meaning):
            for rid in fired_for(found, rules, "falco", name):
                ids.update(found[rid].audit_ids)
        counts.append((falco_rule, want, len(ids)))
    unexpected = []
    if not case.detect:
        for name in falco_loaded(case, meaning):
            unexpected += [(name, rid) for rid in fired_for(found, rules, "falco", name)]
    return FalcoOutcome(case, tuple(counts), tuple(unexpected), tuple(ruleset.problems))
