"""Plumbing shared by the pairwise strategies (private: not a strategy module).

* :class:`Batched` -- the batch rule for adaptive strategies. A strategy proposes a batch,
  waits until ALL of it is observed, and only then decides the next batch from the results,
  which it receives in proposal order. Its decisions therefore depend on the set of results,
  never on the order the scheduler delivered them in.
* :class:`PairDesign` -- a fixed design (one batch): round robin or random cycles, one seeded
  order per pair or both orders. Round robin, Elo, Bradley-Terry and Copeland subclass it and
  only add a scoring method.
* :func:`games` -- judged samples as arrays (``first``, ``second``, ``y``, ``weights``) for
  :mod:`tourney.rating`. Abstentions and errors are not games: they carry no preference and
  are never a win.
* :func:`bt_scores` / :func:`elo_scores` -- the two rating scorers, shared by the strategies that
  offer them.

Canonical order: every list of pairs is built over :attr:`Strategy.base_order` (candidates
sorted by content key) and every random draw is taken in that order, so relabelling the
candidates relabels the result.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np

from tourney.rating import ELO_BASE, ELO_INITIAL, ELO_PER_NAT, ELO_SCALE
from tourney.strategy import Strategy
from tourney.types import MatchResult, Ranking, Request

from ._common import check_bool, check_int


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def sub_seed(rng: np.random.Generator) -> int:
    """A seed drawn once from ``rng``, for randomness needed later (e.g. inside ``ranking()``,
    which may run any number of times and must not advance the strategy's generator)."""
    return int(rng.integers(0, 2**63 - 1))


class Batched(Strategy):
    """A strategy that runs in batches; subclasses implement :meth:`next_batch`.

    ``next_batch(last)`` is called with ``[]`` first, then with the results of the previous
    batch (``last[k]`` answers the k-th request returned, in that order); returning ``[]``
    ends the run. Requests are re-tagged ``(batch, k)`` here, so subclasses leave ``tag`` unset.
    """

    def __init__(self, n: int, rng: np.random.Generator, keys: Sequence[str] | None = None):
        super().__init__(n, rng, keys)
        self.results: list[MatchResult] = []  #: completed batches, in proposal order
        self.batches = 0
        self._batch: list[Request] = []
        self._got: dict[int, MatchResult] = {}
        self._unsent: list[Request] = []
        self._started = False
        self._finished = False

    @abstractmethod
    def next_batch(self, last: list[MatchResult]) -> list[Request]:
        """The next batch of requests given the previous batch's results ([] ends the run)."""

    def _pump(self, last: list[MatchResult]) -> None:
        reqs = self.next_batch(last)
        if not reqs:
            self._finished = True
            return
        self._batch = list(reqs)
        self._got = {}
        self._unsent = [
            Request(r.first, r.second, r.samples, r.sample_offset, tag=(self.batches, k)) for k, r in enumerate(reqs)
        ]
        self.batches += 1

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._pump([])

    def propose(self) -> list[Request]:
        self._start()
        out, self._unsent = self._unsent, []
        return out

    def observe(self, result: MatchResult) -> None:
        _, k = result.request.tag
        self._got[k] = MatchResult(self._batch[k], result.judgements)
        if len(self._got) == len(self._batch):
            last = [self._got[k] for k in range(len(self._batch))]
            self.results.extend(last)
            self._batch, self._got = [], {}
            self._pump(last)

    @property
    def done(self) -> bool:
        self._start()
        return self._finished

    def observed(self) -> list[MatchResult]:
        """Every result so far in canonical order (completed batches, then the current one's
        received results by position), for a ranking at any time."""
        return self.results + [self._got[k] for k in sorted(self._got)]


class PairDesign(Batched):
    """A fixed design judged in one batch; subclasses implement :meth:`ranking`.

    ``design`` lists (first, second) pairs: every pair (round robin) or, with ``cycles``,
    that many random Hamiltonian cycles over the candidates (each candidate meets two others
    per cycle; the first cycle already connects everyone). Single order: which candidate is
    shown first is a seeded coin per pair; ``both_orders``: each pair in both orders.
    """

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = False,
        cycles: int | None = None,
    ):
        super().__init__(n, rng, keys)
        self.votes = check_int("votes", votes, 1)
        self.both_orders = check_bool("both_orders", both_orders)
        self.cycles = None if cycles is None else check_int("cycles", cycles, 1)
        self.design = design_pairs(self, self.both_orders, self.cycles)

    @staticmethod
    def design_size(n: int, both_orders: bool = False, cycles: int | None = None) -> int:
        """Number of requests in the design (see :func:`design_pairs`)."""
        per_order = n * (n - 1) // 2 if cycles is None else cycles * (n if n >= 3 else n - 1)
        return per_order * (2 if both_orders else 1)

    def next_batch(self, last: list[MatchResult]) -> list[Request]:
        if self.batches:
            return []
        return [Request(a, b, self.votes) for a, b in self.design]


