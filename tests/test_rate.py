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
    return (np.array([idx[r["model_a"]] for r in records]), np.array([idx[r["model_b"]] for r in records]),
            np.array([y[r["winner"]] for r in records]))


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
        {"prompt": "q", "first": "text one", "second": "text two", "verdict": "A", "first_model": "m1",
         "second_model": "m2", "first_index": 0, "second_index": 1},
        {"prompt": "q", "first": "text two", "second": "text one", "verdict": "B", "first_model": "m2",
         "second_model": "m1"},
        {"prompt": "q", "first": "text two", "second": "text one", "verdict": "A", "first_model": "m2",
         "second_model": "m1"},
        {"prompt": "q", "first": "text one", "second": "text two", "verdict": "abstain", "first_model": "m1",
         "second_model": "m2"},
    ]
    code, board, _ = rate_json(capsys, write(tmp_path, recs))
    assert code == 0 and set(by_model(board)) == {"m1", "m2"}
    assert board["records"] == 3 and board["abstentions"] == 1
    assert by_model(board)["m1"]["wins"] == 2
    plain = [{k: v for k, v in r.items() if not k.endswith("_model")} for r in recs]
    code, board, _ = rate_json(capsys, write(tmp_path, plain))
    assert code == 0 and set(by_model(board)) == {"text one", "text two"}


def test_bad_lines_are_reported_and_the_rest_is_rated(tmp_path, capsys):
    lines = [json.dumps(BATTLES[0]), "{not json", json.dumps({**BATTLES[1], "winner": "gpt-4"}),
             json.dumps(BATTLES[2]), "", json.dumps({"model_a": "x"}), json.dumps([1, 2]),
             json.dumps({"first": "a", "second": "b"}), json.dumps({**BATTLES[3], "tstamp": "yesterday"}),
             json.dumps(BATTLES[4])]
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
    from tourney.leaderboard import rate
    from tourney.errors import InputError

    with pytest.raises(InputError, match="only one model"):
        rate(data)
    code = main(["rate", write(tmp_path, [{"model_a": "a", "model_b": "a", "winner": "model_a"}])])
    assert code == 2 and "self-pair dropped" in capsys.readouterr().err


def test_unbeaten_model_needs_l2(tmp_path, capsys):
    recs = [{"model_a": "a", "model_b": "b", "winner": "model_a"}, {"model_a": "b", "model_b": "c", "winner": "model_a"},
            {"model_a": "c", "model_b": "b", "winner": "model_b"}, {"model_a": "a", "model_b": "c", "winner": "model_a"}]
    path = write(tmp_path, recs)
    code = main(["rate", path])
    err = capsys.readouterr().err
    assert code == 2 and "never lost" in err and "--l2" in err
    code, board, _ = rate_json(capsys, path, "--l2", "0.01")
    assert code == 0 and board["leaderboard"][0]["model"] == "a"


def test_disconnected_models_are_reported(tmp_path, capsys):
    recs = [{"model_a": "a", "model_b": "b", "winner": "model_a"}, {"model_a": "b", "model_b": "a", "winner": "model_a"},
            {"model_a": "c", "model_b": "d", "winner": "model_a"}, {"model_a": "d", "model_b": "c", "winner": "model_a"},
            {"model_a": "c", "model_b": "d", "winner": "model_a"}]
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
    assert [r["model"] for r in rows] and set(rows[0]) >= {"rank", "model", "rating", "ci_low", "ci_high",
                                                             "comparisons"}
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

    cases = [([], {}), (["--method", "elo", "--bootstrap", "20", "--seed", "4"], {"method": "elo", "bootstrap": 20,
                                                                                  "seed": 4}),
             (["--position", "--l2", "0.01"], {"position": True, "l2": 0.01})]
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
