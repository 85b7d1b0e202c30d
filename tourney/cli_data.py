"""``tourney convert-prd``: public pairwise data sets -> tourney input and replay files."""

from __future__ import annotations

import argparse
from typing import Any, Sequence


def register(sub: Any) -> dict[str, Any]:
    p = sub.add_parser(
        "convert-prd",
        help="convert the PRD Vicuna-80 reviewer logs to prompts.jsonl + replay-<reviewer>.jsonl",
        description="Convert the PRD Vicuna-80 data (answers of 5 models, 4 LLM reviewers judging all "
        "ordered pairs) into a tourney input file and one replay-judge file per reviewer.",
        epilog="example: tourney convert-prd shared/data/prd_vicuna80/vicuna80 prd/ && "
        "tourney rank prd/prompts.jsonl --judge replay:prd/replay-gpt35.jsonl",
    )
    p.add_argument("root", help="the vicuna80 folder of the PRD data")
    p.add_argument("out_dir", help="folder to write prompts.jsonl and replay-<reviewer>.jsonl to")
    return {"convert-prd": _convert}


def _convert(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .data.prd import convert

    for name, count in convert(args.root, args.out_dir).items():
        print(f"{args.out_dir}/{name}: {count} lines")
    return 0
