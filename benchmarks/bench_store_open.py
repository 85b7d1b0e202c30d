"""What opening a writable judgement store costs: its writer process against its writer thread.

    python benchmarks/bench_store_open.py [--opens 20]

Opens and closes one store ``--opens`` times with each writer (``JudgementStore(path,
writer="process")``, the default, and ``writer="thread"``), alternating, and prints the median
milliseconds per open + close. The writer process is a fresh ``python -I -S`` interpreter, so
from Python keep one store open across calls rather than opening one per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tourney.store import JudgementStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opens", type=int, default=20)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"process": [], "thread": []}
    with tempfile.TemporaryDirectory(prefix="bench_store_open_") as d:
        for w in times:
            JudgementStore(Path(d) / f"{w}.sqlite", writer=w).close()  # created once, reopened below
        for _ in range(args.opens):
            for w, ts in times.items():
                t0 = time.perf_counter()
                JudgementStore(Path(d) / f"{w}.sqlite", writer=w).close()
                ts.append(time.perf_counter() - t0)
    for w, ts in times.items():
        print(f"writer {w:>7}: {1e3 * statistics.median(ts):6.1f} ms per open + close (median of {len(ts)})")


if __name__ == "__main__":
    main()
