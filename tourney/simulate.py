"""Strategy-comparison harness: which strategy picks the best response for the least judge compute?

Runs any set of strategies, under each of several comparison budgets, over many seeded trials,
against a judge whose truth is known, and measures per (strategy, budget):

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
``budget_limited``
    fraction of trials that ended because the budget ran out (a fixed design cut short, or an
    adaptive strategy that stopped on its budget before reaching its confidence threshold).
    ``p_best``: mean of the strategy's own reported probability that its pick is best
    (``info["p_best"]``, where it reports one), to compare with ``top1`` (calibration).
    ``missing``: mean samples per trial that a replay set had no record for (they reach the
    strategy as errors, never as votes).

Budgets. A budget is a number of judge samples per prompt; ``None`` ("full") is no cap. Every
strategy runs under every budget with the engine's budget semantics: requests are dispatched in
the order the strategy proposes them while they fit in the budget, the results of everything
dispatched are delivered, and the strategy's ranking so far is its answer (budget-limited
accuracy, reported in the ``budget_limited`` column: a fixed design cut short is scored as what
it is). A strategy that can take its budget (it has a ``budget`` option, e.g. ``adaptive``) is
given it, so it can plan. A budget below ``n - 1`` is reported "n/a": fewer comparisons cannot
even connect the candidates, so no strategy can know the best; a strategy whose first request
alone exceeds the budget (e.g. ``knockout:votes=20`` with budget 15) is "n/a" too.

Judges and truth.

* Simulated (:class:`SimulatedBench`): per trial, latent qualities ``q ~ N(0, spread)`` drawn
  from the seed; the verdicts follow the simulated judge's own probability model (its
  ``p_first``: Bradley-Terry or Thurstone noise, first-position bias, abstention, tie and error
  rates, its token model), drawn from a hash of (seed, trial, ordered pair, sample index): common
  random numbers, so two strategies that ask for the same match in one trial get the same verdict
  and their difference is measured with less noise. Truth: the latent qualities.
* Replay (:class:`ReplayBench`): recorded verdicts (the replay format; e.g. ``tourney
  convert-prd``'s ``replay-<reviewer>.jsonl``) over the candidates of ``prompts.jsonl`` beside
  it; trial ``t`` is question ``t mod Q``, run ``t div Q`` (run 0 seeds the strategy exactly as
  ``tourney rank --seed S`` does, so it reproduces a real run match for match). A match or sample
  without a record is an error judgement (counted in ``missing``), never a crash. Truth
  (``truth``): ``human:ROOT`` -- PRD's human labels (``ROOT/ratings-human``: every one of the 10
  model pairs of every question has 1-3 human three-class labels); a candidate's quality is its
  summed share of human votes against the other candidates (a tie counts half), so the truly best
  is the human Borda winner (co-winners all count as correct). ``consensus`` -- the same score
  from the OTHER reviewers' files in the folder (leave-one-out, both orders). ``self`` -- from
  the replayed file itself (what the reviewer says given every comparison). ``scores`` -- the
  items' ``scores``.

The driver is a synchronous in-process stand-in for the scheduler: requests dispatched in
proposal order, FIFO delivery, abstentions re-sampled up to ``resample_abstentions`` times with
the scheduler's sample indices. On a deterministic judge it reproduces ``tourney rank
--max-comparisons`` exactly (tested). It is used rather than the scheduler because its budget
counts judge samples (the scheduler's ``max_comparisons`` counts requests, and a voting request
holds several samples), because it draws common random numbers per trial, and because it is
about 2x faster (measured: knockout and Bradley-Terry, N = 16, 200 prompts); most of the time is
the strategies' own work. 1,000 trials x 8 strategies x 6 budgets at N = 16 take about 4 minutes
on 2 cores. Results are deterministic for a seed, whatever ``workers``.

Everything here returns data (:class:`Report`, plain dicts); :func:`format_table` renders it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .errors import InputError, SpecError
from .items import response_key
from .hashing import stable_seed
from .judges.replay import prompt_key
from .scheduler import RESAMPLE_STRIDE
from .strategy import StrategyFactory, build_strategy
from .types import Judgement, MatchResult, Outcome, Ranking, Request

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
    "parse_strategies",
    "prd_human_quality",
    "run_strategy",
    "simulate",
]

#: the strategies compared in the README: knockout (one order, both orders), knockout + voting@5,
#: round-robin Elo (RRM's), round-robin Bradley-Terry (both orders), Swiss, merge sort, adaptive
DEFAULT_STRATEGIES = (
    "knockout",
    "knockout:both_orders=true",
    "voting",
    "elo",
    "bradley_terry",
    "swiss",
    "merge_sort",
    "adaptive",
)
DEFAULT_BUDGETS: tuple[int, ...] = (15, 30, 60, 120, 240)
#: z of a two-sided 95% interval
_Z95 = NormalDist().inv_cdf(0.975)
_NORMAL = NormalDist()


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


def parse_budgets(text: str | Sequence[int | str | None]) -> list[int | None]:
    """``"15,30,full"`` -> ``[15, 30, None]`` (``full``, ``none`` or ``inf``: no cap)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[int | None] = []
    for it in items:
        if it is None:
            out.append(None)
            continue
        s = str(it).strip().lower()
        if not s:
            continue
        if s in ("full", "none", "inf"):
            out.append(None)
            continue
        try:
            v = int(s)
        except ValueError:
            raise SpecError(f"a budget must be a whole number of comparisons or 'full', got {it!r}") from None
        if v < 0:
            raise SpecError(f"a budget must be >= 0, got {v}")
        out.append(v)
    if not out:
        raise SpecError("no budget given")
    return out


