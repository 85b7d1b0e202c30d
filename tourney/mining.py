"""DPO pair mining: ranked candidates -> (prompt, chosen, rejected) pairs with evidence.

Pairs are written in the format TRL's DPO trainer reads: ``{"prompt", "chosen", "rejected"}``,
either as strings (a plain-text prompt) or in conversational form (lists of role/content
messages; used automatically when the prompt is a chat, or with ``conversational=True``). The
evidence for each pair sits under one extra key, ``"tourney"``:

``chosen_index``, ``rejected_index``   candidate indices in the input line
``chosen_rank``, ``rejected_rank``     1-based ranks
``margin``                              score difference on the strategy's scale (>= 0)
``confidence``                          P(chosen really better): from the strategy's
                                        uncertainty when it has one (normal approximation on the
                                        score difference), else the chosen side's share of the
                                        direct votes between the two, else null
``direct``                              the two were compared directly
``both_orders``                         ... in both presentation orders
``orders_agree``                        every order's majority preferred the chosen one
                                        (null when not judged in both orders)
``votes``                               [for chosen, for rejected] summed over both orders

Policies: ``best_worst`` (one pair per prompt), ``best_each`` (best vs every other),
``margin`` (every ordered pair whose margin is at least ``min_margin``). Filters apply to every
policy: ``min_margin``, ``min_confidence``, ``require_consistent`` (both orders judged and
agreeing). A pair whose chosen and rejected are the same text is never written: identical
responses are judged once and share their rank (the result's ``duplicates``), so they are no
preference (an item whose responses are all identical gives no pair).

One prompt type per file. A dataset column has one type, and TRL's trainers decide between the
standard and the conversational form from the first row, so a file that mixes plain-text and
chat prompts crashes ``DPOTrainer`` (TRL 1.16: ``'list' object has no attribute 'endswith'``).
:class:`PairFile` therefore writes every row of a file in ONE form: conversational as soon as
any prompt is a chat (a plain prompt becomes ``[{"role": "user", "content": prompt}]``, a
completion ``[{"role": "assistant", "content": text}]``), standard (strings) when every prompt
is plain. Rows are written as they come; rows written in the standard form before the first
chat prompt appeared are converted by one streaming pass over the file when it is closed.

KTO (:func:`mine_kto`): TRL's unpaired form ``{"prompt", "completion", "label"}``, derived
from the same kept pairs: a candidate that is the chosen side of at least one kept pair and
the rejected side of none is desirable (``label: true``), the reverse undesirable; a candidate
on both sides (a middle candidate under ``margin``) is left out, its label would contradict
itself. Labels belong to texts: the copies of one text are one completion, labelled from the
kept pairs of every copy (never both desirable and undesirable). Each text appears at most
once per prompt, best rank first. Its ``"tourney"`` evidence is the pair evidence above of
the kept pair with the largest margin that gave it its label, plus ``index`` and ``rank`` (the
row's own candidate: the best-ranked copy backing the label) and ``pairs`` (kept pairs that
gave it that label).

Ranked input (:func:`check_ranked`): a ``tourney rank`` output line read back is checked field
by field before it is mined; a hand-edited or foreign line is an :class:`InputError` naming the
line and the field, never a wrong pair.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from .errors import InputError
from .items import Item
from .outputs import OutputError, OutputFile

__all__ = [
    "FORMATS",
    "POLICIES",
    "PairFile",
    "PairPolicy",
    "check_ranked",
    "mine_kto",
    "mine_pairs",
    "to_conversational",
]

#: the row forms :class:`PairFile` writes: TRL's paired preference form and its unpaired (KTO) form
FORMATS = ("dpo", "kto")

POLICIES = ("best_worst", "best_each", "margin")


@dataclass(frozen=True)
class PairPolicy:
    policy: str = "best_worst"
    min_margin: float = 0.0
    min_confidence: float | None = None
    require_consistent: bool = False
    conversational: bool | None = None  # None: conversational iff the prompt is a chat

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown pair policy {self.policy!r}; known: {', '.join(POLICIES)}")


def _direct_votes(matches: Sequence[Mapping[str, Any]], a: int, b: int) -> dict[str, Any]:
    """Votes between a and b from the result's match records, per presentation order."""
    for_a = for_b = 0
    orders: dict[tuple[int, int], int] = {}  # order -> majority sign (+1 a, -1 b, 0 none)
    for m in matches:
        f, s, v = m["first"], m["second"], m["votes"]
        if {f, s} != {a, b}:
            continue
        wa, wb = (v[0], v[1]) if f == a else (v[1], v[0])
        for_a += wa
        for_b += wb
        orders[(f, s)] = orders.get((f, s), 0) + (wa - wb)
    both = (a, b) in orders and (b, a) in orders
    agree = None
    if both:
        agree = all(d > 0 for d in orders.values())
    return {"direct": bool(orders), "both_orders": both, "orders_agree": agree, "votes": [for_a, for_b]}


