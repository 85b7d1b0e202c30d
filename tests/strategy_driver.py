"""Oracles and a synchronous driver for strategy tests (shared by the per-strategy test
modules and the conformance suite; re-exported by ``conftest.py``).

Strategies are driven by :func:`drive`, a small synchronous stand-in for the scheduler: it
loops propose/observe, answers each request from an oracle ``(first_key, second_key, sample)
-> Outcome`` defined on the candidates' CONTENT keys (so relabelling tests are meaningful),
delivers the pending results in a chosen (possibly random) order, counts the requests and caps
the number of steps to prove termination. :func:`by_rounds` drives in synchronous rounds and
:func:`simulated_top1` measures top-1 accuracy through the real scheduler.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tourney import Tournament
from tourney.strategy import Strategy, build_strategy
from tourney.types import Judgement, MatchResult, Outcome, Ranking, Request

Oracle = Callable[[str, str, int], Outcome]

MAX_STEPS = 20_000
SCORE_TOL = 1e-9


# -- oracles ------------------------------------------------------------------------------------
def _u(*parts: Any) -> float:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 0.5) / 2.0**64


def keys_for(n: int) -> list[str]:
    return [f"cand-{i:02d}" for i in range(n)]


def quality(key: str) -> float:
    """Latent quality by content: higher-numbered keys are better (distinct values)."""
    return float(int(key.split("-")[1]))


def noiseless(f: str, s: str, sample: int) -> Outcome:
    return Outcome.A if quality(f) > quality(s) else Outcome.B


def noisy(f: str, s: str, sample: int) -> Outcome:
    """A biased, noisy judge that sometimes ties or abstains."""
    u = _u("noisy", f, s, sample)
    if u < 0.05:
        return Outcome.ABSTAIN
    if u < 0.1:
        return Outcome.TIE
    p = 1.0 / (1.0 + math.exp(-((quality(f) - quality(s)) / 2.0 + 0.5)))
    return Outcome.A if _u("coin", f, s, sample) < p else Outcome.B


def chaos(f: str, s: str, sample: int) -> Outcome:
    return list(Outcome)[int(_u("chaos", f, s, sample) * 5)]


def constant(outcome: Outcome) -> Oracle:
    return lambda f, s, sample: outcome


# -- the driver ---------------------------------------------------------------------------------
class Run:
    def __init__(self, strategy: Strategy, ranking: Ranking, requests: list[Request], steps: int):
        self.strategy, self.ranking, self.requests, self.steps = strategy, ranking, requests, steps


def make(name: str, params: dict[str, Any], n: int, seed: int = 0, keys: list[str] | None = None) -> Strategy:
    return build_strategy(name, params).create(n, np.random.default_rng(seed), keys)


def drive(
    strategy: Strategy,
    oracle: Oracle,
    keys: list[str],
    *,
    delivery_seed: int | None = None,
    check_midway: bool = False,
) -> Run:
    """Run ``strategy`` to completion against ``oracle``; results delivered FIFO or, with
    ``delivery_seed``, in a random order (new proposals join the pending pool)."""
    rng = np.random.default_rng(delivery_seed) if delivery_seed is not None else None
    pending: list[Request] = []
    requests: list[Request] = []
    steps = 0
    while True:
        new = strategy.propose()
        assert isinstance(new, list)
        requests += new
        pending += new
        if not pending:
            assert strategy.done, "strategy stalled: not done and proposed nothing"
            break
        k = int(rng.integers(len(pending))) if rng is not None else 0
        req = pending.pop(k)
        assert 0 <= req.first < strategy.n and 0 <= req.second < strategy.n and req.first != req.second
        js = tuple(
            Judgement(outcome=oracle(keys[req.first], keys[req.second], s), sample=s)
            for s in range(req.sample_offset, req.sample_offset + req.samples)
        )
        strategy.observe(MatchResult(req, js))
        steps += 1
        assert steps < MAX_STEPS, "strategy does not terminate"
        if check_midway and steps % 3 == 1:
            check_ranking(strategy.ranking(), strategy.n)
    assert strategy.done
    return Run(strategy, strategy.ranking(), requests, steps)


def by_rounds(strategy: Strategy, oracle: Oracle, keys: list[str], max_rounds: int = 1000) -> list[list[Request]]:
    """Drive ``strategy`` in synchronous rounds: judge everything it proposes, deliver it all,
    ask again. Returns the requests of each round; their number is the run's critical path in
    judge calls (sequential rounds) when every call takes the same time."""
    rounds: list[list[Request]] = []
    while True:
        batch = strategy.propose()
        if not batch:
            assert strategy.done, "strategy stalled: not done and proposed nothing"
            return rounds
        rounds.append(batch)
        assert len(rounds) <= max_rounds, "strategy does not terminate"
        for req in batch:
            js = tuple(
                Judgement(outcome=oracle(keys[req.first], keys[req.second], s), sample=s)
                for s in range(req.sample_offset, req.sample_offset + req.samples)
            )
            strategy.observe(MatchResult(req, js))


def simulated_top1(spec: str, n: int, prompts: int, seed: int = 0) -> float:
    """Top-1 accuracy of ``spec`` through the real scheduler on the default simulated judge,
    ``prompts`` prompts of ``n`` candidates with latent qualities N(0, 1)."""
    rng = np.random.default_rng(seed)
    items = [
        {
            "id": str(k),
            "prompt": f"p{k}",
            "responses": [f"r{k}-{i}" for i in range(n)],
            "scores": [float(v) for v in rng.normal(size=n)],
        }
        for k in range(prompts)
    ]
    res = Tournament("simulated", spec, seed=seed).rank(items)
    assert all(r.status == "ok" for r in res)
    return float(np.mean([r.best == int(np.argmax(it["scores"])) for r, it in zip(res, items)]))


def run(name: str, params: dict[str, Any], n: int, oracle: Oracle, seed: int = 0, **kw: Any) -> Run:
    keys = keys_for(n)
    return drive(make(name, params, n, seed, keys), oracle, keys, **kw)


def check_ranking(r: Ranking, n: int) -> None:
    assert isinstance(r, Ranking)
    assert sorted(r.order) == list(range(n))
    assert len(r.scores) == n and all(isinstance(s, float) and math.isfinite(s) for s in r.scores)
    if r.uncertainty is not None:
        assert len(r.uncertainty) == n and all(math.isfinite(u) and u >= 0 for u in r.uncertainty)
    assert isinstance(r.scale, str) and r.scale
    # the order agrees with the scores (equal scores may be ordered by a tie-break)
    assert all(r.scores[a] >= r.scores[b] - SCORE_TOL for a, b in zip(r.order, r.order[1:]))


# -- oracles ------------------------------------------------------------------------------------
def abstain_when_wins(x: str) -> Oracle:
    """Noiseless, except that it abstains whenever candidate x would win."""

    def oracle(f: str, s: str, sample: int) -> Outcome:
        out = noiseless(f, s, sample)
        if (f == x and out is Outcome.A) or (s == x and out is Outcome.B):
            return Outcome.ABSTAIN
        return out

    return oracle


def signature(r: Ranking) -> tuple:
    unc = None if r.uncertainty is None else tuple(round(u, 9) for u in r.uncertainty)
    return r.order, tuple(round(s, 9) for s in r.scores), unc
