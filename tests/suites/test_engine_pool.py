"""The local process pool: same results as in-process, survives hung and crashing runs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest
import torch
from engine_fakes import GD_SOURCE, QuadraticTask, SlowTask

from suites.api import Budget, Problem
from suites.executors import LocalExecutor
from suites.executors.local import execute
from suites.record import OptimizerRef, RunSpec
from suites.results import ResultStore
from suites.submission import load_submission
from suites.tuning import run_sweep


@dataclass
class HangingTask(QuadraticTask):
    """The first step never returns, so only the watchdog can end the run."""

    name: str = "fake/hanging"

    def setup(self, seed: int, budget: str) -> Problem:
        problem = super().setup(seed, budget)

        def loss(step: int) -> torch.Tensor:
            time.sleep(3600)
            raise AssertionError("unreachable")

        problem.loss = loss
        return problem


@dataclass
class CrashingTask(QuadraticTask):
    """The process dies at set-up, as with a segfault or the out-of-memory killer."""

    name: str = "fake/crashing"

    def setup(self, seed: int, budget: str) -> Problem:
        os._exit(3)


@dataclass
class SlowEvaluationTask(QuadraticTask):
    """Each evaluation of a point sleeps ``EVALUATION_SLEEP``: what the driver spends."""

    name: str = "fake/slow-evaluation"

    def setup(self, seed: int, budget: str) -> Problem:
        problem = super().setup(seed, budget)
        evaluate = problem.evaluate
        problem.evaluate = lambda: time.sleep(EVALUATION_SLEEP) or evaluate()
        return problem


EVALUATION_SLEEP = 0.05


#: Each step sleeps 20 ms (``SlowTask``), 40 steps: a run lasts long enough for both
#: workers to take some.
PACED = SlowTask(name="fake/paced", budgets=Budget(smoke=40, quick=40, full=40))

TASKS = {t.name: t for t in (QuadraticTask(), HangingTask(), CrashingTask(), PACED)}


def lookup(name: str):
    """Task lookup for the pool workers (module level, so it can be sent to them)."""
    return TASKS[name]


@pytest.fixture(scope="module")
def pool():
    """Two workers shared by this module's tests: starting one costs seconds."""
    with LocalExecutor(2, time_limit=5.0, task_lookup=lookup, kill_after=6.0) as executor:
        yield executor


@pytest.mark.slow
def test_two_jobs_give_the_same_results_as_one(pool, write_submission, tmp_path):
    gd = load_submission(write_submission(GD_SOURCE))
    in_process = LocalExecutor(1, time_limit=5.0, task_lookup=lookup)
    reports = {
        name: run_sweep(
            [QuadraticTask()], [gd], "quick", store=ResultStore(tmp_path / name),
            executor=executor, seeds=(2, 2),
        )
        for name, executor in (("in-process", in_process), ("pool", pool))
    }

    def outcome(report):
        return sorted(
            (r.spec.phase, r.spec.seed, str(r.spec.hparams), r.status, r.metrics.get("final_loss"))
            for r in report.results
        )

    made = {k: r.made_by_phase for k, r in reports.items()}
    assert made["in-process"] == made["pool"]
    assert made["pool"]["tuning"] + made["pool"]["evaluation"] == 4 * 2 + 2
    assert outcome(reports["in-process"]) == outcome(reports["pool"])
    assert reports["in-process"].best_configs == reports["pool"].best_configs


@pytest.mark.slow
def test_hung_run_is_killed_as_timeout_and_crash_is_an_error(pool, write_submission):
    gd = load_submission(write_submission(GD_SOURCE))

    def spec(task: str, seed: int) -> RunSpec:
        return RunSpec(task=task, budget="quick", optimizer=OptimizerRef.of(gd),
                       hparams={"lr": 0.3}, seed=seed)

    specs = [spec("fake/hanging", 0), spec("fake/crashing", 0)] + [
        spec("fake/quadratic", seed) for seed in range(4)
    ]
    results = {(r.spec.task, r.spec.seed): r for r in pool.map(specs)}
    assert len(results) == 6
    hung = results[("fake/hanging", 0)]
    assert hung.status == "timeout" and "killed after" in hung.error
    crashed = results[("fake/crashing", 0)]
    assert crashed.status == "error" and "exit code 3" in crashed.error
    assert all(results[("fake/quadratic", s)].status == "ok" for s in range(4))


def test_a_workers_first_run_records_how_long_the_worker_took_to_start(write_submission):
    """``worker_start`` (what the estimate prices a sweep's start-up by): on the first run
    of each worker, between its start and the driver's clock; NaN on its later runs."""
    gd = load_submission(write_submission(GD_SOURCE))
    specs = [RunSpec(task="fake/quadratic", budget="quick", optimizer=OptimizerRef.of(gd),
                     hparams={"lr": 0.3}, seed=seed) for seed in range(3)]
    started = time.monotonic()
    with LocalExecutor(1, time_limit=5.0, task_lookup=lookup) as executor:
        results = list(executor.map(specs))
    elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["ok"] * 3
    first, *later = results
    assert 0 < first.worker_start < elapsed
    assert all(r.worker_start != r.worker_start for r in later)  # NaN


def test_the_drivers_evaluation_of_a_run_is_timed_apart_from_its_wall_time(write_submission):
    """``eval_time`` (what the estimate adds to a run's wall time): the driver's
    evaluation of the initial point and of every point the worker sent."""
    gd = load_submission(write_submission(GD_SOURCE))
    task = SlowEvaluationTask()
    result = execute(task, gd, {"lr": 0.3}, 0, "quick")
    assert result.status == "ok"
    points = len(result.curve["eval_step"])
    assert points >= 4
    assert result.eval_time >= (points + 1) * EVALUATION_SLEEP
    assert result.wall_time < points * EVALUATION_SLEEP  # training alone


def test_a_worker_serves_the_next_map_of_its_submission_without_starting_again(
        write_submission):
    """A sweep hands runs out in batches and phases (one ``map`` each): a worker that is
    done while the other still trains stays ready for the next map, so only the first
    batch pays the workers' start."""
    gd = load_submission(write_submission(GD_SOURCE))
    specs = [RunSpec(task="fake/paced", budget="quick", optimizer=OptimizerRef.of(gd),
                     hparams={"lr": 0.3}, seed=seed) for seed in range(8)]
    with LocalExecutor(2, time_limit=20.0, task_lookup=lookup) as executor:
        first = list(executor.map(specs[:4]))
        pids = sorted(w.process.pid for w in executor._workers)
        second = list(executor.map(specs[4:]))
        assert sorted(w.process.pid for w in executor._workers) == pids
    assert len(pids) == 2
    assert [r.status for r in first + second] == ["ok"] * 8
    # Each worker's first run records its start (NaN on the rest): two starts in all.
    assert sum(r.worker_start == r.worker_start for r in first + second) == 2
