"""Leaderboards from pairwise judgements: read the formats the field publishes, rate the models.

A pure module: no printing, no command-line parsing (it reads the files, lines or records it is
given). ``tourney rate`` is a thin front end over it; notebooks use it directly::

    from tourney.leaderboard import rate, read_pairwise, read_pairwise_path

    data = read_pairwise_path("clean_battle_20240814_public.json")         # any format below
    board = rate(data, method="bradley_terry", l2=0.01)      # a JSON-able dict, rows best first

Input formats
-------------
Files are JSONL (one record per line) or one JSON array of records (what Chatbot Arena and
AlpacaEval publish); the container is recognised from the content. Each record's format is
recognised from its keys (``input_format="auto"``) or forced (``input_format=NAME``):

``arena``
    Chatbot Arena battles, as FastChat's ``clean_battle_data.py`` writes them and as the published
    ``clean_battle_*.json`` files hold them::

        {"question_id": ..., "model_a": "gpt-4", "model_b": "claude-1",
         "winner": "model_a" | "model_b" | "tie" | "tie (bothbad)", "judge": ..., "turn": 1,
         "anony": true, "language": "English", "tstamp": 1682000000.5}          # tstamp optional

    or the one-hot columns of the Arena human-preference releases (``winner_model_a``,
    ``winner_model_b``, ``winner_tie``, each 0 or 1). ``model_a`` is the side shown first.
``alpaca_eval``
    AlpacaEval ``annotations.json`` records (``results/<model>/<annotator>/annotations.json``)::

        {"instruction": ..., "output_1": ..., "generator_1": "gpt4_1106_preview",
         "output_2": ..., "generator_2": "my-model", "annotator": ..., "preference": 1.73}

    ``preference`` runs from 1 (``output_1`` better) to 2 (``output_2`` better), 1.5 (or the
    legacy 0) is a draw, fractional values are the weighted annotator's probabilities; the score
    of ``generator_1`` is ``2 - preference`` (a soft outcome). A missing or NaN preference is not
    a preference (AlpacaEval drops it; here it counts under ``abstentions``). ``generator_1`` is
    taken as the side shown first (AlpacaEval randomises the order it shows the annotator and
    un-swaps the preference, so ``position=True`` is not meaningful on this format).
``arena_hard``
    Arena-Hard-Auto judgment files (``data/<bench>/model_judgment/<judge>/<model>.jsonl``)::

        {"uid" | "question_id": ..., "category": ..., "judge": ..., "model": "my-model",
         "baseline": "o3-mini-2025-01-31", "games": [{"score": "A>B", ...}, {"score": "B>>A", ...}]}

    Game 1 shows the baseline as A and the model as B, game 2 the reverse (``gen_judgment.py``).
    The 5-point labels are mapped exactly as Arena-Hard-Auto's ``show_result.py`` does
    (github.com/lmarena/arena-hard-auto: ``load_judgments``' ``label_to_score`` at 196f6b8, v2.0;
    ``get_battles_from_row`` at 0489bf3, v0.1): ``A>B`` one win for A, ``A>>B`` ``weight`` wins
    for A (their ``--weight``, default 3), ``A=B`` one tie, ``B>A`` one win for B, ``B>>A``
    ``weight`` wins for B (and v2.0's spellings ``A<B``, ``A<<B``, ``B<A``, ``B<<A``, ``B=A``).
    A game without a score (the judge gave no parsable label) is handled as each version does:
    a v2.0 record (it names its ``baseline``) is dropped whole, a v0.1 record (no ``baseline``)
    loses only that game; either is counted under ``abstentions``. v0.1 files name no
    baseline: it is ``baseline`` if given, else ``gpt-4-0314`` (v0.1 ``show_result.py``'s
    ``--baseline`` default), with a note.
``tourney``
    tourney's judgement logs in the replay format (``tourney log export`` writes them)::

        {"prompt": ..., "first": "response shown first", "second": "...",
         "verdict": "A" | "B" | "tie" | "abstain", "first_model": "optional name", ...}

    where a candidate is named by ``first_model`` / ``second_model`` when present, else by its
    response text. Abstentions (and ``error`` verdicts, and the ``null`` verdict of an exported
    error) are counted but are not comparisons.

Methods
-------
``bradley_terry`` is the order-free maximum-likelihood fit (:func:`tourney.rating.bradley_terry`),
reported on the Elo scale (``ELO_INITIAL + ELO_PER_NAT * log-strength``, 1000 + 400/ln 10 * s)
with a 95% Wald interval from the Fisher information, or a percentile interval from
``bootstrap`` seeded resamples; ``position=True`` also fits the first-shown advantage. ``elo`` is
online Elo over the records in timestamp order (stable: equal or missing timestamps keep input
order; a record without ``tstamp`` stays right after the record before it), with a bootstrap
interval when asked (resampled records, replayed in timestamp order); or, with
``permutations=P``, the mean and the 2.5/97.5 percentiles of online Elo over ``P`` random
orderings (what QLoRA's Elo table and RRM's ELO report: on a log without timestamps the file's
order is arbitrary), see :func:`elo_permutations`.

``anchor=(MODEL, RATING)`` shifts every rating (and interval) so that ``MODEL`` has ``RATING``
(Arena-Hard and AlpacaEval anchor to a baseline); with a bootstrap or permutations the shift is
made in every replicate, so the anchor's own interval has width 0. ``baseline=MODEL`` adds each
model's win rate against that model (percent, ties and soft outcomes as their score, from the
head-to-head records only): AlpacaEval's ``win_rate`` and Arena-Hard's score column.

Bad records never lose the good ones: :func:`read_pairwise` collects each bad record's problem
(with its ``source:line`` position) in :attr:`Pairwise.problems` and reads the rest: malformed
JSON, a record that fits no format, deep nesting, an out-of-range number, bytes that are not
UTF-8. Data that cannot be rated at all (no valid record, one model) raises
:class:`~tourney.errors.InputError`.
"""

from __future__ import annotations

