"""Executors beyond one machine: ``RayExecutor`` (each run a Ray task) and
``SlurmExecutor`` (each run a Slurm job, a sweep's runs one job array, through submitit).
Ray and submitit are optional extras, imported only when chosen.

A cluster worker (a Ray task, a Slurm job) is trusted code: it supervises the run as
the local executor does on one machine — the submission is trained in a child process of
its own, whose report the worker checks and evaluates itself (``suites.executors.base``) —
and saves the result into the shared results directory (``ResultStore.save``: an atomic
write under the run key), so a run finished by a worker is kept even if the driver or the
worker is lost before the result reaches the driver. A run whose worker was lost (killed,
out of memory, node failure) is made again up to ``retries`` times, then recorded as
``error`` with the reason. The worker also enforces the hard time limit: past
``kill_after`` it kills the training child and saves the run as ``timeout``.
"""

from __future__ import annotations

import abc
import importlib
import logging
import math
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from suites.api import Task
from suites.executors.base import (
    Executor,
    TaskLookup,
    default_kill_after,
    failed_result,
    registry_task,
)
from suites.executors.local import DEFAULT_MEMORY_LIMIT, LocalExecutor
from suites.record import RunResult, RunSpec
from suites.results import ResultStore

log = logging.getLogger(__name__)



class MissingExtra(ImportError):
    """An executor's optional dependency is not installed; the message names the fix."""


def import_extra(module: str, extra: str) -> ModuleType:
    """``module``, or ``MissingExtra`` naming the ``pip install '.[extra]'`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtra(
            f"the {extra} executor needs the package {module!r}, which is not installed: "
            f"pip install '.[{extra}]' (in a checkout of LandscapeBench) or "
            f"pip install 'landscapebench[{extra}]'"
        ) from err


def run_and_store(
    spec: RunSpec,
    time_limit: float | None,
    kill_after: float | None,
    results: str,
    task_lookup: TaskLookup,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> RunResult:
    """One run on a cluster worker (a Ray task, a Slurm job), saved to ``results``, returned.

    The run is trained in a child process (``LocalExecutor`` with one job) and evaluated
    here; past ``kill_after`` seconds the child is killed and the run is a ``timeout``.
    """
    with LocalExecutor(1, time_limit, task_lookup=task_lookup, kill_after=kill_after,
                       memory_limit=memory_limit) as local:
        (result,) = list(local.map([spec]))
    ResultStore(results).save(result)
    return result


class WorkerLost(Exception):
    """A run's worker ended without returning its result (killed, out of memory, lost node)."""


class ClusterLost(RuntimeError):
    """The cluster itself is gone (e.g. Ray stopped on this machine): the sweep stops.

    Its runs are not recorded as errors: the finished ones are saved, and running the
    sweep again makes the rest.
    """


