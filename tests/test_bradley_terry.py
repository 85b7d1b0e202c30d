"""Bradley-Terry (strategies/bradley_terry.py): the position effect, agreement with choix,
disconnected comparison graphs, bootstrap intervals, cycle designs, the ridge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tourney import Tournament
from tourney.types import Outcome

from .conftest import _u, drive, keys_for, make, noiseless, noisy, quality, require, run

#: how close the Bradley-Terry position estimate must be to the simulated judge's true bias
POSITION_TOL = 0.3
#: agreement with choix's independent Bradley-Terry optimiser (log-strength units)
CHOIX_TOL = 1e-4


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
