"""``tourney mine-pairs``: rank each prompt's responses and write DPO pairs or KTO rows (TRL's forms)."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from .common import (
    add_judging_options,
    default_store,
    input_options,
    print_summary,
    report_stop,
    run_options,
    sigterm_as_interrupt,
    store_path,
)

if TYPE_CHECKING:
    from ..errors import InputError
    from ..inputs import InputSource
    from ..items import Item

__all__ = ["add_parser", "cmd_mine"]

_EPILOG = """\
examples:
  tourney mine-pairs data.jsonl --judge vllm:Reward-Reasoning/RRM-32B --strategy knockout:both_orders=true \\
      --out pairs.jsonl --policy best_each --min-confidence 0.8
  tourney mine-pairs data.jsonl --ranked ranked.jsonl --out pairs.jsonl      # reuse an earlier 'tourney rank' output
  tourney mine-pairs data.jsonl --trl-format kto --out kto.jsonl             # TRL's unpaired KTO form

pair line: {"prompt": ..., "chosen": ..., "rejected": ..., "tourney": {"margin", "confidence", "direct",
            "both_orders", "orders_agree", "votes", "chosen_rank", "rejected_rank", ...}}
KTO line:  {"prompt": ..., "completion": ..., "label": true|false, "tourney": {"index", "rank", "pairs",
            and the evidence of the pair that gave the label}}

One prompt type per file: when any prompt is a chat, every row is written in the conversational
form (a plain prompt becomes one user message), as TRL's trainers need one type per column.
"""


def add_parser(sub: Any) -> None:
    """Add ``tourney mine-pairs`` to the command line."""
    p = sub.add_parser(
        "mine-pairs",
        help="rank responses and write DPO preference pairs or KTO rows (TRL format)",
        description="Rank each prompt's responses (or read an earlier 'tourney rank' output with --ranked) and "
        "write DPO pairs in the format TRL's DPO trainer reads: {prompt, chosen, rejected}, as strings or, when "
        "any prompt of the input is a chat, every row as a conversation; each pair carries its evidence under "
        "'tourney'. --trl-format kto writes TRL's unpaired form {prompt, completion, label} instead.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument(
        "input",
        help="the input (prompts and responses): JSONL, JSON, parquet or a datasets folder "
        "('-' for stdin), read with the input flags below, also with --ranked",
    )
    p.add_argument(
        "--out",
        "-o",
        required=True,
        help="pairs JSONL to write (written to OUT.partial and renamed when the run is complete)",
    )
    p.add_argument(
        "--ranked",
        default=None,
        metavar="RANKED.jsonl",
        help="an earlier 'tourney rank' output for INPUT (JSONL or parquet): mine from it instead of "
        "judging (every line is checked against its input row; a bad line is reported with its line "
        "number and skipped)",
    )
    p.add_argument(
        "--policy",
        default="best_worst",
        choices=["best_worst", "best_each", "margin"],
        help="best_worst: one pair per prompt; best_each: best vs every other; margin: every "
        "ordered pair with margin >= --min-margin (default best_worst)",
    )
    p.add_argument("--min-margin", type=float, default=0.0, help="minimum score margin (strategy's scale)")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        help="minimum P(chosen better) (from the strategy's uncertainty or the direct votes)",
    )
    p.add_argument(
        "--require-consistent",
        action="store_true",
        help="keep only pairs judged in both orders with both orders agreeing",
    )
    p.add_argument(
        "--conversational", action="store_true", help="write conversational rows even when every prompt is plain text"
    )
    p.add_argument(
        "--trl-format",
        default="dpo",
        choices=["dpo", "kto"],
        help="dpo: paired {prompt, chosen, rejected} (default); kto: unpaired {prompt, completion, "
        "label}, a candidate desirable when it is only ever chosen in the kept pairs, undesirable "
        "when only ever rejected (--format is the judge's prompt format)",
    )
    add_judging_options(p)


def cmd_mine(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Mine pairs (or KTO rows) into ``--out``: judged here, or read from ``--ranked``.

    Like ``tourney rank``: the input (and the ranked file) are opened and checked before any
    work; rows go to ``OUT.partial``, renamed to ``OUT`` when the run is complete (then
    ``OUT.meta.json``); a run stopped early by an error, SIGINT or SIGTERM keeps its rows in
    ``OUT.partial``, leaves an earlier ``OUT`` untouched and prints the command that resumes it
    (exit 130/143; 2 for an error, a write error included). Exit 0 when every item was ok,
    1 when any was not (or a line of ``--ranked`` was skipped)."""
    from ..errors import TourneyError
    from ..inputs import open_input
    from ..mining import PairFile, PairPolicy, mine_kto, mine_pairs
    from ..runner import rank_file

    policy = PairPolicy(
        args.policy,
        args.min_margin,
        args.min_confidence,
        args.require_consistent,
        True if args.conversational else None,
    )
    miner = mine_kto if args.trl_format == "kto" else mine_pairs
    if args.ranked:
        opts: dict[str, Any] = {"command": shlex.join(["tourney", *argv])}
        store = None
    else:
        opts = run_options(args, argv)  # the specs are parsed (and refused) before any work
        store = store_path(args, default_store(args.out))
    src = open_input(args.input, **input_options(args))  # checked before any work
    ranked = _open_ranked(args.ranked) if args.ranked else None
    try:
        out = PairFile(args.out, conversational=True if args.conversational else None)
    except BaseException:
        if ranked is not None:
            ranked.close()
        raise
    counts = {"prompts": 0, "rows": 0, "desirable": 0, "identical": 0}

    def sink(item: Item | None, result: Any) -> None:
        res = result if isinstance(result, dict) else result.to_json()
        counts["prompts"] += 1
        if item is None:
            return
        for row in miner(item, res, policy, counts):
            out.write(row)
            counts["rows"] += 1
            counts["desirable"] += bool(row.get("label"))

    def output(meta: dict[str, Any], path: str | None) -> dict[str, Any]:
        mining = {
            "format": args.trl_format,
            "policy": args.policy,
            "rows": out.rows,
            "identical_pairs_skipped": counts["identical"],
            "form": "conversational" if out.conversational else "standard",
        }
        return {**meta, "output": {"path": path, "format": "jsonl", "rows": out.rows}, "mining": mining}

    meta: dict[str, Any] = {}
    with sigterm_as_interrupt() as signals:
        try:
            if ranked is not None:
                meta.update(_ranked_meta(src, args.ranked, opts["command"]))
                code = _mine_ranked(src, ranked, args.ranked, sink)
                report = None
            else:
                report = rank_file(src, sink, store=store, on_meta=meta.update, **opts)
                code = 0
            out.commit(output(meta, args.out))
        except BaseException as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            partial = {**output(meta, out.out.tmp), "complete": False, "resume": opts["command"]}
            partial.setdefault("stopped", why)
            kept = out.abort(partial if meta else None)
            started = bool(meta) and isinstance(exc, (TourneyError, OSError))
            if started or isinstance(exc, KeyboardInterrupt):  # say what was saved and how to resume
                target = None if out.out.tmp else out.out.name
                what = "KTO rows" if args.trl_format == "kto" else "pairs"
                if ranked is not None:
                    return _report_ranked_stop(exc, signals, kept, out.rows, opts["command"], what, target)
                return report_stop(exc, signals, kept, out.rows, store, opts["command"], what=what, target=target)
            raise
        finally:
            if ranked is not None:
                ranked.close()
    if report is not None:
        code = print_summary(report, args.quiet)
    what = (
        f"{counts['rows']} KTO rows ({counts['desirable']} desirable, {counts['rows'] - counts['desirable']} "
        "undesirable)"
        if args.trl_format == "kto"
        else f"{counts['rows']} pairs"
    )
    form = "conversational" if out.conversational else "standard (plain-text prompts)"
    print(
        f"tourney: {what} from {counts['prompts']} prompts ({args.policy}), {form} form -> {args.out}", file=sys.stderr
    )
    if counts["identical"]:
        print(
            f"tourney: {counts['identical']} candidate pair(s) of identical responses left out (the same text "
            "cannot be both chosen and rejected)",
            file=sys.stderr,
        )
    if out.converted and not args.conversational:
        print(
            f"tourney: the input has chat prompts, so every row is conversational (one prompt type per file, "
            f"as TRL's trainers need): the plain prompts of {out.converted} rows became one user message",
            file=sys.stderr,
        )
    if out.unconverted:
        print(
            f"tourney: warning: the first {out.unconverted} rows went to {args.out} in the standard form before "
            "the first chat prompt, and a device or pipe cannot be rewritten: the output mixes both forms "
            "(--conversational writes one form from the start)",
            file=sys.stderr,
        )
    return code


