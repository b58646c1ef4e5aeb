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

``b`` and the output may be stored in any form of :mod:`kernels.scan.dtypes` (the
Triton backend reads and writes them as they are); ``cu_seqlens`` packs sequences
(:mod:`kernels.scan.varlen`, Triton backend; the chunked backend gets the packed scan
already rewritten as a plain one).
"""

from __future__ import annotations

import torch

from kernels.scan import dtypes
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


def _no_varlen(backend: str, cu_seqlens: torch.Tensor | None) -> None:
    if cu_seqlens is not None and backend != "triton":
        raise ValueError("lsb::diag_scan takes cu_seqlens on the triton backend only "
                         "(kernels.diag_scan rewrites packed scans for the others)")


@torch.library.custom_op("lsb::diag_scan", mutates_args=())
def diag_scan_op(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
    reverse: bool,
    backend: str,
    chunk: int,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """h_t = lam_t * h_{t-1} + b_t with a fused ``backend`` ("chunked" or "triton"),
    stored as ``out_dtype``; ``chunk`` is the time-chunk length, 0 for the backend's
    default."""
    _no_varlen(backend, cu_seqlens)
    if backend == "triton":
        return _forward_impl(backend)(lam, b, h0, reverse, chunk, out_dtype, cu_seqlens)
    h = _forward_impl(backend)(lam, dtypes.as_complex(b, lam.dtype), h0, reverse, chunk)
    return dtypes.from_complex(h, out_dtype)


@diag_scan_op.register_fake
def _(lam, b, h0, cu_seqlens, reverse, backend, chunk, out_dtype):
    return dtypes.empty_like_form(b, out_dtype)


@torch.library.custom_op("lsb::diag_scan_backward", mutates_args=())
def diag_scan_backward_op(
    lam: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    grad_h: torch.Tensor,
    cu_seqlens: torch.Tensor | None,
    reverse: bool,
    backend: str,
    chunk: int,
    b_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(grad_lam, grad_b, grad_h0)`` of the scan that produced ``h``; grad_b stored as
    ``b_dtype``. Without ``h0``, grad_h0 is an empty placeholder."""
    _no_varlen(backend, cu_seqlens)
    if backend == "triton":
        grad_lam, grad_b, grad_h0 = _backward_impl(backend)(
            lam, h, h0, grad_h, reverse, chunk, b_dtype, cu_seqlens)
    else:
        grad_lam, grad_b, grad_h0 = _backward_impl(backend)(
            lam, dtypes.as_complex(h, lam.dtype), h0, dtypes.as_complex(grad_h, lam.dtype),
            reverse, chunk)
        grad_b = dtypes.from_complex(grad_b, b_dtype)
    return grad_lam, grad_b, grad_h0 if h0 is not None else lam.new_empty(0)


@diag_scan_backward_op.register_fake
def _(lam, h, h0, grad_h, cu_seqlens, reverse, backend, chunk, b_dtype):
    grad_h0 = h0.new_empty(h0.shape) if h0 is not None else lam.new_empty(0)
    return lam.new_empty(lam.shape), dtypes.empty_like_form(h, b_dtype), grad_h0


def _setup_context(ctx, inputs, output):
    lam, b, h0, cu_seqlens, reverse, backend, chunk, _ = inputs
    ctx.save_for_backward(lam, output, h0, cu_seqlens)
    ctx.reverse, ctx.backend, ctx.chunk, ctx.b_dtype = reverse, backend, chunk, b.dtype


def _backward(ctx, grad_h):
    lam, h, h0, cu_seqlens = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
        grad_b = diag_scan_op(adjoint_lam(lam, ctx.reverse), grad_h, None, cu_seqlens,
                              not ctx.reverse, ctx.backend, ctx.chunk, ctx.b_dtype)
        grad_lam, grad_h0 = lam_and_h0_grads(lam, dtypes.as_complex(h, lam.dtype), h0,
                                             dtypes.as_complex(grad_b, lam.dtype), ctx.reverse,
                                             cu_seqlens)
    else:
        grad_lam, grad_b, grad_h0 = diag_scan_backward_op(
            lam, h, h0, grad_h, cu_seqlens, ctx.reverse, ctx.backend, ctx.chunk, ctx.b_dtype
        )
    return grad_lam, grad_b, grad_h0 if h0 is not None else None, None, None, None, None, None


diag_scan_op.register_autograd(_backward, setup_context=_setup_context)
