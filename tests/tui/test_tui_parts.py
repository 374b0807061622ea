"""The app's pieces on their own: column fitting and shortening, exports (the JSON tree
has its own file)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import orjson
import pytest
from conftest import v1_event

from audittui.index.loader import load
from audittui.output.export import ExportError, export_jsonl
from audittui.output.inert import fit, pad
from audittui.tui.columns import fit_columns, short_user

# -- columns ----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 72, 76, 77, 78, 92, 93, 100, 101, 120, 200])
def test_columns_fill_the_width_exactly(width):
    cols = fit_columns(width)
    assert sum(w for _, w in cols) + len(cols) - 1 == width
    keys = [c.key for c, _ in cols]
    assert keys[:6] == ["time", "user", "verb", "what", "where", "code"]
    assert ("ip" in keys) == (width >= 93)
    assert ("latency" in keys) == (width >= 77)  # kept at 80x24 (78 beside the scrollbar)
    assert dict((c.key, w) for c, w in cols)["time"] == (18 if width >= 100 else 12)


def test_names_are_shortened_the_way_people_say_them():
    sa = "system:serviceaccount:kube-system:replicaset-controller"
    assert short_user(sa) == "sa:kube-system/replicaset-controller"
    assert short_user(sa, 24) == "sa:replicaset-controller"  # the name matters more
    assert short_user("system:serviceaccount:monitoring:prom", 16) == "sa:monitor…/prom"
    node = "system:node:ip-10-0-2-141.eu-west-1.compute.internal"
    assert short_user(node, 20) == "node:ip-10-0-2-141"
    assert short_user("alice", 3) == "alice"  # plain names are cut by fit()
    assert fit("abcdefghij", 5) == "abcd…"
    assert fit("abcdefghij", 5, middle=True) == "ab…ij"


def test_wide_characters_keep_columns_aligned():
    text = fit("用户用户用户", 7)
    assert pad(text, 7).__len__() <= 7
    from rich.cells import cell_len

    assert cell_len(pad(text, 7)) == 7
    assert cell_len(pad("ab", 5, right=True)) == 5


# -- export -----------------------------------------------------------------------------------


def test_export_masks_escapes_and_refuses_the_log_folder(tmp_path, write_lines):
    secret = v1_event(
        objectRef={"resource": "secrets", "name": "s"},
        requestObject={"kind": "Secret", "data": {"k": "c2VjcmV0"}},
        user={"username": "eve\u202e"},
    )
    path = write_lines("audit.log", [v1_event(), secret])
    store = load(path)
    out = tmp_path / "out"
    out.mkdir()
    n = export_jsonl(store, range(len(store)), str(out / "e.jsonl"))
    data = (out / "e.jsonl").read_bytes()
    assert n == 2 and len(data.splitlines()) == 2
    assert b"c2VjcmV0" not in data and b"\\u202e" in data and "\u202e".encode() not in data
    assert orjson.loads(data.splitlines()[1])["user"]["username"] == "eve\u202e"
    assert stat.S_IMODE(os.stat(out / "e.jsonl").st_mode) == 0o600
    export_jsonl(store, [1], str(out / "r.jsonl"), mask=False)
    assert b"c2VjcmV0" in (out / "r.jsonl").read_bytes()
    with pytest.raises(ExportError, match="never writes there"):
        export_jsonl(store, [0], str(tmp_path / "x.jsonl"))  # beside the log
    assert not (tmp_path / "x.jsonl").exists()


def test_a_failed_export_leaves_no_partial_file(tmp_path, write_lines):
    path = write_lines("audit.log", [v1_event(), v1_event()])
    store = load(path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "e.jsonl").write_text("old")
    # A write that really fails half-way: a child process whose files may hold 100 bytes
    # (the kernel refuses the rest with EFBIG, as a full disk refuses with ENOSPC).
    code = f"""
import resource, signal, sys
from audittui import load
from audittui.output.export import ExportError, export_jsonl
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = load({str(path)!r})
resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
try:
    export_jsonl(store, range(2), {str(out / "e.jsonl")!r})
except ExportError as exc:
    print("ExportError:", exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ExportError:" in done.stdout and "too large" in done.stdout, done.stdout + done.stderr
    assert (out / "e.jsonl").read_text() == "old"  # the old file is intact
    assert os.listdir(out) == ["e.jsonl"]  # and no temporary file is left behind
    with pytest.raises(ExportError, match="no such folder"):
        export_jsonl(store, range(2), str(out / "nope" / "e.jsonl"))
