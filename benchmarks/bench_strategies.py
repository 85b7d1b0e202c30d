"""Benchmark of the ranking strategies: accuracy against cost on the simulated judge, and
their cost at large N.

Run: ``python3 benchmarks/bench_strategies.py`` (about half a minute; ``--prompts 50`` for a
quick run, ``--n 16`` for more candidates).

Large N: ``python3 benchmarks/bench_strategies.py --large`` runs ONE prompt of N = 1,000 and
N = 10,000 candidates (adaptive: N = 128, 1,000 and 10,000, which it refuses; ``--sizes``) per strategy (``--strategies``; default: those whose
comparison count grows at most like N log N, see ``LARGE_SPECS``; the round-robin designs ask
N (N - 1) / 2 comparisons by design) on the instant simulated judge, each in a fresh process
capped at ``--mem-gib`` of address space and ``--timeout`` seconds, and reports: the wall time of
``Tournament.rank`` (engine + strategy; the judge takes no time), the strategy's own time
(driven directly, without the engine, answering every request from the latent order), the
peak RSS of the engine run, the comparisons, and whether the pick is the latent best. A run
over its cap reports ``over N GiB`` / ``over T s`` instead of numbers. ``--trees A,B`` runs the
same measurements from other checkouts (each with its own copy of this script), interleaved
per strategy and size, for a before/after table measured side by side under the same load.

Each prompt has ``--n`` candidates with latent qualities ~ N(0, 1) (passed as the input's
``scores``, so the truth is known) and the default simulated judge (about 83% agreement with the
latent order on random pairs, first-position bias 0.1). For every strategy spec it reports:
top-1 accuracy (the chosen best is the latent best), regret (latent quality of the best minus
that of the chosen one, mean), Kendall's tau of the full ranking against the latent order,
comparisons (requests) and judge samples per prompt, and the strategy's own CPU time per prompt
(the judge is instant, so the wall time is the engine's and the strategy's bookkeeping).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tourney import Tournament

SPECS = [
    "knockout",
    "knockout:both_orders=true",
    "voting:k=5",
    "voting:k=5,inner=round_robin",
    "swiss",
    "merge_sort",
    "merge_sort:votes=3,beam=3",
    "round_robin",
    "round_robin:scoring=elo",
    "elo:n_orders=16",
    "copeland",
    "bradley_terry",
    "bradley_terry:cycles=2",
    "pivot",
    "league",
    "v1_swiss",
    "adaptive",
    "adaptive:rounds=3,budget=24",
]


#: strategies measured at large N (default options)
LARGE_SPECS = ["knockout", "swiss", "merge_sort", "voting", "pivot", "league", "v1_swiss", "adaptive"]
#: the sizes measured per strategy when --sizes is not given (default: LARGE_SIZES): adaptive's
#: targets are N = 128 in under 10 s and N = 1,000 in under 60 s (issue 11); above 2,000 it refuses
SIZES_OF = {"adaptive": [128, 1000, 10000]}
LARGE_SIZES = [1000, 10000]


def _large_child(spec: str, n: int, mode: str) -> dict:
    """One measurement in this (fresh) process; see the module docstring."""
    from tourney.strategy import build_strategy
    from tourney.types import Judgement, MatchResult, Outcome

    q = np.random.default_rng(0).normal(size=n)
    if mode == "engine":
        items = [
            {"id": "large", "prompt": "p", "responses": [f"r{i}" for i in range(n)], "scores": [float(v) for v in q]}
        ]
        t0 = time.perf_counter()
        res = Tournament("simulated", spec, seed=0).rank(items)[0]
        return {
            "wall_s": time.perf_counter() - t0,
            "comparisons": res.comparisons,
            "status": res.status,
            "rounds": res.rounds,
            "best": res.best == int(np.argmax(q)),
        }
    s = build_strategy(spec).create(n, np.random.default_rng(0), [f"k{i:07d}" for i in range(n)])
    t0 = time.perf_counter()
    reqs = 0
    while True:
        batch = s.propose()
        if not batch:
            break
        reqs += len(batch)
        for r in batch:
            o = Outcome.A if q[r.first] > q[r.second] else Outcome.B
            s.observe(MatchResult(r, tuple(Judgement(o, sample=r.sample_offset + k) for k in range(r.samples))))
    best = s.ranking().best
    return {"wall_s": time.perf_counter() - t0, "comparisons": reqs, "status": "ok", "best": best == int(np.argmax(q))}


def _large_run(spec: str, n: int, mode: str, timeout: float, mem_gib: float, tree: Path) -> dict:
    """Run :func:`_large_child` of ``tree``'s copy of this script in a subprocess under the
    caps; add its peak RSS (MiB)."""
    cap = int(mem_gib * 2**30)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    cmd = [sys.executable, str(tree / "benchmarks" / "bench_strategies.py"), "--large-child", spec, str(n), mode]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit, env=env)
    t0 = time.monotonic()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return {"error": f"over {timeout:g} s", "rss_mib": usage.ru_maxrss / 1024}
        time.sleep(0.05)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    rss = usage.ru_maxrss / 1024  # Linux: KiB
    if os.waitstatus_to_exitcode(status) != 0:
        over = "MemoryError" in err or "Cannot allocate" in err
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {status}"
        return {"error": f"over {mem_gib:g} GiB" if over else last[:80], "rss_mib": rss}
    return {**json.loads(out.strip().splitlines()[-1]), "rss_mib": rss}


def large(specs: list[str], sizes: list[int] | None, timeout: float, mem_gib: float, trees: list[Path]) -> None:
    print(f"large N, one prompt, instant simulated judge; caps {mem_gib:g} GiB, {timeout:g} s per run")
    names = {t: t.name for t in trees}
    width = max(len(v) for v in names.values()) if len(trees) > 1 else 0
    print(
        f"{'strategy':14s} {'N':>6s} {'tree':{width}s} {'comparisons':>11s} {'wall s':>10s} "
        f"{'strategy s':>10s} {'peak RSS MiB':>12s} {'best':>5s} {'rounds':>6s}"
    )
    for spec in specs:
        for n in sizes or SIZES_OF.get(spec.split(":")[0], LARGE_SIZES):
            for tree in trees:
                eng = _large_run(spec, n, "engine", timeout, mem_gib, tree)
                own = _large_run(spec, n, "strategy", timeout, mem_gib, tree)
                head = f"{spec:14s} {n:6d} {names[tree] if width else '':{width}s}"
                own_s = own.get("error") or format(own["wall_s"], ".2f")
                if "error" in eng:
                    print(f"{head} {'':>11s} {eng['error']:>10s} {own_s:>10s} {eng['rss_mib']:12.0f}", flush=True)
                    continue
                print(
                    f"{head} {eng['comparisons']:11d} {eng['wall_s']:10.2f} {own_s:>10s} "
                    f"{eng['rss_mib']:12.0f} {eng['best']!s:>5s} {eng.get('rounds', ''):>6}",
                    flush=True,
                )


def kendall_tau(order: list[int], truth: np.ndarray) -> float:
    rank = np.empty(len(order))
    rank[list(order)] = np.arange(len(order))
    conc = disc = 0
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            s = np.sign(truth[i] - truth[j]) * np.sign(rank[j] - rank[i])
            conc += s > 0
            disc += s < 0
    return (conc - disc) / max(conc + disc, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="candidates per prompt (default 8)")
    ap.add_argument("--prompts", type=int, default=200, help="prompts per strategy (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--judge", default="simulated", help="judge spec (default: simulated)")
    ap.add_argument("--large", action="store_true", help="measure one prompt at large N instead (see the docstring)")
    ap.add_argument(
        "--sizes", default=None, help="--large: candidate counts (default 1000,10000; adaptive: 128,1000,10000)"
    )
    ap.add_argument("--strategies", default=",".join(LARGE_SPECS), help="--large: ';'-separated specs")
    ap.add_argument("--timeout", type=float, default=300.0, help="--large: seconds per run (default 300)")
    ap.add_argument("--mem-gib", type=float, default=6.0, help="--large: address-space cap per run (default 6)")
    ap.add_argument(
        "--trees",
        default=None,
        help="--large: comma-separated checkout roots to measure side by side (default: this one)",
    )
    ap.add_argument("--large-child", nargs=3, metavar=("SPEC", "N", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.large_child:
        spec, n, mode = args.large_child
        print(json.dumps(_large_child(spec, int(n), mode)))
        return
    if args.large:
        sep = ";" if ";" in args.strategies else ","
        root = Path(__file__).resolve().parents[1]
        trees = [Path(t).resolve() for t in args.trees.split(",")] if args.trees else [root]
        large(
            [s for s in args.strategies.split(sep) if s],
            [int(v) for v in args.sizes.split(",")] if args.sizes else None,
            args.timeout,
            args.mem_gib,
            trees,
        )
        return
    rng = np.random.default_rng(args.seed)
    items = []
    for k in range(args.prompts):
        q = rng.normal(size=args.n)
        items.append(
            {
                "id": str(k),
                "prompt": f"prompt {k}",
                "responses": [f"r{k}-{i}" for i in range(args.n)],
                "scores": [float(v) for v in q],
            }
        )
    truth = [np.asarray(it["scores"]) for it in items]
    print(f"n={args.n}, {args.prompts} prompts, judge {args.judge}, seed {args.seed}")
    print(
        f"{'strategy':34s} {'top-1':>6s} {'regret':>7s} {'tau':>6s} {'comparisons':>12s} {'samples':>8s} {'ms/prompt':>10s}"
    )
    for spec in SPECS:
        t0 = time.perf_counter()
        res = Tournament(args.judge, spec, seed=args.seed).rank(items)
        dt = (time.perf_counter() - t0) / len(items) * 1e3
        top1 = np.mean([r.best == int(np.argmax(q)) for r, q in zip(res, truth)])
        regret = np.mean([q.max() - q[r.best] for r, q in zip(res, truth)])
        tau = np.mean([kendall_tau(list(r.ranking), q) for r, q in zip(res, truth)])
        comps = np.mean([r.comparisons for r in res])
        samples = np.mean([r.samples for r in res])
        print(f"{spec:34s} {top1:6.3f} {regret:7.3f} {tau:6.3f} {comps:12.1f} {samples:8.1f} {dt:10.2f}")


if __name__ == "__main__":
    main()
