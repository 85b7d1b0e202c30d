"""Rewards from tournaments within groups: one tournament per prompt over its completions.

RL trainers (TRL's GRPO, verl, OpenRLHF) sample several completions per prompt and need one
reward per completion. A pairwise judge cannot score one completion alone; it can rank a group.
:func:`score_groups` runs one tournament per group with any judge and strategy, through the
same :class:`~tourney.scheduler.Scheduler` as ``tourney rank`` (all groups concurrently, the
judgement store when given), and turns each ranking into rewards::

    >>> import tourney
    >>> tourney.score_groups(["2 + 2 = ?"], [["4", "5", "22", "4"]], judge="simulated", seed=0)
    [[-0.75, 1.25, 0.25, -0.75]]

(The simulated judge without ``scores`` draws each text's quality at random, so here "5" won;
knockout's scale is rounds, and the two identical "4" share one reward.)

Reward scale (``scale``), per group:

``centered`` (default)
    the strategy's own score minus the mean over the group's completions, so a group's rewards
    sum to 0. Units are the strategy's: knockout, the round reached plus the vote share in the
    eliminating match (so 1 round = 1 point); ``round_robin``/``bradley_terry``, the
    Bradley-Terry log-strength; ``elo``, Elo points (scale 400); see ``tourney strategies``.
``rank``
    ``0.5 - r / (U - 1)`` for the completion ranked ``r`` (0 = best) among the ``U`` distinct
    completions: +0.5 for the best, -0.5 for the worst, whatever the strategy.
``raw``
    the strategy's score as it is (Elo starts at 1000; knockout counts rounds from 1).

Identical completions (common when sampling) are judged once and share their reward; a group
with one distinct completion needs no judge call and gets 0 (``centered``, ``rank``) or the
strategy's score for a lone candidate (``raw``); an empty group gets an empty list.

Failures are never a silent number. A group whose tournament failed (a bad prompt, a judge that
kept failing) or, unless ``accept_partial=True``, had judge errors or was decided by coin flips
where votes were missing (status ``partial`` / ``coin_flip``: its ranking rests on coins), gets ``on_failure`` for every completion: ``None`` by
default (TRL's GRPOTrainer accepts ``None`` and gives such completions no learning signal),
``"raise"`` to stop with :class:`~tourney.errors.JudgeError` (or :class:`InputError` for bad
input), or a number you choose as the neutral value (for trainers that need numbers). Every
failed group is logged at WARNING on the ``tourney`` logger with its messages, and counted in
:attr:`GroupScorer.stats`.

Group ids: each group's tournament is seeded from the run seed and a hash of the group's
content (prompt and distinct completions), so the same group gets the same rewards wherever it
sits in a batch, in any order of its completions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api import Tournament, check_responses
from ..errors import InputError, JudgeError
from ..hashing import content_hash
from ..items import Item, parse_item
from ..types import Prompt, PromptResult

if TYPE_CHECKING:
    from ..judges.base import Judge
    from ..registry import Spec
    from ..store import JudgementStore
    from ..strategy import StrategyFactory

__all__ = ["SCALES", "GroupResult", "GroupScorer", "group_by_prompt", "score_groups"]

log = logging.getLogger("tourney")

#: reward scales; see the module docstring
SCALES = ("centered", "rank", "raw")


@dataclass(frozen=True)
class GroupResult:
    """The rewards of one group and how they came about.

    ``rewards`` has one entry per completion, in the order given (``None`` or the
    ``on_failure`` value where the group failed); ``status`` is ``ok``, ``partial`` (judge
    errors) or ``coin_flip`` (votes missing), both accepted only with ``accept_partial``, or ``failed``; ``distinct`` is the number of
    distinct completions ranked; ``result`` is the tournament over them (None when none ran:
    bad input or an empty group); ``messages`` say why a group failed.
    """

    rewards: tuple[float | None, ...]
    status: str
    distinct: int
    comparisons: int = 0
    messages: tuple[str, ...] = ()
    result: PromptResult | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def group_by_prompt(prompts: Sequence[Prompt]) -> list[list[int]]:
    """Indices of equal prompts, grouped, in order of first occurrence: how a flat batch (one
    prompt per completion, as TRL, verl and OpenRLHF pass them) becomes groups. Prompts are
    equal when their JSON is (a chat prompt's messages compared field by field)."""
    groups: dict[str, list[int]] = {}
    for k, p in enumerate(prompts):
        groups.setdefault(_prompt_key(p), []).append(k)
    return list(groups.values())


def _prompt_key(prompt: Any) -> str:
    if isinstance(prompt, str):
        return "s" + prompt
    return "j" + json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=repr)


