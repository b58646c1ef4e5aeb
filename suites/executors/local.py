"""The local executor: runs on this machine, each submission in worker processes of its own.

Runs are made in worker processes (spawn context), ``jobs`` of them at once, ``-j 1``
included. A worker serves one submission only: whatever a submission does to its
process (a default dtype, a thread count, a monkeypatch) reaches no other optimizer's
runs, and is recorded in its own results (``env["global_state_changes"]``). A worker
imports torch and its submission once and makes many runs, so the cost per run is
milliseconds and the cost per submission a second or two.

Each run has a time limit that the training loop enforces itself; a watchdog in the
parent kills a worker whose run overshoots it by a grace period (a run stuck inside one
step) and records the run as ``timeout``; a worker that dies (``os._exit``, a crash)
records its run as ``error``. Either way the worker is replaced and the sweep goes on.

Workers get the task objects the sweep was given (pickled, once per worker); a task
that cannot be pickled is looked up by name (``suites.registry.get_task`` unless
``task_lookup`` says otherwise; it must be a module-level function so it can be sent to
them). Submissions are loaded from their file, checking that its source hash is the one
the spec names. ``in_process=True`` makes the runs in this process instead, one after
another, for debugging: nothing is isolated then.
"""

from __future__ import annotations

import collections
import logging
import math
import multiprocessing
import os
import pickle
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
    submission_key,
)
from suites.training import warm_up

log = logging.getLogger(__name__)


class LocalExecutor(Executor):
    """This machine: ``jobs`` worker processes, each serving one submission.

    The workers start at the first ``map`` and serve later ones (the tuning and the
    evaluation phase of a sweep) until ``close()``; use the executor as a context manager.

    ``time_limit``: seconds per run (``None``: unlimited). ``kill_after``: seconds after
    which the watchdog kills a worker's run; by default the time limit plus a grace of
    10 s and a quarter of the limit. Each run uses one CPU thread (``jobs`` sets the
    parallelism), which also makes results independent of ``jobs``. ``in_process``: make
    the runs in this process (debugging only: no isolation, no watchdog).
    """

    def __init__(
        self,
        jobs: int = 1,
        time_limit: float | None = None,
        *,
        in_process: bool = False,
        task_lookup: TaskLookup = registry_task,
        kill_after: float | None = None,
    ):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.time_limit = time_limit
        self.in_process = in_process
        self.task_lookup = task_lookup
        self.kill_after = kill_after if kill_after is not None else default_kill_after(time_limit)
        self._workers: list[_Worker] = []

    def map(
        self, specs: Iterable[RunSpec], tasks: Mapping[str, Task] | None = None
    ) -> Iterator[RunResult]:
        specs = list(specs)
        if not specs:
            return iter(())
        if self.in_process:
            return self._map_in_process(specs, tasks or {})
        return self._map_pool(specs, tasks or {})

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

    def _map_pool(self, specs: list[RunSpec], tasks: Mapping[str, Task]
                  ) -> Iterator[RunResult]:
        pending = collections.deque(specs)
        workers = self._workers
        finished = False
        try:
            while pending or any(w.spec is not None for w in workers):
                self._staff(workers, pending)
                for worker in workers:
                    if worker.ready and worker.spec is None:
                        spec = _next_for(worker.key, pending)
                        if spec is not None:
                            worker.start_run(spec, self.time_limit, tasks.get(spec.task))
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

    def _staff(self, workers: list[_Worker], pending: collections.deque[RunSpec]) -> None:
        """Start workers for the submissions that have pending runs, at most ``jobs`` in
        all: an idle worker whose submission has no run left makes room."""
        wanted = list(dict.fromkeys(submission_key(spec) for spec in pending))
        for worker in [w for w in workers if w.ready and w.spec is None and w.key not in wanted]:
            if len(workers) >= self.jobs or not wanted:
                worker.stop()
                workers.remove(worker)
        staffed = collections.Counter(w.key for w in workers)
        waiting = collections.Counter(submission_key(spec) for spec in pending)
        for key in wanted:  # one more worker for each submission, in turn, while room lasts
            if len(workers) >= self.jobs:
                break
            if staffed[key] < waiting[key]:
                workers.append(_Worker(key, self.task_lookup))
                staffed[key] += 1

    def close(self) -> None:
        """Stop the workers (a later ``map`` starts new ones)."""
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
                    "taking any run; run with --in-process to see the error"
                )
            if spec is None:
                return None
            worker.spec = None
            error = (f"the worker process died (exit code {worker.process.exitcode}) during "
                     "this run: the optimizer's code ended its process (os._exit, a crash)")
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


def _next_for(key: tuple[str, str], pending: collections.deque[RunSpec]) -> RunSpec | None:
    """Take the first pending run of the submission ``key``, if any."""
    for index, spec in enumerate(pending):
        if submission_key(spec) == key:
            del pending[index]
            return spec
    return None


class _Worker:
    """One worker process of one submission (``key``) and the pipe to it; ``spec`` is the
    run it is making."""

    def __init__(self, key: tuple[str, str], task_lookup: TaskLookup):
        context = multiprocessing.get_context("spawn")
        self.key = key
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, key, task_lookup),
                                       daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.dead = False
        self.spec: RunSpec | None = None
        self.started = math.nan
        self._sent_tasks: set[str] = set()

    def start_run(self, spec: RunSpec, time_limit: float | None, task: Task | None) -> None:
        if spec.task in self._sent_tasks:
            task = None
        elif task is not None:
            try:
                pickle.dumps(task)  # what sending it would fail on
            except Exception:  # noqa: BLE001 -- an unpicklable task is looked up by name
                task = None
        self._sent_tasks.add(spec.task)
        self.spec, self.started = spec, time.monotonic()
        self.conn.send((spec, time_limit, task))

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


def _worker_main(conn: Connection, key: tuple[str, str], task_lookup: TaskLookup) -> None:
    # Ctrl-C and SIGTERM reach the whole process group; the parent alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cache = prepare_worker_process()
    tasks: dict[str, Task] = {}

    def lookup(name: str) -> Task:
        return tasks[name] if name in tasks else task_lookup(name)

    try:
        conn.send("ready")
        while (message := conn.recv()) is not None:
            spec, time_limit, task = message
            if task is not None:
                tasks[spec.task] = task
            if submission_key(spec) != key:  # the parent never sends one; refuse to mix
                raise RuntimeError(f"worker of {key} was sent a run of {submission_key(spec)}")
            conn.send(run_spec(spec, time_limit, lookup, cache))
    except (EOFError, OSError):
        return  # the parent has gone: nobody is waiting for results


def default_jobs() -> int:
    """One job per CPU core available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
