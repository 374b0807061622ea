"""Command-line paths → the files to read, in order, ready for byte-offset access.

A folder means its live logs plus their lumberjack backups (``audit-2025-03-04T06-22-18.819.log``
and ``.log.gz``), oldest first; when a backup exists both plain and gzipped (the API server is
compressing it right now) only the plain one is read. Compressed files (by magic bytes, whatever
their name) and stdin are spooled, decompressed, into a private temporary folder so that every
event can be re-read by offset; nothing is ever written next to the logs.
"""

from __future__ import annotations

import atexit
import os
import re
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import inflate, scratch

# Lumberjack (the API server's log rotation) names a backup <stem>-<UTC time><ext>[.gz], the
# time in Go's layout 2006-01-02T15-04-05.000: audit.log → audit-2024-05-01T12-00-00.000.log.
BACKUP_STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}"
BACKUP_RE = re.compile(rf"^(?P<stem>.+)-(?P<ts>{BACKUP_STAMP})(?P<ext>\.[^.]+)?(?P<gz>\.gz)?$")
_LOG_SUFFIXES = {".log", ".json", ".jsonl", ".ndjson", ".txt", ".gz", ""}
GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """A path that cannot be read, with a message fit for a user."""


@dataclass
class Source:
    """One input file: ``path`` as the user knows it, ``read_path`` where its bytes are."""

    id: int
    path: str
    read_path: str
    compressed: bool = False
    note: str | None = None  # e.g. "gzip stream truncated"
    bound: str = ""  # why it was read only in part: a bound of .inflate reached (say it at once)
    gone: str = ""  # why the bytes can no longer be read (a live file truncated in place)
    server: str | None = None  # the API server that wrote it, when its name says (must-gather)

    def __post_init__(self) -> None:
        if self.server is None:
            self.server = gathered_server(self.path)


# must-gather prefixes each file with its node: <node>-audit.log, <node>-audit-<time>.log.gz
_GATHERED = re.compile(rf"^(.+)-(audit(-{BACKUP_STAMP})?\.log)(\.gz)?$")


def gathered_server(path: str) -> str | None:
    """The node of a must-gather audit file (``audit_logs/<component>/<node>-<file>.gz``)."""
    p = Path(path)
    if p.parent.parent.name != "audit_logs":
        return None
    m = _GATHERED.match(p.name)
    return m.group(1) if m else None


def explain(path: str, exc: OSError) -> str:
    """A one-line message for an OSError on ``path``."""
    if isinstance(exc, PermissionError):
        return (
            f"{path}: permission denied. Audit logs are usually root-only (mode 0600): "
            f"run with sudo, or grant read access: sudo setfacl -m u:$USER:r {path}"
        )
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory"
    return f"{path}: {exc.strerror or exc}"


def backup_name(live: str, micros: int) -> str:
    """The name lumberjack gives ``live`` (``audit.log``) rotated at ``micros`` (µs, UTC)."""
    stem, dot, ext = live.rpartition(".")
    if not dot:
        stem, ext = live, ""
    sec, frac = divmod(micros, 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(sec)) + f".{frac // 1000:03d}"
    return f"{stem}-{stamp}{dot}{ext}"


def backup_key(name: str) -> tuple[str, str, bool] | None:
    """``audit-<ts>.log.gz`` → ("audit.log", ts, True); None for a name that is no backup."""
    m = BACKUP_RE.match(name)
    if not m:
        return None
    ext, gz = m["ext"] or "", bool(m["gz"])
    if ext == ".gz" and not gz:
        ext, gz = "", True
    return m["stem"] + ext, m["ts"], gz


def folder_files(folder: Path) -> list[Path]:
    """The log files of a folder in reading order: per live log, its backups oldest first."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise InputError(explain(str(folder), exc)) from None
    groups: dict[str, dict[str, Path]] = {}  # live name → {ts: backup path}
    live: set[str] = set()
    for name in names:
        full = folder / name
        if name.startswith(".") or not full.is_file():
            continue
        key = backup_key(name)
        if key is None:
            if Path(name).suffix in _LOG_SUFFIXES:
                live.add(name)
            continue
        live_name, ts, gz = key
        group = groups.setdefault(live_name, {})
        if not gz or ts not in group:  # the plain copy wins over its half-written .gz
            group[ts] = full
    ordered: list[Path] = []
    for name in sorted(live | set(groups)):
        ordered.extend(groups.get(name, {})[ts] for ts in sorted(groups.get(name, {})))
        if name in live:
            ordered.append(folder / name)
    return ordered


def not_logs(folder: Path) -> list[str]:
    """The files of a folder that :func:`folder_files` leaves out (no log suffix), by name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [
        e.name
        for e in entries
        if e.name[:1] != "."
        and e.is_file()
        and backup_key(e.name) is None
        and Path(e.name).suffix not in _LOG_SUFFIXES
    ]


