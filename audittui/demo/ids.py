"""Random identifiers (UUIDs, generated name suffixes), all drawn from the generator's rng."""

from __future__ import annotations

import base64
import random

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString alphabet


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (deterministic)."""
    h = rng.getrandbits(128)
    h = (h & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    h = (h & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    s = f"{h:032x}"
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


def rand_name(rng: random.Random, n: int) -> str:
    """``n`` characters of a generated name suffix (``web-7d4b9c-x2fzq``)."""
    return "".join(rng.choice(HASH_ALPHABET) for _ in range(n))


def b64url(data: bytes) -> str:
    """Unpadded URL-safe base64, as in continue tokens."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
