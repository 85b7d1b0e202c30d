"""V1-Infer (strategies/v1_swiss.py): minimum-degree coverage, Swiss refinement, the budget of
3N, its sequential rounds, position balance and accuracy."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from strategies.v1_swiss import V1Swiss, coverage_size
from tourney.simulate import SimulatedBench, run_strategy
from tourney.strategy import build_strategy
from tourney.types import Outcome

try:  # the conformance module's drivers and oracles (tests/ as rootdir or as a package)
    from test_strategy_conformance import (by_rounds, chaos, constant, drive, keys_for, make, noiseless, noisy,
                                           simulated_top1)
except ImportError:  # pragma: no cover
    from .test_strategy_conformance import (by_rounds, chaos, constant, drive, keys_for, make, noiseless, noisy,
                                            simulated_top1)

#: top-1 of v1_swiss on the default simulated judge, N = 16, 200 prompts (0.58 measured at 300
#: trials in `tourney simulate`), far above chance (1/16)
MIN_SIMULATED_TOP1 = 0.40


def test_budget_is_three_n_by_default_and_spent_exactly():
    for n in list(range(1, 12)) + [16, 33]:
        keys = keys_for(n)
        for params in ({}, {"budget": 5}, {"budget": 2 * n, "min_degree": 3}, {"budget": 50, "min_degree": 1}):
            res = drive(make("v1_swiss", params, n, 0, keys), chaos, keys)
            want = 0 if n < 2 else params.get("budget", 3 * n)
            assert len(res.requests) == want == V1Swiss.expected_comparisons(n, **params)
    assert V1Swiss.expected_comparisons(16) == 48


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 10, 11, 16])
def test_coverage_has_minimum_degree_d_without_repeats(n, d):
    keys = keys_for(n)
    s = make("v1_swiss", {"min_degree": d, "budget": 10 * n}, n, 1, keys)
    first = by_rounds(s, noisy, keys)[0]
    deff = min(d, n - 1)
    assert len(first) == coverage_size(n, d) == math.ceil(deff * n / 2)
    pairs = Counter(frozenset((r.first, r.second)) for r in first)
    assert set(pairs.values()) == {1}, "no pair twice in the coverage round"
    degree = Counter(c for p in pairs for c in p)
    assert min(degree[i] for i in range(n)) >= deff
    assert sum(degree.values()) - deff * n <= 1  # at most one candidate above d (odd d N)
    if d == 2 and n >= 3:  # a ring: every candidate once in each position
        assert Counter(r.first for r in first) == Counter(r.second for r in first) == Counter(range(n))


def test_a_budget_below_the_coverage_keeps_it_connected():
    n = 12
    keys = keys_for(n)
    res = drive(make("v1_swiss", {"budget": n - 1, "min_degree": 4}, n, 2, keys), noisy, keys)
    assert len(res.requests) == n - 1
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for r in res.requests:
        adj[r.first].add(r.second)
        adj[r.second].add(r.first)
    seen, todo = {0}, [0]
    while todo:
        for j in adj[todo.pop()] - seen:
            seen.add(j)
            todo.append(j)
    assert seen == set(range(n))


def test_sequential_rounds_and_swiss_pairing():
    """N = 16, budget 48: the ring, then four Swiss rounds of 8 disjoint pairs (5 rounds); each
    Swiss pair is the nearest-ranked candidates that have not met."""
    n = 16
    keys = keys_for(n)
    s = make("v1_swiss", {}, n, 3, keys)
    rounds = by_rounds(s, noiseless, keys)
    assert [len(r) for r in rounds] == [16, 8, 8, 8, 8]
    assert s.ranking().info["rounds"] == s.ranking().info["rounds_played"] == 5
    met: set[frozenset[int]] = set()
    for k, rd in enumerate(rounds):
        players = [c for r in rd for c in (r.first, r.second)]
        if k:
            assert len(players) == len(set(players)) == n  # one match per candidate per round
        for r in rd:
            assert frozenset((r.first, r.second)) not in met  # no rematch while an unmet pairing exists
            met.add(frozenset((r.first, r.second)))
    # Swiss round 2 (noiseless): the two unbeaten-so-far leaders meet
    wins = Counter(max(r.first, r.second) for r in rounds[0])
    top = [c for c, w in wins.items() if w == 2]
    if len(top) >= 2:
        assert any({r.first, r.second} <= set(top) for r in rounds[1])


def test_the_last_partial_round_pairs_the_leaders():
    n = 10
    keys = keys_for(n)
    s = make("v1_swiss", {"budget": 10 + 5 + 2}, n, 0, keys)  # ring, one full round, 2 matches
    rounds = by_rounds(s, noiseless, keys)
    assert [len(r) for r in rounds] == [10, 5, 2]
    before = drive(make("v1_swiss", {"budget": 15}, n, 0, keys), noiseless, keys).ranking
    assert {c for r in rounds[2] for c in (r.first, r.second)} == set(before.order[:4])


def test_positions_stay_balanced_and_repeats_are_fresh_judgements():
    for n in (2, 3, 7, 16):
        keys = keys_for(n)
        res = drive(make("v1_swiss", {"budget": 6 * n}, n, 5, keys), noisy, keys)
        first = Counter(r.first for r in res.requests)
        second = Counter(r.second for r in res.requests)
        assert all(abs(first[i] - second[i]) <= 2 for i in range(n))
        used = Counter((r.first, r.second, r.sample_offset) for r in res.requests)
        assert set(used.values()) == {1}


@pytest.mark.parametrize("outcome", [Outcome.ABSTAIN, Outcome.ERROR, Outcome.TIE])
def test_no_valid_vote_is_no_evidence(outcome):
    r = drive(make("v1_swiss", {}, 7, 0, keys_for(7)), constant(outcome), keys_for(7)).ranking
    assert set(r.scores) == ({0.5} if outcome is Outcome.TIE else {0.0})


def test_noiseless_judge_finds_the_best():
    """The Swiss rounds pit the unbeaten candidates against each other, so within 3 N a
    noiseless judge leaves the true best alone on top (checked over fixed seeds)."""
    for n in (2, 3, 4, 5, 7, 8, 16, 32):
        for seed in range(15):
            r = drive(make("v1_swiss", {}, n, seed, keys_for(n)), noiseless, keys_for(n)).ranking
            assert r.best == n - 1 and sorted(r.scores)[-2] < 1.0, (n, seed)


def test_the_harness_budget_is_its_budget():
    """`tourney simulate` hands a strategy with a ``budget`` option its budget in judge samples:
    v1_swiss then plans within it and spends it exactly (one sample per comparison)."""
    bench = SimulatedBench(n=16, trials=4, seed=0)
    factory = build_strategy("v1_swiss")
    for budget in (32, 48, 64):
        for trial in (bench.trial(t) for t in range(len(bench))):
            _, res = run_strategy(factory, trial, budget)
            assert res.comparisons == budget and not res.budget_limited


def test_simulated_judge_accuracy():
    top1 = simulated_top1("v1_swiss", n=16, prompts=200)
    assert top1 >= MIN_SIMULATED_TOP1, top1


@pytest.mark.parametrize("spec", ["v1_swiss:budget=-1", "v1_swiss:min_degree=0", "v1_swiss:budget=4.5"])
def test_bad_options_are_named(spec):
    from tourney.errors import SpecError

    with pytest.raises(SpecError, match=spec.split(":")[1].split("=")[0]):
        build_strategy(spec)


def test_a_zero_budget_asks_nothing_and_leaves_everyone_level():
    res = drive(make("v1_swiss", {"budget": 0}, 5, 0, keys_for(5)), noisy, keys_for(5))
    assert res.requests == [] and set(res.ranking.scores) == {0.0}
