"""Reading what ``tourney rank`` wrote: an output line by prompt id, the run's meta file, and
the input item a result came from (for ``tourney explain`` and ``tourney plot``).

``tourney rank --out OUT.jsonl`` writes one result line per prompt to ``OUT.jsonl``, the run's
metadata (command, working directory, input path, judge, strategy, store path, totals) to
``OUT.jsonl.meta.json`` and, unless ``--no-store``, the judgements to
``OUT.jsonl.judgements.sqlite``. Everything here reads files line by line and never writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError

__all__ = ["find_item", "find_result", "read_meta", "resolve_path"]


def find_result(path: str | os.PathLike[str], prompt_id: str) -> dict[str, Any]:
    """The output line of ``prompt_id`` in a ``tourney rank`` output file (read line by line;
    a bad line is skipped). Raises :class:`InputError` naming some ids when it is not there."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a tourney rank output file")
    if not p.exists():
        raise FileNotFoundError(f"output file {path} does not exist")
    seen: list[str] = []
    count = 0
    with p.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(rec, dict) or "id" not in rec:
                continue
            count += 1
            if str(rec["id"]) == prompt_id:
                return rec
            if len(seen) < 8:
                seen.append(str(rec["id"]))
    more = f" and {count - len(seen)} more" if count > len(seen) else ""
    raise InputError(f"no prompt with id {prompt_id!r} in {path} ({count} results"
                     + (f"; ids: {', '.join(seen)}{more})" if seen else ")"))


def read_meta(out_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's meta file (``OUT.meta.json``) as a dict, or None when absent or unreadable."""
    p = Path(f"{os.fspath(out_path)}.meta.json")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def resolve_path(path: str | None, meta: Mapping[str, Any] | None) -> str | None:
    """A path the meta file names (the input, the store), made absolute against the run's
    working directory (``cwd`` in the meta file) when it is relative."""
    if not path:
        return None
    if os.path.isabs(path) or not meta or not meta.get("cwd"):
        return path
    return os.path.join(str(meta["cwd"]), path)


def find_item(input_path: str, prompt_id: str, index: int | None) -> dict[str, Any] | None:
    """The input line of ``prompt_id`` in the run's input file (by id; an item without one has
    its 0-based line index as id), or None when the file or the line is not there."""
    try:
        fh = open(input_path, "rb")
    except OSError:
        return None
    with fh:
        k = 0
        for raw in fh:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                k += 1
                continue
            if isinstance(rec, dict) and (str(rec.get("id", k)) == prompt_id or (index is not None and k == index
                                                                               and "id" not in rec)):
                return rec
            k += 1
    return None
