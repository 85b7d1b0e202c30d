"""What ``tourney rank`` and ``tourney mine-pairs`` share.

The input flags (format, column mapping, duplicates), the judging flags (judge, strategy,
scheduler, budgets, store, progress, executor), their turn into the keywords of
:func:`tourney.runner.rank_file` (the judge and strategy specs are parsed here, once, into
:class:`~tourney.registry.Spec`), the run's summary on stderr, the output file (written under
``OUT.partial`` and renamed when complete: :class:`tourney.outputs.OutputFile`), SIGTERM handled
like SIGINT, and the message of a run that stopped early (what was saved, the command that resumes).

Exit codes (:data:`EXIT_CODES`): 0 every item ok; 1 some item not ok (``failed``, ``partial``,
``coin_flip``); 2 a usage or write error, or a judge that could not be used (server down, key
refused, no Ray replica left: the run stops); 3 the run's health check failed (the judge's first
K verdicts all failed to parse, or its abstention + error share passed ``--max-failure-rate``);
130/143 after SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..health import CHECK_EVERY, DEFAULT_FAIL_FAST, DEFAULT_MAX_FAILURE_RATE
from ..registry import Spec, parse_spec, parse_value
from .executor import add_executor_options, executor_options

if TYPE_CHECKING:
    from ..runner import RunReport

__all__ = [
    "EXIT_CODES",
    "EXIT_HEALTH",
    "LazyOutput",
    "add_input_options",
    "add_judging_options",
    "default_store",
    "input_options",
    "judge_spec",
    "print_summary",
    "report_stop",
    "run_options",
    "sigterm_as_interrupt",
    "store_path",
]

#: the exit status when the run's health check failed (see the module docstring)
EXIT_HEALTH = 3
#: the exit statuses of a judging command, for --help
EXIT_CODES = """\
exit status:
  0  every item ok
  1  some item not ok: failed (bad input), partial (judge errors), coin_flip (a pair settled by a
     coin because the judge's votes were missing); the others are still written
  2  usage or write error, or the judge could not be used (server down, key refused, no Ray replica
     left): the run stops, judgements made so far stay in the store
  3  run health: the judge's first --fail-fast verdicts all failed to parse, or its abstentions +
     errors passed --max-failure-rate (early: the run stops; at the end: the output is complete)
  130/143  interrupted (SIGINT/SIGTERM): the partial output is kept
"""

#: the run-wide token budget's flag; ``--max-tokens`` was its old name
TOKEN_BUDGET_HELP = (
    "per-run budget of judge tokens (prompt + completion), shared by all prompts; "
    "tokens per judge SAMPLE are --judge-opt max_tokens"
)


def parse_kv(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, parsed value)`` (dashes in the key become underscores)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip().replace("-", "_"), parse_value(v)


def _failure_rate(text: str) -> float:
    """``--max-failure-rate``: a number in [0, 1] (argparse names the flag in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def _int_at_least(minimum: int, meaning: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``; ``meaning`` (what the bound means) is
    part of the usage error, e.g. ``must be an integer >= 0 (0: off), got '-1'``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum} ({meaning}), got {text!r}")
        return value

    return parse


class _RenamedTokenBudget(argparse.Action):
    """``--max-tokens`` is refused with a usage error naming what replaced it: silently
    accepting it would be taken for the per-sample limit by some and the run budget by others."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string} was renamed: the per-run budget of judge tokens (prompt + completion, "
            "shared by all prompts) is --token-budget N; tokens per judge sample are "
            "--judge-opt max_tokens=N"
        )


def add_input_options(r: argparse.ArgumentParser) -> None:
    """The input's format, column mapping and duplicate policy (rank and mine-pairs)."""
    from ..inputs import FORMATS

    g = r.add_argument_group("input")
    g.add_argument(
        "--input-format",
        choices=FORMATS,
        default=None,
        help="jsonl, json (an array), parquet or datasets (a save_to_disk folder); default: from the "
        "path (.jsonl/.json/.parquet, a folder; .gz/.zst text is decompressed)",
    )
    g.add_argument(
        "--prompt-field",
        default=None,
        metavar="NAME",
        help="the field holding the prompt (default: prompt); a.b reaches into nested objects",
    )
    g.add_argument(
        "--responses-field",
        default=None,
        metavar="NAME[,NAME...]",
        help="the field holding the list of responses (default: responses), or several fields "
        "holding one response each, comma-separated",
    )
    g.add_argument("--id-field", default=None, metavar="NAME", help="the field holding the id (default: id)")
    g.add_argument(
        "--scores-field",
        default=None,
        metavar="NAME[,NAME...]",
        help="the field holding the latent scores for the simulated judge (default: scores), or "
        "several fields, one score each",
    )
    g.add_argument(
        "--duplicates",
        choices=("merge", "error"),
        default="merge",
        help="identical responses: merge (judged once, sharing their rank; default) or error (the item fails)",
    )


def input_options(args: argparse.Namespace) -> dict[str, Any]:
    """The input flags as keywords of :func:`tourney.inputs.open_input`."""
    from ..errors import InputError
    from ..items import FieldMap

    try:
        fields = FieldMap.of(args.prompt_field, args.responses_field, args.id_field, args.scores_field)
    except ValueError as exc:
        raise InputError(f"bad field mapping: {exc}") from None
    return {"format": args.input_format, "fields": fields, "duplicates": args.duplicates}


def default_store(out: str | None) -> str | None:
    """The default store beside a regular output file (none for stdout, a device or a pipe)."""
    if out is None or (os.path.exists(out) and not os.path.isfile(out)):
        return None
    return out + ".judgements.sqlite"


def add_judging_options(r: argparse.ArgumentParser) -> None:
    """The input, judge, strategy, scheduler, store and executor options shared by rank and mine-pairs."""
    add_input_options(r)
    r.add_argument(
        "--judge",
        default="simulated",
        help="judge spec: simulated[:k=v,..], replay:FILE, vllm:MODEL, openai:URL (default: simulated)",
    )
    r.add_argument(
        "--judge-opt",
        action="append",
        type=parse_kv,
        default=[],
        metavar="KEY=VALUE",
        help="judge option, repeatable (e.g. model=judge, temperature=0.6, format=rrm)",
    )
    r.add_argument(
        "--model",
        dest="judge_model",
        default=None,
        help="model name for openai judges (the server's served model name); same as --judge-opt model=NAME",
    )
    r.add_argument(
        "--format",
        dest="judge_format",
        default=None,
        help="judge prompt/verdict format for vllm/openai judges: rrm, rm_r1, rm_r1_instruct "
        "(default: from the model name)",
    )
    r.add_argument(
        "--strategy",
        default="knockout",
        help="strategy spec, e.g. knockout or knockout:votes=3,both_orders=true (default: knockout)",
    )
    r.add_argument(
        "--strategy-opt",
        action="append",
        type=parse_kv,
        default=[],
        metavar="KEY=VALUE",
        help="strategy option, repeatable",
    )
    r.add_argument("--seed", type=int, default=0, help="run seed: same seed, same output (default 0)")
    r.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="judge calls in flight at once (default 32; with --executor ray, twice the pool's window)",
    )
    r.add_argument(
        "--retries",
        type=int,
        default=3,
        help="attempts of a failing judge call = 1 + retries (the only retry layer; default 3)",
    )
    r.add_argument(
        "--backoff",
        type=float,
        default=0.5,
        help="first retry delay in seconds, doubling, jittered; a server's Retry-After is honoured (default 0.5)",
    )
    r.add_argument(
        "--resample-abstentions", type=int, default=2, help="times an abstaining sample is re-drawn (default 2)"
    )
    r.add_argument(
        "--max-comparisons",
        type=int,
        default=None,
        help="per-prompt budget of matches; the ranking so far is returned, marked budget_limited",
    )
    r.add_argument(
        "--max-rounds",
        type=_int_at_least(1, "one round is the first batch of matches"),
        default=None,
        metavar="R",
        help="per-prompt limit of sequential rounds (judge calls on its critical path); the ranking "
        "so far is returned, marked budget_limited",
    )
    r.add_argument("--token-budget", type=int, default=None, metavar="N", help=TOKEN_BUDGET_HELP)
    r.add_argument(
        "--max-failure-rate",
        type=_failure_rate,
        default=DEFAULT_MAX_FAILURE_RATE,
        metavar="F",
        help="run health: exit 3 when more than this share of judgements abstained or failed; the run "
        f"stops early once {CHECK_EVERY}+ judgements show it far above F (99.99%% interval) "
        f"(default {DEFAULT_MAX_FAILURE_RATE:g}; 1: never)",
    )
    r.add_argument(
        "--fail-fast",
        type=_int_at_least(0, "0: off"),
        default=DEFAULT_FAIL_FAST,
        metavar="K",
        help="run health: stop the run (exit 3) when the judge's first K verdicts all fail to parse "
        f"(default {DEFAULT_FAIL_FAST}; 0: off)",
    )
    r.add_argument("--max-tokens", nargs="?", action=_RenamedTokenBudget, help=argparse.SUPPRESS)
    r.add_argument(
        "--store",
        default=None,
        metavar="PATH",
        help="SQLite judgement store: every judgement is saved as it completes and reused by any "
        "later run with the same judge (resume after a crash, a second strategy on the same data). "
        "Default: OUT.judgements.sqlite next to --out; none when writing to stdout",
    )
    r.add_argument("--no-store", action="store_true", help="do not keep a judgement store")
    g = r.add_mutually_exclusive_group()
    g.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show progress on stderr: a live line on a terminal, else a plain line every 10 s "
        "(TOURNEY_PROGRESS_INTERVAL seconds) (default: on, except with -q off a terminal)",
    )
    g.add_argument("--no-progress", dest="progress", action="store_false")
    r.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    add_executor_options(r)


