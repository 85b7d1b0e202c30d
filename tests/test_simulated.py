"""The simulated judge: deterministic per match, calibrated to a realistic reasoning judge."""

import asyncio
import dataclasses
import random

import numpy as np
import pytest

from tourney.errors import JudgeError, SpecError, TransientJudgeError
from tourney.items import Item
from tourney.judges import build_judge
from tourney.judges.simulated import SimulatedJudge
from tourney.types import Match, Outcome


def _match(first, second, prompt="p", **kw):
    return Match(prompt=prompt, first_text=first, second_text=second, **kw)


def _scored(first, second, q_first, q_second, prompt="p"):
    """An input item of two responses with given latent qualities, and its match (first vs second)."""
    item = Item(index=0, id="i", prompt=prompt, responses=(first, second), scores=(q_first, q_second))
    return item, Match(prompt=prompt, first_text=first, second_text=second, first=0, second=1)


def _run(judge, matches):
    async def go():
        return [await judge.judge(m) for m in matches]

    return asyncio.run(go())


def test_same_match_same_judgement_in_any_order_and_instance():
    matches = [_match(f"r{i}", f"r{j}", samples=3) for i in range(6) for j in range(6) if i != j]
    a = _run(build_judge("simulated:seed=4"), matches)
    shuffled = matches[:]
    random.Random(1).shuffle(shuffled)
    b = dict(zip(shuffled, _run(build_judge("simulated:seed=4"), shuffled)))
    assert a == [b[m] for m in matches]
    c = _run(build_judge("simulated:seed=5"), matches)
    assert a != c


def test_sample_indices_and_count():
    (js,) = _run(build_judge("simulated"), [_match("x", "y", samples=4, sample_offset=10)])
    assert [j.sample for j in js] == [10, 11, 12, 13]


def _run_scored(judge, scored):
    """Judge each (item, match) through the judge's view of its item (as the scheduler does)."""

    async def go():
        return [await judge.for_item(item).judge(m) for item, m in scored]

    return asyncio.run(go())


def _agreement_and_bias(judge_spec, pairs=4000):
    j = build_judge(judge_spec)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(pairs, 2))
    out = [r[0].outcome for r in _run_scored(j, [_scored(f"a{k}", f"b{k}", q[k, 0], q[k, 1]) for k in range(pairs)])]
    first_better = q[:, 0] > q[:, 1]
    agree = np.mean([(o is Outcome.A) == fb for o, fb in zip(out, first_better)])
    first_rate = np.mean([o is Outcome.A for o in out])
    return agree, first_rate


@pytest.mark.parametrize("model", ["bradley_terry", "thurstone"])
def test_default_calibration_is_a_realistic_reasoning_judge(model):
    agree, first_rate = _agreement_and_bias(f"simulated:model={model}")
    # issue target: 80-85% agreement with the latent order on random pairs
    assert 0.79 <= agree <= 0.86
    # position bias: the first-shown response wins more often than half on random pairs
    assert 0.53 <= first_rate <= 0.60


def test_equal_quality_first_position_rate_matches_bias():
    j = build_judge("simulated:position_bias=0.1")
    rate = np.mean(
        [r[0].outcome is Outcome.A for r in _run_scored(j, [_scored(f"a{k}", f"b{k}", 0.0, 0.0) for k in range(4000)])]
    )
    assert abs(rate - 0.6) < 0.025  # binomial sd ~0.008


def test_abstentions_ties_and_errors():
    j = build_judge("simulated:abstain_rate=0.3,tie_rate=0.2")
    outs = [o.outcome for r in _run(j, [_match(f"a{k}", f"b{k}") for k in range(2000)]) for o in r]
    assert abs(outs.count(Outcome.ABSTAIN) / 2000 - 0.3) < 0.04
    assert abs(outs.count(Outcome.TIE) / 2000 - 0.14) < 0.04  # tie among non-abstentions
    j = build_judge("simulated:error_rate=1.0")
    with pytest.raises(TransientJudgeError):
        _run(j, [_match("a", "b")])


