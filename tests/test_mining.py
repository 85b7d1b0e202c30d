"""DPO pair mining: TRL's format, the evidence per pair, filters, and precision on AlpacaEval."""

import json

import pytest

from tourney import Tournament, parse_item
from tourney.cli import main
from tourney.data.alpaca import load_items, pref_to_score
from tourney.mining import PairPolicy, mine_pairs

from .conftest import ROOT, read_jsonl, require, write_jsonl

EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"


def _item(d, k=0):
    return parse_item({x: d[x] for x in ("id", "prompt", "responses", "scores") if x in d}, k)


def test_trl_string_and_conversational_forms(tmp_path):
    assert main(["mine-pairs", str(EXAMPLE), "--out", str(tmp_path / "p.jsonl"), "--policy", "best_each",
                 "--strategy", "knockout:both_orders=true", "--no-progress", "--quiet"]) == 0
    pairs = read_jsonl(tmp_path / "p.jsonl")
    # 6 prompts with 5, 6, 4, 7, 1, 2 responses: best vs each other
    assert len(pairs) == 4 + 5 + 3 + 6 + 0 + 1
    for p in pairs:
        assert set(p) == {"prompt", "chosen", "rejected", "tourney"}
        assert p["chosen"] != p["rejected"]
        ev = p["tourney"]
        assert ev["chosen_rank"] == 1 and ev["rejected_rank"] > 1 and ev["margin"] >= 0
        if isinstance(p["prompt"], str):
            assert isinstance(p["chosen"], str) and isinstance(p["rejected"], str)
        else:  # the chat prompt of the example: conversational form, as TRL expects it
            assert p["prompt"][-1]["role"] == "user"
            assert p["chosen"][0]["role"] == "assistant" and p["rejected"][0]["role"] == "assistant"
    direct = [p for p in pairs if p["tourney"]["direct"]]
    assert direct and all(p["tourney"]["both_orders"] for p in direct)
    assert all(sum(p["tourney"]["votes"]) == 2 for p in direct)


def test_filters_and_ranked_input(tmp_path):
    ranked = tmp_path / "r.jsonl"
    assert main(["rank", str(EXAMPLE), "--out", str(ranked), "--strategy", "knockout:both_orders=true",
                 "--no-progress", "--quiet"]) == 0
    out = tmp_path / "p.jsonl"
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(ranked), "--out", str(out), "--policy", "margin",
                 "--require-consistent"]) == 0
    pairs = read_jsonl(out)
    assert pairs and all(p["tourney"]["orders_agree"] is True for p in pairs)
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(ranked), "--out", str(out), "--policy", "margin",
                 "--min-margin", "2"]) == 0
    assert all(p["tourney"]["margin"] >= 2 for p in read_jsonl(out))
    # a ranked file that belongs to another input is refused
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "zz", "prompt": "q", "responses": ["a", "b"]}])
    assert main(["mine-pairs", str(other), "--ranked", str(ranked), "--out", str(out)]) == 2


def test_confidence_from_uncertainty_and_votes():
    item = parse_item({"prompt": "q", "responses": ["a", "b", "c"]}, 0)
    res = {"status": "ok", "ranking": [2, 0, 1], "scores": [0.0, -1.0, 1.0], "uncertainty": [0.5, 0.5, 0.5],
           "matches": [{"first": 2, "second": 0, "votes": [3, 1, 0, 0, 0]}]}
    (p,) = mine_pairs(item, res, PairPolicy("best_worst"))
    assert p["tourney"]["chosen_index"] == 2 and p["tourney"]["direct"] is False
    assert p["tourney"]["confidence"] == pytest.approx(0.9976611, abs=1e-6)  # Phi(2 / sqrt(0.5))
    res.pop("uncertainty")
    pairs = list(mine_pairs(item, res, PairPolicy("best_each", min_confidence=0.7)))
    assert [q["tourney"]["rejected_index"] for q in pairs] == [0]  # 3 of 4 direct votes; vs 1 no votes
    assert pairs[0]["tourney"]["votes"] == [3, 1] and pairs[0]["tourney"]["orders_agree"] is None


def test_mined_pair_precision_rises_with_the_margin_filter(shared_data):
    """AlpacaEval 2.0, 9 models per prompt, the simulated judge driven by the recorded preferences:
    the precision of mined pairs (chosen really preferred) as a function of the margin filter."""
    items = load_items(shared_data / "alpaca_eval" / "multi_candidate_9models.jsonl", limit=150)
    res = Tournament("simulated:noise=1.0", "knockout:both_orders=true", seed=0).rank(
        [{k: it[k] for k in ("id", "prompt", "responses", "scores")} for it in items])
    precision = {}
    for margin in (0, 1, 2, 3):
        hits = []
        for it, r in zip(items, res):
            for p in mine_pairs(_item(it), r.to_json(), PairPolicy("margin", min_margin=margin)):
                ev = p["tourney"]
                hits.append(it["prefs"][ev["chosen_index"]] > it["prefs"][ev["rejected_index"]])
        precision[margin] = (sum(hits) / len(hits), len(hits))
    print("precision by margin:", json.dumps(precision))
    values = [precision[m][0] for m in (0, 1, 2, 3)]
    assert values == sorted(values), precision  # a stricter filter never loses precision here
    assert values[0] > 0.65 and values[3] > 0.93
    assert precision[3][1] < precision[0][1]


def test_pref_to_score():
    assert pref_to_score(1.5) == 0.0 and pref_to_score(2.0) > 9 and pref_to_score(1.0) < -9


def test_loads_with_trl_when_installed(tmp_path):
    trl_utils = require("trl.data_utils", "the dpo extra: mined pairs must load as TRL expects")
    datasets = require("datasets", "the dpo extra: mined pairs must load as TRL expects")
    # one form per file (a dataset column has one type): conversational for all
    assert main(["mine-pairs", str(EXAMPLE), "--out", str(tmp_path / "p.jsonl"), "--policy", "best_each",
                 "--conversational", "--no-progress", "--quiet"]) == 0
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "p.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    for row in read_jsonl(tmp_path / "p.jsonl"):
        ex = {k: row[k] for k in ("prompt", "chosen", "rejected")}
        assert trl_utils.is_conversational(ex)
        assert trl_utils.is_conversational(ds[0])


def test_ranked_file_that_does_not_match_the_input_is_refused(tmp_path):
    ranked = tmp_path / "r.jsonl"
    assert main(["rank", str(EXAMPLE), "--out", str(ranked), "--no-progress", "--quiet"]) == 0
    short = write_jsonl(tmp_path / "short.jsonl", ranked.read_text().splitlines()[:2])
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(short), "--out", str(tmp_path / "p.jsonl")]) == 2
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{not json"])
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(bad), "--out", str(tmp_path / "p.jsonl")]) == 2
