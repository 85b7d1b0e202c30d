"""``tourney rate``: a leaderboard (Bradley-Terry or online Elo) from pairwise judgements.

    tourney rate JUDGEMENTS.jsonl --method bradley_terry|elo [--ties half|drop] [--l2 X]
                 [--bootstrap R] [--seed S] [--format table|json|csv]

Input lines are either Chatbot Arena battles::

    {"model_a": "gpt-4", "model_b": "claude-1", "winner": "model_a" | "model_b" | "tie" | "tie (bothbad)",
     "tstamp": 1682000000.5}                                      # tstamp optional

(``model_a`` is the side shown first), or tourney judgement logs, the replay-judge format::

    {"prompt": ..., "first": "response shown first", "second": "...", "verdict": "A" | "B" | "tie" | "abstain",
     "first_model": "optional name", "second_model": "optional name", "first_index": 0, "second_index": 3}

where a candidate is named by ``first_model`` / ``second_model`` when present, else by its
response text. Abstentions (and ``error`` verdicts) are read and counted but are not comparisons.

Methods: ``bradley_terry`` is the order-free maximum-likelihood fit (:func:`tourney.rating.
bradley_terry`), reported on the Elo scale (1000 + 400/ln 10 * log-strength) with a 95% interval
from the Fisher information, or from ``--bootstrap R`` seeded resamples; ``--position`` also fits
the first-shown advantage. ``elo`` is online Elo over the records in timestamp order (stable: equal
or missing timestamps keep file order; a record without ``tstamp`` stays right after the record
before it), with a bootstrap interval when asked (resampled records, replayed in timestamp order).

Bad input never loses the good lines: a malformed line, an unknown winner label or a missing
field is reported on stderr with its line number, the rest is rated, and the exit status is 1.
No valid record, or fewer than two models, is an error (exit 2).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from .errors import InputError

__all__ = ["register", "read_pairwise", "rate", "Pairwise"]

_ARENA_WINNERS = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
_VERDICTS = {"a": 1.0, "b": 0.0, "tie": 0.5}
_NO_VOTE = {"abstain", "error"}

_EPILOG = """\
examples:
  tourney rate battles.jsonl                                  Bradley-Terry, Fisher 95% CI, table
  tourney rate battles.jsonl --method elo --k 4               online Elo in timestamp order
  tourney rate battles.jsonl --bootstrap 200 --seed 1 --format json
  tourney rate judgements.jsonl --position --ties drop       with the first-shown advantage

input line (Chatbot Arena):  {"model_a": "x", "model_b": "y", "winner": "model_a|model_b|tie|tie (bothbad)", "tstamp": 1.0}
input line (tourney log):    {"prompt": "...", "first": "...", "second": "...", "verdict": "A|B|tie|abstain",
                              "first_model": "x", "second_model": "y"}   (names optional: else the texts)
