"""The query parser: syntax trees for valid queries, and errors (message and position) for
invalid ones. Evaluation is tested against a reference in test_query_reference.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audittui.output.inert import inert
from audittui.query.completion import term
from audittui.query.lexer import BadEscape, unescape
from audittui.query.syntax import And, Not, Or, QueryError, Term, Text, Value, parse

NOW = datetime(2024, 11, 15, 12, 0, 0, tzinfo=UTC).timestamp()


def us(text: str) -> int:
    """µs since the epoch of an ISO time, computed exactly (no float, no truncation)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def shape(node: Any) -> Any:
    """The tree without positions: ("and", ...), ("or", ...), ("not", x), ("text", s),
    ("user", (kind, text), ...) for terms (cmp values as (op, number[, high]))."""
    if isinstance(node, And):
        return ("and", *map(shape, node.nodes))
    if isinstance(node, Or):
        return ("or", *map(shape, node.nodes))
    if isinstance(node, Not):
        return ("not", shape(node.node))
    if isinstance(node, Text):
        return ("text", node.text)
    assert isinstance(node, Term), node
    return (node.field, *map(_value, node.values))


def _value(v: Value) -> tuple:
    if v.kind == "cmp":
        return (v.op, v.number, v.high) if v.op == "range" else (v.op, v.number)
    return (v.kind, v.text)


def T(s: str) -> tuple:  # noqa: N802 - short names keep the table readable
    return ("text", s)


def N(x: tuple) -> tuple:  # noqa: N802
    return ("not", x)


def A(*xs: tuple) -> tuple:  # noqa: N802
    return ("and", *xs)


def O(*xs: tuple) -> tuple:  # noqa: N802, E743
    return ("or", *xs)


def user(*values: tuple) -> tuple:
    return ("user", *values)


def ex(s: str) -> tuple:
    return ("exact", s)


