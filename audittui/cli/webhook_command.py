"""``audittui webhook``: the audit webhook backend (the API server's
``--audit-webhook-config-file``) writing a spool folder that ``audittui DIR`` reads live
(``--spool DIR``), or the ClickHouse table ``audittui ship`` writes (``--to URL``).

The argparse definition and the run function; :mod:`audittui.cli.main` only wires them in.
A long-running server: it reads no logs before it starts, and stops on SIGTERM or SIGINT
once the writes under way are durable (exit 0).
"""

from __future__ import annotations

import argparse
import errno
import re
import signal
import ssl
import threading
from typing import Any

from ..clickhouse.client import StoreError, connect
from ..clickhouse.url import BadURL, exposed, parse
from ..output.terminal import fail, stdout, warn
from ..webhook.store import STORE_TIMEOUT
from .options import add_to_option, at_least

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1 << 20, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size(text: str) -> int:
    """``100`` (MiB, as the API server's --audit-log-maxsize), ``64K``, ``100M``, ``1G``."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100M, 64K, 1G)")
    unit = (m.group(2) or "")[:1].lower()
    return int(m.group(1)) * _UNITS[unit]


def listen_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[::1]:PORT`` or ``:PORT`` (every address)."""
    m = re.match(r"^(?:\[([^\]]+)\]|([^:\[\]]*)):(\d{1,5})$", text)
    if not m or int(m.group(3)) > 65535:
        raise argparse.ArgumentTypeError(f"not ADDR:PORT: {text!r}")
    host = m.group(1) if m.group(1) is not None else m.group(2)
    return host or "0.0.0.0", int(m.group(3))


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def add_parser(sub: Any) -> None:
    w = sub.add_parser(
        "webhook",
        help="receive audit events from API servers (webhook backend) into a spool folder "
        "or a ClickHouse store",
        description="An audit webhook backend: API servers POST EventList batches (their "
        "--audit-webhook-config-file), answered 200 only once durable: written and fsync'd "
        "to the spool (--spool: one rotating JSON-lines file per sender, read live by "
        "`audittui DIR`), or acknowledged by the store (--to: the table `audittui ship` "
        "writes). One of the two: to keep both, ship the spool (`audittui ship DIR --to URL`).",
    )
    w.add_argument(
        "--listen",
        required=True,
        type=listen_address,
        metavar="ADDR:PORT",
        help="where to listen: 0.0.0.0:8443, [::]:8443, 127.0.0.1:8080 (port 0: a free one)",
    )
    w.add_argument("--spool", metavar="DIR", help="the spool folder (made if missing)")
    add_to_option(w, "or a ClickHouse store (its table is created when missing)")
    w.add_argument("--tls-cert", metavar="FILE", help="server certificate (PEM, chain)")
    w.add_argument("--tls-key", metavar="FILE", help="its private key (PEM)")
    w.add_argument(
        "--client-ca",
        metavar="FILE",
        help="mutual TLS: require a client certificate signed by this CA; its CN names "
        "the sender (the spool file)",
    )
    w.add_argument(
        "--token-file",
        metavar="FILE",
        help="require `Authorization: Bearer TOKEN`, one accepted token per line",
    )
    w.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="listen without TLS on an address other than loopback",
    )
    w.add_argument(
        "--max-size",
        type=size,
        default=100 << 20,
        metavar="SIZE",
        help="rotate a live file before it passes SIZE (default 100M; a bare number is MiB, "
        "as --audit-log-maxsize; 0: never)",
    )
    w.add_argument(
        "--max-backups",
        type=at_least(0),
        default=100,
        metavar="N",
        help="rotated files kept per sender (default 100; 0: all)",
    )
    w.add_argument(
        "--max-body",
        type=size,
        default=64 << 20,
        metavar="SIZE",
        help="largest request body (default 64M; larger: 413)",
    )
    w.add_argument(
        "--max-in-flight",
        type=at_least(1),
        default=8,
        metavar="N",
        help="batches read and written at once; more: 429 with Retry-After (default 8)",
    )
    w.add_argument(
        "--max-connections",
        type=at_least(1),
        default=128,
        metavar="N",
        help="open connections, counted from the accept (a TLS handshake under way too); "
        "when all are held, the oldest not yet authenticated is closed to make room, else the "
        "new one (default 128)",
    )
    w.add_argument(
        "--max-connections-per-address",
        type=at_least(1),
        default=32,
        metavar="N",
        help="open connections from one address (an IPv6 address: its /64); more are closed "
        "at once (default 32)",
    )
    w.add_argument(
        "--header-timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="time for a request's TLS handshake, request line and headers, from the accept "
        "or the request's first byte (default 10)",
    )
    w.add_argument(
        "--body-timeout",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="time for a request's whole body (default 60)",
    )
    w.add_argument(
        "--idle-timeout",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="time a kept-alive connection may wait for its next request (default 60)",
    )
    w.add_argument(
        "--dedupe-keys",
        type=at_least(1),
        default=1_000_000,
        metavar="N",
        help="event keys remembered for deduplication, about 100 bytes each (default 1000000)",
    )
    w.add_argument(
        "--store-timeout",
        type=float,
        default=STORE_TIMEOUT,
        metavar="SECONDS",
        help=f"with --to: an INSERT not acknowledged in this time is answered 429 "
        f"(default {STORE_TIMEOUT:g}; the API server gives up on a batch after 30 s)",
    )


