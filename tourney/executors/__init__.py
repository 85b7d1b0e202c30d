"""Executors: where judge calls run.

The default executor is local: the scheduler awaits ``judge.judge(match)`` in its own
process. :class:`RayJudgePool` runs the judge on a pool of long-lived Ray actors instead; it is
itself a :class:`~tourney.judges.base.Judge`, so the scheduler is the same event-driven
scheduler either way and a deterministic judge gives the same output file on both.

The command line's executor flags live here too (:func:`add_executor_options`,
:func:`build_executor_judge`), so a command that judges gets them with two calls.

Importing this package does not import ray: ray loads when a pool is built.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from ..judges.base import Judge, build_judge
from ..registry import parse_spec
from .ray_pool import ExecutorError, RayJudgePool, ReplicaStats

__all__ = [
    "EXECUTORS",
    "ExecutorError",
    "RayJudgePool",
    "ReplicaStats",
    "add_executor_options",
    "build_executor_judge",
    "describe_executor",
]

EXECUTORS = ("local", "ray")
#: default scheduler concurrency of the local executor
LOCAL_CONCURRENCY = 32
#: judges whose engine batches continuously: a replica keeps many matches in flight
_ENGINE_JUDGES = ("vllm",)

_RAY_FLAGS = {
    "replicas": "--replicas",
    "ray_address": "--ray-address",
    "num_gpus_per_replica": "--num-gpus-per-replica",
    "num_cpus_per_replica": "--num-cpus-per-replica",
    "max_inflight_per_replica": "--max-inflight-per-replica",
}


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--executor`` and the Ray pool's flags to a command's parser."""
    g = parser.add_argument_group("executor", "where judge calls run")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: in this process (default); ray: on a pool of long-lived Ray actors, "
                   "each holding one judge (one engine); same output as local")
    g.add_argument("--replicas", type=int, default=None, metavar="R",
                   help="Ray judge actors (default 1)")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="existing Ray cluster: HOST:PORT, ray://HOST:PORT or auto "
                   "(default: start a local cluster for this run)")
    g.add_argument("--num-gpus-per-replica", type=float, default=None, metavar="G",
                   help="GPUs per replica: a fraction or 1, or k > 1 for a tensor-parallel placement group "
                   "of k GPUs (default: a vllm judge's tensor_parallel_size, 1 unless set; 0 for other judges)")
    g.add_argument("--num-cpus-per-replica", type=float, default=None, metavar="C",
                   help="CPUs per replica (default 1)")
    g.add_argument("--max-inflight-per-replica", type=int, default=None, metavar="M",
                   help="matches a replica's judge runs at once (default 64 for vllm, 8 for other judges)")


def build_executor_judge(args: argparse.Namespace, judge: str, options: Mapping[str, Any]) -> tuple[Judge, int]:
    """The judge the scheduler should call for ``args.executor``, and the scheduler concurrency
    to use (``args.concurrency`` when given; else 32 locally, twice the pool's window on Ray).

    A Ray pool is started here (its replicas are up, or :class:`ExecutorError` is raised);
    closing the judge (``aclose``) stops it.
    """
    executor = getattr(args, "executor", "local")
    concurrency = getattr(args, "concurrency", None)
    if executor == "local":
        given = [flag for dest, flag in _RAY_FLAGS.items() if getattr(args, dest, None) is not None]
        if given:
            raise SpecError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --executor ray")
        return build_judge(judge, options), concurrency or LOCAL_CONCURRENCY
    if executor != "ray":
        raise SpecError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    spec = parse_spec(judge, options)
    engine = spec.name in _ENGINE_JUDGES
    gpus = args.num_gpus_per_replica
    if gpus is None:
        gpus = float(spec.options.get("tensor_parallel_size", 1)) if engine else 0.0
    pool = RayJudgePool(
        spec,
        replicas=args.replicas if args.replicas is not None else 1,
        address=args.ray_address,
        num_cpus_per_replica=args.num_cpus_per_replica if args.num_cpus_per_replica is not None else 1.0,
        num_gpus_per_replica=gpus,
        max_inflight_per_replica=args.max_inflight_per_replica or (64 if engine else 8),
    )
    return pool, concurrency or 2 * pool.window


def describe_executor(judge: Judge) -> dict[str, Any]:
    """What ran the judge, for a run's metadata: the pool's settings and per-replica stats."""
    if isinstance(judge, RayJudgePool):
        return judge.describe_executor()
    return {"executor": "local"}
