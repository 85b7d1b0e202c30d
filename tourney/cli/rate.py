"""``tourney rate``: a leaderboard (Bradley-Terry or online Elo) from pairwise judgements.

    tourney rate JUDGEMENTS.jsonl --method bradley_terry|elo [--ties half|drop] [--l2 X]
                 [--bootstrap R] [--seed S] [--format table|json|csv]

The front end of :mod:`tourney.leaderboard` (the record formats, the methods and their
intervals are documented there): this module reads the file, reports bad lines on stderr with
their line numbers, and prints the leaderboard as a table, JSON or CSV.

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
from typing import Any, Sequence

from ..errors import InputError

__all__ = ["add_parser", "cmd_rate", "format_csv", "format_table"]

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


#: the leaderboard's wording of a remedy -> the same remedy as this command's flags
_FLAG_WORDS = (
    ("Pass l2 > 0 (e.g. l2=0.01)", "Pass --l2 0.01 (or larger)"),
    ("pass l2=0.01 or larger", "pass --l2 0.01 or larger"),
    ("ties='drop'", "--ties drop"),
)


def format_table(board: dict[str, Any]) -> str:
    """The leaderboard as an aligned text table with a footer (scale, interval, position)."""
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


def format_csv(board: dict[str, Any]) -> str:
    """The leaderboard rows as CSV (``se`` and ``component`` columns where any row has them)."""
    buf = io.StringIO()
    cols = ["rank", "model", "rating", "ci_low", "ci_high", "comparisons", "wins", "losses", "ties"]
    cols += [c for c in ("se", "component") if any(c in r for r in board["leaderboard"])]
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
    from pathlib import Path

    from ..leaderboard import rate, read_pairwise

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
    try:
        board = rate(data, method=args.method, ties=args.ties, l2=args.l2, position=args.position,
                     k=args.k, bootstrap=args.bootstrap, seed=args.seed)
    except InputError as exc:
        raise _in_flag_words(exc) from None
    if board["components"] > 1:
        print(f"tourney rate: the comparison graph has {board['components']} disconnected components; "
              "ratings are comparable only within a component (see the component column)", file=sys.stderr)
    if board.get("converged") is False:
        print("tourney rate: the Bradley-Terry fit did not converge; try --l2 0.01", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "csv":
        text = format_csv(board)
    else:
        text = format_table(board)
    sys.stdout.write(text)
    sys.stdout.flush()
    if data.problems:
        print(f"tourney rate: {len(data.problems)} bad line(s) skipped; rated the other {board['records']} records",
              file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``tourney rate`` to the command line."""
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
