"""What ``ship`` has stored, per file, so that a restart neither loses nor doubles events.

A record per file read: its identity (device and inode, and its first bytes, by which the
follower also knows a file after it was renamed or gzipped by rotation), how far it was read
(bytes of complete lines, or for a whole-file input the events taken) and the next line's
number. The state is written after the store acknowledged a batch, atomically (a temporary
file, fsync, rename, fsync of the folder), never in the log folder.

``pending`` is the batch being inserted (its time range and sources), written before the
insert: after a crash between the insert and the checkpoint, the next start asks the store
which of those rows it holds and skips them, so that even a plain ``count()`` stays exact.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

HEAD = 256  # as the follower's: the bytes that recognise a file after rotation
VERSION = 1


@dataclass
class Record:
    path: str  # where it was last read
    dev: int
    ino: int
    head: str  # base64 of its first bytes (up to HEAD), decompressed for a .gz
    offset: int = 0  # bytes of complete lines taken; events taken for a whole-file input
    line: int = 1  # the next line's number
    whole: bool = False  # read whole by the loader (gzip given as such, a document)
    done: bool = False  # read to its end, and it will not grow (rotated away, whole input)

    @property
    def head_bytes(self) -> bytes:
        return base64.b64decode(self.head)


@dataclass
class Pending:
    tmin: int
    tmax: int
    sources: list[str]  # the files read, as the rows' source column names them
    offsets: list[int]  # where in each the batch began (0 for a whole-file input)
    rows: int


@dataclass
class State:
    records: list[Record] = field(default_factory=list)
    pending: Pending | None = None

    def find(self, dev: int, ino: int, head: bytes) -> Record | None:
        """The record of a file: the same inode beginning as recorded (it may have grown
        since), or, renamed into a .gz (another inode), the same full head."""
        for r in self.records:
            if (r.dev, r.ino) == (dev, ino) and head.startswith(r.head_bytes):
                return r
        for r in self.records:
            recorded = r.head_bytes
            if len(recorded) == HEAD and head == recorded:
                return r
        return None


def head_of(path: str) -> bytes | None:
    """The first bytes of a file (decompressed for gzip); None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            first = fh.read(HEAD)
        if first[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as gz:
                return gz.read(HEAD)
        return first
    except (OSError, EOFError):
        return None


def encode_head(head: bytes) -> str:
    return base64.b64encode(head[:HEAD]).decode()


def default_dir(url: str, paths: list[str]) -> str:
    """``$XDG_STATE_HOME/audittui/ship/<hash of the URL and the paths>``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    what = "\n".join([url, *sorted(os.path.abspath(p) for p in paths)]).encode()
    return os.path.join(base, "audittui", "ship", hashlib.sha256(what).hexdigest()[:16])


def load(folder: str) -> State:
    """The state in ``folder`` (empty when there is none yet). Raises ValueError with a
    one-line reason for a state that cannot be read."""
    path = os.path.join(folder, "checkpoint.json")
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = orjson.loads(fh.read())
    except FileNotFoundError:
        return State()
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable checkpoint ({exc})") from None
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint of another version ({data.get('version')!r})")
    try:
        records = [Record(**r) for r in data.get("records", [])]
        pending = Pending(**data["pending"]) if data.get("pending") else None
    except TypeError as exc:
        raise ValueError(f"{path}: malformed checkpoint ({exc})") from None
    return State(records, pending)


def save(folder: str, state: State) -> None:
    """Write ``state`` atomically and durably (temp file, fsync, rename, fsync the folder)."""
    os.makedirs(folder, exist_ok=True)
    data = orjson.dumps(
        {
            "version": VERSION,
            "records": [asdict(r) for r in state.records],
            "pending": asdict(state.pending) if state.pending else None,
        }
    )
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, os.path.join(folder, "checkpoint.json"))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
