"""What a sweep will cost, estimated before it starts, from what the store records.

The runs a sweep will make are counted exactly where they can be: every tuning run whose
file is not in the store; and, where a (task, optimizer) pair's tuning runs are all
there, the evaluation and sensitivity runs of the configuration those runs choose (the
protocol's own ``select_best_config``), minus those stored. Elsewhere the later phases
count their largest number (the evaluation seeds, and six step sizes per tuning seed).

Each run costs the lower quartile (``RUN_QUANTILE``) of what the task's recorded runs at
the budget took — in the sweep's store, else in the project's committed results
(``REFERENCE``, the built-ins' board) — else of its suite's, else ``UNKNOWN_RUN``: its wall
time (the driver's clock: the worker's training and the transfer) plus its ``eval_time``
(the driver's evaluation of the run's points, while that worker waits). The runs are
shared among ``jobs`` workers. A quartile, not the median: contention only ever adds
time, and a run recorded while other work shared the machine took longer; the quartile
stands for the run on a machine that is not shared. On top come the costs fixed
per submission: its workers start (at once, in parallel): the sandbox, an interpreter,
the harness's and the suites' imports, then the submission's. That is the median
``worker_start`` the driver recorded on this machine's runs (the sweep's store, else the
committed results); where none is recorded, the submission's validation just before,
which started a sandboxed interpreter and imported the file (``startup_seconds``), plus
``HARNESS_IMPORT`` for what a training worker imports besides. Last, what the command
does once the sweep is over (``Estimate.after``: ``SUBMIT_TABLES``, ``DEMO_SITE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from suites.api import (
    SEEDS_PER_BUDGET,
    SENSITIVITY_EXPONENTS,
    Submission,
    Task,
    evaluation_seeds,
    step_size_variants,
    tuning_seeds,
)
from suites.record import RunSpec
from suites.results import ResultStore, StoreError

#: Seconds per run of a task whose suite has no recorded run at the budget.
UNKNOWN_RUN = 5.0
#: The quantile of a task's recorded wall times that prices its runs (see above).
RUN_QUANTILE = 0.25
#: The committed results: their wall times price a task the sweep's store has no run of.
REFERENCE = Path(__file__).resolve().parent.parent / "results"
#: Seconds a training worker spends importing the harness and the suites beyond what the
#: validating process imports (torch and the file): on this project's 2-core reference
#: machine a worker was ready 2.9 s after it started where validation had imported the
#: file at 1.4-1.9 s. Used only where no run recorded its worker's start.
HARNESS_IMPORT = 1.2
#: Seconds ``lsb submit`` spends after its sweep: reading the store again and ranking the
#: submission. Measured on this project's 2-core reference machine against the committed
#: results: 0.95 s and 0.92 s from the sweep's last line to the command's end.
SUBMIT_TABLES = 1.0
#: Seconds ``lsb demo`` spends after its sweep: the submission's tables, then the site built
#: from the committed results and the demo's runs, whose plots take most of it. Measured on
#: this project's 2-core reference machine: 17.5 s in a fresh clone's demo (the tables
#: 0.9 s, the site 16.6 s); ``lsb site build --budget quick`` there afterwards, a process of
#: its own, 20.3 s, and 25.7 s and 28.7 s in another clone.
DEMO_SITE = 20.0


@dataclass
class Estimate:
    """Per suite: runs to make and their seconds at the sweep's parallelism; plus the
    seconds fixed per submission (workers' start-up)."""

    runs: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    guessed: dict[str, int] = field(default_factory=dict)  # tasks with no recorded time
    fixed_seconds: float = 0.0
    #: What the command does once the sweep is over, and its seconds (``lsb demo``: the
    #: tables and the site).
    after: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values()) + self.fixed_seconds + sum(self.after.values())


def seconds_per_run(runs: pd.DataFrame, budget: str) -> tuple[dict[str, float], dict[str, float]]:
    """(per task, per suite) ``RUN_QUANTILE`` of what the recorded runs at ``budget`` took:
    the wall time, plus the driver's evaluation where it was recorded."""
    at = runs[(runs["budget"] == budget) & runs["wall_time"].notna()]
    evaluation = at["eval_time"].astype(float).fillna(0.0) if "eval_time" in at else 0.0
    at = at.assign(seconds=at["wall_time"].astype(float) + evaluation)
    per_task = at.groupby("task")["seconds"].quantile(RUN_QUANTILE).to_dict()
    per_suite = at.groupby("suite")["seconds"].quantile(RUN_QUANTILE).to_dict()
    return ({k: float(v) for k, v in per_task.items()},
            {k: float(v) for k, v in per_suite.items()})


