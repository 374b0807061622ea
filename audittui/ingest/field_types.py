"""Which indexed fields of an event hold a value of the wrong type (a number for ``sourceIPs``,
an object for ``userAgent``, an integer past the code column's range, an impossible date).

Such a field is indexed as missing and the event kept (:func:`formats.row` already reads every
field that way); this module says what was ignored, so that ``stats`` and the ``!`` screen can
count it ("312 fields of the wrong type ignored, e.g. line 41 responseStatus.code: integer out
of range"). Only events that leave the fast path are checked: the typed decoder accepts no
wrong type, so a well-formed log costs nothing here.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from .formats import CODE_MAX, parse_time

_STRINGS = ("auditID", "stage", "level", "verb", "requestURI", "userAgent")
_REF_STRINGS = ("resource", "namespace", "name", "apiGroup", "apiVersion", "subresource")
_TIMES = ("requestReceivedTimestamp", "stageTimestamp")


def wrong_types(ev: dict[str, Any]) -> list[str]:
    """``"path: what it is"`` for each indexed field of ``ev`` holding the wrong type."""
    out: list[str] = []
    for key in _STRINGS:
        _string(ev, key, key, out)
    for key in ("user", "impersonatedUser"):
        user = ev.get(key)
        if _object(user, key, out):
            _string(user, "username", f"{key}.username", out)
            _strings(user, "groups", f"{key}.groups", out)
            extra = user.get("extra")
            if _object(extra, f"{key}.extra", out):
                for name in extra:
                    _strings(extra, name, f"{key}.extra.{name}", out)
    _strings(ev, "sourceIPs", "sourceIPs", out)
    ref = ev.get("objectRef")
    if _object(ref, "objectRef", out):
        for key in _REF_STRINGS:
            _string(ref, key, f"objectRef.{key}", out)
    status = ev.get("responseStatus")
    if _object(status, "responseStatus", out):
        code = status.get("code")
        if code is not None:
            if type(code) is not int:
                out.append(f"responseStatus.code: {_what(code)}, not an integer")
            elif not 0 <= code <= CODE_MAX:
                out.append("responseStatus.code: integer out of range")
    for key in _TIMES:
        value = ev.get(key)
        if value is None:
            continue
        if type(value) is not str:
            out.append(f"{key}: {_what(value)}, not a time")
        elif parse_time(value) is None:
            out.append(f"{key}: not a time ({value[:40]!r})")
    annotations = ev.get("annotations")
    if _object(annotations, "annotations", out):
        for name in annotations:
            _string(annotations, name, f"annotations.{name}", out)
    return out


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _string(holder: dict[str, Any], key: str, path: str, out: list[str]) -> None:
    value = holder.get(key)
    if value is not None and type(value) is not str:
        out.append(f"{path}: {_what(value)}, not a string")


def _strings(holder: dict[str, Any], key: str, path: str, out: list[str]) -> None:
    value = holder.get(key)
    if value is None:
        return
    if type(value) is not list:
        out.append(f"{path}: {_what(value)}, not a list of strings")
    elif not all(type(v) is str for v in value):
        bad = next(v for v in value if type(v) is not str)
        out.append(f"{path}: a list holding {_what(bad) if bad is not None else 'null'}")


def _object(value: Any, path: str, out: list[str]) -> TypeGuard[dict[str, Any]]:
    """Is ``value`` an object to look inside (None: absent, nothing said)?"""
    if value is None:
        return False
    if type(value) is not dict:
        out.append(f"{path}: {_what(value)}, not an object")
        return False
    return True
