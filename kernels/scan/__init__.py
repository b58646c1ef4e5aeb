"""Diagonal complex linear scan of the LRU: ``h_t = lam_t * h_{t-1} + b_t``.

Backends, all with the signature of :func:`diag_scan`:

- ``"sequential"``: a Python loop over T, differentiated by autograd; the oracle.
- ``"chunked"``: two-level chunked scan in PyTorch with a fused backward; the CPU
  default (see :mod:`bench.scan_compare` for the measurements behind that choice).
- ``"triton"``: Triton forward and backward kernels (one pass over the data); the CUDA
  default; complex64 state, 16-bit inputs and outputs read and written as they are.

Inputs may be complex (complex32/64/128) or real (real, imag) pairs
(:mod:`kernels.scan.dtypes`), and packed variable-length batches (``cu_seqlens``,
:mod:`kernels.scan.varlen`).
"""

from __future__ import annotations

import torch

from kernels.backend import SCAN
from kernels.backend import resolve_scan_backend as resolve_backend
from kernels.scan import dtypes
from kernels.scan.op import diag_scan_op
from kernels.scan.reference import sequential_scan
from kernels.scan.traffic import (
    FORWARD_BACKWARD_BYTES_PER_ELEMENT,
    FORWARD_BYTES_PER_ELEMENT,
    bytes_moved,
)
from kernels.scan.varlen import check_cu_seqlens, reset_form

__all__ = [
    "BACKENDS",
    "FORWARD_BACKWARD_BYTES_PER_ELEMENT",
    "FORWARD_BYTES_PER_ELEMENT",
    "bytes_moved",
    "diag_scan",
    "resolve_backend",
]

BACKENDS = SCAN.backends
ENV_VAR = SCAN.variable


def _describe(x) -> str:
    return f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else repr(x)


def _check_b(b) -> tuple[int, int, int]:
    complex_form = isinstance(b, torch.Tensor) and b.dim() == 3 and (
        b.dtype in dtypes.COMPLEX_DTYPES)
    pairs_form = isinstance(b, torch.Tensor) and b.dim() == 4 and b.shape[-1] == 2 and (
        b.dtype in dtypes.PAIR_DTYPES)
    if not (complex_form or pairs_form):
        raise ValueError(
            "b must be a complex32, complex64 or complex128 tensor of shape (B, T, N), or "
            "(real, imag) pairs of shape (B, T, N, 2) in bfloat16, float16 or float32, got "
            + _describe(b))
    B, T, N = dtypes.shape_of(b)
    if min(B, T, N) < 1:
        raise ValueError(f"b must have B, T, N >= 1, got shape {tuple(b.shape)}")
    return B, T, N


def _check(lam, b, h0, chunk, cu_seqlens, out_dtype) -> None:
    B, T, N = _check_b(b)
    want = dtypes.compute_dtype(b.dtype)
    named = [("lam", lam)] + ([("h0", h0)] if h0 is not None else [])
    for name, x in named:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
        if x.dtype != want:
            raise ValueError(f"{name} must be {want} for b of dtype {b.dtype}, got {x.dtype}")
        if x.device != b.device:
            raise ValueError(f"{name} must be on b's device {b.device}, got {x.device}")
    if tuple(lam.shape) not in ((N,), (B, T, N)):
        raise ValueError(
            f"lam must have shape (N,) = {(N,)} or (B, T, N) = {(B, T, N)}, "
            f"got {tuple(lam.shape)}"
        )
    n_states = B
    if cu_seqlens is not None:
        n_states = len(check_cu_seqlens(cu_seqlens, b)) - 1
    if h0 is not None and tuple(h0.shape) != (n_states, N):
        form = "(S, N), one per sequence of cu_seqlens," if cu_seqlens is not None else "(B, N)"
        raise ValueError(f"h0 must have shape {form} = {(n_states, N)}, "
                         f"got {tuple(h0.shape)}")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk must be a positive int or None, got {chunk!r}")
    if out_dtype is not None and out_dtype not in dtypes.SCAN_DTYPES:
        raise ValueError(f"out_dtype must be one of {dtypes.SCAN_DTYPES} or None, "
                         f"got {out_dtype!r}")


