"""Benchmark tourney.rating.bradley_terry against choix, side by side, in one run.

    python benchmarks/bench_bt.py            # choix ilsr_pairwise and ilsr_pairwise_dense
    python benchmarks/bench_bt.py --all      # also choix mm_pairwise and opt_pairwise (slow)
    python benchmarks/bench_bt.py --against /work/main   # and this tree's solver against another's

For seeded random data (1,000 items / 200,000 comparisons and 100 items / 100,000
comparisons; N(0, 1) log-strengths, uniformly random pairs, Bernoulli outcomes) it times our
fit and each applicable choix method (best of --repeats runs; methods taking over 2 s run
once), checks that the estimates agree within 1e-6 after centring, and prints the speed ratio
(choix time / our time). choix is timed on its own input format prepared in advance (a list
of (winner, loser) tuples, or the dense win-count matrix), which favours choix. Then it times a
100-round bootstrap relative to one fit, and measures peak memory (tracemalloc) to show that
the fitting state grows with distinct pairs, not comparisons.

BLAS runs single-threaded unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS is set: on a small
shared machine a multi-threaded LAPACK call competing with other processes can take 100x
longer, which makes timings of both libraries meaningless.

``--against TREE`` adds a side-by-side comparison of this tree's ``tourney/rating.py`` with
TREE's (loaded from its file), alternating the two in one process so both see the same machine
load: the large fits above, a small position fit with ``l2`` (a strategy's fit of one prompt),
bootstraps, and, when both trees have it, the adaptive strategy's posterior fit
(``bt_posterior_dense``, n = 16); it reports the median CPU time of each (BLAS is single-threaded
here, so that is the work done, whatever else the machine runs) and whether the results are
bit-identical.

Exit status: 1 if any agreement check fails (never because of timings); 2 if choix is missing.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tourney import rating
from tourney.rating import bradley_terry, bt_bootstrap

AGREE_TOL = 1e-6
SLOW_S = 2.0  # a method slower than this is timed once


def make_data(n: int, m: int, seed: int):
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 1.0, n)
    first = rng.integers(0, n, m)
    second = (first + rng.integers(1, n, m)) % n  # never a self-pair
    p = 1.0 / (1.0 + np.exp(-(s[first] - s[second])))
    y = (rng.random(m) < p).astype(float)
    return first, second, y


def best_time(fn, repeats: int):
    times, out = [], None
    for r in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if r == 0 and times[0] > SLOW_S:
            break
    return min(times), len(times), out


def choix_methods(choix, n, first, second, y, include_slow: bool):
    win = np.where(y == 1.0, first, second)
    lose = np.where(y == 1.0, second, first)
    data = list(zip(win.tolist(), lose.tolist()))
    comp = np.bincount(win * n + lose, minlength=n * n).reshape(n, n).astype(float)
    methods = {
        "ilsr_pairwise": lambda: choix.ilsr_pairwise(n, data),
        "ilsr_pairwise_dense": lambda: choix.ilsr_pairwise_dense(comp),
    }
    if include_slow:
        methods["mm_pairwise"] = lambda: choix.mm_pairwise(n, data)
        # opt_pairwise has a ridge term only; alpha=0 is its unregularised ML fit.
        methods["opt_pairwise"] = lambda: choix.opt_pairwise(n, data, alpha=0.0, method="BFGS")
    return methods


#: Methods whose default stopping rule reaches 1e-6 of the optimum, so disagreement would be
#: ours. mm_pairwise (linear convergence, stops on a small step) and opt_pairwise (BFGS
#: gradient tolerance) stop around 1e-5 at their defaults: their differences are shown, not
#: checked (tightening them multiplies their minutes-long run times).
CHECKED = {"ilsr_pairwise", "ilsr_pairwise_dense"}


def memory_rows(n: int, sizes: list[int], seed: int):
    """Peak traced memory of a whole fit and of its fitting state (after aggregation)."""
    rows = []
    for m in sizes:
        first, second, y = make_data(n, m, seed)
        tracemalloc.start()
        bradley_terry(n, first, second, y)
        _, peak_total = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        f, s, yy, w = rating._validate(n, first, second, y)
        pb = rating._problem(n, *rating._pairs(n, f, s, yy, w, "half", False), 0.0, False)
        tracemalloc.start()
        rating._newton(pb, None, 100, 1e-10, "diag")
        _, peak_fit = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        input_bytes = first.nbytes + second.nbytes + y.nbytes
        rows.append((m, pb.i.shape[0], input_bytes, peak_total, peak_fit))
    return rows


def against_rows(tree: Path, rounds: int):
    """Time this tree's rating module against ``tree``'s, alternating, on the same data."""
    import importlib.util
    import statistics

    spec = importlib.util.spec_from_file_location("_other_rating", tree / "tourney" / "rating.py")
    other = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = other
    spec.loader.exec_module(other)
    big, mid, small = make_data(1000, 200_000, 0), make_data(100, 100_000, 1), make_data(16, 240, 2)
    rng = np.random.default_rng(3)
    wins, losses = rng.integers(0, 3, (16, 16)).astype(float), rng.integers(0, 3, (16, 16)).astype(float)
    np.fill_diagonal(wins, 0.0)
    np.fill_diagonal(losses, 0.0)
    # (name, calls per timed run, fn(module) -> result)
    cases = [
        ("fit 1000 x 200,000", 1, lambda r: r.bradley_terry(1000, *big)),
        ("fit 100 x 100,000", 5, lambda r: r.bradley_terry(100, *mid)),
        ("fit 16 x 240, position, l2", 200, lambda r: r.bradley_terry(16, *small, l2=0.1, position=True)),
        (
            "bootstrap 100 x 100,000, 20 rounds",
            1,
            lambda r: r.bt_bootstrap(100, *mid, rounds=20, rng=np.random.default_rng(0)),
        ),
        (
            "bootstrap 16 x 240, 200 rounds",
            1,
            lambda r: r.bt_bootstrap(16, *small, rounds=200, rng=np.random.default_rng(0), l2=0.1, position=True),
        ),
        ("posterior 16, position (adaptive)", 300, lambda r: r.bt_posterior_dense(wins, losses, l2=0.1, position=True)),
    ]

    def flat(o):
        if isinstance(o, np.ndarray):  # bootstrap draws
            return o
        if hasattr(o, "theta"):  # BTPosterior
            return np.concatenate([o.theta, o.cov.ravel()])
        return np.concatenate([o.strengths, o.se])

    rows = []
    for name, reps, fn in cases:
        if name.startswith("posterior") and not hasattr(other, "bt_posterior_dense"):
            rows.append((name, None, None, None))
            continue
        times: dict[str, list[float]] = {"this": [], "other": []}
        outs = {}
        for k in range(rounds):
            pair = (("this", rating), ("other", other))
            for label, mod in pair if k % 2 else pair[::-1]:
                t0 = time.process_time()  # CPU: steadier than wall time on a shared machine
                for _ in range(reps):
                    outs[label] = fn(mod)
                times[label].append((time.process_time() - t0) / reps)
        same = bool(np.array_equal(flat(outs["this"]), flat(outs["other"]), equal_nan=True))
        rows.append((name, statistics.median(times["this"]), statistics.median(times["other"]), same))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--all", action="store_true", help="also time choix mm_pairwise and opt_pairwise")
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    parser.add_argument("--against", type=Path, help="another tree whose tourney/rating.py to time side by side")
    parser.add_argument("--against-rounds", type=int, default=6, help="alternating runs per case (default 6)")
    args = parser.parse_args()
    try:
        import choix
    except ImportError:
        print("choix is not installed: pip install choix", file=sys.stderr)
        return 2

    from importlib.metadata import version

    print(
        f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; "
        f"numpy {np.__version__}; choix {version('choix')}; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    ok = True
    cases = [(1000, 200_000, 0), (100, 100_000, 1)]
    print()
    header = (
        f"{'items':>5} {'comparisons':>11} {'pairs':>7} {'ours ms':>8} {'iters':>5}  "
        f"{'choix method':<20} {'choix ms':>9} {'runs':>4} {'ratio':>7} {'max|diff|':>9}"
    )
    print(header)
    print("-" * len(header))
    fit_times = {}
    for n, m, seed in cases:
        first, second, y = make_data(n, m, seed)
        t_ours, _runs, fit = best_time(partial(bradley_terry, n, first, second, y), args.repeats)
        fit_times[(n, m)] = (t_ours, first, second, y)
        pairs = np.unique(np.minimum(first, second) * n + np.maximum(first, second)).shape[0]
        if not fit.converged:
            ok = False
            print(f"  our fit did not converge on {n} x {m}")
        results = []
        for name, fn in choix_methods(choix, n, first, second, y, args.all).items():
            t_c, runs_c, est = best_time(fn, args.repeats)
            est = np.asarray(est)
            diff = float(np.max(np.abs((est - est.mean()) - fit.strengths)))
            agree = diff <= AGREE_TOL or name not in CHECKED
            ok &= agree
            results.append((t_c, name, runs_c, diff, agree))
        for k, (t_c, name, runs_c, diff, agree) in enumerate(sorted(results)):
            lead = f"{n:>5} {m:>11,} {pairs:>7,} {t_ours * 1e3:>8.1f} {fit.iterations:>5}" if k == 0 else " " * 41
            flag = "" if agree else "  DISAGREES"
            if name not in CHECKED:
                flag = "  (choix default tol; not checked)"
            fastest = " (fastest)" if k == 0 else ""
            print(
                f"{lead}  {name + fastest:<20} {t_c * 1e3:>9.1f} {runs_c:>4} {t_c / t_ours:>6.1f}x {diff:>9.1e}{flag}"
            )
    print()
    print(f"bootstrap ({args.rounds} rounds, multinomial resampling, warm-started):")
    for (n, m), (t_fit, first, second, y) in fit_times.items():
        t0 = time.perf_counter()
        draws = bt_bootstrap(n, first, second, y, rounds=args.rounds, rng=np.random.default_rng(0))
        t_boot = time.perf_counter() - t0
        finite = bool(np.all(np.isfinite(draws)))
        ok &= finite
        print(
            f"  {n:>5} items x {m:>7,}: {t_boot:6.2f} s = {t_boot / t_fit:5.1f} x one fit "
            f"({t_boot / args.rounds * 1e3:.1f} ms per round)"
        )
    print()
    print("peak memory (tracemalloc), 100 items: the fitting state depends on distinct pairs only")
    print(f"  {'comparisons':>11} {'pairs':>6} {'input MB':>9} {'whole fit MB':>13} {'Newton state MB':>16}")
    for m, npairs, inp, total, state in memory_rows(100, [100_000, 1_000_000], 1):
        print(f"  {m:>11,} {npairs:>6,} {inp / 1e6:>9.1f} {total / 1e6:>13.2f} {state / 1e6:>16.3f}")
    if args.against:
        print()
        print(f"this tree against {args.against} (median CPU of {args.against_rounds} alternating runs):")
        print(f"  {'case':<36} {'this ms':>9} {'other ms':>9} {'this/other':>10}  bit-identical")
        for name, t_this, t_other, same in against_rows(args.against.resolve(), args.against_rounds):
            if t_this is None:
                print(f"  {name:<36} {'n/a (the other tree has no bt_posterior_dense)':>40}")
                continue
            print(
                f"  {name:<36} {t_this * 1e3:>9.3f} {t_other * 1e3:>9.3f} {t_this / t_other:>10.2f}  "
                f"{'yes' if same else 'no'}"
            )
    print()
    print("agreement within 1e-6 after centring:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
