"""A judge that runs another judge on a pool of long-lived Ray actors.

::

    pool = RayJudgePool("vllm:Reward-Reasoning/RRM-32B", replicas=4, num_gpus_per_replica=1)
    sched = Scheduler(pool, build_strategy("knockout"), concurrency=2 * pool.window)

The pool IS a :class:`~tourney.judges.base.Judge`: the scheduler stays the same event-driven
scheduler it is locally, and only the place where ``judge(match)`` runs changes. Each replica
is one async Ray actor that builds the judge from its spec string in its constructor, so the
heavy engine (a vLLM ``AsyncLLM`` on ``num_gpus=1``, or on a placement group of tensor-parallel
bundles) lives in the actor for the whole run.

Data flow (client side, in the caller's event loop):

* ``judge(match)`` routes the match to a replica's queue and awaits a future.
* Routing is rendezvous hashing of the prompt id over the replicas that are up: all matches of
  one prompt go to the same replica (its engine keeps the prompt's prefix cached), and losing a
  replica moves only that replica's prompts. Load is balanced by work stealing: a replica with
  free capacity and an empty queue takes from the head of the longest other queue (at most half
  of it). Give the scheduler about twice the pool's ``window`` of concurrency and most matches
  run at home while no slot idles; with less, work stealing keeps the slots busy at the cost of
  affinity, and below ``window`` a freed slot waits for a round trip to the client.
* A replica runs at most ``max_inflight_per_replica`` matches in its judge at once (the engine's
  continuous batch stays full but bounded), and holds up to ``prefetch_per_replica`` more waiting
  inside the actor, so a slot that frees is refilled at once instead of after a round trip to
  the client. Whatever is queued when a replica has room goes out as ONE call (``max_batch``
  matches at most), so small matches pay one Ray round trip per batch.
* The call is a Ray streaming generator: the actor judges the batch concurrently and yields
  results as they complete (those that complete together in one message), so results come back
  in completion order, never held back by a slow neighbour in the same batch.
* Per-prompt input: when the inner judge has its own ``Judge.for_item`` (the simulated judge
  binds an input's ``scores`` as its truth; a replica reports this at start), the pool's
  ``for_item(item)`` returns a view whose matches travel with their input item, and the replica
  judges each with ``judge.for_item(item)``. Otherwise only the matches travel.

Faults. Actors are created with ``max_restarts`` (default: unlimited) and NO Ray task retry:
when an actor dies (killed, node lost, judge process exited), the client takes back the matches
it had in flight and re-dispatches them (to other replicas while it restarts). A future is
resolved at most once, so a re-dispatched match yields exactly one result to the scheduler, and
since a judge is a deterministic function of the match (seeds and request ids derive from the
match), the re-run gives the same judgement. A judge whose engine died inside a live actor
(``judge.dead`` true, as the vLLM judge sets on ``EngineDeadError``) makes the actor exit its
process, so Ray restarts it with a fresh engine. A replica that fails ``max_replica_failures``
times in a row (without delivering a full window of results in between) is taken out of
rotation and reported; a match that was in flight on ``max_match_failures`` failing replicas is
recorded as a judge error (a poison match must not take the whole pool down).

Frozen replicas. A replica whose process is alive but answers nothing (stopped with SIGSTOP,
swapping, a wedged event loop, a node cut off from the client) raises no Ray error: its calls
just never return. A per-call deadline cannot tell it from a reasoning judge that legitimately
takes minutes per call, so each replica gets a heartbeat instead: while a run is going, the
client sends the actor a cheap ``ping`` every ``heartbeat_s`` seconds (one outstanding at a
time). ``ping`` runs on the actor's event loop, the loop its judge calls run and stream their
results on, so an answer proves the process runs AND can deliver results; a judge that awaits
its engine (a vLLM ``AsyncLLM``, whose engine core is a child process; an HTTP client) leaves
that loop free. Any streamed result counts as an answer too. A replica that has answered
nothing for ``replica_timeout_s`` seconds is declared unresponsive (within about
``replica_timeout_s + heartbeat_s``): its in-flight matches are taken back and re-dispatched to
the healthy replicas, it is retired (its actor killed) and reported (state ``retired``, the
reason, ``unresponsive``), with a log warning. Its calls are abandoned: if the process wakes up
and streams results for matches already re-dispatched, they are dropped (counted as
``late_results``), so a match still yields exactly one result. When no replica is left, every
waiting and new match fails at once with :class:`NoReplicaLeftError` (an :class:`ExecutorError`
and a :class:`~tourney.errors.JudgeUnavailableError`, so the scheduler stops the run) naming each
replica and why it left: the run ends, it never hangs.
Optionally (``call_timeout_s``, off by default) a match that stays at a replica longer than that
(waiting in its prefetch queue plus being judged) while the heartbeat is fine marks the replica
hung: its matches are re-dispatched and Ray restarts the actor, as after a crash.

Start-up is checked before any work: no cluster at the address, a cluster too small for the
requested replicas, or a replica whose judge cannot be built (missing model path, out of
memory) raise :class:`ExecutorError` from the constructor, naming the replica and the cause.

``ray`` is imported inside the functions that use it; ``import tourney`` never loads it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
import pickle
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import (
    ExecutorError,
    JudgeError,
    JudgeUnavailableError,
    MissingExtraError,
    SpecError,
    TransientJudgeError,
)
from ..hashing import stable_seed
from ..judges.base import JUDGES, Judge, build_judge
from ..registry import Spec, parse_spec
from ..types import Judgement, Match

if TYPE_CHECKING:
    from ..items import Item

__all__ = ["DEAD_ENGINE_EXIT", "REPLICA_ENV", "ExecutorError", "NoReplicaLeftError", "RayJudgePool", "ReplicaStats"]

log = logging.getLogger("tourney")

#: environment variable holding the replica index inside an actor process
REPLICA_ENV = "TOURNEY_RAY_REPLICA"
#: seconds a replica may take to answer the judge's preflight (the openai judge's own check: 30 s)
PREFLIGHT_TIMEOUT_S = 120.0
#: exit status of an actor process that exits because its engine died (so Ray restarts it)
DEAD_ENGINE_EXIT = 75

_UP, _RESTARTING, _RETIRED = "up", "restarting", "retired"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NoReplicaLeftError(ExecutorError, JudgeUnavailableError):
    """Every replica of a Ray judge pool has been retired (crashed too often, or stopped
    answering): no match can be judged any more. The message names each replica and why it
    left. A :class:`~tourney.errors.JudgeUnavailableError`, so the scheduler stops the run at
    once (results already yielded and judgements already stored stand) instead of recording
    every waiting match as an error; an :class:`ExecutorError`, so a caller can tell a lost
    executor from a judge whose backend is down."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", "--executor ray") from exc
    return ray


