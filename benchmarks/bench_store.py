"""Benchmark of the judgement store (tourney.store): its own cost per judgement, and its size.

Run: ``python3 benchmarks/bench_store.py`` (about a minute; ``--n 20000`` for a quick run);
``--against TREE`` also runs the size benchmark with another checkout's store (e.g. main's,
schema version 1) in a subprocess, side by side.

Measures, in a temporary directory on the local disk:

1. put + flush throughput for ``--n`` judgements (realistic sizes: ~1.5 kB responses, ~2 kB
   reasoning, 16 candidates per prompt), with ``durable=True`` (the default) and
   ``durable=False``; the resulting file size.
0. bytes per judgement on disk, per table and index (SQLite's dbstat), on real texts: the
   responses of the shared data's AlpacaEval file (9 models per instruction) and reasoning cut
   from the real judge outputs in tests/fixtures/judge_outputs (``--reasoning`` characters each,
   as real reasoning compresses, not as a word list does); with compression and without.
2. Reads on that store: open (with quick_check), get_many of every key (in per-prompt chunks, as
   a scheduler asks), single get, export, check().
3. A simulated workload, 100 prompts x 15 matches (a 16-candidate knockout), against a trivial
   in-memory dict path: a first run (every lookup misses, every judgement is put) and a resumed
   run (every lookup hits). Printed as microseconds per judgement and as ratios, and as a share
   of a judge call of 0.1 s and 2 s (a vLLM pairwise judgement with reasoning takes seconds).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("BENCH_TREE", str(REPO)))  # --against runs this file with another tree's store

from tourney.store import JudgementStore
from tourney.types import Judgement, Outcome

JUDGE = {
    "name": "vllm",
    "arg": "Qwen/Qwen3-8B",
    "options": {"format": "pandalm", "temperature": 0.6, "top_p": 0.95, "max_tokens": 4096},
}
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "that",
    "it",
    "for",
    "on",
    "with",
    "as",
    "was",
    "be",
    "by",
    "this",
    "are",
    "or",
    "an",
    "at",
    "from",
    "which",
    "not",
    "have",
]


def text(rng: random.Random, n_chars: int) -> str:
    out, size = [], 0
    while size < n_chars:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def make_dataset(rng: random.Random, n_prompts: int, n_candidates: int) -> list[tuple[str, list[dict], list[str]]]:
    return [
        (
            f"p{p}",
            [{"role": "user", "content": f"Question {p}: " + text(rng, 400)}],
            [f"[{c}] " + text(rng, 1500) for c in range(n_candidates)],
        )
        for p in range(n_prompts)
    ]


def judgement(rng: random.Random, sample: int = 0) -> Judgement:
    return Judgement(
        outcome=rng.choice((Outcome.A, Outcome.B, Outcome.A, Outcome.B, Outcome.ABSTAIN)),
        reasoning=text(rng, 2000),
        verdict="[[A]]",
        sample=sample,
        prompt_tokens=900,
        cached_tokens=600,
        completion_tokens=700,
        latency_s=rng.uniform(1, 5),
        extra={"format": "pandalm"},
    )


def row(label: str, value: str) -> None:
    print(f"  {label:<44} {value}")


def rate(dt: float, n: int, what: str) -> str:
    return f"{dt:6.2f} s  {n / dt:9.0f} {what}/s  {1e6 * dt / n:6.1f} us each"


def bench_bulk(path: Path, n: int, durable: bool, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    n_prompts = max(1, n // 100)
    data = make_dataset(rng, n_prompts, 16)
    judgements = [judgement(rng) for _ in range(1000)]
    keys = []
    t0 = time.perf_counter()
    with JudgementStore(path, durable=durable) as store:
        i = 0
        while i < n:
            pid, prompt, cands = data[(i // 100) % n_prompts]
            a, b = (i * 7) % 16, (i * 7 + 1 + (i // 16) % 15) % 16
            j = judgements[i % 1000]
            sample = i // (100 * n_prompts)
            key = store.key(JUDGE, prompt, cands[a], cands[b], sample)
            store.put(key, Judgement(**{**j.__dict__, "sample": sample}), prompt_id=pid, prompt=prompt, first=a,
                      second=b, first_text=cands[a], second_text=cands[b], judge_identity=JUDGE)  # fmt: skip
            keys.append(key)
            i += 1
    dt = time.perf_counter() - t0
    distinct = len(set(keys))
    size = sum(os.path.getsize(p) for p in (str(path), f"{path}-wal") if os.path.exists(p))
    row(f"put+flush {n} (durable={durable})", rate(dt, n, "puts"))
    per = size / max(distinct, 1) / 1e3
    row("  distinct keys / file size", f"{distinct}  {size / 1e6:.1f} MB ({per:.2f} kB/judgement)")
    return keys


def bench_reads(path: Path, keys: list[str]) -> None:
    t0 = time.perf_counter()
    store = JudgementStore(path)
    row("open (quick_check + write probe)", f"{time.perf_counter() - t0:6.2f} s")
    t0 = time.perf_counter()
    found = 0
    for i in range(0, len(keys), 100):
        found += len(store.get_many(keys[i : i + 100]))
    dt = time.perf_counter() - t0
    row(f"get_many {len(keys)} keys (chunks of 100)", rate(dt, len(keys), "keys"))
    assert found == len(keys), (found, len(keys))
    sample = keys[:: max(1, len(keys) // 10000)]
    t0 = time.perf_counter()
    for k in sample:
        store.get(k)
    dt = time.perf_counter() - t0
    row(f"get {len(sample)} keys one by one", rate(dt, len(sample), "keys"))
    t0 = time.perf_counter()
    n = sum(1 for _ in store.export())
    dt = time.perf_counter() - t0
    row(f"export {n} records", f"{dt:6.2f} s  {n / dt:9.0f} records/s")
    t0 = time.perf_counter()
    problems = store.check()
    row("check() (integrity_check + every hash)", f"{time.perf_counter() - t0:6.2f} s  problems: {len(problems)}")
    store.close()


def bench_workload(tmp: Path, n_prompts: int = 100, n_candidates: int = 16, repeats: int = 3) -> None:
    rng = random.Random(1)
    data = make_dataset(rng, n_prompts, n_candidates)
    canned = [judgement(rng) for _ in range(64)]
    # a knockout over 16 candidates: 15 matches per prompt
    matches = []
    for pid, prompt, cands in data:
        alive = list(range(n_candidates))
        while len(alive) > 1:
            nxt = []
            for a, b in zip(alive[::2], alive[1::2]):
                matches.append((pid, prompt, cands, a, b))
                nxt.append(a if (a * 31 + b) % 3 else b)
            alive = nxt
    n = len(matches)

    def judge(i: int) -> Judgement:  # a trivial stand-in: the judge's cost is not measured here
        return canned[i % 64]

    def dict_run(cache: dict) -> int:
        paid = 0
        for i, (pid, _prompt, _cands, a, b) in enumerate(matches):
            k = (pid, a, b, 0)
            if k not in cache:
                cache[k] = judge(i)
                paid += 1
        return paid

    def store_run(path: Path) -> int:
        paid = 0
        with JudgementStore(path) as store:
            by_prompt: dict[str, list[int]] = {}
            for i, m in enumerate(matches):
                by_prompt.setdefault(m[0], []).append(i)
            for idxs in by_prompt.values():  # one round trip per prompt, as a scheduler would batch
                keys = {}
                for i in idxs:
                    _pid, prompt, cands, a, b = matches[i]
                    keys[i] = store.key(JUDGE, prompt, cands[a], cands[b], 0)
                have = store.get_many(keys.values())
                for i in idxs:
                    if keys[i] not in have:
                        pid, prompt, cands, a, b = matches[i]
                        store.put(keys[i], judge(i), prompt_id=pid, prompt=prompt, first=a, second=b,
                                  first_text=cands[a], second_text=cands[b], judge_identity=JUDGE)  # fmt: skip
                        paid += 1
        return paid

    def best(fn, *args) -> tuple[float, int]:
        times, out = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn(*args)
            times.append(time.perf_counter() - t0)
        return min(times), out

    fresh_dict, paid = best(lambda: dict_run({}))
    assert paid == n
    warm = {}
    dict_run(warm)
    resume_dict, paid = best(dict_run, warm)
    assert paid == 0

    def fresh_store() -> int:
        path = tmp / f"w{time.perf_counter_ns()}.sqlite"
        return store_run(path)

    fresh_s, paid = best(fresh_store)
    assert paid == n
    path = tmp / "resume.sqlite"
    store_run(path)
    resume_s, paid = best(store_run, path)
    assert paid == 0

    print(f"\nsimulated workload: {n_prompts} prompts x {n // n_prompts} matches = {n} judgements (best of {repeats})")
    runs = (("first run (all miss + put)", fresh_dict, fresh_s), ("resumed run (all hit)", resume_dict, resume_s))
    for label, d, s in runs:
        row(label, f"dict {1e6 * d / n:7.2f} us/j   store {1e6 * s / n:7.1f} us/j   ratio {s / d:6.0f}x")
        for judge_s in (0.1, 2.0):
            row(f"  store cost as share of a {judge_s:g} s judge call", f"{100 * (s / n) / judge_s:.4f} %")


def real_texts(reasoning_chars: int, seed: int = 0) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(instruction, responses) from the shared AlpacaEval file, and reasoning texts cut from the
    real judge outputs of tests/fixtures/judge_outputs."""
    import json

    shared = Path(os.environ.get("TOURNEY_SHARED", REPO.parent / "shared")) / "data" / "alpaca_eval"
    path = shared / "multi_candidate_9models.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set TOURNEY_SHARED to the shared data folder")
    prompts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        prompts.append((rec["instruction"], [c["output"] for c in rec["candidates"]]))
    corpus = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((REPO / "tests/fixtures/judge_outputs").glob("*.txt"))
    )
    rng = random.Random(seed)
    reasons = []
    for _ in range(200):
        start = rng.randrange(0, max(1, len(corpus) - reasoning_chars))
        reasons.append(corpus[start : start + reasoning_chars])
    return prompts, reasons


