"""The store at data-set scale: peak RSS and judgements/s, store on vs off, side by side.

    python benchmarks/bench_scale.py [--sizes 10000,30000,100000] [--n 16] [--store-only 100000] [--writer both]

For each size, a generated input (short responses, as the simulated judge needs no more) is
ranked by ``tourney rank`` in a fresh process with the instant simulated judge and knockout,
once with a store (the default) and once with ``--no-store``; the two runs alternate. Printed
per run: wall time, judgements per second (comparisons / wall), peak RSS (the largest sum of
the ``tourney rank`` process and the store's writer process, sampled every 20 ms), and with a
store its size per judgement; ``--writer both`` adds a run with the writer on a thread
(``JudgementStore(writer="thread")``) beside the default writer process. Then the ratios the targets are about:
peak RSS at the largest size over the smallest (store on; target <= 1.2) and throughput with the
store over without it. Expect ~5 s per 1,000 prompts per run on a quiet 2-core machine;
``--store-only`` names sizes run with the store only (the RSS ratio needs only those).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_input(path: Path, prompts: int, n: int) -> None:
    with path.open("w") as fh:
        for i in range(prompts):
            fh.write(json.dumps({
                "id": f"p{i}", "prompt": f"Question {i}: what is the best way to do task {i}?",
                "responses": [f"Answer {k} to question {i}: " + "some words here " * 4 for k in range(n)],
            }) + "\n")  # fmt: skip


def tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of ``pid`` and its descendants (the store's writer process), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def run(inp: Path, out: Path, store: Path | None, writer: str = "process") -> dict:
    """One ``tourney rank`` process: wall seconds, peak RSS (MB: the largest sum over the process
    and its writer process, sampled every 20 ms), its stats."""
    for p in (store, Path(f"{store}-wal"), Path(f"{store}-shm")) if store else ():
        p.unlink(missing_ok=True)
    args = [sys.executable, "-m", "tourney", "rank", str(inp), "--out", str(out), "--no-progress", "--quiet"]
    args += ["--store", str(store)] if store else ["--no-store"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env["TOURNEY_STORE_WRITER"] = writer
    peak = 0
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env)
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {proc.returncode}")
    stats = json.loads(Path(f"{out}.meta.json").read_text())["stats"]
    res = {"wall_s": wall, "rss_mb": peak / 1024, "judgements": stats["samples"]}
    if store:
        res["bytes_per_judgement"] = store.stat().st_size / max(1, stats["samples"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,30000,100000", help="prompts per run, comma-separated")
    ap.add_argument("--n", type=int, default=16, help="responses per prompt")
    ap.add_argument("--store-only", default="", help="sizes run with the store only (no --no-store run)")
    ap.add_argument(
        "--writer",
        default="process",
        choices=("process", "thread", "both"),
        help="the store's writer (JudgementStore(writer=...)): both runs each, side by side",
    )
    ap.add_argument("--dir", default=None, help="where to write inputs and stores (default: a temporary folder)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    store_only = {int(x) for x in args.store_only.split(",") if x}
    print(f"tourney rank, simulated judge (instant), knockout, N = {args.n}; python {sys.version.split()[0]}")
    print(f"{'prompts':>8} {'store':>7} {'wall s':>8} {'judgements/s':>13} {'peak RSS MB':>12} {'B/judgement':>12}")
    writers = ("process", "thread") if args.writer == "both" else (args.writer,)
    main_writer = writers[0]  # "store on" in the ratios below
    results: dict[tuple[int, str], dict] = {}  # (prompts, writer or "off") -> run
    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=args.dir) as d:
        tmp = Path(d)
        for size in sizes:
            inp = tmp / f"in{size}.jsonl"
            write_input(inp, size, args.n)
            for label in [*writers, *([] if size in store_only else ["off"])]:
                on = label != "off"
                r = run(inp, tmp / "out.jsonl", tmp / "s.sqlite" if on else None, label if on else main_writer)
                results[(size, label)] = r
                bpj = f"{r['bytes_per_judgement']:.0f}" if on else "-"
                print(
                    f"{size:>8} {label:>7} {r['wall_s']:>8.1f} {r['judgements'] / r['wall_s']:>13.0f} "
                    f"{r['rss_mb']:>12.1f} {bpj:>12}",
                    flush=True,
                )
            inp.unlink()
    lo, hi = sizes[0], sizes[-1]
    for label, name in ((main_writer, "on"), ("off", "off")):
        if (hi, label) not in results or (lo, label) not in results:
            continue
        ratio = results[(hi, label)]["rss_mb"] / results[(lo, label)]["rss_mb"]
        print(f"peak RSS at {hi} / at {lo} prompts, store {name}: {ratio:.2f}x")
    for size in sizes:
        if (size, "off") not in results:
            continue
        on, off = results[(size, main_writer)], results[(size, "off")]
        print(f"{size} prompts: throughput with the store / without: {off['wall_s'] / on['wall_s']:.2f}")
        if len(writers) == 2:
            th = results[(size, "thread")]
            print(f"{size} prompts: throughput with the writer process / the writer thread: "
                  f"{th['wall_s'] / on['wall_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
