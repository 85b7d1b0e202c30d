"""The simulated judge: deterministic per match, calibrated to a realistic reasoning judge."""

import asyncio
import random

import numpy as np
import pytest

from tourney.errors import SpecError, TransientJudgeError
from tourney.judges import build_judge
from tourney.types import Match, Outcome


def _match(first, second, prompt="p", **kw):
    return Match(prompt=prompt, first_text=first, second_text=second, **kw)


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


def _agreement_and_bias(judge_spec, pairs=4000):
    j = build_judge(judge_spec)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(pairs, 2))
    ms = [_match(f"a{k}", f"b{k}", first_score=q[k, 0], second_score=q[k, 1]) for k in range(pairs)]
    out = [r[0].outcome for r in _run(j, ms)]
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
    ms = [_match(f"a{k}", f"b{k}", first_score=0.0, second_score=0.0) for k in range(4000)]
    rate = np.mean([r[0].outcome is Outcome.A for r in _run(j, ms)])
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
