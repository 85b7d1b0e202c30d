"""Sequential rounds in the engine: the scheduler's per-prompt critical path (rounds and its
latency), ``max_rounds`` and the per-prompt sample budget ``max_samples``, and ``tourney rank
--max-rounds``."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest

from tourney import Tournament
from tourney.cli import main
from tourney.items import Item
from tourney.judges.simulated import SimulatedJudge
from tourney.registry import Spec
from tourney.scheduler import Scheduler
from tourney.strategy import Strategy, StrategyFactory
from tourney.types import Match, MatchResult, Ranking, Request

from .conftest import write_jsonl


class _Chain(Strategy):
    """Asks ``length`` matches one after another (each after the previous result): a critical
    path of ``length`` rounds. With ``width`` > 1 each step asks that many matches at once."""

    length = 5
    width = 1
    samples = 1

    def __init__(self, n, rng, keys=None):
        super().__init__(n, rng, keys)
        self.step = 0
        self.waiting = 0
        self.got = 0

    def _next(self) -> list[Request]:
        self.step += 1
        self.waiting = self.width
        return [
            Request(k % self.n, (k + 1) % self.n, self.samples, 10 * self.step, tag=(self.step, k))
            for k in range(self.width)
        ]

    def propose(self):
        if self.step == 0:
            return self._next()
        if self.waiting == 0 and self.step < self.length:
            return self._next()
        return []

    def observe(self, result: MatchResult) -> None:
        self.waiting -= 1
        self.got += 1

    @property
    def done(self):
        return self.step >= self.length and self.waiting == 0

    def ranking(self):
        return Ranking(order=tuple(range(self.n)), scores=tuple(float(-i) for i in range(self.n)), scale="x")


def _factory(**attrs) -> StrategyFactory:
    cls = type("Chain", (_Chain,), attrs)
    return StrategyFactory(cls, Spec("chain"))


def _items(k: int = 2, n: int = 4) -> list[Item]:
    return [Item(i, f"p{i}", f"prompt {i}", tuple(f"r{i}-{j}" for j in range(n)), None) for i in range(k)]


def _rank(factory: StrategyFactory, judge=None, **kw):
    judge = judge or SimulatedJudge()
    return asyncio.run(Scheduler(judge, factory, seed=0, concurrency=4, **kw).rank(_items()))


def test_rounds_count_the_critical_path():
    for length, width in ((5, 1), (3, 4), (1, 6)):
        res = _rank(_factory(length=length, width=width))
        for r in res:
            assert r.status == "ok" and r.comparisons == length * width and r.rounds == length


def test_a_resample_is_one_more_round():
    """A judge that always abstains: each request is re-sampled twice, each re-sample another
    judge call after the first, so one request is three rounds."""
    res = _rank(_factory(length=2), judge=SimulatedJudge(abstain_rate=1.0), resample_abstentions=2)
    assert all(r.rounds == 6 and r.samples == 6 for r in res)
    res = _rank(_factory(length=2), judge=SimulatedJudge(abstain_rate=1.0), resample_abstentions=0)
    assert all(r.rounds == 2 for r in res)


def test_max_rounds_stops_dispatch_and_marks_the_result():
    res = _rank(_factory(length=5, width=2), max_rounds=3)
    assert all(r.status == "ok" and r.rounds == 3 and r.comparisons == 6 and r.budget_limited for r in res)
    # re-samples past the limit are not made: the abstention stands
    res = _rank(_factory(length=1), judge=SimulatedJudge(abstain_rate=1.0), max_rounds=2)
    assert all(r.rounds == 2 and r.samples == 2 and not r.budget_limited for r in res)
    # a limit the run never reaches changes nothing
    assert [r.matches for r in _rank(_factory(length=4), max_rounds=4)] == [
        r.matches for r in _rank(_factory(length=4))
    ]


def test_critical_path_latency_is_the_sum_along_the_path():
    """Latencies drawn by the judge but not slept: the critical path of a chain is the sum of its
    calls' latencies, of one round of parallel calls their maximum."""
    judge = SimulatedJudge(latency_median_s=2.0, latency_sigma=0.5)
    judge.sleep = False
    for length, width in ((4, 1), (1, 5)):
        items = _items(1)
        res = asyncio.run(Scheduler(judge, _factory(length=length, width=width), seed=0).rank(items))
        (r,) = res
        lats = []
        for step in range(1, length + 1):
            calls = []
            for k in range(width):
                m = Match(
                    items[0].prompt,
                    items[0].responses[k % 4],
                    items[0].responses[(k + 1) % 4],
                    prompt_id="p0",
                    sample_offset=10 * step,
                )
                (j,) = asyncio.run(judge.judge(m))
                calls.append(j.latency_s)
            lats.append(max(calls))
        assert r.critical_path_s == pytest.approx(sum(lats)) and all(x > 0 for x in lats)


def test_max_samples_counts_the_samples_a_request_asks_for():
    res = _rank(_factory(length=5, samples=3), max_samples=7)  # 3 + 3 fit, the third request does not
    assert all(r.comparisons == 2 and r.samples == 6 and r.budget_limited for r in res)
    res = _rank(_factory(length=5, samples=3), max_samples=2)  # not even the first
    assert all(r.comparisons == 0 and r.budget_limited for r in res)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_limits_are_refused(bad):
    for name in ("max_rounds", "max_samples"):
        with pytest.raises((TypeError, ValueError), match=name):  # a wrong type may be a TypeError
            Scheduler(SimulatedJudge(), _factory(), **{name: bad})


def test_rank_max_rounds_flag(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [
        {
            "id": f"q{k}",
            "prompt": f"p{k}",
            "responses": [f"r{k}-{i}" for i in range(9)],
            "scores": [float(x) for x in rng.normal(size=9)],
        }
        for k in range(3)
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "rank",
                str(inp),
                "--strategy",
                "knockout",
                "--max-rounds",
                "2",
                "--no-store",
                "--no-progress",
                "-q",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    # a 9-candidate bracket has 4 rounds: cut after 2, the ranking so far is the result
    assert all(x["status"] == "ok" and x["budget_limited"] and x["comparisons"] == 6 for x in lines)
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["stats"]["rounds"] == {"max": 2, "mean": 2.0}
    full = Tournament("simulated", "knockout", seed=0).rank(rows)
    assert all(r.rounds == 4 and not r.budget_limited for r in full)
    for bad in ("0", "-3", "two"):
        with pytest.raises(SystemExit) as exc:
            main(["rank", str(inp), "--max-rounds", bad, "--no-store", "-q"])
        assert exc.value.code == 2
        assert "--max-rounds" in capsys.readouterr().err


def test_output_lines_do_not_carry_rounds(tmp_path):
    """rounds and critical_path_s are in the Python result and the meta file, not the output
    line (lines stay as they were)."""
    (r,) = Tournament("simulated", "knockout", seed=0).rank([{"prompt": "p", "responses": ["a", "b", "c"]}])
    assert r.rounds == 2 and not math.isnan(r.critical_path_s)
    assert "rounds" not in r.to_json() and "critical_path_s" not in r.to_json()
