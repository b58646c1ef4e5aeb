"""The optimizer steps as ``torch.library`` custom ops, for ``torch.compile``.

Eager steps call the prepared kernels of their step plan directly; a step being traced
by ``torch.compile`` cannot (the plan reads addresses and builds tables on the host), so
it calls these ops instead, which run a backend's step functions on their lists (a table
per call on the Triton backend). The fake kernels only describe the outputs, so a
compiled step traces with ``fullgraph=True``.

- ``lsb::adamw_step_``: one AdamW step; mutates params, moments and step counts.
- ``lsb::grad_sq_norms``: ``‖g‖²`` of consecutive runs of gradients (their lengths given).
- ``lsb::ngn_update_``: one NGN update of size ``gamma``; mutates params and buffers.

``backend`` is a resolved one, ``"torch"`` or ``"triton"``. Complex tensors are taken as
they are and updated as (real, imag) pairs inside the ops: a traced ``view_as_real``
view, which changes the dtype, cannot be mutated through a custom op.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kernels.optim.backend import CPU, step_kernels


def _kernels(backend: str, tensors: list[Tensor]):
    if backend == "torch" and tensors and tensors[0].device.type == "cpu":
        return CPU
    return step_kernels(backend)


def _real(tensors: list[Tensor]) -> list[Tensor]:
    return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]


@torch.library.custom_op(
    "lsb::adamw_step_", mutates_args=("params", "exp_avgs", "exp_avg_sqs", "steps")
)
def adamw_step_op(
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
    backend: str,
) -> None:
    """See :func:`kernels.optim.reference.adamw_step_ref`."""
    lists = map(_real, (params, grads, exp_avgs, exp_avg_sqs))
    _kernels(backend, params).adamw_step(*lists, steps, lr, beta1, beta2, eps, weight_decay)


@adamw_step_op.register_fake
def _(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay, backend):
    return None


def _runs(grads: list[Tensor], lengths: list[int]) -> list[list[Tensor]]:
    runs, begin = [], 0
    for length in lengths:
        runs.append(grads[begin : begin + length])
        begin += length
    return runs


def _norm_dtype(grads: list[Tensor]) -> torch.dtype:
    wide = (torch.float64, torch.complex128)
    return torch.float64 if any(g.dtype in wide for g in grads) else torch.float32


@torch.library.custom_op("lsb::grad_sq_norms", mutates_args=())
def grad_sq_norms_op(grads: list[Tensor], lengths: list[int], backend: str) -> list[Tensor]:
    """``‖g‖²`` of each run of ``lengths`` consecutive gradients (0-dim tensors; fp64
    for runs holding fp64 gradients)."""
    runs = _runs(grads, lengths)
    sums = _kernels(backend, grads).grad_sq_norms([_real(run) for run in runs])
    # The ops' outputs may not alias each other or the inputs: fresh tensors.
    return [s.to(_norm_dtype(run)).clone() for s, run in zip(sums, runs, strict=True)]


@grad_sq_norms_op.register_fake
def _(grads, lengths, backend):
    device = grads[0].device if grads else torch.device("cpu")
    return [torch.empty((), dtype=_norm_dtype(run), device=device) for run in _runs(grads, lengths)]


@torch.library.custom_op("lsb::ngn_update_", mutates_args=("params", "momentum_buffers"))
def ngn_update_op(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    gamma: Tensor,
    weight_decay: float,
    momentum: float,
    backend: str,
) -> None:
    """See :func:`kernels.optim.reference.ngn_update_ref` (no buffers: an empty list)."""
    buffers = _real(momentum_buffers) or None
    _kernels(backend, params).ngn_update(
        _real(params), _real(grads), buffers, gamma, weight_decay, momentum
    )


@ngn_update_op.register_fake
def _(params, grads, momentum_buffers, gamma, weight_decay, momentum, backend):
    return None
