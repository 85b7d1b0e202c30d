"""Input validation: each bad item gets a specific error naming it."""

import json

import pytest

from tourney.errors import InputError
from tourney.items import Item, parse_item, read_items


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ({"responses": ["a"]}, "missing 'prompt'"),
        ({"prompt": "", "responses": ["a"]}, "'prompt' is empty"),
        ({"prompt": 3, "responses": ["a"]}, "'prompt' must be"),
        ({"prompt": "q", "responses": []}, "at least 1 response"),
        ({"prompt": "q", "responses": "abc"}, "must be a list"),
        ({"prompt": "q", "responses": ["a", 2]}, "response 1 is a int"),
        ({"prompt": "q", "responses": ["a", "b", "a"]}, "responses 0 and 2 are identical"),
        ({"prompt": "q", "responses": ["a", "b"], "scores": [1.0]}, "'scores' must be a list of 2"),
        ({"prompt": "q", "responses": ["a"], "id": [1]}, "'id' must be"),
        ({"prompt": [{"role": "user"}], "responses": ["a"]}, "prompt message 0"),
        ({"prompt": [{"role": "assistant", "content": "x"}], "responses": ["a"]}, "must end with a 'user'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_items_are_named(obj, fragment):
    with pytest.raises(InputError) as exc:
        parse_item(obj, 4, "input line 5")
    assert fragment in str(exc.value)
    assert str(exc.value).startswith("input line 5: ")


def test_read_items_keeps_going_after_bad_lines():
    lines = [
        json.dumps({"prompt": "q1", "responses": ["a", "b"]}),
        "{not json",
        "",
        json.dumps({"prompt": "q2", "responses": ["c"]}),
    ]
    got = list(read_items(lines, "in.jsonl"))
    assert [type(g) for g in got] == [Item, InputError, Item]
    assert "in.jsonl line 2: malformed JSON" in str(got[1])
    assert got[2].index == 2 and got[2].id == "2"


def test_chat_prompt_and_ids():
    it = parse_item({"id": "x", "prompt": [{"role": "user", "content": "hi"}], "responses": ["a"]}, 0)
    assert it.id == "x" and it.prompt[0]["content"] == "hi" and it.n == 1


def test_overflowing_numbers_and_deep_nesting_are_input_errors():
    lines = [json.dumps({"prompt": "q", "responses": ["a", "b"], "scores": [10**400, 1]}),
             "[" * 100000 + "]" * 100000,
             json.dumps({"prompt": "q", "responses": ["a"]})]
    got = list(read_items(lines))
    assert "finite numbers" in str(got[0]) and "nested too deeply" in str(got[1]) and isinstance(got[2], Item)
