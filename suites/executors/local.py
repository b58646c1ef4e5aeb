"""The local executor: runs on this machine, each submission in worker processes of its own.

Runs are trained in worker processes (spawn context), ``jobs`` of them at once, ``-j 1``
included. A worker serves one submission only: whatever a submission does to its
process (a default dtype, a thread count, a monkeypatch) reaches no other optimizer's
runs, and makes its own runs invalid (``suites.executors.base.consistency_problems``). A
worker imports torch and its submission once and makes many runs, so the cost per run is
milliseconds and the cost per submission a second or two. Its report of each run comes
back as bytes (``encode_outcome``), and this process — which never imports a submission —
evaluates the run and writes its result (``assemble_result``); meanwhile the worker waits,
so at most ``jobs`` processes compute at once.

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
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from suites.api import Submission, Task
from suites.executors.base import (
    MAX_MESSAGE_BYTES,
    Executor,
    Observed,
    TaskLookup,
    TrainRequest,
    assemble_result,
    default_kill_after,
    encode_outcome,
    failed_result,
    registry_task,
    stuck_message,
    submission_key,
)
from suites.executors.trainer import Trainer
from suites.process_tree import become_subreaper, reap_orphans
from suites.record import RunResult, RunSpec
from suites.worker_process import UntrustedMessage, WorkerProcess, inherited_environment, wait

log = logging.getLogger(__name__)

#: A training worker's resident memory limit (its whole process tree), unless told.
DEFAULT_MEMORY_LIMIT = 8 << 30
#: The end of a run's output that its run file keeps.
OUTPUT_TAIL_CHARS = 4000


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
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        reap_orphans: bool = False,
    ):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.time_limit = time_limit
        self.in_process = in_process
        self.task_lookup = task_lookup
        self.kill_after = kill_after if kill_after is not None else default_kill_after(time_limit)
        self.memory_limit = memory_limit
        # Orphans of a worker's processes are re-parented here and killed after each run;
        # only for a process that owns all its children (the lsb command), since every
        # other child of it would be killed too.
        self.reap_orphans = reap_orphans and become_subreaper()
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

    def _task(self, name: str, tasks: Mapping[str, Task]) -> Task:
        return tasks[name] if name in tasks else self.task_lookup(name)

    def _map_in_process(
        self, specs: list[RunSpec], tasks: Mapping[str, Task]
    ) -> Iterator[RunResult]:
        threads = torch.get_num_threads()
        trainer = Trainer(lambda name: self._task(name, tasks))
        try:
            for spec in specs:
                started = time.monotonic()
                message = encode_outcome(trainer.train(TrainRequest(spec, self.time_limit)))
                observed = Observed(wall_time=time.monotonic() - started)
                yield assemble_result(spec, self._task(spec.task, tasks), message, observed)
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
                wait([w.process for w in workers], timeout=self._wait_timeout(workers))
                for worker in list(workers):
                    result = self._collect(worker, tasks)
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
        all: an idle worker whose submission has no run left makes room. One that no other
        submission needs room from stays, ready for the next ``map`` (a sweep's next batch
        or phase), until ``close``."""
        wanted = list(dict.fromkeys(submission_key(spec) for spec in pending))
        for worker in [w for w in workers if w.ready and w.spec is None and w.key not in wanted]:
            if wanted and len(workers) >= self.jobs:
                worker.stop()
                workers.remove(worker)
        staffed = collections.Counter(w.key for w in workers)
        waiting = collections.Counter(submission_key(spec) for spec in pending)
        for key in wanted:  # one more worker for each submission, in turn, while room lasts
            if len(workers) >= self.jobs:
                break
            if staffed[key] < waiting[key]:
                first = next(spec for spec in pending if submission_key(spec) == key)
                workers.append(_Worker(key, self.task_lookup, first, self.memory_limit))
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

    def _collect(self, worker: _Worker, tasks: Mapping[str, Task]) -> RunResult | None:
        """The worker's finished run (evaluated here), or the result recorded for a killed
        or dead one."""
        spec = worker.spec
        message = worker.receive()
        if message is not None and spec is not None:
            observed = worker.observed()
            self._end_run(worker)
            return assemble_result(spec, self._task(spec.task, tasks), message, observed)
        if worker.dead:
            if not worker.ready:
                raise RuntimeError(
                    f"a worker process exited with code {worker.process.exitcode} before "
                    "taking any run; run with --in-process to see the error"
                )
            if spec is None:
                return None
            observed = worker.observed()
            self._end_run(worker)
            if worker.process.kill_reason == "out_of_memory":
                limit = f"{self.memory_limit / 2**30:g} GiB"
                return failed_result(spec, self._task(spec.task, tasks), "out_of_memory",
                                     f"the run's processes used more than the memory limit "
                                     f"({limit}; lsb run --memory-limit GIB): killed",
                                     observed)
            error = (f"the worker process died (exit code {worker.process.exitcode}) during "
                     "this run: the optimizer's code ended its process (os._exit, a crash)")
            log.warning("%s: %s", spec.task, error)
            return failed_result(spec, self._task(spec.task, tasks), "error", error, observed)
        if spec is not None and self.kill_after is not None:
            elapsed = time.monotonic() - worker.started
            if elapsed > self.kill_after:
                observed = worker.observed()
                worker.kill()
                self._end_run(worker)
                error = stuck_message(elapsed, self.time_limit)
                log.warning("%s: %s", spec.task, error)
                return failed_result(spec, self._task(spec.task, tasks), "timeout", error,
                                     observed)
        return None

    def _end_run(self, worker: _Worker) -> None:
        worker.end_run()
        if self.reap_orphans:
            reap_orphans({w.process.pid for w in self._workers})


