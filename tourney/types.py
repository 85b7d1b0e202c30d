"""Records that cross process boundaries: matches, judgements, results.

A :class:`Request` (what a strategy asks for) becomes a :class:`Match` (what a judge sees), which
gets :class:`Judgement` samples back; a strategy sees them as a :class:`MatchResult` and concludes
a :class:`Ranking`; the scheduler reports each input item as a :class:`PromptResult` (one output
line, :func:`dumps`).

Conventions used everywhere in tourney:

* Candidates of one prompt are numbered ``0 .. n-1`` in input order.
* In a :class:`Match`, ``first`` is the candidate shown FIRST to the judge (position "A",
  "Assistant 1", "Chatbot A") and ``second`` the one shown second.
* :class:`Outcome` ``A`` means the first-shown response won, ``B`` the second-shown one.
  An abstention (the judge gave no parseable verdict) and an error (the call failed) are
  outcomes of their own: failure is never encoded as a number or as a silent tie.

All records are frozen dataclasses of plain values, so they pickle cheaply (Ray) and
serialise to JSON with :func:`dataclasses.asdict`. They hold what every judge, strategy and
executor shares, and nothing that only one judge uses (a judge's per-prompt input reaches it
through :meth:`tourney.judges.base.Judge.for_item`).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

__all__ = [
    "Message",
    "Prompt",
    "Outcome",
    "Request",
    "Match",
    "Judgement",
    "MatchResult",
    "PromptResult",
    "Ranking",
    "TokenUsage",
    "dumps",
]

#: A chat message ``{"role": ..., "content": ...}``.
Message = Mapping[str, str]
#: A prompt is either a plain user question or a list of chat messages (multi-turn).
Prompt = str | Sequence[Message]


class Outcome(str, enum.Enum):
    """The outcome of ONE judge sample on a match."""

    A = "A"  #: the first-shown response is better
    B = "B"  #: the second-shown response is better
    TIE = "tie"  #: the judge explicitly called it a tie (the seed judges never do)
    ABSTAIN = "abstain"  #: no parseable verdict (truncated, missing or ambiguous)
    ERROR = "error"  #: the judge call failed; ``Judgement.error`` says why

    @property
    def is_vote(self) -> bool:
        """True for A, B and TIE: outcomes that carry a preference (or an explicit tie)."""
        return self in (Outcome.A, Outcome.B, Outcome.TIE)

    def swapped(self) -> Outcome:
        """The same verdict seen from the other presentation order."""
        if self is Outcome.A:
            return Outcome.B
        if self is Outcome.B:
            return Outcome.A
        return self


@dataclass(frozen=True)
class Request:
    """What a strategy asks for: judge candidate ``first`` (shown first) against ``second``.

    ``samples`` independent samples are wanted (voting@k), with sample indices
    ``sample_offset .. sample_offset + samples - 1``; a judge derives its per-sample seed
    from the index, so extending a vote later with a higher offset is reproducible.
    ``tag`` is the strategy's own bookkeeping (hashable, e.g. a bracket slot); it makes two
    requests for the same pair distinct.
    """

    first: int
    second: int
    samples: int = 1
    sample_offset: int = 0
    tag: Any = None

    def __post_init__(self) -> None:
        if self.first == self.second:
            raise ValueError(f"a request must compare two different candidates, got {self.first} twice")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")


@dataclass(frozen=True)
class Match:
    """A match as a judge sees it: one prompt and two response texts in presentation order."""

    prompt: Prompt
    first_text: str
    second_text: str
    prompt_id: str = ""
    first: int = -1  #: candidate index of ``first_text`` (bookkeeping; judges may ignore it)
    second: int = -1  #: candidate index of ``second_text``
    samples: int = 1
    sample_offset: int = 0

    @property
    def key(self) -> tuple[str, int, int, int, int]:
        """Identity of the match, independent of when or where it runs."""
        return (self.prompt_id, self.first, self.second, self.sample_offset, self.samples)


@dataclass(frozen=True)
class Judgement:
    """One judge sample on one match.

    ``reasoning`` is the judge's thinking (text before the last ``</think>``), ``verdict``
    the text the verdict was parsed from (or that failed to parse). Tokens: ``prompt_tokens``
    were sent, ``cached_tokens`` of them were served from the engine's prefix cache (0 when
    the engine does not say), ``completion_tokens`` were generated. ``latency_s`` is the
    wall time of the call that produced this sample (shared by the k samples of one call).
    """

    outcome: Outcome
    reasoning: str = ""
    verdict: str = ""
    sample: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    #: structured extras a format surfaces (RM-R1 instruct's <type>, <rubric>, ...) or notes
    #: such as the context-budget policy applied; plain JSON values only.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, message: str, sample: int = 0, latency_s: float = 0.0) -> Judgement:
        return cls(outcome=Outcome.ERROR, error=message, sample=sample, latency_s=latency_s)


@dataclass(frozen=True)
class MatchResult:
    """All the samples a strategy got back for one :class:`Request`.

    Counts are from the REQUEST's point of view: ``first_wins`` counts samples won by
    ``request.first``. A request whose samples include re-samples of abstentions lists every
    sample, abstentions included, so nothing paid for is hidden.
    """

    request: Request
    judgements: tuple[Judgement, ...]

    @cached_property
    def _tally(self) -> dict[Outcome, int]:
        """Samples per outcome, counted once (strategies, run health and the output all ask)."""
        tally = dict.fromkeys(Outcome, 0)
        for j in self.judgements:
            o = j.outcome
            if type(o) is Outcome:
                tally[o] += 1
        return tally

    def count(self, outcome: Outcome) -> int:
        return self._tally[outcome] if type(outcome) is Outcome else 0

    @property
    def first_wins(self) -> int:
        return self.count(Outcome.A)

    @property
    def second_wins(self) -> int:
        return self.count(Outcome.B)

    @property
    def ties(self) -> int:
        return self.count(Outcome.TIE)

    @property
    def abstentions(self) -> int:
        return self.count(Outcome.ABSTAIN)

    @property
    def errors(self) -> int:
        return self.count(Outcome.ERROR)

    @property
    def votes(self) -> int:
        """Samples that carry a preference or an explicit tie."""
        return self.first_wins + self.second_wins + self.ties

    @property
    def outcome(self) -> Outcome:
        """Majority over valid votes. No valid vote: ERROR if every sample failed, else ABSTAIN."""
        a, b = self.first_wins, self.second_wins
        if a > b:
            return Outcome.A
        if b > a:
            return Outcome.B
        if self.votes:
            return Outcome.TIE
        if self.judgements and all(j.outcome is Outcome.ERROR for j in self.judgements):
            return Outcome.ERROR
        return Outcome.ABSTAIN

    def winner(self) -> int | None:
        """Candidate index of the majority winner, or None (tie, abstention, error)."""
        o = self.outcome
        if o is Outcome.A:
            return self.request.first
        if o is Outcome.B:
            return self.request.second
        return None


@dataclass(frozen=True)
class TokenUsage:
    prompt: int = 0
    cached: int = 0
    completion: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.prompt + other.prompt, self.cached + other.cached, self.completion + other.completion)

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @classmethod
    def of(cls, judgements: Sequence[Judgement]) -> TokenUsage:
        return cls(
            sum(j.prompt_tokens for j in judgements),
            sum(j.cached_tokens for j in judgements),
            sum(j.completion_tokens for j in judgements),
        )


@dataclass(frozen=True)
class Ranking:
    """What a strategy concludes for one prompt.

    ``order`` lists every candidate index exactly once, best first. ``scores[i]`` is
    candidate i's score on the strategy's own scale (higher is better; the scale is named
    in ``scale``). ``uncertainty[i]``, where the strategy has one, is a standard error or
    similar on the same scale. ``info`` carries strategy-specific details (JSON values).
    """

    order: tuple[int, ...]
    scores: tuple[float, ...]
    scale: str = "score"
    uncertainty: tuple[float, ...] | None = None
    budget_limited: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.scores)
        if sorted(self.order) != list(range(n)):
            raise ValueError(f"ranking order {self.order} is not a permutation of 0..{n - 1}")

    @property
    def best(self) -> int:
        return self.order[0]


#: the top-level keys of a result row (``PromptResult.to_json``), in the order they are written
#: (also the parquet schema's column order, :mod:`tourney.outputs`)
RESULT_COLUMNS = (
    "id",
    "status",
    "error",
    "best",
    "best_response",
    "ranking",
    "scores",
    "scale",
    "uncertainty",
    "duplicates",
    "comparisons",
    "samples",
    "abstentions",
    "ties",
    "errors",
    "tokens",
    "budget_limited",
    "strategy",
    "judge",
    "seed",
    "matches",
    "info",
)
#: every top-level key a result row can hold, plus ``input``, where an input field of the same
#: name as one of these is written instead (see ``to_json``)
RESULT_KEYS = frozenset({*RESULT_COLUMNS, "input"})


@dataclass(frozen=True)
class PromptResult:
    """The result for one input item (one output row).

    ``id`` is the item's id (None for a row whose id could not be read). ``duplicates`` lists
    the groups of identical responses (input positions, the judged one first) that were judged
    once and share their rank. ``extra`` holds the input row's other fields, written to the
    output row unchanged (see :meth:`to_json`).
    """

    index: int
    id: str | None
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
    duplicates: tuple[tuple[int, ...], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: sequential rounds: judge calls on the prompt's critical path (the scheduler's module
    #: docstring); with ``critical_path_s``, the judge latency along it. Not in the output line.
    rounds: int = 0
    critical_path_s: float = 0.0

    @classmethod
    def failed(cls, index: int, id_: str | None, message: str, extra: Mapping[str, Any] | None = None) -> PromptResult:
        """The result of an item that could not be ranked (bad input, a broken strategy)."""
        return cls(index=index, id=id_, status="failed", messages=(message,), extra=extra or {})

    def to_json(self) -> dict[str, Any]:
        """The output row's fields, in output order (see the README's output format).

        ``strategy`` and ``judge`` are the specs that ran (``name``, ``arg`` when there is one,
        and ``options`` only when there are any: an empty object is a struct without fields,
        which parquet and ``datasets`` cannot store). ``duplicates`` is present only when the
        item had identical responses. The input row's other fields follow, unchanged; one whose
        name is a result key (:data:`RESULT_KEYS`) goes under ``input`` instead.
        """
        d: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.status == "failed":
            d["error"] = "; ".join(self.messages)
            _add_extra(d, self.extra)
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
        if self.duplicates:
            d["duplicates"] = [list(g) for g in self.duplicates]
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
        d.update(
            strategy=_spec_json(self.strategy), judge=_spec_json(self.judge), seed=self.seed, matches=list(self.matches)
        )
        if self.info:
            d["info"] = _jsonable(self.info)
        _add_extra(d, self.extra)
        return d


def _spec_json(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded spec without an empty ``options`` object (see :meth:`PromptResult.to_json`)."""
    d = dict(spec)
    if "options" in d and not d["options"]:
        del d["options"]
    elif "options" in d:
        d["options"] = dict(d["options"])
    return d


