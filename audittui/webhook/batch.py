"""A request body → the spool lines of its events and their deduplication keys.

The API server posts ``{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[…]}`` with
items that carry no ``kind`` or ``apiVersion``. Each item becomes one complete Event line
(``kind`` and ``apiVersion`` put back at its front), so the spool reads like the API server's
own log. The items are not rebuilt as Python objects: msgspec hands over each item's raw bytes
(checked as JSON) and decodes only the four fields the receiver needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson


class BadBatch(ValueError):
    """A body that is not an EventList: the whole request is refused (400) with this reason."""


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


_decode_list = msgspec.json.Decoder(_List).decode
_decode_item = msgspec.json.Decoder(_Item).decode


class _Typed(msgspec.Struct):
    items: list[_Item] = []


_decode_typed = msgspec.json.Decoder(_Typed).decode
_API = "audit.k8s.io/"


@dataclass
class Parsed:
    """The events of one batch: ``lines[k]`` (newline included) has the key ``keys[k]``."""

    lines: list[bytes] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # reason (a metric label) → items
    items: int = 0


def event_key(audit_id: str, stage: str, stage_timestamp: str) -> bytes:
    """The deduplication key of an event: 128 bits of (auditID, stage, stageTimestamp)."""
    text = f"{audit_id}\0{stage}\0{stage_timestamp}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=16).digest()


def line_key(line: bytes) -> bytes | None:
    """The key of a spool line (None for a line that is no event, e.g. cut by a crash)."""
    try:
        item = _decode_item(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if type(item.auditID) is not str or type(item.stage) is not str:
        return None
    ts = item.stageTimestamp if type(item.stageTimestamp) is str else ""
    return event_key(item.auditID, item.stage, ts)


def parse_batch(body: bytes) -> Parsed:
    """Split an EventList body into event lines; raises :class:`BadBatch`.

    An item that is not an event object is counted in ``rejected`` and left out; the rest of
    the batch is kept. Within the batch, a repeated key is kept once.
    """
    try:
        head = _decode_list(body)
    except msgspec.ValidationError as exc:
        if "$.items" in str(exc):
            raise BadBatch("an EventList whose items are not a list") from None
        raise BadBatch("not an EventList (the body is not a JSON object)") from None
    except msgspec.DecodeError as exc:
        raise BadBatch(f"not JSON ({exc})") from None
    if head.kind != "EventList":
        raise BadBatch(f"not an EventList (kind is {_shown(head.kind)})")
    api = head.apiVersion if head.apiVersion is not None else "audit.k8s.io/v1"
    if type(api) is not str or not api.startswith(_API):
        raise BadBatch(f"not an audit EventList (apiVersion is {_shown(api)})")
    if head.items is None:
        raise BadBatch("an EventList without items")
    raw_items = head.items
    prefix = b'{"kind":"Event","apiVersion":' + orjson.dumps(api) + b","
    out = Parsed(items=len(raw_items))
    try:  # every item's four fields in one call; an item that is no object: one by one
        typed: list[_Item] | None = _decode_typed(body).items
    except msgspec.ValidationError:
        typed = None
    plain = b"\n" not in body and b"\r" not in body  # else pretty-printed: items rebuilt
    seen: set[bytes] = set()
    lines, keys = out.lines, out.keys
    for k, raw in enumerate(raw_items):
        view = memoryview(raw)
        if typed is not None:
            item = typed[k]
        elif view[:1] == b"{":
            item = _decode_item(view)
        else:
            _reject(out, "not_object")
            continue
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
            key = event_key(audit_id, stage, ts or "")
            if key in seen:
                continue
            # The common case, copied once: `{"kind":…,"apiVersion":…,` + the item's own
            # fields (whitespace after a comma is still JSON).
            line = b"".join((prefix, view[1:], b"\n"))
            if not line.isascii() and not _utf8(line):  # msgspec does not check raw bytes
                _reject(out, "not_utf8")
                continue
            seen.add(key)
            lines.append(line)
            keys.append(key)
            continue
        why = _add_other(out, item, bytes(view), api, seen)
        if why:
            _reject(out, why)
    return out


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _reject(out: Parsed, why: str) -> None:
    out.rejected[why] = out.rejected.get(why, 0) + 1


def _add_other(out: Parsed, item: _Item, raw: bytes, api: str, seen: set[bytes]) -> str:
    """An item off the common path: add it, or return why it is rejected."""
    if item.kind is not None and item.kind != "Event":
        return "kind_not_event"
    if type(item.auditID) is not str or not item.auditID:
        return "no_audit_id"
    if type(item.stage) is not str or not item.stage:
        return "no_stage"
    ts = item.stageTimestamp
    if ts is not None and type(ts) is not str:
        return "bad_stage_timestamp"
    if not _utf8(raw):
        return "not_utf8"
    key = event_key(item.auditID, item.stage, ts or "")
    if key in seen:
        return ""
    seen.add(key)
    # Pretty-printed (a line must be one line), or kind/apiVersion partly there: rebuilt.
    event = orjson.loads(raw)
    out.lines.append(orjson.dumps({"kind": "Event", "apiVersion": api, **event}) + b"\n")
    out.keys.append(key)
    return ""


def _shown(value: object) -> str:
    text = orjson.dumps(value).decode() if value is not None else "missing"
    return text if len(text) <= 40 else text[:39] + "…"
