"""AlpacaEval 2.0 multi-candidate data as tourney input, with the recorded preferences as truth.

``multi_candidate_9models.jsonl`` (from the AlpacaEval 2.0 release) holds 805 instructions, each
with 9 models' answers and each answer's recorded judge preference against the common baseline
(``pref_vs_gpt4_1106_preview`` in [1, 2]: 1 = the baseline is better, 2 = the answer is better,
1.5 = tie; it is the judge's probability, 1 + P(answer beats the baseline)).

:func:`load_items` turns each line into an input item whose ``scores`` are Bradley-Terry
log-strengths relative to the baseline, ``log(p / (1 - p))`` with ``p = pref - 1`` clipped to
``[eps, 1 - eps]``, so the simulated judge (``noise=1``) is "driven by the recorded preferences":
its P(a beats b) = sigmoid(score_a - score_b) is the Bradley-Terry model those preferences imply.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PREF_KEY = "pref_vs_gpt4_1106_preview"


def pref_to_score(pref: float, eps: float = 1e-4) -> float:
    p = min(max(float(pref) - 1.0, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def load_items(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Input items (``id``, ``prompt``, ``responses``, ``scores``, plus ``models`` and ``prefs``).
    Lines whose answers are not all distinct keep the first of each duplicate answer."""
    items: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if limit is not None and len(items) >= limit:
                break
            rec = json.loads(line)
            seen: set[str] = set()
            responses, models, prefs = [], [], []
            for c in rec["candidates"]:
                if c["output"] in seen or not c["output"].strip():
                    continue
                seen.add(c["output"])
                responses.append(c["output"])
                models.append(c["model"])
                prefs.append(float(c[PREF_KEY]))
            items.append(
                {
                    "id": f"alpaca-{rec['instruction_idx']}",
                    "prompt": rec["instruction"],
                    "responses": responses,
                    "scores": [pref_to_score(p) for p in prefs],
                    "models": models,
                    "prefs": prefs,
                }
            )
    return items
