"""League of Chen et al. (strategies/league.py): M uniform random opponents per candidate, one
parallel round, the paper's focal win-rate estimator, position balance, accuracy."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from strategies.league import League, _floyd
from tourney.types import Outcome

from .conftest import by_rounds, chaos, constant, drive, keys_for, make, noiseless, noisy, simulated_top1

#: top-1 of the league on the default simulated judge, N = 16, 200 prompts (0.45 measured at 300
#: trials in `tourney simulate`): well above chance (1/16)
MIN_SIMULATED_TOP1 = 0.30
#: seeds for the uniformity check, and how far (in binomial standard deviations) a count may stray
UNIFORM_RUNS, UNIFORM_SD = 3000, 5.0


@pytest.mark.parametrize("m", [1, 2, 4, 5, 9])
def test_comparisons_are_n_times_m_in_one_round(m):
    for n in list(range(1, 12)) + [16, 40]:
        keys = keys_for(n)
        got = by_rounds(make("league", {"opponents": m}, n, 0, keys), chaos, keys)
        want = n * min(m, n - 1) if n > 1 else 0
        assert sum(len(r) for r in got) == want == League.expected_comparisons(n, opponents=m)
        assert len(got) == (1 if n > 1 else 0)  # one parallel round
    assert League.expected_comparisons(16) == 64  # M = 4 (saturation in the paper): 4 N


def test_each_candidate_meets_m_distinct_others_balanced_in_position():
    n, m = 13, 4
    keys = keys_for(n)
    s = make("league", {"opponents": m}, n, 7, keys)
    (reqs,) = by_rounds(s, noisy, keys)
    sched = s.ranking().info["schedule"]
    assert sorted(map(int, sched)) == list(range(n))
    for focal, opps in sched.items():
        assert len(opps) == len(set(opps)) == m and int(focal) not in opps
    # request k of focal i is (i, opp_k) in some order; the focal is first in half its matches
    for i in range(n):
        mine = reqs[i * m : (i + 1) * m]  # proposed focal by focal, in content order
        assert [{r.first, r.second} for r in mine] == [{i, o} for o in sched[str(i)]]
        assert sum(r.first == i for r in mine) == m // 2


def test_opponents_are_uniform():
    """Floyd's sampler: each of the other N - 1 candidates is an opponent with probability
    M / (N - 1), and the M picks are distinct."""
    n, m = 7, 3
    counts = Counter()
    rng = np.random.default_rng(0)
    for _ in range(UNIFORM_RUNS):
        picks = _floyd(rng, n - 1, m)
        assert len(set(picks)) == m
        counts.update(picks)
    p = m / (n - 1)
    sd = (UNIFORM_RUNS * p * (1 - p)) ** 0.5
    assert all(abs(counts[j] - UNIFORM_RUNS * p) <= UNIFORM_SD * sd for j in range(n - 1)), counts


def test_repeated_pairs_are_fresh_judgements():
    for n in (2, 3, 4, 6):
        res = drive(make("league", {"opponents": 5, "votes": 2}, n, 1, keys_for(n)), noisy, keys_for(n))
        used = Counter(
            (r.first, r.second, s) for r in res.requests for s in range(r.sample_offset, r.sample_offset + r.samples)
        )
        assert set(used.values()) == {1}


def test_focal_win_rate_is_the_papers_estimator():
    """mu_i is the mean over i's OWN matches; with shared=true every match counts for both."""
    n, m = 9, 3
    keys = keys_for(n)
    for shared in (False, True):
        s = make("league", {"opponents": m, "shared": shared}, n, 3, keys)
        (reqs,) = by_rounds(s, noiseless, keys)
        r = s.ranking()
        for i in range(n):
            mine = [q for q in reqs if i in (q.first, q.second)] if shared else reqs[i * m : (i + 1) * m]
            wins = sum(max(q.first, q.second) == i for q in mine)  # noiseless: higher key wins
            assert r.scores[i] == pytest.approx(wins / len(mine))
            assert r.info["comparisons_counted"][i] == len(mine)


def test_ties_on_mu_fall_to_the_share_over_all_matches():
    n, m = 16, 4
    keys = keys_for(n)
    for seed in range(20):
        s = make("league", {"opponents": m}, n, seed, keys)
        (reqs,) = by_rounds(s, noiseless, keys)
        r = s.ranking()
        allshare = []
        for i in range(n):
            mine = [q for q in reqs if i in (q.first, q.second)]
            allshare.append(sum(max(q.first, q.second) == i for q in mine) / len(mine))
        for a, b in zip(r.order, r.order[1:]):
            if r.scores[a] == r.scores[b]:
                assert allshare[a] >= allshare[b]


@pytest.mark.parametrize("outcome", [Outcome.ABSTAIN, Outcome.ERROR, Outcome.TIE])
def test_no_valid_vote_is_no_evidence_and_ties_are_half(outcome):
    r = drive(make("league", {}, 6, 0, keys_for(6)), constant(outcome), keys_for(6)).ranking
    assert set(r.scores) == ({0.5} if outcome is Outcome.TIE else {0.0})


def test_noiseless_judge():
    """N <= M + 1: every candidate meets all the others, so the true best wins outright; beyond,
    the true best always has mu = 1 but can share it with one that never met it."""
    for n in range(2, 6):
        for seed in range(10):
            assert drive(make("league", {}, n, seed, keys_for(n)), noiseless, keys_for(n)).ranking.best == n - 1
    misses = 0
    for seed in range(40):
        keys = keys_for(16)
        r = drive(make("league", {}, 16, seed, keys), noiseless, keys).ranking
        assert r.scores[15] == 1.0
        misses += r.best != 15
    assert misses < 30  # 19/40 measured: M = 4 of 15 opponents often misses the runner-up


def test_simulated_judge_accuracy():
    top1 = simulated_top1("league", n=16, prompts=200)
    assert top1 >= MIN_SIMULATED_TOP1, top1


@pytest.mark.parametrize("spec", ["league:opponents=0", "league:votes=0", "league:shared=2", "league:opponents=2.5"])
def test_bad_options_are_named(spec):
    from tourney.errors import SpecError
    from tourney.strategy import build_strategy

    with pytest.raises(SpecError, match=spec.split(":")[1].split("=")[0]):
        build_strategy(spec)


def test_a_budget_lowers_m_to_fit_instead_of_truncating():
    n = 16
    keys = keys_for(n)
    for budget, m in ((15, 1), (32, 2), (48, 3), (64, 4), (10_000, 4)):
        res = drive(make("league", {"budget": budget}, n, 0, keys), noisy, keys)
        assert res.ranking.info["opponents"] == m and len(res.requests) == n * m
    assert League.expected_comparisons(n, votes=2, budget=64) == n * 2
