"""Run health: is the judge giving usable verdicts, and may the run go on?

:class:`RunHealth` is fed every judge sample of a run as the scheduler accounts it
(:meth:`RunHealth.add`, store answers included) and every prompt's result
(:meth:`RunHealth.add_result`). It keeps counters only (bounded memory whatever the run's
size) and answers:

* the rates, over judge samples: **verdict parse rate** = verdicts (``A``, ``B``, ``tie``) /
  answers (samples that are not errors: the judge answered, the parser read it); **abstention,
  tie and error rates** = each outcome / samples; **failure share** = (abstentions + errors) /
  samples;
* **coin flips**: the strategies' own count of ties they settled with a seeded coin
  (``Ranking.info["coin_flips"]``, knockout and merge sort), and the prompts whose status is
  ``coin_flip`` (:func:`coin_flip_note`);
* the judge's **first-position win rate**: ``A / (A + B)`` over decisive samples (``A`` = the
  first-shown response won), with a 95% Wilson score interval (:func:`wilson_interval`). A judge
  that ignores position has 0.5 whatever its accuracy when the presentation order is random
  (a seeded coin) or balanced (both orders), as every strategy arranges;
* the most frequent **abstention reasons** (``Judgement.extra["reason"]``, as the format parsers
  write them) and **error messages**, grouped (a reason's first clause: ``"ambiguous verdict:
  \\boxed{..}"`` groups under ``"ambiguous verdict"``), cut to :data:`REASON_CHARS` and scrubbed
  of anything that looks like a credential (:func:`scrub`); at most :data:`MAX_REASONS` groups
  are kept, the rest count as ``"(other reasons)"``;
* the **likely cause** of failures (:meth:`RunHealth.diagnosis`): truncation at ``max_tokens``,
  a wrong ``--format`` (outputs that stopped normally without a verdict the format reads),
  authentication (HTTP 401/403), server errors, or the top reason;
* **warnings** (:meth:`RunHealth.warnings`): a strong position bias, with the fix.

Rules that stop a run (checked by the scheduler after each accounted batch,
:meth:`RunHealth.early_stop`; both off unless asked for; ``tourney rank`` turns both on):

* **fail fast** (``fail_fast=K``, ``--fail-fast``, default 16 on the command line): the judge's
  first K answers (samples that are not errors, counted across the run in completion order)
  all abstained: no verdict parses, so nothing the run could buy would be ranked;
* **failure share, early** (``max_failure_rate=F``, ``--max-failure-rate``, default 0.2 on the
  command line): checked each time the run passes a multiple of :data:`CHECK_EVERY` samples
  (50, 100, 150, ...): the run stops when the lower end of the 99.99% Wilson interval of the
  failure share (z = :data:`EARLY_STOP_Z`) is above F, i.e. the judge fails more often than F
  beyond reasonable doubt. With a judge whose true failure share equals F, a 20,000-sample run
  stops early with probability about 0.25% (simulated, 2,000 runs; 0.1% at F = 0.5); a judge
  that fails every time stops at the 50th sample for any F < 0.77.

At the end of a run, a failure share above F (not stopped early) fails the run's health check
(:meth:`RunHealth.problem`): the command line exits 3. Which samples come first depends on
completion order, so whether a run that is close to a threshold stops early can vary between
runs; a run that stops writes no complete output anyway.

This module is pure (no I/O, no clock, no randomness): the scheduler, the runner, the command
line and the Python API only call it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .types import Judgement, MatchResult, Outcome, PromptResult

__all__ = [
    "BIAS_HIGH",
    "BIAS_LOW",
    "CHECK_EVERY",
    "DEFAULT_FAIL_FAST",
    "DEFAULT_MAX_FAILURE_RATE",
    "EARLY_STOP_Z",
    "MAX_REASONS",
    "MIN_BIAS_VOTES",
    "REASON_CHARS",
    "RunHealth",
    "coin_flip_note",
    "reason_key",
    "scrub",
    "wilson_interval",
]

#: the command line's defaults (the scheduler's are off: None)
DEFAULT_MAX_FAILURE_RATE = 0.2
DEFAULT_FAIL_FAST = 16
#: the failure-share early stop is checked at every multiple of this many samples
CHECK_EVERY = 50
#: z of the one-sided bound the early stop uses (99.99% two-sided Wilson interval)
EARLY_STOP_Z = 3.89
#: z of the reported 95% interval
Z95 = 1.959963984540054
#: strong position bias: the 95% interval of the first-position win rate lies entirely above
#: BIAS_HIGH or entirely below BIAS_LOW, over at least MIN_BIAS_VOTES decisive samples
BIAS_HIGH, BIAS_LOW, MIN_BIAS_VOTES = 0.65, 0.35, 20
#: distinct reason groups kept per kind (the rest are counted as "(other reasons)")
MAX_REASONS = 50
#: a reason or error message is cut to this many characters
REASON_CHARS = 160
#: reasons and messages listed in reports
TOP_REASONS = 5

OTHER = "(other reasons)"
NO_REASON = "abstained without a reason (the judge records none)"

# Abstention reasons (tourney/judges/formats.py) that mean "the output held no verdict the format
# reads": with an output that stopped normally, the likely cause is a wrong --format.
_NO_VERDICT_PREFIXES = (
    "stopped without </think>",
    "no </think>",
    "no verdict found",
    "unrecognised verdict",
    "no output",
)
_SECRET = re.compile(
    r"(?i)(bearer\s+)[^\s'\"]+"  # an Authorization header's token
    r"|\bsk-[A-Za-z0-9_\-]{6,}"  # OpenAI-style keys
    r"|(\b(?:api[_-]?key|token|password|secret)\s*[=:]\s*)[^\s&'\",;]+"  # key=value pairs
    r"|(://[^/@\s:]+:)[^/@\s]+@"  # user:password@ in a URL
)


def scrub(text: str, limit: int = REASON_CHARS) -> str:
    """``text`` on one line, with anything that looks like a credential replaced by
    ``[REDACTED]`` (a bearer token, an ``sk-...`` key, ``api_key=...``, ``user:pass@`` in a URL),
    cut to ``limit`` characters. The judges scrub their own key already; this keeps reasons safe
    to print and store whatever judge wrote them."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1) + "[REDACTED]"
        if m.group(2):
            return m.group(2) + "[REDACTED]"
        if m.group(3):
            return m.group(3) + "[REDACTED]@"
        return "[REDACTED]"

    one = " ".join(text.split())
    out = _SECRET.sub(repl, one)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def reason_key(text: str) -> str:
    """The group a reason belongs to: its first clause, up to the first ``": "`` or ``"; "``
    outside parentheses (``"ambiguous verdict: \\boxed{3}"`` -> ``"ambiguous verdict"``;
    ``"stopped without </think> (finish_reason=stop; ...)"`` stays whole), scrubbed and cut."""
    depth = 0
    for k, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in ":;" and text[k + 1 : k + 2] == " ":
            text = text[:k]
            break
    return scrub(text.strip()) or "(empty reason)"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion ``successes / n`` (None when ``n`` is 0).
    Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near 0 and 1 and for
    small ``n`` (Wilson 1927; Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    # at 0 and n the bound is exactly 0 or 1 (rounding would leave it a hair inside)
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))


