"""The scheduler's store adapter: what a match's key covers, recomputed here from the store's
documented recipe (sha256 of canonical JSON, tests/test_store.py), never from the adapter."""

from __future__ import annotations

import hashlib
import json
import sqlite3

from tourney.cache import StoreCache
from tourney.items import Item
from tourney.judges import build_judge
from tourney.store import KEY_VERSION, JudgementStore
from tourney.types import Judgement, Match, Outcome


def _documented_key(judge: dict, prompt, first: str, second: str, sample: int) -> str:
    def h(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def canonical(value) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    payload = {
        "first_sha256": h(first),
        "judge": judge,
        "key_version": KEY_VERSION,
        "prompt_sha256": h(canonical(prompt)),
        "sample": sample,
        "second_sha256": h(second),
    }
    return h(canonical(payload))


def test_keys_cover_the_judge_the_texts_in_order_and_the_pairs_input_scores(tmp_path):
    judge = build_judge("simulated:seed=1")
    identity = judge.identity()
    scored = Item(index=0, id="q", prompt="p", responses=("a", "b", "c"), scores=(0.5, -1.0, 2.0))
    plain = Item(index=0, id="q", prompt="p", responses=("a", "b", "c"))
    m = Match(prompt="p", first_text="c", second_text="a", prompt_id="q", first=2, second=0, samples=2, sample_offset=4)
    with JudgementStore(tmp_path / "s.sqlite") as store:
        cache = StoreCache(store, judge)
        cache.save(m, [Judgement(Outcome.A, sample=4), Judgement(Outcome.B, sample=5)], scored)
        store.flush()
        # the pair's scores, in presentation order, extend the judge identity
        with_scores = {**identity, "scores": [2.0, 0.5]}
        for s in (4, 5):
            assert store.get(_documented_key(with_scores, "p", "c", "a", s)) is not None
            assert store.get(_documented_key(identity, "p", "c", "a", s)) is None
        assert set(cache.lookup(m, scored)) == {4, 5}
        # the same texts without scores, or with other scores, are other matches
        assert cache.lookup(m, plain) == {}
        assert (
            cache.lookup(m, Item(index=0, id="q", prompt="p", responses=("a", "b", "c"), scores=(2.0, -1.0, 0.5))) == {}
        )
        cache.save(m, [Judgement(Outcome.B, sample=4), Judgement(Outcome.B, sample=5)], plain)
        store.flush()
        assert store.get(_documented_key(identity, "p", "c", "a", 4)).outcome is Outcome.B
        assert cache.lookup(m, scored)[4].outcome is Outcome.A
    with sqlite3.connect(tmp_path / "s.sqlite") as raw:  # exactly these four rows, nothing else
        keys = {k.hex() for (k,) in raw.execute("SELECT key FROM judgements")}  # 32-byte BLOBs
    assert keys == {_documented_key(k, "p", "c", "a", s) for k in (with_scores, identity) for s in (4, 5)}


def test_a_judges_per_match_identity_extends_that_matchs_key_only(tmp_path):
    """The model judges' candidate defences key a match apart only when they change it
    (Judge.match_identity); every other match keeps the judge's plain key."""
    from tourney.judges.simulated import SimulatedJudge

    class Picky(SimulatedJudge):
        def match_identity(self, match):
            return {"candidate_defence": {"version": 1}} if "</think>" in match.first_text else {}

    judge = Picky()
    identity = judge.identity()
    plain = Match(prompt="p", first_text="a", second_text="b", prompt_id="q", first=0, second=1)
    marked = Match(prompt="p", first_text="a </think>", second_text="b", prompt_id="q", first=0, second=1)
    with JudgementStore(tmp_path / "s.sqlite") as store:
        cache = StoreCache(store, judge)
        cache.save(plain, [Judgement(Outcome.A)])
        cache.save(marked, [Judgement(Outcome.B)])
        store.flush()
        keys = {
            row[0].hex() for row in sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT key FROM judgements")
        }  # 32-byte BLOBs
    assert keys == {
        _documented_key(identity, "p", "a", "b", 0),
        _documented_key({**identity, "candidate_defence": {"version": 1}}, "p", "a </think>", "b", 0),
    }
