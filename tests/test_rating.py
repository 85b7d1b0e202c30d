"""Tests of tourney.rating against independent references.

Golden numbers come from outside this code base: R's BradleyTerry2 (fits stored in
shared/data/r_bt_datasets), choix's own golden cases and printed notebook output
(shared/data/choix_fixtures), choix itself as an oracle (test-only dependency), the real
2019/20 league tables (shared/data/poprank_football), the published AlpacaEval leaderboard
(shared/data/alpaca_eval), and Elo values computed by hand from the textbook formula.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from tourney.errors import InputError
from tourney.rating import (
    DEFAULT_ELO_K,
    BTFit,
    BTPosterior,
    PairTable,
    aggregate,
    borda,
    bradley_terry,
    bt_bootstrap,
    bt_posterior,
    bt_posterior_dense,
    connected_components,
    copeland,
    elo,
    to_elo_scale,
)

from .conftest import SHARED_DATA, require

# ------------------------------------------------------------------ tolerances (named, on purpose)

#: R's glm stops IRLS at a relative deviance change of 1e-8; its abilities agree far closer.
R_ABILITY_TOL = 1e-4
#: R's standard errors come from its last IRLS weights, a step short of convergence.
R_SE_TOL = 1e-4
#: R printed the ice-hockey deviance to 3 decimals.
R_DEVIANCE_TOL = 5e-4
#: choix's golden ML estimates are stored to 9 decimals.
CHOIX_GOLDEN_TOL = 1e-8
#: choix's notebook printed with numpy precision=3.
PRINTED_3DP_TOL = 5e-4
#: Agreement with choix run to a tight tolerance on random data.
CHOIX_ORACLE_TOL = 1e-6
#: AlpacaEval's leaderboard win rates are stored as float64; recomputation order differs.
ALPACA_WINRATE_TOL = 1e-8
#: Elo hand computations.
ELO_TOL = 1e-9
#: Agreement of the MAP with scipy's BFGS run to gtol 1e-10 (both converge far below this).
MAP_TOL = 1e-5
#: The Laplace covariance against the inverse of a finite-difference Hessian (step 1e-5).
FD_HESSIAN_TOL = 1e-3

DATA = Path(os.environ["TOURNEY_SHARED_DATA"]) if os.environ.get("TOURNEY_SHARED_DATA") else SHARED_DATA


def _data(sub: str) -> Path:
    return require(DATA / sub, "reference data from independent sources lives in the shared folder (TOURNEY_SHARED)")


# ------------------------------------------------------------------ helpers


def _r_table(path: Path) -> dict[str, tuple[float, float]]:
    """R's write.csv of (ability|Estimate, s.e.|Std. Error) rows keyed by the row name."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return {r[0]: (float(r[1]), float(r[2])) for r in rows[1:]}


def _reference_level(table: dict[str, tuple[float, float]]) -> str:
    """R's reference level is the row fixed at ability 0 with s.e. 0."""
    (name,) = [k for k, (ab, se) in table.items() if ab == 0.0 and se == 0.0]
    return name


def _contrast_se(fit: BTFit, i: int, ref: int) -> float:
    c = fit.cov
    assert c is not None
    return math.sqrt(max(c[i, i] + c[ref, ref] - 2 * c[i, ref], 0.0))


def _binomial_rows(rows, first_col, second_col, w1_col, w2_col):
    """Expand binomial (win1, win2) rows into weighted comparisons."""
    names = sorted({r[first_col] for r in rows} | {r[second_col] for r in rows})
    idx = {k: i for i, k in enumerate(names)}
    first, second, y, w = [], [], [], []
    for r in rows:
        first += [idx[r[first_col]]] * 2
        second += [idx[r[second_col]]] * 2
        y += [1.0, 0.0]
        w += [float(r[w1_col]), float(r[w2_col])]
    return names, idx, np.array(first), np.array(second), np.array(y), np.array(w)


def _simulate(rng, n, m, spread=1.0, home=0.0):
    s = rng.normal(0.0, spread, n)
    first = rng.integers(0, n, m)
    second = rng.integers(0, n, m)
    keep = first != second
    first, second = first[keep], second[keep]
    p = 1.0 / (1.0 + np.exp(-(s[first] - s[second] + home)))
    y = (rng.random(first.shape[0]) < p).astype(float)
    return s, first, second, y


# ------------------------------------------------------------------ R BradleyTerry2


