"""Strategy-comparison harness: which strategy picks the best response for the least a user pays?

Runs any set of strategies, in each cell of a grid of comparison budgets x round limits, over many
seeded trials, against a judge whose truth is known, THROUGH THE ENGINE: every trial is an input
item ranked by the real :class:`~tourney.scheduler.Scheduler` with the real judge (the simulated
judge in its latency-free mode, or the replay judge), so the harness has no dispatch, budget,
re-sampling or judge model of its own. Per cell (strategy, budget, round limit) it measures:

``top1``
    fraction of trials whose pick is a truly best candidate, with a 95% interval (Wilson for
    independent trials; cluster-robust normal interval when trials share a question, as in replay).
``regret``
    mean quality gap between the truly best candidate and the pick (in the truth's units).
``tau``
    mean Kendall tau-b between the strategy's full ranking and the truth.
``comparisons``
    mean judge samples used (every sample is one judge call: a voting request of 3 samples
    costs 3; re-samples of abstentions count too). ``tokens``: mean judge tokens per trial.
``rounds``
    mean sequential rounds: judge calls on the trial's critical path (a request's round is 1 +
    the highest round among the results its strategy had observed when it proposed it; a
    re-sample of abstentions is one round more), as the scheduler records them
    (:attr:`~tourney.types.PromptResult.rounds`). With unlimited concurrency this is what a user
    waits for, in judge calls.
``makespan``
    mean critical-path latency in units of the judge's median latency: the sum of the realised
    latencies of the calls along the critical path (the scheduler's ``critical_path_s``), drawn
    from the simulated judge's own lognormal latency model (median ``latency_median_s``, default
    1 here, sigma ``latency_sigma``) and never slept: with unlimited concurrency, the wall-clock
    time of the trial. n/a for a judge without a latency model (replay).
``cpu_ms``
    the strategy's own CPU time per trial (``propose``, ``observe``, ``done`` and ``ranking``,
    ``time.process_time``, so BLAS threads count), in milliseconds.
``budget_limited``
    fraction of trials that ended because the budget or the round limit ran out (a fixed
    design cut short, or an adaptive strategy that stopped on its budget before reaching its
    confidence threshold). ``p_best``: mean of the strategy's own reported probability that
    its pick is best (``info["p_best"]``, where it reports one), to compare with ``top1``
    (calibration). ``missing``: mean samples per trial that a replay set had no record for (the
    replay judge's errors: they reach the strategy as errors, never as votes).

Budgets and round limits. A budget is a number of judge samples per prompt (the scheduler's
``max_samples``; ``None``, "full", is no cap); a round limit is a number of sequential rounds
(the scheduler's ``max_rounds``; ``None`` is no limit). Both are the engine's own semantics,
exactly what ``tourney rank --max-rounds`` (and, for one-sample requests, ``--max-comparisons``)
does: requests are dispatched in the order the strategy proposes them while they fit, the
results of everything dispatched are delivered, and the strategy's ranking so far is its answer,
marked budget-limited (a fixed design cut short is scored as what it is). Re-samples of
abstentions are not counted against the budget (the engine's rule: they replace votes the judge
did not give), so with abstentions ``comparisons`` can exceed the budget. A strategy that can
plan with its budget (it has a ``budget`` option, e.g. ``adaptive``, ``pivot``) is given it; one
that can plan with a round limit (a ``rounds`` option, e.g. ``adaptive``, ``swiss``) is given
that, unless its spec sets them. A budget below ``n - 1`` is reported "n/a": fewer comparisons
cannot even connect the candidates, so no strategy can know the best; a strategy whose first
request alone exceeds the budget (e.g. ``knockout:votes=20`` with budget 15) is "n/a" too, and so
is a strategy that cannot run within the round limit at all (it refuses it).

Judges and truth.

* Simulated (:class:`SimulatedBench`): per trial, latent qualities ``q ~ N(0, spread)`` drawn
  from the seed become the item's ``scores``, the simulated judge's truth; every verdict, tie,
  abstention, error, token count and latency is the simulated judge's own draw
  (:mod:`tourney.judges.simulated`), keyed by the bench seed, the trial's prompt and the two
  texts in order and the sample index: common random numbers, so two strategies that ask for
  the same match in one trial get the same verdict and their difference is measured with less
  noise. A call that fails (``error_rate``) is retried by the scheduler without backoff.
  Candidates are texts of about 400 tokens each, so a sample's prompt is about 1,000 tokens.
* Replay (:class:`ReplayBench`): recorded verdicts (the replay format; e.g. ``tourney
  convert-prd``'s ``replay-<reviewer>.jsonl``) over the candidates of ``prompts.jsonl`` beside
  it, answered by the replay judge; trial ``t`` is question ``t mod Q``, run ``t div Q`` (run 0
  is the item itself, so it reproduces ``tourney rank --seed S`` match for match; later runs get
  the id ``ID#run``, hence other strategy seeds). The replay judge has one verdict per ordered
  pair and never re-samples; a match or sample without a record is an error judgement (counted
  in ``missing``), never a crash. Truth (``truth``): ``human:ROOT`` -- PRD's human labels
  (``ROOT/ratings-human``: every one of the 10 model pairs of every question has 1-3 human
  three-class labels); a candidate's quality is its summed share of human votes against the
  other candidates (a tie counts half), so the truly best is the human Borda winner (co-winners
  all count as correct). ``consensus`` -- the same score from the OTHER reviewers' files in the
  folder (leave-one-out, both orders). ``self`` -- from the replayed file itself (what the
  reviewer says given every comparison). ``scores`` -- the items' ``scores``.

Speed. Trials run in chunks in forked worker processes (``workers``); in each, one scheduler
per cell ranks the chunk's items concurrently on one event loop, with an instant judge (the
simulated judge draws its latencies without sleeping). Results are deterministic for a seed,
whatever ``workers``. Most of the time is the strategies' own work and the engine's per-request
bookkeeping.

Everything here returns data (:class:`Report`, plain dicts); :func:`format_table` renders it and
:func:`tourney.plotting.plot_accuracy` draws accuracy against comparisons (``Report.to_json()``),
one curve per strategy and round limit.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from .errors import InputError, SpecError
from .hashing import content_hash, prompt_text
from .items import Item, parse_item
from .judges.base import Judge, build_judge
from .scheduler import Scheduler
from .strategy import Strategy, StrategyFactory, build_strategy
from .types import MatchResult, Outcome, PromptResult, Ranking, Request

__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_STRATEGIES",
    "ReplayBench",
    "Report",
    "Row",
    "RunResult",
    "SimulatedBench",
    "Trial",
    "accuracy_ci",
    "default_workers",
    "format_table",
    "kendall_tau_b",
    "parse_budgets",
    "parse_rounds",
    "parse_strategies",
    "prd_human_quality",
    "run_strategy",
    "simulate",
]

#: the strategies compared in the README: knockout (one order, both orders), knockout + voting@5,
#: round-robin Elo (RRM's), round-robin Bradley-Terry (both orders), Swiss, merge sort, the
#: published few-round selection methods (pivot, league, V1's Swiss), adaptive
DEFAULT_STRATEGIES = (
    "knockout",
    "knockout:both_orders=true",
    "voting",
    "elo",
    "bradley_terry",
    "swiss",
    "merge_sort",
    "pivot",
    "league",
    "v1_swiss",
    "adaptive",
)
DEFAULT_BUDGETS: tuple[int, ...] = (15, 30, 60, 120, 240)
#: z of a two-sided 95% interval
_Z95 = NormalDist().inv_cdf(0.975)
#: a run that asks for more requests than this is reported as not terminating
_MAX_REQUESTS = 1_000_000
#: characters of filler per simulated candidate (about 400 tokens at 4 characters a token)
_RESPONSE_CHARS = 1600


# ----------------------------------------------------------------------------- parsing


def parse_strategies(text: str | Sequence[str]) -> list[str]:
    """``"knockout:votes=3,both_orders=true,adaptive"`` -> ``["knockout:votes=3,both_orders=true",
    "adaptive"]``: a comma-separated list of strategy specs, where a ``key=value`` piece belongs
    to the spec before it. ``;`` also separates specs. A sequence is taken as parsed."""
    if not isinstance(text, str):
        return [str(t).strip() for t in text if str(t).strip()]
    out: list[str] = []
    for chunk in text.split(";"):
        for piece in chunk.split(","):
            piece = piece.strip()
            if not piece:
                continue
            if "=" in piece and ":" not in piece and out and ":" in out[-1]:
                out[-1] += "," + piece
            else:
                out.append(piece)
    if not out:
        raise SpecError("no strategy given")
    return out


def _parse_limits(text: str | Sequence[int | str | None], what: str, minimum: int) -> list[int | None]:
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[int | None] = []
    for it in items:
        if it is None:
            out.append(None)
            continue
        s = str(it).strip().lower()
        if not s:
            continue
        if s in ("full", "none", "inf", "unlimited"):
            out.append(None)
            continue
        try:
            v = int(s)
        except ValueError:
            raise SpecError(f"a {what} must be a whole number or 'full', got {it!r}") from None
        if v < minimum:
            raise SpecError(f"a {what} must be >= {minimum} (or 'full' for no limit), got {v}")
        out.append(v)
    if not out:
        raise SpecError(f"no {what} given")
    return out


def parse_budgets(text: str | Sequence[int | str | None]) -> list[int | None]:
    """``"15,30,full"`` -> ``[15, 30, None]`` (``full``, ``none`` or ``inf``: no cap)."""
    return _parse_limits(text, "budget", 0)


def parse_rounds(text: str | Sequence[int | str | None]) -> list[int | None]:
    """``"4,6,full"`` -> ``[4, 6, None]``: round limits, each >= 1 (``full``: no limit)."""
    return _parse_limits(text, "round limit", 1)


# ----------------------------------------------------------------------------- benches


@dataclass
class Trial:
    """One tournament with a known truth: ``item`` is ranked by the scheduler (seed ``seed``)
    with ``judge``; ``quality`` is the truth (higher is better, per candidate of the item);
    ``cluster`` groups trials that share a question (for the interval); ``latency_unit`` is the
    judge's median latency in seconds (None: no latency model, makespan n/a); ``replay``: the
    judge's errors are records the replay lacks (counted as ``missing``)."""

    index: int
    cluster: str
    item: Item
    quality: np.ndarray
    judge: Judge
    seed: int
    latency_unit: float | None = None
    replay: bool = False

    @property
    def n(self) -> int:
        return self.item.n