class ClusterExecutor(Executor):
    """Runs each spec as a unit of work of a cluster framework; subclasses say how.

    ``results``: the shared results directory the workers save into. ``retries``: how
    often a run whose worker was lost is made again before it is recorded as ``error``.
    ``task_lookup`` runs on the workers (the registry by default), so it must be
    picklable: a module-level function, or e.g. a ``functools.partial`` of one.
    """

    #: What the log calls one unit of work.
    unit = "task"

    def __init__(
        self,
        results: str | Path,
        time_limit: float | None = None,
        *,
        retries: int = 2,
        task_lookup: TaskLookup = registry_task,
        kill_after: float | None = None,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    ):
        if retries < 0:
            raise ValueError(f"retries must be at least 0, got {retries}")
        self.results = Path(results).resolve()
        self.time_limit = time_limit
        self.retries = retries
        self.task_lookup = task_lookup
        self.kill_after = kill_after if kill_after is not None else default_kill_after(time_limit)
        self.memory_limit = memory_limit

    @abc.abstractmethod
    def _submit(self, specs: Sequence[RunSpec]) -> list[Any]:
        """Start ``run_and_store`` for each spec; one handle per spec, in order."""

    @abc.abstractmethod
    def _wait(self, handles: Sequence[Any]) -> list[Any]:
        """Some of ``handles`` that have finished; may return none after a while."""

    @abc.abstractmethod
    def _result(self, handle: Any, spec: RunSpec) -> RunResult:
        """A finished handle's result; ``WorkerLost`` if its worker ended without one."""

    @abc.abstractmethod
    def _cancel(self, handles: Sequence[Any]) -> None:
        """Stop these runs (the driver is stopping)."""

    def _call_args(self) -> tuple[Any, ...]:
        """``run_and_store``'s arguments after the spec."""
        return (self.time_limit, self.kill_after, str(self.results), self.task_lookup,
                self.memory_limit)

    def map(
        self, specs: Iterable[RunSpec], tasks: Mapping[str, Task] | None = None
    ) -> Iterator[RunResult]:
        specs = list(specs)
        return self._collect(specs) if specs else iter(())

    def _collect(self, specs: list[RunSpec]) -> Iterator[RunResult]:
        store = ResultStore(self.results)
        pending: dict[Any, tuple[RunSpec, int]] = {}  # handle: (spec, attempt)

        def submit(batch: list[RunSpec], attempt: int) -> None:
            handles = self._submit(batch)
            log.info("submitted %d runs as %ss (attempt %d)", len(batch), self.unit, attempt)
            pending.update(zip(handles, ((spec, attempt) for spec in batch), strict=True))

        submit(specs, 1)
        finished = False
        try:
            while pending:
                again: dict[int, list[RunSpec]] = {}
                for handle in self._wait(list(pending)):
                    spec, attempt = pending.pop(handle)
                    try:
                        result = self._result(handle, spec)
                    except WorkerLost as err:
                        result = self._after_loss(store, spec, attempt, str(err))
                    if result is None:
                        again.setdefault(attempt + 1, []).append(spec)
                    else:
                        yield result
                for attempt, batch in again.items():
                    submit(batch, attempt)
            finished = True
        finally:
            if not finished and pending:  # the driver stops: leave no runs behind
                log.info("cancelling %d unfinished runs", len(pending))
                self._cancel(list(pending))

    def _after_loss(
        self, store: ResultStore, spec: RunSpec, attempt: int, reason: str
    ) -> RunResult | None:
        """The result of a run whose worker was lost on its ``attempt``-th try; ``None``: again."""
        stored = store.load(spec)  # saved before the worker ended (a timeout, a lost reply)
        if stored is not None:
            return stored
        reason = reason.strip() or "no reason given"
        if attempt <= self.retries:
            log.warning("%s seed %s: worker lost (%s); making the run again",
                        spec.task, spec.seed, _first_line(reason))
            return None
        error = f"the worker was lost {attempt} times; the last time: {reason}"
        log.warning("%s seed %s: %s", spec.task, spec.seed, _first_line(error))
        return failed_result(spec, self.task_lookup(spec.task), "error", error)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


class RayExecutor(ClusterExecutor):
    """Each run a Ray task with one CPU and ``gpus_per_run`` GPUs.

    ``address``: an existing cluster (``"auto"``, ``"ray://host:port"``); ``None`` starts
    Ray on this machine with ``num_cpus`` CPUs (default: all), stopped again by
    ``close()``. Nothing is started if Ray is already initialised in this process.
    Every node needs LandscapeBench installed and the submission files and the results
    directory at the same paths (a shared file system).
    """

    def __init__(
        self,
        results: str | Path,
        time_limit: float | None = None,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        gpus_per_run: float = 0,
        poll_s: float = 1.0,
        **options: Any,
    ):
        super().__init__(results, time_limit, **options)
        self._ray = import_extra("ray", "ray")
        self._started = False
        if not self._ray.is_initialized():
            if address is None:
                self._ray.init(num_cpus=num_cpus, include_dashboard=False)
            else:
                self._ray.init(address=address)
            self._started = True
        gpus = self._ray.cluster_resources().get("GPU", 0)
        if gpus_per_run > gpus:
            log.warning("the Ray cluster has %g GPUs now; runs that need %g wait until it has "
                        "more", gpus, gpus_per_run)
        self.poll_s = poll_s
        self._remote = self._ray.remote(run_and_store).options(
            num_cpus=1, num_gpus=gpus_per_run, max_retries=0, name="lsb-run"
        )

    def _submit(self, specs: Sequence[RunSpec]) -> list[Any]:
        return [self._remote.remote(spec, *self._call_args()) for spec in specs]

    def _wait(self, handles: Sequence[Any]) -> list[Any]:
        ready, _ = self._ray.wait(list(handles), num_returns=1, timeout=self.poll_s)
        if ready:  # and whatever else has finished meanwhile
            ready, _ = self._ray.wait(list(handles), num_returns=len(handles), timeout=0)
        return ready

    def _result(self, handle: Any, spec: RunSpec) -> RunResult:
        errors = self._ray.exceptions
        try:
            return self._ray.get(handle)
        except errors.RayTaskError as err:  # raised by lsb itself: making it again won't help
            return failed_result(spec, self.task_lookup(spec.task), "error",
                                 f"the Ray task failed: {err}")
        except errors.LocalRayletDiedError as err:
            raise ClusterLost(f"Ray stopped on this machine: {_first_line(str(err))}") from err
        except errors.RayError as err:
            raise WorkerLost(f"{type(err).__name__}: {err}") from err

    def _cancel(self, handles: Sequence[Any]) -> None:
        for handle in handles:  # a running task gets KeyboardInterrupt; its worker lives on
            try:
                self._ray.cancel(handle)
            except Exception as err:  # noqa: BLE001 -- finished meanwhile, or Ray is gone
                log.debug("could not cancel a Ray task: %s", err)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


