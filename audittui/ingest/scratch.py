"""Private temporary folders that outlive no process: ``$TMPDIR/audittui-<kind>-…``.

Every folder audittui makes under the temporary directory (the spool of decompressed and piped
input, the app's copy of standard input, the SSH mirrors, the demo's logs) comes from
:func:`make`: mode 0700, and held by its process through an exclusive ``flock`` on the folder
itself, kept for the process's life. The kernel drops that lock when the process dies however
it dies (SIGKILL, the OOM killer, a power cut of the terminal), and a new process never inherits
it, so a reused PID cannot pass for the dead owner. Removing the folder at exit stays the normal
path (``close()``/atexit); a process killed before it could is cleaned up after by the next
audittui to start, which :func:`sweep`\\ s the temporary directory: a folder is removed only when
its name is ``audittui-…``, it is a real folder (never a symlink) owned by this user, it holds
the marker file written once the lock was taken (so only this mechanism's folders, and never one
still being set up), and its lock can be taken (its owner is dead). Forked workers share the
lock: the folder stays while any of them still runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile

PREFIX = "audittui-"
MARKER = ".audittui-owner"  # written inside once the owner holds the lock

_held: dict[str, int] = {}  # folder → the descriptor holding its lock


def make(kind: str) -> str:
    """A new private folder ``$TMPDIR/audittui-<kind>-XXXXXXXX`` (mode 0700), locked by this
    process until :func:`remove` or its death."""
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and unmarked: no one else locks it
    os.close(os.open(os.path.join(folder, MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _held[folder] = fd
    return folder


def remove(folder: str) -> None:
    """Remove a folder made by :func:`make` (and let go of its lock)."""
    shutil.rmtree(folder, ignore_errors=True)
    fd = _held.pop(folder, None)
    if fd is not None:
        os.close(fd)


def sweep(tmp: str | None = None) -> list[str]:
    """Remove the folders that dead audittui processes of this user left in ``tmp`` (the
    temporary directory); returns them. Never raises: cleaning up must not stop a start."""
    tmp = tmp or tempfile.gettempdir()
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(tmp) if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        if entry.path in _held:
            continue
        with contextlib.suppress(OSError):
            if _abandoned(entry.path, uid):
                removed.append(entry.path)
    return removed


def _abandoned(folder: str, uid: int) -> bool:
    """Remove ``folder`` if it is one of this mechanism's, this user's, and unlocked."""
    # O_NOFOLLOW|O_DIRECTORY: a symlink (to anywhere) or a file under that name is not opened.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if os.fstat(fd).st_uid != uid:
            return False
        try:
            marker = os.stat(MARKER, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False  # not made here, or its owner is between mkdtemp and the lock
        if marker.st_uid != uid:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner (or a worker it forked) is alive
        # Ours, locked by us now: rmtree removes links, never what they point to.
        shutil.rmtree(folder, ignore_errors=True)
        return True
    finally:
        os.close(fd)
