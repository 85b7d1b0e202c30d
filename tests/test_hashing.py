"""Stable hashes, seeds and canonical prompt texts: one helper each, and every digest exactly the
recipe it always was (seeds, store keys and outputs depend on them). Expected values come from
hashlib and json directly, never from the helpers under test."""

from __future__ import annotations

import hashlib
import json

import pytest

from tourney.hashing import content_hash, prompt_text, response_key, sha256_hex, stable_seed, uniforms
from tourney.judges._common import match_seed, request_id
from tourney.judges.replay import prompt_key
from tourney.types import Match

CHAT = ({"role": "system", "content": "Sé breve."}, {"role": "user", "content": "2 + 2 = ?"})
TEXTS = ["", "Canberra.", "Zürich — 東京", "x" * 10_000]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("size", [8, 12, 16, 32])
def test_content_hash_is_blake2b_of_utf8_with_the_given_size(text, size):
    expected = hashlib.blake2b(text.encode("utf-8"), digest_size=size).hexdigest()
    assert content_hash(text, size) == expected == content_hash(text.encode("utf-8"), size)


@pytest.mark.parametrize("text", TEXTS)
def test_response_key_and_sha256(text):
    assert response_key(text) == hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    assert sha256_hex(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert sha256_hex(text.encode("utf-8")) == sha256_hex(text)


def test_uniforms_are_consecutive_64_bit_words_of_one_digest():
    key = "s|0|abc|def|3"
    digest = hashlib.blake2b(key.encode(), digest_size=40).digest()
    expected = [(int.from_bytes(digest[8 * i : 8 * i + 8], "big") + 0.5) / 2.0**64 for i in range(5)]
    assert uniforms(key, 5) == expected
    assert all(0.0 < u < 1.0 for u in expected)
    # a different k is a different digest, not a prefix
    assert uniforms(key, 1)[0] != expected[0]


def test_stable_seed_is_blake2b_of_the_repr():
    parts = (7, "strategy", "p1")
    expected = int.from_bytes(hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest(), "big")
    assert stable_seed(*parts) == expected & (2**63 - 1)
    assert stable_seed(*parts, bits=31) == expected & (2**31 - 1)


def test_one_prompt_text_for_every_judge():
    assert prompt_text("What is 2 + 2?") == "What is 2 + 2?"
    expected = json.dumps(list(CHAT), sort_keys=True, ensure_ascii=False)
    assert prompt_text(CHAT) == prompt_text(list(CHAT)) == expected
    assert "Sé" in expected  # non-ASCII kept
    assert prompt_key is prompt_text  # the replay file's key is the same text
    # a replay record may hold any JSON value as its prompt: keyed by its JSON, never a crash
    assert prompt_text({"b": 1, "a": 2}) == '{"a": 2, "b": 1}' and prompt_text(5) == "5"


def test_model_judges_seed_and_name_requests_from_the_canonical_text():
    m = Match(prompt=CHAT, first_text="4", second_text="5", prompt_id="q", first=0, second=1, samples=2)
    ptext = json.dumps(list(CHAT), sort_keys=True, ensure_ascii=False)
    seed = int.from_bytes(hashlib.blake2b(repr((ptext, "4", "5", 3)).encode(), digest_size=8).digest(), "big")
    assert match_seed(m, 3) == seed & (2**31 - 1)
    h = hashlib.blake2b(repr((m.key, ptext, "4", "5")).encode(), digest_size=8).hexdigest()
    assert request_id(m, "vllm") == f"tourney-vllm-{h}-0x2"
