"""Per-key summaries: what a row names must be a real value when there is one."""

from __future__ import annotations

import orjson
from conftest import v1_event

import audittui


def test_a_missing_source_ip_never_wins_the_top_ip(tmp_path):
    events = [v1_event(user={"username": "alice"}, sourceIPs=None) for _ in range(5)]
    events += [v1_event(user={"username": "alice"}, sourceIPs=["10.0.0.7"])]
    events += [v1_event(user={"username": "bob"}, sourceIPs=None)]
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    with audittui.load(path) as store:
        rows = {r["key"]: r for r in store.summary(by="user")}
        assert rows["alice"]["top_ip"] == "10.0.0.7"  # not "(none)", though most lack one
        assert rows["bob"]["top_ip"] == "(none)"  # nothing else to name
