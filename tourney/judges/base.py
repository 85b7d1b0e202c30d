"""The judge seam: one async method that judges a match.

A judge returns ``match.samples`` :class:`~tourney.types.Judgement` objects for a
:class:`~tourney.types.Match`, with sample indices ``match.sample_offset ..``. Judges must be
*idempotent*: the same match (same prompt, texts, order, sample indices) gives the same
judgement whenever and wherever it runs, as far as the backend allows (the simulated and
replay judges exactly; vLLM through per-request seeds derived from the match).

Failure: raise :class:`~tourney.errors.TransientJudgeError` (or any exception) for a
failure a retry may fix, :class:`~tourney.errors.JudgeError` for one it will not; or return
a judgement with outcome ERROR. A missing or unparseable verdict is an ABSTAIN judgement,
never an exception.
"""

from __future__ import annotations

import asyncio
import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from ..errors import SpecError
from ..registry import Registry, Spec, parse_spec
from ..types import Judgement, Match

__all__ = ["Judge", "JUDGES", "build_judge"]


class Judge(ABC):
    """Base class of judges. Subclasses set ``name`` (by registering) and implement ``judge``.

    ``spec`` is the :class:`~tourney.registry.Spec` the judge was built from; it is recorded in
    every result and must never contain a secret (API keys come from the environment).
    """

    name: ClassVar[str] = "judge"
    #: options this judge accepts (for validation and --help); subclasses extend it
    options: ClassVar[Mapping[str, str]] = {}
    #: whether a new sample index gives a fresh draw, so an abstention is worth re-sampling
    #: (False for judges that replay a fixed record per sample)
    resample_abstentions: ClassVar[bool] = True

    def __init__(self, spec: Spec | None = None):
        self.spec = spec or Spec(self.name)

    @abstractmethod
    async def judge(self, match: Match) -> list[Judgement]:
        """Judge one match; return exactly ``match.samples`` judgements."""

    async def judge_batch(self, matches: Sequence[Match]) -> list[list[Judgement] | BaseException]:
        """Judge many matches concurrently. A failed match yields its exception in its slot,
        so one failure does not lose the others."""
        return list(await asyncio.gather(*(self.judge(m) for m in matches), return_exceptions=True))

    def identity(self) -> dict[str, Any]:
        """What determines this judge's answers (for the store's content-addressed key):
        by default the spec. Judges with sampling settings add them."""
        return self.spec.to_dict()

    async def aclose(self) -> None:
        """Release engines, sessions and files."""

    def describe(self) -> dict[str, Any]:
        return self.spec.to_dict()

    async def preflight(self) -> None:
        """Check, once and cheaply, that the judge can work at all, before any match is paid
        for; raise :class:`~tourney.errors.JudgeUnavailableError` saying what to fix if not
        (a server that is down, a refused key, a model not served). The scheduler calls it at
        the start of every run; it must be cheap to call again. Default: nothing to check."""


def _load_builtin_judges() -> None:
    from . import replay, simulated  # noqa: F401  (register themselves)

    for name, target in _LAZY.items():
        if name not in JUDGES._items:  # noqa: SLF001
            JUDGES._items[name] = target  # type: ignore[assignment]  # noqa: SLF001


# Heavy backends are registered by import path and imported only when used.
_LAZY: dict[str, str] = {
    "vllm": "tourney.judges.vllm_judge:VLLMJudge",
    "openai": "tourney.judges.openai_judge:OpenAIJudge",
}

JUDGES: Registry[Any] = Registry("judge", loader=_load_builtin_judges)


def build_judge(spec: str | Spec, options: Mapping[str, Any] | None = None) -> Judge:
    """Build a judge from a spec string such as ``simulated``, ``replay:FILE``,
    ``vllm:MODEL`` or ``openai:URL``; ``options`` add to the spec's options."""
    sp = parse_spec(spec, options) if isinstance(spec, str) else spec
    target = JUDGES.get(sp.name)
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise SpecError(f"judge {sp.name!r} could not be loaded: {exc}") from exc
        target = getattr(mod, attr)
    try:
        return target(sp)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"bad options for judge {sp.name!r}: {exc}") from exc
