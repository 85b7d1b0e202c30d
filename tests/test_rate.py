"""``tourney rate``: leaderboards from Chatbot Arena battles and tourney judgement logs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tourney import rating
from tourney.cli import main
from tourney.leaderboard import read_pairwise

#: rounding of ratings in the leaderboard (2 decimals)
RATING_TOL = 0.006

BATTLES = [
    {"model_a": "gpt-4", "model_b": "claude-1", "winner": "model_a", "tstamp": 5},
    {"model_a": "claude-1", "model_b": "vicuna-13b", "winner": "model_a", "tstamp": 1},
    {"model_a": "vicuna-13b", "model_b": "gpt-4", "winner": "model_b", "tstamp": 2},
    {"model_a": "vicuna-13b", "model_b": "claude-1", "winner": "model_a", "tstamp": 3},
    {"model_a": "gpt-4", "model_b": "vicuna-13b", "winner": "tie", "tstamp": 4},
    {"model_a": "claude-1", "model_b": "gpt-4", "winner": "model_a", "tstamp": 6},
    {"model_a": "gpt-4", "model_b": "claude-1", "winner": "tie (bothbad)", "tstamp": 0},
    {"model_a": "vicuna-13b", "model_b": "gpt-4", "winner": "model_a", "tstamp": 7},
]
NAMES = ["gpt-4", "claude-1", "vicuna-13b"]


def write(tmp_path: Path, records, name: str = "in.jsonl") -> str:
    p = tmp_path / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return str(p)


def rate_json(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["rate", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def arrays(records):
    idx = {m: k for k, m in enumerate(NAMES)}
    y = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
    return (
        np.array([idx[r["model_a"]] for r in records]),
        np.array([idx[r["model_b"]] for r in records]),
        np.array([y[r["winner"]] for r in records]),
    )


def by_model(board: dict) -> dict[str, dict]:
    return {row["model"]: row for row in board["leaderboard"]}


def test_bradley_terry_leaderboard(tmp_path, capsys):
    code, board, err = rate_json(capsys, write(tmp_path, BATTLES))
    assert code == 0 and err == ""
    f, s, y = arrays(BATTLES)
    fit = rating.bradley_terry(3, f, s, y)
    rows = by_model(board)
    for k, m in enumerate(NAMES):
        assert rows[m]["rating"] == pytest.approx(fit.elo[k], abs=RATING_TOL)
        half = 1.959964 * fit.se[k] * 400 / math.log(10)
        assert rows[m]["ci_low"] == pytest.approx(fit.elo[k] - half, abs=RATING_TOL)
        assert rows[m]["ci_high"] == pytest.approx(fit.elo[k] + half, abs=RATING_TOL)
    assert [r["rank"] for r in board["leaderboard"]] == [1, 2, 3]
    ratings = [r["rating"] for r in board["leaderboard"]]
    assert ratings == sorted(ratings, reverse=True)
    assert rows["gpt-4"]["comparisons"] == 6 and rows["gpt-4"]["ties"] == 2
    assert sum(r["wins"] for r in board["leaderboard"]) == 6  # 8 records, 2 ties
    assert board["records"] == 8 and board["components"] == 1


def test_elo_is_online_in_timestamp_order(tmp_path, capsys):
    code, board, _ = rate_json(capsys, write(tmp_path, BATTLES), "--method", "elo", "--k", "16")
    assert code == 0
    ordered = sorted(BATTLES, key=lambda r: r["tstamp"])
    f, s, y = arrays(ordered)
    want = rating.elo(3, f, s, y, k=16)
    rows = by_model(board)
    for k, m in enumerate(NAMES):
        assert rows[m]["rating"] == pytest.approx(want[k], abs=RATING_TOL)
    f, s, y = arrays(BATTLES)  # file order gives other ratings: the order is really used
    assert not np.allclose(rating.elo(3, f, s, y, k=16), want)
    assert rows["gpt-4"]["ci_low"] is None  # no interval without --bootstrap


def test_elo_time_order_is_stable_and_missing_stamps_stay_in_place(tmp_path):
    recs = [
        {"model_a": "a", "model_b": "b", "winner": "model_a", "tstamp": 2},
        {"model_a": "b", "model_b": "c", "winner": "model_a"},  # stays right after the first
        {"model_a": "c", "model_b": "a", "winner": "model_a", "tstamp": 1},
        {"model_a": "a", "model_b": "c", "winner": "tie", "tstamp": 1},
    ]
    from tourney.leaderboard import _time_order

    data = read_pairwise([json.dumps(r) for r in recs])
    assert _time_order(data.tstamp) == [2, 3, 0, 1]


def test_bootstrap_interval_is_seeded(tmp_path, capsys):
    path = write(tmp_path, BATTLES * 3)
    for method in ("bradley_terry", "elo"):
        a = rate_json(capsys, path, "--method", method, "--bootstrap", "40", "--seed", "1", "--l2", "0.01")[1]
        b = rate_json(capsys, path, "--method", method, "--bootstrap", "40", "--seed", "1", "--l2", "0.01")[1]
        c = rate_json(capsys, path, "--method", method, "--bootstrap", "40", "--seed", "2", "--l2", "0.01")[1]
        assert a == b and a != c
        for row in a["leaderboard"]:
            assert row["ci_low"] <= row["ci_high"]
        assert "bootstrap" in a["interval"]


def test_ties_drop_and_position(tmp_path, capsys):
    path = write(tmp_path, BATTLES)
    half = rate_json(capsys, path)[1]
    drop = rate_json(capsys, path, "--ties", "drop")[1]
    assert drop["records"] == 6 and half["records"] == 8
    assert by_model(drop)["gpt-4"]["comparisons"] == 4
    pos = rate_json(capsys, path, "--position")[1]
    assert set(pos["position"]) == {"coef", "se", "elo"}


def test_judgement_log_format(tmp_path, capsys):
    """The engine's own judgement log (the replay format): names from first_model/second_model
    when present, else the response text; abstentions are counted, not rated."""
    recs = [
        {
            "prompt": "q",
            "first": "text one",
            "second": "text two",
            "verdict": "A",
            "first_model": "m1",
            "second_model": "m2",
            "first_index": 0,
            "second_index": 1,
        },
        {
            "prompt": "q",
            "first": "text two",
            "second": "text one",
            "verdict": "B",
            "first_model": "m2",
            "second_model": "m1",
        },
        {
            "prompt": "q",
            "first": "text two",
            "second": "text one",
            "verdict": "A",
            "first_model": "m2",
            "second_model": "m1",
        },
        {
            "prompt": "q",
            "first": "text one",
            "second": "text two",
            "verdict": "abstain",
            "first_model": "m1",
            "second_model": "m2",
        },
    ]
    code, board, _ = rate_json(capsys, write(tmp_path, recs))
    assert code == 0 and set(by_model(board)) == {"m1", "m2"}
    assert board["records"] == 3 and board["abstentions"] == 1
    assert by_model(board)["m1"]["wins"] == 2
    plain = [{k: v for k, v in r.items() if not k.endswith("_model")} for r in recs]
    code, board, _ = rate_json(capsys, write(tmp_path, plain))
    assert code == 0 and set(by_model(board)) == {"text one", "text two"}


def test_bad_lines_are_reported_and_the_rest_is_rated(tmp_path, capsys):
    lines = [
        json.dumps(BATTLES[0]),
        "{not json",
        json.dumps({**BATTLES[1], "winner": "gpt-4"}),
        json.dumps(BATTLES[2]),
        "",
        json.dumps({"model_a": "x"}),
        json.dumps([1, 2]),
        json.dumps({"first": "a", "second": "b"}),
        json.dumps({**BATTLES[3], "tstamp": "yesterday"}),
        json.dumps(BATTLES[4]),
    ]
    code, board, err = rate_json(capsys, write(tmp_path, lines), "--l2", "0.01")
    assert code == 1
    for no in (2, 3, 6, 7, 8, 9):
        assert f"in.jsonl:{no}:" in err
    assert "malformed JSON" in err and "unknown winner label 'gpt-4'" in err
    assert "verdict" in err and "tstamp" in err
    assert board["records"] == 3 and board["bad_lines"] == 6


@pytest.mark.parametrize(
    "records,message",
    [
        ([], "no valid records"),
        (["garbage"], "no valid records"),
        ([{"model_a": "a", "model_b": "a", "winner": "tie"}], "no valid records"),
        ([{"prompt": "q", "first": "x", "second": "y", "verdict": "abstain"}], "no valid records"),
        ([{"model_a": "a", "model_b": "b", "winner": "tie"}] * 2, None),
    ],
)
def test_nothing_to_rate_is_a_clear_error(tmp_path, capsys, records, message):
    code = main(["rate", write(tmp_path, records)])
    out, err = capsys.readouterr()
    if message is None:
        assert code == 0 and "1000.0" in out
    else:
        assert code == 2 and message in err and "tourney: error" in err


def test_single_model_is_an_error(tmp_path, capsys):
    data = read_pairwise([json.dumps({"model_a": "a", "model_b": "a", "winner": "model_a"})])
    data.item("a")
    data.first.append(0)
    data.second.append(0)
    data.y.append(1.0)
    data.tstamp.append(None)
    from tourney.errors import InputError
    from tourney.leaderboard import rate

    with pytest.raises(InputError, match="only one model"):
        rate(data)
    code = main(["rate", write(tmp_path, [{"model_a": "a", "model_b": "a", "winner": "model_a"}])])
    assert code == 2 and "self-pair dropped" in capsys.readouterr().err


def test_unbeaten_model_needs_l2(tmp_path, capsys):
    recs = [
        {"model_a": "a", "model_b": "b", "winner": "model_a"},
        {"model_a": "b", "model_b": "c", "winner": "model_a"},
        {"model_a": "c", "model_b": "b", "winner": "model_b"},
        {"model_a": "a", "model_b": "c", "winner": "model_a"},
    ]
    path = write(tmp_path, recs)
    code = main(["rate", path])
    err = capsys.readouterr().err
    assert code == 2 and "never lost" in err and "--l2" in err
    code, board, _ = rate_json(capsys, path, "--l2", "0.01")
    assert code == 0 and board["leaderboard"][0]["model"] == "a"


def test_disconnected_models_are_reported(tmp_path, capsys):
    recs = [
        {"model_a": "a", "model_b": "b", "winner": "model_a"},
        {"model_a": "b", "model_b": "a", "winner": "model_a"},
        {"model_a": "c", "model_b": "d", "winner": "model_a"},
        {"model_a": "d", "model_b": "c", "winner": "model_a"},
        {"model_a": "c", "model_b": "d", "winner": "model_a"},
    ]
    code, board, err = rate_json(capsys, write(tmp_path, recs))
    assert code == 0 and "2 disconnected components" in err
    comp = {r["model"]: r["component"] for r in board["leaderboard"]}
    assert comp["a"] == comp["b"] != comp["c"] == comp["d"]


def test_table_and_csv_formats(tmp_path, capsys):
    path = write(tmp_path, BATTLES)
    assert main(["rate", path]) == 0
    table = capsys.readouterr().out
    head = table.splitlines()[0].split()
    assert head[:4] == ["rank", "model", "rating", "95%"]
    assert "gpt-4" in table and head[5] == "comparisons"
    assert main(["rate", path, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["model"] for r in rows] and set(rows[0]) >= {
        "rank",
        "model",
        "rating",
        "ci_low",
        "ci_high",
        "comparisons",
    }
    assert {r["model"] for r in rows} == set(NAMES)


def test_help_documents_the_formats(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "model_a" in out and "--bootstrap" in out and "verdict" in out


#: agreement with R BradleyTerry2 (log-strength units; the leaderboard rounds ratings to 0.01 Elo)
R_TOL = 1e-3


def test_home_advantage_matches_r_bradleyterry2(tmp_path, capsys, shared_data):
    """Agresti's baseball data as battles (home team shown first): the strengths and the home
    advantage agree with R BradleyTerry2's BTm(..., refcat = "Baltimore", at.home)."""
    recs = []
    with (shared_data / "r_bt_datasets" / "baseball.csv").open() as fh:
        for row in csv.DictReader(fh):
            home, away = row["home.team"], row["away.team"]
            recs += [{"model_a": home, "model_b": away, "winner": "model_a"}] * int(row["home.wins"])
            recs += [{"model_a": home, "model_b": away, "winner": "model_b"}] * int(row["away.wins"])
    code, board, _ = rate_json(capsys, write(tmp_path, recs), "--position")
    assert code == 0
    ref = {}
    with (shared_data / "r_bt_datasets" / "baseball_coef_R_homeadv.csv").open() as fh:
        for row in csv.reader(fh):
            if row[0]:
                ref[row[0]] = (float(row[1]), float(row[2]))
    assert board["position"]["coef"] == pytest.approx(ref["at.home"][0], abs=R_TOL)
    assert board["position"]["se"] == pytest.approx(ref["at.home"][1], abs=R_TOL)
    per_point = 400 / math.log(10)
    rows = by_model(board)
    for key, (est, _) in ref.items():
        if key.startswith("team"):
            diff = (rows[key[4:]]["rating"] - rows["Baltimore"]["rating"]) / per_point
            assert diff == pytest.approx(est, abs=R_TOL)


