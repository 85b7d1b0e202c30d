"""The event-driven scheduler: dispatch on readiness, concurrency, retries, re-samples, order."""

import asyncio
import json
import time

import numpy as np
import pytest

from tourney import Tournament
from tourney.errors import JudgeError, TransientJudgeError
from tourney.items import parse_item
from tourney.judges import build_judge
from tourney.judges.base import Judge
from tourney.scheduler import RESAMPLE_STRIDE, Scheduler
from tourney.strategy import STRATEGIES, Strategy, build_strategy
from tourney.types import Judgement, Outcome, Ranking


class Recorder(Judge):
    """Wraps a judge; records (start, end, match) of every call and the peak concurrency."""

    def __init__(self, inner):
        super().__init__(inner.spec)
        self.inner, self.calls, self.active, self.peak = inner, [], 0, 0

    async def judge(self, match):
        self.active += 1
        self.peak = max(self.peak, self.active)
        t0 = time.perf_counter()
        try:
            return await self.inner.judge(match)
        finally:
            self.active -= 1
            self.calls.append((t0, time.perf_counter(), match))


def items(n_prompts, n, scores=True):
    return [
        parse_item(
            {
                "id": f"p{i}",
                "prompt": f"q{i}",
                "responses": [f"r{i}-{k}" for k in range(n)],
                **({"scores": list(np.random.default_rng(i).normal(size=n))} if scores else {}),
            },
            i,
        )
        for i in range(n_prompts)
    ]


def run(judge, strategy="knockout", its=None, **kw):
    sched = Scheduler(judge, build_strategy(strategy), **kw)
    return asyncio.run(sched.rank(its)), sched


def test_next_round_match_starts_when_its_feeders_finish_not_the_round():
    rec = Recorder(build_judge("simulated:latency_median_s=0.02,latency_sigma=1.0"))
    res, _ = run(rec, its=items(1, 16), concurrency=32)
    assert res[0].comparisons == 15
    calls = sorted(rec.calls, key=lambda c: c[0])
    first_round = calls[:8]
    round_end = max(c[1] for c in first_round)
    early = 0
    for t0, _, m in calls[8:]:
        feeders = [c for c in calls if c[1] <= t0 + 1e-9 and {c[2].first, c[2].second} & {m.first, m.second}]
        ready_at = max(c[1] for c in feeders)
        assert t0 - ready_at < 0.015, "a ready match waited"  # dispatched as soon as both feeders ended
        if t0 < round_end:
            early += 1
    assert early >= 1, "no second-round match started before the first round ended"


def test_concurrency_limit_is_respected_and_used():
    rec = Recorder(build_judge("simulated:latency_median_s=0.005"))
    run(rec, its=items(10, 8), concurrency=3)
    assert rec.peak == 3


class Flaky(Judge):
    def __init__(self, fail_times, exc=TransientJudgeError):
        super().__init__()
        self.fail_times, self.exc, self.seen = fail_times, exc, {}

    async def judge(self, match):
        k = match.key
        self.seen[k] = self.seen.get(k, 0) + 1
        if self.seen[k] <= self.fail_times:
            raise self.exc(f"boom {self.seen[k]}")
        return [Judgement(Outcome.A, sample=match.sample_offset + i) for i in range(match.samples)]


def test_transient_failures_are_retried_with_backoff():
    j = Flaky(2)
    res, sched = run(j, its=items(2, 4), retries=3, backoff_s=0.001)
    assert all(r.status == "ok" and r.errors == 0 for r in res)
    assert sched.stats.retries == 2 * 3 * 2  # 2 prompts x 3 matches x 2 failures
    assert all(v == 3 for v in j.seen.values())


def test_exhausted_retries_become_error_judgements_not_wins():
    j = Flaky(99)
    res, _sched = run(j, its=items(1, 4), retries=2, backoff_s=0.001)
    (r,) = res
    assert r.status == "partial" and r.errors == 3 and "boom 3" in r.messages[0]
    assert r.info["coin_flips"] == 3
    assert all(v == 3 for v in j.seen.values())  # 1 call + 2 retries


def test_permanent_errors_are_not_retried():
    j = Flaky(99, exc=JudgeError)
    res, _ = run(j, its=items(1, 2), retries=5, backoff_s=0.001)
    assert res[0].status == "partial" and list(j.seen.values()) == [1]


class AbstainOnce(Judge):
    async def judge(self, match):
        o = Outcome.ABSTAIN if match.sample_offset < RESAMPLE_STRIDE else Outcome.A
        return [Judgement(o, sample=match.sample_offset + i) for i in range(match.samples)]