def _confidence(result: Mapping[str, Any], a: int, b: int, votes: Sequence[int]) -> float | None:
    unc = result.get("uncertainty")
    scores = result["scores"]
    if unc is not None:
        sd = math.hypot(unc[a], unc[b])
        diff = scores[a] - scores[b]
        if sd > 0:
            return 0.5 * (1.0 + math.erf(diff / (sd * math.sqrt(2.0))))
        return 1.0 if diff > 0 else 0.5
    total = votes[0] + votes[1]
    return votes[0] / total if total else None


def _as_messages(prompt: Any) -> list[dict[str, str]]:
    return [dict(m) for m in prompt] if not isinstance(prompt, str) else [{"role": "user", "content": prompt}]


def mine_pairs(
    item: Item, result: Mapping[str, Any], policy: PairPolicy, counts: dict[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    """Pairs for one item from its rank result (the output line's JSON).

    A candidate pair whose two responses are the same text is never written (identical
    responses share their rank: see ``duplicates`` in the result); ``counts``, when given,
    gets ``counts["identical"]`` increased by one per pair left out for that reason."""
    if result.get("status") == "failed" or len(item.responses) < 2:
        return
    ranking: list[int] = list(result["ranking"])
    scores = result["scores"]
    rank_of = {c: r + 1 for r, c in enumerate(ranking)}
    if policy.policy == "best_worst":
        candidates = [(ranking[0], ranking[-1])]
    elif policy.policy == "best_each":
        candidates = [(ranking[0], c) for c in ranking[1:]]
    else:
        candidates = [(a, b) for i, a in enumerate(ranking) for b in ranking[i + 1 :]]
    conversational = policy.conversational if policy.conversational is not None else not isinstance(item.prompt, str)
    for a, b in candidates:
        if item.responses[a] == item.responses[b]:  # no preference between a text and itself
            if counts is not None:
                counts["identical"] = counts.get("identical", 0) + 1
            continue
        margin = float(scores[a] - scores[b])
        if margin < policy.min_margin:
            continue
        ev = _direct_votes(result.get("matches", []), a, b)
        conf = _confidence(result, a, b, ev["votes"])
        if policy.min_confidence is not None and (conf is None or conf < policy.min_confidence):
            continue
        if policy.require_consistent and not ev["orders_agree"]:
            continue
        if conversational:
            pair: dict[str, Any] = {
                "prompt": _as_messages(item.prompt),
                "chosen": [{"role": "assistant", "content": item.responses[a]}],
                "rejected": [{"role": "assistant", "content": item.responses[b]}],
            }
        else:
            pair = {"prompt": item.prompt, "chosen": item.responses[a], "rejected": item.responses[b]}
        pair["tourney"] = {
            "id": item.id,
            "chosen_index": a,
            "rejected_index": b,
            "chosen_rank": rank_of[a],
            "rejected_rank": rank_of[b],
            "margin": round(margin, 10),
            "confidence": None if conf is None else round(conf, 10),
            **ev,
            "strategy": result.get("strategy"),
            "judge": result.get("judge"),
        }
        yield pair


def mine_kto(
    item: Item, result: Mapping[str, Any], policy: PairPolicy, counts: dict[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    """KTO rows for one item (TRL's unpaired form), from the pairs :func:`mine_pairs` keeps
    under ``policy``; see the module docstring for the labels and the evidence.

    Labels belong to texts, not to candidate positions: identical responses (copies of one
    text) are one completion, labelled once from the kept pairs of every copy, so the same
    text is never both desirable and undesirable, nor written twice for one prompt. Its row
    names the best-ranked copy that backs the label (``index``, ``rank``). ``counts`` is
    passed to :func:`mine_pairs`."""
    pairs = list(mine_pairs(item, result, policy, counts))
    if not pairs:
        return
    texts = item.responses
    support: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for pair in pairs:
        ev = pair["tourney"]
        support.setdefault((texts[ev["chosen_index"]], True), []).append(pair)
        support.setdefault((texts[ev["rejected_index"]], False), []).append(pair)
    rank_of = {c: r + 1 for r, c in enumerate(result["ranking"])}
    conversational = not isinstance(pairs[0]["prompt"], str)
    done: set[str] = set()
    for cand in sorted(rank_of, key=lambda c: rank_of[c]):
        text = texts[cand]
        if text in done:
            continue
        labels = [lab for lab in (True, False) if (text, lab) in support]
        if len(labels) != 1:  # no kept pair, or chosen in one kept pair and rejected in another
            continue
        label = labels[0]
        backing = support[(text, label)]
        side = "chosen_index" if label else "rejected_index"
        if not any(p["tourney"][side] == cand for p in backing):
            continue  # a copy that backs no pair: the row goes to the copy that does
        done.add(text)
        best = max(backing, key=lambda p: p["tourney"]["margin"])  # first of the largest margin
        ev = dict(best["tourney"])
        row: dict[str, Any] = {
            "prompt": best["prompt"],
            "completion": [{"role": "assistant", "content": text}] if conversational else text,
            "label": label,
            "tourney": {"id": ev.pop("id"), "index": cand, "rank": rank_of[cand], "pairs": len(backing), **ev},
        }
        yield row


def to_conversational(row: Mapping[str, Any]) -> dict[str, Any]:
    """A DPO pair or KTO row in TRL's conversational form (key order kept): a plain prompt
    becomes one user message, each completion one assistant message; a row already in that
    form is returned as a copy."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "prompt" and isinstance(value, str):
            value = [{"role": "user", "content": value}]
        elif key in ("chosen", "rejected", "completion") and isinstance(value, str):
            value = [{"role": "assistant", "content": value}]
        out[key] = value
    return out


class PairFile:
    """A JSONL file of mined rows (DPO pairs or KTO rows) with ONE prompt type for the whole
    file, written atomically.

    ``conversational=True`` writes every row in the conversational form; ``None`` (default)
    writes the standard form while every prompt seen is plain and switches to conversational
    at the first chat prompt; rows already written in the standard form are converted when the
    file is finished (one streaming pass: memory does not grow with the file).

    Rows go through a :class:`tourney.outputs.OutputFile`: to ``PATH.partial``, created when
    this object is (a folder that refuses it fails before any work), renamed to ``PATH`` by
    :meth:`commit` (then ``meta`` to ``PATH.meta.json``); :meth:`abort` keeps the rows written
    so far in ``PATH.partial`` (whole lines) with ``PATH.partial.meta.json``, or removes it when
    it holds none, and leaves an earlier ``PATH`` untouched. A device or a pipe is written
    directly (then rows already written cannot be converted: :attr:`unconverted` counts them).
    Write errors raise :class:`tourney.outputs.OutputError`.
    """

    def __init__(self, path: str | os.PathLike[str], conversational: bool | None = None):
        self.path = Path(path)
        self.conversational = bool(conversational)
        self.converted = 0  #: rows with a plain prompt written in the conversational form
        self.unconverted = 0  #: standard-form rows a device got before the first chat prompt (not rewritable)
        self._standard_before_chat = 0
        self.out = OutputFile(os.fspath(path))

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self.out.rows

    def write(self, row: Mapping[str, Any]) -> None:
        """Write one row (a dict from :func:`mine_pairs` or :func:`mine_kto`)."""
        chat = not isinstance(row["prompt"], str)
        if chat and not self.conversational:
            self.conversational = True
            if self.out.kind != "file":  # a device or a pipe: what went there stays as it is
                self.unconverted, self._standard_before_chat = self._standard_before_chat, 0
        if self.conversational:
            self.converted += not chat
            row = to_conversational(row)  # also a chat prompt's completions given as strings
        else:
            self._standard_before_chat += 1
        self.out.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))

    def commit(self, meta: Mapping[str, Any] | None = None) -> None:
        """The file is complete: convert the standard-form rows written before the first chat
        prompt, then put it in place (``PATH.partial`` renamed to ``PATH``, then ``meta``)."""
        if self._needs_conversion():
            assert self.out.tmp is not None
            try:
                self.out.handle.flush()
            except OSError as exc:
                raise OutputError(f"cannot write {self.out.tmp}: {exc.strerror or exc}") from exc
            self.converted += _convert_rows(self.out.tmp)  # the open handle is not written to again
            self._standard_before_chat = 0
        self.out.commit(meta)

    def abort(self, meta: Mapping[str, Any] | None = None) -> str | None:
        """The run stopped early: keep the rows written so far as ``PATH.partial`` (converted to
        one form when that can be done) with ``meta`` beside it; returns its path, or None when
        no row was written. Never raises."""
        kept = self.out.abort(meta)
        if kept is not None and self._needs_conversion():
            with contextlib.suppress(OSError, OutputError, ValueError):  # left as written: the meta says partial
                self.converted += _convert_rows(kept)
                self._standard_before_chat = 0
        return kept

    def close(self) -> None:
        """Same as :meth:`commit` without a meta file."""
        self.commit()

    def _needs_conversion(self) -> bool:
        return self.conversational and self._standard_before_chat > 0 and self.out.kind == "file"


def _convert_rows(path: str) -> int:
    """Rewrite the JSONL file ``path`` with every standard-form row in the conversational form
    (through ``PATH.conv`` and a rename, streaming); returns how many rows were converted."""
    tmp = path + ".conv"
    converted = 0
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            for line in src:
                row = json.loads(line)
                if isinstance(row["prompt"], str):
                    row = to_conversational(row)
                    converted += 1
                dst.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {tmp}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return converted


#: tolerance of the check that scores do not increase along the ranking (as in the conformance suite)
SCORE_TOL = 1e-9
#: a match record's votes: first-shown wins, second-shown wins, ties, abstentions, errors
VOTE_FIELDS = 5


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_finite(x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an integer too large for a float
        return False


def check_ranked(obj: Any, item: Item, where: str) -> dict[str, Any]:
    """A ``tourney rank`` output line (decoded JSON) checked against its input ``item``
    before pairs are mined from it; returns it, or raises :class:`InputError` naming ``where``
    and the first field that is wrong.

    Checked (every field :func:`mine_pairs` reads): an object whose ``id`` is the item's;
    ``status`` one of ok, partial, coin_flip, failed (a failed line has nothing more to check);
    ``ranking`` a permutation of the item's candidates 0..n-1; ``scores`` n finite numbers,
    not increasing along the ranking (by more than :data:`SCORE_TOL`); ``best`` and
    ``best_response`` (when present) the ranking's first candidate and its text;
    ``uncertainty`` absent, null or n finite numbers >= 0; ``matches`` absent or a list of
    ``{"first", "second", "votes"}`` with two different candidates and :data:`VOTE_FIELDS`
    integer vote counts >= 0; ``strategy`` and ``judge`` absent, null or objects.
    """

    def bad(message: str) -> InputError:
        return InputError(message, where)

    if not isinstance(obj, dict):
        raise bad(f"expected a JSON object, got {type(obj).__name__}")
    if obj.get("id") != item.id:
        raise bad(
            f"result is for item {obj.get('id')!r}, the input's item here is {item.id!r}: "
            "not the output of this input (or lines were reordered)"
        )
    status = obj.get("status")
    if status not in ("ok", "partial", "coin_flip", "failed"):
        raise bad(f"'status' must be ok, partial, coin_flip or failed, got {status!r}")
    if status == "failed":
        return obj
    n = item.n
    ranking = obj.get("ranking")
    if not isinstance(ranking, list) or not all(_is_int(c) for c in ranking):
        raise bad(f"'ranking' must be a list of candidate indices, got {_short(ranking)}")
    if sorted(ranking) != list(range(n)):
        raise bad(f"'ranking' {_short(ranking)} is not a permutation of the item's {n} candidates 0..{n - 1}")
    scores = obj.get("scores")
    if not isinstance(scores, list) or len(scores) != n or not all(_is_finite(x) for x in scores):
        raise bad(f"'scores' must be {n} finite numbers, got {_short(scores)}")
    for hi, lo in itertools.pairwise(ranking):
        if scores[hi] < scores[lo] - SCORE_TOL:
            raise bad(
                f"'scores' disagree with 'ranking': candidate {hi} is ranked above {lo} "
                f"with a lower score ({scores[hi]} < {scores[lo]})"
            )
    if "best" in obj and obj["best"] != ranking[0]:
        raise bad(f"'best' is {_short(obj['best'])} but the ranking starts with {ranking[0]}")
    if "best_response" in obj and obj["best_response"] != item.responses[ranking[0]]:
        raise bad(f"'best_response' is not the text of candidate {ranking[0]} in the input")
    unc = obj.get("uncertainty")
    if unc is not None and (
        not isinstance(unc, list) or len(unc) != n or not all(_is_finite(x) and x >= 0 for x in unc)
    ):
        raise bad(f"'uncertainty' must be null or {n} finite numbers >= 0, got {_short(unc)}")
    matches = obj.get("matches", [])
    if not isinstance(matches, list):
        raise bad(f"'matches' must be a list, got {type(matches).__name__}")
    for k, m in enumerate(matches):
        if not isinstance(m, dict):
            raise bad(f"match {k} must be an object, got {type(m).__name__}")
        f, sec, votes = m.get("first"), m.get("second"), m.get("votes")
        if not (_is_int(f) and _is_int(sec) and 0 <= f < n and 0 <= sec < n and f != sec):
            raise bad(
                f"match {k}: 'first' and 'second' must be two different candidates 0..{n - 1}, "
                f"got {_short(f)} and {_short(sec)}"
            )
        if not isinstance(votes, list) or len(votes) != VOTE_FIELDS or not all(_is_int(v) and v >= 0 for v in votes):
            raise bad(
                f"match {k}: 'votes' must be {VOTE_FIELDS} counts >= 0 (first, second, ties, "
                f"abstentions, errors), got {_short(votes)}"
            )
    for key in ("strategy", "judge"):
        if obj.get(key) is not None and not isinstance(obj[key], dict):
            raise bad(f"'{key}' must be an object, got {_short(obj[key])}")
    return obj


def _short(x: Any, limit: int = 80) -> str:
    text = json.dumps(x, ensure_ascii=False)  # NaN and Infinity print as such
    return text if len(text) <= limit else text[: limit - 3] + "..."
