"""``tourney simulate``: compare strategies on a judge with a known truth.

    tourney simulate --strategies knockout,bradley_terry,adaptive --n 16 --trials 1000 --seed 0
                     [--budgets 15,30,60,120,240] [--max-rounds 4,6,full]
                     [--judge simulated[:opts] | replay:PATH] [--format table|json]

Prints one table per cell (budget x round limit): top-1 accuracy with a 95% interval, regret,
Kendall tau of the full ranking, comparisons (judge samples) and tokens used, sequential rounds
and makespan (critical-path latency in units of the median judge latency), the strategy's own CPU
per prompt, the share of budget-limited runs and the strategy's own mean ``p_best`` where it
reports one. Every trial runs through the real scheduler and judge; see :mod:`tourney.harness`
for the definitions (truth, budget and round semantics, intervals).

Exit status: 0; 1 when some strategy run raised (the others are still reported); 2 for a usage
error (an unknown strategy or judge, a bad budget, an unreadable replay set). A budget below what
a strategy can use is reported as "n/a" in its row; a replay set without a match a strategy asks
for is counted in "missing", never a crash.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "cmd_simulate", "default_budgets"]

_EPILOG = """\
examples:
  tourney simulate --strategies knockout,bradley_terry,adaptive --trials 200
  tourney simulate --n 8 --noise 1.0 --position-bias 0.2 --abstain-rate 0.05 --budgets 7,14,28,56
  tourney simulate --strategies "knockout:both_orders=true,votes=3;adaptive:threshold=0.99"
  tourney simulate --strategies pivot,v1_swiss,adaptive --budgets 32,48,64 --max-rounds 4,6,full
  tourney convert-prd ../shared/data/prd_vicuna80/vicuna80 prd/
  tourney simulate --judge replay:prd/replay-gpt35.jsonl --truth human:../shared/data/prd_vicuna80/vicuna80
  tourney simulate --judge replay:prd/ --truth consensus --format json > prd.json   (every reviewer in prd/)

