"""Fakes for the Ray and Slurm executor tests: a task whose worker dies, and helpers.

Cluster workers import this module (and ``engine_fakes``, ``test_engine_pool`` for its
stuck task) by name: the tests put ``tests/suites`` on their ``PYTHONPATH``. A task's
attributes travel with it to the workers, which is how a test tells a task where to
count its attempts.
"""

from __future__ import annotations

import functools
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from engine_fakes import GD_SOURCE, QuadraticTask

from suites.api import Problem, Task
from suites.record import RunSpec

#: Gradient descent with two configurations: a sweep of one task is 2 tuning runs + 1.
GD2_SOURCE = GD_SOURCE.replace("[0.01, 0.1, 0.3, 2.0]", "[0.1, 0.3]")


@dataclass
class DyingTask(QuadraticTask):
    """Its cluster worker — the trusted process that evaluates the run, which builds the
    problem too — is killed at set-up (like the out-of-memory killer) on the first
    ``deaths`` attempts of each seed; each attempt adds a line to a file in
    ``attempts_dir``. The sandboxed training worker, which may not write there, just
    trains."""

    name: str = "fake/dying"
    attempts_dir: str = ""
    deaths: int = 1_000_000

    def _attempts_file(self, seed: int) -> Path:
        return Path(self.attempts_dir) / f"{self.name.replace('/', '-')}-seed-{seed}"

    def attempts(self, seed: int) -> int:
        path = self._attempts_file(seed)
        return len(path.read_text().splitlines()) if path.exists() else 0

    def setup(self, seed: int, budget: str) -> Problem:
        try:
            with self._attempts_file(seed).open("a") as file:
                file.write(f"{os.getpid()}\n")
        except PermissionError:  # the training worker's sandbox
            return super().setup(seed, budget)
        if self.attempts(seed) <= self.deaths:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().setup(seed, budget)


def _find(tasks: dict[str, Task], name: str) -> Task:
    return tasks[name]


def lookup(*tasks: Task):
    """A picklable task lookup over ``tasks`` for the workers."""
    return functools.partial(_find, {t.name: t for t in tasks})


def spec_for(task: Task, submission, seed: int, lr: float = 0.3) -> RunSpec:
    return RunSpec.of(task, submission, "quick", {"lr": lr}, seed)


def outcome(report) -> list[tuple]:
    """What must not depend on the executor: every run's identity, status and metrics."""
    return sorted(
        (r.spec.phase, r.spec.task, r.spec.seed, str(r.spec.hparams), r.status, r.steps_run,
         tuple(sorted(r.metrics.items())))
        for r in report.results
    )


def result_files(root: Path) -> list[Path]:
    return sorted((root / "runs").rglob("*.json"))


def worker_pythonpath() -> str:
    """``PYTHONPATH`` for workers that must import this module and ``engine_fakes``."""
    here = str(Path(__file__).resolve().parent)
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
