"""The replay judge on recorded real judgements, and the PRD Vicuna-80 converter."""

import asyncio
import json
from pathlib import Path

import pytest

from tourney import Tournament
from tourney.data import prd
from tourney.errors import JudgeError, SpecError
from tourney.judges import build_judge
from tourney.types import Match, Outcome

from .conftest import ROOT, write_jsonl

EXCERPT = ROOT / "examples" / "prd_vicuna80"


def _judge(j, m):
    return asyncio.run(j.judge(m))


def test_samples_in_file_order_and_missing_records(tmp_path):
    f = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {"prompt": "p", "first": "x", "second": "y", "verdict": "A"},
            {"prompt": "p", "first": "x", "second": "y", "verdict": "tie"},
            {"prompt": "p", "first": "y", "second": "x", "verdict": "b"},
        ],
    )
    j = build_judge(f"replay:{f}")
    got = _judge(j, Match("p", "x", "y", samples=2))
    assert [g.outcome for g in got] == [Outcome.A, Outcome.TIE]
    assert _judge(j, Match("p", "y", "x"))[0].outcome is Outcome.B
    with pytest.raises(JudgeError, match="no record for prompt q7"):
        _judge(j, Match("p", "x", "z", prompt_id="q7"))
    with pytest.raises(JudgeError, match="has 2 sample"):
        _judge(j, Match("p", "x", "y", samples=3))
    cyc = build_judge(f"replay:{f}", {"cycle": True})
    assert [g.outcome for g in _judge(cyc, Match("p", "x", "y", samples=3))] == [Outcome.A, Outcome.TIE, Outcome.A]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("{bad", "not valid JSON"),
        (json.dumps({"prompt": "p", "first": "x"}), "needs prompt, first, second and verdict"),
        (json.dumps({"prompt": "p", "first": "x", "second": "y", "verdict": "C"}), "verdict must be"),
    ],
)
def test_bad_replay_files(tmp_path, line, fragment):
    f = write_jsonl(tmp_path / "r.jsonl", [line])
    with pytest.raises(SpecError, match=fragment) as exc:
        build_judge(f"replay:{f}")
    assert "r.jsonl:1" in str(exc.value)


def test_missing_file_and_argument(tmp_path):
    with pytest.raises(SpecError, match="cannot read replay file"):
        build_judge(f"replay:{tmp_path / 'nope.jsonl'}")
    with pytest.raises(SpecError, match="needs a file"):
        build_judge("replay")


def test_prd_excerpt_ranks_sensibly():
    """The GPT-3.5 reviewer's real verdicts, both orders: GPT-4's answer should usually win."""
    items = [json.loads(x) for x in (EXCERPT / "prompts.jsonl").read_text().splitlines()]
    t = Tournament(f"replay:{EXCERPT / 'replay-gpt35.jsonl'}", "knockout:both_orders=true")
    res = t.rank(items)
    assert all(r.status == "ok" for r in res)
    picks = [it["models"][r.best] for it, r in zip(items, res)]
    assert picks.count("gpt4") >= 2, picks


def test_prd_converter_on_the_full_data(shared_data, tmp_path):
    counts = prd.convert(shared_data / "prd_vicuna80" / "vicuna80", tmp_path)
    assert counts["prompts.jsonl"] == 80
    # every reviewer judged all 20 ordered pairs of 5 models on 80 questions
    for reviewer in ("bard", "claude", "vicuna-13b"):
        assert counts[f"replay-{reviewer}.jsonl"] == 1600
    assert counts["replay-gpt35.jsonl"] == 1760  # plus a repeated run of gpt35 vs gpt4 (both orders)
    recs = [json.loads(x) for x in (tmp_path / "replay-gpt35.jsonl").read_text().splitlines()]
    first_wins = sum(r["verdict"] == "A" for r in recs)
    second_wins = sum(r["verdict"] == "B" for r in recs)
    assert first_wins + second_wins > 0
    items = [json.loads(x) for x in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    t = Tournament(f"replay:{tmp_path / 'replay-gpt35.jsonl'}", "knockout:both_orders=true", seed=3)
    res = t.rank(items)
    assert all(r.status == "ok" for r in res), [r.messages for r in res if r.status != "ok"]
    picks = [it["models"][r.best] for it, r in zip(items, res)]
    assert picks.count("gpt4") > 0.4 * len(picks)  # GPT-4 is the strongest of the five


def test_prd_converter_rejects_other_folders(tmp_path):
    with pytest.raises(Exception, match="does not look like the PRD"):
        prd.load(Path(tmp_path))