SHAPES = [
    # empty queries
    ("", None),
    ("   \t ", None),
    # implicit AND, OR binding tighter than AND, NOT binding tightest, parentheses
    ("a", T("a")),
    ("a b", A(T("a"), T("b"))),
    ("a b OR c", A(T("a"), O(T("b"), T("c")))),
    ("a OR b c", A(O(T("a"), T("b")), T("c"))),
    ("a OR b OR c", O(T("a"), T("b"), T("c"))),
    ("(a b) OR c", O(A(T("a"), T("b")), T("c"))),
    ("a (b OR c) d", A(T("a"), O(T("b"), T("c")), T("d"))),
    ("((a))", T("a")),
    ("(a)(b)", A(T("a"), T("b"))),
    ("a OR(b)", O(T("a"), T("b"))),
    ("-a", N(T("a"))),
    ("NOT a", N(T("a"))),
    ("NOT a b", A(N(T("a")), T("b"))),
    ("-a OR b", O(N(T("a")), T("b"))),
    ("a OR NOT b", O(T("a"), N(T("b")))),
    ("NOT(a b)", N(A(T("a"), T("b")))),
    ("-(a OR b)", N(O(T("a"), T("b")))),
    ("NOT NOT a", N(N(T("a")))),
    ("--a", N(N(T("a")))),
    ('-"two words"', N(T("two words"))),
    ("-user:x", N(user(ex("x")))),
    # keywords only as whole upper-case words
    ("ORACLE NOTE", A(T("ORACLE"), T("NOTE"))),
    ("a or b", A(T("a"), T("or"), T("b"))),
    ("not a", A(T("not"), T("a"))),
    # a lone or inner hyphen is text
    ("-", T("-")),
    ("a - b", A(T("a"), T("-"), T("b"))),
    ("kube-system", T("kube-system")),
    # bare words and quoted phrases
    ("ALICE", T("ALICE")),
    ('"two words"', T("two words")),
    ('"say \\"hi\\""', T('say "hi"')),
    ('"back\\\\slash"', T("back\\slash")),
    ('"(a OR b)"', T("(a OR b)")),
    ('"user:alice"', T("user:alice")),
    ('foo"bar', T('foo"bar')),
    ("a,b", T("a,b")),
    ("straße İ", A(T("straße"), T("İ"))),
    # field terms, aliases, alternatives
    ("user:alice", user(ex("alice"))),
    ("u:alice", user(ex("alice"))),
    ("g:dev", ("group", ex("dev"))),
    ("v:get", ("verb", ex("get"))),
    ("res:pods", ("resource", ex("pods"))),
    ("r:pods/exec", ("resource", ex("pods/exec"))),
    ("resource:pods", ("resource", ex("pods"))),
    ("user:a,b", user(ex("a"), ex("b"))),
    ('user:"two words",b', user(ex("two words"), ex("b"))),
    ('user:a,"b,c"', user(ex("a"), ex("b,c"))),
    ("user:a OR user:b", O(user(ex("a")), user(ex("b")))),
    ("user:a,b verb:get", A(user(ex("a"), ex("b")), ("verb", ex("get")))),
    ("(user:a)", user(ex("a"))),
    # globs, colons in values
    (
        "user:system:serviceaccount:kube-system:*",
        user(("glob", "system:serviceaccount:kube-system:*")),
    ),
    ("user:*", user(("glob", "*"))),
    ('user:"a*b"', user(("exact", "a*b"))),  # quoted values are literal
    ('ip:"10.0.0.0/8"', ("ip", ("exact", "10.0.0.0/8"))),  # a quoted value is never a CIDR
    ("ip:10.0.0.0/8", ("ip", ("cidr", "10.0.0.0/8"))),
    # escapes in quoted values: \xHH and \uHHHH are that character (as the app shows them)
    ('user:"ev\\x1b[2J"', user(ex("ev\x1b[2J"))),
    ('user:"\\x1B]0;t\\x07"', user(ex("\x1b]0;t\x07"))),
    ('ua:"a\\u202eb"', ("ua", ex("a\u202eb"))),
    ('user:"\\\\x1b"', user(ex("\\x1b"))),  # an escaped backslash: the text \x1b
    ('user:"a\\"b"', user(ex('a"b'))),
    ('user:"\\*"', user(ex("*"))),  # any other escaped character is itself
    ('"\\x1b"', T("\x1b")),  # phrases too
    ("user:ev\\x1b", user(ex("ev\\x1b"))),  # a bare value has no escapes
    ("as:*", ("as", ("glob", "*"))),
    # the empty value
    ('ns:""', ("ns", ("empty", ""))),
    ('ns:"",default', ("ns", ("empty", ""), ex("default"))),
    ('api:""', ("api", ("empty", ""))),
    # regexes: spaces, an escaped slash, flags per field, a path that is not a regex
    ("user:/^sys/", user(("regex", "^sys"))),
    ("user:/a b/", user(("regex", "a b"))),
    ("uri:/a\\/b/", ("uri", ("regex", "a/b"))),
    ("uri:/\\/api\\/v1\\//", ("uri", ("regex", "/api/v1/"))),
    ("user:/x|y/,bob", user(("regex", "x|y"), ex("bob"))),
    ("(user:/[)]/)", user(("regex", "[)]"))),
    ("stage:/complete$/", ("stage", ("regex", "complete$"))),
    ("uri:/api/v1/pods", ("uri", ex("/api/v1/pods"))),
    ('uri:"/x/"', ("uri", ex("/x/"))),
    # ip: exact, CIDR, glob
    ("ip:10.0.0.1", ("ip", ex("10.0.0.1"))),
    ("ip:::1", ("ip", ex("::1"))),
    ("ip:10.0.0.0/8", ("ip", ("cidr", "10.0.0.0/8"))),
    ("ip:2001:db8::/32", ("ip", ("cidr", "2001:db8::/32"))),
    ("ip:10.*", ("ip", ("glob", "10.*"))),
    # code
    ("code:403", ("code", ("=", 403))),
    ("code:=404", ("code", ("=", 404))),
    ("code:>=400", ("code", (">=", 400))),
    ("code:<300", ("code", ("<", 300))),
    ("code:>500", ("code", (">", 500))),
    ("code:<=201", ("code", ("<=", 201))),
    ("code:4xx", ("code", ("range", 400, 499))),
    ("code:2XX", ("code", ("range", 200, 299))),
    ("code:4xx,>=500", ("code", ("range", 400, 499), (">=", 500))),
    # dur
    ("dur:>1s", ("dur", (">", 1_000_000))),
    ("dur:>=250ms", ("dur", (">=", 250_000))),
    ("dur:<1.5s", ("dur", ("<", 1_500_000))),
    ("dur:<=2m", ("dur", ("<=", 120_000_000))),
    ("dur:>100us", ("dur", (">", 100))),
    ("dur:>1h", ("dur", (">", 3_600_000_000))),
    ("dur:>0.3s", ("dur", (">", 300_000))),
    # after (inclusive) / before (exclusive); UTC unless an offset is given
    ("after:2024-11-15T10:00:00Z", ("after", (">=", us("2024-11-15T10:00:00Z")))),
    ("before:2024-11-15T10:00:00Z", ("before", ("<", us("2024-11-15T10:00:00Z")))),
    ("after:2024-11-15T10:00:00", ("after", (">=", us("2024-11-15T10:00:00Z")))),
    ("after:2024-11-15T12:00:00+02:00", ("after", (">=", us("2024-11-15T10:00:00Z")))),
    ("after:2024-11-15T10:00:00.123456Z", ("after", (">=", us("2024-11-15T10:00:00.123456Z")))),
    ("after:2024-11-15T10:00:00.5z", ("after", (">=", us("2024-11-15T10:00:00.5Z")))),
    ("before:2024-11-15", ("before", ("<", us("2024-11-15T00:00:00Z")))),
    ('after:"2024-11-15 10:00:00"', ("after", (">=", us("2024-11-15T10:00:00Z")))),
    # since: relative to now
    ("since:15m", ("since", (">=", int(NOW * 1e6) - 900_000_000))),
    ("since:2h", ("since", (">=", int(NOW * 1e6) - 7_200_000_000))),
    ("since:3d", ("since", (">=", int(NOW * 1e6) - 3 * 86_400_000_000))),
]


