"""Tests of tourney.store: round trips, keys, reuse rules, export, concurrency and faults.

Faults are real where the machine allows it: two writer processes, SIGKILL of a writer, a
file made read-only (chattr +i as root, chmod otherwise), a tiny tmpfs that fills up (root
only); SQLite's own SQLITE_FULL through ``PRAGMA max_page_count`` everywhere.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import pytest

from tourney.errors import StoreError
from tourney.store import KEY_VERSION, SCHEMA_VERSION, JudgementStore
from tourney.types import Judgement, Outcome

from .conftest import process_alive

REPO = Path(__file__).resolve().parents[1]
JUDGE = {"name": "vllm", "arg": "Qwen/Qwen3-8B", "options": {"format": "pandalm", "temperature": 0.6, "top_p": 0.95}}
PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2 = ?"}]
#: how long a subprocess test may wait for its children before failing
SUBPROCESS_TIMEOUT_S = 60


def full_judgement(outcome: Outcome = Outcome.A, sample: int = 0, **changes) -> Judgement:
    j = Judgement(
        outcome=outcome,
        reasoning="Réponse A est correcte; B dit 5. \u2603 <think>",
        verdict="[[A]]",
        sample=sample,
        prompt_tokens=812,
        cached_tokens=640,
        completion_tokens=377,
        latency_s=1.2345678901234567,
        error=None,
        extra={"type": "Reasoning", "rubric": ["correct", "concise"], "budget": {"truncated": False, "n": 3.5}},
    )
    return dataclasses.replace(j, **changes)


def put(store: JudgementStore, judgement: Judgement, *, first_text="4", second_text="5", prompt=PROMPT,
        judge=JUDGE, prompt_id="q1", first=0, second=1) -> str:  # fmt: skip
    key = store.key(judge, prompt, first_text, second_text, judgement.sample)
    store.put(
        key, judgement, prompt_id=prompt_id, prompt=prompt, first=first, second=second,
        first_text=first_text, second_text=second_text, judge_identity=judge,
    )  # fmt: skip
    return key


def run_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, **kwargs)


# ---------------------------------------------------------------- round trips and keys


def test_round_trip_of_every_field(tmp_path):
    path = tmp_path / "s.sqlite"
    j = full_judgement()
    with JudgementStore(path) as store:
        key = put(store, j)
        assert store.get(key) == j  # from the buffer
        store.flush()
        assert store.get(key) == j
    with JudgementStore(path, readonly=True) as store:
        got = store.get(key)
        assert got == j
        assert type(got.outcome) is Outcome and got.latency_s == j.latency_s
        assert store.get_many([key, "0" * 64]) == {key: j}
        assert store.get("nope") is None
        assert store.check() == []


def test_key_recipe_is_sha256_of_canonical_json():
    # restated here independently of the module: the key is a persistent format
    def h(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def canonical(value) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    payload = {
        "first_sha256": h("4"), "judge": JUDGE, "key_version": KEY_VERSION, "prompt_sha256": h(canonical(PROMPT)),
        "sample": 2, "second_sha256": h("5"),
    }  # fmt: skip
    text = canonical(payload)
    assert JudgementStore.key(JUDGE, PROMPT, "4", "5", 2) == hashlib.sha256(text.encode()).hexdigest()
    # any mapping/sequence types and key order give the same key
    proxy_prompt = tuple(types.MappingProxyType(dict(reversed(m.items()))) for m in PROMPT)
    judge = dict(reversed(list(JUDGE.items())))
    assert JudgementStore.key(judge, proxy_prompt, "4", "5", 2) == JudgementStore.key(JUDGE, PROMPT, "4", "5", 2)


def test_keys_differ_when_any_component_differs():
    base = JudgementStore.key(JUDGE, PROMPT, "4", "5", 0)
    hotter = {**JUDGE, "options": {**JUDGE["options"], "temperature": 0.7}}
    variants = {
        "swapped order": JudgementStore.key(JUDGE, PROMPT, "5", "4", 0),
        "sample": JudgementStore.key(JUDGE, PROMPT, "4", "5", 1),
        "judge settings": JudgementStore.key(hotter, PROMPT, "4", "5", 0),
        "judge model": JudgementStore.key({**JUDGE, "arg": "other"}, PROMPT, "4", "5", 0),
        "prompt content": JudgementStore.key(JUDGE, [PROMPT[0], {"role": "user", "content": "2+2?"}], "4", "5", 0),
        "prompt as string": JudgementStore.key(JUDGE, "2 + 2 = ?", "4", "5", 0),
        "first text": JudgementStore.key(JUDGE, PROMPT, "4.", "5", 0),
        "second text": JudgementStore.key(JUDGE, PROMPT, "4", "5 ", 0),
    }
    assert all(len(k) == 64 for k in variants.values())
    assert len({base, *variants.values()}) == len(variants) + 1, variants
    with pytest.raises(TypeError):
        JudgementStore.key(JUDGE, PROMPT, "4", "5", True)


def test_put_rejects_a_key_that_does_not_match_the_content(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match="does not match"):
            store.put(
                JudgementStore.key(JUDGE, PROMPT, "5", "4", 0), full_judgement(), prompt_id="q1", prompt=PROMPT,
                first=0, second=1, first_text="4", second_text="5", judge_identity=JUDGE,
            )  # fmt: skip


# ---------------------------------------------------------------- reuse rules


def test_error_is_stored_but_not_reused_and_is_replaced_by_a_real_judgement(tmp_path):
    path = tmp_path / "s.sqlite"
    failed = Judgement.failed("engine died", sample=0, latency_s=3.0)
    with JudgementStore(path) as store:
        key = put(store, failed)
        assert store.get(key) is None
        assert store.get(key, include_errors=True) == failed
        store.flush()
        assert store.get(key) is None and store.get_many([key]) == {}
        assert store.get_many([key], include_errors=True) == {key: failed}
        assert store.stats()["outcomes"]["error"] == 1
        # the retry succeeds: it replaces the error
        ok = full_judgement(Outcome.B)
        put(store, ok)
        store.flush()
        assert store.get(key) == ok
        # a later error never replaces a paid judgement, nor does a second paid one
        put(store, failed)
        put(store, full_judgement(Outcome.A))
        store.flush()
        assert store.get(key, include_errors=True) == ok
        assert store.stats()["judgements"] == 1
        assert store.check() == []


def test_one_large_commit_keeps_every_row(tmp_path):
    # one commit of 4,000 judgements and 4,001 new texts: the texts' ids are looked up in
    # several IN (...) queries of at most 500 keys, then inserted
    path = tmp_path / "s.sqlite"
    puts = {}
    with JudgementStore(path, batch_size=10_000, flush_interval_s=None) as store:
        for n in range(4000):
            j = full_judgement(Outcome.A if n % 3 else Outcome.B, sample=n % 7, reasoning=f"reason {n}")
            puts[put(store, j, first_text=f"answer {n}", first=n + 1)] = j
        assert store.backlog == 4000
        store.flush()
        assert store.backlog == 0
    with JudgementStore(path, readonly=True) as store:
        assert store.get_many(puts) == puts
        assert store.stats()["judgements"] == 4000
        assert store.check() == []


def test_abstain_is_reused(tmp_path):
    abstain = full_judgement(Outcome.ABSTAIN, verdict="I cannot decide")
    with JudgementStore(tmp_path / "s.sqlite") as store:
        key = put(store, abstain)
        store.flush()
        assert store.get(key) == abstain
        assert store.get_many([key]) == {key: abstain}


def test_first_put_wins_within_a_batch(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite", batch_size=1000) as store:
        key = put(store, full_judgement(Outcome.A))
        put(store, full_judgement(Outcome.B))
        assert store.get(key).outcome is Outcome.A
        store.flush()
        assert store.get(key).outcome is Outcome.A


def _wait_committed(store: JudgementStore, n: int) -> dict:
    deadline = time.monotonic() + 5
    while (store.stats()["pending"] or store.stats()["judgements"] < n) and time.monotonic() < deadline:
        time.sleep(0.01)
    return store.stats()


def test_batches_commit_by_size_and_by_timer(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path, batch_size=3, flush_interval_s=None) as store:
        for s in range(2):
            put(store, full_judgement(sample=s))
        time.sleep(0.2)  # no timer: the writer thread waits for a full batch
        assert store.stats()["pending"] == 2 and store.stats()["judgements"] == 0
        put(store, full_judgement(sample=2))
        stats = _wait_committed(store, 3)  # the writer commits off the caller's thread
        assert (stats["pending"], stats["judgements"]) == (0, 3)
    with JudgementStore(path, batch_size=1000, flush_interval_s=0.05) as store:
        put(store, full_judgement(sample=3))
        deadline = time.monotonic() + 5
        while store.stats()["pending"] and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = store.stats()
        assert (stats["pending"], stats["judgements"]) == (0, 4)


def test_stats_counts(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite") as store:
        put(store, full_judgement(Outcome.A, sample=0))
        put(store, full_judgement(Outcome.TIE, sample=1))
        put(store, full_judgement(Outcome.ABSTAIN, sample=2), prompt_id="q2", prompt="other")
        put(store, Judgement.failed("x", sample=3))
        put(store, full_judgement(Outcome.B), judge={"name": "simulated"})
        store.flush()
        st = store.stats()
    assert st["judgements"] == 5
    assert st["outcomes"] == {"A": 1, "B": 1, "tie": 1, "abstain": 1, "error": 1}
    assert (st["judges"], st["prompts"], st["texts"]) == (2, 2, 4)  # 2 prompts + "4" + "5"
    assert st["tokens"] == {"prompt": 4 * 812, "cached": 4 * 640, "completion": 4 * 377}
    assert (st["schema_version"], st["key_version"], st["pending"]) == (SCHEMA_VERSION, KEY_VERSION, 0)


# ---------------------------------------------------------------- export


def test_export_replay_format(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite") as store:
        k1 = put(store, full_judgement(Outcome.B), first_text="5", second_text="4", first=1, second=0)
        k2 = put(store, full_judgement(Outcome.ABSTAIN, sample=1), prompt="plain question", prompt_id="q2")
        put(store, Judgement.failed("boom", sample=2))
        records = list(store.export())
        assert [r["key"] for r in records] == [k1, k2]  # insertion order, errors left out
        r1, r2 = records
        assert {k: r1[k] for k in ("prompt", "first", "second", "verdict")} == {
            "prompt": PROMPT, "first": "5", "second": "4", "verdict": "B",
        }  # fmt: skip
        assert (r1["prompt_id"], r1["first_index"], r1["second_index"], r1["sample"]) == ("q1", 1, 0, 0)
        assert r1["outcome"] == "B" and r1["verdict_text"] == "[[A]]" and r1["reasoning"].startswith("Réponse")
        assert r1["tokens"] == {"prompt": 812, "cached": 640, "completion": 377}
        assert r1["latency_s"] == 1.2345678901234567 and r1["error"] is None
        assert r1["judge"] == JUDGE and r1["extra"]["rubric"] == ["correct", "concise"]
        assert r2["prompt"] == "plain question" and r2["verdict"] == "abstain" and r2["outcome"] == "abstain"
        json.dumps(records)  # JSONL-ready
        assert [r["key"] for r in store.export("q2")] == [k2]
        assert [r["outcome"] for r in store.export("q1", include_errors=True)] == ["B", "error"]


def test_export_pages_through_many_rows(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite") as store:
        keys = [put(store, full_judgement(sample=s)) for s in range(1203)]
        assert [r["key"] for r in store.export()] == keys


# ---------------------------------------------------------------- integrity


def test_check_reports_a_tampered_outcome_text_and_orphan(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path) as store:
        key = put(store, full_judgement(Outcome.A))
        put(store, full_judgement(Outcome.B), first_text="5", second_text="4")
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE judgements SET outcome = 'B' WHERE key = ?", (bytes.fromhex(key),))
    raw.close()
    with JudgementStore(path) as store:
        problems = store.check()
    assert problems == [f"judgement {key}: row hash mismatch (outcome, reasoning, tokens ... edited)"]

    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE judgements SET outcome = 'A' WHERE key = ?", (bytes.fromhex(key),))  # undo
        raw.execute("UPDATE judgements SET sample = 7 WHERE key = ?", (bytes.fromhex(key),))
        raw.execute("UPDATE texts SET body = '6' WHERE body = '5'")
        raw.execute("INSERT INTO texts (hash, body) VALUES (?, 'stray')", (hashlib.sha256(b"stray").digest(),))
    raw.close()
    with JudgementStore(path) as store:
        problems = store.check()
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "body does not match its hash (edited?)",
        "key mismatch (judge, prompt, texts or sample edited)",
        "orphan (no judgement uses it)",
        "row hash mismatch (outcome, reasoning, tokens ... edited)",
    ]
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("DELETE FROM texts WHERE body = '4'")
    raw.close()
    with JudgementStore(path) as store:
        assert sum("references missing" in p for p in store.check()) == 2


def test_wrong_schema_or_key_version_is_refused_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path) as store:
        put(store, full_judgement())
    for name, match in (("schema_version", "schema version 999"), ("key_version", "keys are version 999")):
        raw = sqlite3.connect(path)
        with raw:
            raw.execute("UPDATE meta SET value = '999' WHERE name = ?", (name,))
        raw.close()
        before = path.read_bytes()
        with pytest.raises(StoreError, match=match):
            JudgementStore(path)
        assert path.read_bytes() == before
        raw = sqlite3.connect(path)
        with raw:
            raw.execute(
                "UPDATE meta SET value = ? WHERE name = ?",
                (str(SCHEMA_VERSION if name == "schema_version" else KEY_VERSION), name),
            )
        raw.close()
    with JudgementStore(path) as store:
        assert store.check() == []


def test_not_a_store_and_corrupted_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match="not an SQLite database"):
        JudgementStore(garbage)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(StoreError, match="not a tourney judgement store"):
        JudgementStore(text)
    other = tmp_path / "other.sqlite"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a tourney judgement store"):
        JudgementStore(other)
    assert other.read_bytes() == before  # never converted, never put in WAL mode
    with pytest.raises(StoreError, match="no judgement store"):
        JudgementStore(tmp_path / "missing.sqlite", readonly=True)

    # a real store with garbage written over its data pages
    path = tmp_path / "s.sqlite"
    with JudgementStore(path) as store:
        for s in range(200):
            put(store, full_judgement(sample=s, reasoning="x" * 500))
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[3 * page : 6 * page] = os.urandom(3 * page)
    corrupted = tmp_path / "corrupted.sqlite"
    corrupted.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt"):
        JudgementStore(corrupted)
    # a truncated copy
    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(path.read_bytes()[: len(data) // 2])
    with pytest.raises(StoreError, match="corrupt"):
        JudgementStore(truncated)


# ---------------------------------------------------------------- read-only


def test_readonly_mode_reads_and_refuses_puts(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path) as store:
        key = put(store, full_judgement())
    with JudgementStore(path, readonly=True) as store:
        assert store.get(key) == full_judgement()
        with pytest.raises(StoreError, match="read-only"):
            put(store, full_judgement(sample=1))
        assert store.check() == [] and len(list(store.export())) == 1


def _make_readonly(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
    elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without a working chattr: cannot make a file read-only")


def _undo_readonly(path: Path) -> None:
    if os.geteuid() != 0:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    else:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_file_is_reported_at_open_and_stays_readable(tmp_path):
    path = tmp_path / "ro" / "s.sqlite"
    path.parent.mkdir()
    with JudgementStore(path) as store:
        keys = [put(store, full_judgement(sample=s)) for s in range(5)]
    _make_readonly(path)
    try:
        with pytest.raises(StoreError, match="read-only"):
            JudgementStore(path)
        with JudgementStore(path, readonly=True) as store:
            assert set(store.get_many(keys)) == set(keys)
            assert store.check() == []
    finally:
        _undo_readonly(path)
    with JudgementStore(path) as store:
        assert store.check() == [] and store.stats()["judgements"] == 5


# ---------------------------------------------------------------- disk full


def test_disk_full_raises_keeps_committed_and_retries_the_batch(tmp_path):
    # SQLite's own SQLITE_FULL ("database or disk is full"), produced by capping the file size
    path = tmp_path / "s.sqlite"
    store = JudgementStore(path, batch_size=10_000, flush_interval_s=None)
    committed = [put(store, full_judgement(sample=s)) for s in range(10)]
    store.flush()
    ((pages,),) = store._writer_sql("PRAGMA page_count")
    store._writer_sql(f"PRAGMA max_page_count = {pages + 2}")
    buffered = [
        put(store, full_judgement(sample=s, reasoning=os.urandom(2000).hex())) for s in range(10, 60)
    ]  # incompressible
    with pytest.raises(StoreError, match="disk full") as info:
        store.flush()
    assert "50 judgements stay pending" in str(info.value)
    with pytest.raises(StoreError, match="disk full"):
        put(store, full_judgement(sample=60))  # a failing store keeps saying so
    assert set(store.get_many(buffered)) == set(buffered)  # still served from the buffer
    store._writer_sql("PRAGMA max_page_count = 1073741823")  # space freed
    store.flush()
    store.close()
    with JudgementStore(path, readonly=True) as store:
        assert store.check() == []
        assert store.stats()["judgements"] == 61
        assert set(store.get_many(committed + buffered)) == set(committed + buffered)


def test_close_on_a_full_disk_says_what_was_lost(tmp_path):
    path = tmp_path / "s.sqlite"
    store = JudgementStore(path, batch_size=10_000, flush_interval_s=None)
    committed = put(store, full_judgement())
    store.flush()
    store._writer_sql("PRAGMA max_page_count = 1")
    put(store, full_judgement(sample=1, reasoning=os.urandom(100_000).hex()))  # ~110 kB compressed
    with pytest.raises(StoreError, match="1 pending judgements were NOT saved"):
        store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(committed)
    with JudgementStore(path) as store:
        assert store.check() == [] and list(store.get_many([committed])) == [committed]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a tmpfs here (needs root); SQLITE_FULL is covered by max_page_count")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_disk_and_read_only_remount(tiny_tmpfs):
    path = tiny_tmpfs / "s.sqlite"
    store = JudgementStore(path, batch_size=5, flush_interval_s=None)
    committed: list[str] = []
    batch: list[str] = []
    with pytest.raises(StoreError, match="disk full"):
        for s in range(10_000):
            batch.append(put(store, full_judgement(sample=s, reasoning=os.urandom(1500).hex())))
            if len(batch) == 5:
                store.flush()  # raises once the disk is full; else every put so far is committed
                committed += batch
                batch = []
    assert len(committed) > 10
    # free space, the buffered batch goes in on the next flush
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_tmpfs)], check=True)
    store.flush()
    key = put(store, full_judgement(sample=20_000))
    store.close()
    # a file system that went read-only: refused at open with a clear message, still readable
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    try:
        with pytest.raises(StoreError, match="read-only"):
            JudgementStore(path)
        with JudgementStore(path, readonly=True) as store:
            assert store.check() == []
            assert store.get(key) is not None
            assert len(store.get_many(committed)) == len(committed)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_tmpfs)], check=True)


# ---------------------------------------------------------------- processes

WRITER = """
import sys, time
from pathlib import Path
from tourney.store import JudgementStore
from tourney.types import Judgement, Outcome
path, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
judge = {"name": "simulated", "noise": 1.0}
while not go.exists():
    time.sleep(0.001)
