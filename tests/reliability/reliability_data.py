"""Run results for the reliability tests, written through the real store: the smallest
records that exercise the leaderboard and the site, and helpers that corrupt them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suites.api import Metric, RunResult, RunSpec
from suites.results import ResultStore

STEPS = Metric("steps_to_escape", higher_is_better=False, unit="steps")
ACCURACY = Metric("accuracy", higher_is_better=True)


def result(task: str = "chain/depth-4-const", optimizer: str = "sgd", *, phase: str = "eval",
           seed: int = 1000, score: float = 10.0, status: str = "ok", lr: float = 0.1,
           metric: Metric | None = STEPS, path: str = "optimizers/sgd.py",
           source_hash: str = "0123456789ab") -> RunResult:
    spec = RunSpec(task=task, budget="quick", optimizer=optimizer, optimizer_path=path,
                   source_hash=source_hash, hparams={"lr": lr}, seed=seed, phase=phase)
    return RunResult(spec=spec, status=status, metrics={"loss": score}, score=score,
                     steps_run=20, curve={"step": [1, 2, 3], "loss": [1.0, 0.5, 0.25]},
                     time_per_step=1e-4, wall_time=0.01, state_bytes=8, param_bytes=8,
                     env={"device": "cpu"}, suite=task.split("/", 1)[0], metric=metric)


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
