"""A hostile "host" for the SSH reader's tests, run as ``--ssh-command``: it reads the script
audittui sends (to learn the frame token), then answers as it is told instead of running it.

    python fake_ssh.py MODE ARG -o ControlMaster=no [ssh's options…] HOST COMMAND

``-o ControlMaster=no`` makes audittui start no master of its own. Modes:

- ``line MB``: a K frame, then MB MiB without a newline (an endless header line);
- ``data MB``: a file listed and a D frame of MB MiB without a newline, then a round;
- ``frames FILE``: the frames in FILE, ``{T}`` replaced by the token;
- ``listing N``: an L frame of N entries;
- ``shell SH``: the script run locally by the shell SH (``bash --posix`` …), as sshd would.

Every mode but ``shell`` writes how many bytes it wrote to ``$FAKE_SSH_WROTE`` (if set) when it
ends, even when audittui hung up first.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys

MB = 1 << 20


def main() -> int:
    mode, arg = sys.argv[1], sys.argv[2]
    script = sys.stdin.buffer.read()
    if mode == "shell":
        return subprocess.run([*shlex.split(arg), "-s"], input=script).returncode
    token = re.search(rb"^T='?(AUDITTUI-[0-9a-f]+)", script, re.M)
    assert token is not None, "no token in the prelude"
    wrote = 0
    out = sys.stdout.buffer
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # audittui hung up: say how far

    def send(data: bytes) -> None:
        nonlocal wrote
        out.write(data)
        wrote += len(data)

    try:
        if mode == "line":
            send(b"K folder\nL\n")
            block = b"a" * (MB // 16)  # small writes: what was written is what was read
            for _ in range(int(arg) * 16):
                send(block)
        elif mode == "data":
            size = int(arg) * MB
            send(b"K folder\nL\n1 %d audit.log\nM\nD 1 0 audit.log\n" % size)
            block = b"a" * MB
            for _ in range(int(arg)):
                send(block)
            send(b"\n" + token.group(1) + b" 0\nR\n")
        elif mode == "frames":
            with open(arg, "rb") as fh:
                send(fh.read().replace(b"{T}", token.group(1)))
        elif mode == "listing":
            send(b"K folder\nL\n")
            for k in range(int(arg)):
                send(b"%d 10 f%d.log\n" % (k + 1, k))
            send(b"M\nR\n")
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # nothing more to flush
    finally:
        if where := os.environ.get("FAKE_SSH_WROTE"):
            with open(where, "w") as fh:
                fh.write(str(wrote))
    return 0


if __name__ == "__main__":
    sys.exit(main())
