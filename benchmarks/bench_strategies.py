"""Benchmark of the ranking strategies: accuracy against cost on the simulated judge.

Run: ``python3 benchmarks/bench_strategies.py`` (about half a minute; ``--prompts 50`` for a
quick run, ``--n 16`` for more candidates).

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
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tourney import Tournament  # noqa: E402

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
]


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
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    items = []
    for k in range(args.prompts):
        q = rng.normal(size=args.n)
        items.append({"id": str(k), "prompt": f"prompt {k}", "responses": [f"r{k}-{i}" for i in range(args.n)],
                      "scores": [float(v) for v in q]})
    truth = [np.asarray(it["scores"]) for it in items]
    print(f"n={args.n}, {args.prompts} prompts, judge {args.judge}, seed {args.seed}")
    print(f"{'strategy':34s} {'top-1':>6s} {'regret':>7s} {'tau':>6s} {'comparisons':>12s} {'samples':>8s} {'ms/prompt':>10s}")
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
