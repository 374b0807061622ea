"""The store's client and table against the real servers: Debian's ClickHouse 18.16 ("old",
no query parameters: placeholders become subqueries over external data) and chdb ("current",
query parameters). Hostile values round-trip on both; every failure is one line."""

from __future__ import annotations

import functools
import http.server
import threading

import orjson
import pytest
from clickhouse_server import PASSWORD, USER, free_port

from audittui.clickhouse import schema
from audittui.clickhouse.client import StoreError, connect, rewrite_for_external
from audittui.clickhouse.url import BadURL, Target, is_store_url, parse

HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash\\",
    "\\N",
    "new\nline\r\n",
    "tab\there",
    "{x:String}",
    "}{",
    "nul\0byte",
    "' OR 1=1 --",
    "é ü 漢字 🙂",
    "",
    "\\'",
    "%s %(x)s $1 ?",
]


@pytest.fixture
def client(store_url):
    c = connect(parse(store_url))
    yield c
    c.close()


def test_hostile_strings_round_trip(client):
    for value in HOSTILE:
        rows = list(client.rows("SELECT {v:String} AS v, length({v:String}) AS n", {"v": value}))
        assert rows == [{"v": value, "n": len(value.encode())}], value


def test_hostile_arrays_and_in(client):
    values = HOSTILE + ["plain"]
    sql = (
        "SELECT {a:Array(String)} AS a, 'plain' IN {a:Array(String)} AS hit,"
        " 'absent' IN {a:Array(String)} AS miss, {s:String} AS s"
    )
    rows = list(client.rows(sql, {"a": values, "s": "x'y"}))
    assert rows == [{"a": values, "hit": 1, "miss": 0, "s": "x'y"}]
    empty = list(client.rows("SELECT 'x' IN {a:Array(String)} AS hit", {"a": []}))
    assert empty == [{"hit": 0}]


def test_numbers_limit_and_64_bit_integers(client):
    sql = (
        "SELECT number, toUInt64(18446744073709551615) AS big, toInt64(-9007199254740993) AS neg"
        " FROM system.numbers WHERE number >= {from:UInt64} LIMIT {n:UInt64}"
    )
    rows = list(client.rows(sql, {"from": 5, "n": 3}))
    assert [r["number"] for r in rows] == [5, 6, 7]
    assert rows[0]["big"] == 2**64 - 1 and rows[0]["neg"] == -9007199254740993  # numbers


def test_a_non_number_for_a_number_parameter_is_refused(client):
    with pytest.raises(StoreError):
        list(client.rows("SELECT 1 LIMIT {n:UInt64}", {"n": "1; DROP TABLE x"}))


def test_a_missing_parameter_is_one_line(client):
    with pytest.raises(StoreError, match="no value for parameter v"):
        list(client.rows("SELECT {v:String}", {}))


def test_user_input_is_never_in_the_sql_sent_to_the_old_server():
    sql, structure, row = rewrite_for_external(
        "SELECT x FROM t WHERE a = {p0:String} AND b IN {p1:Array(String)} LIMIT {n:UInt64}",
        {"p0": "it's", "p1": ["a'b"], "n": 10},
    )
    assert "it's" not in sql and "a'b" not in sql
    assert sql == (
        "SELECT x FROM t WHERE a = (SELECT p0 FROM _args)"
        " AND b IN (SELECT arrayJoin(p1) FROM _args) LIMIT 10"
    )
    assert structure == "p0 String,p1 Array(String)"
    assert row == b"it's\t['a\\'b']\n"


def test_an_error_after_streaming_began_raises(client):
    # The HTTP status is already 200 when the exception comes at the end of the body.
    sql = "SELECT throwIf(number = 200000) AS x FROM system.numbers LIMIT 300000"
    got = 0
    with pytest.raises(StoreError) as err:
        for _ in client.rows(sql):
            got += 1
    assert "\n" not in str(err.value) and "throwIf" in str(err.value)
    assert got < 300000


