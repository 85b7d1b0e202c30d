"""Copeland (and Borda) scoring over a round robin: tallies, no model.

Every pair is judged (``n (n - 1) / 2`` requests, ``n (n - 1)`` with ``both_orders``), each with
``votes`` samples, in one batch. A pair is won by the candidate with more valid votes over both
orders (an explicit tie counts half a vote each).

* ``method="copeland"`` (default): 1 point per pair won, 1/2 per pair with an even record; a
  pair whose every sample abstained or failed gives nothing to either side (no evidence is not
  a draw). Equal Copeland scores are ordered by the Borda count, then by content order. The
  Condorcet winner, when there is one, is the unique top scorer (n - 1 points).
* ``method="borda"``: the Borda-style count, total votes won (ties half) over all matches.

No uncertainty: these are counts. ``info`` carries both tallies whichever ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tourney import rating
from tourney.strategy import STRATEGIES
from tourney.types import Ranking

from ._pairs import PairDesign, check_choice, games, sample_counts


@STRATEGIES.register("copeland")
class Copeland(PairDesign):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "votes": "judge samples per pair (per order with both_orders)",
        "both_orders": "judge every pair in both presentation orders",
        "method": "copeland (1 point per pair won, 1/2 per even pair; Borda breaks ties) or borda (total votes won)",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = False,
        method: str = "copeland",
    ):
        super().__init__(n, rng, keys, votes=votes, both_orders=both_orders)
        self.method = check_choice("method", method, ("copeland", "borda"))

    @classmethod
    def expected_comparisons(cls, n: int, *, both_orders: bool = False, **params: Any) -> int:
        return cls.design_size(n, both_orders)

    def ranking(self) -> Ranking:
        results = self.observed()
        first, second, y, w = games(results, "half")
        cope = [float(v) for v in rating.copeland(self.n, first, second, y, weights=w)]
        bord = [float(v) for v in rating.borda(self.n, first, second, y, weights=w)]
        primary, secondary = (cope, bord) if self.method == "copeland" else (bord, cope)
        order = tuple(sorted(range(self.n), key=lambda i: (-primary[i], -secondary[i], self._tiebreak[i])))
        return Ranking(
            order=order,
            scores=tuple(primary),
            scale="Copeland points (pairs won, 1/2 per even pair)"
            if self.method == "copeland"
            else "Borda count (votes won, ties 1/2)",
            info={"copeland": cope, "borda": bord, "samples": sample_counts(results)},
        )
