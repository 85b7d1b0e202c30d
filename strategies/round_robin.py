"""Round robin: every pair of candidates is judged; scored by Bradley-Terry or online Elo.

Comparisons: ``n (n - 1) / 2`` requests, or ``n (n - 1)`` with ``both_orders`` (each pair in
both presentation orders: position-balanced), each of ``votes`` samples, all in one batch (no
adaptivity, so nothing waits on a round boundary). In a single order, which candidate is shown
first is a seeded coin per pair.

Scoring (``scoring``):

* ``bradley_terry`` (default): the maximum-likelihood Bradley-Terry fit of every valid vote
  (a tie is half a win each way), with ridge ``l2`` so that an unbeaten candidate -- which a
  noiseless judge always produces -- keeps a finite strength. ``scores`` are centred natural-log
  strengths, ``uncertainty`` Fisher standard errors; ``info["elo"]`` is the Elo-scaled view.
  Order-free: the same votes give the same fit whatever order they came in.
* ``elo``: online Elo over the votes replayed in a seeded random order (RRM's round-robin
  scoring), K = ``k``; see the ``elo`` strategy for all of Elo's parameters.

Abstentions and errors are not votes: they never count for either side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tourney.rating import DEFAULT_ELO_K
from tourney.strategy import STRATEGIES
from tourney.types import Ranking

from ._common import check_float
from ._pairs import PairDesign, bt_scores, check_choice, elo_scores, sub_seed


@STRATEGIES.register("round_robin")
class RoundRobin(PairDesign):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "votes": "judge samples per pair (per order with both_orders)",
        "both_orders": "judge every pair in both presentation orders: n (n - 1) requests instead of n (n - 1) / 2",
        "scoring": "bradley_terry (maximum-likelihood fit with Fisher standard errors) or elo (online Elo over the "
        "votes in a seeded order)",
        "l2": "ridge penalty l2/2 * sum(s^2) of the Bradley-Terry fit: keeps an unbeaten candidate finite",
        "k": "Elo K-factor when scoring=elo",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = False,
        scoring: str = "bradley_terry",
        l2: float = 0.1,
        k: float = DEFAULT_ELO_K,
    ):
        super().__init__(n, rng, keys, votes=votes, both_orders=both_orders)
        self.scoring = check_choice("scoring", scoring, ("bradley_terry", "elo"))
        self.l2 = check_float("l2", l2, 0.0)
        self.k = check_float("k", k, 0.0)
        if self.k <= 0:
            raise ValueError(f"k must be > 0, got {k!r}")
        self._order_seed = sub_seed(self.rng)

    @classmethod
    def expected_comparisons(cls, n: int, *, both_orders: bool = False, **params: Any) -> int:
        return cls.design_size(n, both_orders)

    def ranking(self) -> Ranking:
        if self.scoring == "elo":
            return elo_scores(self, self.observed(), k=self.k, order_seed=self._order_seed)
        return bt_scores(self, self.observed(), l2=self.l2)