def _add_extra(d: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """The input row's other fields after the result's (a result key's namesake under ``input``)."""
    if not extra:
        return
    moved: dict[str, Any] = {}
    for k, v in extra.items():
        if k in RESULT_KEYS:
            moved[k] = v
        else:
            d[k] = v
    if moved:
        d["input"] = moved


def _jsonable(x: Any) -> Any:
    t = type(x)
    if t is str or t is int or t is bool or x is None:  # the common leaves first: a result's info is walked whole
        return x
    if t is float:
        return round(x, 10)
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return x.item()
    if isinstance(x, float):
        return round(x, 10)
    return x


def _json_default(x: Any) -> Any:
    """JSON for the values an input row can hold that JSON has no type for (parquet and
    ``datasets`` rows): dates and times in ISO 8601, decimals as their digits, binary as base64,
    numpy scalars and arrays as numbers and lists."""
    if isinstance(x, (datetime.datetime, datetime.date, datetime.time)):
        return x.isoformat()
    if isinstance(x, datetime.timedelta):
        return x.total_seconds()
    if isinstance(x, decimal.Decimal):
        return str(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(x)).decode("ascii")
    if hasattr(x, "tolist") and callable(x.tolist):  # numpy arrays and scalars
        return x.tolist()
    raise TypeError(f"Object of type {type(x).__name__} is not JSON serializable")


def _finite_or_none(x: Any) -> Any:
    """``x`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    return x


def dumps(result: PromptResult) -> str:
    """One output line (no newline): ``result.to_json()`` as JSON, non-ASCII kept, fields in order.

    Input fields passed through that JSON cannot hold as they are: NaN and infinities become
    null, dates and times ISO 8601 text, decimals text, binary base64 text (the result's own
    fields are written as they always were)."""
    if not result.extra:
        return json.dumps(result.to_json(), ensure_ascii=False, sort_keys=False)
    extra = result.extra
    try:
        json.dumps(extra, allow_nan=False, default=_json_default)
    except ValueError:  # a NaN or an infinity: not JSON
        extra = _finite_or_none(extra)
    d = (result if extra is result.extra else replace(result, extra=extra)).to_json()
    return json.dumps(d, ensure_ascii=False, sort_keys=False, default=_json_default)
