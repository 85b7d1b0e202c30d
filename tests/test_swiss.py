"""Swiss (strategies/swiss.py): no rematches, score-equal pairing (against brute force), byes,
rounds, getting stuck and saying so, the fast pairing, and large fields."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tourney.types import Outcome

from .conftest import chaos, constant, keys_for, make, noiseless, noisy, run


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
            out += [[(a, b), *p] for p in _rematch_free_pairings(rest[:i] + rest[i + 1 :], met)]
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
