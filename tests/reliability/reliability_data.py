"""Run results for the reliability tests, written through the real store: the smallest
records that exercise the leaderboard and the site, and helpers that corrupt them."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from suites.api import Metric
from suites.record import MetricRecord, OptimizerRef, RunResult, RunSpec
from suites.results import ResultStore
from suites.selection import registered_task_metrics

#: The registered metric of the chain tasks these records name (scoring takes the registry's).
STEPS = Metric("evals_to_escape", higher_is_better=False, target=0.05,
               unit="gradient evaluations")
ACCURACY = Metric("accuracy", higher_is_better=True)
_registered = functools.cache(registered_task_metrics)


def result(task: str = "chain/depth-4-const", optimizer: str = "sgd", *, phase: str = "eval",
           seed: int = 1000, score: float = 10.0, status: str = "ok", lr: float = 0.1,
           metric: Metric | None | str = "registered", path: str = "optimizers/sgd.py",
           source_hash: str = "0123456789ab") -> RunResult:
    """One run; ``metric="registered"``: the registered task's (``STEPS`` for a task that
    no installed suite defines)."""
    if metric == "registered":
        metric = _registered().get(task, STEPS)
    spec = RunSpec(task=task, budget="quick",
                   optimizer=OptimizerRef(name=optimizer, source_hash=source_hash, path=path,
                                          lr_key="lr"),
                   hparams={"lr": lr}, seed=seed, phase=phase)
    return RunResult(spec=spec, status=status, metrics={"loss": score}, score=score,
                     steps_run=20, grad_evals=20,
                     curve={"step": [1, 2, 3], "loss": [1.0, 0.5, 0.25],
                            "grad_evals": [1, 2, 3]},
                     time_per_step=1e-4, wall_time=0.01, state_bytes=8, param_bytes=8,
                     env={"device": "cpu", "machine": "cpu-test"},
                     suite=task.split("/", 1)[0],
                     metric=MetricRecord.of(metric) if metric is not None else None)


def sweep(store: ResultStore, task: str, optimizer: str, *, score: float = 10.0,
          status: str = "ok", phases: tuple[str, ...] = ("tune", "eval"), **kwargs: Any
          ) -> None:
    """Two tuning configurations and two evaluation seeds of ``optimizer`` on ``task``."""
    if "tune" in phases:
        for lr in (0.1, 0.01):
            store.save(result(task, optimizer, phase="tune", seed=0, lr=lr, status=status,
                              score=score * (1 if lr == 0.1 else 2), **kwargs))
    if "eval" in phases:
        for seed in (1000, 1001):
            store.save(result(task, optimizer, seed=seed, status=status, score=score,
                              **kwargs))


def a_run_file(store: ResultStore) -> tuple[Path, dict[str, Any]]:
    """A valid run file in ``store`` and its JSON document."""
    path = store.save(result())
    return path, json.loads(path.read_text())


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))
