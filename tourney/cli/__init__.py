"""The ``tourney`` command line.

    tourney rank INPUT.jsonl [--judge SPEC] [--strategy SPEC] [--out OUT.jsonl] [--seed S] ...
    tourney judges            list judges and their options
    tourney strategies        list strategies and their options

Run ``tourney COMMAND --help`` for each command's options. Exit status: 0 when every item
was ranked cleanly, 1 when any item failed or had judge errors (the others are still
written), 2 for a usage error (unknown judge or strategy, unreadable input).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

from . import __version__
from .errors import TourneyError
from .executors import add_executor_options

EXAMPLE = Path(__file__).resolve().parent / "data" / "example.jsonl"

_EPILOG = """\
examples:
  tourney rank prompts.jsonl                                   simulated judge, knockout, stdout
  tourney rank prompts.jsonl --out ranked.jsonl --seed 7
  tourney rank prompts.jsonl --strategy knockout:votes=3,both_orders=true
  tourney rank vicuna.jsonl --judge replay:gpt35.jsonl
  tourney rank prompts.jsonl --judge vllm:Reward-Reasoning/RRM-32B --judge-opt tensor_parallel_size=2
  tourney rank prompts.jsonl --judge openai:http://127.0.0.1:8000/v1 --judge-opt model=judge

input line:  {"id": "q1", "prompt": "...", "responses": ["...", "..."], "scores": [optional]}
output line: {"id", "status", "best", "best_response", "ranking", "scores", "comparisons", ...}
"""


def _kv(text: str) -> tuple[str, Any]:
    from .registry import parse_value

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip().replace("-", "_"), parse_value(v)


def add_rank_options(r: argparse.ArgumentParser) -> None:
    """The judge, strategy, scheduler and store options shared by rank and mine-pairs."""
    r.add_argument("--judge", default="simulated",
                   help="judge spec: simulated[:k=v,..], replay:FILE, vllm:MODEL, openai:URL (default: simulated)")
    r.add_argument("--judge-opt", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="judge option, repeatable (e.g. model=judge, temperature=0.6, format=rrm)")
    r.add_argument("--model", dest="judge_model", default=None,
                   help="model name for openai judges (the server's served model name); same as --judge-opt model=NAME")
    r.add_argument("--format", dest="judge_format", default=None,
                   help="judge prompt/verdict format for vllm/openai judges: rrm, rm_r1, rm_r1_instruct "
                   "(default: from the model name)")
    r.add_argument("--strategy", default="knockout",
                   help="strategy spec, e.g. knockout or knockout:votes=3,both_orders=true (default: knockout)")
    r.add_argument("--strategy-opt", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="strategy option, repeatable")
    r.add_argument("--seed", type=int, default=0, help="run seed: same seed, same output (default 0)")
    r.add_argument("--concurrency", type=int, default=None,
                   help="judge calls in flight at once (default 32; with --executor ray, twice the pool's window)")
    r.add_argument("--retries", type=int, default=3, help="retries of a failing judge call (default 3)")
    r.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds, doubling (default 0.5)")
    r.add_argument("--resample-abstentions", type=int, default=2,
                   help="times an abstaining sample is re-drawn (default 2)")
    r.add_argument("--max-comparisons", type=int, default=None,
                   help="per-prompt budget of matches; the ranking so far is returned, marked budget_limited")
    r.add_argument("--max-tokens", type=int, default=None, help="per-run budget of judge tokens (prompt + completion)")
    r.add_argument("--store", default=None, metavar="PATH",
                   help="SQLite judgement store: every judgement is saved as it completes and reused by any "
                   "later run with the same judge (resume after a crash, a second strategy on the same data). "
                   "Default: OUT.judgements.sqlite next to --out; none when writing to stdout")
    r.add_argument("--no-store", action="store_true", help="do not keep a judgement store")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show a progress line on stderr (default: when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    r.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    add_executor_options(r)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tourney",
        description="Multi-response tournament ranking: a judge compares two responses at a time, "
        "a strategy turns the verdicts into a ranking and a best-of-N pick.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands have their own --help, e.g. 'tourney rank --help'",
    )
    p.add_argument("--version", action="version", version=f"tourney {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and engine messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "rank",
        help="rank each prompt's responses and pick the best",
        description="Rank each prompt's candidate responses with a judge and a strategy. "
        "One output line per input line, in input order.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    r.add_argument("input", nargs="?", default=None,
                   help="JSONL input ('-' for stdin); default: the bundled example")
    r.add_argument("--out", "-o", default=None, help="output JSONL (default: stdout)")
    add_rank_options(r)

    sub.add_parser("judges", help="list the judges and their options")
    sub.add_parser("strategies", help="list the strategies and their options")
    for module in _extension_modules():
        COMMANDS.update(module.register(sub))
    return p


#: modules that add subcommands: each has ``register(subparsers) -> {name: handler}`` where a
#: handler is ``handler(args, argv) -> exit code``; they must import only light modules at the top.
_EXTENSIONS = ("tourney.cli_data", "tourney.cli_rate", "tourney.cli_store", "tourney.cli_mine", "tourney.cli_simulate")


def _extension_modules() -> list[Any]:
    import importlib

    mods = []
    for name in _EXTENSIONS:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return mods


def _read_lines(path: str | None, count: bool) -> tuple[Iterator[str], str, int | None]:
    """The input's lines, its name, and (with ``count``, for the progress line) how many items."""
    if path is None:
        path = str(EXAMPLE)
    if path == "-":
        return iter(sys.stdin), "stdin", None
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    total = None
    if count:  # an extra pass over the file: only when a progress line will show it
        with p.open("rb") as fh:
            total = sum(1 for line in fh if line.strip())
    return _iter_file(p), p.name, total


