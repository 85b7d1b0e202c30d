"""Inputs and outputs: every input form ranks like JSONL, every output form round-trips, bad input
is named row by row, outputs are atomic (signals on a real subprocess, a full disk, a read-only
folder, an I/O error mid-run)."""

from __future__ import annotations

import datetime
import errno
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tourney.cli import main
from tourney.errors import InputError, MissingExtraError
from tourney.inputs import open_input
from tourney.items import FieldMap, Item, ItemError
from tourney.outputs import read_results, to_arrow, to_dataset, to_pandas

from .conftest import ROOT, question_rows, read_jsonl, tourney_argv, write_jsonl

pa = pytest.importorskip("pyarrow") if os.environ.get("CI") != "true" else __import__("pyarrow")
import pyarrow.parquet as pq

ROWS = [
    {
        "id": "q1",
        "prompt": "What is 2 + 2?",
        "responses": ["4", "5", "22"],
        "scores": [2.0, -1.0, 0.0],
        "source": "a",
        "difficulty": 1,
    },
    {
        "id": "q2",
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        "responses": ["Paris.", "Lyon.", "Paris, on the Seine.", "Marseille."],
        "source": "b",
        "difficulty": 3,
    },
    {"id": "q3", "prompt": "Name a prime.", "responses": ["7"], "source": "c", "difficulty": 2},
]


def cli(*args: str) -> int:
    return main([*args, "--no-progress", "--quiet", "--no-store"])


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_parquet(path: Path, rows: list[dict], schema=None) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_datasets(path: Path, rows: list[dict]) -> Path:
    datasets = pytest.importorskip("datasets") if os.environ.get("CI") != "true" else __import__("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


# -- every input form ranks like JSONL ----------------------------------------------------------------
def test_every_input_form_ranks_exactly_like_jsonl(tmp_path):
    zstandard = pytest.importorskip("zstandard") if os.environ.get("CI") != "true" else __import__("zstandard")
    text = "".join(json.dumps(r) + "\n" for r in ROWS)
    ref = tmp_path / "ref.jsonl"
    assert cli("rank", str(write_jsonl(tmp_path / "in.jsonl", ROWS)), "--out", str(ref)) == 0
    expected = lines(ref)
    assert [json.loads(x)["source"] for x in expected] == ["a", "b", "c"]  # other fields pass through
    inputs = {
        "in.jsonl.gz": lambda p: p.write_bytes(gzip.compress(text.encode())),
        "in.jsonl.zst": lambda p: p.write_bytes(zstandard.ZstdCompressor().compress(text.encode())),
        "in.json": lambda p: p.write_text(json.dumps(ROWS, indent=2)),
        "in.json.gz": lambda p: p.write_bytes(gzip.compress(json.dumps(ROWS).encode())),
        "in.parquet": lambda p: write_parquet(
            p,
            [
                {**r, "prompt": json.dumps(r["prompt"]) if not isinstance(r["prompt"], str) else r["prompt"]}
                for r in ROWS
            ],
        ),
        "in.txt": lambda p: p.write_text(text),  # a name that says nothing: JSON lines
        "bom.jsonl": lambda p: p.write_bytes(b"\xef\xbb\xbf" + text.encode()),
        "bom.json": lambda p: p.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS).encode()),
    }
    for name, make in inputs.items():
        p = tmp_path / name
        make(p)
        out = tmp_path / f"{name}.out.jsonl"
        assert cli("rank", str(p), "--out", str(out)) == 0, name
        got = lines(out)
        if name == "in.parquet":  # a parquet column has one type: the chat prompt went in as JSON text
            continue
        assert got == expected, name