@pytest.mark.parametrize(("query", "expected"), SHAPES, ids=[q or "<empty>" for q, _ in SHAPES])
def test_shape(query: str, expected: Any) -> None:
    node = parse(query, now=NOW)
    assert (None if node is None else shape(node)) == expected


def test_positions() -> None:
    """Terms and text remember where they start (0-based), for highlighting and errors."""
    node = parse('alice -user:bob ("two words" OR code:4xx)')
    assert node == And(
        (
            Text("alice", 0),
            Not(Term("user", (Value("exact", "bob"),), 7)),
            Or(
                (
                    Text("two words", 17),
                    Term("code", (Value("cmp", "4xx", "range", 400, 499),), 32),
                )
            ),
        )
    )


def test_status_is_an_alias_of_code() -> None:
    """Regression. The spec lists fields as ``name (alias)``: "`user` (u)", "`group` (g)",
    ..., "`code` (status)". ``status:403`` used to be rejected as an unknown field."""
    assert parse("status:403") == parse("code:403")
    assert shape(parse("status:4xx,>=500")) == ("code", ("range", 400, 499), (">=", 500))


def test_after_before_the_epoch() -> None:
    """Regression. Times before 1970 with a fraction of a second were one second late:
    query._time_value computed int(dt.timestamp()) * 1_000_000 + dt.microsecond, and int()
    truncates towards zero (-0.5 s → 0 s, then + 500000 µs)."""
    assert shape(parse("after:1969-12-31T23:59:59.5Z")) == ("after", (">=", -500_000))
    assert shape(parse("before:1969-12-31T23:59:59.999999Z")) == ("before", ("<", -1))


