"""Progress of a ranking run: an ETA from completed work, and three ways to show it.

Used by the command line (``tourney rank`` / ``mine-pairs``, through
:mod:`tourney.cli.progress`) and the Python API (``Tournament(progress=...)``).

* :class:`Progress`, dependency-free, on a stream (stderr): a live line rewritten in place
  (``\\r``, for a terminal), or plain lines every ``interval_s`` seconds (for logs and pipes: no
  carriage returns, no escape codes; a run shorter than the interval prints nothing);
* :class:`TqdmProgress`: a tqdm bar (``tqdm.auto``: a widget in a notebook), tqdm imported when
  one is made;
* :func:`make_progress` picks one (the Python API's ``progress=`` uses it).

All are :class:`~tourney.runner.ProgressLine` objects: called with the run's
:class:`~tourney.scheduler.RunStats` whenever a prompt finishes, told each finished result
(:meth:`result`), and given a way to read the stats at any time (:meth:`attach`) so that a
background ticker can refresh the display while a slow prompt is still being judged.

The ETA (:class:`EtaEstimator`) counts work in judge samples, not prompts. Prompts run
concurrently (up to hundreds at once), so the first ones finish only after a pipeline delay
while many others are half done, and ``elapsed * remaining / done`` over prompts overestimates
the rest several-fold early on (the first ETA measured 3x off). Instead: samples per prompt
``c`` from the finished results, total work ``N c``, throughput ``S / t`` from every sample
judged so far (finished prompts or not), ``ETA = (N c - S) / (S / t)``. No ETA is shown before
:data:`ETA_MIN_RESULTS` results and :data:`ETA_MIN_FRACTION` of the estimated work are in.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .scheduler import RunStats

__all__ = ["ETA_MIN_FRACTION", "ETA_MIN_RESULTS", "EtaEstimator", "Progress", "TqdmProgress", "make_progress"]

#: finished results needed before an ETA is shown (the samples per prompt must be estimated)
ETA_MIN_RESULTS = 3
#: ... and the fraction of the estimated total work that must be done
ETA_MIN_FRACTION = 0.02
#: seconds between plain progress lines (stderr not a terminal); TOURNEY_PROGRESS_INTERVAL overrides
PLAIN_INTERVAL_S = 10.0
#: seconds between refreshes of a live line
LIVE_INTERVAL_S = 0.5


class EtaEstimator:
    """Remaining seconds of a run of ``total`` prompts from its completed work (see the module
    docstring). Feed it each finished result's sample count (:meth:`add_result`), then ask
    :meth:`eta` with the elapsed seconds, the prompts finished and the samples judged so far."""

    def __init__(self, total: int | None):
        self.total = total
        self.results = 0
        self.result_samples = 0

    def add_result(self, samples: int) -> None:
        """One finished prompt that took ``samples`` judge samples (failed ones count 0)."""
        self.results += 1
        self.result_samples += max(0, int(samples))

    @property
    def samples_per_prompt(self) -> float | None:
        return self.result_samples / self.results if self.results else None

    def eta(self, elapsed_s: float, prompts_done: int, samples_done: int) -> float | None:
        """Seconds left, or None while it cannot be estimated yet (unknown total, too few
        results, too little work done, or nothing judged)."""
        if not self.total or prompts_done >= self.total:
            return 0.0 if self.total and prompts_done >= self.total else None
        c = self.samples_per_prompt
        if self.results < ETA_MIN_RESULTS or c is None or samples_done <= 0 or elapsed_s <= 0:
            return None
        total_work = max(self.total * c, float(samples_done))
        if samples_done < ETA_MIN_FRACTION * total_work:
            return None
        if c == 0:  # every result so far failed or was free: fall back to prompts
            return elapsed_s * (self.total - prompts_done) / max(prompts_done, 1)
        return (total_work - samples_done) * elapsed_s / samples_done


def _fmt_s(s: float) -> str:
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s // 60:.0f}m{s % 60:02.0f}s"
    return f"{s // 3600:.0f}h{(s % 3600) // 60:02.0f}m"


def _interval_from_env(default: float) -> float:
    raw = os.environ.get("TOURNEY_PROGRESS_INTERVAL")
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


class _Base:
    """Shared by the displays: the ETA, the stats source and the background ticker."""

    def __init__(self, total: int | None, interval_s: float):
        self.total = total
        self.interval_s = interval_s
        self.eta = EtaEstimator(total)
        self._getter: Callable[[], RunStats] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def attach(self, stats: Callable[[], RunStats]) -> None:
        """Read the run's stats through ``stats()`` from now on, and refresh the display every
        ``interval_s`` seconds from a daemon thread until :meth:`close`."""
        self._getter = stats
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="tourney-progress", daemon=True)
            self._thread.start()

    def result(self, res: Any) -> None:
        """A finished prompt's result (its ``samples`` feed the ETA)."""
        self.eta.add_result(getattr(res, "samples", 0) or 0)

    def _tick(self) -> None:
        step = min(self.interval_s, LIVE_INTERVAL_S)
        while not self._stop.wait(step):
            getter = self._getter
            if getter is not None:
                with contextlib.suppress(Exception):  # a display must never stop a run
                    self(getter())

    def _stop_ticker(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def describe(self, stats: RunStats) -> tuple[str, float | None]:
        """``(text without the ETA, ETA seconds or None)`` for ``stats``."""
        el = max(stats.elapsed_s, 1e-9)
        done = stats.prompts
        text = f"{done}"
        if self.total:
            text += f"/{self.total} prompts ({100.0 * done / self.total:.0f}%)"
        else:
            text += " prompts"
        text += f", {stats.samples} judgements ({stats.samples / el:.1f}/s)"
        if stats.reused:
            text += f", {stats.reused} reused"
        if stats.failed:
            text += f", {stats.failed} failed"
        return text, self.eta.eta(el, done, stats.samples)

    def __call__(self, stats: RunStats, force: bool = False) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self, stats: RunStats) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Progress(_Base):
    """A progress display on ``stream`` (default stderr).

    ``live`` (default: ``stream.isatty()``): one line rewritten in place with ``\\r`` every
    ``interval_s`` (default 0.5 s); otherwise plain lines, one every ``interval_s`` (default
    :data:`PLAIN_INTERVAL_S`, or the ``TOURNEY_PROGRESS_INTERVAL`` environment variable), each a
    whole line with no carriage return or escape code, and a last line at :meth:`close` only
    when an earlier one was printed. ``escapes``: clear the rest of a live line with ``ESC[K``
    (default true; a notebook gets spaces instead)."""

    def __init__(
        self,
        total: int | None,
        stream: TextIO | None = None,
        interval_s: float | None = None,
        *,
        live: bool | None = None,
        escapes: bool = True,
        elapsed: bool = True,
    ):
        stream = stream or sys.stderr
        if live is None:
            isatty = getattr(stream, "isatty", None)
            live = bool(isatty and isatty())
        default = LIVE_INTERVAL_S if live else _interval_from_env(PLAIN_INTERVAL_S)
        super().__init__(total, default if interval_s is None else interval_s)
        self.stream = stream
        self.live = live
        self.escapes = escapes
        self.show_elapsed = elapsed
        self._last = time.perf_counter()  # a plain line first appears one interval after the start
        self._shown = False
        self._width = 0

    def line(self, stats: RunStats) -> str:
        """The progress text for ``stats``: counts, rate, elapsed time and ETA."""
        text, eta = self.describe(stats)
        if self.show_elapsed:
            text += f", {_fmt_s(stats.elapsed_s)} elapsed"
        if self.total and stats.prompts < self.total:
            text += f", ETA {_fmt_s(eta)}" if eta is not None else ", ETA --"
        return "[tourney] " + text

    def __call__(self, stats: RunStats, force: bool = False) -> None:
        now = time.perf_counter()
        with self._lock:
            if self._closed or (not force and now - self._last < self.interval_s):
                return
            self._last = now
            text = self.line(stats)
            if self.live:
                pad = "\033[K" if self.escapes else " " * max(0, self._width - len(text))
                self.stream.write("\r" + text + pad)
                self._width = len(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
            self._shown = True

    def close(self, stats: RunStats) -> None:
        """Stop the ticker; print the final state (a live line is ended with a newline)."""
        self._stop_ticker()
        if self._shown:
            self(stats, force=True)
            if self.live:
                self.stream.write("\n")
                self.stream.flush()
        with self._lock:
            self._closed = True


class TqdmProgress(_Base):
    """A tqdm bar over prompts (``tqdm.auto``: a widget in Jupyter, text elsewhere) whose
    postfix shows judgements, their rate and this module's ETA (tqdm's own remaining-time
    estimate, over prompts, is left out for the reason in the module docstring)."""

    def __init__(self, total: int | None, interval_s: float = LIVE_INTERVAL_S, **tqdm_options: Any):
        from tqdm.auto import tqdm

        super().__init__(total, interval_s)
        self._last = 0.0
        self.bar = tqdm(
            total=total,
            unit="prompt",
            desc="tourney",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
            **tqdm_options,
        )

    def __call__(self, stats: RunStats, force: bool = False) -> None:
        now = time.perf_counter()
        with self._lock:
            if self._closed or (not force and now - self._last < min(self.interval_s, 0.1)):
                return
            self._last = now
            _, eta = self.describe(stats)
            el = max(stats.elapsed_s, 1e-9)
            post = f"{stats.samples} judgements, {stats.samples / el:.1f}/s"
            if self.total and stats.prompts < self.total:
                post += f", ETA {_fmt_s(eta)}" if eta is not None else ", ETA --"
            self.bar.n = stats.prompts
            self.bar.set_postfix_str(post, refresh=False)
            self.bar.refresh()

    def close(self, stats: RunStats) -> None:
        self._stop_ticker()
        self(stats, force=True)
        with self._lock:
            self._closed = True
            self.bar.close()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython kernel app is running)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def make_progress(total: int | None, show: bool | None = None, stream: TextIO | None = None) -> _Base | None:
    """The progress display for the Python API: None when ``show`` is False (or None and
    neither a notebook nor a terminal), else a tqdm bar when tqdm is installed, else
    :class:`Progress` (live in a terminal or notebook, plain lines otherwise)."""
    stream = stream or sys.stderr
    notebook = in_notebook()
    if show is None:
        isatty = getattr(stream, "isatty", None)
        show = notebook or bool(isatty and isatty())
    if not show:
        return None
    try:
        return TqdmProgress(total, file=stream)
    except ImportError:
        pass
    if notebook:
        return Progress(total, stream, live=True, escapes=False)
    return Progress(total, stream)
