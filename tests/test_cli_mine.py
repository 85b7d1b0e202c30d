"""mine-pairs after the io merge: identical responses never make a pair, the pairs file is
written atomically (real signals on a real subprocess, a full disk, a folder that refuses the
file, an I/O error mid-run), and ``--ranked`` reads every input format with the column mapping."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tourney import parse_item
from tourney.cli import main
from tourney.mining import PairFile, PairPolicy, mine_kto, mine_pairs

from .conftest import ROOT, question_rows, read_jsonl, require, tourney_argv, write_jsonl

EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"


def text_of(row: dict, key: str) -> str:
    """A pair's or KTO row's completion text, in either form."""
    v = row[key]
    return v if isinstance(v, str) else v[0]["content"]


# -- identical responses --------------------------------------------------------------------------
DUPS = [
    {"id": "d1", "prompt": "2 + 2 = ?", "responses": ["4", "5", "4", "22", "4"], "scores": [2.0, 0.0, 2.0, -1.0, 2.0]},
    {"id": "same", "prompt": "Say hi.", "responses": ["hi", "hi", "hi"]},
    {"id": "d2", "prompt": "Name a prime.", "responses": ["7", "9", "9"], "scores": [1.0, 0.0, 0.0]},
]


@pytest.mark.parametrize("policy", ["best_worst", "best_each", "margin"])
@pytest.mark.parametrize("fmt", ["dpo", "kto"])
def test_identical_responses_never_make_a_pair(tmp_path, capsys, policy, fmt):
    """Identical responses share their rank (the result's ``duplicates``): no pair may have the
    same text as chosen and rejected, no KTO text may be both desirable and undesirable (nor
    appear twice for one prompt); the pairs left out are counted in the summary."""
    inp = write_jsonl(tmp_path / "in.jsonl", DUPS)
    ranked = tmp_path / "r.jsonl"
    assert (
        main(
            [
                "rank",
                str(inp),
                "--out",
                str(ranked),
                "--strategy",
                "round_robin",
                "--no-store",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    results = read_jsonl(ranked)
    assert [r["duplicates"] for r in results] == [[[0, 2, 4]], [[0, 1, 2]], [[1, 2]]]
    capsys.readouterr()
    for how in (["--ranked", str(ranked)], ["--strategy", "round_robin", "--no-store", "--no-progress"]):
        out = tmp_path / "p.jsonl"
        assert main(["mine-pairs", str(inp), *how, "--out", str(out), "--policy", policy, "--trl-format", fmt]) == 0
        rows = read_jsonl(out)
        err = capsys.readouterr().err
        assert rows, err
        by_prompt: dict[str, list[dict]] = {}
        for r in rows:
            by_prompt.setdefault(r["tourney"]["id"], []).append(r)
        assert "same" not in by_prompt  # all three responses are one text: nothing to prefer
        if fmt == "dpo":
            assert all(text_of(r, "chosen") != text_of(r, "rejected") for r in rows)
        else:
            for rs in by_prompt.values():
                texts = [text_of(r, "completion") for r in rs]
                assert len(texts) == len(set(texts))  # one row per text, so never both labels
        # the pairs that were left out, counted: best_worst on 'same' (1); best_each: 'd1' best vs its two
        # copies + 'same' best vs its two copies (4); margin: 3 in d1, 3 in same, 1 in d2 (7)
        skipped = {"best_worst": 1, "best_each": 4, "margin": 7}[policy]
        assert f"tourney: {skipped} candidate pair(s) of identical responses left out" in err, err
        meta = json.loads((tmp_path / "p.jsonl.meta.json").read_text())
        assert meta["mining"]["identical_pairs_skipped"] == skipped and meta["mining"]["rows"] == len(rows)


def test_kto_labels_texts_not_positions():
    """A foreign ranked line can hold copies that are not adjacent (the best and the worst are the
    same text): the text gets one row with one label, from the kept pairs of every copy."""
    item = parse_item({"id": "q", "prompt": "q", "responses": ["a", "b", "c", "a"]}, 0)
    res = {"status": "ok", "ranking": [0, 1, 2, 3], "scores": [3.0, 2.0, 1.0, 0.0], "matches": []}
    counts: dict[str, int] = {}
    assert list(mine_pairs(item, res, PairPolicy("best_worst"), counts)) == [] and counts == {"identical": 1}
    rows = list(mine_kto(item, res, PairPolicy("best_each")))
    assert [(r["completion"], r["label"], r["tourney"]["index"]) for r in rows] == [
        ("a", True, 0),
        ("b", False, 1),
        ("c", False, 2),
    ]  # copy 3 of "a" is never "undesirable"
    assert rows[0]["tourney"]["pairs"] == 2
    # margin: "a" is chosen (as 0) and rejected (as 3), so it is left out, as a middle candidate is
    rows = list(mine_kto(item, res, PairPolicy("margin")))
    assert all(r["completion"] != "a" for r in rows)
    assert {(r["completion"], r["label"]) for r in rows} == set()  # b and c are chosen and rejected too
    # copies with the same rank (as tourney rank writes them): the best-ranked copy backs the row
    item = parse_item({"id": "q", "prompt": "q", "responses": ["x", "y", "x"]}, 0)
    res = {"status": "ok", "ranking": [0, 2, 1], "scores": [1.0, 0.0, 1.0], "matches": []}
    rows = list(mine_kto(item, res, PairPolicy("margin")))
    assert [(r["completion"], r["label"], r["tourney"]["index"], r["tourney"]["pairs"]) for r in rows] == [
        ("x", True, 0, 2),
        ("y", False, 1, 2),
    ]


# -- the pairs file: atomic -----------------------------------------------------------------------
def test_pair_file_is_atomic_and_a_partial_one_is_converted_to_one_form(tmp_path):
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    path = tmp_path / "p.jsonl"
    path.write_text("previous\n")
    f = PairFile(path)
    assert (tmp_path / "p.jsonl.partial").exists()  # created at once: a folder that refuses it fails early
    for k, prompt in enumerate(["a", "b", chat]):
        f.write({"prompt": prompt, "chosen": f"c{k}", "rejected": f"r{k}", "tourney": {"id": str(k)}})
    assert path.read_text() == "previous\n"  # nothing replaces the previous file before the end
    kept = f.abort({"complete": False})
    assert kept == str(tmp_path / "p.jsonl.partial") and path.read_text() == "previous\n"
    rows = read_jsonl(Path(kept))
    assert [r["prompt"] for r in rows] == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}], chat]
    assert json.loads((tmp_path / "p.jsonl.partial.meta.json").read_text()) == {"complete": False}
    assert not list(tmp_path.glob("*.conv"))
    # a complete run replaces the previous file and removes the partial one
    f = PairFile(path)
    f.write({"prompt": "a", "chosen": "c", "rejected": "r", "tourney": {}})
    f.write({"prompt": chat, "chosen": "c", "rejected": "r", "tourney": {}})
    f.commit({"complete": True})
    assert [r["prompt"] for r in read_jsonl(path)] == [[{"role": "user", "content": "a"}], chat]
    assert f.converted == 1 and f.rows == 2
    assert json.loads((tmp_path / "p.jsonl.meta.json").read_text()) == {"complete": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "p.jsonl.meta.json"]
    # an aborted run that wrote nothing leaves nothing
    f = PairFile(path)
    assert f.abort({"complete": False}) is None and not (tmp_path / "p.jsonl.partial").exists()


JUDGE = "simulated:latency_median_s=0.02,latency_sigma=0.3"


def _rows(n: int = 200, k: int = 4) -> list[dict]:
    return question_rows(n, k)


def _cmd(inp: Path, out: Path, *extra: str) -> list[str]:
    return tourney_argv(
        "mine-pairs", inp, out, "--judge", JUDGE, "--policy", "best_each", "--no-progress", "--concurrency", "8",
        "--seed", "5", *extra,
    )  # fmt: skip


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
    """The input and an uninterrupted run's pairs (made once for the module)."""
    d = tmp_path_factory.mktemp("mine_uninterrupted")
    inp = write_jsonl(d / "in.jsonl", _rows())
    ref = d / "ref.jsonl"
    done = subprocess.run(_cmd(inp, ref, "--store", str(d / "ref.sqlite")), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return inp, ref


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_mine_pairs_keeps_the_previous_output_and_its_pairs_so_far_then_resumes(
    tmp_path, sig, code, uninterrupted
):
    inp, ref = uninterrupted
    out = tmp_path / "pairs.jsonl"
    out.write_bytes(b"the previous complete output\n")
    (tmp_path / "pairs.jsonl.meta.json").write_text('{"previous": true}\n')
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        _cmd(inp, out, "--store", str(store)),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    partial = tmp_path / "pairs.jsonl.partial"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:  # the first pairs reached the partial file
        if partial.exists() and partial.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out.read_bytes() == b"the previous complete output\n"  # untouched
    assert json.loads((tmp_path / "pairs.jsonl.meta.json").read_text()) == {"previous": True}
    assert "Traceback" not in err and "pairs from" not in err  # no summary for a run that did not finish
    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    assert f"tourney: interrupted ({name})" in err and "the same command resumes" in err
    assert err.splitlines()[-1].strip().startswith("tourney mine-pairs ") and f"--store {store}" in err.splitlines()[-1]
    kept = partial.read_bytes()
    n = len(kept.splitlines())
    assert 0 < n < len(ref.read_bytes().splitlines()) and kept.endswith(b"\n")  # stopped mid-run; whole lines only
    assert kept.splitlines() == ref.read_bytes().splitlines()[:n]  # the first pairs, in order, as a full run has them
    assert f"{n} pairs in order before the stop are in {partial}" in err
    meta = json.loads((tmp_path / "pairs.jsonl.partial.meta.json").read_text())
    assert meta["complete"] is False and meta["stopped"] == "interrupted" and meta["output"]["rows"] == n
    assert meta["resume"].startswith("tourney mine-pairs ") and meta["stats"]["samples"] > 0
    again = subprocess.run(_cmd(inp, out, "--store", str(store)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert out.read_bytes() == ref.read_bytes()  # byte-identical to an uninterrupted run
    assert not partial.exists() and not (tmp_path / "pairs.jsonl.partial.meta.json").exists()
    assert json.loads((tmp_path / "pairs.jsonl.meta.json").read_text())["stats"]["reused"] > 0


def test_sigterm_while_mining_a_ranked_file_keeps_the_pairs_so_far(tmp_path):
    """--ranked judges nothing; a stop while it reads (here: blocked on a FIFO that a slow
    producer fills) still keeps the pairs mined so far as a partial file and says how to resume."""
    ranked_ref = tmp_path / "r.jsonl"
    assert main(["rank", str(EXAMPLE), "--out", str(ranked_ref), "--no-store", "--no-progress", "--quiet"]) == 0
    clean = tmp_path / "clean.jsonl"
    assert (
        main(
            [
                "mine-pairs",
                str(EXAMPLE),
                "--ranked",
                str(ranked_ref),
                "--out",
                str(clean),
                "--policy",
                "best_each",
                "--conversational",
            ]
        )
        == 0
    )
    fifo = tmp_path / "ranked.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "p.jsonl"
    out.write_text("previous\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tourney",
            "mine-pairs",
            str(EXAMPLE),
            "--ranked",
            str(fifo),
            "--out",
            str(out),
            "--policy",
            "best_each",
            "--conversational",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = ranked_ref.read_bytes().splitlines(keepends=True)
    with open(fifo, "wb") as w:  # returns once the process has opened the ranked file
        w.write(b"".join(lines[:3]))
        w.flush()
        deadline = time.time() + 30
        while time.time() < deadline:  # the process has read all three lines
            left = ctypes.c_int()
            fcntl.ioctl(w.fileno(), termios.FIONREAD, left)
            if left.value == 0:
                break
            time.sleep(0.02)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "tourney: interrupted (SIGTERM)" in err and "Traceback" not in err
    assert "nothing is judged with --ranked: the same command mines it again" in err
    assert out.read_text() == "previous\n"
    kept = read_jsonl(tmp_path / "p.jsonl.partial")
    ids = [json.loads(x)["id"] for x in lines[:3]]
    assert kept == [p for p in read_jsonl(clean) if p["tourney"]["id"] in ids]
    meta = json.loads((tmp_path / "p.jsonl.partial.meta.json").read_text())
    assert meta["complete"] is False and meta["stopped"] == "interrupted" and meta["ranked"] == str(fifo)


def test_a_full_disk_is_a_clear_error_with_what_was_saved(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    store = tmp_path / "s.sqlite"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "tourney",
            "mine-pairs",
            str(EXAMPLE),
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
    assert "Traceback" not in res.stderr and "pairs from" not in res.stderr and "ranked 6/6" not in res.stderr
    assert "what went to /dev/full is not a complete output" in res.stderr
    assert f"kept in the store {store}" in res.stderr and _stored(store) > 0
    ranked = tmp_path / "r.jsonl"
    assert main(["rank", str(EXAMPLE), "--out", str(ranked), "--no-store", "--no-progress", "--quiet"]) == 0
    res = subprocess.run(
        [sys.executable, "-m", "tourney", "mine-pairs", str(EXAMPLE), "--ranked", str(ranked), "--out", "/dev/full"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "cannot write /dev/full: No space left on device" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def _without_dac_override() -> None:
    """In the child, before exec: drop root's right to write through permission bits (from the
    capability bounding set), so a folder without write permission refuses it as it refuses anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_folder_without_write_permission_fails_before_any_work(tmp_path):
    """EACCES, for real (root is made subject to permission bits in the child): exit 2, the
    message names the file and the reason, no judge call is paid for."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    store = tmp_path / "s.sqlite"
    try:
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "tourney",
                "mine-pairs",
                str(EXAMPLE),
                "--out",
                str(ro / "p.jsonl"),
                "--store",
                str(store),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_without_dac_override if os.geteuid() == 0 else None,
        )
    finally:
        ro.chmod(0o755)
    assert res.returncode == 2, res.stderr
    assert f"tourney: error: cannot write {ro / 'p.jsonl.partial'}: Permission denied" in res.stderr
    assert "Traceback" not in res.stderr and _stored(store) == 0 and not list(ro.iterdir())


def test_an_io_error_mid_run_keeps_the_previous_output_and_the_whole_pairs(tmp_path, monkeypatch, capsys):
    """EIO on the 4th pair: exit 2, a clear message, the previous file untouched, the pairs before it kept."""
    import tourney.outputs as outputs

    real_open = outputs.OutputFile._open

    class Failing:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, data):
            self.n += 1
            if self.n == 4:
                self.fh.write(data[:7])  # half a pair reaches the disk, then the device fails
                raise OSError(errno.EIO, "Input/output error")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(outputs.OutputFile, "_open", lambda self, path, mode: Failing(real_open(self, path, mode)))
    out = tmp_path / "p.jsonl"
    out.write_text("previous\n")
    code = main(
        [
            "mine-pairs",
            str(EXAMPLE),
            "--out",
            str(out),
            "--policy",
            "best_each",
            "--no-progress",
            "--store",
            str(tmp_path / "s.sqlite"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot write " in err and "Input/output error" in err, err
    assert "pairs from" not in err and "ranked" not in err
    assert out.read_text() == "previous\n"
    kept = read_jsonl(tmp_path / "p.jsonl.partial")  # whole pairs only (the first prompt's, plain text)
    assert len(kept) == 3 and all(isinstance(k["prompt"], str) and k["tourney"]["id"] == "capital-au" for k in kept)
    meta = json.loads((tmp_path / "p.jsonl.partial.meta.json").read_text())
    assert meta["complete"] is False and "Input/output error" in meta["stopped"] and meta["output"]["rows"] == 3


# -- --ranked reads every input format ---------------------------------------------------------------
def _mapped(rows: list[dict]) -> list[dict]:
    """The rows under other column names (and one pass-through field)."""
    return [
        {"qid": r["id"], "question": r["prompt"], "answers": r["responses"], "topic": f"t{k}"}
        for k, r in enumerate(rows)
    ]


MAPPING = ["--prompt-field", "question", "--responses-field", "answers", "--id-field", "qid"]


def test_ranked_reads_parquet_datasets_and_gzip_inputs_with_the_column_mapping(tmp_path):
    pa = require("pyarrow", "the data extra: parquet inputs")
    pq = require("pyarrow.parquet", "the data extra: parquet inputs")
    datasets = require("datasets", "the data extra: datasets folders")
    plain = [r for r in read_jsonl(EXAMPLE) if isinstance(r["prompt"], str)]  # parquet: one prompt type per column
    base = write_jsonl(tmp_path / "base.jsonl", plain)
    ranked = tmp_path / "r.jsonl"
    assert (
        main(
            [
                "rank",
                str(base),
                "--out",
                str(ranked),
                "--strategy",
                "knockout:both_orders=true",
                "--no-store",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    ref = tmp_path / "ref.jsonl"
    assert main(["mine-pairs", str(base), "--ranked", str(ranked), "--out", str(ref), "--policy", "best_each"]) == 0
    expected = ref.read_bytes()
    assert expected
    rows = _mapped(plain)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "in_ds"))
    (tmp_path / "in.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    for src in ("in.parquet", "in_ds", "in.jsonl.gz"):
        out = tmp_path / f"p_{src}.jsonl"
        assert (
            main(
                [
                    "mine-pairs",
                    str(tmp_path / src),
                    "--ranked",
                    str(ranked),
                    "--out",
                    str(out),
                    "--policy",
                    "best_each",
                    *MAPPING,
                ]
            )
            == 0
        ), src
        assert out.read_bytes() == expected, src
    # a parquet ranked file (tourney rank --out x.parquet) mines the same pairs
    assert (
        main(
            [
                "rank",
                str(base),
                "--out",
                str(tmp_path / "r.parquet"),
                "--strategy",
                "knockout:both_orders=true",
                "--no-store",
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    out = tmp_path / "p_rp.jsonl"
    assert (
        main(
            [
                "mine-pairs",
                str(tmp_path / "in.parquet"),
                "--ranked",
                str(tmp_path / "r.parquet"),
                "--out",
                str(out),
                "--policy",
                "best_each",
                *MAPPING,
            ]
        )
        == 0
    )
    assert out.read_bytes() == expected


def test_ranked_with_a_parquet_input_still_reports_each_bad_line_and_row(tmp_path, capsys):
    pa = require("pyarrow", "the data extra: parquet inputs")
    pq = require("pyarrow.parquet", "the data extra: parquet inputs")
    plain = [r for r in read_jsonl(EXAMPLE) if isinstance(r["prompt"], str)]
    base = write_jsonl(tmp_path / "base.jsonl", plain)
    ranked = tmp_path / "r.jsonl"
    assert main(["rank", str(base), "--out", str(ranked), "--no-store", "--no-progress", "--quiet"]) == 0
    clean = tmp_path / "clean.jsonl"
    assert main(["mine-pairs", str(base), "--ranked", str(ranked), "--out", str(clean), "--policy", "best_each"]) == 0
    rows = _mapped(plain)
    rows[3]["answers"] = None  # a row the input reader refuses
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    lines = ranked.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["scores"][0] = None  # a hand-edited ranked line
    bad = write_jsonl(tmp_path / "bad.jsonl", [lines[0], json.dumps(edited), *lines[2:]])
    out = tmp_path / "p.jsonl"
    capsys.readouterr()
    assert (
        main(
            [
                "mine-pairs",
                str(tmp_path / "in.parquet"),
                "--ranked",
                str(bad),
                "--out",
                str(out),
                "--policy",
                "best_each",
                *MAPPING,
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert f"{bad} line 2: 'scores' must be " in err and "line skipped" in err, err
    assert "in.parquet row 3: 'answers' must be a list of strings, got null" in err, err
    assert "2 line(s) skipped" in err and "Traceback" not in err
    skipped = {plain[1]["id"], plain[3]["id"]}
    assert read_jsonl(out) == [p for p in read_jsonl(clean) if p["tourney"]["id"] not in skipped]
    # a ranked file with fewer lines than the input has rows: exit 2, the pairs of the rows that matched kept
    short = write_jsonl(tmp_path / "short.jsonl", lines[:2])
    out.write_text("previous\n")
    assert main(["mine-pairs", str(base), "--ranked", str(short), "--out", str(out), "--policy", "best_each"]) == 2
    err = capsys.readouterr().err
    assert f"{short} has fewer result lines than {base} has items (they agree for the first 2)" in err
    assert out.read_text() == "previous\n"
    assert read_jsonl(tmp_path / "p.jsonl.partial") == [
        p for p in read_jsonl(clean) if p["tourney"]["id"] in (plain[0]["id"], plain[1]["id"])
    ]


def test_a_pipe_cannot_be_rewritten_so_a_mixed_input_says_so(tmp_path):
    """--out /dev/stdout into a pipe: rows are written as they come; the plain-prompt rows that
    went out before the first chat prompt cannot be converted afterwards: a warning counts them
    and names the flag that avoids it; with --conversational every row has one form."""
    ranked = tmp_path / "r.jsonl"
    assert main(["rank", str(EXAMPLE), "--out", str(ranked), "--no-store", "--no-progress", "--quiet"]) == 0
    cmd = [
        sys.executable,
        "-m",
        "tourney",
        "mine-pairs",
        str(EXAMPLE),
        "--ranked",
        str(ranked),
        "--out",
        "/dev/stdout",
        "--policy",
        "best_each",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    plain_first = next(k for k, r in enumerate(rows) if not isinstance(r["prompt"], str))
    assert plain_first > 0 and all(isinstance(r["prompt"], list) for r in rows[plain_first:])
    assert (
        f"tourney: warning: the first {plain_first} rows went to /dev/stdout in the standard form before the "
        "first chat prompt"
    ) in res.stderr and "--conversational" in res.stderr
    res = subprocess.run([*cmd, "--conversational"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr
    assert all(isinstance(json.loads(x)["prompt"], list) for x in res.stdout.splitlines())


def test_ranked_lines_decided_by_coin_flips_are_read_not_rejected(tmp_path, capsys):
    """`rank` marks a prompt whose order rests on coins `coin_flip`; mine-pairs --ranked reads
    such a line like a partial one (reported, exit 1), never as a malformed line."""
    rows = [{"id": f"q{k}", "prompt": f"question {k}", "responses": ["a", "b", "c"]} for k in range(3)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    ranked = tmp_path / "ranked.jsonl"
    code = main(
        [
            "rank",
            str(inp),
            "--out",
            str(ranked),
            "--no-store",
            "--quiet",
            "--no-progress",
            "--judge",
            "simulated:abstain_rate=1",
            "--fail-fast",
            "0",
            "--max-failure-rate",
            "1",
        ]
    )
    assert code == 1 and {r["status"] for r in read_jsonl(ranked)} == {"coin_flip"}
    capsys.readouterr()
    code = main(["mine-pairs", str(inp), "--ranked", str(ranked), "--out", str(tmp_path / "p.jsonl"), "--quiet"])
    err = capsys.readouterr().err
    assert "must be ok, partial" not in err and "line skipped" not in err
    assert code == 1 and "coin_flip" in err
