"""The neural chain ``½ (y − w_L ⋯ w_1 x)²`` with ``x = y = 1`` (thesis §3.2, App. C.1.3).

The ``L`` scalar weights are one float64 tensor of shape ``(L,)`` and the loss is a
``torch.prod``, so a step costs microseconds. From ``w_i = w₀ < 1`` every gradient
entry is ``w₀^{L−1}(1 − w₀^L)``: exponentially small in depth, hence gradient descent's
exponentially long plateau (Prop. 3.2.4); the "const" start perturbs ``w₀ = 0.5`` by a
seeded 1 % (``CONST_JITTER``) so that no grid step lands exactly on the optimum, while
RMSprop's per-coordinate normalization escapes in a number of steps that barely
depends on depth (Fig. 21/22). float64 keeps those gradients (about 1e−19 at depth 64
from 0.5, far smaller from a uniform start) representable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from suites.api import Metric, Problem
from suites.common import BaseTask

#: The plateau is left when the loss falls below this (it starts near ½).
ESCAPE_LOSS = 1e-3
CONST_INIT = 0.5
#: The constant start is ``w_i = CONST_INIT·(1 + CONST_JITTER·ξ_i)``, ξ standard Gaussian
#: drawn from the run's seed: with every weight exactly 0.5 a grid step can land exactly
#: on the optimum (Lion: 0.5 + 5 × 0.1 = 1), and one lucky grid point would rank first.
#: A 1 % asymmetry keeps the plateau (every gradient entry is still ≈ 0.5^{L−1}).
CONST_JITTER = 0.01
UNIFORM_RADIUS = 0.2

METRIC = Metric(
    name="steps_to_escape", higher_is_better=False, target=ESCAPE_LOSS, unit="steps"
)


def chain_loss(w: torch.Tensor) -> torch.Tensor:
    """``½ (1 − ∏ w_i)²``: one data point with ``x = y = 1``."""
    return 0.5 * (1.0 - torch.prod(w)) ** 2


@dataclass(frozen=True)
class ChainTask(BaseTask):
    """Steps until the chain's loss falls below ``ESCAPE_LOSS``; ``inf`` if never."""

    depth: int = 16
    init: str = "const"

    def initial_weights(self, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        if self.init == "const":
            xi = torch.randn(self.depth, generator=gen, dtype=torch.float64)
            return CONST_INIT * (1 + CONST_JITTER * xi)
        u = torch.rand(self.depth, generator=gen, dtype=torch.float64)
        return (2 * u - 1) * UNIFORM_RADIUS

    def setup(self, seed: int, budget: str) -> Problem:
        w = self.initial_weights(seed).requires_grad_()
        escaped_at = [math.inf]

        def current_loss() -> float:
            with torch.no_grad():
                return float(chain_loss(w))

        def stop(loss_value: float, step: int) -> bool:
            # The runner calls this after update number ``step + 1``. The loss is taken
            # afresh at the current weights: the value the closure saw may belong to a
            # perturbed point (GRASP) or to the iterate before the update.
            if current_loss() < ESCAPE_LOSS:
                escaped_at[0] = step + 1
                return True
            return False

        def evaluate() -> dict[str, float]:
            return {"steps_to_escape": escaped_at[0], "loss": current_loss()}

        return Problem(
            param_groups=[{"params": [w], "param_names": ["w"]}],
            loss=lambda step: chain_loss(w),
            evaluate=evaluate,
            steps=self.budgets.steps(budget),
            stop=stop,
        )


def chain_description(depth: int, init: str) -> str:
    start = (
        f"every weight starts near {CONST_INIT}: {CONST_INIT}·(1 + {CONST_JITTER:g}ξ_i), "
        "ξ standard Gaussian (seeded), so no grid step lands exactly on the optimum"
        if init == "const"
        else f"weights start i.i.d. U[−{UNIFORM_RADIUS}, {UNIFORM_RADIUS}] (seeded)"
    )
    return (
        f"Neural chain of depth {depth}: minimize ½(1 − w_{depth}⋯w_1)² over {depth} scalar "
        f"weights, float64; {start}. Score: optimizer steps until the loss falls below "
        f"{ESCAPE_LOSS:g} (lower is better; a run that never gets there fails and ranks "
        "last). Thesis §3.2 (Prop. 3.2.4, Fig. 21/22) and App. C.1.3: the gradient is "
        "exponentially small in depth, so gradient descent's escape time grows "
        "exponentially with depth, while RMSprop/Adam's stays nearly flat — provided ε "
        "is far below the gradient, otherwise they behave like gradient descent."
    )
