"""The ``openai`` judge: a seed reasoning judge behind any OpenAI-compatible chat endpoint.

``--judge openai:http://127.0.0.1:8000/v1 --judge-opt model=judge`` POSTs each match to
``{base}/chat/completions`` (a vLLM ``api_server``, SGLang, a hosted API). The server applies
the model's chat template; this judge sends the format's messages and reads the verdict back.

Options (besides the sampling options of :data:`tourney.judges.vllm_judge.SAMPLING_OPTIONS`)::

    model             the served model name (required)
    api_key_env       environment variable holding the API key (default OPENAI_API_KEY; unset
                      means no Authorization header). The key is read once, sent only in the
                      header, and never logged, stored in the spec, the identity or any result.
    n                 most samples per request (default: all k samples of a match in one
                      request; 1 for servers that ignore ``n``); each request gets ``seed`` + its
                      first index
    timeout_s         seconds per HTTP request (default 600: reasoning outputs are long);
                      connecting takes at most min(timeout_s, 30) of them
    concurrency       at most this many requests in flight (default: no cap of the judge's own:
                      the scheduler's ``--concurrency`` bounds what is in flight). Set lower than
                      the scheduler's, it is the real limit: :attr:`OpenAIJudge.max_inflight`
                      exposes it so the caller can say so.
    extra_body        a JSON object merged into every request body (e.g. ``{"top_k": 20}``)
    preflight         check the server before any work (default true; see below)
    breaker_failures  consecutive failed calls that stop the run (default 8; 0: never)
    breaker_s         ... or failed calls (2 or more in a row) spanning this many seconds
                      with no success between (default 60)

``retries`` and ``backoff_s`` are refused with a pointer to the scheduler's ``--retries`` and
``--backoff``: the scheduler is the single retry layer.

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

Failures: one attempt per call; the scheduler retries (see :mod:`tourney.scheduler`)
    429, 408, 5xx, connection errors, timeouts, a non-JSON body, a body without the expected
    choices: :class:`~tourney.errors.TransientJudgeError`, carrying the server's
    ``Retry-After`` (seconds or an HTTP date) as ``retry_after``. 400, 404, 422, other 4xx
    and 3xx: a permanent :class:`~tourney.errors.JudgeError` with the server's message.
    401/403 (the key is refused: no match can succeed): :class:`~tourney.errors.JudgeUnavailableError`,
    which stops the run. A cancelled judge call cancels its HTTP request.

Fail fast
    :meth:`OpenAIJudge.preflight` (the scheduler calls it once before any work) sends one
    ``GET {base}/models`` (timeout min(timeout_s, 30) s) and raises
    :class:`~tourney.errors.JudgeUnavailableError` when the server cannot be reached or does
    not answer (naming the URL), refuses the key (naming the key's environment variable),
    answers with something that is not an OpenAI model list, or does not serve ``model``
    (listing what it serves). A 429 passes (the server is up). ``preflight=false`` skips it,
    for servers without ``/models``. Mid-run, a circuit breaker counts calls that failed in
    a row (connection errors, timeouts, 408, 5xx, malformed bodies; a 429 neither counts
    nor resets; any answer the server gave on purpose resets): after ``breaker_failures`` of
    them, or 2 or more spanning ``breaker_s`` seconds, the judge raises
    :class:`~tourney.errors.JudgeUnavailableError` for that call and every later one, without
    sending more requests, instead of letting every match retry against a dead server.

Secrets
    The key is sent only in the ``Authorization`` header. Any text that comes back from the
    server (error bodies, the reason phrase, a response body that echoes it) is scrubbed of
    the key (and its JSON- and URL-escaped forms) before it reaches an exception, a judgement,
    the store or a log: it reads ``[REDACTED]``. A base URL with a credential in it
    (``http://user:KEY@host/v1``, ``?api_key=...``) is refused: the URL is recorded in every
    output line; the key belongs in the environment variable.

HTTP client
    ``aiohttp``, chosen by measurement (``benchmarks/bench_http_client.py``: at 256 requests in
    flight 0.16 ms of client CPU per request, 0.21 ms for the whole judge, against 3-6 ms for
    httpx, whose client then tops out near 200 requests/s per core). One session per
    event loop; its connection pool is sized to the in-flight limit (``concurrency``, else
    unlimited: connections follow the requests the scheduler has in flight, never aiohttp's
    default cap of 100). Proxies come from the ``*_proxy`` environment variables, read once.
    ``aiohttp`` is imported when the judge is built, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import JudgeError, JudgeUnavailableError, MissingExtraError, SpecError, TransientJudgeError
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

__all__ = ["OpenAIJudge"]

log = logging.getLogger(__name__)

_DEFAULTS: dict[str, Any] = {
    "api_key_env": "OPENAI_API_KEY",
    "n": None,
    "timeout_s": 600.0,
    "concurrency": None,
    "extra_body": None,
    "preflight": True,
    "breaker_failures": 8,
    "breaker_s": 60.0,
}
#: options the judge no longer takes: the scheduler is the single retry layer
_MOVED_TO_SCHEDULER = {"retries": "--retries N", "backoff_s": "--backoff SECONDS"}
_RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
_AUTH_STATUS = frozenset({401, 403})
#: seconds the preflight waits for ``GET /models``, and a connection may take (both at most timeout_s)
PREFLIGHT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
#: what replaces the API key in any text that came back from the server
REDACTED = "[REDACTED]"
#: a query parameter whose name contains one of these carries a credential: refused in a base URL
_CREDENTIAL_PARAMS = ("key", "token", "secret", "password", "passwd", "auth", "sig", "credential")


def _import_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:
        raise MissingExtraError("aiohttp", "openai", "the openai judge") from exc
    return aiohttp


class _Malformed(Exception):
    """A 200 answer whose body is not the chat completion asked for."""


class OpenAIJudge(Judge):
    """A seed reasoning judge behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``spec.arg`` is the base URL (``http://HOST:PORT/v1``). See the module docstring for the
    options, seeds, token accounting, failure handling, the preflight and the circuit breaker.

    ``max_inflight``: the judge's own cap on requests in flight (option ``concurrency``), or
    None when only the caller's concurrency bounds them. ``stats`` counts the HTTP requests
    sent and the calls that failed (for logs and tests).
    """

    name: ClassVar[str] = "openai"
    options: ClassVar[Mapping[str, str]] = {
        **SAMPLING_OPTIONS,
        **DEFENCE_OPTIONS,
        "model": "served model name (required)",
        "api_key_env": "environment variable with the API key (default OPENAI_API_KEY)",
        "n": "most samples per request (default: all samples of a match in one request)",
        "timeout_s": "seconds per HTTP request (default 600)",
        "concurrency": "cap on requests in flight (default: none of its own; --concurrency bounds them)",
        "extra_body": "JSON object merged into each request body",
        "preflight": "check the server and the model with GET /models before any work (default true)",
        "breaker_failures": "consecutive failed calls that stop the run (default 8; 0: never)",
        "breaker_s": "... or 2+ failed calls in a row spanning this many seconds (default 60)",
    }

    def __init__(self, spec: Spec | None = None, **options: Any):
        if spec is None:
            base_url = options.pop("base_url", None)
            spec = Spec("openai", base_url, options)
        super().__init__(spec)
        if not spec.arg:
            raise SpecError("the openai judge needs a base URL: --judge openai:http://HOST:PORT/v1 (and model=NAME)")
        self._parts = _parse_base_url(spec.arg)
        self.base_url = spec.arg.rstrip("/")
        opts = dict(spec.options)
        model = opts.pop("model", None)
        if not model:
            raise SpecError("the openai judge needs the served model name: option model=NAME (--judge-opt model=NAME)")
        self.model = str(model)
        self.format: JudgeFormat = resolve_format(self.model, opts, "openai")
        self.settings = SamplingSettings.from_options(self.format, opts, "openai")
        self.defences = Defences.from_options(opts, "openai")
        moved = sorted(set(opts) & set(_MOVED_TO_SCHEDULER))
        if moved:
            raise SpecError(
                f"option(s) {', '.join(moved)} of judge 'openai' are gone: the scheduler is the only retry layer "
                f"(judges make one attempt per call); use tourney rank "
                f"{' '.join(_MOVED_TO_SCHEDULER[m] for m in moved)} (Scheduler(retries=, backoff_s=) in Python)"
            )
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
        # the forms the key may take in a server's text, longest first (a form may contain another)
        self._secrets: tuple[str, ...] = _secret_forms(self._api_key)
        self.n = _positive_int(o["n"], "n", allow_none=True)
        self.timeout_s = _positive_float(o["timeout_s"], "timeout_s")
        #: the judge's own cap on requests in flight, or None (the caller's concurrency bounds them)
        self.max_inflight: int | None = _positive_int(o["concurrency"], "concurrency", allow_none=True)
        self.check_server = _bool(o["preflight"], "preflight")
        self.breaker_failures = _positive_int(o["breaker_failures"], "breaker_failures", allow_zero=True)
        self.breaker_s = _positive_float(o["breaker_s"], "breaker_s")
        extra_body = o["extra_body"]
        if isinstance(extra_body, str):
            try:
                extra_body = json.loads(extra_body)
            except ValueError:
                raise SpecError(f"extra_body must be a JSON object, got {extra_body!r}") from None
        if extra_body is not None and not isinstance(extra_body, dict):
            raise SpecError(f"extra_body must be a JSON object, got {extra_body!r}")
        self.extra_body: dict[str, Any] = dict(extra_body or {})
        self._aiohttp = _import_aiohttp()
        self._proxy = _env_proxy(self._parts)
        self._chat_url = self._url("chat/completions")
        self._session: Any = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Semaphore | None = None
        self._preflight_ok = False
        # the circuit breaker: failed calls in a row, when the first of them ended, and the
        # fatal error once it tripped
        self._streak = 0
        self._streak_since = 0.0
        self._unavailable: JudgeUnavailableError | None = None
        self.stats: dict[str, int] = {"requests": 0, "failures": 0}

    # -- HTTP ------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        """``{base}/{path}``, keeping the base URL's query (e.g. ``?api-version=``)."""
        p = self._parts
        return urllib.parse.urlunsplit((p.scheme, p.netloc, p.path.rstrip("/") + "/" + path, p.query, ""))

    def _http(self) -> Any:
        """The aiohttp session of the running event loop (made on first use in each loop)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop or self._session.closed:
            aiohttp = self._aiohttp
            headers = {"Content-Type": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._session = aiohttp.ClientSession(
                # 0 = unlimited: the pool follows what is in flight (aiohttp's default is 100)
                connector=aiohttp.TCPConnector(limit=self.max_inflight or 0, limit_per_host=0),
                headers=headers,
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout_s, sock_connect=min(self.timeout_s, CONNECT_TIMEOUT_S)
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._session_loop = loop
            self._gate = asyncio.Semaphore(self.max_inflight) if self.max_inflight else None
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def request_body(self, match: Match, n: int, seed: int) -> dict[str, Any]:
        """The JSON body of one request for ``n`` samples starting at ``seed``."""
        s = self.settings
        body: dict[str, Any] = {
            "model": self.model,
            "messages": render_messages(self.format, match, neutralise=self.defences.neutralise),
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

    def _scrub(self, text: str) -> str:
        """``text`` with every form of the API key replaced by ``[REDACTED]``."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _redact(self, value: Any) -> Any:
        """A parsed JSON value with the key scrubbed from every string in it."""
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, dict):
            return {self._scrub(k): self._redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact(v) for v in value]
        return value

    def _ok(self) -> None:
        """The server answered on purpose: the breaker's streak ends."""
        self._streak = 0

    def _failed(self, message: str, retry_after: float | None = None, counts: bool = True) -> JudgeError:
        """The exception for a call that failed in a way a retry may fix: a
        :class:`TransientJudgeError`, or, once the breaker trips, the fatal
        :class:`JudgeUnavailableError` (raised by this and every later call)."""
        self.stats["failures"] += 1
        if self._unavailable is not None:
            return self._unavailable
        if counts and self.breaker_failures:
            now = time.monotonic()
            if self._streak == 0:
                self._streak_since = now
            self._streak += 1
            span = now - self._streak_since
            if self._streak >= self.breaker_failures or (self._streak >= 2 and span >= self.breaker_s):
                self._unavailable = JudgeUnavailableError(
                    f"openai judge: the server at {self._display_base()} stopped answering: {self._streak} calls "
                    f"in a row failed over {span:.1f} s (the last: {message}); stopping rather than retrying "
                    f"every match (breaker_failures={self.breaker_failures}, breaker_s={self.breaker_s:g})"
                )
                log.error("%s", self._unavailable)
                return self._unavailable
        return TransientJudgeError(f"openai judge: {message}", retry_after=retry_after)

    def _display_base(self) -> str:
        return urllib.parse.urlunsplit(self._parts._replace(fragment=""))

    def _auth_message(self, url: str, status: int, message: str) -> str:
        if self._api_key:
            hint = (
                f"check the key in the environment variable {self.api_key_env} "
                "(--judge-opt api_key_env=NAME reads another variable)"
            )
        else:
            hint = (
                f"no key was sent: set it in the environment variable {self.api_key_env} "
                "(or name another variable with --judge-opt api_key_env=NAME)"
            )
        return f"openai judge: the server at {url} refused the request (HTTP {status}: {message}); {hint}"

    async def _post(self, body: dict[str, Any], rid: str) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
        """One POST of ``body``; returns (response, its choices sorted by index, latency)."""
        if self._unavailable is not None:
            raise self._unavailable
        aiohttp = self._aiohttp
        session = self._http()
        url = self._chat_url
        payload = json.dumps(body).encode()
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        try:
            self.stats["requests"] += 1
            t0 = time.perf_counter()
            try:
                async with session.post(
                    url, data=payload, headers={"X-Request-Id": rid}, proxy=self._proxy, allow_redirects=False
                ) as resp:
                    raw = await resp.read()
                    status, reason = resp.status, resp.reason
                    retry_after = resp.headers.get("Retry-After")
            except TimeoutError as exc:  # aiohttp's timeouts (asyncio.TimeoutError is this builtin from 3.11 on)
                if isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ())):
                    msg = f"could not connect to {url} within {min(self.timeout_s, CONNECT_TIMEOUT_S):g} s"
                else:
                    msg = f"no answer from {url} within {self.timeout_s:g} s (option timeout_s)"
                raise self._failed(msg) from None
            except aiohttp.ClientError as exc:
                raise self._failed(f"cannot reach {url}: {type(exc).__name__}: {self._scrub(str(exc))}") from None
            latency = time.perf_counter() - t0
        finally:
            if gate is not None:
                gate.release()
        if status != 200:
            message = _server_message(self._scrub(raw.decode("utf-8", "replace")), self._scrub(reason or ""))
            if status in _AUTH_STATUS:
                self._unavailable = JudgeUnavailableError(self._auth_message(url, status, message))
                raise self._unavailable
            if status in _RETRY_STATUS:
                # a 429 is the server pacing us on purpose: neither a failure nor a success
                raise self._failed(
                    f"HTTP {status} from {url}: {message}", _retry_after(retry_after), counts=status != 429
                )
            self._ok()
            redirect = " (redirects are not followed: give the final URL)" if 300 <= status < 400 else ""
            raise JudgeError(f"openai judge: HTTP {status} from {url}: {message}{redirect}")
        try:
            try:
                data = json.loads(raw)
            except ValueError:
                raise _Malformed(f"not JSON: {self._scrub(raw.decode('utf-8', 'replace'))[:200]!r}") from None
            if not isinstance(data, dict):
                raise _Malformed(f"expected a JSON object, got {type(data).__name__}")
            if self._secrets and any(s in raw.decode("utf-8", "replace") for s in self._secrets):
                data = self._redact(data)
            choices = _choices(data, body["n"])
        except _Malformed as exc:
            raise self._failed(f"malformed response from {url} (HTTP 200): {exc}") from None
        self._ok()
        return data, choices, latency

    async def preflight(self) -> None:
        """One ``GET {base}/models`` before any work: raises :class:`JudgeUnavailableError`
        with what to fix when the server is down, refuses the key, is not an OpenAI-compatible
        API or does not serve ``model``. Runs once per judge; ``preflight=false`` skips it."""
        if not self.check_server or self._preflight_ok:
            return
        aiohttp = self._aiohttp
        url = self._url("models")
        timeout = min(self.timeout_s, PREFLIGHT_TIMEOUT_S)
        where = "--judge openai:URL"
        try:
            async with self._http().get(
                url, timeout=aiohttp.ClientTimeout(total=timeout), proxy=self._proxy, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                status, reason = resp.status, resp.reason
        except TimeoutError:
            raise JudgeUnavailableError(
                f"openai judge: the server at {url} did not answer within {timeout:g} s (the preflight "
                f"GET /models); is it up and healthy, and is {where} right?"
            ) from None
        except aiohttp.ClientError as exc:
            raise JudgeUnavailableError(
                f"openai judge: cannot reach the server at {url} ({type(exc).__name__}: {self._scrub(str(exc))}); "
                f"is it running, and is {where} right?"
            ) from None
        text = self._scrub(raw.decode("utf-8", "replace"))
        if status in _AUTH_STATUS:
            raise JudgeUnavailableError(
                self._auth_message(url, status, _server_message(text, self._scrub(reason or "")))
            )
        if status == 429:
            log.warning("openai judge: the server at %s is rate-limiting (HTTP 429); the model was not checked", url)
            self._preflight_ok = True
            return
        if status != 200:
            fix = (
                "is the base URL right (it usually ends in /v1)?" if status in (404, 405) else "is the server healthy?"
            )
            raise JudgeUnavailableError(
                f"openai judge: the server at {url} answered the preflight GET /models with HTTP {status} "
                f"({_server_message(text, self._scrub(reason or ''))}); {fix} (preflight=false skips this check)"
            )
        models = _model_ids(text)
        if models is None:
            raise JudgeUnavailableError(
                f"openai judge: the server at {url} answered the preflight GET /models with something that is not "
                f"an OpenAI model list ({text.strip()[:200]!r}); is {where} an OpenAI-compatible API "
                "(the base URL usually ends in /v1)?"
            )
        if self.model not in models:
            served = ", ".join(repr(m) for m in models[:20]) + (", ..." if len(models) > 20 else "")
            raise JudgeUnavailableError(
                f"openai judge: the server at {self._display_base()} does not serve the model {self.model!r} "
                f"(--model / option model); it serves: {served or 'no models'}"
            )
        self._preflight_ok = True

    # -- judging ---------------------------------------------------------------------------
    async def judge(self, match: Match) -> list[Judgement]:
        base = match_seed(match, self.settings.seed)
        per_request = self.n or match.samples
        calls = []
        for start in range(0, match.samples, per_request):
            k = min(per_request, match.samples - start)
            offset = match.sample_offset + start
            calls.append(self._judge_part(match, offset, k, base + offset))
        if len(calls) == 1:
            return await calls[0]
        parts = await asyncio.gather(*calls)
        return [j for part in parts for j in part]

    async def _judge_part(self, match: Match, offset: int, n: int, seed: int) -> list[Judgement]:
        rid = request_id(match, "openai") + (f"-{offset}" if offset != match.sample_offset else "")
        body = self.request_body(match, n, seed)
        data, choices, latency = await self._post(body, rid)
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        prompt_tokens = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        if not isinstance(details, dict):
            details = {}
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
                    candidates=self.defences.candidates(match),
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
        # no API key, no timeouts/concurrency/preflight/breaker: they do not change what the judge says
        return {
            "name": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "format": self.format.name,
            "sampling": self.settings.to_dict(),
            "structured": self.settings.structured,
            "extra_body": dict(sorted(self.extra_body.items())),
        }

    def match_identity(self, match: Match) -> dict[str, Any]:
        # the candidate defences change this match's prompt or parse only when a response holds
        # one of the format's control strings: then, and only then, its store key differs
        return self.defences.match_identity(self.format, match)

    def describe(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "identity": self.identity(), "defences": self.defences.to_dict()}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> Any:
    if value is None and allow_none:
        return None
    what = "a non-negative integer" if allow_zero else "a positive integer"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"option {name} of judge 'openai' must be {what}, got {value!r}")
    try:
        v = int(value)
        exact = v == float(value)
    except (ValueError, OverflowError):
        raise SpecError(f"option {name} of judge 'openai' must be {what}, got {value!r}") from None
    if v < 0 or (v == 0 and not allow_zero) or not exact:
        raise SpecError(f"option {name} of judge 'openai' must be {what}, got {value!r}")
    return v