def test_a_query_rejected_is_one_line_with_the_reason(client):
    with pytest.raises(StoreError) as err:
        list(client.rows("SELEC 1"))
    text = str(err.value)
    assert text.startswith("ClickHouse rejected the query: ") and "\n" not in text
    assert "Syntax error" in text or "SYNTAX_ERROR" in text


def test_ensure_table_creates_accepts_its_own_refuses_another(store_url):
    target = parse(store_url + ("&" if "?" in store_url else "?") + "table=mine")
    with connect(target) as c:
        c.execute("DROP TABLE IF EXISTS `default`.`mine`")
        c.ensure_table()
        columns = [
            (r["name"], r["type"])
            for r in c.rows("SELECT name, type FROM system.columns WHERE table = 'mine'")
        ]
        assert columns == list(schema.COLUMNS)
        c.ensure_table()  # its own: accepted
        engine = next(c.rows("SELECT engine FROM system.tables WHERE name = 'mine'"))
        assert engine["engine"] == "ReplacingMergeTree"
        c.execute("DROP TABLE `default`.`mine`")
        c.execute("CREATE TABLE `default`.`mine` (time Int64, raw String) ENGINE = Log")
        with pytest.raises(StoreError) as err:
            c.ensure_table()
        assert str(err.value).startswith("table default.mine has another schema: no column")
        assert "\n" not in str(err.value)
        c.execute("DROP TABLE `default`.`mine`")


def test_insert_and_read_back_exact_values(store_url):
    target = parse(store_url + ("&" if "?" in store_url else "?") + "table=exact")
    row = {
        "time": -(2**63),
        "stage_time": 1714557600002500,
        "latency": -1,
        "user": None,
        "groups": ["a'b", "c\\d"],
        "audit_id": "",
        "stage": "ResponseComplete",
        "api": "",
        "digest": "ffffffff-0000-4000-8000-00000000000f",
        "offset": 2**40,
        "raw": '{"k": "new\\nline \'q\'"}',
        "source": "/var/log/x\tlog",
    }
    with connect(target) as c:
        c.execute("DROP TABLE IF EXISTS `default`.`exact`")
        c.ensure_table()
        c.insert(orjson.dumps(row) + b"\n")
        [back] = list(c.rows(f"SELECT * FROM {c.table} FINAL"))
        for key, value in row.items():
            assert back[key] == value, key
        assert back["verb"] is None and back["ips"] == [] and back["code"] == 0
        c.execute(f"DROP TABLE {c.table}")


def test_the_dedupe_key_collapses_a_resent_row_under_final(store_url):
    target = parse(store_url + ("&" if "?" in store_url else "?") + "table=dedupe")
    line = orjson.dumps({"time": 1, "audit_id": "a", "stage": "s", "raw": "{}"}) + b"\n"
    with connect(target) as c:
        c.execute("DROP TABLE IF EXISTS `default`.`dedupe`")
        c.ensure_table()
        c.insert(line)
        c.insert(line)
        final = next(c.rows(f"SELECT count() AS n FROM {c.table} FINAL"))["n"]
        plain = next(c.rows(f"SELECT count() AS n FROM {c.table}"))["n"]
        assert (final, plain) == (1, 2)  # the table's safety net, not ship's mechanism
        c.execute(f"DROP TABLE {c.table}")