class GroupScorer:
    """A judge, a strategy and a reward scale, reused for batch after batch of groups (an RL
    run calls it every step; the judge, e.g. a vLLM engine, is built once).

    ``judge``, ``strategy``, ``seed``, ``store``, ``judge_options``, ``strategy_options`` and
    the scheduler settings (``concurrency``, ``retries``, ``max_comparisons``, ...) are those
    of :class:`~tourney.api.Tournament`; ``scale``, ``on_failure`` and ``accept_partial`` are
    described in the module docstring. Arguments are checked here, before the judge is built.
    Close it (or use ``with``) to release the judge and the store.
    """

    def __init__(
        self,
        judge: str | Spec | Judge = "simulated",
        strategy: str | Spec | StrategyFactory = "knockout",
        *,
        seed: int = 0,
        scale: str = "centered",
        on_failure: float | str | None = None,
        accept_partial: bool = False,
        store: str | os.PathLike[str] | JudgementStore | None = None,
        judge_options: Mapping[str, Any] | None = None,
        strategy_options: Mapping[str, Any] | None = None,
        **scheduler_options: Any,
    ):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        _check_on_failure(on_failure)
        if not isinstance(accept_partial, bool):
            raise TypeError(f"accept_partial must be a bool, got {accept_partial!r}")
        self.scale = scale
        self.on_failure = on_failure
        self.accept_partial = accept_partial
        self.tournament = Tournament(
            judge,
            strategy,
            seed=seed,
            judge_options=judge_options,
            strategy_options=strategy_options,
            store=store,
            **scheduler_options,
        )
        #: running totals over every call: groups, completions, distinct, comparisons, failed, partial
        self.stats: dict[str, int] = dict.fromkeys(
            ("groups", "completions", "distinct", "comparisons", "failed", "partial"), 0
        )

    # -- grouped input -----------------------------------------------------------------------
    def score(self, prompts: Sequence[Prompt], completions: Sequence[Sequence[str]]) -> list[list[float | None]]:
        """One reward list per group: ``completions[g]`` are the completions of ``prompts[g]``."""
        return [list(g.rewards) for g in self.score_detailed(prompts, completions)]

    def score_detailed(self, prompts: Sequence[Prompt], completions: Sequence[Sequence[str]]) -> list[GroupResult]:
        """:meth:`score` with each group's status, counts and tournament result."""
        items, prepared = self._prepare(prompts, completions)
        results = self.tournament.rank(items) if items else []
        return self._finish(prepared, results)

    async def ascore(self, prompts: Sequence[Prompt], completions: Sequence[Sequence[str]]) -> list[list[float | None]]:
        """:meth:`score` from async code (any event loop): the tournaments run on the scorer's
        own loop thread, where the judge lives, and this coroutine waits for them."""
        return [list(g.rewards) for g in await self.ascore_detailed(prompts, completions)]

    async def ascore_detailed(
        self, prompts: Sequence[Prompt], completions: Sequence[Sequence[str]]
    ) -> list[GroupResult]:
        items, prepared = self._prepare(prompts, completions)
        results: list[PromptResult] = []
        if items:
            fut = asyncio.run_coroutine_threadsafe(self.tournament.arank(items), self.tournament._loop().loop)
            results = await asyncio.wrap_future(fut)
        return self._finish(prepared, results)

    # -- flat input (one prompt per completion) ----------------------------------------------
    def score_flat(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float | None]:
        """One reward per completion, for a flat batch where ``prompts[i]`` is the prompt of
        ``completions[i]`` (TRL, verl and OpenRLHF repeat each prompt once per sample):
        completions of equal prompts form a group (:func:`group_by_prompt`)."""
        groups, g_prompts, g_completions = _flat_groups(prompts, completions)
        return _unflatten(len(completions), groups, self.score(g_prompts, g_completions))

    async def ascore_flat(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float | None]:
        groups, g_prompts, g_completions = _flat_groups(prompts, completions)
        return _unflatten(len(completions), groups, await self.ascore(g_prompts, g_completions))

    # -- internals ---------------------------------------------------------------------------
    def _prepare(
        self, prompts: Sequence[Prompt], completions: Sequence[Sequence[str]]
    ) -> tuple[list[Item], list[dict[str, Any]]]:
        """Check the batch; dedupe each group; parse each group's item (a bad one fails that
        group only). Returns the items to rank and, per group, what is needed to finish it."""
        prompts = _as_list(prompts, "prompts", "one prompt per group")
        completions = _as_list(completions, "completions", "one list of completions per group")
        if len(prompts) != len(completions):
            raise ValueError(
                f"got {len(prompts)} prompts and {len(completions)} groups of completions: give one prompt per group"
            )
        items: list[Item] = []
        prepared: list[dict[str, Any]] = []
        for g, (prompt, group) in enumerate(zip(prompts, completions)):
            texts = check_responses(group, name=f"completions[{g}]")
            distinct = list(dict.fromkeys(texts))
            index_of = {t: k for k, t in enumerate(distinct)}
            entry: dict[str, Any] = {
                "g": g,
                "prompt": prompt,
                "n": len(texts),
                "of": [index_of[t] for t in texts],
                "distinct": len(distinct),
                "item": None,
            }
            prepared.append(entry)
            if not distinct:  # an empty group: no rewards to give
                continue
            gid = "g-" + content_hash(json.dumps([_prompt_key(prompt), sorted(distinct)], ensure_ascii=False), 8)
            try:
                item = parse_item(
                    {"id": gid, "prompt": _plain(prompt), "responses": distinct}, len(items), where=f"group {g}"
                )
            except InputError as exc:
                entry["error"] = exc
                continue
            entry["item"] = item
            items.append(item)
        return items, prepared

    def _finish(self, prepared: list[dict[str, Any]], results: list[PromptResult]) -> list[GroupResult]:
        by_index = {r.index: r for r in results}
        out: list[GroupResult] = []
        failures: list[tuple[GroupResult, BaseException | None]] = []
        for entry in prepared:
            item: Item | None = entry["item"]
            distinct = entry["distinct"]
            if "error" in entry:
                gr = self._failed(entry, (str(entry["error"]),))
                failures.append((gr, entry["error"]))
            elif item is None:  # an empty group
                gr = GroupResult((), "ok", 0)
            else:
                res = by_index[item.index]
                if res.status == "failed" or (res.status in ("partial", "coin_flip") and not self.accept_partial):
                    why = res.messages or ("failed",)
                    if res.status == "partial":
                        why = (f"judge errors in {res.errors} of {res.samples} judgements (accept_partial=False)", *why)
                    elif res.status == "coin_flip":  # its order rests on coins where votes were missing
                        why = (
                            f"decided by coin flips where votes were missing ({res.abstentions} abstentions, "
                            f"{res.errors} errors; accept_partial=False)",
                            *why,
                        )
                    gr = self._failed(entry, tuple(why), res)
                    failures.append((gr, None))
                else:
                    gr = GroupResult(
                        self._rewards(entry["of"], res), res.status, distinct, res.comparisons, res.messages, res
                    )
            out.append(gr)
            self._count(gr)
        if failures and self.on_failure == "raise":
            lines = "; ".join(f"{m}" for gr, _ in failures for m in gr.messages[:1])
            kind = InputError if all(isinstance(e, InputError) for _, e in failures) else JudgeError
            raise kind(f"{len(failures)} of {len(prepared)} groups could not be scored: {lines}")
        return out

    def _failed(self, entry: dict[str, Any], messages: tuple[str, ...], res: PromptResult | None = None) -> GroupResult:
        value = None if self.on_failure in (None, "raise") else float(self.on_failure)
        n = entry["n"]
        log.warning(
            "tourney rewards: group %d (prompt %s, %d completions) could not be scored: %s; its rewards are %s",
            entry["g"],
            _short(entry["prompt"]),
            n,
            "; ".join(messages),
            "None" if value is None else f"the neutral value {value}",
        )
        return GroupResult((value,) * n, "failed", entry["distinct"], res.comparisons if res else 0, messages, res)

    def _rewards(self, of: list[int], res: PromptResult) -> tuple[float, ...]:
        scores = res.scores
        if self.scale == "rank":
            u = len(res.ranking)
            pos = {c: r for r, c in enumerate(res.ranking)}
            per = [0.5 - pos[c] / (u - 1) if u > 1 else 0.0 for c in range(u)]
        elif self.scale == "centered":
            mean = math.fsum(scores[c] for c in of) / len(of)
            per = [s - mean for s in scores]
        else:
            per = list(scores)
        return tuple(round(per[c], 10) + 0.0 for c in of)  # + 0.0: no -0.0

    def _count(self, gr: GroupResult) -> None:
        st = self.stats
        st["groups"] += 1
        st["completions"] += len(gr.rewards)
        st["distinct"] += gr.distinct
        st["comparisons"] += gr.comparisons
        st["failed"] += gr.status == "failed"
        st["partial"] += gr.status == "partial"

    def close(self) -> None:
        """Release the judge, its event loop and a store opened here."""
        self.tournament.close()

    def __enter__(self) -> GroupScorer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def score_groups(
    prompts: Sequence[Prompt],
    completions: Sequence[Sequence[str]],
    *,
    judge: str | Spec | Judge = "simulated",
    strategy: str | Spec | StrategyFactory = "knockout",
    seed: int = 0,
    scale: str = "centered",
    on_failure: float | str | None = None,
    accept_partial: bool = False,
    store: str | os.PathLike[str] | JudgementStore | None = None,
    judge_options: Mapping[str, Any] | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    **scheduler_options: Any,
) -> list[list[float | None]]:
    """Rewards for groups of completions: ``completions[g]`` are the completions of
    ``prompts[g]``; returns one list of rewards per group, one reward per completion (see the
    module docstring for ``scale``, duplicates and ``on_failure``). Builds the judge for this
    call and releases it; an RL loop calling every step should keep a :class:`GroupScorer`."""
    with GroupScorer(
        judge,
        strategy,
        seed=seed,
        scale=scale,
        on_failure=on_failure,
        accept_partial=accept_partial,
        store=store,
        judge_options=judge_options,
        strategy_options=strategy_options,
        **scheduler_options,
    ) as scorer:
        return scorer.score(prompts, completions)