# ------------------------------------------------------------------------------------------
# the actor (runs in a Ray worker process)
# ------------------------------------------------------------------------------------------
def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (it crosses the process boundary), else a judge error
    carrying its text; transient unless it was a permanent :class:`JudgeError`."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # anything unpicklable travels as text
        permanent = isinstance(exc, JudgeError) and not isinstance(exc, TransientJudgeError)
        return (JudgeError if permanent else TransientJudgeError)(f"{type(exc).__name__}: {exc}")


class _JudgeActor:
    """One replica: holds one judge (and its engine) for the lifetime of the process.

    Wrapped with ``ray.remote`` at pool start (this module must not import ray at import time);
    Ray workers import this class by reference, so ``tourney`` must be importable on every node.
    """

    def __init__(self, spec: Mapping[str, Any], plugins: Sequence[str], replica: int, max_inflight: int):
        os.environ[REPLICA_ENV] = str(replica)  # the judge may read which replica it serves
        for module in plugins:  # modules that register judges (custom or test judges)
            importlib.import_module(module)
        self._judge = build_judge(Spec(spec["name"], spec.get("arg"), dict(spec.get("options", {}))))
        self._replica = replica
        self._max_inflight = max_inflight
        self._slots: asyncio.Semaphore | None = None  # made in the actor's event loop
        self._calls = 0
        self._matches = 0
        self._started = time.time()

    async def ready(self) -> dict[str, Any]:
        """Start the judge's engine if it has one (a vLLM judge loads its model here, so a missing
        model or too little memory fails the pool's start, not the first match), then report."""
        import ray

        start = getattr(self._judge, "start", None)
        if callable(start):
            res = start()
            if asyncio.iscoroutine(res):
                await res
        return {
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "identity": self._judge.identity(),
            "describe": self._judge.describe(),
            "fresh_samples": bool(getattr(self._judge, "fresh_samples", True)),
            "binds_items": type(self._judge).for_item is not Judge.for_item,
        }

    async def preflight(self) -> BaseException | None:
        """The judge's own :meth:`~tourney.judges.base.Judge.preflight` (a server that is down, a
        refused key, a model not served), on this replica; the error comes back as a value
        (pickled as itself when it can be, else as its text) so its message arrives unwrapped."""
        try:
            await self._judge.preflight()
        except Exception as exc:  # returned, re-raised by the pool in the driver
            return _portable(exc)
        return None

    async def ping(self) -> int:
        """The heartbeat: this process's id. It runs on the actor's event loop, the loop the
        judge's calls run on, so an answer also proves that loop is free to deliver results."""
        return os.getpid()

    async def judge_stream(self, matches: Sequence[Match], items: Sequence[Item | None] | None = None):
        """Judge ``matches`` concurrently (``items[i]``, when given, is match i's input item, for
        the judge's ``for_item``); yield ``[(index, judgements or exception), ...]`` for the
        matches that completed together, in completion order."""
        self._calls += 1
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_inflight)
        tasks = {asyncio.ensure_future(self._one(m, items[i] if items else None)): i for i, m in enumerate(matches)}
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if getattr(self._judge, "dead", False):
                    self._exit_for_restart()
                self._matches += len(done)
                yield [(tasks[t], t.result()) for t in done]
        finally:
            for t in pending:  # the caller went away: stop paying for its matches
                t.cancel()

    async def _one(self, match: Match, item: Item | None) -> list[Judgement] | BaseException:
        assert self._slots is not None
        try:
            async with self._slots:  # prefetched matches wait here, not a round trip away
                judge = self._judge if item is None else self._judge.for_item(item)
                return await judge.judge(match)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # returned in its slot: one failure never loses the others
            return _portable(exc)

    def _exit_for_restart(self) -> None:
        # ray.actor.exit_actor() is an intentional exit that Ray does NOT restart; a dead engine
        # needs a fresh process, so exit like a crash. Results not yet sent are re-dispatched.
        print(
            f"tourney: replica {self._replica} (pid {os.getpid()}): the judge's engine is dead; "
            "exiting so that Ray restarts this actor",
            file=sys.stderr,
            flush=True,
        )
        os._exit(DEAD_ENGINE_EXIT)

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pid": os.getpid(),
            "calls": self._calls,
            "matches": self._matches,
            "uptime_s": round(time.time() - self._started, 3),
        }
        engine_stats = getattr(self._judge, "stats", None)
        if callable(engine_stats):
            try:
                res = engine_stats()
                out["judge"] = await res if asyncio.iscoroutine(res) else res
            except Exception as exc:  # stats are informational only
                out["judge_error"] = f"{type(exc).__name__}: {exc}"
        return out

    async def close(self) -> None:
        await self._judge.aclose()


_REMOTE_CLASS: Any = None


def _remote_class(ray: Any) -> Any:
    global _REMOTE_CLASS
    if _REMOTE_CLASS is None:
        _REMOTE_CLASS = ray.remote(_JudgeActor)
    return _REMOTE_CLASS


# ------------------------------------------------------------------------------------------
# client side
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaStats:
    """What one replica did, as seen by the client.

    ``matches`` results were delivered from it: ``affinity`` of them ran on their prompt's home
    replica (its rendezvous first choice among the replicas up when the match was routed),
    ``stolen`` were taken from another replica's queue to fill idle capacity. ``failures``
    counts the deaths and failed health checks seen; ``redispatched`` the in-flight matches
    taken back from it after a failure; ``incarnations`` the processes that served it (1 + the
    restarts seen). ``prefix_cache_hit_rate`` is cached / prompt tokens over its judgements
    (None when the judge reports no prompt tokens; 0 for a judge without a prefix cache).

    Liveness: ``heartbeats`` answered and the slowest answer's round trip ``heartbeat_max_s``
    (seconds; size ``replica_timeout_s`` well above it); ``unresponsive`` counts the times the
    replica was declared frozen (no answer for ``replica_timeout_s``) or hung (a match held past
    ``call_timeout_s``); ``late_results`` the results that came back from calls abandoned at
    such a time, which were dropped (their matches had been re-dispatched).
    """

    replica: int
    state: str
    node: str
    pid: int | None
    incarnations: int
    calls: int
    matches: int
    inflight: int
    queued: int
    affinity: int
    stolen: int
    failures: int
    redispatched: int
    prompt_tokens: int
    cached_tokens: int
    reason: str | None = None
    heartbeats: int = 0
    heartbeat_max_s: float = 0.0
    unresponsive: int = 0
    late_results: int = 0

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["prefix_cache_hit_rate"] = (
            None if self.prefix_cache_hit_rate is None else round(self.prefix_cache_hit_rate, 4)
        )
        d["heartbeat_max_s"] = round(self.heartbeat_max_s, 4)
        return d


