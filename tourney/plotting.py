"""Pictures of results: a knockout bracket, a leaderboard with intervals, accuracy curves.

    from tourney.plotting import plot_bracket, plot_leaderboard, plot_accuracy

    plot_bracket(result_line, "bracket.png")            # one prompt's knockout, from OUT.jsonl
    plot_leaderboard(board, "leaderboard.svg")          # a `tourney rate --format json` board
    plot_accuracy(report, "accuracy.png")               # a `tourney simulate --format json` report

Each writes one file, PNG or SVG by the path's extension (``.png``, ``.svg``; ``.pdf`` too),
and returns the figure's size in pixels (PNG) or points (SVG). matplotlib is imported inside
the plotting functions only (with the non-interactive ``Agg`` backend), so ``import tourney``
and ``import tourney.plotting`` stay light; without it a :class:`~tourney.errors.MissingExtraError`
names the ``plot`` extra (``pip install 'tourney[plot]'``).

The data side is matplotlib-free and shared with ``tourney explain``: :func:`bracket_rounds`
turns a knockout result's ``info["matches"]`` into the tree of who beat whom.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, MissingExtraError

__all__ = [
    "BracketMatch",
    "DPI",
    "bracket_rounds",
    "plot_accuracy",
    "plot_bracket",
    "plot_leaderboard",
]

#: resolution of PNG files (dots per inch); an SVG is sized in points (72 per inch)
DPI = 100
#: file types the plotting functions write (matplotlib picks the writer from the extension)
FORMATS = (".png", ".svg", ".pdf")


@dataclass
class BracketMatch:
    """One knockout match: its round (1 = first), the two players (candidate indices, in the
    order the strategy lists them), their votes, the winner, whether a seeded coin settled it,
    and the matches that fed each player (None: the player entered here, from a bye or the
    first round)."""

    round: int
    players: tuple[int, int]
    votes: tuple[float, float]
    winner: int
    coin_flip: bool = False
    feeders: list[BracketMatch | None] = field(default_factory=lambda: [None, None])

    @property
    def loser(self) -> int:
        return self.players[1] if self.winner == self.players[0] else self.players[0]


def bracket_rounds(result: Mapping[str, Any]) -> tuple[list[list[BracketMatch]], list[BracketMatch]]:
    """``(rounds, roots)`` of a knockout-style result (``knockout``, or ``voting`` over a
    knockout): ``rounds[r - 1]`` lists round r's matches; ``roots`` are the matches whose winner
    played no later match (the final, or several when a budget stopped the bracket early).
    Raises :class:`~tourney.errors.InputError` when the result has no bracket
    (``info["matches"]`` with rounds and winners)."""
    info = result.get("info") or {}
    raw = info.get("matches") if isinstance(info, Mapping) else None
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(m, Mapping) and "round" in m and "winner" in m for m in raw)
    ):
        strategy = (
            (result.get("strategy") or {}).get("name", "?") if isinstance(result.get("strategy"), Mapping) else "?"
        )
        raise InputError(
            f"prompt {result.get('id')!r} has no knockout bracket (strategy {strategy}): "
            "a bracket needs info.matches with rounds and winners"
        )
    matches = [
        BracketMatch(
            int(m["round"]),
            (int(m["players"][0]), int(m["players"][1])),
            (float(m["votes"][0]), float(m["votes"][1])),
            int(m["winner"]),
            bool(m.get("coin_flip")),
        )
        for m in raw
    ]
    matches.sort(key=lambda m: m.round)
    last_win: dict[int, BracketMatch] = {}  # player -> the latest match they won
    for m in matches:
        m.feeders = [last_win.get(p) for p in m.players]
        for p in m.players:
            last_win.pop(p, None)
        last_win[m.winner] = m
    fed = {id(f) for m in matches for f in m.feeders if f is not None}
    roots = [m for m in matches if id(m) not in fed]
    n_rounds = max(m.round for m in matches)
    rounds: list[list[BracketMatch]] = [[] for _ in range(n_rounds)]
    for m in matches:
        rounds[m.round - 1].append(m)
    return rounds, roots


def _figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches that pyplot does not know about:
    drawing and saving it never touches the caller's backend (a notebook's inline plots keep
    working after a call) or pyplot's list of open figures (nothing to close)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "plot", "tourney plot") from exc
    return Figure(figsize=(width, height))


def _check_path(path: str | os.PathLike[str]) -> str:
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in FORMATS:
        raise InputError(f"cannot tell the picture format of {p!r}: give a path ending in {', '.join(FORMATS)}")
    return p


def _save(fig: Any, path: str) -> tuple[int, int]:
    fig.savefig(path, dpi=DPI)  # the format's canvas (Agg for PNG) is picked from the extension
    w, h = fig.get_size_inches()
    if path.lower().endswith(".png"):  # Agg renders int(inches * dpi) pixels
        return int(w * DPI), int(h * DPI)
    return round(w * 72), round(h * 72)


def _short(text: str, limit: int = 38) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plot_bracket(
    result: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> tuple[int, int]:
    """Draw one prompt's knockout bracket (a result line of ``tourney rank``) to ``path``:
    rounds left to right, each match a box with the two players and their votes, the winner in
    bold, a line to the match the winner played next; a coin-flip settled match is marked.
    ``labels``: text per candidate (e.g. the start of each response; default ``#i``)."""
    path = _check_path(path)
    rounds, roots = bracket_rounds(result)
    name = (lambda i: f"#{i}  {_short(labels[i], 26)}") if labels is not None else (lambda i: f"#{i}")
    # vertical layout: leaves (players entering the bracket) in order of a depth-first walk
    ys: dict[int, float] = {}
    slot = [0.0]

    def place(m: BracketMatch) -> float:
        child_y = []
        for f in m.feeders:
            if f is not None:
                child_y.append(place(f))
            else:
                child_y.append(slot[0])
                slot[0] += 1.0
        ys[id(m)] = sum(child_y) / len(child_y)
        return ys[id(m)]

    for r in roots:
        place(r)
        slot[0] += 0.5
    n_rounds = len(rounds)
    box_w = 1.9 if labels is None else 3.6  # data units; a column is box_w + 0.7 wide
    col = box_w + 0.7
    bottom = max(ys.values()) + 0.7
    height = max(2.5, 0.55 * (bottom + 0.9) + 1.0)
    width = max(4.0, 0.95 * (col * n_rounds + 1.8))
    from matplotlib.patches import Rectangle

    fig = _figure(width, height)
    ax = fig.subplots()
    for rnd in rounds:
        for m in rnd:
            x, y = (m.round - 1) * col, ys[id(m)]
            ax.add_patch(
                Rectangle((x, y - 0.42), box_w, 0.84, fill=False, lw=1.0, ls="--" if m.coin_flip else "-", ec="0.3")
            )
            for k, (p, v) in enumerate(zip(m.players, m.votes)):
                ax.text(
                    x + 0.08,
                    y + (0.18 if k == 0 else -0.2),
                    f"{name(p)}  ({v:g})",
                    va="center",
                    fontsize=8,
                    fontweight="bold" if p == m.winner else "normal",
                )
            for f in m.feeders:
                if f is not None:
                    fx, fy = (f.round - 1) * col + box_w, ys[id(f)]
                    ax.plot([fx, x - 0.15, x - 0.15, x], [fy, fy, y, y], color="0.5", lw=0.8)
    for r in roots:
        x, y = (r.round - 1) * col + box_w, ys[id(r)]
        ax.annotate(f"#{r.winner}", (x + 0.15, y), va="center", fontsize=10, fontweight="bold")
    ax.set_xlim(-0.3, (n_rounds - 1) * col + box_w + 1.0)
    ax.set_ylim(bottom, -0.9)
    ax.axis("off")
    for k in range(n_rounds):
        ax.text(
            k * col + box_w / 2,
            -0.65,
            "final" if k == n_rounds - 1 and len(roots) == 1 else f"round {k + 1}",
            ha="center",
            fontsize=9,
            color="0.3",
        )
    ax.set_title(title or f"{result.get('id')}: knockout bracket (best: #{result.get('best')})", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_leaderboard(
    board: Mapping[str, Any], path: str | os.PathLike[str], *, title: str | None = None, top: int | None = None
) -> tuple[int, int]:
    """Draw a leaderboard (``tourney rate --format json``, or :func:`tourney.leaderboard.rate`)
    to ``path``: one row per model, best at the top, its rating as a dot and its 95% interval
    as a bar (no bar when the board has none). ``top``: only the first rows."""
    path = _check_path(path)
    rows = list(board.get("leaderboard") or [])
    if not rows:
        raise InputError("the leaderboard has no rows to plot")
    if top is not None:
        rows = rows[:top]
    fig = _figure(7.0, max(2.0, 0.32 * len(rows) + 1.3))
    ax = fig.subplots()
    ys = list(range(len(rows)))
    ratings = [r["rating"] for r in rows]
    for y, r in zip(ys, rows):
        if r.get("ci_low") is not None and r.get("ci_high") is not None:
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color="tab:blue", lw=2, alpha=0.6)
    ax.plot(ratings, ys, "o", color="tab:blue", ms=5)
    ax.set_yticks(ys)
    ax.set_yticklabels([_short(r["model"], 40) for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("rating" + (f" ({board['method']})" if board.get("method") else ""))
    ax.grid(axis="x", alpha=0.3)
    interval = board.get("interval")
    ax.set_title(
        title
        or f"{len(board.get('leaderboard') or [])} models, {board.get('records', '?')} comparisons"
        + (f"\n{_short(interval, 90)}" if interval else "\n(no interval)"),
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_accuracy(
    report: Mapping[str, Any], path: str | os.PathLike[str], *, metric: str = "top1", title: str | None = None
) -> tuple[int, int]:
    """Draw accuracy against comparisons per prompt from a ``tourney simulate --format json``
    document (``{"reports": [{"bench", "rows": [...]}, ...]}``, or one report, e.g.
    :meth:`tourney.harness.Report.to_json`) to ``path``: one panel per bench, one curve per strategy
    over its budgets (x: mean comparisons per prompt), with the 95% interval (``ci95``) as error
    bars for ``top1``. A report with more than one round limit (``simulate --max-rounds 4,6,full``)
    gets one curve per strategy and round limit, labelled ``"adaptive, <= 4 rounds"`` /
    ``"adaptive, unlimited rounds"``: the Pareto view of accuracy, comparisons and latency.
    ``metric``: the row field on the y axis (``top1``, ``regret``, ``tau``, ...)."""
    path = _check_path(path)
    reports = list(report.get("reports") or []) if "reports" in report else [report]
    reports = [r for r in reports if isinstance(r, Mapping) and r.get("rows")]
    if not reports:
        raise InputError("the simulate document has no rows to plot (expected tourney simulate --format json)")
    if not any(metric in row for r in reports for row in r["rows"]):
        known = sorted(
            {
                k
                for r in reports
                for row in r["rows"]
                for k, v in row.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
        raise InputError(f"the simulate rows have no {metric!r} field; numeric fields: {', '.join(known)}")
    many = any(len({(row.get("strategy"), row.get("max_rounds")) for row in r["rows"]}) > 6 for r in reports)
    fig = _figure((6.4 + (3.0 if many else 0.0)) * len(reports), 4.4)
    axes = fig.subplots(1, len(reports), squeeze=False)
    for ax, rep in zip(axes[0], reports):
        by: dict[tuple[str, Any], list[Mapping[str, Any]]] = {}
        per_limit = len(rep.get("max_rounds") or [None]) > 1  # one curve per (strategy, round limit)
        for row in rep["rows"]:
            if _finite(row.get(metric)) and _finite(row.get("comparisons")):
                by.setdefault((str(row.get("strategy")), row.get("max_rounds") if per_limit else None), []).append(row)
        # with round limits: a strategy keeps one colour, a round limit one line style
        colours = {name: f"C{k % 10}" for k, name in enumerate(dict.fromkeys(name for name, _ in by))}
        limits = list(dict.fromkeys(limit for _, limit in by))
        for (name, limit), rs in by.items():
            label = _curve_label(name, limit, per_limit)
            style: dict[str, Any] = {"color": colours[name]}
            if per_limit:
                style["ls"] = _LINE_STYLES[limits.index(limit) % len(_LINE_STYLES)]
            rs = sorted(rs, key=lambda row: row["comparisons"])
            xs = [row["comparisons"] for row in rs]
            ys = [row[metric] for row in rs]
            ci: list[Any] = [row.get("ci95") for row in rs] if metric == "top1" else []
            if ci and all(isinstance(c, (list, tuple)) and len(c) == 2 and all(map(_finite, c)) for c in ci):
                err = [[max(0.0, y - c[0]) for y, c in zip(ys, ci)], [max(0.0, c[1] - y) for y, c in zip(ys, ci)]]
                ax.errorbar(xs, ys, yerr=err, marker="o", ms=4, capsize=3, label=label, **style)
            else:
                ax.plot(xs, ys, marker="o", ms=4, label=label, **style)
        ax.set_xlabel("comparisons per prompt (mean)")
        ax.set_ylabel(metric)
        if metric == "top1":
            ax.set_ylim(-0.02, 1.02)
        if by and max(x["comparisons"] for rs in by.values() for x in rs) > 50:
            from matplotlib.ticker import FormatStrFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))  # 30, not 3 x 10^1
            ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.grid(alpha=0.3)
        if len(by) > 6:  # many curves: the legend beside the panel, not over the points
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize=7, loc="best")
        bench = rep.get("bench") or {}
        ax.set_title(
            title
            or f"{metric} vs comparisons ({bench.get('kind', 'bench')}, n={bench.get('n', '?')}, "
            f"{bench.get('trials', '?')} trials)",
            fontsize=10,
        )
    fig.tight_layout()
    return _save(fig, path)


#: line styles of round limits, in the order a report lists them
_LINE_STYLES = ("-", "--", ":", "-.")


def _curve_label(strategy: str, limit: Any, per_limit: bool) -> str:
    """An accuracy curve's legend label: the strategy (shortened), and with ``per_limit`` its
    round limit ``limit`` (``<= R rounds``, or ``unlimited rounds`` for None)."""
    name = _short(strategy, 40)
    if not per_limit:
        return name
    return f"{name}, {'unlimited rounds' if limit is None else f'<= {limit} rounds'}"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