def _check_on_failure(value: Any) -> None:
    if value is None or value == "raise":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"on_failure must be None, 'raise' or a finite number (the neutral reward), got {value!r}")


def _plain(prompt: Any) -> Any:
    """A prompt as the item parser takes it (tuples of messages as lists)."""
    return list(prompt) if isinstance(prompt, tuple) else prompt


def _short(prompt: Any, limit: int = 60) -> str:
    text = json.dumps(prompt, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_list(x: Any, name: str, what: str) -> list[Any]:
    """A batch argument as a list (a list, tuple, numpy array, pandas Series...), or a
    TypeError naming it: a string or a mapping is not a batch."""
    if isinstance(x, (str, bytes, Mapping)) or not isinstance(x, Iterable):
        raise TypeError(f"{name} must be a sequence with {what}, got {type(x).__name__}")
    return list(x)


def _flat_groups(
    prompts: Sequence[Prompt], completions: Sequence[str]
) -> tuple[list[list[int]], list[Prompt], list[list[str]]]:
    prompts = _as_list(prompts, "prompts", "one prompt per completion")
    completions = _as_list(completions, "completions", "one completion per prompt")
    if len(prompts) != len(completions):
        raise ValueError(
            f"a flat batch needs one prompt per completion, got {len(prompts)} prompts for "
            f"{len(completions)} completions"
        )
    groups = group_by_prompt(prompts)
    return groups, [prompts[idx[0]] for idx in groups], [[completions[i] for i in idx] for idx in groups]


def _unflatten(n: int, groups: list[list[int]], rewards: list[list[float | None]]) -> list[float | None]:
    out: list[float | None] = [None] * n
    for idx, rs in zip(groups, rewards):
        for i, r in zip(idx, rs):
            out[i] = r
    return out
