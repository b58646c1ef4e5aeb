"""The scan as torch.library custom ops: ``lsb::diag_scan`` and its backward.

Registering the fused backends as opaque ops gives them one autograd formula (the
backward is itself a scan, so no graph of T steps is recorded) and lets
``torch.compile(fullgraph=True)`` trace models that call them, using the fake kernels
for shapes.

The fused backward op is not differentiable. When a graph of the backward is asked for
(``create_graph=True``, as Hessian-vector products do), the backward is instead composed
of differentiable pieces: the adjoint scan is ``lsb::diag_scan`` itself, and the
gradients of lam and h0 are torch ops on its result. So the scan is differentiable any
number of times, each time at the cost of one more scan.
"""

from __future__ import annotations

import torch

from kernels.scan.reference import (
    adjoint_lam,
    chunked_scan_backward,
    chunked_scan_forward,
    lam_and_h0_grads,
)


def _forward_impl(backend: str):
    if backend == "triton":
        from kernels.scan.triton_scan import triton_scan_forward

        return triton_scan_forward
    return chunked_scan_forward


def _backward_impl(backend: str):
    if backend == "triton":
        from kernels.scan.triton_scan import triton_scan_backward

        return triton_scan_backward
    return chunked_scan_backward


@torch.library.custom_op("lsb::diag_scan", mutates_args=())
def diag_scan_op(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool,
    backend: str,
    chunk: int,
) -> torch.Tensor:
    """h_t = lam_t * h_{t-1} + b_t with a fused ``backend`` ("chunked" or "triton");
    ``chunk`` is the time-chunk length, 0 for the backend's default."""
    return _forward_impl(backend)(lam, b, h0, reverse, chunk)


@diag_scan_op.register_fake
def _(lam, b, h0, reverse, backend, chunk):
    return b.new_empty(b.shape)


@torch.library.custom_op("lsb::diag_scan_backward", mutates_args=())
def diag_scan_backward_op(
    lam: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    grad_h: torch.Tensor,
    reverse: bool,
    backend: str,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(grad_lam, grad_b, grad_h0)`` of the scan that produced ``h``."""
    return _backward_impl(backend)(lam, h, h0, grad_h, reverse, chunk)


@diag_scan_backward_op.register_fake
def _(lam, h, h0, grad_h, reverse, backend, chunk):
    B, _, N = h.shape
    return lam.new_empty(lam.shape), h.new_empty(h.shape), h.new_empty((B, N))


def _setup_context(ctx, inputs, output):
    lam, _, h0, reverse, backend, chunk = inputs
    ctx.save_for_backward(lam, output, h0)
    ctx.reverse, ctx.backend, ctx.chunk = reverse, backend, chunk


def _backward(ctx, grad_h):
    lam, h, h0 = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
        grad_b = diag_scan_op(
            adjoint_lam(lam, ctx.reverse), grad_h, None, not ctx.reverse, ctx.backend, ctx.chunk
        )
        grad_lam, grad_h0 = lam_and_h0_grads(lam, h, h0, grad_b, ctx.reverse)
    else:
        grad_lam, grad_b, grad_h0 = diag_scan_backward_op(
            lam, h, h0, grad_h, ctx.reverse, ctx.backend, ctx.chunk
        )
    return grad_lam, grad_b, grad_h0 if h0 is not None else None, None, None, None


diag_scan_op.register_autograd(_backward, setup_context=_setup_context)
