"""Benchmark the judge-output parsers against main's, side by side, on the same inputs.

    python benchmarks/bench_parsers.py                 # sizes 10 KB .. 1 MB, main's parser as the baseline
    python benchmarks/bench_parsers.py --ref HEAD~3    # another git revision as the baseline
    python benchmarks/bench_parsers.py --old-limit 60  # give the old parser up to 60 s per parse

For every format (rrm, rm_r1, rm_r1_instruct) and several output shapes (realistic: one huge
thinking block or a long Chain-of-Rubrics eval; adversarial: floods of ``</think>``,
``<answer>``, ``\\boxed{``, ``<quote_A>`` or section openings without closings, deep brace
nesting, sections inside quotes), it times ``parse`` of this working tree and of the baseline
(``git show REF:tourney/judges/formats.py``, loaded as a separate module) at 10 KB, 30 KB,
100 KB, 300 KB and 1 MB, and prints one table. Times are the process's CPU time (other work on
a shared machine would inflate wall-clock time), best of ``--repeats``. This tree's parser is
timed in-process; the baseline runs in a child process per (format, shape) with a wall-clock limit
(``--old-limit`` seconds per parse): once a size runs out, the larger sizes are not run and show
as ``>LIMIT`` / ``skipped``. The last column is the growth from 100 KB to 1 MB (linear: ~10,
quadratic: ~100). It also replays the adversarial outputs of tests/test_formats.py through both
parsers and counts how many hold (the candidate does not decide). The baseline gets what main's
judges gave it: ``parse(text, reasoning)``, with a ``finish_reason == "length"`` sample then
turned into an abstention as main's ``build_judgement`` does; this tree also gets the candidates
and the finish reason.

Exit status: 0; timings never fail the run (they are machine-dependent; see NOTES-formats.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)


def _eval_unit() -> str:
    # one rubric item's comparison: a quote of A, a summary of B, a paragraph of the judge's own
    return (
        "<quote_A>Step 3: polish with a dual-action polisher at low speed.</quote_A>\n"
        "<summary_B>Chatbot B skips polishing entirely.</summary_B>\n"
        + "Chatbot A is more thorough here: it names the tool, the speed and the order of the steps, "
        "which is what a first-time detailer needs, while Chatbot B leaves the reader to guess. " * 2 + "\n"
    )


# name -> (formats it is meant for, builder(n) -> output of about n characters)
SHAPES: dict[str, tuple[tuple[str, ...], Callable[[int], str]]] = {
    "realistic: huge thinking": (
        ("rrm", "rm_r1"),
        lambda n: (
            ("Let me compare both answers step by step; the first is exact. " * (n // 62))
            + "</think>\n\nAssistant 1 is correct.\n\n\\boxed{Assistant 1}\n<answer>[[A]]</answer>"
        ),
    ),
    "realistic: long eval": (
        ("rm_r1_instruct",),
        lambda n: (
            "<type>Chat</type>\n\n<rubric>\n1. Accuracy (60%)\n<justify>Facts first.</justify>\n</rubric>\n\n"
            + "<eval>\n"
            + _eval_unit() * (n // len(_eval_unit()))
            + "</eval>\n\n<answer>[[A]]</answer>"
        ),
    ),
    "many </think>": (("rrm", "rm_r1", "rm_r1_instruct"), lambda n: "</think>" * (n // 8)),
    "many <answer> opens": (("rm_r1", "rm_r1_instruct"), lambda n: "</think>" + "<answer>" * (n // 8)),
    "many \\boxed{ opens": (("rrm",), lambda n: "</think>" + "\\boxed{" * (n // 7)),
    "deep braces": (("rrm",), lambda n: "</think>\\boxed{" + "{" * n),
    "many <quote_A> opens": (("rm_r1_instruct",), lambda n: "<quote_A>" * (n // 9)),
    "many section opens": (("rm_r1_instruct",), lambda n: "<type>" * (n // 6)),
    "sections inside quotes": (
        ("rm_r1_instruct",),
        lambda n: "<quote_A><eval>x</eval></quote_A>" * (n // 33) + "<answer>[[A]]</answer>",
    ),
}


def load_parser_module(path: Path, name: str) -> types.ModuleType:
    """Load a formats.py as ``tourney.judges.<name>`` so its relative imports resolve."""
    import tourney.judges  # noqa: F401  (the package the relative imports need)

    spec = importlib.util.spec_from_file_location(f"tourney.judges.{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best-of CPU seconds of this process (other helpers share the machine: wall-clock time
    would measure them too)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def child(path: str, fmt: str, shape: str, sizes: list[int], repeats: int) -> None:
    """Child-process mode: time the parser at ``path`` on one shape, one JSON line per size."""
    module = load_parser_module(Path(path), "_formats_baseline")
    parser = module.FORMATS[fmt]
    build = SHAPES[shape][1]
    for n in sizes:
        text = build(n)
        t = best_time(partial(parser.parse, text), 1)
        if t < 1.0 and repeats > 1:
            t = min(t, best_time(partial(parser.parse, text), repeats - 1))
        print(json.dumps({"n": n, "s": t}), flush=True)


def time_baseline(path: Path, fmt: str, shape: str, limit: float, repeats: int) -> dict[int, float | None]:
    """Baseline seconds per size; ``None`` = ran past the limit (larger sizes are not run)."""
    out: dict[int, float | None] = {}
    for n in SIZES:
        cmd = [sys.executable, __file__, "--child", str(path), fmt, shape, str(n), "--repeats", str(repeats)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit * repeats + 10, cwd=ROOT)
        except subprocess.TimeoutExpired:
            out[n] = None
            break
        if done.returncode != 0:
            raise SystemExit(f"baseline child failed: {done.stderr[-2000:]}")
        out[n] = json.loads(done.stdout.strip().splitlines()[-1])["s"]
        if out[n] > limit:
            out[n] = None
            break
    return out


def _size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB"


def fmt_time(s: float | None, limit: float) -> str:
    if s is None:
        return f">{limit:g} s"
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.1f} s"


def adversarial_holds(new: types.ModuleType, old: types.ModuleType) -> tuple[int, int, int]:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_formats as tf  # the adversarial set the tests assert on

    cases = tf.ADVERSARIAL
    held_new = held_old = 0
    for c in cases:
        p = c.fmt.parse(c.text, c.reasoning, candidates=c.candidates, finish_reason=c.finish_reason)
        held_new += p.outcome is c.expected
        q = old.FORMATS[c.fmt.name].parse(c.text, c.reasoning)
        outcome = old.Outcome.ABSTAIN if c.finish_reason == "length" else q.outcome  # main's build_judgement
        held_old += outcome.value == c.expected.value
    return len(cases), held_old, held_new


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default="main", help="git revision of the baseline parser (default main)")
    ap.add_argument("--old-limit", type=float, default=30.0, help="seconds one baseline parse may take (default 30)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--child", nargs=4, metavar=("PATH", "FORMAT", "SHAPE", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        path, fmt, shape, size = args.child
        child(path, fmt, shape, [int(size)], args.repeats)
        return 0

    from tourney.judges import formats as new

    source = subprocess.run(
        ["git", "show", f"{args.ref}:tourney/judges/formats.py"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        old_path = Path(tmp) / "formats_baseline.py"
        old_path.write_text(source, encoding="utf-8")
        old = load_parser_module(old_path, "_formats_baseline")

        print(
            f"parse CPU time, {args.ref} → this tree "
            f"(best of {args.repeats}; baseline limit {args.old_limit:g} s per parse)\n"
        )
        head = ["format", "shape", *(_size(n) for n in SIZES), "1 MB / 100 KB", "1 MB outcome"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for shape, (formats, build) in SHAPES.items():
            for fmt in formats:
                base = time_baseline(old_path, fmt, shape, args.old_limit, args.repeats)
                parser = new.FORMATS[fmt]
                cells, ours = [], {}
                for n in SIZES:
                    text = build(n)
                    ours[n] = best_time(partial(parser.parse, text, finish_reason="stop"), args.repeats)
                    old_cell = fmt_time(base[n], args.old_limit) if n in base else "skipped"
                    cells.append(f"{old_cell} → {fmt_time(ours[n], args.old_limit)}")
                growth = ours[1_000_000] / ours[100_000]
                parsed = parser.parse(build(1_000_000), finish_reason="stop")
                outcome = parsed.outcome.value + (f": {parsed.reason[:48]}" if parsed.reason else "")
                print(f"| {fmt} | {shape} | " + " | ".join(cells) + f" | {growth:.1f} | {outcome} |", flush=True)

        total, held_old, held_new = adversarial_holds(new, old)
        print(
            f"\nadversarial outputs (tests/test_formats.py ADVERSARIAL): {total}; "
            f"held by {args.ref}: {held_old}; held by this tree: {held_new}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
