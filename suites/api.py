"""Contracts between the leaderboard engine, the task suites and submissions.

This module imports nothing from the rest of the engine: it is what every other module
agrees on. It holds

- the budgets (steps per task; seeds, evaluation-seed offset and time limits per level);
- ``Metric``, the number a task ranks optimizers by, and with it every rule of "which
  score is better": orientation, the failure score, the ratio to the best and "near
  best". The runner, the tuning protocol, the leaderboard and the site call these
  methods and write none of them out again;
- ``Chance``, the accuracy of a network that learned nothing;
- ``Problem`` and ``Task`` (what a suite provides), ``SuiteModule`` (what a suite's
  package exports to be discovered), ``Submission`` (a loaded submission file).

The record of one run (its spec, what its worker measured, the file) is declared in
``suites.record``.

A *submission* is a Python file (see ``suites/optimizers/`` for the built-ins) that
defines ``name``, ``search_space``, ``lr_key`` and ``build(param_groups, **hparams)``;
its module docstring is its description on the site.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # annotations only: reading results and scoring need no torch
    import torch

BudgetName = Literal["smoke", "quick", "full"]
BUDGET_NAMES: tuple[BudgetName, ...] = ("smoke", "quick", "full")
#: (tuning seeds, evaluation seeds) per budget.
SEEDS_PER_BUDGET: dict[str, tuple[int, int]] = {"smoke": (1, 1), "quick": (1, 2), "full": (2, 5)}
#: Evaluation seeds start here, so they never coincide with tuning seeds.
EVAL_SEED_OFFSET = 1000
#: Seconds a run may take, per budget, unless the caller sets a limit.
TIME_LIMITS: dict[str, float] = {"smoke": 120.0, "quick": 600.0, "full": 6 * 3600.0}
#: Seconds a submission's validation (``suites.validation``) may take, unless set.
VALIDATION_TIMEOUT = 120.0

#: A submission's grid may hold at most this many configurations unless it says otherwise.
MAX_CONFIGS = 8
#: Gradient evaluations charged for one call of the closure of a submission that declares
#: ``create_graph = True``: the gradient, plus the Hessian-vector product its graph is
#: built for (a Hessian-vector product costs about one more backward pass).
GRAPH_EVAL_COST = 2


@dataclass(frozen=True)
class Budget:
    """Gradient evaluations a run of the task may make at each budget level: every call of
    the closure that backpropagates counts one (``GRAPH_EVAL_COST`` where the closure builds
    a graph for Hessian-vector products). An optimizer that evaluates the gradient once per
    step takes that many steps."""

    smoke: int
    quick: int
    full: int

    def steps(self, budget: str) -> int:
        if budget not in BUDGET_NAMES:
            raise ValueError(f"unknown budget {budget!r}: expected one of {BUDGET_NAMES}")
        return int(getattr(self, budget))


def tuning_seeds(count: int) -> list[int]:
    return list(range(count))


def evaluation_seeds(count: int) -> list[int]:
    return list(range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + count))


@dataclass(frozen=True)
class Metric:
    """The number a task ranks optimizers by, and the rules that compare its values.

    ``target``: a training-loss threshold; the runner records ``evals_to_target``, the
    gradient evaluations until the minibatch loss first reached it.
    ``tolerance``: relative distance to a best score within which another score counts
    as "near best" (``near_best``).
    ``select_by``: a metric the task reports besides its score (e.g. ``val_accuracy``,
    oriented like the score) by which the tuning phase picks the best configuration, so
    the reported score is measured on data that did not pick it. ``None``: the score.
    ``must_beat_initial``: the metric has a trivial baseline at the initial parameters (a
    loss): a run whose score is not better than its ``initial_score`` failed.
    ``chance``: for a higher-is-better metric, the score of a model that learned nothing
    (an accuracy's chance level at the runs' budget, which the driver records in each run;
    the registry's metrics have none). Ratios are then taken on the lift above it,
    ``score − chance``, which orders and divides like ``(acc − chance) / (1 − chance)``.

    Scores are assumed positive (steps, losses, traces, accuracies) where ratios are
    taken; a failed run scores ``failed_score`` (worse than every number).
    """

    name: str
    higher_is_better: bool
    target: float | None = None
    tolerance: float = 0.1
    unit: str = ""
    select_by: str | None = None
    must_beat_initial: bool = False
    chance: float | None = None

    @property
    def failed_score(self) -> float:
        """The score of a run that produced no number: ``-inf`` or ``+inf``, the worst."""
        return -math.inf if self.higher_is_better else math.inf

    def oriented(self, score: float, succeeded: bool = True) -> float:
        """``score`` as lower-is-better; NaN (no score) and a failure are ``+inf``."""
        if not succeeded or math.isnan(score):
            return math.inf
        return -score if self.higher_is_better else score

    def from_oriented(self, oriented):
        """The score (or array of scores) whose ``oriented`` value is ``oriented``: the
        inverse of ``oriented`` on scores, a failure (``+inf``) being ``failed_score``."""
        return -oriented if self.higher_is_better else oriented

    def beats_baseline(self, score: float, initial: float,
                       chance_ceiling: float | None = None) -> bool:
        """Whether ``score`` beats the metric's trivial baselines: with
        ``must_beat_initial``, ``initial`` (the score at the initial parameters; a run
        without one cannot show that it beat it); and, where the run recorded one,
        ``chance_ceiling`` (``Chance.ceiling``: the highest score still read as chance)."""
        if chance_ceiling is not None and math.isfinite(chance_ceiling) \
                and not self.better(score, chance_ceiling):
            return False
        if not self.must_beat_initial:
            return True
        return math.isfinite(initial) and self.better(score, initial)

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` beats score ``b``."""
        return self.oriented(a) < self.oriented(b)

    def best(self, scores: Iterable[float]) -> float:
        """The best finite score of ``scores``; NaN when none is finite."""
        finite = [float(s) for s in scores if math.isfinite(float(s))]
        if not finite:
            return math.nan
        return max(finite) if self.higher_is_better else min(finite)

    def worst(self, scores: Iterable[float]) -> float:
        """The worst finite score of ``scores``; NaN when none is finite."""
        finite = [float(s) for s in scores if math.isfinite(float(s))]
        if not finite:
            return math.nan
        return min(finite) if self.higher_is_better else max(finite)

    def ratio(self, score: float, best: float) -> float:
        """How many times worse than ``best`` ``score`` is: ≥ 1, ``inf`` when either is not
        a finite number (the performance profile's ratio). With a non-positive best, a tie
        with it is 1 and anything else ``inf``."""
        if not (math.isfinite(score) and math.isfinite(best)):
            return math.inf
        score, best = self._lift(score), self._lift(best)
        numerator, denominator = (best, score) if self.higher_is_better else (score, best)
        if denominator > 0:
            return max(1.0, numerator / denominator)
        return 1.0 if score == best else math.inf

    def best_of_rows(self, scores: np.ndarray) -> np.ndarray:
        """``best`` of each row of a 2-D array of scores (NaN for a row with none finite)."""
        finite = np.where(np.isfinite(scores), scores, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: NaN
            return np.nanmax(finite, axis=1) if self.higher_is_better \
                else np.nanmin(finite, axis=1)

    def ratios(self, scores: np.ndarray, best: np.ndarray) -> np.ndarray:
        """``ratio`` of every score of a 2-D array against its row's ``best``, at once."""
        best = self._lift(np.asarray(best, dtype=float)[:, None])
        scores = self._lift(np.asarray(scores, dtype=float))
        numerator, denominator = (best, scores) if self.higher_is_better else (scores, best)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(denominator > 0, np.maximum(1.0, numerator / denominator),
                             np.where(scores == best, 1.0, np.inf))
        return np.where(np.isfinite(scores) & np.isfinite(best), ratio, np.inf)

    def _lift(self, score):
        """A score (or an array of them) as its lift above ``chance``; unchanged without a
        chance level, or for a lower-is-better metric (which has none)."""
        if not self.higher_is_better or self.chance is None or not math.isfinite(self.chance):
            return score
        return score - self.chance

    def near_best(self, score: float, best: float) -> bool:
        """``score`` lies within ``tolerance`` (relative) of ``best``; both must be finite."""
        if not (math.isfinite(score) and math.isfinite(best)):
            return False
        return abs(score - best) <= self.tolerance * abs(best)

    def score_of(self, metrics: Mapping[str, float], status: str) -> float:
        """A run's score: its metric when it finished ``ok`` with a finite value, else the
        failure score."""
        value = metrics.get(self.name, math.nan)
        if status != "ok" or not math.isfinite(value):
            return self.failed_score
        return float(value)


@dataclass(frozen=True)
class Chance:
    """What an accuracy reads when a network learned nothing: ``score``, the share of the
    most frequent class among the ``examples`` of the split it is measured on.

    ``ceiling``: the highest accuracy still read as chance, ``score`` plus three binomial
    standard errors over ``examples``; an optimizer none of whose runs got above it did
    not train the network at all.
    """

    score: float
    examples: int

    @property
    def ceiling(self) -> float:
        return self.score + 3.0 * math.sqrt(self.score * (1.0 - self.score) / self.examples)


@dataclass(frozen=True)
class Progress:
    """How far a run had got at an evaluation point: optimizer steps taken and gradient
    evaluations spent (both 0 at the initial parameters)."""

    step: int
    grad_evals: int


@dataclass
class Problem:
    """One training problem, built by a task for a seed and a budget.

    The same problem is built twice: in the training worker, which runs the submission
    and only trains, and in the evaluating process, which never imports submission code
    and receives the trained tensors (``state``) at each evaluation point. So data that
    only evaluation reads (a test split) must be loaded inside ``evaluate``, never in
    ``setup``: the training worker then never holds it.

    ``param_groups`` are what the optimizer is built on (list of dicts with ``params``
    and optionally ``lr_scale``: a task may ask for a smaller step size on some groups;
    the runner multiplies the submission's ``lr_key`` hyperparameter by it; and
    ``param_names``, which name the tensors). ``loss(step)`` returns the minibatch loss of
    that step as a scalar tensor that requires grad. ``evaluate()`` — or
    ``evaluate(progress)``, given a ``Progress`` — returns metrics, among them the task's
    metric name, computed from the current tensors. ``steps`` is the budget in gradient
    evaluations (``Budget``); ``eval_every`` how many steps apart to evaluate.
    ``stop(loss_value, step)`` may end a run early (e.g. a target reached).
    ``lr_schedule(position)`` multiplies every group's step size (the submission's
    ``lr_key``) when ``position`` of the ``steps`` gradient evaluations are spent (0-based),
    e.g. a warm-up then cosine decay; ``None``: constant. ``state()`` returns the tensors
    that make the trained model, by name (parameters and buffers such as batch norm's
    running statistics); by default the parameters, named by their groups' ``param_names``.
    """

    param_groups: list[dict[str, Any]]
    loss: Callable[[int], torch.Tensor]
    evaluate: Callable[..., dict[str, float]]
    steps: int
    eval_every: int = 0
    stop: Callable[[float, int], bool] | None = None
    lr_schedule: Callable[[int], float] | None = None
    state: Callable[[], dict[str, torch.Tensor]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """``state()``, or the parameters by their groups' ``param_names`` (``group<i>.<j>``
        where a group names none)."""
        if self.state is not None:
            return dict(self.state())
        tensors: dict[str, torch.Tensor] = {}
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            params = list(params) if isinstance(params, (list, tuple)) else [params]
            names = group.get("param_names") or [f"group{i}.{j}" for j in range(len(params))]
            tensors.update(zip(names, params, strict=True))
        return tensors


@runtime_checkable
class Task(Protocol):
    name: str  # "chain/depth-32-const"
    suite: str  # "chain"
    description: str
    budgets: Budget
    metric: Metric

    def setup(self, seed: int, budget: str) -> Problem: ...

    def score(self, metrics: Mapping[str, float], steps_run: int, status: str) -> float:
        """Turn a run's final metrics into the task's score (``metric.failed_score`` when
        the run failed)."""
        ...

    # Optional: ``chance(budget) -> Chance | None``, the score of a network that learned
    # nothing at ``budget`` (classification tasks); the task page names the optimizers
    # that never got above it.


class SuiteModule(Protocol):
    """What a suite's package (``suites/<suite>/__init__.py``, or the module an
    ``lsb.suites`` entry point names) exports. Only ``tasks`` is required.

    - ``tasks() -> list[Task]``: the suite's tasks; their names start with ``<suite>/``.
    - ``PLOT_LABELS: dict[str, str]``: axis labels of the quantities its tasks record
      (``{"hessian_trace": "Hessian trace Tr ∇²f"}``).
    - ``task_axis(task_name) -> (axis, value, panel) | None``: where a task sits on a
      scaling axis (``("depth", 8, "const")``); the suite page then plots the score
      against that axis, one panel per ``panel`` value.
    - ``add_options(parser)`` / ``apply_options(args)``: options of the ``lsb`` command
      itself (e.g. where the suite's data are), read before any command runs.
    - ``add_commands(subparsers)``: subcommands of ``lsb`` (e.g. data generators).
    - ``DEMO_TASKS``: the task selectors on which ``lsb demo`` submits the site's
      example optimizer, live (keep them to a minute or two at the quick budget).
    - ``POSITION: int``: where the suite comes in lists and on the site (default 100).
    """

    def tasks(self) -> list[Task]: ...


@dataclass(frozen=True)
class Submission:
    """A loaded submission file; ``grid`` is its search space expanded into configurations.

    ``build`` is ``None`` in a process that only described the file (the sweep's driver,
    ``suites.submission.inspect_in_subprocess``): runs load the file in their worker.
    """

    name: str
    description: str
    search_space: dict[str, Any]
    lr_key: str | None
    build: Callable[..., torch.optim.Optimizer] | None
    path: str
    source_hash: str
    grid: tuple[dict[str, Any], ...] = ()
    max_configs: int = MAX_CONFIGS
    #: The closure's ``backward`` builds a graph of the gradients (``create_graph = True``
    #: in the file): Hessian-vector products in ``step``.
    create_graph: bool = False
    #: ``requires`` of the file (PEP 508 strings), checked when it was loaded.
    requires: tuple[str, ...] = ()
    #: Resolved versions of the distributions it requires or imports at top level (the
    #: platform's own, torch and numpy, aside): part of its runs' keys.
    packages: dict[str, str] = field(default_factory=dict)
    #: "task": the task's step-size schedule multiplies ``lr_key``; "own": the optimizer
    #: schedules itself and the harness never writes a group's step size after ``build``.
    schedule: str = "task"
    #: The configuration the self-tuning track runs (``defaults`` in the file), if any.
    defaults: dict[str, Any] | None = None

    def configs(self) -> list[dict[str, Any]]:
        """The configurations the tuning protocol runs, in the search space's order."""
        return [dict(config) for config in self.grid]


#: The sensitivity phase runs the tuned configuration with its step size × 2^k for these k.
SENSITIVITY_EXPONENTS: tuple[int, ...] = tuple(range(-3, 4))


def step_size_variants(config: Mapping[str, Any], lr_key: str | None
                       ) -> list[tuple[int, dict[str, Any]]]:
    """``(k, config with lr_key × 2^k)`` for each ``SENSITIVITY_EXPONENTS`` k; k = 0 is
    ``config`` itself (so its run is the tuning run). Empty without a step size."""
    if lr_key is None or not isinstance(config.get(lr_key), (int, float)):
        return []
    return [(k, dict(config) if k == 0 else {**config, lr_key: config[lr_key] * 2.0**k})
            for k in SENSITIVITY_EXPONENTS]
