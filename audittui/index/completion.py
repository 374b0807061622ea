"""Tab completion for the filter language: field names, and the values the index knows.

:func:`complete` looks at the token that ends at the cursor (quotes respected, like the parser
in :mod:`audittui.index.query`) and proposes whole replacements for it: ``us`` → ``user:``,
``-us`` → ``-user:``, ``verb:get,li`` → ``verb:get,list``, ``user:system:serviceaccount:k`` →
the service accounts the store has seen, most frequent first. Values that the parser would not
read back as one literal value are written quoted (``ua:"Go-http-client/1.1 (x)"``), unsafe
characters as escapes (``user:"ev\\x1b[2J"``: see :func:`audittui.index.lexer.literal`).

Headless and stateless: every call reads the store's tables as they are now (the store grows
while a log is followed). A column's distinct values are joined into one array of code points
and prefix-tested in a few numpy passes, and a bincount of its codes ranks them: no Python work
per value or per event, a few ms for 50,000 users over a million events.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..ingest.authz import parse_reason
from ..ingest.formats import UNIQUE_FIELDS
from ..ingest.unsafe import UNSAFE
from .lexer import (
    FIELD_RE,
    QUOTED_CHARS,
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
from .query import (
    ALIASES,
    CASE_INSENSITIVE,
    FIELDS,
    GRANT_FIELDS,
    MULTI_VALUED,
    STRING_FIELDS,
    display_api,
)

if TYPE_CHECKING:
    from .store import Events

MAX_CANDIDATES = 50
# Fields whose values are offered; id and uri are near-unique (too many to be useful).
VALUE_FIELDS = frozenset(STRING_FIELDS) - {"id", "uri", "reason", *GRANT_FIELDS}
FIELD_NAMES = tuple(sorted(set(FIELDS) | set(ALIASES)))

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


def complete(text: str, cursor: int, store: Events | None) -> Completion:
    """Candidates for the token that ends at ``cursor`` in ``text`` (values from ``store``;
    fields only without one)."""
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


class _Found(NamedTuple):
    """Matching values: the best few in order, the common prefix of all, and whether all,
    none or some of them ("all", "none", "mixed") must be quoted."""

    ranked: list[str]
    prefix: str
    quoting: str


def _complete_value(
    text: str, tok: _Token, cursor: int, token: str, store: Events | None
) -> Completion:
    spelling, canonical = _canonical(tok.name)
    head = tok.neg + spelling + text[tok.colon : tok.alt]
    exclude = set(tok.earlier)
    found: _Found | None = None
    if store is None:
        pass
    elif canonical == "code":
        found = _codes(store, tok.prefix, exclude)
    elif canonical == "resource" and "/" in tok.prefix:
        found = _resource_pairs(store, tok.prefix, exclude)
    elif canonical in GRANT_FIELDS:
        found = _grants(store, canonical, tok.prefix, exclude)
    elif canonical in VALUE_FIELDS:
        found = _strings(store, canonical, tok.prefix, exclude)
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


def _quoting(values: list[str]) -> str:
    quoted = sum(map(needs_quotes, values))
    return "none" if not quoted else "all" if quoted == len(values) else "mixed"


def _small(values: list[str], totals: list[int]) -> _Found | None:
    """A short list of distinct values with their counts, ranked."""
    if not values:
        return None
    ranked = [v for _, v in sorted(zip((-t for t in totals), values, strict=True))]
    prefix = os.path.commonprefix([min(values), max(values)])
    return _Found(ranked[:MAX_CANDIDATES], prefix, _quoting(values))


def _codes(store: Events, prefix: str, exclude: set[str]) -> _Found | None:
    col = store.column("code")
    present = col[(col > 0) & (col < 10_000)]  # 0: no status yet; the parser takes 4 digits
    counts = np.bincount(present, minlength=1)
    codes = np.flatnonzero(counts).tolist()
    texts = [str(c) for c in codes]
    keep = [k for k, t in enumerate(texts) if t.startswith(prefix) and t not in exclude]
    return _small([texts[k] for k in keep], [int(counts[codes[k]]) for k in keep])


def _resource_pairs(store: Events, prefix: str, exclude: set[str]) -> _Found | None:
    """``res:pods/e`` → the subresources seen with exactly that resource (any case if none)."""
    res_prefix, sub_prefix = prefix.split("/", 1)
    res_codes = store.column("resource")
    sub_codes = store.column("subresource")
    res_values = store.tables["resource"].values[:]
    sub_values = store.tables["subresource"].values[:]
    wanted = [k for k, v in enumerate(res_values) if v and v == res_prefix]
    if not wanted:
        low = res_prefix.lower()
        wanted = [k for k, v in enumerate(res_values) if v and v.lower() == low]
    n = min(len(res_codes), len(sub_codes))  # both grow: the events both hold
    res_codes, sub_codes = res_codes[:n], sub_codes[:n]
    pairs: dict[str, int] = {}
    for k in wanted:
        counts = np.bincount(sub_codes[res_codes == k], minlength=len(sub_values))
        for code in np.flatnonzero(counts[1:]).tolist():
            sub = sub_values[code + 1]
            pair = f"{res_values[k]}/{sub}"
            if sub.startswith(sub_prefix) and pair not in exclude:
                pairs[pair] = pairs.get(pair, 0) + int(counts[code + 1])
    return _small(list(pairs), list(pairs.values()))


def _grants(store: Events, field: str, prefix: str, exclude: set[str]) -> _Found | None:
    """``binding:sys`` → the bindings (roles, authorizers) the reasons name, by their name,
    most used first: read once per distinct reason, counted over its events."""
    reasons = store.tables["reason"].values[:]
    counts = np.bincount(store.column("reason"), minlength=len(reasons))
    totals: dict[str, int] = {}
    for code in np.flatnonzero(counts).tolist():
        value = getattr(parse_reason(reasons[code]), field)
        if value and value.startswith(prefix) and value not in exclude:
            totals[value] = totals.get(value, 0) + int(counts[code])
    return _small(list(totals), list(totals.values()))


def _strings(store: Events, canonical: str, prefix: str, exclude: set[str]) -> _Found | None:
    """Distinct values of a string field starting with ``prefix`` (held by some event, and
    not among ``exclude``), most frequent first."""
    column = STRING_FIELDS[canonical]
    codes = store.column(column)  # before the values: a code never outruns its table
    values = store.tables[column].values[1:]  # a copy: the table may grow meanwhile
    if canonical == "api":
        values = [display_api(v) for v in values]
    counts = np.bincount(codes, minlength=len(values) + 1)
    if column in MULTI_VALUED:  # tuples: complete their strings, each owned by its tuple
        sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        owners = np.repeat(np.arange(1, len(values) + 1), sizes)
        values = list(itertools.chain.from_iterable(values))
    else:
        owners = np.arange(1, len(values) + 1)
    seg = _Segments.of(values)
    if canonical in CASE_INSENSITIVE:
        idx = seg.lower().starting_with(prefix.lower())
    else:
        idx = seg.starting_with(prefix)
        if not len(idx) and prefix:  # nothing in this case: try any case
            idx = seg.lower().starting_with(prefix.lower())
    keep = (counts[owners[idx]] > 0) & (seg.lengths[idx] > 0)
    if canonical == "resource":  # a '/' makes a resource/subresource pair, even quoted
        keep &= ~seg.holding("/")[idx]
    for value in exclude:
        keep &= ~np.isin(idx, seg.equal_to(value))
    idx = idx[keep]
    if not len(idx):
        return None
    totals = counts[owners[idx]]
    ranked = _rank(values, idx, totals, column in MULTI_VALUED or column in UNIQUE_FIELDS)
    common = values[int(idx[0])][: seg.common_length(idx)]
    if len(ranked) == 1:
        return _Found(ranked, common, "none")
    quoted_ones = seg.needs_quotes(idx)
    if canonical == "ip":  # a '/' bare makes a CIDR
        quoted_ones |= seg.holding("/")[idx]
    quoted = int(quoted_ones.sum())
    quoting = "none" if not quoted else "all" if quoted == len(idx) else "mixed"
    return _Found(ranked, common, quoting)


EXACT_MERGE = 20_000  # matches up to which the counts of a value under several codes are summed


def _rank(values: list[str], idx: np.ndarray, totals: np.ndarray, repeats: bool) -> list[str]:
    """The :data:`MAX_CANDIDATES` most frequent distinct values among ``values[idx]`` (ties:
    alphabetical). When a value can stand under several codes (tuples, concatenated tables),
    its counts are summed, up to :data:`EXACT_MERGE` matches; beyond, it ranks by its largest
    count (cheap, and close enough for ordering)."""
    if not repeats or len(idx) <= EXACT_MERGE:
        if repeats:
            sums: dict[str, int] = {}
            for value, total in zip(
                map(values.__getitem__, idx.tolist()), totals.tolist(), strict=True
            ):
                sums[value] = sums.get(value, 0) + total
            names, totals = list(sums), np.fromiter(sums.values(), np.int64, len(sums))
        else:
            names = None
        best = _top_positions(totals, MAX_CANDIDATES)
        name = (lambda j: names[j]) if names is not None else (lambda j: values[idx[j]])
        return [name(j) for j in sorted(best, key=lambda j: (-totals[j], name(j)))]
    want = MAX_CANDIDATES * 4
    while True:
        part = sorted(_top_positions(totals, want), key=lambda j: (-totals[j], values[idx[j]]))
        picked = list(dict.fromkeys(values[idx[j]] for j in part))
        if len(picked) >= MAX_CANDIDATES or want >= len(idx):
            return picked[:MAX_CANDIDATES]
        want *= 4


def _top_positions(totals: np.ndarray, k: int) -> list[int]:
    """Positions of the ``k`` largest totals, in no particular order."""
    if len(totals) <= k:
        return list(range(len(totals)))
    return np.argpartition(-totals, k - 1)[:k].tolist()


_LUT_SIZE = 0x10000  # the BMP: every unsafe character and every space is in it
NUL_STAND_IN = "\uffff"  # what stands for NUL in a _Segments text (NUL separates values)
_SPECIAL = re.compile(r'[\s(),*"\\\uffff]|' + UNSAFE.pattern)  # as _special_lut()


@functools.cache
def _special_lut() -> np.ndarray:
    """Code point → makes a value need quotes wherever it is (whitespace, '(),*"\\', an unsafe
    character, and U+FFFF, which stands for NUL in :class:`_Segments`)."""
    lut = np.fromiter(
        (chr(c).isspace() or chr(c) in QUOTED_CHARS for c in range(_LUT_SIZE)), bool, _LUT_SIZE
    )
    every = "".join(map(chr, range(_LUT_SIZE)))
    lut[[m.start() for m in UNSAFE.finditer(every)]] = True
    lut[ord(NUL_STAND_IN)] = True
    return lut


class _Segments:
    """Strings as one array of code points (NUL between them) with each one's start and
    length: prefix tests over a hundred thousand values in a few numpy passes instead of a
    Python call per value."""

    __slots__ = ("text", "points", "starts", "lengths")

    def __init__(self, text: str, n: int) -> None:
        self.text = text
        self.points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        seps = np.flatnonzero(self.points == 0)
        self.starts = np.zeros(n, dtype=np.int64)
        self.starts[1:] = seps + 1
        ends = np.empty(n, dtype=np.int64)
        ends[:-1] = seps
        ends[-1:] = len(self.points)
        self.lengths = ends - self.starts

    @classmethod
    def of(cls, values: list[str]) -> _Segments:
        text = "\x00".join(values)
        if text.count("\x00") != max(len(values) - 1, 0):
            # A value holds NUL (JSON allows it): U+FFFF stands for it, lengths kept.
            text = "\x00".join(v.replace("\x00", NUL_STAND_IN) for v in values)
        return cls(text, len(values))

    def lower(self) -> _Segments:
        """The same strings lower-cased (lengths may change; positions do not)."""
        return _Segments(self.text.lower(), len(self.starts))

    def starting_with(self, prefix: str) -> np.ndarray:
        """Positions of the strings that start with ``prefix``."""
        want = np.frombuffer(
            prefix.replace("\x00", NUL_STAND_IN).encode("utf-32-le", "surrogatepass"), dtype="<u4"
        )
        idx = np.flatnonzero(self.lengths >= len(want))
        for i, point in enumerate(want.tolist()):
            if not len(idx):
                break
            idx = idx[self.points[self.starts[idx] + i] == point]
        return idx

    def equal_to(self, value: str) -> np.ndarray:
        idx = self.starting_with(value)
        return idx[self.lengths[idx] == len(value)]

    def common_length(self, idx: np.ndarray) -> int:
        """How many leading code points all strings at ``idx`` share."""
        starts = self.starts[idx]
        shortest = int(self.lengths[idx].min())
        i = 0
        while i < shortest:
            points = self.points[starts + i]
            if (points != points[0]).any():
                break
            i += 1
        return i

    def holding(self, char: str) -> np.ndarray:
        """Per string, whether it holds ``char``."""
        out = np.zeros(len(self.starts), dtype=bool)
        if char in self.text:
            at = np.flatnonzero(self.points == ord(char))
            out[np.searchsorted(self.starts, at, "right") - 1] = True
        return out

    def needs_quotes(self, idx: np.ndarray) -> np.ndarray:
        """Whether :func:`~audittui.index.lexer.needs_quotes` holds for the strings at
        ``idx``."""
        starts, lengths = self.starts[idx], self.lengths[idx]
        text = self.text
        if (
            _SPECIAL.search(text.replace("\x00", "")) is None  # (NUL: the separators)
            and not text.startswith(("/", "-"))
            and "\x00/" not in text
            and "\x00-" not in text
        ):
            return lengths == 0  # nothing special anywhere: the common case, in C
        # The code points of these strings only, then which of them are special.
        owner = np.repeat(np.arange(len(idx)), lengths)
        before = np.cumsum(lengths) - lengths
        points = self.points[np.arange(int(lengths.sum())) + (starts - before)[owner]]
        special = _special_lut()[np.minimum(points, _LUT_SIZE - 1)] & (points < _LUT_SIZE)
        out = np.zeros(len(idx), dtype=bool)
        out[owner[special]] = True
        present = lengths > 0
        first = self.points[starts[present]]
        out[present] |= (first == ord("/")) | (first == ord("-"))
        return out | ~present