def test_citations_match_r_bradleyterry2():
    d = _data("r_bt_datasets")
    with open(d / "citations_binomial.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names, idx, f, s, y, w = _binomial_rows(rows, "journal1", "journal2", "win1", "win2")
    ref = _r_table(d / "citations_BTabilities_R.csv")
    r0 = idx[_reference_level(ref)]  # Biometrika (first factor level)
    fit = bradley_terry(len(names), f, s, y, weights=w, return_cov=True)
    assert fit.converged and fit.connected
    for name, (ability, se) in ref.items():
        i = idx[name]
        assert fit.strengths[i] - fit.strengths[r0] == pytest.approx(ability, abs=R_ABILITY_TOL)
        assert _contrast_se(fit, i, r0) == pytest.approx(se, abs=R_SE_TOL)


def _baseball():
    d = _data("r_bt_datasets")
    with open(d / "baseball.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return d, _binomial_rows(rows, "home.team", "away.team", "home.wins", "away.wins")


def test_baseball_without_home_advantage_matches_r():
    d, (names, idx, f, s, y, w) = _baseball()
    ref = _r_table(d / "baseball_BTabilities_R_nohome.csv")
    r0 = idx[_reference_level(ref)]  # Baltimore
    fit = bradley_terry(len(names), f, s, y, weights=w, return_cov=True)
    assert fit.position_coef is None and fit.position_se is None
    for name, (ability, se) in ref.items():
        i = idx[name]
        assert fit.strengths[i] - fit.strengths[r0] == pytest.approx(ability, abs=R_ABILITY_TOL)
        assert _contrast_se(fit, i, r0) == pytest.approx(se, abs=R_SE_TOL)


def test_baseball_home_advantage_matches_r():
    d, (names, idx, f, s, y, w) = _baseball()
    ref = _r_table(d / "baseball_coef_R_homeadv.csv")
    r0 = idx["Baltimore"]  # the level absent from R's coefficient table ("team" + name)
    assert all(k == "at.home" or k[len("team") :] in idx for k in ref)
    assert "teamBaltimore" not in ref
    fit = bradley_terry(len(names), f, s, y, weights=w, position=True, return_cov=True)
    assert fit.position_coef == pytest.approx(0.30226, abs=1e-5)  # the published figure
    for key, (est, se) in ref.items():
        if key == "at.home":
            assert fit.position_coef == pytest.approx(est, abs=R_ABILITY_TOL)
            assert fit.position_se == pytest.approx(se, abs=R_SE_TOL)
            continue
        i = idx[key[len("team") :]]
        assert fit.strengths[i] - fit.strengths[r0] == pytest.approx(est, abs=R_ABILITY_TOL)
        assert _contrast_se(fit, i, r0) == pytest.approx(se, abs=R_SE_TOL)


def test_icehockey_standard_bt_counts_ties_as_half_wins_like_r():
    """R's "standard BT" on icehockey fits result in {0, 0.5, 1} as a binomial response
    (r_reference_outputs.txt shows R's "non-integer #successes" warning and 592/125/366
    results 0/0.5/1), i.e. a tie is half a win each way, no home effect. ties="half" here."""
    d = _data("r_bt_datasets")
    with open(d / "icehockey.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = sorted({r["visitor"] for r in rows} | {r["opponent"] for r in rows})
    idx = {k: i for i, k in enumerate(names)}
    f = np.array([idx[r["visitor"]] for r in rows])
    s = np.array([idx[r["opponent"]] for r in rows])
    y = np.array([float(r["result"]) for r in rows])
    assert np.count_nonzero(y == 0.5) == 125
    ref = _r_table(d / "icehockey_BTabilities_R_standardBT.csv")
    assert len(ref) == len(names) == 58
    r0 = idx[_reference_level(ref)]  # Alaska Anchorage
    fit = bradley_terry(len(names), f, s, y, ties="half", return_cov=True)
    assert fit.converged and fit.connected
    for name, (ability, se) in ref.items():
        i = idx[name]
        assert fit.strengths[i] - fit.strengths[r0] == pytest.approx(ability, abs=R_ABILITY_TOL)
        assert _contrast_se(fit, i, r0) == pytest.approx(se, abs=R_SE_TOL)
    # R: "icehockey deviance 1133.758 df 1026" (per-game binomial deviance, 1083 - 57 df).
    p = 1.0 / (1.0 + np.exp(-(fit.strengths[f] - fit.strengths[s])))
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = 2 * np.sum(
            np.where(y > 0, y * np.log(y / p), 0.0) + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - p)), 0.0)
        )
    assert dev == pytest.approx(1133.758, abs=R_DEVIANCE_TOL)
    assert len(y) - (len(names) - 1) == 1026
    # Dropping the ties is a different model and moves the estimates.
    dropped = bradley_terry(len(names), f, s, y, ties="drop")
    assert np.max(np.abs(dropped.strengths - fit.strengths)) > 0.01


# ------------------------------------------------------------------ choix golden cases


def _choix_case(name: str) -> dict:
    with open(_data("choix_fixtures") / name) as fh:
        return json.load(fh)


@pytest.mark.parametrize("name", ["testcase-pairwise-1.json", "testcase-pairwise-2.json"])
def test_choix_golden_pairwise_ml_estimates(name):
    case = _choix_case(name)
    data = np.array(case["data"])  # choix: (winner, loser)
    fit = bradley_terry(case["n_items"], data[:, 0], data[:, 1], np.ones(len(data)))
    np.testing.assert_allclose(fit.strengths, case["ml_est"], atol=CHOIX_GOLDEN_TOL)


def _notebook_cells() -> list[dict]:
    with open(_data("choix_fixtures") / "intro-pairwise_cells_with_outputs.json") as fh:
        return json.load(fh)


def test_choix_notebook_five_items():
    cells = _notebook_cells()
    # Cell 2 defines the data; cell 4 printed ilsr_pairwise (the ML estimate) to 3 decimals.
    assert "(1, 0)" in cells[1]["source"] and "(4, 3)" in cells[1]["source"]
    data = np.array([(1, 0), (0, 4), (3, 1), (0, 2), (2, 4), (4, 3)])
    printed = np.array([float(x) for x in cells[3]["outputs"][0].strip("[]\n ").split()])
    fit = bradley_terry(5, data[:, 0], data[:, 1], np.ones(len(data)))
    np.testing.assert_allclose(fit.strengths, printed, atol=PRINTED_3DP_TOL)
    assert list(np.argsort(fit.strengths)) == [4, 3, 2, 1, 0]  # printed "worst to best"
    p14 = 1.0 / (1.0 + math.exp(fit.strengths[4] - fit.strengths[1]))
    assert f"{p14:.2f}" == "0.69"  # printed "Prob(1 wins over 4): 0.69"


def test_choix_notebook_chain_needs_regularisation():
    """A chain 3 > 2 > 1 > 0: the ML estimate does not exist (choix printed divide-by-zero
    warnings and NaNs); we refuse with advice to pass l2. With regularisation choix printed
    ilsr_pairwise(alpha=0.01) = [-4.159, -0.979, 1.483, 3.655]; ILSR's alpha is a different
    regulariser from our ridge, so only the qualitative picture is compared here (the ridge
    itself is checked against choix.opt_pairwise below)."""
    cells = _notebook_cells()
    printed = [float(x) for x in cells[-1]["outputs"][0].split("[")[1].split("]")[0].split(",")]
    assert any("divide by zero" in o for o in cells[-2]["outputs"])
    data = np.array([(3, 2), (2, 1), (1, 0)])
    with pytest.raises(InputError, match="l2"):
        bradley_terry(4, data[:, 0], data[:, 1], np.ones(3))
    fit = bradley_terry(4, data[:, 0], data[:, 1], np.ones(3), l2=0.02)
    assert np.all(np.isfinite(fit.strengths)) and fit.converged
    assert list(np.argsort(fit.strengths)) == list(np.argsort(printed)) == [0, 1, 2, 3]
    assert np.all(np.sign(fit.strengths) == np.sign(printed))
    assert fit.strengths.sum() == pytest.approx(0.0, abs=1e-12)


