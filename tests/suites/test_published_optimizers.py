"""Published optimizers from PyPI, written as their users write them, through the runner
and ``lsb submit``: schedule-free's train/eval modes, AdaHessian's second-order closure,
Prodigy's single parameter group, and declared requirements with their versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from suites import registry
from suites.api import GRAPH_EVAL_COST
from suites.executors import execute
from suites.submission import load_submission
from suites.training import optimizer_param_groups, seed_everything

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = Path(__file__).resolve().parent / "published"


def lsb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "suites.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_schedule_free_is_evaluated_at_its_averaged_iterate():
    """The runner's evaluation equals the authors' usage (train() for steps, eval() before
    evaluating), and differs from evaluating at the training iterate."""
    submission = load_submission(PUBLISHED / "adamw_schedulefree.py")
    task = registry.get_task("valley/linear-net-w300")
    result = execute(task, submission, {"lr": 0.01}, 0, "smoke")
    assert result.status == "ok"

    def replay(switch_to_eval: bool) -> float:
        seed_everything(task.name, 0)
        problem = task.setup(0, "smoke")
        optimizer = submission.build(
            optimizer_param_groups(problem.param_groups, {"lr": 0.01}, "lr"), lr=0.01)
        optimizer.train()
        for step in range(problem.steps):
            def closure(step=step):
                optimizer.zero_grad(set_to_none=True)
                loss = problem.loss(step)
                loss.backward()
                return loss
            optimizer.step(closure)
        if switch_to_eval:
            optimizer.eval()
        with torch.no_grad():
            return float(problem.evaluate()[task.metric.name])

    assert result.metrics[task.metric.name] == replay(switch_to_eval=True)
    assert result.metrics[task.metric.name] != replay(switch_to_eval=False)


def test_a_second_order_method_trains_the_lru_through_the_scan():
    """AdaHessian's Hutchinson products differentiate the LRU's scan twice."""
    submission = load_submission(PUBLISHED / "adahessian.py")
    assert submission.create_graph
    result = execute(registry.get_task("lra/listops"), submission, {"lr": 0.01}, 0, "smoke")
    assert result.status == "ok", result.error
    budget = registry.get_task("lra/listops").budgets.smoke  # in gradient evaluations
    assert result.grad_evals == budget
    assert result.steps_run == budget // GRAPH_EVAL_COST  # a Hessian-vector step costs more


@pytest.mark.slow
@pytest.mark.parametrize("file, package", [
    ("adamw_schedulefree.py", "schedulefree"),
    ("adahessian.py", "pytorch-optimizer"),
    ("prodigy.py", "prodigyopt"),
    ("lion.py", "lion-pytorch"),
])
def test_published_optimizers_go_from_a_file_to_a_ranked_row(tmp_path, file, package):
    results = tmp_path / "results"
    mine = tmp_path / "mine" / file  # a researcher's copy, gone before the site is built
    mine.parent.mkdir()
    mine.write_bytes((PUBLISHED / file).read_bytes())
    done = lsb("submit", str(mine), "chain/depth-4-const", "valley/widening",
               "--budget", "smoke", "--results", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "overall: rank 1 of 1 (1 rank groups)" in done.stdout
    assert f"lsb site build --results {results} --budget smoke" in done.stdout
    files = sorted((results / "runs").rglob("*.json"))
    assert files
    version = metadata.version(package)
    for path in files:
        record = json.loads(path.read_text())
        assert record["spec"]["optimizer"]["packages"][package] == version
        assert record["status"] in ("ok", "diverged")
    name = json.loads(files[0].read_text())["spec"]["optimizer"]["name"]
    kept = results / "optimizers" / name / f"{record['spec']['optimizer']['source_hash']}.py"
    assert kept.read_bytes() == (PUBLISHED / file).read_bytes()
    mine.unlink()  # the site must show the store's copy
    built = lsb("site", "build", "--results", str(results), "--out", str(tmp_path / "site"),
                "--budget", "smoke", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    page = (tmp_path / "site" / "optimizer" / f"{name}.html").read_text()
    assert f"<code>{package} {version}</code>" in page
    assert f'href="../raw/optimizers/{name}/{file}"' in page


def test_an_unmet_requirement_names_the_pip_command(tmp_path):
    source = (PUBLISHED / "prodigy.py").read_text().replace('"prodigyopt>=1.1"',
                                                            '"prodigyopt>=99"')
    path = tmp_path / "prodigy_next.py"
    path.write_text(source)
    done = lsb("submit", str(path), "chain/depth-4-const", "--budget", "smoke",
               "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 2
    installed = metadata.version("prodigyopt")
    assert (f"requires 'prodigyopt>=99', but prodigyopt {installed} is installed. Install it: "
            "pip install 'prodigyopt>=99'") in done.stderr
    assert not (tmp_path / "r" / "runs").exists()
