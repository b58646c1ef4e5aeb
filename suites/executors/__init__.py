"""Executors: where runs execute. ``map`` takes run specs and yields results as they finish.

One machine: ``LocalExecutor`` (``suites.executors.local``). Beyond one machine:
``RayExecutor`` and ``SlurmExecutor`` (``suites.executors.cluster``). The interface and
the making of one run in a worker are in ``suites.executors.base``.
"""

from suites.executors.base import Executor, failed_result
from suites.executors.cluster import (
    ClusterExecutor,
    ClusterLost,
    MissingExtra,
    RayExecutor,
    SlurmExecutor,
    WorkerLost,
)
from suites.executors.local import LocalExecutor, default_jobs, execute

__all__ = [
    "ClusterExecutor", "ClusterLost", "Executor", "LocalExecutor", "MissingExtra",
    "RayExecutor", "SlurmExecutor", "WorkerLost", "default_jobs", "execute", "failed_result",
]