import bisect
import io
import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import rating
from .errors import InputError

__all__ = [
    "ARENA_HARD_WEIGHT",
    "INPUT_FORMATS",
    "METHODS",
    "TIES",
    "Pairwise",
    "elo_permutations",
    "parse_anchor",
    "rate",
    "read_pairwise",
    "read_pairwise_path",
]

#: rating methods :func:`rate` knows
METHODS = ("bradley_terry", "elo")
#: how a tie counts: half a win each way, or not at all
TIES = ("half", "drop")
#: record formats :func:`read_pairwise` reads (``auto``: recognised per record from its keys)
INPUT_FORMATS = ("auto", "arena", "alpaca_eval", "arena_hard", "tourney")
#: how many wins a "significantly better" Arena-Hard label (``A>>B``) counts (show_result.py's weight)
ARENA_HARD_WEIGHT = 3
#: self-pairs listed one by one in :attr:`Pairwise.notes` (an AlpacaEval baseline's own
#: annotations.json is 805 of them); the rest are only counted
MAX_SELF_PAIR_NOTES = 10
#: the baseline of Arena-Hard v0.1 judgment files, which do not name it (show_result.py's default)
ARENA_HARD_V01_BASELINE = "gpt-4-0314"

_ARENA_WINNERS = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
_ARENA_ONE_HOT = (("winner_model_a", 1.0), ("winner_model_b", 0.0), ("winner_tie", 0.5))
_VERDICTS = {"a": 1.0, "b": 0.0, "tie": 0.5}
_NO_VOTE = {"abstain", "error"}
_TIE = 0.5
#: Arena-Hard label -> (score of the side shown as A, strong?) (show_result.py's label_to_score)
_ARENA_HARD_LABELS = {
    "A>B": (1.0, False), "A>>B": (1.0, True), "A=B": (0.5, False), "A<B": (0.0, False), "A<<B": (0.0, True),
    "B>A": (0.0, False), "B>>A": (0.0, True), "B=A": (0.5, False), "B<A": (1.0, False), "B<<A": (1.0, True),
}  # fmt: skip
#: formats whose records carry a baseline model (used as the default win-rate reference)
_BASELINE_FORMATS = ("alpaca_eval", "arena_hard")


# ----------------------------------------------------------------------------- reading


