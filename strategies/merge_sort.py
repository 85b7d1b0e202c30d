"""Merge sort with the judge as comparator: about ``n log2 n`` matches.

The candidates, in a seeded random order (a permutation of the content order), are the leaves
of a balanced binary tree; every internal node merges its two children's sorted runs, and starts
the moment both are sorted (a merge never waits for the rest of its level). A merge's next
comparison depends only on that merge's own verdicts, so the result does not depend on the
order in which the judge answered.

A comparison is one request of ``votes`` samples in one presentation order (a seeded coin per
pair) or, with ``both_orders``, two requests (position-balanced). Its verdict is the share of
valid votes (ties half each way), smoothed as ``p = (votes_a + 1/2) / (valid + 1)``.
With ``beam = 1`` (default) the majority decides; a split or empty vote (every sample abstained
or failed) is settled by a seeded coin and counted in ``info["coin_flips"]``: the sort has to
place one candidate first, but the ranking records that the judge did not decide it
(``info["undecided"]`` counts the pairs without a majority, with or without a beam).

``beam = b > 1`` keeps both branches when a verdict is close (``min(p, 1 - p) >= close``; with
the default 0.3 a single vote is never close, a 2-1 split of three votes is): each merge runs a
beam search over merge orders scored by the mean log-probability of their decisions (the mean,
so that a branch that exhausts a run early is not favoured for deciding less), keeps the ``b``
most likely partial merges, and returns the most likely complete one (PairS-style
uncertainty-guided merging). A pair's verdict is judged once and shared by every branch.

Comparisons: at most ``n ceil(log2 n)`` for ``beam = 1`` (fewer when a run is exhausted early);
with a beam, at most ``sum over merges of min(p q, b (p + q - 1))`` for runs of lengths p, q;
twice either with ``both_orders``. ``comparison_bound`` computes the exact bound; the actual
number is data dependent, so ``expected_comparisons`` is None.

Strategy CPU: O(1) per decision and O(p + q) per merge of runs of lengths p and q without a
beam (a beam compares its states, walking their merged prefixes only on exact ties), so the
bookkeeping of a whole sort is O(n log n): about 120,000 comparisons at n = 10,000.

Scores: ``n - 1 - position`` in the sorted order (the best scores n - 1). A ranking asked for
before the sort ends (a budget-limited run) places each candidate by its quantile in the
longest sorted run that holds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tourney.strategy import STRATEGIES, Strategy
from tourney.types import MatchResult, Ranking, Request

from ._common import check_bool, check_float, check_int
from ._pairs import sample_counts, sub_seed


@dataclass
class _State:
    """A partial merge: ``taken`` is the merged prefix as a persistent list, newest first
    (``(candidate, rest)`` pairs ending in ``None``), so extending it costs O(1) and branches of
    a beam share their common prefix; ``i`` / ``j`` are the positions reached in the two runs."""

    taken: tuple[int, Any] | None
    i: int
    j: int
    loglik: float
    decisions: int = 0

    def sequence(self) -> list[int]:
        out = []
        t = self.taken
        while t is not None:
            out.append(t[0])
            t = t[1]
        out.reverse()
        return out


class _BeamOrder:
    """Sort key of a beam state: the highest mean log-probability first, then, only on an exact
    tie, the merged prefix compared in seeded (content-based) order. Built lazily: a sort of one
    state (always so without a beam) compares nothing, and the prefix is only walked on a tie,
    so a merge of runs of length p and q costs O(p + q), not O((p + q)^2)."""

    __slots__ = ("rank", "score", "state")

    def __init__(self, state: _State, rank: dict[int, int]):
        self.score = -state.loglik / max(state.decisions, 1)
        self.state, self.rank = state, rank

    def __lt__(self, other: _BeamOrder) -> bool:
        if self.score != other.score:
            return self.score < other.score
        return [self.rank[c] for c in self.state.sequence()] < [other.rank[c] for c in other.state.sequence()]


@dataclass
class _Merge:
    children: tuple[int, int]  # >= 0: node index; < 0: leaf -(candidate + 1)
    parent: int = -1
    slot: int = 0
    runs: list[list[int] | None] = field(default_factory=lambda: [None, None])
    states: list[_State] = field(default_factory=list)
    result: list[int] | None = None
    started: bool = False


@STRATEGIES.register("merge_sort")
class MergeSort(Strategy):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "votes": "judge samples per comparison (per order with both_orders)",
        "both_orders": "judge every comparison in both presentation orders (two requests)",
        "beam": "merge orders kept per merge: 1 follows the majority; b > 1 keeps both branches of a close verdict "
        "(PairS-style beam search)",
        "close": "a verdict is close (both branches kept, with beam > 1) when min(p, 1 - p) >= close",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = False,
        beam: int = 1,
        close: float = 0.3,
    ):
        super().__init__(n, rng, keys)
        self.votes = check_int("votes", votes, 1)
        self.both_orders = check_bool("both_orders", both_orders)
        self.beam = check_int("beam", beam, 1)
        self.close = check_float("close", close, 0.0, 0.5)
        seeding = [int(p) for p in rng.permutation(np.asarray(self.base_order, dtype=np.int64))]
        self._rank = {c: k for k, c in enumerate(seeding)}
        self._seed = sub_seed(rng)
        self._nodes: list[_Merge] = []
        self._ready: list[Request] = []
        # verdicts per unordered pair (lo, hi): valid votes for lo and hi, requests still out
        self._votes: dict[tuple[int, int], list[float]] = {}
        self._pending: dict[tuple[int, int], int] = {}
        self._waiting: dict[tuple[int, int], set[int]] = {}  # pair -> merges waiting on it
        self._coin_flips: set[tuple[int, int]] = set()
        self._undecided: set[tuple[int, int]] = set()  # pairs without a majority
        self._results: list[MatchResult] = []
        self._sorted: list[int] | None = list(seeding) if n == 1 else None
        if n > 1:
            self._root = self._build(seeding)
            for idx, node in enumerate(self._nodes):
                if node.runs[0] is not None and node.runs[1] is not None:
                    self._start(idx)

    def _build(self, players: list[int]) -> int:
        if len(players) == 1:
            return -(players[0] + 1)
        mid = (len(players) + 1) // 2
        left, right = self._build(players[:mid]), self._build(players[mid:])
        node = _Merge((left, right))
        idx = len(self._nodes)
        self._nodes.append(node)
        for slot, child in enumerate((left, right)):
            if child < 0:
                node.runs[slot] = [-child - 1]
            else:
                self._nodes[child].parent, self._nodes[child].slot = idx, slot
        return idx

    # -- documented counts ---------------------------------------------------------------------
    @classmethod
    def expected_comparisons(cls, n: int, **params: Any) -> int | None:
        return None  # data dependent: see comparison_bound

    @classmethod
    def comparison_bound(cls, n: int, *, beam: int = 1, both_orders: bool = False, **params: Any) -> int:
        """Most requests a run can make (exact worst case of the tree used here)."""

        def merges(m: int) -> int:
            if m <= 1:
                return 0
            p = (m + 1) // 2
            q = m - p
            per = p + q - 1 if beam == 1 else min(p * q, beam * (p + q - 1))
            return merges(p) + merges(q) + per

        return merges(n) * (2 if both_orders else 1)

    # -- comparisons ---------------------------------------------------------------------------
    def _key(self, a: int, b: int) -> tuple[int, int]:
        return (a, b) if a < b else (b, a)

    def _coin(self, a: int, b: int, stream: int) -> bool:
        """A seeded coin for the unordered pair: True means the higher-seeded one (content
        based, so relabelling does not change it)."""
        ra, rb = sorted((self._rank[a], self._rank[b]))
        return bool(np.random.default_rng([self._seed, stream, ra, rb]).random() < 0.5)

    def _p(self, a: int, b: int) -> float:
        """Smoothed probability that a is better than b."""
        v = self._votes[self._key(a, b)]
        va, vb = (v[0], v[1]) if a < b else (v[1], v[0])
        return (va + 0.5) / (va + vb + 1.0)

    def _ask(self, node: int, a: int, b: int) -> None:
        key = self._key(a, b)
        self._waiting.setdefault(key, set()).add(node)
        if key in self._votes:
            return
        self._votes[key] = [0.0, 0.0]
        if self.both_orders:
            reqs = [Request(a, b, self.votes, tag=key), Request(b, a, self.votes, tag=key)]
        else:
            hi_first = self._rank[a] < self._rank[b]  # a is the higher seed
            first, second = (a, b) if self._coin(a, b, 1) == hi_first else (b, a)
            reqs = [Request(first, second, self.votes, tag=key)]
        self._pending[key] = len(reqs)
        self._ready.extend(reqs)

    def _known(self, a: int, b: int) -> bool:
        key = self._key(a, b)
        return key in self._votes and self._pending.get(key, 0) == 0

    # -- merging -------------------------------------------------------------------------------
    def _start(self, idx: int) -> None:
        node = self._nodes[idx]
        node.started = True
        node.states = [_State(None, 0, 0, 0.0)]
        self._advance(idx)

    def _complete(self, node: _Merge, st: _State) -> bool:
        a, b = node.runs
        assert a is not None and b is not None
        return st.i == len(a) or st.j == len(b)

    def _advance(self, idx: int) -> None:
        node = self._nodes[idx]
        a_run, b_run = node.runs
        assert a_run is not None and b_run is not None
        while True:
            needed = [(a_run[st.i], b_run[st.j]) for st in node.states if not self._complete(node, st)]
            if not needed:
                break
            missing = [(a, b) for a, b in needed if not self._known(a, b)]
            if missing:
                for a, b in missing:
                    self._ask(idx, a, b)
                return
            nxt: list[_State] = []
            for st in node.states:
                if self._complete(node, st):
                    nxt.append(st)
                    continue
                a, b = a_run[st.i], b_run[st.j]
                p = self._p(a, b)
                if p == 0.5:
                    self._undecided.add(self._key(a, b))
                d = st.decisions + 1
                take_a = _State((a, st.taken), st.i + 1, st.j, st.loglik + math.log(p), d)
                take_b = _State((b, st.taken), st.i, st.j + 1, st.loglik + math.log(1.0 - p), d)
                if self.beam > 1 and min(p, 1.0 - p) >= self.close:
                    nxt += [take_a, take_b]
                elif p != 0.5:
                    nxt.append(take_a if p > 0.5 else take_b)
                else:
                    self._coin_flips.add(self._key(a, b))
                    a_first = self._coin(a, b, 2) == (self._rank[a] < self._rank[b])
                    nxt.append(take_a if a_first else take_b)
            nxt.sort(key=lambda st: _BeamOrder(st, self._rank))
            node.states = nxt[: self.beam]
        best = node.states[0]
        node.result = best.sequence() + a_run[best.i :] + b_run[best.j :]
        node.states = []
        if node.parent < 0:
            self._sorted = node.result
            return
        parent = self._nodes[node.parent]
        parent.runs[node.slot] = node.result
        if parent.runs[0] is not None and parent.runs[1] is not None:
            self._start(node.parent)

    # -- protocol ------------------------------------------------------------------------------
    def propose(self) -> list[Request]:
        out, self._ready = self._ready, []
        return out

    def observe(self, result: MatchResult) -> None:
        self._results.append(result)
        key = result.request.tag
        f, s = result.request.first, result.request.second
        v = self._votes[key]
        for cand, wins in ((f, result.first_wins), (s, result.second_wins)):
            v[0 if cand == key[0] else 1] += wins + 0.5 * result.ties
        self._pending[key] -= 1
        if self._pending[key] == 0:
            for idx in sorted(self._waiting.pop(key, ())):
                if self._nodes[idx].result is None:
                    self._advance(idx)

    @property
    def done(self) -> bool:
        return self._sorted is not None

    def ranking(self) -> Ranking:
        n = self.n
        run_of: dict[int, list[int]] = {c: [c] for c in range(n)}
        at = dict.fromkeys(range(n), 0)  # position in its run
        runs = [self._sorted] if self._sorted is not None else [nd.result for nd in self._nodes]
        for run in runs:  # children come before parents
            if run is not None:
                for k, c in enumerate(run):
                    run_of[c], at[c] = run, k
        score = []
        for c in range(n):
            run = run_of[c]
            q = 0.5 if len(run) == 1 else (len(run) - 1 - at[c]) / (len(run) - 1)
            score.append(q * (n - 1))
        ordered = sorted(range(n), key=lambda c: (-score[c], -len(run_of[c]), self._tiebreak[c]))
        results = sorted(self._results, key=lambda r: (r.request.tag, r.request.first))
        return Ranking(
            order=tuple(ordered),
            scores=tuple(float(v) for v in score),
            scale="merge-sort position (n - 1 = best, 0 = worst)",
            budget_limited=False,
            info={
                "comparisons": len(self._votes),
                "coin_flips": len(self._coin_flips),
                "undecided": len(self._undecided),
                "samples": sample_counts(results),
            },
        )
