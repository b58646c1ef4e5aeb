"""The scan's storage forms of complex numbers, and conversions between them.

A tensor of the scan's inputs and outputs (``b``, ``h``, their gradients) is either

- **complex**: ``(B, T, N)`` of ``torch.complex32``, ``complex64`` or ``complex128``; or
- **pairs**: a real ``(B, T, N, 2)`` tensor of (real, imag) pairs in ``bfloat16``,
  ``float16`` or ``float32`` (the layout accelerated-scan uses for bf16).

A dtype names its form: a complex dtype the complex form, a real one pairs. ``lam`` and
``h0`` are always complex: complex64 (complex128 with a complex128 ``b``), so that a
mixed-precision model keeps its eigenvalues in fp32 while ``b`` and ``grad_h`` are 16-bit.
"""

from __future__ import annotations

import torch

COMPLEX_DTYPES = (torch.complex32, torch.complex64, torch.complex128)
PAIR_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
#: Every dtype ``b`` may have and ``out_dtype`` may name.
SCAN_DTYPES = COMPLEX_DTYPES + PAIR_DTYPES
_COMPONENT = {torch.complex32: torch.float16, torch.complex64: torch.float32,
              torch.complex128: torch.float64}


def is_pairs(dtype: torch.dtype) -> bool:
    return not dtype.is_complex


def component_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of one real or imaginary part."""
    return _COMPONENT.get(dtype, dtype)


def element_bytes(dtype: torch.dtype) -> int:
    """Bytes of one complex element stored in this form (complex64: 8, bf16 pairs: 4)."""
    return 2 * component_dtype(dtype).itemsize


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype the scan computes in and that ``lam`` and ``h0`` must have for a
    ``b`` of this dtype: complex128 for complex128, complex64 for everything else."""
    return torch.complex128 if dtype == torch.complex128 else torch.complex64


def as_complex(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` (either form) as a complex tensor of ``dtype``; differentiable."""
    if x.is_complex():
        return x.to(dtype)
    pairs = x.to(component_dtype(dtype))
    if pairs.stride(-1) != 1 or any(s % 2 for s in pairs.stride()[:-1]):
        pairs = pairs.contiguous()  # view_as_complex needs whole (real, imag) pairs
    return torch.view_as_complex(pairs)


def from_complex(h: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The complex ``h`` stored as ``dtype`` (a complex dtype, or real pairs); differentiable."""
    if dtype.is_complex:
        return h.to(dtype)
    return torch.view_as_real(h).to(dtype)


def shape_of(x: torch.Tensor) -> tuple[int, ...]:
    """``(B, T, N)``, of a ``(B, T, N)`` complex tensor or ``(B, T, N, 2)`` pairs."""
    return tuple(x.shape) if x.is_complex() else tuple(x.shape[:-1])


def empty_like_form(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor of ``x``'s complex shape stored as ``dtype``."""
    shape = shape_of(x) + (() if dtype.is_complex else (2,))
    return torch.empty(shape, dtype=dtype, device=x.device)