class _Item:
    """One ``judge(match)`` call waiting for its result."""

    __slots__ = ("deaths", "fut", "home", "match", "source")

    def __init__(self, match: Match, fut: asyncio.Future, source: Item | None = None):
        self.match = match
        self.fut = fut
        self.source = source  # the match's input item, when the inner judge binds items (for_item)
        self.home = -1  # the replica it was routed to (its prompt's first choice among those up)
        self.deaths = 0  # replica failures while it was in flight


class _Call:
    """One ``judge_stream`` call in flight: the items not yet answered, by their index in the
    call, and when it was sent. An abandoned call's items were taken back (re-dispatched); what
    it still streams is dropped."""

    __slots__ = ("abandoned", "left", "sent")

    def __init__(self, batch: list[_Item]):
        self.left = dict(enumerate(batch))
        self.sent = time.monotonic()
        self.abandoned = False


class _Replica:
    def __init__(self, index: int, actor: Any, pg: Any):
        self.index = index
        self.actor = actor
        self.pg = pg
        self.state = _UP
        self.queue: deque[_Item] = deque()
        self.inflight = 0
        self.open: set[_Call] = set()  # calls in flight (in this run's loop)
        self.epoch = 0  # bumped on each failure: concurrent calls failing together count once
        self.consecutive = 0
        self.since_failure = 0
        self.pid: int | None = None
        self.node = ""
        self.pids: set[int] = set()
        self.calls = self.matches = self.affinity = self.stolen = 0
        self.failures = self.redispatched = 0
        self.prompt_tokens = self.cached_tokens = 0
        self.reason: str | None = None
        self.last_seen = 0.0  # time.monotonic() of the last heartbeat answer or streamed result
        self.heartbeats = 0
        self.heartbeat_max_s = 0.0
        self.unresponsive = 0
        self.late = 0
        self.stale_pid: int | None = None  # a process being replaced: its answers are not a restart
        self.pid_seen: int | None = None  # the pid that answered the last heartbeat

    def set_info(self, info: Mapping[str, Any]) -> None:
        self.pid = int(info["pid"])
        self.node = str(info.get("node", ""))
        self.pids.add(self.pid)

    def snapshot(self) -> ReplicaStats:
        return ReplicaStats(
            replica=self.index,
            state=self.state,
            node=self.node[:12],
            pid=self.pid,
            incarnations=max(1, len(self.pids)),
            calls=self.calls,
            matches=self.matches,
            inflight=self.inflight,
            queued=len(self.queue),
            affinity=self.affinity,
            stolen=self.stolen,
            failures=self.failures,
            redispatched=self.redispatched,
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            reason=self.reason,
            heartbeats=self.heartbeats,
            heartbeat_max_s=self.heartbeat_max_s,
            unresponsive=self.unresponsive,
            late_results=self.late,
        )

    def take_back(self) -> list[_Item]:
        """Abandon every call in flight and return its unanswered items (to re-dispatch)."""
        items: list[_Item] = []
        for call in self.open:
            call.abandoned = True
            items.extend(call.left.values())
            call.left.clear()
        self.open.clear()
        self.inflight = 0
        return items


def _reason(exc: BaseException) -> str:
    """A one-line cause from a Ray exception (whose text carries a remote traceback)."""
    text = _ANSI.sub("", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if "creation task" in text or "Traceback" in text or 'File "' in text:
        # the remote exception's own last line, e.g. "tourney.errors.SpecError: cannot read ..."
        return re.sub(r"^(?:\w+\.)+(\w+(?:Error|Exception)\b)", r"\1", lines[-1])[:400]
    return f"{type(exc).__name__}: {lines[0]}"[:400]


def _probe_tcp(address: str, timeout_s: float) -> None:
    """Fail fast when nothing listens at ``address`` (ray.init would retry for minutes)."""
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"bad Ray address {address!r}: expected HOST:PORT, ray://HOST:PORT or 'auto'")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ExecutorError(
            f"no Ray cluster at {address}: {exc.strerror or exc} (start one with 'ray start --head' "
            "or leave --ray-address out to start a local cluster)"
        ) from exc


