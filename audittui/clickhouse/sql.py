"""The query language compiled to a ClickHouse ``WHERE`` clause over the table of :mod:`.schema`.

``compile_query(text)`` parses with :mod:`audittui.query.syntax` (the same parser, the same
errors) and turns the syntax tree into SQL whose meaning equals the in-memory index's: every
field and alias, ``field:a,b``, globs, ``/regex/``, ``""`` (missing or empty), the
case-insensitive fields, groups and IPs matching on any element, ``code:``/``dur:``/time
comparisons, IP networks, ``binding:``/``role:``/``authorizer:`` read from the reason as
:func:`audittui.ingest.authz.parse_reason` reads it, and free text as a case-insensitive
substring of the raw JSON (:mod:`audittui.index.textsearch`). ``cluster:`` selects the cluster
a shipper named.

Every value that comes from the user is a ``{pN:Type}`` placeholder with its value in
``params``; the SQL text holds only column names, operators and constants of this module. The
client sends the values as query parameters (or, on an 18.16 server, as external data).

Nullable columns are read through ``ifNull(c, '')`` so that every term is 0 or 1, never NULL:
``NOT`` of a term on a missing field is then true, as in memory.

Regexes: the language's ``/re/`` is RE2's (:mod:`audittui.query.patterns`), as ClickHouse's
``match()``; the parser has refused what RE2 cannot run, with the same check for both backends.
Two things are written for the server: ``(?-s)`` first (ClickHouse turns RE2's dot-matches-
newline on, the language leaves it off) and a NUL as ``\\x00`` (ClickHouse wants none in a
pattern). Globs are RE2 patterns too (:func:`audittui.query.patterns.glob_source`).

``finding:`` and ``rule:`` are computed by analyses over events in memory: refused here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..query.fields import CASE_INSENSITIVE, GRANT_FIELDS, MULTI_VALUED, STRING_FIELDS
from ..query.patterns import PatternError, glob_source
from ..query.patterns import check as check_regex
from ..query.syntax import And, Node, Not, Or, Term, Text, Value, parse, split_resource


class SqlError(ValueError):
    """A query term that cannot run on a store (a message of one line)."""


@dataclass(frozen=True)
class Where:
    """A compiled filter: SQL text with ``{name:Type}`` placeholders, and their values."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


ALL = Where("1")
PRESENT_TIME = "time >= -9223372036854775807"  # MISSING_TIME is Int64's least value
DERIVED = ("finding", "rule")


def compile_query(text: str, now: float | None = None, modern: bool = True) -> Where:
    """The ``WHERE`` condition for a query (``"1"`` for an empty one). Raises
    :class:`audittui.query.syntax.QueryError` for a bad query, :class:`SqlError` for a term a
    store cannot answer. ``modern``: the server is 22.x or later (IPv6 parsing functions
    differ; see :meth:`_Compiler._cidr`)."""
    return compile_node(parse(text, now=now), modern=modern)


# A derived field a caller can answer on a store (rule: with a policy): for a term, an
# expression over the table's columns and the values of it that the term selects.
Derived = Callable[[Term], tuple[str, list[str]]]


def compile_node(
    node: Node | None,
    modern: bool = True,
    prefix: str = "p",
    derived: Mapping[str, Derived] | None = None,
) -> Where:
    """:func:`compile_query` for a parsed tree; placeholders are named ``{prefix}N``.
    ``derived``: how to answer the derived fields (finding:, rule:) that can be here."""
    if node is None:
        return ALL
    compiler = _Compiler(modern, prefix, derived or {})
    return Where(compiler.node(node), compiler.params)


def derived_fields(node: Node | None) -> set[str]:
    """The fields of a tree that only the in-memory analyses know (finding:, rule:)."""
    from ..query.syntax import fields_of

    return fields_of(node) & set(DERIVED)


# -- reading the reason as ingest.authz does ------------------------------------------------

_Q = r'"(?:[^"\\]|\\.)*"'  # a quoted name, with Go escapes
_B = r"\S+"  # an old server's bare name


def _rbac_pattern(capture: int = -1, quoted: bool = True) -> str:
    """authz._RBAC for RE2, with one group capturing (ClickHouse 18.16 has ``extract`` only,
    which returns the first group): group ``capture`` of (binding kind, binding name, role
    kind, role name, subject kind, subject name), a name's quoted or bare alternative."""

    def name(k: int) -> str:
        if capture == k:
            return f"(?:({_Q})|{_B})" if quoted else f"(?:{_Q}|({_B}))"
        return f"(?:{_Q}|{_B})"

    def kinds(k: int, words: str) -> str:
        return f"({words})" if capture == k else f"(?:{words})"

    return (
        "(?-s)^RBAC: allowed by "
        + kinds(0, "ClusterRoleBinding|RoleBinding")
        + f"(?: {name(1)})?"
        + f"(?: of {kinds(2, 'ClusterRole|Role')} {name(3)})?"
        + f"(?: to {kinds(4, 'User|Group|ServiceAccount')} {name(5)})?$"
    )


