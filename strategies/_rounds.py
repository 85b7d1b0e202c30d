"""Plumbing shared by the few-round selection strategies pivot, league and v1_swiss (private:
not a strategy module).

They all plan in parallel batches (:class:`~strategies._pairs.Batched`), may ask for the same
pair more than once, and rank by a mean vote share ("win rate"). What they share:

* :class:`SampleLedger` -- sample indices for repeated requests. A judgement is identified by
  (texts in presentation order, sample index), so a second request for the same ordered pair
  with the same indices would be the SAME judgement (the store and the cache hand it back
  without asking the judge); the ledger gives each repeat the next unused indices, so every
  request is a fresh judgement.
* :func:`tallies` -- the results of each comparison (a comparison is every request carrying the
  same ``tag``: one request, or the two presentation orders of a position-balanced repeat) as
  valid votes per candidate. Abstentions and errors are not votes; an explicit tie is half a
  vote each way.
* :func:`pair_nearest` -- Swiss-style pairing over a ranked list without an O(N^2) graph.
* :func:`win_rate_ranking` -- the ranking by mean vote share over the comparisons a candidate was
  credited with (``w / c``); a candidate with no valid comparison scores 0, so a candidate the
  judge never preferred (every match abstained or failed) never ranks above one that won.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tourney.strategy import Strategy
from tourney.types import MatchResult, Ranking

from ._pairs import sample_counts


class SampleLedger:
    """Next unused sample index per ordered pair (see the module docstring)."""

    def __init__(self) -> None:
        self._next: dict[tuple[int, int], int] = {}

    def take(self, first: int, second: int, samples: int) -> int:
        """Reserve ``samples`` indices for ``first`` shown before ``second``; return the first."""
        off = self._next.get((first, second), 0)
        self._next[(first, second)] = off + samples
        return off


@dataclass
class Tally:
    """Valid votes of one comparison: ``va`` for candidate ``a``, ``vb`` for ``b`` (a tie is 1/2
    each); ``samples`` counts every sample, abstentions and errors included."""

    a: int
    b: int
    va: float = 0.0
    vb: float = 0.0
    samples: int = 0

    @property
    def valid(self) -> float:
        return self.va + self.vb

    def share(self, cand: int) -> float:
        """Vote share of ``cand`` (one of a, b); only meaningful when ``valid > 0``."""
        return (self.va if cand == self.a else self.vb) / self.valid


def tallies(results: Iterable[MatchResult]) -> dict[Hashable, Tally]:
    """Per comparison tag, in order of first appearance, the valid votes of its two candidates."""
    out: dict[Hashable, Tally] = {}
    for r in results:
        f, s = r.request.first, r.request.second
        t = out.get(r.request.tag)
        if t is None:
            t = out[r.request.tag] = Tally(f, s)
        for cand, wins in ((f, r.first_wins), (s, r.second_wins)):
            v = wins + 0.5 * r.ties
            if cand == t.a:
                t.va += v
            else:
                t.vb += v
        t.samples += len(r.judgements)
    return out


def win_mass(
    n: int, results: Iterable[MatchResult], credit: Callable[[Any, Tally], Iterable[int]] | None = None
) -> tuple[list[float], list[int]]:
    """``w, c``: per candidate, the sum of its vote shares and the number of comparisons with a
    valid vote credited to it; by default a comparison is credited to both of its candidates,
    ``credit(tag, tally)`` names the candidates it counts for instead."""
    w, c = [0.0] * n, [0] * n
    for tag, t in tallies(results).items():
        if t.valid > 0:
            for cand in (t.a, t.b) if credit is None else credit(tag, t):
                w[cand] += t.share(cand)
                c[cand] += 1
    return w, c


#: how many earlier pairs :func:`pair_nearest` searches for an exchange that avoids a rematch
EXCHANGE_WINDOW = 16


def pair_nearest(
    order: Sequence[int], met: Sequence[set[int]], wanted: int, window: int = EXCHANGE_WINDOW
) -> list[tuple[int, int]]:
    """Up to ``wanted`` disjoint pairs over ``order`` (best first), Swiss style.

    From the top, each unpaired candidate meets the nearest-ranked unpaired candidate it has not
    met (``met[i]``: whom i has met). When it has met every unpaired candidate left (the tail of
    a late round), an exchange with one of the last ``window`` pairs is tried ((c, d) + (a, b)
    -> (c, a) + (d, b) or (c, b) + (d, a), neither a rematch); only if none works is the pair a
    rematch. Each pair is listed higher-ranked first. Cost: O(N) list operations per pair in the
    worst case, O(N (r + 1)) in all when candidates have met at most r others: no N x N graph.
    """
    pos = {c: k for k, c in enumerate(order)}
    pool = list(order)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < wanted and len(pool) >= 2:
        a = pool.pop(0)
        k = next((k for k, b in enumerate(pool) if b not in met[a]), None)
        if k is not None:
            pairs.append((a, pool.pop(k)))
            continue
        b = pool.pop(0)
        for j in range(len(pairs) - 1, max(len(pairs) - 1 - window, -1), -1):
            c, d = pairs[j]
            if a not in met[c] and b not in met[d]:
                pairs[j], new = (c, a), (d, b)
                break
            if b not in met[c] and a not in met[d]:
                pairs[j], new = (c, b), (d, a)
                break
        else:
            new = (a, b)  # a rematch: nothing nearby can be exchanged
        pairs.append(new)
    return [(x, y) if pos[x] < pos[y] else (y, x) for x, y in pairs]


def seeded_order(s: Strategy) -> list[int]:
    """A permutation of the candidates drawn from ``s.rng`` over the content order (so
    relabelling the candidates relabels it)."""
    return [int(p) for p in s.rng.permutation(np.asarray(s.base_order, dtype=np.int64))]


def win_rate_ranking(
    s: Strategy,
    w: Sequence[float],
    c: Sequence[int],
    rank: dict[int, int],
    results: Sequence[MatchResult],
    scale: str,
    info: dict[str, Any],
    secondary: Sequence[float] | None = None,
) -> Ranking:
    """Candidates best first by ``w / c`` (0 without a valid comparison); equal rates by
    ``secondary`` (higher first) when given, then by ``rank`` (a seeded, content-based order).
    ``info`` gains ``comparisons_counted`` (``c``) and ``samples`` (outcome totals)."""
    score = [w[i] / c[i] if c[i] else 0.0 for i in range(s.n)]
    # rounded: equal records must tie exactly, whatever the summation order
    key = [round(v, 12) for v in score]
    key2 = [0.0] * s.n if secondary is None else [round(v, 12) for v in secondary]
    order = tuple(sorted(range(s.n), key=lambda i: (-key[i], -key2[i], rank[i])))
    return Ranking(
        order=order,
        scores=tuple(float(v) for v in score),
        scale=scale,
        info={**info, "comparisons_counted": [int(v) for v in c], "samples": sample_counts(results)},
    )
