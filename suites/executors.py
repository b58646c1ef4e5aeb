"""Executors: where runs execute. ``map`` takes run specs and yields results as they finish.

One machine: ``LocalExecutor``. Beyond one machine: ``RayExecutor`` (each run a Ray task)
and ``SlurmExecutor`` (each run a Slurm job, a sweep's runs one job array, through
submitit); Ray and submitit are optional extras, imported only when chosen.

``LocalExecutor(jobs=1)`` runs in the current process (handy for debugging and tests);
``jobs > 1`` starts a pool of worker processes (spawn context). A worker imports torch
once and makes many runs, so the cost per run is milliseconds. Each run has a time
limit that the training loop enforces itself; a watchdog in the parent kills a worker
whose run overshoots it by a grace period (a run stuck inside one step) and records
the run as ``timeout``; a worker that dies records its run as ``error``. Either way
the worker is replaced and the sweep goes on.

In-process runs use the task objects they are given. Pool workers look tasks up by
name (``suites.registry.get_task`` unless ``task_lookup`` says otherwise; it must be a
module-level function so it can be sent to them). Submissions are loaded from their
file, checking that its source hash is the one the spec names.

Cluster workers save each result into the shared results directory themselves
(``ResultStore.save``: an atomic write under the run key), so a run finished by a worker
is kept even if the driver or the worker is lost before the result reaches the driver.
A run whose worker was lost (killed, out of memory, node failure) is made again up to
``retries`` times, then recorded as ``error`` with the reason. A worker also enforces
the hard time limit itself: past ``kill_after`` it saves the run as ``timeout`` and exits.
"""

from __future__ import annotations

import abc
import collections
import importlib
import logging
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from suites.api import RunResult, RunSpec, Submission, Task
from suites.results import ResultStore

log = logging.getLogger(__name__)

TaskLookup = Callable[[str], Task]


class Executor(abc.ABC):
    """Runs specs somewhere and yields their results as they complete (in any order).

    ``tasks`` maps the specs' task names to the task objects; an executor that runs in
    other processes looks tasks up by name there instead (see ``LocalExecutor``).
    """

    @abc.abstractmethod
    def map(
        self, specs: Iterable[RunSpec], tasks: Mapping[str, Task] | None = None
    ) -> Iterator[RunResult]: ...

    def close(self) -> None:
        """Release what the executor holds (worker processes, a Ray instance it started)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def default_kill_after(time_limit: float | None) -> float | None:
    """When to kill a run that ignores its time limit: 1.25 × the limit + 10 s."""
    return None if time_limit is None else time_limit * 1.25 + 10.0


def stuck_message(elapsed: float, time_limit: float | None) -> str:
    return (
        f"killed after {elapsed:.1f} s: the run did not stop at its time limit "
        f"({time_limit} s), most likely stuck inside one step"
    )


def registry_task(name: str) -> Task:
    """The default task lookup: the registry, read at call time."""
    from suites import registry

    return registry.get_task(name)


def failed_result(spec: RunSpec, status: str, error: str, wall_time: float = math.nan) -> RunResult:
    """The result of a run that ended outside the training loop (lookup failure, killed)."""
    from suites.runner import environment

    return RunResult(
        spec=spec, status=status, metrics={}, score=math.nan, steps_run=0, curve={},
        time_per_step=math.nan, wall_time=wall_time, state_bytes=0, error=error,
        env=environment(),
    )


class SubmissionCache:
    """Loaded submissions by (path, source hash), so a worker imports each file once."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], Submission] = {}

    def get(self, path: str, expected_hash: str) -> Submission:
        from suites.submission import load_submission, source_hash

        key = (path, expected_hash)
        if key not in self._loaded:
            found = source_hash(path)
            if found != expected_hash:
                raise RuntimeError(
                    f"{path} changed during the sweep (source hash {found}, expected "
                    f"{expected_hash}); rerun the sweep to run the new version"
                )
            self._loaded[key] = load_submission(path)
        return self._loaded[key]


