"""A local Ray with 2 CPUs, started once for the Ray tests and always shut down."""

from __future__ import annotations

import logging
import socket

import pytest

SKIP_REASON = "ray is not installed (pip install 'littlevision[ray]'): Ray tests skipped"


@pytest.fixture(scope="session")
def ray_local():
    """``ray`` initialised on this machine: 2 CPUs, a small object store, no dashboard."""
    try:
        import ray
        import ray.data  # noqa: F401
        import ray.serve  # noqa: F401
    except ImportError:
        pytest.skip(SKIP_REASON)
    ray.init(
        num_cpus=2,
        object_store_memory=128 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
