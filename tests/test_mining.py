"""DPO pair mining: TRL's format, the evidence per pair, filters, and precision on AlpacaEval."""

import json

import pytest

from tourney import Tournament, parse_item
from tourney.cli import main
from tourney.data.alpaca import load_items, pref_to_score
from tourney.mining import PairFile, PairPolicy, mine_kto, mine_pairs

from .conftest import ROOT, read_jsonl, require, write_jsonl

EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"


def _item(d, k=0):
    return parse_item({x: d[x] for x in ("id", "prompt", "responses", "scores") if x in d}, k)


def test_trl_forms_one_prompt_type_per_file(tmp_path):
    """The bundled example mixes plain and chat prompts: every row is conversational (TRL reads
    one type per column); an input of plain prompts only keeps the standard (string) form."""
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--out",
                str(tmp_path / "p.jsonl"),
                "--policy",
                "best_each",
                "--strategy",
                "knockout:both_orders=true",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    pairs = read_jsonl(tmp_path / "p.jsonl")
    # 6 prompts with 5, 6, 4, 7, 1, 2 responses: best vs each other
    assert len(pairs) == 4 + 5 + 3 + 6 + 0 + 1
    items = {it.id: it for it in map(_item, read_jsonl(EXAMPLE))}
    for p in pairs:
        assert set(p) == {"prompt", "chosen", "rejected", "tourney"}
        assert p["chosen"] != p["rejected"]
        ev = p["tourney"]
        assert ev["chosen_rank"] == 1 and ev["rejected_rank"] > 1 and ev["margin"] >= 0
        item = items[ev["id"]]
        # conversational form for every row, the plain prompts as one user message
        expected_prompt = (
            [{"role": "user", "content": item.prompt}]
            if isinstance(item.prompt, str)
            else [dict(m) for m in item.prompt]
        )
        assert p["prompt"] == expected_prompt
        assert p["chosen"] == [{"role": "assistant", "content": item.responses[ev["chosen_index"]]}]
        assert p["rejected"] == [{"role": "assistant", "content": item.responses[ev["rejected_index"]]}]
    assert any(len(p["prompt"]) == 2 for p in pairs)  # the chat prompt keeps its system message
    direct = [p for p in pairs if p["tourney"]["direct"]]
    assert direct and all(p["tourney"]["both_orders"] for p in direct)
    assert all(sum(p["tourney"]["votes"]) == 2 for p in direct)
    # plain prompts only: the standard form, strings
    plain = write_jsonl(tmp_path / "plain.jsonl", [r for r in read_jsonl(EXAMPLE) if isinstance(r["prompt"], str)])
    assert (
        main(
            [
                "mine-pairs",
                str(plain),
                "--out",
                str(tmp_path / "q.jsonl"),
                "--policy",
                "best_each",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    rows = read_jsonl(tmp_path / "q.jsonl")
    assert len(rows) == 4 + 5 + 3 + 0 + 1
    assert all(isinstance(r[k], str) for r in rows for k in ("prompt", "chosen", "rejected"))


def _pair(prompt, k):
    return {"prompt": prompt, "chosen": f"c{k}", "rejected": f"r{k}", "tourney": {"id": str(k)}}


@pytest.mark.parametrize("order", ["plain_first", "chat_first", "plain_only", "forced"])
def test_pair_file_writes_one_prompt_type(tmp_path, order):
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    prompts = {
        "plain_first": ["a", "b", chat, "c"],
        "chat_first": [chat, "a", "b"],
        "plain_only": ["a", "b"],
        "forced": ["a", "b"],
    }[order]
    f = PairFile(tmp_path / "p.jsonl", conversational=True if order == "forced" else None)
    for k, prompt in enumerate(prompts):
        f.write(_pair(prompt, k))
    f.close()
    rows = read_jsonl(tmp_path / "p.jsonl")
    assert [r["tourney"]["id"] for r in rows] == [str(k) for k in range(len(prompts))]  # order and evidence kept
    assert list(rows[0]) == ["prompt", "chosen", "rejected", "tourney"]  # key order kept
    if order == "plain_only":
        assert [r["prompt"] for r in rows] == ["a", "b"] and f.converted == 0
        return
    for r, prompt in zip(rows, prompts):
        assert r["prompt"] == (chat if not isinstance(prompt, str) else [{"role": "user", "content": prompt}])
        assert r["chosen"][0]["role"] == "assistant" and r["rejected"][0]["role"] == "assistant"
    assert f.converted == sum(isinstance(p, str) for p in prompts)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "p.jsonl" and not p.name.endswith(".meta.json")]
    assert not leftovers, leftovers  # no .conv or .partial file left behind


def test_kto_rows(tmp_path):
    item = parse_item({"id": "q", "prompt": "q", "responses": ["a", "b", "c", "d"]}, 0)
    res = {
        "status": "ok",
        "ranking": [2, 0, 3, 1],
        "scores": [3.0, 1.0, 4.0, 2.0],
        "matches": [{"first": 2, "second": 0, "votes": [1, 0, 0, 0, 0]}],
        "strategy": None,
        "judge": None,
    }
    rows = list(mine_kto(item, res, PairPolicy("best_each")))
    # the best is desirable once (not once per pair), every other candidate undesirable; best rank first
    assert [(r["completion"], r["label"], r["tourney"]["rank"]) for r in rows] == [
        ("c", True, 1),
        ("a", False, 2),
        ("d", False, 3),
        ("b", False, 4),
    ]
    best = rows[0]["tourney"]
    assert best["pairs"] == 3 and best["index"] == 2 and best["rejected_index"] == 1  # evidence: largest margin
    assert best["margin"] == 3.0 and best["id"] == "q"
    assert rows[1]["tourney"]["direct"] is True and rows[1]["tourney"]["votes"] == [1, 0]
    # margin policy: a middle candidate is chosen in one kept pair and rejected in another: left out
    rows = list(mine_kto(item, res, PairPolicy("margin", min_margin=1.0)))
    assert {(r["completion"], r["label"]) for r in rows} == {("c", True), ("b", False)}
    # the same fields and the same evidence keys as a DPO pair, plus index/rank/pairs
    (pair,) = mine_pairs(item, res, PairPolicy("best_worst"))
    (good, bad) = mine_kto(item, res, PairPolicy("best_worst"))
    assert set(good["tourney"]) == set(pair["tourney"]) | {"index", "rank", "pairs"}
    assert (good["label"], bad["label"]) == (True, False) and good["completion"] == pair["chosen"]
    # conversational, from the CLI on the mixed example
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--out",
                str(tmp_path / "k.jsonl"),
                "--trl-format",
                "kto",
                "--policy",
                "best_each",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    rows = read_jsonl(tmp_path / "k.jsonl")
    assert all(set(r) == {"prompt", "completion", "label", "tourney"} for r in rows)
    assert all(r["prompt"][-1]["role"] == "user" and r["completion"][0]["role"] == "assistant" for r in rows)
    # one desirable row per prompt with >= 2 responses, every other candidate undesirable
    assert sum(r["label"] for r in rows) == 5 and len(rows) == 5 + 6 + 4 + 7 + 2


def test_filters_and_ranked_input(tmp_path):
    ranked = tmp_path / "r.jsonl"
    assert (
        main(
            [
                "rank",
                str(EXAMPLE),
                "--out",
                str(ranked),
                "--strategy",
                "knockout:both_orders=true",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    out = tmp_path / "p.jsonl"
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--ranked",
                str(ranked),
                "--out",
                str(out),
                "--policy",
                "margin",
                "--require-consistent",
            ]
        )
        == 0
    )
    pairs = read_jsonl(out)
    assert pairs and all(p["tourney"]["orders_agree"] is True for p in pairs)
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--ranked",
                str(ranked),
                "--out",
                str(out),
                "--policy",
                "margin",
                "--min-margin",
                "2",
            ]
        )
        == 0
    )
    assert all(p["tourney"]["margin"] >= 2 for p in read_jsonl(out))
    # a ranked file that belongs to another input is refused
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "zz", "prompt": "q", "responses": ["a", "b"]}])
    assert main(["mine-pairs", str(other), "--ranked", str(ranked), "--out", str(out)]) == 2


