"""The strategy-comparison harness (tourney.harness) and its CLI (tourney simulate).

The harness has no judge model and no dispatch of its own: every trial is ranked by the real
scheduler with the real judge. These tests check that (the harness's verdicts are the simulated
judge's own, and a trial fed to `tourney rank` gives the same matches and ranking), and the
measurements it adds (rounds, makespan, CPU), the cells it cannot fill and its bad input.
"""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest

from tourney.cli import main
from tourney.errors import SpecError
from tourney.harness import (
    ReplayBench,
    SimulatedBench,
    accuracy_ci,
    format_table,
    kendall_tau_b,
    parse_budgets,
    parse_rounds,
    parse_strategies,
    prd_human_quality,
    run_strategy,
    simulate,
)
from tourney.registry import Spec
from tourney.strategy import Strategy, StrategyFactory, build_strategy
from tourney.types import Match, Outcome

from .conftest import ROOT, read_jsonl, require, write_jsonl

EXCERPT = ROOT / "examples" / "prd_vicuna80"


def test_parse_strategies_keeps_options_with_their_spec():
    assert parse_strategies("knockout:votes=3,both_orders=true,adaptive, bradley_terry") == [
        "knockout:votes=3,both_orders=true",
        "adaptive",
        "bradley_terry",
    ]
    assert parse_strategies("voting:k=3;adaptive:threshold=0.9,batch=2") == [
        "voting:k=3",
        "adaptive:threshold=0.9,batch=2",
    ]
    with pytest.raises(SpecError):
        parse_strategies(" , ")


def test_parse_budgets_and_rounds():
    assert parse_budgets("15, 30,full") == [15, 30, None]
    assert parse_rounds("4,6,full") == [4, 6, None]
    for bad in ("x", "-1", ""):
        with pytest.raises(SpecError):
            parse_budgets(bad)
    for bad in ("0", "-2", "two", ""):  # a round limit below 1 cannot even dispatch the first request
        with pytest.raises(SpecError, match="round limit"):
            parse_rounds(bad)


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


def _rejudge(trial, match_record: dict, sample: int = 0) -> tuple[Outcome, float]:
    """The simulated judge's own verdict and latency for a match of the trial (asked directly)."""
    item = trial.item
    m = Match(
        item.prompt,
        item.responses[match_record["first"]],
        item.responses[match_record["second"]],
        prompt_id=item.id,
        first=match_record["first"],
        second=match_record["second"],
        sample_offset=sample,
    )
    (j,) = asyncio.run(trial.judge.for_item(item).judge(m))
    return j.outcome, j.latency_s


def test_the_verdicts_are_the_simulated_judges_own():
    """One random model of the judge: every verdict in a harness trial is what the simulated
    judge answers for that match when asked directly, the truth is the item's scores, and the
    latencies are drawn but never slept."""
    bench = SimulatedBench(8, 3, seed=5, options={"position_bias": 0.2})
    for t in range(3):
        trial = bench.trial(t)
        assert trial.item.scores == tuple(trial.quality)
        res, out = run_strategy(build_strategy("bradley_terry"), trial)  # every ordered pair, one round
        assert out.comparisons == 56 and out.rounds == 1
        outcomes = []
        latencies = []
        for rec in res.matches:
            o, lat = _rejudge(trial, rec)
            assert rec["outcome"] == o.value
            outcomes.append(o)
            latencies.append(lat)
        # one round of parallel calls: the makespan is the slowest call, in units of the median
        assert out.makespan == pytest.approx(max(latencies) / bench.latency_unit)
        assert 0.3 < sum(o is Outcome.A for o in outcomes) / 56 < 0.8
    assert bench.judge.sleep is False and bench.latency_unit == 1.0


def _as_input(trial) -> dict:
    it = trial.item
    return {"id": it.id, "prompt": it.prompt, "responses": list(it.responses), "scores": list(it.scores)}


