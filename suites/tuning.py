"""The tuning protocol: which runs a sweep makes, and which configuration it reports.

``run_sweep`` applies AlgoPerf's external tuning to every task and optimizer: each
configuration of the search space runs on the *tuning* seeds; the best configuration by
the task's metric (``Metric.oriented`` of its score, or of ``Metric.select_by``) then runs
on fresh *evaluation* seeds, disjoint from the tuning seeds, and the leaderboard reports
those. Then the *sensitivity* phase reruns the chosen configuration on the tuning seeds
with its step size (``lr_key``) × 2^k, k = −3 … 3 (``suites.api.step_size_variants``);
k = 0 and any variant that the grid holds are the tuning runs themselves (run keys
name the configuration, not the phase), so they are not made again. Runs already in the
results store are not repeated, so an interrupted sweep resumes where it stopped. Seeds
per budget live with the budgets in ``suites.api``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from suites.api import (
    SEEDS_PER_BUDGET,
    Metric,
    Submission,
    Task,
    evaluation_seeds,
    step_size_variants,
    tuning_seeds,
)
from suites.executors.base import Executor
from suites.record import RunResult, RunSpec
from suites.results import ResultStore, RunBusy, config_key, run_key

log = logging.getLogger(__name__)


def selection_score(result: RunResult, metric: Metric) -> float:
    """What tuning ranks a run by: its score, or the ``metric.select_by`` metric it reported
    (NaN when the run failed or did not report it)."""
    if metric.select_by is None:
        return result.score
    if result.status != "ok":
        return math.nan
    return float(result.metrics.get(metric.select_by, math.nan))


def select_best_config(results: Sequence[RunResult], metric: Metric) -> dict[str, Any]:
    """The configuration with the best mean tuning score (or ``metric.select_by``).

    Ties (e.g. every configuration failed) go to more successful runs, then to fewer
    mean steps, then to the earlier configuration of the search space.
    """
    by_config: dict[str, list[RunResult]] = {}
    for result in results:
        by_config.setdefault(config_key(result.spec.hparams), []).append(result)
    if not by_config:
        raise ValueError("no tuning runs to select a configuration from")

    def rank(item: tuple[int, list[RunResult]]) -> tuple[float, float, float, int]:
        order, runs = item
        return (
            float(np.mean([metric.oriented(selection_score(r, metric)) for r in runs])),
            -sum(r.status == "ok" for r in runs) / len(runs),
            float(np.mean([r.steps_run for r in runs])),
            order,
        )

    _, best_runs = min(enumerate(by_config.values()), key=rank)
    return dict(best_runs[0].spec.hparams)


@dataclass
class SweepReport:
    """What a sweep produced: every run (stored earlier or made now) and the choices made."""

    results: list[RunResult] = field(default_factory=list)
    best_configs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    runs_made: int = 0
    runs_reused: int = 0
    #: Runs made per phase ("tuning", "evaluation", "sensitivity").
    made_by_phase: dict[str, int] = field(default_factory=dict)
    #: (task, optimizer) pairs whose later phases were not run, and why.
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Seconds the sweep took, from its first run handed out to its last result (``lsb``).
    seconds: float = 0.0

    @property
    def failures(self) -> list[RunResult]:
        """Runs that produced no measurement (``RunResult.failed``); divergence is one."""
        return [r for r in self.results if r.failed]


def run_sweep(
    tasks: Sequence[Task],
    submissions: Sequence[Submission],
    budget: str,
    *,
    store: ResultStore,
    executor: Executor,
    seeds: tuple[int, int] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    retry_failed: bool = False,
    track: str = "external",
    variants: Sequence[Task] = (),
) -> SweepReport:
    """The tuning protocol for every (task, submission) pair; with ``track="self-tuning"``,
    each submission's declared ``defaults`` on the evaluation seeds instead (no tuning, no
    sensitivity runs; a submission without ``defaults`` is skipped, the reason reported).

    ``variants``: held-out tasks (``tuned_on`` a task of ``tasks``), each run on the
    evaluation seeds with the configuration its public task's tuning chose, never tuned on
    themselves.
    ``seeds``: (tuning, evaluation) seed counts; by default ``SEEDS_PER_BUDGET[budget]``.
    Runs found in ``store`` are reused (with ``retry_failed``, except those stored as
    ``error`` or ``timeout``, which are made again); new results are saved as they arrive,
    then passed to ``on_result``, so interrupting a sweep loses at most the runs in flight.
    """
    n_tune, n_eval = seeds or SEEDS_PER_BUDGET[budget]
    store.check_writable()  # StoreError before any run starts
    for path in store.remove_stale_temporaries():
        log.info("removed %s, left by a write that was killed", path)
    for submission in submissions:  # the site links this copy, wherever it is built
        store.save_source(submission.path, submission.name, submission.source_hash)
    from suites.registry import prepare

    prepare([*tasks, *variants], budget)  # drawn here: sandboxed workers write no cache
    task_by_name = {t.name: t for t in [*tasks, *variants]}
    report = SweepReport()
    if track == "self-tuning":
        return _self_tuning(tasks, variants, submissions, budget, n_eval, task_by_name,
                            store, executor, on_result, report, retry_failed)

    def spec(task: Task, submission: Submission, hparams: dict, seed: int, phase: str):
        return RunSpec.of(task, submission, budget, hparams, seed, phase)

    # Submission-major: a worker serves one submission, so runs of one submission in a row
    # keep the workers (a new one imports torch, seconds on a busy machine).
    tuning = [
        spec(task, sub, config, seed, "tune")
        for sub in submissions for task in tasks
        for config in sub.configs() for seed in tuning_seeds(n_tune)
    ]
    tuned = _run_specs(tuning, "tuning", task_by_name, store, executor, on_result, report,
                       retry_failed)

    evaluation = []
    for sub in submissions:
        for task in tasks:
            runs = [r for r in tuned
                    if r.spec.task == task.name and r.spec.optimizer.name == sub.name]
            if all(r.failed or r.invalid for r in runs):
                report.skipped[(task.name, sub.name)] = (
                    "no tuning run produced a valid measurement (each ended in error, "
                    "timeout, out of memory or was invalid): no evaluation or sensitivity "
                    "runs, the task counts as failed")
                continue
            best = select_best_config(runs, task.metric)
            report.best_configs[(task.name, sub.name)] = best
            log.info("%s / %s: best tuning config %s", task.name, sub.name, best)
            evaluation += [spec(task, sub, best, s, "eval") for s in evaluation_seeds(n_eval)]
    for variant in variants:
        for sub in submissions:
            best = report.best_configs.get((variant.tuned_on, sub.name))
            if best is None:
                continue
            report.best_configs[(variant.name, sub.name)] = best
            evaluation += [spec(variant, sub, best, s, "held_out")
                           for s in evaluation_seeds(n_eval)]
    _run_specs(evaluation, "evaluation", task_by_name, store, executor, on_result, report,
               retry_failed)

    sub_by_name = {sub.name: sub for sub in submissions}
    public = {t.name for t in tasks}
    sensitivity = [
        spec(task_by_name[task], sub_by_name[name], config, seed, "sensitivity")
        for (task, name), best in report.best_configs.items() if task in public
        for k, config in step_size_variants(best, sub_by_name[name].lr_key) if k != 0
        for seed in tuning_seeds(n_tune)
    ]
    _run_specs(sensitivity, "sensitivity", task_by_name, store, executor, on_result, report,
               retry_failed)
    log.info("runs made per phase: %s", report.made_by_phase)
    return report


def _self_tuning(tasks, variants, submissions, budget, n_eval, task_by_name, store, executor,
                 on_result, report, retry_failed) -> SweepReport:
    """The self-tuning track: each submission at its declared ``defaults``, evaluation seeds
    (the held-out variants' runs in the ``held_out`` phase)."""
    specs = []
    held_out = {v.name for v in variants}
    for sub in submissions:
        for task in [*tasks, *variants]:
            if sub.defaults is None:
                report.skipped[(task.name, sub.name)] = (
                    "declares no defaults: the self-tuning track has nothing to run")
                continue
            report.best_configs[(task.name, sub.name)] = dict(sub.defaults)
            phase = "held_out" if task.name in held_out else "eval"
            specs += [RunSpec.of(task, sub, budget, sub.defaults, seed, phase, "self-tuning")
                      for seed in evaluation_seeds(n_eval)]
    _run_specs(specs, "evaluation", task_by_name, store, executor, on_result, report,
               retry_failed)
    return report


#: Runs claimed (locked) at once by one sweep: each claim holds a file descriptor.
CLAIM_BATCH = 64


def _run_specs(
    specs: list[RunSpec],
    label: str,
    task_by_name: dict[str, Task],
    store: ResultStore,
    executor: Executor,
    on_result: Callable[[RunResult], None] | None,
    report: SweepReport,
    retry_failed: bool = False,
) -> list[RunResult]:
    """The results of ``specs``: from the store where present (and, with ``retry_failed``,
    not failed), else made and saved.

    A run is made under its claim (``ResultStore.claim``, a lock per run key), so that
    sweeps sharing a results directory make each run once: runs another sweep holds are
    waited for at the end, and taken from the store when it saved them.
    """
    done: list[RunResult] = []
    missing: list[RunSpec] = []
    for spec in specs:
        stored = store.load(spec)
        if stored is None or (retry_failed and stored.failed):
            missing.append(spec)
        else:
            done.append(stored)
    report.runs_reused += len(done)
    if missing:
        log.info("%s: %d runs to make, %d found in %s", label, len(missing), len(done), store.root)

    def usable(stored: RunResult | None) -> bool:
        return stored is not None and not (retry_failed and stored.failed)

    def make(batch: list[RunSpec], bar: tqdm) -> None:
        for result in executor.map(batch, task_by_name):
            store.save(result)
            done.append(result)
            report.runs_made += 1
            report.made_by_phase[label] = report.made_by_phase.get(label, 0) + 1
            bar.update()
            if on_result is not None:
                on_result(result)

    busy: list[RunSpec] = []
    with tqdm(total=len(missing), desc=label, unit="run", disable=None, leave=False) as bar:
        for start in range(0, len(missing), CLAIM_BATCH):
            with contextlib.ExitStack() as claims:
                mine = []
                for spec in missing[start:start + CLAIM_BATCH]:
                    try:
                        stored = claims.enter_context(store.claim(spec, timeout=0))
                    except RunBusy:
                        busy.append(spec)
                        continue
                    if usable(stored):  # saved by another sweep since it was looked up
                        done.append(stored)
                        report.runs_reused += 1
                        bar.update()
                    else:
                        mine.append(spec)
                make(mine, bar)
        for spec in busy:  # another sweep is making these: wait, then reuse or make
            with store.claim(spec) as stored:
                if usable(stored):
                    done.append(stored)
                    report.runs_reused += 1
                    bar.update()
                else:
                    make([spec], bar)
    position = {run_key(spec): i for i, spec in enumerate(specs)}
    done.sort(key=lambda r: position.get(run_key(r.spec), len(specs)))  # ties: same on any executor
    report.results += done
    return done