def run_spec(
    spec: RunSpec, time_limit: float | None, task_lookup: TaskLookup, cache: SubmissionCache
) -> RunResult:
    """One run, never raising: lookup failures become ``error`` results."""
    from suites.runner import execute

    try:
        task = task_lookup(spec.task)
        submission = cache.get(spec.optimizer_path, spec.source_hash)
    except Exception:  # noqa: BLE001
        return failed_result(spec, "error", traceback.format_exc())
    return execute(
        task, submission, spec.hparams, spec.seed, spec.budget,
        time_limit=time_limit, phase=spec.phase,
    )


class LocalExecutor(Executor):
    """This machine: in-process for ``jobs == 1``, else a pool of ``jobs`` processes.

    The pool starts at the first ``map`` and serves later ones (the tuning and the
    evaluation phase of a sweep) until ``close()``; use the executor as a context manager.

    ``time_limit``: seconds per run (``None``: unlimited). ``kill_after``: seconds after
    which the watchdog kills a pool worker's run; by default the time limit plus a grace
    of 10 s and a quarter of the limit. Each run uses one CPU thread (``jobs`` sets the
    parallelism), which also makes results independent of ``jobs``.
    """

    def __init__(
        self,
        jobs: int = 1,
        time_limit: float | None = None,
        *,
        task_lookup: TaskLookup = registry_task,
        kill_after: float | None = None,
    ):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.time_limit = time_limit
        self.task_lookup = task_lookup
        self.kill_after = kill_after if kill_after is not None else default_kill_after(time_limit)
        self._workers: list[_Worker] = []

    def map(
        self, specs: Iterable[RunSpec], tasks: Mapping[str, Task] | None = None
    ) -> Iterator[RunResult]:
        specs = list(specs)
        if not specs:
            return iter(())
        if self.jobs == 1:
            return self._map_in_process(specs, tasks or {})
        return self._map_pool(specs)

    def _map_in_process(
        self, specs: list[RunSpec], tasks: Mapping[str, Task]
    ) -> Iterator[RunResult]:
        from suites.runner import warm_up

        def lookup(name: str) -> Task:
            return tasks[name] if name in tasks else self.task_lookup(name)

        cache = SubmissionCache()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        warm_up()
        try:
            for spec in specs:
                yield run_spec(spec, self.time_limit, lookup, cache)
        finally:
            torch.set_num_threads(threads)

    def _map_pool(self, specs: list[RunSpec]) -> Iterator[RunResult]:
        pending = collections.deque(specs)
        workers = self._workers
        finished = False
        try:
            while pending or any(w.spec is not None for w in workers):
                while len(workers) < min(self.jobs, len(pending)):  # start, or replace the dead
                    workers.append(_Worker(self.task_lookup))
                for worker in workers:
                    if worker.ready and worker.spec is None and pending:
                        worker.start_run(pending.popleft(), self.time_limit)
                wait(
                    [w.conn for w in workers] + [w.process.sentinel for w in workers],
                    timeout=self._wait_timeout(workers),
                )
                for worker in list(workers):
                    result = self._collect(worker)
                    if worker.dead:
                        worker.stop()
                        workers.remove(worker)
                    if result is not None:
                        yield result
            finished = True
        finally:
            if not finished:  # abandoned midway: runs still in flight would be orphans
                for worker in [w for w in workers if w.spec is not None]:
                    worker.stop()
                    workers.remove(worker)

    def close(self) -> None:
        """Stop the pool's workers (a later ``map`` starts new ones)."""
        for worker in self._workers:
            worker.stop()
        self._workers.clear()

    def _wait_timeout(self, workers: list[_Worker]) -> float:
        if self.kill_after is None:
            return 5.0
        now = time.monotonic()
        left = [w.started + self.kill_after - now for w in workers if w.spec is not None]
        return max(0.01, min(left, default=5.0))

    def _collect(self, worker: _Worker) -> RunResult | None:
        """The worker's finished run, or the result recorded for a killed or dead one."""
        message = worker.receive()
        if message is not None:
            return message
        spec = worker.spec
        if worker.dead:
            if not worker.ready:
                raise RuntimeError(
                    f"a worker process exited with code {worker.process.exitcode} before "
                    "taking any run; run with -j 1 to see the error"
                )
            if spec is None:
                return None
            worker.spec = None
            error = f"the worker process died (exit code {worker.process.exitcode}) during this run"
            log.warning("%s: %s", spec.task, error)
            return failed_result(spec, "error", error, time.monotonic() - worker.started)
        if spec is not None and self.kill_after is not None:
            elapsed = time.monotonic() - worker.started
            if elapsed > self.kill_after:
                worker.kill()
                error = stuck_message(elapsed, self.time_limit)
                log.warning("%s: %s", spec.task, error)
                return failed_result(spec, "timeout", error, elapsed)
        return None


