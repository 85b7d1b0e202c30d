"""Online Elo (strategies/elo.py): a game by hand, and the seeded replay order."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import noiseless, noisy, run


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
