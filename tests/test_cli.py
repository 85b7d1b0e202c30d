"""`tourney rank` end to end: bad input gets a clear error and nothing else is lost."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tourney.cli import main

from .conftest import ROOT, read_jsonl, write_jsonl

GOOD = {"prompt": "q", "responses": ["a", "b", "c"]}


def rank(tmp_path, rows, *args):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    code = main(["rank", str(inp), "--out", str(out), "--no-progress", "--quiet", *args])
    return code, (read_jsonl(out) if out.exists() else None)


def test_bad_lines_fail_alone_and_exit_nonzero(tmp_path, capsys):
    rows = [
        GOOD,
        "{not json",
        {"responses": ["a"]},
        {"prompt": "q", "responses": []},
        {"prompt": "q", "responses": ["a", 3]},
        {"prompt": "q", "responses": ["a", "a"]},
        {"id": "last", **GOOD},
    ]
    code, out = rank(tmp_path, rows)
    assert code == 1
    assert [o["status"] for o in out] == ["ok", "failed", "failed", "failed", "failed", "failed", "ok"]
    errs = [o.get("error", "") for o in out]
    assert "line 2: malformed JSON" in errs[1]
    assert "line 3: missing 'prompt'" in errs[2]
    assert "line 4: 'responses' must hold at least 1" in errs[3]
    assert "line 5: response 1 is a int" in errs[4]
    assert "line 6: responses 0 and 1 are identical" in errs[5]
    assert out[6]["id"] == "last" and out[6]["best_response"] in GOOD["responses"]
    stderr = capsys.readouterr().err
    assert stderr.count("tourney: failed: ") == 5


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--judge", "gpt9"], "unknown judge 'gpt9'; known: openai, replay, simulated, vllm"),
        (["--strategy", "bracket"], "unknown strategy 'bracket'; known: "),
        (["--strategy", "knockout:votes=0"], "votes must be an integer >= 1"),
        (["--judge", "replay:/nonexistent.jsonl"], "cannot read replay file"),
    ],
)
def test_unknown_components_are_usage_errors(tmp_path, capsys, args, fragment):
    code, _ = rank(tmp_path, [GOOD], *args)
    assert code == 2
    assert fragment in capsys.readouterr().err


def test_missing_input_file(tmp_path, capsys):
    assert main(["rank", str(tmp_path / "nope.jsonl"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_replay_without_the_record_fails_that_item_only(tmp_path):
    rep = write_jsonl(tmp_path / "rep.jsonl", [
        {"prompt": "q1", "first": "a", "second": "b", "verdict": "B"},
    ])
    rows = [{"id": "ok", "prompt": "q1", "responses": ["a", "b"]},
            {"id": "missing", "prompt": "q2", "responses": ["a", "b"]}]
    # seed chosen so that q1's single match shows "a" first, as recorded
    for seed in range(20):
        code, out = rank(tmp_path, rows, "--judge", f"replay:{rep}", "--seed", str(seed))
        if out[0]["status"] == "ok":
            break
    assert code == 1
    assert out[0]["status"] == "ok" and out[0]["best_response"] == "b"
    assert out[1]["status"] == "partial" and "no record for prompt missing" in out[1]["error"]


def test_n1_is_not_judged_and_n2_is_one_match(tmp_path):
    code, out = rank(tmp_path, [{"prompt": "q", "responses": ["only"]}, {"prompt": "q", "responses": ["x", "y"]}])
    assert code == 0
    assert out[0]["best_response"] == "only" and out[0]["comparisons"] == 0 and out[0]["samples"] == 0
    assert out[1]["comparisons"] == 1


def test_same_seed_same_file_and_meta_records_the_command(tmp_path):
    rows = [{"prompt": f"q{i}", "responses": [f"r{k}" for k in range(7)]} for i in range(10)]
    rank(tmp_path, rows, "--seed", "5")
    a = (tmp_path / "out.jsonl").read_bytes()
    rank(tmp_path, rows, "--seed", "5", "--concurrency", "1")
    assert (tmp_path / "out.jsonl").read_bytes() == a
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["seed"] == 5 and "--concurrency 1" in meta["command"] and meta["version"]


def test_console_script_runs_the_bundled_example():
    """The README's first command: installed entry point, bundled example, embedded default judge."""
    # the script installed beside THIS interpreter (the venv's bin/), never one found on PATH:
    # a machine where the project was also installed elsewhere must not hide a broken install
    script = Path(sys.executable).parent / ("tourney.exe" if os.name == "nt" else "tourney")
    assert script.is_file(), f"console script {script} missing: is the project installed in this environment?"
    out = subprocess.run([str(script), "rank", "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 6 and all(x["status"] == "ok" for x in lines)
    assert "ranked 6/6 prompts" in out.stderr


def test_python_m_and_help():
    out = subprocess.run([sys.executable, "-m", "tourney", "rank", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--judge" in out.stdout and "examples:" in out.stdout
