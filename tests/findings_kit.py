"""Helpers for the findings tests: requests built from a few words, Falco fixtures (as they are
or changed in one field), and running rules over a store."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from conftest import SAMPLES, v1_event

from audittui.findings import Finding, Findings, Rule, load_rules
from audittui.findings.rules import user_rules_path
from audittui.index.loader import load
from audittui.index.store import Store

FALCO = SAMPLES / "falco-k8s-audit"
PACK = load_rules(False).rules
RULE: dict[str, Rule] = {r.id: r for r in PACK}

S = 1_000_000  # µs
M = 60 * S
H = 60 * M
BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
_files = itertools.count()


def ts(us: int) -> str:
    """The time ``us`` µs after 2024-05-01T10:00:00Z, as an audit timestamp."""
    return (BASE + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def req(
    verb: str,
    resource: str | None,
    *,
    sub: str | None = None,
    ns: str | None = "default",
    name: str | None = None,
    api: str = "v1",
    code: int = 200,
    user: str = "alice",
    groups: list[str] | None = None,
    at: int = 0,
    ip: str = "10.0.0.1",
    ua: str = "kubectl/v1.30.0",
    stage: str = "ResponseComplete",
    body: dict | None = None,
    level: str | None = None,
    decision: str = "allow",
    extra: dict | None = None,
    as_user: dict | None = None,
    audit_id: str | None = None,
    uri: str | None = None,
) -> dict:
    """One audit event for a request, described by what matters to the rules."""
    ref = None
    if resource is not None:
        ref = {"resource": resource, "apiVersion": api}
        for key, value in (("subresource", sub), ("namespace", ns), ("name", name)):
            if value is not None:
                ref[key] = value
    if uri is None:
        parts = ["/api/v1" if "/" not in api else f"/apis/{api}"]
        if ns:
            parts.append(f"namespaces/{ns}")
        parts += [p for p in (resource, name, sub) if p]
        uri = "/".join(parts)
    user_info: dict[str, Any] = {
        "username": user,
        "groups": groups if groups is not None else ["system:authenticated"],
    }
    if extra is not None:
        user_info["extra"] = extra
    overrides: dict[str, Any] = {
        "verb": verb,
        "objectRef": ref,
        "requestURI": uri,
        "responseStatus": {"metadata": {}, "code": code},
        "user": user_info,
        "sourceIPs": [ip],
        "userAgent": ua,
        "stage": stage,
        "requestReceivedTimestamp": ts(at),
        "stageTimestamp": ts(at + 2500),
        "level": level or ("RequestResponse" if body is not None else "Metadata"),
        "annotations": {"authorization.k8s.io/decision": decision},
    }
    if body is not None:
        overrides["requestObject"] = body
    if as_user is not None:
        overrides["impersonatedUser"] = as_user
    if audit_id is not None:
        overrides["auditID"] = audit_id
    return v1_event(**overrides)


def falco(name: str) -> list[dict]:
    """The events of one Falco fixture, parsed."""
    out = []
    for line in (FALCO / name).read_bytes().splitlines():
        if line.strip():
            out.append(orjson.loads(line))
    return out


def changed(name: str, change: Callable[[dict], Any]) -> Callable[[], list[dict]]:
    """A Falco fixture with one thing changed (``change`` edits each event in place)."""

    def build() -> list[dict]:
        events = copy.deepcopy(falco(name))
        for ev in events:
            change(ev)
        return events

    return build


def put(path: str, value: Any) -> Callable[[dict], None]:
    """An edit for :func:`changed`: set the dotted ``path`` (creating mappings on the way)."""

    def edit(ev: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            ev = ev.setdefault(key, {})
        ev[last] = value

    return edit


def metadata_copy(ev: dict) -> dict:
    """The event as a Metadata-level policy logs it: no request or response body."""
    out = {k: v for k, v in ev.items() if k not in ("requestObject", "responseObject")}
    out["level"] = "Metadata"
    return out


def write(directory: Path, events: list[dict], name: str | None = None) -> Path:
    path = directory / (name or f"log-{next(_files)}.jsonl")
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def store_of(directory: Path, source: str | list[dict] | Callable[[], list[dict]]) -> Store:
    """A store of a Falco fixture (by file name, read as it is), or of events."""
    if isinstance(source, str):
        return load(FALCO / source)
    events = source() if callable(source) else source
    return load(write(directory, events))


def evaluate(store: Store, rules: list[Rule]) -> tuple[Findings, dict[str, Finding], list[str]]:
    """Run ``rules`` once over ``store``: the engine, what fired (by id), the blind rule ids."""
    fx = Findings(rules)
    fx.update(store)
    fired = {f.rule.id: f for f in fx.results(store)}
    return fx, fired, [r.id for r, _ in fx.blind(store)]


def on(rule_id: str, **changes: Any) -> Rule:
    """A pack rule, enabled (and otherwise changed as given)."""
    return replace(RULE[rule_id], enabled=True, **changes)


def rules_file(monkeypatch, tmp_path: Path, text: str) -> Path:
    """Write ``text`` as the default rules file ($XDG_CONFIG_HOME/audittui/rules.yaml)."""
    config = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    path = user_rules_path()
    assert path == config / "audittui" / "rules.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
