"""Benchmark the adaptive strategy's own CPU per prompt (and the share spent fitting its posterior).

    python benchmarks/bench_adaptive.py                          # this tree
    python benchmarks/bench_adaptive.py --against /work/main     # this tree and another, side by side

Drives :class:`strategies.adaptive.Adaptive` directly (no scheduler, no judge process) against an
instant, seeded Bradley-Terry oracle: ``--prompts`` prompts of ``--n`` candidates with latent
qualities ~ N(0, 1); the first-shown candidate wins with probability
``1 / (1 + exp(-(2 (q_first - q_second) + 0.4)))`` (a first-position advantage of 0.4 log-odds),
drawn from a hash of (prompt, pair, sample index) so that every tree sees the same verdicts for
the same requests. Measured with ``time.process_time`` around every ``propose``, ``observe`` and
the final ``ranking`` call, i.e. the strategy's CPU only (after an untimed warm-up prompt that
pays the one-off imports of a process); "fit" is the part spent in
``Adaptive._posterior`` (the MAP fit and its covariance), when the strategy has that method.

With ``--against TREE`` each configuration runs ``--rounds`` times in fresh subprocesses,
alternating this tree and TREE (so both see the same machine load), and the table shows the
median of each and the ratio this/other. A digest of every prompt's result (order, requests,
p_best) says whether the two trees made the same decisions.

BLAS threading is left as the user's runs have it (``tourney rank`` and ``simulate`` do not
pin it), because that is where it can hurt: multi-threaded OpenBLAS runs some LAPACK routines on
tiny matrices in threads (``dpotri`` at n = 17 took milliseconds instead of microseconds on a
busy 2-core machine), and ``time.process_time`` counts every thread's CPU. ``--blas-threads 1``
pins the workers to one thread for quieter numbers. Speed numbers are ratios measured side by
side; never turn them into timed assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]

#: (label, n, adaptive parameters): the default settings at N = 16 and N = 64 (issue 12 asks
#: <= 20 ms and <= 200 ms per prompt there), the budget-60 setting of the harness tables and the
#: latency-bounded setting of issue 12's targets (6 rounds, 3N comparisons), and N = 128 / 1,000
#: (issue 11: the per-decision cost must not grow like a dense N x N posterior sample; run them
#: with ``--configs n128-default,n1000-default --prompts 1``).
CONFIGS = [
    ("n16-default", 16, {}),
    ("n16-budget60", 16, {"budget": 60}),
    ("n16-r6-b48", 16, {"rounds": 6, "budget": 48}),
    ("n64-default", 64, {}),
    ("n128-default", 128, {}),
    ("n1000-default", 1000, {}),
]
#: the configurations run when --configs is not given (the large ones take seconds per prompt)
DEFAULT_CONFIGS = ("n16-default", "n16-budget60", "n16-r6-b48", "n64-default")
POSITION_LOGIT = 0.4
SLOPE = 2.0


def _u(*parts: object) -> float:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 0.5) / 2.0**64


def worker(n: int, params: dict, prompts: int, seed: int) -> dict:
    """Run the workload in this process (on whatever tree ``sys.path`` finds) and measure it."""
    from strategies.adaptive import Adaptive
    from tourney.types import Judgement, MatchResult, Outcome

    fit_cpu = [0.0, 0]
    posterior = getattr(Adaptive, "_posterior", None)
    if posterior is not None:

        def timed(self, *a, **k):
            t0 = time.process_time()
            try:
                return posterior(self, *a, **k)
            finally:
                fit_cpu[0] += time.process_time() - t0
                fit_cpu[1] += 1

        Adaptive._posterior = timed
    # warm-up, untimed: the first posterior fit of a process imports scipy.linalg (hundreds of
    # milliseconds), a one-off cost of a run, not of a prompt
    warm = Adaptive(min(n, 16), np.random.default_rng(-1 % 2**32), None, **{**params, "budget": min(n, 16)})
    for req in warm.propose():
        warm.observe(
            MatchResult(
                req,
                tuple(
                    Judgement(outcome=Outcome.A, sample=s)
                    for s in range(req.sample_offset, req.sample_offset + req.samples)
                ),
            )
        )
    warm.ranking()
    fit_cpu[0], fit_cpu[1] = 0.0, 0
    rng = np.random.default_rng(seed)
    total = 0.0
    digest = hashlib.blake2b(digest_size=8)
    requests = 0
    rounds = 0
    for p in range(prompts):
        q = rng.normal(size=n)
        t0 = time.process_time()
        strat = Adaptive(n, np.random.default_rng([seed, p]), [f"c{p}-{i}" for i in range(n)], **params)
        pending = strat.propose()
        total += time.process_time() - t0
        while pending:
            req = pending.pop(0)
            js = []
            for s in range(req.sample_offset, req.sample_offset + req.samples):
                pr = 1.0 / (1.0 + math.exp(-(SLOPE * (q[req.first] - q[req.second]) + POSITION_LOGIT)))
                win = _u(p, req.first, req.second, s) < pr
                js.append(Judgement(outcome=Outcome.A if win else Outcome.B, sample=s))
            t0 = time.process_time()
            strat.observe(MatchResult(req, tuple(js)))
            pending += strat.propose()
            total += time.process_time() - t0
            requests += 1
        t0 = time.process_time()
        r = strat.ranking()
        total += time.process_time() - t0
        digest.update(repr((r.order, r.info.get("requests"), r.info.get("p_best"))).encode())
        rounds += r.info.get("rounds") or 0
    return {
        "cpu_ms_per_prompt": 1e3 * total / prompts,
        "fit_ms_per_prompt": 1e3 * fit_cpu[0] / prompts if posterior is not None else None,
        "fits_per_prompt": fit_cpu[1] / prompts if posterior is not None else None,
        "requests_per_prompt": requests / prompts,
        "rounds_per_prompt": rounds / prompts,
        "digest": digest.hexdigest(),
    }


def _run_tree(tree: Path, label: str, prompts: int, seed: int, blas_threads: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    if blas_threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(blas_threads)
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            label,
            "--prompts",
            str(prompts),
            "--seed",
            str(seed),
        ],
        env=env,
        cwd=str(tree),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=40, help="prompts per configuration (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs per tree (default 3)")
    ap.add_argument("--against", type=Path, help="another tree to run side by side")
    ap.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help="comma-separated labels from: " + ", ".join(c[0] for c in CONFIGS),
    )
    ap.add_argument("--blas-threads", type=int, help="pin the workers' BLAS threads (default: as is)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    by_label = {c[0]: c for c in CONFIGS}
    if args.worker:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(HERE)).split(os.pathsep)[0])
        _, n, params = by_label[args.worker]
        print(json.dumps(worker(n, params, args.prompts, args.seed)))
        return 0
    labels = [s for s in args.configs.split(",") if s]
    trees = [("this", HERE)] + ([("other", args.against.resolve())] if args.against else [])
    threads = args.blas_threads or os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"adaptive CPU per prompt, {args.prompts} prompts per run, {args.rounds} run(s) per tree; "
        f"BLAS threads {threads}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    for name, tree in trees:
        print(f"  {name}: {tree}")
    head = (
        f"{'config':<14} {'tree':<6} {'cpu ms/prompt':>13} {'fit ms/prompt':>13} {'fits':>6} {'requests':>8} "
        f"{'rounds':>7}  digest"
    )
    print(head)
    print("-" * len(head))
    for label in labels:
        runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
        for _ in range(args.rounds):
            for name, tree in trees:
                runs[name].append(_run_tree(tree, label, args.prompts, args.seed, args.blas_threads))
        med = {}
        for name, _ in trees:
            rs = runs[name]
            cpu = statistics.median(r["cpu_ms_per_prompt"] for r in rs)
            fit = (
                statistics.median(r["fit_ms_per_prompt"] for r in rs)
                if rs[0]["fit_ms_per_prompt"] is not None
                else None
            )
            med[name] = (cpu, fit)
            fit_s = f"{fit:>13.2f}" if fit is not None else f"{'n/a':>13}"
            fits = f"{rs[0]['fits_per_prompt']:>6.1f}" if rs[0]["fits_per_prompt"] is not None else f"{'n/a':>6}"
            rounds = rs[0].get("rounds_per_prompt")
            rounds_s = f"{rounds:>7.1f}" if rounds is not None else f"{'n/a':>7}"
            print(
                f"{label:<14} {name:<6} {cpu:>13.2f} {fit_s} {fits} {rs[0]['requests_per_prompt']:>8.1f} "
                f"{rounds_s}  {rs[0]['digest']}"
            )
        if len(trees) == 2:
            (c1, f1), (c2, f2) = med["this"], med["other"]
            same = runs["this"][0]["digest"] == runs["other"][0]["digest"]
            fit_ratio = f"{f1 / f2:.2f}" if f1 is not None and f2 else "n/a"
            print(
                f"{label:<14} ratio this/other: cpu {c1 / c2:.2f}, fit {fit_ratio}; "
                f"same decisions: {'yes' if same else 'NO'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