def test_parquet_and_datasets_inputs_with_chat_prompts_keep_their_types(tmp_path):
    rows = [{**r, "scores": r.get("scores")} for r in ROWS]
    chat = [
        {**r, "prompt": r["prompt"] if not isinstance(r["prompt"], str) else [{"role": "user", "content": r["prompt"]}]}
        for r in rows
    ]
    ref_in = write_jsonl(tmp_path / "chat.jsonl", chat)
    ref = tmp_path / "ref.jsonl"
    assert cli("rank", str(ref_in), "--out", str(ref)) == 0
    for p in (write_parquet(tmp_path / "chat.parquet", chat), write_datasets(tmp_path / "chat_ds", chat)):
        out = tmp_path / (p.name + ".jsonl")
        assert cli("rank", str(p), "--out", str(out)) == 0, p
        assert lines(out) == lines(ref), p
    # a datasets.Dataset from Python, and an iterable of dicts, through the runner
    import datasets

    from tourney.runner import rank_file
    from tourney.types import dumps

    for source in (datasets.Dataset.from_list(chat), chat):
        got: list[str] = []
        rank_file(source, lambda item, res: got.append(dumps(res)))
        assert got == lines(ref)


def test_column_mapping_single_list_column_several_columns_and_dotted_paths(tmp_path):
    rows = [
        {
            "question": f"q{i}",
            "answers": [f"a{i}", f"b{i}", f"c{i}"],
            "uid": 100 + i,
            "truth": [1.0, 0.0, -1.0],
            "m1": {"text": f"a{i}"},
            "m2": {"text": f"b{i}"},
            "m3": {"text": f"c{i}"},
        }
        for i in range(4)
    ]
    src = write_parquet(tmp_path / "m.parquet", rows)
    one = tmp_path / "one.jsonl"
    assert (
        cli(
            "rank",
            str(src),
            "--out",
            str(one),
            "--prompt-field",
            "question",
            "--responses-field",
            "answers",
            "--id-field",
            "uid",
            "--scores-field",
            "truth",
        )
        == 0
    )
    several = tmp_path / "several.jsonl"
    assert (
        cli(
            "rank",
            str(src),
            "--out",
            str(several),
            "--prompt-field",
            "question",
            "--responses-field",
            "m1.text,m2.text,m3.text",
            "--id-field",
            "uid",
            "--scores-field",
            "truth",
        )
        == 0
    )
    a, b = read_jsonl(one), read_jsonl(several)
    assert [r["id"] for r in a] == ["100", "101", "102", "103"]
    for x, y in zip(a, b):  # the same candidates in the same order: the same tournament
        assert x["ranking"] == y["ranking"] and x["matches"] == y["matches"]
    assert "answers" not in a[0] and a[0]["m1"] == {"text": "a0"}  # read whole: consumed; others pass through


