"""Voting@k: every match of an inner strategy is decided by the majority of k samples,
position-balanced, stopping early once the remaining samples cannot change the majority.

This is RRM's voting@16 / voting@5 as a meta-strategy: ``voting`` runs the ``inner`` strategy
(``knockout`` by default, or any registered strategy spec such as ``round_robin``,
``merge_sort`` or, from Python or ``--strategy-opt``, ``swiss:rounds=4``) and replaces each
match it asks for by a vote. The inner strategy receives one
judgement per match -- the majority: A or B, TIE for an even split, ABSTAIN when no sample
gave a valid vote (ERROR when every sample failed) -- so the vote is its unit of evidence, and
the inner strategy's own ``votes`` option is not used.

Position balance: half the samples show the inner request's ``first`` candidate first, half the
other; for odd k the order that gets the extra sample is a seeded coin per match.

Early stop (``early_stop``, default true), under the batch rule: the first batch asks for the
smallest balanced number of samples that could decide the match (``k // 2 + 1`` rounded up to
an even count, half in each order); then one more sample per order per batch. After each
COMPLETE batch, with ``gap`` = |votes for one side - votes for the other| and ``remaining`` =
samples not yet asked for, the vote stops when ``gap > remaining``: even if every remaining
sample went to the trailing side, the majority would stand. A unanimous judge therefore uses
``k // 2 + 1`` rounded up to even samples (10 of 16, 4 of 5). Abstentions and errors are not
votes; ties are votes for neither side.

``info["voting"]`` reports per match the votes ``[for first, for second, ties, abstentions,
errors]`` (from the inner request's point of view), the samples asked for, whether it stopped
early, and totals (samples saved, tied and abstained matches).

Comparisons (requests): without early stop, twice the inner strategy's count (once for k = 1).
With early stop it is data dependent; ``comparison_bound`` gives the maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from tourney.hashing import stable_seed
from tourney.strategy import STRATEGIES, Strategy, StrategyFactory, build_strategy
from tourney.types import Judgement, MatchResult, Outcome, Ranking, Request

from ._common import check_bool, check_int
from ._pairs import sub_seed


@dataclass
class _Vote:
    inner: Request
    plan: tuple[int, int]  # total samples per order (0: inner order, 1: reversed)
    sent: list[int] = field(default_factory=lambda: [0, 0])
    pending: int = 0
    votes: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # first, second, tie, abstain, error
    paid: int = 0
    batches: int = 0
    early: bool = False
    outcome: Outcome | None = None
    repeat: int = 0


def _schedule(k: int, early_stop: bool) -> list[tuple[int, int]]:
    """Worst-case batches (samples per order) of one vote with the larger half in order 0."""
    h0, h1 = (k + 1) // 2, k // 2
    if not early_stop:
        return [(h0, h1)]
    first = -(-(k // 2 + 1) // 2)
    out = [(min(first, h0), min(first, h1))]
    s0, s1 = out[0]
    while s0 < h0 or s1 < h1:
        step = (1 if s0 < h0 else 0, 1 if s1 < h1 else 0)
        out.append(step)
        s0, s1 = s0 + step[0], s1 + step[1]
    return out


def _inner_factory(inner: Any) -> StrategyFactory:
    spec = str(inner)
    factory = build_strategy(spec)
    if factory.cls is Voting:
        raise ValueError("the inner strategy of voting cannot be voting")
    return factory


@STRATEGIES.register("voting")
class Voting(Strategy):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "k": "samples per match of the inner strategy, position-balanced; the majority decides",
        "inner": "the strategy whose matches are voted on (a spec: knockout, round_robin, merge_sort, swiss:rounds=4, "
        "...)",
        "early_stop": "stop a match's vote once the remaining samples cannot change the majority",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        k: int = 5,
        inner: str = "knockout",
        early_stop: bool = True,
    ):
        super().__init__(n, rng, keys)
        self.k = check_int("k", k, 1)
        self.early_stop = check_bool("early_stop", early_stop)
        self.inner = _inner_factory(inner)
        self._seed = sub_seed(rng)
        self._rank = {c: r for r, c in enumerate(self.base_order)}
        self._inner = self.inner.create(n, np.random.default_rng(sub_seed(rng)), keys)
        self._votes: dict[int, _Vote] = {}
        self._next_id = 0
        self._ready: list[Request] = []
        self._active = 0
        self._seen: dict[tuple[int, int], int] = {}

    # -- documented counts ---------------------------------------------------------------------
    @classmethod
    def expected_comparisons(
        cls, n: int, *, k: int = 5, inner: str = "knockout", early_stop: bool = True, **params: Any
    ) -> int | None:
        if early_stop and len(_schedule(k, True)) > 1:
            return None
        m = _inner_factory(inner).expected_comparisons(n)
        return None if m is None else m * (2 if k >= 2 else 1)

    @classmethod
    def comparison_bound(
        cls, n: int, *, k: int = 5, inner: str = "knockout", early_stop: bool = True, **params: Any
    ) -> int | None:
        """Most requests a run can make: the inner count (or bound) times the requests of a
        vote that never stops early (None: the inner strategy has no bound)."""
        f = _inner_factory(inner)
        m = f.expected_comparisons(n)
        if m is None:
            m = f.comparison_bound(n)
        if m is None:
            return None
        per = sum((a > 0) + (b > 0) for a, b in _schedule(k, early_stop))
        return m * per

    # -- votes ---------------------------------------------------------------------------------
    def _open(self, req: Request) -> None:
        vid = self._next_id
        self._next_id += 1
        h_big, h_small = (self.k + 1) // 2, self.k // 2
        # content-keyed coin: the pair's ranks in content order and how often the inner strategy
        # asked for this ordered pair before (its tags may hold candidate indices)
        pair = (self._rank[req.first], self._rank[req.second])
        repeat = self._seen.get(pair, 0)
        self._seen[pair] = repeat + 1
        u = stable_seed(self._seed, *pair, repeat)
        plan = (h_big, h_small) if u % 2 == 0 else (h_small, h_big)
        vote = _Vote(req, plan, repeat=repeat)
        self._votes[vid] = vote
        self._active += 1
        if self.early_stop:
            first = -(-(self.k // 2 + 1) // 2)
            self._issue(vid, min(first, plan[0]), min(first, plan[1]))
        else:
            self._issue(vid, *plan)

    def _issue(self, vid: int, s0: int, s1: int) -> None:
        vote = self._votes[vid]
        a, b = vote.inner.first, vote.inner.second
        base = vote.inner.sample_offset
        for order, (first, second), s in ((0, (a, b), s0), (1, (b, a), s1)):
            if s:
                self._ready.append(Request(first, second, s, base + vote.sent[order], tag=(vid, vote.batches, order)))
                vote.sent[order] += s
                vote.pending += 1
        vote.batches += 1

    def observe(self, result: MatchResult) -> None:
        vid, _, order = result.request.tag
        vote = self._votes[vid]
        fw, sw = result.first_wins, result.second_wins
        if order == 1:  # reversed presentation: the inner request's first was shown second
            fw, sw = sw, fw
        v = vote.votes
        v[0] += fw
        v[1] += sw
        v[2] += result.ties
        v[3] += result.abstentions
        v[4] += result.errors
        vote.paid += len(result.judgements)
        vote.pending -= 1
        if vote.pending:
            return
        remaining = [vote.plan[o] - vote.sent[o] for o in (0, 1)]
        if sum(remaining) and abs(v[0] - v[1]) <= sum(remaining):
            self._issue(vid, min(1, remaining[0]), min(1, remaining[1]))
            return
        vote.early = sum(remaining) > 0
        self._decide(vote)

    def _decide(self, vote: _Vote) -> None:
        a, b, t, ab, err = vote.votes
        if a > b:
            out = Outcome.A
        elif b > a:
            out = Outcome.B
        elif a or t:
            out = Outcome.TIE
        elif err and not ab:
            out = Outcome.ERROR
        else:
            out = Outcome.ABSTAIN
        vote.outcome = out
        self._active -= 1
        j = Judgement(
            outcome=out,
            verdict=f"voting@{self.k}: {a}-{b} ({t} ties, {ab} abstained, {err} errors)",
            extra={"votes": list(vote.votes)},
        )
        self._inner.observe(MatchResult(vote.inner, (j,)))

    # -- protocol ------------------------------------------------------------------------------
    def propose(self) -> list[Request]:
        for req in self._inner.propose():
            self._open(req)
        out, self._ready = self._ready, []
        return out

    @property
    def done(self) -> bool:
        return self._active == 0 and not self._ready and self._inner.done

    def ranking(self) -> Ranking:
        r = self._inner.ranking()
        votes = sorted(
            self._votes.values(),
            key=lambda v: (self._rank[v.inner.first], self._rank[v.inner.second], v.repeat),
        )
        asked = sum(sum(v.sent) for v in votes)
        decided = [v for v in votes if v.outcome is not None]
        info = {
            "k": self.k,
            "inner": str(self.inner),
            "samples_asked": asked,
            "samples_saved": sum(self.k - sum(v.sent) for v in decided),
            "samples_paid": sum(v.paid for v in votes),
            "early_stops": sum(1 for v in decided if v.early),
            "tied_matches": sum(1 for v in decided if v.outcome is Outcome.TIE),
            "undecided_matches": sum(1 for v in decided if v.outcome in (Outcome.ABSTAIN, Outcome.ERROR)),
            "matches": [
                {
                    "first": v.inner.first,
                    "second": v.inner.second,
                    "votes": list(v.votes),
                    "samples": sum(v.sent),
                    "early_stop": v.early,
                    "outcome": v.outcome.value if v.outcome is not None else None,
                }
                for v in votes
            ],
        }
        return replace(r, info={**r.info, "voting": info})