def _iter_file(p: Path) -> Iterator[str]:
    with p.open(encoding="utf-8", errors="replace") as fh:
        yield from fh


def run_ranking(
    args: argparse.Namespace,
    argv: Sequence[str],
    sink: Callable[[Any, Any], None],
    meta_path: str | None,
    store_default: str | None,
) -> int:
    """Rank every item of ``args.input`` and hand ``sink(item, result)`` each result in input
    order (``item`` is None for a line that failed to parse). Writes ``meta_path`` (the exact
    command, version, seed, specs and totals), prints the summary, returns the exit code."""
    from .executors import build_executor_judge, describe_executor
    from .items import Item, read_items
    from .progress import Progress
    from .scheduler import Scheduler
    from .strategy import build_strategy

    judge_opts = dict(args.judge_opt)
    if args.judge_format:
        judge_opts["format"] = args.judge_format
    if args.judge_model:
        judge_opts["model"] = args.judge_model
    strategy = build_strategy(args.strategy, dict(args.strategy_opt))
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    lines, source, total = _read_lines(args.input, count=show)
    store = None
    store_path = None if args.no_store else (args.store or store_default)
    if store_path:
        from .cache import StoreCache
        from .store import JudgementStore

        store = JudgementStore(store_path)  # refuses a corrupt or foreign file before any work
    judge, concurrency = build_executor_judge(args, args.judge, judge_opts)  # a Ray pool starts here
    progress = Progress(total) if show else None
    sched = Scheduler(
        judge,
        strategy,
        seed=args.seed,
        concurrency=concurrency,
        retries=args.retries,
        backoff_s=args.backoff,
        resample_abstentions=args.resample_abstentions,
        max_comparisons=args.max_comparisons,
        max_tokens=args.max_tokens,
        cache=StoreCache(store, judge) if store is not None else None,
        on_progress=progress,
    )
    bad: list[str] = []
    items: dict[int, Item] = {}

    def remember(stream: Any) -> Any:
        for it in stream:
            if isinstance(it, Item):
                items[it.index] = it
            yield it

    async def go() -> None:
        try:
            async for res in sched.run_ordered(remember(read_items(lines, source))):
                sink(items.pop(res.index, None), res)
                if res.status != "ok":
                    bad.append(f"{res.status}: item {res.id}: {'; '.join(res.messages)}")
        finally:
            await judge.aclose()

    try:
        asyncio.run(go())
    except BaseException:
        if store is not None:
            try:  # keep the original error: it says why the run stopped
                store.close()
            except TourneyError as close_exc:
                print(f"tourney: {close_exc}", file=sys.stderr)
            store = None
        raise
    finally:
        if store is not None:
            store.close()  # commits the last batch; raises StoreError if it cannot
    if progress is not None:
        progress.close(sched.stats)
    stats = sched.stats.to_json()
    if meta_path:
        meta = {
            "command": shlex.join(["tourney", *argv]),
            "cwd": os.getcwd(),
            "version": __version__,
            "seed": args.seed,
            "input": args.input or str(EXAMPLE),
            "judge": judge.describe(),
            "executor": describe_executor(judge),
            "strategy": strategy.describe(),
            "store": store_path,
            "stats": stats,
        }
        Path(meta_path).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    for line in bad:
        print(f"tourney: {line}", file=sys.stderr)
    if not args.quiet:
        print(
            f"tourney: ranked {stats['prompts'] - stats['failed']}/{stats['prompts']} prompts "
            f"with {strategy} on {judge.spec}: {stats['comparisons']} comparisons, "
            f"{stats['samples']} judgements ({stats['reused']} reused, {stats['new']} new), "
            f"{stats['abstentions']} abstentions, {stats['errors']} errors, "
            f"{stats['tokens']['prompt'] + stats['tokens']['completion']} tokens, {stats['elapsed_s']:.2f}s"
            + (f" (store: {store_path})" if store_path else ""),
            file=sys.stderr,
        )
        if hasattr(judge, "report"):  # the Ray pool: per-replica load, affinity, failures, cache hits
            print(judge.report(), file=sys.stderr)
    return 1 if bad else 0


