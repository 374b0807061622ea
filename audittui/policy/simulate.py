"""``policy simulate``: what a candidate policy would have logged of the recorded traffic.

Per rule of the candidate: the logged events it matches, those it would drop (level None, or a
stage it omits), and the bytes at its level against the bytes logged now. Lowering the level
removes bodies: their share is measured on a sample of each rule's affected events (read and
re-serialised without the bodies) and scaled. Raising it needs bodies that were never logged:
those events are counted and flagged, and their size is kept as it is (a lower bound). Requests
the cluster's own policy did not log are not in the log, so no candidate can be judged on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import orjson

from ..index.store import EventGone
from ..ingest.formats import parse_json
from .model import LEVELS, Policy
from .over_store import NO_RULE, decide, levels, logged_levels, omitted

if TYPE_CHECKING:
    from ..findings import Findings
    from ..index.store import Events

SAMPLE = 400  # events read per rule to measure what removing bodies saves
BODIES = {1: ("requestObject", "responseObject"), 2: ("responseObject",)}  # by new level


@dataclass
class RuleEffect:
    rule: int | None  # None: the events no rule matches (level None)
    level: str
    events: int = 0
    dropped: int = 0
    bytes_now: int = 0
    bytes_new: int = 0
    need_bodies: int = 0  # events the rule logs at a higher level than they were logged at


@dataclass
class Simulation:
    rules: list[RuleEffect]
    bytes_now: int
    bytes_new: int
    blind: list[tuple[str, str]] = field(default_factory=list)  # (finding rule id, why)


def simulate(
    policy: Policy,
    store: Events,
    findings: Findings | None = None,
    rows: np.ndarray | None = None,
) -> Simulation:
    """Every rule of ``policy`` (a rule matching no logged event too: dead, or shadowed by an
    earlier one), then the events no rule matches when there are any. ``rows`` limits it to
    some events (the app's filter)."""
    decided = decide(policy, store)
    n = len(decided)
    chosen = np.ones(n, dtype=bool)
    if rows is not None:
        chosen[:] = False
        chosen[rows[rows < n]] = True
    logged = logged_levels(store, n)
    new = levels(policy, decided)
    dropped = (new == 0) | omitted(policy, store, decided)
    length = np.where(chosen, store.column("length")[:n], 0).astype(np.int64)
    new_bytes = np.where(dropped, 0, length)
    lower = ~dropped & (logged > new) & (logged > 1)  # bodies would be removed
    rng = np.random.default_rng(0)
    effects = []
    for k in [*range(len(policy.rules)), NO_RULE]:
        mine = (decided == k) & chosen
        if k == NO_RULE and not mine.any():
            continue
        down = np.flatnonzero(mine & lower)
        if len(down):
            sample = down if len(down) <= SAMPLE else rng.choice(down, SAMPLE, replace=False)
            keep = _kept_share(store, sample, int(new[down[0]]))
            new_bytes[down] = (length[down] * keep).astype(np.int64)
        effects.append(
            RuleEffect(
                None if k == NO_RULE else k,
                "None" if k == NO_RULE else policy.rules[k].level,
                int(mine.sum()),
                int((mine & dropped).sum()),
                int(length[mine].sum()),
                int(new_bytes[mine].sum()),
                int((mine & ~dropped & (new > logged) & (new > 1)).sum()),
            )
        )
    sim = Simulation(effects, int(length.sum()), int(new_bytes.sum()))
    if findings is not None:
        sim.blind = _blinded(findings, store, new, dropped | ~chosen, np.where(chosen, logged, -1))
    return sim


def _kept_share(store: Events, rows: np.ndarray, level: int) -> float:
    """The share of their bytes that sampled events keep at ``level`` (bodies removed)."""
    before = after = 0
    for i in rows.tolist():
        try:
            raw = store.raw(i)
        except (EventGone, OSError):
            continue
        event = parse_json(raw)
        for key in BODIES.get(level, ("requestObject", "responseObject")):
            event.pop(key, None)
        before += len(raw)
        after += len(orjson.dumps(event))
    return after / before if before else 1.0


def _blinded(
    findings: Findings, store: Events, new: np.ndarray, dropped: np.ndarray, logged: np.ndarray
) -> list[tuple[str, str]]:
    """Findings rules that see events now and would not under the candidate: all their events
    dropped, or (rules reading bodies) none left at a level that logs the body."""
    from ..findings.engine import BODY_LEVELS, selection_mask

    out: list[tuple[str, str]] = []
    level_index = {name: k for k, name in enumerate(LEVELS)}
    for rule in findings.rules:
        if rule.node is None:
            continue
        mask = selection_mask(rule, store)[: len(logged)] & (logged >= 0)  # (-1: not chosen)
        if not mask.any():
            continue
        body = next((b for b in rule.needs if b in BODY_LEVELS), None)
        if body:
            least = min(level_index[v] for v in BODY_LEVELS[body])
            now = int((mask & (logged >= least)).sum())
            after = int((mask & ~dropped & (new >= least)).sum())
            if now and not after:
                out.append((rule.id, f"{now} events carry the {body} body now; none would"))
                continue
        kept = int((mask & ~dropped).sum())
        if not kept:
            out.append((rule.id, f"all {int(mask.sum())} events it looks at would be dropped"))
    return out


def format_bytes(n: float) -> str:
    """1536 → "1.5 KB"."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def format_change(before: int, after: int) -> str:
    """The change from ``before`` to ``after`` as a signed percentage."""
    return f"{(after - before) / before:+.0%}" if before else "-"
