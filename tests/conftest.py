"""Shared fixtures and helpers for the test suite.

Real components and CI
----------------------
Tests of real components (the vLLM engine and server, a Ray cluster, transformers, the
shared reference data, the SmolLM2 wheel, the notebook and TRL tooling, the test-only
oracles) get them through :func:`require`, never ``pytest.importorskip`` or a bare
``pytest.skip``: on a developer machine a missing component skips the test, but with
``CI=true`` (set by ``.ci/run``) it FAILS, so a broken install cannot turn CI green by
skipping. The skips that remain (environment facts such as "cannot mount a tmpfs here")
are listed with their reasons in ``.ci/expected-skips.txt``; ``.ci/run`` compares the run's
skips with that list (the plugin below writes them to ``$TOURNEY_SKIP_REPORT``).

Shared helpers
--------------
Test modules import shared helpers from here (``from .conftest import ...``), never from another
test module. Besides :func:`require` and the JSONL helpers below, this re-exports the strategy
oracles and synchronous driver of ``strategy_driver.py`` (:func:`drive`, :func:`run`,
:func:`make`, :func:`by_rounds`, :func:`simulated_top1`, the ``noiseless``/``noisy``/``chaos``/
``constant`` oracles), used by the conformance suite and the per-strategy test modules.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, overload

import pytest

from .strategy_driver import (
    MAX_STEPS,
    SCORE_TOL,
    Oracle,
    Run,
    _u,
    abstain_when_wins,
    by_rounds,
    chaos,
    check_ranking,
    constant,
    drive,
    keys_for,
    make,
    noiseless,
    noisy,
    quality,
    run,
    signature,
    simulated_top1,
)

#: what test modules import from here (``from .conftest import ...``)
__all__ = [
    "MAX_STEPS",
    "MISSING",
    "Oracle",
    "ROOT",
    "Run",
    "SCORE_TOL",
    "SHARED",
    "SHARED_DATA",
    "STRICT",
    "_u",
    "abstain_when_wins",
    "by_rounds",
    "chaos",
    "check_ranking",
    "constant",
    "drive",
    "keys_for",
    "make",
    "missing",
    "noiseless",
    "noisy",
    "quality",
    "read_jsonl",
    "require",
    "run",
    "signature",
    "simulated_top1",
    "write_jsonl",
]

ROOT = Path(__file__).resolve().parent.parent
#: the workplace's shared data folder (beside the clone in CI); tests that need it get it via require()
SHARED = Path(os.environ.get("TOURNEY_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"

#: True under CI (``CI=true``, as ``.ci/run`` and CI services set it): missing real components fail
STRICT = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

#: prefix of every skip reason written by require(), so reports can tell these skips apart
MISSING = "missing real component"


def missing(what: str, why: str) -> None:
    """Skip the current test (or module) because a real component is missing; with
    ``CI=true`` fail it instead, naming the component and why the test needs it."""
    msg = f"{MISSING}: {what} ({why})"
    if STRICT:
        pytest.fail(f"{msg}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(msg, allow_module_level=True)


@overload
def require(what: str, why: str) -> ModuleType: ...
@overload
def require(what: Path, why: str) -> Path: ...
def require(what: str | Path, why: str) -> Any:
    """The module ``what`` (a dotted name, imported) or the path ``what`` (a :class:`Path`,
    which must exist); if it is missing, :func:`missing` skips or, with ``CI=true``, fails.

    Use it instead of ``pytest.importorskip`` for every real component. Only ImportError
    counts as missing: an installed package that breaks on import raises, which is an error
    everywhere."""
    if isinstance(what, Path):
        if not what.exists():
            missing(str(what), why)
        return what
    try:
        return importlib.import_module(what)
    except ImportError as exc:
        error = f"{type(exc).__name__}: {exc}"
    missing(f"module {what} ({error})", why)  # outside the except: no chained traceback in the report


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def question_rows(n: int, k: int) -> list[dict[str, Any]]:
    """``n`` input rows (ids ``p0``..) of ``k`` distinct responses each: prompt ``question i``,
    responses ``answer i.j``."""
    return [
        {"id": f"p{i}", "prompt": f"question {i}", "responses": [f"answer {i}.{j}" for j in range(k)]} for i in range(n)
    ]


def tourney_argv(command: str, inp: Path, out: Path, *args: str) -> list[str]:
    """``tourney COMMAND INP --out OUT ARGS..`` run by this interpreter, as a subprocess's argv."""
    return [sys.executable, "-m", "tourney", command, str(inp), "--out", str(out), *args]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (not gone, not a zombie), by the store's own /proc reading."""
    from tourney._store_writer import _proc_state

    state = _proc_state(pid)
    return state is not None and state[0] not in ("Z", "X")


@pytest.fixture
def shared_data() -> Path:
    return require(SHARED_DATA, "the shared reference data folder; set TOURNEY_SHARED to the folder holding data/")


# ---------------------------------------------------------------------------------------------
# The outcome report .ci/run checks: one JSON line per test (and per skipped module)
# ---------------------------------------------------------------------------------------------


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    return str(lr)


class _OutcomeReport:
    """Writes ``{"nodeid", "outcome", "reason", "duration_s"}`` lines to a file, one per test
    (its final outcome: a failure in setup, call or teardown wins over a pass; the seconds of
    all three phases) and one per module skipped at collection. ``.ci/check_skips.py`` reads it."""

    def __init__(self, path: Path):
        self.path = path
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.durations: dict[str, float] = {}

    def _set(self, nodeid: str, outcome: str, reason: str = "") -> None:
        old = self.outcomes.get(nodeid)
        rank = {"passed": 0, "skipped": 1, "failed": 2}
        if old is None or rank[outcome] > rank[old[0]]:
            self.outcomes[nodeid] = (outcome, reason)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.skipped:
            if hasattr(report, "wasxfail"):
                self._set(report.nodeid, "passed")
            else:
                self._set(report.nodeid, "skipped", _skip_reason(report))
        elif report.failed:
            self._set(report.nodeid, "failed")
        elif report.when == "call":
            self._set(report.nodeid, "passed")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self._set(report.nodeid, "skipped", _skip_reason(report))
        elif report.failed:
            self._set(report.nodeid, "failed")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as fh:
            for nodeid, (outcome, reason) in sorted(self.outcomes.items()):
                rec = {
                    "nodeid": nodeid,
                    "outcome": outcome,
                    "reason": reason,
                    "duration_s": round(self.durations.get(nodeid, 0.0), 3),
                }
                fh.write(json.dumps(rec) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get("TOURNEY_SKIP_REPORT")
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_OutcomeReport(Path(path)), "tourney-outcome-report")
