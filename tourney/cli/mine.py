"""``tourney mine-pairs``: rank each prompt's responses and write DPO pairs (TRL's format)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Any, Sequence

from .common import (
    add_input_options,
    add_judging_options,
    default_store,
    input_options,
    print_summary,
    report_stop,
    run_options,
    sigterm_as_interrupt,
    store_path,
)

__all__ = ["add_parser", "cmd_mine"]

_EPILOG = """\
examples:
  tourney mine-pairs data.jsonl --judge vllm:Reward-Reasoning/RRM-32B --strategy knockout:both_orders=true \\
      --out pairs.jsonl --policy best_each --min-confidence 0.8
  tourney mine-pairs data.jsonl --ranked ranked.jsonl --out pairs.jsonl      # reuse an earlier 'tourney rank' output

pair line: {"prompt": ..., "chosen": ..., "rejected": ..., "tourney": {"margin", "confidence", "direct",
            "both_orders", "orders_agree", "votes", "chosen_rank", "rejected_rank", ...}}
"""


def add_parser(sub: Any) -> None:
    """Add ``tourney mine-pairs`` to the command line."""
    p = sub.add_parser(
        "mine-pairs",
        help="rank responses and write DPO preference pairs (TRL format)",
        description="Rank each prompt's responses (or read an earlier 'tourney rank' output with --ranked) and "
        "write DPO pairs in the format TRL's DPO trainer reads: {prompt, chosen, rejected}, as strings or, for "
        "chat prompts, as conversations; each pair carries its evidence under 'tourney'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("input", help="the input (JSONL, JSON, parquet or a datasets folder): prompts and responses")
    p.add_argument("--out", "-o", required=True, help="pairs JSONL to write (written to OUT.partial, renamed when complete)")
    p.add_argument("--ranked", default=None, metavar="RANKED",
                   help="an earlier 'tourney rank' output for INPUT (JSONL or parquet): mine from it instead of judging")
    p.add_argument("--policy", default="best_worst", choices=["best_worst", "best_each", "margin"],
                   help="best_worst: one pair per prompt; best_each: best vs every other; margin: every "
                   "ordered pair with margin >= --min-margin (default best_worst)")
    p.add_argument("--min-margin", type=float, default=0.0, help="minimum score margin (strategy's scale)")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="minimum P(chosen better) (from the strategy's uncertainty or the direct votes)")
    p.add_argument("--require-consistent", action="store_true",
                   help="keep only pairs judged in both orders with both orders agreeing")
    p.add_argument("--conversational", action="store_true",
                   help="write conversational pairs even for plain-text prompts")
    add_input_options(p)
    add_judging_options(p)


def cmd_mine(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..errors import InputError, TourneyError
    from ..inputs import open_input
    from ..items import Item
    from ..mining import PairPolicy, mine_pairs
    from ..outputs import OutputFile, read_results
    from ..runner import rank_file

    policy = PairPolicy(args.policy, args.min_margin, args.min_confidence, args.require_consistent,
                        True if args.conversational else None)
    opts = run_options(args, argv)
    src = open_input(args.input, **input_options(args))
    out = OutputFile(args.out)
    counts = {"prompts": 0, "pairs": 0}

    def sink(item: Item | None, result: Any) -> None:
        res = result if isinstance(result, dict) else result.to_json()
        counts["prompts"] += 1
        if item is None:
            return
        for pair in mine_pairs(item, res, policy):
            if pair["chosen"] == pair["rejected"]:  # identical responses (merged duplicates) make no preference
                continue
            out.write((json.dumps(pair, ensure_ascii=False) + "\n").encode("utf-8"))
            counts["pairs"] += 1

    store = None if args.ranked else store_path(args, default_store(args.out))
    meta: dict[str, Any] = {}
    report = None
    with sigterm_as_interrupt() as signals:
        try:
            if args.ranked:
                code = 0
                ranked = _ranked_rows(args.ranked, read_results)
                pairs = itertools.zip_longest(src.items(), ranked)
                for no, (item, res) in enumerate(pairs, 1):
                    if item is None or res is None:
                        raise InputError(f"{args.ranked} has {'more' if item is None else 'fewer'} results than "
                                         f"{args.input} has items: not the output of this input")
                    if not isinstance(res, dict):
                        raise InputError(f"{args.ranked} result {no}: expected a JSON object")
                    if isinstance(item, InputError):
                        code = 1
                        print(f"tourney: {item}", file=sys.stderr)
                        continue
                    if res.get("id") != item.id or (res.get("status") != "failed"
                                                    and len(res.get("ranking", ())) != item.n):
                        raise InputError(f"{args.ranked} result {no} is for item {res.get('id')!r}, "
                                         f"the input's item {no} is {item.id!r}: not the output of this input")
                    sink(item, res)
                out.commit(None)
            else:
                report = rank_file(src, sink, store=store, on_meta=meta.update, **opts)
                out.commit({**meta, "output": {"path": args.out, "format": "jsonl", "rows": out.rows}})
        except BaseException as exc:
            partial = {**meta, "complete": False, "output": {"path": out.tmp, "format": "jsonl", "rows": out.rows},
                       "resume": opts["command"]}
            kept = out.abort(partial if meta else None)
            if (meta and isinstance(exc, (TourneyError, OSError))) or isinstance(exc, KeyboardInterrupt):
                return report_stop(exc, signals, kept, out.rows, store, opts["command"], what="pairs",
                                   target=None if out.tmp else out.name)
            raise
    if report is not None:
        code = print_summary(report, args.quiet)
    print(f"tourney: {counts['pairs']} pairs from {counts['prompts']} prompts ({args.policy}) -> {args.out}",
          file=sys.stderr)
    return code


def _ranked_rows(path: str, read: Any) -> Any:
    """The rows of an earlier output; a row that is not JSON is an input error naming it."""
    from ..errors import InputError

    no = 0
    try:
        for no, row in enumerate(read(path), 1):
            yield row
    except ValueError as exc:
        raise InputError(f"{path} result {no + 1}: malformed JSON ({exc})") from None
