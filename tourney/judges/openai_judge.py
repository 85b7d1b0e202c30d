"""The ``openai`` judge: a seed reasoning judge behind any OpenAI-compatible chat endpoint.

``--judge openai:http://127.0.0.1:8000/v1 --judge-opt model=judge`` POSTs each match to
``{base}/chat/completions`` (a vLLM ``api_server``, SGLang, a hosted API). The server applies
the model's chat template; this judge sends the format's messages and reads the verdict back.

Options (besides the sampling options of :data:`tourney.judges.vllm_judge.SAMPLING_OPTIONS`)::

    model          the served model name (required)
    api_key_env    environment variable holding the API key (default OPENAI_API_KEY; unset
                   means no Authorization header). The key is read once, sent only in the
                   header, and never logged, stored in the spec, the identity or any result.
    n              most samples per request (default: all k samples of a match in one request;
                   1 for servers that ignore ``n``); each request gets ``seed`` + its first index
    timeout_s      seconds per HTTP request (default 600: reasoning outputs are long)
    retries        retries after the first attempt on 429/5xx/connection errors/timeouts/
                   malformed answers (default 3)
    backoff_s      first backoff in seconds; doubles per retry, with jitter x[0.5, 1.5),
                   capped at 60 s; a Retry-After header is honoured up to the same cap (default 1)
    concurrency    requests in flight at once (an asyncio.Semaphore; default 16)
    extra_body     a JSON object merged into every request body (e.g. ``{"top_k": 20}``)

Seeds, votes and requests
    As in the vllm judge: sample i of a match uses seed ``hash(prompt, texts, seed) + i``, and a
    match with k samples is one request with ``n = k`` and ``seed`` = the seed of its first
    sample (vLLM's server gives choice i seed ``seed + i``, so votes extend reproducibly).

Reasoning
    A server with a reasoning parser (vLLM ``--reasoning-parser deepseek_r1``) returns the
    thinking in ``message.reasoning`` (older vLLM: ``reasoning_content``) and the rest in
    ``message.content`` (``null`` when no ``</think>`` was generated); without one, the raw
    text is in ``content``. :meth:`JudgeFormat.parse` reads both shapes the same way.

Structured outputs
    ``structured=true`` sends vLLM's ``structured_outputs: {"regex": ...}`` body field with the
    format's whole-output verdict regex (thinking span, ``</think>``, verdict). Note: a vLLM
    server started with a reasoning parser applies structured outputs only AFTER ``</think>``
    unless it was also started with ``--structured-outputs-config '{"enable_in_reasoning": true}'``.

Token accounting
    From the response's ``usage``: an OpenAI-compatible server counts the prompt once per
    request, whatever ``n``. So the first sample of each request carries the request's
    ``prompt_tokens`` and ``prompt_tokens_details.cached_tokens`` (vLLM reports it with
    ``--enable-prompt-tokens-details``), the others 0; ``completion_tokens`` (reported only in
    total) is split over the samples in proportion to their text length. Sums equal the
    server's figures; ``extra["usage"]`` on the first sample holds the raw ``usage``.

Failures
    429, 5xx, 408, connection errors, timeouts, a non-JSON body, a body without the expected
    choices: retried with exponential backoff and jitter, then
    :class:`~tourney.errors.TransientJudgeError` (so the engine's scheduler may retry later).
    400, 401, 403, 404, 422 and other 4xx: a permanent :class:`~tourney.errors.JudgeError`
    carrying the server's message. A cancelled judge call cancels its HTTP request.

``httpx`` is imported when the judge is built, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from typing import Any, ClassVar, Mapping

from ..errors import JudgeError, MissingExtraError, SpecError, TransientJudgeError
from ..registry import Spec
from ..types import Judgement, Match
from .base import Judge
from .formats import JudgeFormat
from ._common import (
    SAMPLING_OPTIONS,
    SamplingSettings,
    build_judgement,
    match_seed,
    render_messages,
    request_id,
    resolve_format,
)

__all__ = ["OpenAIJudge"]

log = logging.getLogger(__name__)

_DEFAULTS: dict[str, Any] = {
    "api_key_env": "OPENAI_API_KEY",
    "n": None,
    "timeout_s": 600.0,
    "retries": 3,
    "backoff_s": 1.0,
    "concurrency": 16,
    "extra_body": None,
}
_MAX_BACKOFF_S = 60.0
_RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))


class _Retryable(Exception):
    """One failed attempt that a retry may fix; ``retry_after`` in seconds if the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise MissingExtraError("httpx", "openai", "the openai judge") from exc
    return httpx


