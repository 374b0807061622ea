"""The ``audittui`` command: ``audittui COMMAND …`` runs a headless command
(:mod:`audittui.cli`), anything else opens the app (:mod:`audittui.tui`) on its paths, as does
``cmd | audittui``. The one module that knows both front ends."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .cli.main import COMMANDS
from .cli.main import main as run_command
from .index import memory
from .ingest import scratch
from .ingest.stdin_spool import stdin_is_piped


def main(argv: Sequence[str] | None = None) -> int:
    memory.fixed_mmap_threshold()  # big arrays go back to the system when freed (memory.py)
    scratch.sweep()  # the temporary folders of audittui processes killed before their exit
    argv = list(sys.argv[1:] if argv is None else argv)
    opens_app = argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")
    if opens_app or (not argv and stdin_is_piped()):  # `cmd | audittui`: the app on it
        from .tui.run import run_app  # Textual is imported only for the app

        return run_app(argv)
    return run_command(argv)
