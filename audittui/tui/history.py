"""Filter-query history, kept across runs in the XDG state folder.

One query per line in ``$XDG_STATE_HOME/audittui/history`` (``~/.local/state/audittui/history``
by default), oldest first, as the filter bar shows them: a value from the log holding a
control or bidi character is saved with its escape (``user:"ev\\x1b[2J"``), which the query
language reads back as that character. Queries can name users, so the folder is created 0700
and the file written 0600. Each save rewrites the file atomically (a temporary file in the
same folder, then ``os.replace``) after merging what another audittui running meanwhile may
have saved.

Persistence is best effort: no error in loading or saving ever reaches the caller. The history
then lives in memory only and :attr:`History.error` says why, in one line.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from ..output.inert import inert

MAX_READ = 4 << 20  # bytes read at most from the end of the file (500 queries are ~100 kB)


def default_history_path() -> Path:
    """``$XDG_STATE_HOME/audittui/history``; XDG_STATE_HOME defaults to ``~/.local/state``
    (and, as the XDG spec says, a relative XDG_STATE_HOME is ignored)."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "audittui" / "history"


def clean(query: str) -> str:
    """A query as one history line: line breaks become spaces, outer whitespace goes, and any
    other unsafe character is written as its escape (``\\x1b``): neither the file nor the
    bar ever holds one raw, even from a file an older audittui wrote."""
    return inert(query.replace("\r", " ").replace("\n", " ").strip())


class History:
    """Queries submitted, oldest first, with shell-like up/down navigation."""

    def __init__(self, path: Path | str | None = None, limit: int = 500) -> None:
        self.limit = max(0, limit)
        self.error: str | None = None
        self._entries: list[str] = []
        self._pos: int | None = None  # index of the entry shown; None: not navigating
        self._draft = ""  # the text being edited when navigation started
        self.path: Path | None
        if path is None:
            try:
                path = default_history_path()
            except (RuntimeError, KeyError, OSError) as exc:  # no home directory
                self.path = None
                self.error = f"history not kept: no home directory ({exc})"
                return
        self.path = Path(path)
        entries = self._read()
        if entries is not None:
            self._entries = entries

    @property
    def entries(self) -> list[str]:
        """The queries, oldest first (a copy)."""
        return list(self._entries)

    # -- submitting ---------------------------------------------------------------------------

    def add(self, query: str) -> None:
        """Record a submitted query (empty ones are ignored; a repeated one moves to the end)
        and save. Ends any navigation."""
        self.reset()
        query = clean(query)
        if not query or not self.limit:
            return
        on_disk = self._read()
        merged = self._entries
        if on_disk is not None:
            # Keep what another instance saved meanwhile, then ours that it lacks.
            seen = set(on_disk)
            merged = on_disk + [e for e in self._entries if e not in seen]
        self._entries = _trim([e for e in merged if e != query] + [query], self.limit)
        if on_disk is not None:  # never overwrite a file that could not be read
            self._save()

    # -- navigation ---------------------------------------------------------------------------

    def previous(self, current: str) -> str | None:
        """The next older query, or None when there is none. The first call remembers
        ``current`` (the text being edited) for :meth:`next` to give back; entries equal to
        ``current`` are skipped, so Up after a submit does not show the same text again."""
        if self._pos is None:
            self._draft = current
            pos = len(self._entries)
        else:
            pos = self._pos
        shown = clean(current)
        while pos > 0:
            pos -= 1
            if self._entries[pos] != shown:
                self._pos = pos
                return self._entries[pos]
        return None

    def next(self) -> str | None:
        """The next newer query; past the newest, the draft :meth:`previous` remembered (and
        navigation ends); None when not navigating."""
        if self._pos is None:
            return None
        self._pos += 1
        if self._pos >= len(self._entries):
            self._pos = None
            draft, self._draft = self._draft, ""
            return draft
        return self._entries[self._pos]

    def reset(self) -> None:
        """End navigation (after a submit, or when the input is left)."""
        self._pos = None
        self._draft = ""

    # -- the file -----------------------------------------------------------------------------

    def _read(self) -> list[str] | None:
        """The saved queries (deduplicated, newest kept, trimmed); None when the file cannot
        be read (then :attr:`error` says why). A missing file is an empty history."""
        if self.path is None:
            return None
        try:
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.error = _message("history not read", self.path, exc)
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self.error = f"history not kept: {self.path} is not a regular file"
                return None
            start = max(0, info.st_size - MAX_READ)
            chunks = []
            offset = start
            while len(chunk := os.pread(fd, 1 << 20, offset)):
                chunks.append(chunk)
                offset += len(chunk)
                if offset - start > MAX_READ:
                    break
            data = b"".join(chunks)
        except OSError as exc:
            self.error = _message("history not read", self.path, exc)
            return None
        finally:
            os.close(fd)
        if start:
            data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            # Not ours (or damaged): neither use it nor overwrite it.
            self.error = f"history not kept: {self.path} is not a text file"
            return None
        lines = (clean(line) for line in text.split("\n"))
        entries = list(dict.fromkeys(reversed([line for line in lines if line])))
        entries.reverse()
        return _trim(entries, self.limit)

    def _save(self) -> None:
        if self.path is None:
            return
        target = Path(os.path.realpath(self.path))  # a symlinked history stays a symlink
        tmp = None
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".history.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:  # mkstemp: mode 0600
                fh.write("".join(e + "\n" for e in self._entries).encode("utf-8", "replace"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            tmp = None
            self.error = None
        except OSError as exc:
            self.error = _message("history not saved", self.path, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _trim(entries: list[str], limit: int) -> list[str]:
    return entries[-limit:] if limit else []


def _message(what: str, path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename else path
    return f"{what}: {where}: {reason}".replace("\n", " ")
