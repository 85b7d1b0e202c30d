"""The openai judge: request shape, seeds, token accounting and every failure mode against a
scripted local HTTP server (needs only httpx), and end to end against a real vLLM
OpenAI-compatible server on the tiny model (``@pytest.mark.vllm``)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

try:
    from tests.conftest import require
except ImportError:  # tests/ not a package
    from conftest import require  # type: ignore[no-redef]

require("httpx", "the openai judge's HTTP client (the openai and test extras)")

from tourney.errors import JudgeError, SpecError, TransientJudgeError  # noqa: E402
from tourney.judges.formats import get_format  # noqa: E402
from tourney.judges.openai_judge import OpenAIJudge  # noqa: E402
from tourney.judges.vllm_judge import match_seed  # noqa: E402
from tourney.registry import Spec  # noqa: E402
from tourney.types import Match, Outcome, TokenUsage  # noqa: E402

try:
    from tests.vllm_fixtures import free_port, tiny_model_dir, vllm_server  # noqa: F401  (fixtures)
except ImportError:  # tests/ not a package
    from vllm_fixtures import free_port, tiny_model_dir, vllm_server  # type: ignore[no-redef]  # noqa: F401

SECRET = "sk-test-secret-4f1c9a"
#: a hanging scenario outlives the judge's timeout by this factor
HANG_S = 3.0
FAST = {"retries": 2, "backoff_s": 0.01, "timeout_s": 5}

MATCH = Match(prompt="What is 2+2?", first_text="4", second_text="5", prompt_id="p", first=0, second=1)


# ---------------------------------------------------------------------------------------------
# A scripted OpenAI-compatible server: the first path segment picks the behaviour
# ---------------------------------------------------------------------------------------------


class Script:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0


def _ok_body(req: dict[str, Any], style: str = "reasoning") -> dict[str, Any]:
    n = req.get("n", 1)
    choices = []
    for i in range(n):
        verdict = "\\boxed{Assistant 1}" if (req.get("seed", 0) + i) % 2 == 0 else "\\boxed{Assistant 2}"
        thinking = f"thinking of sample {i} " * (i + 1)
        if style == "reasoning":
            msg = {"role": "assistant", "reasoning": thinking, "content": "\n\n" + verdict}
        elif style == "reasoning_content":
            msg = {"role": "assistant", "reasoning_content": thinking, "content": verdict}
        else:  # no reasoning parser: raw text
            msg = {"role": "assistant", "content": f"{thinking}</think>\n{verdict}"}
        choices.append({"index": i, "message": msg, "finish_reason": "length" if style == "length" else "stop"})
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "choices": list(reversed(choices)),  # any order: the judge sorts by index
        "usage": {"prompt_tokens": 100, "completion_tokens": 30 * n, "total_tokens": 100 + 30 * n,
                  "prompt_tokens_details": {"cached_tokens": 64}},
    }


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_POST(self) -> None:  # noqa: N802
            scenario = self.path.strip("/").split("/")[0]
            length = int(self.headers.get("Content-Length", 0))
            req = json.loads(self.rfile.read(length) or b"{}")
            with script.lock:
                call = script.calls.get(scenario, 0)
                script.calls[scenario] = call + 1
                script.bodies.append(req)
                script.headers.append({k.lower(): v for k, v in self.headers.items()})
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
            try:
                self._respond(scenario, call, req)
            finally:
                with script.lock:
                    script.in_flight -= 1

        def _respond(self, scenario: str, call: int, req: dict[str, Any]) -> None:
            if scenario in ("ok", "raw", "reasoning_content", "length"):
                self._send(200, _ok_body(req, {"ok": "reasoning"}.get(scenario, scenario)))
            elif scenario == "slow":
                time.sleep(0.2)
                self._send(200, _ok_body(req))
            elif scenario == "401":
                self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            elif scenario == "404":
                self._send(404, {"error": {"message": "The model `judge` does not exist.", "code": 404}})
            elif scenario == "400":
                self._send(400, {"message": "This model's maximum context length is 2048 tokens"})
            elif scenario == "429then200":
                if call == 0:
                    self._send(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"})
                else:
                    self._send(200, _ok_body(req))
            elif scenario == "500":
                self._send(500, {"error": {"message": "internal boom"}})
            elif scenario == "503then200":
                self._send(503, b"Service Unavailable") if call < 2 else self._send(200, _ok_body(req))
            elif scenario == "nochoices":
                self._send(200, {"id": "x", "object": "chat.completion", "choices": [], "usage": {}})
            elif scenario == "fewchoices":
                body = _ok_body(req)
                body["choices"] = body["choices"][:1]
                self._send(200, body)
            elif scenario == "malformed":
                self._send(200, b'{"id": "x", "choices": [')
            elif scenario == "hang":
                time.sleep(HANG_S)
                self._send(200, _ok_body(req))
            else:
                self._send(418, {"error": {"message": f"unknown scenario {scenario}"}})

    return Handler


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[str, Script]]:
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def _judge(base: str, scenario: str, **options: Any) -> OpenAIJudge:
    opts = {"model": "judge", "format": "rrm", **FAST, **options}
    return OpenAIJudge(Spec("openai", f"{base}/{scenario}/v1", opts))


def _run(judge: OpenAIJudge, *matches: Match) -> list[Any]:
    async def go() -> list[Any]:
        try:
            return await judge.judge_batch(list(matches))
        finally:
            await judge.aclose()

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


def test_options_are_validated():
    with pytest.raises(SpecError, match="model=NAME"):
        OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"format": "rrm"}))
    with pytest.raises(SpecError, match="base URL"):
        OpenAIJudge(Spec("openai", None, {"model": "judge", "format": "rrm"}))
    with pytest.raises(SpecError, match="format="):
        OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"model": "judge"}))
    with pytest.raises(SpecError, match="unknown option"):
        OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"model": "judge", "format": "rrm", "tempreature": 1}))
    with pytest.raises(SpecError, match="concurrency"):
        OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"model": "judge", "format": "rrm", "concurrency": 0}))
    with pytest.raises(SpecError, match="NO_SUCH_KEY_VAR"):
        OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"model": "judge", "format": "rrm", "api_key_env": "NO_SUCH_KEY_VAR"}))
    # the format follows from a seed model's name
    assert OpenAIJudge(Spec("openai", "http://h/v1", {"model": "Reward-Reasoning/RRM-32B"})).format.name == "rrm"


def test_missing_httpx_names_the_extra(monkeypatch):
    from tourney.errors import MissingExtraError

    monkeypatch.setitem(__import__("sys").modules, "httpx", None)  # import httpx -> ImportError
    with pytest.raises(MissingExtraError, match=r"tourney-rank\[openai\]"):
        OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"model": "judge", "format": "rrm"}))


def test_build_judge_by_name():
    from tourney.judges.base import build_judge

    j = build_judge("openai:http://127.0.0.1:8000/v1", {"model": "judge", "format": "rm_r1"})
    assert isinstance(j, OpenAIJudge) and j.base_url == "http://127.0.0.1:8000/v1"
    assert j.settings.temperature == get_format("rm_r1").temperature and j.settings.max_tokens == 8192


# ---------------------------------------------------------------------------------------------
# Requests, seeds, reasoning and token accounting
# ---------------------------------------------------------------------------------------------


def test_one_request_with_n_and_seed_reads_the_reasoning(fake_server, monkeypatch):
    base, script = fake_server
    monkeypatch.setenv("TOURNEY_TEST_KEY", SECRET)
    judge = _judge(base, "ok", api_key_env="TOURNEY_TEST_KEY", seed=5, temperature=0.3, top_k=20)
    m = Match(prompt="What is 2+2?", first_text="4", second_text="5", samples=3, sample_offset=2)
    before = len(script.bodies)
    (res,) = _run(judge, m)
    assert len(script.bodies) == before + 1  # one request for the three samples
    body, headers = script.bodies[-1], script.headers[-1]
    assert body["n"] == 3 and body["seed"] == match_seed(m, 5) + 2
    assert body["model"] == "judge" and body["max_tokens"] == 8192 and body["temperature"] == 0.3
    assert body["top_k"] == 20 and body["top_p"] == get_format("rrm").top_p
    assert body["messages"] == get_format("rrm").messages(m.prompt, m.first_text, m.second_text)
    assert "structured_outputs" not in body
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert [j.sample for j in res] == [2, 3, 4]
    assert [j.extra["seed"] for j in res] == [body["seed"] + i for i in range(3)]
    for i, j in enumerate(res):
        assert j.outcome is (Outcome.A if (body["seed"] + i) % 2 == 0 else Outcome.B)
        assert j.reasoning == (f"thinking of sample {i} " * (i + 1)).strip()  # message.reasoning
        assert j.verdict.endswith("}")
        assert j.latency_s > 0
    # usage: the prompt counted once per request, completion split, sums as the server said
    assert TokenUsage.of(res) == TokenUsage(prompt=100, cached=64, completion=90)
    assert [j.prompt_tokens for j in res] == [100, 0, 0]
    assert res[0].extra["usage"]["prompt_tokens"] == 100


@pytest.mark.parametrize("scenario", ["reasoning_content", "raw"])
def test_older_reasoning_field_and_unsplit_output(fake_server, scenario):
    base, _ = fake_server
    m = Match(prompt="q", first_text="a", second_text="b", samples=2)
    (res,) = _run(_judge(base, scenario), m)
    s = match_seed(m, 0)
    assert [j.outcome for j in res] == [Outcome.A if (s + i) % 2 == 0 else Outcome.B for i in range(2)]
    assert res[0].reasoning == "thinking of sample 0"
    assert res[1].reasoning == "thinking of sample 1 thinking of sample 1"


def test_truncated_sample_abstains(fake_server):
    base, _ = fake_server
    (res,) = _run(_judge(base, "length"), MATCH)
    assert res[0].outcome is Outcome.ABSTAIN and "finish_reason=length" in res[0].extra["reason"]


def test_n_option_splits_a_vote_into_requests_with_consecutive_seeds(fake_server):
    base, script = fake_server
    m = Match(prompt="q", first_text="a", second_text="b", samples=5)
    before = len(script.bodies)
    (res,) = _run(_judge(base, "ok", n=2), m)
    bodies = script.bodies[before:]
    s = match_seed(m, 0)
    assert sorted((b["n"], b["seed"]) for b in bodies) == [(1, s + 4), (2, s), (2, s + 2)]
    assert [j.sample for j in res] == [0, 1, 2, 3, 4]
    assert [j.extra["seed"] for j in res] == [s + i for i in range(5)]


def test_structured_sends_the_verdict_regex(fake_server):
    base, script = fake_server
    _run(_judge(base, "ok", structured=True, max_thinking_chars=16), MATCH)
    assert script.bodies[-1]["structured_outputs"] == {"regex": get_format("rrm").verdict_regex(16)}


def test_concurrency_limit(fake_server):
    base, script = fake_server
    script.max_in_flight = 0
    matches = [Match(prompt=f"q{i}", first_text="a", second_text="b") for i in range(6)]
    results = _run(_judge(base, "slow", concurrency=2), *matches)
    assert all(isinstance(r, list) for r in results)
    assert script.max_in_flight == 2


def test_the_key_is_never_stored_or_logged(fake_server, monkeypatch, caplog):
    base, _ = fake_server
    monkeypatch.setenv("TOURNEY_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    for scenario in ("ok", "401", "500"):
        judge = _judge(base, scenario, api_key_env="TOURNEY_TEST_KEY")
        results = _run(judge, MATCH)
        visible = [str(judge.spec), json.dumps(judge.identity()), json.dumps(judge.describe(), default=str), repr(results)]
        assert not any(SECRET in v for v in visible)
    assert SECRET not in caplog.text


# ---------------------------------------------------------------------------------------------
# Faults: each is retried (when a retry can help) and ends in a clear error
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario, message",
    [
        ("401", "HTTP 401.*Incorrect API key provided"),
        ("404", "HTTP 404.*does not exist"),
        ("400", "HTTP 400.*maximum context length"),
    ],
)
def test_client_errors_are_permanent_and_not_retried(fake_server, scenario, message):
    base, script = fake_server
    calls = script.calls.get(scenario, 0)
    judge = _judge(base, scenario)
    (res,) = _run(judge, MATCH)
    assert isinstance(res, JudgeError) and not isinstance(res, TransientJudgeError)
    assert __import__("re").search(message, str(res)), str(res)
    assert script.calls[scenario] == calls + 1 and judge.stats["retries"] == 0


@pytest.mark.parametrize("scenario, retries_needed", [("429then200", 1), ("503then200", 2)])
def test_rate_limits_and_unavailability_are_retried_then_succeed(fake_server, scenario, retries_needed):
    base, script = fake_server
    judge = _judge(base, scenario)
    (res,) = _run(judge, MATCH)
    assert isinstance(res, list) and res[0].outcome in (Outcome.A, Outcome.B)
    assert judge.stats["retries"] == retries_needed


@pytest.mark.parametrize(
    "scenario, message",
    [
        ("500", "HTTP 500.*internal boom"),
        ("nochoices", "without choices"),
        ("fewchoices", "returned 1 choices for n=2"),
        ("malformed", "not JSON"),
        ("hang", "timed out after 0.3 s"),
    ],
)
def test_server_faults_are_retried_then_reported(fake_server, scenario, message):
    base, script = fake_server
    calls = script.calls.get(scenario, 0)
    judge = _judge(base, scenario, timeout_s=0.3)
    t0 = time.perf_counter()
    (res,) = _run(judge, Match(prompt="q", first_text="a", second_text="b", samples=2))
    assert isinstance(res, TransientJudgeError), res
    assert __import__("re").search(message, str(res)), str(res)
    assert "gave up after 3 attempts" in str(res)
    assert script.calls[scenario] == calls + 3 and judge.stats["retries"] == 2
    assert time.perf_counter() - t0 < 3 * HANG_S


def test_unreachable_server(fake_server):
    judge = OpenAIJudge(Spec("openai", f"http://127.0.0.1:{free_port()}/v1", {"model": "judge", "format": "rrm", **FAST}))
    (res,) = _run(judge, MATCH)
    assert isinstance(res, TransientJudgeError) and "cannot reach" in str(res)
    assert judge.stats == {"requests": 3, "retries": 2, "failures": 1}


# ---------------------------------------------------------------------------------------------
# A real vLLM server (tiny model, --reasoning-parser deepseek_r1)
# ---------------------------------------------------------------------------------------------


def _real_judge(server: Any, **options: Any) -> OpenAIJudge:
    opts = {"model": server.served_name, "format": "rrm", "max_tokens": 64, "seed": 3,
            "retries": 2, "backoff_s": 0.2, "timeout_s": 60, **options}
    return OpenAIJudge(Spec("openai", server.base_url, opts))


@pytest.mark.vllm
def test_real_server_reasoning_field_and_usage(vllm_server):
    import httpx

    judge = _real_judge(vllm_server)
    m = Match(prompt="What is the capital of France?", first_text="Paris.", second_text="Lyon.", samples=3)
    (res,) = _run(judge, m)
    assert isinstance(res, list) and [j.sample for j in res] == [0, 1, 2]
    # the same request straight to the server: the judge's reasoning IS message.reasoning
    body = judge.request_body(m, 3, match_seed(m, 3))
    raw = httpx.post(f"{vllm_server.base_url}/chat/completions", json=body, timeout=60).json()
    for j, choice in zip(res, sorted(raw["choices"], key=lambda c: c["index"])):
        assert choice["message"]["reasoning"]  # the server split the thinking off
        assert j.reasoning == choice["message"]["reasoning"].strip()
        assert j.outcome in (Outcome.A, Outcome.B, Outcome.ABSTAIN)
    usage = TokenUsage.of(res)
    assert usage.prompt == raw["usage"]["prompt_tokens"] > 0
    assert usage.completion == raw["usage"]["completion_tokens"] > 0
    assert raw["usage"]["prompt_tokens_details"]["cached_tokens"] > 0  # the 2nd time: prefix cached


@pytest.mark.vllm
def test_real_server_structured_votes_extend_reproducibly(vllm_server):
    judge = _real_judge(vllm_server, structured=True, max_tokens=128)
    m = Match(prompt="How many legs does a spider have?", first_text="Eight.", second_text="Six.", samples=4)
    ext = Match(prompt=m.prompt, first_text=m.first_text, second_text=m.second_text, samples=2, sample_offset=2)
    res, res_ext = _run(judge, m, ext)
    assert all(j.outcome in (Outcome.A, Outcome.B) for j in res + res_ext), [j.extra for j in res]
    assert all(j.reasoning and j.verdict in ("\\boxed{Assistant 1}", "\\boxed{Assistant 2}") for j in res)
    # sample i uses seed s+i on the server too: samples 2, 3 drawn again, alone
    assert [(j.sample, j.reasoning, j.verdict) for j in res_ext] == [(j.sample, j.reasoning, j.verdict) for j in res[2:]]


@pytest.mark.vllm
def test_zz_real_server_stopped_mid_run(vllm_server):
    """The server goes away while a batch runs: the matches judged before keep their
    judgements, the ones sent after become TransientJudgeErrors after retries, and the one in
    flight during the stop may go either way. Runs last (it stops the session's server)."""
    judge = _real_judge(vllm_server, structured=True, concurrency=1, retries=2, backoff_s=0.2)
    matches = [Match(prompt=f"Question {i}?", first_text=f"answer {i}", second_text=f"reply {i}", samples=2)
               for i in range(10)]
    judged_before, in_flight = 3, 3  # matches 0-2 finish first, 3 runs during the stop, 4-9 after it

    async def run() -> list[Any]:
        stopped = asyncio.Event()
        done: list[int] = []

        async def one(i: int, m: Match) -> Any:
            if i > in_flight:
                await stopped.wait()
            try:
                return await judge.judge(m)
            except Exception as exc:  # noqa: BLE001 - recorded per match, like the engine does
                return exc
            finally:
                done.append(i)

        async def stopper() -> None:
            while len(done) < judged_before:
                await asyncio.sleep(0.005)
            await asyncio.to_thread(vllm_server.stop)
            stopped.set()

        try:
            results, _ = await asyncio.gather(asyncio.gather(*(one(i, m) for i, m in enumerate(matches))), stopper())
            return results
        finally:
            await judge.aclose()

    results = asyncio.run(asyncio.wait_for(run(), 240))
    assert not vllm_server.running
    for r in results[:judged_before]:  # judged before the stop: intact
        assert isinstance(r, list) and len(r) == 2 and all(j.outcome in (Outcome.A, Outcome.B) for j in r), r
    after = results[in_flight + 1:]
    assert all(isinstance(e, TransientJudgeError) and "cannot reach" in str(e) for e in after), after
    assert all("gave up after 3 attempts" in str(e) for e in after)
    assert isinstance(results[in_flight], (list, TransientJudgeError))
    assert judge.stats["retries"] >= 2 * len(after)
