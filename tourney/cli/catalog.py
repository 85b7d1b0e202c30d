"""``tourney judges`` and ``tourney strategies``: what a judge or strategy spec can name."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

__all__ = ["add_judges_parser", "add_strategies_parser", "cmd_judges", "cmd_strategies"]


def add_judges_parser(sub: Any) -> None:
    """Add ``tourney judges`` to the command line."""
    sub.add_parser("judges", help="list the judges and their options")


def add_strategies_parser(sub: Any) -> None:
    """Add ``tourney strategies`` to the command line."""
    sub.add_parser("strategies", help="list the strategies and their options")


def cmd_judges(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..judges.base import JUDGES

    for name in JUDGES.names():
        target = JUDGES.get(name)  # imports a lazily registered judge's module (light at import)
        doc = (target.__doc__ or sys.modules[target.__module__].__doc__ or "").strip().splitlines()
        print(f"{name}  {doc[0] if doc else ''}")
        for k, v in getattr(target, "options", {}).items():
            print(f"    {k}: {v}")
    return 0


def cmd_strategies(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import inspect

    from ..strategy import STRATEGIES

    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        doc = (sys.modules[cls.__module__].__doc__ or cls.__doc__ or "").strip().splitlines()
        print(f"{name}  {doc[0] if doc else ''}")
        sig = inspect.signature(cls.__init__)
        for pname in cls.param_names():
            print(f"    {pname}={sig.parameters[pname].default!r}")
    return 0
