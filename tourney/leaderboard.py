"""Leaderboards from pairwise judgements: read battle or judgement records, rate the models.

A pure module: no printing, no file I/O (it reads the lines or records it is given), no
command-line parsing. ``tourney rate`` is a thin front end over it; notebooks use it directly::

    from tourney.leaderboard import rate, read_pairwise

    with open("battles.jsonl", encoding="utf-8") as fh:
        data = read_pairwise(fh, "battles.jsonl")
    board = rate(data, method="bradley_terry", l2=0.01)      # a JSON-able dict, rows best first

Records are either Chatbot Arena battles::

    {"model_a": "gpt-4", "model_b": "claude-1", "winner": "model_a" | "model_b" | "tie" | "tie (bothbad)",
     "tstamp": 1682000000.5}                                      # tstamp optional

(``model_a`` is the side shown first), or tourney judgement logs, the replay-judge format::

    {"prompt": ..., "first": "response shown first", "second": "...", "verdict": "A" | "B" | "tie" | "abstain",
     "first_model": "optional name", "second_model": "optional name", "first_index": 0, "second_index": 3}

where a candidate is named by ``first_model`` / ``second_model`` when present, else by its
response text. Abstentions (and ``error`` verdicts) are read and counted but are not comparisons.

Methods: ``bradley_terry`` is the order-free maximum-likelihood fit
(:func:`tourney.rating.bradley_terry`), reported on the Elo scale
(``ELO_INITIAL + ELO_PER_NAT * log-strength``, 1000 + 400/ln 10 * s) with a 95% Wald interval
from the Fisher information, or a percentile interval from ``bootstrap`` seeded resamples;
``position=True`` also fits the first-shown advantage. ``elo`` is online Elo over the records in
timestamp order (stable: equal or missing timestamps keep input order; a record without
``tstamp`` stays right after the record before it), with a bootstrap interval when asked
(resampled records, replayed in timestamp order).

Bad records never lose the good ones: :func:`read_pairwise` collects each bad line's problem
(with its ``source:line`` position) in :attr:`Pairwise.problems` and reads the rest. Data that
cannot be rated at all (no valid record, one model) raises :class:`~tourney.errors.InputError`.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from . import rating
from .errors import InputError

__all__ = ["METHODS", "TIES", "Pairwise", "rate", "read_pairwise"]

#: rating methods :func:`rate` knows
METHODS = ("bradley_terry", "elo")
#: how a tie counts: half a win each way, or not at all
TIES = ("half", "drop")

_ARENA_WINNERS = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
_VERDICTS = {"a": 1.0, "b": 0.0, "tie": 0.5}
_NO_VOTE = {"abstain", "error"}
_TIE = 0.5


# ----------------------------------------------------------------------------- reading


@dataclass
class Pairwise:
    """Pairwise records read from a file: ``first[k]`` was shown first, ``y[k]`` is its score
    (1 won, 0 lost, 0.5 tie); ``names`` index the items; ``problems`` are bad lines."""

    names: list[str] = field(default_factory=list)
    first: list[int] = field(default_factory=list)
    second: list[int] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    tstamp: list[float | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    abstentions: int = 0
    self_pairs: int = 0
    _index: dict[str, int] = field(default_factory=dict)

    def item(self, name: str) -> int:
        """The index of ``name``, added at the end the first time it is seen."""
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
        return self._index[name]


def _timestamp(value: Any) -> float:
    """Seconds since the epoch from a number, a numeric string or an ISO 8601 time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise ValueError(f"tstamp must be a number or an ISO 8601 time, got {value!r}")


def _name(rec: Mapping[str, Any], key: str) -> str:
    v = rec.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return v