def _read_tokens(path: str) -> tuple[bytes, ...]:
    with open(path, "rb") as fh:
        tokens = tuple(line.strip() for line in fh if line.strip())
    if not tokens:
        raise ValueError(f"{path}: no token in the file")
    return tokens


def run(args: argparse.Namespace) -> int:
    # Here, not at the top: the server (asyncio, h11, prometheus-client) costs every other
    # command and the app about 80 ms of start-up.
    from ..webhook.http import serve
    from ..webhook.server import Config, Receiver, StartError, is_loopback
    from ..webhook.store import StoreSink

    if args.to and args.spool:
        # 200 would have to wait for both, and a store down would stop the spool too: one
        # durable place per receiver; the spool is shipped by `audittui ship`
        return fail(
            "webhook: give --spool DIR or --to URL, not both (to have both, receive into the "
            "spool and run `audittui ship DIR --to URL`)"
        )
    if not args.spool and not args.to:
        return fail("webhook: give --spool DIR or --to URL")
    if bool(args.tls_cert) != bool(args.tls_key):
        return fail("webhook: --tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        return fail("webhook: --client-ca needs --tls-cert and --tls-key (mutual TLS)")
    host, port = args.listen
    if not args.tls_cert and not args.allow_plain_http and not is_loopback(host):
        return fail(
            f"webhook: refusing plain HTTP on {host}, which is not a loopback address: give "
            "--tls-cert and --tls-key, or --allow-plain-http"
        )
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
                       ("--client-ca", args.client_ca)):  # fmt: skip
        try:
            if path:
                open(path, "rb").close()  # ssl names no file in its errors
        except OSError as exc:
            return fail(f"webhook: {flag} {path}: {exc.strerror or exc}")
    try:
        tokens = _read_tokens(args.token_file) if args.token_file else ()
    except (OSError, ValueError) as exc:
        return fail(f"webhook: --token-file: {exc}")
    config = Config(
        host=host,
        port=port,
        spool=args.spool or "",
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        tokens=tokens,
        max_size=args.max_size,
        max_backups=args.max_backups,
        max_body=args.max_body,
        max_in_flight=args.max_in_flight,
        max_connections=args.max_connections,
        max_per_address=args.max_connections_per_address,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        idle_timeout=args.idle_timeout,
        dedupe_keys=args.dedupe_keys,
    )
    store: StoreSink | None = None
    if args.to:
        try:
            target = parse(args.to)
            client = connect(target, read_timeout=args.store_timeout)
        except (BadURL, StoreError) as exc:
            return fail(f"webhook: --to: {exc}")
        try:
            client.ensure_table()
        except StoreError as exc:
            client.close()
            return fail(f"webhook: --to: {exc}")
        if (warning := exposed(target)) is not None:  # once it worked: a failure stays one line
            warn("webhook: {}", warning)
        store = StoreSink(client, target.cluster)
    try:
        receiver = Receiver(config, log=warn, store=store)
    except ssl.SSLError as exc:
        if store is not None:
            store.close()
        return fail(
            f"webhook: the TLS files (--tls-cert, --tls-key, --client-ca) are not usable: {exc}"
        )
    except StartError as exc:
        if store is not None:
            store.close()
        return fail(f"webhook: {exc}")
    except OSError as exc:
        if store is not None:
            store.close()
        # the spool's files name themselves; "busy" is the spool's lock; else the address
        busy = exc.errno == errno.EBUSY
        where = exc.filename or (args.spool if busy else f"{host}:{port}")
        return fail(f"webhook: {where}: {exc.strerror or exc}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    out = stdout()
    bound_host, bound_port = receiver.address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    auth = (
        "mutual TLS"
        if args.client_ca
        else ("bearer token" if tokens else "no client authentication")
    )
    out.line(
        "audittui webhook: listening on {}://{}:{} ({}), {} {}",
        config.scheme,
        shown,
        bound_port,
        auth,
        "spool" if receiver.spool is not None else "store",
        receiver.spool.folder if receiver.spool is not None else (store.display if store else ""),
    )
    keys, files = receiver.rebuilt
    if receiver.spool is not None:
        out.line(
            "audittui webhook: deduplication window {:,} keys, {:,} read from {} spool file(s)"
            " in {:.1f} s",
            config.dedupe_keys,
            keys,
            files,
            receiver.rebuild_seconds,
        )
    for name in receiver.repaired:
        warn("{}: cut back to its last complete line (a write cut short before a restart)", name)
    if not tokens and not args.client_ca and not is_loopback(host):
        warn(
            "webhook: no client authentication: anyone who reaches {}:{} can write events",
            host,
            port,
        )
    out.flush()
    try:
        serve(receiver, stop)
    finally:
        receiver.close()
    out.line("audittui webhook: stopped")
    out.flush()
    return 0
