"""Contracts between the leaderboard engine, the task suites and submissions.

A *submission* is a Python file (see ``suites/optimizers/`` for the built-ins) that
defines ``name``, ``search_space``, ``lr_key`` and ``build(param_groups, **hparams)``;
its module docstring is its description on the site.

A *task* builds a *problem* for a seed and a budget; the runner trains the problem with
the optimizer that the submission builds, through the one loop in ``suites.runner``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch

BudgetName = Literal["smoke", "quick", "full"]
BUDGET_NAMES: tuple[str, ...] = ("smoke", "quick", "full")
RunStatus = Literal["ok", "diverged", "timeout", "error"]
RUN_STATUSES: tuple[str, ...] = ("ok", "diverged", "timeout", "error")

#: A submission's grid may hold at most this many configurations unless it says otherwise.
MAX_CONFIGS = 8


@dataclass(frozen=True)
class Budget:
    """Training steps of a task at each budget level."""

    smoke: int
    quick: int
    full: int

    def steps(self, budget: str) -> int:
        if budget not in BUDGET_NAMES:
            raise ValueError(f"unknown budget {budget!r}: expected one of {BUDGET_NAMES}")
        return int(getattr(self, budget))


@dataclass(frozen=True)
class Metric:
    """The number a task ranks optimizers by.

    ``target``: a training-loss threshold; the runner records ``steps_to_target``, the
    number of steps until the minibatch loss first reached it.
    ``tolerance``: relative distance to an optimizer's best score within which another
    config counts as "near its best" for the tuning-robustness score.
    ``select_by``: a metric the task reports besides its score (e.g. ``val_accuracy``,
    oriented like the score) by which the tuning phase picks the best configuration, so
    the reported score is measured on data that did not pick it. ``None``: the score.
    """

    name: str
    higher_is_better: bool
    target: float | None = None
    tolerance: float = 0.1
    unit: str = ""
    select_by: str | None = None

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` beats score ``b``."""
        return a > b if self.higher_is_better else a < b


@dataclass
class Problem:
    """One training problem, built by a task for a seed and a budget.

    ``param_groups`` are what the optimizer is built on (list of dicts with ``params``
    and optionally ``lr_scale``: a task may ask for a smaller step size on some groups;
    the runner multiplies the submission's ``lr_key`` hyperparameter by it).
    ``loss(step)`` returns the minibatch loss of that step as a scalar tensor that
    requires grad; ``evaluate()`` returns metrics, among them the task's metric name.
    ``steps`` is the number of optimizer steps; ``eval_every`` how often to evaluate.
    ``stop(loss_value, step)`` may end a run early (e.g. a target reached).
    ``lr_schedule(step)`` multiplies every group's step size (the submission's ``lr_key``)
    at that step (0-based), e.g. a warm-up then cosine decay; ``None``: constant.
    """

    param_groups: list[dict[str, Any]]
    loss: Callable[[int], torch.Tensor]
    evaluate: Callable[[], dict[str, float]]
    steps: int
    eval_every: int = 0
    stop: Callable[[float, int], bool] | None = None
    lr_schedule: Callable[[int], float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    name: str  # "chain/depth-32-const"
    suite: str  # "chain"
    description: str
    budgets: Budget
    metric: Metric

    def setup(self, seed: int, budget: str) -> Problem: ...

    def score(self, metrics: Mapping[str, float], steps_run: int, status: str) -> float:
        """Turn a run's final metrics into the task's score (``inf``/``-inf`` when failed)."""
        ...


@dataclass(frozen=True)
class Submission:
    """A loaded submission file."""

    name: str
    description: str
    search_space: dict[str, Any]
    lr_key: str | None
    build: Callable[..., torch.optim.Optimizer]
    path: str
    source_hash: str
    max_configs: int = MAX_CONFIGS

    def configs(self) -> list[dict[str, Any]]:
        from suites.submission import expand_search_space

        return expand_search_space(self.search_space, self.max_configs)


@dataclass
class RunSpec:
    """What one run is: everything its key is made of."""

    task: str
    budget: str
    optimizer: str
    optimizer_path: str
    source_hash: str
    hparams: dict[str, Any]
    seed: int
    phase: Literal["tune", "eval"] = "tune"


@dataclass
class RunResult:
    """What one run produced; stored as one JSON file by ``suites.results``."""

    spec: RunSpec
    status: str
    metrics: dict[str, float]
    score: float
    steps_run: int
    curve: dict[str, Sequence[float]]
    time_per_step: float
    wall_time: float
    state_bytes: int
    steps_to_target: int | None = None
    error: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    #: The task's suite and metric, stored with the run so that scoring needs only files.
    suite: str = ""
    metric: Metric | None = None
    #: Bytes of the trained parameters: the scale for ``state_bytes``.
    param_bytes: int = 0