def coin_flip_note(results: Sequence[MatchResult], info: Mapping[str, Any], n: int) -> str | None:
    """Why a prompt's ranking rests on coin flips that stand in for missing votes, or None.

    A strategy settles a pair the judge left level with a seeded coin (knockout, merge sort:
    ``info["coin_flips"]``). That is honest when the judge really split (1-1 over both orders,
    an explicit tie) and not when its votes were simply missing. A pair counts as "decided by
    a coin for want of votes" when its decisive votes are level (``0-0`` included) and one of its
    requests got fewer valid votes than samples asked for (abstentions or errors left after
    re-sampling). For strategies that report no coin flips, a prompt whose matches produced no
    vote at all is ranked by the strategy's tie-break alone: that counts too."""
    if n < 2 or not results:
        return None
    if sum(r.votes for r in results) == 0:
        return (
            "no vote: every judgement of this prompt abstained or failed, so its ranking is the "
            "strategy's seeded tie-break"
        )
    flips = info.get("coin_flips", 0)
    if not isinstance(flips, int) or isinstance(flips, bool) or flips <= 0:
        return None
    level: dict[tuple[int, int], list[int]] = {}  # (lo, hi) -> [lo's wins, hi's wins, missing votes]
    for r in results:
        f, s = r.request.first, r.request.second
        lo, hi = min(f, s), max(f, s)
        row = level.setdefault((lo, hi), [0, 0, 0])
        row[0] += r.first_wins if f == lo else r.second_wins
        row[1] += r.second_wins if f == lo else r.first_wins
        row[2] += max(0, r.request.samples - r.votes)
    k = min(flips, sum(1 for a, b, missing in level.values() if a == b and missing > 0))
    if not k:
        return None
    return (
        f"decided by {k} coin flip{'s' if k != 1 else ''}: the judge left "
        f"{'a pair' if k == 1 else f'{k} pairs'} level with votes missing (abstained or failed), so the "
        "strategy picked at random"
    )