print("start", time.time(), flush=True)
with JudgementStore(path, batch_size=int(sys.argv[5]), flush_interval_s=None, timeout_s=30) as store:
    for i in range(n):
        # half the keys are shared by both writers, half are the writer's own
        first = f"shared answer {i}" if i % 2 else f"{name} answer {i}"
        j = Judgement(Outcome.A if i % 3 else Outcome.B, reasoning=name * 200, sample=0, prompt_tokens=i)
        key = store.key(judge, f"prompt {i % 7}", first, "the other", 0)
        store.put(key, j, prompt_id=f"p{i % 7}", prompt=f"prompt {i % 7}", first=0, second=1,
                  first_text=first, second_text="the other", judge_identity=judge)
        if (i + 1) % 25 == 0:
            store.flush()
            print(i + 1, flush=True)
print("end", time.time(), flush=True)
"""


def _writer_keys(name: str, n: int) -> set[str]:
    judge = {"name": "simulated", "noise": 1.0}
    return {
        JudgementStore.key(
            judge, f"prompt {i % 7}", f"shared answer {i}" if i % 2 else f"{name} answer {i}", "the other", 0
        )
        for i in range(n)
    }


def test_two_processes_write_concurrently_and_both_succeed(tmp_path):
    path, go, n = tmp_path / "s.sqlite", tmp_path / "go", 6000
    # both processes also race to CREATE the store: the file does not exist yet
    procs = [
        run_python(
            WRITER, str(path), name, str(n), str(go), "7", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in ("alpha", "beta")
    ]
    go.touch()
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=SUBPROCESS_TIMEOUT_S)
        assert p.returncode == 0, err
        lines = out.split("\n")
        assert lines[-3] == str(n)
        spans.append((float(lines[0].split()[1]), float(lines[-2].split()[1])))
    assert max(start for start, _ in spans) < min(end for _, end in spans), "the writers did not overlap"
    expected = _writer_keys("alpha", n) | _writer_keys("beta", n)
    with JudgementStore(path, readonly=True) as store:
        assert store.check() == []
        assert store.stats()["judgements"] == len(expected) == 2 * n - n // 2
        assert set(store.get_many(expected)) == expected


CREATORS = """
import multiprocessing, os, sys
from tourney.store import JudgementStore