--strategies: comma-separated specs; a key=value piece belongs to the spec before it; ';' also
separates. Default: knockout, knockout:both_orders=true, voting, elo, bradley_terry, swiss,
merge_sort, pivot, league, v1_swiss, adaptive.
--budgets: judge samples per prompt, 'full' = no cap. Default: (n-1) x 1, 2, 4, ... and n(n-1).
--max-rounds: sequential rounds per prompt, 'full' = no limit; every budget is run under every
limit (cells = budgets x round limits). Default: full.
"""


def default_budgets(n: int) -> list[int | None]:
    """``(n - 1) * 2^i`` below ``n (n - 1)``, then ``n (n - 1)`` (15, 30, 60, 120, 240 for n = 16);
    ``[None]`` (no cap) for a single candidate, which needs no comparison."""
    if n < 2:
        return [None]
    out: list[int | None] = []
    b = n - 1
    while b < n * (n - 1):
        out.append(b)
        b *= 2
    out.append(n * (n - 1))
    return out


def add_parser(subparsers: Any) -> None:
    """Add ``tourney simulate`` to the command line."""
    p = subparsers.add_parser(
        "simulate",
        help="compare strategies' accuracy per judge comparison on a judge with a known truth",
        description="Run strategies under comparison budgets over many seeded trials on the simulated judge "
        "(known latent qualities) or on replayed real judgements, and print accuracy, regret, Kendall tau, "
        "comparisons and tokens per budget.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("--strategies", default=None, help="strategy specs (see below)")
    p.add_argument("--n", type=int, default=16, help="candidates per trial, simulated judge (default 16)")
    p.add_argument("--trials", type=int, default=1000, help="trials (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    p.add_argument("--budgets", default=None, help="comma-separated judge samples per prompt, or 'full'")
    p.add_argument(
        "--max-rounds",
        default=None,
        metavar="R[,R...]",
        help="comma-separated round limits (sequential judge calls per prompt), or 'full' (default)",
    )
    p.add_argument(
        "--judge",
        default="simulated",
        help="simulated[:opts] (default) or replay:PATH (a replay JSONL, or a folder of replay-*.jsonl)",
    )
    g = p.add_argument_group("simulated judge (shortcuts for its options)")
    g.add_argument("--spread", type=float, default=None, help="sd of the latent qualities (default 1.0)")
    g.add_argument("--noise", type=float, default=None, help="judge noise (default: calibrated, 0.5 logistic)")
    g.add_argument("--position-bias", type=float, default=None, help="P(first wins) - 0.5 at equal quality (0.1)")
    g.add_argument("--abstain-rate", type=float, default=None, help="probability a sample abstains (0)")
    g.add_argument("--tie-rate", type=float, default=None, help="probability a sample is a tie (0)")
    g.add_argument(
        "--latency-sigma",
        type=float,
        default=None,
        help="lognormal sigma of a judge call's latency (default 1.0); makespan is in units of its median",
    )
    g.add_argument("--model", default=None, help="bradley_terry (default) or thurstone")
    r = p.add_argument_group("replay")
    r.add_argument(
        "--truth",
        default="consensus",
        help="human:ROOT (PRD human labels), consensus (the other replay files beside it, default), self, or scores",
    )
    r.add_argument("--prompts", default=None, help="the candidates (default: prompts.jsonl beside the replay file)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: the CPU count, at most 8)")
    p.add_argument("--resample-abstentions", type=int, default=2, help="as in tourney rank (default 2)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format (default table)")
    p.add_argument("--out", default=None, help="also write the output to this file")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")


def _benches(args: argparse.Namespace) -> list[Any]:
    from ..errors import SpecError
    from ..harness import ReplayBench, SimulatedBench
    from ..registry import parse_spec

    spec = parse_spec(args.judge)
    if spec.name == "simulated":
        opts = dict(spec.options)
        for key in ("spread", "noise", "position_bias", "abstain_rate", "tie_rate", "model", "latency_sigma"):
            v = getattr(args, key)
            if v is not None:
                opts[key] = v
        return [SimulatedBench(args.n, args.trials, args.seed, "simulated", opts)]
    if spec.name == "replay":
        if not spec.arg:
            raise SpecError("--judge replay needs a path: replay:FILE or replay:FOLDER")
        path = Path(spec.arg)
        files = sorted(path.glob("replay-*.jsonl")) if path.is_dir() else [path]
        if not files:
            raise SpecError(f"{path} holds no replay-*.jsonl file")
        prompts = args.prompts or (str(path / "prompts.jsonl") if path.is_dir() else None)
        return [ReplayBench(f, args.trials, args.seed, truth=args.truth, prompts=prompts) for f in files]
    raise SpecError(f"simulate runs the simulated or a replay judge, not {spec.name!r}")


def cmd_simulate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..errors import SpecError
    from ..harness import (
        DEFAULT_STRATEGIES,
        default_workers,
        format_table,
        parse_budgets,
        parse_rounds,
        parse_strategies,
        simulate,
    )
    from ..strategy import build_strategy

    strategies = parse_strategies(args.strategies) if args.strategies else list(DEFAULT_STRATEGIES)
    for s in strategies:  # fail before any work, naming the known strategies
        build_strategy(s)
    rounds = parse_rounds(args.max_rounds) if args.max_rounds else [None]
    if args.workers is not None and args.workers < 1:
        raise SpecError(f"--workers must be >= 1, got {args.workers}")
    if args.resample_abstentions < 0:
        raise SpecError(f"--resample-abstentions must be >= 0, got {args.resample_abstentions}")
    benches = _benches(args)
    workers = args.workers if args.workers is not None else default_workers()
    show = not args.quiet and sys.stderr.isatty()
    reports = []
    for bench in benches:
        budgets = parse_budgets(args.budgets) if args.budgets else default_budgets(bench.n)

        def progress(done: int, total: int, name: str = getattr(bench, "path", "simulated")) -> None:
            if show:
                print(f"\rtourney simulate: {Path(str(name)).name}: {done}/{total} trials", end="", file=sys.stderr)

        reports.append(
            simulate(
                strategies,
                bench,
                budgets,
                rounds=rounds,
                workers=workers,
                resample_abstentions=args.resample_abstentions,
                progress=progress,
            )
        )
        if show:
            print(file=sys.stderr)
    if args.format == "json":
        text = (
            json.dumps({"command": shlex.join(["tourney", *argv]), "reports": [r.to_json() for r in reports]}, indent=1)
            + "\n"
        )
    else:
        text = "\n\n".join(format_table(r) for r in reports) + "\n"
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    failed = sum(row.failed for r in reports for row in r.rows)
    if not args.quiet:
        total = sum(r.runtime_s for r in reports)
        print(
            f"tourney simulate: {len(strategies)} strategies x {len(reports[0].budgets)} budgets x "
            f"{len(reports[0].rounds)} round limits, "
            f"{sum(len(b) for b in benches)} trials in {total:.1f}s"
            + (f"; {failed} strategy runs failed (see the notes column)" if failed else ""),
            file=sys.stderr,
        )
    return 1 if failed else 0
