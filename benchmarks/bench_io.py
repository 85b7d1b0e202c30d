"""Peak memory of a whole ``tourney rank`` run against the number of prompts, per input/output format.

    python benchmarks/bench_io.py [--sizes 10000,100000] [--n 8] [--formats jsonl,parquet]

Each run is a fresh process (``python -m tourney rank``) with the instant simulated judge
(latency 0), knockout, N responses per prompt and ``--no-store`` (the store's own memory is
another benchmark's), reading an input of the given size and writing the output in the same
format (JSONL in, JSONL out; parquet in, parquet out). The process reports its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) at exit. Memory is flat in the number of prompts when the
peak at the largest size stays near the peak at the smallest (the ratio is printed): inputs are
read row by row or in record batches, results are written as they come (a parquet row group at a
time), and the scheduler keeps a bounded window of prompts open.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from tourney.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def make_input(path: Path, prompts: int, n: int, fmt: str) -> None:
    """``prompts`` rows of ``n`` responses of about 60 characters, plus one pass-through field."""

    def row(i: int) -> dict:
        return {
            "id": f"p{i}",
            "prompt": f"Question {i}: explain why the sky looks blue at noon.",
            "responses": [f"Answer {i}.{k}: scattering of sunlight by air molecules, variant {k}." for k in range(n)],
            "source": "bench",
        }

    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for i in range(prompts):
                fh.write(json.dumps(row(i)) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for start in range(0, prompts, 10_000):
            table = pa.Table.from_pylist([row(i) for i in range(start, min(prompts, start + 10_000))])
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def run(inp: Path, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        "rank",
        str(inp),
        "--out",
        str(out),
        "--no-store",
        "--no-progress",
        "--quiet",
        "--strategy",
        "knockout",
        "--judge",
        "simulated",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"run failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stderr.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="numbers of prompts, comma-separated")
    ap.add_argument("--n", type=int, default=8, help="responses per prompt (default 8)")
    ap.add_argument("--formats", default="jsonl,parquet", help="input/output formats, comma-separated")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    print(
        f"peak RSS of 'tourney rank' (instant simulated judge, knockout, N = {args.n}, --no-store), one fresh "
        "process per cell"
    )
    print(f"{'format':8} {'prompts':>9} {'peak RSS MB':>12} {'seconds':>8} {'comparisons/s':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            peaks = []
            for size in sizes:
                inp = Path(tmp) / f"in_{size}.{fmt}"
                t0 = time.perf_counter()
                make_input(inp, size, args.n, fmt)
                made = time.perf_counter() - t0
                r = run(inp, Path(tmp) / f"out_{size}.{fmt}")
                assert r["code"] == 0, r
                peaks.append(r["maxrss_mb"])
                rate = size * (args.n - 1) / r["seconds"]
                print(
                    f"{fmt:8} {size:>9,} {r['maxrss_mb']:>12.1f} {r['seconds']:>8.1f} {rate:>14,.0f}"
                    f"   (input {inp.stat().st_size / 2**20:.0f} MB, made in {made:.0f}s)",
                    flush=True,
                )
                inp.unlink()
            print(f"{fmt:8} peak at {sizes[-1]:,} / peak at {sizes[0]:,}: {peaks[-1] / peaks[0]:.2f}x")


if __name__ == "__main__":
    main()
