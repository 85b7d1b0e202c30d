"""``tourney rank``: rank each prompt's responses with a judge and a strategy.

    tourney rank INPUT [--judge SPEC] [--strategy SPEC] [--out OUT.jsonl|OUT.parquet] [--seed S] ...

One output row per input row, in input order; ``OUT.meta.json`` records the exact command,
version, seed, specs and totals. The work is :func:`tourney.runner.rank_file`; this module
opens the input (:func:`tourney.inputs.open_input`) and the output
(:class:`tourney.outputs.ResultWriter` over an :class:`~tourney.outputs.OutputFile`: rows go to
``OUT.partial``, renamed to ``OUT`` when the run is complete), turns the flags into keywords,
prints the summary and chooses the exit code (:data:`~tourney.cli.common.EXIT_CODES`: 0 all ok,
1 some item not ok; 2 for a usage or write error or an unusable judge; 3 when the run's health
check failed; 130/143 after SIGINT/SIGTERM, with the partial output kept and the command that
resumes printed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .common import (
    EXIT_CODES,
    add_judging_options,
    default_store,
    input_options,
    print_summary,
    report_stop,
    run_options,
    sigterm_as_interrupt,
    store_path,
)

__all__ = ["add_parser", "cmd_rank"]

_EPILOG = """\
examples:
  tourney rank prompts.jsonl                                   simulated judge, knockout, stdout
  tourney rank prompts.jsonl --out ranked.jsonl --seed 7
  tourney rank data.parquet --out ranked.parquet --prompt-field question --responses-field answers
  tourney rank gsm8k.jsonl --prompt-field question --responses-field a.solution,b.solution,c.solution
  tourney rank prompts.jsonl --strategy knockout:votes=3,both_orders=true
  tourney rank vicuna.jsonl --judge replay:gpt35.jsonl
  tourney rank prompts.jsonl --judge vllm:Reward-Reasoning/RRM-32B --judge-opt tensor_parallel_size=2
  tourney rank prompts.jsonl --judge openai:http://127.0.0.1:8000/v1 --judge-opt model=judge
  tourney rank prompts.jsonl --max-comparisons 20 --token-budget 2000000   budgets: per prompt, per run

input row:   {"id": "q1", "prompt": "...", "responses": ["...", "..."], "scores": [optional], other fields...}
output row:  {"id", "status", "best", "best_response", "ranking", "scores", "comparisons", ..., other fields}
inputs:      .jsonl/.json (plain, .gz, .zst), .parquet, a datasets save_to_disk folder, '-' (stdin)
status:      ok, coin_flip, partial, failed (README: Use)

"""


def add_parser(sub: Any) -> None:
    """Add ``tourney rank`` to the command line."""
    r = sub.add_parser(
        "rank",
        help="rank each prompt's responses and pick the best",
        description="Rank each prompt's candidate responses with a judge and a strategy. "
        "One output row per input row, in input order.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG + EXIT_CODES,
    )
    r.add_argument(
        "input",
        nargs="?",
        default=None,
        help="input: JSONL, JSON, parquet or a datasets folder ('-' for stdin); default: the bundled example",
    )
    r.add_argument(
        "--out",
        "-o",
        default=None,
        help="output file: .parquet for parquet, else JSONL (default: JSONL on stdout). Written to "
        "OUT.partial and renamed when the run is complete",
    )
    r.add_argument(
        "--output-format",
        choices=("jsonl", "parquet"),
        default=None,
        help="output format (default: from --out's extension)",
    )
    add_judging_options(r)


def cmd_rank(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..errors import TourneyError
    from ..inputs import open_input
    from ..outputs import OutputFile, ResultWriter, output_format
    from ..runner import EXAMPLE, rank_file

    opts = run_options(args, argv)
    fmt = output_format(args.out, args.output_format)
    src = open_input(EXAMPLE if args.input is None else args.input, **input_options(args))  # checked before any work
    out = ResultWriter(OutputFile(args.out), fmt, src.extra_schema)
    store = store_path(args, default_store(args.out))
    meta: dict[str, Any] = {}
    with sigterm_as_interrupt() as signals:
        try:
            report = rank_file(src, lambda item, res: out.write(res), store=store, on_meta=meta.update, **opts)
            out.commit({**meta, "output": {"path": args.out, "format": fmt, "rows": out.rows}})
        except BaseException as exc:
            partial = {
                **meta,
                "complete": False,
                "output": {"path": out.out.tmp, "format": fmt, "rows": out.rows},
                "resume": opts["command"],
            }
            kept = out.abort(partial if meta else None)
            started = bool(meta) and isinstance(exc, (TourneyError, OSError))
            if started or isinstance(exc, KeyboardInterrupt):  # say what was saved and how to resume
                return report_stop(
                    exc,
                    signals,
                    kept,
                    out.out.rows,
                    store,
                    opts["command"],
                    target=None if out.out.tmp else out.out.name,
                )
            raise
    for warning in out.warnings:
        print(f"tourney: warning: {warning}", file=sys.stderr)
    return print_summary(report, args.quiet)
