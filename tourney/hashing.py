"""Stable hashes, seeds and canonical texts: the same value in every process, on every machine, in every run.

Python's built-in ``hash`` is salted per process, so it is never used for anything that must
repeat (seeds, store keys, strategy tie-breaks). Everything here is a pure function of its
arguments, and every digest that tourney derives goes through this module:

* :func:`content_hash` (BLAKE2b, an explicit digest size) names content: response keys that
  strategies seed over (:func:`response_key`), the simulated judge's text ids, request ids;
* :func:`uniforms` and :func:`stable_seed` derive random numbers and seeds from content;
* :func:`sha256_hex` is the judgement store's documented key recipe and a file's digest.

Canonical texts. Two canonical forms of a prompt exist, each fixed by data that outlives a run,
so they cannot be merged without changing seeds, outputs or store keys:

* :func:`prompt_text` is how judges see a prompt as text: the string itself, or a chat prompt's
  JSON (sorted keys, default separators, non-ASCII kept). Seeds of the simulated and the model
  judges and the keys of replay files are derived from it.
* the judgement store's ``canonical_json`` (``tourney/store.py``: sorted keys, no whitespace, no
  NaN) is the store's form: its documented key is the sha256 of canonical JSON.

The digests here are part of the output format: changing an algorithm, a digest size or the
bytes hashed at a call site changes seeds, outputs and store keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

__all__ = [
    "content_hash",
    "prompt_text",
    "response_key",
    "sha256_hex",
    "stable_seed",
    "uniforms",
]

#: What a hash helper takes: text (hashed as UTF-8) or raw bytes.
Data = str | bytes


def _bytes(data: Data) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _blake2b(data: Data, size: int) -> bytes:
    return hashlib.blake2b(_bytes(data), digest_size=size).digest()


def content_hash(data: Data, size: int) -> str:
    """Hex BLAKE2b digest of ``data`` (text as UTF-8), ``size`` bytes long (1..64).

    ``size`` is explicit because each call site's size is part of what it produces: response
    keys use 16 bytes, the simulated judge's text ids 12, request ids 8."""
    return _blake2b(data, size).hex()


def sha256_hex(data: Data) -> str:
    """Hex SHA-256 of ``data`` (text as UTF-8): the judgement store's hash, and a file's digest."""
    return hashlib.sha256(_bytes(data)).hexdigest()


def uniforms(key: Data, k: int) -> list[float]:
    """``k`` independent uniforms in the open interval (0, 1) derived from ``key``.

    One BLAKE2b digest of ``8 * k`` bytes, read as k big-endian 64-bit integers ``x``, each
    mapped to ``(x + 0.5) / 2**64``."""
    digest = _blake2b(key, 8 * k)
    return [(int.from_bytes(digest[8 * i : 8 * i + 8], "big") + 0.5) / 2.0**64 for i in range(k)]


def stable_seed(*parts: Any, bits: int = 63) -> int:
    """A ``bits``-bit seed derived from ``repr(parts)`` through BLAKE2b (8 bytes).

    Used for every derived random stream: ``stable_seed(run_seed, "strategy", prompt_id)`` seeds
    one prompt's strategy, so a prompt gets the same stream whatever else is in the run.
    """
    h = _blake2b(repr(parts), 8)
    return int.from_bytes(h, "big") & ((1 << bits) - 1)


def response_key(text: str) -> str:
    """Stable content identifier of a response (strategies seed over these): 16-byte BLAKE2b hex."""
    return content_hash(text, 16)


def prompt_text(prompt: Any) -> str:
    """A prompt as judges see it as text: the string itself, or a chat prompt (a list, tuple or
    other sequence of ``{"role", "content"}`` messages) as a JSON array with sorted keys and
    non-ASCII kept (any other JSON value, as a replay file may hold, as its JSON).

    Seeds and replay-file keys derive from this text (see the module docstring)."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps(list(prompt) if isinstance(prompt, Sequence) else prompt, sort_keys=True, ensure_ascii=False)
