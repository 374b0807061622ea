"""Query terms decided on a column's distinct values, as the in-memory evaluator decides them.

A rule pack's queries are long lists of alternatives (users by glob, namespaces, user agents,
networks): written out as SQL, each alternative is one ``match()`` per row, and a pack of a
hundred rules spends its time running regexes over the same few hundred values millions of
times. Here a term over a column of few distinct values is decided once per value, in Python,
by the in-memory evaluator's own matcher (:func:`audittui.index.evaluate.string_matcher`:
the same globs, regexes, networks and case rules), and sent to the server as the set of the
values that match: ``ifNull(col, '') IN {p:Array(String)}`` (for groups and IPs, the elements
that match: ``hasAny``). The set is a parameter, not SQL text, so an 18.16 server's limit on a
statement's syntax elements does not grow with it.

A column of many distinct values (a URI, a name) keeps SQL's own test (:mod:`.sql`), and so do
the fields whose value is computed from others (``api``, the reason's grants, ``resource``'s
joined form for a regex).

The values are those of the whole table when first asked for: an event written after that with
a new value is judged by this compile as not matching a term that reads it (a finding's run is
one reading of the store).
"""

from __future__ import annotations

from typing import Any

from ..index.evaluate import string_matcher
from ..query.fields import MULTI_VALUED, STRING_FIELDS
from ..query.syntax import Node, Term, split_resource
from .reads import Reader
from .sql import ALL, Where, _Compiler

# Columns worth deciding on their values (a pack's terms read them; they hold few values).
COLUMNS = frozenset(
    {"user", "namespace", "verb", "resource", "subresource", "decision", "user_agent"}
    | {"impersonated", "groups", "ips", "level", "credential"}
)
MAX_VALUES = 20_000  # more distinct values than this: the column keeps SQL's own test


class Values:
    """The distinct values of a reader's columns, each fetched once when first needed."""

    def __init__(self, reader: Reader, limit: int = MAX_VALUES) -> None:
        self.reader = reader
        self.limit = limit
        self._known: dict[str, list[str] | None] = {}
        self._sets: dict[tuple[str, tuple[str, ...]], str] = {}

    def set_name(self, column: str, chosen: list[str]) -> str:
        """One placeholder name per distinct set of a column's values, shared by every query
        compiled over these values: the same term of many rules (a pack's shared exclusion
        lists) is then the same expression, which the server computes once per row."""
        return self._sets.setdefault((column, tuple(chosen)), f"dv{len(self._sets)}_")

    def of(self, column: str) -> list[str] | None:
        """The column's distinct present values (a list column's: its elements), None when
        there are too many."""
        if column not in self._known:
            self._known[column] = self._fetch(column)
        return self._known[column]

    def _fetch(self, column: str) -> list[str] | None:
        value = f"arrayJoin(`{column}`)" if column in MULTI_VALUED else f"`{column}`"
        source, params = self.reader._from(None, final=False)  # copies add no value
        rows = list(
            self.reader.client.rows(
                f"SELECT DISTINCT {value} AS v {source} LIMIT {self.limit + 1}",
                params,
                limit=self.limit + 1,
            )
        )
        if len(rows) > self.limit:  # counted before '' and NULL are dropped: maybe more
            return None
        # a list's element may be "" (matched as the text it is); a single value's "" is missing
        keep_empty = column in MULTI_VALUED
        values = [str(r["v"]) for r in rows if r["v"] is not None and (keep_empty or r["v"])]
        return values


def compile_distinct(
    node: Node | None, values: Values, modern: bool = True, prefix: str = "p"
) -> Where:
    """:func:`.sql.compile_node` with the terms over :data:`COLUMNS` decided on ``values``."""
    if node is None:
        return ALL
    compiler = _DistinctCompiler(values, modern, prefix)
    return Where(compiler.node(node), compiler.params)


class _DistinctCompiler(_Compiler):
    def __init__(self, values: Values, modern: bool, prefix: str) -> None:
        super().__init__(modern, prefix, {})
        self.values = values

    def term(self, term: Term) -> str:
        if term.field == "resource":
            return self._resource(term)
        column = STRING_FIELDS.get(term.field)
        if column not in COLUMNS or term.field in ("api",):
            return super().term(term)
        lowered = self._lowered(term.field, column, term.values)
        return super().term(term) if lowered is None else lowered

    def _lowered(self, field: str, column: str, alternatives: Any) -> str | None:
        """The term as a set of matching values, or None (the column has too many)."""
        values = self.values.of(column)
        if values is None:
            return None
        match = string_matcher(field, tuple(alternatives))
        missing = any(v.kind == "empty" for v in alternatives)
        if column in MULTI_VALUED:
            # any element matches: the elements that do (a one-element list is the element)
            chosen = [v for v in values if match((v,))]
            parts = [f"hasAny(`{column}`, {self.shared(column, chosen)})"] if chosen else []
            if missing:
                parts.append(f"empty(`{column}`)")
        else:
            chosen = [v for v in values if match(v)]
            if missing:
                chosen.append("")
            text = f"ifNull(`{column}`, '')" if column not in ("stage",) else f"`{column}`"
            parts = [f"{text} IN {self.shared(column, chosen)}"] if chosen else []
        return "(" + " OR ".join(parts) + ")" if parts else "0"

    def shared(self, column: str, chosen: list[str]) -> str:
        """The placeholder of a set of the column's values (its name shared, see set_name)."""
        name = self.values.set_name(column, chosen)
        self.params[name] = chosen
        return f"{{{name}:Array(String)}}"

    def _resource(self, term: Term) -> str:
        """``res:`` as :meth:`.sql._Compiler.resource`, each part decided on its values."""
        parts = []
        for v in term.values:
            if v.kind == "regex":
                parts.append(super().resource((v,)))
                continue
            res, sub = split_resource(v)
            part = self._lowered("resource", "resource", (res,))
            if part is None:
                parts.append(super().resource((v,)))
                continue
            if sub is not None:
                subpart = self._lowered("sub", "subresource", (sub,))
                if subpart is None:
                    parts.append(super().resource((v,)))
                    continue
                part = f"({part} AND {subpart})"
            parts.append(part)
        return "(" + " OR ".join(parts) + ")"