class _Worker:
    """One pool process and the pipe to it; ``spec`` is the run it is making."""

    def __init__(self, task_lookup: TaskLookup):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, task_lookup), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.dead = False
        self.spec: RunSpec | None = None
        self.started = math.nan

    def start_run(self, spec: RunSpec, time_limit: float | None) -> None:
        self.spec, self.started = spec, time.monotonic()
        self.conn.send((spec, time_limit))

    def receive(self) -> RunResult | None:
        """A finished run if one is waiting; notices a dead process."""
        try:
            if not self.conn.poll():
                if not self.process.is_alive():
                    self.dead = True
                return None
            message = self.conn.recv()
        except (EOFError, OSError):
            self.dead = True
            self.process.join(timeout=5)
            return None
        if message == "ready":
            self.ready = True
            return None
        self.spec = None
        return message

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.dead = True
        self.spec = None

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout=1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def _worker_main(conn: Connection, task_lookup: TaskLookup) -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cache = prepare_worker_process()
    try:
        conn.send("ready")
        while (message := conn.recv()) is not None:
            spec, time_limit = message
            conn.send(run_spec(spec, time_limit, task_lookup, cache))
    except (EOFError, BrokenPipeError):
        return  # the parent has gone: nobody is waiting for results


_worker_cache: SubmissionCache | None = None


def prepare_worker_process() -> SubmissionCache:
    """Once per worker process: one torch thread, torch's one-time costs paid up front.

    Every run uses one thread whatever executes it, so a (task, config, seed) gives the
    same numbers in-process, in the pool, on Ray and on Slurm. Returns the process's
    submission cache.
    """
    global _worker_cache
    if _worker_cache is None:
        from suites.runner import warm_up

        torch.set_num_threads(1)
        warm_up()
        _worker_cache = SubmissionCache()
    return _worker_cache


def default_jobs() -> int:
    """One job per CPU core available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- clusters


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
) -> RunResult:
    """One run on a cluster worker (a Ray task, a Slurm job), saved to ``results``, returned.

    Past ``kill_after`` seconds (a run stuck inside one step) a timer saves the run as
    ``timeout`` and ends the process: the driver sees a lost worker and finds that result.
    """
    cache = prepare_worker_process()
    store = ResultStore(results)
    timer = None
    if kill_after is not None:
        timer = threading.Timer(kill_after, _give_up, (store, spec, kill_after, time_limit))
        timer.daemon = True
        timer.start()
    try:
        result = run_spec(spec, time_limit, task_lookup, cache)
    finally:
        if timer is not None:
            timer.cancel()
    store.save(result)
    return result


def _give_up(store: ResultStore, spec: RunSpec, elapsed: float, time_limit: float | None) -> None:
    error = stuck_message(elapsed, time_limit)
    log.warning("%s: %s", spec.task, error)
    store.save(failed_result(spec, "timeout", error, elapsed))
    os._exit(1)  # the stuck step holds the main thread; only ending the process frees it


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
    ):
        if retries < 0:
            raise ValueError(f"retries must be at least 0, got {retries}")
        self.results = Path(results).resolve()
        self.time_limit = time_limit
        self.retries = retries
        self.task_lookup = task_lookup
        self.kill_after = kill_after if kill_after is not None else default_kill_after(time_limit)

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
        return (self.time_limit, self.kill_after, str(self.results), self.task_lookup)

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
        return failed_result(spec, "error", error)


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
            return failed_result(spec, "error", f"the Ray task failed: {err}")
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
            return failed_result(spec, "error", f"Slurm job {handle.job_id} failed: {error}")
        raise WorkerLost(f"Slurm job {handle.job_id} ({handle.state}): {error}")

    def _cancel(self, handles: Sequence[Any]) -> None:
        if self.cluster == "slurm":  # one scancel for them all, not one per array task
            subprocess.call(["scancel", *(job.job_id for job in handles)])
            return
        for job in handles:
            job.cancel(check=False)