# -- outputs -------------------------------------------------------------------------------------------
def test_parquet_output_round_trips_and_loads_in_pandas_pyarrow_and_datasets(tmp_path):
    import datasets
    import pandas as pd

    rows = [
        *ROWS,
        {"id": "bad", "prompt": "", "responses": ["x"], "source": "d", "difficulty": 0},
        {
            "id": "dup",
            "prompt": "q",
            "responses": ["same", "other", "same"],
            "source": "e",
            "difficulty": 5,
            "status": "draft",
        },
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    for strategy in ("knockout", "knockout:both_orders=true", "bradley_terry"):
        j, p = tmp_path / "out.jsonl", tmp_path / "out.parquet"
        assert cli("rank", str(inp), "--out", str(j), "--strategy", strategy) == 1  # the bad row
        assert cli("rank", str(inp), "--out", str(p), "--strategy", strategy) == 1
        assert list(read_results(p)) == read_jsonl(j), strategy
        table = pq.read_table(p)
        assert table.schema.field("strategy").type == pa.struct(
            [("name", pa.string()), ("arg", pa.string()), ("options", pa.string())]
        )
        assert table.column("difficulty").type == pa.int64() and table.column("input").to_pylist()[-1] == {
            "status": "draft"
        }
        df = pd.read_parquet(p)
        assert list(df["id"]) == ["q1", "q2", "q3", "bad", "dup"] and df["status"].iloc[3] == "failed"
        ds = datasets.load_dataset("parquet", data_files=str(p), split="train", cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == 5 and ds[4]["duplicates"] == [[0, 2]]
        # the JSONL output loads too and exports to parquet (no struct without fields)
        pd.read_json(j, lines=True).to_parquet(tmp_path / "via_pandas.parquet")
        datasets.load_dataset("json", data_files=str(j), split="train", cache_dir=str(tmp_path / "hf")).to_parquet(
            str(tmp_path / "via_datasets.parquet")
        )
    assert read_jsonl(j)[4]["input"] == {"status": "draft"}  # an input field named like a result field


def test_to_pandas_and_to_dataset_from_python_results(tmp_path):
    from tourney import Tournament
    from tourney.api import to_dataset as api_to_dataset
    from tourney.api import to_pandas as api_to_pandas

    assert api_to_pandas is to_pandas and api_to_dataset is to_dataset
    with Tournament(strategy="knockout") as t:
        results = t.rank([*ROWS, {"prompt": "", "responses": ["x"]}])
    df = to_pandas(results)
    assert list(df.columns[:3]) == ["id", "status", "error"] and df["status"].tolist()[-1] == "failed"
    df.to_parquet(tmp_path / "df.parquet")  # exports: no struct without fields
    ds = to_dataset(results)
    ds.to_parquet(str(tmp_path / "ds.parquet"))
    assert ds.num_rows == 4 and json.loads(ds[0]["strategy"]["options"]) == {}
    assert to_arrow(results).schema == to_arrow([r.to_json() for r in results]).schema


def test_datetime_nan_and_binary_pass_through(tmp_path):
    when = datetime.datetime(2024, 5, 1, 12, 30)
    rows = [{"prompt": "q", "responses": ["a", "b"], "when": when, "x": float("nan"), "blob": b"\x00\x01"}]
    src = write_parquet(tmp_path / "t.parquet", rows)
    j, p = tmp_path / "o.jsonl", tmp_path / "o.parquet"
    assert cli("rank", str(src), "--out", str(j)) == 0 and cli("rank", str(src), "--out", str(p)) == 0
    line = read_jsonl(j)[0]  # JSON has no such types: ISO text, null, base64
    assert (line["when"], line["x"], line["blob"]) == ("2024-05-01T12:30:00", None, "AAE=")
    table = pq.read_table(p)  # parquet keeps the input's own types
    assert table.column("when").type == pa.timestamp("us") and table.column("when").to_pylist() == [when]
    assert table.column("blob").to_pylist() == [b"\x00\x01"]


# -- bad input -----------------------------------------------------------------------------------------
def test_missing_and_misnamed_columns_are_named_with_the_ones_present(tmp_path, capsys):
    src = write_parquet(tmp_path / "q.parquet", [{"question": "q", "answers": ["a", "b"]}])
    assert cli("rank", str(src)) == 2
    err = capsys.readouterr().err
    assert "q.parquet has no column 'prompt' (columns: question, answers); choose the column with --prompt-field" in err
    assert cli("rank", str(src), "--prompt-field", "question", "--responses-field", "answer") == 2
    assert "no column 'answer' (columns: question, answers)" in capsys.readouterr().err
    # JSON rows can differ: a row without the field fails alone, naming the fields it has
    inp = write_jsonl(tmp_path / "in.jsonl", [{"question": "q", "answers": ["a"]}, {"prompt": "q", "responses": ["a"]}])
    out = tmp_path / "o.jsonl"
    assert cli("rank", str(inp), "--out", str(out)) == 1
    r = read_jsonl(out)
    assert r[0]["error"].startswith("in.jsonl line 1: missing 'prompt' (fields present: 'question', 'answers'")
    assert r[1]["status"] == "ok"


def test_bad_rows_are_named_and_the_rest_is_written(tmp_path):
    rows = [
        {"id": "s", "prompt": "q", "responses": "one string"},  # a responses column holding a string
        {"id": "m", "prompt": "q", "responses": ["a", "b"], "scores": [1, "2"]},  # mixed types in one column
        {"id": "n", "prompt": [["user", "hi"]], "responses": ["a", "b"]},  # a nested prompt
        {"id": "ok", "prompt": "q", "responses": ["a", "b"]},
    ]
    out = tmp_path / "o.jsonl"
    assert cli("rank", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--out", str(out)) == 1
    r = read_jsonl(out)
    assert [x["id"] for x in r] == ["s", "m", "n", "ok"] and r[3]["status"] == "ok"
    assert "line 1: 'responses' is a string, not a list of strings (responses in several fields" in r[0]["error"]
    assert "line 2: 'scores' must be a list of 2 finite numbers, got list of number/string" in r[1]["error"]
    assert (
        "line 3: prompt message 0 must be an object with string 'role' and 'content', got list of string"
        in r[2]["error"]
    )
    # parquet: a string responses column and nested prompts, named by row
    src = write_parquet(tmp_path / "s.parquet", [{"prompt": "q", "responses": "x"}])
    assert cli("rank", str(src), "--out", str(out)) == 1
    assert "s.parquet row 0: 'responses' is a string" in read_jsonl(out)[0]["error"]
    nested = [
        {"prompt": [[{"role": "user", "content": "hi"}]], "responses": ["a", "b"]},
        {"prompt": [[{"role": "user", "content": "ho"}]], "responses": ["c", "d"]},
    ]
    assert cli("rank", str(write_parquet(tmp_path / "n.parquet", nested)), "--out", str(out)) == 1
    assert [x["error"] for x in read_jsonl(out)] == [
        f"n.parquet row {k}: prompt message 0 must be an object with string 'role' and 'content', got list of object"
        for k in (0, 1)
    ]


@pytest.mark.parametrize(
    "name, make",
    [
        ("empty.jsonl", lambda p: p.write_text("\n  \n")),
        ("empty.json", lambda p: p.write_text("[]")),
        ("empty.jsonl.gz", lambda p: p.write_bytes(gzip.compress(b""))),
        (
            "empty.parquet",
            lambda p: write_parquet(p, [], pa.schema([("prompt", pa.string()), ("responses", pa.list_(pa.string()))])),
        ),
        ("empty_ds", lambda p: write_datasets(p, [])),
    ],
)
def test_an_empty_input_is_an_error_and_leaves_no_output(tmp_path, capsys, name, make):
    p = tmp_path / name
    make(p)
    out = tmp_path / "o.jsonl"
    out.write_text("previous\n")
    code = cli("rank", str(p), "--out", str(out))
    assert code == 2 and "holds no rows: nothing to rank" in capsys.readouterr().err
    assert out.read_text() == "previous\n" and not (tmp_path / "o.jsonl.partial").exists()


def test_text_that_is_not_utf8_fails_its_row_by_name_and_keeps_its_id(tmp_path):
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(
        b'{"id": "q7", "prompt": "q", "responses": ["caf\xe9", "cafe"]}\n'
        b'{"prompt": "q", "responses": ["caf\xe9", "cafe"]}\n'
        b'{"id": "ok", "prompt": "q", "responses": ["x", "y"]}\n'
    )
    out = tmp_path / "o.jsonl"
    assert cli("rank", str(p), "--out", str(out)) == 1
    r = read_jsonl(out)
    assert [x["status"] for x in r] == ["failed", "failed", "ok"]
    assert r[0]["id"] == "q7" and r[1]["id"] == "1"  # its own id; its position when it has none
    assert "latin1.jsonl line 1: not valid UTF-8: byte E9 at byte 47 of the line" in r[0]["error"]
    assert "\ufffd" not in out.read_text(encoding="utf-8")  # never silently replaced
    # a JSON array: the element fails alone
    arr = tmp_path / "latin1.json"
    arr.write_bytes(
        b'[{"id": "a", "prompt": "q", "responses": ["caf\xe9", "b"]}, {"id": "b", "prompt": "q", '
        b'"responses": ["x", "y"]}]'
    )
    assert cli("rank", str(arr), "--out", str(out)) == 1
    r = read_jsonl(out)
    assert r[0]["id"] == "a" and "latin1.json element 0: not valid UTF-8: byte E9" in r[0]["error"]
    assert r[1]["status"] == "ok"


@pytest.mark.parametrize(
    "name, content, args, fragment",
    [
        (
            "data.jsonl",
            "parquet",
            [],
            "data.jsonl is a parquet file (it starts with PAR1), but its name (data.jsonl) chose "
            "jsonl: use --input-format parquet",
        ),
        (
            "data.jsonl",
            "jsonl",
            ["--input-format", "parquet"],
            "is not a readable parquet file (--input-format parquet chose parquet)",
        ),
        ("data.jsonl.gz", "jsonl", [], "data.jsonl.gz is named .gz but is not gzip-compressed"),
        ("data.jsonl", "array", [], "starts with '[': it is one JSON array, not JSON lines"),
        ("data.jsonl", "utf16", [], "is UTF-16 text (byte order mark FF FE)"),
    ],
)
def test_a_wrong_format_guess_is_a_clear_error(tmp_path, capsys, name, content, args, fragment):
    p = tmp_path / name
    if content == "parquet":
        write_parquet(p, ROWS[:1])
    elif content == "jsonl":
        write_jsonl(p, ROWS)
    elif content == "array":
        p.write_text(json.dumps(ROWS))
    else:
        p.write_bytes("\n".join(json.dumps(r) for r in ROWS).encode("utf-16"))
    assert cli("rank", str(p), *args) == 2
    assert fragment in capsys.readouterr().err


def test_a_directory_is_called_a_directory_unless_it_is_a_datasets_folder(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert cli("rank", str(tmp_path / "d")) == 2
    err = capsys.readouterr().err
    assert "input" in err and "is a directory, not a file" in err and "does not exist" not in err
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:1])}).save_to_disk(str(tmp_path / "dd"))
    assert cli("rank", str(tmp_path / "dd")) == 2
    assert "holds a DatasetDict (splits: train): give one split's folder" in capsys.readouterr().err
    assert cli("rank", str(tmp_path / "dd" / "train"), "--out", str(tmp_path / "o.jsonl")) == 0


