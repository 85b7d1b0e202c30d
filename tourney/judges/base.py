"""The judge seam: one async method that judges a match.

A judge returns ``match.samples`` :class:`~tourney.types.Judgement` objects for a
:class:`~tourney.types.Match`, with sample indices ``match.sample_offset ..``. Judges must be
*idempotent*: the same match (same prompt, texts, order, sample indices) gives the same
judgement whenever and wherever it runs, as far as the backend allows (the simulated and
replay judges exactly; vLLM through per-request seeds derived from the match).

Per-prompt input: a judge that needs more of the input item than the match carries (the
simulated judge's truth, the input's ``scores``) gets it through :meth:`Judge.for_item`; see
there. Core records never carry one judge's data.

Failure: raise :class:`~tourney.errors.TransientJudgeError` (or any exception) for a
failure a retry may fix, :class:`~tourney.errors.JudgeError` for one it will not; or return
a judgement with outcome ERROR. A missing or unparseable verdict is an ABSTAIN judgement,
never an exception.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import SpecError
from ..registry import Registry, Spec, parse_spec
from ..types import Judgement, Match

if TYPE_CHECKING:
    from ..items import Item

__all__ = ["ENTRY_POINT_GROUP", "JUDGES", "Judge", "build_judge"]


class Judge(ABC):
    """Base class of judges. Subclasses set ``name`` (by registering) and implement ``judge``.

    ``spec`` is the :class:`~tourney.registry.Spec` the judge was built from; it is recorded in
    every result and must never contain a secret (API keys come from the environment).

    The seam: :meth:`judge` (one match in, its samples out) is all a judge must implement.
    Optional hooks: :meth:`for_item`, the judge for one input item's matches, through which a
    judge gets per-prompt input that matches do not carry (the simulated judge's truth);
    :meth:`identity`, what the judgement store keys answers by; :attr:`fresh_samples`, whether
    re-sampling an abstention can give another answer; :meth:`aclose`.
    """

    name: ClassVar[str] = "judge"
    #: options this judge accepts (for validation and --help); subclasses extend it
    options: ClassVar[Mapping[str, str]] = {}
    #: whether a new sample index gives a fresh draw, so an abstention is worth re-sampling
    #: (False for judges that replay a fixed record per sample); the scheduler reads it. A class
    #: attribute, which a wrapper (the Ray pool) sets per instance to its inner judge's value.
    fresh_samples: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "resample_abstentions" in vars(cls):  # the old name would be silently ignored
            raise TypeError(
                f"{cls.__qualname__}.resample_abstentions: the Judge flag is now called fresh_samples "
                "(resample_abstentions is the scheduler's count of re-samples)"
            )

    def __init__(self, spec: Spec | None = None):
        self.spec = spec or Spec(self.name)

    @abstractmethod
    async def judge(self, match: Match) -> list[Judgement]:
        """Judge one match; return exactly ``match.samples`` judgements."""

    def for_item(self, item: Item) -> Judge:
        """The judge for the matches of one input item: ``self`` unless this judge reads
        per-prompt input beyond what a :class:`~tourney.types.Match` carries.

        The scheduler calls it once per prompt and sends that prompt's matches to the judge it
        returns. This is how input meant for one judge reaches it without riding in every
        match: the simulated judge returns a light view with the item's ``scores`` bound as its
        truth (:meth:`tourney.judges.simulated.SimulatedJudge.for_item`); every other built-in
        judge returns ``self``.

        Contract: the returned judge keeps this judge's :meth:`identity`, :meth:`describe` and
        flags, shares its state (engine, counters, ``dead``) and owns nothing to close. The
        judgement store keys a match by the judge's identity plus the input that reached it
        (prompt, the two texts in order, sample index, and the pair's ``scores`` when the input
        has them; see :mod:`tourney.cache`), so a view needs no identity of its own.

        A judge that wraps another (a pool, a recorder) must forward ``for_item`` to the inner
        judge, as :class:`~tourney.executors.ray_pool.RayJudgePool` does (it ships the item to
        the replica, which binds it there); otherwise the inner judge never sees the item.
        """
        return self

    def match_identity(self, match: Match) -> dict[str, Any]:
        """What ``match``'s store key adds to :meth:`identity`: ``{}`` (the default) unless this
        judge treats this particular match differently from its identity alone, as the model
        judges' candidate defences do for a response that holds the format's control strings
        (:meth:`tourney.judges._common.Defences.match_identity`)."""
        return {}

    async def judge_batch(self, matches: Sequence[Match]) -> list[list[Judgement] | BaseException]:
        """Judge many matches concurrently. A failed match yields its exception in its slot,
        so one failure does not lose the others."""
        return list(await asyncio.gather(*(self.judge(m) for m in matches), return_exceptions=True))

    def identity(self) -> dict[str, Any]:
        """What determines this judge's answers (for the store's content-addressed key):
        by default the spec. Judges with sampling settings add them."""
        return self.spec.to_dict()

    async def aclose(self) -> None:  # noqa: B027 - an optional hook: most judges hold nothing to release
        """Release engines, sessions and files."""

    def describe(self) -> dict[str, Any]:
        return self.spec.to_dict()

    async def preflight(self) -> None:  # noqa: B027 - optional hook: by default nothing to check
        """Check, once and cheaply, that the judge can work at all, before any match is paid
        for; raise :class:`~tourney.errors.JudgeUnavailableError` saying what to fix if not
        (a server that is down, a refused key, a model not served). The scheduler calls it at
        the start of every run; it must be cheap to call again. Default: nothing to check."""


#: Entry-point group through which installed distributions add judges (``name = "module:Class"``).
ENTRY_POINT_GROUP = "tourney.judges"


def _load_builtin_judges() -> None:
    from . import replay, simulated  # noqa: F401  (register themselves)

    # Heavy backends are registered by import path and imported only when used.
    JUDGES.register_lazy("vllm", "tourney.judges.vllm_judge:VLLMJudge")
    JUDGES.register_lazy("openai", "tourney.judges.openai_judge:OpenAIJudge")
    JUDGES.load_entry_points(ENTRY_POINT_GROUP)


JUDGES: Registry[type[Judge]] = Registry("judge", loader=_load_builtin_judges)


def build_judge(spec: str | Spec, options: Mapping[str, Any] | None = None) -> Judge:
    """Build a judge from a spec string such as ``simulated``, ``replay:FILE``,
    ``vllm:MODEL`` or ``openai:URL``; ``options`` add to the spec's options."""
    sp = parse_spec(spec, options) if isinstance(spec, str) else spec
    target = JUDGES.get(sp.name)
    try:
        return target(sp)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"bad options for judge {sp.name!r}: {exc}") from exc
