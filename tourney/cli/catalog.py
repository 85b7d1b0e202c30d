"""``tourney judges`` and ``tourney strategies``: what a judge or strategy spec can name.

    tourney judges [NAME ...] [--format text|json]
    tourney strategies [NAME ...] [--format text|json]

Every option of every judge and strategy, in full: its name, its default and what it means.
Where each comes from (one mechanism per kind, read from the code, never copied here):

* a judge's options and meanings: its class's ``options`` mapping (``Judge.options``); the
  default: the class's ``defaults`` mapping when it has one, else its module's ``_DEFAULTS``
  table (the judge's own option defaults), else the ``(default X)`` its meaning states, else
  none (``-``: e.g. a sampling option whose default is the judge format's);
* a strategy's options and defaults: the keyword-only parameters of its ``__init__``
  (:meth:`~tourney.strategy.Strategy.param_names`); their meanings: the class's ``options``
  mapping (a small block at the top of each strategy class). A strategy without one still
  lists its parameters and defaults, with the meaning ``-``.

The summary of each is the first paragraph of its docstring (class, else module), in full.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from ..errors import SpecError

__all__ = [
    "add_judges_parser",
    "add_strategies_parser",
    "cmd_judges",
    "cmd_strategies",
    "describe_judges",
    "describe_strategies",
]

#: the default a judge option's meaning states, tried in order: "(default 0)", "(default: the
#: format's)", "error (default) or truncate", "default 8;", "(required)"
_DEFAULT_IN_TEXT = (
    re.compile(r"\(default:? ([^;)]*)[;)]"),
    re.compile(r"(\S+) \(default\)"),
    re.compile(r"\bdefault:? ([^;,()]+)[;,)]"),
    re.compile(r"\((required)\)"),
)
_NO_DEFAULT = "-"


def _summary(*objects: Any) -> str:
    """The first paragraph of the first docstring among ``objects``, on one line."""
    for obj in objects:
        doc = inspect.cleandoc(obj.__doc__ or "") if obj is not None else ""
        if doc:
            return " ".join(doc.split("\n\n", 1)[0].split())
    return ""


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _judge_default(target: Any, name: str, meaning: str) -> Any:
    for table in (getattr(target, "defaults", None), getattr(sys.modules.get(target.__module__), "_DEFAULTS", None)):
        if isinstance(table, dict) and name in table:
            return _jsonable(table[name])
    for pattern in _DEFAULT_IN_TEXT:
        m = pattern.search(meaning)
        if m:
            return m.group(1).strip()
    return _NO_DEFAULT


def describe_judges(names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every registered judge (or those named): ``{"name", "summary", "options": [{"name",
    "default", "meaning"}]}``. Importing a lazily registered judge's module is light (engines
    and clients load on first use)."""
    from ..judges.base import JUDGES

    out = []
    for name in _select(JUDGES.names(), names, "judge"):
        target = JUDGES.get(name)
        options = [
            {"name": k, "default": _judge_default(target, k, v), "meaning": v}
            for k, v in getattr(target, "options", {}).items()
        ]
        out.append({"name": name, "summary": _summary(target, sys.modules.get(target.__module__)), "options": options})
    return out


def describe_strategies(names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every registered strategy (or those named): ``{"name", "summary", "options": [{"name",
    "default", "meaning"}], "undocumented": [...]}`` (parameters without a meaning)."""
    from ..strategy import STRATEGIES

    out = []
    for name in _select(STRATEGIES.names(), names, "strategy"):
        cls = STRATEGIES.get(name)
        sig = inspect.signature(cls.__init__)
        meanings = strategy_meanings(cls)
        options = [
            {"name": p, "default": _jsonable(sig.parameters[p].default), "meaning": meanings.get(p, _NO_DEFAULT)}
            for p in cls.param_names()
        ]
        out.append(
            {
                "name": name,
                "summary": _summary(sys.modules.get(cls.__module__), cls),
                "options": options,
                "undocumented": [p for p in cls.param_names() if p not in meanings],
            }
        )
    return out


def strategy_meanings(cls: type) -> dict[str, str]:
    """A strategy class's option meanings (its ``options`` mapping; empty without one)."""
    options = getattr(cls, "options", None)
    return dict(options) if isinstance(options, dict) else {}


def _select(known: Sequence[str], wanted: Sequence[str], what: str) -> list[str]:
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise SpecError(f"unknown {what}(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [k for k in known if not wanted or k in wanted]


def format_catalog(entries: list[dict[str, Any]], width: int | None = None) -> str:
    """Entries as text: the name and summary, then one row per option (name, default,
    meaning), the meaning wrapped to ``width`` columns (default: the terminal's, at least 80),
    never cut."""
    width = width or max(80, min(shutil.get_terminal_size((100, 24)).columns, 160))
    lines: list[str] = []
    for e in entries:
        lines += textwrap.wrap(f"{e['name']}: {e['summary']}", width, subsequent_indent="    ") or [e["name"]]
        if not e["options"]:
            lines += ["    (no options)", ""]
            continue
        rows = [
            (o["name"], o["default"] if isinstance(o["default"], str) else json.dumps(o["default"]), o["meaning"])
            for o in e["options"]
        ]
        w_name = max(len("option"), *(len(r[0]) for r in rows))
        w_def = min(24, max(len("default"), *(len(r[1]) for r in rows)))
        indent = 4 + w_name + 2 + w_def + 2
        lines.append(f"    {'option'.ljust(w_name)}  {'default'.ljust(w_def)}  meaning")
        for opt, default, meaning in rows:
            head = f"    {opt.ljust(w_name)}  {default.ljust(w_def)}  "
            if len(default) > w_def:  # a long default gets its own line
                lines.append(f"    {opt.ljust(w_name)}  {default}")
                head = " " * indent
            lines += textwrap.wrap(
                meaning, width, initial_indent=head, subsequent_indent=" " * indent, break_on_hyphens=False
            ) or [head.rstrip()]
        lines.append("")
    return "\n".join(lines)


def _add(sub: Any, name: str, help: str, what: str) -> None:
    p = sub.add_parser(
        name, help=help, description=f"{help[0].upper()}{help[1:]}: name, default and meaning of every option, in full."
    )
    p.add_argument("names", nargs="*", metavar="NAME", help=f"only these {what} (default: all)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format (default text)")


def add_judges_parser(sub: Any) -> None:
    """Add ``tourney judges`` to the command line."""
    _add(sub, "judges", "list the judges and their options", "judges")


def add_strategies_parser(sub: Any) -> None:
    """Add ``tourney strategies`` to the command line."""
    _add(sub, "strategies", "list the strategies and their options", "strategies")


def _print(entries: list[dict[str, Any]], key: str, fmt: str) -> int:
    if fmt == "json":
        sys.stdout.write(json.dumps({key: entries}, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_catalog(entries))
    return 0


def cmd_judges(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return _print(describe_judges(getattr(args, "names", ())), "judges", getattr(args, "format", "text"))


def cmd_strategies(args: argparse.Namespace, argv: Sequence[str]) -> int:
    entries = describe_strategies(getattr(args, "names", ()))
    if getattr(args, "format", "text") == "json":
        return _print(entries, "strategies", "json")
    for e in entries:
        e.pop("undocumented")
    return _print(entries, "strategies", "text")
