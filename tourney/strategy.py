"""The strategy protocol: how a tournament decides which pairs to compare and how it ranks.

A strategy never calls a judge. The scheduler drives it::

    s = factory.create(n, rng, keys)          # one instance per prompt
    while not s.done:
        for request in s.propose():           # the matches it is ready for NOW
            ... judge it, concurrently with everything else ...
        s.observe(result)                     # one MatchResult per request, in completion order
    ranking = s.ranking()

Contract (checked for every registered strategy by ``tests/test_strategy_conformance.py``):

* ``propose()`` returns each request once; it may return ``[]`` while results are pending.
* Decisions depend only on the SET of results received, never on their arrival order, so a
  run is reproducible whatever the judge's latencies (locally or on a cluster).
* Randomness comes only from the ``rng`` given (derived from the run's seed and the prompt).
  ``keys`` are stable content identifiers of the candidates (hashes of the response texts):
  strategies draw their random seeding over :attr:`Strategy.base_order`, which sorts the
  candidates by key, so relabelling the input relabels the result.
* Abstentions, explicit ties and errors are never counted as a win.
* ``ranking()`` works at any time (a budget-limited run asks for the best ranking so far).
* ``expected_comparisons(n, **params)`` documents how many requests a full run makes; where that
  is data dependent (None), ``comparison_bound(n, **params)`` gives the most it can make.

Strategies are registered by name with ``@STRATEGIES.register("name")`` in a module of the
top-level ``strategies`` package; every module there is imported on first lookup, so adding a
strategy is adding one file. An installed distribution can add strategies through the entry-point
group ``tourney.strategies`` (``name = "module:Class"``), imported when first used.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .errors import SpecError
from .registry import Registry, Spec, parse_spec
from .types import MatchResult, Ranking, Request

__all__ = ["ENTRY_POINT_GROUP", "STRATEGIES", "Strategy", "StrategyFactory", "build_strategy"]

#: Entry-point group through which installed distributions add strategies.
ENTRY_POINT_GROUP = "tourney.strategies"


class Strategy(ABC):
    """Base class of ranking strategies; see the module docstring for the contract.

    Subclasses take their parameters as keyword-only arguments of ``__init__`` after
    ``(n, rng, keys)``, store them, and call ``super().__init__(n, rng, keys)`` first.
    """

    name: ClassVar[str] = "strategy"
    #: option -> meaning, shown by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, n: int, rng: np.random.Generator, keys: Sequence[str] | None = None):
        if n < 1:
            raise ValueError(f"a tournament needs at least 1 candidate, got {n}")
        self.n = n
        self.rng = rng
        if keys is not None and len(keys) != n:
            raise ValueError(f"got {len(keys)} keys for {n} candidates")
        self.base_order: tuple[int, ...] = (
            tuple(sorted(range(n), key=lambda i: (keys[i], i))) if keys is not None else tuple(range(n))
        )
        self._tiebreak = {c: r for r, c in enumerate(self.base_order)}

    @abstractmethod
    def propose(self) -> list[Request]:
        """Requests that are ready now and were not returned before."""

    @abstractmethod
    def observe(self, result: MatchResult) -> None:
        """Receive the samples for one earlier request."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """True when the strategy wants no more matches."""

    @abstractmethod
    def ranking(self) -> Ranking:
        """The ranking so far (complete once ``done``)."""

    @classmethod
    def expected_comparisons(cls, n: int, **params: Any) -> int | None:
        """Number of requests a complete run makes for n candidates (None: data dependent)."""
        return None

    @classmethod
    def comparison_bound(cls, n: int, **params: Any) -> int | None:
        """Most requests a complete run can make (default: ``expected_comparisons``)."""
        return cls.expected_comparisons(n, **params)

    # helpers for subclasses -------------------------------------------------------------
    def order_by(self, scores: Sequence[float]) -> tuple[int, ...]:
        """Candidates best first by score; equal scores in the content-keyed base order."""
        return tuple(sorted(range(self.n), key=lambda i: (-scores[i], self._tiebreak[i])))

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _load_strategies() -> None:
    import strategies as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")
    STRATEGIES.load_entry_points(ENTRY_POINT_GROUP)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", loader=_load_strategies)


@dataclass(frozen=True)
class StrategyFactory:
    """A strategy class with validated options; ``create`` makes one instance per prompt."""

    cls: type[Strategy]
    spec: Spec

    def create(self, n: int, rng: np.random.Generator, keys: Sequence[str] | None = None) -> Strategy:
        return self.cls(n, rng, keys, **self.spec.options)

    def expected_comparisons(self, n: int) -> int | None:
        return self.cls.expected_comparisons(n, **self.spec.options)

    def comparison_bound(self, n: int) -> int | None:
        return self.cls.comparison_bound(n, **self.spec.options)

    def describe(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def __str__(self) -> str:
        return str(self.spec)


def build_strategy(spec: str | Spec, options: Mapping[str, Any] | None = None) -> StrategyFactory:
    """``build_strategy("knockout:votes=3,both_orders=true")`` -> a validated factory."""
    sp = parse_spec(spec, options) if isinstance(spec, str) else spec
    if sp.arg is not None:
        raise SpecError(f"strategy {sp.name!r} takes options key=value, not {sp.arg!r}")
    cls = STRATEGIES.get(sp.name)
    known = cls.param_names()
    unknown = sorted(set(sp.options) - set(known))
    if unknown:
        raise SpecError(
            f"unknown option(s) {', '.join(unknown)} for strategy {sp.name!r}; "
            f"it accepts: {', '.join(known) or 'no options'}"
        )
    factory = StrategyFactory(cls, sp)
    try:  # validate parameter values now, not at the first prompt
        factory.create(2, np.random.default_rng(0), None)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"bad options for strategy {sp.name!r}: {exc}") from exc
    return factory