def test_a_table_of_version_1_is_read_but_not_written(store_url, tmp_path):
    """Written by the audittui before the digest key (``nokey``: 0 for an event with an
    auditID): still read (count, pages by keyset, one event by key, summary), refused to
    writers with a message saying what to do."""
    import subprocess
    import sys

    from audittui.clickhouse.reads import Reader
    from audittui.demo.stream import iter_lines

    target = parse(store_url + ("&" if "?" in store_url else "?") + "table=old1")
    columns = ",\n".join(f"`{n}` {t}" for n, t in schema.LEGACY_COLUMNS)
    rows = [
        orjson.dumps({"time": t // 2, "audit_id": f"id-{t}" if t else "", "stage": "s",
                      "nokey": 0 if t else 7, "user": f"u{t % 3}", "raw": f'{{"n":{t}}}'})
        for t in range(9)
    ]  # fmt: skip
    with connect(target) as c:
        c.execute(f"DROP TABLE IF EXISTS {c.table}")
        c.execute(
            f"CREATE TABLE {c.table} ({columns}) ENGINE = ReplacingMergeTree "
            "ORDER BY (time, audit_id, stage, stage_time, nokey)"
        )
        c.insert(b"\n".join(rows) + b"\n")
        with pytest.raises(StoreError) as err:
            c.ensure_table()
        assert "older audittui" in str(err.value) and "?table=NAME" in str(err.value)
        reader = Reader(c)
        assert reader.legacy and reader.count() == 9
        seen, key = [], None
        while page := reader.page(None, after_key=key, limit=2):
            seen += page
            key = page[-1].key
        assert [e.raw for e in seen] == [f'{{"n":{t}}}'.encode() for t in range(9)]
        assert seen[0].key[4] == "7" and seen[1].key[4] == "0"
        for e in seen:
            assert reader.event(e.key) == e
        assert {r["key"]: r["events"] for r in reader.summary("user")} == {
            "u0": 3,
            "u1": 3,
            "u2": 3,
        }
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(iter_lines(5)))
    url = store_url + ("&" if "?" in store_url else "?") + "table=old1"
    r = subprocess.run(
        [sys.executable, "-m", "audittui", "ship", str(log), "--to", url, "--once", "--state",
         str(tmp_path / "st")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2 and "older audittui" in r.stderr, r.stderr
    with connect(target) as c:
        assert c.one(f"SELECT count() AS n FROM {c.table}")["n"] == 9  # nothing written
        c.execute(f"DROP TABLE {c.table}")


def test_pages_hold_each_event_once_though_resent_copies_are_stored(store_url):
    # A page's span is found on the rows as stored (copies included), its rows read FINAL:
    # copies must neither double a row nor end a page early.
    from audittui.clickhouse.reads import Reader

    target = parse(store_url + ("&" if "?" in store_url else "?") + "table=paged")
    rows = [
        orjson.dumps({"time": t // 3, "audit_id": f"id-{t:04d}", "stage": "s", "raw": "{}"})
        for t in range(300)  # three events per time: ties at every page's edge
    ]
    with connect(target) as c:
        c.execute("DROP TABLE IF EXISTS `default`.`paged`")
        c.ensure_table()
        c.insert(b"\n".join(rows) + b"\n")
        reader = Reader(c)
        assert reader.count() == 300  # no copies: counted without FINAL
        c.insert(b"\n".join(rows[100:250]) + b"\n")  # a resent stretch, stored twice
        assert reader.count() == 300 and reader.count("id:id-0101") == 1
        assert sum(r["events"] for r in reader.summary("user")) == 300
        for descending in (False, True):
            seen, key = [], None
            while page := reader.page(None, after_key=key, limit=7, descending=descending):
                assert len(page) == 7 or len(seen) + len(page) == 300
                seen += [e.value("audit_id") for e in page]
                key = page[-1].key
            want = [f"id-{t:04d}" for t in range(300)]
            assert seen == (want[::-1] if descending else want)
        c.execute(f"DROP TABLE {c.table}")


# -- bad targets: one line each ------------------------------------------------------------


def _connect_error(url: str) -> str:
    with pytest.raises(StoreError) as err:
        connect(parse(url)).close()
    text = str(err.value)
    assert "\n" not in text and len(text) < 300
    return text


def test_unreachable(clickhouse_url):
    port = free_port()  # nothing listens there
    assert "connection refused" in _connect_error(f"clickhouse://127.0.0.1:{port}/default")


def test_wrong_port_speaks_another_protocol(clickhouse_server):
    # the native protocol's port answers HTTP with no ClickHouse HTTP interface
    text = _connect_error(f"clickhouse://127.0.0.1:{clickhouse_server.tcp_port}/default")
    assert text.startswith("no ClickHouse HTTP interface at clickhouse://127.0.0.1:")


def test_not_clickhouse_at_all(tmp_path):
    # another HTTP server on the port (here Python's own, serving a folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        text = _connect_error(f"clickhouse://127.0.0.1:{server.server_address[1]}/default")
    finally:
        server.shutdown()
        server.server_close()
    assert text.startswith("no ClickHouse HTTP interface at clickhouse://127.0.0.1:")


def test_bad_credentials(clickhouse_server):
    port = clickhouse_server.http_port
    text = _connect_error(f"clickhouse://{USER}:wrong@127.0.0.1:{port}/default")
    assert text == (
        f"ClickHouse at clickhouse://127.0.0.1:{port}/default: "
        "authentication failed (user from the URL, password from the URL)"
    )
    assert "wrong" not in text and USER not in text  # no part of the user-info, ever
    assert "authentication failed (user from the URL)" in _connect_error(
        f"clickhouse://nobody@127.0.0.1:{port}/default"
    )
    password = PASSWORD.replace(" ", "%20")
    with connect(parse(f"clickhouse://{USER}:{password}@127.0.0.1:{port}/default")) as c:
        assert c.version.startswith("18.16")


def test_unknown_database(clickhouse_url):
    text = _connect_error(clickhouse_url.rsplit("/", 1)[0] + "/nosuch")
    assert "unknown database" in text and "nosuch" in text


def test_chdb_on_a_second_folder_in_one_process(tmp_path, chdb_url):
    other = tmp_path / "other"
    other.mkdir()
    with connect(parse(chdb_url)) as c:
        assert c.version.split(".")[0].isdigit() and int(c.version.split(".")[0]) >= 24
        with pytest.raises(StoreError, match="chdb is open on"):
            connect(parse(f"chdb://{other}"))
    with connect(parse(f"chdb://{other}")) as c:  # the first one closed: free again
        assert c.version


def test_two_clients_of_one_chdb_folder_query_at_once_with_their_own_parameters(chdb_url):
    """They share the folder's one session, whose parameters are per query: the app's reader
    and a follower (or a writer) in one process each get their own values back."""
    wrong: list[object] = []

    def ask(client, who: str) -> None:
        for k in range(60):
            try:
                rows = list(client.rows("SELECT {v:String} AS v", {"v": f"{who}-{k}"}))
            except StoreError as exc:
                rows = [str(exc)]
            if rows != [{"v": f"{who}-{k}"}]:
                wrong.append(rows)

    with connect(parse(chdb_url)) as a, connect(parse(chdb_url)) as b:
        threads = [threading.Thread(target=ask, args=(c, w)) for c, w in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []


# -- URLs --------------------------------------------------------------------------------


def test_url_parsing_and_display():
    t = parse("clickhouse://bob:p%40ss@ch.example:9000/logs?table=ev&cluster=prod")
    assert (t.user, t.password, t.user_from, t.password_from) == (
        "bob",
        "p@ss",
        "the URL",
        "the URL",
    )
    assert t == Target(
        "clickhouse", "ch.example", 9000, "logs", "ev", "prod", "bob", "p@ss", "the URL", "the URL"
    )
    assert t.display == "clickhouse://ch.example:9000/logs?table=ev&cluster=prod"
    for shown in (repr(t), str(t)):
        assert "p@ss" not in shown and "bob" not in shown
    assert parse("clickhouse://h/db").port == 8123
    assert parse("clickhouses://h/db").port == 8443
    assert parse("clickhouse://h").database == "default"
    assert parse("chdb:///var/lib/x?table=t") == Target("chdb", "/var/lib/x", 0, "default", "t")
    assert is_store_url("clickhouse://h/db") and is_store_url("CHDB:///x")
    assert not is_store_url("/var/log/audit.log") and not is_store_url("http://h/")


@pytest.mark.parametrize(
    "url",
    [
        "clickhouse:///db",
        "clickhouse://h:99999/db",
        "clickhouse://h:0/db",
        "clickhouse://h/db?table=a;drop",
        "clickhouse://h/my-db",
        "clickhouse://h/db?tabel=x",
        "chdb://relative/folder",
        "/not/a/url",
    ],
)
def test_bad_urls_are_one_line(url):
    with pytest.raises(BadURL) as err:
        parse(url)
    assert "\n" not in str(err.value)
