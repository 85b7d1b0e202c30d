"""Adaptive best-of-N: the leader meets its likeliest challenger until P(best) passes a threshold.

Top-1 (or top-k) identification that spends each comparison where it most reduces the
uncertainty about which candidate is best, stops when the pick is certain enough or the budget
ends, and reports the probability that the pick is best.

The run has two phases.

1. **First pass** (``first_pass``): ``knockout`` (default) is a knockout bracket in one seeded
   presentation order, ``n - 1`` requests, event-driven like the ``knockout`` strategy (winners
   meet winners, so the first pass already concentrates on the top); ``knockout_both`` is the
   same bracket in both orders (``2 (n - 1)``); ``cycle`` is one random Hamiltonian cycle in one
   order (``n`` requests, every candidate judged twice; a better start for ``top_k > 1``). A
   budget smaller than the first pass cuts it short: the bracket then runs round by round and the
   first matches in bracket order that fit are judged, so which ones does not depend on arrival
   order.
2. **Adaptive phase**, in batches. Before each batch the strategy fits a Bradley-Terry model
   with a first-position term to EVERY valid vote so far::

       P(first-shown wins) = 1 / (1 + exp(s_second - s_first - h))

   by maximum a posteriori (:func:`tourney.rating.bt_posterior_dense`, the rating core's Newton
   solver, warm-started at the previous decision's MAP), with Gaussian priors ``s ~ N(0, 1/l2)``
   on the strengths and ``h ~ N(0, 1/position_l2)`` on the position advantage (weak priors: they
   keep an unbeaten candidate and a confounded position term finite). The posterior is
   approximated by a Gaussian (Laplace: the MAP and the inverse penalised Fisher information at
   it), and ``P(i is best)`` (for ``top_k > 1``: ``P(i in the top k)``) is estimated from
   ``draws`` posterior draws. The standard-normal draws are taken once, at the start, and reused
   for every decision (common random numbers: decisions do not jitter with Monte-Carlo noise).
   Then:

   * the **pick** is the candidate with the highest posterior mean (for ``top_k``: the k
     highest); ``p_best`` is the posterior probability that it is best (that the top-k set is
     exactly right);
   * stop when ``p_best >= threshold`` (``stopped = "threshold"``), when the budget is spent
     (``"budget"``; the ranking is then marked ``budget_limited``), or when no pair can be asked
     any more (``"exhausted"``);
   * otherwise compare the pick (for ``top_k``: its least certain member) with its most likely
     challenger: the other candidate with the highest ``P(best)`` (``P(in top k)``), ties by the
     pairwise ``P(challenger beats pick)``; ``batch`` > 1 takes that many challengers at once.
     When every pair of the pick is used up (see below), the next most plausible pair: the one
     whose less likely member is most likely to be best;
   * **extra votes only on close calls**: when the posterior ``P(challenger beats pick)`` is
     within ``[close, 1 - close]`` the pair is judged in BOTH orders in the batch (a position-
     balanced double vote); otherwise once, in the order this pair was shown less often (a seeded
     coin on a draw). ``close=0`` never doubles.

A repeated match asks for fresh sample indices (the judge is deterministic per sample index, and
the judgement store would answer the old one). An ordered pair whose request returned no valid
vote (the scheduler has already re-sampled its abstentions) is not asked again; a repeat that
failed outright means the judge cannot re-sample at all (a replay of single recorded verdicts):
from then on no ordered pair is asked twice.

Why the estimate is not biased by the adaptive choice of pairs: which pairs are asked depends only
on earlier verdicts, so the design is ignorable for likelihood-based inference (the likelihood
principle): the likelihood of the observed verdicts is the same function of the strengths
whatever rule chose the pairs, so the MAP and its posterior are those of a fixed design that
happened to ask the same pairs. Naive win rates, in contrast, ARE biased by it (the leader keeps
meeting the strongest challengers, so its win rate understates it). A judge's first-position bias
is estimated jointly (``h``), not absorbed into the strengths, and the adaptive phase alternates
presentation orders per pair.

Parameters: ``budget`` (most requests of the whole run, each of one judge sample; default
``n (n - 1)``, the size of a both-orders round robin; the strategy plans with it: the first pass is
cut to fit, a close-call double vote is only made with two requests left), ``threshold``
(default 0.95), ``top_k`` (default 1), ``batch`` (challengers per batch, default 1: the most
adaptive; a larger batch means fewer sequential round trips, i.e. less latency, at some cost in
comparisons), ``close`` (default 0.35), ``first_pass`` (default ``knockout``), ``l2`` (prior
precision of the strengths, default 0.1 as in ``bradley_terry``), ``position_l2`` (of ``h``,
default 0.1), ``position`` (fit ``h``, default true), ``draws`` (posterior draws, default 1000).
``p_best`` is conservative with these weak priors (on the simulated judge its mean is below the
accuracy it achieves; ``tourney simulate`` shows both).

Batch rule: the strategy waits until every request of a batch is observed before deciding the
next one, and aggregates results into order-free counts, so its decisions depend on the set of
results, never on their arrival order. Everything is computed in the content-keyed order of the
candidates (:attr:`Strategy.base_order`), so relabelling the candidates relabels the result.
Abstentions and errors are not votes; a tie is half a win each way.

Output: ``scores`` are posterior-mean log-strengths (natural log-odds units), ``uncertainty``
their posterior standard deviations. ``info``: ``p_best`` (probability the pick is best),
``p_best_all`` (per candidate), ``p_top_k`` and ``p_in_top_k`` (top-k only), ``position`` (``h``
and its posterior sd), ``stopped``, ``requests``, ``budget``, ``first_pass``, ``batches``,
``blocked`` (ordered pairs not asked again), ``no_repeat``, ``samples`` (outcome totals).

Comparisons: data dependent (``expected_comparisons`` is None); never more than ``budget``
(``comparison_bound``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tourney.hashing import stable_seed
from tourney.rating import bt_posterior_dense
from tourney.strategy import STRATEGIES, Strategy
from tourney.types import MatchResult, Ranking, Request

from ._common import check_bool, check_float, check_int
from ._pairs import check_choice, design_pairs, sample_counts, sub_seed
from .knockout import Knockout

#: digits to which posterior means are rounded before ordering (exact ties fall to content order)
_DIGITS = 9
_TAG = "adaptive"

SCALE = "Bradley-Terry posterior-mean log-strength (uncertainty: posterior sd)"


def top_k_probabilities(
    mean: np.ndarray, cov: np.ndarray, z: np.ndarray, k: int, chosen: Sequence[int]
) -> tuple[np.ndarray, float]:
    """Monte-Carlo ``P(i in the top k)`` per item and ``P(the top k is exactly chosen)`` under
    ``N(mean, cov)``, from standard-normal draws ``z`` (shape ``(S, n)``)."""
    n = mean.shape[0]
    if n <= k:
        return np.ones(n), 1.0
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(n))
    draws = mean + z @ chol.T
    if k == 1:
        best = np.argmax(draws, axis=1)
        p = np.bincount(best, minlength=n) / z.shape[0]
        return p, float(p[chosen[0]])
    top = np.argpartition(-draws, k - 1, axis=1)[:, :k]
    member = np.zeros(draws.shape, dtype=bool)
    np.put_along_axis(member, top, True, axis=1)
    want = np.zeros(n, dtype=bool)
    want[list(chosen)] = True
    return member.mean(axis=0), float(np.all(member == want, axis=1).mean())


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@STRATEGIES.register("adaptive")
class Adaptive(Strategy):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options = {
        "budget": "most requests of the whole run (each one judge sample); None: n (n - 1), a both-orders round robin",
        "threshold": "stop when the posterior probability that the pick is best (top_k: that the top-k set is right) "
                     "reaches this",
        "top_k": "identify the best k candidates instead of the single best",
        "batch": "challengers judged per batch (1: most adaptive; larger: fewer sequential round trips)",
        "close": "judge a pair in both orders when P(challenger beats pick) is within [close, 1 - close]; 0 never "
                 "doubles",
        "first_pass": "knockout (n - 1 requests), knockout_both (both orders) or cycle (one random Hamiltonian cycle)",
        "l2": "prior precision of the log-strengths (a N(0, 1/l2) prior)",
        "position_l2": "prior precision of the first-position advantage h",
        "position": "fit the first-position advantage h jointly with the strengths",
        "draws": "posterior draws for P(best) (common random numbers, drawn once)",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        budget: int | None = None,
        threshold: float = 0.95,
        top_k: int = 1,
        batch: int = 1,
        close: float = 0.35,
        first_pass: str = "knockout",
        l2: float = 0.1,
        position_l2: float = 0.1,
        position: bool = True,
        draws: int = 1000,
    ):
        super().__init__(n, rng, keys)
        self.budget = self.default_budget(n) if budget is None else check_int("budget", budget, 0)
        self.threshold = check_float("threshold", threshold, 0.0, 1.0)
        self.top_k = check_int("top_k", top_k, 1)
        self.batch = check_int("batch", batch, 1)
        self.close = check_float("close", close, 0.0, 0.5)
        self.first_pass = check_choice("first_pass", first_pass, ("knockout", "knockout_both", "cycle"))
        self.l2 = check_float("l2", l2, 0.0)
        self.position_l2 = check_float("position_l2", position_l2, 0.0)
        if self.l2 <= 0 or self.position_l2 <= 0:
            raise ValueError("l2 and position_l2 must be > 0 (they are prior precisions)")
        self.position = check_bool("position", position)
        self.draws = check_int("draws", draws, 1)
        # canonical (content) coordinates: index r is candidate base_order[r]
        self._cand = self.base_order
        self._rank = {c: r for r, c in enumerate(self._cand)}
        self._wins = np.zeros((n, n))  # [f, s]: votes won by f shown first against s (canonical)
        self._losses = np.zeros((n, n))
        # samples asked per ordered pair: a repeated match gets fresh sample indices (a judge is
        # deterministic per sample index, and a judgement store would answer the old one)
        self._issued = np.zeros((n, n), dtype=np.int64)
        self._blocked: set[tuple[int, int]] = set()
        self._no_repeat = False
        self._results: list[MatchResult] = []
        self._sent = 0
        self._unsent: list[Request] = []
        self._pending: dict[Any, Request] = {}
        self._batches = 0
        self._stopped: str | None = None
        self._theta: np.ndarray | None = None  # warm start, updated only at decision points
        self._phase = 1
        self._ko: Knockout | None = None
        self._ko_sync = self.budget < (n - 1) * (2 if self.first_pass == "knockout_both" else 1)
        # The first pass draws from rng FIRST, exactly as the knockout strategy does: for the same
        # seed, adaptive's bracket is the knockout strategy's bracket (with a budget of n - 1 it
        # reproduces knockout, and the two are compared on the same draws).
        first: list[Request] = []
        if n < 2 or self.budget == 0:
            self._phase, self._stopped = 2, ("budget" if n >= 2 else "exhausted")
        elif self.first_pass in ("knockout", "knockout_both"):
            self._ko = Knockout(n, rng, keys, both_orders=self.first_pass == "knockout_both")
        else:
            first = [Request(a, b, tag=(_TAG, 0, k)) for k, (a, b) in enumerate(design_pairs(self, False, 1))]
        self._coin_seed = sub_seed(rng)
        self._z = rng.standard_normal((self.draws, n))
        self._queue(first)

    @staticmethod
    def default_budget(n: int) -> int:
        """``n (n - 1)``: never more requests than a round robin in both orders."""
        return n * (n - 1)

    @classmethod
    def comparison_bound(cls, n: int, *, budget: int | None = None, **params: Any) -> int:
        if n < 2:
            return 0
        return cls.default_budget(n) if budget is None else int(budget)

    # -- the protocol ---------------------------------------------------------------------------
    def _queue(self, reqs: list[Request]) -> None:
        room = self.budget - self._sent
        if len(reqs) > room:
            reqs = reqs[: max(room, 0)]
        for r in reqs:
            self._pending[r.tag] = r
            f, s = self._rank[r.first], self._rank[r.second]
            self._issued[f, s] = max(self._issued[f, s], r.sample_offset + r.samples)
        self._unsent.extend(reqs)
        self._sent += len(reqs)

    def propose(self) -> list[Request]:
        if self._phase == 1 and self._ko is not None and self._stopped is None:
            # A budget that cuts the bracket short: propose round by round (only when nothing is
            # pending) in bracket order, so WHICH matches fit does not depend on arrival order.
            if not self._ko_sync or not self._pending:
                self._queue(sorted(self._ko.propose(), key=lambda r: r.tag))
            if self._sent >= self.budget and not self._ko.done:
                self._cut_first_pass()
        out, self._unsent = self._unsent, []
        return out

    def _cut_first_pass(self) -> None:
        """The budget ends inside the first pass: no adaptive phase will follow."""
        if self._stopped is None and self._ko is not None:
            self._stopped = "budget"

    def observe(self, result: MatchResult) -> None:
        req = self._pending.pop(result.request.tag)
        res = MatchResult(req, result.judgements)
        self._results.append(res)
        f, s = self._rank[req.first], self._rank[req.second]
        self._wins[f, s] += res.first_wins + 0.5 * res.ties
        self._losses[f, s] += res.second_wins + 0.5 * res.ties
        if res.votes == 0:
            self._blocked.add((f, s))
            if req.sample_offset > 0 and res.errors == len(res.judgements):
                # a repeat that failed outright: this judge cannot re-sample a match (a replay
                # of single recorded verdicts); never ask any ordered pair twice from now on
                self._no_repeat = True
        if self._phase == 1 and self._ko is not None and not self._is_adaptive(req.tag):
            self._ko.observe(res)
        if self._pending or self._unsent:
            return
        if self._phase == 1:
            first_pass_over = self._ko is None or self._ko.done
            if not first_pass_over and self._stopped is None:
                return  # the bracket's next matches are proposed by the next propose()
            self._phase = 2
        if self._stopped is None:
            self._decide()

    @staticmethod
    def _is_adaptive(tag: Any) -> bool:
        return isinstance(tag, tuple) and len(tag) == 3 and tag[0] == _TAG

    @property
    def done(self) -> bool:
        return self._stopped is not None and not self._pending and not self._unsent

    # -- decisions ------------------------------------------------------------------------------
    def _posterior(self, theta0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(theta, posterior means of the strengths, covariance) of every vote so far."""
        post = bt_posterior_dense(self._wins, self._losses, l2=self.l2, position=self.position,
                                  position_l2=self.position_l2, init=theta0)
        return post.theta, post.strengths, post.cov

    def _pick(self, mean: np.ndarray) -> list[int]:
        """Canonical indices, best first (means rounded so exact ties fall to content order)."""
        return sorted(range(self.n), key=lambda r: (-round(float(mean[r]), _DIGITS), r))

    def _decide(self) -> None:
        theta, mean, cov = self._posterior(self._theta)
        self._theta = theta
        n, k = self.n, min(self.top_k, self.n)
        order = self._pick(mean)
        chosen = order[:k]
        p_in, p_set = top_k_probabilities(mean, cov[:n, :n], self._z, k, chosen)
        room = self.budget - self._sent
        if p_set >= self.threshold:
            self._stopped = "threshold"
            return
        if room <= 0:
            self._stopped = "budget"
            return
        # the least certain member of the pick vs the most likely outsiders
        member = min(chosen, key=lambda r: (p_in[r], -round(float(mean[r]), _DIGITS), r))
        diag = np.diag(cov)[:n]

        def p_beats(x: int, y: int) -> float:
            """Posterior P(y beats x) (normal approximation of the difference)."""
            var = max(float(diag[x] + diag[y] - 2.0 * cov[x, y]), 1e-300)
            return _phi(float(mean[y] - mean[x]) / math.sqrt(var))

        def askable(x: int, y: int) -> bool:
            return self._open(x, y) or self._open(y, x)

        outsiders = [r for r in order[k:] if askable(member, r)]
        beat = {r: p_beats(member, r) for r in outsiders}
        outsiders.sort(key=lambda r: (-p_in[r], -round(beat[r], _DIGITS), r))
        pairs = [(member, r) for r in outsiders[: self.batch]]
        if len(pairs) < self.batch:
            # every pair of the member is used up (a judge that cannot re-sample): the most
            # plausible other pair, both of whose candidates may well be best
            taken = {frozenset(p) for p in pairs}
            rest = [(x, y) for x in range(n) for y in range(x + 1, n)
                    if frozenset((x, y)) not in taken and askable(x, y)]
            rest.sort(key=lambda xy: (-min(p_in[xy[0]], p_in[xy[1]]), -max(p_in[xy[0]], p_in[xy[1]]), xy))
            pairs += rest[: self.batch - len(pairs)]
        reqs: list[tuple[int, int]] = []
        for x, y in pairs:
            orders = [o for o in ((x, y), (y, x)) if self._open(*o)]
            p = p_beats(x, y)
            if len(orders) == 2 and self.close > 0 and min(p, 1.0 - p) >= self.close and room - len(reqs) >= 2:
                reqs.extend(orders)
            else:
                if len(orders) == 2:
                    a, b = orders
                    na, nb = self._issued[a], self._issued[b]
                    if na == nb:  # a seeded, content-keyed coin per pair and visit
                        flip = stable_seed(self._coin_seed, min(x, y), max(x, y), int(na)) % 2
                        orders = [b] if flip else [a]
                    else:
                        orders = [a] if na < nb else [b]
                reqs.append(orders[0])
            if len(reqs) >= room:
                break
        if not reqs:
            self._stopped = "exhausted"
            return
        self._batches += 1
        tag_batch = self._batches
        cand = self._cand
        self._queue([Request(cand[f], cand[s], 1, int(self._issued[f, s]), tag=(_TAG, tag_batch, j))
                     for j, (f, s) in enumerate(reqs[:room])])

    def _open(self, f: int, s: int) -> bool:
        """May the ordered pair (canonical indices) be asked (again)?"""
        return (f, s) not in self._blocked and not (self._no_repeat and self._issued[f, s] > 0)

    # -- the ranking ----------------------------------------------------------------------------
    def ranking(self) -> Ranking:
        n = self.n
        cand = self._cand
        if n == 1:
            return Ranking(order=(0,), scores=(0.0,), scale=SCALE, uncertainty=(0.0,),
                           info={"p_best": 1.0, "p_best_all": [1.0], "stopped": self._stopped, "requests": 0})
        theta, mean, cov = self._posterior(self._theta)
        k = min(self.top_k, n)
        order = self._pick(mean)
        p_in, p_set = top_k_probabilities(mean, cov[:n, :n], self._z, 1, order[:1])
        sd = np.sqrt(np.maximum(np.diag(cov)[:n], 0.0))
        scores = [0.0] * n
        unc = [0.0] * n
        p_all = [0.0] * n
        for r in range(n):
            c = cand[r]
            scores[c] = round(float(mean[r]), 12) + 0.0
            unc[c] = float(sd[r])
            p_all[c] = float(p_in[r])
        info: dict[str, Any] = {
            "p_best": float(p_all[cand[order[0]]]),
            "p_best_all": p_all,
            "stopped": self._stopped,
            "requests": self._sent,
            "budget": self.budget,
            "first_pass": self.first_pass,
            "batches": self._batches,
            "blocked": sorted([cand[f], cand[s]] for f, s in self._blocked),
            "no_repeat": self._no_repeat,
            "samples": sample_counts(self._results),
        }
        if k > 1:
            p_top, p_set = top_k_probabilities(mean, cov[:n, :n], self._z, k, order[:k])
            info["p_top_k"] = p_set
            info["p_in_top_k"] = [float(p_top[self._rank[c]]) for c in range(n)]
        if self.position:
            info["position"] = {"coef": float(theta[n]), "sd": float(math.sqrt(max(cov[n, n], 0.0)))}
        return Ranking(
            order=tuple(cand[r] for r in order),
            scores=tuple(scores),
            scale=SCALE,
            uncertainty=tuple(unc),
            budget_limited=self._stopped == "budget",
            info=info,
        )
