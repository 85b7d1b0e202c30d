"""Benchmark ``tourney simulate`` itself: wall time and CPU of the default table, side by side.

    python benchmarks/bench_harness.py                               # this tree, 1,000 trials
    python benchmarks/bench_harness.py --against /tmp/old --trials 1000

Runs ``tourney simulate --n 16 --trials T --seed 0 --budgets 15,30,60,120,240 --workers W``
(the README's default table: 8 strategies, 5 budgets) in a fresh process per tree, alternating
the trees ``--repeats`` times, and reports per tree the median wall time, the CPU time of the
process and its workers (user + system, from ``getrusage(RUSAGE_CHILDREN)``), and the top-1 of
each strategy at each budget (so a faster run is seen to compute the same table). The CPU time
is the fairer figure on a shared machine: the wall time includes other people's load. With
``--new-default`` the tree under test also runs its own default strategy list.

Issue 13 asks the harness on the real engine to stay at least as fast as the old stand-in
driver: 1,000 trials of the default table in under 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
#: the README's table before the published competitors joined the default list
OLD_DEFAULT = "knockout;knockout:both_orders=true;voting;elo;bradley_terry;swiss;merge_sort;adaptive"
BUDGETS = "15,30,60,120,240"


def run(tree: Path, trials: int, workers: int, strategies: str | None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "tourney",
        "simulate",
        "--n",
        "16",
        "--trials",
        str(trials),
        "--seed",
        "0",
        "--budgets",
        BUDGETS,
        "--workers",
        str(workers),
        "--format",
        "json",
        "-q",
    ]
    if strategies:
        cmd += ["--strategies", strategies]
    env = dict(os.environ, PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=str(tree), check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    doc = json.loads(out.stdout)
    top1 = {(r["strategy"], r["budget"]): r["top1"] for r in doc["reports"][0]["rows"]}
    return {"wall_s": wall, "cpu_s": cpu, "top1": top1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--against", type=Path, help="another tree (e.g. a `git archive` of main) to run side by side")
    ap.add_argument("--new-default", action="store_true", help="also run this tree's own default strategy list")
    args = ap.parse_args()
    trees = [("this", HERE, OLD_DEFAULT)] + ([("other", args.against.resolve(), OLD_DEFAULT)] if args.against else [])
    if args.new_default:
        trees.append(("this, its default list", HERE, None))
    print(
        f"tourney simulate --n 16 --trials {args.trials} --budgets {BUDGETS} --workers {args.workers}; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in trees}
    for _ in range(args.repeats):
        for name, tree, strategies in trees:
            runs[name].append(run(tree, args.trials, args.workers, strategies))
            r = runs[name][-1]
            print(f"  {name}: {tree}: wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s", flush=True)
    print(f"{'tree':<24} {'wall s (median)':>15} {'cpu s (median)':>15}")
    for name, _, _ in trees:
        print(
            f"{name:<24} {statistics.median(r['wall_s'] for r in runs[name]):>15.1f} "
            f"{statistics.median(r['cpu_s'] for r in runs[name]):>15.1f}"
        )
    print("\ntop-1 per strategy and budget (first run of each tree):")
    keys = list(runs[trees[0][0]][0]["top1"])
    for key in keys:
        cells = "  ".join(
            f"{name}: {runs[name][0]['top1'].get(key)}" for name, _, _ in trees if key in runs[name][0]["top1"]
        )
        print(f"  {key[0]:<28} {key[1]!s:>4}  {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
