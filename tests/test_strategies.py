"""Per-strategy behaviour beyond the shared protocol (see test_strategy_conformance.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tourney import Tournament
from tourney.types import Outcome

try:  # the conformance module's driver and oracles (tests/ as rootdir or as a package)
    from conftest import require
    from test_strategy_conformance import _u, chaos, constant, drive, keys_for, make, noiseless, noisy, quality, run
except ImportError:  # pragma: no cover
    from .conftest import require
    from .test_strategy_conformance import _u, chaos, constant, drive, keys_for, make, noiseless, noisy, quality, run

#: how close the Bradley-Terry position estimate must be to the simulated judge's true bias
POSITION_TOL = 0.3
#: agreement with choix's independent Bradley-Terry optimiser (log-strength units)
CHOIX_TOL = 1e-4


def decisive(f: str, s: str, sample: int) -> Outcome:
    return noiseless(f, s, sample)


# -- round robin ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["round_robin", "elo", "copeland"])
@pytest.mark.parametrize("both_orders", [False, True])
def test_round_robin_designs_judge_every_pair_once_per_order(name, both_orders):
    n = 7
    res = run(name, {"both_orders": both_orders, "votes": 2}, n, noisy)
    pairs = [(r.first, r.second) for r in res.requests]
    assert len(pairs) == n * (n - 1) // 2 * (2 if both_orders else 1)
    assert all(r.samples == 2 for r in res.requests)
    if both_orders:
        assert sorted(pairs) == sorted((a, b) for a in range(n) for b in range(n) if a != b)
    else:
        assert sorted(tuple(sorted(p)) for p in pairs) == [(a, b) for a in range(n) for b in range(a + 1, n)]
        firsts = sum(1 for a, b in pairs if a < b)
        assert 0 < firsts < len(pairs)  # orders are seeded coins, not all one way


def test_round_robin_scoring_switch():
    bt = run("round_robin", {}, 6, noisy).ranking
    el = run("round_robin", {"scoring": "elo"}, 6, noisy).ranking
    assert "Bradley-Terry" in bt.scale and bt.uncertainty is not None and "elo" in bt.info
    assert "Elo" in el.scale and el.uncertainty is None
    assert abs(sum(el.scores) / 6 - 1000.0) < 1e-6  # Elo is zero-sum around the initial rating


# -- Elo ------------------------------------------------------------------------------------------
def test_elo_single_game_by_hand():
    r = run("elo", {"k": 32}, 2, noiseless).ranking
    # equal ratings: expected score 1/2, so the winner gains K/2
    assert r.scores[1] == pytest.approx(1016.0) and r.scores[0] == pytest.approx(984.0)
    r = run("elo", {"k": 10, "initial": 1500, "scale": 200, "base": 4}, 2, noiseless).ranking
    assert r.scores[1] == pytest.approx(1505.0)


def test_elo_replay_order_is_set_by_the_seed():
    """Same games (both orders: no orientation coins), different seeds: online Elo differs;
    averaging over many orders shrinks that order dependence."""
    n = 6

    def scores(seed: int, n_orders: int) -> np.ndarray:
        return np.array(run("elo", {"both_orders": True, "n_orders": n_orders}, n, noisy, seed=seed).ranking.scores)

    one = np.array([scores(s, 1) for s in range(6)])
    many = np.array([scores(s, 64) for s in range(6)])
    assert not np.allclose(one[0], one[1])  # order dependence
    assert np.allclose(scores(3, 1), scores(3, 1))  # but reproducible
    assert many.std(axis=0).mean() < 0.5 * one.std(axis=0).mean()
    r = run("elo", {"both_orders": True, "n_orders": 8}, n, noisy).ranking
    assert len(r.info["order_sd"]) == n and max(r.info["order_sd"]) > 0


# -- Bradley-Terry --------------------------------------------------------------------------------
def test_bt_position_effect_is_estimated_on_a_biased_judge():
    """A simulated judge with first-position bias 0.2 (P(first wins) = 0.7 at equal quality):
    the fitted position coefficient recovers logit(0.7) instead of absorbing it."""
    bias = 0.2
    items = [{"id": str(k), "prompt": f"q{k}", "responses": [f"r{k}-{i}" for i in range(10)]} for k in range(3)]
    res = Tournament(f"simulated:position_bias={bias},seed=3", "bradley_terry:votes=3", seed=0).rank(items)
    coefs = [r.info["position"]["coef"] for r in res]
    truth = math.log((0.5 + bias) / (0.5 - bias))
    assert abs(float(np.mean(coefs)) - truth) < POSITION_TOL, (coefs, truth)
    assert all(r.info["position"]["se"] > 0 for r in res)
    plain = Tournament("simulated", "bradley_terry:position=false", seed=0).rank(items[:1])[0]
    assert "position" not in plain.info


def test_bt_matches_choix():
    """An independent optimiser: choix.opt_pairwise minimises -loglik + alpha * sum(s^2),
    i.e. l2 = 2 * alpha in tourney's convention."""
    choix = require("choix", "choix is the test-only oracle (the test extra)")
    n = 6

    def no_ties(f: str, s: str, sample: int) -> Outcome:
        p = 1.0 / (1.0 + math.exp(-(quality(f) - quality(s)) / 3.0))
        return Outcome.A if _u("c", f, s, sample) < p else Outcome.B

    res = run("bradley_terry", {"votes": 3, "position": False, "l2": 0.2}, n, no_ties)
    data = []
    for r in res.requests:
        for s in range(r.samples):
            out = no_ties(keys_for(n)[r.first], keys_for(n)[r.second], s)
            data.append((r.first, r.second) if out is Outcome.A else (r.second, r.first))
    ref = choix.opt_pairwise(n, data, alpha=0.1)
    assert np.allclose(res.ranking.scores, ref - ref.mean(), atol=CHOIX_TOL)


