"""The byte arena of near-unique columns: one code per distinct value however the values
arrive (many batches, repeats, equal hashes of different values), values read back exactly
(non-ASCII, lone surrogates, newlines inside a value), and scans that agree with testing each
value on its own, across chunk boundaries."""

from __future__ import annotations

import pickle
import random
import re

import numpy as np
import pytest
import re2

from audittui.index.strings import Strings
from audittui.ingest.packed import PackedStrings, encode
from audittui.query.patterns import Glob, Regex

POOL = [
    "/api/v1/namespaces/default/pods/web-1",
    "/api/v1/pods?watch=true&resourceVersion=17",
    "ñame-ü",
    "日本語/ポッド",
    "a\nb",  # a newline inside a value: the arena's separator
    "\n",
    "x\ud800y",  # a lone surrogate (the tolerant JSON fallback lets them through)
    "e$",
    "watch=true",
    "w",
    "^",
]


def values(rng: random.Random, k: int) -> list[str]:
    out = []
    for _ in range(k):
        base = rng.choice(POOL)
        out.append(base if rng.random() < 0.5 else f"{base}-{rng.randint(0, 40)}")
    return out


def grown(rng: random.Random, batches: int = 30, collide: bool = False) -> tuple[Strings, list]:
    """An arena fed ``batches`` batches; returns it and, per code, the value it must hold."""
    arena, held = Strings(), [None]
    for _ in range(batches):
        distinct = list(dict.fromkeys(values(rng, rng.randint(0, 25))))
        packed = PackedStrings.of(distinct)
        if collide:  # every value under two hashes only: lookups must compare bytes
            packed.hashes = np.array([len(v) % 2 for v in distinct], dtype=np.int64)
        packed = pickle.loads(pickle.dumps(packed))  # as it comes back from a worker
        codes = arena.add(packed)
        assert codes[0] == 0
        for value, code in zip(distinct, codes[1:].tolist(), strict=True):
            if code == len(held):
                held.append(value)
            assert held[code] == value
    return arena, held


@pytest.mark.parametrize("collide", [False, True])
def test_one_code_per_value_and_exact_reads(collide):
    arena, held = grown(random.Random(3), collide=collide)
    assert len(arena) == len(held) == len(set(held))
    assert [arena[c] for c in range(len(held))] == held
    assert arena[:] == list(arena) == held
    assert arena[2:7] == held[2:7] and arena[5:] == held[5:]
    some = np.array([3, 0, 1, 3, len(held) - 1, *range(len(held))])
    assert arena.take(some) == [held[c] for c in some] and arena.take([]) == []
    if collide:
        return  # code_of hashes with the real hash
    for c, v in enumerate(held[1:], 1):
        assert arena.code_of(v) == c
    assert arena.code_of("never seen") == 0


def test_frozen_view_ignores_later_values():
    rng = random.Random(4)
    arena, held = grown(rng, batches=5)
    view = arena.frozen()
    arena.add(PackedStrings.of(["fresh-1", "fresh-2"]))
    assert len(view) == len(held) and view[:] == held
    assert arena[len(held)] == "fresh-1"
    assert view.code_of("fresh-1") == 0 and arena.code_of("fresh-1") == len(held)


def test_hashes_from_an_unrelated_process_are_redone():
    arena = Strings()
    arena.add(PackedStrings.of(["a", "b"]))
    foreign = PackedStrings.of(["b", "c"])
    foreign.seed += 1
    foreign.hashes = np.array([11, 12], dtype=np.int64)  # not this process's hashes
    assert arena.add(foreign).tolist() == [0, 2, 3]


REGEXES = ["watch=true", "^/api", "e$", "\\n", ".", "[^/]*=", "-1$", "\\s", "ü|ポ", "^$", "a.b",
           "\\Ax", "y\\z", "(?-m)^w", "(?s).", "\\C", "(?i)ÑAME", "x.y", "a\nb", "^"]  # fmt: skip
GLOBS = ["*watch=true*", "/api/*", "*-1", "ñ*", "*\n*", "a*b", "w", "*", "**", "*a*a*", "*1*1*",
         "e*$*", "*/*/*", "ñ*ü*", "a*\n*b", "x*y", "*-1*-1", "^*", "*e", "w*w"]  # fmt: skip


def glob_reference(pattern: str, value: str) -> bool:
    """``*`` any run of characters, the whole value: as fnmatch without ? and []."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value, re.S) is not None


def test_scans_agree_with_each_value_on_its_own():
    arena, held = grown(random.Random(9), batches=40)
    for start in (0, 1, len(held) // 2):
        for text in REGEXES:
            rx = re2.compile(text)
            want = [v is not None and rx.search(encode(v)) is not None for v in held[start:]]
            got = arena.scan(Regex(text), start)
            assert got.tolist() == want, (text, start)
        for pattern in GLOBS:
            got = set(arena.glob(Glob(pattern), start).tolist())
            want = {
                c for c, v in enumerate(held) if c >= max(start, 1) and glob_reference(pattern, v)
            }
            assert got == want, (pattern, start)


@pytest.mark.parametrize("pattern", ["p[0-9]+x", r"\Ap", "p1"])
def test_a_superseded_regex_scan_stops_at_a_checkpoint(pattern):
    """A regex over many values (a scan, one search per value, literals) checks whether its
    filter was superseded between steps, so the app's older filter stops instead of running
    to the end beside the newer one."""
    import threading

    from audittui.index.evaluate import each
    from audittui.index.interrupt import Interrupted, interruptible

    arena = Strings()
    arena.add(PackedStrings.of([f"p{k}x" for k in range(20_000)]))
    stop = threading.Event()
    regex = Regex(pattern)
    assert arena.scan(regex, 1).sum() > 0
    stop.set()
    with interruptible(stop), pytest.raises(Interrupted):
        arena.scan(regex, 1)
    with interruptible(stop), pytest.raises(Interrupted):
        each(regex.search, [f"p{k}" for k in range(10)])