def worker_start_seconds(runs: pd.DataFrame, machine: str) -> float | None:
    """The median recorded ``worker_start`` of the runs made on the machine labelled
    ``machine`` (the runs table's ``machine`` is "device @ label"); None when none has one."""
    if runs.empty or "worker_start" not in runs:
        return None
    labels = runs["machine"].astype(str).str.rsplit(" @ ", n=1).str[-1]
    starts = runs.loc[labels == machine, "worker_start"].astype(float).dropna()
    return float(starts.median()) if len(starts) else None


def _recorded_times(store: ResultStore, budget: str, machine: str
                    ) -> tuple[dict[str, float], dict[str, float], float | None]:
    try:
        table, _ = store.table()
    except StoreError:
        return {}, {}, None
    return (*seconds_per_run(table, budget), worker_start_seconds(table, machine))


def estimate(store: ResultStore, tasks: Sequence[Task], submissions: Sequence[Submission],
             budget: str, *, seeds: tuple[int, int] | None = None, jobs: int = 1,
             track: str = "external", variants: Sequence[Task] = (),
             startup_seconds: float = 0.0, after: dict[str, float] | None = None) -> Estimate:
    """The cost of ``run_sweep`` with these arguments (see the module's docstring)."""
    from kernels.machine import default_device, machine_label
    from suites.tuning import select_best_config

    n_tune, n_eval = seeds or SEEDS_PER_BUDGET[budget]
    machine = machine_label(default_device())
    per_task, per_suite, worker_start = _recorded_times(store, budget, machine)
    if store.root.resolve() != REFERENCE.resolve():
        reference_task, reference_suite, reference_start = _recorded_times(
            ResultStore(REFERENCE), budget, machine)
        per_task = {**reference_task, **per_task}
        per_suite = {**reference_suite, **per_suite}
        worker_start = reference_start if worker_start is None else worker_start
    result = Estimate(after=dict(after or {}))

    def missing(specs: list[RunSpec]) -> int:
        return sum(not store.path_for(spec).is_file() for spec in specs)

    def stored(spec: RunSpec):
        try:
            return store.load(spec)
        except StoreError:  # something else where the file belongs: the sweep says what
            return None

    def charge(task: Task, count: int) -> None:
        seconds = per_task.get(task.name, per_suite.get(task.suite))
        if seconds is None:
            seconds = UNKNOWN_RUN
            result.guessed[task.suite] = result.guessed.get(task.suite, 0) + 1
        result.runs[task.suite] = result.runs.get(task.suite, 0) + count
        result.seconds[task.suite] = result.seconds.get(task.suite, 0.0) + count * seconds / jobs

    tuned_on = {v.name: v.tuned_on for v in variants}
    for sub in submissions:
        if track == "self-tuning":
            for task in [*tasks, *variants]:
                phase = "held_out" if task.name in tuned_on else "eval"
                if sub.defaults is not None:
                    charge(task, missing([RunSpec.of(task, sub, budget, sub.defaults, s,
                                                     phase, track)
                                          for s in evaluation_seeds(n_eval)]))
            continue
        chosen: dict[str, dict | None] = {}
        for task in tasks:
            tuning = [RunSpec.of(task, sub, budget, config, s)
                      for config in sub.configs() for s in tuning_seeds(n_tune)]
            found = [stored(spec) for spec in tuning]
            charge(task, sum(r is None for r in found))
            best = select_best_config(found, task.metric) \
                if found and all(r is not None for r in found) else None
            chosen[task.name] = best
            if best is None:
                later = n_eval + (len(SENSITIVITY_EXPONENTS) - 1) * n_tune * bool(sub.lr_key)
                charge(task, later)
                continue
            later = [RunSpec.of(task, sub, budget, best, s, "eval")
                     for s in evaluation_seeds(n_eval)]
            later += [RunSpec.of(task, sub, budget, config, s, "sensitivity")
                      for k, config in step_size_variants(best, sub.lr_key) if k != 0
                      for s in tuning_seeds(n_tune)]
            charge(task, missing(later))
        for variant in variants:
            best = chosen.get(tuned_on[variant.name])
            charge(variant, n_eval if best is None else missing(
                [RunSpec.of(variant, sub, budget, best, s, "held_out")
                 for s in evaluation_seeds(n_eval)]))
    # Each submission's workers start once (at most ``jobs`` of them, starting at once).
    if worker_start is None:
        worker_start = startup_seconds + HARNESS_IMPORT
    result.fixed_seconds = worker_start * len(submissions)
    return result