# ----------------------------------------------------------------------------- benches


def _uniforms(key: str, k: int) -> list[float]:
    digest = hashlib.blake2b(key.encode(), digest_size=8 * k).digest()
    return [(int.from_bytes(digest[8 * i : 8 * i + 8], "big") + 0.5) / 2.0**64 for i in range(k)]


@dataclass
class Trial:
    """One tournament with a known truth.

    ``judge(first, second, offset, count)`` returns ``count`` judgements of the ordered match
    (sample indices ``offset ..``); ``quality`` is the truth (higher is better); ``cluster``
    groups trials that share a question (for the interval); ``seed`` seeds the strategy.
    """

    index: int
    cluster: str
    n: int
    keys: tuple[str, ...]
    quality: np.ndarray
    seed: int
    judge: Callable[[int, int, int, int], list[Judgement]]
    missing: list[int] = field(default_factory=lambda: [0])


class SimulatedBench:
    """Trials of ``n`` candidates with latent qualities ``N(0, spread)`` judged by the simulated
    judge's probability model (``judge`` is a ``simulated[:options]`` spec; its ``seed`` option
    is ignored: the bench's ``seed`` draws everything). ``prompt_tokens`` is charged per sample
    (a prompt with two responses of about 400 tokens each)."""

    kind = "simulated"

    def __init__(
        self,
        n: int = 16,
        trials: int = 1000,
        seed: int = 0,
        judge: str = "simulated",
        options: Mapping[str, Any] | None = None,
        prompt_tokens: int = 1000,
    ):
        from .judges.base import build_judge

        if int(n) != n or n < 1:
            raise SpecError(f"n must be a positive integer, got {n!r}")
        if int(trials) != trials or trials < 1:
            raise SpecError(f"trials must be a positive integer, got {trials!r}")
        self.n, self.trials, self.seed = int(n), int(trials), int(seed)
        self.judge = build_judge(judge, options)
        if self.judge.spec.name != "simulated":
            raise SpecError(f"SimulatedBench needs a simulated judge, got {self.judge.spec.name!r}")
        self.prompt_tokens = int(prompt_tokens)

    def describe(self) -> dict[str, Any]:
        j = self.judge.identity()["options"]
        j.pop("seed", None)
        for k in ("latency_median_s", "latency_sigma"):
            j.pop(k, None)
        return {"kind": "simulated", "n": self.n, "trials": self.trials, "seed": self.seed, "judge": j,
                "truth": "latent qualities N(0, spread)", "prompt_tokens": self.prompt_tokens}

    def __len__(self) -> int:
        return self.trials

    def trial(self, t: int) -> Trial:
        jd = self.judge
        n = self.n
        rng = np.random.default_rng([self.seed, t, 7])
        q = jd.spread * rng.standard_normal(n)
        keys = tuple(hashlib.blake2b(f"sim|{self.seed}|{t}|{i}".encode(), digest_size=8).hexdigest()
                     for i in range(n))
        p = np.full((n, n), 0.5)
        for f in range(n):
            for s in range(n):
                if f != s:
                    p[f, s] = jd.win_probability(float(q[f]), float(q[s]))
        base = f"{self.seed}|{t}"
        abstain, tie, err = jd.abstain_rate, jd.tie_rate, jd.error_rate
        tok_med, tok_sig, prompt_tokens = jd.tokens_median, jd.tokens_sigma, self.prompt_tokens
        inv = _NORMAL.inv_cdf

        def judge(first: int, second: int, offset: int, count: int) -> list[Judgement]:
            out = []
            pf = p[first, second]
            for s in range(offset, offset + count):
                u_out, u_abs, u_tie, u_err, u_tok = _uniforms(f"{base}|{first}|{second}|{s}", 5)
                tokens = max(1, int(tok_med * math.exp(tok_sig * inv(u_tok))))
                # a failing call is retried 3 times by the scheduler: an error survives all 4
                if err > 0 and u_err < err**4:
                    out.append(Judgement.failed("simulated judge error", sample=s))
                    continue
                if u_abs < abstain:
                    o = Outcome.ABSTAIN
                elif u_tie < tie:
                    o = Outcome.TIE
                else:
                    o = Outcome.A if u_out < pf else Outcome.B
                out.append(Judgement(outcome=o, sample=s, prompt_tokens=prompt_tokens, completion_tokens=tokens))
            return out

        return Trial(t, str(t), n, keys, q, stable_seed(self.seed, "strategy", t), judge)


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


