"""``rbac`` over a ClickHouse store, grouped in the server: the subject's events grouped by the
distinct tuples :mod:`audittui.analyses.rbac` reads (user, impersonated user, groups, verb, API
group, resource, subresource, namespace, name, request URI, the authorizer's reason and
decision, the response code), each group with its count and its first and last time. The
analysis then runs over a private store of one event per group, weighted by the group's count
(the policy lab's approach, :mod:`audittui.clickhouse.policy`).

The event kept for a group is its first in reading order (time, then source, then offset), and
the store holds them in that order: what the analysis reads of a raw event (an impersonated
user's groups, an objectRef apiVersion) it reads from the first of equal requests, and that is
the same event as over the files. For ``rbac --diff``, the events that may hold a role's body
are kept one by one (each its own group): the diff reads their bodies.
"""

from __future__ import annotations

import os

import numpy as np

from ..analyses.rbac import Weights
from ..index.loader import load
from ..index.store import Store
from ..ingest import scratch
from ..ingest.formats import MISSING_TIME
from ..query.syntax import parse
from .client import StoreError
from .reads import Reader
from .sql import PRESENT_TIME, compile_node

# An operation as the analysis expands it (over namespaces and names), for the events whose
# names may collapse (no impersonation, a resource request): as a tuple of plain values, which
# the server groups and compares fast (the URI's version appended, see _key)
OPERATION = (
    "ifNull(user, '')", "isNull(user)", "groups", "ifNull(verb, '')", "isNull(verb)",
    "assumeNotNull(api)", "ifNull(resource, '')", "isNull(resource)",
    "ifNull(subresource, '')", "isNull(subresource)",
)  # fmt: skip
_LATEST = 2**63 - 1  # a time after any: an event without one never is a group's first time
_FIRST = "(time, source, offset)"  # reading order (18.16 compares tuples in argMin)
# A resource request's URI matters only by its API version (rbac._api_versions reads no more)
_URI_VERSION = (
    "concat(extract(ifNull(uri, ''), '^/api/([^/?]+)'), '|', "
    "extract(ifNull(uri, ''), '^/apis/[^/?]+/([^/?]+)'))"
)


def _key(source: str, collapse: bool) -> str:
    """The group of an event. A non-resource request's URI is compared whole, a resource
    request's by its version. The name is compared, except (``collapse``) where it cannot
    change the analysis's output: an operation on many names is expanded to any name (no rule
    names them), so of the names that no operation on a single name holds, only the first one
    of each operation is kept apart from the others (two names left: still many)."""
    plain = "user, impersonated, groups, verb, api, resource, subresource, namespace, reason, "
    plain += f"decision, code, if(isNull(api), uri, {_URI_VERSION}) AS grp_uri_"
    if not collapse:
        return f"{plain}, name"
    op = f"{', '.join(OPERATION)}, {_URI_VERSION}"
    # an impersonated user's groups (read from the raw event) and the apiVersion of a URI
    # naming none (read per request) split operations: never collapsed
    alone = (
        "isNull(impersonated) AND isNotNull(name) AND isNotNull(api) "
        f"AND ifNull(verb, '') != 'create' AND {_URI_VERSION} != '|'"
    )
    # names an operation on a single name holds (a rule may name them), and the names of
    # the events never collapsed (their operations are told apart by more than this)
    kept = (
        f"assumeNotNull(name) NOT IN (SELECT assumeNotNull(any(name)) {source} AND {alone} "
        f"GROUP BY {op} HAVING uniqExact(name) = 1) AND "
        f"assumeNotNull(name) NOT IN (SELECT assumeNotNull(name) {source} AND "
        f"isNotNull(name) AND NOT ({alone}))"
    )
    first = f"SELECT {op}, assumeNotNull(argMin(name, {_FIRST})) {source} AND {alone} GROUP BY {op}"
    pair = f"({op}, assumeNotNull(name))"
    # the name, or (collapsed) whether it is the operation's first one
    return (
        f"{plain}, ({alone} AND {kept}) AS grp_collapsed_, "
        "if(grp_collapsed_, NULL, name) AS grp_name_, "
        f"if(grp_collapsed_, {pair} IN ({first}), 0) AS grp_first_"
    )


class Grouped:
    """``with Grouped(reader, subject, bodies) as (store, weights, rows):`` one event per group
    of ``subject``'s events (a query), the weights of each store row, and the rows that are the
    subject's (None: all; with ``bodies``, the events a role body may be read from are there
    too, each its own row)."""

    def __init__(self, reader: Reader, subject: str, bodies: str | None = None) -> None:
        self.folder = scratch.make("rbac")
        self.store: Store | None = None
        try:
            self._group(reader, subject, bodies)
        except BaseException:
            scratch.remove(self.folder)
            raise

    def _group(self, reader: Reader, subject: str, bodies: str | None) -> None:
        where = subject if bodies is None else f"({subject}) OR ({bodies})"
        source, params = reader._from(reader.where(where))
        # with --diff, the roles' bodies may name any object: every name compared
        key = _key(source, collapse=bodies is None)
        mine = "1"
        if bodies is not None:
            # each event that may hold a role's body its own group, and whether a group is the
            # subject's (a body is read by the diff, but is a request only if the subject's)
            body = compile_node(parse(bodies), modern=reader.modern, prefix="b")
            own = compile_node(parse(subject), modern=reader.modern, prefix="s")
            params.update(body.params)
            params.update(own.params)
            alone = f"if({body.sql}, concat(source, ':', toString(offset)), '')"
            key = f"{key}, {alone} AS grp_body_"
            mine = f"max(if({own.sql}, 1, 0))"
        rows = list(
            reader.client.rows(
                "SELECT count() AS n_, "
                f"min(if({PRESENT_TIME}, time, toInt64({_LATEST}))) AS first_, "
                f"max(time) AS last_, {mine} AS mine_, argMin(raw, {_FIRST}) AS raw_, "
                f"argMin(source, {_FIRST}) AS src_, argMin(offset, {_FIRST}) AS off_ "
                f"{source} GROUP BY {key}",
                params,
            )
        )
        rows.sort(key=lambda r: (r["src_"], int(r["off_"])))  # sources by name, as Fetched
        path = os.path.join(self.folder, "audit.log")
        with open(path, "wb") as fh:
            for r in rows:
                fh.write(str(r["raw_"]).encode("utf-8", "surrogatepass") + b"\n")
        self.store = load(path)
        if len(self.store) != len(rows):  # row k must be group k
            raise StoreError(f"{len(rows):,} stored events read as {len(self.store):,}")
        first = np.array([int(r["first_"]) for r in rows], dtype=np.int64)
        first[first == _LATEST] = MISSING_TIME
        self.weights = Weights(
            np.array([int(r["n_"]) for r in rows], dtype=np.int64),
            first,
            np.array([int(r["last_"]) for r in rows], dtype=np.int64),
        )
        self.rows = None if bodies is None else np.flatnonzero([int(r["mine_"]) for r in rows])

    def __enter__(self) -> tuple[Store, Weights, np.ndarray | None]:
        assert self.store is not None
        return self.store, self.weights, self.rows

    def __exit__(self, *_: object) -> None:
        if self.store is not None:
            self.store.close()
        scratch.remove(self.folder)
