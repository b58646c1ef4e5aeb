"""The Slurm executor: the sbatch script of a sweep's job array (with stand-ins for
``sbatch``, ``srun`` and ``scancel``), and the submit / collect / make-again path on
submitit's local executor, whose jobs are processes of this machine.

Without submitit installed the module is skipped.
"""

from __future__ import annotations

import os
import re
import stat

import pytest
from cluster_fakes import GD2_SOURCE, DyingTask, lookup, spec_for, worker_pythonpath
from engine_fakes import QuadraticTask
from test_engine_pool import HangingTask

from suites.executors import LocalExecutor, SlurmExecutor
from suites.results import ResultStore
from suites.sandbox import landlock_abi
from suites.submission import load_submission

submitit = pytest.importorskip("submitit",
                               reason="submitit is not installed: pip install '.[slurm]'")


@pytest.fixture
def gd(write_submission):
    return load_submission(write_submission(GD2_SOURCE, "gd.py"))


@pytest.fixture
def local_jobs(monkeypatch):
    """Jobs (new processes) import the fake tasks; a lost job is noticed at once."""
    monkeypatch.setenv("PYTHONPATH", worker_pythonpath())
    # submitit waits 15 s for the result file of a finished job, for slow shared disks.
    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 0)


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` keeps the script it is given and answers job 4242; ``scancel`` logs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "sbatch": f'cp "$1" {tmp_path}/sbatch.sh\necho "Submitted batch job 4242"\n',
        "scancel": f'echo "$@" >> {tmp_path}/scancel.log\n',
        "srun": "exit 0\n",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield tmp_path
    submitit.slurm.slurm.SlurmJob.watcher.clear()


def test_a_sweep_phase_is_one_job_array_with_the_resources_asked_for(fake_slurm, gd):
    results = fake_slurm / "results"
    executor = SlurmExecutor(results, 60.0, partition="gpu", gpus_per_run=1,
                             array_parallelism=2)
    specs = [spec_for(QuadraticTask(), gd, seed) for seed in range(3)]
    jobs = executor._submit(specs)
    assert [job.job_id for job in jobs] == ["4242_0", "4242_1", "4242_2"]

    sbatch = (fake_slurm / "sbatch.sh").read_text()
    logs = results.resolve() / "slurm-logs"
    for line in (
        "#SBATCH --array=0-2%2",  # three runs, at most two at once
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --nodes=1",
        "#SBATCH --time=7",  # the hard limit, 60 s x 1.25 + 10 s, in minutes, + 5
        "#SBATCH --job-name=lsb",
        f"#SBATCH --output={logs}/%A_%a/%A_%a_0_log.out",
        f"#SBATCH --error={logs}/%A_%a/%A_%a_0_log.err",
    ):
        assert line in sbatch.splitlines(), line
    executor._cancel(jobs)
    assert (fake_slurm / "scancel.log").read_text().split() == ["4242_0", "4242_1", "4242_2"]


def test_without_sbatch_the_error_says_where_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="Slurm login node"):
        SlurmExecutor(tmp_path, 60.0)


@pytest.mark.slow
def test_jobs_give_the_in_process_results_and_survive_lost_workers(local_jobs, gd, tmp_path):
    """One batch (process start-up is the cost here): an ordinary run, a run whose
    worker dies once, one whose worker always dies and one stuck inside a step."""
    dies_once = DyingTask(attempts_dir=str(tmp_path), deaths=1)
    dies_always = DyingTask(name="fake/dying-always", attempts_dir=str(tmp_path))
    tasks = (QuadraticTask(), dies_once, dies_always, HangingTask())
    ordinary = [spec_for(tasks[0], gd, seed=0)]
    specs = ordinary + [spec_for(task, gd, seed=0) for task in tasks[1:]]
    # The watchdog's limit leaves a loaded machine room for the runs that do finish.
    executor = SlurmExecutor(tmp_path / "results", 5.0, cluster="local", retries=1,
                             kill_after=8.0, task_lookup=lookup(*tasks))
    results = {(r.spec.task, r.spec.seed): r for r in executor.map(specs)}
    assert len(results) == 4

    in_process = LocalExecutor(1, 5.0).map(ordinary, {tasks[0].name: tasks[0]})
    for expected in in_process:
        got = results[(expected.spec.task, expected.spec.seed)]
        assert (got.status, got.steps_run, got.metrics, got.sandbox) == \
            (expected.status, expected.steps_run, expected.metrics, expected.sandbox)
        if landlock_abi():  # a job supervises a sandboxed training child, as locally
            assert got.sandbox.startswith("landlock")

    assert results[("fake/dying", 0)].status == "ok" and dies_once.attempts(0) == 2
    lost = results[("fake/dying-always", 0)]
    assert lost.status == "error" and dies_always.attempts(0) == 2
    assert "the worker was lost 2 times" in lost.error
    assert "has not produced any output" in lost.error
    stuck = results[("fake/hanging", 0)]
    killed = re.search(r"killed after (\d+\.\d) s", stuck.error or "")
    assert stuck.status == "timeout" and killed and float(killed.group(1)) >= 8.0, stuck.error

    store = ResultStore(tmp_path / "results")
    saved = [spec for spec in specs if store.load(spec) is not None]
    assert saved == [specs[0], specs[1], specs[3]]  # by the workers
    logs = tmp_path / "results" / "slurm-logs"
    assert len([p for p in logs.iterdir() if p.name.isdigit()]) == 6  # a folder per job
