"""`import tourney` stays light, and the public API is explicit."""

import subprocess
import sys

import tourney

HEAVY = ("ray", "vllm", "torch", "transformers", "httpx", "aiohttp", "scipy")


def test_import_tourney_loads_no_heavy_module():
    code = (
        "import sys, tourney, tourney.cli, tourney.judges.vllm_judge, tourney.judges.openai_judge,"
        " tourney.executors, tourney.harness, tourney.store, strategies.adaptive;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import tourney loaded heavy modules: {out.stdout.strip()}"


def test_all_is_sorted_and_resolvable():
    assert tourney.__all__ == sorted(tourney.__all__)
    for name in tourney.__all__:
        assert getattr(tourney, name) is not None


def test_results_live_in_types_and_stay_importable_from_before():
    import tourney.items
    import tourney.types

    assert tourney.PromptResult is tourney.types.PromptResult is tourney.items.PromptResult
    assert tourney.items.dumps is tourney.types.dumps
    assert "PromptResult" in tourney.types.__all__ and "PromptResult" not in tourney.items.__all__


def test_judges_share_plumbing_through_one_private_module():
    from tourney.judges import _common, openai_judge, vllm_judge

    for name in _common.__all__:
        assert getattr(vllm_judge, name) is getattr(_common, name)
    for name in (
        "SamplingSettings",
        "build_judgement",
        "match_seed",
        "render_messages",
        "request_id",
        "resolve_format",
    ):
        assert getattr(openai_judge, name) is getattr(_common, name)
