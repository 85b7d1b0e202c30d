"""Convert the PRD Vicuna-80 reviewer logs into tourney input and replay files.

PRD (Li et al., "PRD: Peer Rank and Discussion Improve Large Language Model based
Evaluations", 2023) released, for the 80 Vicuna questions, the answers of five models
(bard, claude, gpt35, gpt4, vicuna-13b) and four LLM reviewers' verdicts (bard, claude,
gpt35, vicuna-13b) on ALL ORDERED pairs of answers: ``score`` 1 = the first-shown answer is
better, 2 = the second, 3 = tie. Both orders were judged, so a replay of them carries the
reviewers' real position bias.

Layout expected under ``ROOT`` (the ``vicuna80`` folder)::

    prompts/vicuna_questions.jsonl        {"question_id", "text", "category"}
    generations/answer_<model>.jsonl      {"answer_id", "question_id", "model_id", "text"}
    ratings-<reviewer>/answer_<a>-vs-answer_<b>-<reviewer>-reviewer*.jsonl
                                          {"question_id", "answer1_id", "answer2_id", "score"}

Output: ``prompts.jsonl`` (one line per question: id ``vicuna-<qid>``, the question, the
available answers in the fixed model order, and ``models`` naming them) and one replay file per
reviewer (``replay-<reviewer>.jsonl``: prompt / first / second / verdict plus the model names).
Files that repeat a pair (gpt35's reviewer has a second run of gpt35-vs-gpt4) become further
samples of the same match, in file-name order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError

MODELS = ("bard", "claude", "gpt35", "gpt4", "vicuna-13b")
REVIEWERS = ("bard", "claude", "gpt35", "vicuna-13b")
_VERDICT: dict[Any, str] = {1: "A", 2: "B", 3: "tie"}
_M = "|".join(re.escape(m) for m in MODELS)
_FILE_RE = re.compile(rf"^answer[_-](?P<a>{_M})-vs-answer[_-](?P<b>{_M})-(?P<r>[\w.-]+?)-reviewer")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise InputError(f"malformed JSON ({exc})", f"{path}:{no}") from exc


def load(root: str | Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Return (prompt items, {reviewer: replay records}) from a ``vicuna80`` folder."""
    root = Path(root)
    if not (root / "generations").is_dir():
        raise InputError(f"{root} does not look like the PRD vicuna80 folder (no generations/)")
    questions = {q["question_id"]: q["text"] for q in _jsonl(root / "prompts" / "vicuna_questions.jsonl")}
    answers: dict[str, dict[str, str]] = {}  # answer_id -> {model, text, qid}
    by_q: dict[int, dict[str, str]] = {}
    for model in MODELS:
        for a in _jsonl(root / "generations" / f"answer_{model}.jsonl"):
            answers[a["answer_id"]] = {"model": model, "text": a["text"]}
            by_q.setdefault(a["question_id"], {})[model] = a["text"]
    items = []
    for qid in sorted(questions):
        present = [m for m in MODELS if m in by_q.get(qid, {})]
        items.append(
            {
                "id": f"vicuna-{qid}",
                "prompt": questions[qid],
                "responses": [by_q[qid][m] for m in present],
                "models": present,
            }
        )
    replays: dict[str, list[dict[str, Any]]] = {}
    for reviewer in REVIEWERS:
        folder = root / f"ratings-{reviewer}"
        if not folder.is_dir():
            continue
        records: list[dict[str, Any]] = []
        for path in sorted(folder.glob("*.jsonl")):
            m = _FILE_RE.match(path.name)
            if not m:
                continue
            for r in _jsonl(path):
                verdict = _VERDICT.get(r.get("score"), "abstain")
                a1, a2 = answers.get(r["answer1_id"]), answers.get(r["answer2_id"])
                if a1 is None or a2 is None or r["question_id"] not in questions:
                    continue  # an answer the generations folder lacks: cannot be replayed
                records.append(
                    {
                        "prompt": questions[r["question_id"]],
                        "first": a1["text"],
                        "second": a2["text"],
                        "verdict": verdict,
                        "first_model": a1["model"],
                        "second_model": a2["model"],
                        "question_id": r["question_id"],
                        "reviewer": reviewer,
                    }
                )
        replays[reviewer] = records
    return items, replays


def convert(root: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write ``prompts.jsonl`` and ``replay-<reviewer>.jsonl`` to ``out_dir``; return counts."""
    items, replays = load(root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"prompts.jsonl": len(items)}
    with (out / "prompts.jsonl").open("w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps(it, ensure_ascii=False) + "\n")
    for reviewer, records in replays.items():
        name = f"replay-{reviewer}.jsonl"
        with (out / name).open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        counts[name] = len(records)
    return counts
