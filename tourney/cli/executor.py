"""The executor's command-line flags: ``--executor`` and the Ray pool's settings.

They map one to one onto the keywords of :func:`tourney.executors.build_executor_judge`
(``--replicas`` -> ``replicas``, ...); this module only adds the flags to a parser and reads
them back as keywords.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..executors import EXECUTORS

__all__ = ["add_executor_options", "executor_options"]

#: the flags' destinations, which are the Ray keywords of build_executor_judge
_RAY_KEYS = (
    "replicas",
    "ray_address",
    "num_gpus_per_replica",
    "num_cpus_per_replica",
    "max_inflight_per_replica",
    "heartbeat_s",
    "replica_timeout_s",
    "call_timeout_s",
)


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--executor`` and the Ray pool's flags to a command's parser."""
    g = parser.add_argument_group("executor", "where judge calls run")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: in this process (default); ray: on a pool of long-lived Ray actors, "
        "each holding one judge (one engine); same output as local",
    )
    g.add_argument("--replicas", type=int, default=None, metavar="R", help="Ray judge actors (default 1)")
    g.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="existing Ray cluster: HOST:PORT, ray://HOST:PORT or auto (default: start a local cluster for this run)",
    )
    g.add_argument(
        "--num-gpus-per-replica",
        type=float,
        default=None,
        metavar="G",
        help="GPUs per replica: a fraction or 1, or k > 1 for a tensor-parallel placement group "
        "of k GPUs (default: a vllm judge's tensor_parallel_size, 1 unless set; 0 for other judges)",
    )
    g.add_argument("--num-cpus-per-replica", type=float, default=None, metavar="C", help="CPUs per replica (default 1)")
    g.add_argument(
        "--max-inflight-per-replica",
        type=int,
        default=None,
        metavar="M",
        help="matches a replica's judge runs at once (default 64 for vllm, 8 for other judges)",
    )
    g.add_argument(
        "--heartbeat",
        dest="heartbeat_s",
        type=float,
        default=None,
        metavar="S",
        help="seconds between liveness pings to each Ray replica (default 5)",
    )
    g.add_argument(
        "--replica-timeout",
        dest="replica_timeout_s",
        type=float,
        default=None,
        metavar="S",
        help="retire a Ray replica that has answered nothing (no heartbeat, no result) for S seconds "
        "(frozen, wedged or cut off); its matches go to the other replicas (default 60; 0: off)",
    )
    g.add_argument(
        "--call-timeout",
        dest="call_timeout_s",
        type=float,
        default=None,
        metavar="S",
        help="restart a Ray replica that holds one match longer than S seconds while still "
        "answering heartbeats (default: off; a reasoning judge's call can take minutes)",
    )


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Ray settings the flags gave, as ``build_executor_judge`` keywords (None = not given)."""
    return {key: getattr(args, key) for key in _RAY_KEYS}
