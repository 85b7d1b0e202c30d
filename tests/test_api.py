"""The Python API checks its arguments (issue 11 item 8): a wrong type is a TypeError, a value
out of range a ValueError, each saying what was given, before any judge is built; the budget
checks live in the Scheduler, so every caller (API, CLI, benchmarks) gets them."""

import numpy as np
import pytest

from tourney import InputError, Scheduler, SpecError, Tournament, build_judge, build_strategy, select_best
from tourney.cli import main
from tourney.judges.base import JUDGES, Judge
from tourney.store import JudgementStore

from .conftest import require


def test_a_string_of_responses_is_refused_not_ranked_by_character():
    with pytest.raises(TypeError, match=r"responses must be a sequence of strings, got one str \('No, yes'\)"):
        select_best("Is 91 prime?", "No, yes")
    with pytest.raises(TypeError, match="responses must be a sequence of strings, got one bytes"):
        select_best("q", b"ab")
    with pytest.raises(TypeError, match=r"responses\[1\] must be a string, got int 3"):
        select_best("q", ["a", 3])
    with pytest.raises(TypeError, match="got dict"):
        select_best("q", {"a": 1, "b": 2})
    with pytest.raises(TypeError, match="got NoneType|got None"):
        select_best("q", None)
    with Tournament() as t, pytest.raises(TypeError, match="got one str"):
        t.rank_one("q", "ab")
    # what is accepted: any iterable of strings (a tuple, a generator)
    assert select_best("q", ("a", "b")).ranking
    assert sorted(select_best("q", (r for r in ["a", "b", "c"])).ranking) == [0, 1, 2]
    # the item's own checks still apply (InputError, a ValueError), naming the problem
    with pytest.raises(InputError, match="at least 1 response"):
        select_best("q", [])


def test_judge_and_strategy_must_be_specs_or_built_objects():
    with pytest.raises(TypeError, match="judge must be a spec string such as 'simulated'.* or a Judge, got None"):
        select_best("q", ["a", "b"], judge=None)
    with pytest.raises(TypeError, match="judge must be .* got int 3"):
        Tournament(judge=3)
    with pytest.raises(TypeError, match="judge must be .* got an empty string"):
        Tournament(judge=" ")
    with pytest.raises(TypeError, match="strategy must be a spec string such as 'knockout'.* got None"):
        select_best("q", ["a", "b"], strategy=None)
    with pytest.raises(TypeError, match="strategy must be .* got type"):
        Tournament(strategy=object)
    # built objects and parsed specs are accepted
    res = select_best("q", ["a", "b", "c"], judge=build_judge("simulated"), strategy=build_strategy("round_robin"))
    assert sorted(res.ranking) == [0, 1, 2]
    with pytest.raises(SpecError, match="unknown"):  # a string that is no judge: the registry's error
        Tournament(judge="no_such_judge")


@pytest.mark.parametrize(
    "option, value, error, text",
    [
        ("max_comparisons", -1, ValueError, "max_comparisons must be a positive integer or None, got -1"),
        ("max_comparisons", 0, ValueError, "max_comparisons must be a positive integer or None, got 0"),
        ("max_comparisons", 2.5, TypeError, r"max_comparisons must be an integer >= 1 or None, got 2.5 \(float\)"),
        ("max_comparisons", "3", TypeError, r"got '3' \(str\)"),
        ("token_budget", 0, ValueError, "token_budget must be a positive integer or None, got 0"),
        ("concurrency", 0, ValueError, "concurrency must be a positive integer, got 0"),
        ("concurrency", True, TypeError, r"concurrency must be an integer >= 1, got True \(bool\)"),
        ("retries", -1, ValueError, "retries must be an integer >= 0, got -1"),
        ("resample_abstentions", -2, ValueError, "resample_abstentions must be an integer >= 0, got -2"),
        ("max_active_prompts", 0, ValueError, "max_active_prompts must be a positive integer or None, got 0"),
        ("backoff_s", -0.5, ValueError, "backoff_s must be a finite number of seconds >= 0, got -0.5"),
        ("backoff_s", float("inf"), ValueError, "backoff_s must be a finite number of seconds >= 0, got inf"),
        ("max_backoff_s", "1s", TypeError, "max_backoff_s must be a number of seconds >= 0, got '1s'"),
    ],
)
def test_budgets_and_limits_are_checked_with_what_was_given(option, value, error, text):
    with pytest.raises(error, match=text):
        select_best("q", ["a", "b"], **{option: value})
    with pytest.raises(error, match=text):  # the Scheduler itself: every caller gets the check
        Scheduler(build_judge("simulated"), build_strategy("knockout"), **{option: value})


def test_valid_budgets_still_run():
    res = select_best(
        "q",
        ["a", "b", "c", "d"],
        strategy="round_robin",
        max_comparisons=2,
        retries=0,
        token_budget=10**9,
        concurrency=1,
        backoff_s=0,
    )
    assert res.comparisons == 2 and res.budget_limited
    # numpy integers are integers
    assert select_best("q", ["a", "b"], max_comparisons=np.int64(1), seed=np.int64(3)).comparisons == 1