class RayJudgePool(Judge):
    """Runs the judge ``judge`` (a spec string such as ``simulated:latency_median_s=0.05``,
    ``replay:FILE``, ``vllm:MODEL`` or ``openai:URL``) on ``replicas`` long-lived Ray actors.

    Resources per replica: ``num_cpus_per_replica`` and ``num_gpus_per_replica`` (a fraction or
    1 reserves that share of one GPU for the actor; an integer k > 1 reserves a placement group
    of k GPU bundles, STRICT_PACK on one node, for a tensor-parallel engine, which the actor
    captures for the engine's own workers). ``address``: an existing cluster (``HOST:PORT``,
    ``ray://HOST:PORT`` or ``"auto"``); None starts a local one (with at least enough logical
    CPUs for the replicas), unless Ray is already initialised in this process, which is reused.

    ``plugins`` are modules each actor imports before building the judge (modules that
    register custom judges); ``runtime_env`` is passed to the actors (``env_vars``, ``pip``,
    ``working_dir``: e.g. ``{"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}}``).

    The constructor starts the actors and waits until every judge is built (at most
    ``start_timeout_s``); any start-up problem raises :class:`ExecutorError` and releases what
    was started. ``aclose()`` stops the actors, and shuts Ray down if the pool initialised it.
    See the module docstring for routing, batching and fault handling.

    Liveness (seconds, during a run): each replica is pinged every ``heartbeat_s`` (default 5);
    one that has answered nothing for ``replica_timeout_s`` (default 60; at least twice
    ``heartbeat_s``; None turns the heartbeat off) is declared frozen, its matches re-dispatched
    and it is retired. ``call_timeout_s`` (default None: off) is an optional per-match deadline
    at a replica, for engines that can hang while their process still answers: past it the
    replica's matches are re-dispatched and the actor restarted. Leave it off (or far above the
    slowest legitimate call) for reasoning judges, whose calls can take minutes.
    """

    name = "ray"

    def __init__(
        self,
        judge: str | Spec,
        options: Mapping[str, Any] | None = None,
        *,
        replicas: int = 2,
        address: str | None = None,
        num_cpus_per_replica: float = 1.0,
        num_gpus_per_replica: float = 0.0,
        max_inflight_per_replica: int = 8,
        prefetch_per_replica: int | None = None,
        max_batch: int | None = None,
        max_restarts: int = -1,
        max_replica_failures: int = 3,
        max_match_failures: int = 3,
        start_timeout_s: float = 900.0,
        connect_timeout_s: float = 10.0,
        heartbeat_s: float = 5.0,
        replica_timeout_s: float | None = 60.0,
        call_timeout_s: float | None = None,
        plugins: Sequence[str] = (),
        runtime_env: Mapping[str, Any] | None = None,
        ray_init_options: Mapping[str, Any] | None = None,
        check_resources: bool = True,
    ):
        spec = parse_spec(judge, options) if isinstance(judge, str) else judge
        if options and not isinstance(judge, str):
            spec = Spec(spec.name, spec.arg, {**spec.options, **options})
        for module in plugins:
            importlib.import_module(module)
        JUDGES.get(spec.name)  # unknown judge: SpecError listing the known ones, before any cluster
        _check_int("replicas", replicas, 1)
        _check_int("max_inflight_per_replica", max_inflight_per_replica, 1)
        _check_int("max_replica_failures", max_replica_failures, 1)
        _check_int("max_match_failures", max_match_failures, 1)
        if max_batch is not None:
            _check_int("max_batch", max_batch, 1)
        if prefetch_per_replica is None:
            prefetch_per_replica = max(1, max_inflight_per_replica // 4)
        _check_int("prefetch_per_replica", prefetch_per_replica, 0)
        _check_seconds("heartbeat_s", heartbeat_s)
        if replica_timeout_s is not None:
            _check_seconds("replica_timeout_s", replica_timeout_s)
            if replica_timeout_s < 2 * heartbeat_s:
                raise SpecError(
                    f"replica_timeout_s ({replica_timeout_s:g} s) must be at least twice heartbeat_s "
                    f"({heartbeat_s:g} s): a healthy replica answers only one ping per heartbeat_s"
                )
        if call_timeout_s is not None:
            _check_seconds("call_timeout_s", call_timeout_s)
        if num_cpus_per_replica < 0 or num_gpus_per_replica < 0:
            raise SpecError("resources per replica must be >= 0")
        if num_gpus_per_replica > 1 and num_gpus_per_replica != int(num_gpus_per_replica):
            raise SpecError(
                f"num_gpus_per_replica above 1 must be a whole number of GPUs (tensor "
                f"parallel bundles), got {num_gpus_per_replica}"
            )
        super().__init__(spec)
        self.replicas = replicas
        self.address = address
        self.num_cpus_per_replica = float(num_cpus_per_replica)
        self.num_gpus_per_replica = float(num_gpus_per_replica)
        self.max_inflight_per_replica = max_inflight_per_replica
        self.prefetch_per_replica = prefetch_per_replica
        #: matches sent to a replica and not yet returned: running + waiting in the actor
        self._window = max_inflight_per_replica + prefetch_per_replica
        self.max_batch = max_batch or self._window
        self.max_restarts = max_restarts
        self.max_replica_failures = max_replica_failures
        self.max_match_failures = max_match_failures
        self.start_timeout_s = start_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.heartbeat_s = float(heartbeat_s)
        self.replica_timeout_s = None if replica_timeout_s is None else float(replica_timeout_s)
        self.call_timeout_s = None if call_timeout_s is None else float(call_timeout_s)
        self.plugins = tuple(plugins)
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.ray_init_options = dict(ray_init_options or {})
        self.check_resources = check_resources
        self._replicas: list[_Replica] = []
        self._binds_items = False  # whether the inner judge has its own for_item (reported by a replica)
        self._identity: dict[str, Any] | None = None
        self._describe: dict[str, Any] | None = None
        self._owns_ray = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prefs: dict[str, tuple[int, ...]] = {}
        self._parked: deque[_Item] = deque()
        self._tasks: set[asyncio.Task] = set()
        self._pump_pending = False
        self._start()

    # -- start-up -------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        """Matches running at once when every replica is full: ``replicas * max_inflight_per_replica``."""
        return self.replicas * self.max_inflight_per_replica

    @property
    def window(self) -> int:
        """Matches the pool keeps at the replicas (running + prefetched) when every replica is
        full. Give the scheduler at least this much concurrency, and about twice as much for
        prefix affinity (a backlog lets each replica take its own prompts' matches)."""
        return self.replicas * self._window

    def _start(self) -> None:
        ray = _import_ray()
        self._connect(ray)
        try:
            self._check_cluster(ray)
            self._replicas = [self._create(ray, k) for k in range(self.replicas)]
            self._await_ready(ray)
        except BaseException:
            self._teardown(ray, graceful=False)
            raise

    def _connect(self, ray: Any) -> None:
        if ray.is_initialized():
            return
        addr = self.address
        if addr and addr not in ("auto", "local"):
            _probe_tcp(addr, self.connect_timeout_s)
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if addr:
            kwargs["address"] = addr
        else:  # a local cluster: enough logical CPUs for the replicas the user asked for
            kwargs["num_cpus"] = max(os.cpu_count() or 1, math.ceil(self.replicas * self.num_cpus_per_replica))
        kwargs.update(self.ray_init_options)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"at {addr}" if addr else "(local)"
            raise ExecutorError(f"cannot start or connect to a Ray cluster {where}: {exc}") from exc
        self._owns_ray = True

    def _needs(self) -> str:
        need = f"num_cpus={self.num_cpus_per_replica:g}"
        if self.num_gpus_per_replica:
            need += f", num_gpus={self.num_gpus_per_replica:g}"
        return need

    def _check_cluster(self, ray: Any) -> None:
        if not self.check_resources:
            return
        total = ray.cluster_resources()
        problems = []
        for key, per in (("CPU", self.num_cpus_per_replica), ("GPU", self.num_gpus_per_replica)):
            need, have = self.replicas * per, float(total.get(key, 0.0))
            if need > have + 1e-9:
                problems.append(f"{need:g} {key}s ({self.replicas} replicas x {per:g}) but the cluster has {have:g}")
        if problems:
            raise ExecutorError(
                "the Ray cluster cannot hold the judge pool: it needs "
                + "; ".join(problems)
                + ". Lower --replicas or the resources per replica, or add nodes "
                "(an autoscaling cluster: pass check_resources=False)"
            )

    def _create(self, ray: Any, k: int) -> _Replica:
        opts: dict[str, Any] = {
            "num_cpus": self.num_cpus_per_replica,
            "max_restarts": self.max_restarts,
            "max_task_retries": 0,  # re-dispatch is ours: a lost match goes wherever capacity is
            # calls in flight at once (Ray's default for async actors is 1000): room for a full
            # window of one-match calls, so a heartbeat never waits behind judge calls
            "max_concurrency": max(1000, self._window + 8),
        }
        pg = None
        gpus = self.num_gpus_per_replica
        if gpus > 1:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            bundles = [{"GPU": 1.0, "CPU": self.num_cpus_per_replica}] + [{"GPU": 1.0, "CPU": 1.0}] * (int(gpus) - 1)
            pg = placement_group(bundles, strategy="STRICT_PACK", name=f"tourney-judge-{k}-{os.getpid()}")
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
            )
        elif gpus > 0:
            opts["num_gpus"] = gpus
        if self.runtime_env:
            opts["runtime_env"] = self.runtime_env
        actor = (
            _remote_class(ray)
            .options(**opts)
            .remote(self.spec.to_dict(), self.plugins, k, self.max_inflight_per_replica)
        )
        return _Replica(k, actor, pg)

    def _await_ready(self, ray: Any) -> None:
        refs = {rep.actor.ready.remote(): rep for rep in self._replicas}
        deadline = time.monotonic() + self.start_timeout_s
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                slow = ", ".join(str(refs[r].index) for r in pending)
                raise ExecutorError(
                    f"judge replica(s) {slow} of {self.spec} did not start within {self.start_timeout_s:g} s: "
                    f"each needs {self._needs()}; the cluster has {_fmt_resources(ray.available_resources())} "
                    "available (a replica waits while it cannot be placed, or while its engine loads)"
                )
            rep = refs[done[0]]
            try:
                info = ray.get(done[0])
            except Exception as exc:  # fail at the first broken replica, not after the slowest
                raise ExecutorError(
                    f"judge replica {rep.index} of {self.spec} could not start: {_reason(exc)}"
                ) from exc
            rep.set_info(info)
            if self._identity is None:
                self._identity = info.get("identity")
                self._describe = info.get("describe")
                self.fresh_samples = bool(info.get("fresh_samples", True))
                self._binds_items = bool(info.get("binds_items", False))
        log.info("ray judge pool: %d replicas of %s up (%s each)", self.replicas, self.spec, self._needs())

    # -- Judge API ----------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """The inner judge's identity (as reported by a replica), so a judgement store keys
        results the same whether they were computed locally or on the cluster."""
        return dict(self._identity) if self._identity is not None else self.spec.to_dict()

    def describe(self) -> dict[str, Any]:
        """The inner judge's own description (recorded in every result), so output files are
        identical whatever the executor; the executor's settings are in :meth:`describe_executor`."""
        return dict(self._describe) if self._describe is not None else self.spec.to_dict()

    def match_identity(self, match: Match) -> dict[str, Any]:
        """The inner judge's per-match key addition, computed here without a round trip: the
        model judges' candidate defences depend only on the format and the defence settings,
        which the replicas report (``describe()["defences"]`` and ``identity()["format"]``)."""
        defences = (self._describe or {}).get("defences")
        fmt_name = (self._identity or {}).get("format")
        if not defences or not fmt_name:
            return {}
        from ..judges.formats import get_format

        return get_format(fmt_name).defence_identity(
            match.first_text,
            match.second_text,
            neutralise=bool(defences.get("neutralise_candidates", True)),
            quote_check=bool(defences.get("quote_check", True)),
        )

    async def judge(self, match: Match) -> list[Judgement]:
        return await self._submit(match, None)

    async def preflight(self) -> None:
        """Run the inner judge's preflight on one replica that is up (every replica holds the
        same judge against the same backend), so a dead server or a refused key stops a Ray run
        before any match is sent, as it does locally. A replica that does not answer within
        :data:`PREFLIGHT_TIMEOUT_S` (or :attr:`start_timeout_s`, if shorter) is a
        :class:`~tourney.errors.JudgeUnavailableError` too."""
        rep = next((r for r in self._replicas if r.state == _UP), None)
        if rep is None or self._closed:
            return
        timeout = min(PREFLIGHT_TIMEOUT_S, self.start_timeout_s)
        try:
            err = await asyncio.wait_for(rep.actor.preflight.remote(), timeout)
        except TimeoutError:
            raise JudgeUnavailableError(
                f"judge replica {rep.index} of {self.spec} did not answer the preflight within {timeout:g} s"
            ) from None
        except Exception as exc:  # the actor died meanwhile: say so, the run cannot start
            raise JudgeUnavailableError(
                f"judge replica {rep.index} of {self.spec} failed its preflight: {_reason(exc)}"
            ) from exc
        if err is not None:
            raise err

    def for_item(self, item: Item) -> Judge:
        """The pool itself, or, when the inner judge binds input items (its own ``for_item``),
        a view whose matches travel to the replica with ``item``, where the replica's judge
        takes them through ``judge.for_item(item)``."""
        return _PoolForItem(self, item) if self._binds_items else self

    async def _submit(self, match: Match, source: Item | None) -> list[Judgement]:
        if self._closed:
            raise JudgeError("the Ray judge pool is closed")
        self._bind()
        assert self._loop is not None
        item = _Item(match, self._loop.create_future(), source)
        self._place(item)
        return await item.fut

    # -- routing and dispatch (all in the caller's event loop) ---------------------------------
    def _bind(self) -> None:
        """Attach the client state to the running loop (a new ``asyncio.run`` gets fresh state;
        calls of a finished loop can no longer deliver anything)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._pump_pending = False
        self._parked.clear()
        self._tasks = set()
        for rep in self._replicas:
            rep.queue.clear()
            rep.open.clear()
            rep.inflight = 0
            if rep.state == _RESTARTING:
                self._spawn(self._probe(rep, rep.epoch))
            elif rep.state == _UP:
                self._spawn(self._watch(rep, rep.epoch))

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _preferences(self, match: Match) -> tuple[int, ...]:
        """Rendezvous order of the replicas for this match's prompt (stable across processes)."""
        key = match.prompt_id or repr(match.prompt)
        prefs = self._prefs.get(key)
        if prefs is None:
            if len(self._prefs) > 200_000:
                self._prefs.clear()
            weights = [stable_seed("ray-affinity", key, r) for r in range(len(self._replicas))]
            prefs = tuple(sorted(range(len(self._replicas)), key=lambda r: -weights[r]))
            self._prefs[key] = prefs
        return prefs

    def _place(self, item: _Item) -> None:
        if item.fut.done():
            return
        for r in self._preferences(item.match):
            rep = self._replicas[r]
            if rep.state == _UP:
                item.home = r
                rep.queue.append(item)
                self._kick()
                return
        if any(rep.state != _RETIRED for rep in self._replicas):
            self._parked.append(item)  # every replica is restarting: wait for the first one back
        else:
            item.fut.set_exception(NoReplicaLeftError(self._no_replica_message()))

    def _no_replica_message(self) -> str:
        why = "; ".join(f"replica {rep.index}: {rep.reason}" for rep in self._replicas)
        return f"no Ray judge replica left in rotation, the run cannot go on ({why})"

    def _kick(self) -> None:
        if not self._pump_pending and self._loop is not None:
            self._pump_pending = True
            self._loop.call_soon(self._pump)

    @staticmethod
    def _take(queue: deque[_Item], n: int) -> list[_Item]:
        out: list[_Item] = []
        while queue and len(out) < n:
            it = queue.popleft()
            if not it.fut.done():  # cancelled by the scheduler meanwhile
                out.append(it)
        return out

    def _pump(self) -> None:
        """Send each replica with free capacity one batch: its own queue first, then the head
        of the longest other queues (work stealing)."""
        self._pump_pending = False
        up = [rep for rep in self._replicas if rep.state == _UP]
        for rep in sorted(up, key=lambda r: (r.inflight + len(r.queue), r.index)):
            if rep.state != _UP:  # failed while sending an earlier batch of this pump
                continue
            want = min(self._window - rep.inflight, self.max_batch)
            if want <= 0:
                continue
            batch = self._take(rep.queue, want)
            if len(batch) < want:
                for victim in sorted(up, key=lambda v: -len(v.queue)):
                    need = want - len(batch)
                    if need <= 0 or not victim.queue:
                        break
                    if victim is not rep:
                        batch += self._take(victim.queue, min(need, (len(victim.queue) + 1) // 2))
            if batch:
                self._send(rep, batch)

    def _send(self, rep: _Replica, batch: list[_Item]) -> None:
        rep.calls += 1
        sources = [it.source for it in batch]
        try:
            gen = rep.actor.judge_stream.remote(
                [it.match for it in batch], sources if any(x is not None for x in sources) else None
            )
        except Exception as exc:  # a handle of a dead actor: a replica failure
            self._failed(rep, rep.epoch, batch, exc)
            return
        call = _Call(batch)
        rep.open.add(call)
        rep.inflight += len(batch)
        self._spawn(self._consume(rep, rep.epoch, call, gen))

    async def _consume(self, rep: _Replica, epoch: int, call: _Call, gen: Any) -> None:
        ray = _import_ray()
        try:
            async for ref in gen:
                chunk = await ref
                if call.abandoned:  # the replica was declared frozen or hung: drop what it still sends
                    rep.late += len(chunk)
                    continue
                rep.last_seen = time.monotonic()
                for i, res in chunk:
                    it = call.left.pop(i, None)
                    if it is not None:
                        rep.inflight -= 1
                        self._deliver(rep, it, res)
                self._kick()
        except asyncio.CancelledError:
            raise
        except ray.exceptions.RayTaskError as exc:
            if call.abandoned:
                return
            # the call itself raised inside a live actor (not a judge failure, which comes back in
            # its slot): a bug or an unpicklable match. The actor is fine; fail these matches.
            left = self._close_call(rep, call)
            for it in left:
                if not it.fut.done():
                    it.fut.set_exception(JudgeError(f"Ray judge replica {rep.index}: {_reason(exc)}"))
            self._kick()
            return
        except Exception as exc:  # the actor died or is unreachable
            if not call.abandoned:
                self._failed(rep, epoch, self._close_call(rep, call), exc)
            return
        finally:
            rep.open.discard(call)
        if call.left and not call.abandoned:  # pragma: no cover - the actor yields every index exactly once
            self._failed(rep, epoch, self._close_call(rep, call), RuntimeError("stream ended early"))

    @staticmethod
    def _close_call(rep: _Replica, call: _Call) -> list[_Item]:
        """The unanswered items of a call that ended, no longer counted in flight."""
        left = list(call.left.values())
        call.left.clear()
        rep.inflight -= len(left)
        rep.open.discard(call)
        return left

    def _deliver(self, rep: _Replica, it: _Item, res: Any) -> None:
        if it.fut.done():  # cancelled by its caller meanwhile: nobody takes this result
            return
        rep.matches += 1
        rep.since_failure += 1
        if rep.since_failure >= self.max_inflight_per_replica:
            rep.consecutive = 0  # a full window of results since the last failure: healthy again
        if it.home == rep.index:
            rep.affinity += 1
        else:
            rep.stolen += 1
        if isinstance(res, BaseException):
            it.fut.set_exception(res)
            return
        for j in res:
            rep.prompt_tokens += j.prompt_tokens
            rep.cached_tokens += j.cached_tokens
        it.fut.set_result(res)

    def _failed(self, rep: _Replica, epoch: int, items: list[_Item], exc: BaseException) -> None:
        """Actor ``rep`` failed a call made in ``epoch``: take back ``items`` and re-dispatch them."""
        reason = _reason(exc)
        if epoch == rep.epoch and rep.state == _UP:  # the first report of this failure
            rep.epoch += 1
            rep.failures += 1
            rep.consecutive += 1
            rep.since_failure = 0
            rep.reason = reason
            log.warning("ray judge replica %d failed (%s); re-dispatching its in-flight matches", rep.index, reason)
            if rep.consecutive >= self.max_replica_failures:
                self._retire(rep, f"{rep.consecutive} consecutive failures, last: {reason}")
            else:
                rep.state = _RESTARTING
                moved = list(rep.queue)
                rep.queue.clear()
                for it in moved:  # never sent: not a failure of theirs
                    self._place(it)
                self._spawn(self._probe(rep, rep.epoch))
        self._redispatch(rep, items, reason)

    def _redispatch(self, rep: _Replica, items: list[_Item], reason: str) -> None:
        """Route ``items``, lost in flight on ``rep``, elsewhere; a match lost on
        ``max_match_failures`` replicas becomes a judge error (a poison match)."""
        rep.redispatched += len(items)
        for it in items:
            if it.fut.done():
                continue
            it.deaths += 1
            if it.deaths >= self.max_match_failures:
                it.fut.set_exception(
                    JudgeError(
                        f"match lost on {it.deaths} failing Ray judge replicas (last: replica {rep.index}: {reason})"
                    )
                )
            else:
                self._place(it)
        self._kick()

    async def _probe(self, rep: _Replica, epoch: int) -> None:
        """Wait until Ray has restarted the actor, then put it back in rotation."""
        ray = _import_ray()
        deadline = time.monotonic() + self.start_timeout_s
        delay = 0.1
        while rep.state == _RESTARTING and rep.epoch == epoch:
            try:
                info = await asyncio.wait_for(rep.actor.ready.remote(), max(0.1, deadline - time.monotonic()))
            except asyncio.CancelledError:
                raise
            except ray.exceptions.ActorUnavailableError:
                pass  # still restarting (the engine may take minutes to load)
            except Exception as exc:  # died for good, or its judge cannot be built any more
                rep.failures += 1
                rep.consecutive += 1
                rep.reason = _reason(exc)
                if rep.consecutive >= self.max_replica_failures:
                    self._retire(rep, f"{rep.consecutive} consecutive failures, last: {rep.reason}")
                    return
            else:
                if rep.stale_pid is None or int(info["pid"]) != rep.stale_pid:  # else: the old process, not gone yet
                    rep.stale_pid = None
                    rep.set_info(info)
                    rep.state = _UP
                    log.warning("ray judge replica %d is back (pid %s)", rep.index, rep.pid)
                    self._spawn(self._watch(rep, rep.epoch))
                    parked = list(self._parked)
                    self._parked.clear()
                    for it in parked:
                        self._place(it)
                    self._kick()
                    return
            if time.monotonic() > deadline:
                self._retire(rep, f"did not come back within {self.start_timeout_s:g} s (last: {rep.reason})")
                return
            await asyncio.sleep(delay)
            delay = min(2 * delay, 5.0)

    # -- liveness -----------------------------------------------------------------------------
    async def _watch(self, rep: _Replica, epoch: int) -> None:
        """The heartbeat of one replica while it is up in this run: a ping every ``heartbeat_s``
        (one outstanding at a time); no answer and no result for ``replica_timeout_s`` declares
        it frozen, a match held past ``call_timeout_s`` declares it hung."""
        if self.replica_timeout_s is None and self.call_timeout_s is None:
            return
        ray = _import_ray()
        rep.last_seen = time.monotonic()
        ping: asyncio.Task | None = None
        ref: Any = None
        try:
            while rep.state == _UP and rep.epoch == epoch:
                if ping is None and self.replica_timeout_s is not None:
                    ref = rep.actor.ping.remote()
                    ping = asyncio.ensure_future(self._answer(rep, ref))
                await asyncio.sleep(self.heartbeat_s)
                if rep.state != _UP or rep.epoch != epoch:
                    return
                if ping is not None and ping.done():
                    exc = ping.exception()
                    ping = None
                    if isinstance(exc, ray.exceptions.ActorDiedError):  # dead: Ray restarts it or it is gone
                        self._failed(rep, epoch, [], exc)
                        return
                    if exc is not None:  # unreachable for now: the silence clock keeps running
                        log.debug("ray judge replica %d: heartbeat failed: %s", rep.index, _reason(exc))
                    elif rep.pid is not None and rep.pid_seen != rep.pid:  # restarted behind our back
                        self._failed(
                            rep,
                            epoch,
                            [],
                            RuntimeError(f"its process changed (pid {rep.pid} -> {rep.pid_seen}): restarted"),
                        )
                        return
                now = time.monotonic()
                silent = now - rep.last_seen
                if self.replica_timeout_s is not None and silent > self.replica_timeout_s:
                    if ping is not None and ray.wait([ref], timeout=0)[0]:
                        continue  # answered: this loop was too busy to notice; collect it next tick
                    self._unresponsive(
                        rep,
                        epoch,
                        (
                            f"no heartbeat answer for {silent:.1f} s (replica_timeout_s={self.replica_timeout_s:g}): "
                            "its process is frozen, overloaded or unreachable"
                        ),
                        restart=False,
                    )
                    return
                if self.call_timeout_s is not None:
                    oldest = min((c.sent for c in rep.open if c.left), default=now)
                    if now - oldest > self.call_timeout_s:
                        self._unresponsive(
                            rep,
                            epoch,
                            (
                                f"a call held {now - oldest:.1f} s (call_timeout_s={self.call_timeout_s:g}) "
                                "while its process still answered: hung"
                            ),
                            restart=True,
                        )
                        return
        finally:
            if ping is not None and not ping.done():
                ping.cancel()
            elif ping is not None and not ping.cancelled():
                ping.exception()  # retrieved: a ping that failed as the replica left is no news

    @staticmethod
    async def _answer(rep: _Replica, ref: Any) -> None:
        """Await one ping; record its round trip and the pid that answered."""
        t0 = time.monotonic()
        rep.pid_seen = int(await ref)
        now = time.monotonic()
        rep.last_seen = now
        rep.heartbeats += 1
        rep.heartbeat_max_s = max(rep.heartbeat_max_s, now - t0)

    def _unresponsive(self, rep: _Replica, epoch: int, reason: str, restart: bool) -> None:
        """``rep`` stopped answering (frozen) or holds a call too long (hung): abandon its calls,
        re-dispatch their matches, and retire it (frozen) or have Ray restart it (hung)."""
        if rep.epoch != epoch or rep.state != _UP:
            return
        ray = _import_ray()
        items = rep.take_back()
        rep.unresponsive += 1
        log.warning(
            "ray judge replica %d (pid %s): %s; re-dispatching its %d in-flight matches",
            rep.index,
            rep.pid,
            reason,
            len(items),
        )
        if restart:
            rep.stale_pid = rep.pid
            _quietly(ray.kill, rep.actor, no_restart=False)
            self._failed(rep, epoch, items, TimeoutError(reason))  # restarting (or retired), like a crash
            return
        rep.epoch += 1
        rep.failures += 1
        self._retire(rep, reason)
        self._redispatch(rep, items, reason)

    def _retire(self, rep: _Replica, reason: str) -> None:
        rep.state = _RETIRED
        rep.reason = reason
        log.error("ray judge replica %d taken out of rotation: %s", rep.index, reason)
        _quietly(_import_ray().kill, rep.actor, no_restart=True)
        moved = list(rep.queue)
        rep.queue.clear()
        for it in moved:
            self._place(it)
        if all(r.state == _RETIRED for r in self._replicas):
            parked = list(self._parked)
            self._parked.clear()
            for it in parked:
                if not it.fut.done():
                    it.fut.set_exception(NoReplicaLeftError(self._no_replica_message()))
        self._kick()

    # -- reporting ----------------------------------------------------------------------------
    def actors(self) -> list[Any]:
        """The replicas' Ray actor handles, by replica index (for operators and fault injection)."""
        return [rep.actor for rep in self._replicas]

    def stats(self) -> list[ReplicaStats]:
        """Per-replica load, affinity, failures and prefix-cache hit rate (client side)."""
        return [rep.snapshot() for rep in self._replicas]

    async def engine_stats(self, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Each live actor's own counters, plus ``judge.stats()`` where the judge has one
        (an engine's prefix-cache metrics, for example)."""

        async def one(rep: _Replica) -> dict[str, Any]:
            if rep.state == _RETIRED:
                return {"replica": rep.index, "state": rep.state}
            try:
                return {"replica": rep.index, **await asyncio.wait_for(rep.actor.stats.remote(), timeout_s)}
            except Exception as exc:  # reported, not raised
                return {"replica": rep.index, "error": _reason(exc)}

        return list(await asyncio.gather(*(one(rep) for rep in self._replicas)))

    def describe_executor(self) -> dict[str, Any]:
        """Settings and per-replica stats, for a run's metadata file."""
        return {
            "executor": "ray",
            "replicas": self.replicas,
            "address": self.address,
            "num_cpus_per_replica": self.num_cpus_per_replica,
            "num_gpus_per_replica": self.num_gpus_per_replica,
            "max_inflight_per_replica": self.max_inflight_per_replica,
            "prefetch_per_replica": self.prefetch_per_replica,
            "max_batch": self.max_batch,
            "heartbeat_s": self.heartbeat_s,
            "replica_timeout_s": self.replica_timeout_s,
            "call_timeout_s": self.call_timeout_s,
            "replica_stats": [s.to_json() for s in self.stats()],
        }

    def report(self) -> str:
        """A short per-replica table (for the CLI's summary on stderr)."""
        rows = [
            "replica state       matches  affinity  stolen  calls  failures  redispatched  prefix-hit  "
            "slowest-heartbeat  pid"
        ]
        for s in self.stats():
            hit = "-" if s.prefix_cache_hit_rate is None else f"{100 * s.prefix_cache_hit_rate:.1f}%"
            beat = f"{s.heartbeat_max_s:.3f}s" if s.heartbeats else "-"
            rows.append(
                f"{s.replica:>7} {s.state:<10} {s.matches:>8} {s.affinity:>9} {s.stolen:>7} {s.calls:>6} "
                f"{s.failures:>9} {s.redispatched:>13} {hit:>11}  {beat:>17}  {s.pid}"
                + (f"  ({s.reason})" if s.state != _UP and s.reason else "")
            )
        return "\n".join(rows)

    # -- shutdown -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the judges (engines shut down cleanly), stop the actors, and shut Ray down
        if the pool initialised it. Matches still waiting get a :class:`JudgeError`."""
        if self._closed:
            return
        self._closed = True
        if self._loop is asyncio.get_running_loop():  # tasks of a finished loop are gone already
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for it in [*self._parked, *(it for rep in self._replicas for it in rep.queue)]:
            if not it.fut.done():
                it.fut.set_exception(JudgeError("the Ray judge pool was closed"))
        self._teardown(_import_ray(), graceful=True)

    def close(self) -> None:
        """Synchronous :meth:`aclose` for scripts that never ran a loop."""
        if self._closed:
            return
        self._closed = True
        self._teardown(_import_ray(), graceful=True)

    def _teardown(self, ray: Any, graceful: bool) -> None:
        live = [rep for rep in self._replicas if rep.state != _RETIRED]
        if graceful and live and ray.is_initialized():
            refs = [ref for rep in live if (ref := _quietly(rep.actor.close.remote)) is not None]
            _quietly(ray.wait, refs, num_returns=len(refs), timeout=30.0)  # engines shut down cleanly
        for rep in self._replicas:
            _quietly(ray.kill, rep.actor, no_restart=True)
            if rep.pg is not None:
                from ray.util.placement_group import remove_placement_group

                _quietly(remove_placement_group, rep.pg)
        self._closed = True
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False


class _PoolForItem(Judge):
    """:meth:`RayJudgePool.for_item`'s view: the pool's matches of one input item, sent with it."""

    def __init__(self, pool: RayJudgePool, item: Item):
        super().__init__(pool.spec)
        self.pool = pool
        self.item = item
        self.fresh_samples = pool.fresh_samples  # the inner judge's, as on the pool

    async def judge(self, match: Match) -> list[Judgement]:
        return await self.pool._submit(match, self.item)

    def for_item(self, item: Item) -> Judge:
        return self.pool.for_item(item)

    def identity(self) -> dict[str, Any]:
        return self.pool.identity()

    def describe(self) -> dict[str, Any]:
        return self.pool.describe()

    def match_identity(self, match: Match) -> dict[str, Any]:
        return self.pool.match_identity(match)


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or None if it fails: teardown of actors that may be gone."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # best effort; the actor or cluster may be gone
        log.debug("ray judge pool teardown: %s failed: %s", getattr(fn, "__name__", fn), exc)
        return None


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{name} must be a positive number of seconds, got {value!r}")


def _fmt_resources(res: Mapping[str, float]) -> str:
    keys = [k for k in ("CPU", "GPU", "memory") if k in res]
    parts = []
    for k in keys:
        v = res[k]
        parts.append(f"{v / 2**30:.1f} GiB memory" if k == "memory" else f"{v:g} {k}")
    return ", ".join(parts) or "nothing"
