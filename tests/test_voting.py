"""Vote-of-k (strategies/voting.py): early stopping, position balance, ties and abstentions,
and the inner strategy."""

from __future__ import annotations

import pytest

from tourney.types import Outcome

from .conftest import chaos, constant, noiseless, noisy, run


def decisive(f: str, s: str, sample: int) -> Outcome:
    return noiseless(f, s, sample)


def _samples(res) -> int:
    return sum(r.samples for r in res.requests)


def test_voting_early_stop_saves_samples_with_a_decisive_judge():
    n = 8
    early = run("voting", {"k": 16}, n, decisive)
    full = run("voting", {"k": 16, "early_stop": False}, n, decisive)
    assert early.ranking.order[0] == full.ranking.order[0] == n - 1
    assert _samples(full) == 16 * (n - 1)
    assert _samples(early) == 10 * (n - 1)  # unanimous: 5 + 5 samples settle 16
    v = early.ranking.info["voting"]
    assert v["samples_saved"] == 6 * (n - 1) and v["early_stops"] == n - 1
    five = run("voting", {"k": 5}, n, decisive)
    assert _samples(five) == 4 * (n - 1)


def test_voting_keeps_sampling_while_the_majority_is_open():
    n = 6
    coin = run("voting", {"k": 9}, n, chaos)
    for m in coin.ranking.info["voting"]["matches"]:
        a, b = m["votes"][:2]
        if m["early_stop"]:
            assert abs(a - b) > 9 - m["samples"]
        else:
            assert m["samples"] == 9


@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_voting_is_position_balanced(k):
    res = run("voting", {"k": k, "early_stop": False, "inner": "round_robin"}, 5, noisy)
    per_pair: dict[frozenset[int], list[int]] = {}
    for r in res.requests:
        pair = per_pair.setdefault(frozenset((r.first, r.second)), [0, 0])
        pair[0 if r.first < r.second else 1] += r.samples
    for a, b in per_pair.values():
        assert a + b == k and abs(a - b) <= 1
    # which order gets the odd sample is a seeded coin, not always the same side
    if k % 2:
        assert len({a > b for a, b in per_pair.values()}) == 2


def test_voting_reports_ties_and_abstentions():
    n = 5
    res = run("voting", {"k": 4, "inner": "round_robin"}, n, constant(Outcome.TIE))
    v = res.ranking.info["voting"]
    assert v["tied_matches"] == n * (n - 1) // 2 and v["undecided_matches"] == 0
    res = run("voting", {"k": 4, "inner": "round_robin"}, n, constant(Outcome.ABSTAIN))
    v = res.ranking.info["voting"]
    assert v["undecided_matches"] == n * (n - 1) // 2
    assert all(m["votes"][3] == 4 for m in v["matches"])


def test_voting_rejects_itself_as_inner():
    from tourney.errors import SpecError
    from tourney.strategy import build_strategy

    with pytest.raises(SpecError):
        build_strategy("voting", {"inner": "voting"})
    with pytest.raises(SpecError, match="unknown strategy"):
        build_strategy("voting", {"inner": "nope"})