def test_bt_reports_disconnected_components():
    """Every match across two groups abstains: two components, reported, with finite scores."""
    n = 6
    group = {k: int(k.split("-")[1]) % 2 for k in keys_for(n)}

    def split(f: str, s: str, sample: int) -> Outcome:
        return Outcome.ABSTAIN if group[f] != group[s] else noiseless(f, s, sample)

    r = run("bradley_terry", {}, n, split).ranking
    assert r.info["connected"] is False
    assert sorted(map(sorted, r.info["components"])) == [[0, 2, 4], [1, 3, 5]]
    assert all(math.isfinite(s) for s in r.scores)


def test_bt_bootstrap_intervals_are_seeded():
    a = run("bradley_terry", {"bootstrap": 30}, 5, noisy, seed=2).ranking
    b = run("bradley_terry", {"bootstrap": 30}, 5, noisy, seed=2).ranking
    assert a.info["bootstrap"] == b.info["bootstrap"]
    ci = a.info["bootstrap"]["ci95"]
    assert len(ci) == 5 and all(lo <= hi for lo, hi in ci)
    inside = sum(lo - 1e-9 <= s <= hi + 1e-9 for (lo, hi), s in zip(ci, a.scores))
    assert inside >= 4
    assert a.uncertainty is not None and all(u > 0 for u in a.uncertainty)


def test_bt_cycles_design_count():
    for n, cycles in ((2, 3), (3, 1), (7, 2)):
        res = run("bradley_terry", {"cycles": cycles, "both_orders": False}, n, noisy)
        assert len(res.requests) == cycles * (n if n >= 3 else 1)


def test_bt_without_l2_fails_clearly_on_an_unbeaten_candidate():
    s = make("bradley_terry", {"l2": 0.0}, 4, 0, keys_for(4))
    with pytest.raises(ValueError, match="l2"):
        drive(s, noiseless, keys_for(4))


# -- Copeland -------------------------------------------------------------------------------------
def test_copeland_and_borda():
    n = 6
    r = run("copeland", {"votes": 3}, n, noiseless).ranking
    assert r.scores[n - 1] == n - 1 and sorted(r.scores) == list(map(float, range(n)))
    b = run("copeland", {"votes": 3, "method": "borda"}, n, noiseless).ranking
    assert b.scores == tuple(3.0 * i for i in range(n))
    t = run("copeland", {}, 4, constant(Outcome.TIE)).ranking
    assert t.scores == (1.5,) * 4  # every pair even: half a point each


