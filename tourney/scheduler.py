"""Event-driven scheduler: many prompts' tournaments at once against one judge.

The scheduler owns concurrency; strategies own decisions; judges own inference.

* A match is dispatched the moment its strategy proposes it (a knockout's next-round match
  starts as soon as both feeders finish, not when the round ends).
* ``concurrency`` workers pull ready matches from a priority queue: the prompt with the fewest
  completed matches first, then input position. This is critical-path list scheduling (a
  match with more rounds still behind it goes first), which keeps the last rounds from
  trailing: on 100 prompts x N = 16 it cut the makespan from 1.36x to 1.16x the lower bound
  (benchmarks/bench_scheduler.py). At most ``max_active_prompts`` prompts are open at once, so
  memory stays bounded on huge inputs; in-order output also keeps at most ``REORDER_FACTOR``
  times that many items started and not yet yielded, so a slow early prompt cannot make the
  reorder buffer grow with the input.
* The scheduler is the single retry layer (judges make one attempt per call). Policy: a call
  that raises :class:`~tourney.errors.TransientJudgeError` (or any exception that is not a
  :class:`~tourney.errors.JudgeError`) gets up to ``1 + retries`` attempts in all; before retry
  k (1, 2, ...) it waits ``min(max_backoff_s, backoff_s * 2**(k-1))`` seconds times a jitter
  factor uniform in [0.5, 1), and at least the error's ``retry_after`` (a server's
  ``Retry-After``, honoured up to ``MAX_RETRY_AFTER_S``) times a jitter factor in [1, 1.25).
  A call that keeps failing becomes ERROR judgements "gave up after N attempts: <last
  error>"; a permanent :class:`~tourney.errors.JudgeError` does so at once. The strategy
  sees them as errors, never as a win. Jitter changes timing only, never results.
* Fail fast: ``run`` first awaits ``judge.preflight()`` (a server that is down, a refused key,
  a model not served: :class:`~tourney.errors.JudgeUnavailableError` before any work), and a
  :class:`~tourney.errors.JudgeUnavailableError` from any call (a judge's circuit breaker)
  stops the run like an unusable store: results already yielded and judgements already
  stored stand, nothing more is dispatched, ``run`` raises it.
* Run health (:mod:`tourney.health`): every judge sample accounted (store answers included)
  and every prompt's result feed ``self.health``; with ``fail_fast`` (K) or ``max_failure_rate``
  set, a judge whose first K answers all abstain, or whose failure share is far above the
  threshold, stops the run like an unusable judge (:class:`~tourney.errors.RunHealthError`).
  A prompt otherwise ok whose strategy settled a pair by a coin because the judge's votes were
  missing gets status ``coin_flip`` (:func:`tourney.health.coin_flip_note` says when).
* Abstentions are re-sampled up to ``resample_abstentions`` times per request, with sample
  indices ``RESAMPLE_STRIDE * round + offset``, which never collide with ordinary indices, so a
  re-sample is a new, reproducible draw (only for a judge whose ``fresh_samples`` is true).
* Identical responses of an item are judged once: the tournament runs on ``item.merged()`` and
  its result is put back in the input's numbering by ``unmerge`` (``tourney/items.py``).
* Each prompt's matches go to ``judge.for_item(item)``, the judge's view of that input item
  (the simulated judge binds the item's ``scores`` there; most judges are their own view).
* Per-prompt randomness comes from ``stable_seed(seed, prompt id)``; with a deterministic
  judge, the output is identical whatever the latencies, concurrency or executor.
* An optional judgement cache (the SQLite store) answers matches already paid for, and claims
  the others before they are judged, so no other task of the run and no other process
  sharing the store pays for the same judgement meanwhile (:mod:`tourney.cache`).
* Rounds: a request's round is 1 + the highest round among the results its strategy had
  observed when it proposed it (a re-sample of abstentions is one round more: it is another
  judge call after the first), so a prompt's ``rounds`` is its critical path in judge calls, what
  a user waits for with unlimited concurrency. Its ``critical_path_s`` sums the judge's realised
  latencies along that path the same way (a reused judgement costs nothing). ``max_rounds``
  stops dispatching a prompt's requests (and re-samples) whose round would exceed it: the
  strategy's ranking so far is the result, marked ``budget_limited``.
* Budgets per prompt: ``max_comparisons`` counts requests, ``max_samples`` the judge samples
  the requests ask for (a voting request of k samples counts k); both are checked in proposal
  order before each dispatch, so which requests fit never depends on timing. Re-samples of
  abstentions do not count against them (they replace votes the judge did not give).
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from .errors import (
    InputError,
    JudgeError,
    JudgeUnavailableError,
    RunHealthError,  # the health stop (its own line: merges cleanly)
    SpecError,  # the settings checks' ValueError (its own line: merges cleanly)
    StoreError,
    TransientJudgeError,
)
from .hashing import response_key, stable_seed
from .health import RunHealth, coin_flip_note
from .items import Item
from .judges.base import Judge
from .strategy import Strategy, StrategyFactory
from .types import Judgement, Match, MatchResult, Outcome, PromptResult, Request, TokenUsage

__all__ = ["Scheduler", "RunStats", "JudgementCache", "RESAMPLE_STRIDE", "check_settings"]

log = logging.getLogger("tourney")

#: sample indices of re-samples start at multiples of this (ordinary indices stay below it)
RESAMPLE_STRIDE = 1_000_000
#: with a store, input items are read this many ahead (or ``max_active_prompts``, when more),
#: their prompts' claims asked for meanwhile: asked later, the store's writer grants them after
#: the prompts' first matches (with an instant judge, 64 ahead was too late for 95% of prompts)
CLAIM_LOOKAHEAD = 64
#: in-order output: at most this many times ``max_active_prompts`` items started and not yet
#: yielded (finished results wait for an earlier, slower one in a buffer this size at most)
REORDER_FACTOR = 8
#: the longest server ``Retry-After`` honoured, in seconds (a longer one is cut to this)
MAX_RETRY_AFTER_S = 300.0


class JudgementCache(Protocol):
    """What the scheduler needs from a judgement store (:class:`tourney.cache.StoreCache`).

    ``acquire`` returns a lease: the stored samples of a match by sample index (``.stored``,
    only those present), with a claim on the others, so that no other task or process pays for
    them meanwhile (it may wait while one does); ``try_acquire`` is the same without waiting
    (None when it would wait); ``save`` stores new samples; ``release`` gives back what a lease
    claimed and did not save (``save`` takes that lease, to reuse its keys). ``backlogged``
    says the store's writer is behind, and ``drained`` waits until it caught up: new matches wait
    meanwhile. ``prefetch`` / ``started`` bracket the start of an item (its prompt's claim is
    asked for early), ``done`` says the item's prompt is finished. The
    acquiring and saving calls raise StoreError when the store cannot be used. ``item`` is the
    input item the match comes from (its ``scores`` are part of the key)."""

    async def acquire(self, match: Match, item: Item) -> Any: ...

    def try_acquire(self, match: Match, item: Item) -> Any | None: ...

    def save(self, match: Match, judgements: Sequence[Judgement], item: Item, lease: Any = None) -> None: ...

    def backlogged(self) -> bool: ...

    async def drained(self) -> None: ...

    def release(self, lease: Any) -> None: ...

    def prefetch(self, item: Item) -> None: ...

    def started(self, item: Item) -> None: ...

    def done(self, item: Item) -> None: ...


@dataclass
class RunStats:
    prompts: int = 0
    failed: int = 0
    partial: int = 0
    comparisons: int = 0
    samples: int = 0
    reused: int = 0
    judge_calls: int = 0
    retries: int = 0
    abstentions: int = 0
    errors: int = 0
    tokens: TokenUsage = field(default_factory=TokenUsage)
    rounds_max: int = 0  #: most sequential rounds (judge calls on the critical path) of a ranked prompt
    rounds_sum: int = 0  #: their sum over the ranked prompts (mean = rounds_sum / ranked prompts)
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def to_json(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "failed": self.failed,
            "partial": self.partial,
            "comparisons": self.comparisons,
            "samples": self.samples,
            "reused": self.reused,
            "new": self.samples - self.reused,
            "judge_calls": self.judge_calls,
            "retries": self.retries,
            "abstentions": self.abstentions,
            "errors": self.errors,
            "tokens": {
                "prompt": self.tokens.prompt,
                "cached": self.tokens.cached,
                "completion": self.tokens.completion,
            },
            "rounds": {"max": self.rounds_max, "mean": round(self.rounds_sum / max(self.prompts - self.failed, 1), 3)},
            "elapsed_s": round(self.elapsed_s, 3),
        }


class _PromptState:
    __slots__ = (
        "budget_limited",
        "closed",
        "comparisons",
        "inflight",
        "item",
        "judge",
        "results",
        "reused",
        "samples_sent",
        "seen_path_s",
        "seen_round",
        "strategy",
    )

    def __init__(self, item: Item, strategy: Strategy, judge: Judge):
        self.item = item
        self.seen_round = 0  # highest round among the results delivered so far
        self.seen_path_s = 0.0  # longest critical path (s) among them
        self.samples_sent = 0  # samples the dispatched requests asked for (max_samples)
        self.strategy = strategy
        self.judge = judge  # the run's judge for this item (Judge.for_item)
        self.inflight = 0
        self.comparisons = 0
        self.results: list[tuple[int, MatchResult]] = []
        self.budget_limited = False
        self.closed = False
        self.reused = 0


@dataclass
class _Task:
    state: _PromptState
    request: Request
    offset: int  # sample offset of THIS call
    samples: int  # samples in THIS call
    got: list[Judgement]
    resample_round: int = 0
    attempt: int = 0
    pseq: int = 0  # position in the prompt's proposal order
    round: int = 1  # this call's round (see the module docstring): dispatch round + re-sample rounds
    path_s: float = 0.0  # critical path (s) up to the end of this task's latest call
    saved: set[int] = field(default_factory=set)  # samples this task itself stored (before a retry)


class Scheduler:
    """Runs tournaments for many items concurrently; see the module docstring."""

    #: set by :meth:`run_ordered` for its run: items started and not yet yielded in order
    _reorder_room: asyncio.Semaphore | None = None

    def __init__(
        self,
        judge: Judge,
        strategy: StrategyFactory,
        *,
        seed: int = 0,
        concurrency: int = 32,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        resample_abstentions: int = 2,
        max_comparisons: int | None = None,
        max_samples: int | None = None,
        max_rounds: int | None = None,
        token_budget: int | None = None,
        max_active_prompts: int | None = None,
        cache: JudgementCache | None = None,
        on_progress: Callable[[RunStats], None] | None = None,
        max_failure_rate: float | None = None,
        fail_fast: int | None = None,
    ):
        # budgets and limits are checked here, so every caller (CLI, API, benchmarks) gets the
        # same error naming the setting and the value given (-1 or 2.5 used to run silently)
        check_settings(
            concurrency=concurrency,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            resample_abstentions=resample_abstentions,
            max_comparisons=max_comparisons,
            token_budget=token_budget,
            max_active_prompts=max_active_prompts,
            max_samples=max_samples,
            max_rounds=max_rounds,
            max_failure_rate=max_failure_rate,
            fail_fast=fail_fast,
        )
        self.max_failure_rate = max_failure_rate  # health stops (tourney.health): off when None
        self.fail_fast = fail_fast
        self.health = RunHealth(max_failure_rate, fail_fast)
        self.judge = judge
        self.strategy = strategy
        self.seed = int(seed)
        self.concurrency = concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.resample_abstentions = resample_abstentions
        self.max_comparisons = max_comparisons
        self.max_samples = max_samples  # judge samples per prompt (requests' samples; not re-samples)
        self.max_rounds = max_rounds  # sequential rounds per prompt (see the module docstring)
        self.token_budget = token_budget  # judge tokens (prompt + completion) for the whole run
        self.max_active_prompts = max_active_prompts or max(64, 4 * concurrency)
        self.cache = cache
        self.on_progress = on_progress
        self.stats = RunStats()
        self._strategy_spec = strategy.describe()
        # a judge whose samples are fixed records (replay) has no fresh draw to offer
        self._resamples = bool(getattr(judge, "fresh_samples", True))
        self._judge_spec = judge.describe()
        self._seq = 0

    # -- public ---------------------------------------------------------------------------
    async def run(self, items: Iterable[Item | InputError]) -> AsyncIterator[PromptResult]:
        """Yield one result per item, in completion order."""
        self.stats = RunStats()
        self.health = RunHealth(self.max_failure_rate, self.fail_fast)
        queue: asyncio.PriorityQueue = asyncio.PriorityQueue()
        results: asyncio.Queue = asyncio.Queue()
        room = asyncio.Semaphore(self.max_active_prompts)
        self._queue, self._results, self._room = queue, results, room
        self._pending_prompts = 0
        self._all_fed = False
        self._fatal: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._leases: dict[int, Any] = {}  # id(task) -> its claim, from _claim to _run_task
        self._claiming: set[asyncio.Future] = set()
        self._held: deque[_Task] = deque()  # matches held back while the store's writer catches up
        await self.judge.preflight()  # JudgeUnavailableError before any work is paid for
        workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        feeder = asyncio.create_task(self._feed(items))
        try:
            while True:
                res = await results.get()
                if res is None:
                    break
                yield res
            if self._fatal is not None:
                raise self._fatal
            await feeder  # re-raise a feeder failure (e.g. unreadable input)
        finally:
            feeder.cancel()
            for w in [*workers, *self._claiming]:
                w.cancel()
            await asyncio.gather(feeder, *workers, *self._claiming, return_exceptions=True)

    async def run_ordered(self, items: Iterable[Item | InputError]) -> AsyncIterator[PromptResult]:
        """Yield one result per item, in input order. What finished early waits in a buffer,
        bounded: the feeder starts an item only while fewer than ``REORDER_FACTOR *
        max_active_prompts`` items are started and not yet yielded, so one slow early prompt
        holds back a bounded number of results (and input items), whatever the input's size.
        Results and their order are unchanged (each prompt's randomness is its own)."""
        buffer: dict[int, PromptResult] = {}
        nxt = 0
        self._reorder_room = asyncio.Semaphore(REORDER_FACTOR * self.max_active_prompts)
        try:
            async for res in self.run(items):
                buffer[res.index] = res
                while nxt in buffer:
                    yield buffer.pop(nxt)
                    nxt += 1
                    self._reorder_room.release()
            for k in sorted(buffer):  # pragma: no cover - indices are contiguous
                yield buffer[k]
        finally:
            self._reorder_room = None

    async def rank(self, items: Iterable[Item | InputError]) -> list[PromptResult]:
        return [r async for r in self.run_ordered(items)]

    # -- feeding prompts -----------------------------------------------------------------------
    async def _feed(self, items: Iterable[Item | InputError]) -> None:
        index = 0
        try:
            for item in self._claimed_ahead(items):
                if self._reorder_room is not None:  # in-order output: bound what waits to be yielded
                    await self._reorder_room.acquire()
                if isinstance(item, InputError):  # a bad row keeps its own id and fields where readable
                    self._emit(
                        PromptResult.failed(
                            index, getattr(item, "id", str(index)), str(item), getattr(item, "extra", None)
                        )
                    )
                    index += 1
                    continue
                index = item.index + 1
                await self._room.acquire()
                self._pending_prompts += 1
                self._start(item)
                if self.cache is not None:
                    self.cache.started(item)  # the hold of prefetch: the prompt's tasks hold its claim now
                await asyncio.sleep(0)  # let workers run while a long input is read
        finally:
            self._all_fed = True
            self._maybe_end()

    def _claimed_ahead(self, items: Iterable[Item | InputError]) -> Iterator[Item | InputError]:
        """``items``, read ``CLAIM_LOOKAHEAD`` (or ``max_active_prompts``) ahead when there is a
        store: the claim on each item's prompt is asked for as it is read, so it is granted by the
        time the item starts (a claim costs the store's writer a transaction: asked at start,
        every first match of a prompt would wait for it). An error reading the input surfaces
        after the items before it."""
        if self.cache is None:
            yield from items
            return
        ahead: deque[Item | InputError] = deque()
        failure: BaseException | None = None
        source = iter(items)
        lookahead = max(CLAIM_LOOKAHEAD, self.max_active_prompts)
        while True:
            while failure is None and len(ahead) < lookahead:
                try:
                    item = next(source)
                except StopIteration:
                    break
                except Exception as exc:  # an unreadable input: the items read before it still run
                    failure = exc
                    break
                if isinstance(item, Item):
                    # merged here, not only in _start: the claim's holders and the cache's digests
                    # are per item object, so prefetch, the tasks and done must see the same one
                    item = item.merged()
                    self.cache.prefetch(item)
                ahead.append(item)
            if not ahead:
                break
            yield ahead.popleft()
        if failure is not None:
            raise failure

    def _maybe_end(self) -> None:
        if self._all_fed and self._pending_prompts == 0:
            self._results.put_nowait(None)

    def _start(self, item: Item) -> None:
        item = item.merged()  # identical responses are judged once; _result puts the copies back
        try:
            rng = np.random.default_rng(stable_seed(self.seed, "strategy", item.id))
            strat = self.strategy.create(item.n, rng, [response_key(r) for r in item.responses])
        except Exception as exc:  # a strategy that cannot start fails this item only
            self._finish_failed(item, f"{type(exc).__name__}: {exc}")
            return
        try:
            judge = self.judge.for_item(item)
        except Exception as exc:  # a judge that cannot take this item fails it only
            self._finish_failed(item, f"judge cannot take this item: {type(exc).__name__}: {exc}")
            return
        state = _PromptState(item, strat, judge)
        try:
            self._advance(state)
        except Exception as exc:  # a bug in the strategy: fail this item, keep the run going
            log.exception("internal error starting prompt %s", item.id)
            self._close(state, error=f"internal error: {type(exc).__name__}: {exc}")

    # -- the event loop of one prompt --------------------------------------------------------
    def _advance(self, state: _PromptState) -> None:
        """Dispatch whatever the strategy is ready for; close the prompt when it is finished."""
        try:
            proposals = [] if state.budget_limited else state.strategy.propose()
        except Exception as exc:
            self._close(state, error=f"strategy {self.strategy} failed: {type(exc).__name__}: {exc}")
            return
        rnd = state.seen_round + 1
        for req in proposals:
            if (
                self._over_budget(state)
                or (self.max_rounds is not None and rnd > self.max_rounds)
                or (self.max_samples is not None and state.samples_sent + req.samples > self.max_samples)
            ):
                state.budget_limited = True
                break
            state.comparisons += 1
            state.samples_sent += req.samples
            state.inflight += 1
            self._enqueue(
                _Task(
                    state,
                    req,
                    req.sample_offset,
                    req.samples,
                    [],
                    pseq=state.comparisons,
                    round=rnd,
                    path_s=state.seen_path_s,
                )
            )
        if state.inflight == 0:
            try:
                finished = state.strategy.done
            except Exception as exc:
                self._close(state, error=f"strategy {self.strategy} failed: {type(exc).__name__}: {exc}")
                return
            if finished or state.budget_limited:
                self._close(state)
            else:
                self._close(state, error=f"strategy {self.strategy} stalled: not done and proposed nothing")

    def _over_budget(self, state: _PromptState) -> bool:
        if self.max_comparisons is not None and state.comparisons >= self.max_comparisons:
            return True
        return bool(self.token_budget is not None and self.stats.tokens.total >= self.token_budget)

    def _enqueue(self, task: _Task) -> None:
        if self.cache is not None:  # claim its samples first: it reaches a worker with the claim in hand
            try:
                lease = self.cache.try_acquire(self._match(task), task.state.item)  # (the lease keeps the match)
            except StoreError as exc:  # an unreadable store: stop rather than pay for everything again
                self._abort(exc)
                return
            if lease is None and self.cache.backlogged():  # the store's writer is behind: wait for it
                self._held.append(task)
                if len(self._held) == 1:
                    self._background(self._release_held())
                return
            if lease is None:  # the prompt's claim, or a sample another task judges: wait off the workers
                self._background(self._claim(task))
                return
            self._leases[id(task)] = lease
        self._queue_task(task)

    def _queue_task(self, task: _Task) -> None:
        # priority affects timing only, never results (see the module docstring)
        self._seq += 1
        self._queue.put_nowait((len(task.state.results), task.state.item.index, self._seq, task))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` beside the workers (cancelled when the run ends)."""
        fut = asyncio.ensure_future(coro)
        self._claiming.add(fut)
        fut.add_done_callback(self._claiming.discard)

    async def _release_held(self) -> None:
        """Once the store's writer has caught up, queue the matches held back meanwhile (one
        waiter for all of them: holding costs a match no task of its own)."""
        assert self.cache is not None  # (only held with a store)
        try:
            await self.cache.drained()
        except StoreError as exc:  # its commits fail: stop rather than pay for more
            self._abort(exc)
            return
        held, self._held = self._held, deque()
        for task in held:
            self._enqueue(task)

    async def _claim(self, task: _Task) -> None:
        """Get a task's stored samples and a claim on the others from the cache, then queue the
        task. Claims are taken here, before a worker, so the store batches many into one
        transaction and a worker never waits for one: every task holding a claim can run, so no
        two tasks (or two runs sharing the store) ever wait for each other."""
        assert self.cache is not None  # (only queued here with a store)
        if not task.state.closed and self._fatal is None:
            try:
                self._leases[id(task)] = await self.cache.acquire(self._match(task), task.state.item)
            except StoreError as exc:  # an unreadable store: stop rather than pay for everything again
                self._abort(exc)
                return
        self._queue_task(task)

    async def _worker(self) -> None:
        while True:
            *_, task = await self._queue.get()
            if self._fatal is not None:
                continue
            try:
                await self._run_task(task)
            except Exception as exc:  # a bug in a strategy or the engine: fail that prompt only
                log.exception("internal error on prompt %s", task.state.item.id)
                task.state.inflight -= 1
                if not task.state.closed:
                    self._close(task.state, error=f"internal error: {type(exc).__name__}: {exc}")

    def _match(self, task: _Task) -> Match:
        item, req = task.state.item, task.request
        return Match(
            prompt=item.prompt,
            first_text=item.responses[req.first],
            second_text=item.responses[req.second],
            prompt_id=item.id,
            first=req.first,
            second=req.second,
            samples=task.samples,
            sample_offset=task.offset,
        )

    async def _run_task(self, task: _Task) -> None:
        state = task.state
        lease = self._leases.pop(id(task), None)  # the stored samples and a claim on the rest (_claim)
        if state.closed:  # the prompt failed meanwhile: do not pay for more judgements
            if lease is not None and self.cache is not None:
                self.cache.release(lease)
            state.inflight -= 1
        elif self.cache is None:
            await self._judge_task(task, self._match(task))
        else:
            if lease is None:  # (every task is claimed in _enqueue; never judge without a claim)
                try:
                    lease = await self.cache.acquire(self._match(task), state.item)
                except StoreError as exc:
                    self._abort(exc)
                    return
            try:
                await self._judge_task(task, lease.match or self._match(task), lease)
            finally:
                self.cache.release(lease)  # what was claimed and not saved (a retry, a failure, a stop)
        if self.cache is not None and state.closed and state.inflight == 0:
            self.cache.done(state.item)  # the prompt is finished: its claim may go (after its judgements)

    async def _judge_task(self, task: _Task, match: Match, lease: Any = None) -> None:
        """Judge ``match``'s samples that ``lease`` (the cache's, with a store) has not stored."""
        state = task.state
        stored: dict[int, Judgement] = lease.stored if lease is not None else {}
        # samples this task saved before a retry are not reuse
        stored_reused = len(set(stored) - task.saved) if task.saved else len(stored)
        wanted = range(match.sample_offset, match.sample_offset + match.samples)
        fresh: list[Judgement] = []
        for offset, count in _runs([s for s in wanted if s not in stored]):
            sub = match if count == match.samples else replace(match, sample_offset=offset, samples=count)
            self.stats.judge_calls += 1
            try:
                got = await state.judge.judge(sub)
                if len(got) != sub.samples:
                    raise JudgeError(f"judge returned {len(got)} samples, {sub.samples} were asked for")
            except JudgeUnavailableError as exc:  # the judge cannot work at all: stop the run
                self._abort(exc)
                return
            except JudgeError as exc:
                if isinstance(exc, TransientJudgeError):
                    if self._retry(task, exc):
                        return
                    got = self._errors(sub, self._gave_up(task, exc))
                else:
                    got = self._errors(sub, f"{type(exc).__name__}: {exc}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything else is treated as transient
                if self._retry(task, exc):
                    return
                got = self._errors(sub, self._gave_up(task, exc))
            if self.cache is not None:
                try:
                    self.cache.save(sub, got, state.item, lease)
                except StoreError as exc:  # disk full, read-only: stop the run, keep what is stored
                    self._abort(exc)
                    return
                task.saved.update(range(sub.sample_offset, sub.sample_offset + sub.samples))
            fresh.extend(got)
            task.path_s += max((j.latency_s for j in got), default=0.0)
        if stored_reused:
            state.reused += stored_reused
            self.stats.reused += stored_reused
        judgements = sorted([*stored.values(), *fresh], key=lambda j: j.sample) if stored else fresh
        self._account(judgements)
        task.got.extend(judgements)
        abstained = sum(1 for j in judgements if j.outcome is Outcome.ABSTAIN)
        if (
            abstained
            and self._resamples
            and task.resample_round < self.resample_abstentions
            and not state.closed
            and (self.max_rounds is None or task.round < self.max_rounds)
        ):
            rnd = task.resample_round + 1
            self._enqueue(
                replace(
                    task,
                    offset=RESAMPLE_STRIDE * rnd + task.request.sample_offset,
                    samples=abstained,
                    resample_round=rnd,
                    attempt=0,
                    round=task.round + 1,
                )
            )
            return
        self._deliver(task)

    def _abort(self, exc: BaseException) -> None:
        """Stop the whole run (the store cannot take more judgements, or the judge cannot
        work at all): results already yielded stand, nothing more is dispatched, ``run``
        raises ``exc``."""
        if self._fatal is None:
            self._fatal = exc
            log.warning("stopping the run: %s", exc)  # raised by run(): the caller reports it
            self._results.put_nowait(None)

    def _retry(self, task: _Task, exc: BaseException) -> bool:
        if task.attempt >= self.retries:
            return False
        task.attempt += 1
        self.stats.retries += 1
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (task.attempt - 1))
        delay *= 0.5 + random.random() / 2  # jitter: timing only, never results
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after >= 0:  # the server said how long
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S) * (1 + random.random() / 4))
        log.warning(
            "judge call for prompt %s failed (%s); retry %d/%d in %.2fs",
            task.state.item.id,
            exc,
            task.attempt,
            self.retries,
            delay,
        )
        self._loop.call_later(delay, self._enqueue, task)
        return True

    @staticmethod
    def _gave_up(task: _Task, exc: BaseException) -> str:
        n = task.attempt + 1
        return f"gave up after {n} attempt{'s' if n != 1 else ''}: {type(exc).__name__}: {exc}"

    @staticmethod
    def _errors(match: Match, message: str) -> list[Judgement]:
        return [Judgement.failed(message, sample=match.sample_offset + k) for k in range(match.samples)]

    def _account(self, judgements: Sequence[Judgement]) -> None:
        st = self.stats
        st.samples += len(judgements)
        st.tokens = st.tokens + TokenUsage.of(judgements)
        for j in judgements:
            if j.outcome is Outcome.ABSTAIN:
                st.abstentions += 1
            elif j.outcome is Outcome.ERROR:
                st.errors += 1
        self.health.add(judgements)
        why = self.health.early_stop()
        if why is not None:  # the judge's answers are unusable: stop before the budget is spent
            self._abort(RunHealthError(why, self.health))

    def _deliver(self, task: _Task) -> None:
        state = task.state
        state.inflight -= 1
        if state.closed:
            return
        result = MatchResult(task.request, tuple(task.got))
        state.results.append((task.pseq, result))
        state.seen_round = max(state.seen_round, task.round)
        state.seen_path_s = max(state.seen_path_s, task.path_s)
        try:
            state.strategy.observe(result)
        except Exception as exc:
            self._close(state, error=f"strategy {self.strategy} failed: {type(exc).__name__}: {exc}")
            return
        self._advance(state)

    # -- closing ------------------------------------------------------------------------------
    def _close(self, state: _PromptState, error: str | None = None) -> None:
        if state.closed:
            return
        state.closed = True
        item = state.item
        if error is not None:
            self._finish_failed(item, error)
            return
        try:
            res = self._result(state)
        except Exception as exc:  # a strategy that cannot rank (or ranks wrongly) fails its item only
            self._finish_failed(item, f"strategy {self.strategy} failed to rank: {type(exc).__name__}: {exc}")
            return
        if res.status == "partial":
            self.stats.partial += 1
        self.stats.comparisons += res.comparisons
        self.stats.rounds_max = max(self.stats.rounds_max, res.rounds)
        self.stats.rounds_sum += res.rounds
        self._emit(res)
        self._release()

    def _result(self, state: _PromptState) -> PromptResult:
        item = state.item
        ranking = state.strategy.ranking()
        if len(ranking.scores) != item.n:
            raise ValueError(f"ranking covers {len(ranking.scores)} candidates, the item has {item.n}")
        # a canonical order (not completion order, which depends on latencies): by pair, then offset
        ordered = [r for _, r in sorted(state.results, key=_result_key)]
        all_j = [j for r in ordered for j in r.judgements]
        errors = [j for j in all_j if j.outcome is Outcome.ERROR]
        messages = tuple(dict.fromkeys(j.error or "error" for j in errors))
        coin = None if errors else coin_flip_note(ordered, ranking.info, item.n)  # partial says enough
        return item.unmerge(
            PromptResult(
                index=item.index,
                id=item.id,
                status="partial" if errors else ("coin_flip" if coin else "ok"),
                best=ranking.best,
                ranking=ranking.order,
                scores=ranking.scores,
                scale=ranking.scale,
                uncertainty=ranking.uncertainty,
                best_response=item.responses[ranking.best],
                comparisons=len(ordered),
                samples=len(all_j),
                abstentions=sum(1 for j in all_j if j.outcome is Outcome.ABSTAIN),
                ties=sum(1 for j in all_j if j.outcome is Outcome.TIE),
                errors=len(errors),
                tokens=TokenUsage.of(all_j),
                budget_limited=state.budget_limited or ranking.budget_limited,
                reused=state.reused,
                rounds=state.seen_round,
                critical_path_s=state.seen_path_s,
                messages=messages if errors or coin is None else (coin,),
                matches=tuple(_match_record(r) for r in ordered),
                info=ranking.info,
                strategy=self._strategy_spec,
                judge=self._judge_spec,
                seed=self.seed,
                extra=item.extra,
            )
        )

    def _finish_failed(self, item: Item, message: str) -> None:
        self._emit(PromptResult.failed(item.index, item.id, message, item.extra))
        self._release()

    def _release(self) -> None:
        self._pending_prompts -= 1
        self._room.release()
        self._maybe_end()

    def _emit(self, res: PromptResult) -> None:
        self.stats.prompts += 1
        if res.status == "failed":
            self.stats.failed += 1
        self.health.add_result(res)
        self._results.put_nowait(res)
        if self.on_progress is not None:
            try:
                self.on_progress(self.stats)
            except Exception:  # a broken progress display must not stop the run
                log.exception("progress callback failed")


#: the scheduler's integer settings: name -> (minimum, None allowed)
_INT_SETTINGS = {
    "concurrency": (1, False),
    "retries": (0, False),
    "resample_abstentions": (0, False),
    "max_comparisons": (1, True),
    "token_budget": (1, True),
    "max_active_prompts": (1, True),
    "fail_fast": (1, True),
    "max_samples": (1, True),
    "max_rounds": (1, True),
}
#: the scheduler's delays (seconds, finite, >= 0)
_SECONDS_SETTINGS = ("backoff_s", "max_backoff_s")


def check_settings(**settings: Any) -> None:
    """Check scheduler settings (keywords of :class:`Scheduler`) before anything is built:
    ``concurrency`` >= 1, ``retries`` and ``resample_abstentions`` >= 0, ``max_comparisons``,
    ``token_budget``, ``max_active_prompts``, ``max_samples`` and ``max_rounds`` >= 1 or None
    (integers, not bools or floats),
    ``backoff_s`` and ``max_backoff_s`` finite seconds >= 0, ``fail_fast`` >= 1 or None,
    ``max_failure_rate`` a share in [0, 1] or None. Raises TypeError for a wrong type
    and :class:`~tourney.errors.SpecError` (a ValueError) for a value out of range, naming
    the setting and the value given. Other keywords are not checked here."""
    for name, value in settings.items():
        if name in _INT_SETTINGS:
            minimum, optional = _INT_SETTINGS[name]
            _check_int(name, value, minimum=minimum, optional=optional)
        elif name in _SECONDS_SETTINGS:
            _check_seconds(name, value)
        elif name == "max_failure_rate" and value is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"max_failure_rate must be a share in [0, 1] or None, got {value!r} ({type(value).__name__})"
                )
            if not 0 <= float(value) <= 1:  # NaN fails this too
                raise SpecError(f"max_failure_rate must be a share in [0, 1] or None, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    """A scheduler setting that must be an integer >= ``minimum`` (or None when ``optional``):
    TypeError for another type (a bool, a float, a string), SpecError (a ValueError) below the
    minimum; both name the setting and repeat the value given."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}{' or None' if optional else ''}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SpecError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")


def _check_seconds(name: str, value: Any) -> None:
    """A delay in seconds: a finite real number >= 0 (TypeError / SpecError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds >= 0, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise SpecError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


def _runs(samples: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(offset, count)`` of sorted sample indices."""
    out: list[tuple[int, int]] = []
    for s in samples:
        if out and out[-1][0] + out[-1][1] == s:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((s, 1))
    return out


def _result_key(x: tuple[int, MatchResult]) -> tuple:
    req = x[1].request
    return (req.first, req.second, req.sample_offset, req.samples, repr(req.tag), x[0])


def _match_record(r: MatchResult) -> dict[str, Any]:
    """Compact, deterministic record of one judged request (no latencies)."""
    return {
        "first": r.request.first,
        "second": r.request.second,
        "outcome": r.outcome.value,
        "votes": [r.first_wins, r.second_wins, r.ties, r.abstentions, r.errors],
    }