@dataclass
class _Reasons:
    """Bounded counts of reason groups."""

    counts: Counter[str]

    def add(self, text: str, whole: bool = False) -> None:
        key = scrub(text) if whole else reason_key(text)
        if key in self.counts or len(self.counts) < MAX_REASONS:
            self.counts[key] += 1
        else:
            self.counts[OTHER] += 1

    def top(self, k: int = TOP_REASONS) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


class RunHealth:
    """Counters of one run's judge samples and results; see the module docstring.

    ``max_failure_rate`` (a share in [0, 1], or None: not checked) and ``fail_fast`` (K >= 1, or
    None: off) are the run's thresholds: :meth:`early_stop` applies both, :meth:`problem` and
    :meth:`to_json` the first."""

    def __init__(self, max_failure_rate: float | None = None, fail_fast: int | None = None) -> None:
        self.max_failure_rate = max_failure_rate
        self.fail_fast = fail_fast
        self.samples = 0
        self.first_wins = 0  #: samples won by the first-shown response (outcome A)
        self.second_wins = 0  #: outcome B
        self.ties = 0
        self.abstentions = 0
        self.errors = 0
        self.truncated = 0  #: abstentions cut at max_tokens (finish_reason "length")
        self.no_verdict = 0  #: abstentions that stopped normally with no verdict the format reads
        self.prompts = 0
        self.coin_flips = 0  #: the strategies' coin flips (info["coin_flips"]), all causes
        self.coin_flip_prompts = 0  #: prompts whose status is "coin_flip"
        self._abstain = _Reasons(Counter())
        self._error = _Reasons(Counter())
        self._first_answers = 0  #: answers (non-error samples) counted for fail-fast, up to its K
        self._first_votes = 0  #: verdicts among them
        self._mark = 0  #: multiples of CHECK_EVERY samples already checked

    # -- feeding ----------------------------------------------------------------------------
    def add(self, judgements: Iterable[Judgement]) -> None:
        """Count judge samples (fresh or answered from the store), in the order they came."""
        k = self.fail_fast or 0
        for j in judgements:
            self.samples += 1
            o = j.outcome
            if o is Outcome.ERROR:
                self.errors += 1
                self._error.add(j.error or "error (no message)", whole=True)
                continue
            if self._first_answers < k:
                self._first_answers += 1
                self._first_votes += o is not Outcome.ABSTAIN
            if o is Outcome.A:
                self.first_wins += 1
            elif o is Outcome.B:
                self.second_wins += 1
            elif o is Outcome.TIE:
                self.ties += 1
            else:
                self.abstentions += 1
                extra = j.extra if isinstance(j.extra, Mapping) else {}
                reason = extra.get("reason")
                reason = reason if isinstance(reason, str) and reason else None
                finish = extra.get("finish_reason")
                if finish == "length" or (reason and "max_tokens" in reason):
                    self.truncated += 1
                elif reason and reason.startswith(_NO_VERDICT_PREFIXES):
                    self.no_verdict += 1
                self._abstain.add(reason or NO_REASON)

    def add_result(self, result: PromptResult) -> None:
        """Count one prompt's result: its status and the strategy's coin flips."""
        self.prompts += 1
        flips = result.info.get("coin_flips", 0) if isinstance(result.info, Mapping) else 0
        if isinstance(flips, int) and not isinstance(flips, bool) and flips > 0:
            self.coin_flips += flips
        self.coin_flip_prompts += result.status == "coin_flip"

    # -- rates ------------------------------------------------------------------------------
    @property
    def verdicts(self) -> int:
        """Samples with a verdict: A, B or an explicit tie."""
        return self.first_wins + self.second_wins + self.ties

    @property
    def answers(self) -> int:
        """Samples the judge answered (not errors)."""
        return self.samples - self.errors

    @property
    def failures(self) -> int:
        return self.abstentions + self.errors

    @staticmethod
    def _share(k: int, n: int) -> float | None:
        return k / n if n else None

    @property
    def parse_rate(self) -> float | None:
        """Verdicts / answers (None before any answer)."""
        return self._share(self.verdicts, self.answers)

    @property
    def abstention_rate(self) -> float | None:
        return self._share(self.abstentions, self.samples)

    @property
    def tie_rate(self) -> float | None:
        return self._share(self.ties, self.samples)

    @property
    def error_rate(self) -> float | None:
        return self._share(self.errors, self.samples)

    @property
    def failure_rate(self) -> float | None:
        """(Abstentions + errors) / samples (None before any sample)."""
        return self._share(self.failures, self.samples)

    @property
    def decisive(self) -> int:
        return self.first_wins + self.second_wins

    @property
    def first_position_rate(self) -> float | None:
        """A / (A + B): how often the first-shown response won a decisive sample."""
        return self._share(self.first_wins, self.decisive)

    @property
    def first_position_interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of :attr:`first_position_rate`."""
        return wilson_interval(self.first_wins, self.decisive)

    def abstention_reasons(self, k: int = TOP_REASONS) -> list[tuple[str, int]]:
        """The ``k`` most frequent abstention reason groups with their counts."""
        return self._abstain.top(k)

    def error_reasons(self, k: int = TOP_REASONS) -> list[tuple[str, int]]:
        """The ``k`` most frequent error message groups with their counts."""
        return self._error.top(k)

    # -- verdicts on the run ------------------------------------------------------------------
    def diagnosis(self) -> str:
        """The likely cause of the abstentions and errors seen, with what to do."""
        ab, er = self.abstentions, self.errors
        if not ab and not er:
            return "no abstention or error"
        main = self._error_cause() if er > ab else self._abstain_cause()
        other_n = ab if er > ab else er
        if other_n and other_n * 4 >= ab + er:  # the other kind is a quarter or more of the failures
            main += "; also: " + (self._abstain_cause() if er > ab else self._error_cause())
        return main

    def _abstain_cause(self) -> str:
        ab = self.abstentions
        top, count = self.abstention_reasons(1)[0]
        if self.truncated * 2 >= ab:
            return (
                f"truncation at max_tokens: {self.truncated} of {ab} abstentions were cut at max_tokens before a "
                "verdict; raise the judge's max_tokens (--judge-opt max_tokens=N)"
            )
        if self.no_verdict * 2 >= ab:
            return (
                f"wrong --format? {self.no_verdict} of {ab} abstentions stopped normally without a verdict the "
                f"format reads (most often: {top}); check that --format matches the judge model (rrm, rm_r1, "
                "rm_r1_instruct) and that the model writes it (--judge-opt structured=true constrains it)"
            )
        return f"abstentions; most often: {top} ({count} of {ab} abstentions)"

    def _error_cause(self) -> str:
        er = self.errors
        top, count = self.error_reasons(1)[0]
        by_kind: Counter[str] = Counter()
        for key, n in self._error.counts.items():
            by_kind[_error_kind(key)] += n
        kind, n = max(by_kind.items(), key=lambda kv: (kv[1], kv[0] != "other"))
        if kind == "auth":
            return (
                f"authentication: the server refused the key (HTTP 401/403) in {n} of {er} errors (most often: "
                f"{top}); set the right key in OPENAI_API_KEY or the variable --judge-opt api_key_env names"
            )
        if kind == "server":
            return (
                f"server errors: {n} of {er} errors are HTTP 5xx/429, timeouts or connection failures (most often: "
                f"{top}); check that the judge server is up and healthy (its log), or lower --concurrency"
            )
        if kind == "client":
            return (
                f"refused requests: {n} of {er} errors are HTTP 4xx answers (most often: {top}); check --model, "
                "the judge options and the prompt length against the server's context length"
            )
        return f"judge errors; most often: {top} ({count} of {er} errors)"

    def early_stop(self) -> str | None:
        """Why the run must stop now (a message naming the likely cause), or None; see the
        module docstring for the two rules. Call it after each :meth:`add`; it is cheap."""
        fail_fast, max_failure_rate = self.fail_fast, self.max_failure_rate
        if fail_fast and self._first_answers >= fail_fast and self._first_votes == 0:
            return (
                f"the judge's first {fail_fast} verdicts all failed to parse (every one abstained); "
                f"likely cause: {self.diagnosis()}"
            )
        if max_failure_rate is not None and self.samples >= CHECK_EVERY and self._checkpoint():
            low = wilson_interval(self.failures, self.samples, EARLY_STOP_Z)
            if low is not None and low[0] > max_failure_rate:
                return (
                    f"{self.failures} of the first {self.samples} judgements abstained or failed "
                    f"({self.failures / self.samples:.0%}), far above --max-failure-rate {max_failure_rate:g}; "
                    f"likely cause: {self.diagnosis()}"
                )
        return None

    def _checkpoint(self) -> bool:
        """True once per multiple of CHECK_EVERY samples passed."""
        mark = self.samples // CHECK_EVERY
        if mark > self._mark:
            self._mark = mark
            return True
        return False

    def problem(self, max_failure_rate: float | None = None) -> str | None:
        """At the end of a run: why its health check fails (the failure share is above
        ``max_failure_rate``, by default the run's own), with the likely cause; None when it
        passes or is not checked (no threshold, no sample)."""
        if max_failure_rate is None:
            max_failure_rate = self.max_failure_rate
        rate = self.failure_rate
        if max_failure_rate is None or rate is None or rate <= max_failure_rate:
            return None
        return (
            f"{self.failures} of {self.samples} judgements abstained or failed ({rate:.0%}), above "
            f"--max-failure-rate {max_failure_rate:g}; likely cause: {self.diagnosis()}"
        )

    def warnings(self, strategy: Mapping[str, Any] | None = None) -> list[str]:
        """Warnings about the judge: a strong position bias (the 95% interval of the
        first-position win rate entirely above :data:`BIAS_HIGH` or below :data:`BIAS_LOW`, over
        at least :data:`MIN_BIAS_VOTES` decisive samples), with the fix. ``strategy`` (the
        strategy's description, ``{"name", "options"}``) tailors the fix."""
        out: list[str] = []
        ci = self.first_position_interval
        if ci is not None and self.decisive >= MIN_BIAS_VOTES and (ci[0] > BIAS_HIGH or ci[1] < BIAS_LOW):
            rate = self.first_position_rate
            side = "first" if ci[0] > BIAS_HIGH else "second"
            name = (strategy or {}).get("name")
            opts = (strategy or {}).get("options") or {}
            if name in ("adaptive", "bradley_terry") or opts.get("both_orders") in (True, "true"):
                fix = (
                    "this run already balances positions (both orders or a fitted position term), but a judge "
                    "this biased gives little information per match"
                )
            else:
                fix = (
                    "judge both orders (e.g. knockout:both_orders=true) or use adaptive or bradley_terry, which "
                    "fit a position term"
                )
            out.append(
                f"strong position bias: the first-shown response won {rate:.2f} (95% CI "
                f"[{ci[0]:.2f}, {ci[1]:.2f}]) of {self.decisive} decisive judgements: the judge favours the "
                f"{side}-shown response; {fix}"
            )
        return out

    # -- reporting ----------------------------------------------------------------------------
    def to_json(self, strategy: Mapping[str, Any] | None = None, stopped: str | None = None) -> dict[str, Any]:
        """Everything above as JSON values (rates rounded to 6 places; None where undefined).
        ``status``: ``"stopped"`` when ``stopped`` (the reason the run stopped early) is given,
        ``"failed"`` when :meth:`problem` finds one, else ``"ok"``."""
        ci = self.first_position_interval
        problem = self.problem()
        return {
            "status": "stopped" if stopped else ("failed" if problem else "ok"),
            "samples": self.samples,
            "verdicts": self.verdicts,
            "parse_rate": _round(self.parse_rate),
            "abstentions": self.abstentions,
            "abstention_rate": _round(self.abstention_rate),
            "ties": self.ties,
            "tie_rate": _round(self.tie_rate),
            "errors": self.errors,
            "error_rate": _round(self.error_rate),
            "failure_rate": _round(self.failure_rate),
            "max_failure_rate": self.max_failure_rate,
            "fail_fast": self.fail_fast,
            "truncated": self.truncated,
            "coin_flips": self.coin_flips,
            "coin_flip_prompts": self.coin_flip_prompts,
            "first_position": {
                "wins": self.first_wins,
                "losses": self.second_wins,
                "rate": _round(self.first_position_rate),
                "ci95": None if ci is None else [_round(ci[0]), _round(ci[1])],
            },
            "abstention_reasons": [[k, n] for k, n in self.abstention_reasons()],
            "error_reasons": [[k, n] for k, n in self.error_reasons()],
            "problem": stopped or problem,
            "warnings": self.warnings(strategy),
        }

    def summary_lines(self) -> list[str]:
        """The run's health in a few human lines (for the command line's summary)."""
        if not self.samples:
            return ["judge health: no judgement was made"]
        line = (
            f"judge health: {self.samples} judgements, verdict parsed {_pct(self.parse_rate)}, abstained "
            f"{_pct(self.abstention_rate)}, ties {_pct(self.tie_rate)}, errors {_pct(self.error_rate)}; "
            f"{self.coin_flips} coin flip{'s' if self.coin_flips != 1 else ''}"
        )
        if self.coin_flip_prompts:
            line += f" ({self.coin_flip_prompts} prompt{'s' if self.coin_flip_prompts != 1 else ''} decided by coin)"
        ci = self.first_position_interval
        if ci is not None:
            line += (
                f"; first-shown won {self.first_position_rate:.2f} [95% CI {ci[0]:.2f}, {ci[1]:.2f}] of "
                f"{self.decisive} decisive"
            )
        lines = [line]
        if self.abstentions:
            lines.append("  abstentions: " + "; ".join(f"{n} {k}" for k, n in self.abstention_reasons()))
        if self.errors:
            lines.append("  errors: " + "; ".join(f"{n} {k}" for k, n in self.error_reasons()))
        return lines


_AUTH = re.compile(r"(?i)http 40[13]\b|api key|unauthori[sz]ed|forbidden")
_SERVER = re.compile(
    r"(?i)http (?:5\d\d|408|429)\b|cannot reach|no answer|timed? ?out|connection|unavailable|"
    r"stopped answering|malformed response"
)
_CLIENT = re.compile(r"(?i)http 4\d\d\b")


def _error_kind(message: str) -> str:
    """``auth``, ``server``, ``client`` or ``other``: what kind of failure an error message is."""
    if _AUTH.search(message):
        return "auth"
    if _SERVER.search(message):
        return "server"
    if _CLIENT.search(message):
        return "client"
    return "other"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"