# -- errors ---------------------------------------------------------------------------------

ERRORS = [
    # (query, words the message must contain, 0-based position)
    ("usr:alice", ["unknown field 'usr'", "did you mean 'user'"], 0),
    ("a verbb:get", ["unknown field 'verbb'", "did you mean 'verb'"], 2),
    ("resorce:pods", ["unknown field 'resorce'", "did you mean 'resource'"], 0),
    ("x -decison:allow", ["unknown field 'decison'", "did you mean 'decision'"], 3),
    ("grp:dev", ["unknown field 'grp'", "did you mean 'group'"], 0),
    ("(a aftr:2024-01-01)", ["unknown field 'aftr'", "did you mean 'after'"], 3),
    ('"abc', ["unterminated quote"], 0),
    ('a "b c', ["unterminated quote"], 2),
    ('user:"abc', ["unterminated quote"], 5),
    ('user:a,"b', ["unterminated quote"], 7),
    ('user:"a\\x1"', ["\\x needs 2 hex digits"], 7),
    ('user:"a\\xzz"', ["\\x needs 2 hex digits"], 7),
    ('ua:"\\u20"', ["\\u needs 4 hex digits"], 4),
    ('"ab\\u"', ["\\u needs 4 hex digits"], 3),
    ("(a b", ["never closed"], 0),
    ("x (a (b)", ["never closed"], 2),
    ("(", ["never closed"], 0),
    ("a)", ["unmatched ')'"], 1),
    ("(a)) b", ["unmatched ')'"], 3),
    (")", ["unmatched ')'"], 0),
    ("user:a)", ["unmatched ')'"], 6),
    ("()", ["empty parentheses"], 0),
    ("a ( )", ["empty parentheses"], 2),
    ("OR a", ["OR needs a term before it"], 0),
    ("a OR", ["OR needs a term after it"], 2),
    ("(a OR) b", ["OR needs a term after it"], 3),
    ("NOT", ["NOT needs a term after it"], 0),
    ("a NOT  ", ["NOT needs a term after it"], 2),
    ('""', ["empty search phrase"], 0),
    ("user:", ["'user:' needs a value"], 0),
    ("user: x", ["'user:' needs a value"], 0),
    ("user:,a", ["'user:' needs a value"], 5),
    ("code:abc", ["code:", "'abc'"], 5),
    ("code:4x", ["code:", "'4x'"], 5),
    ("code:>=40000", ["code:", "'>=40000'"], 5),
    ("code:403,x", ["code:", "'x'"], 9),
    ("dur:1s", ["dur:", "comparison", "'1s'"], 4),
    ("dur:>1", ["dur:", "'1' is not a duration"], 4),
    ("dur:>1y", ["'1y' is not a duration"], 4),
    ("dur:>=", ["dur:"], 4),
    ("a dur:>1s,250ms", ["comparison", "'250ms'"], 10),
    ("after:yesterday", ["'yesterday' is not an ISO-8601 time"], 6),
    ("before:2024-13-01", ["'2024-13-01' is not an ISO-8601 time"], 7),
    ("after:2024-11-15T25:00:00Z", ["not an ISO-8601 time"], 6),
    ("since:abc", ["since:", "'abc'"], 6),
    ("since:15", ["since:", "'15'"], 6),
    ("ip:10.0.0.0/33", ["'10.0.0.0/33' is not an IP network"], 3),
    ("ip:not/an/ip", ["'not/an/ip' is not an IP network"], 3),
    ("ip:10.0.0.1,::1/129", ["'::1/129' is not an IP network"], 12),
    ("user:/(/", ["bad regex /(/"], 5),
    ("stage:/[/", ["bad regex /[/"], 6),
    ("x uri:/a\\/(/", ["bad regex /a/(/"], 6),
    ("level:/(?P<x/", ["bad regex"], 6),
]


