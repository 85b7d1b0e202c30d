"""Input items: one prompt and its candidate responses, parsed and validated from JSONL.

Input JSONL line::

    {"id": "optional", "prompt": "question" | [{"role": ..., "content": ...}, ...],
     "responses": ["candidate 0", "candidate 1", ...], "scores": [optional latent qualities]}

``scores`` is only used by the simulated judge (a known truth for experiments; it reaches the
judge through :meth:`~tourney.judges.base.Judge.for_item`). Validation errors name the line and
the field; a bad line never stops the others.

Results (one per item) are :class:`tourney.types.PromptResult`; ``PromptResult``, ``dumps`` and
``response_key`` are still importable from here for code written before they moved.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from .errors import InputError
from .types import Prompt

# moved: results to tourney.types, content keys to tourney.hashing (explicit re-exports for older imports)
from .hashing import response_key as response_key
from .types import PromptResult as PromptResult
from .types import dumps as dumps

__all__ = ["Item", "parse_item", "read_items"]


@dataclass(frozen=True)
class Item:
    """One validated input line: a prompt, its candidates (numbered 0..n-1 in input order) and,
    optionally, their latent qualities ``scores`` (the simulated judge's truth)."""

    index: int  #: position in the input (0-based)
    id: str
    prompt: Prompt
    responses: tuple[str, ...]
    scores: tuple[float, ...] | None = None

    @property
    def n(self) -> int:
        return len(self.responses)


def _check_prompt(prompt: Any, where: str) -> Prompt:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("'prompt' is empty", where)
        return prompt
    if isinstance(prompt, list) and prompt:
        msgs = []
        for k, m in enumerate(prompt):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise InputError(f"prompt message {k} must be an object with string 'role' and 'content'", where)
            msgs.append({"role": m["role"], "content": m["content"]})
        if msgs[-1]["role"] != "user":
            raise InputError("a chat prompt must end with a 'user' message", where)
        return tuple(msgs)  # type: ignore[return-value]
    raise InputError("'prompt' must be a non-empty string or a non-empty list of chat messages", where)


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an integer too large for a float
        return False


def parse_item(obj: Any, index: int, where: str | None = None) -> Item:
    """Validate one decoded input object; raise :class:`InputError` naming ``where``."""
    where = where or f"item {index}"
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", where)
    if "prompt" not in obj:
        raise InputError("missing 'prompt'", where)
    prompt = _check_prompt(obj["prompt"], where)
    responses = obj.get("responses")
    if not isinstance(responses, list):
        raise InputError("'responses' must be a list of strings", where)
    if len(responses) < 1:
        raise InputError("'responses' must hold at least 1 response", where)
    for k, r in enumerate(responses):
        if not isinstance(r, str):
            raise InputError(f"response {k} is a {type(r).__name__}, not a string", where)
    seen: dict[str, int] = {}
    for k, r in enumerate(responses):
        if r in seen:
            raise InputError(f"responses {seen[r]} and {k} are identical; remove duplicates before ranking", where)
        seen[r] = k
    scores = obj.get("scores")
    if scores is not None:
        if (
            not isinstance(scores, list)
            or len(scores) != len(responses)
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and _finite(s) for s in scores)
        ):
            raise InputError(f"'scores' must be a list of {len(responses)} finite numbers", where)
        scores = tuple(float(s) for s in scores)
    raw_id = obj.get("id", index)
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise InputError("'id' must be a string or an integer", where)
    return Item(index=index, id=str(raw_id), prompt=prompt, responses=tuple(responses), scores=scores)


def read_items(lines: Iterable[str], source: str = "input") -> Iterator[Item | InputError]:
    """Parse JSONL lines; yields an :class:`Item` or the :class:`InputError` for each line.

    Blank lines are skipped (they are not items); every other line yields exactly one entry,
    so output line k corresponds to the k-th non-blank input line.
    """
    index = 0
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source} line {no}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield InputError(f"malformed JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})", where)
        except RecursionError:
            yield InputError("malformed JSON (nested too deeply)", where)
        else:
            try:
                yield parse_item(obj, index, where)
            except InputError as exc:
                yield exc
        index += 1
