"""Swiss system: a fixed number of rounds; players with equal scores meet, never twice.

Round 1 pairs a seeded random order (a permutation of the candidates in content order). Each
later round ranks the players by points (ties by that seeding) and pairs players who have not
met yet, so that players with equal scores meet (the closest-ranked first), priority going to
the top score group (a group with an odd count floats one player down to the next group). Each
round is one batch: it is paired only when every match of the previous round is judged, so the
pairings depend on the results, never on the order they arrived in.

Pairing (``pairing``):

* ``exact``: one maximum-weight matching over every pair not met yet (see ``_pair_exact``): the
  most score-equal rematch-free pairing there is, lexicographically from the top group down.
  It builds an n x n graph and a blossom matching, O(n^3) time per round (n = 400: a minute
  for the whole run; at n = 10,000 the run used 13.9 GB), so it is refused above
  ``EXACT_LIMIT`` = 512 players.
* ``fast``: pairing within score groups without a graph: down the standings, each unpaired
  player meets the nearest-ranked unpaired player it has not met (so equal scores meet, and a
  group's odd player, or one that has met everyone left in its group, floats to the top of the
  next group); at the tail, where a player may have met everyone left, a bounded exchange with
  one of the last 16 pairs avoids the rematch (``_rounds.pair_nearest``). The bye goes to the
  lowest-ranked player among those with the fewest byes, unless one of the next 7 such players
  gives a more score-equal pairing. O(n log n + n r) per round after r rounds. If no
  rematch-free pairing is found this way, the exact matching is used instead (n <=
  ``EXACT_LIMIT``) or the tournament ends early (larger n; not seen at the default rounds).
  On small fields its pairing is as score-equal as the exact one in about 94% of rounds (tests).
* ``auto`` (default): ``exact`` up to ``EXACT_MAX`` = 64 players (the pairings of every earlier
  version, unchanged), ``fast`` above.

``rounds`` defaults to ``ceil(log2 n)``, the fewest after which a noiseless judge leaves exactly
one unbeaten player (the unbeaten group halves every round), and is capped at a full round
robin's count (n - 1 rounds, n for odd n). With odd n one player per round gets a bye: the
lowest-ranked among those who have had the fewest byes, unless that would spoil the pairing of
a higher score group.

A match is ``votes`` samples in one seeded order, or in both orders with ``both_orders``; its
winner has the majority of the valid votes (1 point), a split or an explicit tie gives 1/2 each,
and a match with no valid vote (every sample abstained or failed) gives nothing to either.

Scores: the points from judged matches, plus, for each bye, the player's own points per judged
match (so a bye is worth what the player earns on average: a full point to an unbeaten player,
nothing to a player whose matches all abstained; never a free win). For PAIRING, a bye counts
as a win, as in standard Swiss. Equal scores are ordered by the Buchholz sum (opponents'
scores), then by content order. A ranking asked for mid-round (a budget-limited run) counts the
completed rounds only.

Comparisons: ``rounds * floor(n / 2)`` requests (twice that with ``both_orders``), exactly when
``rounds <= ceil(n / 2)`` (always so by default) and n <= ``EXACT_LIMIT``: a rematch-free
pairing then always exists and is found. With more rounds the pairing can get stuck (and above
``EXACT_LIMIT`` the fast pairing's search is bounded); the tournament then ends early,
``info["ended_early"]`` says so, and the count is an upper bound (``expected_comparisons`` is
None, ``comparison_bound`` gives it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tourney.strategy import STRATEGIES
from tourney.types import MatchResult, Ranking, Request

from ._common import check_bool, check_int
from ._pairs import Batched, check_choice, sample_counts
from ._rounds import pair_nearest

#: ``pairing="auto"`` uses the exact matching up to this many players, the fast pairing above
EXACT_MAX = 64
#: the exact matching (an n x n graph, O(n^3) per round) is refused above this many players
EXACT_LIMIT = 512
#: the fast pairing tries the bye on at most this many players (the lowest-ranked eligible ones)
BYE_CANDIDATES = 8


def _rounds(n: int, rounds: int | None) -> int:
    if n < 2:
        return 0
    cap = n - 1 if n % 2 == 0 else n
    return min(cap, math.ceil(math.log2(n)) if rounds is None else rounds)


@STRATEGIES.register("swiss")
class Swiss(Batched):
    #: option -> meaning, shown in full by ``tourney strategies`` (defaults come from ``__init__``)
    options: ClassVar[dict[str, str]] = {
        "rounds": "number of rounds; None: ceil(log2 n), capped at a full round robin's count",
        "votes": "judge samples per match (per order with both_orders)",
        "both_orders": "judge every match in both presentation orders",
        "pairing": "exact (maximum-weight matching, at most 512 players), fast (nearest unmet in the standings) "
        "or auto (exact up to 64)",
    }

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        keys: Sequence[str] | None = None,
        *,
        rounds: int | None = None,
        votes: int = 1,
        both_orders: bool = False,
        pairing: str = "auto",
    ):
        super().__init__(n, rng, keys)
        self.rounds = None if rounds is None else check_int("rounds", rounds, 1)
        self.votes = check_int("votes", votes, 1)
        self.both_orders = check_bool("both_orders", both_orders)
        self.pairing = check_choice("pairing", pairing, ("auto", "exact", "fast"))
        if self.pairing == "exact" and n > EXACT_LIMIT:
            raise ValueError(
                f"swiss pairing='exact' builds an n x n graph and an O(n^3) matching: at most {EXACT_LIMIT} "
                f"candidates, got {n}; use pairing='fast' (the default above {EXACT_MAX})"
            )
        self._exact = self.pairing == "exact" or (self.pairing == "auto" and n <= EXACT_MAX)
        self.n_rounds = _rounds(n, self.rounds)
        seeding = [int(p) for p in rng.permutation(np.asarray(self.base_order, dtype=np.int64))]
        self._seed_rank = {c: k for k, c in enumerate(seeding)}
        self._points = [0.0] * n  # from judged matches
        self._decided = [0] * n  # matches with at least one valid vote
        self._byes = [0] * n
        self._opponents: list[list[int]] = [[] for _ in range(n)]
        self._met: set[frozenset[int]] = set()
        self._met_by: list[set[int]] = [set() for _ in range(n)]  # the same, per player
        self._pairs: list[tuple[int, int]] = []  # this round's pairs (higher standing first)
        self._log: list[dict[str, Any]] = []
        self._ended_early = False
        self._scored = 0  # rounds whose every match is judged

    @classmethod
    def expected_comparisons(
        cls, n: int, *, rounds: int | None = None, both_orders: bool = False, **params: Any
    ) -> int | None:
        # Up to ceil(n / 2) rounds a rematch-free pairing always exists (Dirac: the graph of
        # pairs not yet met, plus the bye, has minimum degree >= half its vertices, so it has a
        # Hamiltonian cycle and hence a perfect matching); beyond that it may get stuck. Above
        # EXACT_LIMIT only the bounded fast pairing looks for it.
        if _rounds(n, rounds) > (n + 1) // 2 or n > EXACT_LIMIT:
            return None
        return cls.comparison_bound(n, rounds=rounds, both_orders=both_orders)

    @classmethod
    def comparison_bound(cls, n: int, *, rounds: int | None = None, both_orders: bool = False, **params: Any) -> int:
        """Requests of a run that plays every round (the most it can make)."""
        return _rounds(n, rounds) * (n // 2) * (2 if both_orders else 1)

    # -- rounds --------------------------------------------------------------------------------
    def next_batch(self, last: list[MatchResult]) -> list[Request]:
        if last:
            self._score_round(last)
        if len(self._log) >= self.n_rounds:
            return []
        pairing = self._pair()
        if pairing is None:
            self._ended_early = True
            return []
        pairs, bye = pairing
        if bye is not None:
            self._byes[bye] += 1
        self._pairs = pairs
        self._log.append({"round": len(self._log) + 1, "pairs": [list(p) for p in pairs], "bye": bye, "results": []})
        out: list[Request] = []
        coins = self.rng.random(len(pairs))
        for (a, b), c in zip(pairs, coins):
            self._met.add(frozenset((a, b)))
            self._met_by[a].add(b)
            self._met_by[b].add(a)
            self._opponents[a].append(b)
            self._opponents[b].append(a)
            if self.both_orders:
                out += [Request(a, b, self.votes), Request(b, a, self.votes)]
            else:
                out.append(Request(b, a, self.votes) if c < 0.5 else Request(a, b, self.votes))
        return out

    def _score_round(self, results: list[MatchResult]) -> None:
        votes: dict[frozenset[int], dict[int, float]] = {}
        for r in results:
            f, s = r.request.first, r.request.second
            v = votes.setdefault(frozenset((f, s)), {f: 0.0, s: 0.0})
            v[f] += r.first_wins + 0.5 * r.ties
            v[s] += r.second_wins + 0.5 * r.ties
        self._scored += 1
        log = self._log[-1]["results"]
        for a, b in self._pairs:
            v = votes.get(frozenset((a, b)), {a: 0.0, b: 0.0})
            if v[a] + v[b] == 0:
                log.append(None)  # no valid vote: no result
                continue
            pa = 1.0 if v[a] > v[b] else 0.0 if v[a] < v[b] else 0.5
            self._points[a] += pa
            self._points[b] += 1.0 - pa
            self._decided[a] += 1
            self._decided[b] += 1
            log.append(pa)

    def _standing_points(self) -> list[float]:
        return [self._points[i] + self._byes[i] for i in range(self.n)]  # a bye is a win for pairing

    def _pair(self) -> tuple[list[tuple[int, int]], int | None] | None:
        """This round's pairs (higher standing first) and the bye, or None if no rematch-free
        pairing was found (see the module docstring for the two methods)."""
        if self._exact:
            return self._pair_exact()
        got = self._pair_fast()
        if got is None and self.n <= EXACT_LIMIT:
            return self._pair_exact()
        return got

    def _pair_fast(self) -> tuple[list[tuple[int, int]], int | None] | None:
        """Pairing within score groups without a graph (``_rounds.pair_nearest``). With odd n
        the bye goes to the lowest-ranked player with the fewest byes, unless one of the next
        ``BYE_CANDIDATES - 1`` such players up the standings gives a more score-equal pairing
        (the same lexicographic measure as the exact pairing's, top group first)."""
        pts = self._standing_points()
        standing = sorted(range(self.n), key=lambda i: (-pts[i], self._seed_rank[i]))
        if self.n % 2 == 0:
            pairs = pair_nearest(standing, self._met_by, self.n // 2)
            return None if any(b in self._met_by[a] for a, b in pairs) else (pairs, None)
        fewest = min(self._byes)
        eligible = [p for p in reversed(standing) if self._byes[p] == fewest][:BYE_CANDIDATES]
        levels = sorted(set(pts), reverse=True)
        group = {v: g for g, v in enumerate(levels)}
        best: tuple[list[float], list[tuple[int, int]], int] | None = None
        for k, bye in enumerate(eligible):
            pairs = pair_nearest([p for p in standing if p != bye], self._met_by, self.n // 2)
            if any(b in self._met_by[a] for a, b in pairs):
                continue
            cost = [0.0] * len(levels)  # squared point gaps, per score group of the higher player
            for a, b in pairs:
                cost[group[max(pts[a], pts[b])]] += (pts[a] - pts[b]) ** 2
            cost[group[pts[bye]]] += (pts[bye] + 1) ** 2  # the bye: an opponent scoring -1
            if best is None or cost < best[0]:
                best = (cost, pairs, bye)
            nxt = eligible[k + 1] if k + 1 < len(eligible) else None
            if best[2] == bye and not any(cost[: group[pts[bye]]]) and (nxt is None or pts[nxt] > pts[bye]):
                break  # the rest would put the bye in a higher group, at a cost there: no better
        return None if best is None else (best[1], best[2])

    def _pair_exact(self) -> tuple[list[tuple[int, int]], int | None] | None:
        """The exact pairing: the pairs and the bye, or None if no rematch-free pairing exists.

        One maximum-weight matching over the standings, the bye being a virtual player ranked
        below everyone. Its cost is lexicographic from the top score group down: a mismatch
        (point difference d) involving a player of score group g costs ``(2d)^2 * F^g`` with F
        larger than everything the lower groups can add, so the top group is paired internally
        whenever possible (this is what makes the unbeaten group halve every round); within
        that, the closest-ranked players meet.
        """
        import networkx as nx

        pts = self._standing_points()
        standing = sorted(range(self.n), key=lambda i: (-pts[i], self._seed_rank[i]))
        levels = sorted(set(pts))
        group = {p: levels.index(pts[p]) for p in standing}
        half = [round(2 * pts[p]) for p in standing]  # half points as integers
        big = (self.n + 1) ** 2  # one unit of mismatch outweighs any sum of standings distances
        f = (self.n + 1) * (2 * (2 * self.n + 2)) ** 2 + 1  # a group outweighs all groups below it
        m = len(standing)
        bye_node = m
        fewest = min(self._byes)

        def cost(u: int, v: int) -> int:
            hi = u if half[u] >= half[v] else v
            d = half[u] - half[v]
            return big * d * d * f ** group[standing[hi]] + abs(u - v)

        for any_bye in (False, True):
            g = nx.Graph()
            g.add_nodes_from(range(m + (self.n % 2)))
            for u in range(m):
                for v in range(u + 1, m):
                    if frozenset((standing[u], standing[v])) not in self._met:
                        g.add_edge(u, v, weight=-cost(u, v))
            if self.n % 2:
                for u in range(m):
                    if any_bye or self._byes[standing[u]] == fewest:
                        d = half[u] + 2  # the bye "scores" -1 point
                        g.add_edge(u, bye_node, weight=-(big * d * d * f ** group[standing[u]]))
            matching = nx.max_weight_matching(g, maxcardinality=True)
            if 2 * len(matching) == g.number_of_nodes():
                bye = None
                pairs = []
                for u, v in sorted((min(e), max(e)) for e in matching):
                    if v == bye_node:
                        bye = standing[u]
                    else:
                        pairs.append((standing[u], standing[v]))
                return pairs, bye
        return None

    # -- result --------------------------------------------------------------------------------
    def final_points(self) -> list[float]:
        """Judged points plus, per bye, the player's own points per judged match."""
        out = []
        for i in range(self.n):
            rate = self._points[i] / self._decided[i] if self._decided[i] else 0.0
            out.append(self._points[i] + self._byes[i] * rate)
        return out

    def ranking(self) -> Ranking:
        score = self.final_points()
        buchholz = [sum(score[o] for o in self._opponents[i]) for i in range(self.n)]
        order = tuple(sorted(range(self.n), key=lambda i: (-score[i], -buchholz[i], self._tiebreak[i])))
        return Ranking(
            order=order,
            scores=tuple(score),
            scale="Swiss points (win 1, tie 1/2; a bye earns the player's own points per match)",
            info={
                "rounds": self.n_rounds,
                "rounds_played": self._scored,
                "ended_early": self._ended_early,
                "buchholz": buchholz,
                "byes": list(self._byes),
                "pairings": self._log,
                "samples": sample_counts(self.observed()),
            },
        )
