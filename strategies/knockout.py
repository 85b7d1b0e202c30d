"""Knockout (single-elimination) bracket: n - 1 matches, ceil(log2 n) rounds.

Seeding is a random permutation (from the run's seed) of the candidates in content order.
The bracket is a fixed balanced binary tree over the seeded list, so odd n gives byes
structurally (a subtree of one is a bye) and every match depends only on its two feeders: a
next-round match is proposed the moment both feeders are decided, never at a round boundary.

Each match is judged with ``votes`` samples, in one order (which candidate is shown first is a
seeded coin per match, like the seed judges' own harnesses) or, with ``both_orders``, in both
orders (``votes`` samples each; position-balanced). The winner has the majority of valid
votes; abstentions and errors are not votes. A split or empty vote is settled by a seeded coin
and reported in ``info["coin_flips"]``: the bracket must advance someone, but the ranking
records that the judge did not decide it.

Ranking: by round reached (the champion is above everyone), then by the share of votes a
candidate won in the match that eliminated it. ``score = round_reached + vote_share`` where a
match's round is its height in the tree (first-round matches are round 1, the final is round
ceil(log2 n)); the champion scores ``rounds + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tourney.strategy import STRATEGIES, Strategy
from tourney.types import MatchResult, Ranking, Request

from ._common import check_bool, check_int


@dataclass
class _Node:
    children: tuple[int, int]  # >= 0: node index; < 0: leaf -(player + 1)
    height: int
    swap: bool  # single order: show the right-hand player first
    coin: float  # settles a split vote
    players: list[int | None] = field(default_factory=lambda: [None, None])
    votes: list[int] = field(default_factory=lambda: [0, 0])
    pending: int = 0
    issued: bool = False
    winner: int | None = None
    loser: int | None = None
    coin_flip: bool = False
    parent: int = -1
    slot: int = 0


@STRATEGIES.register("knockout")
class Knockout(Strategy):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "votes": "judge samples per match (per order with both_orders); the majority of valid votes wins, a split or "
        "empty vote is a seeded coin (counted in info['coin_flips'])",
        "both_orders": "judge every match in both presentation orders (position-balanced; twice the requests) instead "
        "of one seeded order",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        votes: int = 1,
        both_orders: bool = False,
    ):
        super().__init__(n, rng, keys)
        self.votes = check_int("votes", votes, 1)
        self.both_orders = check_bool("both_orders", both_orders)
        seeding = [int(p) for p in rng.permutation(np.asarray(self.base_order, dtype=np.int64))]
        self._nodes: list[_Node] = []
        self._ready: list[int] = []
        self._champion: int | None = seeding[0] if n == 1 else None
        if n > 1:
            self._root = self._build(seeding)
            self.rounds = self._nodes[self._root].height
        else:
            self._root, self.rounds = -1, 0
        self._ready.sort()

    def _build(self, players: list[int]) -> int:
        """Build the subtree over ``players``; return its child reference."""
        if len(players) == 1:
            return -(players[0] + 1)
        mid = (len(players) + 1) // 2
        left, right = self._build(players[:mid]), self._build(players[mid:])
        h = 1 + max(self._height(left), self._height(right))
        node = _Node((left, right), h, swap=bool(self.rng.random() < 0.5), coin=float(self.rng.random()))
        idx = len(self._nodes)
        self._nodes.append(node)
        for slot, child in enumerate((left, right)):
            if child < 0:
                node.players[slot] = -child - 1
            else:
                self._nodes[child].parent, self._nodes[child].slot = idx, slot
        if node.players[0] is not None and node.players[1] is not None:
            self._ready.append(idx)
        return idx

    def _height(self, ref: int) -> int:
        return 0 if ref < 0 else self._nodes[ref].height

    @classmethod
    def expected_comparisons(cls, n: int, *, votes: int = 1, both_orders: bool = False, **params: Any) -> int:
        return max(n - 1, 0) * (2 if both_orders else 1)

    def propose(self) -> list[Request]:
        out: list[Request] = []
        for idx in self._ready:
            node = self._nodes[idx]
            a, b = node.players
            assert a is not None and b is not None
            node.issued = True
            if self.both_orders:
                out.append(Request(a, b, self.votes, tag=(idx, 0)))
                out.append(Request(b, a, self.votes, tag=(idx, 1)))
                node.pending = 2
            else:
                first, second = (b, a) if node.swap else (a, b)
                out.append(Request(first, second, self.votes, tag=(idx, 0)))
                node.pending = 1
        self._ready = []
        return out

    def observe(self, result: MatchResult) -> None:
        idx = result.request.tag[0]
        node = self._nodes[idx]
        a = node.players[0]
        for slot, cand in ((0, result.request.first), (1, result.request.second)):
            wins = result.first_wins if slot == 0 else result.second_wins
            node.votes[0 if cand == a else 1] += wins
        node.pending -= 1
        if node.pending == 0:
            self._decide(idx)

    def _decide(self, idx: int) -> None:
        node = self._nodes[idx]
        va, vb = node.votes
        if va == vb:
            node.coin_flip = True
            w = 0 if node.coin < 0.5 else 1
        else:
            w = 0 if va > vb else 1
        node.winner, node.loser = node.players[w], node.players[1 - w]
        if node.parent < 0:
            self._champion = node.winner
            return
        parent = self._nodes[node.parent]
        parent.players[node.slot] = node.winner
        if parent.players[0] is not None and parent.players[1] is not None:
            self._ready.append(node.parent)

    @property
    def done(self) -> bool:
        return self._champion is not None

    def ranking(self) -> Ranking:
        score = [0.0] * self.n
        for node in self._nodes:
            total = node.votes[0] + node.votes[1]
            for slot, p in enumerate(node.players):
                if p is None:
                    continue
                share = node.votes[slot] / total if total else 0.5
                if node.winner is None:  # undecided so far: still alive at this round
                    score[p] = max(score[p], node.height + 0.5)
                elif p == node.loser:
                    score[p] = max(score[p], node.height + min(share, 0.5))
        if self._champion is not None:
            score[self._champion] = self.rounds + 1.0
        matches = [
            {
                "round": nd.height,
                "players": list(nd.players),
                "votes": list(nd.votes),
                "winner": nd.winner,
                "coin_flip": nd.coin_flip,
            }
            for nd in self._nodes
            if nd.issued
        ]
        return Ranking(
            order=self.order_by(score),
            scores=tuple(score),
            scale="round reached + vote share in the eliminating match",
            info={
                "rounds": self.rounds,
                "coin_flips": sum(1 for nd in self._nodes if nd.coin_flip),
                "matches": matches,
            },
        )
