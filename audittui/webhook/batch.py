"""A request body → the spool lines of its events and their deduplication keys.

The API server posts ``{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[…]}`` with
items that carry no ``kind`` or ``apiVersion``. Each item becomes one complete Event line
(``kind`` and ``apiVersion`` put back at its front, the rest as sent), so the spool reads like
the API server's own log. The items are not rebuilt as Python objects: msgspec hands over each
item's raw bytes (checked as JSON) and decodes only the five fields the receiver checks.

An event's key is a digest of its line: two events are the same only when their lines are
byte for byte the same (the API server encodes the same event the same way when it sends a
batch again), so a different event that shares an auditID, a stage and a stage time is kept
(see :func:`event_key`).

Memory is bounded by bytes, not by the items' count: every item costs Python objects (its raw
view, its line, its key) whatever its size, so a batch holds at most ``max_items`` items,
:data:`ITEM_COST` bytes each against the body's own size (a 64 MiB body of ``{},{},…`` is 22
million items: refused, not decoded). msgspec's list of raw items is made only when its own
size is bounded by the same budget; otherwise the items are counted first (see :func:`_spans`).

An item nested deeper than the decoders go (Go's decoder accepts 10,000 levels; msgspec stops
near 1,000) is still an event on its top-level fields: they are read around the deep members
(:mod:`audittui.ingest.nesting`), and its line is written as sent. Such a batch, or one with
more items than msgspec's list may hold, is split by that module's linear structure reader.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from ..ingest.formats import parse_json
from ..ingest.nesting import members, value_span

# Bytes an item may cost while its batch is parsed and written: its raw view or span (56),
# its line's object and prefix (81), its key and its places in lists and sets (about 150),
# with room to spare. A batch may hold max_body / ITEM_COST items (131,072 for 64 MiB).
ITEM_COST = 512
RAW_COST = 56  # one msgspec.Raw and its list slot


class BadBatch(ValueError):
    """A body that is not an EventList: the whole request is refused (400) with this reason."""


class TooManyItems(Exception):
    """More items than the batch's memory budget allows: refused (413)."""


class _List(msgspec.Struct):
    kind: Any = None
    apiVersion: Any = None
    items: list[msgspec.Raw] | None = None  # each item's bytes, checked as JSON, not decoded


class _Item(msgspec.Struct):
    kind: Any = None
    apiVersion: Any = None
    auditID: Any = None
    stage: Any = None
    stageTimestamp: Any = None


_NULL = msgspec.Raw(b"null")


class _Whole(msgspec.Struct):
    kind: Any = None
    apiVersion: Any = None
    items: msgspec.Raw = _NULL  # the array as one piece: checked, not split


_decode_list = msgspec.json.Decoder(_List).decode
_decode_whole = msgspec.json.Decoder(_Whole).decode
_decode_item = msgspec.json.Decoder(_Item).decode


class _TypedList(msgspec.Struct):
    items: list[_Item] = []


_decode_typed = msgspec.json.Decoder(_TypedList).decode
_API = "audit.k8s.io/"
_WS = re.compile(rb"[ \t\r\n]*")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # a surrogate's escape (a lone one: not UTF-8)


@dataclass
class Parsed:
    """The events of one batch: ``lines[k]`` (newline included) has the key ``keys[k]``."""

    lines: list[bytes] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # reason (a metric label) → items
    items: int = 0
    repeated: int = 0  # items that repeat an earlier item of the same batch, kept once


Key = int  # 128 bits: see event_key

_M64 = (1 << 64) - 1
# Python's hash of str and bytes is SipHash keyed with a secret drawn at start: nobody can make
# two texts collide without it. PYTHONHASHSEED=0 turns the secret off: then SHA-256 (slower).
_KEYED = sys.flags.hash_randomization != 0


