"""tourney: a multi-response tournament ranking engine.

A judge compares two candidate responses to one prompt at a time; a strategy decides which
pairs to compare and turns the verdicts into a ranking and a best-of-N pick; the scheduler runs
many prompts' tournaments concurrently against the judge.

>>> import tourney
>>> result = tourney.select_best("2 + 2 = ?", ["4", "5", "22"], judge="simulated", seed=1)
>>> sorted(result.ranking)
[0, 1, 2]

Rewards for RL trainers: :func:`score_groups` (one tournament per group of completions of one
prompt, one reward per completion) and :mod:`tourney.integrations.trl` (a reward function for
TRL's GRPOTrainer).

Results to pandas or ``datasets``: :func:`to_pandas`, :func:`to_dataset` (from
:meth:`Tournament.rank`'s results or an output file), :func:`read_results` (an output file's
rows); pandas, pyarrow and datasets are imported only when these are called.

Importing tourney loads numpy only: ray, vllm, torch, transformers and HTTP clients load when
a backend that needs them is built.
"""

__version__ = "0.1.0"

from .api import Tournament, select_best
from .errors import (
    ExecutorError,
    InputError,
    JudgeError,
    JudgeUnavailableError,
    MissingExtraError,
    RunHealthError,
    SpecError,
    StoreError,
    TourneyError,
    TransientJudgeError,
)
from .health import RunHealth
from .integrations.groups import GroupScorer, score_groups
from .items import Item, parse_item, read_items
from .judges.base import JUDGES, Judge, build_judge
from .outputs import read_results, to_dataset, to_pandas
from .scheduler import RunStats, Scheduler
from .strategy import STRATEGIES, Strategy, StrategyFactory, build_strategy
from .types import Judgement, Match, MatchResult, Outcome, PromptResult, Ranking, Request, TokenUsage

__all__ = [
    "ExecutorError",
    "GroupScorer",
    "InputError",
    "Item",
    "JUDGES",
    "Judge",
    "JudgeError",
    "JudgeUnavailableError",
    "Judgement",
    "Match",
    "MatchResult",
    "MissingExtraError",
    "Outcome",
    "PromptResult",
    "Ranking",
    "Request",
    "RunHealth",
    "RunHealthError",
    "RunStats",
    "STRATEGIES",
    "Scheduler",
    "SpecError",
    "StoreError",
    "Strategy",
    "StrategyFactory",
    "TokenUsage",
    "Tournament",
    "TourneyError",
    "TransientJudgeError",
    "build_judge",
    "build_strategy",
    "parse_item",
    "read_items",
    "read_results",
    "score_groups",
    "select_best",
    "to_dataset",
    "to_pandas",
]