def _replay_records(path: Path) -> dict[tuple[str, str, str], list[Outcome]]:
    from .judges.base import build_judge

    return build_judge(f"replay:{path}").records  # validated by the replay judge itself




def _share_quality(records: Iterable[Mapping[tuple[str, str, str], list[Outcome]]], pkey: str,
                   texts: Sequence[str]) -> np.ndarray:
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
    """Trials over the questions of a replay file (see the module docstring for ``truth``)."""

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
        if int(trials) != trials or trials < 1:
            raise SpecError(f"trials must be a positive integer, got {trials!r}")
        self.trials, self.seed = int(trials), int(seed)
        ppath = Path(prompts) if prompts else self.path.parent / "prompts.jsonl"
        if not ppath.is_file():
            raise InputError(f"no candidates for the replay: {ppath} does not exist (pass prompts=...)")
        self.items = [json.loads(x) for x in ppath.read_text(encoding="utf-8").splitlines() if x.strip()]
        self.items = [it for it in self.items if len(it.get("responses", [])) >= 2]
        if not self.items:
            raise InputError(f"{ppath} has no item with at least two responses")
        self.records = _replay_records(self.path)
        self.truth_spec = truth
        self.truth_used, self.qualities = self._truth(truth)

    def _truth(self, truth: str) -> tuple[str, list[np.ndarray]]:
        kind, _, arg = truth.partition(":")
        if kind == "human":
            if not arg:
                raise SpecError("truth human needs the PRD vicuna80 folder: human:ROOT")
            models_all = sorted({m for it in self.items for m in it.get("models", [])})
            labels = prd_human_quality(arg, models_all)
            out = []
            for it in self.items:
                qid = int(str(it.get("id", "")).rsplit("-", 1)[-1])
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
                sources = [_replay_records(p) for p in others]
                used = "consensus of " + ", ".join(p.name for p in others)
        return used, [_share_quality(sources, prompt_key(it["prompt"]), it["responses"]) for it in self.items]

    def describe(self) -> dict[str, Any]:
        return {"kind": "replay", "file": str(self.path), "questions": len(self.items), "trials": self.trials,
                "seed": self.seed, "truth": self.truth_used,
                "n": sorted({len(it["responses"]) for it in self.items})}

    def __len__(self) -> int:
        return self.trials

    def trial(self, t: int) -> Trial:
        q = len(self.items)
        it = self.items[t % q]
        rep = t // q
        texts = list(it["responses"])
        pkey = prompt_key(it["prompt"])
        recs = self.records
        ptext = len(pkey)
        missing = [0]

        def judge(first: int, second: int, offset: int, count: int) -> list[Judgement]:
            rec = recs.get((pkey, texts[first], texts[second]))
            tokens = 200 + (ptext + len(texts[first]) + len(texts[second])) // 4
            out = []
            for s in range(offset, offset + count):
                if rec is None or s >= len(rec):
                    missing[0] += 1
                    why = "no record of this match" if rec is None else f"only {len(rec)} recorded sample(s)"
                    out.append(Judgement.failed(f"replay: {why}", sample=s))
                else:
                    out.append(Judgement(outcome=rec[s], sample=s, prompt_tokens=tokens))
            return out

        iid = str(it.get("id", t % q))
        # the first pass over the questions seeds each strategy exactly as the scheduler does
        # (tourney rank --seed S), so a replayed trial reproduces a real run match for match
        seed = stable_seed(self.seed, "strategy", iid) if rep == 0 else stable_seed(self.seed, "strategy", iid, rep)
        return Trial(t, iid, len(texts), tuple(response_key(x) for x in texts), self.qualities[t % q],
                     seed, judge, missing)