def test_unbeaten_item_message_names_items_and_l2():
    with pytest.raises(InputError) as info:
        bradley_terry(3, [0, 0, 1, 2], [1, 2, 2, 1], [1, 1, 1, 1])
    msg = str(info.value)
    assert "[0] never lost" in msg and "l2" in msg
    # A group that beats everyone outside it, with no single unbeaten item.
    f = [0, 1, 2, 3, 0, 1]
    s = [1, 0, 3, 2, 2, 3]
    with pytest.raises(InputError, match="not strongly connected"):
        bradley_terry(4, f, s, [1, 1, 1, 1, 1, 1])


# ------------------------------------------------------------------ choix as an oracle


def _choix():
    return require("choix", "choix is the test-only oracle (the test extra)")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ml_matches_choix_on_random_data(seed):
    choix = _choix()
    rng = np.random.default_rng(seed)
    _, f, s, y = _simulate(rng, 25, 800)
    win = np.where(y == 1, f, s)
    lose = np.where(y == 1, s, f)
    fit = bradley_terry(25, f, s, y)
    ref = choix.ilsr_pairwise(25, list(zip(win.tolist(), lose.tolist())), tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=CHOIX_ORACLE_TOL)
    ref_mm = choix.mm_pairwise(25, list(zip(win.tolist(), lose.tolist())), tol=1e-12, max_iter=100000)
    np.testing.assert_allclose(fit.strengths, ref_mm - ref_mm.mean(), atol=CHOIX_ORACLE_TOL)


@pytest.mark.parametrize("alpha", [0.01, 0.3, 2.0])
def test_ridge_matches_choix_opt_pairwise(alpha):
    """choix.opt_pairwise minimises -loglik + alpha * |s|^2, i.e. our l2 = 2 * alpha."""
    choix = _choix()
    rng = np.random.default_rng(7)
    _, f, s, y = _simulate(rng, 15, 120, spread=2.0)
    data = list(zip(np.where(y == 1, f, s).tolist(), np.where(y == 1, s, f).tolist()))
    ref = choix.opt_pairwise(15, data, alpha=alpha, tol=1e-12)
    fit = bradley_terry(15, f, s, y, l2=2 * alpha)
    np.testing.assert_allclose(fit.strengths, ref, atol=CHOIX_ORACLE_TOL)


def test_ridge_on_disconnected_graph_matches_choix():
    choix = _choix()
    # Two separate groups {0,1,2} and {3,4}, one item unbeaten within its group.
    data = [(0, 1), (1, 2), (2, 0), (0, 1), (3, 4), (3, 4)]
    f = np.array([d[0] for d in data])
    s = np.array([d[1] for d in data])
    fit = bradley_terry(5, f, s, np.ones(len(data)), l2=0.2)
    ref = choix.opt_pairwise(5, data, alpha=0.1, tol=1e-12)
    np.testing.assert_allclose(fit.strengths, ref, atol=CHOIX_ORACLE_TOL)
    assert not fit.connected and fit.components == [[0, 1, 2], [3, 4]]


# ------------------------------------------------------------------ BT properties


def test_disconnected_components_fitted_and_centred_separately():
    # Component A: 0,1,2 (3-cycle plus extra 0>1); component B: 3,4 (3 beats 4 twice of 3).
    f = np.array([0, 0, 1, 2, 3, 3, 4])
    s = np.array([1, 1, 2, 0, 4, 4, 3])
    y = np.ones(7)
    fit = bradley_terry(6, f, s, y)  # item 5 never plays
    assert fit.components == [[0, 1, 2], [3, 4], [5]]
    assert not fit.connected
    # Component A alone is choix's golden testcase-pairwise-2.
    np.testing.assert_allclose(fit.strengths[:3], [0.419617624, -0.419617624, 0.0], atol=1e-8)
    # Component B: 2 wins of 3 -> difference log(2), centred.
    np.testing.assert_allclose(fit.strengths[3:5], [math.log(2) / 2, -math.log(2) / 2], atol=1e-10)
    assert fit.strengths[5] == 0.0 and math.isnan(fit.se[5])
    assert np.all(np.isfinite(fit.se[:5]))
    assert connected_components(6, f, s) == fit.components


def test_two_items_closed_form_and_se():
    # 7 wins to 3: s0 - s1 = log(7/3); var(s0 - s1) = 1 / (n p (1-p)), centred halves.
    f = np.array([0] * 10)
    s = np.array([1] * 10)
    y = np.array([1.0] * 7 + [0.0] * 3)
    fit = bradley_terry(2, f, s, y, return_cov=True)
    d = math.log(7 / 3)
    np.testing.assert_allclose(fit.strengths, [d / 2, -d / 2], atol=1e-12)
    var_diff = 1.0 / (10 * 0.7 * 0.3)
    np.testing.assert_allclose(fit.se, [math.sqrt(var_diff) / 2] * 2, rtol=1e-9)
    assert fit.cov[0, 1] == pytest.approx(-var_diff / 4, rel=1e-9)
    np.testing.assert_allclose(fit.elo, 1000 + 400 / math.log(10) * fit.strengths)
    assert fit.loglik == pytest.approx(7 * math.log(0.7) + 3 * math.log(0.3), rel=1e-12)


def test_weights_equal_repetition_and_order_of_rows_irrelevant():
    rng = np.random.default_rng(3)
    _, f, s, y = _simulate(rng, 8, 300)
    reps = rng.integers(1, 4, f.shape[0])
    a = bradley_terry(8, np.repeat(f, reps), np.repeat(s, reps), np.repeat(y, reps))
    b = bradley_terry(8, f, s, y, weights=reps.astype(float))
    perm = rng.permutation(f.shape[0])
    c = bradley_terry(8, f[perm], s[perm], y[perm], weights=reps[perm].astype(float))
    np.testing.assert_allclose(a.strengths, b.strengths, atol=1e-10)
    np.testing.assert_allclose(b.strengths, c.strengths, atol=1e-10)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-8)


