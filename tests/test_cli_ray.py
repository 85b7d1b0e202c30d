"""`tourney rank --executor ray` as a user runs it: the same output file as the local executor."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import require, write_jsonl

require("ray", "the ray extra: a real local Ray cluster")
pytestmark = pytest.mark.ray


def test_rank_on_ray_writes_the_same_file_as_local(tmp_path):
    rows = [
        {"id": f"p{i}", "prompt": f"question {i}", "responses": [f"answer {i}.{k}" for k in range(9)]}
        for i in range(60)
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    base = [
        sys.executable,
        "-m",
        "tourney",
        "rank",
        str(inp),
        "--no-progress",
        "--no-store",
        "--seed",
        "4",
        "--judge",
        "simulated:latency_median_s=0.002",
        "--strategy",
        "knockout:votes=3,both_orders=true",
    ]
    local = subprocess.run([*base, "--out", str(tmp_path / "local.jsonl")], capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr
    ray = subprocess.run(
        [
            *base,
            "--out",
            str(tmp_path / "ray.jsonl"),
            "--executor",
            "ray",
            "--replicas",
            "2",
            "--max-inflight-per-replica",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ray.returncode == 0, ray.stderr[-3000:]
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert "replica" in ray.stderr  # the per-replica load report
