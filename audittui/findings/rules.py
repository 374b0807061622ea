"""The findings rule format: YAML → validated :class:`Rule` objects.

The pack ships as the YAML files of ``pack/`` beside this module (``lists.yaml`` and one file a
theme; rules in the files' name order); users add rules, allow-lists and lists, and turn rules
on or off, in ``$XDG_CONFIG_HOME/audittui/rules.yaml``. A broken user file (or one
broken rule in it) is reported and skipped; the shipped pack must load cleanly.

A rule selects its events with the core query language (``query``, decided on indexed columns),
may test each selected event with a JMESPath expression (``where``, over the whole event: truthy
means a match), and may fire only on a count within a sliding window (``threshold``) or on a
value new for its key (``first_seen``). ``$name`` in ``where`` stands for a list from ``lists``;
``matches(text, regex)`` adds regex search to JMESPath: RE2's, as in queries (linear in the
text; a regex written in the rule that RE2 cannot run is the rule's error when it is loaded);
``exec_command(@)`` is the command a pods/exec event ran, as text (:mod:`..ingest.exec_command`).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jmespath
import orjson
import yaml
from jmespath import functions
from jmespath.exceptions import JMESPathError

from ..ingest.exec_command import command_text, event_argv
from ..ingest.formats import parse_duration
from ..ingest.schema import COMPLETE, STAGES
from ..query.fields import STRING_FIELDS
from ..query.patterns import PatternError, Regex
from ..query.patterns import check as check_regex
from ..query.syntax import Node, QueryError, parse

PACK_DIR = Path(__file__).with_name("pack")
SEVERITIES = ("critical", "high", "medium", "low", "info")  # most severe first
NEEDS = ("request", "response", "credential", "reason")
ALLOW_KEYS = ("users", "namespaces", "images")
RULE_KEYS = {
    "id",
    "title",
    "severity",
    "description",
    "source",
    "query",
    "stages",
    "needs",
    "where",
    "threshold",
    "first_seen",
    "role_grants",
    "allow",
    "enabled",
    "techniques",
    "peers",
}
PEER_PACKS = ("falco", "panther", "elastic", "sigma")  # the packs a rule says it corresponds to
_TECHNIQUE = re.compile(r"T\d{4}(\.\d{3})?\Z")  # a MITRE ATT&CK technique or sub-technique id
_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_LIST_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


class _Functions(functions.Functions):
    """JMESPath plus ``matches(string, regex)``: one regex search instead of a chain of
    contains() over the same text; and ``exec_command(@)``: the command a pods/exec event ran,
    its words decoded from the URI (or the body's list) and joined by spaces ("" for none)."""

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_matches(self, subject: str, pattern: str) -> bool:
        return _regex(pattern).search(subject)

    _last: tuple[object, str] = (None, "")  # (event, its command): the rules of one event ask

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        # Ours are called for every candidate of every rule that names them: their arguments'
        # types are checked here in one line, not by jmespath's generic validation (a third
        # of the time of a where expression); anything unexpected takes the checked path.
        if function_name == "matches" and len(resolved_args) == 2:
            subject, pattern = resolved_args
            if type(subject) is str and type(pattern) is str:
                return self._func_matches(subject, pattern)
        elif (
            function_name == "exec_command"
            and len(resolved_args) == 1
            and type(resolved_args[0]) is dict
        ):
            return self._func_exec_command(resolved_args[0])
        return super().call_function(function_name, resolved_args)

    @functions.signature({"types": ["object"]})
    def _func_exec_command(self, event: dict) -> str:
        last = self._last  # one tuple, read and replaced whole: safe across threads
        if last[0] is event:
            return last[1]
        text = command_text(event_argv(event))
        self._last = (event, text)
        return text


_regex = functools.lru_cache(maxsize=256)(Regex)  # PatternError (a ValueError): no match
JMESPATH_OPTIONS = jmespath.Options(custom_functions=_Functions())


class _Compiled:
    """A compiled where expression that always runs with :data:`JMESPATH_OPTIONS`; the
    regexes written in it (``matches(x, 'literal')``) are checked here (PatternError)."""

    def __init__(self, text: str) -> None:
        self._parsed = jmespath.compile(text)
        _check_regexes(self._parsed.parsed)

    def search(self, value: Any) -> Any:
        return self._parsed.search(value, options=JMESPATH_OPTIONS)


def _check_regexes(node: Any) -> None:
    if not isinstance(node, dict):
        return
    children = node.get("children") or []
    if (
        node.get("type") == "function_expression"
        and node.get("value") == "matches"
        and len(children) == 2
        and children[1].get("type") == "literal"
        and isinstance(children[1].get("value"), str)
    ):
        check_regex(children[1]["value"])
    for child in children:
        _check_regexes(child)


# How a parser reports a problem: (key, why).
Bad = Callable[[str, str], None]


class RuleError(ValueError):
    """Problems in a rule file: every one found, each naming the rule and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Threshold:
    window: int  # µs; events at most this far apart share a window
    count: int  # at least this many events (or distinct values of ``distinct``)
    group_by: tuple[str, ...]  # query field names
    distinct: str | None = None


@dataclass(frozen=True)
class FirstSeen:
    key: tuple[str, ...]  # query field names, e.g. ("user",); () the rule's whole selection
    value: str  # the field whose new values fire, e.g. "ua"
    learn: int  # µs of a key's history before its new values count


@dataclass(frozen=True)
class RoleGrants:
    """The role that allowed the event (the authorizer's reason names it) has, in its body
    as the log holds it, a rule granting one of ``verbs`` (any verb when empty) on one of
    ``resources`` (any when empty); ``*`` is matched as written, not expanded."""

    verbs: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Allow:
    users: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def __or__(self, other: Allow) -> Allow:
        return Allow(
            *(tuple(dict.fromkeys(getattr(self, k) + getattr(other, k))) for k in ALLOW_KEYS)
        )

    def image_allowed(self, image: str) -> bool:
        return any(fnmatch.fnmatchcase(image, p) for p in self.images)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    description: str
    query: str
    node: Node | None = field(compare=False, repr=False)
    source: str = ""
    stages: tuple[str, ...] = (COMPLETE,)
    needs: tuple[str, ...] = ()
    where: str = ""
    where_expr: Any = field(default=None, compare=False, repr=False)
    threshold: Threshold | None = None
    first_seen: FirstSeen | None = None
    role_grants: RoleGrants | None = None
    allow: Allow = Allow()
    enabled: bool = True
    techniques: tuple[str, ...] = ()  # MITRE ATT&CK ids, e.g. ("T1609",)
    peers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (pack, rule names), in PEER_PACKS order

    @property
    def rank(self) -> int:
        """0 for critical … 4 for info."""
        return SEVERITIES.index(self.severity)


@dataclass
class RuleSet:
    """The rules in effect, and what was wrong with the user's file."""

    rules: list[Rule]
    problems: list[str] = field(default_factory=list)
    user_file: Path | None = None

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def user_rules_path() -> Path:
    """``$XDG_CONFIG_HOME/audittui/rules.yaml`` (``~/.config`` when unset or relative)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "audittui" / "rules.yaml"


def _rule_duration(text: Any) -> int:
    """A rule's ``window`` or ``learn``: ``30s``, ``6m``, ``1h``, ``7d`` → µs."""
    micros = parse_duration(str(text).strip(), ("s", "m", "h", "d"))
    if micros is None:
        raise ValueError(f"'{text}' is not a duration like 30s, 6m, 1h or 7d")
    return int(micros)


def load_rules(user_file: Path | None | bool = True) -> RuleSet:
    """The shipped pack with the user's file applied (``user_file=False`` for the pack alone).

    Raises :class:`RuleError` only for a broken shipped pack."""
    pack = read_pack()
    lists = _lists(pack.get("lists"), "pack")
    rules, problems = _rules(pack.get("rules"), lists, "pack")
    if problems:
        raise RuleError(problems)
    path = user_rules_path() if user_file is True else user_file or None
    if path is None:
        return RuleSet(rules)
    if not path.exists():  # the default file is optional; one named on the command line is not
        missing = [] if user_file is True else [f"{path}: no such file"]
        return RuleSet(rules, missing, path)
    try:
        doc = _read_yaml(path)
    except (OSError, RuleError) as exc:
        return RuleSet(rules, [f"{path}: {exc}"], path)
    problems = []
    return RuleSet(_apply_user(pack, rules, doc, lists, problems, str(path)), problems, path)


def read_pack(folder: Path = PACK_DIR) -> dict:
    """The pack's files as one document: their lists (a name defined once) and their rules,
    in the files' name order."""
    lists: dict[str, Any] = {}
    rules: list[Any] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        doc = _read_yaml(path)
        for key in doc:
            if key not in ("lists", "rules"):
                problems.append(f"{path.name}: unknown key {key} (known: lists, rules)")
        for name, values in (doc.get("lists") or {}).items():
            if name in lists:
                problems.append(f"{path.name}: list {name} is defined in two files")
            lists[name] = values
        more = doc.get("rules") or []
        if not isinstance(more, list):
            problems.append(f"{path.name}: rules must be a list")
            continue
        rules += more
    if problems:
        raise RuleError(problems)
    return {"lists": lists, "rules": rules}


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            doc = yaml.load(f, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise RuleError([f"not valid YAML: {exc}".replace("\n", " ")]) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise RuleError(["the file must be a mapping with rules:, allow:, lists:, …"])
    return doc


def _lists(raw: Any, where: str, base: dict[str, list] | None = None) -> dict[str, list]:
    lists = dict(base or {})
    if raw is None:
        return lists
    if not isinstance(raw, dict):
        raise RuleError([f"{where}: lists must be a mapping of name → list"])
    for name, values in raw.items():
        if not isinstance(values, list):
            raise RuleError([f"{where}: list {name} is not a list"])
        lists[str(name)] = lists.get(str(name), []) + values
    return lists


def _rules(raw: Any, lists: dict[str, list], where: str) -> tuple[list[Rule], list[str]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [f"{where}: rules must be a list"]
    rules: list[Rule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for k, item in enumerate(raw):
        try:
            rule = build_rule(item, lists)
        except RuleError as exc:
            problems += [f"{where}: rule {k + 1}: {p}" for p in exc.problems]
            continue
        if rule.id in seen:
            problems.append(f"{where}: rule {k + 1}: id '{rule.id}' is used twice")
            continue
        seen.add(rule.id)
        rules.append(rule)
    return rules, problems


def build_rule(item: Any, lists: dict[str, list]) -> Rule:
    """One rule mapping → a Rule; raises RuleError naming every bad field."""
    if not isinstance(item, dict):
        raise RuleError(["a rule must be a mapping"])
    rid = item.get("id")
    label = f"'{rid}'" if isinstance(rid, str) else "(no id)"
    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{label} {key}: {why}")

    for key in item:
        if key not in RULE_KEYS:
            bad(str(key), f"unknown key (known: {', '.join(sorted(RULE_KEYS))})")
    if not isinstance(rid, str) or not _ID.match(rid):
        bad("id", "required: lowercase letters, digits and dashes")
    for key in ("title", "query"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            bad(key, "required text")
    severity = item.get("severity")
    if severity not in SEVERITIES:
        bad("severity", f"one of {', '.join(SEVERITIES)}")
    node = None
    if isinstance(item.get("query"), str):
        try:
            node = parse(_query_lists(item["query"], lists))
        except KeyError as exc:
            bad("query", f"no list named {exc.args[0]}")
        except QueryError as exc:
            bad("query", str(exc))
    stages = _strings(item.get("stages", [COMPLETE]), "stages", bad)
    for s in stages:
        if s not in STAGES:
            bad("stages", f"'{s}' is not a stage ({', '.join(STAGES)})")
    needs = _strings(item.get("needs", []), "needs", bad)
    for n in needs:
        if n not in NEEDS:
            bad("needs", f"'{n}' is not one of {', '.join(NEEDS)}")
    where = item.get("where") or ""
    expr = None
    if not isinstance(where, str):
        bad("where", "must be a JMESPath expression")
    elif where:
        try:
            expr = _Compiled(_substitute(where, lists))
        except KeyError as exc:
            bad("where", f"no list named {exc.args[0]}")
        except JMESPathError as exc:
            bad("where", f"bad JMESPath: {exc}".replace("\n", " "))
        except PatternError as exc:
            bad("where", f"matches(): {exc}")
    threshold = _threshold(item.get("threshold"), bad)
    first_seen = _first_seen(item.get("first_seen"), bad)
    if threshold and first_seen:
        bad("threshold", "a rule has a threshold or first_seen, not both")
    role_grants = _role_grants(item.get("role_grants"), bad)
    if role_grants and "reason" not in needs:
        bad("role_grants", "needs [reason]: the role is the one the authorizer's reason names")
    allow = parse_allow(item.get("allow"), bad, lists)
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("enabled", "true or false")
    techniques = _strings(item.get("techniques", []), "techniques", bad)
    for t in techniques:
        if not _TECHNIQUE.match(t):
            bad("techniques", f"'{t}' is not a MITRE ATT&CK id like T1609 or T1552.007")
    peers = _peers(item.get("peers"), bad)
    if problems:
        raise RuleError(problems)
    assert isinstance(rid, str) and isinstance(severity, str)  # or a problem was raised
    return Rule(
        id=rid,
        title=item["title"].strip(),
        severity=severity,
        description=str(item.get("description") or "").strip(),
        query=item["query"].strip(),
        node=node,
        source=str(item.get("source") or ""),
        stages=tuple(stages),
        needs=tuple(needs),
        where=where,
        where_expr=expr,
        threshold=threshold,
        first_seen=first_seen,
        role_grants=role_grants,
        allow=allow,
        enabled=enabled,
        techniques=tuple(dict.fromkeys(techniques)),
        peers=peers,
    )


def _peers(raw: Any, bad: Bad) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{falco: [name…], panther: [RuleID…], elastic: [name…], sigma: [title…]}``."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        bad("peers", f"a mapping of {', '.join(PEER_PACKS)} to lists of rule names")
        return ()
    for key in raw:
        if key not in PEER_PACKS:
            bad(f"peers.{key}", f"unknown pack (known: {', '.join(PEER_PACKS)})")
    return tuple(
        (pack, tuple(_strings(raw[pack], f"peers.{pack}", bad)))
        for pack in PEER_PACKS
        if raw.get(pack)
    )


def _role_grants(raw: Any, bad: Bad) -> RoleGrants | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw or set(raw) - {"verbs", "resources"}:
        bad("role_grants", "a mapping with verbs and/or resources (lists)")
        return None
    verbs = _strings(raw.get("verbs", []), "role_grants.verbs", bad)
    resources = _strings(raw.get("resources", []), "role_grants.resources", bad)
    return RoleGrants(tuple(verbs), tuple(resources))


def _substitute(where: str, lists: dict[str, list]) -> str:
    def literal(m: re.Match) -> str:
        return "`" + orjson.dumps(lists[m.group(1)]).decode().replace("`", "\\`") + "`"

    return _LIST_REF.sub(literal, where)


_PLAIN_VALUE = re.compile(r"[^\s,()\"]+\Z")


def _query_lists(query: str, lists: dict[str, list]) -> str:
    """``$name`` → the list as query alternatives (``a,b,"c d"``); an empty list becomes a
    value that no event has, so ``-name:$empty`` excludes nothing."""

    def alternatives(m: re.Match) -> str:
        values = [str(v) for v in lists[m.group(1)]] or ["\u2400no value\u2400"]
        return ",".join(v if _PLAIN_VALUE.match(v) else orjson.dumps(v).decode() for v in values)

    return _LIST_REF.sub(alternatives, query)


def _strings(value: Any, key: str, bad: Bad) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        bad(key, "a list of strings")
        return []
    return value


def _field(name: Any, key: str, bad: Bad) -> str:
    if name not in STRING_FIELDS:
        bad(key, f"'{name}' is not a string field ({', '.join(STRING_FIELDS)})")
    return str(name)


def _threshold(raw: Any, bad: Bad) -> Threshold | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        bad("threshold", "a mapping with window, count, group_by and optional distinct")
        return None
    try:
        window = _rule_duration(raw.get("window"))
    except ValueError as exc:
        bad("threshold.window", str(exc))
        window = 0
    count = raw.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        bad("threshold.count", "a whole number ≥ 1")
    group_by = tuple(
        _field(f, "threshold.group_by", bad)
        for f in _strings(raw.get("group_by", []), "threshold.group_by", bad)
    )
    distinct = raw.get("distinct")
    if distinct is not None:
        distinct = _field(distinct, "threshold.distinct", bad)
    for key in raw:
        if key not in ("window", "count", "group_by", "distinct"):
            bad(f"threshold.{key}", "unknown key")
    return Threshold(window, count if isinstance(count, int) else 1, group_by, distinct)


def _first_seen(raw: Any, bad: Bad) -> FirstSeen | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        bad("first_seen", "a mapping with key, value and learn")
        return None
    key = tuple(
        _field(f, "first_seen.key", bad)
        for f in _strings(raw.get("key", []), "first_seen.key", bad)
    )
    if "key" not in raw:  # [] is a choice (new for the rule's whole selection), not a default
        bad("first_seen.key", "required: the fields a value is new for ([] for none)")
    value = _field(raw.get("value"), "first_seen.value", bad)
    try:
        learn = _rule_duration(raw.get("learn", "1h"))
    except ValueError as exc:
        bad("first_seen.learn", str(exc))
        learn = 0
    return FirstSeen(key, value, learn)


def parse_allow(raw: Any, bad: Bad, lists: dict[str, list] | None = None) -> Allow:
    if raw is None:
        return Allow()
    if not isinstance(raw, dict):
        bad("allow", "a mapping of users, namespaces and images")
        return Allow()
    parts = {}
    for key, values in raw.items():
        if key not in ALLOW_KEYS:
            bad(f"allow.{key}", f"unknown list (known: {', '.join(ALLOW_KEYS)})")
            continue
        patterns: list[str] = []
        for v in _strings(values or [], f"allow.{key}", bad):
            name = v[1:] if v.startswith("$") else None
            if name is not None and lists is not None and name in lists:
                patterns += [str(x) for x in lists[name]]
            elif name is not None:
                bad(f"allow.{key}", f"no list named {name}")
            else:
                patterns.append(v)
        parts[key] = tuple(patterns)
    return Allow(**parts)


def _apply_user(
    pack: dict,
    pack_rules: list[Rule],
    doc: dict,
    pack_lists: dict[str, list],
    problems: list[str],
    where: str,
) -> list[Rule]:
    """The user's file over the pack: lists extend the pack's (in its queries, where and allow
    too), allow-lists merge, a rule with a pack id overrides the fields it gives, new ids add
    rules, enable/disable switch by id or glob. Whatever is wrong is reported and skipped."""

    def report(key: str, why: str) -> None:
        problems.append(f"{where}: {key}: {why}")

    for key in doc:
        if key not in ("rules", "allow", "lists", "enable", "disable"):
            report(key, "unknown key (known: rules, allow, lists, enable, disable)")
    try:
        lists = _lists(doc.get("lists"), where, pack_lists)
    except RuleError as exc:
        problems += exc.problems
        lists = pack_lists
    global_allow = parse_allow(doc.get("allow"), report, lists)
    # The pack's rules as written, so that the user's lists and overrides apply to the source.
    mappings = {item["id"]: item for item in pack["rules"]}
    built = {r.id: r for r in pack_rules}
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        report("rules", "must be a list")
        raw_rules = []
    for k, item in enumerate(raw_rules):
        label = f"{where}: rule {k + 1}"
        if not isinstance(item, dict):
            problems.append(f"{label}: a rule must be a mapping")
            continue
        rid = item.get("id")
        base = mappings.get(rid)
        merged = item if base is None else base | item | _merged_allow(base, item)
        try:
            if base is None and rid in built:
                raise RuleError([f"id '{rid}' is used twice"])
            rule = build_rule(merged, lists)  # its id is rid, a valid one
            built[rule.id] = rule
            mappings[rule.id] = merged
        except RuleError as exc:
            problems += [f"{label}: {p}" for p in exc.problems]
    if lists is not pack_lists:  # rebuild the rules that name a list with the user's lists
        for rid, item in mappings.items():
            if rid in built and _LIST_REF.search(orjson.dumps(item).decode()):
                try:
                    built[rid] = build_rule(item, lists)
                except RuleError as exc:
                    problems += [f"{where}: lists: {p}" for p in exc.problems]
    rules = list(built.values())
    for switch, state in (("enable", True), ("disable", False)):
        for pattern in _strings(doc.get(switch, []), switch, report):
            hit = [i for i, r in enumerate(rules) if fnmatch.fnmatchcase(r.id, pattern)]
            if not hit:
                report(switch, f"no rule matches '{pattern}'")
            for i in hit:
                rules[i] = replace(rules[i], enabled=state)
    return [replace(r, allow=r.allow | global_allow) for r in rules]


def _merged_allow(base: dict, item: dict) -> dict:
    """A pack rule's allow-lists extended by the user's override (not replaced)."""
    mine, theirs = base.get("allow"), item.get("allow")
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return {}
    merged = dict(mine)
    for key, values in theirs.items():
        old = merged.get(key) or []
        old = [old] if isinstance(old, str) else list(old)
        merged[key] = old + ([values] if isinstance(values, str) else list(values or []))
    return {"allow": merged}
