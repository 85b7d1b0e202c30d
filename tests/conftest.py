"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the workplace's shared data folder (beside the clone in CI); tests that need it skip without it
SHARED = Path(os.environ.get("TOURNEY_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA
