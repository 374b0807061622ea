"""``audittui ship``: logs into the store, exactly once across restarts.

Live logs are followed by the follower (:class:`~audittui.ingest.follow.FileFollower`:
rotation, truncation, backups first); gzip files and whole documents are read once by the
loader. Each record becomes rows as the loader reads it (:mod:`.rows`); rows go in batches
(JSONEachRow) and only once the store has acknowledged a batch is the checkpoint advanced
(:mod:`.checkpoint`). A batch the store did not take is kept and retried with backoff (0.2 s
doubling to 10 s) while nothing more is read: the follower waits, which is the backpressure.

Exactly once: a restart resumes every file from its checkpoint (a backup already shipped is
skipped, the live file resumes at its offset, a file truncated or replaced starts anew). The
one gap, a crash after the store took a batch and before the checkpoint said so, is closed by
writing the batch's time range first (``pending``): the next start, and every retry, asks the
store which of those rows it already holds and sends only the others. The table's
deduplication on its key is the safety net, not the mechanism: a plain ``count()`` is exact.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..ingest import inflate
from ..ingest.bounds import LINE_MAX
from ..ingest.follow import POLL_BUDGET, TAIL, Chunk, FileFollower, Segment, watch_wakeups
from ..ingest.sources import (
    GZIP_MAGIC,
    InputError,
    expand_paths,
    explain,
    split_live,
    tree_folders,
)
from . import checkpoint
from .checkpoint import HEAD, Pending, Record, State
from .client import Client, StoreError
from .rows import Key, Rows, from_lines, from_whole_file

READ_BLOCK = 1 << 20
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 10.0
MALFORMED_LISTED = 20  # malformed lines listed one by one on stderr; the rest are counted


class ShipError(Exception):
    """Shipping cannot go on (or start): a one-line message, exit 2."""


class Stopped(Exception):
    """Asked to stop while a batch waited for the store: it stays pending, nothing is lost."""


@dataclass
class Options:
    paths: list[str]
    cluster: str = ""
    once: bool = False
    state_dir: str = ""
    batch: int = 20_000
    backups: bool = False  # also ship the backups of a live file named alone (folders: always)
    poll: bool = False
    heartbeat_ms: int = 1000
    recursive: bool = False  # subfolders too (a must-gather is recognised by itself)


@dataclass
class Totals:
    events: int = 0  # rows inserted
    skipped: int = 0  # rows the store already held (a crash after an insert)
    malformed: int = 0
    files: int = 0
    read: int = 0  # events found (shipped or skipped), for "nothing read"
    resumed: int = 0  # files that had been read before (their checkpoint)


@dataclass
class _Advance:
    record: Record
    offset: int
    line: int
    done: bool = False


class _Resuming(FileFollower):
    """A follower that, opening its file for the first time, starts where the checkpoint
    says it was read to, when the file there is the one recorded (same inode and first
    bytes, at least as long)."""

    state: State | None = None
    resumed: Record | None = None

    def _open(self, initial: bool) -> bool:
        if not super()._open(initial):
            return False
        if initial and self.state is not None and self._fd is not None:
            st = os.fstat(self._fd)
            head = os.pread(self._fd, HEAD, 0)
            rec = self.state.find(st.st_dev, st.st_ino, head)
            if rec is not None and not rec.whole and rec.offset <= st.st_size:
                self._offset = rec.offset
                keep = min(TAIL, rec.offset)
                # the last bytes taken: how the follower tells a file truncated and refilled
                self._tail = os.pread(self._fd, keep, rec.offset - keep)
                self.resumed = rec
        return True


@dataclass
class _Source:
    """A live path being followed, and the records of the segments it read."""

    follower: _Resuming
    from_folder: bool
    records: dict[Segment, Record] = field(default_factory=dict)
    fds: dict[Segment, int] = field(default_factory=dict)
    lines: dict[Segment, int] = field(default_factory=dict)  # the next line's number
    pos: dict[Segment, int] = field(default_factory=dict)  # bytes read (queued or stored)
    last: Segment | None = None


class Shipper:
    """Ships ``options.paths`` through ``client``; ``say`` prints one line on stderr."""

    def __init__(self, client: Client, options: Options, say: Callable[[str], None]) -> None:
        self.client = client
        self.options = options
        self.say = say
        self.totals = Totals()
        self.state = State()
        self.present: Counter[Key] = Counter()  # rows the store holds from a pending batch
        self.down = False
        self._listed = 0
        self._lock_fd: int | None = None
        self._rows = Rows()
        self._advances: list[_Advance] = []
        # the INSERT under way in a thread: (thread, its advances, its rows, its failure)
        self._inflight: tuple[threading.Thread, list[_Advance], int, list[BaseException]] | None
        self._inflight = None

    # -- the state ---------------------------------------------------------------------------

    def open_state(self) -> None:
        folder = self.options.state_dir
        try:
            os.makedirs(folder, exist_ok=True)
            self._lock_fd = os.open(os.path.join(folder, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ShipError(explain(folder, exc)) from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ShipError(f"{folder}: another `audittui ship` uses this state") from None
        try:
            self.state = checkpoint.load(folder)
        except ValueError as exc:
            raise ShipError(str(exc)) from None
        pending = self.state.pending
        if pending is not None:
            # A crash came between an insert and its checkpoint: which of it did the store take?
            for source, offset in zip(pending.sources, pending.offsets, strict=True):
                where = (source, offset)
                self.present += self._held(pending.tmin, pending.tmax, pending.rows, source=where)
            if self.present:
                self.say(
                    f"resuming: the store already holds {sum(self.present.values()):,} events "
                    "of the batch under way at the last stop; they are not sent again"
                )

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _save(self) -> None:
        try:
            checkpoint.save(self.options.state_dir, self.state)
        except OSError as exc:
            reason = explain(self.options.state_dir, exc)
            raise ShipError(f"cannot write the checkpoint: {reason}") from None

    def _held(
        self,
        tmin: int,
        tmax: int,
        rows: int,
        source: tuple[str, int] | None = None,
        ids: tuple[list[str], list[str]] | None = None,
    ) -> Counter[Key]:
        """The keys the store holds in a time range: of a source from an offset on, or of
        some sources and auditIDs, for a batch of ``rows`` (a store answering many more is
        refused)."""
        where = "`time` >= {a:Int64} AND `time` <= {b:Int64}"
        params: dict[str, object] = {"a": tmin, "b": tmax}
        if source is not None:
            where += " AND `source` = {s:String} AND `offset` >= {o:UInt64}"
            params["s"], params["o"] = source
        if ids is not None:  # (sources, auditIDs)
            where += " AND `source` IN {f:Array(String)} AND `audit_id` IN {i:Array(String)}"
            params["f"], params["i"] = sorted(set(ids[0])), sorted(set(ids[1]))
        sql = (
            "SELECT `time`, `audit_id`, `stage`, `stage_time`, `digest`"
            f" FROM {self.client.table} WHERE {where}"
        )
        try:
            return Counter(
                (int(r["time"]), str(r["audit_id"]), str(r["stage"]), int(r["stage_time"]),
                 str(r["digest"]))
                for r in self.client.rows(sql, params, limit=max(4 * rows, 100_000))
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:  # not the rows asked for
            display = self.client.target.display
            raise StoreError(f"{display} answered rows without a key: {exc!r:.80}") from None

    # -- sending -----------------------------------------------------------------------------

    def _take(self, rows: Rows, advances: list[_Advance]) -> None:
        """Queue rows (and how far their files are read once they are stored)."""
        self.totals.read += len(rows)
        self.totals.malformed += rows.bad
        for path, number, reason in rows.malformed:
            if self._listed < MALFORMED_LISTED:
                self.say(f"{path}:{number}: malformed, not shipped: {reason}")
            self._listed += 1
        if self.present:
            kept = Rows()
            for line, key in zip(rows.lines, rows.keys, strict=True):
                if self.present[key] > 0:
                    self.present[key] -= 1
                    self.totals.skipped += 1
                else:
                    kept.add(line, key)
            rows = kept
        self._rows.extend(Rows(rows.lines, rows.keys, tmin=rows.tmin, tmax=rows.tmax))
        self._advances.extend(advances)

    def flush(self, stop: threading.Event, wait: bool = True) -> None:
        """Send what is queued; returns once the store took it and the checkpoint says so.
        With ``wait`` False (a full batch while there is more to read), the INSERT runs in a
        thread while the next batch is read and encoded; it is finished (acknowledged, then
        checkpointed) before the next one is sent, so one batch at most is ever pending."""
        self._finish(stop)
        rows, advances = self._rows, self._advances
        if not rows and not advances:
            return
        self._rows, self._advances = Rows(), []
        if not rows:
            self._apply(advances, 0)
            return
        starts: dict[str, int] = {}
        for a in advances:
            start = 0 if a.record.whole else a.record.offset
            starts[a.record.path] = min(start, starts.get(a.record.path, start))
        self.state.pending = Pending(
            rows.tmin, rows.tmax, list(starts), list(starts.values()), len(rows)
        )
        self._save()
        if wait:
            self._insert(rows, list(starts), stop)
            self._apply(advances, len(rows))
            return
        failed: list[BaseException] = []

        def insert() -> None:
            try:
                self._insert(rows, list(starts), stop)
            except BaseException as exc:  # raised in the main thread by _finish
                failed.append(exc)

        # a daemon: a process ended meanwhile leaves the batch pending, found at the restart
        thread = threading.Thread(target=insert, name="ship-insert", daemon=True)
        thread.start()
        self._inflight = (thread, advances, len(rows), failed)

    def _finish(self, stop: threading.Event) -> None:
        """Wait for the INSERT under way (if any), then checkpoint it."""
        if self._inflight is None:
            return
        thread, advances, n, failed = self._inflight
        while thread.is_alive():
            thread.join(0.5)  # in steps: a signal still reaches the main thread
        self._inflight = None
        if failed:
            raise failed[0]
        self._apply(advances, n)

    def _apply(self, advances: list[_Advance], n: int) -> None:
        """The store took a batch: the files are read that far (the checkpoint says so)."""
        for a in advances:
            if a.record not in self.state.records:
                self.state.records.append(a.record)
            a.record.offset, a.record.line = a.offset, a.line
            a.record.done = a.record.done or a.done
        self.state.pending = None
        self._save()
        self.totals.events += n

    def _insert(self, rows: Rows, sources: list[str], stop: threading.Event) -> None:
        delay = BACKOFF_FIRST
        retry = False
        while True:
            try:
                if retry:
                    # The failed attempt may have been stored in part (one part per month).
                    ids = (sources, [k[1] for k in rows.keys])
                    held = self._held(rows.tmin, rows.tmax, len(rows), ids=ids)
                    if held:
                        rows = _without(rows, held)
                self.client.insert(rows.body())
                break
            except StoreError as exc:
                if not exc.retryable:
                    raise ShipError(str(exc)) from None
                if not self.down:
                    self.down = True
                    self.say(f"{exc}; keeping {len(rows):,} events, retrying")
                if stop.wait(delay):
                    raise Stopped from None
                delay = min(delay * 2, BACKOFF_MAX)
                retry = True
        if self.down:
            self.down = False
            self.say(f"ClickHouse at {self.client.target.display} is back; shipping")

    def _maybe_flush(self, stop: threading.Event) -> None:
        if len(self._rows) >= self.options.batch:
            self.flush(stop, wait=False)

    # -- reading files whole (backups, --once) -----------------------------------------------

    def ship_file(self, path: str, stop: threading.Event, whole: bool | None = None) -> None:
        """Ship a file as it is now, from where its checkpoint says it was read to."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            if os.path.exists(path + ".gz"):  # gzipped and removed by the mill meanwhile
                self.ship_file(path + ".gz", stop, whole)
                return
            raise InputError(f"{path}: vanished before it was read") from None
        except OSError as exc:
            raise InputError(explain(path, exc)) from None
        try:
            st = os.fstat(fd)
            gz = os.pread(fd, 2, 0) == GZIP_MAGIC
            head = checkpoint.head_of(f"/proc/self/fd/{fd}") or b""
            if whole is None:
                whole = gz or _is_document(fd)
            rec = self.state.find(st.st_dev, st.st_ino, head)
            if rec is not None and (rec.done or rec.whole != whole):
                # read to its end before (or read the other way, and a restart would double)
                self.totals.resumed += 1
                return
            if rec is None:
                rec = Record(path, st.st_dev, st.st_ino, checkpoint.encode_head(head), whole=whole)
            else:
                self.totals.resumed += 1
                rec.path = path
            self.totals.files += 1
            if whole:
                self._ship_whole(path, rec, stop)
            else:
                self._ship_lines(path, fd, gz, rec, stop)
        finally:
            os.close(fd)

    def _ship_whole(self, path: str, rec: Record, stop: threading.Event) -> None:
        for taken, total, rows in from_whole_file(path, self.options.cluster, rec.offset):
            self._take(rows, [_Advance(rec, taken, rec.line, done=taken == total)])
            self._maybe_flush(stop)

    def _ship_lines(self, path: str, fd: int, gz: bool, rec: Record, stop: threading.Event) -> None:
        offset, line = rec.offset, rec.line
        with _reader(fd, gz) as fh:
            _skip(fh, offset, gz)
            held = bytearray()  # read, not yet shipped (appended to: linear however long)
            long = 0  # bytes passed over of a line longer than LINE_MAX (never held)
            while True:
                block = fh.read(READ_BLOCK if long else min(READ_BLOCK, LINE_MAX + 1 - len(held)))
                final = not block
                if long:
                    nl = block.find(b"\n")
                    if nl < 0 and not final:
                        long += len(block)
                        continue
                    long += nl if nl >= 0 else len(block)
                    self.say(
                        f"{path}: line {line}: a line of {long:,} bytes, over the "
                        f"{LINE_MAX:,}-byte bound (AUDITTUI_LINE_MAX): not shipped"
                    )
                    offset, line, long = offset + long + (nl >= 0), line + 1, 0
                    block = block[nl + 1 :] if nl >= 0 else b""
                held += block
                if not held:
                    if final:
                        break
                    continue  # (the block ended with the long line passed over)
                cut = len(held) if final else held.rfind(b"\n") + 1
                if not cut and len(held) > LINE_MAX:
                    long = len(held)  # passed over from here to its newline
                    held.clear()
                    continue
                rows, used, lines = from_lines(
                    bytes(held[:cut]), offset, line, path, self.options.cluster, final
                )
                offset, line = offset + used, line + lines
                del held[:used]
                # a .gz is done once read to its end, not at its first block: a stop in
                # between would else leave the rest of it unread for good
                self._take(rows, [_Advance(rec, offset, line, done=gz and final)])
                self._maybe_flush(stop)
                if final:
                    break
            if isinstance(fh, inflate.Inflater) and fh.bound is not None:
                self.say(f"{path}: {fh.bound}")
        if gz:
            self._take(Rows(), [_Advance(rec, offset, line, done=True)])
        if held:
            self.say(f"{path}: {len(held):,} bytes at the end without a newline, left for later")

    # -- following ---------------------------------------------------------------------------

    def follow(self, stop: threading.Event) -> None:
        """Follow the paths until ``stop``: backups first, then the live files."""
        opts = self.options
        given = opts.paths
        if opts.recursive:
            given = [
                str(f) for p in given for f in (tree_folders(Path(p)) if os.path.isdir(p) else [p])
            ]
        paths = [p for p in given if _followable(p)]
        once = [p for p in given if p not in paths]
        sources: list[_Source] = []
        for p in paths:
            for live in split_live([p]):
                f = _Resuming(live)
                f.state = self.state
                src = _Source(f, os.path.isdir(p) or opts.backups)
                f.on_segment = self._on_segment(src)
                sources.append(src)
        first = [(src, src.follower.poll(POLL_BUDGET)) for src in sources]  # opens the files
        for src in sources:
            for backup in self._backups(src):
                self.ship_file(backup, stop, whole=False)
        for path in expand_paths(once) if once else ():
            self.ship_file(path, stop)
        for src, chunks in first:
            self._chunks(src, chunks, stop)
        self.flush(stop)
        behind = True
        while behind and not stop.is_set():
            behind = self._round(sources, stop)
        for _ in watch_wakeups(
            [s.follower.path for s in sources], stop, opts.heartbeat_ms, poll=opts.poll
        ):
            behind = True
            while behind and not stop.is_set():
                behind = self._round(sources, stop)
        for src in sources:
            src.follower.close()
            for fd in src.fds.values():
                os.close(fd)

    def _round(self, sources: list[_Source], stop: threading.Event) -> bool:
        behind = False
        for src in sources:
            self._chunks(src, src.follower.poll(POLL_BUDGET), stop)
            behind |= src.follower.behind
        self.flush(stop)
        return behind

    def _on_segment(self, src: _Source) -> Callable[[Segment, int], None]:
        def seen(segment: Segment, fd: int) -> None:
            head = os.pread(fd, HEAD, 0)
            resumed = src.follower.resumed
            if resumed is not None and (resumed.dev, resumed.ino) == (segment.dev, segment.ino):
                rec = resumed
                rec.path = segment.path
                src.follower.resumed = None
                self.totals.resumed += 1
            else:
                rec = Record(segment.path, segment.dev, segment.ino, checkpoint.encode_head(head))
                # a file truncated in place: its old record is of bytes that are gone
                self.state.records = [
                    r for r in self.state.records if (r.dev, r.ino) != (segment.dev, segment.ino)
                ]
            src.records[segment] = rec
            src.fds[segment] = os.dup(fd)
            src.lines[segment] = rec.line
            src.pos[segment] = rec.offset
            self.totals.files += 1

        return seen

    def _chunks(self, src: _Source, chunks: list[Chunk], stop: threading.Event) -> None:
        for n in src.follower.notices:
            if n.kind not in ("opened",):
                self.say(f"{n.path}: {n.kind}" + (f": {n.detail}" if n.detail else ""))
        src.follower.notices.clear()
        for chunk in chunks:
            seg = chunk.segment
            if src.last is not None and src.last != seg:
                self._finished(src, src.last, seg)
            src.last = seg
            rec = src.records[seg]
            rows, used, lines = from_lines(
                chunk.data, chunk.offset, src.lines[seg], seg.path, self.options.cluster, False
            )
            src.lines[seg] += lines
            src.pos[seg] = chunk.offset + used
            if len(rec.head_bytes) < HEAD:  # a young file: its head is still growing
                rec.head = checkpoint.encode_head(os.pread(src.fds[seg], HEAD, 0))
            self._take(rows, [_Advance(rec, src.pos[seg], src.lines[seg])])
            self._maybe_flush(stop)

    def _finished(self, src: _Source, seg: Segment, now: Segment) -> None:
        """The follower left a segment for another: rotated away (read to its end: done),
        or truncated in place (its bytes are gone; its record was replaced)."""
        rec = src.records.pop(seg)
        if (seg.dev, seg.ino) != (now.dev, now.ino):
            self._advances.append(_Advance(rec, src.pos[seg], src.lines[seg], done=True))
        os.close(src.fds.pop(seg))
        src.lines.pop(seg, None)
        src.pos.pop(seg, None)

    def _backups(self, src: _Source) -> list[str]:
        """The backups of a live file to ship before it: all of them for a folder (or
        --backups); else only those rotated away since the checkpoint's file was followed."""
        f = src.follower
        listed = [
            path for ts, gz, path in f.backups() if ts in f.looked and not f.was_read(path, gz)
        ]  # oldest first
        if src.from_folder:
            return listed
        for k, path in enumerate(listed):
            head = checkpoint.head_of(path)
            if head is None:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if self.state.find(st.st_dev, st.st_ino, head) is not None:
                return listed[k:]
        return []

    def run(self, stop: threading.Event) -> Totals:
        """Ship: with ``once``, what is there now (files as ``stats`` reads them), then
        return; else follow until ``stop``."""
        try:
            if self.options.once:
                for path in expand_paths(self.options.paths, self.options.recursive):
                    if stop.is_set():
                        break
                    self.ship_file(path, stop)
                self.flush(stop)
            else:
                self.follow(stop)
                self.flush(stop)
        except Stopped:
            pass
        return self.totals