def _parse(rec: Any) -> tuple[str, str, float | None]:
    """(first name, second name, score of first or None for no vote); ValueError if bad."""
    if not isinstance(rec, Mapping):
        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
    if "model_a" in rec or "model_b" in rec or "winner" in rec:
        a, b = _name(rec, "model_a"), _name(rec, "model_b")
        w = rec.get("winner")
        if not isinstance(w, str) or w.strip().lower() not in _ARENA_WINNERS:
            raise ValueError(f"unknown winner label {w!r} (expected model_a, model_b, tie or tie (bothbad))")
        return a, b, _ARENA_WINNERS[w.strip().lower()]
    if "verdict" in rec or "first" in rec:
        for key in ("first", "second", "verdict"):
            if key not in rec:
                raise ValueError(f"a judgement record needs first, second and verdict; '{key}' is missing")
        a = _name(rec, "first_model") if "first_model" in rec else _name(rec, "first")
        b = _name(rec, "second_model") if "second_model" in rec else _name(rec, "second")
        for key in ("first_index", "second_index"):
            if key in rec and (isinstance(rec[key], bool) or not isinstance(rec[key], int)):
                raise ValueError(f"'{key}' must be an integer")
        v = str(rec["verdict"]).strip().lower()
        if v in _NO_VOTE:
            return a, b, None
        if v not in _VERDICTS:
            raise ValueError(f"unknown verdict {rec['verdict']!r} (expected A, B, tie or abstain)")
        return a, b, _VERDICTS[v]
    raise ValueError(
        "neither a battle (model_a, model_b, winner) nor a judgement record (first, second, verdict)"
    )


def read_pairwise(lines: Iterable[str | Mapping[str, Any]], source: str = "input") -> Pairwise:
    """Read battles or judgement records: JSONL lines, or records already parsed (mappings).

    Bad records go to ``problems`` as ``"SOURCE:LINE: what is wrong"`` (line numbers count
    from 1 and include blank lines) and the rest is read; self-pairs are dropped with a note.
    """
    out = Pairwise()
    for no, line in enumerate(lines, 1):
        where = f"{source}:{no}"
        if isinstance(line, Mapping):
            rec: Any = line
        else:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                out.problems.append(f"{where}: malformed JSON ({getattr(exc, 'msg', exc)})")
                continue
        try:
            a, b, y = _parse(rec)
            ts = _timestamp(rec["tstamp"]) if isinstance(rec, Mapping) and rec.get("tstamp") is not None else None
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")
            continue
        if y is None:
            out.abstentions += 1
            continue
        if a == b:
            out.self_pairs += 1
            out.notes.append(f"{where}: both sides are {a[:60]!r}; self-pair dropped")
            continue
        out.first.append(out.item(a))
        out.second.append(out.item(b))
        out.y.append(y)
        out.tstamp.append(ts)
        out.lines.append(no)
    return out


# ----------------------------------------------------------------------------- rating


@dataclass
class _Fit:
    """One method's result: ratings (Elo points), their standard errors (or None), the 95%
    interval bounds (or None), the header fields it adds, and its graph components (None when
    the comparison graph is connected)."""

    ratings: np.ndarray
    se: np.ndarray | None
    lo: np.ndarray | None
    hi: np.ndarray | None
    header: dict[str, Any]
    components: list[list[int]] | None


def _bootstrap_label(rounds: int, seed: int) -> str:
    return f"bootstrap 95% percentile interval, {rounds} rounds, seed {seed}"


