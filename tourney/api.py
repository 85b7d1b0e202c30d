"""Python API: :func:`select_best` for one prompt, :class:`Tournament` for many.

>>> from tourney import select_best
>>> r = select_best("Name a prime.", ["4", "7", "9"], judge="simulated", seed=0)
>>> r.best_response in ("4", "7", "9")
True
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Iterable, Mapping, Sequence, TypeVar

from .errors import InputError
from .items import Item, PromptResult, parse_item
from .judges.base import Judge, build_judge
from .scheduler import RunStats, Scheduler
from .strategy import StrategyFactory, build_strategy
from .types import Prompt

__all__ = ["Tournament", "select_best"]

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


class Tournament:
    """A judge, a strategy and scheduler settings, reusable over many batches of prompts.

    ``judge`` and ``strategy`` are spec strings (``"simulated"``, ``"replay:FILE"``,
    ``"vllm:MODEL"``, ``"knockout:votes=3"``) or built objects. Scheduler keywords
    (``concurrency``, ``retries``, ``max_comparisons``, ``cache``, ...) pass through.
    ``progress``: a progress bar while :meth:`rank` runs (tqdm when installed, else a line on
    stderr; prompts done, judgements and an ETA from completed work): True, False, or None
    (default) for on in a notebook or when stderr is a terminal.
    """

    def __init__(
        self,
        judge: str | Judge = "simulated",
        strategy: str | StrategyFactory = "knockout",
        *,
        seed: int = 0,
        judge_options: Mapping[str, Any] | None = None,
        strategy_options: Mapping[str, Any] | None = None,
        progress: bool | None = None,
        **scheduler_options: Any,
    ):
        self.judge = judge if isinstance(judge, Judge) else build_judge(judge, judge_options)
        self.strategy = strategy if isinstance(strategy, StrategyFactory) else build_strategy(strategy, strategy_options)
        self.seed = seed
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None (auto), got {type(progress).__name__} {progress!r}")
        self.progress = progress
        self.scheduler_options = scheduler_options
        self.stats: RunStats | None = None
        self._runner: _LoopThread | None = None

    def _scheduler(self) -> Scheduler:
        return Scheduler(self.judge, self.strategy, seed=self.seed, **self.scheduler_options)

    @staticmethod
    def _items(items: Iterable[Mapping[str, Any] | Item]) -> list[Item | InputError]:
        out: list[Item | InputError] = []
        for k, it in enumerate(items):
            if isinstance(it, Item):
                out.append(Item(k, it.id, it.prompt, it.responses, it.scores))
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
        self.stats = sched.stats
        return results

    def rank(self, items: Iterable[Mapping[str, Any] | Item]) -> list[PromptResult]:
        """Rank every item (dicts in the input-line format); results in input order. Calls from
        synchronous code share one background event loop, so the judge can be reused."""
        if self._runner is None:
            self._runner = _LoopThread()
        return self._runner.run(self.arank(list(items)))

    def rank_one(self, prompt: Prompt, responses: Sequence[str], scores: Sequence[float] | None = None) -> PromptResult:
        item: dict[str, Any] = {"prompt": prompt, "responses": list(responses)}
        if scores is not None:
            item["scores"] = list(scores)
        (res,) = self.rank([item])
        if res.status == "failed":
            raise InputError("; ".join(res.messages))
        return res

    async def aclose(self) -> None:
        await self.judge.aclose()

    def close(self) -> None:
        """Release the judge (engine, HTTP client) and the background loop."""
        if self._runner is None:
            return
        try:
            self._runner.run(self.aclose())
        finally:
            self._runner.stop()
            self._runner = None

    def __enter__(self) -> "Tournament":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def select_best(
    prompt: Prompt,
    responses: Sequence[str],
    *,
    judge: str | Judge = "simulated",
    strategy: str | StrategyFactory = "knockout",
    seed: int = 0,
    scores: Sequence[float] | None = None,
    **options: Any,
) -> PromptResult:
    """Pick the best of ``responses`` to ``prompt``; ``result.best`` is its index and
    ``result.best_response`` its text. Raises :class:`~tourney.errors.InputError` on bad input."""
    options.setdefault("progress", False)  # one prompt: no bar unless asked for
    with Tournament(judge, strategy, seed=seed, **options) as t:
        return t.rank_one(prompt, responses, scores)