def _without(rows: Rows, held: Counter[Key]) -> Rows:
    kept = Rows(tmin=rows.tmin, tmax=rows.tmax)
    left = Counter(held)
    for line, key in zip(rows.lines, rows.keys, strict=True):
        if left[key] > 0:
            left[key] -= 1
        else:
            kept.add(line, key)
    return kept


def _followable(path: str) -> bool:
    """A folder or a file of lines (a .gz never grows; a document is read whole)."""
    if os.path.isdir(path):
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # missing: waited for, as the follower does
    try:
        return os.pread(fd, 2, 0) != GZIP_MAGIC and not _is_document(fd)
    finally:
        os.close(fd)


def _is_document(fd: int) -> bool:
    from ..index.loader import is_document

    with open(f"/proc/self/fd/{fd}", "rb") as fh:
        head = fh.read(1 << 16)
        return is_document(fh, head, os.fstat(fh.fileno()).st_size)


class _reader:
    """The bytes of a file by its descriptor, decompressed for gzip within the shared bounds
    (:mod:`audittui.ingest.inflate`: a bomb stops at its cap; a context manager)."""

    def __init__(self, fd: int, gz: bool) -> None:
        raw = open(f"/proc/self/fd/{fd}", "rb")  # noqa: SIM115 - closed in __exit__
        self._raw = raw
        bounds = inflate.Bounds.for_folder(tempfile.gettempdir())  # (nothing is written)
        self.fh: BinaryIO | inflate.Inflater = inflate.Inflater(b"", raw, bounds) if gz else raw

    def __enter__(self) -> BinaryIO | inflate.Inflater:
        return self.fh

    def __exit__(self, *_: object) -> None:
        self._raw.close()


def _skip(fh: BinaryIO | inflate.Inflater, offset: int, gz: bool) -> None:
    if not isinstance(fh, inflate.Inflater):
        fh.seek(offset)
        return
    left = offset
    while left > 0:
        block = fh.read(min(left, READ_BLOCK))
        if not block:
            break
        left -= len(block)
