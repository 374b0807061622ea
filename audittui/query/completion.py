"""Tab completion for the query language: field names, and values a backend proposes.

:func:`complete` looks at the token that ends at the cursor (quotes respected, like the parser
in :mod:`.syntax`) and proposes whole replacements for it: ``us`` → ``user:``, ``-us`` →
``-user:``, ``verb:get,li`` → ``verb:get,list``, ``user:system:serviceaccount:k`` → the
service accounts the backend has seen, most frequent first. Values that the parser would not
read back as one literal value are written quoted (``ua:"Go-http-client/1.1 (x)"``), unsafe
characters as escapes (``user:"ev\\x1b[2J"``: see :func:`audittui.query.lexer.literal`).

The values come from a :class:`ValueSource` the backend provides (the in-memory index's is
:mod:`audittui.index.values`); this module knows only the language: scanning the text, the
fields, quoting, and where a candidate goes (:func:`apply`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .fields import ALIASES, FIELDS, GRANT_FIELDS, STRING_FIELDS
from .lexer import (
    FIELD_RE,
    VALUE_STOP,
    WORD_STOP,
    bare_end,
    literal,
    needs_quotes,
    quote,
    quote_end,
    regex_end,
    unescape,
)

MAX_CANDIDATES = 50
# Fields whose values are offered; id and uri are near-unique (too many to be useful).
VALUE_FIELDS = frozenset(STRING_FIELDS) - {"id", "uri", "reason", *GRANT_FIELDS}
FIELD_NAMES = tuple(sorted(set(FIELDS) | set(ALIASES)))
# Fields a value source is asked about (code: the status codes seen, as text).
OFFERED = VALUE_FIELDS | {"code", *GRANT_FIELDS}

_NAME_PREFIX_RE = re.compile(r"[A-Za-z_][\w-]*")


@dataclass
class Completion:
    """Candidates replacing ``text[start:end]`` (the token before the cursor).

    ``candidates``: full replacement strings, best first (values: most frequent first, ties
    alphabetical), at most :data:`MAX_CANDIDATES`. ``common``: the longest common prefix of the
    candidates for every match, not only the listed ones, so that inserting it never loses a
    match (it may end inside an open quote: ``user:"a b``, which completes on). ``kind``:
    "field" (a field name, ends with ``:``), "value", or "" (nothing to complete).
    ``token``: ``text[start:end]`` as it was when completed.
    """

    start: int
    end: int
    candidates: list[str] = field(default_factory=list)
    common: str = ""
    kind: str = ""
    token: str = ""


def complete(text: str, cursor: int, values: ValueSource | None) -> Completion:
    """Candidates for the token that ends at ``cursor`` in ``text`` (values from ``values``;
    fields only without one)."""
    cursor = max(0, min(cursor, len(text)))
    tok = _scan(text[:cursor])
    if tok is None:
        return Completion(cursor, cursor, token="")
    token = text[tok.start : cursor]
    if tok.kind == "field":
        return _complete_field(tok, cursor, token)
    return _complete_value(text, tok, cursor, token, values)


def apply(text: str, completion: Completion, candidate: str) -> tuple[str, int]:
    """Insert ``candidate`` for the completed token: (new text, new cursor).

    After a field name the cursor lands right after its ``:``; after a value a space follows
    (unless the text goes on with a space, ``)`` or ``,``). When a whole candidate already
    stands at the start of the span (Tab cycling: an earlier call applied it; or the cursor was
    inside the value), that candidate is what gets replaced.
    """
    start, end = completion.start, completion.end
    value = completion.kind != "field"
    there = [
        len(c)
        for c in completion.candidates
        if text.startswith(c, start) and (not value or _ends_value(text, start + len(c)))
    ]
    if there:
        end = max(end, start + max(there))
    rest = text[end:]
    head = text[:start] + candidate
    if completion.kind == "field":
        return head + rest, len(head)
    if rest[:1].isspace():
        return head + rest, len(head) + 1
    if rest[:1] in (")", ","):
        return head + rest, len(head)
    return head + " " + rest, len(head) + 1


def _ends_value(text: str, pos: int) -> bool:
    return pos == len(text) or text[pos].isspace() or text[pos] in "),"


# -- the token before the cursor ---------------------------------------------------------------


@dataclass
class _Token:
    start: int
    kind: str  # "field" (a field name being typed) or "value"
    neg: str = ""  # leading '-' (negation), kept in the candidates
    body: str = ""  # field: the partial name
    name: str = ""  # value: the field name as typed
    colon: int = 0  # value: index of the ':' after the name
    alt: int = 0  # value: where the last alternative starts
    prefix: str = ""  # value: the last alternative so far (unescaped)
    quoted: bool = False  # value: the last alternative opens a quote
    earlier: list[str] = field(default_factory=list)  # values of the earlier alternatives


def _scan(text: str) -> _Token | None:
    """Tokenise ``text`` (everything before the cursor) as the parser would, and describe the
    token that runs to its end; None when that is not completable (a phrase, a regex, right
    after a closing quote)."""
    n = len(text)
    p = 0
    while True:
        while p < n and text[p].isspace():
            p += 1
        if p >= n:  # a new token: at the start, after a space or '(' (not right after ')')
            return _Token(n, "field") if not n or text[-1].isspace() or text[-1] == "(" else None
        if text[p] in "()":
            p += 1
            continue
        start = p
        while p < n and text[p] == "-":
            p += 1
        if p >= n:
            return _Token(start, "field", neg=text[start:])
        if p > start and (text[p].isspace() or text[p] in "()"):
            continue  # "-(" negates a group; a '-' before a space is a word of its own
        if text[p] == '"':  # a search phrase
            q = quote_end(text, p)
            if q is None or q >= n:
                return None
            p = q
            continue
        m = FIELD_RE.match(text, p)
        if not m:
            q = bare_end(text, p, WORD_STOP)
            if q >= n:
                return _Token(start, "field", neg=text[start:p], body=text[p:])
            p = q
            continue
        name, p = m.group(1), m.end()
        is_string = _canonical(name)[1] in STRING_FIELDS
        earlier: list[str] = []
        while True:
            alt = p
            if p >= n:
                return _value_token(start, text, m, alt, "", False, earlier)
            ch = text[p]
            if ch.isspace():
                break  # "field:" without a value: a parse error, not ours to complete
            if ch == '"':
                q = quote_end(text, p)
                if q is None:
                    partial = unescape(text[p + 1 :], partial=True)
                    return _value_token(start, text, m, alt, partial, True, earlier)
                earlier.append(unescape(text[p + 1 : q - 1], partial=True))
                p = q
            elif ch == "/" and is_string and (q := regex_end(text, p)) is not None:
                p = q
            else:
                q = bare_end(text, p, VALUE_STOP)
                if q >= n:
                    return _value_token(start, text, m, alt, text[p:], False, earlier)
                earlier.append(text[p:q])
                p = q
            if p >= n:
                return None  # right after a closing quote or a regex
            if text[p] != ",":
                break
            p += 1


def _value_token(
    start: int, text: str, m: re.Match, alt: int, prefix: str, quoted: bool, earlier: list[str]
) -> _Token:
    neg = text[start : m.start()]
    return _Token(
        start,
        "value",
        neg=neg,
        name=m.group(1),
        colon=m.end() - 1,
        alt=alt,
        prefix=prefix,
        quoted=quoted,
        earlier=earlier,
    )


def _canonical(name: str) -> tuple[str, str]:
    """(the name to write, its canonical field); field "" for an unknown name. A known name
    typed in the wrong case (``User:``, which the parser rejects) is written lower-case."""
    for spelling in (name, name.lower()):
        canonical = ALIASES.get(spelling, spelling)
        if canonical in FIELDS:
            return spelling, canonical
    return name, ""


# -- field names --------------------------------------------------------------------------------


def _complete_field(tok: _Token, cursor: int, token: str) -> Completion:
    body = tok.body
    if body and not _NAME_PREFIX_RE.fullmatch(body):
        return Completion(tok.start, cursor, token=token)
    low = body.lower()
    candidates = [f"{tok.neg}{name}:" for name in FIELD_NAMES if name.startswith(low)]
    return Completion(
        tok.start, cursor, candidates, os.path.commonprefix(candidates), "field", token
    )


# -- values -------------------------------------------------------------------------------------


class Found(NamedTuple):
    """What a :class:`ValueSource` answers: the matching values, the best few in order (most
    frequent first, ties alphabetical; at most :data:`MAX_CANDIDATES`), the common prefix of
    all of them (not only the listed ones), and whether all, none or some of them ("all",
    "none", "mixed") must be quoted."""

    ranked: list[str]
    prefix: str
    quoting: str


class ValueSource(Protocol):
    """The values a backend holds for a field, as completion asks for them.

    ``field`` is canonical (one of :data:`OFFERED`), ``prefix`` the value typed so far
    (unescaped; for ``resource`` it may hold a '/': then the ``resource/subresource`` pairs
    seen), ``exclude`` the values already written in the term. None when no value matches."""

    def __call__(self, field: str, prefix: str, exclude: set[str]) -> Found | None: ...


def _complete_value(
    text: str, tok: _Token, cursor: int, token: str, values: ValueSource | None
) -> Completion:
    spelling, canonical = _canonical(tok.name)
    head = tok.neg + spelling + text[tok.colon : tok.alt]
    exclude = set(tok.earlier)
    found = None
    if values is not None and canonical in OFFERED:
        found = values(canonical, tok.prefix, exclude)
    if found is None:
        return Completion(tok.start, cursor, token=token)
    candidates = [head + _render(canonical, v, tok.quoted) for v in found.ranked]
    if len(candidates) == 1:
        common = candidates[0]
    elif tok.quoted or found.quoting == "all":
        common = head + '"' + _escape(found.prefix)
    elif found.quoting == "mixed":
        common = head  # quoted and bare candidates part right after the head
    else:
        common = head + found.prefix
    return Completion(tok.start, cursor, candidates, common, "value", token)


def term(field: str, value: str | None) -> str:
    """``field:value`` that the parser reads back as exactly ``value`` (None: the field is
    missing, ``field:""``), with no raw unsafe character in it."""
    return f"{field}:{_render(ALIASES.get(field, field), value or '')}"


def _render(canonical: str, value: str, quoted: bool = False) -> str:
    """``value`` of field ``canonical`` as the parser reads it back literally: quoted when it
    has to be (for ip:, also when it holds a '/': bare, that is a CIDR)."""
    if quoted or (canonical == "ip" and "/" in value):
        return quote(value)
    return literal(value)


def _escape(value: str) -> str:
    """The text of ``value`` inside quotes (a prefix of the quoted candidates)."""
    return quote(value)[1:-1]


def quoting(values: list[str]) -> str:
    """Whether all, none or some of ``values`` must be quoted: "all", "none" or "mixed"."""
    quoted = sum(map(needs_quotes, values))
    return "none" if not quoted else "all" if quoted == len(values) else "mixed"


def found_among(values: list[str], totals: list[int]) -> Found | None:
    """:class:`Found` for a short list of distinct values (every match) and their counts."""
    if not values:
        return None
    ranked = [v for _, v in sorted(zip((-t for t in totals), values, strict=True))]
    prefix = os.path.commonprefix([min(values), max(values)])
    return Found(ranked[:MAX_CANDIDATES], prefix, quoting(values))