def _fit_bradley_terry(
    n: int, first: np.ndarray, second: np.ndarray, y: np.ndarray, *,
    ties: str, l2: float, position: bool, bootstrap: int, seed: int, rng: np.random.Generator,
) -> _Fit:
    """Maximum likelihood on the Elo scale, with a Wald (Fisher) or bootstrap 95% interval."""
    fit = rating.bradley_terry(n, first, second, y, ties=ties, l2=l2, position=position)  # type: ignore[arg-type]
    ratings = np.asarray(fit.elo, dtype=float)
    se = np.asarray(fit.se, dtype=float) * rating.ELO_PER_NAT
    header: dict[str, Any] = {}
    if bootstrap:
        try:
            boot = rating.bt_bootstrap(n, first, second, y, rounds=bootstrap, rng=rng, ties=ties, l2=l2,
                                       position=position)
        except InputError as exc:
            raise InputError(f"{exc} (bootstrap: pass l2=0.01 or larger for sparse data)") from None
        lo, hi = np.percentile(rating.to_elo_scale(boot), [2.5, 97.5], axis=0)
        header["interval"] = _bootstrap_label(bootstrap, seed)
    else:
        lo, hi = ratings - rating.Z_95 * se, ratings + rating.Z_95 * se
        header["interval"] = "95% Wald interval from the Fisher information"
    header["scale"] = (f"Bradley-Terry on the Elo scale: {rating.ELO_INITIAL:g} + "
                       f"{rating.ELO_SCALE:g}/ln({rating.ELO_BASE:g}) * centred log-strength")
    header["l2"], header["ties"] = l2, ties
    if position:
        header["position"] = {"coef": fit.position_coef, "se": fit.position_se,
                              "elo": (fit.position_coef or 0.0) * rating.ELO_PER_NAT}
    header["converged"] = bool(fit.converged)
    return _Fit(ratings, se, lo, hi, header, None if fit.connected else fit.components)


def _time_order(tstamp: Sequence[float | None]) -> list[int]:
    """Stable timestamp order; a record without one inherits its predecessor's."""
    eff: list[float] = []
    last = -math.inf
    for t in tstamp:
        last = t if t is not None else last
        eff.append(last)
    return sorted(range(len(eff)), key=lambda k: eff[k])


def _fit_elo(
    n: int, first: np.ndarray, second: np.ndarray, y: np.ndarray, tstamp: Sequence[float | None], *,
    k: float, bootstrap: int, seed: int, rng: np.random.Generator,
) -> _Fit:
    """Online Elo in timestamp order; a bootstrap percentile interval when asked, else none."""
    order = _time_order(tstamp)
    f_o, s_o, y_o = first[order], second[order], y[order]
    ratings = rating.elo(n, f_o, s_o, y_o, k=k)
    header: dict[str, Any] = {}
    lo = hi = None
    if bootstrap:
        m = len(y_o)
        boot = np.empty((bootstrap, n))
        for r in range(bootstrap):
            idx = np.sort(rng.integers(0, m, m))  # a resample, replayed in time order
            boot[r] = rating.elo(n, f_o[idx], s_o[idx], y_o[idx], k=k)
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        header["interval"] = _bootstrap_label(bootstrap, seed)
    else:
        header["interval"] = None
    header["scale"] = (f"online Elo in timestamp order (K={k:g}, {rating.ELO_SCALE:g} points per factor "
                       f"{rating.ELO_BASE:g} of odds, initial {rating.ELO_INITIAL:g})")
    comps = rating.connected_components(n, first, second)
    return _Fit(np.asarray(ratings, dtype=float), None, lo, hi, header, comps if len(comps) > 1 else None)


def _round(v: float) -> float | None:
    return round(float(v), 2) if math.isfinite(v) else None


def _rows(names: Sequence[str], first: np.ndarray, second: np.ndarray, y: np.ndarray, fit: _Fit) -> list[dict[str, Any]]:
    """Leaderboard rows, best first (ties in rating broken by name): rank, model, rating, 95%
    interval, record (wins, losses, ties), plus ``se`` and ``component`` where they apply."""
    n = len(names)
    played = np.bincount(first, minlength=n) + np.bincount(second, minlength=n)
    wins = np.bincount(first, y == 1.0, n) + np.bincount(second, y == 0.0, n)
    tied = np.bincount(first, y == _TIE, n) + np.bincount(second, y == _TIE, n)
    comp_of = {i: c for c, members in enumerate(fit.components or [list(range(n))]) for i in members}
    order = sorted(range(n), key=lambda i: (-fit.ratings[i], names[i]))
    rows = []
    for rank, i in enumerate(order, 1):
        row: dict[str, Any] = {
            "rank": rank,
            "model": names[i],
            "rating": round(float(fit.ratings[i]), 2),
            "ci_low": None if fit.lo is None else _round(fit.lo[i]),
            "ci_high": None if fit.hi is None else _round(fit.hi[i]),
            "comparisons": int(played[i]),
            "wins": int(wins[i]),
            "losses": int(played[i] - wins[i] - tied[i]),
            "ties": int(tied[i]),
        }
        if fit.se is not None:
            row["se"] = _round(fit.se[i])
        if fit.components:
            row["component"] = comp_of[i] + 1
        rows.append(row)
    return rows


