"""Every optimizer is charged for what it uses: gradient evaluations (not steps), its own
step-size schedule left alone, several optimizers returned by ``build`` stepped and
counted as one, validation on the real tasks' parameter layouts, and a self-tuning track.

Fast tests run one run in this process (``suites.executors.execute``); the command-line
ones go through ``lsb`` as a user does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suites import registry
from suites.api import GRAPH_EVAL_COST
from suites.executors import execute
from suites.submission import load_submission

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = Path(__file__).resolve().parent / "published"
CHAIN = "chain/depth-4-const"

MANY_CLOSURES = '''
import torch

name = "many-closures"
search_space = {"lr": [0.1]}
lr_key = "lr"


class EveryStepTwoHundred(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure):
        for _ in range(200):  # 200 gradient evaluations in one step, then one SGD step
            with torch.enable_grad():
                loss = closure()
            super().step()
        return loss


def build(param_groups, lr):
    return EveryStepTwoHundred(param_groups, lr=lr)
'''

LBFGS = '''
import torch

name = "lbfgs"
search_space = {"lr": [1.0]}
lr_key = "lr"


def build(param_groups, lr):
    return torch.optim.LBFGS(param_groups, lr=lr, max_iter=20)
'''

OWN_SCHEDULE = '''
import torch

name = "own-schedule"
search_space = {"lr": [0.01]}
lr_key = "lr"
schedule = "own"


class Warmed(torch.optim.SGD):
    """Its own warm-up; it refuses a harness that writes its step size."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.given = [group["lr"] for group in self.param_groups]
        self.steps = 0

    def step(self, closure):
        if [group["lr"] for group in self.param_groups] != self.given:
            raise RuntimeError("the harness changed a group's lr after construction")
        self.steps += 1
        factor = min(1.0, self.steps / 5)
        for group, lr in zip(self.param_groups, self.given):
            group["lr"] = lr * factor
        loss = super().step(closure)
        for group, lr in zip(self.param_groups, self.given):
            group["lr"] = lr
        return loss


def build(param_groups, lr):
    return Warmed(param_groups, lr=lr)