class LazyOutput:
    """An output file opened on first write (so a run refused at start leaves no file), or stdout."""

    def __init__(self, path: str | None):
        self.path = path
        self._fh: TextIO | None = None if path else sys.stdout

    def write(self, text: str) -> None:
        if self._fh is None:
            self._fh = open(self.path, "w", encoding="utf-8")  # type: ignore[arg-type]  # noqa: SIM115
        self._fh.write(text)

    def close(self, create: bool = True) -> None:
        if self._fh is None and create and self.path:
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        if self._fh is sys.stdout:
            sys.stdout.flush()
        elif self._fh is not None:
            self._fh.close()


def cmd_rank(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .items import dumps

    out = LazyOutput(args.out)
    ok = False
    try:
        code = run_ranking(
            args,
            argv,
            lambda item, res: out.write(dumps(res) + "\n"),
            meta_path=args.out + ".meta.json" if args.out else None,
            store_default=args.out + ".judgements.sqlite" if args.out else None,
        )
        ok = True
        return code
    finally:
        out.close(create=ok)


def cmd_judges(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .judges.base import JUDGES, build_judge  # noqa: F401

    for name in JUDGES.names():
        target = JUDGES.get(name)
        if isinstance(target, str):
            print(f"{name}  (loads {target.split(':')[0]} on use)")
            continue
        doc = (target.__doc__ or sys.modules[target.__module__].__doc__ or "").strip().splitlines()
        print(f"{name}  {doc[0] if doc else ''}")
        for k, v in getattr(target, "options", {}).items():
            print(f"    {k}: {v}")
    return 0


def cmd_strategies(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import inspect

    from .strategy import STRATEGIES

    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        doc = (sys.modules[cls.__module__].__doc__ or cls.__doc__ or "").strip().splitlines()
        print(f"{name}  {doc[0] if doc else ''}")
        sig = inspect.signature(cls.__init__)
        for pname in cls.param_names():
            print(f"    {pname}={sig.parameters[pname].default!r}")
    return 0


COMMANDS: dict[str, Any] = {"rank": cmd_rank, "judges": cmd_judges, "strategies": cmd_strategies}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args, argv)
    except (TourneyError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"tourney: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tourney: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tourney rank ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