def _positive_float(value: Any, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"option {name} of judge 'openai' must be a number > 0 (seconds), got {value!r}") from None
    if not 0 < v < float("inf"):
        raise SpecError(f"option {name} of judge 'openai' must be a number > 0 (seconds), got {value!r}")
    return v


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"option {name} of judge 'openai' must be true or false, got {value!r}")
    return value


def _parse_base_url(arg: str) -> urllib.parse.SplitResult:
    """The base URL, split; refuses one that carries a credential (it would be recorded in
    every output line) or is not an http(s) URL with a host. Messages never echo a credential."""
    try:
        parts = urllib.parse.urlsplit(arg)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise SpecError(
            f"the openai judge's base URL is not a valid URL ({exc}); expected http://HOST:PORT/v1"
        ) from None
    hint = (
        "the URL is recorded in every output line and in the run's metadata: put the key in an environment "
        "variable instead (export OPENAI_API_KEY=..., or --judge-opt api_key_env=NAME) and remove it from the URL"
    )
    if parts.username is not None or parts.password is not None:
        safe = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname or "", query="", fragment=""))
        raise SpecError(f"the openai judge's base URL carries credentials (user:password@ in {safe!r}): {hint}")
    for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if any(word in name.lower() for word in _CREDENTIAL_PARAMS):
            safe = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
            raise SpecError(
                f"the openai judge's base URL carries a credential (the query parameter {name!r} in {safe}?...): {hint}"
            )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"the openai judge's base URL must start with http:// or https:// and name a host, got {arg!r}")
    return parts