@dataclass
class Pairwise:
    """Pairwise records read from files: ``first[k]`` was shown first, ``y[k]`` is its score
    (1 won, 0 lost, 0.5 tie, in between a soft outcome); ``names`` index the items; ``problems``
    are bad records (``"SOURCE:LINE: what"``) and ``notes`` things worth saying (self-pairs,
    assumptions). ``formats`` counts the records read per format, ``containers`` the files per
    container (``jsonl`` or ``json`` array), ``baselines`` the baseline models named by AlpacaEval
    and Arena-Hard records (with counts)."""

    names: list[str] = field(default_factory=list)
    first: list[int] = field(default_factory=list)
    second: list[int] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    tstamp: list[float | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    abstentions: int = 0
    self_pairs: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    containers: dict[str, int] = field(default_factory=dict)
    baselines: dict[str, int] = field(default_factory=dict)
    _index: dict[str, int] = field(default_factory=dict)
    _noted: set[str] = field(default_factory=set)

    def item(self, name: str) -> int:
        """The index of ``name``, added at the end the first time it is seen."""
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
        return self._index[name]

    def note_once(self, key: str, message: str) -> None:
        """Add ``message`` to :attr:`notes` the first time ``key`` is seen."""
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(message)

    @property
    def legacy(self) -> bool:
        """True when only JSONL Arena battles and tourney logs were read (the leaderboard then
        looks exactly as before the other formats existed)."""
        return set(self.formats) <= {"arena", "tourney"} and set(self.containers) <= {"jsonl"}


def _timestamp(value: Any) -> float:
    """Seconds since the epoch from a number, a numeric string or an ISO 8601 time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            t = float(value)
        except OverflowError:  # a 400-digit integer
            raise ValueError(f"tstamp is out of range ({len(str(abs(value)))} digits)") from None
        if math.isfinite(t):
            return t
    if isinstance(value, str) and len(value) <= 64:
        try:
            t = float(value)
            if math.isfinite(t):
                return t
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise ValueError(f"tstamp must be a number or an ISO 8601 time, got {shown}")


def _name(rec: Mapping[str, Any], key: str) -> str:
    v = rec.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return v


#: one comparison read from a record: (first name, second name, score of first or None = no vote)
_Row = tuple[str, str, "float | None"]


def _parse_arena(rec: Mapping[str, Any], opts: _ReadOptions) -> list[_Row]:
    a, b = _name(rec, "model_a"), _name(rec, "model_b")
    if "winner" not in rec and any(k in rec for k, _ in _ARENA_ONE_HOT):
        set_ = [y for k, y in _ARENA_ONE_HOT if rec.get(k) in (1, True, "1")]
        bad = [k for k, _ in _ARENA_ONE_HOT if rec.get(k) not in (0, 1, True, False, "0", "1", None)]
        if bad or len(set_) != 1:
            raise ValueError("winner_model_a, winner_model_b and winner_tie must be 0/1 with exactly one 1")
        return [(a, b, set_[0])]
    w = rec.get("winner")
    if not isinstance(w, str) or w.strip().lower() not in _ARENA_WINNERS:
        raise ValueError(f"unknown winner label {w!r} (expected model_a, model_b, tie or tie (bothbad))")
    return [(a, b, _ARENA_WINNERS[w.strip().lower()])]


def _parse_tourney(rec: Mapping[str, Any], opts: _ReadOptions) -> list[_Row]:
    for key in ("first", "second", "verdict"):
        if key not in rec:
            raise ValueError(f"a judgement record needs first, second and verdict; '{key}' is missing")
    a = _name(rec, "first_model") if "first_model" in rec else _name(rec, "first")
    b = _name(rec, "second_model") if "second_model" in rec else _name(rec, "second")
    for key in ("first_index", "second_index"):
        if key in rec and (isinstance(rec[key], bool) or not isinstance(rec[key], int)):
            raise ValueError(f"'{key}' must be an integer")
    if rec["verdict"] is None and rec.get("outcome") == "error":  # an exported error judgement
        return [(a, b, None)]
    v = str(rec["verdict"]).strip().lower()
    if v in _NO_VOTE:
        return [(a, b, None)]
    if v not in _VERDICTS:
        raise ValueError(f"unknown verdict {rec['verdict']!r} (expected A, B, tie or abstain)")
    return [(a, b, _VERDICTS[v])]


def _parse_alpaca(rec: Mapping[str, Any], opts: _ReadOptions) -> list[_Row]:
    a, b = _name(rec, "generator_1"), _name(rec, "generator_2")
    opts.record_baseline = a
    if "preference" not in rec:
        raise ValueError("an AlpacaEval annotation needs 'preference' (1 = output_1 better, 2 = output_2 better)")
    p = rec["preference"]
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return [(a, b, None)]  # not a preference: AlpacaEval drops it
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ValueError(f"'preference' must be a number in [1, 2] (1.5 or 0: draw), got {p!r}")
    p = float(p)
    if p == 0.0:  # AlpacaEval's legacy draw
        p = 1.5
    if not 1.0 <= p <= 2.0:
        raise ValueError(f"'preference' must lie in [1, 2] (1.5 or 0: draw), got {p!r}")
    return [(a, b, 2.0 - p)]


def _parse_arena_hard(rec: Mapping[str, Any], opts: _ReadOptions) -> list[_Row]:
    model = _name(rec, "model")
    v2 = "baseline" in rec  # v2.0 records name their baseline; v0.1 records do not
    if v2:
        base = _name(rec, "baseline")
    else:
        base = opts.baseline or ARENA_HARD_V01_BASELINE
        opts.missing_baseline = base
    opts.record_baseline = base
    games = rec.get("games")
    if not isinstance(games, list) or len(games) != 2:
        raise ValueError("'games' must be a list of the two games (baseline shown first, then the model)")
    labels: list[tuple[float, bool] | None] = []
    for g, game in enumerate(games, 1):
        if game is not None and not isinstance(game, Mapping):
            raise ValueError(f"game {g} must be an object with a 'score', got {type(game).__name__}")
        score = None if game is None else game.get("score")
        if score is None:
            if v2:  # v2.0 load_judgments drops a record with a null game or score
                return [(base, model, None)]
            labels.append(None)  # v0.1 get_battles_from_row gives that game weight 0
            continue
        if not isinstance(score, str) or score.strip() not in _ARENA_HARD_LABELS:
            raise ValueError(f"game {g}: unknown score {score!r} (expected A>>B, A>B, A=B, B>A or B>>A)")
        labels.append(_ARENA_HARD_LABELS[score.strip()])
    rows: list[_Row] = []
    for (first, second), label in zip(((base, model), (model, base)), labels):
        if label is None:
            rows.append((first, second, None))
            continue
        y, strong = label
        rows += [(first, second, y)] * (opts.weight if strong else 1)
    return rows


_PARSERS = {
    "arena": _parse_arena,
    "alpaca_eval": _parse_alpaca,
    "arena_hard": _parse_arena_hard,
    "tourney": _parse_tourney,
}


def _detect(rec: Mapping[str, Any]) -> str | None:
    """The format a record's keys say it is in, or None."""
    if "games" in rec and "model" in rec:
        return "arena_hard"
    if "generator_1" in rec or "generator_2" in rec:
        return "alpaca_eval"
    if "model_a" in rec or "model_b" in rec or "winner" in rec or "winner_model_a" in rec:
        return "arena"
    if "verdict" in rec or "first" in rec:
        return "tourney"
    return None


@dataclass
class _ReadOptions:
    input_format: str = "auto"
    weight: int = ARENA_HARD_WEIGHT
    baseline: str | None = None
    missing_baseline: str | None = None
    #: the baseline the record just parsed names (AlpacaEval's generator_1, Arena-Hard's baseline)
    record_baseline: str | None = None


def _parse(rec: Any, opts: _ReadOptions) -> tuple[str, list[_Row]]:
    """(format, comparisons) of one record; ValueError if it is bad."""
    if not isinstance(rec, Mapping):
        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
    fmt = opts.input_format if opts.input_format != "auto" else _detect(rec)
    if fmt is None:
        keys = ", ".join(sorted(map(str, rec))[:8]) or "no keys"
        raise ValueError(
            "fits no known format: neither a battle (model_a, model_b, winner) nor a judgement record "
            "(first, second, verdict) nor an AlpacaEval annotation (generator_1, generator_2, preference) "
            f"nor an Arena-Hard judgment (model, games); it has {keys}"
        )
    return fmt, _PARSERS[fmt](rec, opts)


def _check_read_options(input_format: str, weight: int) -> None:
    if input_format not in INPUT_FORMATS:
        raise InputError(f"unknown input format {input_format!r}; known: {', '.join(INPUT_FORMATS)}")
    if isinstance(weight, bool) or not isinstance(weight, numbers.Integral) or weight < 1:
        raise InputError(f"the Arena-Hard weight must be an integer >= 1, got {weight!r}")


def _add(out: Pairwise, where: str, no: int, rec: Any, opts: _ReadOptions) -> None:
    """Parse one record into ``out`` (a bad one becomes a problem, never an exception)."""
    opts.record_baseline = None
    try:
        fmt, rows = _parse(rec, opts)
        ts = _timestamp(rec["tstamp"]) if rec.get("tstamp") is not None else None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        out.problems.append(f"{where}: {exc}")
        return
    out.formats[fmt] = out.formats.get(fmt, 0) + 1
    base = opts.record_baseline
    if fmt in _BASELINE_FORMATS and base is not None:
        out.baselines[base] = out.baselines.get(base, 0) + 1
    if opts.missing_baseline is not None:
        out.note_once(
            "arena-hard-baseline",
            f"{where}: an Arena-Hard record without 'baseline': "
            f"{opts.missing_baseline!r} assumed (pass --baseline NAME to set it)",
        )
        opts.missing_baseline = None
    for a, b, y in rows:
        if y is None:
            out.abstentions += 1
            continue
        if a == b:
            out.self_pairs += 1
            if out.self_pairs <= MAX_SELF_PAIR_NOTES:
                out.notes.append(f"{where}: both sides are {a[:60]!r}; self-pair dropped")
            elif out.self_pairs == MAX_SELF_PAIR_NOTES + 1:
                out.notes.append(f"{where}: more self-pairs dropped (counted under self_pairs; not listed)")
            continue
        out.first.append(out.item(a))
        out.second.append(out.item(b))
        out.y.append(y)
        out.tstamp.append(ts)
        out.lines.append(no)


def _loads(line: str) -> Any:
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError("malformed JSON (nested too deeply)") from None
    except ValueError as exc:
        raise ValueError(f"malformed JSON ({getattr(exc, 'msg', exc)})") from None


def read_pairwise(
    lines: Iterable[str | bytes | Mapping[str, Any]],
    source: str = "input",
    *,
    input_format: str = "auto",
    arena_hard_weight: int = ARENA_HARD_WEIGHT,
    baseline: str | None = None,
    data: Pairwise | None = None,
) -> Pairwise:
    """Read records from JSONL lines (str, or bytes decoded as strict UTF-8) or records already
    parsed (mappings), in any format of the module docstring (``input_format``: ``auto`` or one
    of them). ``arena_hard_weight``: wins an ``A>>B`` label counts. ``baseline``: the baseline of
    Arena-Hard records that name none. ``data``: add to this :class:`Pairwise` (several files).

    Bad records go to ``problems`` as ``"SOURCE:LINE: what is wrong"`` (line numbers count
    from 1 and include blank lines) and the rest is read; self-pairs are dropped with a note.
    """
    _check_read_options(input_format, arena_hard_weight)
    out = Pairwise() if data is None else data
    opts = _ReadOptions(input_format, int(arena_hard_weight), baseline)
    for no, line in enumerate(lines, 1):
        where = f"{source}:{no}"
        if isinstance(line, Mapping):
            rec: Any = line
        else:
            if isinstance(line, bytes):
                if no == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]  # a UTF-8 byte-order mark
                try:
                    line = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    out.problems.append(
                        f"{where}: not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"
                    )
                    continue
            elif no == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if not line.strip():
                continue
            try:
                rec = _loads(line)
            except ValueError as exc:
                out.problems.append(f"{where}: {exc}")
                continue
        _add(out, where, no, rec, opts)
    return out


