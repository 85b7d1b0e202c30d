"""A tournament reward for TRL's ``GRPOTrainer``: ``reward_funcs=[TourneyReward(judge=..., strategy=...)]``.

TRL's calling convention (checked against TRL 1.16, ``GRPOTrainer._calculate_rewards``): a
custom reward function is called once per generation batch as
``f(prompts=..., completions=..., completion_ids=..., trainer_state=..., log_extra=...,
log_metric=..., **dataset columns)`` with one entry per completion: each prompt is repeated
once per generation (``num_generations`` completions per prompt). It returns one reward per
completion; ``None`` is allowed and means "no reward for this sample" (TRL turns it into NaN,
leaves it out of the group's mean and std, and gives that completion a zero advantage).
A callable object whose ``__call__`` is ``async def`` is awaited on TRL's own event loop, in
parallel with the other async reward functions (:class:`AsyncTourneyReward`).

What :class:`TourneyReward` does with a batch:

* completions of equal prompts form a group (:func:`~tourney.integrations.groups.group_by_prompt`),
  and each group gets one tournament with the judge and strategy given, all groups at once,
  through the same scheduler as ``tourney rank`` (and the judgement store, when given);
* the reward is the completion's score on the chosen ``scale`` (default ``centered``: the
  strategy's score minus the group mean; see :mod:`tourney.integrations.groups`);
* a completion's text is the string itself (standard form) or, in the conversational form, the
  content of its last assistant message; a completion without one (e.g. a bare tool call) is
  not judged and gets ``None``;
* a group that fails (bad prompt, a judge that keeps failing) gets ``None`` for each of its
  completions, is logged at WARNING on the ``tourney`` logger, and is counted in the trainer's
  logs through ``log_metric`` (``tourney/failed_groups``), with ``tourney/comparisons`` and
  ``tourney/distinct_completions`` per batch.

Multi-process training: each process scores the completions it holds. TRL gives each process
a slice of the generation batch, so a group is complete on one process when the per-device
batch is a multiple of ``num_generations`` (otherwise each process ranks the part of the group
it holds: the same scale, smaller tournaments).

This module imports neither TRL nor torch: TRL passes plain lists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .groups import GroupResult, GroupScorer, group_by_prompt

if TYPE_CHECKING:
    from ..judges.base import Judge
    from ..registry import Spec
    from ..store import JudgementStore
    from ..strategy import StrategyFactory
    from ..types import Prompt

__all__ = ["AsyncTourneyReward", "TourneyReward", "completion_text"]

log = logging.getLogger("tourney")


def completion_text(completion: Any) -> str | None:
    """The text to judge of one TRL completion: a string as is; in the conversational form (a
    list of messages) the content of the last assistant message (text parts joined when the
    content is a list of parts); None when there is none."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role") == "assistant":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, Sequence):
                    parts = [
                        p["text"]
                        for p in content
                        if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
                    ]
                    return "".join(parts) if parts else None
                return None
    return None


