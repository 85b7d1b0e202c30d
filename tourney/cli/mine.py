"""``tourney mine-pairs``: rank each prompt's responses and write DPO pairs or KTO rows (TRL's forms)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Sequence

from .common import add_judging_options, print_summary, run_options, store_path

if TYPE_CHECKING:
    from ..errors import InputError
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
    p.add_argument("input", help="the input JSONL (prompts and responses)")
    p.add_argument("--out", "-o", required=True, help="pairs JSONL to write")
    p.add_argument("--ranked", default=None, metavar="RANKED.jsonl",
                   help="an earlier 'tourney rank' output for INPUT: mine from it instead of judging (every line "
                   "is checked against its input line; a bad line is reported with its line number and skipped)")
    p.add_argument("--policy", default="best_worst", choices=["best_worst", "best_each", "margin"],
                   help="best_worst: one pair per prompt; best_each: best vs every other; margin: every "
                   "ordered pair with margin >= --min-margin (default best_worst)")
    p.add_argument("--min-margin", type=float, default=0.0, help="minimum score margin (strategy's scale)")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="minimum P(chosen better) (from the strategy's uncertainty or the direct votes)")
    p.add_argument("--require-consistent", action="store_true",
                   help="keep only pairs judged in both orders with both orders agreeing")
    p.add_argument("--conversational", action="store_true",
                   help="write conversational rows even when every prompt is plain text")
    p.add_argument("--trl-format", default="dpo", choices=["dpo", "kto"],
                   help="dpo: paired {prompt, chosen, rejected} (default); kto: unpaired {prompt, completion, "
                   "label}, a candidate desirable when it is only ever chosen in the kept pairs, undesirable "
                   "when only ever rejected (--format is the judge's prompt format)")
    add_judging_options(p)


def cmd_mine(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..mining import PairFile, PairPolicy, mine_kto, mine_pairs

    policy = PairPolicy(args.policy, args.min_margin, args.min_confidence, args.require_consistent,
                        True if args.conversational else None)
    miner = mine_kto if args.trl_format == "kto" else mine_pairs
    out = PairFile(args.out, conversational=True if args.conversational else None)
    counts = {"prompts": 0, "rows": 0, "desirable": 0}

    def sink(item: Item | None, result: Any) -> None:
        res = result if isinstance(result, dict) else result.to_json()
        counts["prompts"] += 1
        if item is None:
            return
        for row in miner(item, res, policy):
            out.write(row)
            counts["rows"] += 1
            counts["desirable"] += bool(row.get("label"))

    ok = False
    try:
        if args.ranked:
            code = _mine_ranked(args.input, args.ranked, sink)
        else:
            report = _judge_into(args, argv, sink)
            code = print_summary(report, args.quiet)
        ok = True
    finally:
        out.close(create=ok)
    what = (f"{counts['rows']} KTO rows ({counts['desirable']} desirable, {counts['rows'] - counts['desirable']} "
            "undesirable)" if args.trl_format == "kto" else f"{counts['rows']} pairs")
    form = "conversational" if out.conversational else "standard (plain-text prompts)"
    print(f"tourney: {what} from {counts['prompts']} prompts ({args.policy}), {form} form -> {args.out}",
          file=sys.stderr)
    if out.converted and not args.conversational:
        print(f"tourney: the input has chat prompts, so every row is conversational (one prompt type per file, "
              f"as TRL's trainers need): the plain prompts of {out.converted} rows became one user message",
              file=sys.stderr)
    return code


def _judge_into(args: argparse.Namespace, argv: Sequence[str], sink: Callable[[Any, Any], None]) -> Any:
    """Judge the input (the runner) and hand every result to ``sink``."""
    from ..runner import rank_file

    return rank_file(args.input, sink, store=store_path(args, args.out + ".judgements.sqlite"),
                     meta_path=args.out + ".meta.json", **run_options(args, argv))


def _mine_ranked(input_path: str, ranked_path: str, sink: Callable[[Any, Any], None]) -> int:
    """Mine from an earlier ``tourney rank`` output: line k of ``ranked_path`` is the result for
    item k of ``input_path``. Every result line is checked against its item
    (:func:`tourney.mining.check_ranked`); a bad line (either file) is reported as
    ``FILE line N: ...`` and skipped, the others are mined. Returns 0 when every line was
    good and every item ranked ok, 1 when any line was skipped or an item was not ok, 2 when
    the two files have different numbers of lines (the pairs of the lines that matched are kept)."""
    from ..errors import InputError
    from ..mining import check_ranked

    code = 0
    skipped = 0
    with open(input_path, "rb") as fi, open(ranked_path, "rb") as fr:
        items = _input_items(fi, input_path)
        results = _ranked_results(fr, ranked_path)
        for n_items, (item, res) in enumerate(itertools.zip_longest(items, results)):
            if item is None or res is None:
                more = "more" if item is None else "fewer"
                print(f"tourney: error: {ranked_path} has {more} result lines than {input_path} has items "
                      f"(they agree for the first {n_items}): not the output of this input; "
                      f"pairs from the first {n_items} written", file=sys.stderr)
                return 2
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
                print(f"tourney: {checked['status']}: item {item.id} ({where}): {checked.get('error', '')}",
                      file=sys.stderr)
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
        raise InputError(f"malformed JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})",
                         where) from None
    except RecursionError:
        raise InputError("malformed JSON (nested too deeply)", where) from None


def _input_items(fh: IO[bytes], path: str) -> Iterator[Item | InputError]:
    """The input's items, one per non-blank line, numbered as ``tourney rank`` numbers them."""
    from ..errors import InputError
    from ..items import parse_item

    for index, (where, text) in enumerate(_decoded_lines(fh, path)):
        if isinstance(text, InputError):
            yield text
            continue
        try:
            yield parse_item(_loads(text, where), index, where)
        except InputError as exc:
            yield exc


def _ranked_results(fh: IO[bytes], path: str) -> Iterator[tuple[str, Any]]:
    """``(where, decoded JSON or the InputError of a line that is not)`` per non-blank line."""
    from ..errors import InputError

    for where, text in _decoded_lines(fh, path):
        if isinstance(text, InputError):
            yield where, text
            continue
        try:
            yield where, _loads(text, where)
        except InputError as exc:
            yield where, exc
