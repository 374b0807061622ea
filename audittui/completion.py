"""Tab completion for the filter language: field names, and the values the index knows.

:func:`complete` looks at the token that ends at the cursor (quotes respected, like the parser
in :mod:`audittui.query`) and proposes whole replacements for it: ``us`` → ``user:``,
``-us`` → ``-user:``, ``verb:get,li`` → ``verb:get,list``, ``user:system:serviceaccount:k`` →
the service accounts the store has seen, most frequent first. Values that the parser would not
read back as one literal value are written quoted (``ua:"Go-http-client/1.1 (x)"``).

Headless and stateless: every call reads the store's tables as they are now (the store grows
while a log is followed), one C-level pass over a column's distinct values plus a bincount of
its codes.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .formats import UNIQUE_FIELDS
from .query import ALIASES, CASE_INSENSITIVE, FIELDS, MULTI_VALUED, STRING_FIELDS

if TYPE_CHECKING:
    from .store import Store

MAX_CANDIDATES = 50
# Fields whose values are offered; id and uri are near-unique (too many to be useful).
VALUE_FIELDS = frozenset(STRING_FIELDS) - {"id", "uri"}
FIELD_NAMES = tuple(sorted(set(FIELDS) | set(ALIASES)))

_FIELD_RE = re.compile(r"([A-Za-z_][\w-]*):")  # as query._FIELD_RE
_NAME_PREFIX_RE = re.compile(r"[A-Za-z_][\w-]*")
# A value the parser reads back literally only when quoted: empty, starting with a quote or a
# slash (a regex, or a CIDR for ip:), holding whitespace (str.isspace, as the parser), a
# separator ( ) , or a * (glob); quotes anywhere are quoted too, for the reader's sake.
_NEEDS_QUOTES = re.compile(r'[\s(),*"]|\A/')
# The same test over many values joined by NUL (neither special nor whitespace).
_ANY_NEEDS_QUOTES = re.compile(r'[\s(),*"]|(?:\A|\x00)/')


@dataclass
class Completion:
    """Candidates replacing ``text[start:end]`` (the token before the cursor).

    ``candidates``: full replacement strings, best first, at most :data:`MAX_CANDIDATES`.
    ``common``: the longest common prefix of every match (not just of the listed ones), so
    inserting it never excludes a match. ``kind``: "field" (a field name, ends with ``:``),
    "value", or "" when there is nothing to complete. ``token``: ``text[start:end]`` as it was.
    """

    start: int
    end: int
    candidates: list[str] = field(default_factory=list)
    common: str = ""
    kind: str = ""
    token: str = ""


def complete(text: str, cursor: int, store: Store | Any) -> Completion:
    """Candidates for the token that ends at ``cursor`` in ``text``."""
    cursor = max(0, min(cursor, len(text)))
    tok = _scan(text[:cursor])
    if tok is None:
        return Completion(cursor, cursor, token="")
    token = text[tok.start : cursor]
    if tok.kind == "field":
        return _complete_field(tok, cursor, token)
    return _complete_value(text, tok, cursor, token, store)


def apply(text: str, completion: Completion, candidate: str) -> tuple[str, int]:
    """Insert ``candidate`` for the completed token: (new text, new cursor).

    After a field name the cursor lands right after its ``:``; after a value a space follows
    (unless the text goes on with a space, ``)`` or ``,``). Tab cycling works too: when the
    text no longer holds the original token but another candidate of the same completion
    (applied by an earlier call), that candidate is the one replaced.
    """
    start, end = completion.start, completion.end
    if text[start:end] != completion.token:
        applied = [c for c in completion.candidates if text.startswith(c, start)]
        if applied:
            end = start + max(map(len, applied))
    rest = text[end:]
    head = text[:start] + candidate
    if completion.kind == "field":
        return head + rest, len(head)
    if rest[:1].isspace():
        return head + rest, len(head) + 1
    if rest[:1] in (")", ","):
        return head + rest, len(head)
    return head + " " + rest, len(head) + 1


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
        if p >= n:
            return _Token(n, "field")
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
            q = _quote_end(text, p)
            if q is None or q >= n:
                return None
            p = q
            continue
        m = _FIELD_RE.match(text, p)
        if not m:
            q = _bare_end(text, p, " \t\n\r()")
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
                q = _quote_end(text, p)
                if q is None:
                    partial = _unescape(text[p + 1 :])
                    return _value_token(start, text, m, alt, partial, True, earlier)
                earlier.append(_unescape(text[p + 1 : q - 1]))
                p = q
            elif ch == "/" and is_string and (q := _regex_end(text, p)) is not None:
                p = q
            else:
                q = _bare_end(text, p, " \t\n\r(),")
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


def _quote_end(text: str, p: int) -> int | None:
    """Index after the quote that closes the one at ``p``; None while it is still open."""
    p += 1
    while p < len(text):
        ch = text[p]
        if ch == "\\":
            p += 2
            continue
        if ch == '"':
            return p + 1
        p += 1
    return None


def _unescape(body: str) -> str:
    """The text of a (possibly unfinished) quoted value, as query._Parser._quoted reads it; a
    trailing lone backslash is an escape still being typed."""
    out = []
    p = 0
    while p < len(body):
        ch = body[p]
        if ch == "\\":
            if p + 1 < len(body):
                out.append(body[p + 1])
            p += 2
            continue
        out.append(ch)
        p += 1
    return "".join(out)


def _bare_end(text: str, p: int, stop: str) -> int:
    while p < len(text) and text[p] not in stop and not text[p].isspace():
        p += 1
    return p


def _regex_end(text: str, p: int) -> int | None:
    """As query._Parser._try_regex: the index after ``/re/`` when its closing slash ends the
    value, else None (a plain value such as a path)."""
    pos = p + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text) and text[pos + 1] == "/":
            pos += 2
            continue
        if ch == "/":
            end = pos + 1
            if end == len(text) or text[end].isspace() or text[end] in ",)":
                return end
            return None
        pos += 1
    return None


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


def _complete_value(text: str, tok: _Token, cursor: int, token: str, store: Any) -> Completion:
    empty = Completion(tok.start, cursor, token=token)
    spelling, canonical = _canonical(tok.name)
    head = tok.neg + spelling + text[tok.colon : tok.alt]
    exclude = set(tok.earlier)
    if canonical == "code":
        values, totals = _codes(store, tok.prefix, exclude)
    elif canonical == "resource" and "/" in tok.prefix:
        values, totals = _resource_pairs(store, tok.prefix, exclude)
    elif canonical in VALUE_FIELDS:
        values, totals = _strings(store, canonical, tok.prefix, exclude)
    else:
        return empty
    if not values:
        return empty
    if len(values) > MAX_CANDIDATES:
        top = np.argpartition(-totals, MAX_CANDIDATES - 1)[:MAX_CANDIDATES].tolist()
    else:
        top = range(len(values))
    best = sorted((-totals[k], values[k]) for k in top)
    candidates = [head + _render(v, tok.quoted) for _, v in best]
    return Completion(
        tok.start, cursor, candidates, _common(head, values, tok.quoted), "value", token
    )


def _render(value: str, quote: bool = False) -> str:
    """``value`` as the parser reads it back literally (quoted when it has to be)."""
    if quote or not value or _NEEDS_QUOTES.search(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _common(head: str, values: list[str], quote: bool) -> str:
    """Longest common prefix of ``head + _render(v)`` over all ``values`` (not only the listed
    candidates), without rendering them all."""
    if len(values) == 1:
        return head + _render(values[0], quote)
    raw = os.path.commonprefix([min(values), max(values)])
    if not quote and _ANY_NEEDS_QUOTES.search("\x00".join(values)):
        quoted = sum(1 for v in values if _NEEDS_QUOTES.search(v))
        if quoted < len(values):
            return head  # some quoted, some not: they differ right after the head
        quote = True
    if quote:
        return head + '"' + raw.replace("\\", "\\\\").replace('"', '\\"')
    return head + raw


def _strings(
    store: Any, canonical: str, prefix: str, exclude: set[str]
) -> tuple[list[str], np.ndarray]:
    """Distinct values of a string field starting with ``prefix`` and the number of events
    holding each (those held by none left out)."""
    column = STRING_FIELDS[canonical]
    codes = store.column(column)  # before the values: a code never outruns its table
    values = store.tables[column].values[1:]  # a copy: the table may grow meanwhile
    if canonical == "api":
        values = ["core" if v == "" else v for v in values]
    counts = np.bincount(codes, minlength=len(values) + 1)
    if column in MULTI_VALUED:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        owners = np.repeat(np.arange(1, len(values) + 1), lengths)
        values = list(itertools.chain.from_iterable(values))
    else:
        owners = None
    ci = canonical in CASE_INSENSITIVE
    found = _prefixed(values, prefix, ci)
    if not found[0] and not ci and prefix:
        found = _prefixed(values, prefix, True)  # nothing in this case: try any case
    matched, idx = found
    if not matched:
        return [], np.zeros(0, dtype=np.int64)
    totals = counts[idx + 1] if owners is None else counts[owners[idx]]
    if owners is not None or column in UNIQUE_FIELDS:
        matched, totals = _merge(matched, totals)  # one value may stand under several codes
    exclude = exclude | {""}
    if canonical in ("ip", "resource"):
        # A '/' makes a CIDR (ip:) or a resource/subresource pair: not the literal value.
        exclude |= {v for v in matched if "/" in v}
    keep = totals > 0
    if exclude:
        keep &= ~np.fromiter(map(exclude.__contains__, matched), dtype=bool, count=len(matched))
    if not keep.all():
        matched = list(itertools.compress(matched, keep.tolist()))
        totals = totals[keep]
    return matched, totals


def _prefixed(values: list[str], prefix: str, ci: bool) -> tuple[list[str], np.ndarray]:
    """The values starting with ``prefix`` and their positions (C-level passes only)."""
    if not prefix:
        return values, np.arange(len(values))
    subject = map(str.lower, values) if ci else values
    want = prefix.lower() if ci else prefix
    mask = np.fromiter(
        map(str.startswith, subject, itertools.repeat(want)), dtype=bool, count=len(values)
    )
    idx = np.flatnonzero(mask)
    return list(itertools.compress(values, mask.tolist())), idx


def _merge(values: list[str], totals: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sum the totals of equal values (first occurrences kept, in order)."""
    first: dict[str, int] = {}
    pos = np.fromiter(
        map(first.setdefault, values, itertools.count()), dtype=np.int64, count=len(values)
    )
    if len(first) == len(values):
        return values, totals
    starts = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    dense = np.zeros(len(values), dtype=np.int64)
    dense[starts] = np.arange(len(starts))
    merged = np.bincount(dense[pos], weights=totals, minlength=len(starts)).astype(np.int64)
    return list(first), merged