def test_abstentions_are_resampled_with_fresh_sample_indices():
    res, _ = run(AbstainOnce(), its=items(1, 2), resample_abstentions=2)
    (r,) = res
    assert r.samples == 2 and r.abstentions == 1 and r.matches[0]["outcome"] == "A"
    res, _ = run(AbstainOnce(), its=items(1, 2), resample_abstentions=0)
    assert res[0].matches[0]["outcome"] == "abstain" and res[0].samples == 1


def _json(results):
    return [r.to_json() for r in results]


def test_output_identical_across_concurrency_and_latency():
    its = items(30, 9)
    a, _ = run(build_judge("simulated:seed=3"), its=its, seed=11, concurrency=1)
    b, _ = run(build_judge("simulated:seed=3,latency_median_s=0.002"), its=its, seed=11, concurrency=64)
    ja, jb = _json(a), _json(b)
    for x in ja + jb:
        x.pop("judge")
    assert ja == jb
    c, _ = run(build_judge("simulated:seed=3"), its=its, seed=12)
    assert _json(c) != _json(a)


def test_results_come_in_input_order_even_when_the_first_prompt_is_slow():
    class SlowFirst(Judge):
        async def judge(self, match):
            await asyncio.sleep(0.05 if match.prompt_id == "p0" else 0)
            return [Judgement(Outcome.B)] * match.samples

    res, _ = run(SlowFirst(), its=items(5, 4))
    assert [r.id for r in res] == [f"p{i}" for i in range(5)]


def test_budget_limited_run_returns_best_so_far():
    res, _ = run(build_judge("simulated"), its=items(2, 16), max_comparisons=5)
    for r in res:
        assert r.comparisons == 5 and r.budget_limited and sorted(r.ranking) == list(range(16))


def test_a_broken_strategy_fails_its_prompt_only():
    @STRATEGIES.register("_test_broken")
    class Broken(Strategy):
        def propose(self):
            return []

        def observe(self, result):
            pass

        @property
        def done(self):
            return self.n < 3

        def ranking(self):
            return Ranking(tuple(range(self.n)), (0.0,) * self.n)

    try:
        its = [
            parse_item({"prompt": "q", "responses": list("ab")}, 0),
            parse_item({"prompt": "q", "responses": list("abcd")}, 1),
        ]
        res, _sched = run(build_judge("simulated"), "_test_broken", its=its)
        assert res[0].status == "ok"
        assert res[1].status == "failed" and "stalled" in res[1].messages[0]
    finally:
        STRATEGIES.unregister("_test_broken")


class _OpenPrompts:
    """A strategy factory that counts the prompts open at once: a prompt opens when the
    scheduler creates its strategy and closes when it asks for the final ranking (the
    scheduler's only ``ranking()`` call, made as the prompt closes)."""

    def __init__(self, inner):
        self.inner, self.open, self.peak, self.created = inner, 0, 0, 0

    def create(self, n, rng, keys=None):
        counter, strategy = self, self.inner.create(n, rng, keys)
        counter.open += 1
        counter.created += 1
        counter.peak = max(counter.peak, counter.open)

        class Counted:
            propose, observe = strategy.propose, strategy.observe
            done = property(lambda _: strategy.done)

            def ranking(self):
                counter.open -= 1
                return strategy.ranking()

        return Counted()

    def describe(self):
        return self.inner.describe()


def test_many_prompts_bounded_active_window():
    """300 prompts, 8 workers, judge latencies spread over two orders of magnitude: at most
    ``max_active_prompts`` prompts are ever open, and the window is used to the full. A control
    run without the bound opens far more at once, so the bound is what holds the peak down."""
    its = items(300, 6)

    def window(max_active):
        strategies = _OpenPrompts(build_strategy("knockout"))
        judge = build_judge("simulated:latency_median_s=0.001,latency_sigma=1.0")
        sched = Scheduler(judge, strategies, concurrency=8, max_active_prompts=max_active)
        res = asyncio.run(sched.rank(its))
        assert len(res) == 300 and all(r.status == "ok" for r in res)
        assert sched.stats.comparisons == 300 * 5
        assert strategies.created == 300 and strategies.open == 0  # every prompt closed
        return strategies.peak, res

    peak, res = window(10)
    assert peak == 10  # never more than the bound, and the bound is reached
    unbounded, res_unbounded = window(100_000)
    assert unbounded > 5 * 10, unbounded  # without it the feeder opens prompts far ahead of the workers
    assert [r.ranking for r in res] == [r.ranking for r in res_unbounded]  # the window changes timing only


def test_select_best_inside_a_running_event_loop():
    async def inside():
        return Tournament("simulated", seed=1).rank_one("q", ["a", "b", "c"])

    r = asyncio.run(inside())
    assert sorted(r.ranking) == [0, 1, 2]


