"""Probabilistic pivot tournament (PPT): about (k + 1) N comparisons in two parallel rounds.

Source: Kwok et al., "LLM-as-a-Verifier: A General-Purpose Verification Framework"
(arXiv 2607.05391), and its public code, ``llm_verifier/pivot_tournament.py`` and
``llm_verifier.select`` in github.com/llm-as-a-verifier/llm-as-a-verifier (v0.2.0), which this
file follows step by step:

1. Ring pass (round 1): the N directed adjacent pairs ``(p[t], p[t + 1 mod N])`` of a random
   Hamiltonian cycle ``p`` (here a seeded permutation of the candidates in content order). Every
   candidate is shown once first and once second, so the judge's position bias cancels around
   the ring. (N = 2: the ring is the pair in both orders.)
2. Pivot selection: the top ``k = pivots`` candidates by ring-pass mean preference ``w_i / c_i``
   become the pivots (ties: by the seeded permutation; the published code uses the index).
3. Pivot round (round 2): every non-pivot against every pivot, ``k (N - k)`` comparisons, and
   every pivot pair, ``k (k - 1) / 2``.
4. Selection: all comparisons of both rounds are aggregated into win mass ``w_i`` and count
   ``c_i``; candidates are ranked by ``w_i / c_i``.

Comparisons: ``N + k (N - k) + k (k - 1) / 2`` with ``k = min(pivots, N)`` (lowered by
``budget``; N = 16, k = 2: 45),
0 for N = 1; twice that many requests with ``votes >= 2`` (see below). Two sequential rounds.

Verdicts. The published verifier turns each comparison's fine-grained rewards into a soft win
``p = sigmoid(R_a - R_b)``; tourney judges give discrete votes, so a comparison's soft win is
its vote share (valid votes won / valid votes, an explicit tie half each way). A comparison
whose samples all abstained or failed adds nothing to either side (the published code scores a
failed call as a tie: here failure is never a result), and a candidate with no valid comparison
scores 0. With a single vote, a candidate's score is its plain win rate, so two unbeaten
candidates that never met tie, and the tie falls to the seeded order: with a noiseless judge the
true best always has the top score but can share it (the published continuous rewards rarely
tie; discrete votes often do).

Presentation order. ``votes`` is the published ``n_evaluations``: repeated verifications of one
comparison, alternating the presentation order (the ceil(votes / 2) even repeats in the listed
order, the floor(votes / 2) odd ones swapped; one request per order, so ``votes >= 2`` makes two
requests per comparison, position-balanced). With ``votes = 1`` the published code shows the
non-pivot first in every pivot-round comparison; here the order alternates instead (non-pivot
number t, pivot number j: the non-pivot first when t + j is even), so that with k = 2 every
non-pivot is shown once in each position in the pivot round too, as in the ring; a pivot pair's
order is a seeded coin.

Options: ``pivots`` (k >= 1, default 2 as published), ``votes`` (>= 1, default 1), ``budget``
(most judge samples of the run, default none: when given, k is lowered to the largest value
whose count fits, at least 1, so that a budget-limited comparison, e.g. ``tourney simulate
--budgets``, runs a complete pivot tournament with fewer pivots rather than a truncated one;
N = 16: k = 1 (31 comparisons) fits 2N = 32, k = 2 (45) fits 3N = 48).
``info``: ``k`` (the number of pivots used), ``pivots`` (the chosen pivots, best ring score first; empty before round 2),
``ring_scores`` (w / c after the ring pass), ``rounds`` (2; 0 for N = 1), ``comparisons_counted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tourney.strategy import STRATEGIES
from tourney.types import MatchResult, Ranking, Request

from ._common import check_int
from ._pairs import Batched
from ._rounds import SampleLedger, seeded_order, win_mass, win_rate_ranking


@STRATEGIES.register("pivot")
class Pivot(Batched):
    options: ClassVar[dict[str, str]] = {
        "pivots": "k: candidates with the best ring-pass preference that everyone else meets",
        "votes": "repeated verifications of a comparison, alternating the presentation order (n_evaluations)",
        "budget": "most judge samples of the run; lowers k to the largest that fits, at least 1 (None: no budget)",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        pivots: int = 2,
        votes: int = 1,
        budget: int | None = None,
    ):
        super().__init__(n, rng, keys)
        self.pivots = check_int("pivots", pivots, 1)
        self.votes = check_int("votes", votes, 1)
        self.budget = None if budget is None else check_int("budget", budget, 0)
        self.k = self.effective_pivots(n, self.pivots, self.votes, self.budget)
        self._perm = seeded_order(self)
        self._rank = {c: r for r, c in enumerate(self._perm)}
        self._ledger = SampleLedger()
        self._cid = 0
        self.pivot_set: list[int] = []
        self.ring_scores: list[float] | None = None

    @staticmethod
    def comparisons(n: int, k: int) -> int:
        """The published count ``N + k (N - k) + k (k - 1) / 2`` (0 for N = 1)."""
        return n + k * (n - k) + k * (k - 1) // 2 if n >= 2 else 0

    @classmethod
    def effective_pivots(cls, n: int, pivots: int, votes: int, budget: int | None) -> int:
        """``min(pivots, N)``, lowered (to at least 1) until the run's samples fit ``budget``."""
        k = min(pivots, n)
        while budget is not None and k > 1 and cls.comparisons(n, k) * votes > budget:
            k -= 1
        return k

    @classmethod
    def expected_comparisons(
        cls, n: int, *, pivots: int = 2, votes: int = 1, budget: int | None = None, **params: Any
    ) -> int:
        k = cls.effective_pivots(n, pivots, votes, budget)
        return cls.comparisons(n, k) * (1 if votes == 1 else 2)

    # -- rounds --------------------------------------------------------------------------------
    def _comparison(self, first: int, second: int) -> list[Request]:
        """One comparison of ``votes`` samples; its repeats alternate the presentation order."""
        cid, self._cid = self._cid, self._cid + 1
        listed = (self.votes + 1) // 2
        out = [Request(first, second, listed, self._ledger.take(first, second, listed), tag=cid)]
        if self.votes > 1:
            swapped = self.votes // 2
            out.append(Request(second, first, swapped, self._ledger.take(second, first, swapped), tag=cid))
        return out

    def next_batch(self, last: list[MatchResult]) -> list[Request]:
        n, p = self.n, self._perm
        if n < 2 or self.batches >= 2:
            return []
        if self.batches == 0:  # ring pass
            return [r for t in range(n) for r in self._comparison(p[t], p[(t + 1) % n])]
        w, c = win_mass(self.n, self.results)
        self.ring_scores = [w[i] / c[i] if c[i] else 0.0 for i in range(n)]
        key = [round(v, 12) for v in self.ring_scores]
        self.pivot_set = sorted(range(n), key=lambda i: (-key[i], self._rank[i]))[: self.k]
        chosen = set(self.pivot_set)
        others = [i for i in p if i not in chosen]
        out: list[Request] = []
        for t, i in enumerate(others):
            for j, piv in enumerate(self.pivot_set):
                first, second = (i, piv) if (t + j) % 2 == 0 else (piv, i)
                out += self._comparison(first, second)
        for j, a in enumerate(self.pivot_set):
            for b in self.pivot_set[j + 1 :]:
                first, second = (a, b) if self.rng.random() < 0.5 else (b, a)
                out += self._comparison(first, second)
        return out

    # -- result --------------------------------------------------------------------------------
    def ranking(self) -> Ranking:
        results = self.observed()
        w, c = win_mass(self.n, results)
        return win_rate_ranking(
            self,
            w,
            c,
            self._rank,
            results,
            scale="mean vote share per comparison (w / c: win 1, tie 1/2; 0 without a valid comparison)",
            info={
                "k": self.k,
                "pivots": list(self.pivot_set),
                "ring_scores": self.ring_scores,
                "rounds": 2 if self.n >= 2 else 0,
            },
        )
