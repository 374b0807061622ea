"""Mask secrets in events before they are shown, copied or exported: Secret ``data`` and
``stringData`` (and the last-applied annotation that repeats them), token and password fields,
and ConfigMap keys that look like credentials. Keys stay visible, values are replaced by a
placeholder saying how long they were. The input event is never changed."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..ingest.deep import bounded
from ..ingest.formats import parse_json
from ..ingest.wrappers import KLOG, is_text_wrapper, with_event_text

PLACEHOLDER = "••• masked ({n} bytes); x reveals"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TOKEN_KEYS = frozenset(
    {
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "client-key-data",
        "password",
        "authorization",
        "bearertoken",
    }
)
CREDENTIAL_KEY = re.compile(
    r"aws_access_key_id|aws_secret_access_key|password|passwd|secret|token|api_?key|private_?key",
    re.IGNORECASE,
)
# Falco's "configmap with private credentials" looks into the values too.
CREDENTIAL_VALUE = re.compile(
    r"aws[_-](s3[_-])?access[_-]key[_-]id|aws[_-]secret[_-]access[_-]key|password|passphrase",
    re.IGNORECASE,
)
# Every event that mask_event can change holds one of these (checked case-insensitively;
# quoted where a bare word would match nearly every event, like the authorization.k8s.io
# annotations).
_HINTS = (
    b"secret",
    b'token"',
    b'password"',
    b"configmap",
    b'"authorization"',
    b'"bearertoken"',
    b'"client-key-data"',
)
_ESCAPED_LETTER = re.compile(rb"\\u00[4-7][0-9a-fA-F]")  # JSON may spell a key in \u escapes
_BODIES = ("requestObject", "responseObject")


def _placeholder(value: Any) -> str:
    size = len(value) if isinstance(value, str) else len(orjson.dumps(value))
    return PLACEHOLDER.format(n=size)


class _Masker:
    def __init__(self, secret_resource: bool) -> None:
        self.secret_resource = secret_resource
        self.count = 0

    def blank(self, value: Any) -> str:
        self.count += 1
        return _placeholder(value)

    def walk(self, value: Any) -> Any:
        """A copy of a body with every secret inside masked."""
        if isinstance(value, list):
            return [self._patch_op(v) if self._is_secret_op(v) else self.walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get("kind")
        out: dict[str, Any] = {}
        for key, item in value.items():
            # ASCII only: str.lower() maps some other letters (the Kelvin sign) to ASCII ones.
            lower = key.lower() if isinstance(key, str) and key.isascii() else ""
            # Under a secrets request, list items and patches are Secrets without a kind.
            secret = kind == "Secret" or self.secret_resource
            if secret and key in ("data", "stringData") and isinstance(item, dict):
                out[key] = {k: self.blank(v) for k, v in item.items()}
            elif kind == "ConfigMap" and key in ("data", "binaryData") and isinstance(item, dict):
                out[key] = {
                    k: self.blank(v)
                    if CREDENTIAL_KEY.search(str(k)) or CREDENTIAL_VALUE.search(str(v))
                    else v
                    for k, v in item.items()
                }
            elif lower in TOKEN_KEYS and isinstance(item, str) and item:
                out[key] = self.blank(item)
            elif (
                key == "metadata"
                and isinstance(item, dict)
                and (kind == "Secret" or self.secret_resource)
            ):
                out[key] = self._metadata(item)
            else:
                out[key] = self.walk(item)
        return out

    def _is_secret_op(self, op: Any) -> bool:
        """A JSON-patch operation writing a Secret's data (``/data/key``, ``/stringData``)."""
        if not (self.secret_resource and isinstance(op, dict) and "value" in op):
            return False
        path = op.get("path")
        return isinstance(path, str) and path.startswith(("/data", "/stringData"))

    def _patch_op(self, op: dict) -> dict:
        value = op["value"]
        masked: dict[Any, str] | str
        if isinstance(value, dict):
            masked = {k: self.blank(v) for k, v in value.items()}
        else:
            masked = self.blank(value)
        return {**op, "value": masked}

    def _metadata(self, meta: dict) -> dict:
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
            return self.walk(meta)
        meta = dict(meta)
        meta["annotations"] = {
            k: self.blank(v) if k == LAST_APPLIED else v for k, v in annotations.items()
        }
        return self.walk(meta)


def mask_event(event: dict) -> tuple[dict, int]:
    """A copy of ``event`` with its secrets masked, and how many values were masked."""
    ref = event.get("objectRef")
    secret_resource = isinstance(ref, dict) and ref.get("resource") == "secrets"
    masker = _Masker(secret_resource)
    out = dict(event)
    for key in _BODIES:
        if key in event:
            out[key] = masker.walk(event[key])
    return out, masker.count


def might_need_mask(raw: bytes) -> bool:
    """Cheap pre-check: False means :func:`mask_event` would change nothing."""
    lower = raw.lower()
    return any(h in lower for h in _HINTS) or _ESCAPED_LETTER.search(raw) is not None


def mask_raw(raw: bytes) -> bytes:
    """An event's JSON line with its secrets masked (unchanged bytes when nothing is)."""
    if not might_need_mask(raw):
        return raw
    shallow = bounded(raw)  # members nested too deep to mask are left out, said in their place
    event = parse_json(shallow)
    masked, count = mask_event(event)
    return orjson.dumps(masked) if count or shallow is not raw else raw


EVENT_TEXT = "{{…}} the event as text ({n:,} bytes); x shows it here"


def mask_wrapper(wrapper: Any) -> tuple[Any, int]:
    """A wrapper (see ``Store.wrapper``) as shown before ``x``: secrets in JSON bodies masked,
    and the event's own text (a CRI line's content, a CloudWatch ``message``, a Docker
    ``log``) folded to a placeholder, since it is not masked there. Returns how many values
    were masked or folded."""
    folded = 0

    def fold(text: str) -> str:
        nonlocal folded
        if not text or KLOG.match(text):
            return text
        folded += 1
        return EVENT_TEXT.format(n=len(text))

    masker = _Masker(secret_resource=False)
    shown = with_event_text(wrapper if is_text_wrapper(wrapper) else masker.walk(wrapper), fold)
    return shown, masker.count + folded


def mask_wrapper_text(wrapper: Any) -> Any:
    """A wrapper (see ``Store.wrapper``) with its secrets masked and the event's text kept
    (for an export): the event inside a line or a string masked as an event is; a piece of a
    split event that might hold a secret, which cannot be masked alone, folded."""
    body = wrapper if is_text_wrapper(wrapper) else _Masker(secret_resource=False).walk(wrapper)
    return with_event_text(body, _mask_payload)


def _mask_payload(text: str) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    if not might_need_mask(raw):
        return text
    try:
        return mask_raw(raw).decode("utf-8", "surrogatepass")
    except orjson.JSONDecodeError:  # a piece of a split event: not maskable alone
        return EVENT_TEXT.format(n=len(text)).replace("; x shows it here", ", folded")