def execute(task: Task, submission: Submission, hparams: Mapping[str, Any], seed: int,
            budget: str, *, time_limit: float | None = None, phase: str = "tune") -> RunResult:
    """One run made wholly in this process — trained, then evaluated and assembled as the
    driver does — for debugging and tests: nothing isolates the submission from this
    process. ``submission`` must be loaded (its ``build`` callable)."""
    spec = RunSpec.of(task, submission, budget, dict(hparams), seed, phase)
    trainer = Trainer(lambda name: task)
    threads = torch.get_num_threads()
    try:
        trainer.submissions.preload(submission)
        started = time.monotonic()
        message = encode_outcome(trainer.train(TrainRequest(spec, time_limit, task)))
        return assemble_result(spec, task, message,
                               Observed(wall_time=time.monotonic() - started))
    finally:
        torch.set_num_threads(threads)


def _next_for(key: tuple[str, str], pending: collections.deque[RunSpec]) -> RunSpec | None:
    """Take the first pending run of the submission ``key``, if any."""
    for index, spec in enumerate(pending):
        if submission_key(spec) == key:
            del pending[index]
            return spec
    return None




def sandbox_reads(spec: RunSpec) -> list[str]:
    """What a training worker of ``spec``'s submission may read besides the repository
    and the Python installation: the submission file's directory, the data directories
    of the suites, and the directories of suites outside the repository."""
    from suites import registry

    reads = [str(Path(spec.optimizer.runtime_path or ".").resolve().parent)]
    reads += [str(p) for p in registry.data_directories()]
    return reads