@pytest.mark.parametrize(
    "spec,budget,rounds",
    [
        ("knockout", None, None),
        ("adaptive", 30, None),
        ("adaptive", 48, 6),
        ("bradley_terry", 40, None),
        ("swiss", None, 3),
        ("merge_sort:both_orders=true", 21, None),
        ("pivot", 48, None),
        ("v1_swiss", None, 4),
    ],
)
def test_simulate_and_rank_agree(tmp_path, spec, budget, rounds):
    """The same trial given to `tourney rank` (same seed, same item, the budget and round limit as
    the flags, the options the harness hands a strategy that plans with them) gives the same
    matches, ranking and counts as in the harness."""
    bench = SimulatedBench(9, 2, seed=3, options={"abstain_rate": 0.1, "tie_rate": 0.05})
    f = build_strategy(spec)
    opts = dict(f.spec.options)
    if budget is not None and "budget" in f.cls.param_names():
        opts["budget"] = budget
    if rounds is not None and "rounds" in f.cls.param_names():
        opts["rounds"] = rounds
    full = f.spec.name + (":" + ",".join(f"{k}={v}" for k, v in opts.items()) if opts else "")
    for t in range(2):
        trial = bench.trial(t)
        res, out = run_strategy(f, trial, budget, max_rounds=rounds)
        inp = write_jsonl(tmp_path / f"in{t}.jsonl", [_as_input(trial)])
        argv = [
            "rank",
            str(inp),
            "--judge",
            "simulated:seed=3,abstain_rate=0.1,tie_rate=0.05",
            "--strategy",
            full,
            "--seed",
            "3",
            "--no-store",
            "--no-progress",
            "-q",
            "--out",
            str(tmp_path / f"out{t}.jsonl"),
        ]
        if budget is not None:
            argv += ["--max-comparisons", str(budget)]
        if rounds is not None:
            argv += ["--max-rounds", str(rounds)]
        assert main(argv) == 0
        (line,) = read_jsonl(tmp_path / f"out{t}.jsonl")
        assert line["matches"] == [dict(m) for m in res.matches], spec
        assert line["ranking"] == list(res.ranking) and line["best"] == res.best
        assert line["samples"] == out.comparisons and line["budget_limited"] == out.budget_limited
        meta = json.loads((tmp_path / f"out{t}.jsonl.meta.json").read_text())
        assert meta["stats"]["rounds"]["max"] == out.rounds
        if rounds is not None:
            assert out.rounds <= rounds


def test_replay_trials_are_tourney_rank_runs():
    """On replayed verdicts, run 0 of a question is exactly `tourney rank --seed 0` on it."""
    from tourney import Tournament

    bench = ReplayBench(EXCERPT / "replay-gpt35.jsonl", 3, 0, truth="self")
    items = [{k: it[k] for k in ("id", "prompt", "responses")} for it in read_jsonl(EXCERPT / "prompts.jsonl")]
    for spec, budget in [
        ("knockout", None),
        ("adaptive:budget=6", 6),
        ("bradley_terry", 12),
        ("swiss", None),
        ("merge_sort:both_orders=true", 7),
    ]:
        judge = f"replay:{EXCERPT / 'replay-gpt35.jsonl'}"
        engine = Tournament(judge, spec, seed=0, max_comparisons=budget).rank(items)
        for t in range(3):
            res, out = run_strategy(build_strategy(spec), bench.trial(t), budget)
            assert res.ranking == engine[t].ranking, spec
            assert res.matches == engine[t].matches
            assert out.comparisons == engine[t].samples
            assert out.budget_limited == engine[t].budget_limited
            assert math.isnan(out.makespan)  # the replay judge has no latency model


def test_rounds_are_the_critical_path():
    bench = SimulatedBench(16, 4, seed=0)
    for t in range(4):
        trial = bench.trial(t)
        assert run_strategy("knockout", trial)[1].rounds == 4  # ceil(log2 16) rounds of a bracket
        assert run_strategy("knockout:both_orders=true", trial)[1].rounds == 4
        assert run_strategy("pivot", trial)[1].rounds == 2
        assert run_strategy("league", trial)[1].rounds == 1
        out = run_strategy("adaptive", trial, 48, max_rounds=6)[1]
        assert out.rounds <= 6 and out.comparisons <= 48
        cut = run_strategy("knockout", trial, None, max_rounds=2)[1]  # a bracket cut after 2 rounds
        assert cut.rounds == 2 and cut.comparisons == 12 and cut.budget_limited


