"""``policy check``: assume a policy produced a log and find the events it disagrees with.

An event disagrees when the policy would not have logged it at all (level None), would have
logged it at another level, or omits the stage it was logged at. Events too incomplete to
decide as the server did (no request URI, flattened shapes) are counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..ingest.formats import NON_STANDARD
from .model import LEVELS, Policy
from .over_store import NO_RULE, decide, levels, logged_levels, omitted

if TYPE_CHECKING:
    from ..index.store import Events


@dataclass
class Disagreement:
    """Events sharing a rule, the level it gives, the level logged, and what is wrong."""

    rule: int | None
    expected: str
    logged: str
    why: str  # "not logged by this policy", "level", "omitted stage STAGE"
    rows: list[int] = field(default_factory=list)


def check(policy: Policy, store: Events) -> tuple[list[Disagreement], int, int]:
    """Groups of disagreeing events (largest first), the events checked, and how many of them
    were too incomplete to decide exactly (not checked)."""
    decided = decide(policy, store)
    n = len(decided)
    stage_values = store.tables["stage"].values
    stages = store.column("stage")[:n]
    approximate = _approximate(store, n)
    expected = levels(policy, decided)
    got = logged_levels(store, n)
    groups: dict[tuple, Disagreement] = {}
    checked = (got >= 0) & ~approximate

    def add(mask: np.ndarray, why: str | Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask & checked).tolist():
            k = int(decided[i])
            reason = why(i) if callable(why) else why
            key = (k, int(expected[i]), int(got[i]), reason)
            if key not in groups:
                groups[key] = Disagreement(
                    None if k == NO_RULE else k, LEVELS[expected[i]], LEVELS[got[i]], reason
                )
            groups[key].rows.append(i)

    add(expected == 0, "not logged by this policy")
    other_level = (expected != 0) & (expected != got)
    add(other_level, "logged at another level")
    add(  # each event counts once: one at another level in an omitted stage is told above
        omitted(policy, store, decided) & (expected != 0) & ~other_level,
        lambda i: f"stage {stage_values[stages[i]]} is omitted",
    )
    out = sorted(groups.values(), key=lambda d: -len(d.rows))
    return out, int(checked.sum()), int((approximate & (got >= 0)).sum())


def _approximate(store: Events, n: int) -> np.ndarray:
    """Events the policy cannot be decided on exactly: no request URI, or flattened shapes."""
    no_uri = store.column("uri")[:n] == 0
    return no_uri | ((store.column("flags")[:n] & NON_STANDARD) != 0)
