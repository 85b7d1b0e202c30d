"""Round robin (strategies/round_robin.py): the scoring switch between Bradley-Terry and Elo
(its pair design is tested with elo's and copeland's in test_pair_designs.py)."""

from __future__ import annotations

from .conftest import noisy, run


def test_round_robin_scoring_switch():
    bt = run("round_robin", {}, 6, noisy).ranking
    el = run("round_robin", {"scoring": "elo"}, 6, noisy).ranking
    assert "Bradley-Terry" in bt.scale and bt.uncertainty is not None and "elo" in bt.info
    assert "Elo" in el.scale and el.uncertainty is None
    assert abs(sum(el.scores) / 6 - 1000.0) < 1e-6  # Elo is zero-sum around the initial rating
