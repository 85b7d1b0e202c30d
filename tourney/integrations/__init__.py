"""Tournament rewards for the training pipelines users already run.

* :mod:`tourney.integrations.groups`: :func:`score_groups` and :class:`GroupScorer`, plain
  batch functions: one tournament per group of completions of one prompt, one reward per
  completion. What a verl or OpenRLHF reward wrapper calls.
* :mod:`tourney.integrations.trl`: :class:`~tourney.integrations.trl.TourneyReward`, a reward
  function for TRL's ``GRPOTrainer`` (``reward_funcs=[TourneyReward(...)]``).

Nothing here imports TRL, torch or transformers: the reward functions take and return plain
Python lists, so ``import tourney`` stays light.
"""

from .groups import SCALES, GroupResult, GroupScorer, group_by_prompt, score_groups

__all__ = ["GroupResult", "GroupScorer", "SCALES", "group_by_prompt", "score_groups"]