# ---- JSON arrays: element by element, so one bad element loses only itself

_WS = re.compile(r"[ \t\r\n]*")


def _skip_ws(text: str, i: int) -> int:
    """The index of the first non-whitespace character at or after ``i`` (JSON whitespace)."""
    m = _WS.match(text, i)
    return m.end() if m is not None else i


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STRUCT = re.compile(r'["\[\]{},]')
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _skip_value(text: str, i: int) -> int:
    """The index of the ``,`` or ``]`` that ends the (malformed) array element starting at
    ``i`` (or ``len(text)``); brackets and strings are matched without recursion."""
    depth = 0
    while True:
        m = _STRUCT.search(text, i)
        if m is None:
            return len(text)
        c, i = m.group(), m.start()
        if c == '"':
            s = _STRING.match(text, i)
            i = s.end() if s else len(text)
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0:  # a comma at the array's level
            return i
        i += 1


def _resync(text: str, start: int, end: int) -> int | None:
    """Where the next element begins, when the malformed element at ``start`` swallowed it
    (an unclosed ``{`` makes the bracket matcher run on to ``end``, past good elements): the
    first line before ``end`` that starts, at the element's own indentation, with ``{`` or
    ``[`` right after a ``,``. A raw newline is structural in JSON (never inside a string), and
    inner lines of a pretty-printed element are indented deeper, so this finds element starts
    of arrays written one element per line or pretty-printed; None when there is none."""
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start]
    if indent.strip():
        return None  # the element does not start its line: no layout to resync on
    for m in re.compile("\n" + re.escape(indent) + "(?=[{\\[])").finditer(text, start, end):
        k = m.start() - 1
        while k > start and text[k] in " \t\r":
            k -= 1
        if text[k] == ",":
            return m.end()
    return None


def _array_records(text: str) -> Iterator[tuple[int, Any, str | None]]:
    """``(offset, record, None)`` for each element of the JSON array ``text``, or
    ``(offset, None, problem)`` for an element (or stretch) that cannot be read."""
    dec = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if not text.startswith("[", i):
        yield i, None, "malformed JSON (expected a JSON array)"
        return
    i = _skip_ws(text, i + 1)
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            start = i
            try:
                rec, i = dec.raw_decode(text, i)
                yield start, rec, None
            except RecursionError:
                i = _skip_value(text, start)
                yield start, None, "malformed JSON (nested too deeply)"
            except ValueError as exc:
                i = _skip_value(text, start)
                yield start, None, f"malformed JSON ({getattr(exc, 'msg', exc)})"
                nxt = _resync(text, start, i)
                if nxt is not None:  # a truncated element: go on at the next one
                    i = nxt
                    continue
            i = _skip_ws(text, i)
            if i >= len(text):
                yield i, None, "malformed JSON (the array is not closed)"
                return
            if text[i] == ",":
                i = _skip_ws(text, i + 1)
                continue
            if text[i] == "]":
                i += 1
                break
            bad = i
            i = _skip_value(text, i)
            yield bad, None, f"malformed JSON (expected ',' or ']' after an element, got {text[bad]!r})"
            if i >= len(text):
                return
            if text[i] == "]":
                i += 1
                break
            i = _skip_ws(text, i + 1)
    rest = _skip_ws(text, i)
    if rest < len(text):
        yield rest, None, "malformed JSON (extra data after the array)"


