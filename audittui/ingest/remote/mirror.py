"""One remote path mirrored, byte for byte, into a private local folder that the loader and
the follower then read as they read a local one.

The remote script (``script.sh``) lists the folder and sends each file from the offset it has
sent before. Here each remote file (by inode) has a local file holding the bytes received as
they come (a last line without its newline too: the follower waits for it, as on a local file
being written; nothing received is held in memory). A file new on the host is staged out of
sight and shown in the folder only once whole (a backup) or at the end of its first round (a
live file), so the local follower never reads a file still being filled. A rotation on the host
(the live name's inode changes) is replayed locally as lumberjack does it, once the old file's
last bytes are here: its local file is linked to the backup's name and the new live file
renamed over the live name. When the old file was compressed and deleted on the host before its
end was read, its ``.gz`` is fetched and decompressed here, and what it holds past the local
copy is appended (or, for a .gz listed only after the wait for it ended, shown as a backup of
its own). A truncation restarts the file at 0, as ``copytruncate`` does. A reconnection resumes
from each file's last byte received.

Files are known by inode number, and a number is reused as soon as its file is deleted (a
backup gzipped, on a log rotating fast): a file gone from a listing is forgotten, a number
listed under a name its file cannot have taken (anything but live → plain backup) is a new
file, and the script compares each plain file's first bytes with those it had (an ``N``
frame when they differ).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .. import inflate
from ..sources import backup_key, backup_name
from .protocol import ProtocolError, file_name

TS_SUFFIX = ".gz"
GONE_ROUNDS = 25  # rounds (0.2 s or more each) a live file gone from the host waits for its
# .gz before it rotates as it is: only a file removed with no copy of it waits that long. A .gz
# listed later still completes it (ORPHANS), but out of order: the wait keeps that rare
ORPHANS = 8  # such files per live name whose .gz, listed later still, completes them
MAX_NOTES = 100  # notes kept for the user (a hostile host could make them endless)


@dataclass
class RemoteFile:
    """A file on the host (by inode) and its local copy."""

    ino: int
    name: str  # its name on the host at the last listing
    size: int  # its size then
    path: str  # the local file (staged or in the folder)
    shown: bool = False  # in the mirror folder (else staged)
    have: int = 0  # bytes in the local file
    gz: bool = False
    whole: bool = False  # everything the host had is local (a backup read to its end)
    skipped: bool = False  # left out (a backup present at the start, backups not wanted)
    absorbed: bool = False  # a .gz whose content completed an older local file
    fd: int | None = None


@dataclass
class Pending:
    """A live file replaced on the host, waiting for its last bytes before it rotates here."""

    file: RemoteFile
    live: str  # the live name it had
    backup: str | None  # its backup name on the host, when seen (else: compressed and gone)
    seen: str | None = None  # the plain backup name it was last listed under
    waited: int = 0  # rounds ended with neither it nor its .gz listed


@dataclass
class MirrorState:
    """What the mirror keeps across reconnections."""

    files: dict[int, RemoteFile] = field(default_factory=dict)
    live: dict[str, int] = field(default_factory=dict)  # live name → inode shown under it
    pending: dict[str, Pending] = field(default_factory=dict)
    listing: dict[int, tuple[int, str]] = field(default_factory=dict)  # ino → (size, name)
    # live name → live files rotated here with no copy of their end found (local path, bytes
    # held), newest last: a .gz listed later still completes them
    orphans: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class Mirror:
    """Applies the script's frames to the local folder."""

    def __init__(self, folder: str, staging: str, skip_backups: bool = False) -> None:
        self.folder = folder
        self.staging = staging
        self.skip_backups = skip_backups
        self.state = MirrorState()
        self.rounds = 0
        self.notes: list[str] = []  # what a user should know (lost data, files not read)
        self.denied: set[str] = set()  # files the host refused to read
        self.unread: set[str] = set()  # files not read: their names cannot be framed
        self.on_round: Callable[[], None] | None = None
        self._made = 0  # staged files made: each its own name, whatever inode numbers recur

    # -- what the next connection is told -------------------------------------------------

    def resume(self) -> tuple[dict[int, int], list[str]]:
        """Offsets to resume from, per inode, and the plain backups already whole. What was
        received of a .gz is dropped: it is sent again whole."""
        offsets: dict[int, int] = {}
        done: list[str] = []
        for f in self.state.files.values():
            if f.skipped:
                offsets[f.ino] = max(f.size, 1)
            elif f.gz:
                if f.whole:
                    offsets[f.ino] = max(f.size, 1)
                else:
                    self._reset(f)
            else:
                offsets[f.ino] = f.have
                if f.whole and backup_key(f.name) is not None:
                    done.append(f.name)
        return offsets, done

    def _reset(self, f: RemoteFile) -> None:
        if f.fd is not None:
            os.ftruncate(f.fd, 0)
        f.have = 0

    # -- frames ----------------------------------------------------------------------------

    def listing(self, entries: list[tuple[int, int, str]]) -> None:
        """A new listing: note renames (rotations), the files new on the host, and forget the
        files gone (their inode numbers are soon another file's)."""
        st = self.state
        first = self.rounds == 0 and not st.files
        st.listing = {}
        for ino, size, name in entries:
            if not _safe(name):
                continue
            st.listing[ino] = (size, name)
            f = st.files.get(ino)
            if f is not None and not _same_file(f.name, name):
                self._gone(f)  # deleted, and its inode number reused since the last listing
                f = None
            if f is None:
                self._new(ino, size, name, first)
                continue
            if name != f.name and f.shown and st.live.get(f.name) == ino:
                # the live file renamed on the host: it rotates here once its end is read
                st.pending[f.name] = Pending(f, f.name, name, name)
            elif name != f.name and not f.gz:
                for p in st.pending.values():
                    if p.file is f:
                        p.backup = p.seen = name
            f.name, f.size = name, size
        for ino, f in list(st.files.items()):
            if ino not in st.listing:
                self._gone(f)
        for p in st.pending.values():
            if st.files.get(p.file.ino) is not p.file:
                p.backup = None  # compressed and deleted already?

    def _new(self, ino: int, size: int, name: str, first: bool = False) -> RemoteFile:
        self._made += 1
        staged = os.path.join(self.staging, f"{ino}-{self._made}")
        f = RemoteFile(ino, name, size, staged, gz=name.endswith(TS_SUFFIX))
        f.skipped = first and self.skip_backups and backup_key(name) is not None
        if not f.skipped:
            # O_APPEND: after a truncation (a reset, copytruncate) writes start at 0 again
            # rather than past a hole
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
            f.fd = os.open(f.path, flags, 0o600)
        self.state.files[ino] = f
        return f

    def reused(self, ino: int) -> None:
        """The host says the file under ``ino`` is not the one seen before (its first bytes
        differ): the old one is gone, the new one is read from its start."""
        f = self.state.files.get(ino)
        if f is None:
            return
        self._gone(f)
        self._new(ino, f.size, f.name)
        for p in self.state.pending.values():
            if p.file is f:
                p.backup = None  # compressed and deleted: its .gz completes it

    def _gone(self, f: RemoteFile) -> None:
        """``f`` is no longer on the host: a live file shown here waits for its .gz (or is
        rotated as it is); a staged file is dropped (its content comes in its .gz)."""
        st = self.state
        del st.files[f.ino]
        if f.shown and st.live.get(f.name) == f.ino and f.name not in st.pending:
            st.pending[f.name] = Pending(f, f.name, None)
        if any(p.file is f for p in st.pending.values()):
            return  # its fd stays open: the rotation appends what the .gz holds past it
        self._close(f)
        if not f.shown:
            with contextlib.suppress(OSError):
                os.unlink(f.path)

    def truncated(self, ino: int) -> None:
        f = self.state.files.get(ino)
        if f is None or f.fd is None:
            return
        os.ftruncate(f.fd, 0)
        f.have = 0

    def sink(self, ino: int, offset: int) -> Callable[[bytes], None]:
        """Where the bytes of a D frame go: appended to the file's local copy from where it
        stands (bytes it already has skipped; a gap is a protocol error). Nothing is held."""
        f = self.state.files.get(ino)
        if f is None or f.fd is None or f.skipped:
            return lambda _: None
        if f.gz:
            self._reset(f)
            fd = f.fd

            def write_gz(data: bytes) -> None:
                _write_all(fd, data)
                f.have += len(data)

            return write_gz
        if offset > f.have:
            raise ProtocolError(f"{f.name}: sent from {offset:,}, {f.have:,} bytes held")
        skip = f.have - offset
        fd = f.fd

        def write(data: bytes) -> None:
            nonlocal skip
            if skip:
                n = min(skip, len(data))
                data, skip = data[n:], skip - n
            if data:
                _write_all(fd, data)
                f.have += len(data)

        return write

    def sent(self, ino: int, status: int) -> None:
        """A D frame ended; ``status`` 0: the file was read to its end."""
        f = self.state.files.get(ino)
        if f is None or f.skipped:
            return
        if status != 0:
            if f.gz:
                self._reset(f)
            return
        if f.gz:
            f.whole = True
            self._absorb(f)
        elif backup_key(f.name) is not None and f.have >= f.size:
            f.whole = True

    def refused(self, ino: int, kind: str, name: str) -> None:
        listed = self.state.listing.get(ino)
        if kind == "denied" and listed is not None and listed[1] == name:
            self.denied.add(name)

    def not_read(self, name: str, why: str) -> None:
        """A file the host did not send, because of its name (``name`` as shown)."""
        if name not in self.unread and len(self.unread) < MAX_NOTES:
            self.unread.add(name)
            self.note(f"{name}: {why}")

    def note(self, text: str) -> None:
        """Tell the user ``text`` (once; the first MAX_NOTES notes)."""
        if text not in self.notes and len(self.notes) < MAX_NOTES:
            self.notes.append(text)

    def round_end(self) -> None:
        """The host has sent a round: rotate, show the files now whole, in time order."""
        st = self.state
        for live, p in list(st.pending.items()):
            f = p.file
            if p.backup is not None:
                if f.have < f.size:
                    continue  # its last bytes come in the next round
                self._finish(p, p.backup)
            elif st.files.get(f.ino) is f and st.listing[f.ino][1] == live:
                del st.pending[live]  # back under its name (a listing in between)
            elif f.whole and p.seen is not None:
                self._finish(p, p.seen)  # read to its end as a plain backup, then gzipped
            elif p.waited < GONE_ROUNDS:
                # `ls` reads the names, then stats each: a backup gzipped and removed in
                # between is in neither form in that listing; its .gz is in the next one
                p.waited += 1
            else:
                # Its whole lines stand as a backup; a line cut short is left for the .gz
                # that may still come to complete from the line's start (ORPHANS).
                _to_last_line(f)
                self.note(
                    f"{live}: replaced on the host (truncated, or rotated and removed) with no "
                    f"copy of its end found; the {f.have:,} bytes of whole lines read are kept"
                )
                self._finish(p, self._free_backup(live))
                kept = st.orphans.setdefault(live, [])
                kept.append((f.path, f.have))
                del kept[:-ORPHANS]
        backups = [
            f
            for f in st.files.values()
            if not f.shown and not f.skipped and not f.absorbed and backup_key(f.name)
        ]
        for f in sorted(backups, key=lambda f: (backup_key(f.name) or ("", "", False))[1]):
            if f.gz and f.whole and os.path.lexists(os.path.join(self.folder, f.name[:-3])):
                self._drop(f)  # its plain copy is here, whole
                continue
            if f.whole or (not f.gz and f.have >= f.size and f.ino in st.listing):
                f.whole = True
                self._show(f, f.name)
        for f in list(st.files.values()):
            name = f.name
            if f.shown or f.skipped or backup_key(name) or f.ino not in st.listing:
                continue
            if name in st.pending or name in st.live:
                continue  # the name is taken until the file before it rotates
            self._show(f, name)
            st.live[name] = f.ino
        self.rounds += 1
        if self.on_round is not None:
            self.on_round()

    # -- local file operations -------------------------------------------------------------

    def _finish(self, p: Pending, backup: str) -> None:
        """Rotate a live file here: its copy takes the backup's name and the new file (if the
        host has one) takes the live name in one rename, as lumberjack leaves them."""
        st = self.state
        f = p.file
        del st.pending[p.live]
        target = os.path.join(self.folder, backup)
        if os.path.lexists(target):
            target = os.path.join(self.folder, self._free_backup(p.live))
        successor = next(
            (
                g
                for g in st.files.values()
                if g.name == p.live and not g.shown and g.ino in st.listing and g is not f
            ),
            None,
        )
        live_path = os.path.join(self.folder, p.live)
        if successor is not None:
            os.link(live_path, target)
            os.rename(successor.path, live_path)
            successor.path, successor.shown = live_path, True
            st.live[p.live] = successor.ino
        else:
            os.rename(live_path, target)
            del st.live[p.live]
        f.path, f.whole = target, True
        f.name = os.path.basename(target)
        self._close(f)

    def _absorb(self, gz: RemoteFile) -> None:
        """A .gz just received: if it is the rest of a live file replaced on the host (its
        content starts with the local copy's), append the rest and let the plain copy stand
        for it; else it is a backup shown as it came."""
        key = backup_key(gz.name)
        if key is None:
            return
        p = self.state.pending.get(key[0])
        if p is None or p.backup is not None:
            self._complete_orphan(gz, key[0])
            return
        assert p.file.fd is not None
        rest = _after_prefix(gz.path, p.file.path, p.file.have, p.file.fd)
        if rest is None:
            os.ftruncate(p.file.fd, p.file.have)  # (a damaged .gz may have written some)
            return
        if rest.bound is not None:
            self.note(f"{gz.name}: {rest.bound}")
        p.file.have += rest.size
        self._drop(gz)
        p.backup = gz.name[: -len(TS_SUFFIX)]
        p.file.size = p.file.have  # the rest was appended: it is whole

    def _complete_orphan(self, gz: RemoteFile, live: str) -> None:
        """A .gz listed after its live file was rotated here as it was (waiting for it took
        too long): what it holds past the local copy is shown as a backup of its own, newer
        than any, so the follower reads it (it has read the copy); the .gz is not shown."""
        orphans = self.state.orphans.get(live, [])
        for k, (path, held) in enumerate(orphans):
            self._made += 1
            staged = os.path.join(self.staging, f"rest-{self._made}")
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                rest = _after_prefix(gz.path, path, held, fd)
            finally:
                os.close(fd)
            if rest is None:
                os.unlink(staged)
                continue
            del orphans[k]
            self._drop(gz)
            if rest.bound is not None:
                self.note(f"{gz.name}: {rest.bound}")
            if rest.size:
                name = self._free_backup(live)
                os.rename(staged, os.path.join(self.folder, name))
                self.note(
                    f"{live}: the end of a file replaced on the host came late, in {gz.name}; "
                    f"its {rest.size:,} bytes past the copy are read as {name}"
                )
            else:
                os.unlink(staged)
            return

    def _show(self, f: RemoteFile, name: str) -> None:
        target = os.path.join(self.folder, name)
        if os.path.lexists(target):
            return  # already here (read whole as a plain backup before)
        os.rename(f.path, target)
        f.path, f.shown = target, True
        if f.whole:
            self._close(f)

    def _drop(self, f: RemoteFile) -> None:
        self._close(f)
        f.absorbed = True
        with contextlib.suppress(OSError):
            os.unlink(f.path)

    def _close(self, f: RemoteFile) -> None:
        if f.fd is not None:
            os.close(f.fd)
            f.fd = None

    def _free_backup(self, live: str) -> str:
        """A backup name for ``live`` not taken yet (now, or a millisecond later)."""
        import time

        us = time.time_ns() // 1000
        while True:
            name = backup_name(live, us)
            if not os.path.lexists(os.path.join(self.folder, name)):
                return name
            us += 1000

    def close(self) -> None:
        for f in [*self.state.files.values(), *(p.file for p in self.state.pending.values())]:
            self._close(f)


