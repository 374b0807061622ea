"""What ran inside ``kubectl exec``: the command of a pods/exec request, read from its URI.

The API server takes the command from the request's query string (``?command=sh&command=-c&
command=cat%20%2Fetc%2Fshadow&container=c&stdin=true``), one ``command=`` a word, in order, and
the audit event's ``requestURI`` keeps that query as the client sent it. The query is read here
the way the server reads it (Go's ``url.ParseQuery``): split on ``&``; a pair holding ``;`` or a
bad ``%`` escape is dropped (Go 1.17+ drops both); key and value are percent-decoded with ``+``
as a space. A key is compared after decoding, so ``comm%61nd=`` is a word of the command too,
as it is to the server. Some exporters (GKE's ``protoPayload.request``, a PodExecOptions) carry
the command as a list in the request body instead: :func:`event_argv` falls back to it.

The URI is attacker text: it is parsed, never evaluated, in one linear pass, and only its first
:data:`URI_MAX` characters are read (the API server's own limit on a request line: Go's
DefaultMaxHeaderBytes, 1 MiB), so a padded command cannot push a payload beyond what is read
while the server would still run it. Display goes through :func:`shell_line`, which quotes each
word and makes control, bidi and invisible characters visible (:mod:`.unsafe`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from .unsafe import inert

URI_MAX = 1 << 20  # characters of a requestURI read for its command
ARGV_BODY_MAX = 1 << 16  # words taken from a body's command list (a list is not bounded by a URI)

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a % not followed by two hex digits
_SHELL_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z")  # a word shown without quotes


def is_exec_uri(uri: str) -> bool:
    """``uri``'s path is a pod's exec subresource: ``…/pods/NAME/exec``, with or without a
    leading slash (legacy and exported shapes drop it) or a scheme and host before it."""
    path = uri[:URI_MAX].partition("?")[0]
    parts = [p for p in path.split("/") if p]
    return len(parts) >= 3 and parts[-1] == "exec" and parts[-3] == "pods"


def uri_argv(uri: str) -> list[str]:
    """The ``command=`` words of ``uri``'s query, decoded and in order ([] when none).

    Mirrors Go's ``url.ParseQuery`` as the API server runs it: the query is everything after
    the first ``?`` (a request line has no fragment: a ``#`` is query text)."""
    head, sep, query = uri[:URI_MAX].partition("?")
    if not sep or "command" not in query and "%" not in query:
        return []
    argv: list[str] = []
    for pair in query.split("&"):
        if not pair or ";" in pair:
            continue  # Go 1.17+: a semicolon makes the pair an error, dropped
        key, _, value = pair.partition("=")
        decoded_key = _unescape(key)
        if decoded_key != "command":
            continue
        word = _unescape(value)
        if word is not None:
            argv.append(word)
    return argv


def _unescape(text: str) -> str | None:
    """Query-component decoding: ``+`` is a space, ``%XX`` a byte; None for a bad escape (the
    pair is dropped, as the server drops it). Bytes that are not UTF-8 become U+FFFD."""
    if "%" not in text and "+" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        return None
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "replace")


def body_argv(body: Any) -> list[str]:
    """The ``command`` list of a request body (PodExecOptions), its strings only."""
    if not isinstance(body, dict):
        return []
    command = body.get("command")
    if isinstance(command, str):  # one word, as a single-valued query parameter decodes
        return [command[:URI_MAX]]
    if not isinstance(command, list):
        return []
    return [w for w in command[:ARGV_BODY_MAX] if isinstance(w, str)]


def event_argv(event: Any) -> list[str]:
    """The command of an exec event: from its URI, else from its request body ([] when the
    event is no exec or carries no command). An event is an exec when its objectRef says so
    or, lacking one (legacy text lines), its URI's path does."""
    if not isinstance(event, dict):
        return []
    ref = event.get("objectRef")
    uri = event.get("requestURI")
    uri = uri if isinstance(uri, str) else ""
    if isinstance(ref, dict) and (ref.get("resource") or ref.get("subresource")):
        if ref.get("resource") != "pods" or ref.get("subresource") != "exec":
            return []
    elif not is_exec_uri(uri):
        return []
    return uri_argv(uri) or body_argv(event.get("requestObject"))


def command_text(argv: list[str]) -> str:
    """The words joined by single spaces: the text the findings' regexes search (as Panther's
    and Elastic's rules search theirs)."""
    return " ".join(argv)


def shell_line(argv: list[str], limit: int = 4096) -> str:
    """The command as a shell would be typed, every word inert and quoted when it needs to be
    (``sh -c 'cat /etc/shadow'``), cut to about ``limit`` characters with an ellipsis."""
    out: list[str] = []
    size = 0
    for word in argv:
        shown = inert(word[: limit + 1])
        if not _SHELL_PLAIN.match(shown):
            shown = "'" + shown.replace("'", "'\\''") + "'"
        out.append(shown)
        size += len(shown) + 1
        if size > limit:
            break
    line = " ".join(out)
    return line if len(line) <= limit else line[: max(limit - 1, 0)] + "…"
