"""Pure-PyTorch scans: the sequential oracle and the two-level chunked scan (CPU default).

Both compute ``h_t = lam_t * h_{t-1} + b_t`` (or, with ``reverse=True``,
``h_t = lam_t * h_{t+1} + b_t``) for complex ``b`` of shape ``(B, T, N)`` and ``lam`` of
shape ``(N,)`` (shared over batch and time) or ``(B, T, N)`` (time-varying). Inputs are
validated by :func:`kernels.scan.diag_scan`; these functions assume well-formed
arguments.
"""

from __future__ import annotations

import math

import torch

from kernels.scan.varlen import first_rows

# Longest time chunk of the chunked scan. Chunks of about sqrt(T) balance the two Python
# loops (one over the steps of a chunk, one over the chunks); the cap keeps the powers
# lam^l of the carry fix-up bounded when |lam| is slightly above 1.
MAX_CHUNK = 128


def sequential_scan(
    lam: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, reverse: bool = False
) -> torch.Tensor:
    """The oracle: one step per time index; differentiable through autograd."""
    B, T, N = b.shape
    # unbind, not b[:, t]: indexing's backward would materialize a zero (B, T, N)
    # gradient per step, O(T^2) traffic.
    b_steps = b.unbind(1)
    lam_steps = lam.unbind(1) if lam.dim() == 3 else [lam] * T
    h = h0 if h0 is not None else b.new_zeros(B, N)
    out: list[torch.Tensor] = [h] * T
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h = lam_steps[t] * h + b_steps[t]
        out[t] = h
    return torch.stack(out, dim=1)


def flush_subnormals_(x: torch.Tensor) -> torch.Tensor:
    """Sets the real and imaginary parts of ``x`` below the smallest normal float to zero,
    in place.

    The powers lam^l of small eigenvalues underflow into subnormals (|lam| = 0.01 does
    within 20 steps in float32), and CPUs multiply by subnormals up to 100x slower: the
    fix-up over every element would crawl (an LRU with lam on the whole unit disk trained
    14x slower). A power below 1e-38 (float32) or 1e-308 (float64) contributes nothing
    representable next to the states it is added to.
    """
    parts = torch.view_as_real(x) if x.is_complex() else x
    parts.masked_fill_(parts.abs() < torch.finfo(parts.dtype).tiny, 0.0)
    return x


def default_chunk(T: int) -> int:
    return max(1, min(MAX_CHUNK, math.isqrt(T)))


def chunked_scan_forward(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool,
    chunk: int = 0,
) -> torch.Tensor:
    """Two-level scan: every chunk scans its own steps from a zero state (all chunks at
    once, one vector op per step), a short loop carries the chunk end states across
    chunks, and one fused pass adds ``carry * (product of lam since the chunk start)``.

    Nothing is divided by a power of lam, so |lam| near or above 1 stays exact up to
    round-off. Not differentiable by itself: see :mod:`kernels.scan.op`.
    """
    B, T, N = b.shape
    L = min(chunk or default_chunk(T), T)
    C, rem = divmod(T, L)
    varying = lam.dim() == 3
    out = torch.empty((B, T, N), dtype=b.dtype, device=b.device)

    # Chunks cover [lo, lo + C*L); the rem leftover steps are the last ones in scan order
    # (the end for a forward scan, the start for a reverse one) and run step by step.
    lo = rem if reverse else 0
    main = slice(lo, lo + C * L)
    b_c = b[:, main].unflatten(1, (C, L))
    h_c = out[:, main].unflatten(1, (C, L))
    lam_c = lam[:, main].unflatten(1, (C, L)) if varying else lam
    steps = range(L - 1, -1, -1) if reverse else range(L)

    # 1. Local scans from a zero state, all chunks and batches in one op per step.
    first = steps[0]
    h_c[:, :, first].copy_(b_c[:, :, first])
    prev = first
    for l in steps[1:]:
        torch.addcmul(
            b_c[:, :, l], lam_c[:, :, l] if varying else lam, h_c[:, :, prev], out=h_c[:, :, l]
        )
        prev = l
    last = prev

    # decay[..., l]: product of lam from the chunk's first step in scan order up to step l,
    # i.e. what multiplies the state carried into the chunk.
    if varying:
        decay = lam_c.flip(2).cumprod(2).flip(2) if reverse else lam_c.cumprod(2)
    else:
        decay = lam.expand(L, N).cumprod(0)
        if reverse:
            decay = decay.flip(0)
    flush_subnormals_(decay)

    # 2. Carry the end states across chunks: carry[:, c] is the state entering chunk c.
    state = h0 if h0 is not None else b.new_zeros(B, N)
    carry = torch.empty((B, C, N), dtype=b.dtype, device=b.device)
    for c in range(C - 1, -1, -1) if reverse else range(C):
        carry[:, c] = state
        chunk_decay = decay[:, c, last] if varying else decay[last]
        state = torch.addcmul(h_c[:, c, last], chunk_decay, state)

    # 3. Fix-up; the first chunk in scan order starts from h0, so without h0 it is done.
    skip = slice(None) if h0 is not None else (slice(0, C - 1) if reverse else slice(1, C))
    if C > 0:
        h_c[:, skip].addcmul_(
            decay[:, skip] if varying else decay, carry[:, skip].unsqueeze(2)
        )

    # Leftover steps, continuing from the last chunk's end state.
    for t in range(rem - 1, -1, -1) if reverse else range(C * L, T):
        torch.addcmul(b[:, t], lam[:, t] if varying else lam, state, out=out[:, t])
        state = out[:, t]
    return out