class SimulatedBench:
    """Trials of ``n`` candidates with latent qualities ``N(0, spread)`` judged by the simulated
    judge (``judge`` is a ``simulated[:options]`` spec, ``options`` more of them; its ``seed`` is
    the bench's ``seed``; ``latency_median_s`` defaults to 1, the unit of makespan, and is never
    slept)."""

    kind = "simulated"

    def __init__(
        self,
        n: int = 16,
        trials: int = 1000,
        seed: int = 0,
        judge: str = "simulated",
        options: Mapping[str, Any] | None = None,
    ):
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise SpecError(f"n must be a positive integer, got {n!r}")
        if isinstance(trials, bool) or int(trials) != trials or trials < 1:
            raise SpecError(f"trials must be a positive integer, got {trials!r}")
        self.n, self.trials, self.seed = int(n), int(trials), int(seed)
        opts = dict(options or {})
        opts["seed"] = self.seed
        opts.setdefault("latency_median_s", 1.0)
        self.judge = build_judge(judge, opts)
        if self.judge.spec.name != "simulated":
            raise SpecError(f"SimulatedBench needs a simulated judge, got {self.judge.spec.name!r}")
        self.judge.sleep = False  # type: ignore[attr-defined]  # latency-free: drawn, recorded, not slept
        self.spread = float(self.judge.spread)  # type: ignore[attr-defined]
        median = float(self.judge.latency_median_s)  # type: ignore[attr-defined]
        self.latency_unit = median if median > 0 else None

    def describe(self) -> dict[str, Any]:
        j = self.judge.identity()["options"]
        j.pop("seed", None)
        return {
            "kind": "simulated",
            "n": self.n,
            "trials": self.trials,
            "seed": self.seed,
            "judge": j,
            "truth": "latent qualities N(0, spread)",
            "makespan_unit_s": self.latency_unit,
        }

    def __len__(self) -> int:
        return self.trials

    def trial(self, t: int) -> Trial:
        n = self.n
        rng = np.random.default_rng([self.seed, t, 7])
        q = self.spread * rng.standard_normal(n)
        prompt = f"tourney simulate, seed {self.seed}, trial {t}: which candidate is best?"
        responses = tuple(
            _filler(f"trial {t} candidate {i} ({content_hash(f'{self.seed}|{t}|{i}', 8)})") for i in range(n)
        )
        item = Item(t, str(t), prompt, responses, tuple(float(x) for x in q))
        return Trial(t, str(t), item, q, self.judge, self.seed, self.latency_unit)


