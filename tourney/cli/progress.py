"""A dependency-free progress line on stderr for long runs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..scheduler import RunStats


class Progress:
    """Prints ``prompts done/total, comparisons, rate, ETA`` at most every ``interval_s``."""

    def __init__(self, total: int | None, stream: TextIO | None = None, interval_s: float = 0.5):
        self.total = total
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self._last = 0.0
        self._shown = False

    def __call__(self, stats: RunStats, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        el = max(stats.elapsed_s, 1e-9)
        done = stats.prompts
        line = f"[tourney] {done}"
        if self.total:
            line += f"/{self.total} prompts ({100.0 * done / self.total:.0f}%)"
            if 0 < done < self.total:
                line += f", ETA {_fmt_s(el * (self.total - done) / done)}"
        else:
            line += " prompts"
        line += f", {stats.samples} judgements ({stats.samples / el:.0f}/s)"
        if stats.reused:
            line += f", {stats.reused} reused"
        if stats.failed:
            line += f", {stats.failed} failed"
        self.stream.write("\r" + line + "\033[K")
        self.stream.flush()
        self._shown = True

    def close(self, stats: RunStats) -> None:
        if self._shown:
            self(stats, force=True)
            self.stream.write("\n")
            self.stream.flush()


def _fmt_s(s: float) -> str:
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m{s % 60:02.0f}s"
    return f"{s / 3600:.0f}h{(s % 3600) / 60:02.0f}m"
