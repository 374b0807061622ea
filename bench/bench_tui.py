"""The app's figures, measured on the real app in a real terminal (tmux), next to lnav on the
same file in the same run:

    python bench/bench_tui.py [--file bench/data/tui-1m.log] [--events 1000000]

- first screen: launch → the newest events and the status line on screen (lnav: → its first
  screen of log lines);
- indexing done: launch → the status no longer says "indexing";
- resident memory with everything indexed and the findings' first pass run, and the app's peak
  (lnav: after its index is built);
- a field filter: Enter → the new count in the status line;
- key press → repaint: a key sent with tmux → the screen changed (includes tmux's own round
  trip, so an upper bound); and inside the app (Pilot, headless) for a distribution;
- following at 5,000 events/s: event-loop lag and key latency while a writer appends;
- idle CPU with a quiet log.

Needs tmux. The file is generated on first use (about 1 GB).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
W, H = 120, 40


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen(name: str) -> str:
    return tmux("capture-pane", "-p", "-t", name)


def wait_screen(name: str, pattern: str, timeout: float = 120.0, poll: float = 0.005) -> float:
    """Seconds until ``pattern`` (a regex) is on screen."""
    rx = re.compile(pattern, re.S)
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if rx.search(screen(name)):
            return time.perf_counter() - t
        time.sleep(poll)
    raise TimeoutError(f"{pattern!r} not on screen after {timeout}s:\n{screen(name)}")


def pane_pid(name: str) -> int:
    return int(tmux("display-message", "-p", "-t", name, "#{pane_pid}").strip())


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (the app forks index workers)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(status.split("VmRSS:")[1].split()[0])
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out.extend(_children(k))
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(name: str, command: str) -> float:
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    t = time.perf_counter()
    tmux("new-session", "-d", "-s", name, "-x", str(W), "-y", str(H), command)
    return t


def app_command(path: str, *extra: str) -> str:
    env = f"XDG_STATE_HOME={tempfile.gettempdir()}/audittui-bench-state TERM=xterm-256color"
    return f"env {env} {PY} -m audittui {' '.join(extra)} {path}"


def measure_app(path: str, events: int) -> dict:
    name = "audittui-bench"
    t0 = start(name, app_command(path))
    newest = _newest_clock(path)
    wait_screen(name, rf"{newest}.*events")
    first = time.perf_counter() - t0
    total = f"{events:,}"
    wait_screen(name, rf"{total} / {total} events(?!.*indexing)", timeout=300, poll=0.05)
    indexed = time.perf_counter() - t0
    pid = _app_pid(name)
    # Settled: the findings' first pass over everything has run (the status counts them).
    wait_screen(name, rf"{total} / {total} events.*finding", timeout=120)
    deadline = time.perf_counter() + 30
    while _children(pid) and time.perf_counter() < deadline:  # index workers exiting
        time.sleep(0.1)
    time.sleep(2.0)
    rss = rss_mib(pid)
    peak = int(Path(f"/proc/{pid}/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
    # Idle CPU with a quiet log.
    c0, w0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(10)
    idle = (cpu_seconds(pid) - c0) / (time.perf_counter() - w0)
    # Key → repaint through tmux (upper bound: includes tmux's capture round trips).
    keys = []
    for key in ["g", "j", "j", "j", "PageDown", "PageDown", "e", "G", "k", "k", "End"] * 3:
        before = screen(name)
        t = time.perf_counter()
        tmux("send-keys", "-t", name, key)
        while screen(name) == before and time.perf_counter() - t < 2:
            pass
        keys.append(time.perf_counter() - t)
    # A field filter, end to end: from Enter to the new count on screen.
    tmux("send-keys", "-t", name, "/", "user:alice")
    time.sleep(1.0)  # let the typing preview settle; the submit below is what is timed
    tmux("send-keys", "-t", name, "C-u")
    time.sleep(1.0)
    wait_screen(name, rf"{total} / {total} events")
    # Pasted (one bracketed paste, as from a clipboard), then Enter: the time measured is
    # applying the filter, not typing it.
    tmux("set-buffer", "verb:delete ns:kube-system")
    tmux("paste-buffer", "-p", "-t", name)
    t = time.perf_counter()
    tmux("send-keys", "-t", name, "Enter")
    wait_screen(name, r"filter: verb:delete ns:kube-system(?!.*filtering)", poll=0.002)
    filter_s = time.perf_counter() - t
    tmux("send-keys", "-t", name, "q")
    time.sleep(0.5)
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    return {
        "first": first,
        "indexed": indexed,
        "rss": rss,
        "peak": peak,
        "idle_cpu": idle,
        "keys_p50": statistics.median(keys),
        "keys_p95": _p95(keys),
        "filter": filter_s,
    }


def _app_pid(name: str) -> int:
    shell = pane_pid(name)
    kids = _children(shell)
    for pid in [shell, *kids]:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"audittui" in cmd and b"-m" in cmd:
            return pid
    return shell


def _newest_clock(path: str) -> str:
    """HH:MM:SS of the newest event (the last line), as the list shows it."""
    import orjson

    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - (1 << 16)))
        last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return orjson.loads(last)["requestReceivedTimestamp"][11:19]


def measure_lnav(path: str) -> dict | None:
    if not shutil.which("lnav"):
        return None
    name = "lnav-bench"
    fmt = ROOT.parent / "shared" / "bench" / "lnav-k8s-audit.json"
    home = tempfile.mkdtemp(prefix="lnav-home-")
    if fmt.exists():
        subprocess.run(
            ["lnav", "-i", str(fmt)], env={**os.environ, "HOME": home}, capture_output=True
        )
    t0 = start(name, f"env HOME={home} TERM=xterm-256color lnav {path}")
    newest = _newest_clock(path)
    first = None
    try:
        wait_screen(name, newest, timeout=300, poll=0.01)
        first = time.perf_counter() - t0
    except TimeoutError:
        pass
    time.sleep(2)
    pid = pane_pid(name)
    rss = rss_mib(pid)
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    return {"first": first, "rss": rss}


def measure_follow(big: str, rate: int = 5000, seconds: float = 20.0) -> dict:
    """Inside the real app (headless), a copy of the big file loaded: event-loop lag and key
    latency while a writer process appends ``rate`` events/s; nothing may be lost."""
    import asyncio

    from textual import events

    from audittui.index.session import Session
    from audittui.tui.app import AuditApp
    from audittui.tui.history import History

    folder = tempfile.mkdtemp(prefix="follow-", dir=os.path.dirname(big))
    shutil.copyfile(big, Path(folder) / "audit.log")
    session = Session([folder])
    session.open()
    app = AuditApp(session, history=History(Path(folder) / "h"))
    result: dict = {}
    timer = FrameTimer()

    async def main() -> None:
        async with app.run_test(size=(W, H)) as pilot:
            lags: list[float] = []
            expected = [time.perf_counter() + 0.05]

            def tick() -> None:
                now = time.perf_counter()
                lags.append(now - expected[0])
                expected[0] = now + 0.05

            while session.indexing or len(app.view) < len(app.store):
                await pilot.pause(0.1)
            before = len(app.store)
            expected[0] = time.perf_counter() + 0.05
            app.set_interval(0.05, tick)
            writer = subprocess.Popen(
                [
                    PY,
                    "-m",
                    "audittui.demo",
                    "live",
                    folder,
                    "--rate",
                    str(rate),
                    "--rotate-bytes",
                    str(64 << 20),
                ],
                stderr=subprocess.DEVNULL,
            )
            t_end = time.perf_counter() + seconds
            with timer:
                while time.perf_counter() < t_end:
                    for key in ("k", "j", "G"):
                        app.post_message(events.Key(key, key if len(key) == 1 else None))
                        await asyncio.sleep(0.2)  # real time, not "until idle": it never is
            writer.terminate()
            writer.wait()
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline:
                await pilot.pause(0.1)
                if not session.follower.files[0].behind and len(app.view) == len(app.store):
                    break
            written = sum(1 for _ in _lines(folder)) - before
            result.update(
                events=len(app.store) - before,
                written=written,
                lag_p95=_p95(lags),
                lag_max=max(lags),
                keys_p50=statistics.median(timer.first),
                keys_p95=_p95(timer.first),
            )

    asyncio.run(main())
    session.close()
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _lines(folder: str):
    import gzip

    for p in sorted(Path(folder).iterdir()):
        if p.suffix == ".gz" and p.with_suffix("").exists():
            continue  # the writer was stopped while compressing: the plain backup is whole
        if p.name.startswith("audit"):
            data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            yield from data.splitlines()


class FrameTimer:
    """Patches the app class to time, per key the app receives, its first frame written
    (the list and the detail pane repaint in it) and its last before the next key."""

    def __init__(self) -> None:
        self.first: list[float] = []
        self.settled: list[float] = []
        self.key: float | None = None
        self.frames: list[float] = []

    def __enter__(self) -> FrameTimer:
        from textual import events
        from textual.app import App

        self._saved = display, on_event = App._display, App.on_event
        timer = self

        def timed_display(app, screen, renderable):
            display(app, screen, renderable)
            if timer.key is not None:
                timer.frames.append(time.perf_counter() - timer.key)

        async def timed_event(app, event):
            if isinstance(event, events.Key) and not event.is_forwarded:
                timer.close_key()
                timer.key = time.perf_counter()
            await on_event(app, event)

        App._display, App.on_event = timed_display, timed_event
        return self

    def close_key(self) -> None:
        if self.frames:
            self.first.append(self.frames[0])
            self.settled.append(self.frames[-1])
        self.key, self.frames = None, []

    def __exit__(self, *exc) -> None:
        from textual.app import App

        self.close_key()
        App._display, App.on_event = self._saved


def measure_pilot_keys(path: str) -> dict:
    """Inside the app (headless driver), 1M events loaded: from the moment the app receives a
    key to the first frame written after it (the list and the detail pane repaint in that
    frame) and to the last frame before the screen settles (scrollbars, status)."""
    import asyncio

    from audittui.index.session import Session
    from audittui.tui.app import AuditApp
    from audittui.tui.history import History

    session = Session([path], follow=False)
    session.open()
    app = AuditApp(session, history=History(Path(tempfile.mkdtemp()) / "h"))
    filters: list[float] = []
    during: list[float] = []
    timer = FrameTimer()

    async def main() -> None:
        async with app.run_test(size=(W, H)) as pilot:
            while session.indexing or len(app.view) < len(app.store):
                # Keys while the background indexer runs: the app must stay responsive.
                await pilot.press("k" if len(timer.first) % 2 else "j")
                await pilot.pause(0.15)
            timer.close_key()
            during.extend(timer.first)
            timer.first.clear()
            timer.settled.clear()
            await pilot.pause(0.5)
            for key in ["g", "j", "j", "pagedown", "e", "e", "E", "G", "k", "pageup"] * 20:
                await pilot.press(key)
                await pilot.pause(0.15)  # let the screen settle before the next key
            timer.close_key()
            for q in ("user:alice", "verb:delete ns:kube-system", "code:>=400", ""):
                t = time.perf_counter()
                app.apply_filter(q)
                while app.filter.pending is not None:
                    await pilot.pause(0.001)
                filters.append(time.perf_counter() - t)

    with timer:
        asyncio.run(main())
    session.close()
    return {
        "p50": statistics.median(timer.first),
        "p95": _p95(timer.first),
        "settled_p50": statistics.median(timer.settled),
        "settled_p95": _p95(timer.settled),
        "filters": filters,
        "indexing_p50": statistics.median(during),
        "indexing_p95": _p95(during),
        "indexing_keys": len(during),
    }


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.95))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default=str(HERE / "data" / "tui-1m.log"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--skip-follow", action="store_true")
    args = ap.parse_args()
    if not shutil.which("tmux"):
        print("bench_tui needs tmux", file=sys.stderr)
        return 2
    path = args.file
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(
            [
                PY,
                "-m",
                "audittui.demo",
                "big",
                path,
                "--events",
                str(args.events),
                "--body-fraction",
                "0.35",
                "--seed",
                "11",
            ],
            check=True,
        )
    size = os.path.getsize(path)
    print(
        f"file: {path}: {args.events:,} events, {size / 1e9:.2f} GB; "
        f"{os.cpu_count()} cores; terminal {W}x{H} (tmux)"
    )
    app = measure_app(path, args.events)
    lnav = measure_lnav(path)
    print(f"first screen (newest events shown)   {app['first']:6.2f} s", end="")
    if lnav and lnav["first"]:
        print(f"   lnav {lnav['first']:6.2f} s   ratio {app['first'] / lnav['first']:.2f}")
    else:
        print()
    print(f"everything indexed                   {app['indexed']:6.2f} s")
    print(f"resident memory, indexed, findings run {app['rss']:4.0f} MiB", end="")
    print(f"   lnav {lnav['rss']:6.0f} MiB" if lnav else "")
    print(f"  the app's peak (VmHWM)             {app['peak']:6.0f} MiB")
    print(f"idle CPU, quiet log                  {100 * app['idle_cpu']:6.2f} % of a core")
    print(
        f"key → repaint via tmux  p50 {1000 * app['keys_p50']:.0f} ms  p95 "
        f"{1000 * app['keys_p95']:.0f} ms (includes tmux capture round trips)"
    )
    print(f"field filter, Enter → count on screen {1000 * app['filter']:5.0f} ms")
    keys = measure_pilot_keys(path)
    print(
        f"key → first frame, in the app  p50 {1000 * keys['p50']:.1f} ms  p95 "
        f"{1000 * keys['p95']:.1f} ms; screen settled p50 {1000 * keys['settled_p50']:.1f} ms "
        f"p95 {1000 * keys['settled_p95']:.1f} ms"
    )
    print(
        f"key → first frame while indexing ({keys['indexing_keys']} keys)  p50 "
        f"{1000 * keys['indexing_p50']:.1f} ms  p95 {1000 * keys['indexing_p95']:.1f} ms"
    )
    print(
        "filter → rows in the list, in the app: "
        + ", ".join(f"{1000 * f:.0f} ms" for f in keys["filters"])
    )
    if not args.skip_follow:
        f = measure_follow(path)
        print(
            f"following 5,000/s for 20 s: {f['events']:,} events shown of {f['written']:,} "
            f"written; event-loop lag p95 {1000 * f['lag_p95']:.0f} ms, max "
            f"{1000 * f['lag_max']:.0f} ms; key p50 {1000 * f['keys_p50']:.0f} ms, "
            f"p95 {1000 * f['keys_p95']:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    threading.stack_size(0)
    sys.exit(main())
