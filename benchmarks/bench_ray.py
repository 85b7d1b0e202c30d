"""The Ray executor: overhead, and event-driven dispatch across replicas.

    python3 benchmarks/bench_ray.py [--quick] [--json]

Starts a local Ray cluster (one per run) and measures, side by side:

(a) Overhead. An instant simulated judge; comparisons per second through a pool of 2 actors
    (``max_inflight_per_replica`` 128, scheduler concurrency 2 x the pool's window) vs the local executor
    (concurrency 32), on 1,000 prompts x N = 16 knockout. Target: >= 2,000 comparisons/s
    through Ray. Reported with the ratio Ray / local.
(b) Latency-variable judge (simulated, lognormal latency, median 50 ms, sigma 1.0), 4 replicas
    x 8 in flight (32 slots), 200 prompts x N = 16 knockout:
    * makespan / lower bound, where the bound is max(critical path, total work / 32 slots)
      computed from the latencies of the very matches that ran (``bench_scheduler.lower_bound``);
      target <= 1.15;
    * speed-up over a round-synchronous Ray baseline on the same pool, which submits every
      prompt's matches of a round and waits for all of them before proposing the next round;
      target >= 1.2;
    * the local executor with concurrency 32 on the same workload, for reference;
    * per-replica load and the share of matches that ran on their prompt's home replica.

Correctness is checked on every run and is the only thing that sets the exit status: the Ray
output must equal the local output line for line, and the round-synchronous baseline must reach
the same rankings. Timings are reported, never asserted (this machine has 2 cores, shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_scheduler import lower_bound, round_synchronous

from tourney.executors import RayJudgePool
from tourney.items import Item, dumps
from tourney.judges import build_judge
from tourney.judges.base import Judge
from tourney.scheduler import Scheduler
from tourney.strategy import build_strategy
from tourney.types import Match

SEED = 1
INSTANT = "simulated:seed=5"
VARIABLE = "simulated:seed=5,latency_median_s=0.05,latency_sigma=1.0"


def make_items(n_prompts: int, n: int) -> list[Item]:
    return [Item(i, f"p{i}", f"question {i}", tuple(f"answer {i}-{k}" for k in range(n))) for i in range(n_prompts)]


class Realised(Judge):
    """Records (prompt id, first, second, latency) of every call from the judgements' own
    ``latency_s`` (the simulated latency, wherever the call ran), in completion order."""

    def __init__(self, inner: Judge):
        super().__init__(inner.spec)
        self.inner = inner
        self.calls: list[tuple[str, int, int, float]] = []

    async def judge(self, match: Match):
        out = await self.inner.judge(match)
        self.calls.append((match.prompt_id, match.first, match.second, max(j.latency_s for j in out)))
        return out

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


async def event_driven(judge: Judge, items: list[Item], concurrency: int) -> tuple[float, list[str], Any]:
    sched = Scheduler(judge, build_strategy("knockout"), seed=SEED, concurrency=concurrency)
    t0 = time.perf_counter()
    res = await sched.rank(items)
    return time.perf_counter() - t0, [dumps(r) for r in res], sched.stats


def rankings(lines: list[str]) -> list[tuple[int, ...]]:
    return [tuple(json.loads(line)["ranking"]) for line in lines]


def overhead(n_prompts: int) -> tuple[dict[str, Any], bool]:
    items = make_items(n_prompts, 16)
    span_local, local_lines, st = asyncio.run(event_driven(build_judge(INSTANT), items, 32))
    pool = RayJudgePool(INSTANT, replicas=2, max_inflight_per_replica=128)
    try:
        asyncio.run(event_driven(pool, make_items(50, 16), 2 * pool.window))  # warm-up: workers, imports
        span_ray, ray_lines, st_ray = asyncio.run(event_driven(pool, items, 2 * pool.window))
        calls = sum(s.calls for s in pool.stats())
    finally:
        pool.close()
    ok = ray_lines == local_lines
    local_cps, ray_cps = st.comparisons / span_local, st_ray.comparisons / span_ray
    return {
        "workload": f"{n_prompts} prompts x N=16 knockout, instant simulated judge",
        "local_comparisons_per_s": round(local_cps),
        "ray_comparisons_per_s (2 actors)": round(ray_cps),
        "ray_over_local": round(ray_cps / local_cps, 3),
        "ray_calls_incl_warmup": calls,
        "output_identical_to_local": ok,
    }, ok


def variable(n_prompts: int, replicas: int, inflight: int, prefetch: int | None) -> tuple[dict[str, Any], bool]:
    items = make_items(n_prompts, 16)
    slots = replicas * inflight
    local = Realised(build_judge(VARIABLE))
    span_local, local_lines, _ = asyncio.run(event_driven(local, items, slots))
    pool = RayJudgePool(VARIABLE, replicas=replicas, max_inflight_per_replica=inflight, prefetch_per_replica=prefetch)
    try:
        asyncio.run(event_driven(pool, make_items(8, 4), slots))  # warm-up
        base = {s.replica: (s.matches, s.affinity) for s in pool.stats()}
        timed = Realised(pool)
        span_ray, ray_lines, st = asyncio.run(event_driven(timed, items, 2 * pool.window))
        per_replica = [s.matches - base[s.replica][0] for s in pool.stats()]
        affinity = sum(s.affinity - base[s.replica][1] for s in pool.stats()) / max(1, sum(per_replica))
        span_sync, sync_rankings = asyncio.run(round_synchronous(pool, items, seed=SEED))
    finally:
        pool.close()
    bound, cp, work = lower_bound(timed.calls, slots)
    bound_local, _, _ = lower_bound(local.calls, slots)
    ok_lines = ray_lines == local_lines
    ok_sync = sync_rankings == rankings(ray_lines)
    return {
        "workload": f"{n_prompts} prompts x N=16 knockout ({st.comparisons} matches), lognormal latency "
        f"median 50 ms sigma 1.0, {replicas} replicas x {inflight} in flight "
        f"(+{pool.prefetch_per_replica} prefetched)",
        "lower_bound_s": round(bound, 3),
        "critical_path_s": round(cp, 3),
        "work_over_slots_s": round(work, 3),
        "ray_event_driven_makespan_s": round(span_ray, 3),
        "ray_makespan_over_bound": round(span_ray / bound, 3),
        "ray_round_synchronous_makespan_s": round(span_sync, 3),
        "speedup_vs_round_synchronous": round(span_sync / span_ray, 3),
        "local_event_driven_makespan_s": round(span_local, 3),
        "local_makespan_over_bound": round(span_local / bound_local, 3),
        "matches_per_replica": per_replica,
        "home_replica_share": round(affinity, 3),
        "output_identical_to_local": ok_lines,
        "round_synchronous_same_rankings": ok_sync,
    }, ok_lines and ok_sync


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--only", choices=("a", "b"), default=None, help="run one part only")
    ap.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="matches prefetched per replica in (b) (default: the pool's, max(1, 8 // 4) = 2)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import ray

    ray.init(num_cpus=4, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        report: dict[str, Any] = {}
        ok_a = ok_b = True
        if args.only in (None, "a"):
            report["(a) overhead"], ok_a = overhead(200 if args.quick else 1000)
        if args.only in (None, "b"):
            report["(b) latency-variable"], ok_b = variable(50 if args.quick else 200, 4, 8, args.prefetch)
    finally:
        ray.shutdown()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for section, values in report.items():
            print(section)
            for k, v in values.items():
                print(f"  {k}: {v}")
    if not (ok_a and ok_b):
        print("bench_ray: CORRECTNESS FAILURE: Ray results differ from local", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