def event_key(line: bytes, audit_id: str, stage: str, stage_time: str | None) -> Key:
    """The deduplication key of an event: 64 bits of keyed SipHash of its line as written,
    newline included (the same event sent again has the same line), beside 64 of its auditID,
    stage and stage time. An event's content is partly chosen by whoever made the request (its
    Audit-ID too), so the hash must be one nobody can make collide: keyed, a fresh key each
    start (the window is rebuilt from the spool with it), at the cost of a third of SHA-256's
    (which it falls back to without hash randomization). Two different lines share a key only
    by a 2^-64 chance when their key fields are equal, 2^-128 otherwise."""
    if not _KEYED:
        return int.from_bytes(hashlib.sha256(line).digest()[:16], "big")
    return ((hash((audit_id, stage, stage_time)) & _M64) << 64) | (hash(line) & _M64)


def line_key(line: bytes) -> Key | None:
    """The key of a spool line (None for a line without its newline, cut by a crash, or one
    that is no event: the spool holds only events)."""
    if not line.endswith(b"\n"):
        return None
    item: _Item | None
    try:
        item = _decode_item(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        try:
            item = _lenient_fields(memoryview(line))
        except BadBatch:
            return None
    if item is None:
        return None
    if type(item.auditID) is not str or type(item.stage) is not str:
        return None
    ts = item.stageTimestamp
    return event_key(line, item.auditID, item.stage, ts if type(ts) is str else None)


def max_items(max_body: int) -> int:
    """How many items a batch may hold when a body may have ``max_body`` bytes."""
    return max(max_body // ITEM_COST, 1)


def parse_batch(body: bytes | bytearray, limit: int) -> Parsed:
    """Split an EventList body into event lines; raises :class:`BadBatch` or, for more than
    ``limit`` items, :class:`TooManyItems`.

    An item that is not an event object is counted in ``rejected`` and left out; the rest of
    the batch is kept. Within the batch, an item sent twice is kept once.
    """
    kind, api, views, count, typed = _items(body, limit)
    if kind != "EventList":
        raise BadBatch(f"not an EventList (kind is {_shown(kind)})")
    api = api if api is not None else "audit.k8s.io/v1"
    if type(api) is not str or not api.startswith(_API):
        raise BadBatch(f"not an audit EventList (apiVersion is {_shown(api)})")
    if views is None:
        raise BadBatch("an EventList without items")
    out = Parsed(items=count)
    _add_items(out, views, api, b"\n" not in body and b"\r" not in body, typed)
    return out


_Views = Iterator[memoryview]


def _items(
    body: bytes | bytearray, limit: int
) -> tuple[object, object, _Views | None, int, list[_Item] | None]:
    """(kind, apiVersion, a view of each item or None, their number, and when they are all
    objects their fields, decoded in one pass), by the cheapest way that keeps within the
    budget:

    - msgspec's list of raw items, when that list cannot outgrow the budget (and a second
      pass for every item's five fields: one call, not one per item);
    - else msgspec checks the body and hands the items' array as one piece, whose elements are
      then counted and found by structure, stopping after ``limit``;
    - a body nested deeper than msgspec goes: all of it read by structure."""
    try:
        if _raw_list_fits(body, limit):
            head = _decode_list(body)
            if head.items is None:
                return head.kind, head.apiVersion, None, 0, None
            if len(head.items) > limit:
                raise TooManyItems(f"more than {limit:,} items in one batch")
            try:  # (within the budget too: ITEM_COST counts an item's decoded fields)
                typed: list[_Item] | None = _decode_typed(body).items
            except (msgspec.ValidationError, RecursionError):
                typed = None  # an item that is no object: one by one
            return (head.kind, head.apiVersion, map(memoryview, head.items), len(head.items), typed)
        whole = _decode_whole(body)
        array = memoryview(whole.items)
        if array[:1] != b"[":
            if array != b"null":
                raise BadBatch("an EventList whose items are not a list")
            return whole.kind, whole.apiVersion, None, 0, None
        spans, _ = _spans(array, 0, limit)
        return whole.kind, whole.apiVersion, (array[s:e] for s, e in spans), len(spans), None
    except msgspec.ValidationError as exc:
        if "$.items" in str(exc):
            raise BadBatch("an EventList whose items are not a list") from None
        raise BadBatch("not an EventList (the body is not a JSON object)") from None
    except msgspec.DecodeError as exc:
        if not _SURROGATE.search(body):
            raise BadBatch(f"not JSON ({exc})") from None
        # msgspec refuses a lone surrogate's escape, which Go reads (as U+FFFD) and a patch
        # is logged as sent with: read by structure, that item by the lenient reader
    except RecursionError:
        pass  # an item nested deeper than msgspec goes
    kind, api, found = _split(body, limit)
    if found is None:
        return kind, api, None, 0, None
    view = memoryview(body)
    return kind, api, (view[s:e] for s, e in found), len(found), None


def _raw_list_fits(body: bytes | bytearray, limit: int) -> bool:
    """May msgspec make its list of raw items, one object per item, before they are counted?
    Only if that list stays within the batch's budget for items (an item takes at least two
    bytes, ``1,``, and there are no more items than commas plus one)."""
    most = limit * ITEM_COST // RAW_COST
    return (len(body) + 1) // 2 <= most or body.count(b",") < most


def _add_items(
    out: Parsed, views: Iterator[memoryview], api: str, plain: bool, typed: list[_Item] | None
) -> None:
    prefix = b'{"kind":"Event","apiVersion":' + orjson.dumps(api) + b","
    seen: set[Key] = set()
    lines, keys = out.lines, out.keys
    decoded = iter(typed) if typed is not None else None
    for view in views:
        try:
            item = next(decoded) if decoded is not None else _decode_item(view)
        except msgspec.ValidationError:
            _reject(out, "not_object")
            continue
        except (msgspec.DecodeError, RecursionError):  # only when split by structure
            lenient = _lenient_fields(view)
            if lenient is None:
                _reject(out, "not_object")
                continue
            item = lenient
        audit_id, stage, ts = item.auditID, item.stage, item.stageTimestamp
        if (
            plain
            and item.kind is None
            and item.apiVersion is None
            and type(audit_id) is str
            and audit_id
            and type(stage) is str
            and stage
            and (ts is None or type(ts) is str)
        ):
            # The common case, copied once: `{"kind":…,"apiVersion":…,` + the item's own
            # fields, as sent (whitespace after a comma is still JSON).
            line = b"".join((prefix, view[1:], b"\n"))
        else:
            why = _why_not(item)
            if why:
                _reject(out, why)
                continue
            line = _rebuild(bytes(view), api)
        if not line.isascii() and not _utf8(line):  # msgspec does not check raw bytes
            _reject(out, "not_utf8")
            continue
        # event_key, inlined (a fifth of the receiver's time per event)
        if _KEYED:
            key = ((hash((audit_id, stage, ts)) & _M64) << 64) | (hash(line) & _M64)
        else:
            key = event_key(line, audit_id, stage, ts)
        if key in seen:
            out.repeated += 1
            continue
        seen.add(key)
        lines.append(line)
        keys.append(key)


def _lenient_fields(view: memoryview) -> _Item | None:
    """The fields of an item msgspec cannot read, read as the file reader reads the line
    (:func:`audittui.ingest.formats.parse_json`: members nested deeper than the decoders go
    opaque, a lone surrogate's escape as U+FFFD); None when it is no object. Raises
    :class:`BadBatch` when it is not JSON at all."""
    try:
        value = parse_json(bytes(view))
    except (ValueError, RecursionError) as exc:
        raise BadBatch(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        return None
    return _Item(**{name: value.get(name) for name in _Item.__struct_fields__})


def _why_not(item: _Item) -> str:
    """Why an item off the common path is no event ("" when it is one)."""
    if item.kind is not None and item.kind != "Event":
        return "kind_not_event"
    if type(item.auditID) is not str or not item.auditID:
        return "no_audit_id"
    if type(item.stage) is not str or not item.stage:
        return "no_stage"
    ts = item.stageTimestamp
    if ts is not None and type(ts) is not str:
        return "bad_stage_timestamp"
    return ""


def _rebuild(raw: bytes, api: str) -> bytes:
    """The line of an item off the common path (pretty-printed, or carrying its own kind or
    apiVersion): ``kind`` and ``apiVersion`` first (the item's own values when it has them),
    then its other members as sent, on one line. Read by structure, so a member nested however
    deep is copied, never decoded; line breaks can only be whitespace between tokens in JSON,
    so they become spaces."""
    found = members(raw)
    own = {name: raw[s.start : s.end] for name, s in found if name in ("kind", "apiVersion")}
    parts = [
        b'{"kind":',
        own.get("kind", b'"Event"'),
        b',"apiVersion":',
        own.get("apiVersion", orjson.dumps(api)),
    ]
    for name, span in found:
        if name not in ("kind", "apiVersion"):
            parts += (b",", orjson.dumps(name), b":", raw[span.start : span.end])
    parts.append(b"}\n")
    line = b"".join(parts)
    return line[:-1].replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"


def _split(
    body: bytes | bytearray, limit: int
) -> tuple[object, object, list[tuple[int, int]] | None]:
    """(kind, apiVersion, the items' spans or None) of an EventList, read by structure (no
    depth is too deep); at most ``limit`` items are counted before :class:`TooManyItems`."""
    raw = body
    try:
        p = _skip(raw, 0)
        if raw[p : p + 1] != b"{":
            raise BadBatch("not an EventList (the body is not a JSON object)")
        values: dict[str, object] = {}
        spans: list[tuple[int, int]] | None = None
        p = _skip(raw, p + 1)
        while raw[p : p + 1] != b"}":
            if raw[p : p + 1] != b'"':
                raise ValueError(f"a key must be a string (byte {p})")
            key = value_span(raw, p)
            name = orjson.loads(raw[key.start : key.end])
            p = _skip(raw, key.end)
            if raw[p : p + 1] != b":":
                raise ValueError(f"':' expected at byte {p}")
            p = _skip(raw, p + 1)
            if name == "items" and raw[p : p + 1] == b"[":
                spans, p = _spans(raw, p, limit)
            else:
                value = value_span(raw, p)
                if name == "items":
                    if raw[p : p + 4] != b"null":
                        raise BadBatch("an EventList whose items are not a list")
                    spans = None
                elif name in ("kind", "apiVersion") and value.depth == 0:
                    values[name] = orjson.loads(raw[value.start : value.end])
                p = value.end
            p = _skip(raw, p)
            if raw[p : p + 1] == b",":
                p = _skip(raw, p + 1)
            elif raw[p : p + 1] != b"}":
                raise ValueError(f"',' or '}}' expected at byte {p}")
        if _skip(raw, p + 1) != len(raw):
            raise ValueError(f"trailing characters at byte {p + 1}")
    except (ValueError, orjson.JSONDecodeError) as exc:
        if isinstance(exc, BadBatch):
            raise
        raise BadBatch(f"not JSON ({exc})") from None
    return values.get("kind"), values.get("apiVersion"), spans


def _spans(
    raw: bytes | bytearray | memoryview, pos: int, limit: int
) -> tuple[list[tuple[int, int]], int]:
    """The spans of the array's elements starting at ``pos`` and the index after it; raises
    :class:`TooManyItems` at the element after the ``limit``-th, before reading further."""
    out: list[tuple[int, int]] = []
    p = _skip(raw, pos + 1)
    if raw[p : p + 1] == b"]":
        return out, p + 1
    while True:
        if len(out) >= limit:
            raise TooManyItems(f"more than {limit:,} items in one batch")
        value = value_span(raw, p)
        out.append((value.start, value.end))
        p = _skip(raw, value.end)
        sep = raw[p : p + 1]
        if sep == b"]":
            return out, p + 1
        if sep != b",":
            raise ValueError(f"',' or ']' expected at byte {p}")
        p = _skip(raw, p + 1)


def _skip(raw: bytes | bytearray | memoryview, pos: int) -> int:
    m = _WS.match(raw, pos)
    return m.end() if m is not None else pos


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _reject(out: Parsed, why: str) -> None:
    out.rejected[why] = out.rejected.get(why, 0) + 1


def _shown(value: object) -> str:
    try:
        text = orjson.dumps(value).decode() if value is not None else "missing"
    except TypeError:
        text = "not a string"
    return text if len(text) <= 40 else text[:39] + "…"