def test_the_python_api_gives_the_board_the_command_prints(tmp_path, capsys):
    """tourney.leaderboard is pure: records given as mappings, no file, the same board."""
    from tourney.leaderboard import rate

    cases = [
        ([], {}),
        (["--method", "elo", "--bootstrap", "20", "--seed", "4"], {"method": "elo", "bootstrap": 20, "seed": 4}),
        (["--position", "--l2", "0.01"], {"position": True, "l2": 0.01}),
    ]
    for argv, options in cases:
        code, board, err = rate_json(capsys, write(tmp_path, BATTLES), *argv)
        assert code == 0, err
        assert rate(read_pairwise(BATTLES), **options) == board


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "glicko"}, "unknown method 'glicko'; known: bradley_terry, elo"),
        ({"ties": "third"}, "ties must be one of half, drop"),
        ({"bootstrap": -1}, "bootstrap must be an integer >= 0"),
        ({"bootstrap": 2.5}, "bootstrap must be an integer >= 0"),
        ({"l2": float("nan")}, "l2 must be >= 0"),
        ({"k": 0}, "k must be > 0"),
    ],
)
def test_bad_options_are_named(options, message):
    from tourney.errors import InputError
    from tourney.leaderboard import rate

    with pytest.raises(InputError, match=message):
        rate(read_pairwise(BATTLES), **options)


