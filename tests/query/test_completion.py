"""Tab completion: field names, values from the index, quoting that the parser reads back as the
very value, the span replaced, and cost on a big store."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest
from conftest import v1_event

from audittui.index.evaluate import select
from audittui.index.loader import load, read_sources
from audittui.index.store import Store
from audittui.index.values import _special_lut, complete
from audittui.ingest.batch import NUMBER_COLUMNS, STRING_COLUMNS, Batch
from audittui.ingest.sources import Source, open_source
from audittui.output.inert import inert
from audittui.query.completion import FIELD_NAMES, MAX_CANDIDATES, VALUE_FIELDS, Completion, apply
from audittui.query.fields import MULTI_VALUED, STRING_FIELDS, display_api
from audittui.query.lexer import needs_quotes
from audittui.query.syntax import Not, Term, parse

# Values the tokenizer treats specially, or that look like syntax, or are just unusual.
AWKWARD_USERS = [
    "system:serviceaccount:kube-system:foo",
    "a b",
    "tab\there",
    "line\nbreak",
    "nbsp\u00a0x",
    "ideographic\u3000space",
    "zero\u200bwidth",  # not whitespace: stays bare
    'q"x',
    '"lead',
    '"',
    "p(x)",
    "(",
    ")",
    "c,d",
    ",",
    "-neg",
    "-",
    "--",
    "/slash",
    "/re/",
    "mid/slash",
    "star*x",
    "*",
    "back\\slash",
    "trail\\",
    "\\",
    'both\\"',
    "uni✓é日本",
    "OR",
    "NOT",
    "x:y:",
    "nul\x00byte",
    "Alice",
    "albert",
    # hostile: terminal escapes, bidi, Rich markup, and the escapes' own text
    "ev\x1b[2J",
    "\x1b]52;c;aGk=\x07",
    "\x1b]0;title\x07x",
    "bidi\u202eevil",
    "\x9b31m",
    "[bold]x[/]",
    "\\x1b",
    "a\\u202e",
]


def _event(make_event, user: str, **extra) -> dict:
    return make_event(user={"username": user, "groups": ["dev"]}, **extra)


@pytest.fixture
def awkward(make_event, write_lines) -> Store:
    events = [_event(make_event, "alice") for _ in range(3)]
    events += [_event(make_event, u) for u in AWKWARD_USERS]
    events += [
        make_event(
            user={
                "username": "bob",
                "groups": ["g h", "a,b", "(x)", "system:authenticated"],
                "extra": {"authentication.kubernetes.io/credential-id": ["JTI=a b,c"]},
            },
            impersonatedUser={"username": "imp (x)"},
            sourceIPs=["10.0.0.2", "2001:db8::1", "10.0.0.0/8", "::1"],
            userAgent="kubectl/v1.30.0 (linux/amd64) kubernetes/abc",
            verb="weird verb",
            objectRef={
                "resource": "pods",
                "subresource": "exec",
                "namespace": "with space",
                "name": "my pod",
                "apiVersion": "v1",
            },
            responseStatus={"code": 403},
            stage="ResponseStarted",
            level="RequestResponse",
            annotations={
                "authorization.k8s.io/decision": "forbid",
                "audittui/server": "master 0",
                "authentication.openshift.io/username": "user (1)",
            },
        ),
        make_event(
            objectRef={"resource": "pods", "subresource": "log", "namespace": "kube-system"},
            responseStatus={"code": 404},
        ),
        make_event(
            objectRef={
                "resource": "deployments",
                "subresource": "scale",
                "apiGroup": "apps",
                "namespace": "default",
                "name": "web,1",
            },
            userAgent="Go-http-client/2.0",
        ),
    ]
    return load(write_lines("awkward.log", events))


def _distinct(store: Store, field: str) -> set[str]:
    """Every literal value of a field that a term can select, straight from the tables."""
    column = STRING_FIELDS[field]
    values = store.tables[column].values[1:]
    if column in MULTI_VALUED:
        values = [s for t in values for s in t]
    if field == "api":
        values = [display_api(v) for v in values]
    out = {v for v in values if v}
    if field == "resource":
        out = {v for v in out if "/" not in v}  # a resource/subresource pair
    return out


def _events_with(store: Store, field: str, value: str) -> int:
    column = STRING_FIELDS[field]
    n = 0
    for i in range(len(store)):
        v = store.value(column, i)
        if field == "api":
            v = display_api(v)
        n += value in v if column in MULTI_VALUED and v else v == value
    return n


def _single_value(candidate: str) -> tuple[str, str]:
    node = parse(candidate)
    assert isinstance(node, Term), (candidate, node)
    assert len(node.values) == 1, (candidate, node)
    (value,) = node.values
    assert value.kind == "exact", (candidate, value)
    return node.field, value.text


# -- values read back by the parser ----------------------------------------------------------------


@pytest.mark.parametrize("opener", ["", '"'])
@pytest.mark.parametrize("field", sorted(VALUE_FIELDS))
def test_every_candidate_parses_back_to_its_value(awkward, field, opener):
    comp = complete(f"{field}:{opener}", len(field) + 1 + len(opener), awkward)
    expected = _distinct(awkward, field)
    assert comp.kind == "value" and (comp.start, comp.end) == (0, len(field) + 1 + len(opener))
    got = {}
    for candidate in comp.candidates:
        assert inert(candidate) == candidate, candidate  # no raw unsafe character
        name, text = _single_value(candidate)
        assert name == field
        got[text] = candidate
        if opener:
            assert candidate.startswith(f'{field}:"') and candidate.endswith('"')
        # The term selects exactly the events holding the value.
        assert len(select(awkward, candidate)) == _events_with(awkward, field, text), candidate
    assert set(got) == expected
    assert len(got) == len(comp.candidates)  # no duplicates


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Store:
    """A log whose every completable field carries terminal escapes, bidi or Rich markup."""
    event = v1_event(
        user={
            "username": "evil",
            "groups": ["g\x1b]52;c;aGk=\x07"],
            "extra": {"authentication.kubernetes.io/credential-id": ["JTI=\u202ex"]},
        },
        impersonatedUser={"username": "imp\x1b[2J"},
        sourceIPs=["10.9.9.9\x1b[2J"],
        userAgent="curl\x1b]0;pwned\x07/8.0 [link=https://x]y[/link]",
        verb="get\x9b2J",
        objectRef={
            "resource": "pods\u2066",
            "subresource": "e\x1bxec",
            "apiGroup": "apps\u200b",
            "namespace": "ns\x1b]52;c;aGk=\x07",
            "name": "[bold red]n[/]\x1b[2J",
            "apiVersion": "v1",
        },
        stage="ResponseComplete\x07",
        annotations={
            "authorization.k8s.io/decision": "allow\x1b",
            "audittui/server": "srv\u202e",
            "authentication.openshift.io/username": "login\x1b[2J",
        },
    )
    path = tmp_path_factory.mktemp("hostile") / "audit.log"
    path.write_bytes(orjson.dumps(v1_event()) + b"\n" + orjson.dumps(event) + b"\n")
    return load(str(path))


@pytest.mark.parametrize("field", sorted(VALUE_FIELDS))
def test_hostile_values_complete_escaped_and_select_their_event(hostile, field):
    comp = complete(f"{field}:", len(field) + 1, hostile)
    assert comp.candidates
    for candidate in comp.candidates + [comp.common]:
        assert inert(candidate) == candidate, candidate  # no raw unsafe character
    values = {}
    for candidate in comp.candidates:
        values[_single_value(candidate)[1]] = candidate
    assert values.keys() == _distinct(hostile, field)
    for value, candidate in values.items():
        assert len(select(hostile, candidate)) == _events_with(hostile, field, value), candidate


def test_awkward_users_quoted_only_when_needed(awkward):
    comp = complete("user:", 5, awkward)
    by_value = {_single_value(c)[1]: c for c in comp.candidates}
    for bare in ["system:serviceaccount:kube-system:foo", "mid/slash", "OR", "NOT", "x:y:"]:
        assert by_value[bare] == "user:" + bare
    assert by_value["uni✓é日本"] == "user:uni✓é日本"
    assert by_value["a b"] == 'user:"a b"'
    assert by_value['q"x'] == 'user:"q\\"x"'
    assert by_value["star*x"] == 'user:"star*x"'  # bare, * would make a glob
    assert by_value["/re/"] == 'user:"/re/"'  # bare, a regex
    assert by_value['both\\"'] == 'user:"both\\\\\\""'
    # A leading '-' reads like a negation, a backslash like an escape: quoted for the reader.
    for value in ["-neg", "-", "--"]:
        assert by_value[value] == f'user:"{value}"'
    assert by_value["back\\slash"] == 'user:"back\\\\slash"'
    assert by_value["trail\\"] == 'user:"trail\\\\"'
    # Unsafe characters are written as their escapes, never raw (the filter bar shows them).
    assert by_value["nul\x00byte"] == 'user:"nul\\x00byte"'
    assert by_value["zero\u200bwidth"] == 'user:"zero\\u200bwidth"'
    assert by_value["line\nbreak"] == 'user:"line\\x0abreak"'
    assert by_value["tab\there"] == 'user:"tab\\x09here"'


def test_negated_and_grouped_values_parse_back(awkward):
    for prefix, wrap in [("-user:", Not), ("(-user:", Not), ("NOT user:", None)]:
        comp = complete(prefix, len(prefix), awkward)
        assert comp.candidates
        for candidate in comp.candidates:
            text = prefix[: comp.start] + candidate + (")" if prefix.startswith("(") else "")
            node = parse(text)
            assert isinstance(node, Not)
            if wrap is Not and not prefix.startswith("NOT"):
                assert candidate.startswith("-user:")
            assert isinstance(node.node, Term) and node.node.values[0].kind == "exact"


def test_alternatives_keep_earlier_values_and_skip_them(awkward):
    text = 'user:alice,"a b",'
    comp = complete(text, len(text), awkward)
    assert comp.start == 0
    assert comp.candidates
    seen = set()
    for candidate in comp.candidates:
        assert candidate.startswith(text)
        node = parse(candidate)
        assert isinstance(node, Term) and [v.kind for v in node.values] == ["exact"] * 3
        assert [v.text for v in node.values[:2]] == ["alice", "a b"]
        seen.add(node.values[2].text)
    assert seen == _distinct(awkward, "user") - {"alice", "a b"}
    comp = complete("verb:get,", 9, awkward)
    assert comp.candidates == ['verb:get,"weird verb"']


def test_open_quote_with_spaces_is_one_token(awkward):
    text = 'verb:get user:"a '
    comp = complete(text, len(text), awkward)
    assert comp.start == 9
    assert comp.candidates == ['user:"a b"']
    assert apply(text, comp, comp.candidates[0]) == ('verb:get user:"a b" ', len(text) + 3)
    # an escaped quote inside stays inside
    text = 'user:"q\\"'
    assert complete(text, len(text), awkward).candidates == ['user:"q\\"x"']


# -- field names -----------------------------------------------------------------------------------


def test_field_names():
    assert complete("us", 2, None).candidates == ["user:"]
    assert complete("US", 2, None).candidates == ["user:"]
    comp = complete("-us", 3, None)
    assert (comp.start, comp.candidates, comp.common, comp.kind) == (
        0,
        ["-user:"],
        "-user:",
        "field",
    )
    comp = complete("verb:get (u", 11, None)
    assert comp.start == 10 and comp.candidates == ["u:", "ua:", "uri:", "user:"]
    assert comp.common == "u"
    comp = complete("-(res", 5, None)
    assert comp.start == 2 and comp.candidates == ["res:", "resource:"]
    assert complete("", 0, None).candidates == [f + ":" for f in FIELD_NAMES]
    assert "code:" in complete("verb:get ", 9, None).candidates
    assert "status:" in complete("st", 2, None).candidates
    for nothing in ["x.y", "1a", '"phrase', '"phrase"', "ua:/kube/", "user:alice)", "é"]:
        assert complete(nothing, len(nothing), None).candidates == [], nothing


def test_token_ends_at_the_cursor(awkward):
    text = "verb:g user:x"
    comp = complete(text, 6, awkward)
    assert (comp.start, comp.end, comp.candidates) == (0, 6, ["verb:get"])
    assert apply(text, comp, "verb:get") == ("verb:get user:x", 9)
    text = "ua:/kube\\/v1 .*/ user:al"  # a regex with a space before the token
    comp = complete(text, len(text), awkward)
    assert comp.start == 17 and comp.candidates == ["user:alice", "user:albert"]


# -- values ----------------------------------------------------------------------------------------


def test_prefix_case_and_frequency(awkward):
    comp = complete("user:al", 7, awkward)
    assert comp.candidates == ["user:alice", "user:albert"]  # alice: 3 events
    assert comp.common == "user:al"
    # No case-sensitive match: any case.
    comp = complete("user:AL", 7, awkward)
    assert comp.candidates == ["user:alice", "user:Alice", "user:albert"]
    assert complete("user:Al", 7, awkward).candidates == ["user:Alice"]
    # stage, level and decision match in any case, always.
    assert complete("stage:responses", 15, awkward).candidates == ["stage:ResponseStarted"]
    assert complete("decision:F", 10, awkward).candidates == ["decision:forbid"]
    assert complete("user:zzz", 8, awkward).candidates == []
    # A known field typed in the wrong case is written as the parser wants it.
    assert complete("User:alb", 8, awkward).candidates == ["user:albert"]
    assert complete("nosuch:a", 8, awkward).candidates == []
    assert complete("dur:>1", 6, awkward).candidates == []


def test_codes_resources_and_core_api(awkward):
    assert complete("code:", 5, awkward).candidates == ["code:200", "code:403", "code:404"]
    assert complete("status:40", 9, awkward).candidates == ["status:403", "status:404"]
    assert complete("api:", 4, awkward).candidates == ["api:core", "api:apps"]
    assert complete("res:pods/", 9, awkward).candidates == ["res:pods/exec", "res:pods/log"]
    assert complete("res:PODS/l", 10, awkward).candidates == ["res:pods/log"]
    for candidate in complete("r:", 2, awkward).candidates + ["res:pods/exec", "res:pods/log"]:
        assert len(select(awkward, candidate)) > 0
    comp = complete("-ip:10.", 7, awkward)
    # 10.0.0.0/8 logged as a source IP is offered quoted: bare, it would be a CIDR
    assert sorted(comp.candidates) == ['-ip:"10.0.0.0/8"', "-ip:10.0.0.1", "-ip:10.0.0.2"]
    assert complete("group:", 6, awkward).candidates[0] == "group:dev"  # most events


def test_common_is_shared_by_every_match(make_event, write_lines):
    users = [f"sa-{i:03d}" for i in range(120)] + ["sb x", "sb y"]
    store = load(write_lines("many.log", [make_event(user={"username": u}) for u in users]))
    comp = complete("u:s", 3, store)
    assert len(comp.candidates) == MAX_CANDIDATES
    assert comp.common == "u:"  # sa-… are bare, "sb …" quoted: they part right after u:
    comp = complete("u:sa", 4, store)
    assert comp.common == "u:sa-"
    assert comp.candidates[:2] == ["u:sa-000", "u:sa-001"]  # ties: alphabetical
    comp = complete("u:sb", 4, store)
    assert comp.candidates == ['u:"sb x"', 'u:"sb y"'] and comp.common == 'u:"sb '
    again = complete(comp.common, len(comp.common), store)  # inserting it completes on
    assert again.candidates == comp.candidates
    for c in comp.candidates:
        assert c.startswith(comp.common)


def test_store_growth_is_seen(make_event, write_lines):
    store = load(write_lines("a.log", [make_event(user={"username": "first"})]))
    assert complete("user:", 5, store).candidates == ["user:first"]
    path = write_lines("b.log", [make_event(user={"username": "second"}) for _ in range(2)])
    source = store.add_source(open_source(1, path, store.spool))
    read_sources(store, [source])
    assert complete("user:", 5, store).candidates == ["user:second", "user:first"]


def test_empty_store_snapshot_and_no_store(awkward):
    empty = Store()
    for text in ["user:", "user:a", "g:", "ip:", "code:", "res:pods/", "api:", "name:x"]:
        assert complete(text, len(text), empty).candidates == []
        assert complete(text, len(text), None).candidates == []
    snapshot = awkward.snapshot()
    assert complete("user:al", 7, snapshot).candidates == ["user:alice", "user:albert"]


# -- apply -----------------------------------------------------------------------------------------


def test_apply_spacing_and_cursor():
    field = Completion(0, 2, ["user:"], "user:", "field", "us")
    assert apply("us", field, "user:") == ("user:", 5)
    value = Completion(0, 7, ["user:alice"], "user:alice", "value", "user:al")
    assert apply("user:al", value, "user:alice") == ("user:alice ", 11)
    assert apply("user:al verb:get", value, "user:alice") == ("user:alice verb:get", 11)
    assert apply("user:al)", value, "user:alice") == ("user:alice)", 10)
    assert apply("user:al,bob", value, "user:alice") == ("user:alice,bob", 10)


def test_apply_cycles_through_candidates(awkward):
    text = "verb:get user:al code:200"
    comp = complete(text, 16, awkward)
    assert comp.candidates == ["user:alice", "user:albert"]
    first, cursor = apply(text, comp, comp.candidates[0])
    assert (first, cursor) == ("verb:get user:alice code:200", 20)
    second, cursor = apply(first, comp, comp.candidates[1])  # Tab again: the same completion
    assert (second, cursor) == ("verb:get user:albert code:200", 21)
    third, _ = apply(second, comp, comp.candidates[0])
    assert third == first
    # The cursor inside a value: the whole value is replaced, not just what precedes it.
    comp = complete("user:alice", 7, awkward)
    assert apply("user:alice", comp, "user:albert") == ("user:albert ", 12)


# -- internals -----------------------------------------------------------------------------------


def test_quoting_table_agrees_with_the_rule():
    lut = _special_lut()
    assert len(lut) == 0x10000
    for c in range(len(lut)):
        # U+FFFF stands for NUL inside the completion's joined values
        want = c == 0xFFFF or needs_quotes(f"x{chr(c)}")
        assert lut[c] == want, hex(c)
    assert lut[0x1B] and lut[0x202E] and lut[0x5C] and not lut[ord("a")]
    assert needs_quotes("") and needs_quotes("/x") and needs_quotes("-x")
    assert not needs_quotes("x/") and not needs_quotes("x-")


# -- cost ------------------------------------------------------------------------------------------


def big_store(events: int = 1_000_000, users: int = 50_000, seed: int = 7) -> Store:
    """A store of ``events`` synthetic events (no file behind them): Zipf-distributed users,
    tuples of groups and IPs, and near-unique names in a concatenated table."""
    rng = np.random.default_rng(seed)
    numbers = {name: np.zeros(events, dtype=dtype) for name, dtype in NUMBER_COLUMNS.items()}
    numbers["code"][:] = rng.choice([200, 201, 403, 404, 500], events)
    tables: dict[str, list] = {}
    codes: dict[str, np.ndarray] = {}

    def column(name: str, values: list, zipf: bool = True) -> None:
        k = len(values)
        drawn = rng.zipf(1.3, events) % k if zipf else rng.integers(0, k, events)
        tables[name], codes[name] = values, (drawn + 1).astype(np.int32)

    half = users // 2
    column(
        "user",
        [f"system:serviceaccount:ns-{i % 500}:sa-{i}" for i in range(half)]
        + [f"user{i}@example.com" for i in range(users - half)],
    )
    column(
        "groups",
        [(f"grp-{i % 300}", f"team-{i % 41}", "system:authenticated") for i in range(2000)],
    )
    column("ips", [(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",) for i in range(50_000)], False)
    column("name", [f"pod-{i}" for i in range(200_000)], False)
    for name in STRING_COLUMNS:
        if name not in tables:
            column(name, [f"{name}-{i}" for i in range(20)])
    store = Store()
    store.add_source(Source(0, "synthetic", "/dev/null"))
    store.append(Batch(0, numbers, codes, tables))
    return store


@pytest.fixture(scope="module")
def big() -> Store:
    return big_store()


@pytest.mark.parametrize(
    "text", ["user:", "user:s", "user:system:serviceaccount:ns-1", "user:USER1", "ip:10.0.", "g:"]
)
def test_cost_on_a_million_events(big, text):
    assert len(big) == 1_000_000 and len(big.tables["user"]) == 50_001
    comp = complete(text, len(text), big)
    assert len(comp.candidates) == MAX_CANDIDATES
    best = min(_timed(text, big) for _ in range(3))
    # 5–10 ms where this was written (budget: 20 ms); generous here for slow CI machines.
    assert best < 0.1, f"{text}: {best * 1000:.1f} ms"


def _timed(text: str, store: Store) -> float:
    start = time.perf_counter()
    complete(text, len(text), store)
    return time.perf_counter() - start