class _Worker:
    """One training worker of one submission (``key``): a sandboxed ``WorkerProcess``
    serving ``suites.executors.trainer.serve``; ``spec`` is the run it is making."""

    def __init__(self, key: tuple[str, str], task_lookup: TaskLookup, spec: RunSpec,
                 memory_limit: int | None):
        from suites.sandbox import default_policy, landlock_abi

        self.key = key
        self.spawned = time.monotonic()
        self.scratch = Path(tempfile.mkdtemp(prefix="lsb-worker-"))
        policy = default_policy(self.scratch, read=sandbox_reads(spec)) \
            if landlock_abi() and not _unconfined() else None
        self.process = WorkerProcess(
            # Plain data only: the bootstrap unpickles its arguments before it enters the
            # sandbox, which needs a process that has imported nothing that starts threads.
            "suites.executors.trainer:serve", (key, pickle.dumps(task_lookup)), policy=policy,
            memory_limit=memory_limit,
            address_space_headroom=None if torch.cuda.is_available() else 4 << 30,
            max_message=MAX_MESSAGE_BYTES, env=inherited_environment())
        if self.process.sandbox == "none":
            _warn_unsandboxed(self.process.sandbox_reason)
        self.ready = False
        #: Seconds from spawning to "ready", until the first run takes it (then NaN).
        self.start_seconds = math.nan
        self.dead = False
        self.spec: RunSpec | None = None
        self.started = math.nan
        self.mark = None
        self.run_start_seconds = math.nan
        self._sent_tasks: set[str] = set()

    @property
    def sandbox(self) -> str:
        return self.process.sandbox

    def start_run(self, spec: RunSpec, time_limit: float | None, task: Task | None) -> None:
        if spec.task in self._sent_tasks:
            task = None
        elif task is not None:
            try:
                pickle.dumps(task)  # what sending it would fail on
            except Exception:  # noqa: BLE001 -- an unpicklable task is looked up by name
                task = None
        self._sent_tasks.add(spec.task)
        self.mark = self.process.mark()
        self.spec, self.started = spec, time.monotonic()
        self.run_start_seconds, self.start_seconds = self.start_seconds, math.nan
        self.process.send(TrainRequest(spec, time_limit, task))

    def observed(self) -> Observed:
        """What the driver saw of the run in flight: its wall time, the worker tree's peak
        memory, the end of its output."""
        peak = self.process.peak_rss_since(self.mark) if self.mark is not None else None
        output = self.process.output_since(self.mark) if self.mark is not None else ""
        count = self.process.output_bytes_since(self.mark) if self.mark is not None else 0
        return Observed(wall_time=time.monotonic() - self.started, peak_rss_bytes=peak,
                        output_tail=output[-OUTPUT_TAIL_CHARS:], output_bytes=count,
                        sandbox=self.sandbox, worker_start=self.run_start_seconds)

    def receive(self) -> bytes | None:
        """A finished run's message if one is waiting (bytes, parsed by the driver as
        untrusted); notices a dead process."""
        try:
            if not self.process.poll(0):
                return None
            message = self.process.recv(0)
        except (EOFError, OSError, TimeoutError, UntrustedMessage):
            self.dead = True
            self.process.wait(5)  # its exit code, for the record
            return None
        if not isinstance(message, bytes):
            self.dead = True  # not the protocol: the worker is not to be trusted further
            self.process.kill()
            return None
        if message == b"ready" and not self.ready:
            self.ready = True
            self.start_seconds = time.monotonic() - self.spawned
            return None
        return message

    def end_run(self) -> None:
        """After each run: no process the run started lives on."""
        self.spec = None
        self.process.kill_descendants()

    def kill(self) -> None:
        self.process.kill()
        self.dead = True
        self.spec = None

    def stop(self) -> None:
        # A worker that never said it was ready is still importing and reads nothing: it
        # is killed at once instead of being given the grace to read the closed channel.
        self.process.stop(grace=1.0 if self.ready else 0.0)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _unconfined() -> bool:
    """``LSB_SANDBOX=0``: run training workers without the sandbox (debugging only)."""
    return os.environ.get("LSB_SANDBOX", "1") == "0"


_warned: list[str] = []


def _warn_unsandboxed(reason: str) -> None:
    if not _warned:
        _warned.append(reason)
        log.warning("training workers run without a sandbox (%s): their run files record "
                    "sandbox 'none'", reason or "LSB_SANDBOX=0")


def default_jobs() -> int:
    """One job per CPU core available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
