"""Diagonal complex linear scan of the LRU: ``h_t = lam_t * h_{t-1} + b_t``.

Backends, all with the signature of :func:`diag_scan`:

- ``"sequential"``: a Python loop over T, differentiated by autograd; the oracle.
- ``"chunked"``: two-level chunked scan in PyTorch with a fused backward; the CPU
  default (see :mod:`kernels.scan.compare` for the measurements behind that choice).
- ``"triton"``: Triton forward and backward kernels (one pass over the data); the CUDA
  default, complex64 only.
"""

from __future__ import annotations

import torch

from kernels.backend import SCAN
from kernels.backend import resolve_scan_backend as resolve_backend
from kernels.scan.op import diag_scan_op
from kernels.scan.reference import sequential_scan
from kernels.scan.traffic import (
    FORWARD_BACKWARD_BYTES_PER_ELEMENT,
    FORWARD_BYTES_PER_ELEMENT,
    bytes_moved,
)

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
_COMPLEX = (torch.complex64, torch.complex128)


def _check(lam: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, chunk: int | None):
    if not isinstance(b, torch.Tensor) or b.dim() != 3 or b.dtype not in _COMPLEX:
        raise ValueError(
            "b must be a complex64 or complex128 tensor of shape (B, T, N), got "
            + (f"{b.dtype} of shape {tuple(b.shape)}" if isinstance(b, torch.Tensor) else repr(b))
        )
    B, T, N = b.shape
    if min(B, T, N) < 1:
        raise ValueError(f"b must have B, T, N >= 1, got shape {tuple(b.shape)}")
    named = [("lam", lam)] + ([("h0", h0)] if h0 is not None else [])
    for name, x in named:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
        if x.dtype != b.dtype:
            raise ValueError(f"{name} must have b's dtype {b.dtype}, got {x.dtype}")
        if x.device != b.device:
            raise ValueError(f"{name} must be on b's device {b.device}, got {x.device}")
    if tuple(lam.shape) not in ((N,), (B, T, N)):
        raise ValueError(
            f"lam must have shape (N,) = {(N,)} or (B, T, N) = {(B, T, N)}, "
            f"got {tuple(lam.shape)}"
        )
    if h0 is not None and tuple(h0.shape) != (B, N):
        raise ValueError(f"h0 must have shape (B, N) = {(B, N)}, got {tuple(h0.shape)}")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk must be a positive int or None, got {chunk!r}")


def diag_scan(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    backend: str = "auto",
    chunk: int | None = None,
) -> torch.Tensor:
    """Diagonal linear recurrence ``h_t = lam_t * h_{t-1} + b_t`` over t = 0 .. T-1.

    Args:
        lam: complex ``(N,)``, shared over batch and time, or ``(B, T, N)``.
        b: complex ``(B, T, N)``.
        h0: optional complex ``(B, N)``: the state before the first step (zeros if None).
        reverse: scan from t = T-1 down to 0: ``h_t = lam_t * h_{t+1} + b_t``.
        backend: ``"auto"``, ``"sequential"``, ``"chunked"`` or ``"triton"``.
        chunk: time-chunk length of the chunked and Triton backends (None: by size). For
            Triton a chunk of at least T is the single pass; a shorter one is rounded
            down to a power of two, at most 128 (one register tile per program).

    Returns:
        ``h``, complex ``(B, T, N)`` with b's dtype, differentiable in lam, b and h0
        (first order: the fused backward passes are not themselves differentiable).

    Example:
        >>> lam = torch.full((4,), 0.9 + 0.1j)
        >>> b = torch.randn(2, 100, 4, dtype=torch.complex64)
        >>> diag_scan(lam, b).shape
        torch.Size([2, 100, 4])
    """
    _check(lam, b, h0, chunk)
    name = resolve_backend(backend, b.device)
    if name == "triton" and b.dtype != torch.complex64:
        raise ValueError(
            f"backend='triton' supports complex64 only, got b of dtype {b.dtype}; "
            "use backend='chunked' or 'sequential' for complex128"
        )
    if name == "sequential":
        return sequential_scan(lam, b, h0, bool(reverse))
    return diag_scan_op(lam, b, h0, bool(reverse), name, chunk or 0)
