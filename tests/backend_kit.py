"""The same events in a file and in a store, for the suites that run once per backend.

The data is real: the JSON-lines samples (audit2rbac's demo log, Panther's EKS, GKE and AKS
events, Falco's and the Kubernetes e2e captures where present) in one file, each event once
(a store keeps one row per key), shipped into a table with ``ship``'s own row builder."""

from __future__ import annotations

import uuid
from pathlib import Path

from conftest import REALDATA, SAMPLES

from audittui.clickhouse.client import connect
from audittui.clickhouse.rows import from_lines
from audittui.clickhouse.url import parse

JSON_LINES = [
    SAMPLES / "audit2rbac" / "demo.log",
    REALDATA / "panther-analysis" / "derived" / "eks.jsonl",
    REALDATA / "panther-analysis" / "derived" / "gke.jsonl",
    REALDATA / "panther-analysis" / "derived" / "aks.jsonl",
]


# Bare events only: a store keeps each event, not what it was read from, so the bytes a file
# spends on a wrapper (GKE's and AKS's entries) are no event's (the policy lab's byte counts).
BARE = JSON_LINES[:2]


def write_events(path: Path, extra: list[Path] = (), samples: list[Path] = JSON_LINES) -> Path:  # type: ignore[assignment]
    """The samples (and ``extra`` JSON-lines files) in one file, a line whose key a line
    before it holds left out, so that the file and a store hold the same events."""
    seen: set = set()
    with path.open("wb") as out:
        for sample in [*samples, *extra]:
            for line in sample.read_bytes().splitlines():
                keys = set(from_lines(line + b"\n", 0, 1, str(path), "", True)[0].keys)
                if keys and not keys & seen:
                    seen |= keys
                    out.write(line + b"\n")
    return path


def fill(url: str, path: Path) -> None:
    """Ship ``path``'s events into the table of ``url`` (as ``ship`` reads a file)."""
    rows, _, _ = from_lines(path.read_bytes(), 0, 1, str(path), "", True)
    client = connect(parse(url))
    try:
        client.ensure_table()
        if len(rows):
            client.insert(rows.body())
    finally:
        client.close()


def table(store_url: str) -> str:
    """``store_url`` with a fresh table of its own."""
    sep = "&" if "?" in store_url else "?"
    return f"{store_url}{sep}table=t_{uuid.uuid4().hex}"
