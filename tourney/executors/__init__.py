"""Executors: where judge calls run.

The default executor is local: the scheduler awaits ``judge.judge(match)`` in its own
process. :class:`RayJudgePool` runs the judge on a pool of long-lived Ray actors instead; it is
itself a :class:`~tourney.judges.base.Judge`, so the scheduler is the same event-driven
scheduler either way and a deterministic judge gives the same output file on both.

:func:`build_executor_judge` builds the judge a run calls from a judge spec and keyword
settings (the command line's ``--executor`` flags map onto them one to one, see
:mod:`tourney.cli.executor`).

Importing this package does not import ray: ray loads when a pool is built.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import SpecError
from ..judges.base import Judge, build_judge
from ..registry import Spec, parse_spec
from .ray_pool import ExecutorError, NoReplicaLeftError, RayJudgePool, ReplicaStats

__all__ = [
    "EXECUTORS",
    "ExecutorError",
    "LOCAL_CONCURRENCY",
    "NoReplicaLeftError",
    "RAY_OPTIONS",
    "RayJudgePool",
    "ReplicaStats",
    "build_executor_judge",
    "describe_executor",
]

EXECUTORS = ("local", "ray")
#: default scheduler concurrency of the local executor
LOCAL_CONCURRENCY = 32
#: judges whose engine batches continuously: a replica keeps many matches in flight
_ENGINE_JUDGES = ("vllm",)

#: the Ray pool's settings -> the command-line flag that sets each (named in error messages)
RAY_OPTIONS = {
    "replicas": "--replicas",
    "ray_address": "--ray-address",
    "num_gpus_per_replica": "--num-gpus-per-replica",
    "num_cpus_per_replica": "--num-cpus-per-replica",
    "max_inflight_per_replica": "--max-inflight-per-replica",
    "heartbeat_s": "--heartbeat",
    "replica_timeout_s": "--replica-timeout",
    "call_timeout_s": "--call-timeout",
}
#: liveness defaults of a Ray replica (seconds): a heartbeat every 5 s, retired after 60 s of silence
HEARTBEAT_S, REPLICA_TIMEOUT_S = 5.0, 60.0


def build_executor_judge(
    spec: Spec | str,
    *,
    executor: str = "local",
    replicas: int | None = None,
    ray_address: str | None = None,
    num_gpus_per_replica: float | None = None,
    num_cpus_per_replica: float | None = None,
    max_inflight_per_replica: int | None = None,
    heartbeat_s: float | None = None,
    replica_timeout_s: float | None = None,
    call_timeout_s: float | None = None,
    concurrency: int | None = None,
) -> tuple[Judge, int]:
    """The judge the scheduler should call for ``executor``, and the scheduler concurrency to
    use (``concurrency`` when given; else 32 locally, twice the pool's window on Ray).

    ``spec`` is the judge's spec, options included (a string is parsed here; the command line
    passes the :class:`~tourney.registry.Spec` it parsed once). The Ray settings (None = the
    default) are: ``replicas`` (judge actors, 1), ``ray_address`` (an existing cluster; None
    starts a local one for the run), ``num_gpus_per_replica`` (a vllm judge's
    ``tensor_parallel_size``, 1 unless set; 0 for other judges), ``num_cpus_per_replica`` (1),
    ``max_inflight_per_replica`` (64 for vllm, 8 for other judges), ``heartbeat_s`` (5: seconds
    between liveness pings to each replica), ``replica_timeout_s`` (60: a replica silent that long
    is retired and its matches re-dispatched; 0 turns the check off), ``call_timeout_s`` (off: a
    replica holding one match longer is restarted). Giving one of them with the local executor is
    a :class:`~tourney.errors.SpecError` naming its flag.

    A Ray pool is started here (its replicas are up, or :class:`ExecutorError` is raised);
    closing the judge (``aclose``) stops it.
    """
    if isinstance(spec, str):
        spec = parse_spec(spec)
    ray_settings = {
        "replicas": replicas,
        "ray_address": ray_address,
        "num_gpus_per_replica": num_gpus_per_replica,
        "num_cpus_per_replica": num_cpus_per_replica,
        "max_inflight_per_replica": max_inflight_per_replica,
        "heartbeat_s": heartbeat_s,
        "replica_timeout_s": replica_timeout_s,
        "call_timeout_s": call_timeout_s,
    }
    for key in ("heartbeat_s", "replica_timeout_s", "call_timeout_s"):
        value = ray_settings[key]
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise SpecError(f"{RAY_OPTIONS[key]} must be a number of seconds >= 0, got {value!r}")
    if executor == "local":
        given = [flag for key, flag in RAY_OPTIONS.items() if ray_settings[key] is not None]
        if given:
            raise SpecError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --executor ray")
        return build_judge(spec), LOCAL_CONCURRENCY if concurrency is None else concurrency
    if executor != "ray":
        raise SpecError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    heartbeat = heartbeat_s or HEARTBEAT_S
    timeout = REPLICA_TIMEOUT_S if replica_timeout_s is None else (replica_timeout_s or None)  # 0: off
    if timeout is not None and timeout < 2 * heartbeat:
        raise SpecError(
            f"--replica-timeout ({timeout:g} s) must be at least twice --heartbeat ({heartbeat:g} s): "
            "a healthy replica answers one heartbeat per interval"
        )
    engine = spec.name in _ENGINE_JUDGES
    gpus = num_gpus_per_replica
    if gpus is None:
        gpus = float(spec.options.get("tensor_parallel_size", 1)) if engine else 0.0
    pool = RayJudgePool(
        spec,
        replicas=replicas if replicas is not None else 1,
        address=ray_address,
        num_cpus_per_replica=num_cpus_per_replica if num_cpus_per_replica is not None else 1.0,
        num_gpus_per_replica=gpus,
        max_inflight_per_replica=max_inflight_per_replica or (64 if engine else 8),
        heartbeat_s=heartbeat,
        replica_timeout_s=timeout,
        call_timeout_s=call_timeout_s or None,
    )
    return pool, 2 * pool.window if concurrency is None else concurrency


def describe_executor(judge: Judge) -> dict[str, Any]:
    """What ran the judge, for a run's metadata: the pool's settings and per-replica stats."""
    if isinstance(judge, RayJudgePool):
        return judge.describe_executor()
    return {"executor": "local"}