def test_confidence_from_uncertainty_and_votes():
    item = parse_item({"prompt": "q", "responses": ["a", "b", "c"]}, 0)
    res = {
        "status": "ok",
        "ranking": [2, 0, 1],
        "scores": [0.0, -1.0, 1.0],
        "uncertainty": [0.5, 0.5, 0.5],
        "matches": [{"first": 2, "second": 0, "votes": [3, 1, 0, 0, 0]}],
    }
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
        [{k: it[k] for k in ("id", "prompt", "responses", "scores")} for it in items]
    )
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
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--out",
                str(tmp_path / "p.jsonl"),
                "--policy",
                "best_each",
                "--conversational",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
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


#: hand edits of a ranked line (capital-au: 5 candidates) that must be refused, with the words the error names
RANKED_FAULTS = {
    "duplicate in ranking": (lambda r: r.update(ranking=[r["ranking"][0]] * 5), "is not a permutation"),
    "index -1": (lambda r: r["ranking"].__setitem__(4, -1), "is not a permutation"),
    "index out of range": (lambda r: r["ranking"].__setitem__(4, 99), "is not a permutation"),
    "ranking null": (lambda r: r.update(ranking=None), "'ranking' must be a list of candidate indices, got null"),
    "ranking a string": (lambda r: r.update(ranking="01234"), "'ranking' must be a list"),
    "float indices": (lambda r: r.update(ranking=[float(c) for c in r["ranking"]]), "'ranking' must be a list"),
    "NaN score": (lambda r: r["scores"].__setitem__(0, float("nan")), "'scores' must be 5 finite numbers"),
    "infinite score": (lambda r: r["scores"].__setitem__(0, float("inf")), "'scores' must be 5 finite numbers"),
    "scores too short": (lambda r: r.update(scores=r["scores"][:2]), "'scores' must be 5 finite numbers"),
    "scores as strings": (lambda r: r.update(scores=[str(x) for x in r["scores"]]), "'scores' must be 5 finite"),
    "order against scores": (lambda r: r.update(ranking=r["ranking"][::-1]), "'scores' disagree with 'ranking'"),
    "best not first": (lambda r: r.update(best=r["ranking"][1]), "'best' is"),
    "best_response edited": (lambda r: r.update(best_response="Sydney."), "'best_response' is not the text"),
    "uncertainty too short": (lambda r: r.update(uncertainty=[0.1]), "'uncertainty' must be null or 5 finite"),
    "negative uncertainty": (lambda r: r.update(uncertainty=[-1.0] * 5), "'uncertainty' must be null or 5"),
    "matches null": (lambda r: r.update(matches=None), "'matches' must be a list"),
    "match without votes": (lambda r: r["matches"][0].pop("votes"), "match 0: 'votes' must be 5 counts"),
    "votes a string": (lambda r: r["matches"][0].update(votes="12"), "match 0: 'votes' must be 5 counts"),
    "negative votes": (lambda r: r["matches"][0].update(votes=[-1, 0, 0, 0, 0]), "match 0: 'votes'"),
    "match against itself": (
        lambda r: r["matches"][0].update(second=r["matches"][0]["first"]),
        "match 0: 'first' and 'second' must be two different candidates",
    ),
    "match index out of range": (lambda r: r["matches"][0].update(first=42), "must be two different candidates"),
    "unknown status": (lambda r: r.update(status="done"), "'status' must be ok, partial, coin_flip or failed"),
    "judge not an object": (lambda r: r.update(judge="simulated"), "'judge' must be an object"),
    "another item's id": (lambda r: r.update(id="prime-check"), "result is for item 'prime-check'"),
}