def tree_files(folder: Path) -> list[Path]:
    """The log files of a folder and of its subfolders (hidden ones left out), folder by
    folder in name order."""
    return [f for sub in tree_folders(folder) for f in folder_files(sub)]


def tree_folders(folder: Path) -> list[Path]:
    """A folder and its subfolders, hidden ones left out, depth first in name order."""
    try:
        subs = sorted(e.path for e in os.scandir(folder) if e.is_dir() and e.name[:1] != ".")
    except OSError as exc:
        raise InputError(explain(str(folder), exc)) from None
    return [folder, *(f for sub in subs for f in tree_folders(Path(sub)))]


def is_must_gather(folder: Path) -> bool:
    """An ``oc adm must-gather`` audit collection: ``audit_logs/<component>/<node>-<file>.gz``
    with ``<component>.audit_logs_listing`` files, at the folder or one level below."""
    for base in (folder, *(p for p in folder.glob("*") if p.is_dir())):
        logs = base / "audit_logs" if base.name != "audit_logs" else base
        if logs.is_dir() and any(logs.glob("*.audit_logs_listing")):
            return True
    return False


def expand_paths(paths: list[str], recursive: bool = False) -> list[str]:
    """Paths as given (``-`` for stdin, folders expanded: with subfolders when ``recursive``
    or when the folder is a must-gather); raises InputError."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            raise InputError(explain(p, exc)) from None
        if stat.S_ISDIR(st.st_mode):
            if not os.access(p, os.R_OK | os.X_OK):
                raise InputError(explain(p, PermissionError()))
            folder = Path(p)
            deep = recursive or is_must_gather(folder)
            out.extend(str(f) for f in (tree_files if deep else folder_files)(folder))
        else:
            if not os.access(p, os.R_OK):
                raise InputError(explain(p, PermissionError()))
            out.append(p)
    return out


class Spool:
    """A private temporary folder for decompressed and piped input (``audittui-spool-…``, see
    :mod:`.scratch`); removed at exit, or by the next start should this process be killed."""

    def __init__(self) -> None:
        self._dir: str | None = None

    @property
    def folder(self) -> str:
        """The folder, made on first use."""
        if self._dir is None:
            self._dir = scratch.make("spool")
            atexit.register(self.close)
        return self._dir

    def new_file(self, hint: str) -> tuple[str, BinaryIO]:
        prefix = re.sub(r"[^\w.-]", "_", hint)[-40:] + "-"
        fd, name = tempfile.mkstemp(dir=self.folder, prefix=prefix)
        return name, os.fdopen(fd, "wb")

    def close(self) -> None:
        if self._dir is not None:
            scratch.remove(self._dir)
            self._dir = None


def open_source(sid: int, path: str, spool: Spool) -> Source:
    """Make ``path`` readable by offset: plain files as they are, gzip and stdin spooled."""
    try:
        if path == "-":
            return spool_stream(sid, "-", sys.stdin.buffer, spool)
        with open(path, "rb") as fh:
            if fh.read(2) != GZIP_MAGIC:
                return Source(sid, path, path)
            fh.seek(0)
            return spool_stream(sid, path, fh, spool)
    except OSError as exc:
        raise InputError(explain(path, exc)) from None


def spool_stream(sid: int, path: str, stream: BinaryIO, spool: Spool) -> Source:
    """Copy ``stream`` into the spool, gunzipping it when it starts with the gzip magic, within
    the bounds of :mod:`.inflate` (a bound reached keeps what came before, and says so)."""
    name, out = spool.new_file("stdin" if path == "-" else os.path.basename(path))
    bounds = inflate.Bounds.for_folder(spool.folder)
    with out:
        first = stream.read(inflate.READ_BLOCK)
        gz = first.startswith(GZIP_MAGIC)
        result = (inflate.gunzip if gz else inflate.copy)(first, stream, out.write, bounds)
    return Source(sid, path, name, compressed=gz, note=result.note, bound=result.bound or "")


def split_live(paths: list[str]) -> list[str]:
    """The files to follow. For a folder: its live logs, including those that its backups name
    (the live file may be missing for a moment during a rotation), else ``audit.log``."""
    live: list[str] = []
    for p in paths:
        if not os.path.isdir(p):
            live.append(p)  # a missing file is waited for
            continue
        names = set()
        for f in folder_files(Path(p)):
            key = backup_key(f.name)
            names.add(key[0] if key else f.name)
        live.extend(os.path.join(p, name) for name in sorted(names or {"audit.log"}))
    return live
