"""The command line's progress display: :class:`~tourney.progress.Progress` (the engine module
:mod:`tourney.progress` holds it, so that the Python API can show the same display without
importing the command line)."""

from __future__ import annotations

from ..progress import EtaEstimator, Progress, TqdmProgress, make_progress

__all__ = ["EtaEstimator", "Progress", "TqdmProgress", "make_progress"]