def test_zstd_without_zstandard_names_the_extra(tmp_path, monkeypatch):
    zstandard = pytest.importorskip("zstandard") if os.environ.get("CI") != "true" else __import__("zstandard")
    p = tmp_path / "in.jsonl.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(b'{"prompt": "q", "responses": ["a"]}\n'))
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(MissingExtraError, match=r"pip install -e '.\[data\]'"):
        open_input(p)


def test_duplicates_on_the_real_gsm8k_solutions(shared_data, tmp_path):
    """8 of the 1,319 GSM8K items have two identical model solutions: judged once, not a failure."""
    src = shared_data / "gsm8k_example_model_solutions" / "example_model_solutions.jsonl"
    cols = "6b_finetuning.solution,6b_verification.solution,175b_finetuning.solution,175b_verification.solution"
    out = tmp_path / "g.jsonl"
    assert cli("rank", str(src), "--out", str(out), "--prompt-field", "question", "--responses-field", cols) == 0
    r = read_jsonl(out)
    dups = [x for x in r if "duplicates" in x]
    assert len(r) == 1319 and len(dups) == 8 and all(x["status"] == "ok" for x in r)
    for x in dups:
        for group in x["duplicates"]:
            at = x["ranking"].index(group[0])
            assert x["ranking"][at : at + len(group)] == group  # copies right after their original
            assert len({x["scores"][i] for i in group}) == 1
        assert x["comparisons"] == 2  # 3 distinct solutions: a 3-player knockout
    assert (
        cli(
            "rank",
            str(src),
            "--out",
            str(out),
            "--prompt-field",
            "question",
            "--responses-field",
            cols,
            "--duplicates",
            "error",
        )
        == 1
    )
    assert sum(x["status"] == "failed" for x in read_jsonl(out)) == 8


