"""Adapter between the scheduler and the judgement store (one key per judge sample).

Group commit: judgements are put into the store's buffer as they complete and committed once
per event-loop iteration (all judgements completed in the same iteration share one commit).
A killed process therefore loses at most the judgements of the iteration it died in, while a
burst of fast judgements costs one commit, not one per judgement.

The key covers the judge's identity (model, format, sampling settings: ``Judge.identity()``),
the prompt, the two responses in their order and the sample index, so a match already paid
for, in this run or any earlier one with the same judge, is answered from the store.

When the input item has ``scores`` (the simulated judge's truth, which reaches that judge
through :meth:`~tourney.judges.base.Judge.for_item`), the key also covers the pair's scores in
presentation order: an edited ``scores`` never reuses old verdicts. They enter the identity part
of the key as ``{**identity, "scores": [first's, second's]}``, for every judge, exactly as stores
written before this layout keyed them, so those stores keep answering.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Sequence

from .errors import StoreError
from .items import Item
from .judges.base import Judge
from .store import JudgementStore
from .types import Judgement, Match

__all__ = ["StoreCache"]


class StoreCache:
    """The scheduler's :class:`~tourney.scheduler.JudgementCache` on a :class:`JudgementStore`,
    for the answers of ``judge`` (keyed by its identity; see the module docstring)."""

    def __init__(self, store: JudgementStore, judge: Judge):
        self.store = store
        self.identity = judge.identity()
        self._match_identity = judge.match_identity
        self._flush_scheduled = False
        self._failed: StoreError | None = None

    def _identity(self, match: Match, item: Item | None) -> dict:
        # the input's `scores` decide a simulated judge's verdicts, and a judge may treat one match
        # apart (the model judges' candidate defences): both part of the key (see the module docstring)
        extra = self._match_identity(match)
        if item is None or item.scores is None:
            return {**self.identity, **extra} if extra else self.identity
        return {**self.identity, **extra, "scores": [item.scores[match.first], item.scores[match.second]]}

    def lookup(self, match: Match, item: Item | None = None) -> dict[int, Judgement]:
        """The stored samples of ``match`` (from input ``item``), by sample index: only those present."""
        identity = self._identity(match, item)
        keys = {
            s: self.store.key(identity, match.prompt, match.first_text, match.second_text, s)
            for s in range(match.sample_offset, match.sample_offset + match.samples)
        }
        found = self.store.get_many(keys.values())
        return {s: found[k] for s, k in keys.items() if k in found}

    def save(self, match: Match, judgements: Sequence[Judgement], item: Item | None = None) -> None:
        """Store ``judgements`` (samples ``match.sample_offset ..``) of ``match`` from input ``item``;
        committed within this event-loop iteration. Raises :class:`StoreError` when the store
        cannot take them (the batch stays buffered)."""
        identity = self._identity(match, item)
        failure: StoreError | None = None
        for k, j in enumerate(judgements):  # buffer every judgement, even after a failed commit
            sample = match.sample_offset + k
            if j.sample != sample:
                j = dataclasses.replace(j, sample=sample)
            try:
                self.store.put(
                    self.store.key(identity, match.prompt, match.first_text, match.second_text, sample),
                    j,
                    prompt_id=match.prompt_id,
                    prompt=match.prompt,
                    first=match.first,
                    second=match.second,
                    first_text=match.first_text,
                    second_text=match.second_text,
                    judge_identity=identity,
                )
            except StoreError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        self._raise_if_failed()  # an earlier commit failed: stop the run (the buffer is kept)
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.store.flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        try:
            self.store.flush()
        except StoreError as exc:  # the store keeps the batch; the next save stops the run
            self._failed = exc

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise self._failed