def _read_array(raw: bytes, source: str, out: Pairwise, opts: _ReadOptions) -> None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text, bad_bytes = raw.decode("utf-8"), []
    except UnicodeDecodeError:  # read on, and skip the elements that hold the bad bytes
        text = raw.decode("utf-8", errors="surrogateescape")
        bad_bytes = [m.start() for m in _NOT_UTF8.finditer(text)]
    line_at = _LineIndex(text)
    prev: tuple[int, Any, str | None] | None = None
    # one element of lookahead: an element ends where the next begins (for the bad-byte check);
    # records are handled as they are decoded, never all held at once
    for element in _array_records(text):
        if prev is not None:
            _array_element(prev, element[0], text, source, out, opts, line_at, bad_bytes)
        prev = element
    if prev is not None:
        _array_element(prev, len(text), text, source, out, opts, line_at, bad_bytes)


def _array_element(
    element: tuple[int, Any, str | None],
    end: int,
    text: str,
    source: str,
    out: Pairwise,
    opts: _ReadOptions,
    line_at: _LineIndex,
    bad_bytes: list[int],
) -> None:
    offset, rec, problem = element
    no = line_at(offset)
    where = f"{source}:{no}"
    if bad_bytes:
        lo = bisect.bisect_left(bad_bytes, offset)
        if lo < len(bad_bytes) and bad_bytes[lo] < end:
            pos = bad_bytes[lo]
            out.problems.append(f"{source}:{line_at(pos)}: not valid UTF-8 (byte 0x{ord(text[pos]) - 0xDC00:02x})")
            return
    if problem is not None:
        out.problems.append(f"{where}: {problem}")
        return
    _add(out, where, no, rec, opts)


class _LineIndex:
    """Offset -> 1-based line number of ``text`` (by bisection over the newline offsets)."""

    def __init__(self, text: str):
        self.newlines = np.fromiter((m.start() for m in re.finditer("\n", text)), dtype=np.int64)

    def __call__(self, offset: int) -> int:
        return int(np.searchsorted(self.newlines, offset)) + 1


def _is_json_array(head: bytes) -> bool:
    """True when a file whose first bytes are ``head`` is one JSON array (not JSONL whose first
    line happens to be an array)."""
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    body = body.lstrip()
    if not body.startswith(b"["):
        return False
    first, nl, rest = body.partition(b"\n")
    if not nl or not rest.strip():
        return True
    try:  # JSONL: a first line that is a whole JSON value, followed by more lines
        json.loads(first)
    except (ValueError, RecursionError):
        return True
    return False


def read_pairwise_path(
    path: str | os.PathLike[str],
    *,
    input_format: str = "auto",
    arena_hard_weight: int = ARENA_HARD_WEIGHT,
    baseline: str | None = None,
    data: Pairwise | None = None,
    stdin: IO[bytes] | None = None,
) -> Pairwise:
    """Read a file (JSONL or one JSON array, recognised from the content), every ``*.json`` /
    ``*.jsonl`` file of a directory (sorted; e.g. an Arena-Hard ``model_judgment/<judge>/``
    folder), or ``"-"`` (``stdin``, binary). Options as :func:`read_pairwise`; problems are named
    ``FILE:LINE`` with the file's name (its path relative to a directory given). Raises
    FileNotFoundError for a missing path."""
    _check_read_options(input_format, arena_hard_weight)
    out = Pairwise() if data is None else data
    p = Path(path)
    if os.fspath(path) == "-":
        import sys

        raw = (stdin or sys.stdin.buffer).read()
        _read_blob(raw, "stdin", out, input_format, arena_hard_weight, baseline)
        return out
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".json", ".jsonl"))
        if not files:
            raise FileNotFoundError(f"input directory {path} holds no *.json or *.jsonl file")
        for f in files:
            _read_blob(f.read_bytes(), str(f.relative_to(p)), out, input_format, arena_hard_weight, baseline)
        return out
    if not p.exists():
        raise FileNotFoundError(f"input file {path} does not exist")
    if not p.is_file():
        raise FileNotFoundError(f"input {path} is not a regular file")
    _read_blob(p.read_bytes(), p.name, out, input_format, arena_hard_weight, baseline)
    return out


def _read_blob(raw: bytes, source: str, out: Pairwise, input_format: str, weight: int, baseline: str | None) -> None:
    if _is_json_array(raw[: 1 << 16] if len(raw) > 1 << 16 and b"\n" in raw[: 1 << 16] else raw):
        out.containers["json"] = out.containers.get("json", 0) + 1
        _read_array(raw, source, out, _ReadOptions(input_format, int(weight), baseline))
    else:
        out.containers["jsonl"] = out.containers.get("jsonl", 0) + 1
        read_pairwise(
            io.BytesIO(raw), source, input_format=input_format, arena_hard_weight=weight, baseline=baseline, data=out
        )


# ----------------------------------------------------------------------------- rating


@dataclass
class _Fit:
    """One method's result: ratings (Elo points), their standard errors (or None), the 95%
    interval bounds (or None), the header fields it adds, and its graph components (None when
    the comparison graph is connected)."""

    ratings: np.ndarray
    se: np.ndarray | None
    lo: np.ndarray | None
    hi: np.ndarray | None
    header: dict[str, Any]
    components: list[list[int]] | None


def _bootstrap_label(rounds: int, seed: int) -> str:
    return f"bootstrap 95% percentile interval, {rounds} rounds, seed {seed}"


def _anchored(values: np.ndarray, anchor: tuple[int, float] | None) -> np.ndarray:
    """``values`` (one rating vector, or one per row) shifted so the anchor item has its rating."""
    if anchor is None:
        return values
    i, r = anchor
    return values + (r - values[..., i : i + 1] if values.ndim > 1 else r - values[i])


