"""An event nested deeper than the readers go is read on its shallow fields, its deep members
opaque (see :mod:`.nesting`), wherever a record is decoded: lines and documents of files, the
follower, the content of wrapped lines (CRI, Docker, CloudWatch), the detail and the outputs.

:func:`loads` is ``orjson.loads`` for every record that orjson reads; one nested past orjson's
1,024 levels, which orjson refuses, is read with each member nested over :data:`SAFE_DEPTH`
levels replaced by a string that says so and how big it was. A reader that reports them (the
loader: with file and line, as fields read as missing, the event itself being indexed) calls
:func:`collect` before a record and :func:`taken` after it; other threads collect nothing.

:data:`SAFE_DEPTH` is below orjson's limit for writing (255 levels: an event is written again
by the outputs, masked) and leaves room for the recursive walks (masking, the detail's tree).
:func:`bounded` holds an event read to show or write to that depth, however it was read.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson

from .nesting import opaque_deep

SAFE_DEPTH = 200
# Objects looked into before a member is replaced whole: a deep user.extra.x leaves
# user.username (and the credential id), a GKE entry its protoPayload's fields.
LEVELS = 2
_TOO_DEEP = "depth limit exceeded"

_local = threading.local()  # .noted: the members made opaque in this thread, not yet taken


def too_deep(exc: Exception) -> bool:
    """Is this orjson's refusal of JSON nested past its limit?"""
    return str(exc).startswith(_TOO_DEEP)


def collect() -> None:
    """From now on, note in this thread the members :func:`loads` makes opaque."""
    _local.noted = []


def taken() -> list[str]:
    """The members :func:`loads` made opaque in this thread since :func:`collect` or the last
    call (forgotten then). One attribute lookup when there are none: it runs once a record."""
    noted: list[str] | None = getattr(_local, "noted", None)
    if not noted:
        return []
    _local.noted = []
    return noted


def loads(raw: bytes) -> Any:
    """``orjson.loads(raw)``; for an object nested past orjson's limit, its value with the
    too-deep members opaque. Raises orjson.JSONDecodeError as orjson does otherwise."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not too_deep(exc):
            raise
        opaque = opaque_deep(raw, SAFE_DEPTH, LEVELS)
        if opaque is None:
            raise
        value = orjson.loads(opaque.text)  # (its other faults, if any, are said as usual)
    noted = getattr(_local, "noted", None)
    if noted is not None:  # (collected: this thread reports them)
        noted += opaque.members
    return value


def reason(member: str) -> str:
    """What is said of a member made opaque (as of a field of the wrong type)."""
    return f"{member}: nested over {SAFE_DEPTH:,} levels deep, not read (a note in its place)"


def bounded(raw: bytes) -> bytes:
    """``raw`` (one event's JSON) with each member nested over :data:`SAFE_DEPTH` levels
    opaque, for showing or writing it; ``raw`` itself when none is (or it is no object). A
    count first: only text with that many brackets can nest that deep."""
    if raw.count(b"{") + raw.count(b"[") <= SAFE_DEPTH:
        return raw
    opaque = opaque_deep(raw, SAFE_DEPTH, LEVELS)
    return raw if opaque is None else opaque.text
