"""A sender's name (its client certificate's CN, else its address) → the stem of its spool
file. The name comes from the network: it must not escape the folder, hide the file (a leading
dot), or look like a lumberjack backup of another sender's file."""

from __future__ import annotations

import hashlib
import re

from ..ingest.sources import backup_key

LIVE_SUFFIX = ".log"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX = 96  # characters of the readable part; file names stay far below NAME_MAX (255)


def spool_stem(sender: str) -> str:
    """A file stem made of ``[A-Za-z0-9._-]`` only, never empty, never hidden. When the
    sender's name had to be changed (or cut), a hash of the original is appended so that two
    different senders (``a/b``, ``a:b``) never share a file."""
    safe = _UNSAFE.sub("_", sender).lstrip(".-")[:_MAX] or "unnamed"
    stem = safe
    if safe != sender or backup_key(safe + LIVE_SUFFIX) is not None:
        # A name like ``x-2025-01-01T00-00-00.000`` would read as a backup of ``x.log``.
        digest = hashlib.sha256(sender.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        stem = f"{safe}_{digest}"
    return stem


def live_name(sender: str) -> str:
    """The live file's name for ``sender``: ``apiserver-1.log``, ``10.0.0.7.log``."""
    return spool_stem(sender) + LIVE_SUFFIX