class SlurmExecutor(ClusterExecutor):
    """Each run a Slurm job through submitit; the runs of one ``map`` are one job array.

    ``partition``, ``time_min`` (minutes per job; default: the hard time limit plus 5
    minutes for start-up), ``gpus_per_run`` and ``array_parallelism`` (most jobs of the
    array running at once; default 256) become sbatch options; each job asks for one
    CPU. Logs go to ``<results>/slurm-logs/<job id>/``. ``cluster="local"`` runs the
    jobs as processes of this machine (submitit's local executor), for tests. The
    driver polls the jobs every ``poll_s`` seconds (default: 15 on Slurm, 0.5 locally).
    """

    unit = "job"

    def __init__(
        self,
        results: str | Path,
        time_limit: float | None = None,
        *,
        partition: str | None = None,
        time_min: int | None = None,
        gpus_per_run: int = 0,
        array_parallelism: int | None = None,
        cluster: str = "slurm",
        poll_s: float | None = None,
        **options: Any,
    ):
        super().__init__(results, time_limit, **options)
        submitit = import_extra("submitit", "slurm")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise RuntimeError("sbatch was not found: run the Slurm executor on a Slurm login node")
        if time_min is None:
            time_min = math.ceil(self.kill_after / 60) + 5 if self.kill_after else 24 * 60
        self.cluster = cluster
        self.logs = self.results / "slurm-logs"
        self._executor = submitit.AutoExecutor(folder=self.logs / "%j", cluster=cluster)
        parameters: dict[str, Any] = {
            "name": "lsb", "timeout_min": time_min, "nodes": 1, "tasks_per_node": 1,
            "cpus_per_task": 1, "gpus_per_node": gpus_per_run,
        }
        if partition is not None:
            parameters["slurm_partition"] = partition
        if array_parallelism is not None:
            parameters["slurm_array_parallelism"] = array_parallelism
        self._executor.update_parameters(**parameters)
        self.poll_s = poll_s if poll_s is not None else (15.0 if cluster == "slurm" else 0.5)
        self._failed = submitit.core.utils.FailedJobError

    def _submit(self, specs: Sequence[RunSpec]) -> list[Any]:
        with self._executor.batch():
            jobs = [self._executor.submit(run_and_store, spec, *self._call_args())
                    for spec in specs]
        log.info("Slurm jobs %s..%s, logs in %s", jobs[0].job_id, jobs[-1].job_id, self.logs)
        return jobs

    def _wait(self, handles: Sequence[Any]) -> list[Any]:
        done = [job for job in handles if job.done()]
        if not done:
            time.sleep(self.poll_s)
        return done

    def _result(self, handle: Any, spec: RunSpec) -> RunResult:
        error = handle.exception()
        if error is None:
            return handle.result()
        if isinstance(error, self._failed):  # raised by lsb itself: making it again won't help
            return failed_result(spec, self.task_lookup(spec.task), "error",
                                 f"Slurm job {handle.job_id} failed: {error}")
        raise WorkerLost(f"Slurm job {handle.job_id} ({handle.state}): {error}")

    def _cancel(self, handles: Sequence[Any]) -> None:
        if self.cluster == "slurm":  # one scancel for them all, not one per array task
            subprocess.call(["scancel", *(job.job_id for job in handles)])
            return
        for job in handles:
            job.cancel(check=False)
