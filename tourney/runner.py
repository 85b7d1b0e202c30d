"""One whole ranking run over an input file or dataset: the engine behind ``tourney rank`` and ``mine-pairs``.

:func:`rank_file` reads the items (any format of :mod:`tourney.inputs`, with a column mapping),
opens the judgement store, builds the judge (locally or as
a Ray pool) and the scheduler, hands every result to a sink in input order, writes the run's
meta file (and hands the meta to ``on_meta``, also when the run stops early) and returns a
:class:`RunReport`. It takes keyword arguments only (no command-line
parsing, no printing): the command line turns its flags into these keywords, prints the
summary and chooses the exit code.

The judge spec and the strategy spec arrive parsed (:class:`~tourney.registry.Spec`) and are
built here exactly once; the seed goes to the scheduler (which derives every random draw of
the run from it) and to the meta file, nowhere else.

Order of work, so that a run refused at the start costs nothing: the scheduler settings are
checked (:func:`~tourney.scheduler.check_settings`), the strategy is built (an unknown name or
a bad option fails first), the input is opened, the store is opened (a corrupt or foreign file
is refused), then the judge is built (a Ray pool starts here; a store file this run created is
removed again when the judge cannot be built, or when the run stopped before any judgement).
The store is closed whatever happens; when the run itself failed, a store that also fails to
close is logged and the run's own error is raised.

Run health (:mod:`tourney.health`): every run's parse, abstention, tie and error rates, coin
flips, first-position win rate and top reasons are in ``RunReport.health`` and the meta's
``"health"`` (also when the run stops early). A judge whose answers are unusable stops the run
with :class:`~tourney.errors.RunHealthError` (``max_failure_rate``, ``fail_fast``), like a judge
that cannot be used at all (:class:`~tourney.errors.JudgeUnavailableError`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__
from .errors import JudgeUnavailableError, RunHealthError, TourneyError
from .health import DEFAULT_FAIL_FAST, DEFAULT_MAX_FAILURE_RATE, RunHealth
from .inputs import InputSource, open_input
from .items import FieldMap, Item, PromptResult
from .registry import Spec
from .scheduler import RunStats

if TYPE_CHECKING:
    from .store import JudgementStore

__all__ = ["EXAMPLE", "ProgressLine", "RunReport", "rank_file"]

log = logging.getLogger(__name__)

#: the bundled example: the input when none is given
EXAMPLE = Path(__file__).resolve().parent / "data" / "example.jsonl"


class ProgressLine(Protocol):
    """A live progress display: called with the run's stats as they change, closed at the end."""

    def __call__(self, stats: RunStats) -> None: ...

    def close(self, stats: RunStats) -> None: ...


@dataclass(frozen=True)
class RunReport:
    """What a finished run did.

    ``stats`` is :meth:`RunStats.to_json` at the end (the same dict the meta file holds);
    ``problems`` has one line per item that is not ``ok`` (``"STATUS: item ID: messages"``);
    ``judge`` and ``strategy`` are the spec strings of what ran; ``store`` is the store's path
    (None without one); ``executor_report`` is the Ray pool's per-replica table (None locally).
    ``health`` is the run's :class:`~tourney.health.RunHealth` (its ``to_json()`` is the meta's
    ``health``); ``strategy_info`` the strategy's description (for the health warnings' advice).
    """

    stats: dict[str, Any]
    problems: list[str]
    judge: str
    strategy: str
    store: str | None
    executor_report: str | None = None
    health: RunHealth | None = None
    strategy_info: Mapping[str, Any] | None = None

    @property
    def health_problem(self) -> str | None:
        """Why the run's health check failed (the failure share above ``max_failure_rate``), or None."""
        return self.health.problem() if self.health is not None else None

    @property
    def ok(self) -> bool:
        """True when every item was ranked cleanly and the run's health check passed."""
        return not self.problems and self.health_problem is None


