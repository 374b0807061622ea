"""``audittui [PATH…]``: open the app (``--demo`` on a live copy of the demo logs)."""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

from ..clickhouse.url import is_store_url
from ..index.session import Session
from ..ingest import scratch
from ..ingest.remote import add_options as add_remote_options
from ..ingest.remote import open_remote
from ..ingest.sources import InputError
from ..ingest.stdin_spool import StdinSpool, keyboard_from_terminal, stdin_is_piped
from ..output.terminal import fail, read_policy, warn
from . import hangup

DEMO_LOGS = Path(__file__).resolve().parents[2] / "demo-logs"
DEMO_RATE = 0.5  # events/s appended in the demo: the recorded logs' rate, continued
DEMO_ROTATE = 64 << 10  # bytes: the demo log rotates every few minutes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="audittui",
        description="Open audit logs in the terminal app, following the live files. "
        "Headless commands: audittui {query,summary,findings,stats} --help.",
        epilog="PATH is a folder (audit.log and its rotated backups) or a file; its rotated "
        "backups are read too unless --no-backups.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="- (or no PATH on a pipe): standard input"
    )
    p.add_argument("--no-follow", action="store_true", help="read once, do not follow")
    p.add_argument("--no-backups", action="store_true", help="skip a file's rotated backups")
    p.add_argument("--poll", action="store_true", help="stat files instead of inotify (NFS)")
    p.add_argument(
        "--recursive",
        action="store_true",
        help="a folder's subfolders too (each followed like a folder; a must-gather always)",
    )
    p.add_argument(
        "--rules",
        metavar="FILE",
        help="your findings rules (default ~/.config/audittui/rules.yaml); none: the pack alone",
    )
    p.add_argument(
        "--policy",
        metavar="FILE",
        help="an audit policy: its rule for each event in the detail, the Policy pane, rule:N",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="open a temporary copy of the demo logs while demo events are appended live",
    )
    add_remote_options(p)
    return p


def run_app(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.paths and not args.demo:
        if not stdin_is_piped():
            build_parser().print_help()
            return 2
        args.paths = ["-"]  # `cmd | audittui`: the pipe is the log
    if any(is_store_url(p) for p in args.paths):
        return _run_on_store(args)
    stop = threading.Event()
    workdir = None
    paths = list(args.paths)
    stdin = None
    if "-" in paths:
        stdin = StdinSpool()
        try:
            keyboard_from_terminal()
        except InputError as exc:
            stdin.close()
            fail(str(exc))
            return 2
        paths = [stdin.path if p == "-" else p for p in paths]
        stdin.start()
    if args.demo:
        workdir = scratch.make("demo")
        paths = [_demo_folder(Path(workdir))]
        threading.Thread(target=_append_demo, args=(paths[0], stop), daemon=True).start()
    policy = None
    if args.policy:
        policy = read_policy(args.policy)
        if policy is None:
            return 2
    # A pipe is always followed: --no-follow would read only what has arrived so far.
    follow = not args.no_follow or stdin is not None
    try:
        paths, remote = open_remote(
            paths,
            ssh_command=args.ssh_command,
            sudo=args.sudo,
            follow=follow,
            backups=not args.no_backups,
            recursive=args.recursive,
        )
    except InputError as exc:
        fail(str(exc))
        if stdin is not None:
            stdin.close()
        return 2
    session = Session(
        paths,
        follow=follow,
        backups=not args.no_backups,
        poll=args.poll,
        recursive=args.recursive,
    )
    session.remote = remote
    try:
        session.open()
    except InputError as exc:
        fail(str(exc))
        if stdin is not None:
            stdin.close()
        if remote is not None:
            remote.close()
        return 2
    from ..findings import load_rules
    from .app import AuditApp

    rules = load_rules(False if args.rules == "none" else Path(args.rules) if args.rules else True)

    def cleanup() -> None:
        stop.set()
        session.close()
        if remote is not None:
            remote.close()
        if stdin is not None:
            stdin.close()
        if workdir:
            scratch.remove(workdir)

    app = AuditApp(session, rules=rules, policy=policy, policy_path=args.policy or "", stdin=stdin)
    return hangup.run(app, cleanup)


def _run_on_store(args: argparse.Namespace) -> int:
    """``audittui clickhouse://…``: the same app over a store, one URL and no files."""
    from ..backend.open import open_store
    from ..clickhouse.client import StoreError
    from ..clickhouse.url import BadURL
    from ..findings import load_rules
    from .app import AuditApp

    try:
        backend = open_store(args.paths, lambda line: warn("{}", line))
        backend.count()  # reachable, and the table is there and readable: said now, in one line
    except (BadURL, StoreError) as exc:
        fail(str(exc))
        return 2
    policy = None
    if args.policy:
        policy = read_policy(args.policy)
        if policy is None:
            backend.close()
            return 2
    rules = load_rules(False if args.rules == "none" else Path(args.rules) if args.rules else True)
    app = AuditApp(None, rules=rules, policy=policy, policy_path=args.policy or "", backend=backend)
    return hangup.run(app, backend.close)


def _demo_folder(workdir: Path, recorded: Path = DEMO_LOGS) -> str:
    """A copy of the recorded demo logs in ``workdir``, moved in time to end now.

    The live appends (:func:`_append_demo`) then continue them: the histogram spans the
    recorded minutes instead of one bar a year ago. ``recorded`` itself is only read."""
    import time

    from ..demo import copy_shifted, write_demo

    folder = workdir / "logs"
    generated = None
    if not recorded.is_dir():  # an installed package has no demo-logs: generate the same folder
        generated = recorded = workdir / "recorded"
        write_demo(generated, 3000, seed=7)
    copy_shifted(recorded, folder, time.time_ns() // 1000)
    if generated is not None:
        shutil.rmtree(generated)
    return str(folder)


def _append_demo(folder: str, stop: threading.Event) -> None:
    from ..demo import append_live

    append_live(folder, rate=DEMO_RATE, stop=stop, rotate_bytes=DEMO_ROTATE)
