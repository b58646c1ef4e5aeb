"""The cost a sweep prints before it starts (``suites.estimate``): runs counted exactly from
the store, priced by the recorded wall times, plus the workers' start measured on this
machine."""

from __future__ import annotations

import math

import pytest

from kernels.machine import default_device, machine_label
from suites import estimate as estimating
from suites.api import SENSITIVITY_EXPONENTS, evaluation_seeds, step_size_variants, tuning_seeds
from suites.record import MetricRecord, RunResult, RunSpec
from suites.registry import builtin_optimizer_paths, get_task
from suites.results import ResultStore
from suites.submission import load_submission

HERE = machine_label(default_device())


@pytest.fixture(scope="module")
def sgd():
    return load_submission(builtin_optimizer_paths()["sgd"])


@pytest.fixture
def task():
    return get_task("chain/depth-4-const")


@pytest.fixture(autouse=True)
def no_reference(monkeypatch, tmp_path):
    """The committed results price nothing here: only the test's own store counts."""
    monkeypatch.setattr(estimating, "REFERENCE", tmp_path / "no-reference")


def stored(store: ResultStore, spec: RunSpec, task, score: float = 5.0, wall: float = 0.5,
           worker_start: float = math.nan, machine: str = HERE,
           evaluation: float = math.nan) -> RunResult:
    result = RunResult(spec=spec, suite=task.suite, metric=MetricRecord.of(task.metric),
                       status="ok", score=score, steps_run=5, grad_evals=5, wall_time=wall,
                       worker_start=worker_start, eval_time=evaluation,
                       env={"machine": machine})
    store.save(result)
    return result


def tuning_specs(task, sub, budget="smoke"):
    return [RunSpec.of(task, sub, budget, config, seed)
            for config in sub.configs() for seed in tuning_seeds(1)]


def test_an_empty_store_counts_every_phase_at_its_largest_and_guesses_the_price(
        tmp_path, task, sgd):
    result = estimating.estimate(ResultStore(tmp_path), [task], [sgd], "smoke", jobs=2,
                                 startup_seconds=1.0)
    later = len(evaluation_seeds(1)) + (len(SENSITIVITY_EXPONENTS) - 1) * len(tuning_seeds(1))
    assert result.runs == {"chain": len(sgd.configs()) + later}
    assert result.guessed == {"chain": 2}  # no recorded time: both charges guessed
    assert result.seconds["chain"] == pytest.approx(
        result.runs["chain"] * estimating.UNKNOWN_RUN / 2)
    # No worker start recorded: the validation's start-up plus the harness's imports.
    assert result.fixed_seconds == pytest.approx(1.0 + estimating.HARNESS_IMPORT)


def test_stored_tuning_runs_choose_the_config_whose_later_runs_are_counted_exactly(
        tmp_path, task, sgd):
    store = ResultStore(tmp_path)
    specs = tuning_specs(task, sgd)
    for i, spec in enumerate(specs):  # the first config escapes fastest
        stored(store, spec, task, score=5.0 + i, wall=0.2)
    best = specs[0].hparams
    evaluation = RunSpec.of(task, sgd, "smoke", best, evaluation_seeds(1)[0], "eval")
    stored(store, evaluation, task, wall=0.2)
    result = estimating.estimate(store, [task], [sgd], "smoke", jobs=1, startup_seconds=1.0)
    sensitivity = (len(SENSITIVITY_EXPONENTS) - 1) * len(tuning_seeds(1))
    # The sensitivity runs of the chosen config, less those the grid already made (a run
    # is keyed by its config and seed, not by its phase).
    variants = [config for k, config in step_size_variants(best, sgd.lr_key) if k != 0]
    made = sum(spec.hparams in variants for spec in specs)
    assert result.runs == {"chain": sensitivity - made}
    assert result.guessed == {}
    assert result.seconds["chain"] == pytest.approx(result.runs["chain"] * 0.2)


def test_the_workers_start_is_the_median_recorded_on_this_machine(tmp_path, task, sgd):
    store = ResultStore(tmp_path)
    specs = tuning_specs(task, sgd)
    for spec, start in zip(specs, [2.0, 3.0, 4.0], strict=False):
        stored(store, spec, task, worker_start=start)
    stored(store, specs[3], task, worker_start=60.0, machine="another-machine")
    result = estimating.estimate(store, [task], [sgd], "smoke", jobs=2, startup_seconds=1.0)
    assert result.fixed_seconds == pytest.approx(3.0)
    two = estimating.estimate(store, [task], [sgd, sgd], "smoke", jobs=2, startup_seconds=1.0)
    assert two.fixed_seconds == pytest.approx(6.0)  # each submission's workers start anew


def test_a_task_without_recorded_runs_is_priced_by_its_suites(tmp_path, task, sgd):
    store = ResultStore(tmp_path)
    other = get_task("chain/depth-8-const")
    for spec in tuning_specs(other, sgd):
        stored(store, spec, other, wall=0.4)
    result = estimating.estimate(store, [task], [sgd], "smoke", jobs=1, startup_seconds=0.0)
    assert result.guessed == {}
    assert result.seconds["chain"] == pytest.approx(result.runs["chain"] * 0.4)


def test_the_printed_duration_keeps_the_figures_an_estimate_has():
    from suites.console import duration

    assert [duration(s) for s in (3.44, 45.2, 217.4, 3600, 7200)] == \
        ["3.4 s", "45 s", "3 min 37 s", "60 min", "2.0 h"]


def test_a_run_is_priced_by_the_lower_quartile_of_its_tasks_recorded_times(
        tmp_path, task, sgd):
    """Runs recorded while the machine was shared took longer: one slow run of four
    barely moves the price."""
    store = ResultStore(tmp_path)
    other = get_task("chain/depth-8-const")
    for spec, wall in zip(tuning_specs(other, sgd), [1.0, 2.0, 3.0, 10.0], strict=False):
        stored(store, spec, other, wall=wall)
    per_task, per_suite = estimating.seconds_per_run(store.table()[0], "smoke")
    assert per_task == {"chain/depth-8-const": pytest.approx(1.75)}  # not the mean, 4
    assert per_suite == {"chain": pytest.approx(1.75)}


def test_a_runs_price_adds_the_drivers_evaluation_where_it_was_recorded(tmp_path, task, sgd):
    """The worker waits while the driver evaluates its run, so a run costs both; a run
    recorded before the evaluation was timed costs its wall time alone."""
    store = ResultStore(tmp_path)
    other = get_task("chain/depth-8-const")
    for spec, evaluation in zip(tuning_specs(other, sgd), [0.5, 0.5, 0.5, math.nan],
                                strict=False):
        stored(store, spec, other, wall=1.0, evaluation=evaluation)
    per_task, _ = estimating.seconds_per_run(store.table()[0], "smoke")
    assert per_task == {"chain/depth-8-const": pytest.approx(1.375)}  # of 1.0, 1.5, 1.5, 1.5