'''

def readme_block(marker: str) -> str:
    """The Python block of the README between ``<!-- marker -->`` and ``<!-- /marker -->``."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return block.split("```python", 1)[1].rsplit("```", 1)[0]


#: The README's worked example: Muon and AdamW returned as a list.
MUON_ADAMW = readme_block("muon-example")


def write(tmp_path: Path, source: str, stem: str) -> Path:
    path = tmp_path / f"{stem}.py"
    path.write_text(source)
    return path


def lsb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "suites.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


# --------------------------------------------------------------------------- evaluations


def test_a_step_that_calls_the_closure_200_times_pays_for_every_call(tmp_path):
    task = registry.get_task(CHAIN)
    greedy = load_submission(write(tmp_path, MANY_CLOSURES, "many"))
    result = execute(task, greedy, {"lr": 0.1}, 0, "smoke")
    budget = task.budgets.steps("smoke")
    # The budget of evaluations ends the run inside its first step: never more gradients.
    assert result.grad_evals == budget and result.steps_run == 1
    assert result.curve["grad_evals"] == [budget]
    # Escaping, if it does, is counted in evaluations, not in its one step.
    assert result.score == pytest.approx(budget) or result.score == float("inf")
    sgd = execute(task, load_submission(registry.builtin_optimizer_paths()["sgd"]),
                  {"lr": 0.8}, 0, "smoke")
    assert sgd.grad_evals == sgd.steps_run and sgd.score < result.score


def test_lbfgs_pays_for_its_line_search_on_the_chain(tmp_path):
    task = registry.get_task(CHAIN)
    result = execute(task, load_submission(write(tmp_path, LBFGS, "lbfgs")), {"lr": 1.0}, 0,
                     "quick")
    assert result.status == "ok", result.error
    assert result.grad_evals > 5 * result.steps_run  # up to 20 per step
    assert result.score == result.metrics["evals_to_escape"] >= result.grad_evals - 25
    evals = result.curve["grad_evals"]
    assert evals == sorted(evals) and evals[-1] == result.grad_evals


def test_a_hessian_vector_closure_costs_two_evaluations_each():
    task = registry.get_task(CHAIN)
    adahessian = load_submission(PUBLISHED / "adahessian.py")
    result = execute(task, adahessian, {"lr": 0.1}, 0, "smoke")
    assert result.status == "ok", result.error
    assert result.grad_evals == GRAPH_EVAL_COST * result.steps_run
    assert result.steps_run <= task.budgets.steps("smoke") // GRAPH_EVAL_COST
    if result.metrics["evals_to_escape"] < float("inf"):  # escaped: at the evaluations spent
        assert result.metrics["evals_to_escape"] == result.grad_evals


# --------------------------------------------------------------------------- schedules


def test_an_optimizer_with_its_own_schedule_keeps_its_step_sizes(tmp_path):
    own = load_submission(write(tmp_path, OWN_SCHEDULE, "own"))
    assert own.schedule == "own"
    task = registry.get_task("lra/listops")  # warm-up and cosine, and a scaled group
    result = execute(task, own, {"lr": 0.01}, 0, "smoke")
    assert result.status == "ok", result.error
    assert result.spec.optimizer.schedule == "own"
    # The same file without the declaration gets the task's schedule, and refuses it.
    scheduled = load_submission(write(tmp_path, OWN_SCHEDULE.replace(
        'schedule = "own"\n', ""), "scheduled"))
    refused = execute(task, scheduled, {"lr": 0.01}, 0, "smoke")
    assert refused.status == "error" and "changed a group's lr" in refused.error


# --------------------------------------------------------------------------- several


def test_muon_and_adamw_returned_as_a_list_are_stepped_and_counted_as_one(tmp_path):
    muon = load_submission(write(tmp_path, MUON_ADAMW, "muon"))
    assert muon.defaults == {"lr": 0.02}
    task = registry.get_task("chain/deep-mlp")
    result = execute(task, muon, {"lr": 0.02}, 0, "smoke")
    assert result.status == "ok", result.error
    assert result.grad_evals == result.steps_run  # one gradient per step for both
    # Muon keeps a momentum buffer per matrix, AdamW two moments per vector: all counted.
    problem = task.setup(0, "smoke")
    params = problem.param_groups[0]["params"]
    matrices = sum(p.numel() * 4 for p in params if p.ndim == 2)
    vectors = sum(p.numel() * 4 for p in params if p.ndim != 2)
    assert result.state_bytes >= matrices + 2 * vectors
    assert result.metrics["train_loss"] < result.initial_metrics["train_loss"]


# --------------------------------------------------------------------------- validation


@pytest.mark.slow
def test_lbfgs_is_refused_on_a_suite_whose_tasks_have_several_groups(tmp_path):
    path = write(tmp_path, LBFGS, "lbfgs")
    done = lsb("submit", str(path), "lra/listops", "--budget", "smoke", "--results",
               str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 2
    assert "suite lra, the layout of lra/listops (2 groups:" in done.stderr
    assert "LBFGS doesn't support per-parameter options" in done.stderr
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.slow
def test_muon_alone_is_refused_on_a_suite_with_vector_parameters(tmp_path):
    path = write(tmp_path, MUON_ADAMW.replace(
        "    return [torch.optim.Muon(matrices, lr=lr),\n"
        "            torch.optim.AdamW(others, lr=lr / 10, weight_decay=0.0)]",
        "    return torch.optim.Muon(param_groups, lr=lr)"), "muon_alone")
    done = lsb("submit", str(path), "valley/widening", "--budget", "smoke", "--results",
               str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 2
    assert "suite valley, the layout of valley/widening" in done.stderr
    assert "Muon" in done.stderr and "2D" in done.stderr


@pytest.mark.slow
def test_the_validation_time_limit_is_an_option_and_its_error_names_it(tmp_path):
    slow = write(tmp_path, "import time\ntime.sleep(30)\n" + LBFGS, "slow")
    done = lsb("run", CHAIN, "--optimizer", str(slow), "--budget", "smoke",
               "--validation-timeout", "3", "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 2
    assert "within 3 s (--validation-timeout)" in done.stderr


# --------------------------------------------------------------------------- self-tuning


@pytest.mark.slow
def test_prodigy_runs_at_its_defaults_in_the_self_tuning_track(tmp_path):
    source = (PUBLISHED / "prodigy.py").read_text().replace(
        'lr_key = "lr"', 'lr_key = "lr"\ndefaults = {"lr": 1.0}')
    path = write(tmp_path, source, "prodigy")
    results = tmp_path / "r"
    done = lsb("run", CHAIN, "--optimizer", str(path), "--budget", "smoke", "--track",
               "self-tuning", "--results", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = [json.loads(p.read_text()) for p in (results / "runs").rglob("prodigy/*.json")]
    assert runs and {r["spec"]["track"] for r in runs} == {"self-tuning"}
    assert {r["spec"]["phase"] for r in runs} == {"eval"}  # no tuning, no sensitivity
    assert {json.dumps(r["spec"]["hparams"]) for r in runs} == {'{"lr": 1.0}'}
    assert all(r["spec"]["optimizer"]["packages"]["prodigyopt"] for r in runs)
    # A submission without defaults has nothing to run in that track, and says so.
    plain = lsb("run", CHAIN, "--optimizer", str(PUBLISHED / "lion.py"), "--budget", "smoke",
                "--track", "self-tuning", "--results", str(results), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "skipped lion on chain/depth-4-const: declares no defaults" in plain.stdout


def test_every_builtin_declares_defaults_of_its_search_space():
    from suites.submission import describe_submission

    for name, path in registry.builtin_optimizer_paths().items():
        described = describe_submission(path)
        assert described.defaults is not None, name
        assert set(described.defaults) == set(described.search_space), name


def test_several_optimizers_state_bytes_cover_each_of_them():
    from suites.training import OptimizerSet, optimizer_state_bytes

    weight = torch.nn.Parameter(torch.ones(3, 3))
    bias = torch.nn.Parameter(torch.ones(3))
    both = OptimizerSet([torch.optim.SGD([weight], lr=0.1, momentum=0.9),
                         torch.optim.Adam([bias], lr=0.1)])

    def closure():
        both.zero_grad()
        loss = (weight.sum() + bias.sum()) ** 2
        loss.backward()
        return loss

    both.step(closure)
    assert optimizer_state_bytes(both) == 9 * 4 + (3 * 4) * 2 + 4  # buffer; moments, step
    assert len(both.state_dict()) == 2 and len(both.param_groups) == 2
