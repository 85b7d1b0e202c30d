"""Merge sort (strategies/merge_sort.py): exact on a noiseless judge, the beam, linear merge
work, and the ranking midway."""

from __future__ import annotations

import math

import pytest

from tourney.types import Outcome

from .conftest import keys_for, make, noiseless, run


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