@pytest.mark.parametrize("c", [0, -1])
def test_bad_concurrency(c):
    with pytest.raises(ValueError):
        Scheduler(build_judge("simulated"), build_strategy("knockout"), concurrency=c)


def test_token_budget_stops_new_matches_for_the_whole_run():
    # each simulated judgement here costs ~200 prompt + ~600 completion tokens
    res, sched = run(build_judge("simulated:tokens_sigma=0"), its=items(4, 8), token_budget=4000, concurrency=1)
    assert sched.stats.tokens.total >= 4000
    assert sched.stats.samples < 4 * 7
    assert any(r.budget_limited for r in res)
    assert all(sorted(r.ranking) == list(range(8)) for r in res)


@pytest.mark.parametrize("flaw", ["ranks_too_many", "done_raises"])
def test_a_strategy_that_breaks_late_fails_its_prompt_and_the_run_ends(flaw):
    """Found in review: an exception after a prompt was closed (or while it started) hung the run."""

    @STRATEGIES.register("_test_flawed")
    class Flawed(Strategy):
        def propose(self):
            return []

        def observe(self, result):
            pass

        @property
        def done(self):
            if flaw == "done_raises":
                raise RuntimeError("done is broken")
            return True

        def ranking(self):
            return Ranking(tuple(range(self.n + 1)), (0.0,) * (self.n + 1))

    try:

        async def go():
            sched = Scheduler(build_judge("simulated"), build_strategy("_test_flawed"))
            return await asyncio.wait_for(sched.rank(items(3, 2)), timeout=10)

        res = asyncio.run(go())
        assert [r.status for r in res] == ["failed"] * 3
    finally:
        STRATEGIES.unregister("_test_flawed")


def test_a_progress_callback_that_raises_does_not_stop_the_run():
    def bad(stats):
        raise RuntimeError("display broke")

    async def go():
        sched = Scheduler(build_judge("simulated"), build_strategy("knockout"), on_progress=bad)
        return await asyncio.wait_for(sched.rank(items(3, 4)), timeout=10)

    assert [r.status for r in asyncio.run(go())] == ["ok"] * 3


def test_replayed_abstentions_are_not_resampled(tmp_path):
    from .conftest import write_jsonl

    rep = write_jsonl(
        tmp_path / "r.jsonl",
        [{"prompt": "q", "first": a, "second": b, "verdict": "abstain"} for a, b in (("x", "y"), ("y", "x"))],
    )
    res = Tournament(f"replay:{rep}", "knockout:both_orders=true").rank([{"prompt": "q", "responses": ["x", "y"]}])
    # no vote in either order: knockout settles the pair with a coin, which the status says
    assert res[0].status == "coin_flip" and res[0].abstentions == 2 and res[0].errors == 0


def test_simulated_errors_are_deterministic_with_duplicate_prompts():
    rows = [{"id": f"p{i}", "prompt": "same", "responses": ["a", "b", "c", "d"]} for i in range(6)]
    outs = set()
    for _ in range(4):
        res = Tournament("simulated:error_rate=0.5,latency_median_s=0.001", retries=1, backoff_s=0.001).rank(rows)
        outs.add(json.dumps([r.to_json() for r in res]))
    assert len(outs) == 1


def test_tournament_is_reusable_across_calls():
    with Tournament("simulated", seed=2) as t:
        a = t.rank([{"prompt": "q", "responses": ["a", "b", "c"]}])
        b = t.rank([{"prompt": "q", "responses": ["a", "b", "c"]}])
    assert a[0].to_json() == b[0].to_json()


def test_the_input_scores_reach_the_simulated_judge_through_for_item():
    """The scheduler judges each prompt through judge.for_item(item): a sharp simulated judge
    then follows the input's scores (not its own draws), whatever the order of the scores."""
    sharp = "simulated:noise=0.001,position_bias=0"
    rows = [
        {"id": f"p{k}", "prompt": "q", "responses": list("abcdef"), "scores": list(np.roll(np.arange(6.0), k))}
        for k in range(6)
    ]
    res = Tournament(sharp, "knockout:both_orders=true").rank(rows)
    assert [r.best for r in res] == [int(np.argmax(row["scores"])) for row in rows]


def test_a_wrapper_that_forwards_for_item_keeps_the_truth():
    class Forwarding(Recorder):
        def for_item(self, item):
            return Recorder(self.inner.for_item(item))

    its = items(3, 8)
    plain, _ = run(build_judge("simulated"), its=its)
    wrapped, _ = run(Forwarding(build_judge("simulated")), its=its)
    assert [r.to_json() for r in wrapped] == [r.to_json() for r in plain]


def test_the_old_name_of_the_fresh_samples_flag_is_refused():
    with pytest.raises(TypeError, match="fresh_samples"):

        class Old(Judge):
            resample_abstentions = False

            async def judge(self, match):
                return []
