"""A broken or hostile ClickHouse server: whatever its answer, the client reads it in linear time
within bounds (a line, an answer, an error's text, the whole answer's time) and says what went
wrong in one line, never hangs, crashes or takes unbounded memory.

The server is real: a socket server on a free loopback port, speaking HTTP as ClickHouse does
(its headers, JSONEachRow) for the handshake (``version()``, the table's columns), then
answering the query under test in the way each test asks: one endless line, an endless error,
rows without end, a byte now and then, a chunk-size line without end, rows of another shape.
The embedded engine (chdb) is checked for the line bound with a real query."""

from __future__ import annotations

import contextlib
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from audittui.cli import main as cli
from audittui.clickhouse import schema
from audittui.clickhouse.client import MAX_ANSWER, MAX_LINE, StoreError, connect
from audittui.clickhouse.reads import Reader
from audittui.clickhouse.url import parse

HEADERS = b"X-ClickHouse-Query-Id: 1\r\nX-ClickHouse-Server-Display-Name: hostile\r\n"
BLOCK = 1 << 16
# Each scenario must end within this (the old client never ended several of them)
DEADLINE = 120.0


class Hostile(socketserver.ThreadingTCPServer):
    """Answers the handshake as ClickHouse 24 would, and every other query with ``answer``
    (a function writing the raw HTTP response to the socket until it ends or ``stopping``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Callable[[Any, str], None], counts: bool = False) -> None:
        self.answer = answer
        self.counts = counts  # answer the reader's count of rows (copies held?) truly
        self.stopping = threading.Event()
        self.queries: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.server_address[1]}/default"

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(socketserver.StreamRequestHandler):
    server: Hostile

    def handle(self) -> None:
        while not self.server.stopping.is_set():
            request = self.rfile.readline(1 << 16)
            if not request:
                return
            headers: dict[str, str] = {}
            while (line := self.rfile.readline(1 << 16)) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length", "0")))
            target = request.split()[1].decode()
            sql = parse_qs(urlsplit(target).query).get("query", [""])[0] or body.decode()
            self.server.queries.append(sql)
            if "version()" in sql:
                self._ok(b'{"v":"24.8.1"}\n')
            elif self.server.counts and sql.startswith("SELECT count() AS n FROM `"):
                self._ok(b'{"n":5}\n')
            elif "system.columns" in sql:
                rows = (orjson.dumps({"name": n, "type": t}) for n, t in schema.COLUMNS)
                self._ok(b"\n".join(rows) + b"\n")
            else:
                with contextlib.suppress(OSError):  # the client hung up: what it should do
                    self.server.answer(self, sql)
                return  # the hostile answers end the connection

    def _ok(self, body: bytes) -> None:
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\n" + HEADERS + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )

    def forever(self, head: bytes, piece: bytes, pause: float = 0.0) -> None:
        """``head``, then ``piece`` again and again until the client goes or the test ends."""
        self.wfile.write(head)
        while not self.server.stopping.is_set():
            self.wfile.write(piece)
            if pause:
                self.server.stopping.wait(pause)


def ok_head(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + HEADERS + extra + b"Connection: close\r\n\r\n"


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    servers: list[Hostile] = []

    def start(answer: Callable[[Any, str], None], counts: bool = False) -> Hostile:
        servers.append(Hostile(answer, counts))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def ends(work: Callable[[], Any]) -> BaseException | Any:
    """Run ``work`` in a thread: what it returned or raised, once it ended (a failure if it
    has not within DEADLINE: a client that hangs)."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"still reading after {DEADLINE:g} s"
    return out[0]


def one_line_error(result: Any) -> str:
    assert isinstance(result, StoreError), repr(result)[:300]
    text = str(result)
    assert "\n" not in text and len(text) < 600, text[:600]
    return text


def count(url: str, **kwargs: Any) -> int:
    with Reader(connect(parse(url), **kwargs)) as reader:
        return reader.count()


# -- one line without end, in linear time -----------------------------------------------------


def test_an_endless_line_is_cut_at_the_line_bound(hostile) -> None:
    server = hostile(lambda h, sql: h.forever(ok_head(), b"x" * BLOCK))
    started = time.monotonic()
    text = one_line_error(ends(lambda: count(server.url)))
    assert text.endswith(f"answered a line over {MAX_LINE >> 20:,} MiB"), text
    # read linearly: the old client took a minute for 300 MB (quadratic); allow a slow machine
    assert time.monotonic() - started < 60


def test_an_endless_chunk_size_line_is_refused(hostile) -> None:
    head = ok_head(b"Transfer-Encoding: chunked\r\n")
    server = hostile(lambda h, sql: h.forever(head, b"f" * BLOCK))
    assert "broke" in one_line_error(ends(lambda: count(server.url)))


def test_rows_without_end_are_cut_at_the_rows_asked_for(hostile) -> None:
    server = hostile(lambda h, sql: h.forever(ok_head(), b'{"n":1}\n' * 4096))
    text = one_line_error(ends(lambda: count(server.url)))
    assert text.endswith("answered more than the 1 rows asked for"), text


