"""Run health (``tourney/health.py``) and where it surfaces: the statuses, the scheduler's stop
rules, ``tourney rank``'s summary, exit codes and meta file, the Python API and ``rank_file``.

Golden numbers: the Wilson intervals are Newcombe's published values (Statistics in Medicine
17:857-872, 1998, Table I, method 3); the simulated judge's rates are its own analytic values
(``abstain_rate``, ``tie_rate``, ``error_rate`` and ``win_probability``), which the measured
rates must cover with a 99.9% interval. The judge-server cases run the real openai judge (and
the real command line) against a small scripted HTTP server in this process: a wrong
``--format``, truncation at ``max_tokens`` and a refused key.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tourney import RunHealth, RunHealthError, Tournament
from tourney.cli import main
from tourney.health import (
    CHECK_EVERY,
    MAX_REASONS,
    REASON_CHARS,
    coin_flip_note,
    reason_key,
    scrub,
    wilson_interval,
)
from tourney.judges import build_judge, formats
from tourney.runner import rank_file
from tourney.scheduler import check_settings
from tourney.types import Judgement, MatchResult, Outcome, PromptResult, Request

from .conftest import read_jsonl, require, write_jsonl

#: z of the 99.9% interval the measured rates of the simulated judge must fall in
Z999 = 3.2905
#: Newcombe (1998) Table I, method 3 (Wilson score interval without continuity correction)
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]
#: the published values have 4 decimals
NEWCOMBE_TOL = 5e-5


def _j(outcome: str, reason: str | None = None, finish: str | None = None, error: str | None = None) -> Judgement:
    extra: dict[str, Any] = {}
    if reason:
        extra["reason"] = reason
    if finish:
        extra["finish_reason"] = finish
    return Judgement(outcome=Outcome(outcome), extra=extra, error=error)


def _items(prompts: int, n: int, equal: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "id": f"p{i}",
            "prompt": f"Question {i}?",
            "responses": [f"answer {i}.{k}" for k in range(n)],
            **({"scores": [0.0] * n} if equal else {}),
        }
        for i in range(prompts)
    ]


def _covers(k: int, n: int, value: float) -> bool:
    lo, hi = wilson_interval(k, n, Z999)  # type: ignore[misc]
    return lo <= value <= hi


# ---------------------------------------------------------------------------------------------
# The pure pieces
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("counts, expected", NEWCOMBE)
def test_wilson_interval_matches_newcombes_table(counts, expected):
    lo, hi = wilson_interval(*counts)
    assert lo == pytest.approx(expected[0], abs=NEWCOMBE_TOL) and hi == pytest.approx(expected[1], abs=NEWCOMBE_TOL)
    assert wilson_interval(0, 0) is None
    assert wilson_interval(34, 34)[1] == 1.0 and wilson_interval(0, 34)[0] == 0.0  # exact at the ends


def test_reasons_group_by_their_first_clause_and_never_carry_a_secret():
    assert reason_key("ambiguous verdict: \\boxed{3}") == "ambiguous verdict"
    assert (
        reason_key("output truncated at max_tokens (finish_reason=length); no verdict found")
        == "output truncated at max_tokens (finish_reason=length)"
    )
    assert reason_key(formats.REASON_STOPPED_NO_CONTENT) == formats.REASON_STOPPED_NO_CONTENT  # "; " in parentheses
    assert reason_key(formats.REASON_NOT_AT_END) == formats.REASON_NOT_AT_END
    for secret in (
        "Authorization: Bearer abc.def-123",
        "key sk-live-0123456789abcdef",
        "api_key=hunter2&x=1",
        "http://bob:pa55word@host/v1",
        "token: tok_99",
    ):
        text = scrub(f"HTTP 401 ({secret}) from the server")
        assert "[REDACTED]" in text and not any(
            s in text for s in ("abc.def", "0123456789", "hunter2", "pa55", "tok_99")
        ), text
    assert scrub("x" * 1000).endswith("...") and len(scrub("x" * 1000)) == REASON_CHARS
    assert scrub("max_tokens=48, completion_tokens: 30") == "max_tokens=48, completion_tokens: 30"


def test_reason_counts_are_bounded():
    h = RunHealth()
    h.add([_j("abstain", f"unrecognised verdict: \\boxed{{{k}}}") for k in range(10)])
    assert h.abstention_reasons() == [("unrecognised verdict", 10)]
    h.add([_j("error", error=f"boom number {k}") for k in range(3 * MAX_REASONS)])
    kept = dict(h.error_reasons(MAX_REASONS + 1))
    assert len(kept) == MAX_REASONS + 1 and kept["(other reasons)"] == 2 * MAX_REASONS
    assert sum(kept.values()) == h.errors == 3 * MAX_REASONS


def test_every_format_reason_is_classified_as_truncated_or_missing_verdict():
    truncated = [formats.REASON_TRUNCATED_NO_THINK_END, formats.REASON_TRUNCATED]
    missing = [
        formats.REASON_STOPPED_NO_THINK_END,
        formats.REASON_STOPPED_NO_CONTENT,
        formats.REASON_NO_THINK_END,
        formats.REASON_NO_VERDICT,
        formats.REASON_UNRECOGNISED + ": \\boxed{7}",
        formats.REASON_NO_OUTPUT,
    ]
    judge_behaviour = [formats.REASON_AMBIGUOUS + ": x", formats.REASON_QUOTED + ": ...", formats.REASON_TRAILING]
    h = RunHealth()
    h.add([_j("abstain", r, "length") for r in truncated])
    h.add([_j("abstain", r, "stop") for r in missing])
    h.add([_j("abstain", r, "stop") for r in judge_behaviour])
    assert (h.truncated, h.no_verdict, h.abstentions) == (len(truncated), len(missing), 11)


def _diagnose(judgements: list[Judgement]) -> str:
    h = RunHealth()
    h.add(judgements)
    return h.diagnosis()


def test_the_likely_cause_is_named_from_the_reasons():
    cut = _j("abstain", formats.REASON_TRUNCATED_NO_THINK_END, "length")
    stopped = _j("abstain", formats.REASON_NO_VERDICT, "stop")
    assert _diagnose([cut] * 6 + [stopped] * 4).startswith("truncation at max_tokens: 6 of 10 abstentions")
    assert "max_tokens=N" in _diagnose([cut])
    wrong = _diagnose([cut] * 2 + [stopped] * 8)
    assert wrong.startswith("wrong --format? 8 of 10 abstentions stopped normally") and "no verdict found" in wrong
    refused = "JudgeUnavailableError: openai judge: refused the request (HTTP 401: bad)"
    auth = _diagnose([_j("error", error=refused)] * 3)
    assert auth.startswith("authentication: the server refused the key (HTTP 401/403) in 3 of 3 errors")
    server = _diagnose(
        [_j("error", error="gave up after 4 attempts: TransientJudgeError: HTTP 503 from x")] * 2
        + [_j("error", error="JudgeError: HTTP 400 from x: too long")]
    )
    assert server.startswith("server errors: 2 of 3 errors")
    client = _diagnose([_j("error", error="JudgeError: openai judge: HTTP 400 from x: context length")])
    assert client.startswith("refused requests: 1 of 1 errors are HTTP 4xx")
    both = _diagnose([cut] * 4 + [_j("error", error="HTTP 500 boom")] * 2)
    assert both.startswith("truncation") and "; also: server errors" in both
    assert _diagnose([_j("abstain")] * 3).startswith("abstentions; most often: abstained without a reason")


def test_fail_fast_counts_the_first_k_answers_only():
    h = RunHealth(fail_fast=4)
    h.add([_j("error", error="x")] * 10 + [_j("abstain")] * 3)  # errors are not verdicts: not counted
    assert h.early_stop() is None
    h.add([_j("abstain")])
    assert h.early_stop().startswith("the judge's first 4 verdicts all failed to parse")
    h = RunHealth(fail_fast=4)
    h.add([_j("abstain")] * 3 + [_j("A")] + [_j("abstain")] * 100)  # one parsed: the rule is settled for good
    assert h.early_stop() is None
    assert RunHealth().early_stop() is None  # off unless asked for


def test_failure_share_stops_early_only_far_above_the_threshold():
    h = RunHealth(max_failure_rate=0.2)
    h.add([_j("abstain")] * (CHECK_EVERY - 1))
    assert h.early_stop() is None  # too few samples to judge
    h.add([_j("abstain")])
    assert (
        "50 of the first 50 judgements abstained or failed (100%), far above --max-failure-rate 0.2" in h.early_stop()
    )
    # 30% failures against 0.2: above, but not beyond doubt after 50; the end-of-run check fails it
    h = RunHealth(max_failure_rate=0.2)
    h.add(([_j("abstain")] * 3 + [_j("A")] * 7) * 5)
    assert h.early_stop() is None
    assert h.problem().startswith("15 of 50 judgements abstained or failed (30%), above --max-failure-rate 0.2")
    assert h.problem(0.3) is None and RunHealth().problem() is None
    # every failure an error: the early stop applies (the fail-fast rule counts answers only)
    h = RunHealth(max_failure_rate=0.5, fail_fast=16)
    h.add([_j("error", error="gave up after 4 attempts: TransientJudgeError: HTTP 502 from x")] * CHECK_EVERY)
    assert "far above --max-failure-rate 0.5; likely cause: server errors" in h.early_stop()


def test_position_bias_warning_needs_a_confident_strong_bias():
    h = RunHealth()
    h.add([_j("A")] * 19)
    assert h.warnings() == []  # fewer than 20 decisive samples
    h.add([_j("A")])
    (w,) = h.warnings({"name": "knockout", "options": {}})
    assert w.startswith("strong position bias: the first-shown response won 1.00 (95% CI [0.84, 1.00]) of 20")
    assert "knockout:both_orders=true" in w and "adaptive or bradley_terry" in w
    (w,) = h.warnings({"name": "knockout", "options": {"both_orders": True}})
    assert "already balances positions" in w
    h = RunHealth()
    h.add([_j("B")] * 30 + [_j("A")] * 2)
    assert "favours the second-shown response" in h.warnings()[0]
    h = RunHealth()
    h.add([_j("A")] * 70 + [_j("B")] * 30)  # 0.70, interval [0.60, 0.78]: not beyond 0.65
    assert h.warnings() == []


def _result(first: int, second: int, outcomes: str, samples: int | None = None) -> MatchResult:
    req = Request(first, second, samples or len(outcomes))
    code = {"A": "A", "B": "B", "t": "tie", "x": "abstain", "e": "error"}
    return MatchResult(req, tuple(Judgement(outcome=Outcome(code[c])) for c in outcomes))


def test_coin_flip_note_tells_missing_votes_from_a_genuine_split():
    flips = {"coin_flips": 1}
    # both orders, 1-1: the judge really split (position bias): an honest coin
    assert coin_flip_note([_result(0, 1, "A"), _result(1, 0, "A")], flips, 2) is None
    # an explicit tie is a verdict too
    assert coin_flip_note([_result(0, 1, "t")], flips, 2) is None
    # one order abstained, the other voted: decided by that vote, no coin
    assert coin_flip_note([_result(0, 1, "xA", samples=1), _result(1, 0, "xxx", samples=1)], {}, 2) is None
    # votes missing on a level pair: the coin stands in for the judge
    note = coin_flip_note(
        [_result(0, 1, "A"), _result(1, 0, "xxx", samples=1), _result(2, 3, "x", samples=1), _result(0, 2, "B")],
        {"coin_flips": 2},
        4,
    )
    assert note == (
        "decided by 1 coin flip: the judge left a pair level with votes missing (abstained or failed), "
        "so the strategy picked at random"
    )
    # a strategy that reports no coin flips: only "no vote at all" counts
    assert coin_flip_note([_result(0, 1, "xe", samples=2)], {}, 2).startswith("no vote")
    assert coin_flip_note([], {}, 1) is None


def test_settings_are_checked_like_the_others():
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="max_failure_rate must be a share in \\[0, 1\\] or None"):
            check_settings(max_failure_rate=bad)
    with pytest.raises(TypeError, match="max_failure_rate"):
        check_settings(max_failure_rate="0.2")
    with pytest.raises(ValueError, match="fail_fast must be a positive integer or None, got 0"):
        check_settings(fail_fast=0)
    with pytest.raises(ValueError, match="max_failure_rate"):
        Tournament("simulated", max_failure_rate=2)


# ---------------------------------------------------------------------------------------------
# The simulated judge's known rates through the scheduler, the API and rank_file
# ---------------------------------------------------------------------------------------------

#: every rate of the simulated judge at once; equal input scores: P(first wins) = 0.5 + bias
NOISY = "simulated:position_bias=0.3,abstain_rate=0.2,tie_rate=0.1,error_rate=0.1,seed=5"


def test_the_api_reports_the_simulated_judges_own_rates():
    judge = build_judge(NOISY)
    with Tournament(judge, "round_robin:both_orders=true", retries=0, resample_abstentions=0, seed=2) as t:
        results = t.rank(_items(20, 6, equal=True))
    h = t.health
    assert isinstance(h, RunHealth) and h.samples == 20 * 30 == t.stats.samples
    e, a, tie = judge.error_rate, judge.abstain_rate, judge.tie_rate
    assert _covers(h.errors, h.samples, e)  # a failed call fails its one sample
    assert _covers(h.abstentions, h.answers, a)
    assert _covers(h.ties, h.answers - h.abstentions, tie)
    assert _covers(h.verdicts, h.answers, 1 - a) and h.parse_rate == h.verdicts / h.answers
    p = judge.win_probability(0.0, 0.0)
    assert p == pytest.approx(0.8)
    lo, hi = h.first_position_interval
    assert lo <= p <= hi and h.decisive == h.first_wins + h.second_wins > 300
    (w,) = h.warnings({"name": "round_robin", "options": {"both_orders": True}})
    assert "strong position bias" in w
    assert h.failure_rate == (h.abstentions + h.errors) / h.samples
    # a prompt with judge errors is partial, never ok; the health counts every prompt
    assert all((r.status == "partial") == (r.errors > 0) for r in results) and h.prompts == 20


def test_a_judge_without_position_bias_gets_no_warning():
    with Tournament("simulated:position_bias=0.0,seed=1", "round_robin:both_orders=true") as t:
        t.rank(_items(10, 6, equal=True))
    assert t.health.warnings() == [] and 0.35 < t.health.first_position_rate < 0.65
    assert t.health.parse_rate == 1.0 and t.health.failure_rate == 0.0


def test_a_stopped_api_run_raises_and_keeps_its_health():
    with Tournament("simulated:abstain_rate=1", fail_fast=16) as t:
        with pytest.raises(RunHealthError, match="first 16 verdicts all failed to parse") as info:
            t.rank(_items(30, 8))
    assert t.health.abstentions >= 16 and t.health.verdicts == 0 and t.stats.samples == t.health.samples
    assert info.value.health is t.health


def test_rank_file_reports_health_and_writes_it_to_the_meta_file(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", _items(12, 5, equal=True))
    rows: list[PromptResult] = []
    report = rank_file(
        inp,
        lambda item, res: rows.append(res),
        judge="simulated:position_bias=0.3,tie_rate=0.2",
        strategy="knockout",
        meta_path=tmp_path / "meta.json",
    )
    meta = json.loads((tmp_path / "meta.json").read_text())
    h = report.health
    assert meta["health"] == h.to_json(report.strategy_info) and meta["health"]["status"] == "ok"
    assert meta["health"]["samples"] == report.stats["samples"] == h.samples == sum(r.samples for r in rows)
    assert meta["health"]["ties"] == sum(r.ties for r in rows) and meta["health"]["max_failure_rate"] == 0.2
    assert meta["health"]["coin_flips"] == sum(r.info["coin_flips"] for r in rows) > 0  # explicit ties: coins
    assert all(r.status == "ok" for r in rows)  # a coin for an explicit tie is an honest one
    fp = meta["health"]["first_position"]
    assert fp["wins"] + fp["losses"] == h.decisive and fp["ci95"][0] <= fp["rate"] <= fp["ci95"][1]
    assert report.ok and len(rows) == 12


# ---------------------------------------------------------------------------------------------
# The command line: statuses, summary, exit codes, early stops
# ---------------------------------------------------------------------------------------------


def _cli(tmp_path: Path, rows: list[dict[str, Any]] | None, *args: str) -> tuple[int, list[dict[str, Any]]]:
    argv = ["rank", "--out", str(tmp_path / "out.jsonl"), "--no-progress", *args]
    if rows is not None:
        argv.insert(1, str(write_jsonl(tmp_path / "in.jsonl", rows)))
    code = main(argv)
    out = tmp_path / "out.jsonl"
    return code, (read_jsonl(out) if out.exists() else [])


def _stored(tmp_path: Path) -> Counter:
    from tourney.store import JudgementStore

    st = JudgementStore(tmp_path / "out.jsonl.judgements.sqlite", readonly=True)
    try:
        return Counter(r["outcome"] for r in st.export(include_errors=True))
    finally:
        st.close()


def test_an_all_abstain_run_stops_early_exits_3_and_says_why(tmp_path, capsys):
    """Issue 10: `--judge simulated:abstain_rate=1` exited 0 with every item ok."""
    rows = _items(40, 2)
    budget = 40 * 3  # one match of up to 3 samples (two re-samples) per prompt
    # one call at a time: prompts 0-4 take 3 samples each, prompt 5's first is the 16th
    code, out = _cli(tmp_path, rows, "--judge", "simulated:abstain_rate=1", "--concurrency", "1")
    err = capsys.readouterr().err
    assert code == 3, err
    assert (
        "tourney: error: run stopped early (run health): the judge's first 16 verdicts all failed to parse "
        "(every one abstained); likely cause: abstentions; most often: abstained without a reason"
    ) in err
    assert (
        f"5 results in order before the stop are in {tmp_path / 'out.jsonl.partial'} (partial, see "
        f"{tmp_path / 'out.jsonl.partial.meta.json'}); every judgement made is kept in the store "
        f"{tmp_path / 'out.jsonl.judgements.sqlite'}: the same command resumes"
    ) in err
    assert _stored(tmp_path) == {"abstain": 16} and budget > 16
    out = read_jsonl(tmp_path / "out.jsonl.partial")
    assert [r["id"] for r in out] == [f"p{i}" for i in range(5)] and {r["status"] for r in out} == {"coin_flip"}
    meta = json.loads((tmp_path / "out.jsonl.partial.meta.json").read_text())
    assert meta["stopped"].startswith("RunHealthError: the judge's first 16 verdicts")
    assert meta["health"]["status"] == "stopped" and meta["health"]["parse_rate"] == 0.0
    assert meta["health"]["samples"] == 16 and meta["health"]["coin_flip_prompts"] == 5
    # rerun unchanged: the 16 stored abstentions are reused and stop it again at once, paying nothing
    code, _ = _cli(tmp_path, rows, "--judge", "simulated:abstain_rate=1", "--concurrency", "1")
    assert code == 3 and _stored(tmp_path) == {"abstain": 16}


def test_the_bundled_example_on_an_abstaining_judge_is_no_longer_a_quiet_success(tmp_path, capsys):
    """Issue 10: exit 0, every item ok, 57 of 57 verdicts unparseable."""
    code, out = _cli(tmp_path, None, "--judge", "simulated:abstain_rate=1", "--no-store")
    err = capsys.readouterr().err
    assert code == 3 and "the judge's first 16 verdicts all failed to parse" in err
    assert "no judgement store (--no-store): the same command judges everything again" in err
    # without the health rules, the run completes and every status says what happened
    code, out = _cli(
        tmp_path,
        None,
        "--judge",
        "simulated:abstain_rate=1",
        "--no-store",
        "--fail-fast",
        "0",
        "--max-failure-rate",
        "1",
    )
    err = capsys.readouterr().err
    assert code == 1
    assert [r["status"] for r in out] == ["coin_flip"] * 4 + ["ok", "coin_flip"]  # "single" has one response
    assert out[0]["error"].startswith("no vote: every judgement of this prompt abstained or failed")
    assert "tourney: coin_flip: item capital-au: no vote" in err
    assert (
        "judge health: 57 judgements, verdict parsed 0%, abstained 100%, ties 0%, errors 0%; 19 coin flips "
        "(5 prompts decided by coin)" in err
    )
    assert "run health check failed" not in err and "stopped early" not in err


def test_a_failure_share_above_the_threshold_fails_at_the_end_with_complete_output(tmp_path, capsys):
    code, out = _cli(
        tmp_path,
        _items(6, 4),
        "--judge",
        "simulated:abstain_rate=0.4,seed=2",
        "--resample-abstentions",
        "0",
        "--fail-fast",
        "0",
    )
    err = capsys.readouterr().err
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert len(out) == 6 and meta["health"]["samples"] == 18 and "stopped" not in meta
    share = meta["health"]["failure_rate"]
    assert share > 0.2 and meta["health"]["status"] == "failed" and code == 3
    assert "above --max-failure-rate 0.2" in meta["health"]["problem"] and "run health check failed" in err
    # the same run with a looser threshold passes its health check
    code, out = _cli(
        tmp_path,
        _items(6, 4),
        "--judge",
        "simulated:abstain_rate=0.4,seed=2",
        "--resample-abstentions",
        "0",
        "--fail-fast",
        "0",
        "--max-failure-rate",
        str(share),
    )
    assert code in (0, 1) and json.loads((tmp_path / "out.jsonl.meta.json").read_text())["health"]["status"] == "ok"


def test_judge_errors_far_above_the_threshold_stop_the_run(tmp_path, capsys):
    code, _out = _cli(
        tmp_path, _items(40, 8), "--judge", "simulated:error_rate=1", "--retries", "0", "--concurrency", "4"
    )
    err = capsys.readouterr().err
    assert code == 3, err
    assert (
        "judgements abstained or failed (100%), far above --max-failure-rate 0.2; likely cause: judge errors; "
        "most often: gave up after 1 attempt: TransientJudgeError: simulated judge error" in err
    )
    assert CHECK_EVERY <= sum(_stored(tmp_path).values()) < CHECK_EVERY + 8 < 40 * 7


@pytest.mark.parametrize("value", ["abc", "-0.1", "1.5", "nan"])
def test_max_failure_rate_must_be_a_share(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        _cli(tmp_path, [{"prompt": "q", "responses": ["a", "b"]}], "--max-failure-rate", value)
    assert exc.value.code == 2
    assert f"argument --max-failure-rate: must be a number in [0, 1], got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_fail_fast_must_be_a_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _cli(tmp_path, [{"prompt": "q", "responses": ["a", "b"]}], "--fail-fast", "-1")
    assert exc.value.code == 2 and "argument --fail-fast: must be an integer >= 0" in capsys.readouterr().err


def test_help_documents_the_exit_codes_and_the_retry_policy(capsys):
    with pytest.raises(SystemExit):
        main(["rank", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "3 run health: the judge's first --fail-fast verdicts all failed to parse" in text
    assert "attempts of a failing judge call = 1 + retries (the only retry layer; default 3)" in text
    assert "a server's Retry-After is honoured (default 0.5)" in text
    assert "coin_flip (a pair settled by a coin because the judge's votes were missing)" in text


# ---------------------------------------------------------------------------------------------
# The openai judge against a scripted server: wrong format, truncation, a refused key
# ---------------------------------------------------------------------------------------------

#: what the scripted server writes: an RRM-style answer that stopped normally
RRM_ANSWER = "The first answer is correct and complete.</think>\n\\boxed{Assistant 1}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _refused(self) -> None:
        self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})

    def do_GET(self) -> None:
        if self.path.startswith("/badkey/"):
            return self._refused()
        self._send(200, {"object": "list", "data": [{"id": "judge", "object": "model"}]})

    def do_POST(self) -> None:
        scenario = self.path.strip("/").split("/")[0]
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with self.lock:
            self.posts[scenario] += 1
        if scenario in ("badkey", "badkeylater"):
            return self._refused()
        finish = "length" if scenario == "length" else "stop"
        text = "Let me think about both answers step by step and" if finish == "length" else RRM_ANSWER
        n = req.get("n", 1)
        self._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                    for i in range(n)
                ],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12 * n},
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up when its run stopped is expected here


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    require("aiohttp", "the openai judge's HTTP client (the openai and test extras)")
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _openai(server: str, scenario: str, fmt: str, *opts: str) -> list[str]:
    args = ["--judge", f"openai:{server}/{scenario}/v1", "--model", "judge", "--format", fmt]
    for o in opts:
        args += ["--judge-opt", o]
    return args


#: 30 prompts x 6 responses, knockout: 150 matches of up to 3 samples: the budget a stop saves
SERVER_ITEMS = _items(30, 6)
SERVER_BUDGET = 30 * 5


def test_a_wrong_format_stops_early_and_is_named(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # the server answers in RRM's format; --format rm_r1 looks for <answer>[[A]]</answer>
    code, out = _cli(tmp_path, SERVER_ITEMS, *_openai(server, "rrmstyle", "rm_r1"), "--concurrency", "2")
    err = capsys.readouterr().err
    assert code == 3, err
    assert (
        "the judge's first 16 verdicts all failed to parse (every one abstained); likely cause: wrong --format? "
        "16 of 16 abstentions stopped normally without a verdict the format reads (most often: no verdict "
        "found); check that --format matches the judge model" in err
    )
    assert _Handler.posts["rrmstyle"] <= 16 + 2 < SERVER_BUDGET
    assert "the same command resumes without paying for them again" in err
    # the same answers in the right format: every verdict parses
    code, out = _cli(tmp_path / "..", SERVER_ITEMS[:2], *_openai(server, "rrmstyle", "rrm"), "--no-store")
    assert code == 0 and {r["status"] for r in out} == {"ok"}


def test_truncation_at_max_tokens_is_named_with_the_fix(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, _ = _cli(tmp_path, SERVER_ITEMS, *_openai(server, "length", "rrm"), "--concurrency", "2")
    err = capsys.readouterr().err
    assert code == 3, err
    assert (
        "likely cause: truncation at max_tokens: 16 of 16 abstentions were cut at max_tokens before a verdict; "
        "raise the judge's max_tokens (--judge-opt max_tokens=N)" in err
    )
    # the call in flight when the run stopped may still be counted: 16 or 17 judgements
    assert re.search(r"abstentions: 1[67] truncated at max_tokens before </think> \(finish_reason=length\)", err), err
    assert _Handler.posts["length"] <= 16 + 2


def test_a_refused_key_stops_before_any_match_and_says_why(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOURNEY_HEALTH_KEY", "sk-wrong-key-for-the-test")
    (tmp_path / "out.jsonl").write_text('{"earlier": "run"}\n')
    code, _ = _cli(tmp_path, SERVER_ITEMS, *_openai(server, "badkey", "rrm", "api_key_env=TOURNEY_HEALTH_KEY"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "tourney: error: run stopped early (the judge cannot be used)" in err
    assert "HTTP 401" in err and "TOURNEY_HEALTH_KEY" in err and "sk-wrong-key" not in err
    assert _Handler.posts["badkey"] == 0  # the preflight stopped it: not one match was sent
    # nothing was delivered: an earlier run's files are left alone, no empty store is left behind
    assert (tmp_path / "out.jsonl").read_text() == '{"earlier": "run"}\n'
    assert not (tmp_path / "out.jsonl.meta.json").exists() and not (tmp_path / "out.jsonl.judgements.sqlite").exists()
    assert "no complete output was written" in err


def test_a_key_refused_mid_run_stops_the_run_at_once(server, tmp_path, capsys, monkeypatch):
    """A server whose /models needs no key (the preflight passes) and refuses every request."""
    monkeypatch.setenv("TOURNEY_HEALTH_KEY", "sk-wrong-key-for-the-test")
    code, _ = _cli(
        tmp_path,
        SERVER_ITEMS,
        *_openai(server, "badkeylater", "rrm", "api_key_env=TOURNEY_HEALTH_KEY"),
        "--concurrency",
        "4",
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "run stopped early (the judge cannot be used)" in err and "HTTP 401" in err and "TOURNEY_HEALTH_KEY" in err
    assert _Handler.posts["badkeylater"] <= 4 < SERVER_BUDGET  # not 150 requests: one per worker at most


def test_a_judge_cap_below_concurrency_is_said_at_the_start(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, _ = _cli(
        tmp_path, SERVER_ITEMS[:1], *_openai(server, "rrmstyle", "rrm", "concurrency=4"), "-q", "--concurrency", "32"
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.startswith(
        "tourney: note: the openai judge keeps at most 4 requests in flight (its option "
        "concurrency=4), fewer than --concurrency 32: 4 is the real limit"
    )


def test_a_judge_that_cannot_be_built_leaves_no_empty_store(tmp_path, capsys):
    code, _ = _cli(
        tmp_path,
        [{"prompt": "q", "responses": ["a", "b"]}],
        "--judge",
        "openai:http://127.0.0.1:9/v1?api_key=sk-in-the-url",
        "--model",
        "judge",
        "--format",
        "rrm",
    )
    assert code == 2 and "sk-in-the-url" not in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    # an existing store is never removed
    from tourney.store import JudgementStore

    JudgementStore(tmp_path / "out.jsonl.judgements.sqlite").close()
    code, _ = _cli(
        tmp_path,
        [{"prompt": "q", "responses": ["a", "b"]}],
        "--judge",
        "openai:http://127.0.0.1:9/v1?api_key=sk-in-the-url",
        "--model",
        "judge",
        "--format",
        "rrm",
    )
    assert code == 2 and (tmp_path / "out.jsonl.judgements.sqlite").exists()
