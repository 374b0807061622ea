"""Read whole files into a :class:`~audittui.index.store.Store`, using every core for big ones.

A file of JSON lines is cut at line breaks into slices of a few tens of MB; worker processes
parse slices into batches (numpy columns and small string tables, cheap to send back) while the
parent merges them in order. A file that is one JSON document (a pretty-printed event, an
EventList, an array, an Event Hubs batch; with or without a byte-order mark) is parsed whole.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from ..ingest import deep
from ..ingest.batch import Batch, BatchBuilder
from ..ingest.bounds import LINE_MAX
from ..ingest.formats import yaml_documents
from ..ingest.malformed import without_position
from ..ingest.remote.labels import relabel
from ..ingest.sources import (
    GZIP_MAGIC,
    InputError,
    Source,
    expand_paths,
    explain,
    not_logs,
    open_source,
)
from ..ingest.wrappers import ends_mid_value, salvage_cut
from . import memory
from .store import Malformed, Store
from .workers import pool as worker_pool

BOM = b"\xef\xbb\xbf"
SLICE = 16 << 20  # bytes per worker task
PARALLEL_MIN = 24 << 20  # below this, parsing in-process beats starting workers
DOCUMENT_MAX = 1 << 30  # a whole-file JSON document larger than this is read as lines
READ_BLOCK = 1 << 19  # bytes per read inside a slice: small enough to stay in cache


def load(*paths: str | os.PathLike, workers: int | None = None, recursive: bool = False) -> Store:
    """Read every event of ``paths`` (files, folders with backups, ``-`` for stdin; with
    ``recursive``, subfolders too, as for a must-gather, which is recognised by itself).

    Raises :class:`~audittui.ingest.sources.InputError` for a path that cannot be read.
    """
    store = Store()
    files = expand_paths([os.fspath(p) for p in paths], recursive)
    for path in files:
        store.add_source(relabel(open_source(0, path, store.spool)))
    read_sources(store, store.sources, workers)
    store.order()  # every query answers in time order: sort once, now
    memory.release()
    return store


def read_sources(
    store: Store, sources: Iterable[Source], workers: int | None = None, dedupe: bool = False
) -> None:
    """Parse ``sources`` (already added to ``store``) into it, in order; with ``dedupe``,
    identical events are kept once (see :meth:`Store.append`)."""
    sources = list(sources)
    sizes = {s.id: _size(s) for s in sources}
    big = sum(sizes.values()) >= PARALLEL_MIN
    workers = workers if workers is not None else len(os.sched_getaffinity(0))
    pool: Executor | None = None
    if big and workers > 1:
        pool = worker_pool(workers)
    was_enabled = gc.isenabled()
    gc.disable()  # the merge allocates no cyclic garbage; collections would only cost time
    try:
        for source in sources:
            _read_source(store, source, sizes[source.id], pool, dedupe)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if was_enabled:
            gc.enable()
        gc.freeze()  # the index is long-lived: keep it out of every future collection


def _size(source: Source) -> int:
    try:
        return os.path.getsize(source.read_path)
    except OSError as exc:
        raise InputError(explain(source.path, exc)) from None


def _read_source(
    store: Store, source: Source, size: int, pool: Executor | None, dedupe: bool
) -> None:
    try:
        with open(source.read_path, "rb") as fh:
            head = fh.read(1 << 16)
            start = len(BOM) if head.startswith(BOM) else 0
            document = _document(fh, head, size, keep=False)
            line = 1
            if document is not _NOT_A_DOCUMENT:
                _read_document(store, source, document, size, start, dedupe)
            else:
                for k, batch in enumerate(_line_batches(source, fh, start, size, pool)):
                    store.append(batch, first_line=line, dedupe=dedupe)
                    line += batch.lines
                    if k % 8 == 7:
                        memory.release()  # the batches merged so far: keep the peak down
                    if k == 0 and len(batch) and size > SLICE:
                        # Size the columns once from the first slice's bytes per event.
                        per_event = max(1, int(batch.numbers["offset"][-1]) // len(batch))
                        store.reserve(len(store) + int(size / per_event * 1.05))
            if source.note:
                store.malformed.append(Malformed(source.path, line, source.note))
    except OSError as exc:
        raise InputError(explain(source.path, exc)) from None


_NOT_A_DOCUMENT = object()


def is_document(fh: BinaryIO, head: bytes, size: int) -> bool:
    """Is the file one multi-line JSON document (rather than JSON lines)? Reads it whole when
    it might be: call it only for files read once. The value is kept for reading it."""
    return _document(fh, head, size, keep=True) is not _NOT_A_DOCUMENT


# The last document parsed by is_document, by (device, inode, size, mtime): the app asks
# whether a file is one, then reads it, through other paths to the same file.
_parsed: dict[tuple[int, int, int, int], object] = {}


def _document(fh: BinaryIO, head: bytes, size: int, keep: bool) -> object:
    """The parsed value when the file is one multi-line JSON document, else _NOT_A_DOCUMENT."""
    st = os.fstat(fh.fileno())
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    value = _parsed.get(key) if keep else _parsed.pop(key, None)
    if value is None:
        value = _parse_document(fh, head, size)
        _parsed.clear()
        if keep and value is not _NOT_A_DOCUMENT:
            _parsed[key] = value
    return value


def _parse_document(fh: BinaryIO, head: bytes, size: int) -> object:
    body = head[len(BOM) :] if head.startswith(BOM) else head
    stripped = body.lstrip()
    if size > DOCUMENT_MAX:
        return _NOT_A_DOCUMENT
    if stripped[:1] not in (b"{", b"["):
        return _yaml_document(fh, stripped)
    if b"\n" not in stripped.rstrip() and len(head) < size:
        return _NOT_A_DOCUMENT  # one long first line: JSON lines
    try:
        orjson.loads(stripped.split(b"\n", 1)[0])
        return _NOT_A_DOCUMENT  # the first line stands alone: JSON lines
    except orjson.JSONDecodeError:
        pass
    fh.seek(0)
    data = fh.read().removeprefix(BOM)
    deep.collect()
    try:
        value = deep.loads(data)
        opaque = deep.taken()
        return _Deep(value, opaque) if opaque else value
    except orjson.JSONDecodeError as exc:
        cut_short = ends_mid_value(exc)
    # One document cut short: its complete records. Anything else: lines, reported one by one.
    salvaged = salvage_cut(data, whole_file=True) if cut_short else None
    if salvaged is None:
        return _NOT_A_DOCUMENT
    return _Cut(*salvaged, line=1 + data.rstrip().count(b"\n"))


@dataclass
class _Cut:
    value: object
    note: str
    line: int  # the last, where the document was cut


@dataclass
class _Deep:
    value: object
    opaque: list[str]  # its members nested too deep, read as notes (see ingest.deep)


_YAML_START = re.compile(rb"^(---|#|[A-Za-z_][\w.@-]*:( |$))")


def _yaml_document(fh: BinaryIO, stripped: bytes) -> object:
    """YAML documents (``gcloud logging read``'s default output, kubectl -o yaml): parsed whole
    when the file starts like YAML and parses to objects."""
    if not _YAML_START.match(stripped):
        return _NOT_A_DOCUMENT
    fh.seek(0)
    value = yaml_documents(fh.read().removeprefix(BOM))
    return _NOT_A_DOCUMENT if value is None else value


def _read_document(
    store: Store, source: Source, value: object, size: int, start: int, dedupe: bool
) -> None:
    builder = BatchBuilder(source.id)
    if isinstance(value, _Cut):
        builder.malformed.append((value.line, value.note))
        value = value.value
    opaque = value.opaque if isinstance(value, _Deep) else []
    value = value.value if isinstance(value, _Deep) else value
    # Events of a document are numbered (item >= 0) so that raw() re-serialises each one on a
    # single line instead of returning the pretty-printed text.
    if builder.add_value(value, start, size - start, 1, whole_line=False):
        builder.opaque(1, opaque)
    store.append(builder.finish(), dedupe=dedupe)


def _line_batches(
    source: Source, fh: BinaryIO, start: int, size: int, pool: Executor | None
) -> Iterator[Batch]:
    if pool is None or size - start < PARALLEL_MIN:
        yield parse_slice(source.id, source.read_path, start, size)
        return
    bounds = slice_bounds(fh, start, size)
    # Keep a bounded number of slices in flight so memory stays flat on huge files.
    pending = []
    tasks = iter(zip(bounds, bounds[1:], strict=False))
    for a, b in tasks:
        pending.append(pool.submit(parse_slice, source.id, source.read_path, a, b))
        if len(pending) >= 4:
            break
    while pending:
        batch = pending.pop(0).result()
        nxt = next(tasks, None)
        if nxt is not None:
            pending.append(pool.submit(parse_slice, source.id, source.read_path, *nxt))
        yield batch


def slice_bounds(fh: BinaryIO, start: int, size: int) -> list[int]:
    """Offsets just after a newline, about SLICE apart, from start to size."""
    bounds = [start]
    pos = start + SLICE
    while pos < size:
        fh.seek(pos)
        while True:
            block = fh.read(1 << 20)
            if not block:
                pos = size
                break
            nl = block.find(b"\n")
            if nl >= 0:
                pos += nl + 1
                break
            pos += len(block)
        if pos >= size:
            break
        bounds.append(pos)
        pos += SLICE
    bounds.append(size)
    return bounds


def parse_slice(source: int, path: str, start: int, end: int) -> Batch:
    """Parse bytes [start, end) of a file of JSON lines (runs in a worker process).

    Each read starts at the first unconsumed line, so a line cut by a block boundary is read
    again whole rather than glued together by copying; a line longer than the block doubles
    the read size until it fits, up to :data:`LINE_MAX`: a longer line is skipped unread.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    fd = os.open(path, os.O_RDONLY)
    try:
        builder = BatchBuilder(source)
        pos, line, size = start, 1, READ_BLOCK
        while pos < end:
            want = min(size, end - pos, LINE_MAX + 1)
            block = os.pread(fd, want, pos)
            if not block:  # the file shrank while we read it
                break
            final = pos + len(block) >= end or len(block) < want  # slice or file ends here
            if len(block) > LINE_MAX and b"\n" not in block:
                del block  # never held whole: measured on, block by block
                length, newline = _line_length(fd, pos, end)
                builder.too_long(line, length, newline)
                line += 1
                pos += length + 1
                size = READ_BLOCK
                continue
            before = builder.lines
            used = builder.add_lines(block, pos, line, final=final)
            if not used and len(block) > LINE_MAX:  # a split line's pieces past the bound
                used = builder.add_lines(block, pos, line, final=False, hold=False)
            line += builder.lines - before
            pos += used
            size = READ_BLOCK if used else size * 2
        return builder.finish()
    finally:
        os.close(fd)
        if was_enabled:
            gc.enable()


def _line_length(fd: int, pos: int, end: int) -> tuple[int, bool]:
    """The length of the line at ``pos`` (up to ``end``), and whether a newline ends it."""
    at = pos
    while at < end:
        block = os.pread(fd, min(READ_BLOCK, end - at), at)
        if not block:
            break
        nl = block.find(b"\n")
        if nl >= 0:
            return at + nl - pos, True
        at += len(block)
    return at - pos, False


def nothing_read(store: Store, paths: Iterable[str]) -> str | None:
    """Why no event was read, when none was (reading nothing is an error, never an empty
    result): what the input looks like, from its most common malformed reason."""
    if len(store):
        return None
    paths = list(paths)
    where = ", ".join(paths)
    if not store.sources:
        subfolders = any(os.path.isdir(p) and any(e.is_dir() for e in os.scandir(p)) for p in paths)
        skipped = [name for p in paths if os.path.isdir(p) for name in not_logs(Path(p))]
        return (
            f"{where}: no log files here"
            + (f" (skipped: {', '.join(skipped[:3])})" if skipped else "")
            + ("; subfolders are read with --recursive" if subfolders else "")
        )
    if not store.malformed:
        return f"{where}: empty, no audit event read"
    kind, count = store.malformed.by_kind()[0]
    first = store.malformed.first_of(kind)
    said = without_position(first.reason).split("; ")[0] if first else kind
    total = len(store.malformed)
    return (
        f"{where}: no audit event read; {total:,} record(s) malformed, {count:,} of them "
        f"{said}" + (f" (first: {first.path} line {first.line})" if first else "")
    )


def add_backup(store: Store, path: str) -> None:
    """Add a backup to the store holding it open at once: while we start, the API server's
    mill may gzip and delete a plain backup (then its .gz, complete by then, has the lines)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if not os.path.exists(path + ".gz"):
            raise InputError(f"{path}: vanished while starting") from None
        store.add_source(open_source(0, path + ".gz", store.spool))
        return
    except OSError as exc:
        raise InputError(explain(path, exc)) from None
    if os.pread(fd, 2, 0) == GZIP_MAGIC:
        os.close(fd)
        store.add_source(open_source(0, path, store.spool))
        return
    # Read through the descriptor: the name may be gone before the loader gets to it.
    store.add_source(Source(0, path, f"/proc/self/fd/{fd}"), fd=fd)
