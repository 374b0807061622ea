"""Tests for audittui.demo: the synthetic audit-log generator, demo folder and live writer."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from audittui import demo
from audittui.demo.times import go_duration

DEMO_LOGS = Path(__file__).resolve().parents[2] / "demo-logs"
# sha256 of the generator's output, recorded before audittui/demo was split into modules: the
# split (and any refactoring since) must not change a byte. ``make demo-logs`` is the 4th case.
DIGESTS = {
    "big --events 20000": "92667853e60d148070b97c29135433b1932cc317408d4d2d3fa8c622009f7b4c",
    "big --events 20000 --easy": "09ef8a15a3aa98c39d602cd42a848268cb426ad1224734ebc8fe31b4015c6f3d",
    "big --events 5000 --body-fraction 0.5 --seed 3": (
        "8aabc973cce124e1c340afe17c1611d52225f4a69e5bd9cb337d893fe614c892"
    ),
    "iter_lines(3000, seed=5, body_fraction=1.0)": (
        "a862a3bb0c0532f08a89981baabb62ead3491f1a63caeb427f88807e86941842"
    ),
}

KEY_ORDER = [
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "user",
    "impersonatedUser",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
]
MICRO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
BACKUP_NAME_RE = re.compile(r"^audit-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log(\.gz)?$")
LONG_RUNNING_SUBS = {"exec", "attach", "portforward", "log"}
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(demo.iter_events(6000, seed=1, rate=5.0))  # ~20 minutes: watches complete


def _is_long_running(ev: dict) -> bool:
    return ev["verb"] == "watch" or ev.get("objectRef", {}).get("subresource") in LONG_RUNNING_SUBS


def _read_folder(folder: Path) -> list[bytes]:
    """All lines of a lumberjack folder: backups oldest -> newest, then audit.log."""
    backups = sorted(p for p in folder.iterdir() if BACKUP_NAME_RE.match(p.name))
    lines: list[bytes] = []
    for p in [*backups, folder / "audit.log"]:
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        assert data == b"" or data.endswith(b"\n"), p
        lines += [x + b"\n" for x in data.split(b"\n")[:-1]]
    return lines


def test_deterministic_for_a_seed() -> None:
    a = list(demo.iter_lines(800, seed=5))
    assert a == list(demo.iter_lines(800, seed=5))
    assert a != list(demo.iter_lines(800, seed=6))
    assert list(demo.iter_events(800, seed=5)) == [orjson.loads(x) for x in a]
    assert len(a) == 800 and all(x.endswith(b"\n") and x.count(b"\n") == 1 for x in a)


def test_wire_format(events: list[dict]) -> None:
    for line in demo.iter_lines(2000, seed=1):
        assert line.startswith(b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":')
    prev = ""
    for ev in events:
        keys = list(ev)
        assert keys == [k for k in KEY_ORDER if k in ev], keys
        assert MICRO_RE.match(ev["requestReceivedTimestamp"]) and MICRO_RE.match(
            ev["stageTimestamp"]
        )
        assert UUID4_RE.match(ev["auditID"])
        assert ev["stageTimestamp"] >= prev, "lines must be in stageTimestamp order"
        prev = ev["stageTimestamp"]
        assert ev["stageTimestamp"] >= ev["requestReceivedTimestamp"]
        if "annotations" in ev:
            assert list(ev["annotations"]) == sorted(ev["annotations"])  # Go map order
        if ev["stage"] == "RequestReceived":  # before authz/impersonation: none of these yet
            assert not {"responseStatus", "impersonatedUser", "annotations"} & ev.keys()
            assert ev["stageTimestamp"] == ev["requestReceivedTimestamp"]
        else:
            assert isinstance(ev["responseStatus"]["code"], int)


def test_every_verb_and_path_kind_present(events: list[dict]) -> None:
    assert {e["verb"] for e in events} >= VERBS
    subs = {e["objectRef"].get("subresource") for e in events if "objectRef" in e}
    assert {"exec", "log", "attach", "portforward", "status", "scale", "token"} <= subs
    nonres = {e["requestURI"].split("?")[0] for e in events if "objectRef" not in e}
    assert {"/healthz", "/readyz", "/version", "/apis", "/openapi/v2", "/metrics"} <= nonres
    codes = {e["responseStatus"]["code"] for e in events if "responseStatus" in e}
    assert {200, 201, 101, 401, 403, 404, 409, 422, 500} <= codes
    assert any("impersonatedUser" in e for e in events)
    assert any(len(e["sourceIPs"]) == 2 for e in events)
    assert any(e["stage"] == "Panic" for e in events)
    assert any("apiserver.latency.k8s.io/total" in e.get("annotations", {}) for e in events)
    for e in events:
        ref = e.get("objectRef")
        if ref is None:
            assert not e["requestURI"].startswith(("/api/v1/", "/apis/")) or e["user"] == {}
            continue
        group = ref.get("apiGroup")
        prefix = f"/apis/{group}/{ref['apiVersion']}/" if group else f"/api/{ref['apiVersion']}/"
        assert e["requestURI"].startswith(prefix), (e["requestURI"], ref)
        assert group != ""  # the core group is omitted, never empty


def test_forbidden_events_are_well_formed(events: list[dict]) -> None:
    forbidden = [e for e in events if e.get("responseStatus", {}).get("code") == 403]
    assert forbidden
    for e in forbidden:
        if e["stage"] == "ResponseStarted":
            continue
        st = e["responseStatus"]
        assert st["status"] == "Failure" and st["reason"] == "Forbidden"
        assert "is forbidden: User" in st["message"] or st["message"].startswith("forbidden: User")
        assert e["annotations"]["authorization.k8s.io/decision"] == "forbid"


def test_request_received_pairs_share_audit_id(events: list[dict]) -> None:
    by_id: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for i, e in enumerate(events):
        by_id[e["auditID"]].append((i, e))
    paired = 0
    for stages in by_id.values():
        names = [e["stage"] for _, e in stages]
        assert len(names) == len(set(names)), names
        if names == ["ResponseStarted"]:  # failed authentication: lone RS, empty user, 401
            e = stages[0][1]
            assert e["user"] == {} and e["responseStatus"]["code"] == 401
            assert e["responseStatus"]["message"].startswith("Authentication failed")
            continue
        i0, rr = stages[0]
        assert rr["stage"] == "RequestReceived"
        for i, e in stages[1:]:
            assert i > i0 and e["stageTimestamp"] >= rr["stageTimestamp"]
            assert e["requestReceivedTimestamp"] == rr["requestReceivedTimestamp"]
            assert e["requestURI"] == rr["requestURI"] and e["verb"] == rr["verb"]
        if names[-1] in ("ResponseComplete", "Panic"):
            paired += 1
            if names[-1] == "Panic":
                assert stages[-1][1]["responseStatus"]["reason"] == "InternalError"
    assert paired > 2000


def test_long_running_requests_get_response_started(events: list[dict]) -> None:
    by_id: dict[str, dict[str, dict]] = defaultdict(dict)
    for e in events:
        by_id[e["auditID"]][e["stage"]] = e
    checked = 0
    for stages in by_id.values():
        rr = stages.get("RequestReceived")
        if rr is None or not _is_long_running(rr):
            if rr is not None:
                assert "ResponseStarted" not in stages
            continue
        if "ResponseComplete" not in stages:
            continue  # still streaming at the end of the sample
        rs, rc = stages["ResponseStarted"], stages["ResponseComplete"]
        assert rr["stageTimestamp"] <= rs["stageTimestamp"] <= rc["stageTimestamp"]
        code = rs["responseStatus"]["code"]
        sub = rr.get("objectRef", {}).get("subresource")
        if code != 403:
            assert code == (101 if sub in ("exec", "attach", "portforward") else 200)
        checked += 1
    assert checked > 50
    watch_secs = [
        (
            datetime.fromisoformat(s["ResponseComplete"]["stageTimestamp"].replace("Z", "+00:00"))
            - datetime.fromisoformat(s["RequestReceived"]["stageTimestamp"].replace("Z", "+00:00"))
        ).total_seconds()
        for s in by_id.values()
        if "RequestReceived" in s
        and s["RequestReceived"]["verb"] == "watch"
        and s.get("ResponseComplete", {}).get("responseStatus", {}).get("code") == 200
    ]
    assert watch_secs and max(watch_secs) > 60  # controller watches last minutes


def test_start_rate_and_body_fraction() -> None:
    start = datetime(2024, 2, 29, 23, 59, 0, tzinfo=UTC)
    evs = list(demo.iter_events(2000, seed=2, start=start, rate=20.0, body_fraction=0.0))
    assert evs[0]["requestReceivedTimestamp"].startswith("2024-02-29T23:59:00.")
    first = datetime.fromisoformat(evs[0]["stageTimestamp"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(evs[-1]["stageTimestamp"].replace("Z", "+00:00"))
    assert 0.6 * 100 < (last - first).total_seconds() < 1.5 * 100  # 2000 events at 20/s
    assert {e["level"] for e in evs} == {"Metadata"}
    rich = list(demo.iter_events(2000, seed=2, body_fraction=1.0))
    assert any(e["level"] == "RequestResponse" and "responseObject" in e for e in rich)
    secrets = [e for e in rich if e.get("responseObject", {}).get("kind") == "Secret"]
    assert secrets and all(
        isinstance(v, str) for v in secrets[0]["responseObject"]["data"].values()
    )


def test_go_duration_format() -> None:
    assert go_duration(512) == "512ns"
    assert go_duration(33_011) == "33.011µs"
    assert go_duration(6_578_549) == "6.578549ms"
    assert go_duration(1_500_000_000) == "1.5s"
    assert go_duration(65_250_000_000) == "1m5.25s"


def test_write_demo_is_the_committed_demo_logs(tmp_path: Path) -> None:
    # `make demo-logs` (python -m audittui.demo write demo-logs --events 3000 --seed 7)
    assert demo.main(["write", str(tmp_path), "--events", "3000", "--seed", "7"]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in DEMO_LOGS.iterdir())
    for name in written:
        assert (tmp_path / name).read_bytes() == (DEMO_LOGS / name).read_bytes(), name


@pytest.mark.parametrize("case", [c for c in DIGESTS if c.startswith("big ")])
def test_big_output_is_unchanged(tmp_path: Path, case: str) -> None:
    path = tmp_path / "big.log"
    argv = case.split()
    assert demo.main([argv[0], str(path), *argv[1:]]) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DIGESTS[case]


def test_event_bodies_are_unchanged() -> None:
    # every request with its bodies: each template filled, in each variant, many times over
    lines = b"".join(demo.iter_lines(3000, seed=5, body_fraction=1.0))
    digest = DIGESTS["iter_lines(3000, seed=5, body_fraction=1.0)"]
    assert hashlib.sha256(lines).hexdigest() == digest


def test_write_demo_folder(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    paths = demo.write_demo(folder, 1200, seed=7)
    names = sorted(p.name for p in folder.iterdir())
    assert [p.name for p in paths][-1] == "audit.log" and set(names) == {p.name for p in paths}
    backups = [n for n in names if n != "audit.log"]
    assert 2 <= len(backups) <= 3 and all(BACKUP_NAME_RE.match(n) for n in backups)
    gz = [folder / n for n in backups if n.endswith(".gz")]
    assert len(gz) == 1
    raw = gz[0].read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # deterministic: mtime 0
    assert gzip.decompress(raw).count(b"\n") > 100
    assert sum(p.stat().st_size for p in paths) < 5_000_000

    lines = _read_folder(folder)
    good, bad = [], []
    for line in lines:
        try:
            good.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            bad.append(line)
    assert len(bad) == 3  # klog line, truncated JSON, binary garbage
    assert any(re.match(rb"^E\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +1 audit\.go:\d+\] ", b) for b in bad)
    assert any(b.startswith(b'{"kind":"Event"') for b in bad)
    hostile = [e for e in good if "\x1b[31m" in e["user"].get("username", "")]
    assert len(hostile) == 1 and "\u202e" in hostile[0]["user"]["username"]
    assert "[bold red]" in hostile[0]["user"]["username"]
    assert len(good) == 1200 + 1
    stamps = [e["stageTimestamp"] for e in good]
    assert stamps == sorted(stamps)
    # a backup's name is its rotation time: after its last event, before the next file's first
    files = sorted(folder.iterdir(), key=lambda p: (p.name == "audit.log", p.name))
    for older, newer in zip(files, files[1:], strict=False):
        stamp = BACKUP_NAME_RE.match(older.name) and older.name[6:29]
        rot = datetime.strptime(stamp + "000", "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=UTC)
        first_next = orjson.loads(_first_valid(newer))["stageTimestamp"]
        assert rot.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] <= first_next[:23]
    # rewriting gives identical bytes and removes nothing else
    (folder / "notes.txt").write_text("keep me")
    again = demo.write_demo(folder, 1200, seed=7)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]
    assert (folder / "notes.txt").exists()


def _first_valid(path: Path) -> bytes:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    for line in data.split(b"\n"):
        try:
            orjson.loads(line)
            return line
        except orjson.JSONDecodeError:
            continue
    raise AssertionError(path)


def test_write_big(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    size = demo.write_big(path, 5000, seed=3, body_fraction=0.1)
    data = path.read_bytes()
    assert size == len(data) and data.count(b"\n") == 5000 and data.endswith(b"\n")
    evs = [orjson.loads(x) for x in data.splitlines()]
    assert len({e["auditID"] for e in evs}) < 5000  # stages of one request share the auditID
    assert data == b"".join(demo.iter_lines(5000, seed=3, body_fraction=0.1, rate=250.0))


def _count_backups(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.name != "audit.log")


def _wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("rotate_bytes", "compress", "want_backups"),
    [(40_000, True, 4), (2_500, False, 40)],  # the second rotates several times per millisecond
)
def test_append_live_rotates_without_losing_events(
    tmp_path: Path, rotate_bytes: int, compress: bool, want_backups: int
) -> None:
    folder = tmp_path / "live"
    live = folder / "audit.log"
    stop = threading.Event()
    result: list[int] = []
    t0 = datetime.now(UTC)
    kwargs = dict(
        rate=4000.0,
        seed=11,
        stop=stop,
        rotate_bytes=rotate_bytes,
        compress=compress,
        body_fraction=0.02,
    )
    th = threading.Thread(target=lambda: result.append(demo.append_live(folder, **kwargs)))
    th.start()
    held = None
    try:
        _wait_for(live.exists)
        held = os.open(live, os.O_RDONLY)  # an fd on one generation of audit.log
        n0 = _count_backups(folder)
        _wait_for(lambda: _count_backups(folder) >= max(want_backups, n0 + 2))
    finally:
        stop.set()
        th.join(timeout=30)
    assert not th.is_alive() and result
    count = result[0]
    names = [p.name for p in folder.iterdir()]
    assert "audit.log" in names
    assert all(BACKUP_NAME_RE.match(n) for n in names if n != "audit.log")
    if compress:  # every backup compressed, .log removed after its .gz was written
        assert all(n.endswith(".gz") for n in names if n != "audit.log")

    for p in folder.iterdir():  # lumberjack never lets a file grow past max (unless one line)
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        assert len(data) <= rotate_bytes or data.count(b"\n") == 1, (p.name, len(data))

    lines = _read_folder(folder)
    assert len(lines) == count
    got = [orjson.loads(x) for x in lines]
    want = list(demo.iter_events(count, seed=11, rate=4000.0, body_fraction=0.02, demo=True))
    assert [(e["auditID"], e["stage"]) for e in got] == [(e["auditID"], e["stage"]) for e in want]
    first = datetime.fromisoformat(got[0]["stageTimestamp"].replace("Z", "+00:00"))
    assert abs((first - t0).total_seconds()) < 5  # stamped with the current time

    # rotation renames the file (the held inode becomes a backup) instead of copying it
    assert held is not None
    try:
        held_data = b""
        while chunk := os.read(held, 1 << 20):
            held_data += chunk
        backups = {
            (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes())
            for p in folder.iterdir()
            if p.name != "audit.log"
        }
        assert held_data and held_data in backups
        if compress:
            assert os.fstat(held).st_nlink == 0  # renamed, then deleted after compression
    finally:
        os.close(held)


def test_append_live_appends_to_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "custom.log"
    target.write_bytes(b'{"kind":"Event"}\n')
    stop = threading.Event()
    th = threading.Thread(
        target=demo.append_live, args=(target,), kwargs={"rate": 2000.0, "stop": stop}
    )
    th.start()
    try:
        _wait_for(lambda: target.read_bytes().count(b"\n") >= 50)
    finally:
        stop.set()
        th.join(timeout=30)
    data = target.read_bytes()
    assert data.startswith(b'{"kind":"Event"}\n{"kind":"Event","apiVersion":"audit.k8s.io/v1"')
    assert data.endswith(b"\n")
    assert [p.name for p in tmp_path.iterdir()] == ["custom.log"]  # no rotation requested


def test_templates_fill_values_and_copy_the_rest() -> None:
    from audittui.demo.template import fill

    lease = fill("lease", metadata={"name": "n"}, holder="h", seconds=40, acquired="a", renewed="b")
    assert lease["spec"] == {
        "holderIdentity": "h",
        "leaseDurationSeconds": 40,  # a whole ${seconds} keeps the value's type
        "acquireTime": "a",
        "renewTime": "b",
        "leaseTransitions": 3,
    }
    assert list(lease) == ["kind", "apiVersion", "metadata", "spec"]  # the template's order
    # ${...} inside a text or a mapping key gets the value's text
    texts = ["name", "ns", "deploy", "rv", "rs_uid", "image", "node", "host_ip", "pod_ip"]
    pod_values = dict.fromkeys(
        [*texts, "started", "now", "volume", "image_id", "container_id"], "x"
    )
    pod = fill("pod", **pod_values, uid="u-1", rs="abc", cname="web", port=80, restarts=0)
    assert pod["metadata"]["generateName"] == "x-abc-"
    fields = pod["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:ownerReferences"]
    assert 'k:{"uid":"u-1"}' in fields
    assert pod["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    # every fill is a new object: changing one leaves the template as it was
    pod["spec"]["tolerations"].clear()
    again = fill("pod", **pod_values, uid="u-1", rs="abc", cname="web", port=80, restarts=0)
    assert len(again["spec"]["tolerations"]) == 2
    with pytest.raises(KeyError):
        fill("lease", metadata={})


def test_generated_names_replace_the_name_segment_not_the_api_prefix(tmp_path):
    # A Service named "api" renamed to api-x7k2p once made "/api-x7k2p/v1/…" of its URI.
    from audittui.demo import write_big
    from audittui.index.loader import load

    path = tmp_path / "big.log"
    write_big(path, 20_000, seed=3, body_fraction=0.0, realistic=True)
    with load(str(path)) as store:
        uris = [store.value("uri", i) or "" for i in range(len(store))]
        assert not [u for u in uris if re.match(r"/apis?-", u)]
        renamed = [
            (store.value("name", i), uris[i]) for i in range(len(store))
            if re.search(r"-[a-z0-9]{5}$", store.value("name", i) or "")
            and store.value("verb", i) in ("get", "update", "patch", "delete")
        ]  # fmt: skip
        assert renamed and all(f"/{name}" in uri.split("?")[0] for name, uri in renamed)
