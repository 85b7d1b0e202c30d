"""Resume after SIGKILL, reuse across strategies, concurrent writers, store faults at the CLI."""

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tourney.cli import main

from .conftest import question_rows, read_jsonl, tourney_argv, write_jsonl

JUDGE = "simulated:latency_median_s=0.01,latency_sigma=0.5"


def rows(n=40, k=8):
    return question_rows(n, k)


def _cmd(inp, out, store, *extra):
    return tourney_argv(
        "rank",
        inp,
        out,
        "--store",
        str(store),
        "--judge",
        JUDGE,
        "--no-progress",
        "--concurrency",
        "4",
        "--seed",
        "3",
        *extra,
    )


def _stored(store):
    if not store.exists():
        return 0
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("select count(*) from judgements").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_sigkill_then_resume_gives_identical_output_and_recomputes_nothing(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows())
    total = 40 * 7
    # reference: an uninterrupted run with its own store
    ref = subprocess.run(_cmd(inp, tmp_path / "ref.jsonl", tmp_path / "ref.sqlite"), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    store = tmp_path / "run.sqlite"
    proc = subprocess.Popen(_cmd(inp, tmp_path / "run.jsonl", store), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while _stored(store) < total // 2 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _stored(store)
    assert 0 < before < total, before
    res = subprocess.run(_cmd(inp, tmp_path / "run.jsonl", store), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    meta = json.loads((tmp_path / "run.jsonl.meta.json").read_text())["stats"]
    assert meta["reused"] == before and meta["new"] == total - before  # nothing paid twice
    assert _stored(store) == total
    assert f"({before} reused, {total - before} new)" in res.stderr
    check = subprocess.run(
        [sys.executable, "-m", "tourney", "store", "check", str(store)], capture_output=True, text=True
    )
    assert check.returncode == 0 and "OK" in check.stderr


def test_second_strategy_reuses_paid_matches(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows(10, 6))
    store = tmp_path / "s.sqlite"
    args = ["rank", str(inp), "--store", str(store), "--no-progress", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.jsonl"), "--strategy", "knockout:both_orders=true"]) == 0
    meta = json.loads((tmp_path / "b.jsonl.meta.json").read_text())["stats"]
    paid = {(r["id"], m["first"], m["second"]) for r in read_jsonl(tmp_path / "a.jsonl") for m in r["matches"]}
    wanted = [(r["id"], m["first"], m["second"]) for r in read_jsonl(tmp_path / "b.jsonl") for m in r["matches"]]
    overlap = sum(1 for w in wanted if w in paid)
    assert overlap >= 25  # at least the shared first-round matches in the first run's order
    assert meta["reused"] == overlap and meta["new"] == len(wanted) - overlap


def test_two_processes_share_one_store(tmp_path):
    store = tmp_path / "shared.sqlite"
    procs = []
    for name, part in (("a", rows(30, 6)[:20]), ("b", rows(30, 6)[10:])):
        inp = write_jsonl(tmp_path / f"{name}.jsonl", part)
        procs.append(subprocess.Popen(_cmd(inp, tmp_path / f"{name}.out", store), stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    check = subprocess.run(
        [sys.executable, "-m", "tourney", "store", "check", str(store)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert _stored(store) <= 30 * 5 and _stored(store) >= 20 * 5


def test_corrupt_store_is_refused_before_any_work(tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", rows(2, 3))
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    code = main(["rank", str(inp), "--store", str(bad), "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert code == 2
    assert "store" in capsys.readouterr().err.lower()
    assert not (tmp_path / "o.jsonl").exists()


def test_log_export_round_trips_through_the_replay_judge(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows(5, 5))
    store = tmp_path / "s.sqlite"
    assert (
        main(["rank", str(inp), "--store", str(store), "--out", str(tmp_path / "a.jsonl"), "--no-progress", "--quiet"])
        == 0
    )
    assert main(["log", "export", "--store", str(store), "--out", str(tmp_path / "log.jsonl")]) == 0
    log = read_jsonl(tmp_path / "log.jsonl")
    assert len(log) == 20 and {"prompt", "first", "second", "verdict", "reasoning", "tokens"} <= set(log[0])
    assert (
        main(
            [
                "rank",
                str(inp),
                "--judge",
                f"replay:{tmp_path / 'log.jsonl'}",
                "--no-store",
                "--out",
                str(tmp_path / "b.jsonl"),
                "--no-progress",
                "--quiet",
            ]
        )
        == 0
    )
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("judge", "tokens")} for r in rs]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "a.jsonl")) == strip(read_jsonl(tmp_path / "b.jsonl"))
    assert main(["log", "export", "--store", str(store), "--prompt", "p3", "--out", str(tmp_path / "p3.jsonl")]) == 0
    assert {r["prompt_id"] for r in read_jsonl(tmp_path / "p3.jsonl")} == {"p3"}


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="needs root to mount a tiny tmpfs")
def test_disk_full_stops_the_run_with_a_clear_message_and_keeps_what_was_stored(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount tmpfs here")
    try:
        noise = lambda n: base64.b64encode(os.urandom(n)).decode()  # noqa: E731  (the store compresses text)
        big = [{"id": f"p{i}", "prompt": noise(1500), "responses": [noise(4500) for _ in range(8)]} for i in range(40)]
        inp = write_jsonl(tmp_path / "in.jsonl", big)
        store = mnt / "s.sqlite"
        res = subprocess.run(_cmd(inp, tmp_path / "o.jsonl", store), capture_output=True, text=True, timeout=120)
        assert res.returncode == 2
        assert "tourney: error: disk full while committing" in res.stderr, res.stderr
        stored = _stored(store)
        assert stored > 0
        chk = subprocess.run(
            [sys.executable, "-m", "tourney", "store", "check", str(store)], capture_output=True, text=True
        )
        assert chk.returncode == 0, chk.stderr
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_store_keys_cover_the_simulated_truth_and_the_replay_file(tmp_path):
    """Found in review: swapped `scores`, or an edited replay file, silently reused old verdicts."""
    store = tmp_path / "s.sqlite"
    out = tmp_path / "o.jsonl"

    def best(rows, *judge):
        inp = write_jsonl(tmp_path / "in.jsonl", rows)
        assert main(
            ["rank", str(inp), "--out", str(out), "--store", str(store), "--no-progress", "--quiet", *judge]
        ) in (0, 1)
        return read_jsonl(out)[0]

    sharp = ["--judge", "simulated:noise=0.01,position_bias=0"]
    assert best([{"prompt": "q", "responses": ["a", "b"], "scores": [0, 10]}], *sharp)["best"] == 1
    assert best([{"prompt": "q", "responses": ["a", "b"], "scores": [10, 0]}], *sharp)["best"] == 0
    rep = tmp_path / "rep.jsonl"
    rows = [{"prompt": "q", "responses": ["a", "b"]}]
    for verdict, _winner in (("A", "a"), ("B", "b")):
        write_jsonl(
            rep, [{"prompt": "q", "first": f, "second": s, "verdict": verdict} for f, s in (("a", "b"), ("b", "a"))]
        )
        r = best(rows, "--judge", f"replay:{rep}", "--strategy", "knockout:both_orders=true")
        assert r["info"]["coin_flips"] == 1  # a judge that always prefers one position: a split vote
    write_jsonl(
        rep,
        [
            {"prompt": "q", "first": "a", "second": "b", "verdict": "A"},
            {"prompt": "q", "first": "b", "second": "a", "verdict": "B"},
        ],
    )
    assert best(rows, "--judge", f"replay:{rep}", "--strategy", "knockout:both_orders=true")["best_response"] == "a"
    write_jsonl(
        rep,
        [
            {"prompt": "q", "first": "a", "second": "b", "verdict": "B"},
            {"prompt": "q", "first": "b", "second": "a", "verdict": "A"},
        ],
    )
    assert best(rows, "--judge", f"replay:{rep}", "--strategy", "knockout:both_orders=true")["best_response"] == "b"


def test_a_store_edited_behind_the_engines_back_is_refused_not_reused(tmp_path):
    """Found by fault injection: rows with A and B swapped (sqlite3 by hand) were reused silently."""
    inp = write_jsonl(tmp_path / "in.jsonl", rows(20, 6))
    store = tmp_path / "s.sqlite"
    first = subprocess.run(_cmd(inp, tmp_path / "a.jsonl", store), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    con = sqlite3.connect(store)
    with con:
        swapped = con.execute(
            "UPDATE judgements SET outcome = CASE outcome WHEN 'A' THEN 'B' ELSE 'A' END "
            "WHERE outcome IN ('A', 'B') AND id % 3 = 0"
        ).rowcount
    con.close()
    assert swapped > 10
    res = subprocess.run(_cmd(inp, tmp_path / "b.jsonl", store), capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "does not match its row hash" in res.stderr and f"tourney store check {store}" in res.stderr
    assert "Traceback" not in res.stderr
    check = subprocess.run(
        [sys.executable, "-m", "tourney", "store", "check", str(store)], capture_output=True, text=True
    )
    assert (
        check.returncode == 1 and f"{min(swapped, 50)} problem" in check.stderr
    ) or "more row problems" in check.stderr
    # a row whose reasoning or token count was edited is refused the same way
    con = sqlite3.connect(store)
    with con:
        con.execute(
            "UPDATE judgements SET outcome = CASE outcome WHEN 'A' THEN 'B' ELSE 'A' END "
            "WHERE outcome IN ('A', 'B') AND id % 3 = 0"
        )  # undo
        con.execute("UPDATE judgements SET completion_tokens = completion_tokens + 1 WHERE id = 5")
    con.close()
    res = subprocess.run(_cmd(inp, tmp_path / "c.jsonl", store), capture_output=True, text=True)
    assert res.returncode == 2 and "does not match its row hash" in res.stderr, res.stderr
