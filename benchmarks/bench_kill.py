"""What a SIGKILL loses: judgements that completed before the kill but are not in the store.

    python benchmarks/bench_kill.py [--kills 10] [--judge simulated:latency_median_s=0.002] [--tree MAIN]

Each round starts a real process that ranks prompts with a store (the scheduler and the
judgement store as ``tourney rank`` uses them). Its judge logs every completed judgement to a
side file (time, prompt id, pair, sample) the moment it returns; the scheduler puts it into the
store in the same event-loop step. The parent kills the process with SIGKILL at a random moment,
then compares: a judgement logged but not in the store was lost; its AGE is the time from its
completion to the kill. The store's promise: only judgements of the last ``flush_interval_s``
(0.02 s) plus one commit are lost. Printed: completed, lost, and the age of the oldest lost
judgement per kill, and over all kills the largest age and the age below which 99% of lost ones
fall. The worst case is an instant judge (the writer always busy): ``--judge simulated``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from tourney.cache import StoreCache
    from tourney.items import Item
    from tourney.judges import build_judge
    from tourney.scheduler import Scheduler
    from tourney.store import JudgementStore
    from tourney.strategy import build_strategy

    store_path, side, spec, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    log = open(side, "w", buffering=1)  # one write per line: in the OS's hands once written

    class Logged:
        def __init__(self, inner):
            self.inner = inner
        def __getattr__(self, name):
            return getattr(self.inner, name)
        def for_item(self, item):
            return self
        async def judge(self, match):
            got = await self.inner.judge(match)
            log.write(f"{time.time():.6f} {match.prompt_id} {match.first} {match.second} {match.sample_offset} {len(got)}\\n")
            return got

    items = [Item(i, f"p{i}", f"question {i}", tuple(f"answer {i}.{k} " * 8 for k in range(16))) for i in range(n)]
    judge = Logged(build_judge(spec))
    store = JudgementStore(store_path)
    sched = Scheduler(judge, build_strategy("knockout"), seed=1, concurrency=32, cache=StoreCache(store, judge))
    print("ready", flush=True)
    asyncio.run(sched.rank(items))
    store.close()
""")


def settle(store: Path, quiet_s: float = 0.3, limit_s: float = 10.0) -> None:
    """Wait until the store's judgement count has not changed for ``quiet_s``."""

    def count() -> int:
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM judgements").fetchone()[0]
        except sqlite3.Error:
            return -1
        finally:
            con.close()

    deadline, last = time.monotonic() + limit_s, count()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = count()
        if now == last:
            return
        last = now


def one_kill(tmp: Path, spec: str, n: int, after_s: float, tree: Path = REPO) -> dict:
    store, side = tmp / "s.sqlite", tmp / "side.log"
    for p in (store, Path(f"{store}-wal"), Path(f"{store}-shm"), side):
        p.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(store), str(side), spec, str(n)], env=env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(after_s)
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the store's writer process (if any) commits the batch it was given, then exits: count that
    settle(store)
    done: dict[tuple, float] = {}
    for line in side.read_text().splitlines():
        parts = line.split()
        if len(parts) != 6:
            continue  # a line cut by the kill
        t, pid, a, b, off, k = float(parts[0]), parts[1], int(parts[2]), int(parts[3]), int(parts[4]), int(parts[5])
        for s in range(off, off + k):
            done[(pid, a, b, s)] = t
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    stored = {tuple(r) for r in con.execute("SELECT prompt_id, first_index, second_index, sample FROM judgements")}
    con.close()
    lost = {k: killed_at - t for k, t in done.items() if k not in stored}
    return {"completed": len(done), "lost": len(lost), "ages": sorted(lost.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--judge", default="simulated:latency_median_s=0.002,latency_sigma=0.5")
    ap.add_argument("--prompts", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tree", default=str(REPO), help="the checkout whose store to kill (e.g. main's, to compare)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    ages: list[float] = []
    print(f"store of {args.tree}; judge {args.judge}; SIGKILL after 1.5-4 s of judging; ages in ms")
    print(f"{'kill':>4} {'completed':>9} {'lost':>5} {'oldest lost':>11}")
    with tempfile.TemporaryDirectory(prefix="bench_kill_") as d:
        for k in range(args.kills):
            r = one_kill(Path(d), args.judge, args.prompts, rng.uniform(1.5, 4.0), Path(args.tree))
            ages += r["ages"]
            oldest = f"{1e3 * r['ages'][-1]:.0f}" if r["ages"] else "-"
            print(f"{k:>4} {r['completed']:>9} {r['lost']:>5} {oldest:>11}")
    ages.sort()
    if ages:
        p99 = ages[min(len(ages) - 1, int(0.99 * len(ages)))]
        print(f"lost judgements: {len(ages)}; oldest {1e3 * ages[-1]:.0f} ms; 99% younger than {1e3 * p99:.0f} ms")
    else:
        print("lost judgements: 0")


if __name__ == "__main__":
    main()
