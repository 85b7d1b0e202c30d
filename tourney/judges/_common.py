"""Plumbing shared by the model-backed judges (``vllm`` and ``openai``): sampling settings,
the judge format's choice, seeds and request ids derived from a match, and one judgement from
one sample's output. Private: the judges' modules are the public face (``vllm_judge`` re-exports
these names).

Seeds: sample ``i`` of a match uses seed ``match_seed(match, judge_seed) + i``, a hash of the
prompt (:func:`tourney.hashing.prompt_text`), the two texts in presentation order and the judge
seed, so a vote extended later draws exactly the samples one bigger call would have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, JudgeError, SpecError
from ..hashing import content_hash, prompt_text, stable_seed
from ..types import Judgement, Match
from .formats import JudgeFormat, Parsed, check_structured_budget, format_for_model, get_format, split_thinking

__all__ = [
    "DEFENCE_OPTIONS",
    "Defences",
    "SAMPLING_OPTIONS",
    "SamplingSettings",
    "build_judgement",
    "match_seed",
    "render_messages",
    "request_id",
    "resolve_format",
]

#: Options shared by the model-backed judges (vllm, openai): what they mean.
SAMPLING_OPTIONS: dict[str, str] = {
    "format": "judge format: rrm, rm_r1 or rm_r1_instruct (default: from the model name)",
    "temperature": "sampling temperature (default: the format's)",
    "top_p": "nucleus sampling p (default: the format's)",
    "top_k": "top-k sampling (default: off)",
    "max_tokens": "new tokens per sample (default: the format's, 8192 for the seed judges)",
    "seed": "judge seed; sample i of a match uses seed hash(match, seed) + i (default 0)",
    "structured": "constrain outputs with the format's verdict regex (smoke tests; default false)",
    "max_thinking_chars": "thinking characters the structured-output regex allows (default 64)",
}

#: The candidate defences (:mod:`tourney.judges.formats`): what each option does.
DEFENCE_OPTIONS: dict[str, str] = {
    "neutralise_candidates": "insert a zero-width space into the judge's control strings (</think>, verdict "
    "strings, quote tags) inside candidate text, so a candidate cannot write the judge's verdict; false "
    "renders the authors' exact prompt (default true)",
    "quote_check": "abstain on a verdict that is verbatim text of a candidate (default true)",
}

_SEED_BITS = 31  # fits any server's signed 32/64-bit seed field, with room for + sample index


@dataclass(frozen=True)
class SamplingSettings:
    """The sampling a model-backed judge uses for every match (format defaults + options)."""

    format: str
    temperature: float
    top_p: float
    top_k: int | None
    max_tokens: int
    seed: int
    structured: bool
    max_thinking_chars: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_options(cls, fmt: JudgeFormat, options: dict[str, Any], judge: str) -> SamplingSettings:
        """Pop the sampling options out of ``options`` (the rest are the backend's) and validate."""

        def num(key: str, default: Any, kind: Callable[[Any], Any], ok: Callable[[Any], bool], what: str) -> Any:
            value = options.pop(key, default)
            if value is None:
                return None
            try:
                if isinstance(value, bool) and kind is not bool:
                    raise ValueError
                value = kind(value)
            except (TypeError, ValueError):
                raise SpecError(f"option {key} of judge {judge!r} must be {what}, got {value!r}") from None
            if not ok(value):
                raise SpecError(f"option {key} of judge {judge!r} must be {what}, got {value!r}")
            return value

        structured = options.pop("structured", False)
        if not isinstance(structured, bool):
            raise SpecError(f"option structured of judge {judge!r} must be true or false, got {structured!r}")
        settings = cls(
            format=fmt.name,
            temperature=num("temperature", fmt.temperature, float, lambda v: v >= 0, "a number >= 0"),
            top_p=num("top_p", fmt.top_p, float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
            top_k=num("top_k", None, int, lambda v: v >= -1, "an integer >= -1"),
            max_tokens=num("max_tokens", fmt.max_tokens, int, lambda v: v >= 1, "an integer >= 1"),
            seed=num("seed", 0, int, lambda v: True, "an integer"),
            structured=structured,
            max_thinking_chars=num("max_thinking_chars", 64, int, lambda v: v >= 0, "an integer >= 0"),
        )
        if settings.structured:  # a thinking span the token budget cannot hold: every sample would abstain
            check_structured_budget(settings.max_thinking_chars, settings.max_tokens, fmt, judge=judge)
        return settings


@dataclass(frozen=True)
class Defences:
    """The candidate defences of a model-backed judge (see :data:`DEFENCE_OPTIONS`).

    They are not sampling settings and stay out of the judge's identity: a match's store key
    takes them into account only when they change something for that match
    (:meth:`match_identity`), so verdicts stored for ordinary matches stay valid either way."""

    neutralise: bool = True
    quote_check: bool = True

    @classmethod
    def from_options(cls, options: dict[str, Any], judge: str) -> Defences:
        """Pop ``neutralise_candidates`` and ``quote_check`` out of ``options`` and validate."""
        values = {}
        for key in DEFENCE_OPTIONS:
            value = options.pop(key, True)
            if not isinstance(value, bool):
                raise SpecError(f"option {key} of judge {judge!r} must be true or false, got {value!r}")
            values[key] = value
        return cls(neutralise=values["neutralise_candidates"], quote_check=values["quote_check"])

    def to_dict(self) -> dict[str, bool]:
        return {"neutralise_candidates": self.neutralise, "quote_check": self.quote_check}

    def candidates(self, match: Match) -> tuple[str, str] | None:
        """What the parser checks a verdict against: the match's ORIGINAL texts (a quote of a
        context-truncated text is still a substring of the original), or None when off."""
        return (match.first_text, match.second_text) if self.quote_check else None

    def match_identity(self, fmt: JudgeFormat, match: Match) -> dict[str, Any]:
        """What this match's store key adds: ``{}`` unless the defences change its prompt or parse."""
        return fmt.defence_identity(
            match.first_text, match.second_text, neutralise=self.neutralise, quote_check=self.quote_check
        )


def resolve_format(model: str, options: dict[str, Any], judge: str) -> JudgeFormat:
    """The judge format: the ``format`` option (popped) if given, else guessed from ``model``."""
    name = options.pop("format", None)
    if name is not None:
        return get_format(str(name))
    fmt = format_for_model(model)
    if fmt is None:
        raise SpecError(
            f"judge {judge!r}: cannot tell the judge format from the model name {model!r}; "
            "set it with format=rrm, format=rm_r1 or format=rm_r1_instruct (--format)"
        )
    return fmt


def match_seed(match: Match, judge_seed: int) -> int:
    """Seed of sample 0 of ``match``; sample ``i`` uses ``match_seed + i``.

    A hash of the prompt, the two texts in presentation order and the judge seed: the same in
    every process and machine, and independent of ``sample_offset``, so a vote extended later
    reuses the seed sequence instead of starting a new one."""
    return stable_seed(prompt_text(match.prompt), match.first_text, match.second_text, judge_seed, bits=_SEED_BITS)


def request_id(match: Match, judge: str) -> str:
    """A request id derived from the match (key and texts): the same whenever the match runs."""
    h = content_hash(repr((match.key, prompt_text(match.prompt), match.first_text, match.second_text)), 8)
    return f"tourney-{judge}-{h}-{match.sample_offset}x{match.samples}"


def build_judgement(
    fmt: JudgeFormat,
    *,
    sample: int,
    text: str | None,
    reasoning: str | None = None,
    finish_reason: str | None = None,
    candidates: tuple[str, str] | None = None,
    prompt_tokens: int = 0,
    cached_tokens: int = 0,
    completion_tokens: int = 0,
    latency_s: float = 0.0,
    extra: Mapping[str, Any] | None = None,
) -> Judgement:
    """One judgement from one sample's output (raw ``text``, or ``text`` + ``reasoning`` as a
    server with a reasoning parser split it).

    The format's parser decides (:meth:`~tourney.judges.formats.JudgeFormat.parse`): a sample cut
    at ``max_tokens`` (``finish_reason == "length"``) abstains even when a verdict string is
    visible, and with ``candidates`` (the match's two texts) a verdict that is verbatim candidate
    text abstains. Without ``</think>`` the unfinished thinking is still kept as ``reasoning``.
    """
    parsed: Parsed = fmt.parse(text, reasoning, candidates=candidates, finish_reason=finish_reason)
    outcome, reason = parsed.outcome, parsed.reason
    thinking = parsed.reasoning
    if not thinking and fmt.thinks:
        raw = text if reasoning is None else reasoning
        thinking = split_thinking(raw)[0] if raw else ""
    out: dict[str, Any] = {}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    if reason:
        out["reason"] = reason
    if parsed.sections:
        out["sections"] = dict(parsed.sections)
    if extra:
        out.update(extra)
    return Judgement(
        outcome=outcome,
        reasoning=thinking,
        verdict=parsed.verdict,
        sample=sample,
        prompt_tokens=prompt_tokens,
        cached_tokens=cached_tokens,
        completion_tokens=completion_tokens,
        latency_s=latency_s,
        extra=out,
    )


def render_messages(fmt: JudgeFormat, match: Match, *, neutralise: bool = True) -> list[dict[str, str]]:
    """The format's chat messages for ``match`` (candidates neutralised unless ``neutralise`` is
    false); a prompt the format cannot render (InputError) becomes a permanent :class:`JudgeError`."""
    try:
        return fmt.messages(match.prompt, match.first_text, match.second_text, neutralise=neutralise)
    except InputError as exc:  # a bad prompt never gets better on retry
        raise JudgeError(f"the {fmt.name} format cannot render this match: {exc}") from exc