def _sequential(lam, b, h0, reverse, cu_seqlens):
    if cu_seqlens is None:
        return sequential_scan(lam, b, h0, reverse)
    bounds = cu_seqlens.tolist()
    pieces = []
    for s, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        if hi > lo:
            lam_s = lam if lam.dim() == 1 else lam[:, lo:hi]
            h0_s = h0[s:s + 1] if h0 is not None else None
            pieces.append(sequential_scan(lam_s, b[:, lo:hi], h0_s, reverse))
    return torch.cat(pieces, dim=1)


def diag_scan(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    backend: str = "auto",
    chunk: int | None = None,
    cu_seqlens: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Diagonal linear recurrence ``h_t = lam_t * h_{t-1} + b_t`` over t = 0 .. T-1.

    Args:
        lam: complex ``(N,)``, shared over batch and time, or ``(B, T, N)``.
        b: complex ``(B, T, N)`` (complex32, complex64, complex128), or ``(B, T, N, 2)``
            (real, imag) pairs in bfloat16, float16 or float32.
        h0: optional complex ``(B, N)``: the state before the first step (zeros if None).
            lam and h0 are complex64, or complex128 with a complex128 b: a mixed-precision
            model keeps them in fp32 while b is 16-bit.
        reverse: scan from t = T-1 down to 0: ``h_t = lam_t * h_{t+1} + b_t``.
        backend: ``"auto"``, ``"sequential"``, ``"chunked"`` or ``"triton"``.
        chunk: time-chunk length of the chunked and Triton backends (None: by size). For
            Triton a chunk of at least T is the single pass; a shorter one is rounded
            down to a power of two, at most 128 (one register tile per program).
        cu_seqlens: packed variable-length sequences, the flash-attention convention:
            b is ``(1, T, N)``, the int32/int64 ``cu_seqlens = [0, l_0, l_0 + l_1, ..., T]``,
            the state resets at every boundary and h0 is ``(S, N)``, one per sequence.
        out_dtype: how ``h`` is stored (a complex dtype, or a real one for pairs); default
            b's dtype. The state is carried in fp32 (fp64 across tiles) whatever the
            storage.

    Returns:
        ``h`` of b's shape (pairs for a real out_dtype), differentiable in lam, b and h0
        (first order: the fused backward passes are not themselves differentiable);
        the gradient of b has b's dtype.

    Example:
        >>> lam = torch.full((4,), 0.9 + 0.1j)
        >>> b = torch.randn(2, 100, 4, dtype=torch.complex64)
        >>> diag_scan(lam, b).shape
        torch.Size([2, 100, 4])
    """
    _check(lam, b, h0, chunk, cu_seqlens, out_dtype)
    out_dtype = out_dtype or b.dtype
    name = resolve_backend(backend, b.device)
    if name == "triton":
        if torch.complex128 in (b.dtype, out_dtype):
            raise ValueError(
                f"backend='triton' computes in complex64, got b of dtype {b.dtype} and "
                f"out_dtype {out_dtype}; use backend='chunked' or 'sequential' for complex128"
            )
        return diag_scan_op(lam, b, h0, cu_seqlens, bool(reverse), name, chunk or 0, out_dtype)
    if name == "sequential":
        h = _sequential(lam, dtypes.as_complex(b, lam.dtype), h0, bool(reverse), cu_seqlens)
        return dtypes.from_complex(h, out_dtype)
    if cu_seqlens is not None:  # the packed scan as a plain one with resets
        lam, b = reset_form(lam, dtypes.as_complex(b, lam.dtype), h0, cu_seqlens, bool(reverse))
        h0 = None
    return diag_scan_op(lam, b, h0, None, bool(reverse), name, chunk or 0, out_dtype)