def test_transient_errors_can_succeed_on_retry():
    j = build_judge("simulated:error_rate=0.5")
    failures = 0
    for k in range(200):
        m = _match(f"a{k}", f"b{k}")
        for _attempt in range(20):
            try:
                _run(j, [m])
                break
            except TransientJudgeError:
                failures += 1
        else:
            pytest.fail("a 50% error rate never let the call through in 20 attempts")
    assert 100 < failures < 300


def test_latency_is_lognormal_with_given_median():
    j = build_judge("simulated:latency_median_s=0.002,latency_sigma=0.5")
    res = _run(j, [_match(f"a{k}", f"b{k}") for k in range(100)])
    lat = np.array([r[0].latency_s for r in res])
    assert 0.0013 < np.median(lat) < 0.003 and lat.std() > 0


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("simulated:nosie=1", "unknown option(s) nosie"),
        ("simulated:model=elo", "model must be one of"),
        ("simulated:abstain_rate=2", "abstain_rate must be in [0, 1]"),
        ("simulated:position_bias=0.7", "position_bias"),
        ("simulated:noise=0", "noise must be > 0"),
        ("simulated:seed=abc", "bad options for judge 'simulated'"),
        ("nonesuch", "unknown judge 'nonesuch'; known: "),
    ],
)
def test_bad_options(spec, fragment):
    with pytest.raises(SpecError) as exc:
        build_judge(spec)
    assert fragment in str(exc.value)


# -- the truth travels with the judge (Judge.for_item), not in the Match ---------------------------
def test_match_carries_only_what_every_judge_sees():
    assert [f.name for f in dataclasses.fields(Match)] == [
        "prompt",
        "first_text",
        "second_text",
        "prompt_id",
        "first",
        "second",
        "samples",
        "sample_offset",
    ]


def test_for_item_binds_the_input_scores_as_the_truth():
    j = build_judge("simulated:noise=0.01,position_bias=0")
    for q_first, q_second, winner in ((0.0, 10.0, Outcome.B), (10.0, 0.0, Outcome.A)):
        item, m = _scored("a", "b", q_first, q_second)
        view = j.for_item(item)
        ((got,),) = _run(view, [m])
        assert got.outcome is winner
        assert view.p_first(m) == j.win_probability(q_first, q_second)
        assert view.quality(m, "second") == q_second
        assert view.identity() == j.identity() and view.describe() == j.describe()
    # without the view the qualities are seeded draws, whatever the item said
    assert j.quality(m, "first") == j._draw_quality("p", "a")


def test_an_item_without_scores_is_judged_by_the_judge_itself():
    j = build_judge("simulated")
    assert j.for_item(Item(index=0, id="i", prompt="p", responses=("a", "b"))) is j


def test_a_view_rejects_a_response_its_item_does_not_have():
    item, _ = _scored("a", "b", 0.0, 1.0)
    with pytest.raises(JudgeError, match="not one of its responses"):
        _run(build_judge("simulated").for_item(item), [_match("a", "zzz")])


def test_concurrent_views_each_see_their_own_truth():
    """Two prompts with the same texts but opposite scores, judged interleaved (latency > 0):
    each call sees its own item's truth."""
    j = build_judge("simulated:noise=0.01,position_bias=0,latency_median_s=0.002")
    up, m = _scored("a", "b", 0.0, 10.0)
    down, _ = _scored("a", "b", 10.0, 0.0)

    async def go():
        return await asyncio.gather(*(j.for_item(up if k % 2 else down).judge(m) for k in range(40)))

    outcomes = [r[0].outcome for r in asyncio.run(go())]
    assert outcomes == [Outcome.B if k % 2 else Outcome.A for k in range(40)]


def test_a_subclass_judged_through_a_view_keeps_its_own_judge_and_state():
    """A judge built on the simulated one (fault injection, counters) is still the one that
    judges, and its state stays on it, when the scheduler goes through for_item."""

    class Counting(SimulatedJudge):
        def __init__(self, spec=None):
            super().__init__(spec)
            self.calls = 0

        async def judge(self, match):
            self.calls += 1
            return await super().judge(match)

    j = Counting()
    item, m = _scored("a", "b", 10.0, 0.0)
    view = j.for_item(item)
    ((got,),) = _run(view, [m])
    _run(view, [m])
    assert j.calls == 2 and got.outcome is Outcome.A and not hasattr(view, "calls")
