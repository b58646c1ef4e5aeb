"""The local executor: runs on this machine, in a pool of worker processes.

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
"""

from __future__ import annotations

import collections
import logging
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from multiprocessing.connection import Connection, wait

import torch

from suites.api import RunResult, RunSpec, Task
from suites.executors.base import (
    Executor,
    SubmissionCache,
    TaskLookup,
    default_kill_after,
    failed_result,
    prepare_worker_process,
    registry_task,
    run_spec,
    stuck_message,
)
from suites.training import warm_up

log = logging.getLogger(__name__)


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


def default_jobs() -> int:
    """One job per CPU core available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