def test_simulate_is_deterministic_and_worker_independent():
    bench = SimulatedBench(6, 12, seed=4, options={"abstain_rate": 0.1})
    kw = dict(strategies="knockout,adaptive", bench=bench, budgets=[5, 12, None], rounds=[2, None])

    def strip(rows):  # CPU time is a measurement, not a result
        return [{k: v for k, v in r.to_json().items() if k != "cpu_ms"} for r in rows]

    a = simulate(**kw, workers=1)
    b = simulate(**kw, workers=2)
    assert strip(a.rows) == strip(b.rows)
    assert len(a.rows) == 2 * 3 * 2
    r = a.row("adaptive", 12)
    assert r.trials == 12 and 0 <= r.top1 <= 1 and r.ci95[0] <= r.top1 <= r.ci95[1]
    assert r.comparisons <= 12 + 6 and r.p_best is not None  # re-samples of abstentions are on top
    assert r.cpu_ms > 0 and r.makespan > 0 and r.rounds >= 1
    assert a.row("knockout", None).budget_limited == 0.0
    assert a.row("knockout", None, 2).rounds <= 2 and a.row("knockout", None, 2).budget_limited == 1.0
    assert a.row("adaptive", 12, 2).rounds <= 2


def test_cells_it_cannot_fill_are_na():
    bench = SimulatedBench(8, 5, seed=0)
    rep = simulate(
        ["knockout", "knockout:votes=9", "adaptive:first_pass=knockout"], bench, [3, 7, None], rounds=[2, None]
    )
    assert rep.row("knockout", 3).top1 is None and "n - 1" in rep.row("knockout", 3).na
    ko9 = rep.row("knockout:votes=9", 7)  # its first request alone needs 9 samples
    assert ko9.top1 is None and "first request" in ko9.na
    assert rep.row("knockout", 7).top1 is not None
    # a knockout first pass takes 3 rounds for 8 candidates: adaptive refuses a limit of 2
    refused = rep.row("adaptive:first_pass=knockout", None, 2)
    assert refused.top1 is None and "rounds" in refused.na and refused.failed == 0
    assert rep.row("adaptive:first_pass=knockout", None, None).top1 is not None
    assert "n/a" in format_table(rep)


def test_one_and_two_candidates():
    for n in (1, 2):
        rep = simulate(
            ["knockout", "adaptive", "bradley_terry", "pivot"], SimulatedBench(n, 6, seed=2), [None], rounds=[1, None]
        )
        for r in rep.rows:
            assert r.failed == 0 and r.top1 is not None, r
            if n == 1:
                assert r.top1 == 1.0 and r.comparisons == 0 and r.rounds == 0
            else:
                assert r.comparisons >= 1 and r.rounds >= 1
        if n == 2:
            assert rep.row("adaptive", None, 1).rounds == 1


def test_a_judge_that_mostly_abstains_never_hangs():
    """95% abstentions: every strategy still finishes (re-samples, then pairs without a vote are
    no result), and abstentions never count as wins."""
    bench = SimulatedBench(8, 4, seed=1, options={"abstain_rate": 0.95})
    rep = simulate(["knockout", "adaptive", "swiss", "v1_swiss", "merge_sort"], bench, [None, 20], rounds=[3, None])
    for r in rep.rows:
        assert r.failed == 0 and r.top1 is not None, r


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
    res, out = run_strategy(StrategyFactory(_Broken, Spec("broken")), trial, 10)
    assert res.status == "failed" and "RuntimeError: boom" in out.error


def test_replay_without_a_pair_is_reported(tmp_path):
    """A replay set that lacks matches a strategy asks for: errors counted as missing, no crash."""
    rows = read_jsonl(EXCERPT / "replay-gpt35.jsonl")
    kept = [r for r in rows if not (r["first_model"] == "gpt4" and r["second_model"] == "claude")]
    write_jsonl(tmp_path / "replay-x.jsonl", kept)
    (tmp_path / "prompts.jsonl").write_text((EXCERPT / "prompts.jsonl").read_text())
    bench = ReplayBench(tmp_path / "replay-x.jsonl", 9, 0, truth="self")
    rep = simulate(["bradley_terry", "voting:k=3", "adaptive"], bench, [20])
    assert rep.row("bradley_terry", 20).missing == pytest.approx(1.0)  # one ordered pair per question
    assert rep.row("voting:k=3", 20).missing > 1  # a replay holds one verdict per ordered pair
    assert all(r.failed == 0 and r.top1 is not None for r in rep.rows)
    assert all(r.makespan is None for r in rep.rows)  # no latency model: n/a
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
    rep = simulate(
        ["knockout:both_orders=true", "bradley_terry", "adaptive"], SimulatedBench(16, 60, seed=11), [30, 60]
    )
    for b in (30, 60):
        assert rep.row("adaptive", b).top1 >= max(
            rep.row(s, b).top1 for s in ("knockout:both_orders=true", "bradley_terry")
        )


