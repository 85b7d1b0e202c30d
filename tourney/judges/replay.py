"""A judge that answers from recorded real judgements.

File format (JSONL), one recorded sample per line::

    {"prompt": "...", "first": "response shown first", "second": "response shown second",
     "verdict": "A" | "B" | "tie" | "abstain", ...any metadata...}

``prompt`` may also be a list of chat messages. Several lines with the same
(prompt, first, second) are successive samples 0, 1, 2, ... of that match, in file order. The
order matters: (x, y) and (y, x) are different matches, which is how a recorded judge's real
position bias is replayed. A match with no record, or asking for more samples than were
recorded, is a (permanent) judge error that names it; ``cycle=true`` reuses recorded samples
cyclically instead (sample i answers with record i mod k).

``tourney.data.prd`` converts the PRD Vicuna-80 reviewer logs to this format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from ..errors import JudgeError, SpecError
from ..hashing import prompt_text, sha256_hex
from ..registry import Spec
from ..types import Judgement, Match, Outcome
from .base import JUDGES, Judge

_VERDICTS = {"a": Outcome.A, "b": Outcome.B, "tie": Outcome.TIE, "abstain": Outcome.ABSTAIN}


#: How a replay file keys a prompt: the text, or a chat prompt's JSON (:func:`tourney.hashing.prompt_text`).
prompt_key = prompt_text


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


@JUDGES.register("replay")
class ReplayJudge(Judge):
    options: ClassVar[dict[str, str]] = {
        "cycle": "reuse recorded samples cyclically when more are asked for (default false)"
    }
    fresh_samples = False  # a recorded abstention stays one: there is no other draw

    def __init__(self, spec: Spec | None = None, path: str | None = None, **options: Any):
        spec = spec or Spec("replay", path, options)
        super().__init__(spec)
        if not spec.arg:
            raise SpecError("the replay judge needs a file: --judge replay:PATH")
        unknown = sorted(set(spec.options) - {"cycle"})
        if unknown:
            raise SpecError(f"unknown option(s) {', '.join(unknown)} for judge 'replay'; known: cycle")
        self.cycle = bool(spec.options.get("cycle", False))
        self.path = Path(spec.arg)
        self.records: dict[tuple[str, str, str], list[Outcome]] = {}
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
            lines = raw.decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read replay file {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
        # the store keys judgements by identity: an edited file must not reuse old verdicts
        self.digest = sha256_hex(raw)
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{self.path}:{no}"
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise SpecError(f"{where}: not valid JSON ({exc})") from exc
            if not isinstance(rec, dict) or not all(k in rec for k in ("prompt", "first", "second", "verdict")):
                raise SpecError(f"{where}: a replay record needs prompt, first, second and verdict")
            verdict = _VERDICTS.get(str(rec["verdict"]).strip().lower())
            if verdict is None:
                raise SpecError(f"{where}: verdict must be A, B, tie or abstain, got {rec['verdict']!r}")
            key = (prompt_key(rec["prompt"]), str(rec["first"]), str(rec["second"]))
            self.records.setdefault(key, []).append(verdict)
        if not self.records:
            raise SpecError(f"replay file {self.path} has no records")

    async def judge(self, match: Match) -> list[Judgement]:
        key = (prompt_key(match.prompt), match.first_text, match.second_text)
        recorded = self.records.get(key)
        if recorded is None:
            raise JudgeError(
                f"replay file {self.path} has no record for prompt {match.prompt_id or '?'} "
                f"({_short(prompt_key(match.prompt))!r}) with first={_short(match.first_text, 40)!r}, "
                f"second={_short(match.second_text, 40)!r}"
            )
        last = match.sample_offset + match.samples
        if last > len(recorded) and not self.cycle:
            raise JudgeError(
                f"replay file {self.path} has {len(recorded)} sample(s) for prompt {match.prompt_id or '?'} "
                f"(candidates {match.first} vs {match.second}), {last} were asked for; pass cycle=true to reuse them"
            )
        out = []
        for s in range(match.sample_offset, last):
            outcome = recorded[s % len(recorded)]
            out.append(Judgement(outcome=outcome, verdict=outcome.value, reasoning="[replayed]", sample=s))
        return out

    def identity(self) -> dict[str, Any]:
        return {"name": "replay", "file": self.path.name, "sha256": self.digest, "cycle": self.cycle}
