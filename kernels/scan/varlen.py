"""Packed variable-length batches: ``cu_seqlens``, the flash-attention convention.

``S`` sequences are packed along time into one ``(1, T, N)`` tensor; ``cu_seqlens`` is
the int32 or int64 tensor ``[0, l_0, l_0 + l_1, ..., T]`` of their cumulative lengths
(flash-attention's and flash-linear-attention's argument of that name), so sequence
``s`` is ``b[:, cu[s]:cu[s+1]]``. The state resets at every boundary; ``h0`` is
``(S, N)``, one initial state per sequence; ``lam`` is ``(N,)`` or packed like ``b``.
Empty sequences are allowed (their ``h0`` gets a zero gradient).

Everything here is torch ops on the device (no host synchronisation) except
:func:`check_cu_seqlens`, which reads the ``S + 1`` offsets once to validate them.
"""

from __future__ import annotations

import torch

#: Bits of a row's tag (:func:`row_tags`): the row is the first / last one of its
#: sequence in the scan's order; the sequence index sits above them (``tag >> 2``).
FIRST, LAST = 2, 1


def check_cu_seqlens(cu_seqlens, b: torch.Tensor) -> list[int]:
    """Validates ``cu_seqlens`` for the packed ``b``; returns its values. Raises
    ``ValueError`` naming what is wrong."""
    if not isinstance(cu_seqlens, torch.Tensor) or cu_seqlens.dim() != 1 or (
            cu_seqlens.dtype not in (torch.int32, torch.int64)):
        got = (f"{cu_seqlens.dtype} of shape {tuple(cu_seqlens.shape)}"
               if isinstance(cu_seqlens, torch.Tensor) else type(cu_seqlens).__name__)
        raise ValueError(f"cu_seqlens must be a 1-D int32 or int64 tensor, got {got}")
    if cu_seqlens.device != b.device:
        raise ValueError(f"cu_seqlens must be on b's device {b.device}, got {cu_seqlens.device}")
    if b.shape[0] != 1:
        raise ValueError(f"with cu_seqlens, b must pack its sequences as (1, T, N), "
                         f"got batch size {b.shape[0]}")
    bounds = cu_seqlens.tolist()
    T = b.shape[1]
    if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != T or any(
            hi < lo for lo, hi in zip(bounds, bounds[1:], strict=False)):
        shown = bounds if len(bounds) <= 8 else bounds[:4] + ["..."] + bounds[-3:]
        raise ValueError(f"cu_seqlens must rise from 0 to T = {T} (cumulative sequence "
                         f"lengths, at least two entries), got {shown}")
    return bounds


def _rows(cu_seqlens: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, ...]:
    cu = cu_seqlens.to(torch.int64)
    starts, ends = cu[:-1], cu[1:]
    first, last = (ends - 1, starts) if reverse else (starts, ends - 1)
    return first, last, ends > starts


def first_rows(cu_seqlens: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, nonempty)``: each sequence's first row in the scan's order (0 for an empty
    sequence) and which sequences have any rows."""
    first, _, nonempty = _rows(cu_seqlens, reverse)
    return torch.where(nonempty, first, 0), nonempty


def row_tags(cu_seqlens: torch.Tensor, T: int, reverse: bool) -> torch.Tensor:
    """int32 ``(T,)``: -1 inside a sequence; at a sequence's first and last rows (in the
    scan's order) ``s << 2 | FIRST | LAST`` with the bits that apply. The kernels reset
    the state at FIRST rows (at LAST rows in the backward scan, which runs the other way)."""
    first, last, nonempty = _rows(cu_seqlens, reverse)
    code = torch.arange(first.numel(), device=first.device, dtype=torch.int64) << 2
    tags = torch.full((T + 1,), -1, dtype=torch.int64, device=first.device)
    spare = torch.full_like(first, T)  # empty sequences write into a row that is cut off
    tags[torch.where(nonempty, first, spare)] = code | FIRST
    tags[torch.where(nonempty, last, spare)] = code | LAST | torch.where(first == last, FIRST, 0)
    return tags[:T].to(torch.int32)


def reset_form(lam: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None,
               cu_seqlens: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam', b')`` with ``lam'`` of shape ``(1, T, N)`` such that the plain scan of
    ``(lam', b')`` is the packed scan: ``lam' = 0`` at each sequence's first row (no state
    crosses a boundary) and ``b' = b + lam h0_s`` there. Differentiable torch ops, so the
    gradients of lam, b and h0 follow from the plain scan's."""
    T, N = b.shape[1], b.shape[2]
    first, nonempty = first_rows(cu_seqlens, reverse)
    first = first[nonempty]  # boolean indexing: the PyTorch backends may synchronise
    keep = torch.ones(T, dtype=b.real.dtype, device=b.device)
    keep[first] = 0
    lam_t = lam.expand(1, T, N) if lam.dim() == 1 else lam
    lam_eff = lam_t * keep[None, :, None]
    if h0 is None:
        return lam_eff, b
    return lam_eff, b.index_add(1, first, (lam_t[0, first] * h0[nonempty])[None])