def test_a_tie_only_log_with_ties_dropped_names_the_flag(tmp_path, capsys):
    from tourney.errors import InputError
    from tourney.leaderboard import rate

    recs = [{"model_a": "a", "model_b": "b", "winner": "tie"}] * 2
    with pytest.raises(InputError, match="ties='drop' leaves nothing"):
        rate(read_pairwise(recs), ties="drop")
    assert main(["rate", write(tmp_path, recs), "--ties", "drop"]) == 2
    assert "every record is a tie and --ties drop leaves nothing to rate" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The formats the field publishes (issue 15 item 3): fixtures in tests/fixtures/rate/ (its
# README says where each comes from); golden values from independent computations.
# ---------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rate"
PER_NAT = 400 / math.log(10)


def independent_bt(names, first, second, y, l2=0.0):
    """Bradley-Terry by direct maximisation of the (soft-outcome) log-likelihood with scipy:
    sum y log s(d) + (1 - y) log s(-d), d = s_first - s_second, minus l2/2 sum s^2; natural-log
    strengths (an independent check of tourney.rating; compare differences)."""
    from scipy.optimize import minimize
    from scipy.special import log_expit

    idx = {m: k for k, m in enumerate(names)}
    f = np.array([idx[a] for a in first])
    s = np.array([idx[b] for b in second])
    y = np.asarray(y, dtype=float)

    def nll(theta):
        d = theta[f] - theta[s]
        return -(y * log_expit(d) + (1 - y) * log_expit(-d)).sum() + l2 / 2 * (theta**2).sum()

    res = minimize(nll, np.zeros(len(names)), method="BFGS", options={"gtol": 1e-9})
    return res.x


def assert_same_differences(rows, names, strengths, tol=0.02):
    """Leaderboard ratings minus the first name's equal the independent strengths' differences."""
    for m, s in zip(names, strengths):
        got = rows[m]["rating"] - rows[names[0]]["rating"]
        assert got == pytest.approx(PER_NAT * (s - strengths[0]), abs=tol), m


def test_chatbot_arena_json_array(tmp_path, capsys):
    """FastChat's clean_battle_*.json is one JSON array (indent 2): read element by element,
    every winner label incl. 'tie (bothbad)', rated exactly like the same battles as JSONL."""
    path = FIXTURES / "arena_clean_battle.json"
    recs = json.loads(path.read_text(encoding="utf-8"))
    code, board, err = rate_json(capsys, str(path))
    assert code == 0 and err == ""
    assert board["records"] == 8 and board["input_formats"] == {"arena": 8}
    rows = by_model(board)
    record = {m: (rows[m]["wins"], rows[m]["losses"], rows[m]["ties"]) for m in rows}
    assert record == {"vicuna-13b": (3, 1, 2), "koala-13b": (2, 3, 1), "alpaca-13b": (1, 2, 1)}
    names = ["vicuna-13b", "koala-13b", "alpaca-13b"]
    y = [{"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}[r["winner"]] for r in recs]
    want = independent_bt(names, [r["model_a"] for r in recs], [r["model_b"] for r in recs], y)
    assert_same_differences(rows, names, want)
    assert sum(r["rating"] for r in board["leaderboard"]) == pytest.approx(3000, abs=0.02)  # centred
    as_jsonl = rate_json(capsys, write(tmp_path, recs))[1]
    assert {k: v for k, v in board.items() if k != "input_formats"} == as_jsonl


def test_alpaca_eval_annotations(capsys):
    """AlpacaEval annotations.json (real preferences of the weighted GPT-4-turbo annotator):
    the score of generator_2 is preference - 1, so the win rate against the baseline is
    100 * mean(preference - 1); the baseline's own annotations (generator_1 == generator_2)
    are self-pairs, dropped."""
    path = FIXTURES / "alpaca_eval_annotations.json"
    recs = json.loads(path.read_text(encoding="utf-8"))
    code, board, err = rate_json(capsys, str(path), "--l2", "0.01")
    assert code == 0
    assert board["input_formats"] == {"alpaca_eval": 16} and board["self_pairs"] == 4
    assert board["records"] == 12 and board["baseline"] == "gpt4_1106_preview"
    assert err.count("self-pair dropped") == 4
    rows = by_model(board)
    models = ["FuseChat-Gemma-2-9B-Instruct", "claude-2", "alpaca-7b"]
    for m in models:
        prefs = [r["preference"] for r in recs if r["generator_2"] == m]
        assert len(prefs) == 4
        assert rows[m]["win_rate"] == pytest.approx(100 * np.mean(np.array(prefs) - 1), abs=0.006)
    assert rows["gpt4_1106_preview"]["win_rate"] == 50.0
    pairs = [r for r in recs if r["generator_1"] != r["generator_2"]]
    names = ["gpt4_1106_preview", *models]
    want = independent_bt(
        names,
        [r["generator_1"] for r in pairs],
        [r["generator_2"] for r in pairs],
        [2 - r["preference"] for r in pairs],
        l2=0.01,
    )
    assert_same_differences(rows, names, want)


def alpaca_eval_array(shared_data) -> list[dict]:
    """The AlpacaEval 2.0 per-instruction preferences of every model (58 x 805) as
    annotations.json records."""
    out = []
    with (shared_data / "alpaca_eval" / "weighted_gpt4turbo_preferences_compact.csv").open() as fh:
        for row in csv.DictReader(fh):
            out.append(
                {
                    "instruction_idx": int(row["instruction_idx"]),
                    "dataset": row["dataset"],
                    "generator_1": row["generator_1"],
                    "generator_2": row["model_dir"],
                    "annotator": "weighted_alpaca_eval_gpt4_turbo",
                    "preference": float(row["preference"]),
                }
            )
    return out


def test_alpaca_eval_win_rates_reproduce_the_published_leaderboard(tmp_path, capsys, shared_data):
    """All 46,680 AlpacaEval 2.0 annotations of 58 models in one JSON array: each model's win
    rate against gpt4_1106_preview equals the published leaderboard's win_rate column (every
    one of the 50 models the leaderboard lists with a results folder)."""
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(alpaca_eval_array(shared_data), indent=2), encoding="utf-8")
    code, board, _ = rate_json(capsys, str(path), "--l2", "0.01")
    assert code == 0 and board["records"] == 46680 - 805 and board["self_pairs"] == 805  # the baseline's own
    rows = by_model(board)
    published = {}
    with (shared_data / "alpaca_eval" / "weighted_alpaca_eval_gpt4_turbo_leaderboard_docs.csv").open() as fh:
        for row in csv.DictReader(fh):
            if "/results/" in row["samples"]:
                published[row["samples"].split("/results/")[1].split("/")[0]] = float(row["win_rate"])
    checked = [m for m in rows if m in published]
    assert len(checked) == 50
    for m in checked:
        assert rows[m]["win_rate"] == pytest.approx(published[m], abs=0.006), m


def test_arena_hard_v2_judgments(tmp_path, capsys):
    """Arena-Hard-Auto v2.0 judgment lines: game 1 shows the baseline as A, game 2 the model;
    A>>B / B>>A count 3 times (show_result.py's weight); a record with an unscored game is
    dropped whole. Golden win rates from the labels by hand:
    qwq-32b: B>A, A>>B -> 1,1,1,1; A=B, B>A -> .5,0; A>>B, B>>A -> 0 x 6: 4.5/12 = 37.5%;
    deepseek-r1: B>>A, A>B -> 1 x 4; (dropped); A<B, A=B -> 1, .5: 5.5/6 = 91.67%."""
    folder = tmp_path / "model_judgment" / "gpt-4.1"
    folder.mkdir(parents=True)
    (folder / "qwq-and-r1.jsonl").write_bytes((FIXTURES / "arena_hard_v2_gpt-4.1.jsonl").read_bytes())
    code, board, err = rate_json(capsys, str(folder))  # a folder: every judgment file in it
    assert code == 0, err
    assert board["records"] == 18 and board["abstentions"] == 1
    assert board["baseline"] == "o3-mini-2025-01-31" and board["input_formats"] == {"arena_hard": 6}
    rows = by_model(board)
    assert rows["qwq-32b"]["win_rate"] == 37.5
    assert rows["deepseek-r1"]["win_rate"] == pytest.approx(100 * 5.5 / 6, abs=0.006)
    assert rows["o3-mini-2025-01-31"]["win_rate"] == 50.0
    assert rows["qwq-32b"]["comparisons"] == 12 and rows["deepseek-r1"]["comparisons"] == 6
    once = rate_json(capsys, str(folder), "--arena-hard-weight", "1")[1]
    assert once["records"] == 10  # each >> once: qwq 2 + 2 + 2, deepseek 2 + 2
    assert by_model(once)["qwq-32b"]["win_rate"] == pytest.approx(100 * 2.5 / 6, abs=0.006)


def test_arena_hard_v01_judgments_assume_the_v01_baseline(capsys):
    """v0.1 lines name no baseline: gpt-4-0314 (show_result.py's default), said on stderr; an
    unscored game loses only itself. Scores of gpt-4-0613: B>A,B>A -> 1,0; A>B,A=B -> 0,.5;
    -,A>>B -> 1,1,1: 4.5 of 7. Two models: the Bradley-Terry difference is ln(4.5/2.5)."""
    path = str(FIXTURES / "arena_hard_v01_gpt-4-1106-preview.jsonl")
    code, board, err = rate_json(capsys, path)
    assert code == 0
    assert "without 'baseline': 'gpt-4-0314' assumed" in err
    assert board["records"] == 7 and board["abstentions"] == 1 and board["baseline"] == "gpt-4-0314"
    rows = by_model(board)
    assert rows["gpt-4-0613"]["win_rate"] == pytest.approx(100 * 4.5 / 7, abs=0.006)
    diff = rows["gpt-4-0613"]["rating"] - rows["gpt-4-0314"]["rating"]
    assert diff == pytest.approx(PER_NAT * math.log(4.5 / 2.5), abs=0.02)
    other = rate_json(capsys, path, "--baseline", "gpt-4-turbo")[1]
    assert other["baseline"] == "gpt-4-turbo"


def test_formats_mix_and_can_be_forced(tmp_path, capsys):
    """Auto-detection is per record (one file may mix formats); --input-format forces one, and
    records of another format are then reported, not guessed."""
    mixed = write(
        tmp_path,
        [
            BATTLES[0],
            {
                "prompt": "q",
                "first": "x",
                "second": "y",
                "verdict": "B",
                "first_model": "gpt-4",
                "second_model": "claude-1",
            },
        ],
    )
    code, board, _ = rate_json(capsys, mixed)
    assert code == 0 and board["records"] == 2 and by_model(board)["claude-1"]["wins"] == 1
    code, board, err = rate_json(capsys, mixed, "--input-format", "arena", "--l2", "0.01")
    assert code == 1 and board["records"] == 1
    assert "in.jsonl:2: 'model_a' must be a non-empty string" in err


def bad_inputs(tmp_path: Path) -> tuple[str, str]:
    """A JSONL file and a JSON array with the same bad records between good battles: a
    401-digit tstamp, nesting 100,000 deep, a record of no format, a non-object, bad JSON."""
    good = [BATTLES[k] for k in range(4)]
    deep = "[" * 100_000 + "]" * 100_000
    huge = '{"model_a": "a", "model_b": "b", "winner": "model_a", "tstamp": 1' + "0" * 400 + "}"
    nested = '{"model_a": "a", "model_b": "b", "winner": "model_a", "extra": ' + deep + "}"
    lines = [
        json.dumps(good[0]),
        huge,
        json.dumps(good[1]),
        deep,
        nested,
        '{"hello": 1}',
        "[1, 2]",
        json.dumps(good[2]),
        '{"model_a": "a",',
        json.dumps(good[3]),
    ]
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    array = tmp_path / "bad.json"
    array.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    return str(jsonl), str(array)


@pytest.mark.parametrize("kind", ["jsonl", "array"])
def test_unreadable_records_are_skipped_with_file_and_line(tmp_path, capsys, kind):
    """Issue 11: a 401-digit tstamp or deep nesting must not crash rate: each bad record is
    reported with FILE:LINE and the good ones are still rated (exit 1)."""
    path = bad_inputs(tmp_path)[0 if kind == "jsonl" else 1]
    name = Path(path).name
    off = 0 if kind == "jsonl" else 1  # the array's elements start on line 2
    code, board, err = rate_json(capsys, path, "--l2", "0.01")
    assert code == 1
    assert board["records"] == 4 and board["bad_lines"] == 6
    assert f"{name}:{2 + off}: tstamp is out of range (401 digits)" in err
    assert f"{name}:{4 + off}: malformed JSON (nested too deeply)" in err
    assert f"{name}:{5 + off}: malformed JSON (nested too deeply)" in err
    assert f"{name}:{6 + off}: fits no known format" in err
    assert f"{name}:{7 + off}: expected a JSON object, got list" in err
    assert f"{name}:{9 + off}: malformed JSON" in err
    assert "6 bad line(s) skipped; rated the other 4 records" in err


def test_non_utf8_and_bom(tmp_path, capsys):
    """Bytes that are not UTF-8 are an error naming the line (never a silent replacement); a
    UTF-8 byte-order mark is accepted (issue 11 item 8)."""
    body = [
        json.dumps(BATTLES[0]).encode(),
        json.dumps({**BATTLES[1], "model_a": "caf\u00e9"}).encode()[:-30]
        + b"\xff"
        + json.dumps({**BATTLES[1], "model_a": "cafe"}).encode()[-30:],
        json.dumps(BATTLES[2]).encode(),
    ]
    for name, raw in (
        ("x.jsonl", b"\xef\xbb\xbf" + b"\n".join(body) + b"\n"),
        ("x.json", b"\xef\xbb\xbf[" + b",\n".join(body) + b"]"),
    ):
        p = tmp_path / name
        p.write_bytes(raw)
        code, board, err = rate_json(capsys, str(p), "--l2", "0.01")
        assert code == 1 and board["records"] == 2, (name, err)
        assert f"{name}:2: not valid UTF-8 (byte 0xff" in err
        assert "caf\ufffd" not in json.dumps(board)


def test_anchor_shifts_every_rating(capsys):
    path = str(FIXTURES / "arena_hard_v2_gpt-4.1.jsonl")
    plain = by_model(rate_json(capsys, path)[1])
    code, board, _ = rate_json(capsys, path, "--anchor", "o3-mini-2025-01-31=1000")
    assert code == 0 and board["anchor"] == {"model": "o3-mini-2025-01-31", "rating": 1000.0}
    rows = by_model(board)
    assert rows["o3-mini-2025-01-31"]["rating"] == 1000.0
    shift = 1000.0 - plain["o3-mini-2025-01-31"]["rating"]
    for m, r in rows.items():
        assert r["rating"] == pytest.approx(plain[m]["rating"] + shift, abs=0.011)
        assert r["ci_low"] == pytest.approx(plain[m]["ci_low"] + shift, abs=0.011)
    boot = by_model(rate_json(capsys, path, "--anchor", "qwq-32b=1200", "--bootstrap", "30", "--l2", "0.01")[1])
    assert boot["qwq-32b"]["rating"] == boot["qwq-32b"]["ci_low"] == boot["qwq-32b"]["ci_high"] == 1200.0
    assert main(["rate", path, "--anchor", "gpt-5=1000"]) == 2
    assert "the anchor model 'gpt-5' is not in the records (models: deepseek-r1, o3-mini" in capsys.readouterr().err
    assert main(["rate", path, "--anchor", "gpt-5"]) == 2
    assert "an anchor is MODEL=RATING" in capsys.readouterr().err


def test_markdown_format(tmp_path, capsys):
    recs = [
        {**r, "model_a": r["model_a"].replace("gpt-4", "gpt|4"), "model_b": r["model_b"].replace("gpt-4", "gpt|4")}
        for r in BATTLES
    ]
    assert main(["rate", write(tmp_path, recs), "--format", "markdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| rank | model | rating | 95% CI | comparisons | W-L-T |"
    assert out[1] == "|---:|---|---:|---|---:|---|"
    assert len(out[2:5]) == 3 and all(line.startswith("| ") and line.endswith(" |") for line in out[2:5])
    assert any("gpt\\|4" in line for line in out[2:5])
    assert out[5] == "" and out[6].startswith("*8 comparisons; Bradley-Terry")


def scalar_elo(n, order, first, second, y, k=32.0):
    """Online Elo written out game by game (independent of tourney.rating)."""
    r = [1000.0] * n
    for t in order:
        a, b = first[t], second[t]
        e = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / 400.0))
        r[a] += k * (y[t] - e)
        r[b] -= k * (y[t] - e)
    return r


def test_permutation_elo_is_the_mean_over_the_orderings(capsys, tmp_path):
    """--permutations P: the vectorised replay equals a plain game-by-game Elo over every one
    of the P orderings; the board is their mean and 2.5/97.5 percentiles; seeded."""
    from tourney.leaderboard import _permutation_orders, elo_permutations

    data = read_pairwise(BATTLES * 6)
    f, s, y = (np.asarray(v) for v in (data.first, data.second, data.y))
    runs = elo_permutations(3, f, s, y, permutations=70, rng=np.random.default_rng(5))
    orders = np.concatenate([o for _, o in _permutation_orders(len(y), 70, np.random.default_rng(5))])
    assert orders.shape == (70, 48)
    assert all(sorted(o) == list(range(48)) for o in orders.tolist())
    want = np.array([scalar_elo(3, o, f.tolist(), s.tolist(), y.tolist()) for o in orders.tolist()])
    np.testing.assert_allclose(runs, want, atol=1e-9)
    path = write(tmp_path, BATTLES * 6)
    code, board, _ = rate_json(capsys, path, "--method", "elo", "--permutations", "70", "--seed", "5")
    assert code == 0 and board["permutations"] == 70
    rows = by_model(board)
    for k, m in enumerate(data.names):
        assert rows[m]["rating"] == pytest.approx(want[:, k].mean(), abs=RATING_TOL)
        assert rows[m]["ci_low"] == pytest.approx(np.percentile(want[:, k], 2.5), abs=RATING_TOL)
        assert rows[m]["ci_high"] == pytest.approx(np.percentile(want[:, k], 97.5), abs=RATING_TOL)
    again = rate_json(capsys, path, "--method", "elo", "--permutations", "70", "--seed", "5")[1]
    other = rate_json(capsys, path, "--method", "elo", "--permutations", "70", "--seed", "6")[1]
    assert again == board and other != board
    assert main(["rate", path, "--permutations", "10"]) == 2
    assert "permutations apply to --method elo" in capsys.readouterr().err


def test_permutation_elo_on_the_prd_reviewer_logs_is_stable_across_seeds(tmp_path, capsys, shared_data):
    """Issue 15: on each recorded PRD reviewer log (tourney convert-prd), the mean Elo over
    10,000 random orderings from two seeds agrees within 1 point for every model (and the
    file's order no longer matters: a reversed file gives the same board)."""
    assert main(["convert-prd", str(shared_data / "prd_vicuna80" / "vicuna80"), str(tmp_path)]) == 0
    capsys.readouterr()
    logs = sorted(tmp_path.glob("replay-*.jsonl"))
    assert [p.name for p in logs] == [
        "replay-bard.jsonl",
        "replay-claude.jsonl",
        "replay-gpt35.jsonl",
        "replay-vicuna-13b.jsonl",
    ]
    for log in logs:
        boards = [
            rate_json(capsys, str(log), "--method", "elo", "--permutations", "10000", "--seed", str(seed))[1]
            for seed in (0, 1)
        ]
        a, b = (by_model(x) for x in boards)
        assert len(a) == 5
        for m in a:
            assert abs(a[m]["rating"] - b[m]["rating"]) < 1.0, (log.name, m, a[m]["rating"], b[m]["rating"])
    lines = logs[0].read_text(encoding="utf-8").splitlines()
    rev = tmp_path / "reversed.jsonl"
    rev.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    fwd = rate_json(capsys, str(logs[0]), "--method", "elo", "--permutations", "2000")[1]
    back = rate_json(capsys, str(rev), "--method", "elo", "--permutations", "2000")[1]
    for m, row in by_model(fwd).items():
        assert abs(row["rating"] - by_model(back)[m]["rating"]) < 3.0
