"""CPU steps on PyTorch's own fused CPU kernels; same signatures as ``kernels.optim.reference``.

On the CPU the reference's ``torch._foreach_*`` passes each read and write whole
tensors (AdamW makes about ten passes), while ``torch._fused_adamw_`` reads p, g, m, v
once and writes p, m, v once. NGN's update is one ``torch._foreach_add_`` with γ as a
Python number: reading a CPU tensor waits for nothing.

The fused CPU kernels walk each tensor's memory as one flat range, so they are used
only for dense float32/float64 tensors whose gradient and state share the
parameter's strides (``torch.optim.AdamW(fused=True)`` on the CPU does not check
this and mixes elements up when the gradient's strides differ, torch 2.13); every
other tensor takes the reference.
"""

import torch
from torch import Tensor

from kernels.optim.layout import is_dense
from kernels.optim.reference import adamw_step_ref, ngn_update_ref


def _fusable(p: Tensor, *others: Tensor) -> bool:
    dtype = p.dtype
    if not p.is_cpu or (dtype != torch.float32 and dtype != torch.float64):
        return False
    if p.is_contiguous():  # the common, quick case
        return all(t.dtype == dtype and t.is_contiguous() for t in others)
    return is_dense(p) and all(t.dtype == dtype and t.stride() == p.stride() for t in others)


def _split(fusable: list[bool], *columns: list) -> tuple[list[list], list[list]]:
    """Each column cut into its fusable and its other entries."""
    fused = [[x for x, ok in zip(col, fusable, strict=True) if ok] for col in columns]
    rest = [[x for x, ok in zip(col, fusable, strict=True) if not ok] for col in columns]
    return fused, rest


def adamw_step_cpu(
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
    """One AdamW step; see :func:`kernels.optim.reference.adamw_step_ref`."""
    ok = [_fusable(*ts) for ts in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)]
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
    (fp, fg, fm, fv, fs), rest = _split(ok, params, grads, exp_avgs, exp_avg_sqs, steps)
    if fp:
        torch._foreach_add_(fs, 1)
        torch._fused_adamw_(
            fp, fg, fm, fv, [], fs, **hp, amsgrad=False, maximize=False
        )  # fmt: skip
    adamw_step_ref(*rest, **hp)


def ngn_update_cpu(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor] | None,
    gamma: Tensor,
    weight_decay: float,
    momentum: float,
) -> None:
    """Apply an NGN step; see :func:`kernels.optim.reference.ngn_update_ref`. Without
    momentum, one pass over the fusable tensors."""
    ok = [momentum == 0 and _fusable(p, g) for p, g in zip(params, grads, strict=True)]
    (fp, fg), (rp, rg) = _split(ok, params, grads)
    if fp:
        step = float(gamma)
        if weight_decay != 0:
            torch._foreach_mul_(fp, 1 - step * weight_decay)
        torch._foreach_add_(fp, fg, alpha=-step)
    if rp:
        ngn_update_ref(rp, rg, momentum_buffers, gamma, weight_decay, momentum)