def test_plot_accuracy_draws_one_curve_per_strategy_and_round_limit(tmp_path):
    """The Pareto view: with several round limits, main's plot_accuracy draws one labelled curve
    per (strategy, round limit); with one, one per strategy as before."""
    require("matplotlib", "tourney plot draws with matplotlib (the 'plot' extra)")
    from tourney.plotting import plot_accuracy

    rep = simulate(["knockout", "adaptive"], SimulatedBench(6, 6, seed=0), [5, 10, None], rounds=[2, None])
    doc = json.loads(json.dumps({"reports": [rep.to_json()]}))  # what simulate --format json writes
    plot_accuracy(doc, tmp_path / "pareto.svg")
    svg = (tmp_path / "pareto.svg").read_text(encoding="utf-8")
    labels = [f"{s}, {lim}" for s in ("knockout", "adaptive") for lim in ("&lt;= 2 rounds", "unlimited rounds")]
    assert all(f"<!-- {label} -->" in svg for label in labels), labels
    one = simulate(["knockout", "adaptive"], SimulatedBench(6, 6, seed=0), [5, 10], rounds=[3])
    plot_accuracy(one.to_json(), tmp_path / "one.svg")
    svg = (tmp_path / "one.svg").read_text(encoding="utf-8")
    assert "<!-- knockout -->" in svg and "<!-- adaptive -->" in svg and "rounds -->" not in svg


def test_cli_table_json_and_bad_input(tmp_path, capsys):
    assert (
        main(
            [
                "simulate",
                "--strategies",
                "knockout,adaptive",
                "--n",
                "5",
                "--trials",
                "20",
                "--budgets",
                "4,8",
                "--max-rounds",
                "2,full",
                "--workers",
                "1",
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "budget 4 comparisons, at most 2 rounds" in out and "budget 8 comparisons, unlimited rounds" in out
    assert "| adaptive" in out and "makespan" in out and "cpu ms" in out
    assert (
        main(
            [
                "simulate",
                "--strategies",
                "knockout",
                "--n",
                "5",
                "--trials",
                "10",
                "--workers",
                "1",
                "--format",
                "json",
                "--out",
                str(tmp_path / "o.json"),
                "-q",
                "--position-bias",
                "0.3",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads((tmp_path / "o.json").read_text())
    (rep,) = doc["reports"]
    assert rep["budgets"] == [4, 8, 16, 20] and rep["max_rounds"] == [None]  # the defaults for n = 5
    assert rep["bench"]["judge"]["position_bias"] == 0.3
    row = rep["rows"][0]
    assert {"rounds", "makespan", "cpu_ms", "max_rounds"} <= set(row) and row["rounds"] == 3
    # unknown strategy: usage error naming the known ones, before any work
    assert main(["simulate", "--strategies", "knockout,nope", "--trials", "5", "-q"]) == 2
    assert "known: adaptive" in capsys.readouterr().err
    assert main(["simulate", "--budgets", "ten", "-q"]) == 2
    for bad in ("0", "-1", "x"):
        assert main(["simulate", "--max-rounds", bad, "--trials", "2", "-q"]) == 2
        assert "round limit" in capsys.readouterr().err
    assert main(["simulate", "--judge", "replay:/nonexistent.jsonl", "-q"]) == 2


def test_cli_replay_folder(tmp_path, capsys):
    for name in ("prompts.jsonl", "replay-gpt35.jsonl"):
        (tmp_path / name).write_text((EXCERPT / name).read_text())
    assert (
        main(
            [
                "simulate",
                "--judge",
                f"replay:{tmp_path}",
                "--truth",
                "self",
                "--strategies",
                "knockout,adaptive",
                "--trials",
                "6",
                "--workers",
                "1",
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "replay replay-gpt35.jsonl (3 questions, N=5" in out and "truth: self" in out
