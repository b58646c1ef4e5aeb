"""Optimizers that move along the gradient with one scalar step size (thesis §4.1–4.2).

The step size ``γ_k`` is computed from the loss ``f`` and the squared gradient norm
``‖g‖²`` over all parameters, then ``x ← x − γ_k g``:

- SPS_max (§4.1, Loizou et al., 2021): ``γ = min{f / (c ‖g‖²), γ_b}``;
- DecSPS (§4.2, Eq. DecSPS): ``γ_k = min{f / ‖g‖², c_{k−1} γ_{k−1}} / c_k`` with
  ``c_k = c₀ √(k+1)``, ``c_{−1} = c₀``, ``γ_{−1} = γ_b``;
- AdaGrad-Norm (§4.2.3, Ward et al., 2019): ``b² ← b² + ‖g‖²``, ``γ = η / b``.

The Polyak-type rules use the lower bound ``f* = ℓ* = 0`` (non-negative losses), so they
need the loss: ``step(closure)`` with a closure that returns it. Where ``‖g‖² = 0`` the
Polyak ratio is taken as ``+∞``; the step is then ``γ · 0 = 0`` whatever ``γ`` is.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer


class ScalarStep(Optimizer):
    """Shared step: evaluate, take ``‖g‖²``, ask ``_step_size`` per group, descend."""

    def _step_size(self, group: dict, loss: float, grad_sq: float) -> float:
        """The step size of ``group`` at this step (subclasses define the rule)."""
        raise NotImplementedError(f"{type(self).__name__} must define _step_size")

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None:
            raise ValueError(f"{type(self).__name__} needs step(closure) returning the loss")
        with torch.enable_grad():
            loss = closure()
        f = float(loss)
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        grad_sq = float(sum(g.double().pow(2).sum() for g in grads)) if grads else 0.0
        for group in self.param_groups:
            gamma = self._step_size(group, f, grad_sq)
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-gamma)
        return loss

    def _group_state(self, group: dict) -> dict:
        """State kept per parameter group, stored with the group's first parameter."""
        return self.state[group["params"][0]]


def _polyak_ratio(loss: float, grad_sq: float) -> float:
    """``(f − 0) / ‖g‖²``; the lower bound 0 on the loss must hold."""
    if loss < 0:
        raise ValueError(f"Polyak step sizes assume a non-negative loss, got {loss}")
    return loss / grad_sq if grad_sq > 0 else math.inf


class SPSMax(ScalarStep):
    """SPS_max: ``γ = min{f / (c ‖g‖²), γ_b}`` (thesis §4.1)."""

    def __init__(self, params, c: float = 0.5, gamma_b: float = 1.0):
        if c <= 0 or gamma_b <= 0:
            raise ValueError(f"c and gamma_b must be positive, got c={c}, gamma_b={gamma_b}")
        super().__init__(params, dict(c=c, gamma_b=gamma_b))

    def _step_size(self, group, loss, grad_sq):
        return min(_polyak_ratio(loss, grad_sq) / group["c"], group["gamma_b"])


class DecSPS(ScalarStep):
    """DecSPS: ``γ_k = min{f / ‖g‖², c_{k−1} γ_{k−1}} / c_k``, ``c_k = c₀ √(k+1)`` (§4.2)."""

    def __init__(self, params, c0: float = 1.0, gamma_b: float = 10.0):
        if c0 <= 0 or gamma_b <= 0:
            raise ValueError(f"c0 and gamma_b must be positive, got c0={c0}, gamma_b={gamma_b}")
        super().__init__(params, dict(c0=c0, gamma_b=gamma_b))

    def _step_size(self, group, loss, grad_sq):
        state = self._group_state(group)
        k = state.get("k", 0)
        # c_{k−1} γ_{k−1}, with c_{−1} γ_{−1} = c₀ γ_b before the first step.
        bound = state.get("c_gamma", group["c0"] * group["gamma_b"])
        c_k = group["c0"] * math.sqrt(k + 1)
        gamma = min(_polyak_ratio(loss, grad_sq), bound) / c_k
        state["k"] = k + 1
        state["c_gamma"] = c_k * gamma
        return gamma


class AdaGradNorm(ScalarStep):
    """AdaGrad-Norm: ``b² ← b² + ‖g‖²``, ``x ← x − (η / b) g`` (§4.2.3)."""

    def __init__(self, params, lr: float, b0: float = 0.1):
        if lr <= 0 or b0 <= 0:
            raise ValueError(f"lr and b0 must be positive, got lr={lr}, b0={b0}")
        super().__init__(params, dict(lr=lr, b0=b0))

    def _step_size(self, group, loss, grad_sq):
        state = self._group_state(group)
        state["b_sq"] = state.get("b_sq", group["b0"] ** 2) + grad_sq
        return group["lr"] / math.sqrt(state["b_sq"])
