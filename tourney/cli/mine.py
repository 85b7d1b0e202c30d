"""``tourney mine-pairs``: rank each prompt's responses and write DPO pairs (TRL's format)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Any, Sequence

from .common import LazyOutput, add_judging_options, print_summary, run_options, store_path

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
    p.add_argument("input", help="the input JSONL (prompts and responses)")
    p.add_argument("--out", "-o", required=True, help="pairs JSONL to write")
    p.add_argument("--ranked", default=None, metavar="RANKED.jsonl",
                   help="an earlier 'tourney rank' output for INPUT: mine from it instead of judging")
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
    add_judging_options(p)


def cmd_mine(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..items import InputError, Item, read_items
    from ..mining import PairPolicy, mine_pairs
    from ..runner import rank_file

    policy = PairPolicy(args.policy, args.min_margin, args.min_confidence, args.require_consistent,
                        True if args.conversational else None)
    out = LazyOutput(args.out)
    counts = {"prompts": 0, "pairs": 0}

    def sink(item: Item | None, result: Any) -> None:
        res = result if isinstance(result, dict) else result.to_json()
        counts["prompts"] += 1
        if item is None:
            return
        for pair in mine_pairs(item, res, policy):
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
            counts["pairs"] += 1

    ok = False
    try:
        if args.ranked:
            code = 0
            with open(args.input, encoding="utf-8", errors="replace") as fi, \
                    open(args.ranked, encoding="utf-8", errors="replace") as fr:
                ranked_lines = (line for line in fr if line.strip())
                pairs = itertools.zip_longest(read_items(fi, args.input), ranked_lines)
                for no, (item, line) in enumerate(pairs, 1):
                    if item is None or line is None:
                        raise InputError(f"{args.ranked} has {'more' if item is None else 'fewer'} results than "
                                         f"{args.input} has items: not the output of this input")
                    try:
                        res = json.loads(line)
                    except ValueError as exc:
                        raise InputError(f"{args.ranked} result {no}: malformed JSON ({exc})") from exc
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
        else:
            report = rank_file(args.input, sink, store=store_path(args, args.out + ".judgements.sqlite"),
                               meta_path=args.out + ".meta.json", **run_options(args, argv))
            code = print_summary(report, args.quiet)
        ok = True
    finally:
        out.close(create=ok)
    print(f"tourney: {counts['pairs']} pairs from {counts['prompts']} prompts ({args.policy}) -> {args.out}",
          file=sys.stderr)
    return code
