"""Attacks on the ranking from inside a submission, each made for real through ``lsb``.

The submissions are in ``submissions/``; each sweep runs as a user runs it (``lsb`` in a
subprocess) on the smallest real task, the depth-4 chain at the smoke budget. The promise
under test: the code being ranked cannot change the ranking. What it claims is checked
against the driver's own spec and clock, held-out data stay in another process, it
writes nowhere but its scratch directory, and nothing it starts outlives its run.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import psutil
import pytest
from test_sweeps import TASK, lsb, submission

from suites.sandbox import landlock_abi

pytestmark = pytest.mark.slow
needs_landlock = pytest.mark.skipif(not landlock_abi(), reason="Landlock is unavailable here")


def run_files(results: Path, optimizer: str) -> list[dict]:
    return [json.loads(p.read_text())
            for p in sorted((results / "runs").rglob(f"{optimizer}/*.json"))]


@needs_landlock
def test_a_worker_cannot_relabel_its_results_nor_write_another_optimizers(tmp_path):
    hostile = submission(tmp_path, "forges_results")
    results = tmp_path / "results"
    done = lsb("run", TASK, "--optimizer", str(hostile), "--optimizer", "sgd", "--budget",
               "smoke", "-j", "1", "--results", str(results), cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    # Nothing under sgd's name but sgd's own runs, each valid.
    sgd = run_files(results, "sgd")
    assert sgd and all(r["spec"]["optimizer"]["name"] == "sgd" and r["invalid"] is None
                       for r in sgd)
    assert not (results / "runs" / "chain" / "depth-4-const" / "sgd" / "forged.json").exists()
    # The forger's runs are filed under its own name; the forged messages (every run after
    # the patch) are refused; no score is the one it claimed, no device the one it named.
    forged = run_files(results, "forges-results")
    assert forged and all(r["spec"]["optimizer"]["name"] == "forges-results" for r in forged)
    refused = [r for r in forged if r["invalid"]]
    assert refused and all("the worker's message was refused" in r["invalid"] for r in refused)
    assert all(r["env"]["device"].startswith("cpu") and r["score"] != 0.0 for r in forged)
    assert any("REFUSED PermissionError" in r["output_tail"] for r in forged)


def test_held_out_labels_are_out_of_the_training_process_and_a_faked_clock_is_caught(
        tmp_path):
    hostile = submission(tmp_path, "peeks")
    results = tmp_path / "results"
    done = lsb("run", "chain/deep-mlp", "--optimizer", str(hostile), "--budget", "smoke",
               "-j", "1", "--results", str(results), cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    runs = run_files(results, "peeks")
    assert runs
    for run in runs:
        assert "FOUND 0 held-out label tensors" in run["output_tail"]
        # The score is the evaluating process's measurement of the trained weights.
        assert run["metrics"]["test_accuracy"] < 0.5
        assert "clock was tampered with" in run["invalid"] or \
            "time.perf_counter replaced" in run["invalid"]


def test_processes_a_step_starts_do_not_outlive_its_run(tmp_path):
    hostile = submission(tmp_path, "leaves_children")
    results = tmp_path / "results"
    done = lsb("run", TASK, "--optimizer", str(hostile), "--budget", "smoke", "-j", "1",
               "--results", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pids = {int(pid) for run in run_files(results, "leaves-children")
            for pid in re.findall(r"CHILD (\d+)", run["output_tail"])}
    assert len(pids) >= 2  # the one that ignores SIGTERM and the re-parented one
    time.sleep(1)
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes of the run still alive: {alive}"


def test_a_run_over_the_memory_limit_is_out_of_memory_and_the_sweep_goes_on(tmp_path):
    hostile = submission(tmp_path, "hogs_memory")
    results = tmp_path / "results"
    done = lsb("run", TASK, "--optimizer", str(hostile), "--optimizer", "sgd", "--budget",
               "smoke", "-j", "1", "--memory-limit", "1", "--results", str(results),
               cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    hog = run_files(results, "hogs-memory")
    assert hog and {r["status"] for r in hog} == {"out_of_memory"}
    assert "memory limit (1 GiB; lsb run --memory-limit GIB)" in hog[0]["error"]
    assert hog[0]["peak_rss_bytes"] >= 2**30
    assert "out_of_memory" in done.stderr
    assert {r["status"] for r in run_files(results, "sgd")} <= {"ok", "diverged"}  # went on


def test_output_is_bounded_kept_in_the_run_file_and_shown_on_failure(tmp_path):
    hostile = submission(tmp_path, "floods_output")
    results = tmp_path / "results"
    done = lsb("run", TASK, "--optimizer", str(hostile), "--budget", "smoke", "-j", "1",
               "--results", str(results), cwd=tmp_path)
    assert done.returncode == 1
    assert len(done.stdout) + len(done.stderr) < 200_000  # not 50 MB on the terminal
    (run,) = run_files(results, "floods-output")
    assert run["output_bytes"] >= 50_000_000
    assert len(run["output_tail"]) <= 4000 and "THE LAST LINE" in run["output_tail"]
    assert "THE LAST LINE" in done.stderr  # the failure summary shows the run's output


def test_a_search_space_grown_at_import_is_refused_before_any_run(tmp_path):
    hostile = submission(tmp_path, "rewrites_its_space")
    results = tmp_path / "results"
    done = lsb("run", TASK, "--optimizer", str(hostile), "--budget", "smoke", "-j", "1",
               "--results", str(results), cwd=tmp_path)
    # The file is read as written (literal declarations) and run: what runs differs from
    # what is declared, so it is refused before any run, naming the fields and the fix.
    assert done.returncode == 2, done.stderr
    assert "`search_space`, `max_configs` read differently when the file runs" in done.stderr
    assert "declare them once, as literals" in done.stderr
    assert run_files(results, "rewrites-its-space") == []


def test_a_hand_edited_score_fails_verification_and_an_untouched_run_passes(tmp_path):
    results = tmp_path / "results"
    made = lsb("run", TASK, "--optimizer", "sgd", "--budget", "smoke", "-j", "1",
               "--results", str(results), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    files = sorted((results / "runs").rglob("sgd/*.json"))
    evaluation = next(p for p in files if json.loads(p.read_text())["spec"]["phase"] == "eval")
    untouched = next(p for p in files if p != evaluation)
    document = json.loads(evaluation.read_text())
    document["score"] = 1.0  # better than anything sgd reached
    evaluation.write_text(json.dumps(document, indent=1))

    edited = lsb("verify", str(evaluation), "--results", str(results), cwd=tmp_path)
    assert edited.returncode == 1
    assert f"DIFFERS {evaluation}" in edited.stdout
    assert "score: recorded 1.0, re-run" in edited.stdout
    assert "edited after the driver wrote it" in edited.stdout

    honest = lsb("verify", str(untouched), "--results", str(results), cwd=tmp_path)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert f"ok {untouched}" in honest.stdout
    marks = list((results / "verified").rglob("*.json"))
    assert [json.loads(m.read_text())["run_key"] for m in marks] == [untouched.stem]
