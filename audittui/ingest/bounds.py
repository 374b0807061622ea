"""Bounds on what a reader holds, each settable from the environment (for a big box or a test).

:data:`LINE_MAX`: the longest line read. A longer one is a malformed record saying its size,
passed over block by block and never held whole, by the loader and by the follower alike. The
default sits above the biggest real events (the API server takes bodies of up to 3 MiB; a
RequestResponse list response can be tens of MB) and README's "one event of 100 MB".
"""

from __future__ import annotations

import os
import re


def parse_size(text: str) -> int | None:
    """``512M``, ``16G``, ``1048576`` → bytes; None when it is not that."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def env_size(name: str, default: int) -> int:
    """A size from the environment variable ``name``, else ``default``."""
    value = os.environ.get(name)
    parsed = parse_size(value) if value else None
    return default if parsed is None else parsed


LINE_MAX = env_size("AUDITTUI_LINE_MAX", 128 << 20)
