"""The pair designs shared by round_robin, elo and copeland (strategies/_pairs.py's PairDesign):
every pair judged once per order, orientation by seeded coins."""

from __future__ import annotations

import pytest

from .conftest import noisy, run


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
