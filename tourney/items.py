"""Input items (one prompt and its candidate responses) and per-prompt results.

Input JSONL line::

    {"id": "optional", "prompt": "question" | [{"role": ..., "content": ...}, ...],
     "responses": ["candidate 0", "candidate 1", ...], "scores": [optional latent qualities]}

``scores`` is only used by the simulated judge (a known truth for experiments). Validation
errors name the line and the field; a bad line never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from .errors import InputError
from .types import Prompt, TokenUsage

__all__ = ["Item", "PromptResult", "parse_item", "read_items", "response_key"]


def response_key(text: str) -> str:
    """Stable content identifier of a response (strategies seed over these)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Item:
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


@dataclass(frozen=True)
class PromptResult:
    """The result for one input item (one output line)."""

    index: int
    id: str
    status: str  #: "ok"; "partial" (judge errors: ranked on what was judged); "failed" (no ranking)
    best: int | None = None
    ranking: tuple[int, ...] = ()
    scores: tuple[float, ...] = ()
    scale: str = ""
    uncertainty: tuple[float, ...] | None = None
    best_response: str | None = None
    comparisons: int = 0  #: requests (matches) judged
    samples: int = 0  #: judge samples paid for (votes, re-samples, abstentions, errors)
    abstentions: int = 0
    ties: int = 0
    errors: int = 0
    tokens: TokenUsage = TokenUsage()
    budget_limited: bool = False
    reused: int = 0  #: samples answered from the judgement store
    messages: tuple[str, ...] = ()
    matches: tuple[Mapping[str, Any], ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    strategy: Mapping[str, Any] = field(default_factory=dict)
    judge: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.status == "failed":
            d["error"] = "; ".join(self.messages)
            return d
        d.update(
            best=self.best,
            best_response=self.best_response,
            ranking=list(self.ranking),
            scores=[round(s, 10) for s in self.scores],
            scale=self.scale,
        )
        if self.uncertainty is not None:
            d["uncertainty"] = [round(s, 10) for s in self.uncertainty]
        d.update(
            comparisons=self.comparisons,
            samples=self.samples,
            abstentions=self.abstentions,
            ties=self.ties,
            errors=self.errors,
            tokens={"prompt": self.tokens.prompt, "cached": self.tokens.cached, "completion": self.tokens.completion},
            budget_limited=self.budget_limited,
        )
        if self.messages:
            d["error"] = "; ".join(self.messages)
        d.update(strategy=dict(self.strategy), judge=dict(self.judge), seed=self.seed, matches=list(self.matches))
        if self.info:
            d["info"] = _jsonable(self.info)
        return d


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return x.item()
    if isinstance(x, float):
        return round(x, 10)
    return x


def dumps(result: PromptResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False, sort_keys=False)


def failed(index: int, id_: str, message: str) -> PromptResult:
    return PromptResult(index=index, id=id_, status="failed", messages=(message,))
