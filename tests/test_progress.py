"""Progress everywhere (issue 15 item 4): the ETA from completed work, plain periodic lines off
a terminal, a live line on one, and a bar from the Python API. No timed assertion: the ETA is
compared with the run's real length as a loose ratio."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tourney import Tournament
from tourney.progress import ETA_MIN_RESULTS, EtaEstimator, Progress, make_progress
from tourney.runner import rank_file
from tourney.scheduler import RunStats

from .conftest import ROOT, write_jsonl

#: a judge with latency, so that the run takes a while and prompts overlap (instant judges finish
#: before any display could matter)
SLOW = "simulated:latency_median_s=0.01,latency_sigma=0.5"


def items(n: int, k: int = 8) -> list[dict]:
    return [
        {"id": f"q{i}", "prompt": f"question {i}", "responses": [f"answer {i}.{j}" for j in range(k)]} for i in range(n)
    ]


class Recorder(Progress):
    """A plain display into a buffer that also records, at every refresh, (elapsed, prompts,
    samples, this module's ETA, the naive ETA over prompts)."""

    rows: list[tuple[float, int, int, float | None, float | None]]

    def __init__(self, total):
        super().__init__(total, io.StringIO(), interval_s=0.02, live=False)
        self.rows = []

    def __call__(self, stats, force=False):
        el = stats.elapsed_s
        _, eta = self.describe(stats)
        naive = el * (self.total - stats.prompts) / stats.prompts if stats.prompts else None
        self.rows.append((el, stats.prompts, stats.samples, eta, naive))
        super().__call__(stats, force)


def test_the_eta_is_not_wildly_wrong_at_the_start(tmp_path):
    """150 prompts of 8 candidates (knockout: 1,050 judge samples) through 8 workers with ~10 ms
    latency: 64 prompts are in flight at once, so the first finish late and together. The first
    ETA shown, plus the time it was shown at, predicts the run's length within a factor 2 (the
    naive estimate over prompts, at the first finished prompt, is far off; reported, not
    asserted); so do the ETAs at a quarter, half and three quarters of the run."""
    path = write_jsonl(tmp_path / "in.jsonl", items(150))
    shown: list[Recorder] = []

    def factory(total):
        shown.append(Recorder(total))
        return shown[0]

    report = rank_file(str(path), lambda item, res: None, judge=SLOW, concurrency=8, progress=factory)
    total_s = report.stats["elapsed_s"]
    rows = shown[0].rows
    assert report.stats["samples"] == 150 * 7 and total_s > 0
    with_eta = [r for r in rows if r[3] is not None and r[1] < 150]
    assert with_eta, "no ETA was ever shown"
    first = with_eta[0]
    assert 0.5 <= (first[0] + first[3]) / total_s <= 2.0, (first, total_s)
    for q in (0.25, 0.5, 0.75):
        el, _, _, eta, _ = min(with_eta, key=lambda r: abs(r[0] - q * total_s))
        assert 0.5 <= (el + eta) / total_s <= 2.0, (q, el, eta, total_s)
    naive = next(r for r in rows if r[4] is not None)
    print(
        f"run {total_s:.2f}s; first ETA at {first[0]:.2f}s predicts {first[0] + first[3]:.2f}s; "
        f"naive at {naive[0]:.2f}s predicts {naive[0] + naive[4]:.2f}s"
    )


def test_no_eta_before_enough_work_is_done():
    est = EtaEstimator(100)
    assert est.eta(5.0, 0, 50) is None  # no result yet: samples per prompt unknown
    for _ in range(ETA_MIN_RESULTS - 1):
        est.add_result(10)
    assert est.eta(5.0, 2, 50) is None
    est.add_result(10)
    assert est.eta(5.0, 3, 10) is None  # 10 of ~1,000 samples: under the 2% floor
    assert est.eta(5.0, 3, 200) == pytest.approx((1000 - 200) * 5.0 / 200)
    assert EtaEstimator(None).eta(5.0, 3, 200) is None  # unknown total (stdin)
    assert est.eta(5.0, 100, 1000) == 0.0


def test_plain_lines_have_no_carriage_returns_and_come_periodically(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", items(60))
    buf = io.StringIO()
    made: list[Progress] = []

    def factory(total):
        made.append(Progress(total, buf, interval_s=0.05, live=False))
        return made[0]

    rank_file(str(path), lambda item, res: None, judge=SLOW, concurrency=4, progress=factory)
    text = buf.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) >= 3 and all(line.startswith("[tourney] ") for line in lines)
    assert lines[-1].startswith("[tourney] 60/60 prompts (100%)")
    assert any("ETA" in line for line in lines[:-1])
    assert text.endswith("\n")
    # a run shorter than the interval prints nothing
    quiet = io.StringIO()
    rank_file(
        str(path), lambda item, res: None, progress=lambda total: Progress(total, quiet, interval_s=60, live=False)
    )
    assert quiet.getvalue() == ""


def test_a_live_line_is_rewritten_in_place():
    buf = io.StringIO()
    p = Progress(10, buf, interval_s=0.0, live=True)
    st = RunStats()
    for k in range(1, 4):
        st.prompts, st.samples = k, 5 * k
        p(st)
    p.close(st)
    out = buf.getvalue()
    assert out.count("\r") == 4 and out.endswith("\n") and "\x1b[K" in out
    assert "[tourney] 3/10 prompts (30%)" in out


def test_the_command_line_prints_plain_lines_when_stderr_is_not_a_terminal(tmp_path):
    """A subprocess: stderr is a pipe, no flag given: plain lines every interval, no \\r; -q
    turns them off."""
    path = write_jsonl(tmp_path / "in.jsonl", items(60))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOURNEY_PROGRESS_INTERVAL": "0.05"}
    cmd = [sys.executable, "-m", "tourney", "rank", str(path), "--judge", SLOW, "--concurrency", "4", "--no-store"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    progress = [line for line in out.stderr.splitlines() if line.startswith("[tourney] ")]
    assert len(progress) >= 2 and "\r" not in out.stderr and "\x1b" not in out.stderr
    assert len(out.stdout.splitlines()) == 60
    quiet = subprocess.run([*cmd, "-q"], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and "[tourney] " not in quiet.stderr


def test_the_python_api_shows_a_bar(capsys):
    """Tournament(progress=True) shows a bar (tqdm when installed) on stderr; False shows
    nothing; None (auto) is off when stderr is not a terminal or notebook (as under pytest)."""
    with Tournament("simulated", "knockout", progress=True) as t:
        res = t.rank(items(5, 4))
    err = capsys.readouterr().err
    assert len(res) == 5 and "tourney" in err and "5/5" in err
    for setting in (False, None):
        with Tournament("simulated", "knockout", progress=setting) as t:
            t.rank(items(5, 4))
        assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        Tournament(progress="yes")  # type: ignore[arg-type]


def test_without_tqdm_the_api_uses_the_line_renderer(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    buf = io.StringIO()
    shown = make_progress(3, True, stream=buf)
    assert isinstance(shown, Progress) and not shown.live
    assert make_progress(3, None, stream=buf) is None  # auto, and a StringIO is not a terminal


def test_import_tourney_does_not_import_tqdm():
    code = "import sys, tourney, tourney.cli, tourney.progress, tourney.cli.progress; print('tqdm' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "False"


def test_results_file_is_the_same_with_and_without_progress(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", items(12, 5))
    outs = []
    for progress in (None, lambda total: Progress(total, io.StringIO(), interval_s=0.0, live=False)):
        lines: list[str] = []
        rank_file(
            str(path),
            lambda item, res: lines.append(json.dumps(res.to_json(), sort_keys=True)),
            judge="simulated",
            progress=progress,
        )
        outs.append(lines)
    assert outs[0] == outs[1]
    assert Path(path).exists()