@pytest.fixture(scope="module")
def ranked_example(tmp_path_factory):
    """The bundled example ranked once, and the pairs mined from it."""
    d = tmp_path_factory.mktemp("ranked")
    assert (
        main(
            [
                "rank",
                str(EXAMPLE),
                "--out",
                str(d / "r.jsonl"),
                "--strategy",
                "knockout:both_orders=true",
                "--no-store",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--ranked",
                str(d / "r.jsonl"),
                "--out",
                str(d / "p.jsonl"),
                "--policy",
                "best_each",
            ]
        )
        == 0
    )
    return (d / "r.jsonl").read_text(encoding="utf-8").splitlines(), read_jsonl(d / "p.jsonl")


@pytest.mark.parametrize("fault", sorted(RANKED_FAULTS))
def test_a_bad_ranked_line_is_reported_and_skipped(tmp_path, capsys, ranked_example, fault):
    """Issue 11: a hand-edited ranked file gave tracebacks and wrong pairs (chosen == rejected,
    index -1, a NaN margin). Each bad line is now an error naming the file, the line and the
    field; the line is skipped, every other line is mined, the exit status is 1."""
    lines, clean_pairs = ranked_example
    edit, words = RANKED_FAULTS[fault]
    row = json.loads(lines[0])
    edit(row)
    ranked = write_jsonl(tmp_path / "r.jsonl", [json.dumps(row)] + lines[1:])
    out = tmp_path / "p.jsonl"
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(ranked), "--out", str(out), "--policy", "best_each"]) == 1
    err = capsys.readouterr().err
    assert f"{ranked} line 1: " in err and words in err and "line skipped" in err, err
    assert "Traceback" not in err
    # the other lines' pairs, exactly as from the clean file
    assert read_jsonl(out) == [p for p in clean_pairs if p["tourney"]["id"] != "capital-au"]