"""


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


def _name(rec: dict, key: str) -> str:
    v = rec.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return v


def _parse(rec: Any) -> tuple[str, str, float | None]:
    """(first name, second name, score of first or None for no vote); ValueError if bad."""
    if not isinstance(rec, dict):
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


def read_pairwise(lines: Iterable[str], source: str = "input") -> Pairwise:
    """Parse JSONL lines of battles or judgement records; bad lines go to ``problems``."""
    out = Pairwise()
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{no}"
        try:
            rec = json.loads(line)
        except ValueError as exc:
            out.problems.append(f"{where}: malformed JSON ({getattr(exc, 'msg', exc)})")
            continue
        try:
            a, b, y = _parse(rec)
            ts = _timestamp(rec["tstamp"]) if isinstance(rec, dict) and rec.get("tstamp") is not None else None
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


def _time_order(tstamp: Sequence[float | None]) -> list[int]:
    """Stable timestamp order; a record without one inherits its predecessor's."""
    eff: list[float] = []
    last = -math.inf
    for t in tstamp:
        last = t if t is not None else last
        eff.append(last)
    return sorted(range(len(eff)), key=lambda k: eff[k])


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
    """The leaderboard as a JSON-able dict (rows best first). Raises InputError when the data
    cannot be rated."""
    import numpy as np

    from . import rating

    n = len(data.names)
    if not data.y:
        raise InputError("no valid records to rate" + (f" ({len(data.problems)} bad lines)" if data.problems else ""))
    if n < 2:
        raise InputError(f"only one model ({data.names[0][:60]!r}) in the records: a rating needs at least two")
    first = np.asarray(data.first, dtype=np.int64)
    second = np.asarray(data.second, dtype=np.int64)
    y = np.asarray(data.y, dtype=float)
    if ties == "drop":
        keep = y != 0.5
        first, second, y = first[keep], second[keep], y[keep]
        ts = [t for t, kk in zip(data.tstamp, keep.tolist()) if kk]
        if not len(y):
            raise InputError("every record is a tie and --ties drop leaves nothing to rate")
    else:
        ts = list(data.tstamp)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"method": method, "records": int(len(y)), "abstentions": data.abstentions,
                           "self_pairs": data.self_pairs, "bad_lines": len(data.problems)}
    comps: list[list[int]] | None = None
    if method == "bradley_terry":
        try:
            fit = rating.bradley_terry(n, first, second, y, ties=ties, l2=l2, position=position)
        except InputError as exc:
            raise InputError(str(exc).replace("Pass l2 > 0 (e.g. l2=0.01)", "Pass --l2 0.01 (or larger)")) from None
        ratings = np.asarray(fit.elo, dtype=float)
        se = np.asarray(fit.se, dtype=float) * rating.ELO_PER_NAT
        if bootstrap:
            try:
                boot = rating.bt_bootstrap(n, first, second, y, rounds=bootstrap, rng=rng, ties=ties, l2=l2,
                                           position=position)
            except InputError as exc:
                raise InputError(f"{exc} (bootstrap: pass --l2 0.01 or larger for sparse data)") from None
            lo, hi = np.percentile(rating.to_elo_scale(boot), [2.5, 97.5], axis=0)
            out["interval"] = f"bootstrap 95% percentile interval, {bootstrap} rounds, seed {seed}"
        else:
            lo, hi = ratings - rating.Z_95 * se, ratings + rating.Z_95 * se
            out["interval"] = "95% Wald interval from the Fisher information"
        out["scale"] = "Bradley-Terry on the Elo scale: 1000 + 400/ln(10) * centred log-strength"
        out["l2"], out["ties"] = l2, ties
        if position:
            out["position"] = {"coef": fit.position_coef, "se": fit.position_se,
                               "elo": (fit.position_coef or 0.0) * rating.ELO_PER_NAT}
        if not fit.connected:
            comps = fit.components
        out["converged"] = bool(fit.converged)
    else:
        kk = rating.DEFAULT_ELO_K if k is None else k
        order = _time_order(ts)
        f_o, s_o, y_o = first[order], second[order], y[order]
        ratings = rating.elo(n, f_o, s_o, y_o, k=kk)
        se = None
        if bootstrap:
            m = len(y_o)
            boot = np.empty((bootstrap, n))
            for r in range(bootstrap):
                idx = np.sort(rng.integers(0, m, m))  # a resample, replayed in time order
                boot[r] = rating.elo(n, f_o[idx], s_o[idx], y_o[idx], k=kk)
            lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
            out["interval"] = f"bootstrap 95% percentile interval, {bootstrap} rounds, seed {seed}"
        else:
            lo = hi = None
            out["interval"] = None
        out["scale"] = f"online Elo in timestamp order (K={kk:g}, 400 points per factor 10 of odds, initial 1000)"
        comps = rating.connected_components(n, first, second)
        comps = comps if len(comps) > 1 else None
    played = np.bincount(first, minlength=n) + np.bincount(second, minlength=n)
    wins = np.bincount(first, y == 1.0, n) + np.bincount(second, y == 0.0, n)
    tied = np.bincount(first, y == 0.5, n) + np.bincount(second, y == 0.5, n)
    comp_of = {i: c for c, members in enumerate(comps or [list(range(n))]) for i in members}
    order_ = sorted(range(n), key=lambda i: (-ratings[i], data.names[i]))
    rows = []
    for rank, i in enumerate(order_, 1):
        row: dict[str, Any] = {
            "rank": rank,
            "model": data.names[i],
            "rating": round(float(ratings[i]), 2),
            "ci_low": None if lo is None or not math.isfinite(lo[i]) else round(float(lo[i]), 2),
            "ci_high": None if hi is None or not math.isfinite(hi[i]) else round(float(hi[i]), 2),
            "comparisons": int(played[i]),
            "wins": int(wins[i]),
            "losses": int(played[i] - wins[i] - tied[i]),
            "ties": int(tied[i]),
        }
        if se is not None:
            row["se"] = round(float(se[i]), 2) if math.isfinite(se[i]) else None
        if comps:
            row["component"] = comp_of[i] + 1
        rows.append(row)
    out["components"] = len(comps) if comps else 1
    out["leaderboard"] = rows
    return out


