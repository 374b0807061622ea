"""The store's client: SQL with ``{name:Type}`` placeholders in, JSONEachRow rows out, batches of
JSONEachRow lines into the table, over ClickHouse's HTTP interface (urllib3) or the embedded chdb
engine.

User input is never pasted into SQL. A server that knows query parameters (chdb, ClickHouse
≥ 19.11) gets them as such; an older one (Debian's 18.16) gets each placeholder rewritten into a
scalar subquery over a one-row external table ``_args`` sent beside the query (``x IN
{p:Array(T)}`` into ``x IN (SELECT arrayJoin(p) FROM _args)``); numbers, checked to be numbers
in Python, are written as literals there, so ``LIMIT {n:UInt64}`` works on both.

Every failure is a :class:`StoreError` whose text is one line a user can act on, a server's
answer included: whatever a broken or hostile server sends, an answer is read in linear time
within bounds (:data:`MAX_LINE` a line, :data:`MAX_ANSWER` an answer, :data:`MAX_ERROR` an
error's text, the read timeout for the whole answer, not only between two reads), and what is
not rows of JSON objects is a one-line error, never a hang, a crash or unbounded memory.
"""

from __future__ import annotations

import base64
import contextlib
import math
import re
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import msgspec

from . import schema
from .url import Target

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_(), ]+)\}")
_BEFORE_IN = re.compile(r"\bIN\s*\Z", re.IGNORECASE)
_NUMERIC = re.compile(r"(U?Int(8|16|32|64|128|256)|Float(32|64))\Z")
_SETTINGS = {"output_format_json_quote_64bit_integers": "0"}
# Codes of a server that is busy or shutting down: TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES,
# NO_FREE_CONNECTION, SOCKET_TIMEOUT, NETWORK_ERROR, MEMORY_LIMIT_EXCEEDED, TOO_MANY_PARTS,
# ABORTED, TABLE_IS_READ_ONLY, ALL_CONNECTION_TRIES_FAILED
_TRANSIENT = frozenset({159, 202, 203, 209, 210, 241, 252, 236, 242, 279})
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 300.0  # s for a whole answer (HTTP): the query's run and its transfer
MAX_LINE = 256 << 20  # bytes of one line of an answer: a row, an event's raw JSON included
MAX_ANSWER = 1 << 30  # bytes of one answer, all its lines
MAX_ERROR = 64 << 10  # bytes of a server's error read (one line of it is shown)
_BLOCK = 1 << 16  # bytes read from the socket at once