def _open_ranked(path: str) -> IO[bytes]:
    """The ``--ranked`` file, opened before any work (a missing file or a folder is refused here)."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"--ranked {path} is a directory, not a tourney rank output file")
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"--ranked file {path} does not exist") from None


def _ranked_meta(src: InputSource, ranked_path: str, command: str) -> dict[str, Any]:
    """The meta file of a ``--ranked`` run: what was mined from what (nothing is judged)."""
    from .. import __version__

    return {
        "command": command,
        "cwd": os.getcwd(),
        "version": __version__,
        "input": src.path if src.path is not None else src.name,
        "input_format": src.format,
        "fields": src.fields.describe(),
        "ranked": ranked_path,
    }


def _report_ranked_stop(
    exc: BaseException, signals: list[int], kept: str | None, rows: int, command: str, what: str, target: str | None
) -> int:
    """:func:`~tourney.cli.common.report_stop` for ``--ranked`` (nothing is judged, so there is
    no store to resume from: the same command mines the ranked file again)."""
    from ..errors import InputError

    if isinstance(exc, KeyboardInterrupt):
        head = f"tourney: interrupted ({'SIGTERM' if signals else 'SIGINT'})"
        code = 143 if signals else 130
    else:
        head, code = f"tourney: error: {exc}", 2
    if kept:
        saved = f"{rows} {what} in order before the stop are in {kept} (partial, see {kept}.meta.json)"
    elif target and rows:
        saved = f"what went to {target} is not a complete output"
    else:
        saved = "no complete output was written"
    if isinstance(exc, InputError):  # the input itself is wrong: the same command will not help
        print(f"{head}\ntourney: {saved}" if kept else head, file=sys.stderr)
        return code
    print(
        f"{head}\ntourney: {saved}; nothing is judged with --ranked: the same command mines it again:\n  {command}",
        file=sys.stderr,
    )
    return code


def _mine_ranked(src: InputSource, ranked: IO[bytes], ranked_path: str, sink: Callable[[Any, Any], None]) -> int:
    """Mine from an earlier ``tourney rank`` output: row k of ``ranked`` is the result for
    item k of the input ``src`` (read by :func:`tourney.inputs.open_input`: any input format,
    the column mapping). Every result line is checked against its item
    (:func:`tourney.mining.check_ranked`); a bad line (either file) is reported as
    ``FILE line N: ...`` and skipped, the others are mined. Returns 0 when every line was
    good and every item ranked ok, 1 when any line was skipped or an item was not ok; raises
    :class:`InputError` when the two files have different numbers of rows (the pairs of the
    rows that matched are kept as the partial output)."""
    from ..errors import InputError
    from ..mining import check_ranked

    code = 0
    skipped = 0
    items = src.items()
    results = _ranked_results(ranked, ranked_path)
    for n_items, (item, res) in enumerate(itertools.zip_longest(items, results)):
        if item is None or res is None:
            more = "more" if item is None else "fewer"
            raise InputError(
                f"{ranked_path} has {more} result lines than {src.path or src.name} has items "
                f"(they agree for the first {n_items}): not the output of this input"
            )
        if isinstance(item, InputError):  # the ranking run failed this line too
            print(f"tourney: {item}", file=sys.stderr)
            code, skipped = 1, skipped + 1
            continue
        where, obj = res
        try:
            if isinstance(obj, InputError):
                raise obj
            checked = check_ranked(obj, item, where)
        except InputError as exc:
            print(f"tourney: {exc}; line skipped", file=sys.stderr)
            code, skipped = 1, skipped + 1
            continue
        if checked["status"] != "ok":  # as 'tourney rank' reports it, and the same exit code
            print(
                f"tourney: {checked['status']}: item {item.id} ({where}): {checked.get('error', '')}", file=sys.stderr
            )
            code = 1
        sink(item, checked)
    if skipped:
        print(f"tourney: {skipped} line(s) skipped (errors above); the others were mined", file=sys.stderr)
    return code


def _decoded_lines(fh: IO[bytes], path: str) -> Iterator[tuple[str, str | InputError]]:
    """``(where, text)`` for every non-blank line (``where`` is ``"PATH line N"``); a line that is
    not UTF-8 gives an InputError instead of its text (never a silently replaced character).
    A UTF-8 byte-order mark at the start of the file is dropped."""
    from ..errors import InputError

    for no, raw in enumerate(fh, 1):
        if no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        where = f"{path} line {no}"
        try:
            yield where, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield where, InputError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})", where)


def _loads(text: str, where: str) -> Any:
    from ..errors import InputError

    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(
            f"malformed JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})", where
        ) from None
    except RecursionError:
        raise InputError("malformed JSON (nested too deeply)", where) from None


def _ranked_results(fh: IO[bytes], path: str) -> Iterator[tuple[str, Any]]:
    """``(where, decoded JSON or the InputError of a line that is not)`` per non-blank line of a
    JSONL output; ``(PATH row N, row)`` per row of a parquet output (``tourney rank --out
    x.parquet``, read back in the JSONL shape by :func:`tourney.outputs.read_results`)."""
    from ..errors import InputError
    from ..outputs import output_format

    parquet = output_format(path) == "parquet"
    if fh.peek(4)[:4] == b"PAR1" and not parquet:  # type: ignore[attr-defined]
        raise InputError(f"--ranked {path} is a parquet file (it starts with PAR1): name it .parquet")
    if parquet:
        yield from _ranked_parquet_rows(path)
        return
    for where, text in _decoded_lines(fh, path):
        if isinstance(text, InputError):
            yield where, text
            continue
        try:
            yield where, _loads(text, where)
        except InputError as exc:
            yield where, exc


def _ranked_parquet_rows(path: str) -> Iterator[tuple[str, Any]]:
    """The rows of a parquet ``tourney rank`` output as ``(PATH row N, row)`` (N 0-based); a file
    pyarrow cannot read is an InputError naming it and the rows read so far."""
    from ..errors import InputError, MissingExtraError
    from ..outputs import read_results

    rows = read_results(path)
    k = 0
    while True:
        try:
            rec = next(rows)
        except StopIteration:
            return
        except MissingExtraError:
            raise
        except Exception as exc:  # pyarrow: not parquet, a corrupt row group, another schema
            raise InputError(f"--ranked {path}: cannot read past row {k}: {type(exc).__name__}: {exc}") from exc
        yield f"{path} row {k}", rec
        k += 1
