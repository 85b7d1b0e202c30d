"""The numerical rating core: Bradley-Terry, Elo, bootstrap and simple tallies, as pure functions.

Every function takes the comparisons as plain arrays and returns arrays or a frozen record; none
does I/O, keeps global state or draws from a global random state (randomness comes in as a
:class:`numpy.random.Generator`).

Data convention
---------------
Items are numbered ``0 .. n-1``. A set of ``m`` comparisons is three aligned arrays:

``first``
    int, the item shown first (position "A"; the HOME side in sports data).
``second``
    int, the item shown second (position "B"; the away side).
``y``
    float in ``[0, 1]``, the score of ``first``: ``1.0`` = first won, ``0.0`` = second won,
    ``0.5`` = tie. Other values in between are accepted as soft outcomes (a judge's probability):
    they count as ``y`` of a win for ``first`` and ``1 - y`` for ``second``. Only exactly ``0.5``
    is a tie (what ``ties="drop"`` ignores).
``weights`` (optional)
    float ``>= 0``, how many times each row counts (default 1). Zero-weight rows are ignored.

Self-pairs (``first == second``) carry no information and are dropped everywhere. Duplicated
rows are summed first (:func:`aggregate` returns the public :class:`PairTable` of distinct
ordered pairs; the fit itself merges the two presentation orders of a pair unless it models
position), so fitting works in memory linear in the number of DISTINCT pairs, not comparisons
(plus the dense ``n x n`` information matrix).

Strengths are natural-log Bradley-Terry strengths: ``P(i beats j) = 1 / (1 + exp(s_j - s_i))``,
or with a first-position (home) advantage ``h``: ``P(first wins) = 1 / (1 + exp(s_second -
s_first - h))``. They are identified only up to a constant within each connected component of
the comparison graph, and are reported centred (mean 0 within each component). The Elo view is
``anchor + scale / ln(base) * s`` (1000 + 400/ln 10 * s by default), the same logistic scale
that the online :func:`elo` uses, so a 400-point gap means 10:1 odds.

Regularisation convention: ``l2 > 0`` maximises ``loglik(s) - l2 / 2 * sum(s**2)`` (a Gaussian
prior with precision ``l2`` on each strength; with ``position=True`` the position coefficient
``h`` gets the prior ``- position_l2 / 2 * h**2``, by default the same, ``position_l2 = l2``, so
that with ``l2 > 0`` a finite estimate always exists, e.g. after a single comparison; ``l2 == 0``
leaves everything unpenalised, as R does).
choix's ``opt_pairwise(alpha)`` minimises ``-loglik + alpha * sum(s**2)``, so it equals
``l2 = 2 * alpha`` here. choix's ``ilsr_pairwise(alpha)`` and ``mm_pairwise(alpha)`` use
``alpha`` for different, non-Gaussian regularisers (a pseudo-rate in the spectral chain, a Gamma
prior), which no ``l2`` reproduces.

One solver: every Bradley-Terry fit runs the same damped Newton method on that objective
(``_newton``). :func:`bradley_terry` is the fit with diagnostics (components, separation
checks, standard errors on the centred parametrisation), used by the ``bradley_terry`` and
``round_robin`` strategies and the ``tourney rate`` leaderboard; :func:`bt_bootstrap` refits it on
resamples; :func:`bt_posterior` / :func:`bt_posterior_dense` return the MAP and the Laplace
posterior covariance under proper priors (``l2 > 0``, ``position_l2 > 0``), warm-startable and
cheap enough to refit after every batch of comparisons, used by the ``adaptive`` strategy.

Degenerate data, and what happens:

* Disconnected comparison graph: each connected component is fitted on its own (the likelihood
  separates) and centred on its own; :attr:`BTFit.components` lists them and
  :attr:`BTFit.connected` is ``False``, so callers can refuse to compare across components.
  An item with no (informative) comparison is a component of its own: strength 0, ``se`` NaN.
* No finite maximum-likelihood estimate (an item won, or lost, every comparison; more generally
  some group of items beat every item outside it, so the "who beat whom" graph of a component is
  not strongly connected): with ``l2 == 0`` :func:`bradley_terry` raises
  :class:`~tourney.errors.InputError` naming the items and telling to pass ``l2 > 0``.
  This is Ford's condition, checked exactly on the graph before fitting.
* With ``position=True`` and ``position_l2 == 0``: if the first-shown (or the second-shown) item
  won every comparison the position effect is infinite and an InputError says so; with
  ``l2 == 0`` as well, a fit whose parameters run away is checked exactly for separation (a
  small linear program) and refused with advice to pass ``l2 > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from tourney.errors import InputError

__all__ = [
    "BTFit",
    "BTPosterior",
    "DEFAULT_ELO_K",
    "ELO_BASE",
    "ELO_INITIAL",
    "ELO_PER_NAT",
    "ELO_SCALE",
    "PairTable",
    "Z_95",
    "aggregate",
    "borda",
    "bradley_terry",
    "bt_bootstrap",
    "bt_posterior",
    "bt_posterior_dense",
    "connected_components",
    "copeland",
    "elo",
    "to_elo_scale",
]

#: Default Elo K-factor: 32, the classic chess value (USCF below 2100; the figure most Elo
#: tutorials use). tourney's Elo runs typically see tens to a few hundred comparisons per prompt;
#: with K = 4 (Chatbot Arena's notebook, tuned for >10^5 battles) ratings would stay within a
#: few points of the start, expected scores near 0.5 throughout, and Elo would degenerate into
#: plain win counting that ignores opponent strength. For arena-scale logs pass ``k=4``.
DEFAULT_ELO_K = 32.0

#: The Elo scale, in one place: ``ELO_SCALE`` points per factor-of-``ELO_BASE`` odds (400 points
#: = 10:1, as in FIDE ratings and Chatbot Arena), centred on ``ELO_INITIAL``.
ELO_SCALE, ELO_BASE, ELO_INITIAL = 400.0, 10.0, 1000.0
#: Elo points per unit of natural-log strength: 400 / ln(10) = 173.7...
ELO_PER_NAT = ELO_SCALE / math.log(ELO_BASE)
#: The two-sided 95% standard-normal quantile (1.959963984540054), for Wald intervals.
Z_95 = NormalDist().inv_cdf(0.975)

_TIE = 0.5
# Aggregation strategy for m comparisons of n items. Dense data (n*n <= _SQUARE_PER_ROW * m):
# count ordered pairs in an n x n table and merge the two presentation orders there. Otherwise
# key each comparison by its pair and count with an n*n bincount while n*n <= _DENSE_AGG_MAX
# (much faster than sorting), else with np.unique (O(m log m), memory O(m)).
_SQUARE_PER_ROW = 2
_DENSE_AGG_MAX = 1 << 22


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, eq=False)
class PairTable:
    """Comparisons aggregated into distinct ordered ``(first, second)`` pairs.

    All arrays have one entry per distinct pair with positive total weight, sorted by
    ``(first, second)``; they are read-only. ``first_wins`` sums ``w * y`` and ``second_wins``
    sums ``w * (1 - y)`` over the non-tie rows; ``ties`` sums ``w`` over rows with ``y == 0.5``.
    """

    n: int
    first: np.ndarray
    second: np.ndarray
    first_wins: np.ndarray
    second_wins: np.ndarray
    ties: np.ndarray

    @property
    def n_pairs(self) -> int:
        """Number of distinct ordered pairs."""
        return int(self.first.shape[0])

    @property
    def total(self) -> np.ndarray:
        """Total weight per pair."""
        total: np.ndarray = self.first_wins + self.second_wins + self.ties
        return total


@dataclass(frozen=True, eq=False)
class BTFit:
    """A Bradley-Terry fit.

    strengths
        centred natural-log strengths, shape ``(n,)``, mean 0 within each component.
    elo
        ``to_elo_scale(strengths)``: 1000 + 400/ln(10) * strengths.
    se
        standard errors of ``strengths`` (inverse Fisher information at the optimum, on the
        centred parametrisation: the sum-to-zero direction of each component is projected out;
        with ``l2 > 0`` the penalised information ``I + l2 * Id`` is used). NaN for items alone
        in their component.
    cov
        only with ``bradley_terry(..., return_cov=True)``, else None: the covariance matrix of
        the parameter vector ``(strengths[0..n-1], position_coef)`` (the last row/column only when
        ``position=True``), on the same centred parametrisation; ``se`` is the square root of its
        diagonal. For contrasts: ``var(s_i - s_j) = cov[i, i] + cov[j, j] - 2 cov[i, j]``.
    position_coef, position_se
        first-shown / home advantage on the log-odds scale (``None`` unless ``position=True``).
    components
        connected components of the informative comparison graph, each a sorted list, ordered by
        smallest member. ``connected`` is ``len(components) == 1``.
    loglik
        log-likelihood at the estimate (ties counted as configured; no penalty term).
    iterations, converged
        Newton steps taken, and whether the largest step fell below ``tol`` (or the quadratic
        convergence of the last steps predicts the next one far below it).
    """

    strengths: np.ndarray
    elo: np.ndarray
    se: np.ndarray
    cov: np.ndarray | None
    position_coef: float | None
    position_se: float | None
    components: list[list[int]]
    connected: bool
    loglik: float
    iterations: int
    converged: bool


@dataclass(frozen=True, eq=False)
class BTPosterior:
    """The Gaussian (Laplace) approximation of a Bradley-Terry posterior (:func:`bt_posterior`).

    theta
        the posterior mode (MAP), shape ``(k,)``: natural-log strengths ``s_0 .. s_{n-1}``,
        then, with ``position=True`` (``k = n + 1``), the first-position advantage ``h`` in
        log-odds. Pass it back as ``init`` to warm-start the next fit.
    cov
        ``(k, k)`` posterior covariance: the inverse of the penalised information (the
        negative Hessian of the log-posterior) at ``theta``, in the same parameter order.
    n, position
        number of items; whether ``h`` was fitted.
    iterations, converged
        Newton steps taken, and whether the convergence test passed (see :func:`bradley_terry`).
    """

    theta: np.ndarray
    cov: np.ndarray
    n: int
    position: bool
    iterations: int
    converged: bool

    @property
    def strengths(self) -> np.ndarray:
        """The posterior-mode strengths, shape ``(n,)`` (a view of ``theta``)."""
        return self.theta[: self.n]

    @property
    def position_coef(self) -> float | None:
        """The posterior-mode first-position advantage (log-odds), or None without position."""
        return float(self.theta[self.n]) if self.position else None

    @property
    def sd(self) -> np.ndarray:
        """Posterior standard deviations of ``theta``, shape ``(k,)``."""
        sd: np.ndarray = np.sqrt(np.maximum(np.diag(self.cov), 0.0))
        return sd


# ----------------------------------------------------------------------------- validation


def _as_index(x: Any, name: str, n: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-d array, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu" and (
        arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))
    ):
        raise InputError(f"{name} must hold integer item indices")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n:
        raise InputError(f"{name} holds item {lo if lo < 0 else hi}, outside 0..{n - 1}")
    return arr


def _check_arrays(n: Any, first: Any, second: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``first``/``second`` as item indices below ``n`` and ``y`` in [0, 1], all one length."""
    if int(n) != n or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    f = _as_index(first, "first", n)
    s = _as_index(second, "second", n)
    yy = np.asarray(y, dtype=np.float64)
    if not (f.shape == s.shape == yy.shape):
        raise InputError(f"first, second and y must have the same length, got {f.shape}, {s.shape}, {yy.shape}")
    # min/max reductions: a NaN propagates into them and fails both comparisons
    if yy.size and not (np.minimum.reduce(yy) >= 0.0 and np.maximum.reduce(yy) <= 1.0):
        raise InputError("y must lie in [0, 1] (1 = first won, 0 = second won, 0.5 = tie)")
    return f, s, yy