def rank_file(
    input: str | os.PathLike[str] | InputSource | Any | None,
    sink: Callable[[Item | None, PromptResult], None],
    *,
    input_format: str | None = None,
    fields: FieldMap | None = None,
    duplicates: str = "merge",
    judge: Spec | str = "simulated",
    strategy: Spec | str = "knockout",
    seed: int = 0,
    concurrency: int | None = None,
    retries: int = 3,
    backoff_s: float = 0.5,
    resample_abstentions: int = 2,
    max_comparisons: int | None = None,
    max_rounds: int | None = None,
    token_budget: int | None = None,
    store: str | os.PathLike[str] | None = None,
    executor: str = "local",
    executor_options: Mapping[str, Any] | None = None,
    progress: Callable[[int | None], ProgressLine] | None = None,
    meta_path: str | os.PathLike[str] | None = None,
    command: str | None = None,
    on_meta: Callable[[dict[str, Any]], None] | None = None,
    max_failure_rate: float | None = DEFAULT_MAX_FAILURE_RATE,
    fail_fast: int | None = DEFAULT_FAIL_FAST,
    notify: Callable[[str], None] | None = None,
) -> RunReport:
    """Rank every item of ``input`` and call ``sink(item, result)`` for each result in input
    order (``item`` is None for a row that failed to parse).

    ``input``: a path (JSONL, JSON, parquet, a ``datasets`` folder, gzip/zstd text; ``"-"`` for
    stdin), an opened :class:`~tourney.inputs.InputSource`, a ``datasets.Dataset``, an iterable
    of row dicts, or None for the bundled :data:`EXAMPLE`. ``input_format`` overrides the format
    the path says, ``fields`` maps the row's fields, ``duplicates`` is ``"merge"`` or
    ``"error"`` (see :func:`tourney.inputs.open_input`; an opened ``InputSource`` has them already). ``judge`` and
    ``strategy``: specs with their options (strings are parsed here). ``seed``: the run seed
    (same seed, same results). ``concurrency``, ``retries``, ``backoff_s`` (seconds, doubling),
    ``resample_abstentions``, ``max_comparisons`` and ``max_rounds`` (per prompt: requests, and
    sequential rounds of judge calls) and ``token_budget`` (judge
    tokens, prompt + completion, shared by the whole run) go to the
    :class:`~tourney.scheduler.Scheduler`. ``store``: a SQLite judgement store to reuse and
    fill (None: none). ``executor`` (``local`` or ``ray``) and ``executor_options`` (the Ray
    settings of :func:`~tourney.executors.build_executor_judge`) say where judge calls run.
    ``progress``: called once with the number of items (None when unknown) to make a
    :class:`ProgressLine`. ``meta_path``: where to write the run's metadata (the ``command``
    text, version, seed, specs, store and totals) as JSON, atomically, when the run completes;
    None writes none. ``on_meta``: called once with the same meta dict when the run ends,
    also when it stops early (an error, an interrupt): then ``"complete"`` is false and
    ``"stopped"`` says why, and the exception is re-raised after the call.
    ``max_failure_rate`` (a share in [0, 1]; None: unchecked) and ``fail_fast`` (K; None: off)
    are the health rules of :mod:`tourney.health` (defaults: 0.2 and 16, as on the command
    line). ``notify`` is called with notes the user should see at the start of the run (a judge
    that keeps fewer requests in flight than ``concurrency``); default: a log warning.
    """
    from .cache import StoreCache
    from .executors import build_executor_judge, describe_executor
    from .scheduler import Scheduler, check_settings
    from .store import JudgementStore
    from .strategy import build_strategy

    # every setting is checked before anything is opened or built (a bad one costs nothing)
    check_settings(
        retries=retries,
        backoff_s=backoff_s,
        resample_abstentions=resample_abstentions,
        max_comparisons=max_comparisons,
        token_budget=token_budget,
        max_failure_rate=max_failure_rate,
        fail_fast=fail_fast,
        **({} if concurrency is None else {"concurrency": concurrency}),
    )
    factory = build_strategy(strategy)
    if isinstance(input, InputSource):
        src = input
    else:
        src = open_input(EXAMPLE if input is None else input, format=input_format, fields=fields, duplicates=duplicates)
    total = src.count() if progress is not None else None  # a progress line shows it
    store_path = None if store is None else os.fspath(store)
    created = store_path is not None and not os.path.exists(store_path)
    db = JudgementStore(store_path) if store_path else None  # refuses a corrupt or foreign file before any work
    try:  # a Ray pool starts here
        the_judge, concurrency = build_executor_judge(
            judge, executor=executor, concurrency=concurrency, **dict(executor_options or {})
        )
    except BaseException:
        if db is not None:
            _close_after_failure(db)
            if created:  # leave no empty store behind for a judge that could not even be built
                _remove_empty_store(store_path)  # type: ignore[arg-type]
        raise
    cap = getattr(the_judge, "max_inflight", None)
    if isinstance(cap, int) and cap < concurrency:  # never a silent cap: say so before the run
        (notify or log.warning)(
            f"the {the_judge.spec.name} judge keeps at most {cap} requests in flight (its option "
            f"concurrency={cap}), fewer than --concurrency {concurrency}: {cap} is the real limit"
        )
    line = progress(total) if progress is not None else None
    sched = Scheduler(
        the_judge,
        factory,
        seed=seed,
        concurrency=concurrency,
        retries=retries,
        backoff_s=backoff_s,
        resample_abstentions=resample_abstentions,
        max_comparisons=max_comparisons,
        max_rounds=max_rounds,
        token_budget=token_budget,
        cache=StoreCache(db, the_judge) if db is not None else None,
        on_progress=line,
        max_failure_rate=max_failure_rate,
        fail_fast=fail_fast,
    )
    if line is not None and hasattr(line, "attach"):  # refreshed while a slow prompt is still judged
        line.attach(lambda: sched.stats)
    problems: list[str] = []
    items: dict[int, Item] = {}

    def remember(stream: Any) -> Any:
        for it in stream:
            if isinstance(it, Item):
                items[it.index] = it
            yield it

    async def go() -> None:
        try:
            async for res in sched.run_ordered(remember(src.items())):
                sink(items.pop(res.index, None), res)
                if line is not None and hasattr(line, "result"):  # its samples feed the ETA
                    line.result(res)
                if res.status != "ok":
                    problems.append(f"{res.status}: item {res.id}: {'; '.join(res.messages)}")
        finally:
            await the_judge.aclose()

    strategy_info = factory.describe()

    def meta(stopped: BaseException | None = None) -> dict[str, Any]:
        m = {
            "command": command,
            "cwd": os.getcwd(),
            "version": __version__,
            "seed": seed,
            "input": src.path if src.path is not None else src.name,
            "input_format": src.format,
            "fields": src.fields.describe(),
            "judge": the_judge.describe(),
            "executor": describe_executor(the_judge),
            "strategy": factory.describe(),
            "store": store_path,
            "stats": sched.stats.to_json(),
            "health": sched.health.to_json(strategy_info, stopped=None if stopped is None else _why(stopped)),
        }
        if stopped is not None:
            m["complete"] = False
            m["stopped"] = _why(stopped)
        return m

    try:
        asyncio.run(go())
        if db is not None:
            closing, db = db, None
            closing.close()  # commits the last batch; raises StoreError if it cannot
    except BaseException as exc:
        if line is not None:
            line.close(sched.stats)
        if db is not None:
            _close_after_failure(db)
            db = None
            if created and isinstance(exc, (JudgeUnavailableError, RunHealthError)) and not sched.stats.samples:
                _remove_empty_store(store_path)  # type: ignore[arg-type]  # stopped before any judgement
        if on_meta is not None:
            on_meta(meta(exc))
        raise
    if line is not None:
        line.close(sched.stats)
    stats = sched.stats.to_json()
    done = meta()
    if meta_path is not None:
        _write_atomic(Path(meta_path), json.dumps(done, indent=2) + "\n")
    if on_meta is not None:
        on_meta(done)
    report = the_judge.report() if hasattr(the_judge, "report") else None  # the Ray pool's per-replica table
    return RunReport(
        stats,
        problems,
        str(the_judge.spec),
        str(factory),
        store_path,
        report,
        health=sched.health,
        strategy_info=strategy_info,
    )


def _why(exc: BaseException) -> str:
    """Why a run stopped, in words (for the meta file of a partial output)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename (never a
    half-written file under the real name)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _close_after_failure(db: JudgementStore) -> None:
    """Close the store after the run failed, keeping the run's own error: it says why the run
    stopped (a store that cannot close either is logged)."""
    try:
        db.close()
    except TourneyError as exc:
        log.error("the judgement store could not be closed either: %s", exc)


def _remove_empty_store(path: str) -> None:
    """Remove a store file this run created and never wrote to (with SQLite's side files)."""
    for p in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
        except OSError as exc:  # not worth failing the run's own error for
            log.warning("could not remove the empty judgement store %s: %s", p, exc)