def _fit_bradley_terry(
    n: int,
    first: np.ndarray,
    second: np.ndarray,
    y: np.ndarray,
    *,
    ties: str,
    l2: float,
    position: bool,
    bootstrap: int,
    seed: int,
    rng: np.random.Generator,
    anchor: tuple[int, float] | None,
) -> _Fit:
    """Maximum likelihood on the Elo scale, with a Wald (Fisher) or bootstrap 95% interval."""
    fit = rating.bradley_terry(n, first, second, y, ties=ties, l2=l2, position=position)  # type: ignore[arg-type]
    ratings = _anchored(np.asarray(fit.elo, dtype=float), anchor)
    se = np.asarray(fit.se, dtype=float) * rating.ELO_PER_NAT
    header: dict[str, Any] = {}
    if bootstrap:
        try:
            boot = rating.bt_bootstrap(
                n, first, second, y, rounds=bootstrap, rng=rng, ties=ties, l2=l2, position=position
            )
        except InputError as exc:
            raise InputError(f"{exc} (bootstrap: pass l2=0.01 or larger for sparse data)") from None
        lo, hi = np.percentile(_anchored(rating.to_elo_scale(boot), anchor), [2.5, 97.5], axis=0)
        header["interval"] = _bootstrap_label(bootstrap, seed)
    else:
        lo, hi = ratings - rating.Z_95 * se, ratings + rating.Z_95 * se
        header["interval"] = "95% Wald interval from the Fisher information"
    header["scale"] = (
        f"Bradley-Terry on the Elo scale: {rating.ELO_INITIAL:g} + "
        f"{rating.ELO_SCALE:g}/ln({rating.ELO_BASE:g}) * centred log-strength"
    )
    header["l2"], header["ties"] = l2, ties
    if position:
        header["position"] = {
            "coef": fit.position_coef,
            "se": fit.position_se,
            "elo": (fit.position_coef or 0.0) * rating.ELO_PER_NAT,
        }
    header["converged"] = bool(fit.converged)
    return _Fit(ratings, se, lo, hi, header, None if fit.connected else fit.components)


def _time_order(tstamp: Sequence[float | None]) -> list[int]:
    """Stable timestamp order; a record without one inherits its predecessor's."""
    eff: list[float] = []
    last = -math.inf
    for t in tstamp:
        last = t if t is not None else last
        eff.append(last)
    return sorted(range(len(eff)), key=lambda k: eff[k])


#: orderings replayed together in one vectorised block (fixed: the result must not depend on it)
_PERM_BLOCK = 1000
#: rotations of one random ordering are this many comparisons apart (at most _PERM_GROUP_MAX of them)
_PERM_SPACING = 32
_PERM_GROUP_MAX = 64


def elo_permutations(
    n: int,
    first: Any,
    second: Any,
    y: Any,
    *,
    permutations: int,
    rng: np.random.Generator,
    k: float = rating.DEFAULT_ELO_K,
    scale: float = rating.ELO_SCALE,
    base: float = rating.ELO_BASE,
    initial: float = rating.ELO_INITIAL,
) -> np.ndarray:
    """Online Elo (the update of :func:`tourney.rating.elo`) replayed in ``permutations`` random
    orders of the comparisons; returns the final ratings, one row per ordering (shape
    ``(permutations, n)``). Self-pairs must have been dropped.

    Every ordering is uniformly random, so the row mean estimates the expected Elo rating over
    random orders and the row percentiles its spread. The orderings are drawn in groups of ``G``
    rotations of one random permutation, ``m / G`` comparisons apart (``G = m // 32``, at most 64,
    at least 1): each rotation is itself a uniformly random ordering, and the group places every
    comparison evenly across the positions that decide the final rating (the last few dozen
    games), which cancels much of the Monte Carlo noise of the mean (stratified sampling). On the
    recorded PRD gpt35 reviewer log (1,760 comparisons, K = 32), over 8 seeds at 10,000
    orderings, the standard deviation of a model's mean rating is 0.28-0.38 Elo points with
    independent orderings and 0.10-0.25 with these groups (largest spread between seeds: 1.09
    and 0.82 points).

    Cost: ``m`` vectorised steps over blocks of 1,000 orderings (numpy), O(permutations * m).
    """
    f, s, yy = (np.asarray(a) for a in (first, second, y))
    m = int(yy.shape[0])
    out = np.empty((permutations, n))
    if m == 0:
        out[:] = initial
        return out
    a = math.log(base) / scale
    for b0, block in _permutation_orders(m, permutations, rng):
        c = block.shape[0]
        offset = (np.arange(c) * n)[:, None]
        p_idx = np.ascontiguousarray((f[block] + offset).T)  # step t: flat index of first, per ordering
        q_idx = np.ascontiguousarray((s[block] + offset).T)
        y_t = np.ascontiguousarray(yy[block].T)
        r = np.full(c * n, float(initial))
        for t in range(m):
            p, q = p_idx[t], q_idx[t]
            rp, rq = r[p], r[q]
            d = k * (y_t[t] - 1.0 / (1.0 + np.exp(a * (rq - rp))))
            r[p] = rp + d
            r[q] = rq - d
        out[b0 : b0 + c] = r.reshape(c, n)
    return out


