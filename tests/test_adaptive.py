"""The adaptive strategy: its posterior (checked against independent solvers), its decisions
(budget, stopping, fresh samples, judges that cannot re-sample), and its estimate under a biased
judge. The protocol itself is checked by test_strategy_conformance.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.adaptive import Adaptive, map_fit, top_k_probabilities
from tourney import Tournament
from tourney.simulate import SimulatedBench, run_strategy
from tourney.strategy import build_strategy
from tourney.types import Judgement, MatchResult, Outcome

from .conftest import require
from .test_strategy_conformance import drive, keys_for, noiseless, noisy

#: agreement with an independent optimiser (both converge far below this)
FIT_TOL = 1e-5
#: Monte-Carlo error allowed for P(best) from 20,000 draws (about 3 standard errors)
MC_TOL = 0.012


def _random_counts(n: int, games: int, seed: int, bias: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = 2.0 * rng.standard_normal(n)
    wins, losses = np.zeros((n, n)), np.zeros((n, n))
    for _ in range(games):
        f, s = rng.choice(n, 2, replace=False)
        if rng.random() < 1.0 / (1.0 + math.exp(-(q[f] - q[s] + bias))):
            wins[f, s] += 1
        else:
            losses[f, s] += 1
    return wins, losses


def _objective(theta: np.ndarray, wins: np.ndarray, losses: np.ndarray, l2: float, pl2: float) -> float:
    n = wins.shape[0]
    eta = theta[:n, None] - theta[None, :n] + theta[n]
    ll = -(wins * np.logaddexp(0, -eta)).sum() - (losses * np.logaddexp(0, eta)).sum()
    return -(ll - 0.5 * l2 * (theta[:n] ** 2).sum() - 0.5 * pl2 * theta[n] ** 2)


def test_map_fit_matches_an_independent_optimiser():
    from scipy.optimize import minimize

    wins, losses = _random_counts(7, 60, seed=1)
    theta, cov = map_fit(wins, losses, l2=0.2, position_l2=1.0, position=True)
    ref = minimize(_objective, np.zeros(8), args=(wins, losses, 0.2, 1.0), method="BFGS",
                   options={"gtol": 1e-10})
    assert np.allclose(theta, ref.x, atol=FIT_TOL)
    # the Laplace covariance is the inverse of the objective's Hessian (finite differences)
    h = 1e-5

    def grad(t: np.ndarray) -> np.ndarray:
        return np.array([(_objective(t + h * e, wins, losses, 0.2, 1.0)
                          - _objective(t - h * e, wins, losses, 0.2, 1.0)) / (2 * h) for e in np.eye(8)])

    hess = np.array([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in np.eye(8)])
    assert np.allclose(np.linalg.inv(hess), cov, atol=1e-3)


def test_map_fit_without_position_matches_choix():
    choix = require("choix", "choix is the test-only oracle (the test extra)")
    wins, losses = _random_counts(6, 50, seed=2, bias=0.0)
    theta, _ = map_fit(wins, losses, l2=0.5, position_l2=1.0, position=False)
    data = [(f, s) for f in range(6) for s in range(6) for _ in range(int(wins[f, s]))]
    data += [(s, f) for f in range(6) for s in range(6) for _ in range(int(losses[f, s]))]
    ref = choix.opt_pairwise(6, data, alpha=0.25)  # choix minimises -loglik + alpha |s|^2: l2 = 2 alpha
    assert np.allclose(theta, ref - ref.mean(), atol=FIT_TOL)
    assert abs(theta.sum()) < 1e-9  # a Gaussian prior centred at 0 centres the MAP


def test_map_fit_is_finite_for_an_unbeaten_candidate_and_warm_starts_agree():
    wins = np.zeros((3, 3))
    wins[0, 1] = wins[0, 2] = 5  # candidate 0 shown first and always won: strengths and h confounded
    theta, cov = map_fit(wins, np.zeros((3, 3)), l2=0.1, position_l2=1.0, position=True)
    assert np.all(np.isfinite(theta)) and np.all(np.isfinite(cov))
    again, _ = map_fit(wins, np.zeros((3, 3)), l2=0.1, position_l2=1.0, position=True, theta0=theta + 3.0)
    assert np.allclose(theta, again, atol=1e-9)


def test_p_best_matches_numerical_integration():
    from scipy import integrate, stats

    mean = np.array([0.0, 0.5, 1.0, -0.3])
    sd = np.array([1.0, 0.7, 0.4, 1.5])
    z = np.random.default_rng(0).standard_normal((20_000, 4))
    p, p_set = top_k_probabilities(mean, np.diag(sd**2), z, 1, [2])

    def exact(i: int) -> float:
        def density(x: float) -> float:  # i is at x and every other is below it
            return stats.norm.pdf(x, mean[i], sd[i]) * np.prod(
                [stats.norm.cdf(x, mean[j], sd[j]) for j in range(4) if j != i])

        return integrate.quad(density, -12, 12)[0]

    assert np.allclose(p, [exact(i) for i in range(4)], atol=MC_TOL)
    assert p_set == pytest.approx(p[2])
    # top-2: membership probabilities sum to 2
    p2, _ = top_k_probabilities(mean, np.diag(sd**2), z, 2, [2, 1])
    assert p2.sum() == pytest.approx(2.0)


def _run(params: dict, n: int, oracle=noisy, seed: int = 0, **kw):
    keys = keys_for(n)
    return drive(build_strategy("adaptive", params).create(n, np.random.default_rng(seed), keys), oracle, keys, **kw)


def test_budget_is_never_exceeded_and_a_cut_first_pass_is_order_free():
    for budget in (0, 3, 5, 9, 20):
        ref = _run({"budget": budget, "threshold": 1.0}, 8)
        assert len(ref.requests) == min(budget, 8 * 7)
        assert ref.ranking.budget_limited  # a threshold of 1 is never reached: the budget ends it
        for d in range(3):  # the cut (budget 3 or 5 < n - 1 = 7) must not depend on arrival order
            other = _run({"budget": budget, "threshold": 1.0}, 8, delivery_seed=d)
            assert other.ranking.order == ref.ranking.order
            assert sorted((r.first, r.second, r.sample_offset) for r in other.requests) == \
                sorted((r.first, r.second, r.sample_offset) for r in ref.requests)


def test_stops_at_the_threshold_and_reports_p_best():
    # a noiseless judge's unanimous verdicts are separated data: past a point, more of them barely
    # move the posterior (the prior bounds it), so the threshold is a modest one here
    res = _run({"threshold": 0.8}, 6, oracle=noiseless)
    info = res.ranking.info
    assert res.ranking.best == 5
    assert info["stopped"] == "threshold" and info["p_best"] >= 0.8
    assert info["p_best"] == pytest.approx(info["p_best_all"][5])
    assert sum(info["p_best_all"]) == pytest.approx(1.0)
    assert len(res.requests) < 6 * 5  # stopped well before the budget
    assert res.ranking.budget_limited is False


def test_repeated_pairs_get_fresh_sample_indices():
    res = _run({"threshold": 1.0, "budget": 40}, 4)
    seen: dict[tuple[int, int], list[int]] = {}
    for r in res.requests:
        seen.setdefault((r.first, r.second), []).append(r.sample_offset)
    assert any(len(v) > 1 for v in seen.values())
    for offsets in seen.values():
        assert offsets == list(range(len(offsets)))  # 0, 1, 2, ...: never a sample twice


def test_a_judge_that_cannot_resample_is_detected():
    """A replay of single recorded verdicts errors on any repeat: after the first failed repeat
    the strategy asks only pairs never asked, so at most one batch (here: one pair, possibly in
    both orders) is lost."""

    def once(f: str, s: str, sample: int) -> Outcome:
        return Outcome.ERROR if sample > 0 else noisy(f, s, 0)

    res = _run({"threshold": 1.0}, 5, oracle=once)
    repeats = [r for r in res.requests if r.sample_offset > 0]
    assert 1 <= len(repeats) <= 2 and len({r.tag[1] for r in repeats}) == 1  # one batch
    assert res.ranking.info["no_repeat"] is True
    # then every other ordered pair is judged (once) until the budget of 20 = 5 * 4 is spent
    assert len({(r.first, r.second) for r in res.requests}) == len(res.requests) - len(repeats)


def test_top_k_finds_the_set():
    res = _run({"top_k": 3, "threshold": 0.75}, 7, oracle=noiseless)
    assert set(res.ranking.order[:3]) == {4, 5, 6}
    assert res.ranking.info["p_top_k"] >= 0.75 and res.ranking.info["stopped"] == "threshold"


def test_position_bias_is_estimated_not_absorbed():
    """A strongly biased judge (P(first wins) = 0.8 at equal quality): the first-position advantage
    fitted from adaptively chosen pairs recovers logit(0.8) as well as a fixed both-orders round
    robin of the same size does (adaptive sampling does not bias the likelihood), and the pick is
    at least as accurate as that round robin's."""
    true_h = math.log(0.8 / 0.2)
    for bias in (0.0, 0.3):
        bench = SimulatedBench(8, 80, seed=3, options={"position_bias": bias})
        f = build_strategy("adaptive:threshold=1.0,budget=56")
        coefs, fixed, correct, fixed_correct = [], [], [], []
        for t in range(len(bench)):
            trial = bench.trial(t)
            ranking, out = run_strategy(f, trial, None)
            coefs.append(ranking.info["position"]["coef"])
            correct.append(out.correct)
            rr, rout = run_strategy(build_strategy("bradley_terry"), trial, None)  # 56 = 8 * 7 as well
            fixed.append(rr.info["position"]["coef"])
            fixed_correct.append(rout.correct)
        target = true_h if bias else 0.0
        assert abs(float(np.mean(coefs)) - target) < 0.2 + abs(float(np.mean(fixed)) - target), (coefs, fixed)
        assert np.mean(correct) >= np.mean(fixed_correct) - 0.05, (bias, np.mean(correct), np.mean(fixed_correct))