def _codes(store: Any, prefix: str, exclude: set[str]) -> tuple[list[str], np.ndarray]:
    col = store.column("code")
    present = col[(col > 0) & (col < 10_000)]  # 0: no status yet; the parser takes 4 digits
    counts = np.bincount(present, minlength=1) if len(present) else np.zeros(1, np.int64)
    codes = np.flatnonzero(counts)
    texts = [str(c) for c in codes.tolist()]
    keep = [k for k, t in enumerate(texts) if t.startswith(prefix) and t not in exclude]
    return [texts[k] for k in keep], counts[codes[keep]]


def _resource_pairs(store: Any, prefix: str, exclude: set[str]) -> tuple[list[str], np.ndarray]:
    """``res:pods/e`` → the subresources seen with exactly that resource (any case if none)."""
    res_prefix, sub_prefix = prefix.split("/", 1)
    if not res_prefix:
        return [], np.zeros(0, dtype=np.int64)
    res_values = store.tables["resource"].values
    wanted = [k for k, v in enumerate(res_values) if v == res_prefix]
    if not wanted:
        low = res_prefix.lower()
        wanted = [k for k, v in enumerate(res_values) if v is not None and v.lower() == low]
    if not wanted:
        return [], np.zeros(0, dtype=np.int64)
    res_codes = store.column("resource")
    sub_codes = store.column("subresource")
    n = min(len(res_codes), len(sub_codes))  # both grow; read the events both hold
    sub_values = store.tables["subresource"].values
    pairs: dict[str, int] = {}
    for k in wanted:
        subs = sub_codes[:n][res_codes[:n] == k]
        counts = np.bincount(subs, minlength=1)
        for code in np.flatnonzero(counts[1:] if len(counts) > 1 else counts[:0]).tolist():
            sub = sub_values[code + 1]
            if sub and sub.startswith(sub_prefix):
                pair = f"{res_values[k]}/{sub}"
                if pair not in exclude:
                    pairs[pair] = pairs.get(pair, 0) + int(counts[code + 1])
    return list(pairs), np.fromiter(pairs.values(), dtype=np.int64, count=len(pairs))
