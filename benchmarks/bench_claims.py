"""Runs sharing one store pay once: three ``tourney rank`` processes on the same input.

    python benchmarks/bench_claims.py [--prompts 60] [--n 8] [--latency 0.05]

One process ranks the input alone (its own store): what one run pays. Then three processes
start together on the same input and the same store. Printed: the judgements each paid (the
meta file's ``new``), their sum over the single run's (target <= 1.05), whether every output is
byte-identical to the single run's, and the wall times (the three split the prompts between
them: each claims the prompts nobody holds and waits for the others' at the end).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=60)
    ap.add_argument("--n", type=int, default=8, help="responses per prompt")
    ap.add_argument("--latency", type=float, default=0.05, help="simulated judge latency, median seconds")
    ap.add_argument("--processes", type=int, default=3)
    args = ap.parse_args()
    judge = f"simulated:latency_median_s={args.latency},latency_sigma=0.3"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory(prefix="bench_claims_") as d:
        tmp = Path(d)
        inp = tmp / "in.jsonl"
        inp.write_text("".join(
            json.dumps({"id": f"p{i}", "prompt": f"question {i}", "responses": [f"answer {i}.{k}" for k in range(args.n)]})
            + "\n" for i in range(args.prompts)))  # fmt: skip

        def cmd(out: Path, store: Path) -> list[str]:
            return [sys.executable, "-m", "tourney", "rank", str(inp), "--out", str(out), "--store", str(store),
                    "--judge", judge, "--no-progress", "--quiet", "--seed", "3"]  # fmt: skip

        def paid(out: Path) -> int:
            return json.loads(Path(f"{out}.meta.json").read_text())["stats"]["new"]

        t0 = time.perf_counter()
        subprocess.run(cmd(tmp / "single.jsonl", tmp / "single.sqlite"), env=env, check=True)
        single_s = time.perf_counter() - t0
        alone = paid(tmp / "single.jsonl")
        shared = tmp / "shared.sqlite"
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd(tmp / f"run{k}.jsonl", shared), env=env) for k in range(args.processes)]
        walls = []
        for p in procs:
            p.wait()
            walls.append(time.perf_counter() - t0)
            assert p.returncode == 0
        each = [paid(tmp / f"run{k}.jsonl") for k in range(args.processes)]
        same = all((tmp / f"run{k}.jsonl").read_bytes() == (tmp / "single.jsonl").read_bytes()
                   for k in range(args.processes))  # fmt: skip
    print(f"{args.prompts} prompts x N = {args.n}, knockout, judge {judge}")
    print(f"one run alone: paid {alone} judgements in {single_s:.1f} s")
    print(
        f"{args.processes} runs on one store: paid {each} = {sum(each)} judgements; "
        f"{sum(each) / alone:.3f}x one run (target <= 1.05); outputs identical to the single run's: {same}"
    )
    print(f"  wall times {', '.join(f'{w:.1f}' for w in walls)} s (one run alone: {single_s:.1f} s)")


if __name__ == "__main__":
    main()
