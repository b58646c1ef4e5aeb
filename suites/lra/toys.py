"""The one-layer toys of thesis §5.4 ("Optimization of deep RNNs"), at small scale.

Two checks of the design choices of §5.3 without the deep architecture around them:

* :func:`learn_powers` (Fig. 48): learn one complex eigenvalue's powers with Adam, with λ
  in the real+imaginary form ``λ = a + ib`` or the exponential form
  ``λ = exp(−ν + iθ)``. The thesis's claim: as the target phase θ* approaches π/2,
  real+imaginary slows down (its landscape is not axis-aligned, which suits Adam's
  diagonal preconditioner badly) while the exponential form, whose phase is one
  parameter, does not.
* :func:`learn_convolution` (Fig. 47): learn the length-100 kernel
  ``h_k = 0.1 exp(−0.015 k) cos(0.04 k)²`` with a one-layer RNN, linear or tanh, with
  Adam; the thesis: the linear recurrence converges faster. Here, over a few hundred
  steps (the thesis does not give its step count), a tanh RNN and a dense Glorot linear
  RNN both stall near the same plateau, at 32 states and at the thesis's 100 (lr 1e-3,
  300 steps: MSE ~1e-2 tanh, ~2e-2 dense linear), so the thesis's dense-linear-vs-tanh
  margin is not reproduced; the LRU's linear recurrence with a ring init near the unit
  circle learns the kernel ~100× better than tanh (see the tests).

Both reuse the model: Λ's forms are :data:`suites.lra.model.PARAMETERIZATIONS` and the
RNNs come from :func:`suites.lra.model.recurrent_layer` (``DenseRNN`` or ``LRU``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from suites.lra.model import DENSE_RECURRENCES, PARAMETERIZATIONS, Recurrence, recurrent_layer


@dataclass(frozen=True)
class PowerFit:
    """Result of :func:`learn_powers`, one entry per problem of the batch."""

    steps_to_threshold: torch.Tensor  # int64; ``steps`` where the threshold was never met
    final_loss: torch.Tensor  # relative loss after the last step
    final_eigenvalue: torch.Tensor  # complex128


def learn_powers(
    parameterization: str,
    target: torch.Tensor,
    init: torch.Tensor,
    *,
    k: int = 100,
    loss: Literal["power", "powers"] = "powers",
    steps: int = 500,
    lr: float = 1e-2,
    threshold: float = 1e-3,
) -> PowerFit:
    """Fit λ to the powers of ``target`` (complex ``(n,)``) with Adam from ``init``.

    ``loss="power"`` is the loss written in §5.4, ``½ |λ^k − λ*^k|²``; ``"powers"`` sums
    it over ``j = 1..k`` (the impulse response ``λ^j`` of a one-state linear RNN). With
    the single power every phase ``θ* + 2πm/k`` is a global minimum, so a start a full
    turn away from θ* is never more than π/k from one of them and nothing has to "turn":
    on it the two forms fit in about the same number of steps whatever θ* is (measured
    at r* ∈ {0.9, 0.99, 0.999}). The sum of the powers keeps the one minimum λ = λ*,
    and there the thesis's effect appears (see the tests).

    ``n`` independent problems run as one vector: Adam is elementwise and the summed
    loss separates, so each entry follows exactly its own run. The relative loss (the
    loss over the target's, ``Σ_j |λ^j − λ*^j|² / Σ_j |λ*^j|²``) is compared with
    ``threshold`` before each step. float64 throughout.
    """
    form = PARAMETERIZATIONS[parameterization]
    init = init.to(torch.complex128)
    nu0, theta0 = -torch.log(init.abs()), torch.angle(init)
    p, q = (x.clone().requires_grad_() for x in form.from_polar(nu0, theta0))
    exponents = (
        torch.arange(1, k + 1, dtype=torch.float64)
        if loss == "powers"
        else torch.tensor([float(k)], dtype=torch.float64)
    )
    target = target.to(torch.complex128)
    wanted = target.unsqueeze(-1) ** exponents
    scale = wanted.abs().pow(2).sum(-1)
    optimizer = torch.optim.Adam([p, q], lr=lr)
    hit = torch.full(target.shape, steps, dtype=torch.int64)
    for step in range(steps):
        optimizer.zero_grad()
        error = (form.eigenvalues(p, q).unsqueeze(-1) ** exponents - wanted).abs().pow(2).sum(-1)
        newly = (error.detach() / scale < threshold) & (hit == steps)
        hit = torch.where(newly, step, hit)
        (0.5 * error.sum()).backward()
        optimizer.step()
    with torch.no_grad():
        lam = form.eigenvalues(p, q)
        final = (lam.unsqueeze(-1) ** exponents - wanted).abs().pow(2).sum(-1) / scale
    return PowerFit(hit, final, lam)


def turning_problems(
    r_star: float, theta_star: float, n: int, *, max_start_phase: float = 0.1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, inits) for "learning to turn" (Fig. 48's setting): the start has the
    right magnitude r* but phase ``U[0, max_start_phase]``, the target phase is θ*."""
    generator = torch.Generator().manual_seed(seed)
    start_phase = torch.rand(n, generator=generator, dtype=torch.float64) * max_start_phase
    radius = torch.full((n,), r_star, dtype=torch.float64)
    target = torch.polar(radius, torch.full((n,), theta_star, dtype=torch.float64))
    return target, torch.polar(radius, start_phase)


def convolution_kernel(length: int = 100) -> torch.Tensor:
    """Fig. 47's kernel ``h_k = 0.1 exp(−0.015 k) cos(0.04 k)²``, ``k = 0..length−1``
    (a bump near k = 70: a moderate-range dependency)."""
    k = torch.arange(length, dtype=torch.float32)
    return 0.1 * torch.exp(-0.015 * k) * torch.cos(0.04 * k) ** 2


def convolution_data(
    n: int = 32, length: int = 100, *, input_range: float = 4.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fig. 47's data: inputs ``u_k = sin(0.05 a k) cos(0.05 c k)²`` with
    ``a, c ~ U[0, input_range]`` (the thesis says only "a range"), outputs their causal
    convolution with :func:`convolution_kernel`. Shapes ``(n, length, 1)``."""
    generator = torch.Generator().manual_seed(seed)
    a, c = torch.rand(2, n, 1, generator=generator) * input_range
    k = torch.arange(length, dtype=torch.float32)
    u = torch.sin(0.05 * a * k) * torch.cos(0.05 * c * k) ** 2
    h = convolution_kernel(length)
    lag = k[:, None] - k[None, :]  # (output time, input time)
    toeplitz = torch.where(lag >= 0, h[lag.clamp_min(0).long()], torch.zeros(()))
    return u.unsqueeze(-1), (u @ toeplitz.T).unsqueeze(-1)


def learn_convolution(
    recurrence: Recurrence,
    u: torch.Tensor,
    y: torch.Tensor,
    *,
    d_state: int = 100,
    steps: int = 300,
    lr: float = 1e-2,
    seed: int = 0,
    **layer_options: Any,
) -> torch.Tensor:
    """Train one recurrent layer of the model (1 feature in and out, ``d_state`` states)
    on ``u → y`` with full-batch Adam; returns the mean squared error before each step,
    ``(steps,)``. A dense recurrence is the Glorot-initialized
    :class:`~suites.lra.model.DenseRNN` of Fig. 47; a diagonal one is an
    :class:`~suites.lra.model.LRU` with ``layer_options``."""
    torch.manual_seed(seed)
    if recurrence in DENSE_RECURRENCES:
        layer_options = {"ring_init": False, "gamma_norm": False, **layer_options}
    rnn = recurrent_layer(recurrence, 1, d_state, **layer_options)
    optimizer = torch.optim.Adam(rnn.parameters(), lr=lr)
    losses = torch.empty(steps)
    for step in range(steps):
        optimizer.zero_grad()
        loss = (rnn(u) - y).pow(2).mean()
        loss.backward()
        optimizer.step()
        losses[step] = loss.detach()
    return losses
