"""Attacks on the sweep and its command line, each asserting the promised behaviour.

Hostile submissions are the files in ``submissions/``; the tasks are the smallest real
ones (the depth-4 chain at the smoke budget: 50 steps of a 4-weight product). Every
sweep runs as a user runs it: ``lsb`` in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
TASK = "chain/depth-4-const"


def lsb(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "suites.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def submission(tmp_path: Path, name: str) -> Path:
    """A copy of a hostile submission in the test's own directory."""
    target = tmp_path / "submissions" / f"{name}.py"
    target.parent.mkdir(exist_ok=True)
    shutil.copy(SUBMISSIONS / f"{name}.py", target)
    return target


def records(results: Path, optimizer: str) -> dict[str, dict]:
    """The run files of ``optimizer``, their spec's fields beside the others."""
    documents = {p.name: json.loads(p.read_text())
                 for p in sorted((results / "runs").rglob(f"{optimizer}/*.json"))}
    return {name: {**doc, **doc["spec"]} for name, doc in documents.items()}


def outcome(record: dict) -> tuple:
    return (record["hparams"], record["seed"], record["status"], record["score"],
            record["curve"]["loss"], record["steps_run"])


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_submission_changing_global_state_leaves_the_others_runs_alone(tmp_path, jobs):
    alone = lsb("run", TASK, "--optimizer", "sgd", "--budget", "smoke", "-j", jobs,
                "--results", str(tmp_path / "alone"), cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    hostile = submission(tmp_path, "global_state")
    mixed = lsb("run", TASK, "--optimizer", str(hostile), "--optimizer", "sgd",
                "--budget", "smoke", "-j", jobs, "--results", str(tmp_path / "mixed"),
                cwd=tmp_path)
    assert mixed.returncode == 0, mixed.stderr
    clean, beside = records(tmp_path / "alone", "sgd"), records(tmp_path / "mixed", "sgd")
    assert clean.keys() == beside.keys()
    assert {r["phase"] for r in clean.values()} >= {"tune", "eval"}
    assert all(outcome(clean[k]) == outcome(beside[k]) for k in clean)
    assert not any(r["global_state_changes"] or r["invalid"] for r in beside.values())
    hostile = records(tmp_path / "mixed", "global-state").values()
    changed = [r["global_state_changes"] for r in hostile]
    assert changed and all(
        "default dtype: torch.float32 → torch.float64" in c and "threads: 1 → 2" in c
        and "torch.Tensor.backward replaced" in c for c in changed)
    # Such runs measure the change, not the optimizer: they are invalid.
    assert all("changed its process's global state" in r["invalid"] for r in hostile)


@pytest.mark.slow
def test_a_step_that_ends_its_process_is_an_error_and_the_sweep_goes_on(tmp_path):
    exits = submission(tmp_path, "exits")
    done = lsb("run", TASK, "--optimizer", str(exits), "--optimizer", "sgd", "--budget",
               "smoke", "-j", "1", "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 1  # some runs failed; they are listed
    assert "the worker process died (exit code 3)" in done.stderr
    statuses = {r["status"] for r in records(tmp_path / "r", "exits").values()}
    assert statuses == {"error"}
    sgd = records(tmp_path / "r", "sgd").values()
    assert {r["status"] for r in sgd} <= {"ok", "diverged"}
    assert [r["phase"] for r in sgd].count("tune") == 7  # its grid, every run made
    assert [r["phase"] for r in sgd].count("eval") == 1


@pytest.mark.slow
def test_an_endless_step_is_a_timeout_with_one_job(tmp_path):
    from suites.executors.base import default_kill_after

    hangs = submission(tmp_path, "hangs")
    started = time.monotonic()
    done = lsb("run", TASK, "--optimizer", str(hangs), "--budget", "smoke", "-j", "1",
               "--time-limit", "1", "--results", str(tmp_path / "r"), cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert "did not stop at its time limit" in done.stderr
    runs = records(tmp_path / "r", "hangs").values()
    # Every tuning run hangs, and the watchdog kills each one once the limit and its grace
    # have passed; a new worker then starts for the next run (seconds on a loaded machine).
    # With no tuning run measured, no configuration is chosen: no evaluation or
    # sensitivity runs are made (a hanging submission costs its grid, not 8× the watchdog).
    assert {r["status"] for r in runs} == {"timeout"}
    assert {r["phase"] for r in runs} == {"tune"}
    assert "skipped hangs on chain/depth-4-const: no tuning run produced" in done.stdout
    kill_after = default_kill_after(1.0)
    assert all(kill_after <= r["wall_time"] < kill_after + 5 for r in runs)
    # Each run costs at most its watchdog and a new worker; the sweep adds its validation.
    assert elapsed < len(runs) * (kill_after + 20) + 60


@pytest.mark.slow
def test_a_search_space_holding_a_function_is_refused_before_any_run(tmp_path):
    bad = submission(tmp_path, "lambda_space")
    done = lsb("run", TASK, "--optimizer", str(bad), "--budget", "smoke",
               "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 2
    # Read from the file's text, a function is no literal: refused before it ever runs.
    assert f"{bad}:" in done.stderr and "`search_space` must be written as a literal" in \
        done.stderr and "not a lambda expression" in done.stderr
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.slow
def test_printing_is_allowed_and_a_broken_file_is_blamed_alone(tmp_path):
    prints, broken = submission(tmp_path, "prints"), submission(tmp_path, "broken")
    done = lsb("run", TASK, "--optimizer", str(prints), "--budget", "smoke",
               "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["phase"] for r in records(tmp_path / "r", "prints").values()].count("tune") == 2
    both = lsb("run", TASK, "--optimizer", str(prints), "--optimizer", str(broken),
               "--optimizer", "sgd", "--budget", "smoke", "--results", str(tmp_path / "r"),
               cwd=tmp_path)
    assert both.returncode == 2
    problems = [line for line in both.stderr.splitlines() if line.startswith("  ")]
    assert problems == [f"  {broken}:8: importing the file raised RuntimeError: this file is "
                        "broken at line 8. The file runs top to bottom on import; fix the "
                        "statement at this line."]


@pytest.mark.parametrize("limit", ["-5", "0", "nan", "inf"])
def test_a_time_limit_must_be_finite_and_positive(tmp_path, limit, capsys):
    from suites.cli import main

    assert main(["run", TASK, "--optimizer", "sgd", "--budget", "smoke",
                 f"--time-limit={limit}", "--results", str(tmp_path / "r")]) == 2
    assert "give a finite number of seconds > 0" in capsys.readouterr().err
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.parametrize("seeds", [("0", "1"), ("-1", "0"), ("1", "0")])
def test_seed_counts_must_be_at_least_one(tmp_path, seeds, capsys):
    from suites.cli import main

    assert main(["run", TASK, "--optimizer", "sgd", "--budget", "smoke", "--seeds", *seeds,
                 "--results", str(tmp_path / "r")]) == 2
    assert "both counts must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.slow
def test_failed_runs_are_retried_on_request(tmp_path):
    flaky = submission(tmp_path, "flaky")
    (flaky.parent / "FAIL").touch()
    args = ["run", TASK, "--optimizer", str(flaky), "--budget", "smoke", "-j", "1",
            "--results", str(tmp_path / "r")]
    first = lsb(*args, cwd=tmp_path)
    assert first.returncode == 1
    assert "ValueError: the marker file says fail (at flaky.py:21)" in first.stderr
    assert "--retry-failed" in first.stderr.splitlines()[-1]
    (flaky.parent / "FAIL").unlink()
    again = lsb(*args, cwd=tmp_path)
    assert again.returncode == 1 and "0 runs made" in again.stdout  # stored errors are kept
    retried = lsb(*args, "--retry-failed", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    made = int(retried.stdout.split(" runs made")[0].rsplit("\n", 1)[-1])
    assert made >= 3  # both configurations again, and the evaluation of the chosen one
    runs = records(tmp_path / "r", "flaky").values()
    assert {r["status"] for r in runs if r["phase"] == "tune"} == {"ok"}
    assert "ok" in {r["status"] for r in runs if r["phase"] == "eval"}


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_the_sweep_resumes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "suites.cli", "run", "chain/depth-[48]-*", "--optimizer",
            "sgd", "--optimizer", "adam", "--budget", "smoke", "-j", "2",
            "--results", str(tmp_path / "r")]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "r").rglob("*.json"))) < 5:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted; finished runs are saved" in err
    assert "Traceback" not in err and "ConnectionResetError" not in err
    saved = len(list((tmp_path / "r").rglob("*.json")))
    resumed = lsb(*args[3:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    made = int(resumed.stdout.split(" runs made")[0].rsplit("\n", 1)[-1])
    total = len(list((tmp_path / "r").rglob("*.json")))
    assert made == total - saved and not math.isnan(total)


@pytest.mark.slow
def test_two_identical_sweeps_into_one_directory_make_each_run_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "suites.cli", "run", "chain/depth-*-const", "--optimizer",
            "sgd", "--budget", "smoke", "-j", "1", "--results", str(tmp_path / "r")]
    sweeps = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [sweep.communicate(timeout=600) for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
    made = [int(out.split(" runs made")[0].rsplit("\n", 1)[-1]) for out, _ in outputs]
    files = list((tmp_path / "r" / "runs").rglob("*.json"))
    assert sum(made) == len(files)  # every run made by exactly one of the two sweeps
    assert len(files) >= 5 * 8  # 5 chains x (7 tuning + 1 evaluation), sensitivity runs aside


@pytest.mark.parametrize("where", [pytest.param("file", marks=pytest.mark.slow),
                                   pytest.param("proc", marks=pytest.mark.slow), "read-only"])
def test_an_unwritable_results_directory_is_refused_before_any_run(tmp_path, where):
    if where == "file":
        results = tmp_path / "results.txt"
        results.write_text("not a directory")
    elif where == "proc":
        results = Path("/proc/lsb-results")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        results = tmp_path / "ro"
        results.mkdir()
        results.chmod(0o500)
    done = lsb("run", TASK, "--optimizer", "sgd", "--budget", "smoke",
               "--results", str(results), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--results DIR" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_directory_where_a_run_file_belongs_is_refused_with_its_path(tmp_path):
    first = lsb("run", TASK, "--optimizer", "sgd", "--budget", "smoke",
                "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert first.returncode == 0
    victim = sorted((tmp_path / "r" / "runs").rglob("*.json"))[0]
    victim.unlink()
    victim.mkdir()
    again = lsb("run", TASK, "--optimizer", "sgd", "--budget", "smoke",
                "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert again.returncode == 2
    assert f"{victim} is a directory where a run file belongs; remove it" in again.stderr
    assert "Traceback" not in again.stderr