# ----------------------------------------------------------------------------- the driver


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
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
    """What one strategy run produced (one trial, one budget)."""

    correct: float = math.nan
    regret: float = math.nan
    tau: float = math.nan
    comparisons: int = 0
    tokens: int = 0
    budget_limited: bool = False
    missing: int = 0
    p_best: float = math.nan
    na: str | None = None
    error: str | None = None


#: a run with no budget that asks for more requests than this is reported as not terminating
_MAX_REQUESTS = 1_000_000


def _with_budget(factory: StrategyFactory, budget: int | None) -> StrategyFactory:
    if budget is None or "budget" not in factory.cls.param_names() or "budget" in factory.spec.options:
        return factory
    return build_strategy(factory.spec.name, {**factory.spec.options, "budget": budget})


def run_strategy(
    factory: StrategyFactory, trial: Trial, budget: int | None, resample_abstentions: int = 2
) -> tuple[Ranking | None, RunResult]:
    """Run one strategy on one trial under ``budget`` judge samples; return its ranking and
    the measurements (see the module docstring for the budget semantics)."""
    n = trial.n
    if budget is not None and n >= 2 and budget < n - 1:
        return None, RunResult(na=f"budget {budget} < n - 1 = {n - 1}")
    missing0 = trial.missing[0]
    try:
        strat = _with_budget(factory, budget).create(n, np.random.default_rng(trial.seed), list(trial.keys))
        used = 0
        tokens = 0
        limited = False
        pending: list[Request] = []
        head = 0
        while True:
            if not limited:
                for req in strat.propose():
                    if budget is not None and used + req.samples > budget:
                        limited = True
                        break
                    used += req.samples
                    pending.append(req)
            if head == len(pending):
                if not strat.done and not limited:
                    raise RuntimeError("strategy stalled: not done and proposed nothing")
                break
            req = pending[head]
            head += 1
            if head > _MAX_REQUESTS:
                raise RuntimeError(f"strategy did not finish within {_MAX_REQUESTS} requests")
            js = trial.judge(req.first, req.second, req.sample_offset, req.samples)
            got = list(js)
            for rnd in range(1, resample_abstentions + 1):
                ab = sum(1 for j in js if j.outcome is Outcome.ABSTAIN)
                if budget is not None:
                    ab = min(ab, budget - used)
                if ab <= 0:
                    break
                used += ab
                js = trial.judge(req.first, req.second, RESAMPLE_STRIDE * rnd + req.sample_offset, ab)
                got.extend(js)
            tokens += sum(j.prompt_tokens + j.completion_tokens for j in got)
            strat.observe(MatchResult(req, tuple(got)))
        if n >= 2 and used == 0 and budget is not None:
            return None, RunResult(na="its first request needs more than the budget")
        ranking = strat.ranking()
    except Exception as exc:  # a strategy bug is reported per run, never stops the harness
        return None, RunResult(error=f"{type(exc).__name__}: {exc}")
    q = trial.quality
    qmax = float(np.nanmax(q))
    pick = ranking.best
    pos = np.empty(n)
    pos[list(ranking.order)] = np.arange(n, 0, -1)
    p_best = ranking.info.get("p_best") if isinstance(ranking.info, Mapping) else None
    return ranking, RunResult(
        correct=float(q[pick] >= qmax - 1e-12),
        regret=qmax - float(q[pick]),
        tau=kendall_tau_b(pos, q),
        comparisons=used,
        tokens=tokens,
        budget_limited=limited or bool(ranking.budget_limited),
        missing=trial.missing[0] - missing0,
        p_best=float(p_best) if isinstance(p_best, (int, float)) else math.nan,
    )


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Row:
    """One (strategy, budget) cell of the comparison; ``na`` says why a cell has no numbers."""

    strategy: str
    budget: int | None
    trials: int
    top1: float | None
    ci95: tuple[float, float] | None
    regret: float | None
    tau: float | None
    comparisons: float | None
    tokens: float | None
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
    """The harness's result: settings, one row per (strategy, budget), runtime."""

    bench: dict[str, Any]
    strategies: list[str]
    budgets: list[int | None]
    rows: list[Row]
    runtime_s: float
    workers: int

    def row(self, strategy: str, budget: int | None) -> Row:
        for r in self.rows:
            if r.strategy == strategy and r.budget == budget:
                return r
        raise KeyError((strategy, budget))

    def to_json(self) -> dict[str, Any]:
        return {"bench": self.bench, "strategies": self.strategies, "budgets": self.budgets,
                "rows": [r.to_json() for r in self.rows], "runtime_s": round(self.runtime_s, 3),
                "workers": self.workers}


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