def open_once(path, barrier, results):
    barrier.wait()
    try:
        JudgementStore(path).close()
        results.put(None)
    except Exception as exc:
        results.put(repr(exc))

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    directory, trials, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for trial in range(trials):
        barrier, results = ctx.Barrier(width), ctx.Queue()
        path = os.path.join(directory, f"s{trial}.sqlite")
        procs = [ctx.Process(target=open_once, args=(path, barrier, results)) for _ in range(width)]
        for p in procs:
            p.start()
        for error in [results.get() for _ in procs]:
            if error is not None:
                print(error)
        for p in procs:
            p.join()
"""


def test_processes_that_create_one_new_store_at_once_all_open_it(tmp_path):
    # Six processes open the same not-yet-existing store at one instant, 40 times over. One of
    # them creates it; the others must see either no tables or the whole store, never the tables
    # without the application_id (both become visible at the creator's commit). Read in two
    # statements, that happened in ~4% of opens and refused the store as "not a tourney store".
    proc = run_python(CREATORS, str(tmp_path), "40", "6", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert proc.returncode == 0, err
    assert out == ""
    for trial in range(40):
        with JudgementStore(tmp_path / f"s{trial}.sqlite", readonly=True) as store:
            assert store.check() == []


def test_a_writer_waits_for_another_writers_lock_then_gives_up_clearly(tmp_path):
    path = tmp_path / "s.sqlite"
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    with JudgementStore(path, flush_interval_s=None, timeout_s=5) as store:
        blocker.execute("BEGIN IMMEDIATE")  # another connection holds the write lock for 0.3 s
        threading.Timer(0.3, blocker.execute, ("COMMIT",)).start()
        t0 = time.monotonic()
        key = put(store, full_judgement())
        store.flush()
        assert time.monotonic() - t0 >= 0.25 and store.get(key) is not None
    with JudgementStore(path, flush_interval_s=None, timeout_s=0.3) as store:
        blocker.execute("BEGIN IMMEDIATE")
        key = put(store, full_judgement(sample=1))
        with pytest.raises(StoreError, match="held the write lock"):
            store.flush()
        blocker.execute("COMMIT")
        store.flush()
        assert store.check() == [] and store.stats()["judgements"] == 2
    blocker.close()


def test_threads_can_share_one_store(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite", batch_size=16, flush_interval_s=0.01) as store:

        def work(t: int) -> list[str]:
            return [put(store, full_judgement(sample=1000 * t + s)) for s in range(200)]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            keys = [k for ks in pool.map(work, range(4)) for k in ks]
        store.flush()
        assert len(store.get_many(keys)) == 800 and store.check() == []


def test_sigkilled_writer_loses_nothing_committed(tmp_path):
    path, go = tmp_path / "s.sqlite", tmp_path / "go"
    go.touch()
    proc = run_python(WRITER, str(path), "solo", "1000000", str(go), "5", stdout=subprocess.PIPE, text=True)
    reported = 0
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while reported < 400 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            if not line.startswith("start"):
                reported = int(line)
        time.sleep(0.05)  # let it be mid-commit or mid-batch
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with JudgementStore(path) as store:  # opens: quick_check and a write probe pass
        assert store.check() == []
        n = store.stats()["judgements"]
        assert n >= reported
        assert set(store.get_many(_writer_keys("solo", reported))) == _writer_keys("solo", reported)


# ---------------------------------------------------------------- the writer process


def _wait_gone(pid: int, what: str) -> None:
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    while process_alive(pid):
        assert time.monotonic() < deadline, f"{what} (pid {pid}) is still running"
        time.sleep(0.02)


def test_commits_run_in_a_writer_process_of_their_own_by_default(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path) as store:
        assert store.writer == "process"
        pid = store._committer.pid
        assert pid != os.getpid()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-I", b"-S"] and cmdline[3].endswith(b"_store_writer.py")
        keys = [put(store, full_judgement(sample=s)) for s in range(50)]
        store.flush()
        with sqlite3.connect(path) as con:  # committed by the writer process, seen by anyone
            assert con.execute("SELECT count(*) FROM judgements").fetchone()[0] == 50
    _wait_gone(pid, "the writer process after close")
    with JudgementStore(path, writer="thread") as store:  # the same file, committed on a thread
        assert store.writer == "thread" and not hasattr(store._committer, "pid")
        assert set(store.get_many(keys)) == set(keys)
        put(store, full_judgement(sample=50))
    with JudgementStore(path, readonly=True) as store:
        assert store.check() == [] and store.stats()["judgements"] == 51


def test_both_writers_store_the_same_rows(tmp_path):
    rows = {}
    for writer in ("process", "thread"):
        path = tmp_path / f"{writer}.sqlite"
        with JudgementStore(path, writer=writer, batch_size=7) as store:
            for s in range(40):
                put(store, full_judgement(sample=s, reasoning=f"reasoning {s} " * (s * 10)), first_text=f"r{s % 3}")
            put(store, full_judgement(Outcome.ERROR, sample=40, error="TimeoutError"))
        con = sqlite3.connect(path)
        rows[writer] = (
            con.execute(
                "SELECT key, judge_id, prompt_text_id, first_text_id, sample, outcome, reasoning, error "
                "FROM judgements ORDER BY key"
            ).fetchall()
            + con.execute("SELECT hash, body FROM texts ORDER BY hash").fetchall()
        )
        con.close()
    assert len(rows["process"]) > 41 and rows["process"] == rows["thread"]


def test_a_killed_writer_process_is_replaced_and_nothing_pending_is_lost(tmp_path):
    path = tmp_path / "s.sqlite"
    with JudgementStore(path, flush_interval_s=None) as store:
        first = [put(store, full_judgement(sample=s)) for s in range(10)]
        store.flush()
        pid = store._committer.pid
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, "the killed writer process")
        later = [put(store, full_judgement(sample=s)) for s in range(10, 20)]
        store.flush()  # the commit finds the process gone: a new one commits the same cycle
        assert store._committer.pid != pid
        pid = store._committer.pid
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, "the killed writer process")
        with pytest.raises(StoreError, match=r"writer process \(pid \d+\) of the judgement store .* ended"):
            store._writer_sql("SELECT 1")  # a call on the dead process says what happened
        last = [put(store, full_judgement(sample=s)) for s in range(20, 30)]
        store.flush()
        assert set(store.get_many(first + later + last)) == set(first + later + last)
    with JudgementStore(path, readonly=True) as store:
        assert store.check() == [] and store.stats()["judgements"] == 30


def test_a_writer_process_that_cannot_start_again_fails_loudly_and_loses_nothing(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    python = sys.executable
    store = JudgementStore(path, flush_interval_s=None)
    first = [put(store, full_judgement(sample=s)) for s in range(5)]
    store.flush()
    pid = store._committer.pid
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, "the killed writer process")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))  # as after an upgrade removed it
    later = [put(store, full_judgement(sample=s)) for s in range(5, 10)]
    with pytest.raises(StoreError, match="cannot start a new writer process .* stays pending"):
        store.flush()
    with pytest.raises(StoreError, match="cannot start a new writer process"):
        put(store, full_judgement(sample=10))  # a failing store keeps saying so (the put stays pending)
    monkeypatch.setattr(sys, "executable", python)
    store.flush()  # retried at once: a new writer process commits everything pending
    keys = [*first, *later, store.key(JUDGE, PROMPT, "4", "5", 10)]
    assert set(store.get_many(keys)) == set(keys)
    store.close()
    with JudgementStore(path, readonly=True) as store:
        assert store.check() == [] and store.stats()["judgements"] == 11


def test_an_unexpected_error_in_a_write_cycle_reaches_flush_claims_and_close(tmp_path, monkeypatch):
    store = JudgementStore(tmp_path / "s.sqlite", flush_interval_s=None)
    monkeypatch.setattr(store._committer, "commit", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    put(store, full_judgement())
    with pytest.raises(StoreError, match="writer of the judgement store .* failed: RuntimeError: boom"):
        store.flush()
    claim = store.claim(hashlib.sha256(b"work").hexdigest())
    with pytest.raises(StoreError, match="RuntimeError: boom"):
        claim.result(timeout=SUBPROCESS_TIMEOUT_S)  # answered, not left waiting forever
    assert store._thread.is_alive()  # the writer thread lives on and retries
    with pytest.raises(StoreError, match="1 pending judgements were NOT saved"):
        store.close()


def test_a_judgement_whose_latency_is_not_a_number_is_refused_at_put(tmp_path):
    with JudgementStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match="latency_s must be a finite number, got nan"):
            put(store, full_judgement(latency_s=float("nan")))
        key = put(store, full_judgement(sample=1))  # the store goes on
        store.flush()
        assert store.get(key) is not None


def test_the_writer_process_ends_with_a_killed_parent_and_commits_what_it_was_given(tmp_path):
    path = tmp_path / "s.sqlite"
    code = """
    import sys, time
    from tourney.store import JudgementStore
    from tourney.types import Judgement, Outcome
    store = JudgementStore(sys.argv[1], flush_interval_s=None)
    for s in range(200):
        j = Judgement(Outcome.A, sample=s)
        store.put(store.key({"j": 1}, "p", "a", "b", s), j, prompt_id="p", prompt="p", first=0, second=1,
                  first_text="a", second_text="b", judge_identity={"j": 1})
    store.flush()
    print(store._committer.pid, flush=True)
    time.sleep(600)
    """
    proc = run_python(code, str(path), stdout=subprocess.PIPE, text=True)
    try:
        pid = int(proc.stdout.readline())
        assert process_alive(pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    _wait_gone(pid, "the writer process of a killed run")  # its stdin ended: no orphan left behind
    with JudgementStore(path) as store:
        assert store.check() == [] and store.stats()["judgements"] == 200


def test_a_store_commits_on_its_thread_where_no_writer_process_can_start(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sys, "executable", "")
    with caplog.at_level("WARNING", logger="tourney"), JudgementStore(tmp_path / "s.sqlite") as store:
        assert store.writer == "thread"
        key = put(store, full_judgement())
        store.flush()
        assert store.get(key) is not None
    assert "cannot start a writer process" in caplog.text and "committing on a thread" in caplog.text
    with pytest.raises(ValueError, match="writer must be one of process, thread, got 'fork'"):
        JudgementStore(tmp_path / "t.sqlite", writer="fork")


def test_import_is_light():
    code = """
    import sys
    import tourney.store
    heavy = {"ray", "vllm", "torch", "transformers", "httpx", "requests", "urllib.request"} & set(sys.modules)
    assert not heavy, heavy
    """
    proc = run_python(code, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert proc.returncode == 0, err


# ---------------------------------------------------------------- schema version 1 (main's stores)

V1 = REPO / "tests" / "fixtures" / "store_v1"


def test_a_store_written_by_schema_1_code_is_upgraded_and_reused(tmp_path):
    """tests/fixtures/store_v1/v1.sqlite was written by main's store code (make_store_v1.py)."""
    path = tmp_path / "v1.sqlite"
    shutil.copy(V1 / "v1.sqlite", path)
    with sqlite3.connect(path) as raw:
        before = {k: (o, r) for k, o, r in raw.execute("SELECT key, outcome, row_hash FROM judgements")}
    assert len(before) == 34
    with pytest.raises(StoreError, match="schema version 1 .*`tourney store upgrade"):
        JudgementStore(path, readonly=True)  # a read-only open cannot upgrade: it says how
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == ("1",)
    with JudgementStore(path) as store:  # the first writable open upgrades it
        assert store.check() == []
        stats = store.stats()
        assert (stats["schema_version"], stats["judgements"], stats["outcomes"]["error"]) == (2, 34, 1)
        keys = list(before)
        got = store.get_many(keys, include_errors=True)
        assert set(got) == set(keys)
        assert all(got[k].outcome.value == before[k][0] for k in keys)
        long = [j for j in got.values() if j.reasoning.startswith("Step by step")]
        assert len(long) == 1 and long[0].extra == {"note": "long", "rubric": ["correct"]}
    with sqlite3.connect(path) as raw:  # keys and row hashes kept; the long reasoning compressed
        after = {k.hex(): h.hex() for k, h in raw.execute("SELECT key, row_hash FROM judgements")}
        assert after == {k: r for k, (_, r) in before.items()}
        assert raw.execute("SELECT count(*) FROM judgements WHERE typeof(reasoning) = 'blob'").fetchone() == (1,)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_rank_run_reuses_every_judgement_of_a_schema_1_store(tmp_path):
    from tourney.cli import main

    path = tmp_path / "v1.sqlite"
    shutil.copy(V1 / "v1.sqlite", path)
    args = ["rank", str(V1 / "in.jsonl"), "--no-progress", "--quiet", "--seed", "3"]
    assert main([*args, "--store", str(path), "--out", str(tmp_path / "reused.jsonl")]) == 0
    meta = json.loads((tmp_path / "reused.jsonl.meta.json").read_text())["stats"]
    assert meta["new"] == 0 and meta["reused"] == meta["samples"] == 32  # all 32 judgements main's run paid for
    assert main([*args, "--no-store", "--out", str(tmp_path / "fresh.jsonl")]) == 0
    assert (tmp_path / "reused.jsonl").read_bytes() == (tmp_path / "fresh.jsonl").read_bytes()


def test_store_upgrade_command(tmp_path, capsys):
    from tourney.cli import main

    path = tmp_path / "v1.sqlite"
    shutil.copy(V1 / "v1.sqlite", path)
    assert main(["store", "upgrade", str(path)]) == 0
    assert "schema version 2, 34 judgements" in capsys.readouterr().err
    assert main(["store", "check", str(path)]) == 0