def judge_spec(args: argparse.Namespace) -> Spec:
    """``--judge`` + ``--judge-opt`` + ``--format`` + ``--model`` as ONE spec (the later flags
    win over options written in ``--judge``; ``--format``/``--model`` win over ``--judge-opt``)."""
    options = dict(args.judge_opt)
    if args.judge_format:
        options["format"] = args.judge_format
    if args.judge_model:
        options["model"] = args.judge_model
    return parse_spec(args.judge, options)


def store_path(args: argparse.Namespace, default: str | None) -> str | None:
    """The judgement store to use: none with ``--no-store``, else ``--store`` or ``default``."""
    return None if args.no_store else (args.store or default)


def run_options(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """The input and judging flags as keywords of :func:`tourney.runner.rank_file` (all but the
    input itself, the sink, the store and the meta, which each command chooses)."""
    from .progress import Progress

    show = args.progress if args.progress is not None else (sys.stderr.isatty() or not args.quiet)
    return {
        "judge": judge_spec(args),
        "strategy": parse_spec(args.strategy, dict(args.strategy_opt)),
        "seed": args.seed,
        "concurrency": args.concurrency,
        "retries": args.retries,
        "backoff_s": args.backoff,
        "resample_abstentions": args.resample_abstentions,
        "max_comparisons": args.max_comparisons,
        "max_rounds": args.max_rounds,
        "token_budget": args.token_budget,
        "executor": args.executor,
        "executor_options": executor_options(args),
        "progress": Progress if show else None,
        "command": shlex.join(["tourney", *argv]),
        **{("input_format" if k == "format" else k): v for k, v in input_options(args).items()},
        "max_failure_rate": args.max_failure_rate,
        "fail_fast": args.fail_fast or None,
        "notify": _note,
    }


def _note(message: str) -> None:
    """A note the user should see at the start of a run, whatever the log level."""
    print(f"tourney: note: {message}", file=sys.stderr)


def print_summary(report: RunReport, quiet: bool) -> int:
    """Print on stderr each item that is not ok, (unless ``quiet``) the run's totals and health,
    the health warnings, and why the health check failed; return the exit code
    (:data:`EXIT_CODES`): 3 when the health check failed, else 1 when any item was not ok, else 0."""
    for line in report.problems:
        print(f"tourney: {line}", file=sys.stderr)
    if not quiet:
        stats = report.stats
        print(
            f"tourney: ranked {stats['prompts'] - stats['failed']}/{stats['prompts']} prompts "
            f"with {report.strategy} on {report.judge}: {stats['comparisons']} comparisons, "
            f"{stats['samples']} judgements ({stats['reused']} reused, {stats['new']} new), "
            f"{stats['abstentions']} abstentions, {stats['errors']} errors, "
            f"{stats['tokens']['prompt'] + stats['tokens']['completion']} tokens, {stats['elapsed_s']:.2f}s"
            + (f" (store: {report.store})" if report.store else ""),
            file=sys.stderr,
        )
        if report.executor_report is not None:  # the Ray pool: per-replica load, affinity, failures, cache hits
            print(report.executor_report, file=sys.stderr)
        if report.health is not None:
            for line in report.health.summary_lines():
                print(f"tourney: {line}", file=sys.stderr)
    if report.health is not None:
        for warning in report.health.warnings(report.strategy_info):
            print(f"tourney: warning: {warning}", file=sys.stderr)
    problem = report.health_problem
    if problem is not None:
        print(f"tourney: error: run health check failed: {problem}", file=sys.stderr)
        return EXIT_HEALTH
    return 0 if report.ok else 1


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM stops the run as SIGINT does (the run flushes what is judged and the output is
    kept as partial) for the duration; yields a list that records the signal when one came.

    Inside a run, SIGINT is asyncio's (it cancels the run, which then raises
    KeyboardInterrupt); elsewhere Python's (KeyboardInterrupt at once): SIGTERM calls whichever
    is installed. Only the main thread can install handlers: elsewhere this does nothing."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_term(signum: int, frame: Any) -> None:
        got.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, old)


