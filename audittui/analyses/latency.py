"""Request latency from the stage timestamps: which events end a request whose duration means
something, and percentiles per group.

A request's latency is its final event's ``stageTimestamp - requestReceivedTimestamp``
(ResponseComplete, or Panic). Long-running requests are left out, as the API server itself
classifies them (watch and proxy verbs; attach, exec, portforward and proxy subresources;
``/debug/pprof/``) plus logs with ``follow=true``: their duration is how long someone watched,
not how fast the server was.
"""

# No ``from __future__ import annotations`` here: it would bind the name ``annotations``,
# which this module defines (the latency annotations of an event).
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ingest.schema import FINAL_STAGES

if TYPE_CHECKING:
    from ..index.store import Events, TableValues

LONG_VERBS = frozenset({"watch", "proxy"})
LONG_SUBRESOURCES = frozenset({"attach", "exec", "portforward", "proxy"})
_FOLLOW = re.compile(r"[?&]follow=(true|1)(&|$)")
QUANTILES = (0.50, 0.95, 0.99)
ANNOTATION_PREFIX = "apiserver.latency.k8s.io/"


def _lut(values: "TableValues", test: Callable[[Any], bool]) -> np.ndarray:
    return np.fromiter((v is not None and test(v) for v in values), dtype=bool, count=len(values))


def request_mask(store: "Events", start: int = 0) -> np.ndarray:
    """Which events from ``start`` on end a request with a meaningful latency (see the
    module docstring); a mask over events ``start`` .. ``len(store)``."""

    def column(name: str) -> np.ndarray:
        return store.column(name)[start:]

    final = _lut(store.tables["stage"].values, lambda s: s in FINAL_STAGES)[column("stage")]
    final &= column("latency") >= 0
    long_verb = _lut(store.tables["verb"].values, lambda v: v in LONG_VERBS)
    sub_values = store.tables["subresource"].values
    long_sub = _lut(sub_values, lambda s: s in LONG_SUBRESOURCES)
    verbs, subs = column("verb"), column("subresource")
    mask = final & ~long_verb[verbs] & ~long_sub[subs]
    # Logs only when followed, pprof profiles (they run as long as asked): decided on the
    # distinct URIs of the few candidate events, not on every URI of the log.
    uri_values, uris = store.tables["uri"].values, column("uri")
    is_log = _lut(sub_values, lambda s: s == "log")[subs]
    non_resource = column("resource") == 0
    for candidates, test in (
        (mask & is_log, lambda u: _FOLLOW.search(u) is not None),
        (mask & non_resource, lambda u: u.startswith("/debug/pprof")),
    ):
        codes = np.unique(uris[candidates])
        drop = codes[_lut([uri_values[c] for c in codes.tolist()], test)]
        if len(drop):
            mask &= ~(candidates & np.isin(uris, drop))
    return mask


def percentiles(keys: np.ndarray, latency: np.ndarray) -> dict[int, tuple[int, ...]]:
    """Per key: (count, p50, p95, p99, max) of ``latency`` (µs), nearest-rank percentiles."""
    if not len(keys):
        return {}
    order = np.lexsort((latency, keys))
    keys, latency = keys[order], latency[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    out = {}
    for key, a, b in zip(keys[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        n = b - a
        ranks = [a + max(0, int(np.ceil(q * n)) - 1) for q in QUANTILES]
        out[key] = (n, *(int(latency[r]) for r in ranks), int(latency[b - 1]))
    return out


def annotations(event: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``apiserver.latency.k8s.io/*`` annotations (added when a request took > 500 ms)."""
    notes = event.get("annotations")
    if not isinstance(notes, dict):
        return []
    return [
        (k[len(ANNOTATION_PREFIX) :], str(v))
        for k, v in notes.items()
        if isinstance(k, str) and k.startswith(ANNOTATION_PREFIX)
    ]