def test_ranked_lines_out_of_order_encoding_and_bom(tmp_path, capsys, ranked_example):
    lines, clean_pairs = ranked_example
    out = tmp_path / "p.jsonl"
    # two lines swapped: both reported (each names the id it holds and the one expected), the rest mined
    swapped = write_jsonl(tmp_path / "s.jsonl", [lines[1], lines[0]] + lines[2:])
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(swapped), "--out", str(out), "--policy", "best_each"]) == 1
    err = capsys.readouterr().err
    assert f"{swapped} line 1: result is for item 'prime-check', the input's item here is 'capital-au'" in err
    assert f"{swapped} line 2: result is for item 'capital-au'" in err
    assert read_jsonl(out) == [p for p in clean_pairs if p["tourney"]["id"] not in ("capital-au", "prime-check")]
    # a line that is not UTF-8 or not JSON: reported with its line number, never replaced characters
    raw = "\n".join(lines).encode("utf-8").split(b"\n")
    raw[2] = raw[2].replace(b"haiku", b"haik\xff")
    raw[3] = b"{not json"
    broken = tmp_path / "b.jsonl"
    broken.write_bytes(b"\n".join(raw) + b"\n")
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(broken), "--out", str(out), "--policy", "best_each"]) == 1
    err = capsys.readouterr().err
    assert f"{broken} line 3: not UTF-8 (byte 0xff" in err and f"{broken} line 4: malformed JSON" in err
    assert "2 line(s) skipped" in err
    assert {p["tourney"]["id"] for p in read_jsonl(out)} == {"capital-au", "prime-check", "units"}
    # a byte-order mark and blank lines are fine
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + "\n\n".join(lines).encode("utf-8") + b"\n")
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(bom), "--out", str(out), "--policy", "best_each"]) == 0
    assert read_jsonl(out) == clean_pairs


def test_a_failed_item_in_the_ranked_file_is_reported(tmp_path, capsys, ranked_example):
    lines, clean_pairs = ranked_example
    failed = json.dumps({"id": "haiku", "status": "failed", "error": "judge exploded"})
    ranked = write_jsonl(tmp_path / "r.jsonl", lines[:2] + [failed] + lines[3:])
    out = tmp_path / "p.jsonl"
    assert main(["mine-pairs", str(EXAMPLE), "--ranked", str(ranked), "--out", str(out), "--policy", "best_each"]) == 1
    assert "failed: item haiku" in capsys.readouterr().err
    assert read_jsonl(out) == [p for p in clean_pairs if p["tourney"]["id"] != "haiku"]
