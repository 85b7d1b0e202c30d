"""Stable hashes and seeds: the same value in every process, on every machine, in every run.

Python's built-in ``hash`` is salted per process, so it is never used for anything that must
repeat (seeds, store keys, strategy tie-breaks). Everything here is a pure function of its
arguments.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["stable_seed"]


def stable_seed(*parts: Any, bits: int = 63) -> int:
    """A ``bits``-bit seed derived from ``repr(parts)`` through BLAKE2b.

    Used for every derived random stream: ``stable_seed(run_seed, "strategy", prompt_id)`` seeds
    one prompt's strategy, so a prompt gets the same stream whatever else is in the run.
    """
    h = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") & ((1 << bits) - 1)
