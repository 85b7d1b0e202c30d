"""``tourney plot``: pictures of results (PNG or SVG by the extension of ``--out``).

    tourney plot OUT.jsonl --id Q --out bracket.png            a knockout bracket (tourney rank output)
    tourney plot board.json --out leaderboard.svg              a leaderboard (tourney rate --format json)
    tourney plot battles.json --out leaderboard.png            ... rated here from pairwise records
    tourney plot simulate.json --out accuracy.png              accuracy vs comparisons (tourney simulate --format json)

What the input is, is recognised from its content (``--kind`` forces it): a JSON document with
``leaderboard`` is a rate board, one with ``reports`` (or ``rows``) a simulate report, JSONL
lines with ``ranking`` and ``matches`` a rank output (``--id`` picks the prompt; it may be left
out when the file has one line); anything else is read as pairwise records, as ``tourney rate``
reads them, rated (``--method``, ``--l2``, ``--permutations``, ``--seed``) and drawn as a
leaderboard. The drawing is :mod:`tourney.plotting`; matplotlib is imported only here, when a
picture is asked for (the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["add_parser", "cmd_plot", "detect_kind"]

KINDS = ("bracket", "leaderboard", "accuracy")

_EPILOG = """\
examples:
  tourney rank --out out.jsonl && tourney plot out.jsonl --id capital-au --out bracket.png
  tourney rate battles.jsonl --format json > board.json && tourney plot board.json --out board.svg
  tourney plot prd/replay-gpt35.jsonl --method elo --permutations 1000 --out elo.png
  tourney simulate --format json > sim.json && tourney plot sim.json --out accuracy.png
"""


def _load_document(path: Path) -> Any:
    """The file as one JSON document, or None when it is not one (e.g. JSONL)."""
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def _rank_lines(path: Path) -> list[dict[str, Any]] | None:
    """The lines of a tourney rank output (dicts with ``ranking`` and ``matches``), or None."""
    out = []
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                return None
            if not isinstance(rec, dict) or "id" not in rec or "status" not in rec:
                return None
            out.append(rec)
    return out or None


def detect_kind(path: Path) -> tuple[str, Any]:
    """``(kind, data)``: ``bracket`` with the rank output lines, ``leaderboard`` with a board
    (or None: pairwise records to rate), ``accuracy`` with the simulate document."""
    doc = _load_document(path)
    if isinstance(doc, dict) and "leaderboard" in doc:
        return "leaderboard", doc
    if isinstance(doc, dict) and ("reports" in doc or "rows" in doc):
        return "accuracy", doc
    if isinstance(doc, dict) and "ranking" in doc and "matches" in doc:
        return "bracket", [doc]
    lines = _rank_lines(path) if not isinstance(doc, list) else None
    if lines is not None and any("ranking" in r or r.get("status") == "failed" for r in lines):
        return "bracket", lines
    return "leaderboard", None


def add_parser(sub: Any) -> None:
    """Add ``tourney plot`` to the command line."""
    p = sub.add_parser(
        "plot",
        help="draw a knockout bracket, a leaderboard with intervals, or accuracy-vs-comparisons curves",
        description="Write a picture (PNG or SVG, by the extension of --out) of a knockout bracket (a tourney "
        "rank output and --id), a leaderboard with 95%% intervals (a tourney rate --format json board, or "
        "pairwise records rated here), or accuracy against comparisons (a tourney simulate --format json report).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("input", help="a rank output (JSONL), a rate board or simulate report (JSON), or pairwise records")
    p.add_argument("--out", "-o", required=True, help="the picture to write: .png, .svg (or .pdf)")
    p.add_argument("--kind", choices=KINDS, default=None, help="what to draw (default: recognised from the input)")
    p.add_argument("--id", dest="prompt_id", default=None, help="bracket: the prompt's id")
    p.add_argument(
        "--input-file",
        dest="items",
        default=None,
        help="bracket: the run's input, to label candidates with their responses (default: from the "
        "output's meta file)",
    )
    p.add_argument("--metric", default="top1", help="accuracy: the simulate row field to plot (default top1)")
    p.add_argument("--top", type=int, default=None, help="leaderboard: only the first N rows")
    p.add_argument("--title", default=None, help="the picture's title (default: made from the data)")
    g = p.add_argument_group("rating pairwise records (as tourney rate)")
    g.add_argument("--method", choices=["bradley_terry", "elo"], default="bradley_terry")
    g.add_argument("--l2", type=float, default=0.0)
    g.add_argument("--bootstrap", type=int, default=0)
    g.add_argument("--permutations", type=int, default=0)
    g.add_argument("--seed", type=int, default=0)


def _bracket_result(lines: list[dict[str, Any]], prompt_id: str | None, path: str) -> dict[str, Any]:
    if prompt_id is None:
        if len(lines) == 1:
            return lines[0]
        ids = ", ".join(str(r["id"]) for r in lines[:8])
        raise InputError(
            f"{path} holds {len(lines)} prompts: pass --id (one of {ids}{', ...' if len(lines) > 8 else ''})"
        )
    for r in lines:
        if str(r["id"]) == prompt_id:
            return r
    raise InputError(f"no prompt with id {prompt_id!r} in {path}")


def _labels(args: argparse.Namespace, result: dict[str, Any]) -> list[str] | None:
    from ..outputs import find_item, read_meta, resolve_path

    meta = read_meta(args.input)
    items = args.items or resolve_path(meta.get("input") if meta else None, meta)
    item = find_item(items, str(result["id"]), None) if items else None
    responses = item.get("responses") if item else None
    return [str(r) for r in responses] if isinstance(responses, list) else None


def cmd_plot(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .. import plotting

    path = Path(args.input)
    if path.is_dir():
        raise IsADirectoryError(f"{args.input} is a directory; give a file")
    if not path.exists():
        raise FileNotFoundError(f"input file {args.input} does not exist")
    plotting._check_path(args.out)  # a bad extension fails before any work
    kind, data = detect_kind(path)
    if args.kind is not None and args.kind != kind:
        if args.kind == "leaderboard":
            data = None  # pairwise records, rated below
        else:
            raise InputError(f"{args.input} does not look like a {args.kind} input (it reads as {kind} data)")
        kind = args.kind
    if kind == "bracket":
        result = _bracket_result(data, args.prompt_id, args.input)
        if result.get("status") == "failed":
            raise InputError(f"prompt {result['id']!r} failed: it has no bracket")
        size = plotting.plot_bracket(result, args.out, labels=_labels(args, result), title=args.title)
    elif kind == "accuracy":
        size = plotting.plot_accuracy(data, args.out, metric=args.metric, title=args.title)
    else:
        if data is None:
            from ..leaderboard import rate, read_pairwise_path

            records = read_pairwise_path(args.input)
            for msg in records.problems:
                print(f"tourney plot: bad line {msg}", file=sys.stderr)
            data = rate(
                records,
                method=args.method,
                l2=args.l2,
                bootstrap=args.bootstrap,
                permutations=args.permutations,
                seed=args.seed,
            )
        size = plotting.plot_leaderboard(data, args.out, title=args.title, top=args.top)
    print(f"tourney plot: wrote {args.out} ({kind}, {size[0]}x{size[1]})", file=sys.stderr)
    return 0