def test_p_best_is_not_overconfident():
    """Over many trials the mean reported P(best) does not exceed the accuracy it achieves."""
    bench = SimulatedBench(8, 150, seed=5)
    f = build_strategy("adaptive")
    outs = [run_strategy(f, bench.trial(t), 20)[1] for t in range(len(bench))]
    acc = float(np.mean([o.correct for o in outs]))
    p = float(np.mean([o.p_best for o in outs]))
    assert 0.3 < p <= acc + 0.05, (p, acc)


def test_through_the_scheduler_with_its_budget():
    items = [{"id": "a", "prompt": "p", "responses": [f"r{i}" for i in range(9)],
              "scores": [0.1 * i for i in range(9)]}]
    (cut,) = Tournament("simulated", "adaptive", seed=1, max_comparisons=5).rank(items)
    assert cut.status == "ok" and cut.budget_limited and cut.comparisons == 5
    (own,) = Tournament("simulated", "adaptive:budget=12", seed=1).rank(items)
    assert own.comparisons == 12 and own.budget_limited and 0 < own.info["p_best"] < 1


def test_bad_options():
    with pytest.raises(ValueError, match="threshold"):
        build_strategy("adaptive:threshold=1.5")
    with pytest.raises(ValueError, match="first_pass"):
        build_strategy("adaptive:first_pass=swiss")
    with pytest.raises(ValueError, match="prior precisions"):
        build_strategy("adaptive:l2=0")
    assert Adaptive.comparison_bound(6) == 30 and Adaptive.comparison_bound(6, budget=7) == 7
    assert Adaptive.expected_comparisons(6) is None


def test_abstentions_block_a_pair_instead_of_repeating_it():
    def abstain_on_01(f: str, s: str, sample: int) -> Outcome:
        return Outcome.ABSTAIN if {f, s} == {"cand-00", "cand-01"} else noiseless(f, s, sample)

    res = _run({"threshold": 1.0}, 3, oracle=abstain_on_01)
    pair = [r for r in res.requests if {r.first, r.second} == {0, 1}]
    assert len(pair) <= 2  # once per order at most
    assert res.ranking.best == 2


def test_observe_accepts_results_as_the_scheduler_builds_them():
    s = build_strategy("adaptive").create(2, np.random.default_rng(0), None)
    (req,) = s.propose()
    s.observe(MatchResult(req, (Judgement(Outcome.B, sample=0),)))
    assert s.ranking().best == req.second