def bench_size(path: Path, n: int, reasoning_chars: int, compress: bool) -> None:
    """Bytes per judgement on disk, per table/index, for ``n`` judgements on real texts."""
    import sqlite3

    import tourney.store as ts

    if not compress and hasattr(ts, "_COMPRESS_MIN_CHARS"):
        ts._COMPRESS_MIN_CHARS = 10**12
    prompts, reasons = real_texts(reasoning_chars)
    rng = random.Random(1)
    judge = {**JUDGE, "options": {**JUDGE["options"], "format": "rm_r1"}}
    with JudgementStore(path) as store:
        i = 0
        while i < n:
            instruction, cands = prompts[(i // 8) % len(prompts)]
            a, b = rng.sample(range(len(cands)), 2)
            j = Judgement(Outcome.A if i % 2 else Outcome.B, reasoning=reasons[i % len(reasons)], verdict="<answer>[[A]]</answer>",
                          sample=i // (8 * len(prompts)), prompt_tokens=900, cached_tokens=600, completion_tokens=700,
                          latency_s=rng.uniform(1, 5), extra={"format": "rm_r1"})  # fmt: skip
            key = store.key(judge, instruction, cands[a], cands[b], j.sample)
            store.put(key, j, prompt_id=f"p{(i // 8) % len(prompts)}", prompt=instruction, first=a, second=b,
                      first_text=cands[a], second_text=cands[b], judge_identity=judge)  # fmt: skip
            i += 1
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        judgements = con.execute("SELECT count(*) FROM judgements").fetchone()[0]
    except sqlite3.OperationalError as exc:  # an SQLite built without dbstat
        print(f"  (no per-table sizes: {exc})")
        rows, judgements = [], n
    finally:
        con.close()
    total = path.stat().st_size
    compressing = compress and hasattr(ts, "_COMPRESS_MIN_CHARS")
    label = f"schema {getattr(ts, 'SCHEMA_VERSION', '?')}, {'compressed' if compressing else 'not compressed'}"
    row(
        f"{judgements} judgements on real texts ({label})",
        f"{total / 1e6:7.1f} MB = {total / judgements:6.0f} B/judgement",
    )
    for name, size in rows:
        if size / judgements >= 1:
            row(f"  {name}", f"{size / judgements:6.0f} B/judgement")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="judgements for the bulk benchmark")
    ap.add_argument("--size-n", type=int, default=20_000, help="judgements for the size benchmark")
    ap.add_argument(
        "--reasoning", type=int, default=2000, help="characters of reasoning per judgement (size benchmark)"
    )
    ap.add_argument("--against", default=None, metavar="TREE", help="also run the size benchmark with TREE's store")
    ap.add_argument("--size-only", action="store_true", help="only the size benchmark")
    args = ap.parse_args()
    print(f"tourney store benchmark: python {sys.version.split()[0]}, sqlite {__import__('sqlite3').sqlite_version}")
    with tempfile.TemporaryDirectory(prefix="bench_store_", dir=os.environ.get("BENCH_DIR")) as d:
        tmp = Path(d)
        print(
            f"\nsize: {args.size_n} judgements, AlpacaEval responses, {args.reasoning} characters of real judge reasoning"
        )
        for compress in (True, False):
            bench_size(tmp / f"size{compress}.sqlite", args.size_n, args.reasoning, compress)
            if not hasattr(__import__("tourney.store").store, "_COMPRESS_MIN_CHARS"):
                break  # a store without compression
        if args.against:
            import subprocess

            subprocess.run(
                [sys.executable, __file__, "--size-only", "--size-n", str(args.size_n), "--reasoning", str(args.reasoning)],
                env={**os.environ, "BENCH_TREE": args.against, "PYTHONPATH": args.against}, check=True,
            )  # fmt: skip
        if args.size_only:
            return
        print(f"\nbulk: {args.n} judgements, 16 candidates per prompt, ~1.5 kB responses, ~2 kB reasoning")
        keys = bench_bulk(tmp / "full.sqlite", args.n, durable=True)
        bench_bulk(tmp / "normal.sqlite", args.n, durable=False)
        bench_reads(tmp / "full.sqlite", keys)
        bench_workload(tmp)


if __name__ == "__main__":
    main()