def _filler(head: str) -> str:
    """A candidate text of :data:`_RESPONSE_CHARS` characters starting with ``head``."""
    body = " lorem ipsum dolor sit amet" * (_RESPONSE_CHARS // 27 + 1)
    return (head + body)[:_RESPONSE_CHARS]


def prd_human_quality(root: str | Path, models: Sequence[str] | None = None) -> dict[int, dict[str, float]]:
    """PRD Vicuna-80 human labels -> ``{question_id: {model: quality}}``.

    ``ROOT/ratings-human/answer_<a>-vs-answer_<b>-human-reviewer*.jsonl`` hold up to 3 human
    three-class labels per pair (score 1: ``a`` better, 2: ``b`` better, 3: tie). A model's quality
    on a question is the sum, over the other models it was labelled against (only ``models``
    when given: the candidates of a tournament), of its share of the human votes for that pair
    (both file orders pooled; a tie counts half): a Borda score in ``[0, number of others]``.
    """
    import re

    folder = Path(root) / "ratings-human"
    if not folder.is_dir():
        raise InputError(f"{root} has no ratings-human folder (the PRD vicuna80 release)")
    keep = set(models) if models is not None else None
    pat = re.compile(r"^answer[_-](?P<a>.+?)-vs-answer[_-](?P<b>.+?)-human-reviewer")
    share: dict[int, dict[tuple[str, str], list[float]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        m = pat.match(path.name)
        if not m:
            continue
        a, b = m.group("a"), m.group("b")
        if keep is not None and not (a in keep and b in keep):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            y = {1: 1.0, 2: 0.0, 3: 0.5}.get(r.get("score"))
            if y is None:
                continue
            lo, hi = sorted((a, b))
            cell = share.setdefault(int(r["question_id"]), {}).setdefault((lo, hi), [0.0, 0.0])
            cell[0] += y if a == lo else 1.0 - y  # lo's votes
            cell[1] += 1.0
    out: dict[int, dict[str, float]] = {}
    for qid, pairs in share.items():
        qual: dict[str, float] = {}
        for (lo, hi), (won, total) in pairs.items():
            qual[lo] = qual.get(lo, 0.0) + won / total
            qual[hi] = qual.get(hi, 0.0) + (total - won) / total
        out[qid] = qual
    return out


def _share_quality(
    records: Iterable[Mapping[tuple[str, str, str], list[Outcome]]], pkey: str, texts: Sequence[str]
) -> np.ndarray:
    """Borda score of vote shares over every recorded verdict between the candidates."""
    n = len(texts)
    won = np.zeros((n, n))
    tot = np.zeros((n, n))
    for recs in records:
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                for o in recs.get((pkey, texts[i], texts[j]), ()):
                    y = {Outcome.A: 1.0, Outcome.B: 0.0, Outcome.TIE: 0.5}.get(o)
                    if y is None:
                        continue
                    won[i, j] += y
                    won[j, i] += 1.0 - y
                    tot[i, j] += 1.0
                    tot[j, i] += 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 0, won / np.where(tot > 0, tot, 1.0), 0.0)
    return share.sum(axis=1)


class ReplayBench:
    """Trials over the questions of a replay file, answered by the replay judge (see the module
    docstring for ``truth``)."""

    kind = "replay"

    def __init__(
        self,
        path: str | Path,
        trials: int = 1000,
        seed: int = 0,
        truth: str = "consensus",
        prompts: str | Path | None = None,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"replay file {self.path} does not exist")
        if isinstance(trials, bool) or int(trials) != trials or trials < 1:
            raise SpecError(f"trials must be a positive integer, got {trials!r}")
        self.trials, self.seed = int(trials), int(seed)
        ppath = Path(prompts) if prompts else self.path.parent / "prompts.jsonl"
        if not ppath.is_file():
            raise InputError(f"no candidates for the replay: {ppath} does not exist (pass prompts=...)")
        raw = [json.loads(x) for x in ppath.read_text(encoding="utf-8").splitlines() if x.strip()]
        self.items = [it for it in raw if len(it.get("responses", [])) >= 2]
        if not self.items:
            raise InputError(f"{ppath} has no item with at least two responses")
        self._parsed = [
            parse_item({k: it[k] for k in ("id", "prompt", "responses") if k in it}, k)
            for k, it in enumerate(self.items)
        ]
        self.judge = build_judge(f"replay:{self.path}")  # validates the records
        self.records = self.judge.records  # type: ignore[attr-defined]
        self.latency_unit = None
        self.truth_spec = truth
        self.truth_used, self.qualities = self._truth(truth)

    @property
    def n(self) -> int:
        """The largest number of candidates of a question."""
        return max(len(it["responses"]) for it in self.items)

    def _truth(self, truth: str) -> tuple[str, list[np.ndarray]]:
        kind, _, arg = truth.partition(":")
        if kind == "human":
            if not arg:
                raise SpecError("truth human needs the PRD vicuna80 folder: human:ROOT")
            models_all = sorted({m for it in self.items for m in it.get("models", [])})
            labels = prd_human_quality(arg, models_all)
            out = []
            for it in self.items:
                try:
                    qid = int(str(it.get("id", "")).rsplit("-", 1)[-1])
                except ValueError:
                    qid = -1
                models = it.get("models")
                if not models or qid not in labels:
                    raise InputError(f"item {it.get('id')}: no human labels (needs PRD ids and 'models')")
                out.append(np.array([labels[qid].get(m, math.nan) for m in models], dtype=float))
            return f"human labels ({arg})", out
        if kind == "scores":
            if any("scores" not in it for it in self.items):
                raise InputError("truth scores: every item needs 'scores'")
            return "the items' scores", [np.asarray(it["scores"], dtype=float) for it in self.items]
        if kind not in ("consensus", "self"):
            raise SpecError(f"unknown truth {truth!r}; known: human:ROOT, consensus, self, scores")
        sources = [self.records]
        used = f"self ({self.path.name})"
        if kind == "consensus":
            others = sorted(p for p in self.path.parent.glob("replay-*.jsonl") if p.resolve() != self.path.resolve())
            if others:
                sources = [build_judge(f"replay:{p}").records for p in others]  # type: ignore[attr-defined]
                used = "consensus of " + ", ".join(p.name for p in others)
        return used, [_share_quality(sources, prompt_text(it["prompt"]), it["responses"]) for it in self.items]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "replay",
            "file": str(self.path),
            "questions": len(self.items),
            "trials": self.trials,
            "seed": self.seed,
            "truth": self.truth_used,
            "n": sorted({len(it["responses"]) for it in self.items}),
        }

    def __len__(self) -> int:
        return self.trials

    def trial(self, t: int) -> Trial:
        q = len(self.items)
        base = self._parsed[t % q]
        rep = t // q
        # run 0 is the item itself: the scheduler seeds its strategy exactly as `tourney rank
        # --seed S` does, so a replayed trial reproduces a real run match for match
        iid = base.id if rep == 0 else f"{base.id}#{rep}"
        item = Item(t, iid, base.prompt, base.responses, None)
        return Trial(t, base.id, item, self.qualities[t % q], self.judge, self.seed, None, replay=True)


# ----------------------------------------------------------------------------- the driver


def kendall_tau_b(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b between two score vectors (ties in either allowed); NaN when undefined."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = a.shape[0]
    if n < 2:
        return math.nan
    iu = np.triu_indices(n, 1)
    da = np.sign(a[:, None] - a[None, :])[iu]
    db = np.sign(b[:, None] - b[None, :])[iu]
    denom = math.sqrt(float(np.count_nonzero(da)) * float(np.count_nonzero(db)))
    return float((da * db).sum() / denom) if denom else math.nan


@dataclass
class RunResult:
    """What one strategy run produced (one trial, one cell)."""

    correct: float = math.nan
    regret: float = math.nan
    tau: float = math.nan
    comparisons: int = 0
    tokens: int = 0
    rounds: int = 0
    makespan: float = math.nan
    cpu_s: float = 0.0
    budget_limited: bool = False
    missing: int = 0
    p_best: float = math.nan
    na: str | None = None
    error: str | None = None


class _Clock:
    """A strategy that times the one it wraps (CPU seconds in ``cpu``)."""

    __slots__ = ("cpu", "inner")

    def __init__(self, inner: Strategy):
        self.inner = inner
        self.cpu = 0.0

    def propose(self) -> list[Request]:
        t = time.process_time()
        try:
            return self.inner.propose()
        finally:
            self.cpu += time.process_time() - t

    def observe(self, result: MatchResult) -> None:
        t = time.process_time()
        try:
            self.inner.observe(result)
        finally:
            self.cpu += time.process_time() - t

    @property
    def done(self) -> bool:
        t = time.process_time()
        try:
            return self.inner.done
        finally:
            self.cpu += time.process_time() - t

    def ranking(self) -> Ranking:
        t = time.process_time()
        try:
            return self.inner.ranking()
        finally:
            self.cpu += time.process_time() - t


@dataclass(frozen=True)
class _TimedFactory(StrategyFactory):
    """A factory whose strategies are timed; ``clocks`` lists their clocks in creation order (the
    scheduler starts prompts in input order; None for a strategy that failed to start)."""

    clocks: list = field(default_factory=list, compare=False, hash=False)

    def create(self, n: int, rng: np.random.Generator, keys: Sequence[str] | None = None) -> Strategy:
        self.clocks.append(None)
        clock = _Clock(super().create(n, rng, keys))
        self.clocks[-1] = clock
        return clock  # type: ignore[return-value]  # duck-typed: the scheduler uses the protocol only


def _for_cell(factory: StrategyFactory, budget: int | None, rounds: int | None) -> _TimedFactory:
    """The factory given the cell's budget / round limit when it can plan with them."""
    opts = dict(factory.spec.options)
    params = factory.cls.param_names()
    if budget is not None and "budget" in params and "budget" not in opts:
        opts["budget"] = budget
    if rounds is not None and "rounds" in params and "rounds" not in opts:
        opts["rounds"] = rounds
    built = factory if opts == dict(factory.spec.options) else build_strategy(factory.spec.name, opts)
    return _TimedFactory(built.cls, built.spec)


def _check_runnable(
    factory: StrategyFactory, trial: Trial, budget: int | None, rounds: int | None, refused: dict[int, str | None]
) -> str | None:
    """Why the cell cannot be filled for this trial (None: it can). ``refused`` caches, per
    number of candidates, whether the strategy refuses the cell's round limit or budget."""
    n = trial.n
    if budget is not None and n >= 2 and budget < n - 1:
        return f"budget {budget} < n - 1 = {n - 1}"
    if n not in refused:
        try:  # a strategy that cannot plan within the cell says so when it is created
            factory.create(n, np.random.default_rng(0), None)
            refused[n] = None
        except ValueError as exc:
            refused[n] = f"refused: {exc}"
    return refused[n]


async def _rank(
    trials: Sequence[Trial], factory: _TimedFactory, budget: int | None, rounds: int | None, resample_abstentions: int
) -> list[PromptResult]:
    t0 = trials[0]
    sched = Scheduler(
        t0.judge,
        factory,
        seed=t0.seed,
        concurrency=8,
        retries=3,
        backoff_s=0.0,
        max_backoff_s=0.0,
        resample_abstentions=resample_abstentions,
        max_comparisons=_MAX_REQUESTS,
        max_samples=budget if budget else None,
        max_rounds=rounds,
    )
    return await sched.rank([t.item for t in trials])


def _measure(res: PromptResult, trial: Trial, budget: int | None, cpu: float) -> RunResult:
    if res.status == "failed":
        return RunResult(error="; ".join(res.messages))
    n = trial.n
    if n >= 2 and budget is not None and res.samples == 0:
        return RunResult(na="its first request needs more than the budget")
    if res.comparisons >= _MAX_REQUESTS:
        return RunResult(error=f"strategy did not finish within {_MAX_REQUESTS} requests")
    q = trial.quality
    qmax = float(np.nanmax(q))
    pick = int(res.best) if res.best is not None else 0
    pos = np.empty(n)
    pos[list(res.ranking)] = np.arange(n, 0, -1)
    p_best = res.info.get("p_best") if isinstance(res.info, Mapping) else None
    unit = trial.latency_unit
    return RunResult(
        correct=float(q[pick] >= qmax - 1e-12),
        regret=qmax - float(q[pick]),
        tau=kendall_tau_b(pos, q),
        comparisons=res.samples,
        tokens=res.tokens.prompt + res.tokens.completion,
        rounds=res.rounds,
        makespan=res.critical_path_s / unit if unit else math.nan,
        cpu_s=cpu,
        budget_limited=bool(res.budget_limited),
        missing=res.errors if trial.replay else 0,
        p_best=float(p_best) if isinstance(p_best, (int, float)) else math.nan,
    )


def _run_cell(
    factory: StrategyFactory,
    trials: Sequence[Trial],
    budget: int | None,
    rounds: int | None,
    resample_abstentions: int,
    loop: asyncio.AbstractEventLoop | None = None,
) -> list[tuple[PromptResult | None, RunResult]]:
    """Rank ``trials`` (one judge and seed) with one scheduler in one cell."""
    out: list[tuple[PromptResult | None, RunResult] | None] = [None] * len(trials)
    runnable = []
    timed = _for_cell(factory, budget, rounds)
    refused: dict[int, str | None] = {}
    for k, t in enumerate(trials):
        why = _check_runnable(timed, t, budget, rounds, refused)
        if why is None:
            runnable.append(k)
        else:
            out[k] = (None, RunResult(na=why))
    timed.clocks.clear()
    if runnable:
        subset = [trials[k] for k in runnable]
        coro = _rank(subset, timed, budget, rounds, resample_abstentions)
        results = loop.run_until_complete(coro) if loop is not None else asyncio.run(coro)
        clocks = timed.clocks if len(timed.clocks) == len(subset) else [None] * len(subset)
        for k, t, res, clock in zip(runnable, subset, results, clocks):
            out[k] = (res, _measure(res, t, budget, clock.cpu if clock is not None else 0.0))
    return [o for o in out if o is not None]


def run_strategy(
    factory: StrategyFactory | str,
    trial: Trial,
    budget: int | None = None,
    resample_abstentions: int = 2,
    max_rounds: int | None = None,
) -> tuple[PromptResult | None, RunResult]:
    """Rank one trial with one strategy under ``budget`` judge samples and ``max_rounds``
    sequential rounds, through the scheduler; return its result (None when the cell is n/a) and
    the measurements (see the module docstring)."""
    f = build_strategy(factory) if isinstance(factory, str) else factory
    ((res, out),) = _run_cell(f, [trial], budget, max_rounds, resample_abstentions)
    return res, out


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Row:
    """One (strategy, budget, round limit) cell; ``na`` says why a cell has no numbers."""

    strategy: str
    budget: int | None
    max_rounds: int | None
    trials: int
    top1: float | None
    ci95: tuple[float, float] | None
    regret: float | None
    tau: float | None
    comparisons: float | None
    tokens: float | None
    rounds: float | None
    makespan: float | None
    cpu_ms: float | None
    budget_limited: float | None
    p_best: float | None
    missing: float | None
    na: str | None = None
    failed: int = 0
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ci95"] = list(self.ci95) if self.ci95 is not None else None
        return d


@dataclass
class Report:
    """The harness's result: settings, one row per (strategy, budget, round limit), runtime."""

    bench: dict[str, Any]
    strategies: list[str]
    budgets: list[int | None]
    rounds: list[int | None]
    rows: list[Row]
    runtime_s: float
    workers: int

    def row(self, strategy: str, budget: int | None, max_rounds: int | None = None) -> Row:
        for r in self.rows:
            if r.strategy == strategy and r.budget == budget and r.max_rounds == max_rounds:
                return r
        raise KeyError((strategy, budget, max_rounds))

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "strategies": self.strategies,
            "budgets": self.budgets,
            "max_rounds": self.rounds,
            "rows": [r.to_json() for r in self.rows],
            "runtime_s": round(self.runtime_s, 3),
            "workers": self.workers,
        }


def _wilson(k: float, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_ci(correct: Sequence[float], clusters: Sequence[str]) -> tuple[float, float]:
    """95% interval of a mean of 0/1 outcomes: Wilson when every trial is its own cluster, else
    a cluster-robust normal interval (trials of one question are not independent)."""
    y = np.asarray(correct, dtype=float)
    n = y.shape[0]
    if n == 0:
        return (math.nan, math.nan)
    cl = list(clusters)
    uniq = sorted(set(cl))
    if len(uniq) == n:
        return _wilson(float(y.sum()), n)
    p = float(y.mean())
    idx = {c: k for k, c in enumerate(uniq)}
    code = np.array([idx[c] for c in cl])
    s = np.bincount(code, y, len(uniq))
    m = np.bincount(code, None, len(uniq))
    c = len(uniq)
    if c < 2:
        return (math.nan, math.nan)
    var = c / (c - 1) * float(((s - p * m) ** 2).sum()) / (n * n)
    half = _Z95 * math.sqrt(var)
    return (max(0.0, p - half), min(1.0, p + half))


def _mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def _aggregate(
    strategy: str, budget: int | None, rounds: int | None, runs: list[RunResult], clusters: list[str]
) -> Row:
    ok = [(r, c) for r, c in zip(runs, clusters) if r.na is None and r.error is None]
    failed = [r for r in runs if r.error is not None]
    na = [r for r in runs if r.na is not None]
    if not ok:
        reason = na[0].na if na else (failed[0].error if failed else "no trials")
        return Row(
            strategy,
            budget,
            rounds,
            0,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            na=reason,
            failed=len(failed),
            failure=failed[0].error if failed else None,
        )
    rr = [r for r, _ in ok]
    correct = [r.correct for r in rr]
    pb = [r.p_best for r in rr if not math.isnan(r.p_best)]
    return Row(
        strategy=strategy,
        budget=budget,
        max_rounds=rounds,
        trials=len(rr),
        top1=float(np.mean(correct)),
        ci95=accuracy_ci(correct, [c for _, c in ok]),
        regret=float(np.mean([r.regret for r in rr])),
        tau=_mean([r.tau for r in rr]),
        comparisons=float(np.mean([r.comparisons for r in rr])),
        tokens=float(np.mean([r.tokens for r in rr])),
        rounds=float(np.mean([r.rounds for r in rr])),
        makespan=_mean([r.makespan for r in rr]),
        cpu_ms=1e3 * float(np.mean([r.cpu_s for r in rr])),
        budget_limited=float(np.mean([r.budget_limited for r in rr])),
        p_best=float(np.mean(pb)) if len(pb) == len(rr) else None,
        missing=float(np.mean([r.missing for r in rr])),
        na=(f"{len(na)} trials n/a: {na[0].na}" if na else None),
        failed=len(failed),
        failure=failed[0].error if failed else None,
    )


# ----------------------------------------------------------------------------- running

_WORK: tuple[Any, list[StrategyFactory], list[tuple[int | None, int | None]], int] | None = None


def _run_trials(indices: Sequence[int]) -> list[tuple[str, list[list[RunResult]]]]:
    """Every cell of every strategy on the trials ``indices`` (in a worker process)."""
    assert _WORK is not None
    bench, factories, cells, resample = _WORK
    trials = [bench.trial(t) for t in indices]
    per: list[list[list[RunResult]]] = [[[] for _ in factories] for _ in trials]
    loop = asyncio.new_event_loop()
    try:
        for s_i, f in enumerate(factories):
            for budget, rounds in cells:
                for k, (_, out) in enumerate(_run_cell(f, trials, budget, rounds, resample, loop)):
                    per[k][s_i].append(out)
    finally:
        loop.close()
    return [(t.cluster, per[k]) for k, t in enumerate(trials)]


def simulate(
    strategies: Sequence[str] | str,
    bench: SimulatedBench | ReplayBench,
    budgets: Sequence[int | None] | str = DEFAULT_BUDGETS,
    *,
    rounds: Sequence[int | None] | str = (None,),
    workers: int = 1,
    resample_abstentions: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Run every strategy in every cell (budget x round limit) on every trial of ``bench``;
    return a :class:`Report`.

    Strategy specs are validated before any work (an unknown name raises
    :class:`~tourney.errors.SpecError` listing the known ones). ``workers > 1`` runs trials in
    that many forked processes; the result is the same for any ``workers``.
    """
    global _WORK
    specs = parse_strategies(strategies)
    budget_list = parse_budgets(budgets) if isinstance(budgets, str) else parse_budgets(list(budgets))
    round_list = parse_rounds(rounds) if isinstance(rounds, str) else parse_rounds(list(rounds))
    factories = [build_strategy(s) for s in specs]
    cells = [(b, r) for r in round_list for b in budget_list]
    t0 = time.perf_counter()
    n_trials = len(bench)
    _WORK = (bench, factories, cells, int(resample_abstentions))
    results: list[tuple[str, list[list[RunResult]]]] = []
    chunk = max(1, min(50, n_trials // (4 * max(workers, 1)) or 1))
    chunks = [list(range(i, min(i + chunk, n_trials))) for i in range(0, n_trials, chunk)]
    ctx = None
    if workers > 1 and len(chunks) > 1:
        import multiprocessing as mp

        try:  # workers inherit the bench by forking (no pickling of judges and data)
            ctx = mp.get_context("fork")
        except ValueError:  # no fork on this platform: run in this process
            ctx = None
    try:
        if ctx is not None:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                for part in ex.map(_run_trials, chunks):
                    results.extend(part)
                    if progress is not None:
                        progress(len(results), n_trials)
        else:
            for c in chunks:
                results.extend(_run_trials(c))
                if progress is not None:
                    progress(len(results), n_trials)
    finally:
        _WORK = None
    clusters = [c for c, _ in results]
    rows = []
    for c_i, (b, r) in enumerate(cells):
        for s_i, spec in enumerate(specs):
            rows.append(_aggregate(spec, b, r, [res[s_i][c_i] for _, res in results], clusters))
    used = workers if ctx is not None else 1
    return Report(bench.describe(), specs, budget_list, round_list, rows, time.perf_counter() - t0, used)


# ----------------------------------------------------------------------------- output


def _f(v: float | None, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_table(report: Report) -> str:
    """One table per cell (Markdown, so it pastes into a README)."""
    b = report.bench
    if b["kind"] == "simulated":
        j = b["judge"]
        head = (
            f"simulated judge (N={b['n']}, {b['trials']} trials, seed {b['seed']}; {j['model']}, "
            f"spread {j['spread']:g}, noise {j['noise']:g}, position bias {j['position_bias']:g}, "
            f"abstain {j['abstain_rate']:g}, tie {j['tie_rate']:g}, latency sigma {j['latency_sigma']:g}); "
            f"truth: {b['truth']}; makespan in units of the median judge latency"
        )
    else:
        head = (
            f"replay {Path(b['file']).name} ({b['questions']} questions, N={','.join(map(str, b['n']))}, "
            f"{b['trials']} trials, seed {b['seed']}); truth: {b['truth']}"
        )
    lines = [head, ""]
    width = max(len("strategy"), *(len(s) for s in report.strategies))
    for rounds in report.rounds:
        for budget in report.budgets:
            lines.append(
                f"budget {budget if budget is not None else 'full'} comparisons, "
                f"{'unlimited rounds' if rounds is None else f'at most {rounds} rounds'}"
            )
            lines.append("")
            lines.append(
                f"| {'strategy':<{width}} | top-1 | 95% CI | regret | tau | comparisons | tokens (k) "
                f"| rounds | makespan | cpu ms | budget-limited | p_best | notes |"
            )
            lines.append(f"|{'-' * (width + 2)}|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            for r in report.rows:
                if r.budget != budget or r.max_rounds != rounds:
                    continue
                notes = []
                if r.missing:
                    notes.append(f"{r.missing:.1f} missing/trial")
                if r.failed:
                    notes.append(f"{r.failed} failed: {r.failure}")
                if r.top1 is None:
                    notes.insert(0, r.na or "n/a")
                    lines.append(f"| {r.strategy:<{width}} | n/a | | | | | | | | | | | {'; '.join(notes)} |")
                    continue
                if r.na:
                    notes.append(r.na)
                ci = f"[{r.ci95[0]:.3f}, {r.ci95[1]:.3f}]" if r.ci95 else ""
                lines.append(
                    f"| {r.strategy:<{width}} | {r.top1:.3f} | {ci} | {_f(r.regret, '.3f')} | {_f(r.tau, '.3f')} "
                    f"| {_f(r.comparisons, '.1f')} | {_f(None if r.tokens is None else r.tokens / 1000, '.1f')} "
                    f"| {_f(r.rounds, '.1f')} | {_f(r.makespan, '.1f')} | {_f(r.cpu_ms, '.2f')} "
                    f"| {_f(None if r.budget_limited is None else 100 * r.budget_limited, '.0f')}% "
                    f"| {_f(r.p_best, '.3f')} | {'; '.join(notes)} |"
                )
            lines.append("")
    lines.append(f"({report.runtime_s:.1f} s, {report.workers} worker(s))")
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
