"""Fake tasks and submission sources for the engine and CLI tests.

The tasks are tiny (a few dozen steps on a handful of parameters) so a whole sweep
takes well under a second, and they do not depend on the real suites. This is a module
of its own, not part of ``conftest.py``, so that tests and the pool's worker processes
import it under one unambiguous name.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from suites.api import Budget, Metric, Problem


@dataclass
class QuadraticTask:
    """``½ Σ c_i x_i²`` with curvatures in [1, 4]: gradient descent diverges for lr > 0.5."""

    name: str = "fake/quadratic"
    suite: str = "fake"
    description: str = "a quadratic bowl"
    budgets: Budget = Budget(smoke=3, quick=40, full=80)
    metric: Metric = Metric("final_loss", higher_is_better=False, target=1e-3)

    def setup(self, seed: int, budget: str) -> Problem:
        x = torch.nn.Parameter(torch.randn(8))
        bias = torch.nn.Parameter(torch.randn(2))
        curvature = torch.linspace(1.0, 4.0, 8)

        def loss(step: int) -> torch.Tensor:
            return 0.5 * (curvature * x**2).sum() + 0.5 * (bias**2).sum()

        return Problem(
            param_groups=[{"params": [x]}, {"params": [bias], "lr_scale": 0.5}],
            loss=loss,
            evaluate=lambda: {"final_loss": float(loss(0))},
            steps=self.budgets.steps(budget),
            eval_every=10,
        )

    def score(self, metrics, steps_run, status) -> float:
        return metrics.get("final_loss", math.inf) if status == "ok" else math.inf


@dataclass
class SlowTask(QuadraticTask):
    """Each step sleeps: any short time limit stops it."""

    name: str = "fake/slow"
    budgets: Budget = Budget(smoke=10_000, quick=10_000, full=10_000)

    def setup(self, seed: int, budget: str) -> Problem:
        problem = super().setup(seed, budget)
        quadratic = problem.loss

        def loss(step: int) -> torch.Tensor:
            time.sleep(0.02)
            return quadratic(step)

        problem.loss = loss
        return problem


@dataclass
class FailingTask(QuadraticTask):
    """Raises in the middle of training."""

    name: str = "fake/failing"

    def setup(self, seed: int, budget: str) -> Problem:
        problem = super().setup(seed, budget)
        quadratic = problem.loss

        def loss(step: int) -> torch.Tensor:
            if step == 3:
                raise RuntimeError("the data loader broke at step 3")
            return quadratic(step)

        problem.loss = loss
        return problem


GD_SOURCE = '''
"""Gradient descent."""
import torch

name = "gd"
search_space = {"lr": [0.01, 0.1, 0.3, 2.0]}
lr_key = "lr"


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr)
'''

LION_SOURCE = '''
"""Lion (Chen et al., 2023): a step along the sign of an interpolated momentum."""
import torch

name = "lion"
search_space = {"lr": {"min": 1e-3, "max": 1e-1, "scale": "log"}, "beta1": [0.9]}
max_configs = 4
lr_key = "lr"


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr, beta1=0.9, beta2=0.99):
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2))

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                momentum = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                direction = (group["beta1"] * momentum + (1 - group["beta1"]) * p.grad).sign()
                p.add_(direction, alpha=-group["lr"])
                momentum.mul_(group["beta2"]).add_(p.grad, alpha=1 - group["beta2"])
        return loss


def build(param_groups, lr, beta1):
    return Lion(param_groups, lr=lr, beta1=beta1)
'''
