"""Judges: the seed judges' formats, and the simulated, replay, vLLM and OpenAI-compatible judges.

Heavy backends (vllm, the HTTP client) are imported only when such a judge is built.
"""

from .base import JUDGES, Judge, build_judge

__all__ = ["JUDGES", "Judge", "build_judge"]