@pytest.mark.parametrize(("query", "words", "pos"), ERRORS, ids=[q for q, _, _ in ERRORS])
def test_error(query: str, words: list[str], pos: int) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    err = info.value
    for word in words:
        assert word in err.message
    assert err.pos == pos
    assert str(err) == f"at {pos + 1}: {err.message}"  # the position is named, 1-based
    assert isinstance(err, ValueError)


REGRESSION_ERRORS = [
    # NOT directly before ')' used to parse as NOT "" (Text("") matches every event, so the
    # group silently matched nothing) instead of failing like "NOT" at the end does.
    ("(NOT)", ["NOT needs a term after it"], 1),
    ("(a NOT) b", ["NOT needs a term after it"], 3),
    ("(a OR NOT)", ["NOT needs a term after it"], 6),
    # A duration or age too large for a float used to escape as OverflowError.
    ("NOT OR a", ["NOT needs a term after it"], 0),
    ("dur:>1" + "0" * 400 + "s", ["dur:"], 4),
    ("since:1" + "0" * 400 + "d", ["since:"], 6),
    # After a dangling comma the error used to point at the start of the term ("user:a,"
    # said "at 1"), not at the comma or the missing value after it.
    ("user:a,", ["needs a value"], (6, 7)),
    ("verb:get user:a, b", ["needs a value"], (15, 16)),
]


@pytest.mark.parametrize(
    ("query", "words", "pos"), REGRESSION_ERRORS, ids=[q[:20] for q, _, _ in REGRESSION_ERRORS]
)
def test_error_regressions(query: str, words: list[str], pos: int | tuple[int, ...]) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    for word in words:
        assert word in info.value.message
    assert info.value.pos in (pos if isinstance(pos, tuple) else (pos,))


def test_unknown_field_suggestion_maps_aliases() -> None:
    """A typo closest to an alias suggests the canonical field."""
    with pytest.raises(QueryError) as info:
        parse("rs:pods")
    assert "did you mean 'resource'?" in info.value.message
    assert info.value.pos == 0


def test_query_error_is_exported() -> None:
    import audittui

    assert audittui.QueryError is QueryError


# -- writing values: what the app puts into the filter bar ----------------------------------

HOSTILE_VALUES = [
    "ev\x1b[2J",
    "\x1b]52;c;aGk=\x07",
    "\x1b]0;title\x1b\\",
    "bidi\u202eevil\u2066",
    "zero\u200bwidth\ufeff",
    "\x9b31m\x85",
    "lone\ud800",
    "[bold]x[/] [link=https://e.x]y[/link]",
    "\\x1b",
    "a\\u202e",
    'q"x\\',
    "-neg",
    "/re/",
    "a*b",
    "a b,c(d)",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_written_value_is_inert_and_reads_back_exact(value):
    for field in ("user", "ua", "ns", "ip"):
        written = term(field, value)
        assert inert(written) == written  # nothing unsafe reaches the filter bar
        node = parse(written)
        assert isinstance(node, Term) and node.field == field
        assert [(v.kind, v.text) for v in node.values] == (
            [("exact", value)] if value else [("empty", "")]
        )


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_value_written_reads_back_exact(value):
    written = term("name", value)
    assert inert(written) == written
    (v,) = parse(written).values  # type: ignore[union-attr]
    assert (v.kind, v.text) == (("exact", value) if value else ("empty", ""))


def test_unescape_partial_drops_an_escape_still_being_typed():
    assert unescape("ab\\x1", partial=True) == "ab"
    assert unescape("ab\\u20", partial=True) == "ab"
    assert unescape("ab\\", partial=True) == "ab"
    assert unescape("ab\\xzz", partial=True) == "abxzz"  # malformed: its letter, as before
    assert unescape("\\x41\\u00e9\\\\\\q") == "Aé\\q"
    with pytest.raises(BadEscape) as exc:
        unescape("ab\\x1")
    assert exc.value.offset == 2