def test_other_arguments_are_checked_too():
    with pytest.raises(TypeError, match="seed must be an integer, got float 1.5"):
        select_best("q", ["a", "b"], seed=1.5)
    with pytest.raises(TypeError, match="unknown keyword argument.*max_comparison\\b.*max_comparisons"):
        select_best("q", ["a", "b"], max_comparison=3)  # a typo is named, with the known settings
    with pytest.raises(TypeError, match="judge_options must be a mapping"):
        Tournament(judge_options="noise=1")
    with pytest.raises(TypeError, match="scores must be a sequence of numbers or None, got str"):
        select_best("q", ["a", "b"], scores="12")
    with pytest.raises(TypeError, match="rank takes an iterable of items.*got dict"):
        Tournament().rank({"prompt": "q", "responses": ["a", "b"]})


def test_no_judge_is_built_when_an_argument_is_bad():
    """A bad budget must not start an engine first: the checks run before the judge is built."""
    built = []

    class Counting(Judge):
        def __init__(self, spec=None):
            built.append(1)
            super().__init__(spec)

        async def judge(self, match):  # pragma: no cover - never called
            raise AssertionError

    JUDGES.register("counting_for_api_test")(Counting)
    try:
        with pytest.raises(ValueError):
            Tournament("counting_for_api_test", max_comparisons=0)
        with pytest.raises(TypeError):
            Tournament("counting_for_api_test", strategy=None)
        assert built == []
        Tournament("counting_for_api_test").close()
        assert built == [1]
    finally:
        JUDGES.unregister("counting_for_api_test")


def test_a_store_path_is_opened_used_and_closed(tmp_path):
    path = tmp_path / "j.sqlite"
    rows = [{"id": "a", "prompt": "q", "responses": ["x", "y", "z"]}]
    with Tournament(store=path, seed=1) as t:
        first = t.rank(rows)[0]
    assert first.reused == 0 and first.samples == 2
    with Tournament(store=path, seed=1) as t:
        again = t.rank(rows)[0]
    assert again.reused == 2 and again.ranking == first.ranking  # paid once
    with JudgementStore(path) as db, Tournament(store=db, seed=1) as t:  # an open store is used, left open
        assert t.rank(rows)[0].reused == 2
    with pytest.raises(TypeError, match="store must be a path or a JudgementStore, got int"):
        Tournament(store=3)


def test_the_cli_reports_a_bad_budget_without_a_traceback(tmp_path, capsys):
    code = main(["rank", "--no-store", "--no-progress", "--max-comparisons", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "max_comparisons must be a positive integer or None, got 0" in err
    assert "Traceback" not in err


def test_an_item_passed_in_keeps_its_pass_through_fields_and_duplicates():
    """Tournament._items renumbers an Item it is given; it must keep everything else (the
    pass-through fields ``extra`` reach the result and its output line)."""
    from tourney import Item, parse_item

    given = parse_item(
        {
            "id": "q",
            "prompt": "2 + 2 = ?",
            "responses": ["4", "5", "4"],
            "source": "gsm",
            "meta": {"split": "test", "n": 3},
        },
        7,
    )
    assert given.extra == {"source": "gsm", "meta": {"split": "test", "n": 3}}
    plain = Item(3, "p", "Name a prime.", ("7", "8"), extra={"difficulty": 2})
    with Tournament(seed=0) as t:
        first, second = t.rank([given, plain])
    assert (first.index, second.index) == (0, 1)  # renumbered in the batch
    assert first.extra == {"source": "gsm", "meta": {"split": "test", "n": 3}} and second.extra == {"difficulty": 2}
    line = first.to_json()
    assert line["source"] == "gsm" and line["meta"] == {"split": "test", "n": 3}
    assert first.status == "ok" and [list(g) for g in first.duplicates] == [[0, 2]]  # copies judged once


def test_results_to_pandas_and_datasets_are_exported_at_the_top_level_and_import_lazily():
    import subprocess
    import sys

    import tourney
    import tourney.outputs

    for name in ("to_pandas", "to_dataset", "read_results"):
        assert name in tourney.__all__ and getattr(tourney, name) is getattr(tourney.outputs, name)
    code = (
        "import sys, tourney; f = tourney.to_pandas, tourney.to_dataset, tourney.read_results;"
        "print(','.join(m for m in ('pandas', 'pyarrow', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""  # import tourney (and reaching the helpers) loads none of them
    require("pandas", "the data extra: to_pandas converts results")
    with Tournament(seed=0) as t:
        results = t.rank([{"id": "a", "prompt": "q", "responses": ["x", "y"], "topic": "t"}])
    df = tourney.to_pandas(results)
    assert list(df["id"]) == ["a"] and list(df["topic"]) == ["t"]
