"""Noise-injection optimizers of thesis §6.3–6.4 (Table 6): PGD, Anti-PGD, GRASP, L-GRASP.

All four take a plain gradient step with step size ``lr`` and differ only in where the
noise of scale ``sigma`` enters:

- PGD (Eq. 146): ``x ← x − η ∇f(x) + ξ_{k+1}``;
- Anti-PGD (Eq. 147): ``x ← x − η ∇f(x) + (ξ_{k+1} − ξ_k)``;
- GRASP (§6.4.1): ``x ← x − η ∇f(x + σ ζ_k)``;
- L-GRASP (§6.4.4): as GRASP, but only one parameter tensor ``p_k``, drawn uniformly at
  random each step, is perturbed, with ``σ √P`` for ``P`` tensors so that the expected
  regularization matches GRASP's (Eq. 178) without its ``σ⁴ d₁`` variance term.

``ξ`` has i.i.d. coordinates of variance σ²: Gaussian, or ``±σ`` with probability ½ each
(the Bernoulli noise of Thm 6.3.2). ``ζ`` is standard Gaussian. The noise comes from a
private ``torch.Generator`` seeded from the global torch generator at construction, so
a run is reproducible from ``torch.manual_seed`` and the noise does not shift the random
stream that the task draws its minibatches from.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import Optimizer

NOISES = ("gaussian", "bernoulli")


class NoiseInjection(Optimizer):
    """Gradient descent with injected noise; subclasses define ``step``."""

    def __init__(self, params, lr: float, sigma: float, noise: str = "gaussian"):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if sigma < 0:
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        super().__init__(params, dict(lr=lr, sigma=sigma))
        self.noise = noise
        first = self.param_groups[0]["params"][0]
        self.generator = torch.Generator(device=first.device)
        self.generator.manual_seed(int(torch.randint(2**62, ()).item()))

    def _sample(self, p: torch.Tensor, sigma: float) -> torch.Tensor:
        """Noise shaped like ``p`` with i.i.d. coordinates of standard deviation ``sigma``."""
        gen = self.generator
        if self.noise == "gaussian":
            z = torch.randn(p.shape, generator=gen, device=gen.device, dtype=p.dtype)
        else:
            z = torch.randint(0, 2, p.shape, generator=gen, device=gen.device).to(p.dtype)
            z.mul_(2).sub_(1)
        return z.mul_(sigma).to(p.device)

    def _params(self):
        for group in self.param_groups:
            for p in group["params"]:
                yield group, p

    def _descend(self) -> None:
        """``x ← x − η ∇f`` with the gradients the closure left in ``.grad``."""
        for group, p in self._params():
            if p.grad is not None:
                p.add_(p.grad, alpha=-group["lr"])

    @staticmethod
    def _evaluate(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor:
        if closure is None:
            raise ValueError(
                "this optimizer needs step(closure): the closure zeroes the gradients, "
                "computes the loss, backpropagates and returns the loss"
            )
        with torch.enable_grad():
            return closure()


class PGD(NoiseInjection):
    """Perturbed gradient descent, ``x ← x − η ∇f(x) + ξ_{k+1}`` (Eq. 146)."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._evaluate(closure)
        self._descend()
        for group, p in self._params():
            p.add_(self._sample(p, group["sigma"]))
        return loss


class AntiPGD(NoiseInjection):
    """Anti-correlated PGD in the x form of Eq. 147: ``x ← x − η ∇f(x) + (ξ_{k+1} − ξ_k)``.

    The parameters hold ``x_k``; ``ξ_0`` is drawn at the first step like every later
    ``ξ_k``. With ``w_k = x_k − ξ_k`` this is ``w ← w − η ∇f(w + ξ_k)`` (Eq. 149), which
    in expectation descends ``f + (σ²/2) Tr ∇²f`` (Eq. 151).
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._evaluate(closure)
        self._descend()
        for group, p in self._params():
            state = self.state[p]
            if "xi" not in state:
                state["xi"] = self._sample(p, group["sigma"])
            xi_next = self._sample(p, group["sigma"])
            p.add_(xi_next).sub_(state["xi"])
            state["xi"] = xi_next
        return loss


class GRASP(NoiseInjection):
    """Gradient argument stochastic perturbation, ``x ← x − η ∇f(x + σ ζ_k)`` (§6.4.1).

    ``step`` returns the loss at the perturbed point, where the gradient was taken.
    """

    def _targets(self) -> list[tuple[torch.Tensor, float]]:
        """The parameters to perturb this step, each with its noise scale."""
        return [(p, group["sigma"]) for group, p in self._params()]

    @torch.no_grad()
    def step(self, closure=None):
        targets = self._targets()
        saved = [p.clone() for p, _ in targets]
        for p, sigma in targets:
            p.add_(self._sample(p, sigma))
        loss = self._evaluate(closure)
        for (p, _), x in zip(targets, saved, strict=True):
            p.copy_(x)
        self._descend()
        return loss


class LGRASP(GRASP):
    """Layer-wise GRASP (§6.4.4): perturb one random parameter tensor by ``σ √P ζ``."""

    def _targets(self) -> list[tuple[torch.Tensor, float]]:
        pairs = list(self._params())
        gen = self.generator
        pick = int(torch.randint(len(pairs), (), generator=gen, device=gen.device).item())
        group, p = pairs[pick]
        return [(p, group["sigma"] * len(pairs) ** 0.5)]
