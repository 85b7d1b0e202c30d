"""``tourney log export`` and ``tourney store check|stats|upgrade``: the judgement store from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_log_parser", "add_store_parser", "cmd_log", "cmd_store"]


def add_log_parser(sub: Any) -> None:
    """Add ``tourney log export`` to the command line."""
    log = sub.add_parser(
        "log",
        help="export the judgements kept in a store",
        description="Judgement logs. 'tourney log export' writes every judgement in a store as JSONL in the "
        "replay judge's format (prompt, first, second, verdict) plus metadata (prompt_id, indices, sample, "
        "reasoning, tokens, latency, judge), so logs become replay data and 'tourney rate' input.",
    )
    lsub = log.add_subparsers(dest="log_command", metavar="SUBCOMMAND", required=True)
    ex = lsub.add_parser("export", help="every judgement as JSONL")
    ex.add_argument("--store", required=True, help="the SQLite judgement store")
    ex.add_argument("--prompt", default=None, metavar="ID", help="only this prompt id")
    ex.add_argument("--include-errors", action="store_true", help="also failed calls (verdict null)")
    ex.add_argument("--out", "-o", default=None, help="output file (default stdout)")


def add_store_parser(sub: Any) -> None:
    """Add ``tourney store check|stats|upgrade`` to the command line."""
    st = sub.add_parser(
        "store",
        help="check, summarise or upgrade a judgement store",
        description="'check' verifies the store (SQLite integrity, versions, every key and row hash); "
        "exit 1 if any problem. 'stats' prints counts as JSON. 'upgrade' rewrites a store of an "
        "older schema version (1: tourney before claims) in place, in one transaction; its "
        "judgements keep their keys and are reused (a writable open, such as a rank run, does it too).",
    )
    ssub = st.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)
    for name in ("check", "stats", "upgrade"):
        p = ssub.add_parser(name, help=f"{name} a store")
        p.add_argument("store", help="the SQLite judgement store")


def _open(path: str, readonly: bool = True) -> Any:
    from pathlib import Path

    from ..errors import StoreError
    from ..store import JudgementStore

    if not Path(path).is_file():
        raise StoreError(f"no judgement store at {path}")
    return JudgementStore(path, readonly=readonly)


def cmd_log(args: argparse.Namespace, argv: Sequence[str]) -> int:
    store = _open(args.store)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    n = 0
    try:
        for rec in store.export(args.prompt, include_errors=args.include_errors):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
        store.close()
    print(f"tourney: exported {n} judgements" + (f" -> {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def cmd_store(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.store_command == "upgrade":  # a writable open upgrades an older schema in place
        store = _open(args.store, readonly=False)
        try:
            stats = store.stats()
        finally:
            store.close()
        print(
            f"tourney: store {args.store}: schema version {stats['schema_version']}, {stats['judgements']} judgements",
            file=sys.stderr,
        )
        return 0
    store = _open(args.store)
    try:
        if args.store_command == "stats":
            print(json.dumps(store.stats(), indent=2))
            return 0
        problems = store.check()
    finally:
        store.close()
    for p in problems:
        print(f"tourney: store problem: {p}", file=sys.stderr)
    print(f"tourney: store {args.store}: " + ("OK" if not problems else f"{len(problems)} problem(s)"), file=sys.stderr)
    return 1 if problems else 0