def _permutation_orders(m: int, permutations: int, rng: np.random.Generator) -> Iterator[tuple[int, np.ndarray]]:
    """The orderings :func:`elo_permutations` replays, in blocks: ``(first row, orders)`` with
    ``orders`` of shape ``(rows, m)``, each row a permutation of ``range(m)``. Orderings come in
    groups of ``G`` rotations of one permutation drawn from ``rng`` (see
    :func:`elo_permutations`); a block holds whole groups (about :data:`_PERM_BLOCK` rows), so
    the orderings, and the ratings, do not depend on the block size, and memory stays at one
    block."""
    group = max(1, min(_PERM_GROUP_MAX, m // _PERM_SPACING, permutations))
    shifts = (np.arange(group) * m) // group
    ring = (np.arange(m)[None, :] + shifts[:, None]) % m  # rotation r of a permutation pi: pi[ring[r]]
    per_block = group * max(1, _PERM_BLOCK // group)
    for b0 in range(0, permutations, per_block):
        rows = min(per_block, permutations - b0)
        orders = np.empty((rows, m), dtype=np.int64)
        for g0 in range(0, rows, group):
            pi = rng.permutation(m)
            take = min(group, rows - g0)
            orders[g0 : g0 + take] = pi[ring[:take]]
        yield b0, orders


def _fit_elo(
    n: int,
    first: np.ndarray,
    second: np.ndarray,
    y: np.ndarray,
    tstamp: Sequence[float | None],
    *,
    k: float,
    bootstrap: int,
    permutations: int,
    seed: int,
    rng: np.random.Generator,
    anchor: tuple[int, float] | None,
) -> _Fit:
    """Online Elo in timestamp order (a bootstrap percentile interval when asked, else none), or
    the mean over random orderings with their percentile interval."""
    header: dict[str, Any] = {}
    lo = hi = None
    if permutations:
        runs = _anchored(elo_permutations(n, first, second, y, permutations=permutations, rng=rng, k=k), anchor)
        ratings = runs.mean(axis=0)
        lo, hi = np.percentile(runs, [2.5, 97.5], axis=0)
        header["interval"] = f"95% percentile interval over {permutations} random orderings, seed {seed}"
        header["scale"] = (
            f"online Elo, mean over {permutations} random orderings (K={k:g}, {rating.ELO_SCALE:g} "
            f"points per factor {rating.ELO_BASE:g} of odds, initial {rating.ELO_INITIAL:g})"
        )
        header["permutations"] = permutations
    else:
        order = _time_order(tstamp)
        f_o, s_o, y_o = first[order], second[order], y[order]
        ratings = _anchored(np.asarray(rating.elo(n, f_o, s_o, y_o, k=k), dtype=float), anchor)
        if bootstrap:
            m = len(y_o)
            boot = np.empty((bootstrap, n))
            for r in range(bootstrap):
                idx = np.sort(rng.integers(0, m, m))  # a resample, replayed in time order
                boot[r] = rating.elo(n, f_o[idx], s_o[idx], y_o[idx], k=k)
            lo, hi = np.percentile(_anchored(boot, anchor), [2.5, 97.5], axis=0)
            header["interval"] = _bootstrap_label(bootstrap, seed)
        else:
            header["interval"] = None
        header["scale"] = (
            f"online Elo in timestamp order (K={k:g}, {rating.ELO_SCALE:g} points per factor "
            f"{rating.ELO_BASE:g} of odds, initial {rating.ELO_INITIAL:g})"
        )
    comps = rating.connected_components(n, first, second)
    return _Fit(np.asarray(ratings, dtype=float), None, lo, hi, header, comps if len(comps) > 1 else None)


def _round(v: float) -> float | None:
    return round(float(v), 2) if math.isfinite(v) else None


def _win_rates(n: int, first: np.ndarray, second: np.ndarray, y: np.ndarray, base: int) -> np.ndarray:
    """Each item's mean score (percent) in its comparisons with item ``base`` (NaN: none; the
    baseline itself: 50, as AlpacaEval and Arena-Hard list it)."""
    vs_first = second == base  # the item is first, the baseline second: its score is y
    vs_second = first == base
    score = np.bincount(first[vs_first], y[vs_first], n) + np.bincount(second[vs_second], 1.0 - y[vs_second], n)
    games = np.bincount(first[vs_first], minlength=n) + np.bincount(second[vs_second], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(games > 0, 100.0 * score / np.maximum(games, 1), np.nan)
    out[base] = 50.0
    return out


def _rows(
    names: Sequence[str],
    first: np.ndarray,
    second: np.ndarray,
    y: np.ndarray,
    fit: _Fit,
    win_rate: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Leaderboard rows, best first (ties in rating broken by name): rank, model, rating, 95%
    interval, record (wins, losses, ties: a soft outcome counts as a win above 0.5, a loss below,
    as AlpacaEval counts them), plus ``se``, ``component`` and ``win_rate`` where they apply."""
    n = len(names)
    played = np.bincount(first, minlength=n) + np.bincount(second, minlength=n)
    wins = np.bincount(first, y > _TIE, n) + np.bincount(second, y < _TIE, n)
    tied = np.bincount(first, y == _TIE, n) + np.bincount(second, y == _TIE, n)
    comp_of = {i: c for c, members in enumerate(fit.components or [list(range(n))]) for i in members}
    order = sorted(range(n), key=lambda i: (-fit.ratings[i], names[i]))
    rows = []
    for rank, i in enumerate(order, 1):
        row: dict[str, Any] = {
            "rank": rank,
            "model": names[i],
            "rating": round(float(fit.ratings[i]), 2),
            "ci_low": None if fit.lo is None else _round(fit.lo[i]),
            "ci_high": None if fit.hi is None else _round(fit.hi[i]),
            "comparisons": int(played[i]),
            "wins": int(wins[i]),
            "losses": int(played[i] - wins[i] - tied[i]),
            "ties": int(tied[i]),
        }
        if fit.se is not None:
            row["se"] = _round(fit.se[i])
        if fit.components:
            row["component"] = comp_of[i] + 1
        if win_rate is not None:
            row["win_rate"] = _round(win_rate[i])
        rows.append(row)
    return rows


def parse_anchor(text: str) -> tuple[str, float]:
    """``"MODEL=RATING"`` -> ``(MODEL, RATING)`` (the last ``=`` splits, so a name may hold one)."""
    name, eq, value = text.rpartition("=")
    try:
        r = float(value)
    except ValueError:
        r = math.nan
    if not eq or not name.strip() or not math.isfinite(r):
        raise InputError(f"an anchor is MODEL=RATING (e.g. gpt-4-0314=1000), got {text!r}")
    return name, r


def _check_options(method: str, ties: str, l2: float, k: float | None, bootstrap: int, permutations: int) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if ties not in TIES:
        raise InputError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, numbers.Integral) or bootstrap < 0:
        raise InputError(f"bootstrap must be an integer >= 0, got {bootstrap!r}")
    if isinstance(permutations, bool) or not isinstance(permutations, numbers.Integral) or permutations < 0:
        raise InputError(f"permutations must be an integer >= 0, got {permutations!r}")
    if permutations and method != "elo":
        raise InputError("permutations apply to method='elo' (Bradley-Terry does not depend on the order)")
    if permutations and bootstrap:
        raise InputError("pass either bootstrap or permutations: both give the interval")
    if not (math.isfinite(l2) and l2 >= 0):
        raise InputError(f"l2 must be >= 0, got {l2}")
    if k is not None and not k > 0:
        raise InputError(f"k must be > 0, got {k}")


def _model_index(data: Pairwise, name: str, what: str) -> int:
    if name not in data._index:
        known = sorted(data.names)
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise InputError(f"{what} model {name!r} is not in the records (models: {shown})")
    return data._index[name]


def _default_baseline(data: Pairwise) -> str | None:
    """The one baseline AlpacaEval / Arena-Hard records name, if they name exactly one."""
    if not any(f in data.formats for f in _BASELINE_FORMATS) or len(data.baselines) != 1:
        return None
    return next(iter(data.baselines))


def rate(
    data: Pairwise,
    *,
    method: str = "bradley_terry",
    ties: str = "half",
    l2: float = 0.0,
    position: bool = False,
    k: float | None = None,
    bootstrap: int = 0,
    permutations: int = 0,
    seed: int = 0,
    anchor: tuple[str, float] | str | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """The leaderboard of ``data`` as a JSON-able dict.

    ``method``: ``bradley_terry`` (``l2`` ridge penalty, ``position`` fits the first-shown
    advantage) or ``elo`` (K-factor ``k``, default :data:`tourney.rating.DEFAULT_ELO_K`);
    ``ties``: ``half`` (half a win each way) or ``drop``; ``bootstrap``: rounds of a seeded
    (``seed``) percentile interval, 0 for the Fisher interval (Bradley-Terry) or none (Elo);
    ``permutations`` (Elo only): the mean and percentile interval over that many random
    orderings (seeded by ``seed``) instead of timestamp order. ``anchor``: ``(MODEL, RATING)``
    or ``"MODEL=RATING"``, shift so that MODEL has RATING. ``baseline``: add each model's win
    rate (percent) against this model; by default the baseline AlpacaEval or Arena-Hard records
    name, when they name one.

    Keys: ``method``, ``records`` (comparisons rated), ``abstentions``, ``self_pairs``,
    ``bad_lines``, ``interval`` (how the 95% interval was made, or None), ``scale``, for
    Bradley-Terry ``l2``, ``ties``, ``position`` (when fitted) and ``converged``, for Elo over
    orderings ``permutations``; then, where they apply, ``anchor`` ({model, rating}),
    ``baseline``, ``input_formats`` (records per format; absent when only JSONL Arena battles and
    tourney logs were read); then ``components`` (of the comparison graph; ratings compare only
    within one) and ``leaderboard`` (rows best first; ratings rounded to 0.01 Elo points; a
    ``win_rate`` column with a baseline). Raises :class:`~tourney.errors.InputError` when the
    data cannot be rated.
    """
    _check_options(method, ties, l2, k, bootstrap, permutations)
    n = len(data.names)
    if not data.y:
        raise InputError("no valid records to rate" + (f" ({len(data.problems)} bad lines)" if data.problems else ""))
    if n < 2:
        raise InputError(f"only one model ({data.names[0][:60]!r}) in the records: a rating needs at least two")
    if isinstance(anchor, str):
        anchor = parse_anchor(anchor)
    anchor_at = None if anchor is None else (_model_index(data, anchor[0], "the anchor"), float(anchor[1]))
    base_name = baseline if baseline is not None else _default_baseline(data)
    base_at = None if base_name is None else _model_index(data, base_name, "the baseline")
    first = np.asarray(data.first, dtype=np.int64)
    second = np.asarray(data.second, dtype=np.int64)
    y = np.asarray(data.y, dtype=float)
    tstamp = list(data.tstamp)
    if ties == "drop":
        keep = y != _TIE
        first, second, y = first[keep], second[keep], y[keep]
        tstamp = [t for t, kept in zip(tstamp, keep.tolist()) if kept]
        if not len(y):
            raise InputError("every record is a tie and ties='drop' leaves nothing to rate")
    rng = np.random.default_rng(seed)
    if method == "bradley_terry":
        fit = _fit_bradley_terry(
            n,
            first,
            second,
            y,
            ties=ties,
            l2=l2,
            position=position,
            bootstrap=bootstrap,
            seed=seed,
            rng=rng,
            anchor=anchor_at,
        )
    else:
        fit = _fit_elo(
            n,
            first,
            second,
            y,
            tstamp,
            k=rating.DEFAULT_ELO_K if k is None else k,
            bootstrap=bootstrap,
            permutations=permutations,
            seed=seed,
            rng=rng,
            anchor=anchor_at,
        )
    if anchor_at is not None and fit.components:
        comp = next(c for c in fit.components if anchor_at[0] in c)
        if len(comp) < n:
            raise InputError(
                f"the anchor {anchor[0]!r} is in one of {len(fit.components)} disconnected "  # type: ignore[index]
                "components: it cannot anchor the others"
            )
    board: dict[str, Any] = {
        "method": method,
        "records": len(y),
        "abstentions": data.abstentions,
        "self_pairs": data.self_pairs,
        "bad_lines": len(data.problems),
    }
    board.update(fit.header)
    if anchor_at is not None:
        board["anchor"] = {"model": data.names[anchor_at[0]], "rating": anchor_at[1]}
    if base_at is not None:
        board["baseline"] = data.names[base_at]
    if not data.legacy:
        board["input_formats"] = dict(sorted(data.formats.items()))
    board["components"] = len(fit.components) if fit.components else 1
    wr = None if base_at is None else _win_rates(n, first, second, y, base_at)
    board["leaderboard"] = _rows(data.names, first, second, y, fit, wr)
    return board