def report_stop(
    exc: BaseException,
    signals: list[int],
    kept: str | None,
    rows: int,
    store: str | None,
    command: str,
    what: str = "results",
    target: str | None = None,
) -> int:
    """Say on stderr why the run stopped, what was saved (``kept``: the partial file; ``target``:
    the stdout or device the rows went to) and the command that resumes it; return the exit code (130 after SIGINT, 143 after SIGTERM, 3 for a run-health stop, 2 for another error)."""
    from ..errors import JudgeUnavailableError, RunHealthError

    if isinstance(exc, KeyboardInterrupt):
        name = "SIGTERM" if signals else "SIGINT"
        head = f"tourney: interrupted ({name})"
        code = 143 if signals else 130
    elif isinstance(exc, RunHealthError):  # the judge answers, but its answers are unusable
        health = getattr(exc, "health", None)
        lines = health.summary_lines() if health is not None else []
        head = (
            "".join(f"tourney: {line}\n" for line in lines) + f"tourney: error: run stopped early (run health): {exc}"
        )
        code = EXIT_HEALTH
    elif isinstance(exc, JudgeUnavailableError):
        head = f"tourney: error: run stopped early (the judge cannot be used): {exc}"
        code = 2
    else:
        head = f"tourney: error: {exc}"
        code = 2
    if kept:
        saved = f"{rows} {what} in order before the stop are in {kept} (partial, see {kept}.meta.json)"
    elif target and rows:  # stdout or a device: written as they came
        saved = f"what went to {target} is not a complete output"
    else:
        saved = "no complete output was written"
    from ..errors import InputError

    if isinstance(exc, InputError):  # the input itself is wrong: running the same command again will not help
        if kept:
            print(f"{head}\ntourney: {saved}", file=sys.stderr)
        else:
            print(head, file=sys.stderr)
        return code
    judged = (
        f"every judgement made is kept in the store {store}: the same command resumes without paying for them again"
        if store
        else "no judgement store (--no-store): the same command judges everything again"
    )
    print(f"{head}\ntourney: {saved}; {judged}:\n  {command}", file=sys.stderr)
    return code


class LazyOutput:
    """An output file opened on first write (so a run refused at start leaves no file), or stdout.
    Not atomic: ``tourney rank`` writes through :class:`tourney.outputs.OutputFile` instead."""

    def __init__(self, path: str | None):
        self.path = path
        self._fh: TextIO | None = None if path else sys.stdout

    def write(self, text: str) -> None:
        fh = self._fh
        if fh is None:
            assert self.path is not None  # no path means stdout, set above
            fh = self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        fh.write(text)

    def close(self, create: bool = True) -> None:
        if self._fh is None and create and self.path:
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        if self._fh is None:
            return
        if self._fh is sys.stdout:
            self._fh.flush()
        else:
            self._fh.close()
