"""The values a store proposes for Tab completion: the
:class:`~audittui.query.completion.ValueSource` of a ClickHouse store, asked of the server and
answered as the in-memory index's (:class:`audittui.index.values.StoreValues`) answers: the
values of a field starting with the prefix typed, most frequent first (ties by text), their
common prefix and whether they must be quoted.
"""

from __future__ import annotations

import os
from typing import Any

from ..query.completion import MAX_CANDIDATES, Found
from ..query.fields import CASE_INSENSITIVE, GRANT_FIELDS, MULTI_VALUED, STRING_FIELDS
from ..query.lexer import needs_quotes
from .reads import Reader, _answered
from .sql import _GRANT_LABELS, _GRANT_VALUES

SCAN = 1_000  # values read per ask: the candidates and what says how they must be quoted


def _expression(field: str, prefix: str) -> str | None:
    """The values of ``field`` as one String per event (per element of an array's), ''
    for none; None for a field a store has no values of."""
    if field == "code":
        return "if(code > 0 AND code < 10000, toString(code), '')"
    if field == "resource" and "/" in prefix:  # resource/subresource pairs
        return (
            "if(resource IS NULL OR ifNull(subresource, '') = '', '', "
            "concat(resource, '/', subresource))"
        )
    if field in GRANT_FIELDS:
        return _GRANT_LABELS.get(field, _GRANT_VALUES.get(field))
    column = STRING_FIELDS.get(field)
    if column is None:
        return None
    if column in MULTI_VALUED:
        return f"arrayJoin(`{column}`)"
    if field == "api":  # the core group is stored as "", written core
        return "if(api IS NULL, '', if(api = '', 'core', api))"
    return f"ifNull(`{column}`, '')"


class ServerValues:
    """The values of the events of ``reader``'s table (its cluster's)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.client = reader.client  # (what _answered names in its error)

    def __call__(self, field: str, prefix: str, exclude: set[str]) -> Found | None:
        expression = _expression(field, prefix)
        if expression is None:
            return None
        any_case = field in CASE_INSENSITIVE
        rows = self._ask(expression, prefix, exclude, any_case)
        if not rows and prefix and not any_case:  # nothing in this case: try any case
            any_case = True
            rows = self._ask(expression, prefix, exclude, any_case)
        if field == "resource" and "/" not in prefix:  # a '/' makes a pair: asked apart
            rows = [r for r in rows if "/" not in r[0]]
        if not rows:
            return None
        values = [v for v, _ in rows]
        ranked = values[:MAX_CANDIDATES]
        if len(rows) < SCAN:
            common = os.path.commonprefix([min(values), max(values)])
        else:  # more than read: the common prefix of them all, from the extremes
            low, high = self._extremes(expression, prefix, exclude, any_case)
            common = os.path.commonprefix([low, high])
        if len(values) == 1:
            return Found(ranked, common, "none")
        quoted = sum(needs_quotes(v) or (field == "ip" and "/" in v) for v in values)
        quoting = "none" if not quoted else "all" if quoted == len(values) else "mixed"
        return Found(ranked, common, quoting)

    def _matching(
        self, expression: str, prefix: str, exclude: set[str], any_case: bool
    ) -> tuple[str, dict[str, Any]]:
        source, params = self.reader._from(None)
        params.update(prefix_=prefix, exclude_=sorted(exclude))
        head = "substring(v, 1, length({prefix_:String}))"
        starts = f"lower({head}) = lower({{prefix_:String}})" if any_case else (
            f"{head} = {{prefix_:String}}"
        )  # fmt: skip
        sql = (
            f"SELECT v, count() AS n FROM (SELECT {expression} AS v {source}) "
            f"WHERE v != '' AND {starts} AND NOT has({{exclude_:Array(String)}}, v) GROUP BY v"
        )
        return sql, params

    @_answered
    def _ask(
        self, expression: str, prefix: str, exclude: set[str], any_case: bool
    ) -> list[tuple[str, int]]:
        sql, params = self._matching(expression, prefix, exclude, any_case)
        params["limit_"] = SCAN
        rows = self.reader.client.rows(
            f"{sql} ORDER BY n DESC, v ASC LIMIT {{limit_:UInt64}}", params, limit=SCAN
        )
        return [(str(r["v"]), int(r["n"])) for r in rows]

    @_answered
    def _extremes(
        self, expression: str, prefix: str, exclude: set[str], any_case: bool
    ) -> tuple[str, str]:
        sql, params = self._matching(expression, prefix, exclude, any_case)
        row = self.reader.client.one(f"SELECT min(v) AS lo, max(v) AS hi FROM ({sql})", params)
        return str(row["lo"]), str(row["hi"])
