"""``tourney rank``: rank each prompt's responses with a judge and a strategy.

    tourney rank INPUT.jsonl [--judge SPEC] [--strategy SPEC] [--out OUT.jsonl] [--seed S] ...

One output line per input line, in input order; ``OUT.meta.json`` records the exact command,
version, seed, specs, totals and the run's health. The work is :func:`tourney.runner.rank_file`;
this module turns the flags into its keywords, writes the lines, prints the summary and chooses
the exit code (:data:`~tourney.cli.common.EXIT_CODES`: 0 all ok, 1 some item not ok, 2 usage
error or an unusable judge, 3 the run's health check failed).
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from .common import EXIT_CODES, LazyOutput, add_judging_options, print_summary, run_options, store_path

__all__ = ["add_parser", "cmd_rank"]

_EPILOG = """\
examples:
  tourney rank prompts.jsonl                                   simulated judge, knockout, stdout
  tourney rank prompts.jsonl --out ranked.jsonl --seed 7
  tourney rank prompts.jsonl --strategy knockout:votes=3,both_orders=true
  tourney rank vicuna.jsonl --judge replay:gpt35.jsonl
  tourney rank prompts.jsonl --judge vllm:Reward-Reasoning/RRM-32B --judge-opt tensor_parallel_size=2
  tourney rank prompts.jsonl --judge openai:http://127.0.0.1:8000/v1 --judge-opt model=judge
  tourney rank prompts.jsonl --max-comparisons 20 --token-budget 2000000   budgets: per prompt, per run

input line:  {"id": "q1", "prompt": "...", "responses": ["...", "..."], "scores": [optional]}
output line: {"id", "status", "best", "best_response", "ranking", "scores", "comparisons", ...}
status:      ok, coin_flip, partial, failed (README: Use)

"""


def add_parser(sub: Any) -> None:
    """Add ``tourney rank`` to the command line."""
    r = sub.add_parser(
        "rank",
        help="rank each prompt's responses and pick the best",
        description="Rank each prompt's candidate responses with a judge and a strategy. "
        "One output line per input line, in input order.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG + EXIT_CODES,
    )
    r.add_argument("input", nargs="?", default=None,
                   help="JSONL input ('-' for stdin); default: the bundled example")
    r.add_argument("--out", "-o", default=None, help="output JSONL (default: stdout)")
    add_judging_options(r)


def cmd_rank(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..items import dumps
    from ..runner import rank_file

    out = LazyOutput(args.out)
    ok = False
    try:
        report = rank_file(
            args.input,
            lambda item, res: out.write(dumps(res) + "\n"),
            store=store_path(args, args.out + ".judgements.sqlite" if args.out else None),
            meta_path=args.out + ".meta.json" if args.out else None,
            **run_options(args, argv),
        )
        code = print_summary(report, args.quiet)
        ok = report.stopped is None or report.delivered > 0  # stopped at once: no empty file over an old one
        return code
    finally:
        out.close(create=ok)
