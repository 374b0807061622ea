"""The query language compiled to ClickHouse SQL: placeholders only, and the same events as the
in-memory index, over the shared real samples plus hostile events, on Debian's 18.16 server and
on chdb (a current engine).

The store is filled from the in-memory index itself (:func:`rows_of`: every event's indexed
values and raw JSON, one row per table key), so a difference is the compiler's, not a parser's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import REALDATA, SAMPLES, v1_event

import audittui
from audittui.clickhouse import schema
from audittui.clickhouse.client import StoreError, connect
from audittui.clickhouse.distinct import Values, compile_distinct
from audittui.clickhouse.reads import Key, Reader
from audittui.clickhouse.sql import SqlError, Where, compile_query, glob_pattern, regex_pattern
from audittui.clickhouse.url import parse as parse_url
from audittui.index.evaluate import select
from audittui.index.store import Store
from audittui.query.syntax import QueryError, parse

NOW = 1_900_000_000.0  # since: relative to a fixed "now", the same on both sides

# -- filling a store from the in-memory index ------------------------------------------------


def stage_time(time: int, latency: int) -> int:
    return time + latency if latency >= 0 else time


def digest(raw: bytes) -> str:
    h = hashlib.blake2b(raw, digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def key_of(store: Store, i: int) -> Key:
    v = store.value
    time, latency = v("time", i), v("latency", i)
    audit_id = v("audit_id", i)
    return (time, audit_id or "", v("stage", i) or "", stage_time(time, latency),
            digest(store.raw(i)))  # fmt: skip


def rows_of(store: Store, cluster: str = "") -> tuple[bytes, dict[Key, int]]:
    """JSONEachRow rows for the table (one per key: the first event holding it), and which
    event each key stands for."""
    lines, kept = [], {}
    strings = [n for n, t in schema.COLUMNS if t == "Nullable(String)"]
    for i in range(len(store)):
        key = key_of(store, i)
        if key in kept:
            continue
        kept[key] = i
        raw = store.raw(i)
        row = {name: store.value(name, i) for name in strings}
        row.update(
            time=key[0], stage_time=key[3], latency=store.value("latency", i),
            groups=list(store.value("groups", i) or ()), ips=list(store.value("ips", i) or ()),
            code=store.value("code", i), stage=key[2], audit_id=key[1],
            flags=store.value("flags", i), cluster=cluster,
            source=store.sources[int(store.column("source")[i])].path,
            offset=int(store.column("offset")[i]), digest=key[4],
            raw=raw.decode("utf-8", "replace"),
        )  # fmt: skip
        lines.append(orjson.dumps(row))
    return b"\n".join(lines) + b"\n", kept


HOSTILE = [
    "it's",
    'quo"te',
    "back\\slash",
    "new\nline",
    "tab\there",
    "{p0:String}",
    "'; DROP TABLE audit_events; --",
    "nul\0byte",
    "percent%under_score",
    "jürgen",
    "JÜRGEN",
    "a*b",
    "a.b(c)[d]+?",
    "trailing\n",
    "",
]


def hostile_events() -> list[dict]:
    evs = []
    for k, text in enumerate(HOSTILE):
        ev = v1_event(
            user={"username": text or "blank", "groups": [text, "system:authenticated"]},
            verb="get" if k % 2 else "delete",
            sourceIPs=["10.1.2.3", "2001:db8::7"] if k % 3 == 0 else ["192.168.0.9"],
            userAgent=f"agent {text}",
        )
        ev["objectRef"] = {"resource": "pods", "namespace": f"ns-{k}", "name": text or None}
        if k % 4 == 0:
            ev["objectRef"]["subresource"] = "exec"
        ev["annotations"] = {
            "authorization.k8s.io/decision": "allow" if k % 2 else "Forbid",
            "authorization.k8s.io/reason": [
                f'RBAC: allowed by ClusterRoleBinding "b-{k}" of ClusterRole "r\\"{k}" '
                'to Group "g"',
                f'RBAC: allowed by RoleBinding "rb{k}/team-{k}" of Role "edit" to User "u"',
                f"RBAC: allowed by ClusterRoleBinding b{k}",
                'RBAC: allowed by RoleBinding ""/ns of Role "x"',
                f'allowed by node "n{k}"',
                "access granted by IAM permissions",
                "",
            ][k % 7],
        }
        ev["responseStatus"] = {"code": [200, 201, 403, 404, 500, 0][k % 6]}
        evs.append(ev)
    # events without an auditID, a time, a stage; an IPv4-mapped and a zero IPv6 address
    evs.append({k: v for k, v in v1_event(sourceIPs=["::ffff:10.0.0.5", "::"]).items()
                if k not in ("auditID", "stage", "requestReceivedTimestamp")})  # fmt: skip
    evs.append(v1_event(sourceIPs=["010.0.0.1", "10.0.0.256", "fe80::1"], user={"username": "x"}))
    # issue 29: a long URI holding exec, stdin and command in no matching order, one in order,
    # and a user of many a's then b (a backtracking matcher takes cubic or exponential time)
    for uri in ("/api/v1/namespaces/command/pods/p/" + "exec?stdin&" * 2000,
                "/api/v1/namespaces/n/pods/p/exec?stdin=true&command=sh"):  # fmt: skip
        evs.append(v1_event(requestURI=uri, user={"username": "aaa"}))
    evs.append(v1_event(user={"username": "a" * 5000 + "b"}))
    return evs


def load_samples(tmp: Path) -> Store:
    hostile = tmp / "hostile.log"
    hostile.write_bytes(b"\n".join(orjson.dumps(ev) for ev in hostile_events()) + b"\n")
    return audittui.load(str(SAMPLES), str(REALDATA), str(hostile), recursive=True)


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict[Key, int]]]:
    store = load_samples(tmp_path_factory.mktemp("samples"))
    _, kept = rows_of(store)
    yield store, kept
    store.close()


def filled(url: str, store: Store) -> Reader:
    client = connect(parse_url(url))
    client.execute(f"DROP TABLE IF EXISTS {client.table}")
    client.ensure_table()
    rows, _ = rows_of(store)
    client.insert(rows)
    return Reader(client)


@pytest.fixture(scope="module")
def old_reader(clickhouse_url: str, memory: tuple[Store, dict[Key, int]]) -> Iterator[Reader]:
    reader = filled(clickhouse_url.rstrip("/") + "?table=sql_equivalence", memory[0])
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def current_reader(
    tmp_path_factory: pytest.TempPathFactory, memory: tuple[Store, dict[Key, int]]
) -> Iterator[Reader]:
    folder = tmp_path_factory.mktemp("chdb")
    reader = filled(f"chdb://{folder}", memory[0])
    yield reader
    reader.close()


# -- the queries --------------------------------------------------------------------------

FIXED = [
    "",
    "verb:delete",
    "verb:get,list -user:system:*",
    "user:system:serviceaccount:kube-system:*",
    "u:admin OR u:minikube",
    "-as:*",
    "as:*",
    "group:system:masters",
    "g:system:auth*",
    'group:""',
    "res:pods",
    "res:pods/exec",
    "res:pods/",
    "res:pods/*",
    "res:*/scale",
    "res:/^pods(\\/exec)?$/",
    "res:/s\\/ex/",
    'res:""',
    "sub:exec,attach",
    "api:core",
    "api:apps",
    "api:*.k8s.io",
    'api:""',
    "-api:core",
    'ns:""',
    "ns:kube-*",
    "namespace:default",
    "name:/^nginx/",
    "code:403",
    "code:4xx",
    "code:>=500",
    "code:<300",
    "code:401,403",
    'code:""',
    "status:2xx",
    "stage:responsecomplete",
    "stage:RESPONSE*",
    "stage:/complete$/",
    "level:metadata",
    "level:request*",
    "decision:forbid",
    "decision:ALLOW",
    'decision:""',
    "ip:10.0.0.0/8",
    "ip:192.168.0.0/16,172.16.0.0/12",
    "ip:2001:db8::/32",
    "ip:::/0",
    "ip:0.0.0.0/0",
    "ip:::ffff:0:0/96",
    "ip:10.1.2.3",
    "ip:10.*",
    'ip:""',
    "-ip:10.0.0.0/8",
    "ua:kubectl*",
    "ua:/kubectl\\/v1\\.(2[0-9]|30)/",
    "id:*-0000-*",
    'id:""',
    "uri:/api/v1/namespaces/default/pods",
    "uri:/api/*",
    "uri:/\\?watch=/",
    'cred:""',
    "cred:*",
    "server:*",
    'server:""',
    "login:*",
    'reason:""',
    "reason:*RBAC*",
    "binding:cluster-admin",
    "binding:ClusterRoleBinding/*",
    "binding:RoleBinding/*",
    "binding:b-*",
    "binding:rb1",
    "binding:RoleBinding/team-1/rb1",
    "binding:ClusterRoleBinding/",
    'binding:""',
    "-binding:*",
    "role:cluster-admin",
    "role:ClusterRole/*",
    "role:Role/*/edit",
    'role:r\\"0',
    "role:/^system:/",
    'role:""',
    "authorizer:rbac",
    "authorizer:Node,webhook",
    'authorizer:""',
    "dur:>1s",
    "dur:<=10ms",
    'dur:""',
    "-dur:>1ms",
    "after:2019-01-01",
    "before:2020-01-01T00:00:00Z",
    "after:2018-06-01 before:2023-01-01",
    "since:3650d",
    'cluster:""',
    "cluster:prod",
    "-cluster:prod",
    "forbidden",
    '"cannot get resource"',
    "kube-system",
    "KUBE-SYSTEM",
    "jürgen",
    '"\\"verb\\":\\"get\\""',
    "verb:delete OR code:403 -user:system:*",
    "(user:admin verb:get) OR (ns:kube-system -verb:list)",
    "NOT (verb:get OR verb:list) res:secrets,configmaps",
    "-(-verb:get)",
    "ns:default pods",
]


def _hostile_queries() -> list[str]:
    out = []
    for text in HOSTILE:
        if not text:
            continue
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        quoted = quoted.replace("\t", "\\t").replace("\0", "\\u0000")
        for field in ("user", "group", "name", "ua", "reason", "binding", "role"):
            out.append(f"{field}:{quoted}")
        out.append(quoted)  # free text: the raw JSON holds it escaped
        out.append(f"-user:{quoted}")
        if "*" not in text and "\n" not in text and "\0" not in text:
            out.append(f"user:{quoted[1:-1].replace(' ', '')}*")
            pattern = re.escape(text).replace("/", "\\/").replace("\\ ", "\\x20")
            out.append(f"ua:/{pattern}/")
    out += ["user:/(?i)jürgen/", "user:/^new$/", "user:/line$/", "user:/trailing$/",
            "user:/new.line/", "user:/new[^x]line/", "user:/\\Atab/", "user:/here\\Z/",
            "user:/\\x{fc}/", "user:/a\\*b/", "user:a*", "name:*", "name:\"a*b\"",
            "user:/here\\z/", "user:/(?-m)^new/", "user:/new$/", "uri:*exec*stdin*command*",
            "user:/^(a+)+$/", "user:/^(a+)+b$/", "uri:/exec\\?stdin(=true)?&command/",
            "ua:*{p0:String}*", "user:*'*", "user:*\\\\*", "u:it's,quo\"te",
            "user:*in", "user:a*a", "user:ne*ne", "user:*ew*", "user:**", "ua:*", "ip:10.*",
            "group:system:*", "ns:*-system", "res:*s", "sub:*"]  # fmt: skip
    return out


def _data_queries(store: Store) -> list[str]:
    """Values that are in the data, field by field: exact, negated, prefix glob, regex."""
    out = []
    for field, column in (("user", "user"), ("verb", "verb"), ("ns", "namespace"),
                          ("name", "name"), ("ua", "user_agent"), ("uri", "uri"),
                          ("resource", "resource"), ("level", "level"), ("id", "audit_id"),
                          ("server", "server"), ("reason", "reason")):  # fmt: skip
        values = [v for v in store.values_at(column, np.arange(len(store))) if v]
        for v in sorted(set(values))[:: max(1, len(set(values)) // 4)][:4]:
            q = '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
            out += [f"{field}:{q}", f"-{field}:{q}"]
            head = v[:4]
            if head.isalnum():
                out.append(f"{field}:{head}*")
                out.append(f"{field}:/^{head}/")
    return out


def queries(store: Store) -> list[str]:
    return FIXED + _hostile_queries() + _data_queries(store)


def memory_keys(store: Store, kept: dict[Key, int], text: str) -> set[Key]:
    chosen = set(select(store, text).tolist())
    return {k for k, i in kept.items() if i in chosen}


def store_keys(reader: Reader, text: str, values: Values | None = None) -> set[Key]:
    if values is None:
        where = compile_query(text, now=NOW, modern=reader.modern)
    else:  # terms decided on the columns' distinct values, as findings compiles a rule
        where = compile_distinct(parse(text, now=NOW), values, modern=reader.modern)
    return {e.key for page in reader.pages(where, size=5000, raw=False) for e in page}


def _check_all(
    reader: Reader, memory: tuple[Store, dict[Key, int]], values: Values | None = None
) -> None:
    store, kept = memory
    assert reader.count() == len(kept)
    wrong = []
    hits = 0
    for text in queries(store):
        try:
            node = parse(text, now=NOW)
        except QueryError:
            continue
        want = memory_keys(store, kept, text) if node is not None else set(kept)
        # the in-memory side with the same fixed "now" for since:
        if "since:" in text:
            from audittui.index.evaluate import evaluate

            mask = evaluate(node, store)  # type: ignore[arg-type]
            want = {k for k, i in kept.items() if mask[i]}
        got = store_keys(reader, text, values)
        hits += bool(want)
        if got != want:
            wrong.append(f"{text!r}: memory {len(want)}, store {len(got)}")
    assert not wrong, "\n".join(wrong)
    assert hits > 150  # the queries select something, not only nothing


def test_same_events_as_memory_on_18_16(old_reader: Reader, memory) -> None:
    assert not old_reader.modern
    _check_all(old_reader, memory)


def test_same_events_as_memory_on_chdb(current_reader: Reader, memory) -> None:
    assert current_reader.modern
    _check_all(current_reader, memory)


def test_distinct_compile_same_events_on_18_16(old_reader: Reader, memory) -> None:
    _check_all(old_reader, memory, Values(old_reader))


def test_distinct_compile_same_events_on_chdb(current_reader: Reader, memory) -> None:
    _check_all(current_reader, memory, Values(current_reader))
    # a column of more values than the limit (one of them "" or NULL) keeps SQL's test
    few = Values(current_reader, limit=3)
    assert few.of("user") is None
    _check_all(current_reader, memory, few)


# -- the compiler alone ----------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE[:-1])
def test_user_values_are_placeholders_only(text: str) -> None:
    # the query language reads a backslash as "the next character": newlines and NULs go raw
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    query = f"user:{quoted} ua:{quoted}* {quoted} role:{quoted} ip:10.0.0.0/8"
    where = compile_query(query)
    assert text in where.params.values()
    sql_text = re.sub(r"\{[a-z_0-9]+:[A-Za-z0-9()]+\}", "", where.sql)
    for value in where.params.values():
        if isinstance(value, str) and len(value) > 2:
            assert value not in sql_text
    # only placeholders of the compiler's own names, each with a value
    names = re.findall(r"\{([a-z_0-9]+):[A-Za-z0-9()]+\}", where.sql)
    assert names and set(names) == set(where.params)


def test_regex_rejected_when_re2_cannot() -> None:
    # one check for both backends: the parser refuses it, in one line naming the construct
    for pattern, word in (("(a)\\1", "backreferences"), ("a(?=b)", "lookahead"),
                          ("(?<!x)a", "lookbehind"), ("(?x) a b", "verbose"),
                          ("(?>a+)", "atomic"), ("a++", "possessive"), ("a\\Z", "\\z"),
                          ("\\u00e9", "\\x{")):  # fmt: skip
        with pytest.raises(QueryError, match=re.escape(word)) as err:
            compile_query(f"user:/{pattern}/")
        assert "\n" not in str(err.value)
        with pytest.raises(SqlError, match=re.escape(word)):
            regex_pattern(pattern)


def test_regex_translation() -> None:
    assert regex_pattern("a$") == "(?-s)a$"
    assert regex_pattern("(?m)^a$") == "(?-s)(?m)^a$"
    assert regex_pattern("\\x{e9}", ci=True) == "(?i)(?-s)\\x{e9}"
    assert regex_pattern("x\0[\0]\\\0") == "(?-s)x\\x00[\\x00]\\x00"
    assert glob_pattern("a*b.c") == "(?s)^(?:a.*b\\.c)$"
    assert glob_pattern("x\0*", ci=True) == "(?i)(?s)^(?:x\\x00.*)$"


def test_derived_fields_refused() -> None:
    with pytest.raises(SqlError, match="finding:"):
        compile_query("finding:exec-attach")
    with pytest.raises(SqlError, match="rule:"):
        compile_query("verb:get OR rule:3")


def test_server_rejects_what_re2_refuses_in_one_line(old_reader: Reader) -> None:
    # RE2 refuses a repeat over 1000 (the parser too: the SQL is written here by hand)
    where = Where("match(ifNull(user, ''), {p0:String})", {"p0": "a{1001}"})
    with pytest.raises(StoreError) as err:
        old_reader.count(where)
    assert "\n" not in str(err.value) and str(err.value).startswith("ClickHouse rejected")


def test_cluster_field_in_memory(memory) -> None:
    store, _ = memory
    assert len(select(store, 'cluster:""')) == len(store)
    assert len(select(store, "cluster:prod")) == 0
    assert len(select(store, "-cluster:prod")) == len(store)