# -- Swiss ----------------------------------------------------------------------------------------
def _standings_per_round(info: dict[str, Any], n: int) -> list[list[float]]:
    """Pairing points (judged points + 1 per bye) before each round, from the pairing log."""
    pts = [0.0] * n
    out = []
    for rd in info["pairings"]:
        out.append(list(pts))
        for (a, b), res in zip(rd["pairs"], rd["results"]):
            if res is not None:
                pts[a] += res
                pts[b] += 1 - res
        if rd["bye"] is not None:
            pts[rd["bye"]] += 1
    return out


def _mismatch(pairs, bye, pts) -> tuple:
    """Point mismatch per score group, top group first (what Swiss pairing minimises in
    lexicographic order; the bye is an opponent scoring -1)."""
    levels = sorted(set(pts), reverse=True)
    vec = [0.0] * len(levels)
    for a, b in pairs:
        vec[levels.index(max(pts[a], pts[b]))] += (pts[a] - pts[b]) ** 2
    if bye is not None:
        vec[levels.index(pts[bye])] += (pts[bye] + 1) ** 2
    return tuple(vec)


def _best_mismatch(players, met, pts, byes) -> tuple:
    best = None

    def rec(left, pairs):
        nonlocal best
        if not left:
            v = _mismatch(pairs, None, pts)
            best = v if best is None or v < best else best
            return
        a = left[0]
        for b in left[1:]:
            if frozenset((a, b)) not in met:
                rec([p for p in left if p not in (a, b)], pairs + [(a, b)])

    if len(players) % 2 == 0:
        rec(players, [])
        return best
    fewest = min(byes[p] for p in players)
    results = []
    for bye in players:
        if byes[bye] != fewest:
            continue
        best = None
        rec([p for p in players if p != bye], [])
        if best is not None:
            lvl = sorted(set(pts), reverse=True)
            v = list(best)
            v[lvl.index(pts[bye])] += (pts[bye] + 1) ** 2
            results.append(tuple(v))
    return min(results)


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8])
@pytest.mark.parametrize("oracle", [noiseless, noisy, chaos], ids=["noiseless", "noisy", "chaos"])
def test_swiss_no_rematches_and_equal_scores_meet(n, oracle):
    """No pair meets twice, and every round's pairing is as score-equal as the no-rematch rule
    allows (checked against brute force over all rematch-free pairings)."""
    for seed in range(3):
        params = {"rounds": (n + 1) // 2}
        r = run("swiss", params, n, oracle, seed=seed).ranking
        info = r.info
        assert not info["ended_early"]
        met: set[frozenset[int]] = set()
        byes = [0] * n
        for rd, pts in zip(info["pairings"], _standings_per_round(info, n)):
            got = _mismatch([tuple(p) for p in rd["pairs"]], rd["bye"], pts)
            assert got == _best_mismatch(list(range(n)), met, pts, byes), (seed, rd, pts)
            for a, b in rd["pairs"]:
                assert frozenset((a, b)) not in met
                met.add(frozenset((a, b)))
                assert pts[a] >= pts[b]  # listed higher standing first
            if rd["bye"] is not None:
                byes[rd["bye"]] += 1
        assert max(byes) - min(byes) <= 1


def test_swiss_noiseless_power_of_two_pairs_equal_scores_only():
    r = run("swiss", {}, 16, noiseless, seed=1).ranking
    for rd, pts in zip(r.info["pairings"], _standings_per_round(r.info, 16)):
        assert all(pts[a] == pts[b] for a, b in rd["pairs"])
    assert sorted(r.scores)[-2:] == [3.0, 4.0]  # one unbeaten player after log2(16) rounds


@pytest.mark.parametrize("n", [3, 5, 9, 13, 17, 24, 33])
def test_swiss_default_rounds_leave_one_unbeaten(n):
    for seed in range(3):
        res = run("swiss", {}, n, noiseless, seed=seed)
        r = res.ranking
        rounds = math.ceil(math.log2(n))
        assert r.best == n - 1 and r.scores[n - 1] == rounds
        assert sum(1 for s in r.scores if s == rounds) == 1
        assert len(res.requests) == rounds * (n // 2)


def test_swiss_bye_is_never_a_free_win():
    """An all-abstaining judge: byes earn nothing, everyone ends level."""
    r = run("swiss", {}, 7, constant(Outcome.ABSTAIN)).ranking
    assert set(r.scores) == {0.0} and sum(r.info["byes"]) == 3


def _rematch_free_pairings(players: list[int], met: set[frozenset[int]]) -> list[list[tuple[int, int]]]:
    """Every perfect pairing of ``players`` (an even count) in which no pair has met (brute force)."""
    if not players:
        return [[]]
    a, rest = players[0], players[1:]
    out = []
    for i, b in enumerate(rest):
        if frozenset((a, b)) not in met:
            out += [[(a, b), *p] for p in _rematch_free_pairings(rest[:i] + rest[i + 1:], met)]
    return out


@pytest.mark.parametrize(
    "pairing, oracle, seed, rounds",
    [("auto", noisy, 1, 6), ("fast", noiseless, 4, 4)],  # auto = exact at n = 6; fast falls back to exact
    ids=["exact-noisy", "fast-noiseless"],
)
def test_swiss_pairing_can_get_stuck_and_says_so(pairing, oracle, seed, rounds):
    """n = 6 with more rounds than ceil(n/2): after 3 rounds the pairs not yet met admit no
    rematch-free pairing (checked by brute force), so Swiss stops there and reports it
    (``ended_early``, 3 of the rounds played, fewer requests than the bound), rather than
    playing a rematch or a short round."""
    from strategies.swiss import Swiss

    n = 6
    res = run("swiss", {"rounds": rounds, "pairing": pairing}, n, oracle, seed=seed)
    info = res.ranking.info
    assert info["rounds"] == min(rounds, n - 1)  # capped at a full round robin's count
    assert info["ended_early"] is True
    assert info["rounds_played"] == len(info["pairings"]) == 3 < info["rounds"]
    assert len(res.requests) == 3 * (n // 2) < Swiss.comparison_bound(n, rounds=rounds)
    assert Swiss.expected_comparisons(n, rounds=rounds) is None  # the count was never promised
    met: set[frozenset[int]] = set()
    for rd in info["pairings"]:
        assert rd["bye"] is None and sorted(c for p in rd["pairs"] for c in p) == list(range(n))
        for a, b in rd["pairs"]:
            assert frozenset((a, b)) not in met  # no rematch was played to get round 4
            met.add(frozenset((a, b)))
    assert len(_rematch_free_pairings(list(range(n)), set())) == 15  # 5 * 3 * 1: the search finds them all
    assert _rematch_free_pairings(list(range(n)), met) == []  # stuck for real: no round 4 exists
    # the same field with rounds <= ceil(n/2) never gets stuck (and says so)
    full = run("swiss", {"rounds": 3, "pairing": pairing}, n, oracle, seed=seed).ranking.info
    assert full["ended_early"] is False and full["rounds_played"] == 3


@pytest.mark.parametrize("n", [3, 5, 9, 13, 16, 17, 24, 33, 100, 257])
def test_swiss_fast_pairing_default_rounds_leave_one_unbeaten(n):
    """The graph-free pairing keeps what Swiss is for: no rematch, every round complete, and
    (noiseless judge) the unbeaten group halves each round down to the true best alone."""
    for seed in range(3):
        res = run("swiss", {"pairing": "fast"}, n, noiseless, seed=seed)
        r = res.ranking
        rounds = math.ceil(math.log2(n))
        assert not r.info["ended_early"]
        assert r.best == n - 1 and r.scores[n - 1] == rounds
        assert sum(1 for s in r.scores if s == rounds) == 1
        assert len(res.requests) == rounds * (n // 2)
        met: set[frozenset[int]] = set()
        for rd, pts in zip(r.info["pairings"], _standings_per_round(r.info, n)):
            assert sorted(c for p in rd["pairs"] for c in p) == sorted(set(range(n)) - {rd["bye"]})
            for a, b in rd["pairs"]:
                assert frozenset((a, b)) not in met and pts[a] >= pts[b]
                met.add(frozenset((a, b)))
        assert max(r.info["byes"]) - min(r.info["byes"]) <= 1


@pytest.mark.parametrize("oracle", [noisy, chaos], ids=["noisy", "chaos"])
def test_swiss_fast_pairing_meets_equal_scores_like_the_exact_one(oracle):
    """On small fields the fast pairing's score mismatch is the exact (brute-force) optimum in
    most rounds and never leaves a round unplayed."""
    optimal = rounds_seen = 0
    for n in (6, 7, 8):
        for seed in range(6):
            r = run("swiss", {"pairing": "fast", "rounds": (n + 1) // 2}, n, oracle, seed=seed).ranking
            assert not r.info["ended_early"]
            met: set[frozenset[int]] = set()
            byes = [0] * n
            for rd, pts in zip(r.info["pairings"], _standings_per_round(r.info, n)):
                got = _mismatch([tuple(p) for p in rd["pairs"]], rd["bye"], pts)
                optimal += got == _best_mismatch(list(range(n)), met, pts, byes)
                rounds_seen += 1
                met |= {frozenset(p) for p in rd["pairs"]}
                if rd["bye"] is not None:
                    byes[rd["bye"]] += 1
    assert optimal >= 0.8 * rounds_seen, (optimal, rounds_seen)


def test_swiss_large_fields_never_build_the_pair_graph(monkeypatch):
    """Issue 11: n = 10,000 used 13.9 GB in the exact matching's n x n graph. Above EXACT_MAX
    the default pairing never calls it."""
    import networkx as nx

    from strategies.swiss import EXACT_MAX

    def refuse(*a, **k):
        raise AssertionError("the exact matching ran")

    monkeypatch.setattr(nx, "max_weight_matching", refuse)
    n = 1500
    res = run("swiss", {}, n, chaos, seed=0)
    assert n > EXACT_MAX and not res.ranking.info["ended_early"]
    assert len(res.requests) == math.ceil(math.log2(n)) * (n // 2)


def test_swiss_exact_pairing_is_refused_above_its_limit():
    from strategies.swiss import EXACT_LIMIT, Swiss

    with pytest.raises(ValueError, match="pairing='fast'"):
        make("swiss", {"pairing": "exact"}, EXACT_LIMIT + 1, 0, keys_for(EXACT_LIMIT + 1))
    assert Swiss.expected_comparisons(EXACT_LIMIT + 1) is None
    assert Swiss.comparison_bound(EXACT_LIMIT + 1) == 10 * ((EXACT_LIMIT + 1) // 2)


# -- merge sort ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", list(range(1, 18)) + [31, 32, 33])
def test_merge_sort_sorts_a_noiseless_judge_exactly(n):
    for seed in range(2):
        res = run("merge_sort", {}, n, noiseless, seed=seed)
        assert res.ranking.order == tuple(range(n - 1, -1, -1))
        assert res.ranking.scores == tuple(float(i) for i in range(n))
        bound = n * math.ceil(math.log2(n)) if n > 1 else 0
        assert len(res.requests) <= bound
        assert res.ranking.info["coin_flips"] == 0


def test_merge_sort_beam_keeps_both_branches_on_close_verdicts():
    """Split votes are 'close': with a beam the merge explores both orders and asks more
    comparisons than the greedy sort, within the documented bound."""
    n = 9

    def split(f: str, s: str, sample: int) -> Outcome:
        out = noiseless(f, s, sample)
        return out if sample != 1 else out.swapped()  # 2-1 majorities for the truth

    greedy = run("merge_sort", {"votes": 3}, n, split)
    beam = run("merge_sort", {"votes": 3, "beam": 4}, n, split)
    assert greedy.ranking.order == beam.ranking.order == tuple(range(n - 1, -1, -1))
    assert len(greedy.requests) < len(beam.requests)
    from strategies.merge_sort import MergeSort

    assert len(beam.requests) <= MergeSort.comparison_bound(n, beam=4)


def test_merge_sort_merge_work_is_linear_in_the_run_lengths(monkeypatch):
    """N = 10,000 took minutes: every merge step sorted its beam by a key holding the whole
    merged prefix, so a merge of two runs of length p cost O((p + q)^2). Without a beam no two
    states are ever compared, and each merge walks its prefix once, when it ends."""
    from strategies import merge_sort as ms

    calls = {"lt": 0, "walks": 0}
    lt, seq = ms._BeamOrder.__lt__, ms._State.sequence

    def counting_lt(self, other):
        calls["lt"] += 1
        return lt(self, other)

    def counting_seq(self):
        calls["walks"] += 1
        return seq(self)

    monkeypatch.setattr(ms._BeamOrder, "__lt__", counting_lt)
    monkeypatch.setattr(ms._State, "sequence", counting_seq)
    n = 300
    res = run("merge_sort", {}, n, noiseless, seed=0)
    assert res.ranking.order == tuple(range(n - 1, -1, -1))
    assert calls == {"lt": 0, "walks": n - 1}  # one walk per merge (n - 1 merges)


def test_merge_sort_ranking_midway_uses_sorted_runs():
    n = 8
    keys = keys_for(n)
    s = make("merge_sort", {}, n, 0, keys)
    reqs = s.propose()
    assert len(reqs) == 4  # the four first-level merges start at once
    r = s.ranking()
    assert sorted(r.order) == list(range(n))


# -- voting ----------------------------------------------------------------------------------------
def _samples(res) -> int:
    return sum(r.samples for r in res.requests)


def test_voting_early_stop_saves_samples_with_a_decisive_judge():
    n = 8
    early = run("voting", {"k": 16}, n, decisive)
    full = run("voting", {"k": 16, "early_stop": False}, n, decisive)
    assert early.ranking.order[0] == full.ranking.order[0] == n - 1
    assert _samples(full) == 16 * (n - 1)
    assert _samples(early) == 10 * (n - 1)  # unanimous: 5 + 5 samples settle 16
    v = early.ranking.info["voting"]
    assert v["samples_saved"] == 6 * (n - 1) and v["early_stops"] == n - 1
    five = run("voting", {"k": 5}, n, decisive)
    assert _samples(five) == 4 * (n - 1)


def test_voting_keeps_sampling_while_the_majority_is_open():
    n = 6
    coin = run("voting", {"k": 9}, n, chaos)
    for m in coin.ranking.info["voting"]["matches"]:
        a, b = m["votes"][:2]
        if m["early_stop"]:
            assert abs(a - b) > 9 - m["samples"]
        else:
            assert m["samples"] == 9


@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_voting_is_position_balanced(k):
    res = run("voting", {"k": k, "early_stop": False, "inner": "round_robin"}, 5, noisy)
    per_pair: dict[frozenset[int], list[int]] = {}
    for r in res.requests:
        pair = per_pair.setdefault(frozenset((r.first, r.second)), [0, 0])
        pair[0 if r.first < r.second else 1] += r.samples
    for a, b in per_pair.values():
        assert a + b == k and abs(a - b) <= 1
    # which order gets the odd sample is a seeded coin, not always the same side
    if k % 2:
        assert len({a > b for a, b in per_pair.values()}) == 2


def test_voting_reports_ties_and_abstentions():
    n = 5
    res = run("voting", {"k": 4, "inner": "round_robin"}, n, constant(Outcome.TIE))
    v = res.ranking.info["voting"]
    assert v["tied_matches"] == n * (n - 1) // 2 and v["undecided_matches"] == 0
    res = run("voting", {"k": 4, "inner": "round_robin"}, n, constant(Outcome.ABSTAIN))
    v = res.ranking.info["voting"]
    assert v["undecided_matches"] == n * (n - 1) // 2
    assert all(m["votes"][3] == 4 for m in v["matches"])


def test_voting_rejects_itself_as_inner():
    from tourney.errors import SpecError
    from tourney.strategy import build_strategy

    with pytest.raises(SpecError):
        build_strategy("voting", {"inner": "voting"})
    with pytest.raises(SpecError, match="unknown strategy"):
        build_strategy("voting", {"inner": "nope"})