class TourneyReward:
    """A reward function for TRL's ``GRPOTrainer`` (synchronous; see :class:`AsyncTourneyReward`).

    Takes :class:`~tourney.integrations.groups.GroupScorer`'s arguments: ``judge``,
    ``strategy``, ``seed``, ``scale``, ``on_failure`` (None, the default, is what TRL wants),
    ``accept_partial``, ``store``, ``judge_options``, ``strategy_options`` and scheduler
    settings. ``name`` is how TRL's logs call it (``rewards/<name>/mean``). The judge is built
    here, once, and reused at every step; :meth:`close` releases it. ``last`` holds the
    previous call's :class:`~tourney.integrations.groups.GroupResult` list.

    A pickled copy (e.g. sent to another process) carries the arguments, not the judge, and
    builds its own judge at its first call.
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
        name: str = "tourney",
        judge_options: Mapping[str, Any] | None = None,
        strategy_options: Mapping[str, Any] | None = None,
        **scheduler_options: Any,
    ):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        self.__name__ = name
        self._config: dict[str, Any] = dict(
            judge=judge,
            strategy=strategy,
            seed=seed,
            scale=scale,
            on_failure=on_failure,
            accept_partial=accept_partial,
            store=store,
            judge_options=judge_options,
            strategy_options=strategy_options,
            **scheduler_options,
        )
        self._scorer: GroupScorer | None = GroupScorer(**self._config)
        self.last: list[GroupResult] = []

    @property
    def scorer(self) -> GroupScorer:
        """The group scorer (built again after unpickling)."""
        if self._scorer is None:
            self._scorer = GroupScorer(**self._config)
        return self._scorer

    def __call__(self, prompts: Sequence[Prompt], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        """One reward per completion (``None`` where it could not be scored)."""
        plan = _Plan(prompts, completions, self.scorer.on_failure)
        return plan.rewards(self._remember(self.scorer.score_detailed(plan.prompts, plan.groups)), kwargs)

    def _remember(self, results: list[GroupResult]) -> list[GroupResult]:
        self.last = results
        return results

    def close(self) -> None:
        """Release the judge (engine, HTTP client) and a store opened here."""
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scorer"] = None  # a judge (an engine, a loop thread) does not travel
        state["last"] = []
        return state

    def __repr__(self) -> str:
        c = self._config
        return f"TourneyReward(judge={c['judge']!r}, strategy={c['strategy']!r}, scale={c['scale']!r})"


class AsyncTourneyReward(TourneyReward):
    """:class:`TourneyReward` with an ``async def __call__``: TRL awaits it on its own event
    loop, concurrently with its other async reward functions, while the tournaments run on the
    scorer's loop thread (where the judge lives)."""

    async def __call__(  # type: ignore[override]
        self,
        prompts: Sequence[Prompt],
        completions: Sequence[Any],
        **kwargs: Any,
    ) -> list[float | None]:
        plan = _Plan(prompts, completions, self.scorer.on_failure)
        results = await self.scorer.ascore_detailed(plan.prompts, plan.groups)
        return plan.rewards(self._remember(results), kwargs)


class _Plan:
    """A TRL batch as groups: the readable completions of each distinct prompt."""

    def __init__(self, prompts: Sequence[Prompt], completions: Sequence[Any], on_failure: Any):
        if len(prompts) != len(completions):
            raise ValueError(
                f"got {len(prompts)} prompts for {len(completions)} completions: TRL passes one prompt per completion"
            )
        self.n = len(completions)
        self.on_failure = on_failure
        texts = [completion_text(c) for c in completions]
        self.unreadable = [i for i, t in enumerate(texts) if t is None]
        if self.unreadable:
            msg = (
                f"{len(self.unreadable)} of {self.n} completions have no text to judge (no assistant message "
                f"with text content), e.g. completion {self.unreadable[0]}: {completions[self.unreadable[0]]!r:.80}"
            )
            if on_failure == "raise":
                raise InputError(msg)
            log.warning(
                "tourney rewards: %s; their rewards are %s",
                msg,
                "None" if on_failure is None else f"the neutral value {on_failure}",
            )
        self.index: list[list[int]] = []
        self.prompts: list[Prompt] = []
        self.groups: list[list[str]] = []
        for idx in group_by_prompt(prompts):
            readable = [i for i in idx if texts[i] is not None]
            self.index.append(readable)
            self.prompts.append(prompts[idx[0]])
            self.groups.append([texts[i] for i in readable])  # type: ignore[misc]

    def rewards(self, results: list[GroupResult], kwargs: Mapping[str, Any]) -> list[float | None]:
        neutral = None if self.on_failure in (None, "raise") else float(self.on_failure)
        out: list[float | None] = [neutral] * self.n
        for idx, gr in zip(self.index, results):
            for i, r in zip(idx, gr.rewards):
                out[i] = r
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        if callable(log_metric):  # TRL >= 1.x: scalar metrics in the trainer's logs
            log_metric("tourney/failed_groups", float(sum(not gr.ok for gr in results)))
            log_metric("tourney/comparisons", float(sum(gr.comparisons for gr in results)))
            log_metric("tourney/distinct_completions", float(sum(gr.distinct for gr in results)))
            log_metric("tourney/unreadable_completions", float(len(self.unreadable)))
        return out
