"""Python API: :func:`select_best` for one prompt, :class:`Tournament` for many.

>>> from tourney import select_best
>>> r = select_best("Name a prime.", ["4", "7", "9"], judge="simulated", seed=0)
>>> r.best_response in ("4", "7", "9")
True
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import numbers
import os
import threading
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InputError
from .health import RunHealth
from .items import Item, PromptResult, parse_item
from .judges.base import Judge, build_judge
from .registry import Spec
from .scheduler import RunStats, Scheduler, check_settings
from .strategy import StrategyFactory, build_strategy
from .types import Prompt

if TYPE_CHECKING:
    from .store import JudgementStore

__all__ = ["Tournament", "check_responses", "select_best"]

log = logging.getLogger("tourney")

T = TypeVar("T")


class _LoopThread:
    """One event loop on a daemon thread for a Tournament's whole life: judges hold loop-bound
    state (an HTTP client, a vLLM engine's output handler), so every call must use the same loop.
    Being its own thread, it also works where a loop is already running (Jupyter)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tourney-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


# Results -> pandas / datasets (Tournament.rank's results or an output file), defined next to the
# output schema in tourney/outputs.py; each imports its library only when called.
from .outputs import to_dataset, to_pandas  # noqa: E402

__all__ += ["to_dataset", "to_pandas"]


class Tournament:
    """A judge, a strategy and scheduler settings, reusable over many batches of prompts.

    ``judge`` and ``strategy`` are spec strings (``"simulated"``, ``"replay:FILE"``,
    ``"vllm:MODEL"``, ``"knockout:votes=3"``) or built objects. Scheduler keywords
    (``concurrency``, ``retries``, ``max_comparisons``, ``token_budget``, ``cache``, ...) pass
    through. ``store`` is a SQLite judgement store (a path, opened here and closed by
    :meth:`close`, or an open :class:`~tourney.store.JudgementStore`, left open): judgements
    are saved there as they complete and reused by any later run with the same judge.

    Arguments are checked before anything is built (no engine starts for a bad budget): a
    wrong type is a TypeError, a value out of range a ValueError
    (:class:`~tourney.errors.SpecError`), each naming the argument and what was given.

    After each run, ``stats`` (:class:`~tourney.scheduler.RunStats`) and ``health``
    (:class:`~tourney.health.RunHealth`: parse, abstention, tie and error rates, coin flips,
    the first-position win rate with its 95% interval, top abstention and error reasons) describe
    it; a strong position bias or a failure share above ``max_failure_rate`` is also logged as a
    warning. The health rules that stop a run (``max_failure_rate=0.2, fail_fast=16`` as on the
    command line; :mod:`tourney.health`) are off unless given: a run they stop raises
    :class:`~tourney.errors.RunHealthError`.

    ``progress``: a progress bar while :meth:`rank` runs (tqdm when installed, else a line on
    stderr; prompts done, judgements and an ETA from completed work): True, False, or None
    (default) for on in a notebook or when stderr is a terminal.
    """

    def __init__(
        self,
        judge: str | Spec | Judge = "simulated",
        strategy: str | Spec | StrategyFactory = "knockout",
        *,
        seed: int = 0,
        judge_options: Mapping[str, Any] | None = None,
        strategy_options: Mapping[str, Any] | None = None,
        store: str | os.PathLike[str] | JudgementStore | None = None,
        progress: bool | None = None,
        **scheduler_options: Any,
    ):
        _check_component("judge", judge, Judge, "'simulated', 'replay:FILE', 'vllm:MODEL', 'openai:URL'")
        _check_component("strategy", strategy, StrategyFactory, "'knockout', 'round_robin:scoring=elo'")
        _check_seed(seed)
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None (auto), got {_given(progress)}")
        for name, opts in (("judge_options", judge_options), ("strategy_options", strategy_options)):
            if opts is not None and not isinstance(opts, Mapping):
                raise TypeError(f"{name} must be a mapping of option names to values or None, got {_given(opts)}")
        if store is not None and "cache" in scheduler_options:
            raise TypeError("give store= or cache=, not both")
        _check_scheduler_options(scheduler_options)
        self.strategy = (
            strategy if isinstance(strategy, StrategyFactory) else build_strategy(strategy, strategy_options)
        )
        self.seed = int(seed)
        self.scheduler_options = dict(scheduler_options)
        self.progress = progress
        self.stats: RunStats | None = None
        self.health: RunHealth | None = None
        self._runner: _LoopThread | None = None
        # the store opens before the judge is built: a corrupt or foreign file costs no engine start
        self._store, self._owns_store = _open_store(store)
        try:
            self.judge = judge if isinstance(judge, Judge) else build_judge(judge, judge_options)
        except BaseException:
            if self._owns_store and self._store is not None:
                self._store.close()
            raise
        if self._store is not None:
            from .cache import StoreCache

            self.scheduler_options["cache"] = StoreCache(self._store, self.judge)

    def _scheduler(self) -> Scheduler:
        return Scheduler(self.judge, self.strategy, seed=self.seed, **self.scheduler_options)

    @staticmethod
    def _items(items: Iterable[Mapping[str, Any] | Item]) -> list[Item | InputError]:
        from dataclasses import replace

        out: list[Item | InputError] = []
        for k, it in enumerate(items):
            if isinstance(it, Item):
                out.append(replace(it, index=k))  # keeps extra (pass-through fields) and the rest
                continue
            try:
                out.append(parse_item(it, k))
            except InputError as exc:
                out.append(exc)
        return out

    async def arank(self, items: Iterable[Mapping[str, Any] | Item]) -> list[PromptResult]:
        from .progress import make_progress

        sched = self._scheduler()
        todo = self._items(items)
        line = make_progress(len(todo), self.progress)
        if line is not None:
            user = sched.on_progress

            def show(stats: RunStats) -> None:
                if user is not None:
                    user(stats)
                line(stats)

            sched.on_progress = show
            line.attach(lambda: sched.stats)
        results: list[PromptResult] = []
        try:
            async for res in sched.run_ordered(todo):
                results.append(res)
                if line is not None:
                    line.result(res)
        finally:
            if line is not None:
                line.close(sched.stats)
            self.stats, self.health = sched.stats, sched.health  # a stopped run has its stats and health too
        for warning in sched.health.warnings(self.strategy.describe()):
            log.warning("%s", warning)
        problem = sched.health.problem()
        if problem is not None:
            log.warning("run health check failed: %s", problem)
        return results

    def rank(self, items: Iterable[Mapping[str, Any] | Item]) -> list[PromptResult]:
        """Rank every item (dicts in the input-line format); results in input order. Calls from
        synchronous code share one background event loop, so the judge can be reused."""
        if isinstance(items, (Mapping, Item, str, bytes)) or not isinstance(items, Iterable):
            raise TypeError(
                f"rank takes an iterable of items (dicts with 'prompt' and 'responses'), got "
                f"{_given(items)}; for one prompt use rank_one(prompt, responses)"
            )
        return self._loop().run(self.arank(list(items)))

    def _loop(self) -> _LoopThread:
        """The background event loop every synchronous call uses (started on first use)."""
        if self._runner is None:
            self._runner = _LoopThread()
        return self._runner

    def rank_one(self, prompt: Prompt, responses: Sequence[str], scores: Sequence[float] | None = None) -> PromptResult:
        """Rank the ``responses`` to one ``prompt``; raises InputError when the item is bad
        (TypeError when ``responses`` is not a sequence of strings, e.g. one string)."""
        item: dict[str, Any] = {"prompt": prompt, "responses": check_responses(responses)}
        if scores is not None:
            if isinstance(scores, (str, bytes, Mapping)) or not isinstance(scores, Iterable):
                raise TypeError(f"scores must be a sequence of numbers or None, got {_given(scores)}")
            item["scores"] = list(scores)
        (res,) = self.rank([item])
        if res.status == "failed":
            raise InputError("; ".join(res.messages))
        return res

    async def aclose(self) -> None:
        await self.judge.aclose()

    def close(self) -> None:
        """Release the judge (engine, HTTP client), the background loop and a store opened here
        (its buffered judgements are committed)."""
        try:
            if self._runner is not None:
                try:
                    self._runner.run(self.aclose())
                finally:
                    self._runner.stop()
                    self._runner = None
        finally:
            if self._store is not None and self._owns_store:
                store, self._store = self._store, None
                store.close()

    def __enter__(self) -> Tournament:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def select_best(
    prompt: Prompt,
    responses: Sequence[str],
    *,
    judge: str | Spec | Judge = "simulated",
    strategy: str | Spec | StrategyFactory = "knockout",
    seed: int = 0,
    scores: Sequence[float] | None = None,
    **options: Any,
) -> PromptResult:
    """Pick the best of ``responses`` to ``prompt``; ``result.best`` is its index and
    ``result.best_response`` its text. Raises :class:`~tourney.errors.InputError` on bad input,
    TypeError when ``responses`` is not a sequence of strings (one string is refused, not split
    into characters) or ``judge``/``strategy`` is neither a spec nor a built object, ValueError
    for a budget that is not a positive integer (checked before a judge is built)."""
    responses = check_responses(responses)
    options.setdefault("progress", False)  # one prompt: no bar unless asked for
    with Tournament(judge, strategy, seed=seed, **options) as t:
        return t.rank_one(prompt, responses, scores)


def check_responses(responses: Any, name: str = "responses") -> list[str]:
    """``responses`` as a list of strings, or a TypeError saying what was given: a string
    (which would otherwise be ranked character by character), a mapping, a non-iterable, or
    an element that is not a string. Empty lists and duplicates are the item parser's to judge."""
    if isinstance(responses, (str, bytes, bytearray)):
        raise TypeError(
            f"{name} must be a sequence of strings, got one {type(responses).__name__} "
            f"({_short(responses)}); pass a list, e.g. [{_short(responses)}]"
        )
    if isinstance(responses, Mapping) or not isinstance(responses, Iterable):
        raise TypeError(f"{name} must be a sequence of strings, got {_given(responses)}")
    out = list(responses)
    for k, r in enumerate(out):
        if not isinstance(r, str):
            raise TypeError(f"{name}[{k}] must be a string, got {_given(r)}")
    return out


def _open_store(store: Any) -> tuple[JudgementStore | None, bool]:
    """``(store, owned)``: a path is opened here (and owned: closed with the Tournament), an
    open :class:`~tourney.store.JudgementStore` is used as is."""
    if store is None:
        return None, False
    from .store import JudgementStore

    if isinstance(store, JudgementStore):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return JudgementStore(store), True
    raise TypeError(f"store must be a path or a JudgementStore, got {_given(store)}")


def _short(x: Any, limit: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _given(x: Any) -> str:
    """What a caller passed, for an error message: the type and a short repr."""
    return f"{type(x).__name__} {_short(x)}" if x is not None else "None"


def _check_component(name: str, value: Any, built: type, examples: str) -> None:
    if isinstance(value, (str, Spec, built)):
        if isinstance(value, str) and not value.strip():
            raise TypeError(
                f"{name} must be a spec string such as {examples} or a {built.__name__}, got an empty string"
            )
        return
    raise TypeError(f"{name} must be a spec string such as {examples} or a {built.__name__}, got {_given(value)}")


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {_given(seed)}")


#: keywords a Tournament passes to the Scheduler (everything but judge and strategy)
_SCHEDULER_KEYWORDS = tuple(
    p for p in inspect.signature(Scheduler.__init__).parameters if p not in ("self", "judge", "strategy", "seed")
)


def _check_scheduler_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(_SCHEDULER_KEYWORDS))
    if unknown:
        raise TypeError(
            f"unknown keyword argument(s) {', '.join(unknown)}; a Tournament takes judge, strategy, "
            f"seed, judge_options, strategy_options, store and the scheduler settings "
            f"{', '.join(_SCHEDULER_KEYWORDS)}"
        )
    check_settings(**options)
