"""``tourney rate``: a leaderboard (Bradley-Terry or online Elo) from pairwise judgements.

    tourney rate FILE|DIR [FILE|DIR ...] [--input-format auto|arena|alpaca_eval|arena_hard|tourney]
                 [--method bradley_terry|elo] [--permutations P] [--ties half|drop] [--l2 X]
                 [--bootstrap R] [--seed S] [--anchor MODEL=RATING] [--baseline MODEL]
                 [--format table|json|csv|markdown]

The front end of :mod:`tourney.leaderboard` (the record formats, the methods and their
intervals are documented there): this module reads the files (JSONL or JSON arrays, recognised
from the content; a directory is every ``*.json``/``*.jsonl`` in it), reports bad records on
stderr with their ``file:line``, and prints the leaderboard as a table, JSON, CSV or Markdown.

Bad input never loses the good records: a malformed line, an unknown winner label, a record
that fits no format, bytes that are not UTF-8 or a missing field is reported on stderr with its
position, the rest is rated, and the exit status is 1. No valid record, or fewer than two
models, is an error (exit 2).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import InputError

__all__ = ["add_parser", "cmd_rate", "format_csv", "format_markdown", "format_table"]

_EPILOG = """\
examples:
  tourney rate battles.jsonl                                  Bradley-Terry, Fisher 95% CI, table
  tourney rate clean_battle_20240814_public.json --anchor gpt-4-0314=1000 --l2 0.01
  tourney rate battles.jsonl --method elo --k 4               online Elo in timestamp order
  tourney rate prd/replay-gpt35.jsonl --method elo --permutations 10000 --seed 0
                                                              mean Elo over 10,000 random orderings
  tourney rate results/*/weighted_alpaca_eval_gpt4_turbo/annotations.json --format markdown
  tourney rate data/arena-hard-v2.0/model_judgment/gpt-4.1/   every judgment file of a judge
  tourney rate battles.jsonl --bootstrap 200 --seed 1 --format json
  tourney rate judgements.jsonl --position --ties drop       with the first-shown advantage

input formats (recognised per record; --input-format forces one); files are JSONL or a JSON array:
  arena        {"model_a": "x", "model_b": "y", "winner": "model_a|model_b|tie|tie (bothbad)", "tstamp": 1.0}
               (or winner_model_a / winner_model_b / winner_tie as 0/1)
  alpaca_eval  {"generator_1": "baseline", "generator_2": "x", "preference": 1.0-2.0 (1.5 or 0: draw), ...}
  arena_hard   {"model": "x", "baseline": "y", "games": [{"score": "A>>B|A>B|A=B|B>A|B>>A"}, {...}]}
               (game 1 shows the baseline as A, game 2 the model; A>>B counts --arena-hard-weight wins)
  tourney      {"prompt": "...", "first": "...", "second": "...", "verdict": "A|B|tie|abstain",
                "first_model": "x", "second_model": "y"}   (names optional: else the texts)
"""


#: the leaderboard's wording of a remedy -> the same remedy as this command's flags
_FLAG_WORDS = (
    ("Pass l2 > 0 (e.g. l2=0.01)", "Pass --l2 0.01 (or larger)"),
    ("pass l2=0.01 or larger", "pass --l2 0.01 or larger"),
    ("ties='drop'", "--ties drop"),
    ("method='elo'", "--method elo"),
    ("pass either bootstrap or permutations", "pass either --bootstrap or --permutations"),
)


def _cells(r: dict[str, Any], comp: bool, wr: bool, *, ci_fmt: str, name_max: int | None) -> list[str]:
    ci = "-" if r["ci_low"] is None else ci_fmt.format(r["ci_low"], r["ci_high"])
    name = " ".join(r["model"].split())
    if name_max is not None and len(name) > name_max:
        name = name[: name_max - 3] + "..."
    cells = [
        str(r["rank"]),
        name,
        f"{r['rating']:.1f}",
        ci,
        str(r["comparisons"]),
        f"{r['wins']}-{r['losses']}-{r['ties']}",
    ]
    if comp:
        cells.append(str(r["component"]))
    if wr:
        cells.append("-" if r.get("win_rate") is None else f"{r['win_rate']:.1f}")
    return cells


def _head(board: dict[str, Any]) -> tuple[list[str], bool, bool]:
    comp = board["components"] > 1
    wr = "baseline" in board
    head = ["rank", "model", "rating", "95% CI", "comparisons", "W-L-T"] + (["component"] if comp else [])
    if wr:
        head.append(f"win rate vs {board['baseline']}")
    return head, comp, wr


def _footer(board: dict[str, Any]) -> str:
    foot = f"{board['records']} comparisons; {board['scale']}"
    if board.get("interval"):
        foot += f"; CI: {board['interval']}"
    if board.get("anchor"):
        foot += f"; anchored: {board['anchor']['model']} = {board['anchor']['rating']:g}"
    if board.get("baseline"):
        foot += (
            f"; win rate: percent of the score against {board['baseline']} (ties and soft outcomes count their score)"
        )
    if board.get("input_formats"):
        foot += "; read: " + ", ".join(f"{v} {k} records" for k, v in board["input_formats"].items())
    if board.get("position"):
        p = board["position"]
        foot += f"\nfirst-shown advantage: {p['coef']:+.3f} log-odds (se {p['se']:.3f}), {p['elo']:+.1f} Elo points"
    return foot


def format_table(board: dict[str, Any]) -> str:
    """The leaderboard as an aligned text table with a footer (scale, interval, position)."""
    head, comp, wr = _head(board)
    body = [_cells(r, comp, wr, ci_fmt="[{:.1f}, {:.1f}]", name_max=40) for r in board["leaderboard"]]
    widths = [max(len(x[c]) for x in [head, *body]) for c in range(len(head))]
    right = {0, 2, 4} | ({len(head) - 1} if wr else set())

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    lines = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)]
    return "\n".join(lines + [_footer(board)]) + "\n"


def format_markdown(board: dict[str, Any]) -> str:
    """The leaderboard as a GitHub-flavoured Markdown table (``|`` in names escaped), the footer
    in italics below it, for pasting into a README or a paper's notes."""
    head, comp, wr = _head(board)
    esc = lambda c: c.replace("\\", "\\\\").replace("|", "\\|")  # noqa: E731
    right = {0, 2, 4} | ({len(head) - 1} if wr else set())
    lines = [
        "| " + " | ".join(map(esc, head)) + " |",
        "|" + "|".join("---:" if k in right else "---" for k in range(len(head))) + "|",
    ]
    for r in board["leaderboard"]:
        lines.append("| " + " | ".join(map(esc, _cells(r, comp, wr, ci_fmt="[{:.1f}, {:.1f}]", name_max=None))) + " |")
    foot = "\n\n".join(f"*{esc(x)}*" for x in _footer(board).split("\n"))
    return "\n".join(lines) + "\n\n" + foot + "\n"


def format_csv(board: dict[str, Any]) -> str:
    """The leaderboard rows as CSV (``se``, ``component`` and ``win_rate`` columns where any row
    has them)."""
    buf = io.StringIO()
    cols = ["rank", "model", "rating", "ci_low", "ci_high", "comparisons", "wins", "losses", "ties"]
    cols += [c for c in ("se", "component", "win_rate") if any(c in r for r in board["leaderboard"])]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in board["leaderboard"]:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    return buf.getvalue()


def _in_flag_words(exc: InputError) -> InputError:
    text = str(exc)
    for api, flag in _FLAG_WORDS:
        text = text.replace(api, flag)
    return InputError(text)


def cmd_rate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..leaderboard import parse_anchor, rate, read_pairwise_path

    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.permutations < 0:
        raise InputError(f"--permutations must be >= 0, got {args.permutations}")
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise InputError(f"--l2 must be >= 0, got {args.l2}")
    if args.k is not None and not args.k > 0:
        raise InputError(f"--k must be > 0, got {args.k}")
    anchor = parse_anchor(args.anchor) if args.anchor is not None else None
    data = None
    for path in args.input:
        data = read_pairwise_path(
            path,
            input_format=args.input_format,
            arena_hard_weight=args.arena_hard_weight,
            baseline=args.baseline,
            data=data,
        )
    assert data is not None
    for msg in data.problems:
        print(f"tourney rate: bad line {msg}", file=sys.stderr)
    for msg in data.notes:
        print(f"tourney rate: {msg}", file=sys.stderr)
    try:
        board = rate(
            data,
            method=args.method,
            ties=args.ties,
            l2=args.l2,
            position=args.position,
            k=args.k,
            bootstrap=args.bootstrap,
            permutations=args.permutations,
            seed=args.seed,
            anchor=anchor,
            baseline=args.baseline,
        )
    except InputError as exc:
        raise _in_flag_words(exc) from None
    if board["components"] > 1:
        print(
            f"tourney rate: the comparison graph has {board['components']} disconnected components; "
            "ratings are comparable only within a component (see the component column)",
            file=sys.stderr,
        )
    if board.get("converged") is False:
        print("tourney rate: the Bradley-Terry fit did not converge; try --l2 0.01", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "csv":
        text = format_csv(board)
    elif args.format == "markdown":
        text = format_markdown(board)
    else:
        text = format_table(board)
    sys.stdout.write(text)
    sys.stdout.flush()
    if data.problems:
        print(
            f"tourney rate: {len(data.problems)} bad line(s) skipped; rated the other {board['records']} records",
            file=sys.stderr,
        )
        return 1
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``tourney rate`` to the command line."""
    p = subparsers.add_parser(
        "rate",
        help="rate models from pairwise judgements (Bradley-Terry or Elo leaderboard)",
        description="Read pairwise judgements (Chatbot Arena battles, AlpacaEval annotations, Arena-Hard "
        "judgments, tourney judgement logs; JSONL or JSON arrays) and print a leaderboard: rating, 95% CI, "
        "number of comparisons, win-loss-tie record, rank.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument(
        "input",
        nargs="+",
        help="files of pairwise records (JSONL or a JSON array), directories of them, or '-' for stdin",
    )
    p.add_argument(
        "--input-format",
        choices=["auto", "arena", "alpaca_eval", "arena_hard", "tourney"],
        default="auto",
        help="record format (default auto: recognised per record from its keys)",
    )
    p.add_argument(
        "--method",
        choices=["bradley_terry", "elo"],
        default="bradley_terry",
        help="bradley_terry: order-free maximum likelihood (default); elo: online, timestamp order "
        "(or random orders with --permutations)",
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=0,
        metavar="P",
        help="elo: mean and 95%% percentile interval over P random orderings of the records "
        "(seeded by --seed), as QLoRA's and RRM's Elo tables (default 0: timestamp order)",
    )
    p.add_argument(
        "--ties",
        choices=["half", "drop"],
        default="half",
        help="a tie counts half a win each way (default) or is dropped",
    )
    p.add_argument(
        "--l2",
        type=float,
        default=0.0,
        help="Bradley-Terry ridge penalty l2/2*sum(s^2); needed when a model never lost or never won, "
        "or the graph is disconnected (default 0: plain maximum likelihood)",
    )
    p.add_argument(
        "--position", action="store_true", help="Bradley-Terry: also fit the first-shown (model_a) advantage"
    )
    p.add_argument(
        "--k", type=float, default=None, help="Elo K-factor (default 32; Chatbot Arena used 4 for its large logs)"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="R",
        help="R bootstrap rounds for the 95%% interval (default 0: Fisher for Bradley-Terry, none for Elo)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap or the orderings (default 0)")
    p.add_argument(
        "--anchor",
        default=None,
        metavar="MODEL=RATING",
        help="shift every rating so that MODEL has RATING (Arena-Hard anchors gpt-4-0314=1000)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="MODEL",
        help="add each model's win rate against MODEL (default: the baseline AlpacaEval or Arena-Hard "
        "records name); also the baseline of Arena-Hard v0.1 records, which name none (else gpt-4-0314)",
    )
    p.add_argument(
        "--arena-hard-weight",
        type=int,
        default=3,
        metavar="W",
        help="wins a 'significantly better' Arena-Hard label (A>>B, B>>A) counts (default 3, "
        "as Arena-Hard's show_result.py)",
    )
    p.add_argument(
        "--format", choices=["table", "json", "csv", "markdown"], default="table", help="output format (default table)"
    )
