"""Copeland and Borda scoring (strategies/copeland.py)."""

from __future__ import annotations

from tourney.types import Outcome

from .conftest import constant, noiseless, run


def test_copeland_and_borda():
    n = 6
    r = run("copeland", {"votes": 3}, n, noiseless).ranking
    assert r.scores[n - 1] == n - 1 and sorted(r.scores) == list(map(float, range(n)))
    b = run("copeland", {"votes": 3, "method": "borda"}, n, noiseless).ranking
    assert b.scores == tuple(3.0 * i for i in range(n))
    t = run("copeland", {}, 4, constant(Outcome.TIE)).ranking
    assert t.scores == (1.5,) * 4  # every pair even: half a point each
