"""mine-pairs after the io merge: identical responses never make a pair."""

from __future__ import annotations

from tourney import parse_item
from tourney.mining import PairPolicy, mine_kto, mine_pairs

# -- identical responses --------------------------------------------------------------------------
def test_kto_labels_texts_not_positions():
    """A foreign ranked line can hold copies that are not adjacent (the best and the worst are the
    same text): the text gets one row with one label, from the kept pairs of every copy."""
    item = parse_item({"id": "q", "prompt": "q", "responses": ["a", "b", "c", "a"]}, 0)
    res = {"status": "ok", "ranking": [0, 1, 2, 3], "scores": [3.0, 2.0, 1.0, 0.0], "matches": []}
    counts: dict[str, int] = {}
    assert list(mine_pairs(item, res, PairPolicy("best_worst"), counts)) == [] and counts == {"identical": 1}
    rows = list(mine_kto(item, res, PairPolicy("best_each")))
    assert [(r["completion"], r["label"], r["tourney"]["index"]) for r in rows] == [
        ("a", True, 0), ("b", False, 1), ("c", False, 2)]  # copy 3 of "a" is never "undesirable"
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
        ("x", True, 0, 2), ("y", False, 1, 2)]