def _after_prefix(gz_path: str, held_path: str, held: int, out: int) -> Rest | None:
    """Decompress ``gz_path`` within the shared bounds (:mod:`audittui.ingest.inflate`: a
    bomb stops at its cap, the bytes before it kept): if it starts with the first ``held``
    bytes of ``held_path``, write the rest to ``out`` and say how many bytes that was (and
    the bound that stopped it, if one did); None if it is another file (or damaged)."""
    compared = appended = 0

    def write(data: bytes) -> None:
        nonlocal compared, appended
        if compared < held:
            n = min(len(data), held - compared)
            if data[:n] != mine.read(n):
                raise _Unlike
            compared += n
            data = data[n:]
        if data:
            _write_all(out, data)
            appended += len(data)

    try:
        with open(held_path, "rb") as mine, open(gz_path, "rb") as src:
            bounds = inflate.Bounds.for_folder(os.path.dirname(held_path) or ".")
            result = inflate.gunzip(b"", src, write, bounds)
    except (OSError, _Unlike):
        return None
    if result.damaged:
        return None
    if compared < held:
        return None  # shorter than what is held: not this file
    return Rest(appended, result.bound)


class Rest(NamedTuple):
    """What a .gz held past the local copy: its size, and the bound that cut it short."""

    size: int
    bound: str | None


class _Unlike(Exception):
    """The .gz does not begin with the bytes held: another file."""


def _to_last_line(f: RemoteFile) -> None:
    """Cut ``f``'s local copy after its last newline (a line whose end never came)."""
    if f.fd is None or not f.have:
        return
    at = f.have
    with open(f.path, "rb") as copy:  # (f.fd is open for writing only)
        while at > 0:
            start = max(0, at - (1 << 16))
            copy.seek(start)
            nl = copy.read(at - start).rfind(b"\n")
            if nl >= 0:
                at = start + nl + 1
                break
            at = start
    if at != f.have:
        os.ftruncate(f.fd, at)
        f.have = at


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _same_file(old: str, new: str) -> bool:
    """Can a file named ``old`` at the last listing be the one named ``new`` now? Only a live
    file renamed to a plain backup (lumberjack writes each .gz anew): any other change of
    name under one inode number is a new file that reused it."""
    if old == new:
        return True
    return backup_key(old) is None and not new.endswith(TS_SUFFIX) and backup_key(new) is not None


def _safe(text: str) -> bool:
    """A plain file name (the host's listing names local files: nothing may climb out)."""
    try:
        return file_name(text) == text
    except ProtocolError:
        return False