def _sql_string(text: str) -> str:
    """A constant of this module as a SQL string literal (never user input)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_REASON = "ifNull(reason, '')"
_NODE = r"""\bnode ['"]|\bno relationship found between node\b|^node\b"""  # authz._NODE
_WEBHOOK = r"(?i)\bIAM\b|\bwebhook\b"
_RBAC = f"match({_REASON}, {_sql_string(_rbac_pattern())})"


def _grant_name(k: int) -> str:
    """The k-th name of an RBAC reason as parse_reason gives it ('' when none)."""
    quoted = f"extract({_REASON}, {_sql_string(_rbac_pattern(k, True))})"
    bare = f"extract({_REASON}, {_sql_string(_rbac_pattern(k, False))})"
    # a quoted name without its quotes and with its escapes read (authz._pick)
    unescape = _sql_string(r"(?-s)\\(.)")
    unquoted = (
        f"replaceRegexpAll(substring({quoted}, 2, length({quoted}) - 2), {unescape}, '\\\\1')"
    )
    return f"if({quoted} != '', {unquoted}, {bare})"


def _grant_kind(k: int) -> str:
    return f"extract({_REASON}, {_sql_string(_rbac_pattern(k))})"


_BINDING_KIND = _grant_kind(0)
_ROLE_KIND = _grant_kind(2)
_BINDING_FULL = _grant_name(1)  # a RoleBinding's is "name/namespace"
_ROLE = _grant_name(3)
# RoleBinding "b/ns": the name before the last slash, the namespace after it
_SPLIT = f"({_BINDING_KIND} = 'RoleBinding' AND position({_BINDING_FULL}, '/') > 0)"
_BINDING = f"if({_SPLIT}, extract({_BINDING_FULL}, '(?s)^(.*)/'), {_BINDING_FULL})"
_BINDING_NS = f"if({_SPLIT}, extract({_BINDING_FULL}, '(?s)/([^/]*)$'), '')"
# The binding and the role are "present" (not None in Python) when their group took part in
# the match; a quoted name may be empty, so presence is tested on the raw group.
_BINDING_SEEN = (
    f"({_RBAC} AND (extract({_REASON}, {_sql_string(_rbac_pattern(1, True))}) != ''"
    f" OR extract({_REASON}, {_sql_string(_rbac_pattern(1, False))}) != ''))"
)
_ROLE_SEEN = f"({_RBAC} AND {_ROLE_KIND} != '')"
_NS_PART = f"if({_BINDING_NS} != '', concat({_BINDING_NS}, '/'), '')"
_GRANT_VALUES = {
    "binding": f"if({_RBAC}, {_BINDING}, '')",
    "role": f"if({_RBAC}, {_ROLE}, '')",
    "authorizer": (
        f"multiIf(startsWith({_REASON}, 'RBAC:'), 'RBAC', "
        f"match({_REASON}, {_sql_string(_NODE)}), 'Node', "
        f"match({_REASON}, {_sql_string(_WEBHOOK)}), 'Webhook', '')"
    ),
}
_GRANT_LABELS = {
    "binding": f"if({_BINDING_SEEN}, concat({_BINDING_KIND}, '/', {_NS_PART}, {_BINDING}), '')",
    "role": (
        f"if({_ROLE_SEEN}, concat({_ROLE_KIND}, '/', "
        f"if({_ROLE_KIND} = 'Role', {_NS_PART}, ''), {_ROLE}), '')"
    ),
}

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"


def _ipv4_number(x: str) -> str:
    octets = [f"toUInt32OrZero(splitByChar('.', {x})[{k}])" for k in range(1, 5)]
    return f"({octets[0]} * 16777216 + {octets[1]} * 65536 + {octets[2]} * 256 + {octets[3]})"


# -- the compiler ----------------------------------------------------------------------------


class _Compiler:
    def __init__(self, modern: bool, prefix: str, derived: Mapping[str, Derived]) -> None:
        self.modern = modern
        self.prefix = prefix
        self.derived = derived
        self.params: dict[str, Any] = {}

    def param(self, value: Any, type_: str) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{type_}}}"

    def pattern(self, regex: str) -> str:
        """A regex parameter for match(). ClickHouse before 19 looks for a literal the
        pattern must contain, case-sensitively and reading ``\\x20`` as ``x20``, so ``(?i)``
        and escapes went unmatched; a second, never-matching alternative turns that off."""
        return self.param(regex if self.modern else f"(?:{regex})|[^\\s\\S]", "String")

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.node(n) for n in node.nodes) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(n) for n in node.nodes) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.node)})"
        if isinstance(node, Text):
            # textsearch: the phrase, ignoring case, anywhere in the event's JSON as written
            return f"(positionCaseInsensitiveUTF8(raw, {self.param(node.text, 'String')}) > 0)"
        return self.term(node)

    def term(self, term: Term) -> str:
        name = term.field
        if name in self.derived:
            expression, values = self.derived[name](term)
            return f"({expression} IN {self.param(values, 'Array(String)')})"
        if name in DERIVED:
            raise SqlError(
                f"{name}: is computed in memory (findings, a policy) and cannot filter a store"
            )
        if name == "code":
            return self.numbers("code", term.values, "code != 0")
        if name == "dur":
            return self.numbers("latency", term.values, "latency >= 0")
        if name in ("after", "before", "since"):
            return f"({PRESENT_TIME} AND {self.compare('time', term.values)})"
        if name == "cluster":
            return self.strings("cluster", "cluster", term.values)
        if name == "resource":
            return self.resource(term.values)
        if name in GRANT_FIELDS:
            value = self.strings(name, _GRANT_VALUES[name], term.values)
            if name not in _GRANT_LABELS:
                return value
            return f"({value} OR {self.strings(name, _GRANT_LABELS[name], term.values)})"
        column = STRING_FIELDS[name]
        if column in MULTI_VALUED:
            return self.array(name, column, term.values)
        if name == "api":  # the core group is "" and written core; NULL: non-resource
            return self.strings(
                name, "multiIf(api IS NULL, '', api = '', 'core', api)", term.values
            )
        return self.strings(name, _text(column), term.values)

    # strings

    def strings(self, name: str, expr: str, values: tuple[Value, ...]) -> str:
        """A single-valued string (``expr`` is '' when missing) against the alternatives."""
        parts = []
        tests = [self.test(name, expr, v) for v in values if v.kind != "empty"]
        if any(v.kind == "empty" for v in values):
            parts.append(f"{expr} = ''")
        if tests:
            parts.append(f"({expr} != '' AND ({' OR '.join(tests)}))")
        return "(" + " OR ".join(parts) + ")"

    def array(self, name: str, column: str, values: tuple[Value, ...]) -> str:
        """groups and IPs: any element matches; an empty array is a missing field."""
        parts = []
        if any(v.kind == "empty" for v in values):
            parts.append(f"empty({column})")
        exact = [v.text for v in values if v.kind == "exact"]
        if exact:
            parts.append(f"hasAny({column}, {self.param(exact, 'Array(String)')})")
        tests = [self.test(name, "x", v) for v in values if v.kind not in ("empty", "exact")]
        if tests:
            parts.append(f"arrayExists(x -> ({' OR '.join(tests)}), {column})")
        return "(" + " OR ".join(parts) + ")"

    def test(self, name: str, x: str, v: Value) -> str:
        """One alternative over a present value ``x``."""
        ci = name in CASE_INSENSITIVE
        if v.kind == "exact":
            if ci:
                return f"lowerUTF8({x}) = {self.param(v.text.lower(), 'String')}"
            return f"{x} = {self.param(v.text, 'String')}"
        if v.kind == "glob":
            return self.glob(x, v.text) if not ci else self.regex_glob(x, v.text, ci)
        if v.kind == "regex":
            return f"match({x}, {self.pattern(regex_pattern(v.text, ci))})"
        if v.kind == "cidr":
            return self.cidr(x, v.text)
        raise SqlError(f"cannot compile a {v.kind} value")  # pragma: no cover - parser kinds

    def glob(self, x: str, text: str) -> str:
        """A case-sensitive glob; its common shapes (``*``, ``a*``, ``*a``, ``*a*``) by string
        functions, which compare bytes as :class:`audittui.query.patterns.Glob` compares
        characters, at a fraction of a regex's cost."""
        parts = text.split("*")
        first, last, middle = parts[0], parts[-1], parts[1:-1]
        if len(parts) > 1 and not any(middle):
            tests = []
            if first:
                tests.append(f"startsWith({x}, {self.param(first, 'String')})")
            if last:
                tests.append(f"endsWith({x}, {self.param(last, 'String')})")
            if first and last:  # "a*a" is no "a": the two ends must not overlap
                tests.append(f"length({x}) >= {len(first.encode()) + len(last.encode())}")
            return "(" + " AND ".join(tests) + ")" if tests else "1"
        if len(parts) == 3 and not first and not last and middle[0]:
            return f"(position({x}, {self.param(middle[0], 'String')}) > 0)"
        return self.regex_glob(x, text, False)

    def regex_glob(self, x: str, text: str, ci: bool) -> str:
        return f"match({x}, {self.pattern(glob_pattern(text, ci))})"

    def cidr(self, x: str, text: str) -> str:
        """An address in a network, as ``ipaddress`` decides: only an address of the network's
        version, written as Python accepts it. IPv4 exactly (its strict form checked by regex,
        then its number); IPv6 as the server parses it (18.16's IPv6StringToNum gives zeros
        for text it cannot read; a current server has isIPv6String)."""
        net = ipaddress.ip_network(text, strict=False)
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if net.version == 4:
            return (
                f"(match({x}, {_sql_string(_IPV4)}) AND {_ipv4_number(x)} BETWEEN "
                f"{self.param(lo, 'Int64')} AND {self.param(hi, 'Int64')})"
            )
        low, high = self.param(f"{lo:032X}", "String"), self.param(f"{hi:032X}", "String")
        if self.modern:
            number = f"hex(IPv6StringToNumOrDefault({x}))"
            return f"(isIPv6String({x}) AND {number} BETWEEN {low} AND {high})"
        number = f"hex(IPv6StringToNum({x}))"
        zero = "'" + "0" * 32 + "'"
        valid = f"({number} != {zero} OR match({x}, '^(?:0{{0,4}}:){{1,7}}:?0{{0,4}}$'))"
        return f"(position({x}, ':') > 0 AND {valid} AND {number} BETWEEN {low} AND {high})"

    def resource(self, values: tuple[Value, ...]) -> str:
        """``res:pods`` any subresource, ``res:pods/exec``, ``res:pods/``, a regex over
        ``resource/subresource`` (query._resource_mask)."""
        parts = []
        for v in values:
            if v.kind == "regex":
                joined = (
                    "if(ifNull(subresource, '') != '', "
                    "concat(resource, '/', subresource), resource)"
                )
                pattern = self.pattern(regex_pattern(v.text, False))
                parts.append(f"(resource IS NOT NULL AND match({joined}, {pattern}))")
                continue
            res, sub = split_resource(v)
            part = self.strings("resource", _text("resource"), (res,))
            if sub is not None:
                part = f"({part} AND {self.strings('sub', _text('subresource'), (sub,))})"
            parts.append(part)
        return "(" + " OR ".join(parts) + ")"

    # numbers

    def numbers(self, column: str, values: tuple[Value, ...], present: str) -> str:
        """Comparisons hold where the number is present; "" selects where it is not."""
        parts = []
        compared = tuple(v for v in values if v.kind != "empty")
        if compared:
            parts.append(f"({present} AND {self.compare(column, compared)})")
        if len(compared) < len(values):
            parts.append(f"(NOT ({present}))")
        return "(" + " OR ".join(parts) + ")"

    def compare(self, column: str, values: tuple[Value, ...]) -> str:
        parts = []
        for v in values:
            if v.op == "range":
                low, high = self.param(v.number, "Int64"), self.param(v.high, "Int64")
                parts.append(f"({column} BETWEEN {low} AND {high})")
            else:
                parts.append(f"({column} {v.op} {self.param(v.number, 'Int64')})")
        return "(" + " OR ".join(parts) + ")"


def _text(column: str) -> str:
    """A string column read as text, '' when missing (NULL would make NOT of a term NULL)."""
    return column if column in ("stage", "audit_id", "cluster") else f"ifNull({column}, '')"


# -- patterns for RE2 ------------------------------------------------------------------------


glob_pattern = glob_source  # a glob for match(): the whole value, * any run of characters


def regex_pattern(text: str, ci: bool = False) -> str:
    """A regex of the language for ``match()``, or :class:`SqlError` if it is none (the parser
    has refused it already; kept for direct callers)."""
    try:
        check_regex(text)
    except PatternError as exc:
        raise SqlError(str(exc)) from None
    return ("(?i)" if ci else "") + "(?-s)" + _without_nul(text)


def _without_nul(text: str) -> str:
    """``text`` with each NUL, escaped or not, written ``\\x00`` (the same character to RE2)."""
    if "\0" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "\\" and i + 1 < n:
            pair = text[i : i + 2]
            out.append("\\x00" if pair[1] == "\0" else pair)
            i += 2
            continue
        out.append("\\x00" if text[i] == "\0" else text[i])
        i += 1
    return "".join(out)