def test_an_answer_is_cut_at_the_answer_bound(hostile) -> None:
    line = b'{"s":"' + b"y" * ((1 << 20) - 8) + b'"}\n'  # rows of a MiB, without end

    def read_all(url: str) -> int:
        with connect(parse(url)) as client:
            return sum(1 for _ in client.rows("SELECT s FROM t"))

    server = hostile(lambda h, sql: h.forever(ok_head(), line))
    text = one_line_error(ends(lambda: read_all(server.url)))
    assert text.endswith(f"answered over {MAX_ANSWER >> 20:,} MiB"), text


# -- errors ----------------------------------------------------------------------------------


def test_an_endless_error_is_read_up_to_its_bound(hostile) -> None:
    head = (
        b"HTTP/1.1 500 Internal Server Error\r\nX-ClickHouse-Exception-Code: 62\r\n"
        + HEADERS
        + b"Connection: close\r\n\r\nCode: 62. DB::Exception: Syntax error: "
    )
    server = hostile(lambda h, sql: h.forever(head, b"(version " * 8000))
    text = one_line_error(ends(lambda: count(server.url)))
    assert text.startswith("ClickHouse rejected the query: Syntax error: (version"), text


def test_an_endless_error_after_the_rows_began_is_read_up_to_its_bound(hostile) -> None:
    head = ok_head() + b'{"n":1}\nCode: 241. DB::Exception: Memory limit exceeded '

    def answer(h: Any, sql: str) -> None:
        h.forever(head, b"z" * BLOCK)

    server = hostile(answer)
    text = one_line_error(ends(lambda: count(server.url)))
    assert "Memory limit exceeded zzz" in text


# -- time ------------------------------------------------------------------------------------


def test_a_byte_now_and_then_ends_at_the_read_timeout(hostile) -> None:
    """Each byte comes well within the read timeout, so only a bound on the whole answer ends
    it: the old client waited forever."""
    server = hostile(lambda h, sql: h.forever(ok_head(), b" ", pause=0.2))
    started = time.monotonic()
    text = one_line_error(ends(lambda: count(server.url, read_timeout=3.0)))
    assert text.endswith("did not answer within 3 s"), text
    assert time.monotonic() - started < 30


def test_headers_a_byte_now_and_then_end_at_the_read_timeout(hostile) -> None:
    def answer(h: Any, sql: str) -> None:
        h.forever(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", pause=0.2)

    server = hostile(answer)
    text = one_line_error(ends(lambda: count(server.url, read_timeout=3.0)))
    assert text.endswith("did not answer within 3 s"), text


# -- rows of another shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"1\n", b"[1,2]\n", b'"n"\n', b'{"m":1}\n', b'{"n":"many"}\n', b'{"n":{"a":1}}\n', b"{\n"],
)
def test_a_count_of_another_shape_is_one_line(hostile, body: bytes) -> None:
    server = hostile(lambda h, sql: h.wfile.write(ok_head() + body))
    one_line_error(ends(lambda: count(server.url)))


def test_events_of_another_shape_are_one_line(hostile) -> None:
    row = {name: None for name in schema.COLUMN_NAMES}  # every column, but null

    def answer(h: Any, sql: str) -> None:
        if "min(time)" in sql:  # a page's span
            h.wfile.write(ok_head() + b'{"n":1,"lo":0,"hi":0}\n')
        else:
            h.wfile.write(ok_head() + orjson.dumps(row) + b"\n")

    server = hostile(answer, counts=True)

    def page() -> Any:
        with Reader(connect(parse(server.url))) as reader:
            return reader.page(None, limit=10)

    assert "answered a row of another shape" in one_line_error(ends(page))


def test_a_histogram_bucket_out_of_range_is_one_line(hostile) -> None:
    def answer(h: Any, sql: str) -> None:
        if "timed" in sql:  # the time range: one second
            h.wfile.write(ok_head() + b'{"timed":1,"lo":0,"hi":1000000}\n')
        else:  # a bucket a trillion steps away (the old client allocated an array that long)
            h.wfile.write(
                ok_head() + b'{"b":1000000000000,"total":1,"forbidden":0,"client":0,"server":0}\n'
            )

    server = hostile(answer, counts=True)

    def histogram() -> Any:
        with Reader(connect(parse(server.url))) as reader:
            return reader.histogram(None, 10)

    assert "another shape" in one_line_error(ends(histogram))


def test_the_cli_says_one_line_and_exits_2(hostile, capsys) -> None:
    server = hostile(lambda h, sql: h.forever(ok_head(), b"x" * BLOCK))
    assert ends(lambda: cli.main(["query", "--format", "count", server.url])) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err[:300]
    assert f"answered a line over {MAX_LINE >> 20:,} MiB" in err


# -- the embedded engine -----------------------------------------------------------------------


def test_chdb_a_line_over_the_bound_is_one_line(chdb_url: str) -> None:
    def read() -> Any:
        with connect(parse(chdb_url)) as client:
            sql = "SELECT repeat(repeat('x', 1000000), {n:UInt64}) AS s"  # n MB: over the bound
            return list(client.rows(sql, {"n": MAX_LINE // 1_000_000 + 2}))

    text = one_line_error(ends(read))
    assert text.endswith(f"answered a line over {MAX_LINE >> 20:,} MiB"), text
