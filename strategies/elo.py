"""Online Elo over a round robin, as in RRM's round-robin scoring and Chatbot Arena's first
leaderboards.

Every pair is judged (``n (n - 1) / 2`` requests, ``n (n - 1)`` with ``both_orders``), each
request with ``votes`` samples; every valid vote is one Elo game (an explicit tie scores half a
point each; abstentions and errors are not games). The games are then replayed one by one::

    E = 1 / (1 + base ** ((R_second - R_first) / scale));  R_first += k (y - E);  R_second -= k (y - E)

Defaults: ``k = 32`` (the classic chess K: a prompt's tournament has only a few games per
candidate, and with Chatbot Arena's K = 4, tuned for 10^5 battles, ratings would barely leave
their start and Elo would degenerate into win counting), ``scale = 400``, ``base = 10`` (400
points = odds of 10:1), ``initial = 1000``. RRM does not publish its Elo parameters.

Online Elo depends on the order the games are played in. The replay order is a random
permutation drawn from the run's seed (so the same seed gives the same ratings whatever order
the judge answered in); ``n_orders > 1`` averages the ratings over that many random orders,
which removes most of the order dependence (``info["order_sd"]`` reports the spread that
remains). The Bradley-Terry strategy is the order-free alternative.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tourney.rating import DEFAULT_ELO_K, ELO_BASE, ELO_INITIAL, ELO_SCALE
from tourney.strategy import STRATEGIES
from tourney.types import Ranking

from ._common import check_float, check_int
from ._pairs import PairDesign, elo_scores, sub_seed


@STRATEGIES.register("elo")
class Elo(PairDesign):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "votes": "judge samples per pair (per order with both_orders); every valid vote is one Elo game",
        "both_orders": "judge every pair in both presentation orders",
        "k": "K-factor: the most points one game moves a rating",
        "scale": "rating points per factor `base` of winning odds",
        "base": "odds base of the scale (400 points = 10:1 odds by default)",
        "initial": "every candidate's starting rating",
        "n_orders": "average the ratings over this many seeded random replay orders (reduces Elo's order dependence; "
        "info['order_sd'] reports what remains)",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = False,
        k: float = DEFAULT_ELO_K,
        scale: float = ELO_SCALE,
        base: float = ELO_BASE,
        initial: float = ELO_INITIAL,
        n_orders: int = 1,
    ):
        super().__init__(n, rng, keys, votes=votes, both_orders=both_orders)
        self.k = check_float("k", k, 0.0)
        self.scale = check_float("scale", scale, 0.0)
        self.base = check_float("base", base, 1.0)
        self.initial = check_float("initial", initial)
        self.n_orders = check_int("n_orders", n_orders, 1)
        if self.k <= 0 or self.scale <= 0 or self.base <= 1:
            raise ValueError(f"elo needs k > 0, scale > 0 and base > 1, got k={k}, scale={scale}, base={base}")
        self._order_seed = sub_seed(self.rng)

    @classmethod
    def expected_comparisons(cls, n: int, *, both_orders: bool = False, **params: Any) -> int:
        return cls.design_size(n, both_orders)

    def ranking(self) -> Ranking:
        results = self.observed()
        r = elo_scores(
            self,
            results,
            k=self.k,
            scale=self.scale,
            base=self.base,
            initial=self.initial,
            n_orders=self.n_orders,
            order_seed=self._order_seed,
        )
        if self.n_orders > 1:  # how much the single-order ratings disagree
            runs = [
                elo_scores(
                    self,
                    results,
                    k=self.k,
                    scale=self.scale,
                    base=self.base,
                    initial=self.initial,
                    order_seed=self._order_seed + 1 + t,
                ).scores
                for t in range(min(self.n_orders, 16))
            ]
            r = dataclasses.replace(
                r, info={**r.info, "order_sd": [float(v) for v in np.std(np.asarray(runs), axis=0)]}
            )
        return r