class OpenAIJudge(Judge):
    """A seed reasoning judge behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``spec.arg`` is the base URL (``http://HOST:PORT/v1``). See the module docstring for the
    options, seeds, token accounting and failure handling. ``stats`` counts requests, retries
    and failures (for logs and tests).
    """

    name: ClassVar[str] = "openai"
    options: ClassVar[Mapping[str, str]] = {
        **SAMPLING_OPTIONS,
        "model": "served model name (required)",
        "api_key_env": "environment variable with the API key (default OPENAI_API_KEY)",
        "n": "most samples per request (default: all samples of a match in one request)",
        "timeout_s": "seconds per HTTP request (default 600)",
        "retries": "retries on 429/5xx/connection errors/timeouts (default 3)",
        "backoff_s": "first retry backoff in seconds, doubling, with jitter (default 1)",
        "concurrency": "requests in flight at once (default 16)",
        "extra_body": "JSON object merged into each request body",
    }

    def __init__(self, spec: Spec | None = None, **options: Any):
        if spec is None:
            base_url = options.pop("base_url", None)
            spec = Spec("openai", base_url, options)
        super().__init__(spec)
        if not spec.arg:
            raise SpecError("the openai judge needs a base URL: --judge openai:http://HOST:PORT/v1 (and model=NAME)")
        self.base_url = spec.arg.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise SpecError(f"the openai judge's base URL must start with http:// or https://, got {spec.arg!r}")
        opts = dict(spec.options)
        model = opts.pop("model", None)
        if not model:
            raise SpecError("the openai judge needs the served model name: option model=NAME (--judge-opt model=NAME)")
        self.model = str(model)
        self.format: JudgeFormat = resolve_format(self.model, opts, "openai")
        self.settings = SamplingSettings.from_options(self.format, opts, "openai")
        unknown = sorted(set(opts) - set(_DEFAULTS))
        if unknown:
            raise SpecError(
                f"unknown option(s) {', '.join(unknown)} for judge 'openai'; known: "
                f"{', '.join(sorted([*SAMPLING_OPTIONS, 'model', *_DEFAULTS]))}"
            )
        o = {**_DEFAULTS, **opts}
        self.api_key_env = str(o["api_key_env"])
        explicit_key_env = "api_key_env" in opts
        self._api_key = os.environ.get(self.api_key_env) or None
        if explicit_key_env and self._api_key is None:
            raise SpecError(f"the environment variable {self.api_key_env} (option api_key_env) is not set")
        self.n = _positive_int(o["n"], "n", allow_none=True)
        self.timeout_s = _positive_float(o["timeout_s"], "timeout_s")
        self.retries = _positive_int(o["retries"], "retries", allow_zero=True)
        self.backoff_s = float(o["backoff_s"])
        if self.backoff_s < 0:
            raise SpecError(f"backoff_s must be >= 0, got {self.backoff_s!r}")
        self.concurrency = _positive_int(o["concurrency"], "concurrency")
        extra_body = o["extra_body"]
        if isinstance(extra_body, str):
            try:
                extra_body = json.loads(extra_body)
            except ValueError:
                raise SpecError(f"extra_body must be a JSON object, got {extra_body!r}") from None
        if extra_body is not None and not isinstance(extra_body, dict):
            raise SpecError(f"extra_body must be a JSON object, got {extra_body!r}")
        self.extra_body: dict[str, Any] = dict(extra_body or {})
        self._httpx = _import_httpx()
        self._client: Any = None
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._rng = random.Random()  # jitter only: never affects a judgement
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "failures": 0}

    # -- HTTP ------------------------------------------------------------------------------
    def _get_client(self) -> Any:
        if self._client is None:
            headers = {"Content-Type": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._client = self._httpx.AsyncClient(
                timeout=self._httpx.Timeout(self.timeout_s),
                headers=headers,
                limits=self._httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def request_body(self, match: Match, n: int, seed: int) -> dict[str, Any]:
        """The JSON body of one request for ``n`` samples starting at ``seed``."""
        s = self.settings
        body: dict[str, Any] = {
            "model": self.model,
            "messages": render_messages(self.format, match),
            "n": n,
            "seed": seed,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.top_k is not None:
            body["top_k"] = s.top_k
        if s.structured:
            body["structured_outputs"] = {"regex": self.format.verdict_regex(s.max_thinking_chars)}
        body.update(self.extra_body)
        return body

    async def _post_once(self, body: dict[str, Any], rid: str) -> dict[str, Any]:
        httpx = self._httpx
        url = f"{self.base_url}/chat/completions"
        try:
            resp = await self._get_client().post(url, json=body, headers={"X-Request-Id": rid})
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timed out after {self.timeout_s:g} s ({type(exc).__name__}) at {url}") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if status in _RETRY_STATUS:
            raise _Retryable(f"HTTP {status} from {url}: {_server_message(resp)}", _retry_after(resp))
        if status >= 400:
            raise JudgeError(f"HTTP {status} from {url}: {_server_message(resp)}")
        try:
            data = resp.json()
        except ValueError:
            raise _Retryable(f"malformed response from {url} (not JSON): {resp.text[:200]!r}") from None
        if not isinstance(data, dict):
            raise _Retryable(f"malformed response from {url}: expected a JSON object, got {type(data).__name__}")
        return data

    async def _request(self, body: dict[str, Any], rid: str) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
        """POST with retries; returns (response, its choices sorted by index, latency of the
        successful attempt)."""
        last: _Retryable | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                delay = min(_MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + self._rng.random())
                if last is not None and last.retry_after is not None:
                    delay = min(_MAX_BACKOFF_S, max(delay, last.retry_after))
                log.info("openai judge: retry %d/%d of %s in %.2f s: %s", attempt, self.retries, rid, delay, last)
                await asyncio.sleep(delay)
            self.stats["requests"] += 1
            t0 = time.perf_counter()
            try:
                async with self._semaphore:
                    t0 = time.perf_counter()
                    data = await self._post_once(body, rid)
                choices = _choices(data, body["n"])
            except _Retryable as exc:
                last = exc
                continue
            except JudgeError:
                self.stats["failures"] += 1
                raise
            return data, choices, time.perf_counter() - t0
        self.stats["failures"] += 1
        raise TransientJudgeError(f"openai judge: {last} (gave up after {self.retries + 1} attempts)")

    # -- judging ---------------------------------------------------------------------------
    async def judge(self, match: Match) -> list[Judgement]:
        base = match_seed(match, self.settings.seed)
        per_request = self.n or match.samples
        calls = []
        for start in range(0, match.samples, per_request):
            k = min(per_request, match.samples - start)
            offset = match.sample_offset + start
            calls.append(self._judge_part(match, offset, k, base + offset))
        parts = await asyncio.gather(*calls)
        return [j for part in parts for j in part]

    async def _judge_part(self, match: Match, offset: int, n: int, seed: int) -> list[Judgement]:
        rid = request_id(match, "openai") + (f"-{offset}" if offset != match.sample_offset else "")
        body = self.request_body(match, n, seed)
        data, choices, latency = await self._request(body, rid)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
        cached_tokens = _int(details.get("cached_tokens"))
        completion = _split_total(_int(usage.get("completion_tokens")), [len(_text(c)) for c in choices])
        out = []
        for i, choice in enumerate(choices):
            msg = choice.get("message") or {}
            reasoning = msg.get("reasoning")
            if reasoning is None:
                reasoning = msg.get("reasoning_content")
            content = msg.get("content")
            extra: dict[str, Any] = {"request_id": rid, "seed": seed + i}
            if i == 0 and usage:
                extra["usage"] = usage
            out.append(
                build_judgement(
                    self.format,
                    sample=offset + i,
                    text=content if isinstance(content, str) else None,
                    reasoning=reasoning if isinstance(reasoning, str) else None,
                    finish_reason=choice.get("finish_reason"),
                    prompt_tokens=prompt_tokens if i == 0 else 0,
                    cached_tokens=cached_tokens if i == 0 else 0,
                    completion_tokens=completion[i],
                    latency_s=latency,
                    extra=extra,
                )
            )
        return out

    # -- identity ----------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        # no API key, no timeouts/retries/concurrency: they do not change what the judge says
        return {
            "name": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "format": self.format.name,
            "sampling": self.settings.to_dict(),
            "structured": self.settings.structured,
            "extra_body": dict(sorted(self.extra_body.items())),
        }

    def describe(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "identity": self.identity()}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"option {name} of judge 'openai' must be an integer, got {value!r}")
    try:
        v = int(value)
    except ValueError:
        raise SpecError(f"option {name} of judge 'openai' must be an integer, got {value!r}") from None
    if v < 0 or (v == 0 and not allow_zero) or v != float(value):
        raise SpecError(f"option {name} of judge 'openai' must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")
    return v


def _positive_float(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"option {name} of judge 'openai' must be a number, got {value!r}") from None
    if isinstance(value, bool) or not v > 0:
        raise SpecError(f"option {name} of judge 'openai' must be > 0, got {value!r}")
    return v


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _server_message(resp: Any) -> str:
    """The error message of an error response (OpenAI shape ``{"error": {"message"}}``, vLLM's
    ``{"message"}``, FastAPI's ``{"detail"}``), else the start of the body."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:500]
    text = (resp.text or "").strip()
    return text[:500] if text else (resp.reason_phrase or "no message")


def _retry_after(resp: Any) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _choices(data: dict[str, Any], n: int) -> list[dict[str, Any]]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else None
        raise _Retryable(
            "the server answered without choices" + (f": {message}" if message else f" (keys: {sorted(data)[:8]})")
        )
    if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
        raise _Retryable("malformed response: a choice without a message object")
    if len(choices) != n:
        raise _Retryable(f"the server returned {len(choices)} choices for n={n} (does it support n?)")
    return sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)


def _text(choice: dict[str, Any]) -> str:
    msg = choice.get("message") or {}
    return "".join(x for x in (msg.get("reasoning") or msg.get("reasoning_content"), msg.get("content")) if isinstance(x, str))


def _split_total(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainders)."""
    k = len(weights)
    if k == 0:
        return []
    w = [max(0, x) for x in weights]
    s = sum(w)
    if s == 0:
        w, s = [1] * k, k
    raw = [total * x / s for x in w]
    parts = [int(r) for r in raw]
    for i in sorted(range(k), key=lambda i: raw[i] - parts[i], reverse=True)[: total - sum(parts)]:
        parts[i] += 1
    return parts