def test_inputs_and_outputs_import_nothing_heavy():
    code = (
        "import sys, tourney, tourney.cli, tourney.inputs, tourney.outputs;"
        "print(','.join(m for m in ('pyarrow', 'pandas', 'datasets', 'zstandard') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_open_input_reads_lazily_and_counts(tmp_path):
    src = open_input(write_jsonl(tmp_path / "in.jsonl", ROWS * 3))
    assert src.count() == 9 and src.format == "jsonl"
    got = list(src.items())
    assert all(isinstance(g, Item) for g in got) and [g.index for g in got] == list(range(9))
    src = open_input(
        write_parquet(tmp_path / "in.parquet", [{"q": "x", "r": ["a"]}] * 600),
        fields=FieldMap.of(prompt="q", responses="r"),
    )
    assert src.count() == 600 and sum(1 for _ in src.items()) == 600
    with pytest.raises(InputError, match="unknown input format 'csv'"):
        open_input(tmp_path / "in.jsonl", format="csv")
    bad = list(open_input(iter([{"prompt": "q"}])).items())
    assert isinstance(bad[0], ItemError) and "missing 'responses'" in str(bad[0])


# -- atomic outputs ------------------------------------------------------------------------------------------
JUDGE = "simulated:latency_median_s=0.02,latency_sigma=0.3"


def _rows(n: int = 100, k: int = 4) -> list[dict]:
    return question_rows(n, k)


def _cmd(inp: Path, out: Path, *extra: str) -> list[str]:
    return tourney_argv(
        "rank", inp, out, "--judge", JUDGE, "--no-progress", "--concurrency", "8", "--seed", "5", *extra
    )


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never had {n} lines (process exit {proc.poll()})")


def _stored(store: Path) -> int:
    if not store.exists():
        return 0
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("select count(*) from judgements").fetchone()[0]
    except sqlite3.OperationalError:  # the store is being created
        return 0
    finally:
        con.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The input and an uninterrupted run's output in each format (made once for the module)."""
    d = tmp_path_factory.mktemp("uninterrupted")
    inp = write_jsonl(d / "in.jsonl", _rows())
    refs = {}
    for fmt in ("jsonl", "parquet"):
        refs[fmt] = d / f"ref.{fmt}"
        done = subprocess.run(_cmd(inp, refs[fmt], "--store", str(d / "ref.sqlite")), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    return inp, refs


@pytest.mark.parametrize(
    "fmt, sig, code",
    [
        ("jsonl", signal.SIGTERM, 143),
        ("jsonl", signal.SIGINT, 130),
        ("jsonl", signal.SIGKILL, -9),
        ("parquet", signal.SIGTERM, 143),
        ("parquet", signal.SIGKILL, -9),
    ],
)
def test_a_killed_run_leaves_the_previous_output_and_a_partial_one_then_resumes_identically(
    tmp_path, sig, code, fmt, uninterrupted
):
    inp, refs = uninterrupted
    ref = refs[fmt]
    out = tmp_path / f"out.{fmt}"
    out.write_bytes(b"the previous complete output\n")
    (tmp_path / f"out.{fmt}.meta.json").write_text('{"previous": true}\n')
    store = tmp_path / "out.sqlite"
    proc = subprocess.Popen(
        _cmd(inp, out, "--store", str(store)),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    partial = tmp_path / f"out.{fmt}.partial"
    if fmt == "jsonl":
        _wait_for_lines(partial, 3, proc)
    else:  # rows reach a parquet file a row group at a time: wait for judgements instead
        deadline = time.time() + 60
        while time.time() < deadline and _stored(store) < 100:
            time.sleep(0.02)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out.read_bytes() == b"the previous complete output\n"  # untouched
    assert json.loads((tmp_path / f"out.{fmt}.meta.json").read_text()) == {"previous": True}
    assert "Traceback" not in err
    if sig != signal.SIGKILL:
        name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
        assert f"tourney: interrupted ({name})" in err and f"--store {store}" in err.splitlines()[-1]
        assert "the same command resumes" in err
        if fmt == "jsonl":
            kept = partial.read_bytes()
            assert kept.endswith(b"\n") and all(json.loads(x) for x in kept.splitlines())  # whole rows only
            n = len(kept.splitlines())
        else:
            n = pq.read_table(partial).num_rows if partial.exists() else 0
        meta = json.loads((tmp_path / f"out.{fmt}.partial.meta.json").read_text()) if n else None
        if meta is not None:
            assert meta["complete"] is False and meta["stopped"] == "interrupted" and meta["output"]["rows"] == n
            assert meta["resume"].startswith("tourney rank ") and meta["stats"]["samples"] > 0
    again = subprocess.run(_cmd(inp, out, "--store", str(store)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert out.read_bytes() == ref.read_bytes()  # byte-identical to an uninterrupted run
    assert not partial.exists() and not (tmp_path / f"out.{fmt}.partial.meta.json").exists()
    assert json.loads((tmp_path / f"out.{fmt}.meta.json").read_text())["stats"]["reused"] > 0


def test_a_full_disk_is_a_clear_error_with_what_was_saved(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    store = tmp_path / "s.sqlite"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "tourney",
            "rank",
            str(ROOT / "tourney" / "data" / "example.jsonl"),
            "--out",
            "/dev/full",
            "--store",
            str(store),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert "tourney: error: cannot write /dev/full: No space left on device" in res.stderr
    assert "Traceback" not in res.stderr and "ranked 6/6" not in res.stderr
    assert "what went to /dev/full is not a complete output" in res.stderr
    assert f"kept in the store {store}" in res.stderr and _stored(store) > 0
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")  # the device is still a device


def test_an_unwritable_folder_fails_before_any_work(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root writes through permission bits: a read-only mount is the real thing
        mounted = (
            subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(ro)], capture_output=True).returncode == 0
        )
        if not mounted:
            pytest.skip("running as root without the right to mount a read-only file system")
    else:
        ro.chmod(0o555)
    try:
        code = main(["rank", "--out", str(ro / "o.jsonl"), "--no-progress", "--store", str(tmp_path / "s.sqlite")])
        err = capsys.readouterr().err
        assert code == 2 and f"cannot write {ro / 'o.jsonl.partial'}: " in err
        assert ("Read-only file system" in err) or ("Permission denied" in err)
        assert not (tmp_path / "s.sqlite").exists() or _stored(tmp_path / "s.sqlite") == 0  # nothing was paid for
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)
        else:
            ro.chmod(0o755)


def test_an_io_error_mid_run_keeps_the_previous_output_and_the_whole_rows(tmp_path, monkeypatch, capsys):
    """EIO on the 4th row: exit 2, a clear message, the previous file untouched, the rows before in the partial."""
    import tourney.outputs as outputs

    real_open = outputs.OutputFile._open

    class Failing:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, data):
            self.n += 1
            if self.n == 4:
                self.fh.write(data[:7])  # half a row reaches the disk, then the device fails
                raise OSError(errno.EIO, "Input/output error")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(outputs.OutputFile, "_open", lambda self, path, mode: Failing(real_open(self, path, mode)))
    out = tmp_path / "o.jsonl"
    out.write_text("previous\n")
    code = main(["rank", "--out", str(out), "--no-progress", "--store", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write " in err and "Input/output error" in err and "ranked" not in err
    assert out.read_text() == "previous\n"
    kept = (tmp_path / "o.jsonl.partial").read_text().splitlines()
    assert len(kept) == 3 and all(json.loads(x)["status"] == "ok" for x in kept)
    meta = json.loads((tmp_path / "o.jsonl.partial.meta.json").read_text())
    assert meta["complete"] is False and "Input/output error" in meta["stopped"]


def test_a_truncated_compressed_input_stops_with_its_rows_so_far_kept_as_partial(tmp_path, capsys):
    text = "".join(json.dumps({"id": f"p{i}", "prompt": "q", "responses": [f"a{i}", "b"]}) + "\n" for i in range(3000))
    data = gzip.compress(text.encode())
    src = tmp_path / "cut.jsonl.gz"
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.jsonl"
    assert cli("rank", str(src), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "cut.jsonl.gz: cannot read past line " in err and "EOFError" in err and "Traceback" not in err
    kept = read_jsonl(tmp_path / "o.jsonl.partial")
    assert kept and [r["id"] for r in kept] == [f"p{i}" for i in range(len(kept))] and not out.exists()
