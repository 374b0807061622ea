"""Query history: where it lives, what it keeps, navigation, and that no file problem ever
raises."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import audittui.tui.history as history
from audittui.tui.history import History, default_history_path


def test_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_history_path() == tmp_path / "state" / "audittui" / "history"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/state"):  # the XDG spec: relative paths are ignored
        monkeypatch.setenv("XDG_STATE_HOME", unset)
        expected = tmp_path / "home" / ".local" / "state" / "audittui" / "history"
        assert default_history_path() == expected
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_history_path() == expected


def test_default_history_is_saved_there_privately(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    h = History()
    assert h.entries == [] and h.error is None
    h.add("user:alice")
    path = tmp_path / "state" / "audittui" / "history"
    assert path.read_text() == "user:alice\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert History().entries == ["user:alice"]
    assert [p.name for p in path.parent.iterdir()] == ["history"]  # no temporary files left


def test_add_dedupes_trims_and_cleans(tmp_path):
    path = tmp_path / "h"
    h = History(path, limit=3)
    for q in ["a", "  ", "", "b", "a", "c\nd", "e\r\nf", "  g  "]:
        h.add(q)
    assert h.entries == ["c d", "e  f", "g"]
    h.add("c d")
    assert h.entries == ["e  f", "g", "c d"]
    assert path.read_text() == "e  f\ng\nc d\n"
    assert History(path, limit=3).entries == ["e  f", "g", "c d"]
    assert History(path, limit=2).entries == ["g", "c d"]


def test_loading_skips_blanks_and_duplicates_keeping_the_newest(tmp_path):
    path = tmp_path / "h"
    path.write_bytes("a\n\nb\r\na\n  \nc\x0bd\u2028e\n".encode())
    # Only \n separates entries (\r ending a line is dropped; other breaks are not separators,
    # and are read as their escapes, like any unsafe character).
    assert History(path).entries == ["b", "a", "c\\x0bd\\u2028e"]


def test_navigation_is_shell_like(tmp_path):
    h = History(tmp_path / "h")
    assert h.previous("draft") is None and h.next() is None
    for q in ["one", "two", "three"]:
        h.add(q)
    assert h.next() is None  # not navigating
    assert h.previous("my draft") == "three"
    assert h.previous("three") == "two"
    assert h.previous("two") == "one"
    assert h.previous("one") is None  # the oldest stays
    assert h.next() == "two"
    assert h.next() == "three"
    assert h.next() == "my draft"  # past the newest: the text being edited
    assert h.next() is None
    assert h.previous("again") == "three"
    h.reset()
    assert h.next() is None
    assert h.previous("x") == "three"  # a fresh start remembers the new draft
    assert h.next() == "x"


def test_up_after_submit_skips_the_same_query(tmp_path):
    h = History(tmp_path / "h")
    h.add("verb:get")
    h.add("user:alice")
    h.reset()
    assert h.previous("user:alice") == "verb:get"  # the bar still shows what was submitted
    assert h.next() == "user:alice"


def test_add_ends_navigation(tmp_path):
    h = History(tmp_path / "h")
    h.add("a")
    h.add("b")
    assert h.previous("") == "b"
    h.add("c")
    assert h.previous("") == "c"


def test_two_instances_keep_each_others_queries(tmp_path):
    path = tmp_path / "h"
    first, second = History(path), History(path)
    first.add("from first")
    second.add("from second")
    first.add("again first")
    assert History(path).entries == ["from first", "from second", "again first"]
    assert first.entries == ["from first", "from second", "again first"]


def test_symlinked_history_stays_a_symlink(tmp_path):
    target = tmp_path / "dotfiles" / "history"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "state" / "history"
    link.parent.mkdir()
    link.symlink_to(target)
    History(link).add("new")
    assert link.is_symlink() and target.read_text() == "old\nnew\n"


@pytest.mark.parametrize(
    "data", [b"\xff\xfe garbage \x80\n", b"user:alice\n\x00\x01\x02\n", os.urandom(4096)]
)
def test_garbage_file_is_neither_used_nor_overwritten(tmp_path, data):
    path = tmp_path / "h"
    path.write_bytes(data)
    h = History(path)
    assert h.entries == []
    assert h.error and "not a text file" in h.error and "\n" not in h.error
    h.add("user:bob")
    assert h.entries == ["user:bob"]
    assert path.read_bytes() == data


def test_not_a_regular_file(tmp_path):
    folder = tmp_path / "h"
    folder.mkdir()
    h = History(folder)
    assert h.entries == [] and h.error
    h.add("q")
    assert h.entries == ["q"] and folder.is_dir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    h = History(fifo)  # must not block waiting for a writer
    assert h.entries == [] and "not a regular file" in (h.error or "")


def test_path_under_a_file_never_raises(tmp_path):
    (tmp_path / "file").write_text("x")
    h = History(tmp_path / "file" / "audittui" / "history")
    assert h.error
    h.add("q")
    assert h.entries == ["q"] and h.error


def test_unencodable_query_is_saved_anyway(tmp_path):
    path = tmp_path / "h"
    h = History(path)
    h.add("user:\udcff")  # a lone surrogate (undecodable terminal input)
    assert h.error is None
    assert History(path).entries == ["user:\\udcff"]  # saved as its escape


def test_a_huge_file_is_read_from_its_end(tmp_path):
    path = tmp_path / "h"
    with path.open("w") as fh:
        for i in range(400_000):  # ~6 MB: more than is ever read
            fh.write(f"query number {i}\n")
    entries = History(path).entries
    assert len(entries) == 500 and entries[-1] == "query number 399999"


def test_limit_zero_keeps_nothing(tmp_path):
    h = History(tmp_path / "h", limit=0)
    h.add("q")
    assert h.entries == [] and not Path(tmp_path / "h").exists()


# Root ignores permissions: the same failures, simulated, so that they are tested everywhere.


def test_simulated_unwritable_folder(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(history.tempfile, "mkstemp", refuse)
    h = History(tmp_path / "h")
    h.add("q")
    assert h.entries == ["q"]
    assert h.error == f"history not saved: {tmp_path}: Permission denied"


def test_simulated_failing_replace_leaves_no_temporary_file(monkeypatch, tmp_path):
    def refuse(src, dst):
        raise OSError(30, "Read-only file system", str(dst))

    monkeypatch.setattr(history.os, "replace", refuse)
    h = History(tmp_path / "h")
    h.add("q")
    assert h.entries == ["q"] and "Read-only file system" in (h.error or "")
    assert list(tmp_path.iterdir()) == []


def test_simulated_unreadable_file_is_left_alone(monkeypatch, tmp_path):
    path = tmp_path / "h"
    path.write_text("secret\n")
    real_open = os.open

    def guarded(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(history.os, "open", guarded)
    h = History(path)
    assert h.entries == [] and h.error == f"history not read: {path}: Permission denied"
    h.add("q")
    assert h.entries == ["q"]
    monkeypatch.undo()
    assert path.read_text() == "secret\n"


def test_no_home_directory(monkeypatch):
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setattr(history.Path, "home", staticmethod(no_home))
    h = History()
    assert h.path is None and h.error and "\n" not in h.error
    h.add("q")
    assert h.entries == ["q"]


# -- hostile values: the file and the bar never hold an unsafe character raw -------------------


def test_queries_are_saved_escaped_and_read_back_exact(tmp_path):
    """A drill-down's query names a log value holding terminal escapes: the file holds it
    escaped, recall gives the escaped text, and that text still selects the very value."""
    from audittui.query.completion import term
    from audittui.query.syntax import parse

    hostile = "ev\x1b]52;c;aGk=\x07\x1b[2J\u202e"
    query = f"{term('ua', hostile)} {term('user', 'a b')}"
    path = tmp_path / "h"
    History(path).add(query)
    data = path.read_bytes()
    assert data == b'ua:"ev\\x1b]52;c;aGk=\\x07\\x1b[2J\\u202e" user:"a b"\n'
    recalled = History(path).previous("")
    assert recalled is not None and recalled.isprintable()
    assert [t.values[0].text for t in parse(recalled).nodes] == [hostile, "a b"]  # type: ignore[union-attr]


def test_raw_unsafe_characters_in_queries_or_old_files_are_escaped(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(b'user:"\x1b]0;t\x07"\n')  # as an older audittui saved it
    h = History(path)
    assert h.entries == ['user:"\\x1b]0;t\\x07"']
    h.add("\x1b[2J\x9b\u202ex")
    assert h.entries[-1] == "\\x1b[2J\\x9b\\u202ex"
    assert path.read_bytes().isascii()
    assert b"\x1b" not in path.read_bytes()
