"""A wide two-layer linear network on sparse synthetic regression (thesis §6.4, Fig. 58–59).

``Φ = W₂ W₁ Xᵀ`` with ``W₁ ∈ R^{d₁×d₀}``, ``W₂ ∈ R^{d₂×d₁}``, square loss
``f = (1/2n) ‖Yᵀ − W₂W₁Xᵀ‖²_F``. Noise injection on the weights with scale σ minimizes,
in expectation and to leading order, the regularized loss of Eq. 172,

    f_σ^eff = f + (σ²/2n) [d₂ ‖W₁Xᵀ‖²_F + ‖W₂‖²_F ‖X‖²_F],

a nuclear-norm penalty on ``W₂W₁``. GRASP perturbs both layers at once, and the product
of the two noises adds a term of variance ``σ⁴ d₁ d₂ ‖X‖²_F`` (Eq. 175) that grows with
the width ``d₁``; L-GRASP perturbs one layer at a time and does not have it (Fig. 58).
The data: ``n = 40`` points ``x ~ N(0, I₁₀)`` and ``y = x₁ + x₂`` (a sparse planted
solution), drawn by the task's ``data_seed`` and the same for every run seed; the run
seed draws the initialization
``(W₁)_ij ~ N(0, 1/(d₁d₀))``, ``(W₂)_ij ~ N(0, 1/(d₂d₁))`` (§6.4.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from suites.api import Metric, Problem
from suites.common import BaseTask

#: The public tasks' data draw.
DATA_SEED = 0
METRIC = Metric(name="effective_loss", higher_is_better=False, unit="f_σ^eff",
                must_beat_initial=True)


@cache
def sparse_regression(n: int, d0: int, data_seed: int = DATA_SEED
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` of shape (n, d0) with i.i.d. standard Gaussian entries, ``Y = X₁ + X₂``."""
    gen = torch.Generator().manual_seed(data_seed)
    x = torch.randn(n, d0, generator=gen, dtype=torch.float64)
    return x, x[:, :2].sum(1, keepdim=True)


def effective_loss(w1, w2, x, y, sigma: float) -> torch.Tensor:
    """``f_σ^eff`` of Eq. 172 (``f`` itself at ``sigma = 0``)."""
    n, d2 = x.shape[0], w2.shape[0]
    hidden = w1 @ x.T
    fit = (y.T - w2 @ hidden).pow(2).sum() / (2 * n)
    penalty = d2 * hidden.pow(2).sum() + w2.pow(2).sum() * x.pow(2).sum()
    return fit + sigma**2 / (2 * n) * penalty


def effective_loss_minimum(x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    """``min f_σ^eff`` over both layers, in closed form for one output (``d₂ = 1``).

    For a product ``m = W₂W₁``, the cheapest factorization (AM–GM on the two penalties)
    costs ``2√(d₂‖X‖²_F)·‖Xmᵀ‖``, so the minimum is that of
    ``(1/2n)‖y − z‖² + λ‖z‖`` over ``z = Xmᵀ`` in the column space of ``X``, with
    ``λ = σ²‖X‖_F/n``: ``z`` shrinks ``y``'s projection ``p`` by ``nλ/‖p‖``. It holds at
    every width ``d₁ ≥ 1``, so it is the floor of all the width tasks alike.
    """
    n = x.shape[0]
    if y.shape[1] != 1:
        raise ValueError(f"closed form for one output only, y has {y.shape[1]} columns")
    projection = x @ torch.linalg.lstsq(x, y).solution
    residual = float((y - projection).pow(2).sum())
    radius = float(projection.norm())
    lam = sigma**2 * float(x.norm()) / n
    shrunk = max(0.0, radius - n * lam)
    return (residual + (radius - shrunk) ** 2) / (2 * n) + lam * shrunk


@dataclass(frozen=True)
class LinearNetTask(BaseTask):
    """``f_σ^eff`` (Eq. 172) at ``reference_sigma`` after the budget; lower is better."""

    n: int = 40
    d0: int = 10
    width: int = 300
    reference_sigma: float = 0.1
    data_seed: int = DATA_SEED

    def setup(self, seed: int, budget: str) -> Problem:
        x, y = sparse_regression(self.n, self.d0, self.data_seed)
        d2 = y.shape[1]
        gen = torch.Generator().manual_seed(seed)
        w1 = torch.randn(self.width, self.d0, generator=gen, dtype=torch.float64)
        w2 = torch.randn(d2, self.width, generator=gen, dtype=torch.float64)
        w1 = (w1 / (self.width * self.d0) ** 0.5).requires_grad_()
        w2 = (w2 / (d2 * self.width) ** 0.5).requires_grad_()

        @torch.no_grad()
        def evaluate() -> dict[str, float]:
            return {
                "effective_loss": float(effective_loss(w1, w2, x, y, self.reference_sigma)),
                "loss": float(effective_loss(w1, w2, x, y, 0.0)),
            }

        return Problem(
            param_groups=[{"params": [w1, w2], "param_names": ["w1", "w2"]}],
            loss=lambda step: effective_loss(w1, w2, x, y, 0.0),
            evaluate=evaluate,
            steps=self.budgets.steps(budget),
        )
