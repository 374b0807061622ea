"""Keyset pages of a paged list: moved both ways, never a row twice
or a row skipped, and bounded in size."""

from __future__ import annotations

import bisect

from audittui.tui.keyset_pages import Key, KeysetPages, Row


def key_of(row: Row) -> Key:
    return (row["time"], row["audit_id"])


KEY = key_of


def selection(n: int, same_time: int = 3) -> list[Row]:
    # several rows share a time, so the key's second part orders them
    return [{"time": k // same_time, "audit_id": f"id-{k:06d}"} for k in range(n)]


def fetcher(rows: list[Row]):
    keys = [key_of(r) for r in rows]
    asked: list[tuple[Key | None, bool, int]] = []

    def fetch(after: Key | None, descending: bool, limit: int) -> list[Row]:
        asked.append((after, descending, limit))
        if descending:
            end = len(keys) if after is None else bisect.bisect_left(keys, after)
            return rows[max(0, end - limit) : end][::-1]
        start = 0 if after is None else bisect.bisect_right(keys, after)
        return rows[start : start + limit]

    return fetch, asked


def test_walks_forward_through_every_row_once_within_its_bound():
    rows = selection(5_000)
    fetch, _ = fetcher(rows)
    w = KeysetPages(KEY, page=100, keep=400)
    w.set_first(w.first(fetch))
    seen = [r["audit_id"] for r in w.rows]
    assert not w.more_before and w.more_after
    while w.more_after:
        before = len(w.rows)
        dropped = w.append(w.after(fetch))
        seen += [r["audit_id"] for r in w.rows[before - dropped :]]
        assert len(w.rows) <= 400
    assert seen == [r["audit_id"] for r in rows]
    assert w.more_before  # the start was dropped on the way


def test_walks_back_from_the_end_to_the_start():
    rows = selection(1_050)
    fetch, _ = fetcher(rows)
    w = KeysetPages(KEY, page=100, keep=300)
    w.set_last(w.last(fetch))
    assert w.rows == rows[-100:] and not w.more_after and w.more_before
    while w.more_before:
        w.prepend(w.before(fetch))
        assert len(w.rows) <= 300
        assert w.rows == rows[rows.index(w.rows[0]) : rows.index(w.rows[0]) + len(w.rows)]
    assert w.rows[0] == rows[0] and w.more_after


def test_a_poll_adds_only_rows_after_the_newest():
    rows = selection(250)
    fetch, _ = fetcher(rows)
    w = KeysetPages(KEY, page=100)
    w.set_last(w.last(fetch))
    assert w.after(fetch) == []  # nothing new yet
    grown = rows + [{"time": 10_000, "audit_id": "new-1"}, {"time": 10_000, "audit_id": "new-2"}]
    fetch, _ = fetcher(grown)
    new = w.after(fetch)
    w.append(new + new[:1], complete=False)  # a raced poll returned a row again
    assert [r["audit_id"] for r in w.rows[-3:]] == ["id-000249", "new-1", "new-2"]
    assert not w.more_after


def test_an_empty_selection():
    fetch, _ = fetcher([])
    w = KeysetPages(KEY, page=100)
    w.set_last(w.last(fetch))
    assert len(w) == 0 and not w.more_before and not w.more_after
    assert w.after(fetch) == [] and w.before(fetch) == []


def test_pages_are_asked_by_key_never_by_position():
    rows = selection(1_000)
    fetch, asked = fetcher(rows)
    w = KeysetPages(KEY, page=100)
    w.set_first(w.first(fetch))
    w.append(w.after(fetch))
    w.prepend(w.before(fetch))
    assert asked[0] == (None, False, 100)
    assert asked[1] == (key_of(rows[99]), False, 100)
    assert asked[2] == (key_of(rows[0]), True, 100)


def test_a_poll_over_the_recent_past_puts_late_rows_in_their_place():
    rows = selection(300)
    fetch, _ = fetcher(rows)
    w = KeysetPages(KEY, page=100)
    w.set_last(w.last(fetch))
    late = {"time": rows[-50]["time"], "audit_id": "id-000250x"}  # sorts inside the window
    recent = sorted(rows[-60:] + [late, {"time": 10_000, "audit_id": "new"}], key=key_of)
    assert w.merge(recent) == 2  # the rest were held already
    held = [key_of(r) for r in w.rows]
    assert held == sorted(held) and len(held) == len(set(held)) == 102
    assert w.merge(recent) == 0
    before = {"time": -1, "audit_id": "old"}  # before the window: left to a page up
    assert w.merge([before]) == 0


def test_a_poll_that_lands_after_home_leaves_the_newest_rows_to_their_page():
    # The poll was asked while following; home (the first page) was shown before it answered.
    rows = selection(300)
    fetch, _ = fetcher(rows)
    w = KeysetPages(KEY, page=100)
    w.set_first(w.first(fetch))
    assert w.more_after
    assert w.merge(rows[-60:]) == 0  # past the window's end: not glued onto the first page
    assert [key_of(r) for r in w.rows] == [key_of(r) for r in rows[:100]]
    assert w.after(fetch)[0] == rows[100]  # the next page still starts where the window ends
