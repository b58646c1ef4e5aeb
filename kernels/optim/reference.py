"""Reference optimizer steps in plain PyTorch (``torch._foreach_*``), no host syncs.

These are the oracles for the Triton kernels in ``kernels.optim.triton_optim``, which
have the same signatures. Every function takes lists of real tensors (complex
parameters are passed as ``torch.view_as_real`` views) and updates them in place.
Step counts, bias corrections, losses and NGN step sizes stay device tensors, so a
step never waits for the device.

Parameters in a lower precision than their optimizer state (bf16/fp16 parameters
with fp32 moments) are updated in fp32 and rounded once when written back.
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor


def log_beta(beta: float) -> float:
    """``log(beta)`` for the bias correction ``1 - beta**t = -expm1(t log beta)``."""
    return math.log(beta) if beta > 0 else -math.inf


def _upcast(tensors: list[Tensor]) -> list[Tensor]:
    """fp32 working copies of bf16/fp16 tensors (the others as they are)."""
    return [t.float() if t.dtype in (torch.bfloat16, torch.float16) else t for t in tensors]


def _write_back(params: list[Tensor], work: list[Tensor]) -> None:
    for p, w in zip(params, work, strict=True):
        if w is not p:
            p.copy_(w)


def adamw_step_ref(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamW step, as ``torch.optim.AdamW`` (decoupled decay ``p <- p(1 - lr wd)``).

    ``steps`` holds one 0-dim float32 tensor per parameter on its device; each is
    incremented before use, so the bias corrections ``1 - beta**t`` use the new count.
    They are computed as ``-expm1(t log beta)`` to keep full fp32 accuracy while
    ``beta**t`` is close to 1.
    """
    if not params:
        return
    work, grads = _upcast(params), _upcast(grads)
    torch._foreach_add_(steps, 1)
    if weight_decay != 0:
        torch._foreach_mul_(work, 1 - lr * weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)

    if lr == 0:  # only the moments move (and the scales below would divide by zero)
        return
    # p -= lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps) as p += m / (√v·scale + shift), with
    # scale = -(1-β1^t) / (lr √(1-β2^t)) and shift = -eps (1-β1^t) / lr: per-tensor
    # device scalars folded into the denominator, so no pass is spent applying them.
    neg_bias_correction1 = torch._foreach_mul(steps, log_beta(beta1))
    torch._foreach_expm1_(neg_bias_correction1)
    bias_correction2_sqrt = torch._foreach_mul(steps, log_beta(beta2))
    torch._foreach_expm1_(bias_correction2_sqrt)
    torch._foreach_neg_(bias_correction2_sqrt)
    torch._foreach_sqrt_(bias_correction2_sqrt)
    scale = torch._foreach_div(neg_bias_correction1, bias_correction2_sqrt)
    torch._foreach_div_(scale, lr)
    shift = torch._foreach_mul(neg_bias_correction1, eps / lr)

    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_mul_(denom, scale)
    torch._foreach_add_(denom, shift)
    torch._foreach_addcdiv_(work, exp_avgs, denom)
    _write_back(params, work)


def _sq_norm_dtype(grads: list[Tensor]) -> torch.dtype:
    return torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32


class SqNormsStep:
    """:func:`grad_sq_norms_ref` prepared for lists like these (their dtypes looked at
    once; ``set_grads`` for new gradient tensors); calling it with the lists returns the
    norms."""

    def __init__(self, grad_lists: list[list[Tensor]]):
        self.set_grads(grad_lists)

    def set_grads(self, grad_lists: list[list[Tensor]]) -> None:
        self._dtypes = [_sq_norm_dtype(grads) for grads in grad_lists]

    def __call__(self, grad_lists: list[list[Tensor]]) -> list[Tensor]:
        norms = []
        for grads, dtype in zip(grad_lists, self._dtypes, strict=True):
            if not grads:
                norms.append(torch.zeros((), dtype=dtype))
                continue
            norms.append(torch.stack(torch._foreach_norm(grads, 2, dtype=dtype)).square().sum())
        return norms


def grad_sq_norms_ref(grad_lists: list[list[Tensor]]) -> list[Tensor]:
    """``‖g‖²`` of each list of gradients (all on one device), as 0-dim tensors: fp32,
    or fp64 when a list holds fp64 gradients."""
    return SqNormsStep(grad_lists)(grad_lists)


def ngn_scale(loss: Tensor, weighted_sq_norm: Tensor) -> Tensor:
    """``c = 2f / (2f + Σ_j σ_j ‖g_j‖²)`` in ``[0, 1]``; each group steps ``γ_j = σ_j c``.

    With one group this is NGN's ``γ = σ / (1 + σ‖g‖²/(2f))`` divided by σ. A zero
    loss gives ``c = 0`` (no step), also when the gradient is zero too.
    """
    two_f = 2 * loss.to(weighted_sq_norm.dtype)
    denom = two_f + weighted_sq_norm
    safe = torch.where(denom > 0, denom, torch.ones_like(denom))
    return torch.where(denom > 0, two_f / safe, torch.zeros_like(denom))


def ngn_update_ref(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor] | None,
    gamma: Tensor,
    weight_decay: float,
    momentum: float,
) -> None:
    """Apply an NGN step of size ``gamma`` (a 0-dim device tensor).

    ``p <- p(1 - γ wd) - γ g``; with momentum β the step goes through a heavy-ball
    buffer, ``m <- β m + (1 - β) γ g``, ``p <- p(1 - γ wd) - m``.
    """
    if not params:
        return
    gamma = gamma.to(params[0].device)
    work, grads = _upcast(params), _upcast(grads)
    if weight_decay != 0:
        torch._foreach_mul_(work, 1 - gamma * weight_decay)
    if momentum != 0:
        torch._foreach_mul_(momentum_buffers, momentum)
        torch._foreach_addcmul_(momentum_buffers, grads, [(1 - momentum) * gamma] * len(grads))
        torch._foreach_sub_(work, momentum_buffers)
    else:
        # A 0-dim tensor factor keeps gamma on the device: one pass, p += g * (-γ).
        torch._foreach_addcmul_(work, grads, [-gamma] * len(grads))
    _write_back(params, work)


def ngn_step_ref(
    params: list[Tensor],
    grads: list[Tensor],
    loss: Tensor,
    sigma: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffers: list[Tensor] | None = None,
) -> Tensor:
    """One NGN step on one group: ``γ = σ / (1 + σ‖g‖²/(2f))``, ``x <- x - γ g``.

    ``loss`` is the (non-negative, finite) loss ``f`` as a 0-dim tensor; ``‖g‖²`` is
    over all of ``grads``. Returns ``γ`` as a 0-dim device tensor.
    """
    (sq_norm,) = grad_sq_norms_ref([grads])
    gamma = sigma * ngn_scale(loss.to(sq_norm.device), sigma * sq_norm)
    ngn_update_ref(params, grads, momentum_buffers, gamma, weight_decay, momentum)
    return gamma


class BoundStep:
    """One of this module's step functions bound to its tensor lists but the gradients,
    as the optimizers keep them from step to step: calling it with the gradients passes
    the parameters, the gradients, the other lists, then the arguments."""

    def __init__(self, fn: Callable, params: list, grads: list, *lists: list | None):
        self._fn, self._params, self._lists = fn, params, lists

    def set_grads(self, grads: list) -> None:
        """Nothing to do: the gradients come with every call."""

    def __call__(self, grads: list, *args, **kwargs):
        return self._fn(self._params, grads, *self._lists, *args, **kwargs)
