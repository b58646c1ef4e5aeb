"""The widening valley ``f(u, v) = ½ v² ‖u‖²`` in the setting of Thm 6.3.2 (thesis §6.3.2).

``u ∈ R^d``, ``v ∈ R``; every ``(u, 0)`` is a global minimum, with Hessian trace
``Tr ∇²f = d v² + ‖u‖²``, so minima get flatter as ``‖u‖`` shrinks. Runs start at a
gradient-descent solution ``(u₀, 0)`` with ``‖u₀‖² = D`` (``u₀`` a seeded random
direction), where the gradient ``(v² u, ‖u‖² v)`` is exactly zero: gradient-based
optimizers stay at trace ``D``, and only noise moves the iterate. The theorem follows the
iterate until it leaves ``𝒟_α = {‖u‖² ∈ (αD, D/α)}``: with ``η = α/(2D)`` and ±σ noise,
PGD leaves through the sharp side ``‖u‖² ≥ D/α`` when ``d ≥ 2/α²``, Anti-PGD through the
flat side ``‖u‖² ≤ αD`` when ``σ² ≤ αD/(2d)``. The task stops a run at that exit, as the
theorem does: the side of exit is what the theorem predicts, and its analysis (the
stability of ``η = α/(2D)`` included) holds inside ``𝒟_α`` only.

``u`` and ``v`` are one float64 tensor ``x = (u, v)`` of shape ``(d + 1,)``, so a step
costs microseconds; an optimizer that treats parameter tensors separately (L-GRASP)
sees one tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from suites.api import Metric, Problem
from suites.common import BaseTask

METRIC = Metric(name="hessian_trace", higher_is_better=False, unit="Tr ∇²f")


def valley_loss(x: torch.Tensor) -> torch.Tensor:
    """``½ v² ‖u‖²`` with ``x = (u, v)``."""
    u, v = x[:-1], x[-1]
    return 0.5 * v * v * u.dot(u)


@dataclass(frozen=True)
class WideningValleyTask(BaseTask):
    """Hessian trace where the run leaves ``𝒟_α`` (or at the end of its budget).

    A run whose final loss is above ``loss_tolerance`` has not settled in the valley
    and fails, whatever its trace. The tolerance is the loss at the starting width with
    ``|v|`` at the theorem's largest Anti-PGD noise, ``½ σ² D`` with ``σ² = αD/(2d)``:
    noise of that size keeps the iterate off the floor by about that much.
    """

    dim: int = 100
    alpha: float = 0.25
    start_sq_norm: float = 100.0

    @property
    def loss_tolerance(self) -> float:
        return 0.5 * self.alpha * self.start_sq_norm**2 / (2 * self.dim)

    def setup(self, seed: int, budget: str) -> Problem:
        gen = torch.Generator().manual_seed(seed)
        u0 = torch.randn(self.dim, generator=gen, dtype=torch.float64)
        u0 *= math.sqrt(self.start_sq_norm) / u0.norm()
        x = torch.cat([u0, u0.new_zeros(1)]).requires_grad_()
        low, high = self.alpha * self.start_sq_norm, self.start_sq_norm / self.alpha

        def sq_norm_u() -> float:
            with torch.no_grad():
                return float(x[:-1].dot(x[:-1]))

        def stop(loss_value: float, step: int) -> bool:
            return not low < sq_norm_u() < high

        def evaluate() -> dict[str, float]:
            with torch.no_grad():
                u_sq, v_sq = sq_norm_u(), float(x[-1] ** 2)
                return {
                    "hessian_trace": self.dim * v_sq + u_sq,
                    "loss": 0.5 * v_sq * u_sq,
                    "u_sq_norm": u_sq,
                    "v_sq": v_sq,
                }

        return Problem(
            param_groups=[{"params": [x], "param_names": ["x"]}],
            loss=lambda step: valley_loss(x),
            evaluate=evaluate,
            steps=self.budgets.steps(budget),
            stop=stop,
        )

    def score(self, metrics, steps_run, status):
        if metrics.get("loss", math.inf) > self.loss_tolerance:
            return self.metric.failed_score
        return super().score(metrics, steps_run, status)
