"""The ``tourney`` command line.

    tourney rank INPUT.jsonl [--judge SPEC] [--strategy SPEC] [--out OUT.jsonl] [--seed S] ...
    tourney judges            list judges and their options
    tourney strategies        list strategies and their options

Run ``tourney COMMAND --help`` for each command's options. Exit status: 0 when every item
was ranked cleanly, 1 when any item failed, had judge errors or was decided by coin flips (the
others are still written), 2 for a usage error (unknown judge or strategy, unreadable input) or
a judge that cannot be used (server down, key refused), 3 when the run's health check failed
(too many abstentions or errors: ``--max-failure-rate``, ``--fail-fast``), 130/143 when
interrupted by SIGINT/SIGTERM (what was judged is kept; the same command resumes).

One module per subcommand (``rank``, ``mine``, ``rate``, ``simulate``, ``store``, ``data``,
``catalog``, ``explain``, ``plot``); :data:`COMMANDS` is the table of them. Each module imports only light modules at
the top and the engine inside its handler, which turns the flags into keyword arguments of an
engine function, prints and returns the exit code. Nothing outside this package parses
arguments: ``import tourney`` does not import it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .. import __version__
from ..errors import TourneyError
from . import catalog, data, explain, mine, plot, rank, rate, simulate, store

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

#: a subcommand's handler: ``handler(args, argv) -> exit code``
Handler = Callable[[argparse.Namespace, Sequence[str]], int]


class Command(NamedTuple):
    """A subcommand: the function that adds its parser to the subparsers, and its handler."""

    add_parser: Callable[[Any], None]
    handler: Handler


#: every subcommand, in the order ``tourney --help`` lists them
COMMANDS: dict[str, Command] = {
    "rank": Command(rank.add_parser, rank.cmd_rank),
    "judges": Command(catalog.add_judges_parser, catalog.cmd_judges),
    "strategies": Command(catalog.add_strategies_parser, catalog.cmd_strategies),
    "convert-prd": Command(data.add_convert_parser, data.cmd_convert),
    "build-tiny-model": Command(data.add_tiny_model_parser, data.cmd_tiny_model),
    "build-smollm": Command(data.add_smollm_parser, data.cmd_smollm),
    "rate": Command(rate.add_parser, rate.cmd_rate),
    "explain": Command(explain.add_parser, explain.cmd_explain),
    "plot": Command(plot.add_parser, plot.cmd_plot),
    "log": Command(store.add_log_parser, store.cmd_log),
    "store": Command(store.add_store_parser, store.cmd_store),
    "mine-pairs": Command(mine.add_parser, mine.cmd_mine),
    "simulate": Command(simulate.add_parser, simulate.cmd_simulate),
}


#: the interpreter's thread switch interval for a command (seconds; see main)
SWITCH_INTERVAL_S = 0.001


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global flags and every subcommand of :data:`COMMANDS`."""
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
    for command in COMMANDS.values():
        command.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if not args.command:
        parser.print_help()
        return 2
    # The event loop's thread is busy with an instant judge; the store's writer thread waits on its
    # writer process and then needs the GIL back for a moment. With CPython's default 5 ms switch
    # interval each such hand-back waited up to 5 ms, the writer fell behind and the run stalled
    # on its backlog bound: 1 ms gave 12% more judgements/s (benchmarks/bench_scale.py).
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
    try:
        return COMMANDS[args.command].handler(args, argv)
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