def _validate(
    n: int, first: Any, second: Any, y: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Check and convert inputs; drop self-pairs and zero-weight rows."""
    f, s, yy = _check_arrays(n, first, second, y)
    keep = f != s
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != f.shape:
            raise InputError(f"weights must have the shape of first, got {w.shape}")
        if w.size and not (np.minimum.reduce(w) >= 0.0 and np.maximum.reduce(w) < math.inf):
            raise InputError("weights must be finite and >= 0")
        keep &= w > 0
    if not keep.all():
        f, s, yy = f[keep], s[keep], yy[keep]
        w = None if w is None else w[keep]
    return f, s, yy, w


def _check_ties(ties: str) -> None:
    if ties not in ("half", "drop"):
        raise InputError(f"ties must be 'half' or 'drop', got {ties!r}")


# ----------------------------------------------------------------------------- aggregation


def aggregate(n: int, first: Any, second: Any, y: Any, weights: Any = None) -> PairTable:
    """Sum comparisons into distinct ordered ``(first, second)`` pairs (see :class:`PairTable`).

    Runs in O(m) time with an ``n * n`` bincount when that is small, else O(m log m) by sorting;
    the result holds one row per distinct pair.
    """
    f, s, yy, w = _validate(n, first, second, y, weights)
    return _aggregate_valid(int(n), f, s, yy, w)


def _aggregate_valid(n: int, f: np.ndarray, s: np.ndarray, yy: np.ndarray, w: np.ndarray | None) -> PairTable:
    m = f.shape[0]
    key = f * n + s
    tie = yy == _TIE
    wt = np.ones(m) if w is None else w
    fw = wt * np.where(tie, 0.0, yy)
    sw = wt * np.where(tie, 0.0, 1.0 - yy)
    tw = np.where(tie, wt, 0.0)
    if n * n <= max(_DENSE_AGG_MAX, _SQUARE_PER_ROW * m):
        present = np.bincount(key, minlength=n * n)
        uniq = np.flatnonzero(present)
        first_wins = np.bincount(key, fw, n * n)[uniq]
        second_wins = np.bincount(key, sw, n * n)[uniq]
        ties = np.bincount(key, tw, n * n)[uniq]
    else:
        uniq, inv = np.unique(key, return_inverse=True)
        k = uniq.shape[0]
        first_wins = np.bincount(inv, fw, k)
        second_wins = np.bincount(inv, sw, k)
        ties = np.bincount(inv, tw, k)
    arrays = [uniq // n if n else uniq, uniq % n if n else uniq, first_wins, second_wins, ties]
    for a in arrays:
        a.setflags(write=False)
    return PairTable(n, *arrays)


# ----------------------------------------------------------------------------- graph helpers


def _graph(n: int, src: np.ndarray, dst: np.ndarray) -> Any:
    """The n x n comparison graph (a scipy CSR array, 1 where src -> dst)."""
    from scipy.sparse import coo_array

    data = np.ones(src.shape[0], dtype=np.int8)
    return coo_array((data, (src, dst)), shape=(n, n)).tocsr()


def _label_lists(n_comp: int, labels: np.ndarray) -> list[list[int]]:
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=n_comp))[:-1]
    groups = [g.tolist() for g in np.split(order, bounds)]
    groups.sort(key=lambda g: g[0])
    return groups


def connected_components(n: int, first: Any, second: Any) -> list[list[int]]:
    """Connected components of the (undirected) comparison graph.

    Every item is in exactly one component (an item never compared is alone in its own); each
    component is a sorted list, and the list is ordered by smallest member. Self-pairs do not
    connect anything.
    """
    from scipy.sparse.csgraph import connected_components as cc

    if int(n) != n or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    f = _as_index(first, "first", n)
    s = _as_index(second, "second", n)
    if f.shape != s.shape:
        raise InputError("first and second must have the same length")
    if n == 0:
        return []
    k, labels = cc(_graph(n, f, s), directed=False)
    return _label_lists(k, labels)


# ----------------------------------------------------------------------------- Bradley-Terry


@dataclass
class _Problem:
    """Bradley-Terry data reduced to pairs, plus the graph facts the fit needs (internal).

    Without a position effect the pairs are unordered (``i < j``) and ``a`` is i's effective
    wins against j in either presentation order; with one they are ordered (``i`` shown first).
    ``m`` is the pair's total effective weight, ``m - a`` the wins of ``j``.
    """

    n: int
    i: np.ndarray
    j: np.ndarray
    a: np.ndarray
    m: np.ndarray
    l2: float
    position: bool
    n_comp: int
    labels: np.ndarray
    comp_size: np.ndarray
    separated: bool  # some component's who-beat-whom graph is not strongly connected
    #: prior precision of the position coefficient (``l2`` unless the caller set its own)
    position_l2: float = 0.0
    #: the null-space fix of :func:`_newton` (centred parametrisation, components known);
    #: False for :func:`bt_posterior`, whose proper prior identifies every parameter
    fix_levels: bool = True


def _csr(n: int, keys: np.ndarray) -> Any:
    """Sparse n x n pattern from sorted flat keys row * n + col."""
    from scipy.sparse import csr_array

    rows = keys // n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return csr_array((np.ones(keys.shape[0], dtype=np.int8), keys - rows * n, indptr), shape=(n, n))


def _pairs(
    n: int,
    f: np.ndarray,
    s: np.ndarray,
    yy: np.ndarray,
    w: np.ndarray | None,
    ties: str,
    position: bool,
    graph: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
    """Aggregate validated comparisons into (i, j, a, m) rows, one per distinct pair, plus the
    who-beat-whom graph (sparse, edge winner -> loser; None when ``graph`` is false)."""
    if ties == "drop":
        keep = (yy != _TIE).astype(np.float64)
        w = keep if w is None else w * keep
    nn = n * n
    if f.shape[0] == 0 or n == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0), np.zeros(0), _csr(n, e) if graph else None
    wy = yy if w is None else w * yy
    if nn <= _SQUARE_PER_ROW * f.shape[0]:
        # Dense data: count ordered pairs in an n x n table, merge orders there.
        key = f * n
        key += s
        wins = np.bincount(key, wy, nn).reshape(n, n)
        tot = np.bincount(key, w, nn).reshape(n, n)
        if position:
            key = np.flatnonzero(tot)
            a, m = wins.ravel()[key], tot.ravel()[key]
            if graph:
                beat = wins + (tot - wins).T  # beat[i, j]: i's wins over j, either order
        else:
            beat = wins + (tot - wins).T
            both = tot + tot.T
            key = np.flatnonzero(np.triu(both, 1))
            a, m = beat.ravel()[key], both.ravel()[key]
        i = key // n
        return i, key - i * n, a, m, _csr(n, np.flatnonzero(beat > 0)) if graph else None
    if position:
        key = f * n
        key += s
        score = wy
    else:
        # Unordered pair (lo, hi) and the score of lo, whichever was shown first.
        key = np.minimum(f, s)
        key *= n
        key += np.maximum(f, s)
        flip = f > s
        # lo's score: wy when lo was shown first, w - wy when second; abs() does both.
        score = np.subtract(flip, wy) if w is None else np.subtract(flip * w, wy)
        np.abs(score, out=score)
    if nn <= _DENSE_AGG_MAX:
        tot = np.bincount(key, w, nn)
        wins = np.bincount(key, score, nn)
        key = np.flatnonzero(tot)
        a, m = wins[key], tot[key]
    else:
        key, inv = np.unique(key, return_inverse=True)
        a = np.bincount(inv, score, key.shape[0])
        m = np.bincount(inv, w, key.shape[0])
        pos = m > 0
        if not pos.all():
            key, a, m = key[pos], a[pos], m[pos]
    i = key // n
    j = key - i * n
    if not graph:
        return i, j, a, m, None
    b = m - a
    wa, wb = a > 0, b > 0
    return i, j, a, m, _graph(n, np.concatenate([i[wa], j[wb]]), np.concatenate([j[wa], i[wb]]))


def _problem(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    a: np.ndarray,
    m: np.ndarray,
    graph: Any,
    l2: float,
    position: bool,
    position_l2: float | None = None,
) -> _Problem:
    from scipy.sparse.csgraph import connected_components as cc

    pl2 = float(l2 if position_l2 is None else position_l2)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return _Problem(0, i, j, a, m, l2, position, 0, z, z, False, pl2)
    # Strong connectivity does not depend on the edges' orientation.
    n_strong, labels = cc(graph, directed=True, connection="strong")
    if n_strong == 1:
        n_comp, labels = 1, np.zeros(n, dtype=np.int32)
    else:
        n_comp, labels = cc(graph, directed=True, connection="weak")
    comp_size = np.bincount(labels, minlength=n_comp)
    return _Problem(n, i, j, a, m, float(l2), position, n_comp, labels, comp_size, n_strong != n_comp, pl2)


def _separation_message(pb: _Problem) -> str:
    n = pb.n
    b = pb.m - pb.a
    won = np.bincount(pb.i, pb.a, n) + np.bincount(pb.j, b, n)
    lost = np.bincount(pb.i, b, n) + np.bincount(pb.j, pb.a, n)
    played = (won + lost) > 0
    unbeaten = np.flatnonzero(played & (lost == 0))
    winless = np.flatnonzero(played & (won == 0))

    def few(x: np.ndarray) -> str:
        return str(x[:10].tolist())[:-1] + (", ...]" if x.shape[0] > 10 else "]")

    parts = []
    if unbeaten.size:
        parts.append(f"items {few(unbeaten)} never lost")
    if winless.size:
        parts.append(f"items {few(winless)} never won")
    if not parts:
        parts.append(
            "some group of items beat every item outside the group (the who-beat-whom graph is not strongly connected)"
        )
    return (
        "no finite Bradley-Terry maximum-likelihood estimate: "
        + "; ".join(parts)
        + ". Pass l2 > 0 (e.g. l2=0.01) to regularise."
    )


def _position_report(pb: _Problem) -> str | None:
    """Why the position effect has no finite estimate (cheap necessary check), or None."""
    first_won = float(pb.a.sum())
    second_won = float((pb.m - pb.a).sum())
    if first_won > 0 and second_won > 0:
        return None
    side = "first-shown" if second_won == 0 else "second-shown"
    return (
        f"no finite estimate of the position effect: the {side} item won every comparison, so "
        "the first-position advantage is infinite. Pass l2 > 0 or fit without position=True."
    )


def _separated_with_position(pb: _Problem) -> bool:
    """Is there a direction (ds, dh) along which the log-likelihood keeps rising?

    That happens iff some non-null direction weakly agrees with every observed outcome
    (s_i - s_j + h up where i won, down where j won) and strictly with one: a linear program
    (maximise the total agreement, each capped at 1). Only used for position=True, l2 == 0,
    when the fit looks divergent.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_array

    n, i, j = pb.n, pb.i, pb.j
    b = pb.m - pb.a
    rows_i = np.concatenate([i[pb.a > 0], i[b > 0]])
    rows_j = np.concatenate([j[pb.a > 0], j[b > 0]])
    sign = np.concatenate([np.ones(int((pb.a > 0).sum())), -np.ones(int((b > 0).sum()))])
    r = sign.shape[0]
    idx = np.arange(r)
    # Row k of M: sign_k * (e_i - e_j + e_h), so (M @ x)_k is outcome k's agreement.
    mat = coo_array(
        (
            np.concatenate([sign, -sign, sign]),
            (np.concatenate([idx, idx, idx]), np.concatenate([rows_i, rows_j, np.full(r, n)])),
        ),
        shape=(r, n + 1),
    ).tocsr()
    from scipy.sparse import vstack

    res = linprog(
        -np.asarray(mat.sum(axis=0)).ravel(),
        A_ub=vstack([-mat, mat]).tocsr(),
        b_ub=np.concatenate([np.zeros(r), np.ones(r)]),
        bounds=[(None, None)] * (n + 1),
        method="highs",
    )
    return bool(res.status == 0 and -res.fun > 1e-7)


# A fitted first-position effect or strength this large means odds beyond 1e13 to 1: with
# position=True and l2 == 0 it triggers the exact separation check above.
_DIVERGENT = 30.0


def _block_ones(pb: _Problem) -> np.ndarray | float:
    """B = sum over components C of u_C u_C^T, u_C the unit all-ones vector on C."""
    if pb.n_comp == 1:
        return 1.0 / pb.n
    same = pb.labels[:, None] == pb.labels[None, :]
    block: np.ndarray = same * (1.0 / pb.comp_size[pb.labels])[None, :]
    return block


# Newton's method tuning. Far from the optimum a logistic likelihood's Newton steps fall short;
# an exact 1-d Newton search along the step (factor t in [_LS_T_MIN, _LS_T_MAX]) saves whole
# iterations. It runs while the largest step exceeds _LS_ABOVE; below that, plain Newton steps
# converge quadratically.
_LS_ABOVE = 1e-3
_LS_STEPS = 3
_LS_T_MIN, _LS_T_MAX = 0.1, 4.0
# Stop once quadratic convergence predicts the next step below tol * _PREDICT_MARGIN.
_PREDICT_MARGIN = 1e-2
_PREDICT_BELOW = 1e-4
# From a warm start only steps longer than this get the line search (see _newton's ls_above).
_WARM_LS_ABOVE = 0.5
# Chord steps (see _newton): at most this many, each must shrink the step by _CHORD_RATE.
_CHORD_STEPS = 8
_CHORD_RATE = 0.5


def _newton(
    pb: _Problem,
    theta0: np.ndarray | None,
    max_iter: int,
    tol: float,
    want_cov: Literal[False, "diag", "full", "posterior"],
    chord: np.ndarray | None = None,
    ls_above: float = _LS_ABOVE,
) -> tuple[np.ndarray, float, int, bool, np.ndarray | None, np.ndarray | None]:
    """Damped Newton on the concave (penalised) log-likelihood: THE Bradley-Terry solver.

    Every fit in tourney runs here: :func:`bradley_terry` (maximum likelihood or ridge, with
    the diagnostics of :class:`BTFit`), :func:`bt_bootstrap` (warm-started resamples) and
    :func:`bt_posterior` (the MAP and Laplace posterior the adaptive strategy decides with).
    The objective is ``loglik(theta) - l2/2 * |s|^2 - position_l2/2 * h^2``.

    Sum-to-zero, when ``pb.fix_levels``: the information matrix H is singular along the
    all-ones vector u_C of every component when l2 == 0 (and has eigenvalue l2 there
    otherwise). Adding c * u_C u_C^T for every component makes it positive definite without
    changing the solution of H d = g for g orthogonal to every u_C (which the gradient is, as
    each comparison adds +r and -r inside one component, once the iterate is centred), so a
    centred iterate stays centred and the step is the exact constrained Newton step; the same
    term is subtracted again from the inverse for the covariance. Without ``fix_levels`` (a
    proper prior on every parameter: H is positive definite as it is) the plain step is taken.

    Without ``theta0`` the start is the best multiple of the centred log-odds of each item's
    win rate, which typically saves two iterations over starting at 0.

    Convergence: the largest step is <= tol, or (in the quadratic phase) the step sizes predict
    the next one far below tol. For "diag" and "full" the covariance is the inverse information
    at the last Newton iterate (within about the last step of the estimate), on the centred
    parametrisation; "posterior" is the full inverse penalised information AT the returned
    estimate (one more factorisation), without any centring: the Laplace posterior covariance.

    Work arrays are allocated once and reused (``out=``): fresh large temporaries cost page
    faults that, on small VMs, rival the arithmetic.
    ``chord``: the Cholesky factor of a nearby problem's (fixed) information matrix, e.g. the
    full data's when fitting a bootstrap resample. Cheap steps ``theta += F^-1 g`` (no
    factorisation) then run while they contract fast, before Newton proper finishes.
    ``ls_above``: steps longer than this get the 1-d line search (and the ascent safeguard);
    shorter ones are taken in full. From a warm start (:func:`bt_posterior` with ``init``) the
    first step is usually already short and a full Newton step nearly exact, so the search
    would cost more than it saves: there only long steps (> _WARM_LS_ABOVE) are searched.

    Returns (theta, loglik, iterations, converged, cov, factor): cov is None, the variances
    ("diag") or the covariance matrix ("full", "posterior") of the parameters; factor is the
    last Cholesky factor (for ``chord``), or None.
    """
    from scipy.linalg import lapack
    from scipy.special import expit

    n, i, j, a, m, l2, position = pb.n, pb.i, pb.j, pb.a, pb.m, pb.l2, pb.position
    pl2 = pb.position_l2 if position else l2
    k = n + 1 if position else n
    # One prior precision for every parameter (the common case) keeps the scalar arithmetic;
    # a separate one for the position coefficient needs the per-parameter vector ``prec``.
    uniform = pl2 == l2
    penalised = bool(l2 or pl2)
    prec = None
    if not uniform:
        prec = np.full(k, l2)
        prec[n] = pl2
    npairs = i.shape[0]
    eta, p, mp, r, wgt, de, tmp = np.empty((7, npairs))  # one allocation, seven contiguous rows

    def eta_of(t: np.ndarray, out: np.ndarray) -> np.ndarray:
        t.take(i, out=out)  # the method: np.take's Python wrapper costs more than the work here
        out -= t.take(j, out=tmp)
        if position:
            out += t[n]
        return out

    def penalty(u: np.ndarray, v: np.ndarray) -> float:
        """sum(prec * u * v) (the prior's quadratic form)."""
        return l2 * float(u @ v) if uniform else float((prec * u) @ v)

    def objective(e: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        # log p = e - softplus(e), log(1 - p) = -softplus(e); tmp <- softplus(e)
        np.abs(e, out=tmp)
        np.negative(tmp, out=tmp)
        np.exp(tmp, out=tmp)
        np.log1p(tmp, out=tmp)
        np.add(tmp, np.maximum(e, 0.0, out=r), out=tmp)
        ll = float(a @ e - m @ tmp)
        if not penalised:
            return ll, ll
        return (ll - 0.5 * l2 * float(t @ t) if uniform else ll - 0.5 * penalty(t, t)), ll

    def line_search(base: np.ndarray, th_s: np.ndarray, ds: np.ndarray, t: float) -> tuple[float, bool]:
        """Maximise along base + t * de (theta = th + t * step) by 1-d Newton; clobbers p, mp, r, wgt."""
        for _ in range(_LS_STEPS):
            np.multiply(de, t, out=tmp)
            np.add(tmp, base, out=tmp)
            expit(tmp, out=p)
            np.multiply(m, p, out=mp)
            np.subtract(a, mp, out=r)
            d1 = float(r @ de)
            np.multiply(mp, p, out=wgt)
            np.subtract(mp, wgt, out=wgt)
            np.multiply(de, de, out=tmp)
            d2 = float(wgt @ tmp)
            if penalised:
                d1 -= penalty(th_s + t * ds, ds)
                d2 += penalty(ds, ds)
            if d2 <= 0:
                return t, False
            t_new = min(max(t + d1 / d2, _LS_T_MIN), _LS_T_MAX)
            done = abs(t_new - t) < 1e-2 and _LS_T_MIN < t_new < _LS_T_MAX
            t = t_new
            if done:
                return t, True
        return t, False

    def gradient(th: np.ndarray) -> np.ndarray:
        """Gradient of the objective at th, from r = a - m p."""
        grad: np.ndarray = np.bincount(i, r, k)  # (with position, entry n is set below)
        grad -= np.bincount(j, r, k)
        if position:
            grad[n] = np.add.reduce(r)
        if penalised:
            grad -= l2 * th if uniform else prec * th  # the position effect is penalised too
        return grad

    # Hessian entries go in the LOWER triangle of H (all dpotrf reads). We fill ht = H^T in C
    # order, whose transpose is F-contiguous, so LAPACK factors it in place without copies.
    # with the position effect, both orders of a pair land in one cell; without it, i < j already
    flat = np.minimum(i, j) * k + np.maximum(i, j) if position else i * k + j
    fix = pb.fix_levels
    blk = _block_ones(pb) if n and fix else 0.0
    diag_idx = np.arange(n) * (k + 1)

    def information(ht: np.ndarray) -> float:
        """Fill ht with the (fixed) information matrix from wgt = m p (1 - p); returns c_fix.

        Without the fix only the upper triangle (C order) and the diagonal are written and the
        strict lower triangle is 0, so ht.T (what LAPACK factors) is lower triangular: the
        "posterior" inverse below relies on it."""
        wi = np.bincount(i, wgt, n)
        wj = np.bincount(j, wgt, n)
        diag = wi + wj
        c_fix = (float(diag.sum() / max(np.count_nonzero(diag), 1)) or 1.0) if fix else 1.0
        if position:
            np.negative(np.bincount(flat, wgt, k * k), out=ht.reshape(-1))
            np.subtract(wi, wj, out=ht[:n, n])
            ht[n, n] = np.add.reduce(wgt) + pl2
        else:
            ht.fill(0.0)
            ht.ravel()[flat] = wgt
            np.negative(ht, out=ht)
        ht.ravel()[diag_idx] = diag + l2
        if fix:
            ht[:n, :n] += c_fix * blk
        return c_fix

    if theta0 is not None:
        th = np.array(theta0, dtype=np.float64)
    else:
        th = np.zeros(k)
        if npairs and n:
            b = m - a
            won = np.bincount(i, a, n) + np.bincount(j, b, n)
            lost = np.bincount(i, b, n) + np.bincount(j, a, n)
            u = np.zeros(k)
            u[:n] = _centre(pb, np.log((won + 0.5) / (lost + 0.5)))
            eta_of(u, de)
            t0, _ = line_search(np.zeros(npairs), th, u, 1.0)
            th = t0 * u
    hbufs = [np.empty((k, k)), np.empty((k, k))] if npairs else []
    eta_of(th, eta)
    expit(eta, out=p)
    f_cur = None
    chol = None
    c_fix = 1.0
    converged = npairs == 0
    it = 0
    prev_smax = math.inf
    if chord is not None and not converged:
        for _ in range(_CHORD_STEPS):
            np.multiply(m, p, out=mp)
            np.subtract(a, mp, out=r)
            grad = gradient(th)
            step, info = lapack.dpotrs(chord, grad, lower=1)
            smax = float(np.maximum.reduce(np.abs(step))) if info == 0 else math.inf
            if not smax <= _CHORD_RATE * prev_smax and prev_smax < math.inf:
                break  # not contracting fast enough: leave it to Newton
            th += step
            eta_of(th, eta)
            expit(eta, out=p)
            if smax <= _LS_ABOVE:
                break
            prev_smax = smax
        prev_smax = math.inf
    while not converged and it < max_iter:
        it += 1
        np.multiply(m, p, out=mp)
        np.subtract(a, mp, out=r)
        np.multiply(mp, p, out=wgt)
        np.subtract(mp, wgt, out=wgt)
        grad = gradient(th)
        ht = hbufs[it % 2]
        c_fix = information(ht)
        chol, info = lapack.dpotrf(ht.T, lower=1, overwrite_a=1, clean=0)
        if info == 0:
            step, info = lapack.dpotrs(chol, grad, lower=1)
        if info != 0:  # numerically singular (probabilities saturated): least squares
            chol = None
            step = np.linalg.lstsq(_dense_information(pb, th, c_fix, blk), grad, rcond=None)[0]
        smax = float(np.maximum.reduce(np.abs(step)))  # NaN propagates
        if not math.isfinite(smax):  # NaN or inf somewhere in the step
            break
        predicted = smax * smax * (smax / (prev_smax * prev_smax)) if prev_smax < 1.0 else math.inf
        if smax <= tol or (smax <= _PREDICT_BELOW and predicted <= tol * _PREDICT_MARGIN):
            th += step
            eta_of(th, eta)
            converged = True
            break
        prev_smax = smax
        t = 1.0
        searched = False
        if smax > ls_above:
            eta_of(step, de)
            t, searched = line_search(eta, th, step, 1.0)
        th_new = th + t * step if t != 1.0 else th + step
        if smax > ls_above and not searched:
            # Safeguard: never accept a decrease of the objective. (Not needed when the 1-d
            # search converged: it then sits at the maximum along a line through th.)
            if f_cur is None:
                f_cur = objective(eta, th)[0]
            f_new = objective(eta_of(th_new, mp), th_new)[0]
            halvings = 0
            while f_new < f_cur - 1e-12 * (1.0 + abs(f_cur)) and halvings < 60:
                t *= 0.5
                halvings += 1
                th_new = th + t * step
                f_new = objective(eta_of(th_new, mp), th_new)[0]
            if halvings == 60:
                break  # no ascent possible: stuck at machine precision
            f_cur = f_new
        else:
            f_cur = None
        if t != 1.0:
            prev_smax = math.inf  # a damped step says nothing about quadratic convergence
        th = th_new
        eta_of(th, eta)
        expit(eta, out=p)
    cov = None
    if want_cov == "posterior" and k == 0:
        return th, math.nan, it, converged, np.zeros((0, 0)), None
    if want_cov == "posterior":
        # The Laplace covariance at the estimate itself (the loop's last factor is one step
        # behind it): the inverse of the penalised information, nothing projected out (no
        # log-likelihood either: bt_posterior does not report it).
        expit(eta, out=p)
        np.multiply(m, p, out=mp)
        np.multiply(mp, p, out=wgt)
        np.subtract(mp, wgt, out=wgt)
        ht = np.empty((k, k))
        c_fix = information(ht)
        chol, info = lapack.dpotrf(ht.T, lower=1, overwrite_a=1, clean=0)
        if info == 0:
            # H^-1 = L^-T L^-1. Not dpotri: multi-threaded OpenBLAS runs its inverse of a tiny
            # matrix in threads, which on a busy machine costs milliseconds where the work is
            # microseconds (this runs after every batch of adaptive). The strict upper triangle
            # of the factor is 0 (see information()), so L^-1 from dtrtri is exactly triangular.
            linv, info = lapack.dtrtri(chol, lower=1)
        if info != 0:
            return th, math.nan, it, converged, np.full((k, k), np.nan), None
        cov = linv.T @ linv
        cov += cov.T  # exactly symmetric, whatever order the product summed in
        cov *= 0.5
        return th, math.nan, it, converged, cov, chol
    ll = objective(eta, th)[1] if npairs else 0.0
    if want_cov:
        if chol is None:
            # No factor from the loop (no pairs, or a singular step): factor at the estimate.
            chol = _factor_at(pb, th, c_fix, blk)
        cov = _inverse_parts(chol, k, want_cov == "full")
        # Undo the null-space fix: (H + c B)^-1 = H^+ + B / (l2 + c) on the item block.
        if n and want_cov == "full":
            cov[:n, :n] -= blk / (l2 + c_fix)
        elif n:
            cov[:n] -= 1.0 / ((l2 + c_fix) * pb.comp_size[pb.labels])
    return th, ll, it, converged, cov, chol


def _inverse_parts(chol: np.ndarray | None, k: int, full: bool) -> np.ndarray:
    """From the lower Cholesky factor L of a k x k matrix A: A^-1 (full) or just its diagonal.

    The diagonal alone costs one triangular inverse (about half of a full inverse):
    diag(A^-1)_i = sum_r (L^-1)[r, i]^2.
    """
    from scipy.linalg import lapack

    if chol is None:
        return np.full((k, k) if full else k, np.nan)
    if k == 0:  # LAPACK rejects an empty matrix (and says so on stderr)
        return np.zeros((0, 0) if full else 0)
    if full:
        inv, info = lapack.dpotri(chol, lower=1)
        if info != 0:
            return np.full((k, k), np.nan)
        out = np.tril(inv)
        out += out.T
        out.ravel()[:: k + 1] *= 0.5
        return out
    linv, info = lapack.dtrtri(chol, lower=1)
    if info != 0:
        return np.full(k, np.nan)
    linv = np.tril(linv)  # the strict upper triangle holds scratch, not the inverse
    diag: np.ndarray = np.einsum("ij,ij->j", linv, linv)
    return diag


def _dense_information(pb: _Problem, th: np.ndarray, c_fix: float, blk: np.ndarray | float) -> np.ndarray:
    """The (fixed) information matrix at th, built the plain way (fallback paths only)."""
    from scipy.special import expit

    n = pb.n
    k = n + 1 if pb.position else n
    eta = np.take(th, pb.i) - np.take(th, pb.j)
    if pb.position:
        eta += th[n]
    p = expit(eta)
    wgt = pb.m * p * (1.0 - p)
    h = np.zeros((k, k))
    if n:
        np.add.at(h, (pb.i, pb.j), -wgt)
        np.add.at(h, (pb.j, pb.i), -wgt)
        wi = np.bincount(pb.i, wgt, n)
        wj = np.bincount(pb.j, wgt, n)
        h[np.arange(n), np.arange(n)] = wi + wj + pb.l2
        if pb.fix_levels:
            h[:n, :n] += c_fix * blk
        if pb.position:
            h[n, :n] = h[:n, n] = wi - wj
            h[n, n] = wgt.sum() + pb.position_l2
    return h


def _factor_at(pb: _Problem, th: np.ndarray, c_fix: float, blk: np.ndarray | float) -> np.ndarray | None:
    """Cholesky factor (lower, F-order) of the fixed information matrix at th, or None."""
    from scipy.linalg import lapack

    h = np.asfortranarray(_dense_information(pb, th, c_fix, blk))
    chol, info = lapack.dpotrf(h, lower=1, overwrite_a=1, clean=0)
    return chol if info == 0 else None


def _check_fit_args(ties: str, l2: float, max_iter: int, tol: float, position_l2: float | None = None) -> None:
    _check_ties(ties)
    if not (math.isfinite(l2) and l2 >= 0):
        raise InputError(f"l2 must be a finite number >= 0, got {l2!r}")
    if position_l2 is not None and not (math.isfinite(position_l2) and position_l2 >= 0):
        raise InputError(f"position_l2 must be a finite number >= 0, got {position_l2!r}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not tol > 0:
        raise InputError(f"tol must be > 0, got {tol!r}")


def _check_init(init: Any, n: int, position: bool) -> np.ndarray | None:
    """A warm start as a float array of length ``n (+ 1 with position)``, or None (not a copy:
    :func:`_newton` copies its start)."""
    if init is None:
        return None
    k = n + 1 if position else n
    try:
        arr = np.asarray(init, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"init must be an array of numbers, got {type(init).__name__}") from None
    if arr.shape != (k,):
        what = f"n + 1 = {k} (the strengths, then the position coefficient)" if position else f"n = {k}"
        raise InputError(f"init must be a 1-d array of length {what}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("init must be finite")
    return arr


def _centre(pb: _Problem, s: np.ndarray) -> np.ndarray:
    centred: np.ndarray
    if pb.n_comp == 1:
        centred = s - s.mean()
    else:
        means = np.bincount(pb.labels, s, pb.n_comp) / np.maximum(pb.comp_size, 1)
        centred = s - means[pb.labels]
    return centred


def bradley_terry(
    n: int,
    first: Any,
    second: Any,
    y: Any,
    *,
    weights: Any = None,
    ties: Literal["half", "drop"] = "half",
    l2: float = 0.0,
    position: bool = False,
    position_l2: float | None = None,
    init: Any = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    return_cov: bool = False,
) -> BTFit:
    """Fit a Bradley-Terry model by Newton's method on the aggregated pairs.

    ``ties="half"`` counts a tie as half a win for each side (what R's BradleyTerry2 does with a
    0.5 response); ``"drop"`` ignores tie rows. ``l2`` is the ridge penalty
    ``l2 / 2 * sum(s**2)`` (choix ``opt_pairwise(alpha)`` is ``l2 = 2 * alpha``).
    ``position=True`` adds one common log-odds advantage for the first-shown (home) item
    (BradleyTerry2's ``at.home``); ``position_l2`` penalises it, ``position_l2 / 2 * h**2``
    (default: ``l2``, like a strength).

    ``init``: a warm start, ``(strengths[0..n-1][, position_coef])`` (length ``n + 1`` with
    ``position=True``), e.g. an earlier fit of fewer comparisons; the strengths are centred
    within each component first. It changes how many steps the fit takes, not where it ends.

    For a fast posterior under a proper Gaussian prior (the MAP and its full covariance,
    without this function's graph diagnostics) see :func:`bt_posterior`; both run the same
    Newton solver.

    ``return_cov=True`` also fills :attr:`BTFit.cov` (the full covariance matrix, for contrasts
    such as ``var(s_i - s_j)``); it costs about one more Newton step, so it is off by default.

    Each Newton step costs O(pairs + n^2) to assemble and one dense Cholesky factorisation
    (O(n^3)); 3-6 steps are typical. Memory is O(distinct pairs + n^2), which suits up to a few
    thousand items. Convergence: the largest parameter step falls below ``tol`` (or quadratic
    convergence predicts the next one far below it).

    Raises :class:`~tourney.errors.InputError` for malformed input, or when ``l2 == 0`` and the
    data have no finite maximum-likelihood estimate (see the module docstring).
    """
    _check_fit_args(ties, l2, max_iter, tol, position_l2)
    f, s, yy, w = _validate(n, first, second, y, weights)
    n = int(n)
    start = _check_init(init, n, position)
    pb = _problem(n, *_pairs(n, f, s, yy, w, ties, position), l2, position, position_l2)
    pl2 = pb.position_l2
    if pb.separated and not l2:
        raise InputError(_separation_message(pb))
    if position and n and not pl2 and (msg := _position_report(pb)):
        raise InputError(msg)
    if start is not None and n:
        start = np.concatenate([_centre(pb, start[:n]), start[n:]])
    theta, ll, it, conv, cov, _ = _newton(pb, start, int(max_iter), float(tol), "full" if return_cov else "diag")
    if (
        position
        and not l2
        and not pl2
        and (not conv or np.max(np.abs(theta)) > _DIVERGENT)
        and _separated_with_position(pb)
    ):
        raise InputError(
            "no finite Bradley-Terry estimate with a position effect: the strengths plus a "
            "first-position advantage predict every outcome perfectly. Pass l2 > 0 or fit "
            "without position=True."
        )
    assert cov is not None
    strengths = _centre(pb, theta[:n]) if n else theta[:0].copy()
    se = np.sqrt(np.maximum(np.diag(cov) if return_cov else cov, 0.0))
    item_se = se[:n].copy()
    if n and pb.n_comp > 1:
        item_se[pb.comp_size[pb.labels] == 1] = np.nan
    comps = _label_lists(pb.n_comp, pb.labels) if n else []
    return BTFit(
        strengths=strengths,
        elo=to_elo_scale(strengths),
        se=item_se,
        cov=cov if return_cov else None,
        position_coef=float(theta[n]) if position else None,
        position_se=float(se[n]) if position else None,
        components=comps,
        connected=len(comps) <= 1,
        loglik=ll,
        iterations=it,
        converged=conv,
    )


def bt_posterior(
    n: int,
    first: Any,
    second: Any,
    y: Any,
    *,
    l2: float,
    weights: Any = None,
    ties: Literal["half", "drop"] = "half",
    position: bool = False,
    position_l2: float | None = None,
    init: Any = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> BTPosterior:
    """The Bradley-Terry posterior under Gaussian priors: its mode (MAP) and Laplace covariance.

    Model: ``P(first wins) = 1 / (1 + exp(s_second - s_first - h))`` (``h = 0`` unless
    ``position=True``), priors ``s_i ~ N(0, 1/l2)`` independently and ``h ~ N(0, 1/position_l2)``
    (``position_l2`` defaults to ``l2``). The MAP maximises ``loglik - l2/2 * |s|^2 -
    position_l2/2 * h^2``, the same objective as :func:`bradley_terry` with those penalties,
    solved by the same Newton solver; the posterior is approximated by the Gaussian
    ``N(theta, cov)`` with ``cov`` the inverse penalised information at the MAP.

    Why a second entry point: both priors must be proper (``l2 > 0``, and ``position_l2 > 0``
    with ``position=True``), so the objective is strictly concave and a finite, unique MAP
    exists for ANY data, and none of :func:`bradley_terry`'s graph diagnostics (components,
    separation checks, centring) is needed. This skips them, which makes a small fit two to
    three times cheaper: it is meant for a strategy that refits after every batch of comparisons
    (the ``adaptive`` strategy), with ``init`` set to the previous ``theta`` (a warm start:
    fewer steps, the same answer).

    The MAP is centred on its own (the prior is centred at 0 and the likelihood does not see a
    common shift within a connected component, so each component's strengths sum to 0 at the
    optimum, up to rounding); ``cov`` is the full posterior covariance: unlike
    :attr:`BTFit.cov` it keeps the prior's variance of the common level of each component
    (``var(mean of the strengths of a component of size c) = 1 / (l2 * c)``), which cancels in
    every contrast ``s_i - s_j``. Data and ``ties``, ``weights``, ``max_iter``, ``tol`` are as in
    :func:`bradley_terry`.

    The same posterior from counts already tallied per ordered pair: :func:`bt_posterior_dense`.

    Raises :class:`~tourney.errors.InputError` for malformed input or a prior that is not
    proper.
    """
    pl2 = _check_prior(ties, l2, position, position_l2, max_iter, tol)
    f, s, yy, w = _validate(n, first, second, y, weights)
    n = int(n)
    start = _check_init(init, n, position)
    i, j, a, m, _ = _pairs(n, f, s, yy, w, ties, position, graph=False)
    return _posterior(n, i, j, a, m, float(l2), pl2, position, start, int(max_iter), float(tol))


def bt_posterior_dense(
    first_wins: Any,
    second_wins: Any,
    *,
    l2: float,
    position: bool = False,
    position_l2: float | None = None,
    init: Any = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> BTPosterior:
    """:func:`bt_posterior` from per-ordered-pair tallies (``n x n`` matrices), like choix's
    ``*_dense`` functions.

    ``first_wins[f, s]`` is how many comparisons of ``f`` shown first against ``s`` the first-
    shown ``f`` won, ``second_wins[f, s]`` how many of them ``s`` won; a tie adds half to each
    (soft outcomes and weights: fractional counts). The two matrices are the sufficient
    statistics of the model, so a caller that refits as comparisons arrive (the ``adaptive``
    strategy) can keep them up to date and skip re-reading every comparison. The diagonal is
    ignored. Otherwise exactly :func:`bt_posterior` (same priors, ``init``, result); the two
    give the same numbers for the same comparisons.

    Raises :class:`~tourney.errors.InputError` for malformed input or a prior that is not
    proper.
    """
    pl2 = _check_prior("half", l2, position, position_l2, max_iter, tol)
    try:
        fw = np.asarray(first_wins, dtype=np.float64)
        sw = np.asarray(second_wins, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("first_wins and second_wins must be square arrays of numbers") from None
    if fw.ndim != 2 or fw.shape[0] != fw.shape[1] or sw.shape != fw.shape:
        raise InputError(
            f"first_wins and second_wins must be square n x n arrays of one shape, got {fw.shape} and {sw.shape}"
        )
    tot = fw + sw
    # both >= 0 with a finite sum means both finite; a NaN propagates and fails the comparisons
    if fw.size and not (np.minimum.reduce(np.minimum(fw, sw), None) >= 0.0 and np.maximum.reduce(tot, None) < math.inf):
        raise InputError("first_wins and second_wins must be finite and >= 0")
    n = fw.shape[0]
    start = _check_init(init, n, position)
    if position:
        i, j = np.nonzero(tot)
        off = i != j
        if not off.all():
            i, j = i[off], j[off]
        a, m = fw[i, j], tot[i, j]
    else:
        # unordered pairs i < j: i's wins over j in either presentation order
        both = tot + tot.T
        key = np.flatnonzero(np.triu(both, 1))
        i = key // n if n else key
        j = key - i * n
        a, m = (fw + sw.T).ravel()[key], both.ravel()[key]
    return _posterior(n, i, j, a, m, float(l2), pl2, position, start, int(max_iter), float(tol))


def _check_prior(ties: str, l2: float, position: bool, position_l2: float | None, max_iter: int, tol: float) -> float:
    """Check the arguments of a posterior fit; returns the position prior's precision."""
    _check_fit_args(ties, l2, max_iter, tol, position_l2)
    pl2 = float(l2 if position_l2 is None else position_l2)
    if not l2 > 0 or (position and not pl2 > 0):
        raise InputError(
            "bt_posterior needs proper priors: l2 > 0"
            + (" and position_l2 > 0" if position else "")
            + f", got l2={l2!r}"
            + (f", position_l2={position_l2!r}" if position else "")
            + " (for an unpenalised fit use bradley_terry)"
        )
    return pl2


def _posterior(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    a: np.ndarray,
    m: np.ndarray,
    l2: float,
    pl2: float,
    position: bool,
    start: np.ndarray | None,
    max_iter: int,
    tol: float,
) -> BTPosterior:
    """The posterior fit of aggregated pairs (i, j, a of m won by i) under proper priors."""
    labels = np.zeros(n, dtype=np.int64)
    pb = _Problem(
        n, i, j, a, m, l2, position, 1 if n else 0, labels, np.array([n]) if n else labels, False, pl2, fix_levels=False
    )
    theta, _, it, conv, cov, _ = _newton(
        pb, start, max_iter, tol, "posterior", ls_above=_LS_ABOVE if start is None else _WARM_LS_ABOVE
    )
    assert cov is not None
    return BTPosterior(theta=theta, cov=cov, n=n, position=position, iterations=it, converged=conv)


def bt_bootstrap(
    n: int,
    first: Any,
    second: Any,
    y: Any,
    *,
    rounds: int,
    rng: np.random.Generator,
    **fit_kwargs: Any,
) -> np.ndarray:
    """Bootstrap the Bradley-Terry strengths: array ``(rounds, n)`` of centred strengths.

    Each round resamples the comparisons with replacement, done as one multinomial draw of the
    total count over the aggregated cells (distinct ordered pair x {first won, second won,
    tie}), which is the same distribution as resampling rows when every row has weight 1 and
    ``y`` is 0, 0.5 or 1. Weights count as frequencies (the total is rounded to a whole number
    of draws); soft outcomes are resampled per cell, an approximation. ``fit_kwargs`` are those
    of :func:`bradley_terry` (``weights``, ``ties``, ``l2``, ``position``, ``position_l2``,
    ``max_iter``, ``tol``). Every round is warm-started at the full-data fit; strengths are centred within
    the components of the full data. Memory: O(distinct pairs) per round.

    Raises :class:`~tourney.errors.InputError` if, with ``l2 == 0``, a resample has no finite
    estimate or splits a component (pass ``l2 > 0`` for sparse data).
    """
    allowed = {"weights", "ties", "l2", "position", "position_l2", "max_iter", "tol"}
    unknown = set(fit_kwargs) - allowed
    if unknown:
        raise InputError(f"unknown bradley_terry arguments {sorted(unknown)}; known: {sorted(allowed)}")
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng must be a numpy.random.Generator (e.g. np.random.default_rng(0))")
    if int(rounds) != rounds or rounds < 0:
        raise InputError(f"rounds must be a non-negative integer, got {rounds!r}")
    ties = fit_kwargs.get("ties", "half")
    l2 = float(fit_kwargs.get("l2", 0.0))
    position = bool(fit_kwargs.get("position", False))
    max_iter = int(fit_kwargs.get("max_iter", 100))
    tol = float(fit_kwargs.get("tol", 1e-10))
    position_l2 = fit_kwargs.get("position_l2")
    position_l2 = None if position_l2 is None else float(position_l2)
    _check_fit_args(ties, l2, max_iter, tol, position_l2)
    table = aggregate(n, first, second, y, fit_kwargs.get("weights"))
    n = table.n
    out = np.zeros((int(rounds), n))
    if rounds == 0 or n == 0:
        return out
    merge = _merge_map(table, position)
    full = _problem(
        n,
        *_cell_pairs(n, merge, table.first_wins, table.second_wins, table.ties, ties),
        l2,
        position,
        position_l2,
    )
    if full.i.shape[0] == 0:
        return out
    if full.separated and not l2:
        raise InputError(_separation_message(full))
    theta0, _, _, _, _, factor = _newton(full, None, max_iter, tol, False)
    # Resampling cells: first won, second won, tie (tie cells only count with ties="half");
    # only cells with positive weight take part in the multinomial draw.
    cells = [table.first_wins, table.second_wins]
    if ties == "half":
        cells.append(table.ties)
    cell_w = np.concatenate(cells)
    live = np.flatnonzero(cell_w > 0)
    total = float(cell_w[live].sum())
    draws = max(round(total), 1)
    prob = cell_w[live] / total
    npair = table.n_pairs
    counts = np.zeros(cell_w.shape[0])
    zeros = np.zeros(npair)
    for r in range(int(rounds)):
        counts[live] = rng.multinomial(draws, prob)
        fw, sw = counts[:npair], counts[npair : 2 * npair]
        tw = counts[2 * npair :] if ties == "half" else zeros
        pb = _problem(n, *_cell_pairs(n, merge, fw, sw, tw, ties), l2, position, position_l2)
        if not l2:
            if pb.n_comp != full.n_comp:
                raise InputError(
                    f"bootstrap round {r}: the resample splits the comparison graph into "
                    f"{pb.n_comp} components ({full.n_comp} in the data). Pass l2 > 0."
                )
            if pb.separated:
                raise InputError(f"bootstrap round {r}: {_separation_message(pb)}")
        theta = _newton(pb, theta0, max_iter, tol, False, chord=factor)[0]
        out[r] = _centre(full, theta[:n])
    return out


def _merge_map(table: PairTable, position: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How a table's ordered pairs map onto the fit's pairs: (i, j, index, flipped).

    Without a position effect, (x, y) and (y, x) are one unordered pair (i < j); ``flipped``
    marks the ordered pairs whose first item is the pair's j.
    """
    n, f, s = table.n, table.first, table.second
    if position:
        return f, s, np.arange(f.shape[0]), np.zeros(f.shape[0], dtype=bool)
    key, inv = np.unique(np.minimum(f, s) * n + np.maximum(f, s), return_inverse=True)
    i = key // n
    return i, key - i * n, inv, f > s


def _cell_pairs(
    n: int,
    merge: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    fw: np.ndarray,
    sw: np.ndarray,
    tw: np.ndarray,
    ties: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
    """(i, j, a, m, graph) for the fit from per-ordered-pair cell weights."""
    i, j, inv, flipped = merge
    m = fw + sw
    a = fw
    if ties == "half":
        m = m + tw
        a = fw + 0.5 * tw
    a = np.where(flipped, m - a, a)
    k = i.shape[0]
    a = np.bincount(inv, a, k)
    m = np.bincount(inv, m, k)
    keep = m > 0
    if not keep.all():
        i, j, a, m = i[keep], j[keep], a[keep], m[keep]
    b = m - a
    wa, wb = a > 0, b > 0
    return i, j, a, m, _graph(n, np.concatenate([i[wa], j[wb]]), np.concatenate([j[wa], i[wb]]))


def to_elo_scale(
    strengths: Any, scale: float = ELO_SCALE, base: float = ELO_BASE, anchor: float = ELO_INITIAL
) -> np.ndarray:
    """Natural-log strengths to Elo points: ``anchor + scale / ln(base) * strengths``.

    With the defaults a 400-point difference means odds of 10:1, matching :func:`elo`.
    """
    return anchor + (scale / math.log(base)) * np.asarray(strengths, dtype=np.float64)


# ----------------------------------------------------------------------------- Elo


def elo(
    n: int,
    first: Any,
    second: Any,
    y: Any,
    *,
    k: float = DEFAULT_ELO_K,
    scale: float = ELO_SCALE,
    base: float = ELO_BASE,
    initial: float = ELO_INITIAL,
    order: Any = None,
    rng: np.random.Generator | None = None,
    n_orders: int = 1,
) -> np.ndarray:
    """Online Elo ratings after playing the comparisons one by one.

    For each comparison, ``E = 1 / (1 + base ** ((R_second - R_first) / scale))`` and
    ``R_first += k * (y - E)``, ``R_second -= k * (y - E)`` (a tie scores 0.5). Everyone starts
    at ``initial``. See :data:`DEFAULT_ELO_K` for why K defaults to 32.

    Order: by default the comparisons are played as given; ``order`` (indices into the
    comparisons) plays them in that order instead. With ``rng``, the ratings are the mean over
    ``n_orders`` random permutations drawn from ``rng`` (which removes most of Elo's order
    dependence); ``order`` and ``rng`` are exclusive, and ``n_orders > 1`` needs ``rng``.
    Self-pairs are skipped. Cost: a Python loop, O(n_orders * m).
    """
    f, s, yy = _check_arrays(n, first, second, y)  # self-pairs stay: ``order`` indexes all rows
    n = int(n)
    if not (k > 0 and scale > 0 and base > 1):
        raise InputError("elo needs k > 0, scale > 0 and base > 1")
    if int(n_orders) != n_orders or n_orders < 1:
        raise InputError(f"n_orders must be a positive integer, got {n_orders!r}")
    if order is not None and rng is not None:
        raise InputError("pass either order or rng, not both")
    if n_orders > 1 and rng is None:
        raise InputError("n_orders > 1 needs rng (a numpy.random.Generator) to draw the orders")
    m = f.shape[0]
    if order is None:
        orders = [np.arange(m)] if rng is None else [rng.permutation(m) for _ in range(n_orders)]
    else:
        idx = np.asarray(order)
        if idx.ndim != 1 or (idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= m)):
            raise InputError(f"order must be a 1-d array of indices into the {m} comparisons")
        orders = [idx]
    fl, sl, yl = f.tolist(), s.tolist(), yy.tolist()
    k, scale, base = float(k), float(scale), float(base)
    total = np.zeros(n)
    for o in orders:
        r = [float(initial)] * n
        for t in o.tolist():
            p, q = fl[t], sl[t]
            if p == q:
                continue
            e = 1.0 / (1.0 + base ** ((r[q] - r[p]) / scale))
            d = k * (yl[t] - e)
            r[p] += d
            r[q] -= d
        total += r
    return total / len(orders)


# ----------------------------------------------------------------------------- tallies


def _scores(
    n: int, f: np.ndarray, s: np.ndarray, yy: np.ndarray, w: np.ndarray | None, ties: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item (score, games): score sums y for first and 1-y for second (ties as chosen)."""
    _check_ties(ties)
    wt = np.ones(f.shape[0]) if w is None else w
    if ties == "drop":
        wt = np.where(yy == _TIE, 0.0, wt)
    score = np.bincount(f, wt * yy, n) + np.bincount(s, wt * (1.0 - yy), n)
    games = np.bincount(f, wt, n) + np.bincount(s, wt, n)
    return score, games


def borda(n: int, first: Any, second: Any, y: Any, *, weights: Any = None, ties: str = "half") -> np.ndarray:
    """Total wins per item, a tie counting half (``ties="drop"``: not at all)."""
    f, s, yy, w = _validate(n, first, second, y, weights)
    return _scores(int(n), f, s, yy, w, ties)[0]


def copeland(n: int, first: Any, second: Any, y: Any, *, weights: Any = None) -> np.ndarray:
    """Copeland score: pairwise majority wins per item, +0.5 for each pair with an even record.

    For every unordered pair that met at least once, the total score of each side (wins plus
    half the ties, over both presentation orders) decides the pair.
    """
    f, s, yy, w = _validate(n, first, second, y, weights)
    n = int(n)
    out = np.zeros(n)
    if f.shape[0] == 0:
        return out
    wt = np.ones(f.shape[0]) if w is None else w
    lo, hi = np.minimum(f, s), np.maximum(f, s)
    score_lo = np.where(f == lo, yy, 1.0 - yy) * wt  # score of the lower-numbered item
    key = lo * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    sl = np.bincount(inv, score_lo, uniq.shape[0])
    tot = np.bincount(inv, wt, uniq.shape[0])
    sh = tot - sl
    pl, ph = uniq // n, uniq % n
    point_lo = np.where(sl > sh, 1.0, np.where(sl == sh, 0.5, 0.0))
    np.add.at(out, pl, point_lo)
    np.add.at(out, ph, 1.0 - point_lo)
    return out
