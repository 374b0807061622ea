"""Argument shapes that several commands share (argparse types and options), defined once so
that the same option reads and explains itself alike in each command's --help."""

from __future__ import annotations

import argparse
from collections.abc import Callable

STORE_URLS = (
    "clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB[?table=T&cluster=NAME], "
    "clickhouses://… (HTTPS), chdb:///FOLDER; a user or password the URL leaves out is read "
    "from CLICKHOUSE_USER and CLICKHOUSE_PASSWORD (keep the password out of command lines: "
    "ps shows them to every local user)"
)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {n}")
        return n

    return parse


def add_to_option(parser: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    """``--to URL``: the ClickHouse store a command writes to (``what``: how it is used)."""
    parser.add_argument("--to", required=required, metavar="URL", help=f"{what}: {STORE_URLS}")


def add_follow_options(parser: argparse.ArgumentParser) -> None:
    """How a command that follows logs finds them: ``--backups``, ``--poll``, ``--recursive``."""
    parser.add_argument(
        "--backups",
        action="store_true",
        help="with a file PATH, also read its rotated backups first (a folder always does)",
    )
    parser.add_argument("--poll", action="store_true", help="stat files instead of inotify (NFS)")
    parser.add_argument("--recursive", action="store_true", help="read subfolders too")
