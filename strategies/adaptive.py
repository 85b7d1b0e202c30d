"""Adaptive best-of-N in parallel rounds: each round asks the matches that can still change the pick.

Top-1 (or top-k) identification that plans in parallel batches ("rounds"), spends each round's
comparisons where the posterior says the pick is still in doubt, stops when the pick is certain
enough, the budget is spent or the rounds are used up, and reports the probability that the pick
is best. A round is one batch of requests judged in parallel: with ``rounds=R`` the run takes at
most R sequential judge calls on its critical path (what a user waits for at inference time).

1. **First round** (``first_pass``). ``auto`` (default): ``knockout`` when the budget is below
   ``2 (n - 1)`` and the round limit leaves room for the bracket, else ``spread`` (measured on
   the simulated judge, N = 16: with 15 comparisons a bracket first picks the best 0.55 of the
   time, a matching followed by decisive rounds 0.35-0.53; from 32 comparisons on the spread
   first round is as good or better: 0.715 vs 0.665 in 6 rounds). ``spread``: a seeded spread
   design of the round's
   share of the budget (below): the edges of a seeded random ring taken alternately, so that the
   first ``floor(n / 2)`` requests are a perfect matching (every candidate in at most one match),
   the first ``n`` the whole ring (every candidate once first and once second), then rings of
   longer offsets (every pair once before any pair twice), then the other presentation orders.
   ``cycle``: the whole ring (``n`` requests) whatever the round's share. ``knockout``: a
   knockout bracket in one seeded order (``n - 1`` requests, ``ceil(log2 n)`` rounds: winners
   meet winners, event-driven like the ``knockout`` strategy); ``knockout_both``: the same bracket
   in both orders. A budget smaller than the bracket cuts it short: the bracket then runs round by
   round and the first matches in bracket order that fit are judged, so which ones does not
   depend on arrival order.
2. **Adaptive rounds**. Before each round the strategy fits a Bradley-Terry model with a
   first-position term to EVERY valid vote so far::

       P(first-shown wins) = 1 / (1 + exp(s_second - s_first - h))

   by maximum a posteriori (:func:`tourney.rating.bt_posterior_dense`, the rating core's Newton
   solver, warm-started at the previous round's MAP), with Gaussian priors ``s ~ N(0, 1/l2)`` on
   the strengths and ``h ~ N(0, 1/position_l2)`` on the position advantage (weak priors: they keep
   an unbeaten candidate and a confounded position term finite), and approximates the posterior
   by a Gaussian (Laplace: the MAP and the inverse penalised Fisher information at it). Then:

   * the **pick** is the candidate with the highest posterior mean (``top_k``: the k highest);
   * the **contenders** are the pick and every other candidate whose posterior probability of
     beating the pick's weakest member is at least ``1e-3`` (a normal approximation per pair,
     O(n)); at most ``pool`` of them (default 64) enter a Monte-Carlo estimate of ``P(i is
     best)`` (``P(i in the top k)``) from ``draws`` posterior draws over the contenders, so its
     cost does not grow with n (the others' probability of being best is taken as 0). The
     standard-normal draws are taken once, at the start, and reused for every decision (common
     random numbers: decisions do not jitter with Monte-Carlo noise);
   * stop when ``p_best >= threshold`` (``stopped = "threshold"``; ``p_best`` is the probability
     that the pick is best, for ``top_k`` that the top-k set is exactly right), when the budget is
     spent (``"budget"``), when the rounds are used up (``"rounds"``; these two mark the ranking
     ``budget_limited``), or when no pair can be asked any more (``"exhausted"``);
   * otherwise the round's requests are chosen **jointly** from the same draws (a batch form of
     top-two Thompson sampling): in each draw, the best and the runner-up form that draw's
     decisive pair (``top_k``: also the k-th and the (k+1)-th, the set's boundary); the round's
     requests are shared out over the decisive pairs in proportion to how often each is decisive
     (a close call, see ``close``, counts double). The sharing keeps credit across rounds: each
     decisive pair earns its share of the round's requests, the requests go to the largest
     credits (one credit each; ties in content order), and a pair that is no longer decisive loses
     its credit, so even rounds smaller than the number of decisive pairs share requests in
     proportion over time. So the leader meets its plausible challengers,
     challengers meet each other when it is unclear who challenges, a close call gets several
     votes, and a pair that cannot change the pick gets none. A pair's repeated requests in a
     round alternate presentation order, starting with the order it was shown less often (a
     seeded coin on a draw): close calls are asked in the other order;
   * with more than ``pool`` contenders (large n, early rounds) the round is a Swiss round
     instead: the contenders in posterior-mean order, each meeting the nearest-ranked contender
     it has not met, one match per candidate (no n x n structure is built).

Round sizes. With ``rounds=R``, each round (the first included) takes ``ceil(room / rounds
left)`` requests, ``room`` being what is left of the budget, so the budget is spread over the R
rounds; ``batch`` (when given) caps a round. Without ``rounds``, each round takes ``batch``
requests when it is given, else ``max(ceil(n / 2), ceil(growth x requests so far))`` (one match
per candidate on average, growing geometrically once a run is long: with ``growth = 0.25`` a run
of C comparisons takes about ``2 + log(C / n) / log(1.25)`` rounds, so long runs, which only
need many votes on a few close calls, stay few rounds and few posterior fits); the run then
takes as many rounds as the threshold and the budget allow. The first round always has at least
``floor(n / 2)`` requests (a perfect matching: every candidate is judged once before any is
judged twice), budget permitting. A knockout first pass uses ``ceil(log2 n)`` rounds, so
``rounds`` must be at least that (else a ValueError says so).

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
is estimated jointly (``h``), not absorbed into the strengths, and repeated pairs alternate
presentation orders.

Parameters: ``budget`` (most requests of the whole run, each of one judge sample; default
``n (n - 1)``, the size of a both-orders round robin), ``rounds`` (most sequential rounds, >= 1;
default none), ``threshold`` (default 0.95), ``top_k`` (default 1), ``batch`` (requests per
round, >= 1; default: see Round sizes), ``growth`` (default 0.25; 0 keeps rounds of
``ceil(n / 2)``), ``close`` (default 0.35: a decisive pair whose posterior ``P(i beats j)`` is
within ``[close, 1 - close]`` is a close call and earns double credit, so it gets its
position-balanced votes sooner; 0 treats every decisive pair alike), ``first_pass`` (default
``auto``), ``l2`` (prior precision of the strengths, default 0.1 as in ``bradley_terry``),
``position_l2`` (of ``h``, default 0.1), ``position`` (fit ``h``, default true), ``draws``
(posterior draws, default 1000), ``pool`` (most contenders in the Monte-Carlo estimate, default
64).

Cost: one Newton fit of the dense ``(n + 1)``-parameter posterior per round (O(n^3) in LAPACK,
warm-started: one or two steps), a Monte-Carlo estimate over at most ``pool`` contenders
(``draws x pool^2``) and O(n + requests) bookkeeping. At most :data:`MAX_N` candidates
(2,000): above that the dense fit and the ``n x n`` vote tallies are refused with a message that
names the strategies to use instead (``swiss``, ``knockout``).

Batch rule: the strategy waits until every request of a round is observed before deciding the
next one, and aggregates results into order-free counts, so its decisions depend on the set of
results, never on their arrival order. Everything is computed in the content-keyed order of the
candidates (:attr:`Strategy.base_order`), so relabelling the candidates relabels the result.
Abstentions and errors are not votes; a tie is half a win each way.

Output: ``scores`` are posterior-mean log-strengths (natural log-odds units), ``uncertainty``
their posterior standard deviations. ``info``: ``p_best`` (probability the pick is best),
``p_best_all`` (per candidate; 0 for a candidate outside the contenders), ``p_top_k`` and
``p_in_top_k`` (top-k only), ``position`` (``h`` and its posterior sd), ``stopped``, ``requests``,
``budget``, ``rounds`` (sequential rounds used), ``max_rounds``, ``first_pass`` (the one used),
``batches`` (adaptive rounds after the first pass), ``swiss_rounds`` (of which Swiss rounds),
``blocked`` (ordered pairs not asked again), ``no_repeat``, ``samples`` (outcome totals).

Comparisons: data dependent (``expected_comparisons`` is None); never more than ``budget``
(``comparison_bound``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from tourney.hashing import stable_seed
from tourney.rating import bt_posterior_dense
from tourney.strategy import STRATEGIES, Strategy
from tourney.types import MatchResult, Ranking, Request

from ._common import check_bool, check_float, check_int
from ._pairs import check_choice, sample_counts, sub_seed
from ._rounds import pair_nearest
from .knockout import Knockout

#: digits to which posterior means are rounded before ordering (exact ties fall to content order)
_DIGITS = 9
_TAG = "adaptive"
#: a candidate whose posterior probability of beating the pick is below this is not a contender
PLAUSIBLE = 1e-3
#: most candidates the strategy accepts (dense n x n tallies and an (n + 1)-parameter dense fit)
MAX_N = 2000
#: Newton tolerance of the posterior fits (quadratic convergence: the MAP is then exact to ~1e-12)
_TOL = 1e-6
_PLAUSIBLE_Z = NormalDist().inv_cdf(PLAUSIBLE)

SCALE = "Bradley-Terry posterior-mean log-strength (uncertainty: posterior sd)"


def top_k_probabilities(
    mean: np.ndarray, cov: np.ndarray, z: np.ndarray, k: int, chosen: Sequence[int]
) -> tuple[np.ndarray, float]:
    """Monte-Carlo ``P(i in the top k)`` per item and ``P(the top k is exactly chosen)`` under
    ``N(mean, cov)``, from standard-normal draws ``z`` (shape ``(S, n)``)."""
    n = mean.shape[0]
    if n <= k:
        return np.ones(n), 1.0
    draws = _draw(mean, cov, z)
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


#: rows x n x n below OpenBLAS's threshold for threading a matrix product (65536 x 4): see _draw
_GEMM_SINGLE = 240_000


def _draw(mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Posterior draws ``mean + L z`` (``L L' = cov``), shape ``(S, len(mean))``.

    The product is taken in row blocks small enough that a threaded BLAS runs each on one
    thread: multi-threaded OpenBLAS splits a 1000 x 64 x 64 product over its threads, which on a
    busy machine made it 5-10x slower than one thread (the decisions run once per round of every
    prompt, so this is a hot loop)."""
    n = mean.shape[0]
    if n == 1:
        return mean + z[:, :1] * math.sqrt(max(float(cov[0, 0]), 0.0))
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(n)).T
    zz = z[:, :n]
    rows = max(1, _GEMM_SINGLE // (n * n))
    if rows >= zz.shape[0]:
        return mean + zz @ chol
    out = np.empty((zz.shape[0], n))
    for r in range(0, zz.shape[0], rows):
        np.matmul(zz[r : r + rows], chol, out=out[r : r + rows])
    out += mean
    return out


def _ranked(draws: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per draw (row), the columns ranked ``b``-th and ``(b + 1)``-th (1-based; highest first)."""
    if b == 1:
        first = np.argmax(draws, axis=1)
        rows = np.arange(draws.shape[0])
        rest = draws.copy()
        rest[rows, first] = -np.inf
        return first, np.argmax(rest, axis=1)
    top = np.argpartition(-draws, (b - 1, b), axis=1)
    return top[:, b - 1], top[:, b]


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@STRATEGIES.register("adaptive")
class Adaptive(Strategy):
    #: option -> meaning (``tourney strategies``; the defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "budget": "most requests of the whole run (each one judge sample); None: n (n - 1), a both-orders round robin",
        "rounds": "most sequential rounds (a round is judged in parallel); None: as many as the threshold and "
        "budget need",
        "threshold": "stop when the posterior probability that the pick is best (top_k: that the top-k set is right) "
        "reaches this",
        "top_k": "identify the best k candidates instead of the single best",
        "batch": "requests per round (None: ceil(n / 2), growing with `growth`; with rounds: a cap)",
        "growth": "without rounds or batch, a round asks at least this share of the requests made so far",
        "close": "a decisive pair with P(i beats j) within [close, 1 - close] earns double credit (its "
        "position-balanced votes come sooner); 0 treats every pair alike",
        "first_pass": "auto (knockout below 2 (n - 1) comparisons, else spread), spread (a perfect matching first), "
        "cycle (one random ring), knockout or knockout_both (a bracket, ceil(log2 n) rounds)",
        "l2": "prior precision of the log-strengths (a N(0, 1/l2) prior)",
        "position_l2": "prior precision of the first-position advantage h",
        "position": "fit the first-position advantage h jointly with the strengths",
        "draws": "posterior draws for P(best) and the decisive pairs (common random numbers, drawn once)",
        "pool": "most contenders in the Monte-Carlo estimate; more contenders make a Swiss round",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        budget: int | None = None,
        rounds: int | None = None,
        threshold: float = 0.95,
        top_k: int = 1,
        batch: int | None = None,
        growth: float = 0.25,
        close: float = 0.35,
        first_pass: str = "auto",
        l2: float = 0.1,
        position_l2: float = 0.1,
        position: bool = True,
        draws: int = 1000,
        pool: int = 64,
    ):
        super().__init__(n, rng, keys)
        if n > MAX_N:
            raise ValueError(
                f"adaptive handles at most {MAX_N} candidates (its posterior is a dense fit over all of "
                f"them), got {n}: use swiss (pairing=fast) or knockout for larger fields"
            )
        self.budget = self.default_budget(n) if budget is None else check_int("budget", budget, 0)
        self.max_rounds = None if rounds is None else check_int("rounds", rounds, 1)
        self.threshold = check_float("threshold", threshold, 0.0, 1.0)
        self.top_k = check_int("top_k", top_k, 1)
        self.batch = None if batch is None else check_int("batch", batch, 1)
        self.growth = check_float("growth", growth, 0.0)
        self.close = check_float("close", close, 0.0, 0.5)
        self.first_pass = check_choice(
            "first_pass", first_pass, ("auto", "spread", "cycle", "knockout", "knockout_both")
        )
        self.l2 = check_float("l2", l2, 0.0)
        self.position_l2 = check_float("position_l2", position_l2, 0.0)
        if self.l2 <= 0 or self.position_l2 <= 0:
            raise ValueError("l2 and position_l2 must be > 0 (they are prior precisions)")
        self.position = check_bool("position", position)
        self.draws = check_int("draws", draws, 1)
        self.pool = check_int("pool", pool, 2)
        # canonical (content) coordinates: index r is candidate base_order[r]
        self._cand = self.base_order
        self._rank = {c: r for r, c in enumerate(self._cand)}
        self._wins = np.zeros((n, n))  # [f, s]: votes won by f shown first against s (canonical)
        self._losses = np.zeros((n, n))
        # samples asked per ordered pair: a repeated match gets fresh sample indices (a judge is
        # deterministic per sample index, and a judgement store would answer the old one)
        self._issued = np.zeros((n, n), dtype=np.int64)
        self._met: list[set[int]] = [set() for _ in range(n)]
        self._credit: dict[tuple[int, int], float] = {}  # decisive pairs' share of requests not yet asked
        self._blocked: set[tuple[int, int]] = set()
        self._no_repeat = False
        self._results: list[MatchResult] = []
        self._sent = 0
        self._unsent: list[Request] = []
        self._pending: dict[Any, Request] = {}
        self._batches = 0  # adaptive rounds after the first pass
        self._swiss_rounds = 0  # of which Swiss rounds (more contenders than the pool)
        self._rounds = 0  # sequential rounds used (the first pass's included)
        self._stopped: str | None = None
        self._theta: np.ndarray | None = None  # warm start, updated only at decision points
        self._post: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None  # (results seen, ...)
        self._phase = 1
        self._ko: Knockout | None = None
        self.first_pass_used = self._auto_first_pass(n) if self.first_pass == "auto" else self.first_pass
        ko_size = (n - 1) * (2 if self.first_pass_used == "knockout_both" else 1)
        self._ko_sync = self.budget < ko_size
        first: list[tuple[int, int]] = []
        if n < 2 or self.budget == 0:
            self._phase, self._stopped = 2, ("budget" if n >= 2 else "exhausted")
        elif self.first_pass_used in ("knockout", "knockout_both"):
            # The bracket draws from rng FIRST, exactly as the knockout strategy does: for the same
            # seed, adaptive's bracket is the knockout strategy's bracket.
            self._ko = Knockout(n, rng, keys, both_orders=self.first_pass_used == "knockout_both")
            if self.max_rounds is not None and self.max_rounds < self._ko.rounds:
                raise ValueError(
                    f"first_pass={self.first_pass} takes {self._ko.rounds} rounds for {n} candidates, more than "
                    f"rounds={self.max_rounds}: use first_pass=spread (one round) or more rounds"
                )
        else:
            perm = [int(p) for p in rng.permutation(n)]  # canonical coordinates
            # the first round covers every candidate: at least a perfect matching
            size = n if self.first_pass_used == "cycle" else max(self._round_size(), n // 2)
            first = self._spread(perm, min(size, self.budget))
        self._coin_seed = sub_seed(rng)
        self._z = rng.standard_normal((self.draws, min(n, self.pool)))
        if first:
            self._rounds = 1
            self._queue_pairs(first, 0)

    def _auto_first_pass(self, n: int) -> str:
        """``knockout`` when the budget is below ``2 (n - 1)`` and the round limit leaves room for
        the bracket's ``ceil(log2 n)`` rounds, else ``spread`` (see the module docstring)."""
        height = math.ceil(math.log2(n)) if n >= 2 else 0
        if self.budget < 2 * (n - 1) and (self.max_rounds is None or self.max_rounds >= height):
            return "knockout"
        return "spread"

    @staticmethod
    def default_budget(n: int) -> int:
        """``n (n - 1)``: never more requests than a round robin in both orders."""
        return n * (n - 1)

    @classmethod
    def comparison_bound(cls, n: int, *, budget: int | None = None, **params: Any) -> int:
        if n < 2:
            return 0
        return cls.default_budget(n) if budget is None else int(budget)

    # -- round sizes and the first round --------------------------------------------------------
    def _round_size(self) -> int:
        """Requests for the next round (see the module docstring)."""
        room = self.budget - self._sent
        if self.max_rounds is None:
            if self.batch is not None:
                return self.batch
            return max(1, (self.n + 1) // 2, math.ceil(self.growth * self._sent))
        left = max(self.max_rounds - self._rounds, 1)
        size = -(-room // left)
        return min(size, self.batch) if self.batch is not None else size

    def _spread(self, perm: list[int], count: int) -> list[tuple[int, int]]:
        """The first ``count`` ordered pairs of the spread design over ``perm`` (canonical)."""
        n = len(perm)
        out: list[tuple[int, int]] = []
        ring: list[tuple[int, int]] = []
        for s in range(1, n // 2 + 1):
            ts = range(n // 2) if 2 * s == n else range(n)
            edges = [(perm[t], perm[(t + s) % n]) for t in ts]
            if s == 1 and len(edges) >= 2:  # alternate edges first: a perfect matching
                edges = edges[0::2] + edges[1::2]
            ring.extend(edges)
            if len(ring) >= count:
                return ring[:count]
        out = ring + [(b, a) for a, b in ring]
        return out[:count]

    # -- the protocol ---------------------------------------------------------------------------
    def _queue_pairs(self, pairs: list[tuple[int, int]], batch: int) -> None:
        """Queue requests for ordered canonical pairs, with fresh sample indices."""
        cand = self._cand
        reqs = []
        for j, (f, s) in enumerate(pairs):
            reqs.append(Request(cand[f], cand[s], 1, int(self._issued[f, s]), tag=(_TAG, batch, j)))
            self._issued[f, s] += 1
            self._met[f].add(s)
            self._met[s].add(f)
        self._queue(reqs)

    def _queue(self, reqs: list[Request]) -> None:
        room = self.budget - self._sent
        if len(reqs) > room:
            reqs = reqs[: max(room, 0)]
        for r in reqs:
            self._pending[r.tag] = r
            if not self._is_adaptive(r.tag):  # bracket requests: record their samples and pairs
                f, s = self._rank[r.first], self._rank[r.second]
                self._issued[f, s] = max(self._issued[f, s], r.sample_offset + r.samples)
                self._met[f].add(s)
                self._met[s].add(f)
        self._unsent.extend(reqs)
        self._sent += len(reqs)

    def propose(self) -> list[Request]:
        if self._phase == 1 and self._ko is not None and self._stopped is None:
            # A budget that cuts the bracket short: propose round by round (only when nothing is
            # pending) in bracket order, so WHICH matches fit does not depend on arrival order.
            if not self._ko_sync or not self._pending:
                self._queue(sorted(self._ko.propose(), key=lambda r: r.tag))
            if self._sent >= self.budget and not self._ko.done and self._stopped is None:
                self._stopped = "budget"  # the budget ends inside the first pass
        out, self._unsent = self._unsent, []
        return out

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
            if self._ko is not None:
                self._rounds = self._ko.rounds
        if self._stopped is None:
            self._decide()

    @staticmethod
    def _is_adaptive(tag: Any) -> bool:
        return isinstance(tag, tuple) and len(tag) == 3 and tag[0] == _TAG

    @property
    def done(self) -> bool:
        return self._stopped is not None and not self._pending and not self._unsent

    # -- the posterior --------------------------------------------------------------------------
    def _posterior(self, theta0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(theta, posterior means of the strengths, covariance) of every vote so far."""
        post = bt_posterior_dense(
            self._wins,
            self._losses,
            l2=self.l2,
            position=self.position,
            position_l2=self.position_l2,
            init=theta0,
            tol=_TOL,
        )
        return post.theta, post.strengths, post.cov

    def _current(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The posterior of the results so far (fitted once per set of results)."""
        seen = len(self._results)
        if self._post is None or self._post[0] != seen:
            theta, mean, cov = self._posterior(self._theta)
            self._post = (seen, theta, mean, cov)
        return self._post[1], self._post[2], self._post[3]

    def _pick(self, mean: np.ndarray) -> list[int]:
        """Canonical indices, best first (means rounded so exact ties fall to content order)."""
        key = np.round(mean[: self.n], _DIGITS)
        return sorted(range(self.n), key=lambda r: (-key[r], r))

    def _contenders(self, mean: np.ndarray, cov: np.ndarray, order: list[int], k: int) -> list[int]:
        """The pick and every candidate with a posterior probability >= PLAUSIBLE of beating the
        pick's weakest member (normal approximation per pair), in canonical order."""
        n = self.n
        ref = order[k - 1]
        diag = np.diag(cov)[:n]
        var = np.maximum(diag + diag[ref] - 2.0 * cov[:n, ref], 1e-300)
        zscore = (mean[:n] - mean[ref]) / np.sqrt(var)
        keep = set(order[: k + 1])  # the best outsider always, so P(best) has a rival
        keep.update(int(i) for i in np.flatnonzero(zscore >= _PLAUSIBLE_Z))
        return sorted(keep)

    def _estimate(
        self, mean: np.ndarray, cov: np.ndarray, order: list[int], k: int
    ) -> tuple[list[int], np.ndarray | None, float, np.ndarray | None]:
        """(contenders, draws over them or None when there are more than ``pool``, p_set,
        P(in top k) per contender)."""
        cont = self._contenders(mean, cov, order, k)
        if len(cont) > self.pool:
            return cont, None, 0.0, None
        idx = np.asarray(cont)
        draws = _draw(mean[idx], cov[np.ix_(idx, idx)], self._z)
        m = len(cont)
        pos = {c: i for i, c in enumerate(cont)}
        if m <= k:
            return cont, draws, 1.0, np.ones(m)
        if k == 1:
            best = np.argmax(draws, axis=1)
            p_in = np.bincount(best, minlength=m) / draws.shape[0]
            return cont, draws, float(p_in[pos[order[0]]]), p_in
        top = np.argpartition(-draws, k - 1, axis=1)[:, :k]
        member = np.zeros(draws.shape, dtype=bool)
        np.put_along_axis(member, top, True, axis=1)
        want = np.zeros(m, dtype=bool)
        want[[pos[c] for c in order[:k]]] = True
        return cont, draws, float(np.all(member == want, axis=1).mean()), member.mean(axis=0)

    # -- decisions ------------------------------------------------------------------------------
    def _decide(self) -> None:
        if self.max_rounds is not None and self._rounds >= self.max_rounds:
            self._stopped = "rounds"
            return
        theta, mean, cov = self._current()
        self._theta = theta
        k = min(self.top_k, self.n)
        order = self._pick(mean)
        cont, draws, p_set, _ = self._estimate(mean, cov, order, k)
        room = self.budget - self._sent
        if p_set >= self.threshold:
            self._stopped = "threshold"
            return
        if room <= 0:
            self._stopped = "budget"
            return
        size = min(self._round_size(), room)
        if draws is None:
            pairs = self._swiss_round(mean, cont, size)
            self._swiss_rounds += 1 if pairs else 0
        else:
            pairs = self._decisive_round(mean, cov, cont, draws, k, size)
        if not pairs:
            self._stopped = "exhausted"
            return
        self._batches += 1
        self._rounds += 1
        self._queue_pairs(pairs, self._batches)

    def _decisive_round(
        self, mean: np.ndarray, cov: np.ndarray, cont: list[int], draws: np.ndarray, k: int, size: int
    ) -> list[tuple[int, int]]:
        """The round's requests shared over the decisive pairs of the draws (module docstring)."""
        m = len(cont)
        if m < 2:
            return []
        if m <= k:  # every contender is in the top k: nothing to decide among them
            return []
        counts = np.zeros(m * m, dtype=np.int64)
        for b in sorted({1, k}):  # top-k: the set's boundary, and who is best within it
            first, second = _ranked(draws, b)
            lo, hi = np.minimum(first, second), np.maximum(first, second)
            counts += np.bincount(lo * m + hi, minlength=m * m)
        keys = [int(x) for x in np.flatnonzero(counts)]
        pairs = [(cont[key // m], cont[key % m]) for key in keys]  # canonical, first < second
        weights = [float(counts[key]) for key in keys]
        live = [(p, w) for p, w in zip(pairs, weights) if self._open(*p) or self._open(p[1], p[0])]
        if not live:
            return self._fallback_round(mean, cont, size)
        if self.close > 0:  # close calls earn double: they get their position-balanced votes sooner
            diag = np.diag(cov)
            for t, ((x, y), w) in enumerate(live):
                var = max(float(diag[x] + diag[y] - 2.0 * cov[x, y]), 1e-300)
                p = _phi(float(mean[y] - mean[x]) / math.sqrt(var))
                if min(p, 1.0 - p) >= self.close:
                    live[t] = ((x, y), 2.0 * w)
        # credits: each decisive pair earns its share of this round's requests; the round's requests
        # go to the largest credits (one credit per request), and a pair no longer decisive loses
        # its credit. Over rounds this shares requests in proportion to how often a pair is
        # decisive even when a round has fewer requests than there are decisive pairs.
        total = float(sum(w for _, w in live))
        credit = {p: self._credit.get(p, 0.0) + size * w / total for p, w in live}
        alloc_d: dict[tuple[int, int], int] = {}
        heap = [(-c, p) for p, c in credit.items()]  # largest credit first, ties in content order
        heapq.heapify(heap)
        for _ in range(size - len(alloc_d)):
            c, pair = heapq.heappop(heap)
            alloc_d[pair] = alloc_d.get(pair, 0) + 1
            heapq.heappush(heap, (c + 1.0, pair))
        self._credit = {pair: -c for c, pair in heap}
        out: list[tuple[int, int]] = []
        for (x, y), _ in live:
            if alloc_d.get((x, y)):
                out.extend(self._orders(x, y, alloc_d[(x, y)]))
        return out[:size]

    def _fallback_round(self, mean: np.ndarray, cont: list[int], size: int) -> list[tuple[int, int]]:
        """Every decisive pair is used up (a judge that cannot re-sample): the open pairs among
        the contenders, likeliest first (by the lower of the two posterior means)."""
        key = np.round(mean, _DIGITS)
        cand = [(x, y) for i, x in enumerate(cont) for y in cont[i + 1 :] if self._open(x, y) or self._open(y, x)]
        cand.sort(key=lambda xy: (-min(key[xy[0]], key[xy[1]]), -max(key[xy[0]], key[xy[1]]), xy))
        out: list[tuple[int, int]] = []
        for x, y in cand[:size]:
            out.extend(self._orders(x, y, 1))
        return out

    def _swiss_round(self, mean: np.ndarray, cont: list[int], size: int) -> list[tuple[int, int]]:
        """More contenders than ``pool``: a Swiss round over them by posterior mean."""
        key = np.round(mean, _DIGITS)
        ranked = sorted(cont, key=lambda r: (-key[r], r))
        out: list[tuple[int, int]] = []
        for x, y in pair_nearest(ranked, self._met, size):
            out.extend(self._orders(x, y, 1))
        return out

    def _orders(self, x: int, y: int, count: int) -> list[tuple[int, int]]:
        """``count`` requests of the pair, alternating presentation orders, the order shown less
        often first (a seeded, content-keyed coin per pair and visit on a draw); only open orders,
        and with a judge that cannot re-sample, only orders never asked."""
        a, b = (x, y), (y, x)
        na, nb = int(self._issued[a]), int(self._issued[b])
        if na == nb:
            flip = stable_seed(self._coin_seed, min(x, y), max(x, y), na) % 2
            first, second = (b, a) if flip else (a, b)
        else:
            first, second = (a, b) if na < nb else (b, a)
        seq = [o for o in (first, second) if self._open(*o)]
        if not seq:
            return []
        if self._no_repeat:
            return seq[:count]
        return [seq[t % len(seq)] for t in range(count)]

    def _open(self, f: int, s: int) -> bool:
        """May the ordered pair (canonical indices) be asked (again)?"""
        return (f, s) not in self._blocked and not (self._no_repeat and self._issued[f, s] > 0)

    # -- the ranking ----------------------------------------------------------------------------
    def ranking(self) -> Ranking:
        n = self.n
        cand = self._cand
        if n == 1:
            return Ranking(
                order=(0,),
                scores=(0.0,),
                scale=SCALE,
                uncertainty=(0.0,),
                info={"p_best": 1.0, "p_best_all": [1.0], "stopped": self._stopped, "requests": 0, "rounds": 0},
            )
        theta, mean, cov = self._current()
        k = min(self.top_k, n)
        order = self._pick(mean)
        cont, _, _, _ = self._estimate(mean, cov, order, 1)
        if len(cont) > self.pool:  # report P(best) over the pool's best contenders
            key = np.round(mean, _DIGITS)
            cont = sorted(sorted(cont, key=lambda r: (-key[r], r))[: self.pool])
        idx = np.asarray(cont)
        p_sub, _ = top_k_probabilities(mean[idx], cov[np.ix_(idx, idx)], self._z, 1, [cont.index(order[0])])
        p_in = np.zeros(n)
        p_in[idx] = p_sub
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
            "rounds": self._rounds,
            "max_rounds": self.max_rounds,
            "first_pass": self.first_pass_used,
            "batches": self._batches,
            "swiss_rounds": self._swiss_rounds,
            "blocked": sorted([cand[f], cand[s]] for f, s in self._blocked),
            "no_repeat": self._no_repeat,
            "samples": sample_counts(self._results),
        }
        if k > 1:
            cont_k, _, p_set, p_top = self._estimate(mean, cov, order, k)
            p_in_k = [0.0] * n
            if p_top is not None:
                for i, r in enumerate(cont_k):
                    p_in_k[cand[r]] = float(p_top[i])
            info["p_top_k"] = p_set
            info["p_in_top_k"] = p_in_k
        if self.position:
            info["position"] = {"coef": float(theta[n]), "sd": float(math.sqrt(max(cov[n, n], 0.0)))}
        return Ranking(
            order=tuple(cand[r] for r in order),
            scores=tuple(scores),
            scale=SCALE,
            uncertainty=tuple(unc),
            budget_limited=self._stopped in ("budget", "rounds"),
            info=info,
        )