def _aggregate(strategy: str, budget: int | None, runs: list[RunResult], clusters: list[str]) -> Row:
    ok = [(r, c) for r, c in zip(runs, clusters) if r.na is None and r.error is None]
    failed = [r for r in runs if r.error is not None]
    na = [r for r in runs if r.na is not None]
    if not ok:
        reason = na[0].na if na else (failed[0].error if failed else "no trials")
        return Row(strategy, budget, 0, None, None, None, None, None, None, None, None, None,
                   na=reason, failed=len(failed), failure=failed[0].error if failed else None)
    rr = [r for r, _ in ok]
    correct = [r.correct for r in rr]
    pb = [r.p_best for r in rr if not math.isnan(r.p_best)]
    taus = [r.tau for r in rr if not math.isnan(r.tau)]
    return Row(
        strategy=strategy,
        budget=budget,
        trials=len(rr),
        top1=float(np.mean(correct)),
        ci95=accuracy_ci(correct, [c for _, c in ok]),
        regret=float(np.mean([r.regret for r in rr])),
        tau=float(np.mean(taus)) if taus else None,
        comparisons=float(np.mean([r.comparisons for r in rr])),
        tokens=float(np.mean([r.tokens for r in rr])),
        budget_limited=float(np.mean([r.budget_limited for r in rr])),
        p_best=float(np.mean(pb)) if len(pb) == len(rr) else None,
        missing=float(np.mean([r.missing for r in rr])),
        na=(f"{len(na)} trials n/a: {na[0].na}" if na else None),
        failed=len(failed),
        failure=failed[0].error if failed else None,
    )


# ----------------------------------------------------------------------------- running

_WORK: tuple[Any, list[StrategyFactory], list[int | None], int] | None = None