def test_self_pairs_and_zero_weights_are_ignored():
    f, s, y = np.array([0, 1, 2, 0, 1]), np.array([1, 2, 0, 1, 1]), np.array([1, 1, 1, 0, 1.0])
    base = bradley_terry(3, f[:4], s[:4], y[:4])
    withself = bradley_terry(3, f, s, y)
    zero_w = bradley_terry(3, np.r_[f[:4], 2], np.r_[s[:4], 0], np.r_[y[:4], 1.0], weights=[1, 1, 1, 1, 0])
    np.testing.assert_allclose(withself.strengths, base.strengths, atol=1e-12)
    np.testing.assert_allclose(zero_w.strengths, base.strengths, atol=1e-12)


def test_position_coefficient_recovered_and_swap_symmetry():
    rng = np.random.default_rng(11)
    _truth, f, s, y = _simulate(rng, 12, 20000, home=0.4)
    fit = bradley_terry(12, f, s, y, position=True)
    assert fit.position_coef == pytest.approx(0.4, abs=4 * fit.position_se)
    # Presenting every comparison the other way round flips the sign of the position effect.
    swapped = bradley_terry(12, s, f, 1.0 - y, position=True)
    assert swapped.position_coef == pytest.approx(-fit.position_coef, abs=1e-9)
    np.testing.assert_allclose(swapped.strengths, fit.strengths, atol=1e-9)


def test_position_effect_without_finite_estimate_is_refused():
    import tourney.rating as rating

    # The first-shown item always won: infinite position effect, whatever the strengths.
    with pytest.raises(InputError, match="first-shown item won every comparison"):
        bradley_terry(2, [0, 1, 0, 1], [1, 0, 1, 0], [1, 1, 1, 1], position=True)
    # Each item wins and loses, but strengths plus a home effect separate the outcomes.
    f, s, y = [0, 1, 2, 0, 1, 2], [1, 2, 0, 2, 0, 1], [1, 1, 1, 1, 0, 1]
    with pytest.raises(InputError, match="l2 > 0"):
        bradley_terry(3, f, s, y, position=True)
    fit = bradley_terry(3, f, s, y, position=True, l2=0.5)
    assert fit.converged and np.isfinite(fit.position_coef)
    # The exact check says "identified" for real data with a finite estimate (baseball).
    _, (names, _idx, bf, bs, by, bw) = _baseball()
    f_, s_, y_, w_ = rating._validate(len(names), bf, bs, by, bw)
    pb = rating._problem(len(names), *rating._pairs(len(names), f_, s_, y_, w_, "half", True), 0.0, True)
    assert not rating._separated_with_position(pb)


def test_penalised_position_fit_matches_generic_optimizer():
    """l2 > 0 with position=True maximises loglik - l2/2 (|s|^2 + h^2); checked against scipy's
    BFGS on the likelihood written out directly (ties as half wins), centred afterwards."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(17)
    _, f, s, y = _simulate(rng, 5, 60, home=0.5)
    y[::5] = 0.5
    l2 = 0.3

    def negobj(x):
        eta = x[f] - x[s] + x[5]
        return np.sum(np.logaddexp(0, -eta) * y + np.logaddexp(0, eta) * (1 - y)) + 0.5 * l2 * x @ x

    ref = minimize(negobj, np.zeros(6), method="BFGS", options={"gtol": 1e-10}).x
    fit = bradley_terry(5, f, s, y, position=True, l2=l2)
    np.testing.assert_allclose(fit.strengths, ref[:5] - ref[:5].mean(), atol=1e-6)
    assert fit.position_coef == pytest.approx(ref[5], abs=1e-6)
    # A single comparison: with l2 > 0 everything stays finite, position effect included.
    one = bradley_terry(2, [0], [1], [1.0], position=True, l2=0.1)
    assert np.isfinite(one.position_coef) and one.position_coef > 0 and one.converged


def test_relabelling_items_relabels_strengths():
    rng = np.random.default_rng(5)
    _, f, s, y = _simulate(rng, 10, 400)
    perm = rng.permutation(10)
    a = bradley_terry(10, f, s, y)
    b = bradley_terry(10, perm[f], perm[s], y)
    np.testing.assert_allclose(b.strengths[perm], a.strengths, atol=1e-10)
    np.testing.assert_allclose(b.se[perm], a.se, rtol=1e-8)


def test_se_diag_equals_full_covariance_diag():
    rng = np.random.default_rng(9)
    _, f, s, y = _simulate(rng, 20, 500)
    a = bradley_terry(20, f, s, y)
    b = bradley_terry(20, f, s, y, return_cov=True)
    assert a.cov is None
    np.testing.assert_allclose(a.se, np.sqrt(np.diag(b.cov)), rtol=1e-10)
    np.testing.assert_allclose(b.cov.sum(axis=1), 0.0, atol=1e-10)  # centred parametrisation


def test_soft_outcomes_are_fractional_wins():
    # y=0.7 once equals 7 wins and 3 losses at a tenth of the weight each.
    fit_soft = bradley_terry(2, [0, 1], [1, 0], [0.7, 0.4])
    fit_counts = bradley_terry(2, [0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0], weights=[0.7, 0.3, 0.4, 0.6])
    np.testing.assert_allclose(fit_soft.strengths, fit_counts.strengths, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(first=[0, 5], second=[1, 0], y=[1, 0]),
        dict(first=[0, 1], second=[1, 0], y=[1, 2]),
        dict(first=[0, 1], second=[1], y=[1, 0]),
        dict(first=[0.5, 1], second=[1, 0], y=[1, 0]),
        dict(first=[0, 1], second=[1, 0], y=[1, np.nan]),
    ],
)
def test_bad_input_raises_input_error(kwargs):
    with pytest.raises(InputError):
        bradley_terry(3, **kwargs)
    with pytest.raises(ValueError):  # InputError is a ValueError
        bradley_terry(3, **kwargs)


def test_bad_options_raise():
    with pytest.raises(InputError, match="ties"):
        bradley_terry(2, [0], [1], [1.0], ties="ignore")
    with pytest.raises(InputError, match="l2"):
        bradley_terry(2, [0], [1], [1.0], l2=-1.0)
    with pytest.raises(InputError, match="weights"):
        bradley_terry(2, [0, 1], [1, 0], [1.0, 1.0], weights=[1.0, -1.0])


def test_empty_and_trivial_inputs():
    fit = bradley_terry(3, [], [], [])
    assert np.all(fit.strengths == 0) and np.all(np.isnan(fit.se))
    assert fit.components == [[0], [1], [2]] and fit.converged
    assert bradley_terry(0, [], [], []).strengths.shape == (0,)


def test_aggregate_table():
    t = aggregate(3, [0, 0, 1, 0, 2, 2], [1, 1, 0, 1, 2, 0], [1, 0.5, 1, 0, 1, 0.25], weights=[1, 2, 1, 1, 5, 4])
    assert isinstance(t, PairTable) and t.n_pairs == 3
    assert t.first.tolist() == [0, 1, 2] and t.second.tolist() == [1, 0, 0]
    np.testing.assert_allclose(t.first_wins, [1, 1, 1])
    np.testing.assert_allclose(t.second_wins, [1, 0, 3])
    np.testing.assert_allclose(t.ties, [2, 0, 0])
    np.testing.assert_allclose(t.total, [4, 1, 4])
    with pytest.raises(ValueError):
        t.first[0] = 5  # read-only


def test_large_fit_matches_choix_fast_path():
    """The benchmark's sizes, smaller: 300 items, 30,000 comparisons (dense-graph code path)."""
    choix = _choix()
    rng = np.random.default_rng(21)
    _, f, s, y = _simulate(rng, 300, 30000)
    fit = bradley_terry(300, f, s, y)
    win, lose = np.where(y == 1, f, s), np.where(y == 1, s, f)
    comp = np.zeros((300, 300))
    np.add.at(comp, (win, lose), 1.0)
    ref = choix.ilsr_pairwise_dense(comp, tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=CHOIX_ORACLE_TOL)


