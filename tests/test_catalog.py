"""``tourney judges`` / ``tourney strategies``: every option of every judge and strategy, with
its default and meaning, in full, as text and JSON (issue 15 item 5)."""

from __future__ import annotations

import inspect
import json

import pytest

from tourney.cli import main
from tourney.judges.base import JUDGES
from tourney.strategy import STRATEGIES

#: strategies whose options have no meanings yet (their ``options`` block is missing or
#: incomplete): ``tourney strategies`` still lists their parameters and defaults. Adding a
#: strategy without meanings must update this list, so the gap is visible in review.
STRATEGIES_WITHOUT_MEANINGS: dict[str, list[str]] = {}


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_judge_option_is_listed_with_its_meaning(capsys):
    listed = {j["name"]: j for j in run_json(capsys, "judges")["judges"]}
    assert set(listed) == set(JUDGES.names()) and {"vllm", "openai", "simulated", "replay"} <= set(listed)
    for name, entry in listed.items():
        target = JUDGES.get(name)
        assert [o["name"] for o in entry["options"]] == list(target.options), name
        for o in entry["options"]:
            assert o["meaning"] == target.options[o["name"]]  # in full, never cut
        assert entry["summary"] and not entry["summary"].endswith((",", " the", " and"))
    sim = {o["name"]: o for o in listed["simulated"]["options"]}
    assert sim["position_bias"]["default"] == 0.1 and sim["latency_median_s"]["default"] == 0.0
    oa = {o["name"]: o for o in listed["openai"]["options"]}
    assert oa["timeout_s"]["default"] == 600.0 and oa["model"]["default"] == "required"
    assert oa["temperature"]["default"] == "the format's"
    vl = {o["name"]: o for o in listed["vllm"]["options"]}
    assert {"format", "max_tokens", "context_policy", "neutralise_candidates", "quote_check"} <= set(vl)
    assert vl["context_policy"]["default"] == "error"


def test_every_strategy_parameter_is_listed_with_its_default(capsys):
    listed = {s["name"]: s for s in run_json(capsys, "strategies")["strategies"]}
    assert set(listed) == set(STRATEGIES.names())
    for name, entry in listed.items():
        cls = STRATEGIES.get(name)
        sig = inspect.signature(cls.__init__)
        assert [o["name"] for o in entry["options"]] == cls.param_names(), name
        for o in entry["options"]:
            default = sig.parameters[o["name"]].default
            assert o["default"] == default or o["default"] == repr(default), (name, o)
    assert {o["name"]: o["default"] for o in listed["elo"]["options"]}["k"] == 32.0
    assert listed["elo"]["summary"].endswith("Chatbot Arena's first leaderboards.")  # the whole first paragraph


def test_strategies_without_option_meanings_are_listed():
    """One mechanism: a per-class ``options`` mapping (parameter -> meaning). Every meaning
    names a real parameter; the strategies that lack some are exactly the known list."""
    from tourney.cli.catalog import describe_strategies, strategy_meanings

    lacking = {}
    for entry in describe_strategies():
        cls = STRATEGIES.get(entry["name"])
        stray = set(strategy_meanings(cls)) - set(cls.param_names())
        assert not stray, f"{entry['name']}: meanings for parameters it does not have: {sorted(stray)}"
        if entry["undocumented"]:
            lacking[entry["name"]] = entry["undocumented"]
    assert lacking == STRATEGIES_WITHOUT_MEANINGS


def test_text_output_is_complete(capsys):
    assert main(["strategies"]) == 0
    text = capsys.readouterr().out
    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        assert f"{name}: " in text
        for p, meaning in getattr(cls, "options", {}).items():
            assert " ".join(meaning.split()[-3:]) in " ".join(text.split()), (name, p)  # the end is there
    assert main(["judges", "openai"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "breaker_s 60.0 ... or 2+ failed calls in a row spanning this many seconds (default 60)" in text
    assert "simulated:" not in text


def test_an_unknown_name_is_a_usage_error(capsys):
    assert main(["strategies", "nope"]) == 2
    assert "unknown strategy(s) nope; known: adaptive" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["judges", "strategies"])
def test_json_is_one_document(capsys, command):
    doc = run_json(capsys, command)
    assert list(doc) == [command] and all({"name", "summary", "options"} <= set(e) for e in doc[command])
