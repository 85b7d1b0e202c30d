"""Claims: runs that share a store never pay twice for a judgement, and what a kill loses.

Real processes and a real SQLite file throughout: two store objects are two owners (as two
processes are); the cross-process tests start ``tourney rank`` processes, kill them with
SIGKILL, and count what each paid from its meta file and what the store holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tourney import cache as cache_module
from tourney.cache import StoreCache
from tourney.errors import StoreError
from tourney.items import Item
from tourney.judges import build_judge
from tourney.scheduler import Scheduler
from tourney.store import JudgementStore
from tourney.strategy import build_strategy
from tourney.types import Judgement, Outcome

from .conftest import question_rows, tourney_argv, write_jsonl

REPO = Path(__file__).resolve().parents[1]
JUDGE = {"name": "simulated", "seed": 0}
PROMPT = "2 + 2 = ?"
#: how long a test waits for something that should happen within milliseconds
DEADLINE_S = 20.0


def claim_key(n: int) -> str:
    return f"{n:064x}"


def prompt_hash(prompt=PROMPT) -> str:
    from tourney.hashing import sha256_hex
    from tourney.store import canonical_json

    return sha256_hex(canonical_json(prompt))


def put(store: JudgementStore, first: str, second: str, outcome=Outcome.A, sample: int = 0) -> str:
    key = store.key(JUDGE, PROMPT, first, second, sample)
    store.put(
        key,
        Judgement(outcome, sample=sample),
        prompt_id="q",
        prompt=PROMPT,
        first=0,
        second=1,
        first_text=first,
        second_text=second,
        judge_identity=JUDGE,
    )
    return key


def wait_for(pred, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def claims_rows(path: Path) -> list[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT key, owner, expires FROM claims").fetchall()
    finally:
        con.close()


def insert_claim(path: Path, key: str, owner: str, expires: float) -> None:
    con = sqlite3.connect(path, timeout=5)
    with con:
        con.execute("INSERT INTO claims (key, owner, expires) VALUES (?, ?, ?)", (bytes.fromhex(key), owner, expires))
    con.close()


# ---------------------------------------------------------------- the store's claims


def test_a_claim_held_by_another_owner_is_waited_for_and_then_sees_its_judgements(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path, poll_s=0.02) as a, JudgementStore(path, poll_s=0.02) as b:
        assert a.owner != b.owner
        assert a.claim(claim_key(1), prompt_hash()).result(DEADLINE_S) == frozenset()  # nothing stored yet
        waiting = b.claim(claim_key(1), prompt_hash())
        time.sleep(0.3)
        assert not waiting.done()  # a holds it: b neither judges nor gets it
        paid = {put(a, "4", "5"), put(a, "5", "4")}
        a.release([claim_key(1)])  # committed after the puts above
        assert waiting.result(DEADLINE_S) == paid  # b takes it over and sees what a paid for
        assert set(b.get_many(paid)) == paid
        # the same owner cannot take a claim it holds twice (two tasks would both judge)
        again = b.claim(claim_key(1), prompt_hash())
        time.sleep(0.2)
        assert not again.done()
        b.release([claim_key(1)])
        assert again.result(DEADLINE_S) == paid
        assert b.stats()["held"] == 1
    assert claims_rows(path) == []  # close gives every claim back


def test_a_claim_withdrawn_while_the_writer_grants_it_can_be_claimed_again(tmp_path):
    # The cache withdraws a claim nobody needs any more (cancel, then release) at any moment,
    # also while the writer's transaction is granting it. The grant must not leave the key
    # marked as held by this store: a later claim on it would then wait forever.
    path = tmp_path / "s.sqlite"
    blocker = sqlite3.connect(path, isolation_level=None, timeout=5)
    with JudgementStore(path, poll_s=0.02, claim_delay_s=0.0, timeout_s=30) as store:
        blocker.execute("BEGIN IMMEDIATE")  # the writer's next transaction waits for this lock
        request = store.claim(claim_key(9))
        time.sleep(0.3)  # the writer took the request and waits for the lock
        assert request.cancel()
        store.release([claim_key(9)])
        blocker.execute("COMMIT")  # the transaction grants the withdrawn request
        again = store.claim(claim_key(9))
        assert again.result(DEADLINE_S) == frozenset()
        assert store.stats()["held"] == 1
        store.release([claim_key(9)])
        store.flush()
        wait_for(lambda: claims_rows(path) == [], "the claim row to be deleted")
    blocker.close()


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    path = tmp_path / "s.sqlite"
    code = "from tourney.store import _new_owner; print(_new_owner())"
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    dead_owner = child.stdout.strip()  # its process has exited
    with JudgementStore(path) as store:
        insert_claim(path, claim_key(2), dead_owner, time.time() + 3600)  # a long lease, not expired
        assert store.claim(claim_key(2)).result(DEADLINE_S) == frozenset()
        assert [(k.hex(), o) for k, o, _ in claims_rows(path)] == [(claim_key(2), store.owner)]


def test_a_claim_of_another_host_is_waited_for_until_it_expires(tmp_path):
    path = tmp_path / "s.sqlite"
    other_host = "elsewhere|pid:[1]|4242|123|abcdef"  # its process cannot be checked from here
    with JudgementStore(path, poll_s=0.02) as store:
        insert_claim(path, claim_key(3), other_host, time.time() - 1)  # expired: taken at once
        assert store.claim(claim_key(3)).result(DEADLINE_S) == frozenset()
        insert_claim(path, claim_key(4), other_host, time.time() + 1.0)
        t0 = time.monotonic()
        waiting = store.claim(claim_key(4))
        assert waiting.result(DEADLINE_S) == frozenset()
        assert time.monotonic() - t0 >= 0.8  # not before its expiry


def test_a_held_claim_is_renewed_while_its_store_is_open(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path, lease_s=0.4) as a, JudgementStore(path, poll_s=0.02) as b:
        a.claim(claim_key(5)).result(DEADLINE_S)
        waiting = b.claim(claim_key(5))
        time.sleep(1.5)  # several lease lengths: a renews it every lease_s / 4
        assert not waiting.done()
        ((_, owner, expires),) = claims_rows(path)
        assert owner == a.owner and expires > time.time()
        a.close()  # gives it back
        assert waiting.result(DEADLINE_S) == frozenset()


def test_claim_arguments_are_checked(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match="claim key must be a sha256 hex digest"):
            store.claim("nope")
        with pytest.raises(ValueError, match="prompt_hash"):
            store.claim(claim_key(1), "x")
    with JudgementStore(tmp_path / "s.sqlite", readonly=True) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.claim(claim_key(1))


# ---------------------------------------------------------------- one process: duplicate content


class CountingJudge:
    """The simulated judge with a latency, counting the calls per match content."""

    def __init__(self, spec: str):
        self.inner = build_judge(spec)
        self.calls: dict[tuple, int] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def for_item(self, item):
        return self

    async def judge(self, match):
        k = (match.prompt, match.first_text, match.second_text, match.sample_offset)
        self.calls[k] = self.calls.get(k, 0) + 1
        return await self.inner.judge(match)


def test_duplicate_content_prompts_in_flight_at_once_pay_once(tmp_path):
    # a round robin proposes the same pairs for every copy (whatever its id): all in flight at once
    responses = tuple(f"answer {k}" for k in range(6))
    items = [Item(i, f"copy{i}", "the same question", responses) for i in range(4)]
    judge = CountingJudge("simulated:latency_median_s=0.02,latency_sigma=0.1")
    with JudgementStore(tmp_path / "s.sqlite") as store:
        sched = Scheduler(judge, build_strategy("copeland"), seed=1, concurrency=16, cache=StoreCache(store, judge))
        res = asyncio.run(sched.rank(items))
    assert all(r.status == "ok" for r in res)
    # each copy orients its 15 pairs by its own seed: the same match content recurs across copies
    wanted = [(responses[m["first"]], responses[m["second"]]) for r in res for m in r.matches]
    distinct = set(wanted)
    assert len(wanted) == 60 and len(distinct) < 40  # many duplicates, in flight at once
    assert max(judge.calls.values()) == 1 and len(judge.calls) == len(distinct)  # each paid once
    assert sched.stats.samples == 60 and sched.stats.reused == 60 - len(distinct)
    # without the store each copy pays for its own
    judge = CountingJudge("simulated:latency_median_s=0.02,latency_sigma=0.1")
    asyncio.run(Scheduler(judge, build_strategy("copeland"), seed=1, concurrency=16).rank(items))
    assert sum(judge.calls.values()) == 4 * 15


def test_items_with_identical_responses_hold_and_give_back_their_claims_with_a_store(tmp_path):
    # an item with identical responses is ranked on its merged copy (Item.merged): the claim the
    # feeder asked for, the tasks' claims and the prompt's end must all name that one copy, or a
    # claim would outlive its prompt; a second run reuses every judgement and writes the same results
    responses = ("same", "other", "same", "third", "other")
    items = [Item(i, f"q{i}", f"question {i}", responses, scores=(1.0, 0.5, 1.0, 2.0, 0.5)) for i in range(12)]
    judge = CountingJudge("simulated:latency_median_s=0.005,latency_sigma=0.1")
    runs = []
    with JudgementStore(tmp_path / "s.sqlite") as store:
        for _ in range(2):
            cache = StoreCache(store, judge)
            sched = Scheduler(
                judge, build_strategy("round_robin"), seed=1, concurrency=8, max_active_prompts=4, cache=cache
            )
            runs.append((asyncio.run(sched.rank(items)), sched.stats))
            assert not cache._claims and not cache._inflight and not cache._digests  # nothing outlives the run
    with sqlite3.connect(tmp_path / "s.sqlite") as raw:
        assert raw.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # every claim given back
    (first, s1), (second, s2) = runs

    def view(r):
        return (
            r.status,
            r.best,
            list(r.ranking),
            list(r.scores),
            [(m["first"], m["second"], m["outcome"]) for m in r.matches],
        )

    assert [view(r) for r in first] == [view(r) for r in second]
    assert all(r.status == "ok" and sorted(r.ranking) == [0, 1, 2, 3, 4] for r in first)  # copies put back
    assert s1.samples == 12 * 3 and s2.reused == s2.samples == 12 * 3  # 3 distinct responses: 3 pairs each
    assert sum(judge.calls.values()) == 12 * 3  # the second run paid nothing


# ---------------------------------------------------------------- one process: the writer falls behind


class WatchedJudge(CountingJudge):
    """An instant simulated judge that notes the store's backlog at each call, and can run a
    hook at its first call."""

    def __init__(self, spec: str, store: JudgementStore, first_call=None):
        super().__init__(spec)
        self.store, self.first_call, self.backlogs = store, first_call, []

    async def judge(self, match):
        if not self.backlogs and self.first_call is not None:
            self.first_call()
        self.backlogs.append(self.store.backlog)
        return await super().judge(match)


def small_items(n=30, k=8):
    return [Item(i, f"q{i}", f"question {i}", tuple(f"answer {i}.{j}" for j in range(k))) for i in range(n)]


def test_new_matches_wait_while_the_stores_writer_is_behind_and_the_run_is_unchanged(tmp_path, monkeypatch):
    # With an instant judge the writer falls behind (here: another connection holds the write
    # lock for 0.5 s from the first judge call). New matches then wait until it catches up, so
    # what is judged and not committed (what a kill would lose) stays bounded; the run's
    # results are those of a run without a store.
    monkeypatch.setattr(cache_module, "MAX_BACKLOG", 8)
    items = small_items()
    plain = asyncio.run(
        Scheduler(build_judge("simulated:seed=2"), build_strategy("knockout"), seed=1, concurrency=2).rank(items)
    )
    path = tmp_path / "s.sqlite"
    blocker = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)

    def block() -> None:
        blocker.execute("BEGIN IMMEDIATE")
        threading.Timer(0.5, blocker.execute, ("COMMIT",)).start()

    with JudgementStore(path, timeout_s=30) as store:
        judge = WatchedJudge("simulated:seed=2", store, first_call=block)
        sched = Scheduler(
            judge, build_strategy("knockout"), seed=1, concurrency=2, max_active_prompts=2,
            cache=StoreCache(store, judge),
        )  # fmt: skip
        res = asyncio.run(sched.rank(items))
        store.flush()
        assert store.stats()["judgements"] == 30 * 7
    blocker.close()
    assert [(r.id, r.best, list(r.ranking)) for r in res] == [(r.id, r.best, list(r.ranking)) for r in plain]
    assert len(judge.backlogs) == 30 * 7
    # the writer fell behind, and matches waited: past the bound go only the matches queued with
    # their claims already (2 prompts x 4 first-round matches) and the 2 in the workers
    assert 8 <= max(judge.backlogs) <= 8 + 2 * 4 + 2


def test_a_run_whose_store_fills_up_while_matches_wait_stops_with_the_stores_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_BACKLOG", 8)
    path = tmp_path / "s.sqlite"
    with JudgementStore(path, timeout_s=5) as store:

        def fill_up() -> None:  # SQLite's own SQLITE_FULL from now on (the file may not grow)
            ((pages,),) = store._writer_sql("PRAGMA page_count")
            store._writer_sql(f"PRAGMA max_page_count = {pages}")

        judge = WatchedJudge("simulated:seed=2", store, first_call=fill_up)
        sched = Scheduler(judge, build_strategy("knockout"), seed=1, concurrency=2, cache=StoreCache(store, judge))
        with pytest.raises(StoreError, match="disk full"):
            asyncio.run(asyncio.wait_for(sched.rank(small_items(60, 16)), DEADLINE_S))
        store._writer_sql("PRAGMA max_page_count = 1073741823")  # room again: close commits the rest
    assert len(judge.backlogs) < 60 * 15  # stopped early, not after paying for everything


def test_waiting_for_the_writer_raises_the_stores_error_when_its_commits_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_BACKLOG", 4)
    path = tmp_path / "s.sqlite"
    store = JudgementStore(path, batch_size=10_000, flush_interval_s=None)
    cache = StoreCache(store, build_judge("simulated:seed=2"))
    ((pages,),) = store._writer_sql("PRAGMA page_count")
    store._writer_sql(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL from now on
    for s in range(10):  # never committed: no flush interval; incompressible reasoning needs new pages
        store.put(
            store.key(JUDGE, PROMPT, "4", "5", s), Judgement(Outcome.A, reasoning=os.urandom(2000).hex(), sample=s),
            prompt_id="q", prompt=PROMPT, first=0, second=1, first_text="4", second_text="5", judge_identity=JUDGE,
        )  # fmt: skip
    assert cache.backlogged()
    with pytest.raises(StoreError, match="disk full"):
        store.flush()
    with pytest.raises(StoreError, match="disk full"):  # not a wait for a drain that never comes
        asyncio.run(asyncio.wait_for(cache.drained(), DEADLINE_S))
    store._writer_sql("PRAGMA max_page_count = 1073741823")
    store.flush()
    assert not cache.backlogged()
    asyncio.run(asyncio.wait_for(cache.drained(), DEADLINE_S))
    store.close()


# ---------------------------------------------------------------- processes sharing a store

LATENCY_JUDGE = "simulated:latency_median_s=0.05,latency_sigma=0.3"


def rows(n=24, k=8):
    return question_rows(n, k)


def rank_cmd(inp, out, store, *extra, judge=LATENCY_JUDGE):
    return tourney_argv(
        "rank",
        inp,
        out,
        "--store",
        str(store),
        "--judge",
        judge,
        "--no-progress",
        "--concurrency",
        "8",
        "--seed",
        "3",
        *extra,
    )


def env():
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def stats(out: Path) -> dict:
    return json.loads(Path(f"{out}.meta.json").read_text())["stats"]


def test_three_processes_on_the_same_input_pay_once_and_write_what_one_run_writes(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows())
    single = subprocess.run(
        rank_cmd(inp, tmp_path / "single.jsonl", tmp_path / "single.sqlite"), env=env(), capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr
    paid_alone = stats(tmp_path / "single.jsonl")["new"]
    assert paid_alone == 24 * 7
    shared = tmp_path / "shared.sqlite"
    procs = [subprocess.Popen(rank_cmd(inp, tmp_path / f"run{n}.jsonl", shared), env=env(), stderr=subprocess.PIPE,
                              text=True) for n in range(3)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    paid = [stats(tmp_path / f"run{n}.jsonl")["new"] for n in range(3)]
    assert sum(paid) <= 1.05 * paid_alone, paid  # target; with claims it is exactly paid_alone
    assert sum(paid) == paid_alone, paid
    for n in range(3):
        assert (tmp_path / f"run{n}.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()
    with JudgementStore(shared, readonly=True) as store:
        assert store.stats()["judgements"] == paid_alone and store.stats()["claims"] == 0
        assert store.check() == []


def test_sigkill_leaves_claims_that_a_resumed_run_takes_over(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows(40, 8))
    total = 40 * 7
    ref = subprocess.run(
        rank_cmd(inp, tmp_path / "ref.jsonl", tmp_path / "ref.sqlite"), env=env(), capture_output=True, text=True
    )
    assert ref.returncode == 0, ref.stderr
    store = tmp_path / "run.sqlite"
    proc = subprocess.Popen(rank_cmd(inp, tmp_path / "run.jsonl", store), env=env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as con:
                    if con.execute("SELECT count(*) FROM judgements").fetchone()[0] >= total // 3:
                        break
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = claims_rows(store)
    assert left, "the killed run held no claims"  # its leases outlive it ...
    assert all(expires > time.time() + 10 for _, _, expires in left)  # ... and are far from expiring
    with JudgementStore(store, readonly=True) as s:
        before = s.stats()["judgements"]
    assert 0 < before < total
    t0 = time.monotonic()
    res = subprocess.run(rank_cmd(inp, tmp_path / "run.jsonl", store), env=env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # the dead process's claims were taken over at once (its pid is gone), not after their lease
    assert time.monotonic() - t0 < 60
    assert (tmp_path / "run.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    meta = stats(tmp_path / "run.jsonl")
    assert meta["reused"] == before and meta["new"] == total - before  # nothing paid twice
    assert claims_rows(store) == []


# ---------------------------------------------------------------- what a kill loses


def test_sigkill_loses_only_the_judgements_of_the_last_moments(tmp_path):
    """A real process, killed with SIGKILL while judging: every judgement it completed more than
    a second before the kill is in the store (the store commits within flush_interval_s = 0.02 s;
    benchmarks/bench_kill.py measures the actual figure, the README states it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_kill", REPO / "benchmarks" / "bench_kill.py")
    bench_kill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_kill)
    r = bench_kill.one_kill(tmp_path, "simulated:latency_median_s=0.002,latency_sigma=0.5", 4000, 2.0)
    assert r["completed"] > 500  # it was judging when killed
    assert not r["ages"] or r["ages"][-1] < 1.0, r["ages"][-5:]  # nothing older than a second was lost
    assert r["lost"] < r["completed"] / 4