def _secret_forms(key: str | None) -> tuple[str, ...]:
    """The forms ``key`` may take in a server's text: as is, JSON-escaped, URL-quoted;
    longest first, so a form containing another is replaced whole."""
    if not key:
        return ()
    forms = {
        key,
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=False)[1:-1],
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key),
    }
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def _env_proxy(parts: urllib.parse.SplitResult) -> str | None:
    """The proxy the ``*_proxy`` environment variables name for this URL (as httpx and
    curl read them), once: aiohttp's own ``trust_env`` would look them up on every request."""
    import urllib.request

    host = parts.hostname or ""
    # proxy_bypass_environment is in CPython's urllib.request but not in typeshed's stub of it
    if urllib.request.proxy_bypass_environment(host, urllib.request.getproxies_environment()):  # type: ignore[attr-defined]
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all") or None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _server_message(text: str, reason: str) -> str:
    """The error message of an error response body (OpenAI shape ``{"error": {"message"}}``,
    vLLM's ``{"message"}``, FastAPI's ``{"detail"}``), else the start of the body, else the
    reason phrase. ``text`` and ``reason`` are already scrubbed of the key."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:500]
    text = text.strip()
    return text[:500] if text else (reason or "no message")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date), or None."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _model_ids(text: str) -> list[str] | None:
    """The model ids of an OpenAI model list (``{"data": [{"id": ...}, ...]}``), or None when
    ``text`` is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in items):
        return None
    return [m["id"] for m in items]


def _choices(data: dict[str, Any], n: int) -> list[dict[str, Any]]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else None
        raise _Malformed(
            "the server answered without choices" + (f": {message}" if message else f" (keys: {sorted(data)[:8]})")
        )
    if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
        raise _Malformed("a choice without a message object")
    if len(choices) != n:
        raise _Malformed(f"the server returned {len(choices)} choices for n={n} (does it support n?)")
    return sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)


def _text(choice: dict[str, Any]) -> str:
    msg = choice.get("message") or {}
    return "".join(
        x for x in (msg.get("reasoning") or msg.get("reasoning_content"), msg.get("content")) if isinstance(x, str)
    )


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