def _check_options(method: str, ties: str, l2: float, k: float | None, bootstrap: int) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if ties not in TIES:
        raise InputError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, numbers.Integral) or bootstrap < 0:
        raise InputError(f"bootstrap must be an integer >= 0, got {bootstrap!r}")
    if not (math.isfinite(l2) and l2 >= 0):
        raise InputError(f"l2 must be >= 0, got {l2}")
    if k is not None and not k > 0:
        raise InputError(f"k must be > 0, got {k}")


def rate(
    data: Pairwise,
    *,
    method: str = "bradley_terry",
    ties: str = "half",
    l2: float = 0.0,
    position: bool = False,
    k: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The leaderboard of ``data`` as a JSON-able dict.

    ``method``: ``bradley_terry`` (``l2`` ridge penalty, ``position`` fits the first-shown
    advantage) or ``elo`` (K-factor ``k``, default :data:`tourney.rating.DEFAULT_ELO_K`);
    ``ties``: ``half`` (half a win each way) or ``drop``; ``bootstrap``: rounds of a seeded
    (``seed``) percentile interval, 0 for the Fisher interval (Bradley-Terry) or none (Elo).

    Keys: ``method``, ``records`` (comparisons rated), ``abstentions``, ``self_pairs``,
    ``bad_lines``, ``interval`` (how the 95% interval was made, or None), ``scale``, for
    Bradley-Terry ``l2``, ``ties``, ``position`` (when fitted) and ``converged``, then
    ``components`` (of the comparison graph; ratings compare only within one) and
    ``leaderboard`` (rows best first; ratings rounded to 0.01 Elo points). Raises
    :class:`~tourney.errors.InputError` when the data cannot be rated.
    """
    _check_options(method, ties, l2, k, bootstrap)
    n = len(data.names)
    if not data.y:
        raise InputError("no valid records to rate" + (f" ({len(data.problems)} bad lines)" if data.problems else ""))
    if n < 2:
        raise InputError(f"only one model ({data.names[0][:60]!r}) in the records: a rating needs at least two")
    first = np.asarray(data.first, dtype=np.int64)
    second = np.asarray(data.second, dtype=np.int64)
    y = np.asarray(data.y, dtype=float)
    tstamp = list(data.tstamp)
    if ties == "drop":
        keep = y != _TIE
        first, second, y = first[keep], second[keep], y[keep]
        tstamp = [t for t, kept in zip(tstamp, keep.tolist()) if kept]
        if not len(y):
            raise InputError("every record is a tie and ties='drop' leaves nothing to rate")
    rng = np.random.default_rng(seed)
    if method == "bradley_terry":
        fit = _fit_bradley_terry(n, first, second, y, ties=ties, l2=l2, position=position, bootstrap=bootstrap,
                                 seed=seed, rng=rng)
    else:
        fit = _fit_elo(n, first, second, y, tstamp, k=rating.DEFAULT_ELO_K if k is None else k,
                       bootstrap=bootstrap, seed=seed, rng=rng)
    board: dict[str, Any] = {"method": method, "records": int(len(y)), "abstentions": data.abstentions,
                             "self_pairs": data.self_pairs, "bad_lines": len(data.problems)}
    board.update(fit.header)
    board["components"] = len(fit.components) if fit.components else 1
    board["leaderboard"] = _rows(data.names, first, second, y, fit)
    return board