@pytest.mark.parametrize("position", [False, True])
@pytest.mark.parametrize("n, m", [(12, 2000), (60, 300)])
def test_aggregation_code_paths_agree(monkeypatch, n, m, position):
    """Square-table, keyed-bincount and np.unique aggregation give the same fit."""
    import tourney.rating as rating

    rng = np.random.default_rng(n + m)
    _, f, s, y = _simulate(rng, n, m, home=0.2)
    y[::7] = 0.5
    w = rng.integers(1, 3, f.shape[0]).astype(float)
    fits = []
    for square, dense in [(2, 1 << 22), (0, 1 << 22), (0, 0)]:
        monkeypatch.setattr(rating, "_SQUARE_PER_ROW", square)
        monkeypatch.setattr(rating, "_DENSE_AGG_MAX", dense)
        fits.append(bradley_terry(n, f, s, y, weights=w, l2=0.1, position=position))
    for other in fits[1:]:
        np.testing.assert_allclose(other.strengths, fits[0].strengths, atol=1e-10)
        np.testing.assert_allclose(other.se, fits[0].se, rtol=1e-8)


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    _, f, s, y = _simulate(rng, 6, 600)
    a = bt_bootstrap(6, f, s, y, rounds=20, rng=np.random.default_rng(42))
    b = bt_bootstrap(6, f, s, y, rounds=20, rng=np.random.default_rng(42))
    c = bt_bootstrap(6, f, s, y, rounds=20, rng=np.random.default_rng(43))
    assert a.shape == (20, 6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a.sum(axis=1), 0.0, atol=1e-10)


def test_bootstrap_intervals_cover_truth_and_match_fisher_se():
    rng = np.random.default_rng(2024)
    truth, f, s, y = _simulate(rng, 5, 3000)
    truth = truth - truth.mean()
    draws = bt_bootstrap(5, f, s, y, rounds=400, rng=np.random.default_rng(1))
    lo, hi = np.percentile(draws, [0.5, 99.5], axis=0)
    assert np.all((lo <= truth) & (truth <= hi))
    fit = bradley_terry(5, f, s, y)
    # Bootstrap spread agrees with the inverse-Fisher standard errors.
    np.testing.assert_allclose(draws.std(axis=0), fit.se, rtol=0.15)
    # ... and centres on the estimate (Monte Carlo error se/sqrt(400) = 0.05 se, plus small bias).
    np.testing.assert_allclose(draws.mean(axis=0), fit.strengths, atol=0.25 * fit.se.max())


def test_bootstrap_with_regularisation_and_position():
    rng = np.random.default_rng(8)
    _, f, s, y = _simulate(rng, 6, 40, home=0.3)
    draws = bt_bootstrap(6, f, s, y, rounds=10, rng=np.random.default_rng(0), l2=1.0, position=True)
    assert draws.shape == (10, 6) and np.all(np.isfinite(draws))


def test_bootstrap_refuses_unidentified_resamples_without_l2():
    f, s = np.array([0, 1, 2]), np.array([1, 2, 0])
    with pytest.raises(InputError, match="l2"):
        bt_bootstrap(3, f, s, np.ones(3), rounds=50, rng=np.random.default_rng(0))


def test_bootstrap_argument_checks():
    with pytest.raises(InputError, match="Generator"):
        bt_bootstrap(2, [0], [1], [1.0], rounds=2, rng=0)
    with pytest.raises(InputError, match="unknown"):
        bt_bootstrap(2, [0], [1], [1.0], rounds=2, rng=np.random.default_rng(0), alpha=1)


# ------------------------------------------------------------------ posterior (MAP + Laplace)


