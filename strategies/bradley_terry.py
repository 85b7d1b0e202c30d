"""Bradley-Terry: a maximum-likelihood fit of every judged sample, with Fisher and bootstrap
confidence intervals.

Which pairs: by default a full round robin in BOTH orders (``n (n - 1)`` requests of ``votes``
samples, one batch), the design in which a judge's first-position advantage is estimated
cleanly. ``both_orders=false`` halves that (one seeded order per pair). ``cycles=c`` replaces the
round robin by ``c`` random Hamiltonian cycles over the candidates (``c n`` pairs for n >= 3,
so O(n) instead of O(n^2); the first cycle already connects the comparison graph), for large n.

The model (:func:`tourney.rating.bradley_terry`): ``P(first beats second) = 1 / (1 + exp(s_second
- s_first - h))`` where ``h`` is the first-shown advantage, fitted when ``position`` is true (so
a biased judge's position effect is estimated, not absorbed into the strengths; reported in
``info["position"]`` in log-odds, with its standard error). ``position="auto"`` (default)
follows ``both_orders``: with one random order per pair, a small design can show a candidate first in
all its wins, and the unpenalised position term would then explain them away. Ties count as half a win each way
(``ties="half"``) or are dropped (``ties="drop"``); abstentions and errors are never data.
``l2`` is a ridge penalty ``l2/2 * sum(s^2)`` (a N(0, 1/l2) prior): the default 0.1 keeps an
unbeaten candidate -- which a noiseless judge always produces -- and a disconnected comparison
graph finite while barely moving a well-determined fit; ``l2=0`` is the plain MLE and fails with
a clear error when none exists.

Output: ``scores`` are centred natural-log strengths, ``uncertainty`` their standard errors from
the Fisher information; ``info["elo"]`` is the same fit on the Elo scale (1000 + 400/ln 10 * s).
``bootstrap=R`` adds seeded percentile 95% intervals from R resamples in
``info["bootstrap"]["ci95"]``. Disconnected components (e.g. when every match of a candidate
abstained) are reported in ``info["components"]``, never silently compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tourney.strategy import STRATEGIES
from tourney.types import Ranking

from ._common import check_bool, check_float, check_int
from ._pairs import PairDesign, bt_scores, check_choice, sub_seed


@STRATEGIES.register("bradley_terry")
class BradleyTerry(PairDesign):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "votes": "judge samples per request",
        "both_orders": "judge each pair in both presentation orders (the design that estimates the position bias "
        "cleanly); false: one seeded order per pair",
        "cycles": "instead of every pair, c random Hamiltonian cycles over the candidates (c n pairs, O(n) for large "
        "n); None: the full round robin",
        "ties": "half (a tie is half a win each way) or drop",
        "l2": "ridge penalty l2/2 * sum(s^2) (a N(0, 1/l2) prior); 0 is the plain MLE, which fails for an unbeaten "
        "candidate",
        "position": "fit the first-shown advantage h: true, false, or auto (= both_orders)",
        "bootstrap": "R seeded resamples for percentile 95% intervals in info['bootstrap'] (0: none)",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = True,
        cycles: int | None = None,
        ties: str = "half",
        l2: float = 0.1,
        position: bool | str = "auto",
        bootstrap: int = 0,
    ):
        super().__init__(n, rng, keys, votes=votes, both_orders=both_orders, cycles=cycles)
        self.ties = check_choice("ties", ties, ("half", "drop"))
        self.l2 = check_float("l2", l2, 0.0)
        # auto: fit the position effect when the design shows every pair in both orders; in one
        # random order per pair it is confounded with the strengths in small designs
        self.position = self.both_orders if position == "auto" else check_bool("position", position)
        self.bootstrap = check_int("bootstrap", bootstrap, 0)
        self._boot_seed = sub_seed(self.rng)

    @classmethod
    def expected_comparisons(cls, n: int, *, both_orders: bool = True, cycles: int | None = None, **params: Any) -> int:
        return cls.design_size(n, both_orders, cycles)

    def ranking(self) -> Ranking:
        return bt_scores(
            self,
            self.observed(),
            ties=self.ties,
            l2=self.l2,
            position=self.position,
            bootstrap=self.bootstrap,
            bootstrap_seed=self._boot_seed,
        )
