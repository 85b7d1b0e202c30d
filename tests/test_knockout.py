"""Knockout bracket: counts, byes, rounds, ties and the final ranking."""

import math

import numpy as np
import pytest

from strategies.knockout import Knockout
from tourney import Tournament
from tourney.strategy import build_strategy
from tourney.types import Judgement, MatchResult, Outcome


def drive(strategy, oracle, max_steps=10_000):
    """Synchronous driver: answer every proposal with ``oracle(request) -> [Outcome]``."""
    requests = []
    pending = list(strategy.propose())
    steps = 0
    while pending:
        req = pending.pop(0)
        requests.append(req)
        js = tuple(Judgement(o, sample=k) for k, o in enumerate(oracle(req)))
        strategy.observe(MatchResult(req, js))
        pending.extend(strategy.propose())
        steps += 1
        assert steps < max_steps, "strategy did not terminate"
    assert strategy.done
    return requests, strategy.ranking()


def noiseless(quality):
    return lambda req: [Outcome.A if quality[req.first] > quality[req.second] else Outcome.B] * req.samples


@pytest.mark.parametrize("n", [1, 2, 3, 16, 17])
@pytest.mark.parametrize("both_orders", [False, True])
def test_counts_rounds_and_true_best(n, both_orders):
    quality = np.random.default_rng(n).normal(size=n)
    s = Knockout(n, np.random.default_rng(0), both_orders=both_orders)
    reqs, rk = drive(s, noiseless(quality))
    assert len(reqs) == (n - 1) * (2 if both_orders else 1) == Knockout.expected_comparisons(n, both_orders=both_orders)
    assert sorted(rk.order) == list(range(n))
    assert rk.best == int(np.argmax(quality))
    assert rk.info["rounds"] == (math.ceil(math.log2(n)) if n > 1 else 0)
    if both_orders:
        pairs = [(r.first, r.second) for r in reqs]
        assert all((b, a) in pairs for a, b in pairs)


def test_n1_needs_no_judge_and_n2_is_one_match():
    s = Knockout(1, np.random.default_rng(0))
    assert s.done and s.propose() == [] and s.ranking().order == (0,)
    reqs, rk = drive(Knockout(2, np.random.default_rng(0)), noiseless([0.0, 1.0]))
    assert len(reqs) == 1 and rk.order == (1, 0)


def test_ranking_is_by_round_reached():
    n = 16
    quality = np.arange(n, dtype=float)
    _, rk = drive(Knockout(n, np.random.default_rng(3)), noiseless(quality))
    s = np.array(rk.scores)
    assert s[15] == 5.0  # champion: 4 rounds + 1
    assert sorted(np.floor(s).tolist()) == [1.0] * 8 + [2.0] * 4 + [3.0] * 2 + [4.0, 5.0]


def test_odd_n_has_byes_and_next_match_waits_only_for_its_feeders():
    s = Knockout(5, np.random.default_rng(0))
    first = s.propose()
    assert len(first) == 2  # 5 players: 2 first-round matches, one player has a bye
    s.observe(MatchResult(first[0], (Judgement(Outcome.A),)))
    nxt = s.propose()
    # the bye player may meet first[0]'s winner right away, without waiting for first[1]
    assert len(nxt) <= 1
    for r in nxt:
        assert first[0].first in (r.first, r.second)


def test_split_votes_and_abstentions_are_coin_flips_not_wins():
    s = Knockout(8, np.random.default_rng(0), votes=2)
    _reqs, rk = drive(s, lambda req: [Outcome.A, Outcome.B])
    assert rk.info["coin_flips"] == 7
    s = Knockout(8, np.random.default_rng(0))
    _, rk = drive(s, lambda req: [Outcome.ABSTAIN])
    assert rk.info["coin_flips"] == 7
    # no vote was won: every eliminated candidate has a neutral vote share
    losers = [sc for c, sc in enumerate(rk.scores) if c != rk.best]
    assert all(abs(sc - math.floor(sc) - 0.5) < 1e-9 for sc in losers)


def test_votes_majority_and_position_balance():
    # a judge that always prefers the first-shown response: both orders cancel out
    s = Knockout(4, np.random.default_rng(1), both_orders=True, votes=3)
    reqs, rk = drive(s, lambda req: [Outcome.A] * req.samples)
    assert all(r.samples == 3 for r in reqs)
    assert rk.info["coin_flips"] == 3


def test_seed_changes_bracket_and_relabelling_relabels():
    quality = np.random.default_rng(0).normal(size=9)
    keys = [f"k{i}" for i in range(9)]
    perm = np.random.default_rng(1).permutation(9)
    _, rk = drive(Knockout(9, np.random.default_rng(5), keys), noiseless(quality))
    _, rk2 = drive(Knockout(9, np.random.default_rng(5), [keys[p] for p in perm]), noiseless(quality[perm]))
    assert [perm[i] for i in rk2.order] == list(rk.order)


@pytest.mark.parametrize("bad", ["knockout:votes=0", "knockout:both_orders=3", "knockout:rounds=2", "knockout:x"])
def test_bad_options(bad):
    with pytest.raises(ValueError):
        build_strategy(bad)


def test_end_to_end_picks_the_best_with_a_sharp_judge():
    items = [
        {"prompt": f"q{i}", "responses": [f"r{i}-{k}" for k in range(16)], "scores": list(range(16))} for i in range(20)
    ]
    res = Tournament("simulated:noise=0.05,position_bias=0", "knockout").rank(items)
    assert all(r.best == 15 for r in res)