def _random_counts(n: int, games: int, seed: int, bias: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Tallies per ordered pair: wins[f, s] / losses[f, s] of f shown first against s."""
    rng = np.random.default_rng(seed)
    q = 2.0 * rng.standard_normal(n)
    wins, losses = np.zeros((n, n)), np.zeros((n, n))
    for _ in range(games):
        f, s = rng.choice(n, 2, replace=False)
        if rng.random() < 1.0 / (1.0 + math.exp(-(q[f] - q[s] + bias))):
            wins[f, s] += 1
        else:
            losses[f, s] += 1
    return wins, losses


def _as_rows(wins: np.ndarray, losses: np.ndarray):
    f, s = np.nonzero(wins + losses)
    return (
        np.concatenate([f, f]),
        np.concatenate([s, s]),
        np.repeat([1.0, 0.0], f.shape[0]),
        np.concatenate([wins[f, s], losses[f, s]]),
    )


def _neg_log_posterior(theta, wins, losses, l2, pl2):
    n = wins.shape[0]
    eta = theta[:n, None] - theta[None, :n] + theta[n]
    ll = -(wins * np.logaddexp(0, -eta)).sum() - (losses * np.logaddexp(0, eta)).sum()
    return -(ll - 0.5 * l2 * (theta[:n] ** 2).sum() - 0.5 * pl2 * theta[n] ** 2)


def test_posterior_matches_an_independent_optimiser():
    """The MAP against scipy's BFGS on the log-posterior written out directly, and the Laplace
    covariance against the inverse of its finite-difference Hessian."""
    from scipy.optimize import minimize

    wins, losses = _random_counts(7, 60, seed=1)
    post = bt_posterior_dense(wins, losses, l2=0.2, position=True, position_l2=1.0)
    assert isinstance(post, BTPosterior) and post.converged
    ref = minimize(
        _neg_log_posterior, np.zeros(8), args=(wins, losses, 0.2, 1.0), method="BFGS", options={"gtol": 1e-10}
    )
    assert np.allclose(post.theta, ref.x, atol=MAP_TOL)
    assert np.allclose(post.strengths, ref.x[:7], atol=MAP_TOL) and post.position_coef == pytest.approx(
        ref.x[7], abs=MAP_TOL
    )
    h = 1e-5

    def grad(t):
        return np.array(
            [
                (
                    _neg_log_posterior(t + h * e, wins, losses, 0.2, 1.0)
                    - _neg_log_posterior(t - h * e, wins, losses, 0.2, 1.0)
                )
                / (2 * h)
                for e in np.eye(8)
            ]
        )

    hess = np.array([(grad(post.theta + h * e) - grad(post.theta - h * e)) / (2 * h) for e in np.eye(8)])
    assert np.allclose(np.linalg.inv(hess), post.cov, atol=FD_HESSIAN_TOL)
    np.testing.assert_array_equal(post.cov, post.cov.T)
    np.testing.assert_allclose(post.sd, np.sqrt(np.diag(post.cov)))
    # the same comparisons as rows give the same posterior
    f, s, y, w = _as_rows(wins, losses)
    rows = bt_posterior(7, f, s, y, weights=w, l2=0.2, position=True, position_l2=1.0)
    np.testing.assert_allclose(rows.theta, post.theta, atol=1e-12)
    np.testing.assert_allclose(rows.cov, post.cov, atol=1e-12)


def test_posterior_without_position_matches_choix():
    choix = _choix()
    wins, losses = _random_counts(6, 50, seed=2, bias=0.0)
    post = bt_posterior_dense(wins, losses, l2=0.5)
    data = [(f, s) for f in range(6) for s in range(6) for _ in range(int(wins[f, s]))]
    data += [(s, f) for f in range(6) for s in range(6) for _ in range(int(losses[f, s]))]
    ref = choix.opt_pairwise(6, data, alpha=0.25)  # choix minimises -loglik + alpha |s|^2: l2 = 2 alpha
    assert post.theta.shape == (6,) and post.position_coef is None
    assert np.allclose(post.strengths, ref - ref.mean(), atol=CHOIX_ORACLE_TOL)
    assert abs(post.strengths.sum()) < 1e-9  # a Gaussian prior centred at 0 centres the MAP


def test_posterior_is_finite_for_an_unbeaten_candidate_and_warm_starts_agree():
    wins = np.zeros((3, 3))
    wins[0, 1] = wins[0, 2] = 5  # candidate 0 shown first and always won: strengths and h confounded
    post = bt_posterior_dense(wins, np.zeros((3, 3)), l2=0.1, position=True, position_l2=1.0)
    assert np.all(np.isfinite(post.theta)) and np.all(np.isfinite(post.cov))
    again = bt_posterior_dense(wins, np.zeros((3, 3)), l2=0.1, position=True, position_l2=1.0, init=post.theta + 3.0)
    assert np.allclose(post.theta, again.theta, atol=1e-9)
    # no data at all: the prior itself
    prior = bt_posterior_dense(np.zeros((3, 3)), np.zeros((3, 3)), l2=0.25, position=True, position_l2=4.0)
    np.testing.assert_allclose(prior.theta, 0.0)
    np.testing.assert_allclose(prior.cov, np.diag([4.0, 4.0, 4.0, 0.25]))


def test_posterior_is_bradley_terry_with_the_same_penalty():
    """One solver: with position_l2 = l2 the MAP is bradley_terry's ridge fit, and the posterior
    covariance is BTFit's centred one plus the prior's variance of the common level (1/(l2 n)
    in every entry of the strength block), which cancels in every contrast."""
    rng = np.random.default_rng(4)
    _, f, s, y = _simulate(rng, 6, 80, home=0.3)
    y[::7] = 0.5
    for position in (False, True):
        fit = bradley_terry(6, f, s, y, l2=0.4, position=position, return_cov=True)
        post = bt_posterior(6, f, s, y, l2=0.4, position=position)
        np.testing.assert_allclose(post.strengths, fit.strengths, atol=1e-9)
        k = 7 if position else 6
        level = np.zeros((k, k))
        level[:6, :6] = 1.0 / (0.4 * 6)
        np.testing.assert_allclose(post.cov, fit.cov + level, atol=1e-8)
        if position:
            assert post.position_coef == pytest.approx(fit.position_coef, abs=1e-9)


def test_separate_position_prior_and_warm_start_in_bradley_terry():
    """position_l2 penalises h on its own (checked against BFGS); init changes the path, not the fit."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(8)
    _, f, s, y = _simulate(rng, 5, 50, home=0.6)
    l2, pl2 = 0.3, 2.0

    def negobj(x):
        eta = x[f] - x[s] + x[5]
        return (
            np.sum(np.logaddexp(0, -eta) * y + np.logaddexp(0, eta) * (1 - y))
            + 0.5 * l2 * x[:5] @ x[:5]
            + 0.5 * pl2 * x[5] ** 2
        )

    ref = minimize(negobj, np.zeros(6), method="BFGS", options={"gtol": 1e-10}).x
    fit = bradley_terry(5, f, s, y, position=True, l2=l2, position_l2=pl2)
    np.testing.assert_allclose(fit.strengths, ref[:5] - ref[:5].mean(), atol=MAP_TOL)
    assert fit.position_coef == pytest.approx(ref[5], abs=MAP_TOL)
    warm = bradley_terry(5, f, s, y, position=True, l2=l2, position_l2=pl2, init=np.arange(6.0))
    np.testing.assert_allclose(warm.strengths, fit.strengths, atol=1e-9)
    assert warm.position_coef == pytest.approx(fit.position_coef, abs=1e-9)
    post = bt_posterior(5, f, s, y, position=True, l2=l2, position_l2=pl2)
    np.testing.assert_allclose(post.theta, ref, atol=MAP_TOL)
    # strengths penalised, position effect not: the first-shown item won everything -> refused
    with pytest.raises(InputError, match="first-shown item won every comparison"):
        bradley_terry(2, [0, 1, 0], [1, 0, 1], [1, 1, 1], position=True, l2=0.1, position_l2=0.0)


def test_posterior_bad_input():
    z = np.zeros((3, 3))
    with pytest.raises(InputError, match="proper priors"):
        bt_posterior_dense(z, z, l2=0.0)
    with pytest.raises(InputError, match="position_l2"):
        bt_posterior_dense(z, z, l2=0.1, position=True, position_l2=0.0)
    with pytest.raises(InputError, match="square"):
        bt_posterior_dense(np.zeros((3, 2)), np.zeros((3, 2)), l2=0.1)
    with pytest.raises(InputError, match="finite and >= 0"):
        bt_posterior_dense(-np.eye(3), z, l2=0.1)
    with pytest.raises(InputError, match="finite and >= 0"):
        bt_posterior_dense(np.full((3, 3), np.nan), z, l2=0.1)
    with pytest.raises(InputError, match="init"):
        bt_posterior_dense(z, z, l2=0.1, position=True, init=np.zeros(3))
    with pytest.raises(InputError, match="init"):
        bradley_terry(2, [0], [1], [1.0], init=[0.0, np.inf])
    with pytest.raises(InputError, match="proper priors"):
        bt_posterior(2, [0], [1], [1.0], l2=0.0)
    with pytest.raises(InputError):
        bt_posterior(2, [0], [3], [1.0], l2=0.1)


# ------------------------------------------------------------------ Elo


def _expected(ra: float, rb: float) -> float:
    """Textbook Elo expected score of A: 1 / (1 + 10^((R_B - R_A) / 400))."""
    return 1.0 / (1.0 + 10.0 ** ((rb - ra) / 400.0))


def test_elo_hand_computed_three_games():
    # Players 0 and 1 start at 1000, K = 32.
    # Game 1: 0 beats 1. E0 = 0.5 -> 0: 1000 + 32 * 0.5 = 1016, 1: 984.
    # Game 2: 1 (shown first) beats 0. E1 = 1 / (1 + 10^((1016 - 984) / 400)) = 1 / (1 + 10^0.08)
    #         = 1 / (1 + 1.2022644) = 0.4540782, so 1 gains 32 * (1 - 0.4540782) = 17.46950:
    #         1 -> 1001.46950, 0 -> 998.53050.
    # Game 3: 0 and 1 draw.
    r0, r1 = 1000.0, 1000.0
    d = 32 * (1 - _expected(r0, r1))
    r0, r1 = r0 + d, r1 - d
    assert (r0, r1) == (1016.0, 984.0)
    d = 32 * (1 - _expected(r1, r0))
    r1, r0 = r1 + d, r0 - d
    assert d == pytest.approx(17.46950, abs=1e-5)
    assert (r0, r1) == pytest.approx((998.53050, 1001.46950), abs=1e-5)
    d = 32 * (0.5 - _expected(r0, r1))
    r0, r1 = r0 + d, r1 - d
    out = elo(2, [0, 1, 0], [1, 0, 1], [1.0, 1.0, 0.5], k=32)
    np.testing.assert_allclose(out, [r0, r1], atol=ELO_TOL)
    assert DEFAULT_ELO_K == 32.0
    np.testing.assert_allclose(elo(2, [0, 1, 0], [1, 0, 1], [1.0, 1.0, 0.5]), out, atol=ELO_TOL)


def test_elo_order_dependence_and_explicit_order():
    f, s, y = [0, 1], [1, 0], [1.0, 1.0]  # each wins once
    as_given = elo(2, f, s, y)
    reversed_ = elo(2, f, s, y, order=np.array([1, 0]))
    assert as_given[0] < as_given[1]  # the later win counts more (beat a higher-rated player)
    np.testing.assert_allclose(reversed_, as_given[::-1], atol=ELO_TOL)
    assert as_given.sum() == pytest.approx(2000.0)  # Elo is zero-sum


def test_elo_mean_over_orders_is_deterministic_and_less_order_dependent():
    rng = np.random.default_rng(0)
    _, f, s, y = _simulate(rng, 6, 400)
    a = elo(6, f, s, y, rng=np.random.default_rng(5), n_orders=16)
    b = elo(6, f, s, y, rng=np.random.default_rng(5), n_orders=16)
    np.testing.assert_array_equal(a, b)
    c = elo(6, f, s, y, rng=np.random.default_rng(6), n_orders=16)
    one1 = elo(6, f, s, y, rng=np.random.default_rng(5), n_orders=1)
    one2 = elo(6, f, s, y, rng=np.random.default_rng(6), n_orders=1)
    assert np.abs(a - c).max() < np.abs(one1 - one2).max()
    # Ordering by mean Elo agrees with Bradley-Terry on this easy case.
    bt = bradley_terry(6, f, s, y)
    assert list(np.argsort(a)) == list(np.argsort(bt.strengths))


def test_elo_options_and_errors():
    out = elo(2, [0], [1], [1.0], k=4, scale=400, base=10, initial=1500)
    np.testing.assert_allclose(out, [1502.0, 1498.0])
    with pytest.raises(InputError):
        elo(2, [0], [1], [1.0], n_orders=3)  # needs rng
    with pytest.raises(InputError):
        elo(2, [0], [1], [1.0], order=np.array([0]), rng=np.random.default_rng(0))
    with pytest.raises(InputError):
        elo(2, [0], [1], [1.0], order=np.array([3]))


def test_to_elo_scale_matches_elo_logistic():
    # A 400-point gap means 10:1 odds, the same odds as exp(strength gap).
    s = np.array([0.0, math.log(10)])
    np.testing.assert_allclose(to_elo_scale(s), [1000.0, 1400.0])
    np.testing.assert_allclose(to_elo_scale(s, scale=200, anchor=0), [0.0, 200.0])


# ------------------------------------------------------------------ tallies


@pytest.mark.parametrize("league", ["en", "es"])
def test_borda_with_league_weights_reproduces_final_league_table(league):
    """Football's 3/1/0 league points are a weighted Borda count: a decisive match weighted 3
    gives the winner 3 and the loser 0, a draw weighted 2 gives each side half of it, 1."""
    d = _data("poprank_football")
    with open(d / f"football.{league}.1.json") as fh:
        matches = json.load(fh)["matches"]
    with open(d / f"football.{league}.1.final.json") as fh:
        final = {c["id"]: c["rating"] for c in json.load(fh)["clubs"]}
    names = sorted(final)
    idx = {k: i for i, k in enumerate(names)}
    home = np.array([idx[m["team1"]] for m in matches])
    away = np.array([idx[m["team2"]] for m in matches])
    goals = np.array([m["score"]["ft"] for m in matches])
    y = np.sign(goals[:, 0] - goals[:, 1]) * 0.5 + 0.5  # 1 home win, 0.5 draw, 0 away win
    pts = borda(len(names), home, away, y, weights=np.where(y == 0.5, 2.0, 3.0))
    assert {k: int(pts[idx[k]]) for k in names} == final
    if league == "en":
        assert final["Liverpool FC"] == 99 and int(pts[idx["Liverpool FC"]]) == 99


def test_borda_weights_give_other_points_systems():
    # 2 points a win, 1 a draw (football before 1981): a win weighted 2, a draw weighted 2
    np.testing.assert_allclose(borda(2, [0, 1], [1, 0], [1, 0.5], weights=[2, 2]), [3, 1])
    with pytest.raises(InputError, match="weights"):
        borda(2, [0], [1], [1.0], weights=[-3.0])


def test_alpaca_eval_win_rate_reproduces_leaderboard():
    """AlpacaEval 2.0: every model is judged against one baseline (gpt4_1106_preview shown as
    output_1); preference in [1, 2] with 2 = the model's output. Published win_rate =
    100 * mean(preference - 1), i.e. a model's Borda score (soft outcomes count fractionally)
    over its games. Models are matched to the leaderboard through its `samples` link
    (results/<model_dir>/model_outputs.json); 50 of the 58 appear in both files."""
    d = _data("alpaca_eval")
    with open(d / "weighted_gpt4turbo_preferences_compact.csv", newline="") as fh:
        prefs = list(csv.DictReader(fh))
    with open(d / "weighted_alpaca_eval_gpt4_turbo_leaderboard_docs.csv", newline="") as fh:
        board = list(csv.DictReader(fh))
    assert {r["generator_1"] for r in prefs} == {"gpt4_1106_preview"}
    models = sorted({r["model_dir"] for r in prefs})
    idx = {k: i + 1 for i, k in enumerate(models)}  # item 0 is the baseline as reference
    first = np.zeros(len(prefs), dtype=int)
    second = np.array([idx[r["model_dir"]] for r in prefs])
    y = 2.0 - np.array([float(r["preference"]) for r in prefs])  # score of the baseline (first)
    games = np.bincount(second, minlength=len(models) + 1)  # every game is against the baseline
    rates = 100.0 * borda(len(models) + 1, first, second, y) / np.maximum(games, 1)
    matched = 0
    for row in board:
        model_dir = row["samples"].split("/results/")[-1].split("/model_outputs")[0]
        if model_dir in idx:
            matched += 1
            assert rates[idx[model_dir]] == pytest.approx(float(row["win_rate"]), abs=ALPACA_WINRATE_TOL), row["name"]
    assert matched == 50


def test_borda_copeland_small_case():
    # 0 beats 1 twice, loses once; 1 and 2 tie; 2 beats 0. Item 3 never plays.
    f = [0, 1, 0, 1, 2]
    s = [1, 0, 1, 2, 0]
    y = [1.0, 1.0, 1.0, 0.5, 1.0]
    np.testing.assert_allclose(borda(4, f, s, y), [2.0, 1.5, 1.5, 0.0])
    np.testing.assert_allclose(borda(4, f, s, y, ties="drop"), [2.0, 1.0, 1.0, 0.0])
    # Copeland: 0 beats 1 (2-1), 2 beats 0 (1-0), 1 and 2 even (0.5 each).
    np.testing.assert_allclose(copeland(4, f, s, y), [1.0, 0.5, 1.5, 0.0])


def test_connected_components_listing():
    assert connected_components(5, [0, 3], [1, 4]) == [[0, 1], [2], [3, 4]]
    assert connected_components(2, [], []) == [[0], [1]]
    assert connected_components(0, [], []) == []


def test_module_is_light_and_all_is_sorted():
    import subprocess
    import sys

    import tourney.rating as rating

    assert rating.__all__ == sorted(rating.__all__)
    code = "import sys, tourney.rating; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # scipy loads inside the functions that need it
