"""Input validation: each bad item gets a specific error naming it; column mapping; duplicates."""

import json

import pytest

from tourney.errors import InputError
from tourney.items import FieldMap, Item, ItemError, parse_item, read_items
from tourney.types import PromptResult


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ({"responses": ["a"]}, "missing 'prompt' (fields present: 'responses'"),
        ({"prompt": "", "responses": ["a"]}, "'prompt' is empty"),
        (
            {"prompt": 3, "responses": ["a"]},
            "'prompt' must be a non-empty string or a non-empty list of chat messages, got number",
        ),
        ({"prompt": "q", "responses": []}, "at least 1 response"),
        ({"prompt": "q", "responses": "abc"}, "'responses' is a string, not a list of strings"),
        ({"prompt": "q", "responses": {"a": 1}}, "'responses' must be a list of strings, got object"),
        ({"prompt": "q", "responses": ["a", 2]}, "response 1 is a int"),
        (
            {"prompt": "q", "responses": ["a", "b"], "scores": [1.0]},
            "'scores' must be a list of 2 finite numbers, got list of number of length 1",
        ),
        ({"prompt": "q", "responses": ["a", "b"], "scores": [1.0, "2"]}, "got list of number/string"),
        ({"prompt": "q", "responses": ["a"], "id": [1]}, "'id' must be a string or an integer, got list of number"),
        ({"prompt": [{"role": "user"}], "responses": ["a"]}, "prompt message 0"),
        (
            {"prompt": [["user", "hi"]], "responses": ["a"]},
            "prompt message 0 must be an object with string 'role' and 'content', got list of string",
        ),
        (
            {"prompt": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "responses": ["a"]},
            "got object with content list of object",
        ),
        ({"prompt": [{"role": "assistant", "content": "x"}], "responses": ["a"]}, "must end with a 'user'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_items_are_named(obj, fragment):
    with pytest.raises(InputError) as exc:
        parse_item(obj, 4, "input line 5")
    assert fragment in str(exc.value)
    assert str(exc.value).startswith("input line 5: ")


def test_identical_responses_are_allowed_by_default_and_refused_on_request():
    it = parse_item({"prompt": "q", "responses": ["a", "b", "a"]}, 0)
    assert it.responses == ("a", "b", "a")
    with pytest.raises(InputError, match="responses 0 and 2 are identical"):
        parse_item({"prompt": "q", "responses": ["a", "b", "a"]}, 0, duplicates="error")


def test_a_failed_item_keeps_its_own_id_and_fields():
    with pytest.raises(ItemError) as exc:
        parse_item({"id": "q7", "prompt": "", "responses": ["a"], "source": "x"}, 3)
    assert exc.value.id == "q7" and exc.value.extra == {"source": "x"} and exc.value.index == 3
    with pytest.raises(ItemError) as exc:  # no id field: the row's position, as for a good row
        parse_item({"prompt": "", "responses": ["a"]}, 3)
    assert exc.value.id == "3"
    with pytest.raises(ItemError) as exc:  # an invalid id is not read
        parse_item({"id": {"x": 1}, "prompt": "q", "responses": ["a"]}, 3)
    assert exc.value.id is None


def test_read_items_keeps_going_after_bad_lines():
    lines = [
        json.dumps({"prompt": "q1", "responses": ["a", "b"]}),
        "{not json",
        "",
        json.dumps({"prompt": "q2", "responses": ["c"]}),
    ]
    got = list(read_items(lines, "in.jsonl"))
    assert [type(g) for g in got] == [Item, ItemError, Item]
    assert "in.jsonl line 2: malformed JSON" in str(got[1])
    assert got[1].id is None  # an unreadable line has no id (never its index, which could be a real id)
    assert got[2].index == 2 and got[2].id == "2"


def test_read_items_accepts_a_byte_order_mark():
    got = list(read_items(["\ufeff" + json.dumps({"prompt": "q", "responses": ["a"]})]))
    assert isinstance(got[0], Item)


def test_chat_prompt_and_ids():
    it = parse_item({"id": "x", "prompt": [{"role": "user", "content": "hi"}], "responses": ["a"]}, 0)
    assert it.id == "x" and it.prompt[0]["content"] == "hi" and it.n == 1


def test_overflowing_numbers_and_deep_nesting_are_input_errors():
    lines = [
        json.dumps({"prompt": "q", "responses": ["a", "b"], "scores": [10**400, 1]}),
        "[" * 100000 + "]" * 100000,
        json.dumps({"prompt": "q", "responses": ["a"]}),
    ]
    got = list(read_items(lines))
    assert "finite numbers" in str(got[0]) and "nested too deeply" in str(got[1]) and isinstance(got[2], Item)


def test_field_map_single_and_several_columns_dotted_paths_and_pass_through():
    row = {
        "question": "2+2?",
        "a": {"solution": "4", "ok": True},
        "b": {"solution": "5", "ok": False},
        "uid": 17,
        "truth": [1.0, -1.0],
        "source": "gsm8k",
    }
    fields = FieldMap.of(prompt="question", responses="a.solution,b.solution", id="uid", scores="truth")
    it = parse_item(row, 0, fields=fields)
    assert (it.prompt, it.responses, it.id, it.scores) == ("2+2?", ("4", "5"), "17", (1.0, -1.0))
    # fields read whole do not pass through; a field read through a dotted path does (it holds more)
    assert it.extra == {"a": row["a"], "b": row["b"], "source": "gsm8k"}
    with pytest.raises(ItemError, match=r"missing 'c.solution' \(fields present: 'question', 'a', 'b'"):
        parse_item(row, 0, fields=FieldMap.of(prompt="question", responses="a.solution,c.solution"))
    with pytest.raises(ItemError, match="response field 'a' is a object, not a string"):
        parse_item(row, 0, fields=FieldMap.of(prompt="question", responses="a,b"))
    several_scores = FieldMap.of(prompt="question", responses="a.solution,b.solution", scores="s1,s2")
    assert parse_item({**row, "s1": 0.5, "s2": 1}, 0, fields=several_scores).scores == (0.5, 1.0)
    with pytest.raises(ItemError, match="missing 's2'"):
        parse_item({**row, "s1": 0.5}, 0, fields=several_scores)


def test_merge_and_unmerge_put_copies_right_after_their_original():
    it = Item(0, "x", "q", ("a", "b", "a", "c", "b"), scores=(1.0, 2.0, 9.0, 3.0, 9.0))
    m = it.merged()
    assert m.responses == ("a", "b", "c") and m.scores == (1.0, 2.0, 3.0) and m.origin == ((0, 2), (1, 4), (3,))
    assert m.merged() is m and Item(0, "y", "q", ("a", "b")).merged().origin is None
    res = PromptResult(
        index=0,
        id="x",
        status="ok",
        best=2,
        ranking=(2, 0, 1),
        scores=(5.0, 1.0, 7.0),
        uncertainty=(0.1, 0.2, 0.3),
        best_response="c",
        matches=({"first": 1, "second": 2, "outcome": "B", "votes": [0, 1, 0, 0, 0]},),
    )
    out = m.unmerge(res)
    assert out.ranking == (3, 0, 2, 1, 4) and out.best == 3 and out.best_response == "c"
    assert out.scores == (5.0, 1.0, 5.0, 7.0, 1.0) and out.uncertainty == (0.1, 0.2, 0.1, 0.3, 0.2)
    assert out.matches[0]["first"] == 1 and out.matches[0]["second"] == 3
    assert out.duplicates == ((0, 2), (1, 4))
    assert out.to_json()["duplicates"] == [[0, 2], [1, 4]]
    failed = PromptResult.failed(0, "x", "boom")
    assert m.unmerge(failed) is failed
