"""The ``lsb`` command line, end to end on the fake suite (runs in-process with -j 1)."""

from __future__ import annotations

import re

import pytest
from engine_fakes import LION_SOURCE, QuadraticTask

from suites.cli import main
from suites.console import duration
from suites.estimate import DEMO_SITE, SUBMIT_TABLES


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


@pytest.mark.slow
def test_submit_shows_the_new_optimizer_with_ranks(fake_registry, write_submission, results,
                                                   capsys):
    fake_registry.pop()  # no failing task: every run succeeds
    assert main(["run", "fake", "-j", "1", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 tasks x 1 optimizers (4 configs)" in out
    assert "then the tables" not in out  # lsb run prints no table after its sweep

    lion = write_submission(LION_SOURCE, "lion.py")
    assert main(["submit", str(lion), "-j", "1", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert f"then the tables: about {duration(SUBMIT_TABLES)}" in out  # priced too
    assert "== lion (" in out and "per task, budget quick ==" in out
    assert "/2" in out  # its rank on each task out of two optimizers
    assert "lion overall: rank" in out

    assert main(["show", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "== overall (fake; budget quick) ==" in out
    for column in ("score", "step_window", "grid_near_best", "time_vs_sgd", "memory_vs_sgd"):
        assert column in out
    assert "lion" in out and "gd" in out
    assert "quadratic-2" in out  # the per-task ranking of the suite
    assert re.search(r"\d rank groups? among 2 optimizers", out)

    # A budget without evaluation runs names the budgets that have some, and exits 2.
    assert main(["show", "--results", str(results), "--budget", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "no 'smoke' evaluation runs" in err and "quick (" in err and "--budget" in err


def test_results_directory_from_the_environment(fake_registry, results, monkeypatch, capsys):
    monkeypatch.setenv("LSB_RESULTS", str(results))
    assert main(["show"]) == 0
    assert f"no 'quick' evaluation runs in {results}/" in capsys.readouterr().out
    assert main(["show", "--kernels"]) == 0
    assert f"no kernel benchmarks in {results}/kernels/" in capsys.readouterr().out


INVALID = """
import torch
name = "flat-list"
lr_key = "lr"
search_space = {"lr": [0.1]}
def build(param_groups, lr):
    return [p for group in param_groups for p in group["params"]]
"""


def test_invalid_submission_exits_2_before_any_run(fake_registry, write_submission, results,
                                                   capsys):
    path = write_submission(INVALID)
    assert main(["submit", str(path), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5: build(param_groups, **{{'lr': 0.1}}): build returned a list of " \
        "Parameter, not a torch.optim.Optimizer (nor a list or tuple of them)" in err
    assert not results.exists()


@pytest.mark.slow
def test_failed_runs_are_listed_and_exit_1(fake_registry, results, capsys):
    assert main(["run", "fake/failing", "--optimizer", "gd", "-j", "1",
                 "--results", str(results)]) == 1
    out, err = capsys.readouterr()
    # 4 configurations × 1 tuning seed; with every tuning run failed no configuration is
    # chosen, so neither evaluation nor sensitivity runs are made (the summary says why).
    assert "4 runs failed" in err
    assert "skipped gd on fake/failing: no tuning run produced a valid measurement" in out
    assert ("fake/failing  gd  {'lr': 0.01}  seed 0  error: RuntimeError: the data loader "
            "broke at step 3") in err


@pytest.mark.parametrize(
    "argv",
    [["run", "no-such-suite"], ["run", "fake", "--optimizer", "no-such-optimizer"],
     ["run", "fake", "-j", "0"], []],
)
def test_bad_usage_exits_2(fake_registry, argv, capsys):
    assert main(argv) == 2


def test_list_shows_tasks_and_optimizers(fake_registry, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "suites: fake" in out
    assert "fake/quadratic" in out and "final_loss (lower is better)" in out
    assert "gd             4 configs  Gradient descent\n" in out


class _NeedsData(QuadraticTask):
    """A task whose quick and full budgets read files that are not there."""

    def __init__(self):
        super().__init__(name="fake/needs-data")

    def missing_data(self, budget):
        if budget == "smoke":
            return None
        return ("LRA data 'x' not found under /nowhere (set LSB_LRA_ROOT); looked for:\n"
                "  /nowhere/x.tsv\nTo get them, generate them with `lsb data x`.")


@pytest.mark.slow
def test_tasks_without_their_data_are_listed_and_skipped(fake_registry, results, capsys):
    fake_registry[:] = [QuadraticTask(), _NeedsData()]
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "needs data for quick/full: LRA data 'x' not found under /nowhere" in out
    assert "To get them, generate them with `lsb data x`." in out
    assert "/nowhere/x.tsv" not in out  # list is a summary; run prints every path

    assert main(["run", "fake", "--optimizer", "gd", "-j", "1", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert "skipping fake/needs-data (needs data): LRA data 'x'" in captured.err
    assert "/nowhere/x.tsv" in captured.err
    assert "1 tasks x 1 optimizers" in captured.out
    assert main(["run", "fake/needs-data", "--optimizer", "gd", "-j", "1",
                 "--results", str(results)]) == 2
    assert "no selected task has its data at the 'quick' budget" in capsys.readouterr().err
    assert main(["run", "fake/needs-data", "--optimizer", "gd", "-j", "1", "--budget", "smoke",
                 "--results", str(results)]) == 0


def test_demo_submits_the_example_optimizer_live_on_the_suites_demo_tasks(
    fake_registry, results, monkeypatch, capsys, tmp_path
):
    from suites import registry, sitegen

    fake_registry[:] = [QuadraticTask(), QuadraticTask(name="extra/quadratic", suite="extra")]
    monkeypatch.setattr(registry, "demo_plan", lambda: ["fake", "extra/absent"])
    built = {}
    monkeypatch.setattr(sitegen, "build_site", lambda root, budget=None:
                        built.setdefault("index", tmp_path / "site/index.html"))
    assert main(["demo", "-j", "1", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "1 tasks x 1 optimizers" in out
    # 6 configurations, 2 evaluation seeds, the tuned step size × 2^k for the six k ≠ 0
    assert "demo: 14 runs of signum made, 0 found" in out
    # The estimate prices what comes after the sweep too, and the demo says what each took.
    assert f"then the tables and the site: about {duration(DEMO_SITE)}" in out
    assert re.search(r"found, in [\d.]+ s \(the sweep [\d.]+ s, the site [\d.]+ s\)", out)
    assert f"site: open file://{tmp_path / 'site/index.html'}" in out
    ran = {(p.parts[-4], p.parts[-2]) for p in (results / "runs").rglob("*.json")}
    assert ran == {("fake", "signum")}
    assert main(["demo", "-j", "1", "--results", str(results)]) == 0
    assert "demo: 0 runs of signum made, 14 found" in capsys.readouterr().out  # a second demo


def test_data_directories_reach_the_tasks_through_the_environment(fake_registry, tmp_path,
                                                                  monkeypatch):
    import os

    from suites.lra.data.release import cache_dir, default_root

    monkeypatch.delenv("LSB_DATA_DIR", raising=False)
    monkeypatch.delenv("LSB_LRA_ROOT", raising=False)
    assert main(["--data-dir", str(tmp_path / "cache"), "--lra-root", str(tmp_path / "lra"),
                 "list"]) == 0
    assert cache_dir() == tmp_path / "cache" and default_root() == tmp_path / "lra"
    assert os.environ["LSB_DATA_DIR"] == str(tmp_path / "cache")  # undone by monkeypatch


def test_doctor_prints_both_kernel_backends_and_names_the_valid_values(monkeypatch, capsys):
    monkeypatch.delenv("LSB_SCAN_BACKEND", raising=False)
    monkeypatch.delenv("LSB_OPTIM_BACKEND", raising=False)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "$LSB_SCAN_BACKEND = unset (auto); valid: auto, sequential, chunked, triton" in out
    assert "$LSB_OPTIM_BACKEND = unset (auto); valid: auto, torch, triton" in out
    monkeypatch.setenv("LSB_OPTIM_BACKEND", "cuda")
    assert main(["doctor"]) == 2
    assert "LSB_OPTIM_BACKEND='cuda'" in capsys.readouterr().out
