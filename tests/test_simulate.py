"""The strategy-comparison harness (tourney.simulate) and its CLI (tourney simulate)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tourney import Tournament
from tourney.cli import main
from tourney.errors import SpecError
from tourney.registry import Spec

from .conftest import require
from tourney.simulate import (
    ReplayBench,
    SimulatedBench,
    accuracy_ci,
    format_table,
    kendall_tau_b,
    parse_budgets,
    parse_strategies,
    prd_human_quality,
    run_strategy,
    simulate,
)
from tourney.strategy import Strategy, StrategyFactory, build_strategy
from tourney.types import Outcome

from .conftest import ROOT, read_jsonl, write_jsonl

EXCERPT = ROOT / "examples" / "prd_vicuna80"


def test_parse_strategies_keeps_options_with_their_spec():
    assert parse_strategies("knockout:votes=3,both_orders=true,adaptive, bradley_terry") == [
        "knockout:votes=3,both_orders=true", "adaptive", "bradley_terry"]
    assert parse_strategies("voting:k=3;adaptive:threshold=0.9,batch=2") == [
        "voting:k=3", "adaptive:threshold=0.9,batch=2"]
    with pytest.raises(SpecError):
        parse_strategies(" , ")


def test_parse_budgets():
    assert parse_budgets("15, 30,full") == [15, 30, None]
    for bad in ("x", "-1", ""):
        with pytest.raises(SpecError):
            parse_budgets(bad)


def test_kendall_tau_b_matches_scipy():
    stats = require("scipy.stats", "scipy is a core dependency: the independent Kendall tau-b")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 4, 9).astype(float)  # with ties
        y = rng.normal(size=9)
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert math.isnan(kendall_tau_b([1.0, 1.0], [0.0, 1.0]))


def test_accuracy_interval():
    from scipy.stats import binomtest

    ref = binomtest(37, 50).proportion_ci(method="wilson")
    lo, hi = accuracy_ci([1.0] * 37 + [0.0] * 13, [str(i) for i in range(50)])
    assert (lo, hi) == (pytest.approx(ref.low), pytest.approx(ref.high))
    # clustered trials (several runs of one question) give a wider interval than independent ones
    y = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] * 10
    clusters = [str(i // 3) for i in range(60)]
    lo_c, hi_c = accuracy_ci(y, clusters)
    lo_i, hi_i = accuracy_ci(y, [str(i) for i in range(60)])
    assert hi_c - lo_c > hi_i - lo_i


def test_simulated_draws_follow_the_judge_model():
    bench = SimulatedBench(4, 1, seed=0, options={"position_bias": 0.2, "abstain_rate": 0.1, "tie_rate": 0.1})
    trial = bench.trial(0)
    q = trial.quality
    js = trial.judge(0, 1, 0, 20_000)
    counts = {o: sum(j.outcome is o for j in js) for o in Outcome}
    assert counts[Outcome.ABSTAIN] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Outcome.TIE] / 18_000 == pytest.approx(0.1, abs=0.01)
    p = 1.0 / (1.0 + math.exp(-((q[0] - q[1]) / 0.5 + math.log(0.7 / 0.3))))
    decided = counts[Outcome.A] + counts[Outcome.B]
    assert counts[Outcome.A] / decided == pytest.approx(p, abs=0.015)
    # common random numbers: the same match and sample give the same verdict every time
    assert [j.outcome for j in trial.judge(2, 3, 5, 10)] == [j.outcome for j in bench.trial(0).judge(2, 3, 5, 10)]


def test_harness_reproduces_the_engine_on_a_deterministic_judge():
    """On replayed verdicts, the harness's driver and budget give exactly what `tourney rank
    --max-comparisons B --seed 0` gives (same strategy seeds, same dispatch order, same cut)."""
    bench = ReplayBench(EXCERPT / "replay-gpt35.jsonl", 3, 0, truth="self")
    items = [{k: it[k] for k in ("id", "prompt", "responses")} for it in read_jsonl(EXCERPT / "prompts.jsonl")]
    for spec, budget in [("knockout", None), ("adaptive:budget=6", 6), ("bradley_terry", 12),
                         ("swiss", None), ("merge_sort:both_orders=true", 7)]:
        judge = f"replay:{EXCERPT / 'replay-gpt35.jsonl'}"
        engine = Tournament(judge, spec, seed=0, max_comparisons=budget).rank(items)
        for t in range(3):
            ranking, out = run_strategy(build_strategy(spec), bench.trial(t), budget)
            assert ranking.order == tuple(engine[t].ranking), spec
            assert out.comparisons == engine[t].comparisons
            assert out.budget_limited == engine[t].budget_limited


def test_simulate_is_deterministic_and_worker_independent():
    bench = SimulatedBench(6, 12, seed=4, options={"abstain_rate": 0.1})
    kw = dict(strategies="knockout,adaptive", bench=bench, budgets=[5, 12, None])
    a = simulate(**kw, workers=1)
    b = simulate(**kw, workers=2)
    assert [r.to_json() for r in a.rows] == [r.to_json() for r in b.rows]
    assert len(a.rows) == 2 * 3
    r = a.row("adaptive", 12)
    assert r.trials == 12 and 0 <= r.top1 <= 1 and r.ci95[0] <= r.top1 <= r.ci95[1]
    assert r.comparisons <= 12 and r.p_best is not None
    assert a.row("knockout", None).budget_limited == 0.0


def test_budgets_below_the_minimum_are_reported_not_run():
    bench = SimulatedBench(8, 5, seed=0)
    rep = simulate(["knockout", "knockout:votes=9"], bench, [3, 7])
    assert rep.row("knockout", 3).top1 is None and "n - 1" in rep.row("knockout", 3).na
    ko9 = rep.row("knockout:votes=9", 7)  # its first request alone needs 9 samples
    assert ko9.top1 is None and "first request" in ko9.na
    assert rep.row("knockout", 7).top1 is not None
    assert "n/a" in format_table(rep)


class _Broken(Strategy):
    def propose(self):
        raise RuntimeError("boom")

    def observe(self, result):  # pragma: no cover
        pass

    @property
    def done(self):
        return False

    def ranking(self):  # pragma: no cover
        raise AssertionError


def test_a_failing_strategy_is_reported_per_run():
    trial = SimulatedBench(4, 1).trial(0)
    ranking, out = run_strategy(StrategyFactory(_Broken, Spec("broken")), trial, 10)
    assert ranking is None and out.error == "RuntimeError: boom"


def test_replay_without_a_pair_is_reported(tmp_path):
    """A replay set that lacks matches a strategy asks for: errors counted as missing, no crash."""
    rows = read_jsonl(EXCERPT / "replay-gpt35.jsonl")
    kept = [r for r in rows if not (r["first_model"] == "gpt4" and r["second_model"] == "claude")]
    write_jsonl(tmp_path / "replay-x.jsonl", kept)
    (tmp_path / "prompts.jsonl").write_text((EXCERPT / "prompts.jsonl").read_text())
    bench = ReplayBench(tmp_path / "replay-x.jsonl", 9, 0, truth="self")
    rep = simulate(["bradley_terry", "voting:k=3", "adaptive"], bench, [20])
    assert rep.row("bradley_terry", 20).missing == pytest.approx(1.0)  # one ordered pair per question
    assert rep.row("voting:k=3", 20).missing > 1  # re-samples were never recorded
    assert all(r.failed == 0 and r.top1 is not None for r in rep.rows)
    assert "missing/trial" in format_table(rep)


def test_prd_truths(shared_data, tmp_path):
    root = shared_data / "prd_vicuna80" / "vicuna80"
    human = prd_human_quality(root, ["bard", "claude", "gpt35", "gpt4", "vicuna-13b"])
    assert len(human) == 80 and all(len(q) == 5 for q in human.values())
    # each question's 10 pairs share out 10 points of human votes
    assert all(sum(q.values()) == pytest.approx(10.0) for q in human.values())
    bench = ReplayBench(EXCERPT / "replay-gpt35.jsonl", 3, 0, truth=f"human:{root}")
    assert "human labels" in bench.describe()["truth"]
    with pytest.raises(SpecError):
        ReplayBench(EXCERPT / "replay-gpt35.jsonl", 3, 0, truth="oracle")


def test_adaptive_beats_the_fixed_designs_at_small_budgets():
    """A small version of the README comparison (N=16, 60 trials; seeded, so deterministic)."""
    rep = simulate(["knockout:both_orders=true", "bradley_terry", "adaptive"], SimulatedBench(16, 60, seed=11),
                   [30, 60])
    for b in (30, 60):
        assert rep.row("adaptive", b).top1 >= max(rep.row(s, b).top1 for s in ("knockout:both_orders=true",
                                                                               "bradley_terry"))


def test_cli_table_json_and_bad_input(tmp_path, capsys):
    assert main(["simulate", "--strategies", "knockout,adaptive", "--n", "5", "--trials", "20",
                 "--budgets", "3,8", "--workers", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "budget 3 comparisons" in out and "budget 8 comparisons" in out and "| adaptive" in out
    assert main(["simulate", "--strategies", "knockout", "--n", "5", "--trials", "10", "--workers", "1",
                 "--format", "json", "--out", str(tmp_path / "o.json"), "-q", "--position-bias", "0.3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads((tmp_path / "o.json").read_text())
    (rep,) = doc["reports"]
    assert rep["budgets"] == [4, 8, 16, 20]  # the default for n = 5
    assert rep["bench"]["judge"]["position_bias"] == 0.3
    # unknown strategy: usage error naming the known ones, before any work
    assert main(["simulate", "--strategies", "knockout,nope", "--trials", "5", "-q"]) == 2
    assert "known: adaptive" in capsys.readouterr().err
    assert main(["simulate", "--budgets", "ten", "-q"]) == 2
    assert main(["simulate", "--judge", "replay:/nonexistent.jsonl", "-q"]) == 2


def test_cli_replay_folder(tmp_path, capsys):
    for name in ("prompts.jsonl", "replay-gpt35.jsonl"):
        (tmp_path / name).write_text((EXCERPT / name).read_text())
    assert main(["simulate", "--judge", f"replay:{tmp_path}", "--truth", "self", "--strategies", "knockout,adaptive",
                 "--trials", "6", "--workers", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "replay replay-gpt35.jsonl (3 questions, N=5" in out and "truth: self" in out
