"""A simulated judge with a known truth: for tests, benchmarks and strategy research.

Each candidate has a latent quality: the input's ``scores`` when given, else a draw from
``Normal(0, spread)`` keyed by (judge seed, prompt, response text). The input's ``scores`` reach
the judge through :meth:`SimulatedJudge.for_item` (the scheduler calls it once per prompt): it
returns a light view of the judge with the item's scores bound as the truth. For a match,

    P(first-shown wins) = F((q_first - q_second) / noise + offset)

where F is the logistic function (``model=bradley_terry``) or the standard normal CDF
(``model=thurstone``), and ``offset`` makes P(first wins) = 0.5 + ``position_bias`` when the two
qualities are equal (a judge that favours the first-shown response, as real LLM judges do).
Defaults are calibrated to a realistic reasoning judge: with qualities ~ N(0, 1), about 83%
agreement with the latent order on random pairs (noise 0.5 logistic / 0.85 probit) and a
first-position bias of 0.1.

Each sample may abstain (``abstain_rate``), be an explicit tie (``tie_rate``) or fail
(``error_rate``: the call raises a transient error, keyed by the attempt, so a retry can
succeed). Latency is lognormal with median ``latency_median_s`` (0 = instant) and ``sigma``
(set the attribute ``sleep = False`` to record the drawn latencies without waiting for them:
the strategy harness computes makespans from the latency model that way);
completion tokens are lognormal around ``tokens_median``. Every draw is a hash of
(seed, prompt, the two texts in order, sample index): deterministic for a seed and a match,
whatever order the matches run in, in any process.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import JudgeError, SpecError, TransientJudgeError
from ..hashing import content_hash, prompt_text, uniforms
from ..registry import Spec
from ..types import Judgement, Match, Outcome
from .base import JUDGES, Judge

if TYPE_CHECKING:
    from ..items import Item

_STD_NORMAL = NormalDist()
_DEFAULT_NOISE = {"bradley_terry": 0.5, "thurstone": 0.85}

_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "model": "bradley_terry",
    "spread": 1.0,
    "noise": None,
    "position_bias": 0.1,
    "tie_rate": 0.0,
    "abstain_rate": 0.0,
    "error_rate": 0.0,
    "latency_median_s": 0.0,
    "latency_sigma": 1.0,
    "tokens_median": 600,
    "tokens_sigma": 0.6,
}


#: The truth of the judge call in progress: response text -> latent quality, set by a view that
#: :meth:`SimulatedJudge.for_item` made, for the duration of one call (per asyncio task, so
#: concurrent calls of different prompts never see each other's truth).
_TRUTH: ContextVar[Mapping[str, float] | None] = ContextVar("tourney_simulated_truth", default=None)


@lru_cache(maxsize=1024)  # a prompt's texts come back in every one of its matches
def _text_id(text: str) -> str:
    return content_hash(text, 12)


@JUDGES.register("simulated")
class SimulatedJudge(Judge):
    options: ClassVar[dict[str, str]] = {
        "seed": "seed of the latent qualities and every draw (default 0)",
        "model": "bradley_terry (logistic) or thurstone (probit)",
        "spread": "standard deviation of drawn latent qualities (default 1.0)",
        "noise": "judge noise scale; default calibrated to ~83% agreement",
        "position_bias": "P(first wins) - 0.5 at equal quality (default 0.1)",
        "tie_rate": "probability a sample is an explicit tie (default 0)",
        "abstain_rate": "probability a sample abstains (default 0)",
        "error_rate": "probability a call fails with a transient error (default 0)",
        "latency_median_s": "median latency of a call in seconds (default 0: instant)",
        "latency_sigma": "lognormal sigma of the latency (default 1.0)",
        "tokens_median": "median completion tokens per sample (default 600)",
        "tokens_sigma": "lognormal sigma of completion tokens (default 0.6)",
    }

    def __init__(self, spec: Spec | None = None, **options: Any):
        spec = spec or Spec("simulated", None, options)
        super().__init__(spec)
        if spec.arg is not None:
            raise SpecError(f"the simulated judge takes options key=value, not {spec.arg!r}")
        unknown = sorted(set(spec.options) - set(_DEFAULTS))
        if unknown:
            raise SpecError(
                f"unknown option(s) {', '.join(unknown)} for judge 'simulated'; known: {', '.join(sorted(_DEFAULTS))}"
            )
        o = {**_DEFAULTS, **spec.options}
        if o["model"] not in _DEFAULT_NOISE:
            raise SpecError(f"simulated judge model must be one of {sorted(_DEFAULT_NOISE)}, got {o['model']!r}")
        for name in ("tie_rate", "abstain_rate", "error_rate"):
            if not 0.0 <= float(o[name]) <= 1.0:
                raise SpecError(f"{name} must be in [0, 1], got {o[name]!r}")
        if not -0.5 < float(o["position_bias"]) < 0.5:
            raise SpecError(f"position_bias must be in (-0.5, 0.5), got {o['position_bias']!r}")
        self.seed = int(o["seed"])
        self.model = o["model"]
        self.spread = float(o["spread"])
        self.noise = float(o["noise"] if o["noise"] is not None else _DEFAULT_NOISE[self.model])
        if self.noise <= 0:
            raise SpecError(f"noise must be > 0, got {self.noise}")
        self.position_bias = float(o["position_bias"])
        self.tie_rate = float(o["tie_rate"])
        self.abstain_rate = float(o["abstain_rate"])
        self.error_rate = float(o["error_rate"])
        self.latency_median_s = float(o["latency_median_s"])
        self.latency_sigma = float(o["latency_sigma"])
        self.tokens_median = float(o["tokens_median"])
        self.tokens_sigma = float(o["tokens_sigma"])
        p0 = 0.5 + self.position_bias
        self._offset = math.log(p0 / (1 - p0)) if self.model == "bradley_terry" else _STD_NORMAL.inv_cdf(p0)
        self._attempts: dict[tuple, int] = {}
        self.sleep = True  # False: latencies are drawn and recorded, never waited for (the harness)
        self._quality = lru_cache(maxsize=65536)(self._draw_quality)

    # -- the truth --------------------------------------------------------------------------
    def for_item(self, item: Item) -> Judge:
        """This judge with ``item``'s ``scores`` as the latent qualities of its responses;
        ``self`` when the item has none (the qualities are then drawn).

        The view judges through this judge (its state, and a subclass's :meth:`judge`), with
        the item's truth in effect for each call; its identity is this judge's (the store keys
        the pair's scores itself, see :mod:`tourney.cache`)."""
        if item.scores is None:
            return self
        return _WithTruth(self, {text: float(q) for text, q in zip(item.responses, item.scores)})

    def _draw_quality(self, prompt_text: str, text: str) -> float:
        (u,) = uniforms(f"q|{self.seed}|{_text_id(prompt_text)}|{_text_id(text)}", 1)
        return self.spread * _STD_NORMAL.inv_cdf(u)

    def quality(self, match: Match, which: str) -> float:
        """Latent quality of the first- or second-shown response of ``match``: the bound item's
        score (inside a :meth:`for_item` view's call), else the seeded draw."""
        text = match.first_text if which == "first" else match.second_text
        truth = _TRUTH.get()
        if truth is None:
            return self._quality(prompt_text(match.prompt), text)
        try:
            return truth[text]
        except KeyError:
            raise JudgeError(
                f"the simulated judge was bound to prompt {match.prompt_id or '?'}'s scores, but the "
                f"{which}-shown response is not one of its responses"
            ) from None

    def win_probability(self, first_quality: float, second_quality: float) -> float:
        """P(the first-shown response wins | a decisive vote) for the two latent qualities."""
        z = (first_quality - second_quality) / self.noise + self._offset
        if self.model == "bradley_terry":
            return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        return _STD_NORMAL.cdf(z)

    def p_first(self, match: Match) -> float:
        """P(the first-shown response of ``match`` wins | a decisive vote)."""
        return self.win_probability(self.quality(match, "first"), self.quality(match, "second"))

    # -- the judge --------------------------------------------------------------------------
    async def judge(self, match: Match) -> list[Judgement]:
        ptext = prompt_text(match.prompt)
        base = f"{self.seed}|{_text_id(ptext)}|{_text_id(match.first_text)}|{_text_id(match.second_text)}"
        if self.error_rate > 0:
            # per prompt id too: identical texts under two ids must not share an attempt count
            call_key = (match.prompt_id, base, match.sample_offset, match.samples)
            attempt = self._attempts.get(call_key, 0)
            self._attempts[call_key] = attempt + 1
            (u,) = uniforms(f"err|{base}|{match.sample_offset}|{attempt}", 1)
            if u < self.error_rate:
                raise TransientJudgeError(f"simulated judge error (attempt {attempt + 1})")
        p = self.p_first(match)
        prompt_tokens = 200 + (len(ptext) + len(match.first_text) + len(match.second_text)) // 4
        out: list[Judgement] = []
        latency = 0.0
        for s in range(match.sample_offset, match.sample_offset + match.samples):
            u_out, u_abs, u_tie, u_lat, u_tok = uniforms(f"s|{base}|{s}", 5)
            if self.latency_median_s > 0:
                latency = max(
                    latency, self.latency_median_s * math.exp(self.latency_sigma * _STD_NORMAL.inv_cdf(u_lat))
                )
            tokens = max(1, int(self.tokens_median * math.exp(self.tokens_sigma * _STD_NORMAL.inv_cdf(u_tok))))
            if u_abs < self.abstain_rate:
                outcome, verdict = Outcome.ABSTAIN, ""
            elif u_tie < self.tie_rate:
                outcome, verdict = Outcome.TIE, "tie"
            else:
                outcome = Outcome.A if u_out < p else Outcome.B
                verdict = outcome.value
            out.append(
                Judgement(
                    outcome=outcome,
                    reasoning=f"[simulated] P(first wins)={p:.4f}",
                    verdict=verdict,
                    sample=s,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=tokens,
                )
            )
        if latency > 0 and self.sleep:
            await asyncio.sleep(latency)
        if latency:
            out = [_with_latency(j, latency) for j in out]
        return out

    def identity(self) -> dict[str, Any]:
        return {"name": "simulated", "options": {k: getattr(self, k) for k in _DEFAULTS}}


class _WithTruth(Judge):
    """A :class:`SimulatedJudge` bound to one input item's ``scores`` (see
    :meth:`SimulatedJudge.for_item`). Every call goes to the base judge with the truth set for
    that call only, so the base's state (error attempts, a subclass's counters or ``dead``
    flag) stays in one place and a subclass's own :meth:`judge` still runs."""

    def __init__(self, base: SimulatedJudge, truth: Mapping[str, float]):
        super().__init__(base.spec)
        self.base = base
        self.truth = truth

    async def judge(self, match: Match) -> list[Judgement]:
        token = _TRUTH.set(self.truth)
        try:
            return await self.base.judge(match)
        finally:
            _TRUTH.reset(token)

    def quality(self, match: Match, which: str) -> float:
        token = _TRUTH.set(self.truth)
        try:
            return self.base.quality(match, which)
        finally:
            _TRUTH.reset(token)

    def p_first(self, match: Match) -> float:
        token = _TRUTH.set(self.truth)
        try:
            return self.base.p_first(match)
        finally:
            _TRUTH.reset(token)

    def for_item(self, item: Item) -> Judge:
        return self.base.for_item(item)

    def identity(self) -> dict[str, Any]:
        return self.base.identity()

    def describe(self) -> dict[str, Any]:
        return self.base.describe()


def _with_latency(j: Judgement, latency: float) -> Judgement:
    return replace(j, latency_s=latency)
