"""The Ray executor on a local Ray instance: same results as the local executor, lost
workers made again then recorded, stuck runs saved as timeouts, stopped sweeps resumed.

The instance starts once for the module (seconds); its workers find the fake tasks
through ``PYTHONPATH`` (set in the environment they inherit: a ``runtime_env`` would
make Ray start a fresh worker for every task). Without Ray installed only the
command-line checks run.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import pytest
from cluster_fakes import (
    GD2_SOURCE,
    DyingTask,
    lookup,
    outcome,
    result_files,
    spec_for,
    worker_pythonpath,
)
from engine_fakes import QuadraticTask
from test_engine_pool import HangingTask

from suites.cli import build_parser, main
from suites.executors import LocalExecutor, RayExecutor
from suites.results import ResultStore
from suites.sandbox import landlock_abi
from suites.submission import load_submission
from suites.sweeps import UsageError, _executor
from suites.tuning import run_sweep

QUADRATICS = (QuadraticTask(), QuadraticTask(name="fake/quadratic-2"))


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install '.[ray]'")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", worker_pythonpath())
        ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def gd(write_submission):
    return load_submission(write_submission(GD2_SOURCE, "gd.py"))


@pytest.mark.slow
def test_ray_gives_the_local_executors_results_and_saves_them(ray_cluster, gd, tmp_path):
    sweep = dict(seeds=(1, 1), budget="quick")
    local = run_sweep(QUADRATICS[:1], [gd], store=ResultStore(tmp_path / "local"),
                      executor=LocalExecutor(1, 30.0), **sweep)
    with RayExecutor(tmp_path / "ray", 30.0, task_lookup=lookup(*QUADRATICS)) as executor:
        on_ray = run_sweep(QUADRATICS[:1], [gd], store=ResultStore(tmp_path / "ray"),
                           executor=executor, **sweep)
        assert executor._started is False  # the test's Ray instance, not one of its own
    assert on_ray.made_by_phase == local.made_by_phase
    assert on_ray.made_by_phase["tuning"] + on_ray.made_by_phase["evaluation"] == 3
    assert outcome(on_ray) == outcome(local)  # one thread per run: identical numbers
    assert on_ray.best_configs == local.best_configs
    assert len(result_files(tmp_path / "ray")) == on_ray.runs_made  # the workers saved each
    # A Ray task supervises its run as the local executor does: the submission trains in a
    # sandboxed child (where Landlock is available), the task evaluates it itself.
    expected = {r.sandbox for r in local.results}
    assert {r.sandbox for r in on_ray.results} == expected
    if landlock_abi():
        assert all(s.startswith("landlock") for s in expected)


@pytest.mark.slow
def test_lost_workers_are_replaced_and_stuck_runs_saved_as_timeouts(ray_cluster, gd, tmp_path):
    dies_once = DyingTask(attempts_dir=str(tmp_path), deaths=1)
    dies_always = DyingTask(name="fake/dying-always", attempts_dir=str(tmp_path))
    specs = [spec_for(task, gd, seed=0) for task in (dies_once, dies_always, HangingTask())]
    # The watchdog's limit leaves a loaded machine (both cores busy with other tests) room
    # for the runs that do finish: a few ms each when idle, seconds when starved.
    executor = RayExecutor(tmp_path / "results", 5.0, retries=1, kill_after=8.0,
                           task_lookup=lookup(dies_once, dies_always, HangingTask()))
    results = {r.spec.task: r for r in executor.map(specs)}
    assert len(results) == 3

    recovered = results["fake/dying"]
    assert recovered.status == "ok" and dies_once.attempts(0) == 2
    assert ResultStore(tmp_path / "results").load(specs[0]) is not None  # saved by the worker

    lost = results["fake/dying-always"]
    assert lost.status == "error" and dies_always.attempts(0) == 2  # one retry
    assert "the worker was lost 2 times" in lost.error and "WorkerCrashedError" in lost.error

    stuck = results["fake/hanging"]
    killed = re.search(r"killed after (\d+\.\d) s", stuck.error or "")
    assert stuck.status == "timeout" and killed and float(killed.group(1)) >= 8.0, stuck.error


class Stop(Exception):
    pass


@pytest.mark.slow
def test_a_stopped_sweep_resumes_without_redoing_or_duplicating_runs(ray_cluster, gd, tmp_path):
    store = ResultStore(tmp_path / "results")
    arguments = dict(budget="quick", seeds=(1, 1), store=store)

    def stop(result):
        raise Stop

    with RayExecutor(store.root, 30.0, task_lookup=lookup(*QUADRATICS)) as executor:
        with pytest.raises(Stop):  # the driver stops at the first result
            run_sweep(QUADRATICS, [gd], executor=executor, on_result=stop, **arguments)
        kept = len(result_files(store.root))  # that one, and any the workers finished
        assert kept >= 1
        again = run_sweep(QUADRATICS, [gd], executor=executor, **arguments)
    total = len(result_files(store.root))
    assert kept < total
    assert (again.runs_reused, again.runs_made) == (kept, total - kept)
    assert total == len(again.results)  # no run made twice, none lost


@pytest.mark.slow
def test_the_command_line_runs_a_real_task_on_ray(ray_cluster, tmp_path, capsys):
    command = ["run", "chain/depth-4-const", "--optimizer", "sgd", "--budget", "smoke",
               "--executor", "ray", "--results", str(tmp_path)]
    assert main(command) == 0
    out = capsys.readouterr().out
    counts = re.search(r"(\d+) runs made, (\d+) found", out)
    assert "on ray" in out and counts, out
    made, found = int(counts.group(1)), int(counts.group(2))  # found: grid runs reused
    assert made >= 8  # 7 tuning + 1 evaluation, and the sensitivity runs the grid lacks
    assert main(command) == 0
    assert f"0 runs made, {made + found} found" in capsys.readouterr().out


def test_a_missing_extra_names_its_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    args = build_parser().parse_args(["run", "chain", "--executor", "ray"])
    with pytest.raises(UsageError, match=re.escape("pip install '.[ray]'")):
        _executor(args, args.executor, None, 10.0, tmp_path)


@pytest.mark.parametrize("options, message", [
    (["--partition", "gpu"], "--partition is an option of --executor slurm"),
    (["--executor", "ray", "--time", "10"], "--time is an option of --executor slurm"),
    (["--retries", "3"], "--retries is an option of --executor ray and slurm"),
    (["--executor", "slurm", "--gpus-per-run", "0.5"], "a whole number on Slurm"),
    (["--executor", "ray", "--retries", "-1"], "must be at least 0"),
])
def test_executor_options_are_checked(tmp_path, options, message):
    args = build_parser().parse_args(["run", "chain", *options])
    with pytest.raises(UsageError, match=re.escape(message)):
        _executor(args, args.executor, None, 10.0, tmp_path)


@dataclass
class FlatTask(QuadraticTask):
    """Every configuration scores the same: the tuning protocol must break the tie."""

    name: str = "fake/flat"

    def score(self, metrics, steps_run, status) -> float:
        return 1.0


class ReversedExecutor(LocalExecutor):
    """Results arrive in the opposite order, as a cluster may deliver them."""

    def map(self, specs, tasks=None):
        return reversed(list(super().map(specs, tasks)))


@pytest.mark.slow
def test_ties_are_broken_the_same_whatever_order_results_arrive_in(gd, tmp_path):
    chosen = [
        run_sweep([FlatTask()], [gd], "smoke", store=ResultStore(tmp_path / str(i)),
                  executor=executor(1, 30.0)).best_configs
        for i, executor in enumerate((LocalExecutor, ReversedExecutor))
    ]
    assert chosen[0] == chosen[1] == {("fake/flat", "gd"): {"lr": 0.1}}  # the first config
