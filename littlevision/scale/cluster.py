"""Joining or starting Ray, and sizing work to it: the part every Ray entry point shares.

Ray is an optional extra, so it is imported here and only here, inside functions: the base
install and every local code path never touch it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from littlevision._system import available_cores
from littlevision.errors import UserError

INSTALL_HINT = "pip install 'littlevision[ray]'"

#: Object store of a local Ray started by littlevision. Ray's default is 30% of the RAM; the
#: streaming pipelines here keep a few blocks of paths and probabilities in flight, so a small
#: store is plenty and leaves the memory to the actors (and, on a shared machine, to others).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


def require_ray(what: str = "Running on Ray", part: str = "data") -> ModuleType:
    """Import Ray and the part needed, or say in one sentence how to install them.

    Args:
        what: What needed Ray, to start the sentence (``"Predicting on Ray"``...).
        part: ``"data"`` or ``"serve"``: a bare ``pip install ray`` lacks their dependencies
            (pyarrow, FastAPI...), which the extra brings.

    Returns:
        The ``ray`` module.

    Raises:
        UserError: when Ray or the part is not installed.
    """
    try:
        import ray

        importlib.import_module(f"ray.{part}")
    except ImportError:
        raise UserError(f"{what} needs the optional Ray extra: {INSTALL_HINT}") from None
    return ray


def connect_ray(
    ray: ModuleType,
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
) -> bool:
    """Join ``address`` or start a local Ray unless this process is connected already.

    Arguments as :func:`ray_session`, which most callers want; this is for one whose Ray
    outlives the call (``serve_ray(..., blocking=False)``).

    Returns:
        True when Ray was started or joined here (the caller shuts it down), False when it was
        already initialised.

    Raises:
        UserError: when the cluster cannot be reached.
    """
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(
                num_cpus=num_cpus or available_cores(),
                object_store_memory=object_store_memory or LOCAL_OBJECT_STORE_BYTES,
                **common,
            )
    except ConnectionError as e:
        raise UserError(f"Could not join the Ray cluster at '{address}': {e}") from None
    return True


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
) -> Iterator[ModuleType]:
    """Use the Ray this process is already connected to, join ``address``, or start a local one.

    A Ray started or joined here is shut down on exit (the cluster itself keeps running when
    joined); one that was already initialised is left as it was, so callers (tests, notebooks,
    a server) can run several jobs on one Ray.

    Args:
        address: A cluster to join (``"auto"``, ``"HOST:6379"`` or ``"ray://HOST:10001"``);
            ``None`` starts a local Ray on this machine.
        num_cpus: CPUs of a local Ray (default: the cores this process may use).
        object_store_memory: Bytes of a local Ray's object store (default
            :data:`LOCAL_OBJECT_STORE_BYTES`).

    Yields:
        The ``ray`` module, initialised.

    Raises:
        UserError: when Ray is not installed or the cluster cannot be reached.
    """
    ray = require_ray()
    if not connect_ray(ray, address, num_cpus=num_cpus, object_store_memory=object_store_memory):
        yield ray
        return
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors to run and how many threads each gives ONNX Runtime.

    Attributes:
        num_actors: Actors, each holding one ONNX Runtime session.
        threads_per_actor: Intra-op threads of each session, and the CPUs Ray reserves for it.
    """

    num_actors: int
    threads_per_actor: int


def plan_actors(
    ray: ModuleType, num_actors: int | None, threads_per_actor: int | None
) -> ActorPlan:
    """Fill the cluster's CPUs with single-threaded actors unless told otherwise.

    One thread per session and one session per core is the fastest way to spend CPUs on batch
    inference: ONNX Runtime's intra-op threads synchronise at every layer, independent processes
    never do, and each actor decodes its own images while the others run the model.

    Raises:
        UserError: for a count below 1.
    """
    threads = 1 if threads_per_actor is None else int(threads_per_actor)
    if threads < 1:
        raise UserError(f"Expected threads_per_actor >= 1. Received: threads_per_actor={threads}")
    if num_actors is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        num_actors = max(1, cpus // threads)
    if int(num_actors) < 1:
        raise UserError(f"Expected num_actors >= 1. Received: num_actors={num_actors}")
    return ActorPlan(int(num_actors), threads)
