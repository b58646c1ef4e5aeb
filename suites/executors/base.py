"""What every executor shares: the ``Executor`` interface and how one run is made in a
worker process (look the task up, load the submission, train, never raise).

``suites.executors.local`` runs on this machine (a process pool); ``suites.executors.cluster``
on Ray or Slurm. Every run uses one CPU thread whatever executes it, so a (task, config,
seed) gives the same numbers in-process, in the pool, on Ray and on Slurm.
"""

from __future__ import annotations

import abc
import logging
import math
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

from suites.api import RunResult, RunSpec, Submission, Task
from suites.training import environment, execute, warm_up

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
    return RunResult(
        spec=spec, status=status, metrics={}, score=math.nan, steps_run=0, curve={},
        time_per_step=math.nan, wall_time=wall_time, state_bytes=0, error=error,
        env=environment(),
    )


class SubmissionCache:
    """Loaded submissions by (path, source hash), so a worker imports each file once."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], Submission] = {}

    def get(self, path: str, expected_hash: str,
            expected_packages: Mapping[str, str] | None = None) -> Submission:
        """The submission at ``path``, which must still have the source hash (and, where
        given, the package versions) that the run was keyed by."""
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
        loaded = self._loaded[key]
        if expected_packages is not None and dict(expected_packages) != loaded.packages:
            raise RuntimeError(
                f"{path} needs the packages {dict(expected_packages)} (the versions its runs "
                f"are keyed by), but this process has {loaded.packages}: install the same "
                "versions on every worker"
            )
        return loaded


def submission_key(spec: RunSpec) -> tuple[str, str]:
    """Which submission a run belongs to: its worker processes serve no other."""
    return (spec.optimizer_path, spec.source_hash)


def run_spec(
    spec: RunSpec, time_limit: float | None, task_lookup: TaskLookup, cache: SubmissionCache
) -> RunResult:
    """One run, never raising: lookup failures become ``error`` results.

    Afterwards the process's global torch state is compared with the state it had before
    any submission was imported (``prepare_worker_process``); what changed is recorded
    in the result's ``env["global_state_changes"]``.
    """
    try:
        task = task_lookup(spec.task)
        submission = cache.get(spec.optimizer_path, spec.source_hash, spec.packages)
    except Exception:  # noqa: BLE001
        result = failed_result(spec, "error", traceback.format_exc())
    else:
        result = execute(
            task, submission, spec.hparams, spec.seed, spec.budget,
            time_limit=time_limit, phase=spec.phase,
        )
    changes = global_state_changes(_pristine_state, global_state()) if _pristine_state else []
    if changes:
        log.warning("%s of %s changed global torch state: %s", spec.task, spec.optimizer,
                    "; ".join(changes))
        result.env = {**result.env, "global_state_changes": changes}
    return result


#: Process-wide torch settings a submission could change, and how to read each.
_GLOBAL_STATE: dict[str, Callable[[], Any]] = {
    "default dtype": torch.get_default_dtype,
    "threads": torch.get_num_threads,
    "interop threads": torch.get_num_interop_threads,
    "grad mode": torch.is_grad_enabled,
    "anomaly detection": torch.is_anomaly_enabled,
    "deterministic algorithms": torch.are_deterministic_algorithms_enabled,
    "matmul precision": torch.get_float32_matmul_precision,
    "default device": lambda: str(torch.get_default_device()),
}
#: Functions that a monkeypatch replaces: recorded by identity.
_PATCHABLE = {
    "torch.Tensor.backward": lambda: torch.Tensor.backward,
    "torch.autograd.backward": lambda: torch.autograd.backward,
    "torch.autograd.grad": lambda: torch.autograd.grad,
    "torch.nn.Module.__call__": lambda: torch.nn.Module.__call__,
    "torch.optim.Optimizer.zero_grad": lambda: torch.optim.Optimizer.zero_grad,
    "torch.manual_seed": lambda: torch.manual_seed,
}


def global_state() -> dict[str, Any]:
    """The process's global torch state: settings by value, patchable functions by id."""
    state: dict[str, Any] = {name: read() for name, read in _GLOBAL_STATE.items()}
    state.update({name: id(read()) for name, read in _PATCHABLE.items()})
    return state


def global_state_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two ``global_state`` snapshots, one line per setting."""
    changes = []
    for name, old in before.items():
        new = after.get(name)
        if new != old:
            changes.append(f"{name} replaced" if name in _PATCHABLE else f"{name}: {old} → {new}")
    return changes


_worker_cache: SubmissionCache | None = None
#: The global state of this process before any submission was imported into it.
_pristine_state: dict[str, Any] | None = None


def prepare_worker_process() -> SubmissionCache:
    """Once per worker process: one torch thread, torch's one-time costs paid up front.

    Every run uses one thread whatever executes it, so a (task, config, seed) gives the
    same numbers in-process, in the pool, on Ray and on Slurm. Returns the process's
    submission cache.
    """
    global _worker_cache, _pristine_state
    if _worker_cache is None:
        torch.set_num_threads(1)
        warm_up()
        _worker_cache = SubmissionCache()
        _pristine_state = global_state()
    return _worker_cache