def adjoint_lam(lam: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The coefficients of the backward scan.

    For ``h_t = lam_t h_{t-1} + b_t`` the adjoint ``a_t = dL/dh_t`` (total) satisfies
    ``a_t = g_t + conj(lam_{t+1}) a_{t+1}``: a scan in the opposite direction with
    ``conj(lam)`` shifted by one step. The coefficient at the scan's first step multiplies
    a zero state, so it is set to zero.
    """
    if lam.dim() == 1:
        return lam.conj().resolve_conj()
    mu = torch.zeros_like(lam)
    if reverse:
        mu[:, 1:] = lam[:, :-1].conj()
    else:
        mu[:, :-1] = lam[:, 1:].conj()
    return mu


def chunked_scan_backward(
    lam: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    grad_h: torch.Tensor,
    reverse: bool,
    chunk: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(grad_lam, grad_b, grad_h0)`` of the scan that produced ``h``.

    ``grad_b`` is the adjoint state (a reverse scan of ``grad_h`` with ``conj(lam)``, so
    the forward scan is reused), ``grad_lam_t = grad_b_t * conj(h_prev_t)`` (summed over
    batch and time when lam is shared), ``grad_h0 = conj(lam_first) * grad_b_first``.
    """
    grad_b = chunked_scan_forward(adjoint_lam(lam, reverse), grad_h, None, not reverse, chunk)
    grad_lam, grad_h0 = lam_and_h0_grads(lam, h, h0, grad_b, reverse)
    return grad_lam, grad_b, grad_h0


def lam_and_h0_grads(
    lam: torch.Tensor, h: torch.Tensor, h0: torch.Tensor | None, grad_b: torch.Tensor,
    reverse: bool, cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grad_lam, grad_h0)`` from the adjoint states ``grad_b``, with differentiable ops
    only (the scan's double backward runs through them, see :mod:`kernels.scan.op`).
    ``cu_seqlens``: packed sequences (:mod:`kernels.scan.varlen`), h0 one per sequence."""
    if cu_seqlens is not None:
        return _packed_lam_and_h0_grads(lam, h, h0, grad_b, reverse, cu_seqlens)
    T = h.shape[1]
    # h_prev is h shifted one step against the scan direction, h0 (or 0) at the boundary.
    first = T - 1 if reverse else 0
    inner_a = grad_b[:, :-1] if reverse else grad_b[:, 1:]
    inner_h = h[:, 1:] if reverse else h[:, :-1]
    a_first = grad_b[:, first]
    if lam.dim() == 3:
        at_first = a_first * h0.conj() if h0 is not None else torch.zeros_like(a_first)
        inner = inner_a * inner_h.conj()
        pieces = (inner, at_first[:, None]) if reverse else (at_first[:, None], inner)
        grad_lam = torch.cat(pieces, dim=1)
        lam_first = lam[:, first]
    else:
        # Sum over batch and time as a batched dot product over B*(T-1) rows; vecdot
        # conjugates its first argument.
        grad_lam = torch.linalg.vecdot(inner_h, inner_a, dim=1).sum(0)
        if h0 is not None:
            grad_lam = grad_lam + torch.linalg.vecdot(h0, a_first, dim=0)
        lam_first = lam
    return grad_lam, lam_first.conj() * a_first


def _packed_lam_and_h0_grads(lam, h, h0, grad_b, reverse, cu_seqlens):
    # h_prev is h shifted against the scan direction, h0_s (or 0) at each sequence's
    # first row.
    first, nonempty = first_rows(cu_seqlens, reverse)
    edge = torch.zeros_like(h[:, :1])
    h_prev = torch.cat((h[:, 1:], edge) if reverse else (edge, h[:, :-1]), dim=1)
    T = h.shape[1]
    keep = torch.ones(T + 1, dtype=h.real.dtype, device=h.device)  # row T: empty sequences'
    keep = keep.index_fill(0, torch.where(nonempty, first, T), 0)[:T]
    h_prev = h_prev * keep[None, :, None]
    if h0 is not None:
        h_prev = h_prev.index_add(1, first, (h0 * nonempty[:, None])[None])
    terms = grad_b * h_prev.conj()
    grad_lam = terms if lam.dim() == 3 else terms.sum((0, 1))
    lam_first = lam[0, first] if lam.dim() == 3 else lam
    return grad_lam, lam_first.conj() * grad_b[0, first] * nonempty[:, None]
