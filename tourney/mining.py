"""DPO pair mining: ranked candidates -> (prompt, chosen, rejected) pairs with evidence.

Pairs are written in the format TRL's DPO trainer reads: ``{"prompt", "chosen", "rejected"}``,
either as strings (a plain-text prompt) or in conversational form (lists of role/content
messages; used automatically when the prompt is a chat, or with ``conversational=True``). The
evidence for each pair sits under one extra key, ``"tourney"``:

``chosen_index``, ``rejected_index``   candidate indices in the input line
``chosen_rank``, ``rejected_rank``     1-based ranks
``margin``                              score difference on the strategy's scale (>= 0)
``confidence``                          P(chosen really better): from the strategy's
                                        uncertainty when it has one (normal approximation on the
                                        score difference), else the chosen side's share of the
                                        direct votes between the two, else null
``direct``                              the two were compared directly
``both_orders``                         ... in both presentation orders
``orders_agree``                        every order's majority preferred the chosen one
                                        (null when not judged in both orders)
``votes``                               [for chosen, for rejected] summed over both orders

Policies: ``best_worst`` (one pair per prompt), ``best_each`` (best vs every other),
``margin`` (every ordered pair whose margin is at least ``min_margin``). Filters apply to every
policy: ``min_margin``, ``min_confidence``, ``require_consistent`` (both orders judged and
agreeing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .items import Item

__all__ = ["PairPolicy", "mine_pairs", "POLICIES"]

POLICIES = ("best_worst", "best_each", "margin")


@dataclass(frozen=True)
class PairPolicy:
    policy: str = "best_worst"
    min_margin: float = 0.0
    min_confidence: float | None = None
    require_consistent: bool = False
    conversational: bool | None = None  # None: conversational iff the prompt is a chat

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown pair policy {self.policy!r}; known: {', '.join(POLICIES)}")


def _direct_votes(matches: Sequence[Mapping[str, Any]], a: int, b: int) -> dict[str, Any]:
    """Votes between a and b from the result's match records, per presentation order."""
    for_a = for_b = 0
    orders: dict[tuple[int, int], int] = {}  # order -> majority sign (+1 a, -1 b, 0 none)
    for m in matches:
        f, s, v = m["first"], m["second"], m["votes"]
        if {f, s} != {a, b}:
            continue
        wa, wb = (v[0], v[1]) if f == a else (v[1], v[0])
        for_a += wa
        for_b += wb
        orders[(f, s)] = orders.get((f, s), 0) + (wa - wb)
    both = (a, b) in orders and (b, a) in orders
    agree = None
    if both:
        agree = all(d > 0 for d in orders.values())
    return {"direct": bool(orders), "both_orders": both, "orders_agree": agree, "votes": [for_a, for_b]}


def _confidence(result: Mapping[str, Any], a: int, b: int, votes: Sequence[int]) -> float | None:
    unc = result.get("uncertainty")
    scores = result["scores"]
    if unc is not None:
        sd = math.hypot(unc[a], unc[b])
        diff = scores[a] - scores[b]
        if sd > 0:
            return 0.5 * (1.0 + math.erf(diff / (sd * math.sqrt(2.0))))
        return 1.0 if diff > 0 else 0.5
    total = votes[0] + votes[1]
    return votes[0] / total if total else None


def _as_messages(prompt: Any) -> list[dict[str, str]]:
    return [dict(m) for m in prompt] if not isinstance(prompt, str) else [{"role": "user", "content": prompt}]


def mine_pairs(item: Item, result: Mapping[str, Any], policy: PairPolicy) -> Iterator[dict[str, Any]]:
    """Pairs for one item from its rank result (the output line's JSON)."""
    if result.get("status") == "failed" or len(item.responses) < 2:
        return
    ranking: list[int] = list(result["ranking"])
    scores = result["scores"]
    rank_of = {c: r + 1 for r, c in enumerate(ranking)}
    if policy.policy == "best_worst":
        candidates = [(ranking[0], ranking[-1])]
    elif policy.policy == "best_each":
        candidates = [(ranking[0], c) for c in ranking[1:]]
    else:
        candidates = [(a, b) for i, a in enumerate(ranking) for b in ranking[i + 1:]]
    conversational = policy.conversational if policy.conversational is not None else not isinstance(item.prompt, str)
    for a, b in candidates:
        margin = float(scores[a] - scores[b])
        if margin < policy.min_margin:
            continue
        ev = _direct_votes(result.get("matches", []), a, b)
        conf = _confidence(result, a, b, ev["votes"])
        if policy.min_confidence is not None and (conf is None or conf < policy.min_confidence):
            continue
        if policy.require_consistent and not ev["orders_agree"]:
            continue
        if conversational:
            pair: dict[str, Any] = {
                "prompt": _as_messages(item.prompt),
                "chosen": [{"role": "assistant", "content": item.responses[a]}],
                "rejected": [{"role": "assistant", "content": item.responses[b]}],
            }
        else:
            pair = {"prompt": item.prompt, "chosen": item.responses[a], "rejected": item.responses[b]}
        pair["tourney"] = {
            "id": item.id,
            "chosen_index": a,
            "rejected_index": b,
            "chosen_rank": rank_of[a],
            "rejected_rank": rank_of[b],
            "margin": round(margin, 10),
            "confidence": None if conf is None else round(conf, 10),
            **ev,
            "strategy": result.get("strategy"),
            "judge": result.get("judge"),
        }
        yield pair