def design_pairs(s: Strategy, both_orders: bool, cycles: int | None = None) -> list[tuple[int, int]]:
    """The (first, second) pairs of a round robin (``cycles=None``) or of ``cycles`` random
    Hamiltonian cycles, over the strategy's content order with draws from its ``rng``."""
    base = s.base_order
    if cycles is None:
        pairs = [(base[i], base[j]) for i in range(len(base)) for j in range(i + 1, len(base))]
    else:
        pairs = []
        for _ in range(cycles):
            perm = [int(p) for p in s.rng.permutation(np.asarray(base, dtype=np.int64))]
            if len(perm) == 2:
                pairs.append((perm[0], perm[1]))
            elif len(perm) >= 3:
                pairs.extend((perm[i], perm[(i + 1) % len(perm)]) for i in range(len(perm)))
    if both_orders:
        return [p for a, b in pairs for p in ((a, b), (b, a))]
    coins = s.rng.random(len(pairs))
    return [(b, a) if c < 0.5 else (a, b) for (a, b), c in zip(pairs, coins)]


# -- judged samples as data ---------------------------------------------------------------------
def games(
    results: Sequence[MatchResult], ties: str = "half", expand: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrays ``first, second, y, weights`` of the valid votes in ``results`` (in their order).

    ``y`` is 1.0 when the first-shown candidate won, 0.0 when the second did, 0.5 for an
    explicit tie (``ties="drop"`` leaves ties out). Equal outcomes of one request are one row
    weighted by their count, or, with ``expand``, one row each (for sequential Elo).
    Abstentions and errors are not rows.
    """
    rows: list[tuple[int, int, float, float]] = []
    for r in results:
        f, s = r.request.first, r.request.second
        for y, cnt in ((1.0, r.first_wins), (0.0, r.second_wins), (0.5, r.ties if ties == "half" else 0)):
            if cnt:
                rows.extend([(f, s, y, 1.0)] * cnt if expand else [(f, s, y, float(cnt))])
    if not rows:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), np.zeros(0), np.zeros(0)
    a = np.asarray(rows, dtype=float)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].copy(), a[:, 3].copy()


def sample_counts(results: Sequence[MatchResult]) -> dict[str, int]:
    """Totals of each outcome over ``results`` (for ``Ranking.info``)."""
    out = {"A": 0, "B": 0, "tie": 0, "abstain": 0, "error": 0}
    for r in results:
        for j in r.judgements:
            out[j.outcome.value] += 1
    return out


def order_by_rounded(s: Strategy, scores: Sequence[float], digits: int = 9) -> tuple[int, ...]:
    """``s.order_by`` on scores rounded to ``digits`` decimals: a fitted score carries rounding
    noise that depends on the candidates' labels, and exact ties (two candidates with the same
    record) must fall to the content-keyed tie-break, not to that noise."""
    return s.order_by([round(v, digits) for v in scores])


# -- scorers ------------------------------------------------------------------------------------
def bt_scores(
    s: Strategy,
    results: Sequence[MatchResult],
    *,
    ties: str = "half",
    l2: float = 0.0,
    position: bool = False,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
) -> Ranking:
    """Bradley-Terry maximum likelihood over the judged samples (:func:`tourney.rating.bradley_terry`,
    the rating core's one solver).

    ``scores`` are centred log-strengths (natural log-odds units: i beats j with probability
    ``1 / (1 + exp(s_j - s_i))``), ``uncertainty`` their Fisher-information standard errors.
    ``info["elo"]`` / ``info["elo_se"]`` are the same fit on the Elo scale of
    :mod:`tourney.rating` (``ELO_SCALE`` = 400 points per factor ``ELO_BASE`` = 10 of odds, mean
    ``ELO_INITIAL`` = 1000). With ``position``, ``info["position"]`` is the estimated first-shown
    advantage in log-odds (and its standard error). Disconnected comparison graphs are reported
    in ``info["components"]``: without ``l2`` the offsets between components are unidentified.
    """
    from tourney import rating

    first, second, y, w = games(results, ties)
    n = s.n
    info: dict[str, Any] = {"games": float(w.sum()), "samples": sample_counts(results)}
    if len(y) == 0:  # nothing judged: everyone level, no information
        info["components"] = [[i] for i in s.base_order]
        info["connected"] = n <= 1
        return Ranking(order=s.order_by([0.0] * n), scores=(0.0,) * n, scale=BT_SCALE, info=info)
    # ties is checked by the solver (and by the strategies' options before it)
    fit = rating.bradley_terry(
        n, first, second, y, weights=w, ties=cast(Literal["half", "drop"], ties), l2=l2, position=position
    )
    strengths = [float(v) for v in fit.strengths]
    se = [float(v) for v in fit.se]
    info["elo"] = [float(v) for v in fit.elo]
    info["converged"] = bool(fit.converged)
    info["connected"] = bool(fit.connected)
    info["components"] = _canonical_components(s, fit.components)
    if position:
        info["position"] = {"coef": _finite(fit.position_coef), "se": _finite(fit.position_se)}
    if bootstrap:
        boot = rating.bt_bootstrap(
            n,
            first,
            second,
            y,
            weights=w,
            rounds=bootstrap,
            rng=np.random.default_rng(bootstrap_seed),
            ties=ties,
            l2=l2,
            position=position,
        )
        lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        info["bootstrap"] = {"rounds": bootstrap, "ci95": [[float(a), float(b)] for a, b in zip(lo, hi)]}
    # A candidate alone in its component (every match of it abstained) has no Fisher
    # information; with a prior (l2 > 0) its honest uncertainty is the prior's sd.
    prior_sd = 1.0 / math.sqrt(l2) if l2 > 0 else math.nan
    se = [v if math.isfinite(v) else prior_sd for v in se]
    uncertainty = tuple(se) if all(math.isfinite(v) for v in se) else None
    if uncertainty is None:
        info["se"] = [v if math.isfinite(v) else None for v in se]
    info["elo_se"] = [v * ELO_PER_NAT if math.isfinite(v) else None for v in se]
    return Ranking(
        order=order_by_rounded(s, strengths),
        scores=tuple(strengths),
        scale=BT_SCALE,
        uncertainty=uncertainty,
        info=info,
    )


BT_SCALE = "Bradley-Terry centred log-strength (uncertainty: Fisher standard error)"


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _canonical_components(s: Strategy, components: Any) -> list[list[int]]:
    """Components as sorted lists, ordered by their first member in content order (stable
    under relabelling)."""
    comps = [sorted(int(i) for i in c) for c in components]
    rank = {c: k for k, c in enumerate(s.base_order)}
    return sorted(comps, key=lambda c: min(rank[i] for i in c))


def elo_scores(
    s: Strategy,
    results: Sequence[MatchResult],
    *,
    k: float,
    scale: float = ELO_SCALE,
    base: float = ELO_BASE,
    initial: float = ELO_INITIAL,
    n_orders: int = 1,
    order_seed: int = 0,
) -> Ranking:
    """Online Elo over the judged samples, one game per valid vote (tie = half a point each),
    replayed in a random order drawn from ``order_seed`` (the mean over ``n_orders`` orders).

    The games are listed in canonical (content) order before the shuffle, so the same seed
    gives the same replay order whatever the candidates' labels.
    """
    from tourney import rating

    first, second, y, _ = games(results, "half", expand=True)
    n = s.n
    info: dict[str, Any] = {"games": len(y), "samples": sample_counts(results), "k": k, "n_orders": n_orders}
    if len(y) == 0:
        r = [float(initial)] * n
    else:
        r = [
            float(v)
            for v in rating.elo(
                n,
                first,
                second,
                y,
                k=k,
                scale=scale,
                base=base,
                initial=initial,
                rng=np.random.default_rng(order_seed),
                n_orders=n_orders,
            )
        ]
    return Ranking(
        order=order_by_rounded(s, r),
        scores=tuple(r),
        scale=f"online Elo (K={k:g}, {scale:g} points per factor {base:g} of odds, initial {initial:g})",
        info=info,
    )