class StoreError(Exception):
    """A store failure as one line for the user (unreachable, authentication, unknown
    database, a table of another schema, a query rejected with the server's reason)."""

    def __init__(self, message: str, code: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code  # the server's exception code, 0 when none
        # worth trying again later: the server unreachable or restarting, or busy
        self.retryable = retryable or code in _TRANSIENT


class Client:
    """A connection to one store (:func:`connect`). Thread-safe."""

    version: str
    table: str  # database-qualified and quoted: `db`.`audit_events`

    def __init__(self, target: Target) -> None:
        self.target = target
        self.table = f"`{target.database}`.`{target.table}`"

    # -- the interface -------------------------------------------------------------------

    def rows(
        self, sql: str, params: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The rows of a query as dicts (``FORMAT JSONEachRow`` is added; 64-bit integers as
        numbers). A failure, also one after the first rows, raises :class:`StoreError`, and so
        does a line that is no JSON object, or more than ``limit`` rows (what the query's own
        LIMIT allows: a server sending more is broken or hostile). Read the answer to its end
        (an answer left unread closes its connection)."""
        return self.structs(sql, params or {}, dict[str, Any], limit)

    def structs(
        self, sql: str, params: Mapping[str, Any], kind: Any, limit: int | None = None
    ) -> Iterator[Any]:
        """The rows of a query decoded as ``kind`` (a msgspec Struct: every field present and
        of its type, checked while decoding), as :meth:`rows` reads them."""
        decode = msgspec.json.Decoder(kind).decode
        for n, line in enumerate(self._lines(sql, params, "JSONEachRow"), 1):
            try:
                row = decode(line)
            except msgspec.ValidationError as exc:
                raise StoreError(
                    f"{self.target.display} answered a row of another shape: {exc}"
                ) from None
            except msgspec.DecodeError:  # not JSON: an error's text, most likely
                raise StoreError(_server_message(_text(line))) from None
            if limit is not None and n > limit:
                raise StoreError(
                    f"{self.target.display} answered more than the {limit:,} rows asked for"
                )
            yield row

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The one row of a query (an aggregate): :class:`StoreError` for none or more."""
        rows = list(self.rows(sql, params, limit=1))
        if not rows:
            raise StoreError(f"{self.target.display} answered no row where one was due")
        return rows[0]

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (DDL, OPTIMIZE, …) and wait for it to finish."""
        for _ in self._lines(sql, params or {}, None):
            pass

    def insert(self, rows: bytes) -> None:
        """Insert JSONEachRow lines (one object per line) into the table; returns once the
        server acknowledged them all."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def ensure_table(self) -> None:
        """Create the table when missing; refuse one whose columns are not schema.COLUMNS."""
        found = self.columns()
        if not found:
            self.execute(schema.create_sql(self.table))
            return
        expected = list(schema.COLUMNS)
        if found == list(schema.LEGACY_COLUMNS):
            raise StoreError(
                f"table {self.target.database}.{self.target.table} was written by an older "
                "audittui (schema 1: its key made one row of different events sharing an "
                "auditID, stage and stage time); it is still read, not written to: write to a "
                "new table (?table=NAME in the URL)"
            )
        if found != expected:
            raise StoreError(
                f"table {self.target.database}.{self.target.table} has another schema: "
                f"{schema_difference(found, expected)}"
            )

    def columns(self) -> list[tuple[str, str]]:
        """The table's (name, type) in order; empty when there is no such table."""
        return [
            (str(r["name"]), str(r["type"]))
            for r in self.rows(
                "SELECT name, type FROM system.columns"
                " WHERE database = {db:String} AND table = {t:String}",
                {"db": self.target.database, "t": self.target.table},
                limit=1000,
            )
        ]

    # -- what a transport provides -------------------------------------------------------

    def _lines(self, sql: str, params: Mapping[str, Any], fmt: str | None) -> Iterator[bytes]:
        """The answer's non-empty lines, in ``fmt`` when given."""
        raise NotImplementedError


def schema_difference(found: Sequence[tuple[str, str]], expected: Sequence[tuple[str, str]]) -> str:
    """The first difference between two column lists, in a few words."""
    have, want = dict(found), dict(expected)
    for name, kind in expected:
        if name not in have:
            return f"no column {name} ({kind})"
        if have[name] != kind:
            return f"column {name} is {have[name]}, expected {kind}"
    for name, kind in found:
        if name not in want:
            return f"unexpected column {name} ({kind})"
    return "columns in another order"


def connect(target: Target, read_timeout: float = READ_TIMEOUT) -> Client:
    """A :class:`Client` for ``target``, connected and checked (version, credentials,
    database); :class:`StoreError` otherwise. ``read_timeout``: seconds a server's answer may
    take (HTTP; the webhook receiver must answer its sender in time)."""
    client: Client = (
        ChdbClient(target) if target.scheme == "chdb" else HttpClient(target, read_timeout)
    )
    try:
        client.version = str(client.one("SELECT version() AS v")["v"])[:100]
    except BaseException:
        client.close()
        raise
    if isinstance(client, HttpClient):
        client.native_params = _version_tuple(client.version) >= (19, 11)
    return client


# -- rendering parameters ----------------------------------------------------------------


def _quoted(value: Any) -> str:
    """A value as a ClickHouse literal (an element of an array parameter)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    text = str(value)
    for a, b in (("\\", "\\\\"), ("'", "\\'"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        text = text.replace(a, b)
    return "'" + text.replace("\0", "\\0") + "'"


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return repr(value)


def _escaped(value: Any) -> str:
    """A value in ClickHouse's escaped text form: what ``param_x=`` and a TabSeparated field
    hold (arrays as their quoted literal, which the escaped form reads as is)."""
    if value is None:
        return "\\N"
    if isinstance(value, list | tuple | bool | int | float):
        return _quoted(value)
    text = str(value)
    for a, b in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        text = text.replace(a, b)
    return text.replace("\0", "\\0")


def _placeholders(sql: str, params: Mapping[str, Any]) -> dict[str, str]:
    """name → type of each placeholder in ``sql``; every one must have a value."""
    found: dict[str, str] = {}
    for m in PLACEHOLDER.finditer(sql):
        name, kind = m.group(1), m.group(2).strip()
        if found.setdefault(name, kind) != kind:
            raise StoreError(f"parameter {name} used with two types: {found[name]}, {kind}")
        if name not in params:
            raise StoreError(f"no value for parameter {name}")
    return found


def rewrite_for_external(sql: str, params: Mapping[str, Any]) -> tuple[str, str, bytes]:
    """For a server without query parameters: (sql over ``_args``, the external table's
    structure, its one TabSeparated row). Numbers become checked literals."""
    kinds = _placeholders(sql, params)
    columns = [n for n, k in kinds.items() if not _NUMERIC.match(k)]

    def replace(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2).strip()
        if _NUMERIC.match(kind):
            return _numeric_literal(name, params[name], kind)
        if kind.startswith("Array(") and _BEFORE_IN.search(sql, 0, m.start()):
            return f"(SELECT arrayJoin({name}) FROM _args)"
        return f"(SELECT {name} FROM _args)"

    text = PLACEHOLDER.sub(replace, sql)
    structure = ",".join(f"{n} {kinds[n]}" for n in columns)
    row = "\t".join(_escaped(params[n]) for n in columns).encode() + b"\n"
    return text, structure, row


def _numeric_literal(name: str, value: Any, kind: str) -> str:
    if kind.startswith(("Int", "UInt")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise StoreError(f"parameter {name} ({kind}) is not an integer: {value!r}")
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StoreError(f"parameter {name} ({kind}) is not a number: {value!r}")
    return f"to{kind}('{_number(float(value))}')"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


_CODE = re.compile(r"Code: (\d+)")
# a server's version at the end of its message: found from its "(version", not from each blank
# before it (a search starting at every blank of a long run would be quadratic)
_VERSION_TAIL = re.compile(r"\(version [^()]*\)\.?\s*\Z")


def _text(data: bytes) -> str:
    """The start of a server's bytes as text, for a message (the rest is never decoded)."""
    return data[:MAX_ERROR].decode("utf-8", "replace")


def _server_message(text: str, code: int = 0) -> str:
    """A server's exception text as one line (code, prefixes and stack trace removed)."""
    text = text[:MAX_ERROR]
    m = _CODE.search(text)
    if m and not code:
        code = int(m.group(1))
    # from the code on, and short: the patterns below then run on a bounded text
    text = (text[m.start() :] if m else text)[:4096].strip()
    text = re.sub(r"^Code: \d+[.,]\s*(e\.displayText\(\) = )?(DB::Exception: )?", "", text)
    text = re.sub(r",? e\.what\(\) = DB::Exception\s*$", "", text)
    tail = _VERSION_TAIL.search(text)
    if tail:
        text = text[: tail.start()].rstrip()
    line = " ".join(text.split("\n\n")[0].split())  # the first paragraph, on one line
    if len(line) > 400:
        line = line[:400] + "…"
    return line or "no reason given"


def _store_error(text: str, target: Target, code: int = 0) -> StoreError:
    """The error a server's exception text means for the user."""
    m = _CODE.search(text)
    code = code or (int(m.group(1)) if m else 0)
    reason = _server_message(text)
    if code in (192, 193, 194, 516):
        return StoreError(
            f"ClickHouse at {target.display}: authentication failed ({target.credentials})", code
        )
    if code == 81:
        return StoreError(f"ClickHouse at {target.display}: unknown database: {reason}", code)
    return StoreError(f"ClickHouse rejected the query: {reason}", code)


# -- HTTP ------------------------------------------------------------------------------------


class HttpClient(Client):
    """ClickHouse's HTTP interface, through one urllib3 connection pool."""

    native_params = True  # set by connect() from the server's version

    def __init__(self, target: Target, read_timeout: float = READ_TIMEOUT) -> None:
        import urllib3

        super().__init__(target)
        self.version = ""
        self._urllib3 = urllib3
        self._read_timeout = read_timeout
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout)
        pool = _watched_pool(target.scheme == "clickhouses")
        self._pool = pool(target.host, target.port, timeout=timeout, maxsize=4, retries=False)
        self._headers: dict[str, str] = {}
        if target.user or target.password:
            token = f"{target.user or 'default'}:{target.password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()

    def close(self) -> None:
        self._pool.close()

    def insert(self, rows: bytes) -> None:
        if not rows:
            return
        query = f"INSERT INTO {self.table} FORMAT JSONEachRow"
        for _ in self._request({"query": query}, rows, {}):
            pass

    def _lines(self, sql: str, params: Mapping[str, Any], fmt: str | None) -> Iterator[bytes]:
        fields: dict[str, str] = {}
        if fmt:
            sql = f"{sql}\nFORMAT {fmt}"
        if not params and not PLACEHOLDER.search(sql):
            return self._request(fields, sql.encode(), {})
        if self.native_params:
            _placeholders(sql, params)
            for name in params:
                fields[f"param_{name}"] = _escaped(params[name])
            return self._request(fields, sql.encode(), {})
        text, structure, row = rewrite_for_external(sql, params)
        if not structure:
            return self._request(fields, text.encode(), {})
        # sent as form fields, not in the URL: an RBAC term's SQL is longer than the 16 KB
        # of URL the server reads
        form = {"query": text, "_args_structure": structure, "_args_format": "TabSeparated"}
        return self._request(fields, None, {"_args": row}, form)

    def _request(
        self,
        fields: dict[str, str],
        body: bytes | None,
        files: dict[str, bytes],
        form: dict[str, str] | None = None,
    ) -> Iterator[bytes]:
        """POST and stream the answer's lines; raises StoreError (before the first line for
        a failed request, at the end for an error that came after streaming began)."""
        urllib3 = self._urllib3
        query = {"database": self.target.database, **_SETTINGS, **fields}
        headers = dict(self._headers)
        if files:
            parts: dict[str, Any] = dict(form or {})
            for name, data in files.items():
                parts[name] = (name, data, "text/tab-separated-values")
            body, content_type = urllib3.encode_multipart_formdata(parts)
            headers["Content-Type"] = content_type
        url = "/?" + urlencode(query)
        where = self.target.display
        deadline = _Deadline(self._read_timeout)
        _watching.deadline = deadline  # the pool's _get_conn tells it the connection
        try:
            resp = self._pool.urlopen(
                "POST", url, body=body, headers=headers, preload_content=False
            )
        except urllib3.exceptions.NewConnectionError as exc:
            deadline.finish()
            raise StoreError(
                f"cannot reach ClickHouse at {where}: {_reason(exc)}", retryable=True
            ) from None
        except urllib3.exceptions.SSLError as exc:
            deadline.finish()
            raise StoreError(f"TLS failed with ClickHouse at {where}: {_reason(exc)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            deadline.finish()
            if deadline.expired:
                raise self._late(where) from None
            raise StoreError(
                f"no ClickHouse HTTP interface at {where}: {_reason(exc)}", retryable=True
            ) from None
        finally:
            _watching.deadline = None
        if not deadline.watch(resp):  # the time passed while the headers came
            resp.close()
            resp.release_conn()
            raise self._late(where)
        return self._stream(resp, where, deadline)

    def _late(self, where: str) -> StoreError:
        return StoreError(
            f"ClickHouse at {where} did not answer within {self._read_timeout:g} s",
            retryable=True,
        )

    def _stream(self, resp: Any, where: str, deadline: _Deadline) -> Iterator[bytes]:
        """The answer's non-empty lines, read in blocks: a line's pieces are kept in a list
        and joined once (linear in its length), up to MAX_LINE; the answer up to MAX_ANSWER."""
        urllib3 = self._urllib3
        complete = False
        try:
            if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
                raise StoreError(f"{where} answered in an encoding that was not asked for")
            if resp.status != 200:
                text = _text(_read_some(resp, MAX_ERROR))
                code = _header_code(resp.headers.get("X-ClickHouse-Exception-Code"))
                if not code and not _CODE.search(text):
                    raise StoreError(f"no ClickHouse HTTP interface at {where}: HTTP {resp.status}")
                raise _store_error(text, self.target, code)
            names = {k.lower() for k in resp.headers}
            if not names & {"x-clickhouse-server-display-name", "x-clickhouse-query-id"}:
                raise StoreError(f"no ClickHouse HTTP interface at {where} (another server)")
            pieces: list[bytes] = []  # the line under way, not yet ended by a newline
            held = total = 0
            for block in resp.stream(_BLOCK, decode_content=False):
                total += len(block)
                if total > MAX_ANSWER:
                    raise StoreError(f"{where} answered over {MAX_ANSWER >> 20:,} MiB")
                if b"\n" not in block:
                    pieces.append(block)
                    held += len(block)
                    if held - len(block) <= MAX_ERROR < held:  # once a line: an error's?
                        start = b"".join(pieces)[:MAX_ERROR]
                        if start.startswith(b"Code: "):  # one appended after rows, endless
                            raise _store_error(_text(start), self.target)
                    if held > MAX_LINE:
                        raise StoreError(f"{where} answered a line over {MAX_LINE >> 20:,} MiB")
                    continue
                lines = block.split(b"\n")
                if pieces:
                    pieces.append(lines[0])
                    lines[0] = b"".join(pieces)
                    pieces = []
                    if len(lines[0]) > MAX_LINE:
                        raise StoreError(f"{where} answered a line over {MAX_LINE >> 20:,} MiB")
                last = lines.pop()
                for line in lines:
                    if line:
                        yield self._checked(line, resp)
                if last:
                    pieces.append(last)
                held = len(last)
            if deadline.expired:  # the socket shut: the answer may look ended, cut short
                raise self._late(where)
            if pieces:
                yield self._checked(b"".join(pieces), resp)
            complete = True
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired:
                raise self._late(where) from None
            raise StoreError(
                f"connection to ClickHouse at {where} broke: {_reason(exc)}", retryable=True
            ) from None
        finally:
            deadline.finish()
            if not complete:  # an error, or left unread: the connection cannot serve again
                resp.close()
            resp.release_conn()

    def _checked(self, line: bytes, resp: Any) -> bytes:
        """A line of the answer; the exception a server appends after streaming began (its
        status already 200) raises."""
        if line.startswith(b"Code: "):
            raise _store_error(_text(line + _read_some(resp, MAX_ERROR)), self.target)
        return line


def _read_some(resp: Any, limit: int) -> bytes:
    """At most ``limit`` bytes more of an answer (an error's text: what is shown of it)."""
    out: list[bytes] = []
    size = 0
    for block in resp.stream(_BLOCK, decode_content=False):
        out.append(block)
        size += len(block)
        if size >= limit:
            break
    return b"".join(out)[:limit]


def _header_code(value: str | None) -> int:
    """X-ClickHouse-Exception-Code as a number (0 when missing or not one)."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else 0


class _Deadline:
    """The time an answer has, from the request to its last byte (the read timeout only
    bounds the wait between two reads: a server sending a byte now and then would hold the
    client forever). When it passes, the socket is shut down, which ends a read blocked on
    it (``HTTPResponse.shutdown`` once the headers are in, the connection's socket before);
    :attr:`expired` then says why."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self.conn: Any = None  # the pool's connection, once it was taken
        self._resp: Any = None
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            resp, sock = self._resp, getattr(self.conn, "sock", None)
        with contextlib.suppress(OSError, ValueError, RuntimeError):  # already closed
            if resp is not None:
                resp.shutdown()
            elif sock is not None:
                sock.shutdown(socket.SHUT_RDWR)

    def watch(self, resp: Any) -> bool:
        """The answer's headers are in: from now on its read is what to end. False when the
        time already passed."""
        with self._lock:
            self._resp = resp
            return not self.expired

    def finish(self) -> None:
        """The answer was read (or failed): before its connection goes back to the pool, so
        that a late timer never shuts down a socket another request then uses."""
        with self._lock:
            self._done = True
        self._timer.cancel()


_watching = threading.local()  # the _Deadline of the request this thread is making
_pool_classes: dict[bool, Any] = {}


def _watched_pool(tls: bool) -> Any:
    """urllib3's connection pool class (HTTPS with ``tls``) that tells the request's
    :class:`_Deadline` which connection it took."""
    if tls not in _pool_classes:
        import urllib3

        base = urllib3.HTTPSConnectionPool if tls else urllib3.HTTPConnectionPool

        class Watched(base):  # type: ignore[valid-type,misc]
            def _get_conn(self, timeout: float | None = None) -> Any:
                conn = super()._get_conn(timeout)
                deadline = getattr(_watching, "deadline", None)
                if deadline is not None:
                    deadline.conn = conn
                return conn

        _pool_classes[tls] = Watched
    return _pool_classes[tls]


def _reason(exc: BaseException) -> str:
    """The innermost, plainest words of a urllib3 exception."""
    while True:
        inner = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^')\]]+)", text)
    if m:
        return m.group(1).strip().lower()
    text = re.sub(r"^<[^>]*>: ", "", text)
    return " ".join(text.split())[:200] or type(exc).__name__


def _split_lines(data: bytes, where: str) -> Iterator[bytes]:
    """The non-empty lines of a whole answer, one at a time (not a list of them all)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end - start > MAX_LINE:
            raise StoreError(f"{where} answered a line over {MAX_LINE >> 20:,} MiB")
        if end > start:
            yield data[start:end]
        start = end + 1


# -- chdb ------------------------------------------------------------------------------------

# chdb runs one embedded server per process, on one folder: sessions are shared by folder and
# the engine is closed when the last client of it closes.
_chdb_lock = threading.Lock()
_chdb_open: dict[str, tuple[Any, int]] = {}
# One query at a time in the process: the clients of a folder share its one session, and a
# query's parameters live in that session (two at once took each other's: "Substitution
# `db` is not set").
_chdb_query_lock = threading.Lock()


class ChdbClient(Client):
    """The embedded engine (chdb) on a local folder."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.version = ""
        self._path = target.host
        self._closed = False
        with _chdb_lock:
            if self._path in _chdb_open:
                session, users = _chdb_open[self._path]
                _chdb_open[self._path] = (session, users + 1)
            else:
                if _chdb_open:
                    other = next(iter(_chdb_open))
                    raise StoreError(
                        f"chdb is open on {other} in this process; it cannot open {self._path}"
                    )
                try:
                    from chdb import session as chdb_session

                    session = chdb_session.Session(self._path)
                except ImportError:
                    raise StoreError("chdb is not installed (pip install chdb)") from None
                except Exception as exc:  # chdb raises plain RuntimeError for a bad folder
                    reason = _server_message(str(exc))
                    raise StoreError(f"chdb cannot open {self._path}: {reason}") from None
                _chdb_open[self._path] = (session, 1)
        self._session = session

    def close(self) -> None:
        with _chdb_lock:
            if self._closed:
                return
            self._closed = True
            session, users = _chdb_open[self._path]
            if users > 1:
                _chdb_open[self._path] = (session, users - 1)
                return
            del _chdb_open[self._path]
            session.close()

    def insert(self, rows: bytes) -> None:
        if not rows:
            return
        # The data part of an INSERT is read by the format's parser, not the SQL one.
        # Not through _query: a row's text may hold "{name:Type}", which is data here.
        sql = f"INSERT INTO {self.table} FORMAT JSONEachRow\n" + rows.decode("utf-8", "replace")
        self._run(sql, {}, "JSONEachRow")

    def _lines(self, sql: str, params: Mapping[str, Any], fmt: str | None) -> Iterator[bytes]:
        data = self._query(sql, params, fmt or "CSV")
        where = self.target.display
        if len(data) > MAX_ANSWER:
            raise StoreError(f"{where} answered over {MAX_ANSWER >> 20:,} MiB")
        return _split_lines(data, where)

    def _query(self, sql: str, params: Mapping[str, Any], fmt: str) -> bytes:
        if self._closed:
            raise StoreError("the store connection is closed")
        kinds = _placeholders(sql, params)
        return self._run(sql, {name: _escaped(params[name]) for name in kinds}, fmt)

    def _run(self, sql: str, values: dict[str, str], fmt: str) -> bytes:
        if self._closed:
            raise StoreError("the store connection is closed")
        try:
            with _chdb_query_lock:
                result = self._session.query(sql, fmt, params=values)
        except Exception as exc:  # chdb raises its own error types for every server error
            raise _store_error(str(exc), self.target) from None
        return bytes(result.bytes()) if result is not None else b""