def _table(board: dict[str, Any]) -> str:
    rows = board["leaderboard"]
    comp = board["components"] > 1
    head = ["rank", "model", "rating", "95% CI", "comparisons", "W-L-T"] + (["component"] if comp else [])
    body = []
    for r in rows:
        ci = "-" if r["ci_low"] is None else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        name = " ".join(r["model"].split())
        name = name if len(name) <= 40 else name[:37] + "..."
        line = [str(r["rank"]), name, f"{r['rating']:.1f}", ci, str(r["comparisons"]),
                f"{r['wins']}-{r['losses']}-{r['ties']}"]
        body.append(line + ([str(r["component"])] if comp else []))
    widths = [max(len(x[c]) for x in [head, *body]) for c in range(len(head))]
    right = {0, 2, 4}
    fmt = lambda cells: "  ".join(c.rjust(w) if k in right else c.ljust(w)  # noqa: E731
                                  for k, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)]
    foot = f"{board['records']} comparisons; {board['scale']}"
    if board.get("interval"):
        foot += f"; CI: {board['interval']}"
    if board.get("position"):
        p = board["position"]
        foot += f"\nfirst-shown advantage: {p['coef']:+.3f} log-odds (se {p['se']:.3f}), {p['elo']:+.1f} Elo points"
    return "\n".join(lines + [foot]) + "\n"


def _csv(board: dict[str, Any]) -> str:
    buf = io.StringIO()
    cols = ["rank", "model", "rating", "ci_low", "ci_high", "comparisons", "wins", "losses", "ties"]
    cols += [c for c in ("se", "component") if any(c in r for r in board["leaderboard"])]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in board["leaderboard"]:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    return buf.getvalue()


def cmd_rate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from pathlib import Path

    if args.input == "-":
        data = read_pairwise(sys.stdin, "stdin")
    else:
        p = Path(args.input)
        if not p.is_file():
            raise FileNotFoundError(f"input file {args.input} does not exist")
        with p.open(encoding="utf-8", errors="replace") as fh:
            data = read_pairwise(fh, p.name)
    for msg in data.problems:
        print(f"tourney rate: bad line {msg}", file=sys.stderr)
    for msg in data.notes:
        print(f"tourney rate: {msg}", file=sys.stderr)
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise InputError(f"--l2 must be >= 0, got {args.l2}")
    if args.k is not None and not args.k > 0:
        raise InputError(f"--k must be > 0, got {args.k}")
    board = rate(data, method=args.method, ties=args.ties, l2=args.l2, position=args.position,
                 k=args.k, bootstrap=args.bootstrap, seed=args.seed)
    if board["components"] > 1:
        print(f"tourney rate: the comparison graph has {board['components']} disconnected components; "
              "ratings are comparable only within a component (see the component column)", file=sys.stderr)
    if board.get("converged") is False:
        print("tourney rate: the Bradley-Terry fit did not converge; try --l2 0.01", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "csv":
        text = _csv(board)
    else:
        text = _table(board)
    sys.stdout.write(text)
    sys.stdout.flush()
    if data.problems:
        print(f"tourney rate: {len(data.problems)} bad line(s) skipped; rated the other {board['records']} records",
              file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> dict[str, Any]:
    p = subparsers.add_parser(
        "rate",
        help="rate models from pairwise judgements (Bradley-Terry or Elo leaderboard)",
        description="Read pairwise judgements (Chatbot Arena battles, or tourney judgement logs) and "
        "print a leaderboard: rating, 95% CI, number of comparisons, rank.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("input", help="JSONL of pairwise records ('-' for stdin)")
    p.add_argument("--method", choices=["bradley_terry", "elo"], default="bradley_terry",
                   help="bradley_terry: order-free maximum likelihood (default); elo: online, timestamp order")
    p.add_argument("--ties", choices=["half", "drop"], default="half",
                   help="a tie counts half a win each way (default) or is dropped")
    p.add_argument("--l2", type=float, default=0.0,
                   help="Bradley-Terry ridge penalty l2/2*sum(s^2); needed when a model never lost or never won, "
                   "or the graph is disconnected (default 0: plain maximum likelihood)")
    p.add_argument("--position", action="store_true",
                   help="Bradley-Terry: also fit the first-shown (model_a) advantage")
    p.add_argument("--k", type=float, default=None,
                   help="Elo K-factor (default 32; Chatbot Arena used 4 for its large logs)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="R",
                   help="R bootstrap rounds for the 95%% interval (default 0: Fisher for Bradley-Terry, none for Elo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format (default table)")
    return {"rate": cmd_rate}