def _run_trials(indices: Sequence[int]) -> list[tuple[str, list[list[RunResult]]]]:
    assert _WORK is not None
    bench, factories, budgets, resample = _WORK
    out = []
    for t in indices:
        trial = bench.trial(t)
        out.append((trial.cluster, [[run_strategy(f, trial, b, resample)[1] for b in budgets] for f in factories]))
    return out


def simulate(
    strategies: Sequence[str] | str,
    bench: SimulatedBench | ReplayBench,
    budgets: Sequence[int | None] | str = DEFAULT_BUDGETS,
    *,
    workers: int = 1,
    resample_abstentions: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Run every strategy under every budget on every trial of ``bench``; return a :class:`Report`.

    Strategy specs are validated before any work (an unknown name raises
    :class:`~tourney.errors.SpecError` listing the known ones). ``workers > 1`` runs trials in
    that many forked processes; the result is the same for any ``workers``.
    """
    global _WORK
    specs = parse_strategies(strategies)
    budget_list = parse_budgets(budgets) if isinstance(budgets, str) else [b for b in budgets]
    factories = [build_strategy(s) for s in specs]
    t0 = time.perf_counter()
    n_trials = len(bench)
    _WORK = (bench, factories, budget_list, int(resample_abstentions))
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
    for b_i, b in enumerate(budget_list):
        for s_i, spec in enumerate(specs):
            rows.append(_aggregate(spec, b, [res[s_i][b_i] for _, res in results], clusters))
    used = workers if ctx is not None else 1
    return Report(bench.describe(), specs, budget_list, rows, time.perf_counter() - t0, used)


# ----------------------------------------------------------------------------- output


def _f(v: float | None, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_table(report: Report) -> str:
    """One table per budget (Markdown, so it pastes into a README)."""
    b = report.bench
    if b["kind"] == "simulated":
        j = b["judge"]
        head = (f"simulated judge (N={b['n']}, {b['trials']} trials, seed {b['seed']}; {j['model']}, "
                f"spread {j['spread']:g}, noise {j['noise']:g}, position bias {j['position_bias']:g}, "
                f"abstain {j['abstain_rate']:g}, tie {j['tie_rate']:g}); truth: {b['truth']}")
    else:
        head = (f"replay {Path(b['file']).name} ({b['questions']} questions, N={','.join(map(str, b['n']))}, "
                f"{b['trials']} trials, seed {b['seed']}); truth: {b['truth']}")
    lines = [head, ""]
    width = max(len("strategy"), *(len(s) for s in report.strategies))
    for budget in report.budgets:
        lines.append(f"budget {budget if budget is not None else 'full'} comparisons")
        lines.append("")
        lines.append(f"| {'strategy':<{width}} | top-1 | 95% CI | regret | tau | comparisons | tokens (k) "
                     f"| budget-limited | p_best | notes |")
        lines.append(f"|{'-' * (width + 2)}|---:|:---:|---:|---:|---:|---:|---:|---:|---|")
        for r in report.rows:
            if r.budget != budget:
                continue
            notes = []
            if r.missing:
                notes.append(f"{r.missing:.1f} missing/trial")
            if r.failed:
                notes.append(f"{r.failed} failed: {r.failure}")
            if r.top1 is None:
                notes.insert(0, r.na or "n/a")
                lines.append(f"| {r.strategy:<{width}} | n/a | | | | | | | | {'; '.join(notes)} |")
                continue
            if r.na:
                notes.append(r.na)
            ci = f"[{r.ci95[0]:.3f}, {r.ci95[1]:.3f}]" if r.ci95 else ""
            lines.append(
                f"| {r.strategy:<{width}} | {r.top1:.3f} | {ci} | {_f(r.regret, '.3f')} | {_f(r.tau, '.3f')} "
                f"| {_f(r.comparisons, '.1f')} | {_f(None if r.tokens is None else r.tokens / 1000, '.1f')} "
                f"| {_f(None if r.budget_limited is None else 100 * r.budget_limited, '.0f')}% "
                f"| {_f(r.p_best, '.3f')} | {'; '.join(notes)} |"
            )
        lines.append("")
    lines.append(f"({report.runtime_s:.1f} s, {report.workers} worker(s))")
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
