"""Triton forward and backward kernels for the diagonal complex scan.

Complex tensors are read through ``torch.view_as_real`` as interleaved fp32 (real,
imag) pairs with their own strides, so non-contiguous inputs need no copy. State and
accumulation are fp32.

Three launches per scan, with parallelism over batch, channel blocks and time chunks:

1. ``_chunk_summary_kernel``: each program scans one time chunk of one batch element
   for a block of channels from a zero state, keeping only the chunk's end state and
   the product of its coefficients (no write of h).
2. ``_carry_kernel``: a sequential scan over the chunk summaries gives the state
   entering every chunk (h0 for the first one).
3. ``_chunk_scan_kernel``: each program rescans its chunk from that carry and writes h.
   Rescanning reads b once more (8 bytes per element) instead of the fix-up's read and
   rewrite of h (16 bytes).

Inside a chunk, tiles of ``BLOCK_T`` steps are scanned in registers with
``tl.associative_scan`` over the affine maps ``s -> mu*s + x`` and chained tile by tile.

The backward pass is the same scan run the other way over ``grad_h`` with
``conj(lam)`` (shifted one step when lam varies in time); its third kernel also forms
``grad_lam_t = grad_b_t * conj(h_prev_t)``: per element when lam varies in time, else
as per-program partial sums that a torch ``sum`` reduces (no atomics).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

# Launches of Triton kernels in this process; tests read it to prove the Triton path ran.
LAUNCHES = 0

MAX_CHUNK = 256  # time steps per program
MIN_CHUNK = 32
MIN_PROGRAMS = 1024  # enough to fill a large GPU several times over
MAX_BLOCK_T = 32  # time steps per register tile
MAX_BLOCK_N = 64  # channels per program


@triton.jit
def _compose(ar, ai, xr, xi, br, bi, yr, yi):
    # Affine map s -> a*s + x followed by s -> b*s + y is s -> (b*a)*s + (b*x + y).
    return (
        br * ar - bi * ai,
        br * ai + bi * ar,
        br * xr - bi * xi + yr,
        br * xi + bi * xr + yi,
    )


@triton.jit
def _scan_tile(
    x_ptr, lam_ptr, pid_b, t0, t_end, T, offs_n, mask_n,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
    BLOCK_T: tl.constexpr, VARYING: tl.constexpr, ADJOINT: tl.constexpr,
    REVERSE: tl.constexpr,
):
    """Scan of the steps t0 .. t0+BLOCK_T-1 (those < t_end) from a zero state.

    Returns (product of coefficients, state) at every row, both accumulated in scan
    order; rows past t_end are identity maps so they leave the scan unchanged. ADJOINT
    uses the backward scan's coefficients conj(lam), shifted when lam varies in time.
    """
    t = t0 + tl.arange(0, BLOCK_T)[:, None]
    in_time = t < t_end
    valid = in_time & mask_n[None, :]
    x_off = pid_b * s_xb + t * s_xt + offs_n[None, :] * s_xn
    xr = tl.load(x_ptr + x_off, mask=valid, other=0.0)
    xi = tl.load(x_ptr + x_off + 1, mask=valid, other=0.0)
    if VARYING:
        # The backward scan's coefficient at step t is lam of the step processed just
        # before it (t+1 for a reverse scan); off the ends it multiplies a zero state.
        if ADJOINT:
            if REVERSE:
                t_lam = t + 1
            else:
                t_lam = t - 1
        else:
            t_lam = t
        lam_ok = valid & (t_lam >= 0) & (t_lam < T)
        l_off = pid_b * s_lb + t_lam * s_lt + offs_n[None, :] * s_ln
        mr = tl.load(lam_ptr + l_off, mask=lam_ok, other=0.0)
        mi = tl.load(lam_ptr + l_off + 1, mask=lam_ok, other=0.0)
    else:
        lr = tl.load(lam_ptr + offs_n * s_ln, mask=mask_n, other=0.0)
        li = tl.load(lam_ptr + offs_n * s_ln + 1, mask=mask_n, other=0.0)
        rows = tl.zeros((BLOCK_T, 1), tl.float32)
        mr = lr[None, :] + rows
        mi = li[None, :] + rows
    if ADJOINT:
        mi = -mi
    mr = tl.where(in_time, mr, 1.0)
    mi = tl.where(in_time, mi, 0.0)
    return tl.associative_scan((mr, mi, xr, xi), 0, _compose, reverse=REVERSE)


@triton.jit
def _tile_start(lo, j, n_tiles, BLOCK_T: tl.constexpr, REVERSE: tl.constexpr):
    # The j-th tile in scan order: chunks are walked from their end in a reverse scan.
    if REVERSE:
        return lo + (n_tiles - 1 - j) * BLOCK_T
    return lo + j * BLOCK_T


@triton.jit
def _last_row(v, BLOCK_T: tl.constexpr, REVERSE: tl.constexpr):
    # The row reached last in scan order: the bottom row, or the top one in reverse.
    rows = tl.arange(0, BLOCK_T)[:, None]
    last = 0 if REVERSE else BLOCK_T - 1
    return tl.sum(tl.where(rows == last, v, 0.0), axis=0)


@triton.jit(do_not_specialize=["T", "s_xb", "s_xt", "s_lb", "s_lt"])
def _chunk_summary_kernel(
    x_ptr, lam_ptr, end_ptr, prod_ptr,
    T, N,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
    CHUNK: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
):
    # int64 offsets: B*T*N*2 can exceed 2**31.
    pid_b = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1).to(tl.int64)
    n_chunks = tl.num_programs(1)
    offs_n = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    lo = pid_c * CHUNK
    hi = tl.minimum(lo + CHUNK, T)
    n_tiles = tl.cdiv(hi - lo, BLOCK_T)

    sr = tl.zeros((BLOCK_N,), tl.float32)
    si = tl.zeros((BLOCK_N,), tl.float32)
    pr = tl.full((BLOCK_N,), 1.0, tl.float32)
    pi = tl.zeros((BLOCK_N,), tl.float32)
    for j in range(0, n_tiles):
        t0 = _tile_start(lo, j, n_tiles, BLOCK_T, REVERSE)
        ar, ai, xr, xi = _scan_tile(
            x_ptr, lam_ptr, pid_b, t0, hi, T, offs_n, mask_n,
            s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
            BLOCK_T, VARYING, ADJOINT, REVERSE,
        )
        ar = _last_row(ar, BLOCK_T, REVERSE)
        ai = _last_row(ai, BLOCK_T, REVERSE)
        xr = _last_row(xr, BLOCK_T, REVERSE)
        xi = _last_row(xi, BLOCK_T, REVERSE)
        pr, pi, sr, si = _compose(pr, pi, sr, si, ar, ai, xr, xi)

    off = ((pid_b * n_chunks + pid_c) * N + offs_n) * 2
    tl.store(end_ptr + off, sr, mask=mask_n)
    tl.store(end_ptr + off + 1, si, mask=mask_n)
    tl.store(prod_ptr + off, pr, mask=mask_n)
    tl.store(prod_ptr + off + 1, pi, mask=mask_n)


@triton.jit(do_not_specialize=["n_chunks"])
def _carry_kernel(
    end_ptr, prod_ptr, init_ptr,
    n_chunks, N, s_ib, s_in,
    BLOCK_N: tl.constexpr, HAS_INIT: tl.constexpr, REVERSE: tl.constexpr,
):
    """Overwrites each chunk's end state with the state entering the chunk."""
    pid_b = tl.program_id(0).to(tl.int64)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    if HAS_INIT:
        sr = tl.load(init_ptr + pid_b * s_ib + offs_n * s_in, mask=mask_n, other=0.0)
        si = tl.load(init_ptr + pid_b * s_ib + offs_n * s_in + 1, mask=mask_n, other=0.0)
    else:
        sr = tl.zeros((BLOCK_N,), tl.float32)
        si = tl.zeros((BLOCK_N,), tl.float32)
    for j in range(0, n_chunks):
        if REVERSE:
            c = n_chunks - 1 - j
        else:
            c = j
        off = ((pid_b * n_chunks + c) * N + offs_n) * 2
        er = tl.load(end_ptr + off, mask=mask_n, other=0.0)
        ei = tl.load(end_ptr + off + 1, mask=mask_n, other=0.0)
        pr = tl.load(prod_ptr + off, mask=mask_n, other=0.0)
        pi = tl.load(prod_ptr + off + 1, mask=mask_n, other=0.0)
        tl.store(end_ptr + off, sr, mask=mask_n)
        tl.store(end_ptr + off + 1, si, mask=mask_n)
        sr, si = pr * sr - pi * si + er, pr * si + pi * sr + ei


@triton.jit(do_not_specialize=["T", "s_xb", "s_xt", "s_lb", "s_lt", "s_hb", "s_ht"])
def _chunk_scan_kernel(
    x_ptr, lam_ptr, carry_ptr, out_ptr, h_ptr, h0_ptr, grad_lam_ptr,
    T, N,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_hb, s_ht, s_hn, s_0b, s_0n,
    CHUNK: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr,
):
    """Scans a chunk from its carry and writes the states to out (contiguous).

    With ADJOINT (the backward pass, x = grad_h and out = grad_b) it also forms
    grad_b_t * conj(h_prev_t), where h_prev_t is the forward state at the step the
    backward scan visits next (h0 past the end): stored per element when lam varies in
    time, summed over the chunk otherwise.
    """
    # int64 offsets: B*T*N*2 can exceed 2**31.
    pid_b = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1).to(tl.int64)
    n_chunks = tl.num_programs(1)
    offs_n = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    lo = pid_c * CHUNK
    hi = tl.minimum(lo + CHUNK, T)
    n_tiles = tl.cdiv(hi - lo, BLOCK_T)

    c_off = ((pid_b * n_chunks + pid_c) * N + offs_n) * 2
    sr = tl.load(carry_ptr + c_off, mask=mask_n, other=0.0)
    si = tl.load(carry_ptr + c_off + 1, mask=mask_n, other=0.0)
    acc_r = tl.zeros((BLOCK_N,), tl.float32)
    acc_i = tl.zeros((BLOCK_N,), tl.float32)
    if ADJOINT and HAS_H0:
        h0r = tl.load(h0_ptr + pid_b * s_0b + offs_n * s_0n, mask=mask_n, other=0.0)
        h0i = tl.load(h0_ptr + pid_b * s_0b + offs_n * s_0n + 1, mask=mask_n, other=0.0)
    for j in range(0, n_tiles):
        t0 = _tile_start(lo, j, n_tiles, BLOCK_T, REVERSE)
        ar, ai, xr, xi = _scan_tile(
            x_ptr, lam_ptr, pid_b, t0, hi, T, offs_n, mask_n,
            s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
            BLOCK_T, VARYING, ADJOINT, REVERSE,
        )
        yr = ar * sr[None, :] - ai * si[None, :] + xr
        yi = ar * si[None, :] + ai * sr[None, :] + xi
        t = t0 + tl.arange(0, BLOCK_T)[:, None]
        valid = (t < hi) & mask_n[None, :]
        o_off = (pid_b * T + t) * (N * 2) + offs_n[None, :] * 2
        tl.store(out_ptr + o_off, yr, mask=valid)
        tl.store(out_ptr + o_off + 1, yi, mask=valid)
        sr = _last_row(yr, BLOCK_T, REVERSE)
        si = _last_row(yi, BLOCK_T, REVERSE)

        if ADJOINT:
            if REVERSE:
                t_prev = t - 1
            else:
                t_prev = t + 1
            inside = (t_prev >= 0) & (t_prev < T)
            p_off = pid_b * s_hb + t_prev * s_ht + offs_n[None, :] * s_hn
            pr = tl.load(h_ptr + p_off, mask=valid & inside, other=0.0)
            pi = tl.load(h_ptr + p_off + 1, mask=valid & inside, other=0.0)
            if HAS_H0:
                pr = tl.where(inside, pr, h0r[None, :])
                pi = tl.where(inside, pi, h0i[None, :])
            # grad_b * conj(h_prev)
            gr = yr * pr + yi * pi
            gi = yi * pr - yr * pi
            if VARYING:
                tl.store(grad_lam_ptr + o_off, gr, mask=valid)
                tl.store(grad_lam_ptr + o_off + 1, gi, mask=valid)
            else:
                acc_r += tl.sum(tl.where(valid, gr, 0.0), axis=0)
                acc_i += tl.sum(tl.where(valid, gi, 0.0), axis=0)

    if ADJOINT and not VARYING:
        tl.store(grad_lam_ptr + c_off, acc_r, mask=mask_n)
        tl.store(grad_lam_ptr + c_off + 1, acc_i, mask=mask_n)


def _block_t(chunk: int, T: int) -> int:
    # A power of two dividing the chunk, so tiles never straddle two chunks, and no
    # longer than the sequence needs.
    return min(MAX_BLOCK_T, chunk & -chunk, triton.next_power_of_2(T))


def _default_chunk(B: int, T: int, n_blocks: int) -> int:
    # Long chunks keep the sequential carry pass short; shorter ones add programs when
    # batch and channels alone cannot fill the GPU.
    chunk = MAX_CHUNK
    while chunk > MIN_CHUNK and B * n_blocks * triton.cdiv(T, chunk) < MIN_PROGRAMS:
        chunk //= 2
    return chunk


def _scan(
    lam: torch.Tensor,
    x: torch.Tensor,
    init: torch.Tensor | None,
    *,
    reverse: bool,
    adjoint: bool,
    chunk: int,
    h: torch.Tensor | None = None,
    h0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Runs the three kernels; with ``adjoint`` it is the backward scan (conj(lam),
    shifted coefficients for time-varying lam, fused grad_lam). Returns the states as an
    fp32 ``(B, T, N, 2)`` tensor and, with ``adjoint``, the raw grad_lam buffer."""
    global LAUNCHES
    B, T, N = x.shape
    varying = lam.dim() == 3
    block_n = min(MAX_BLOCK_N, triton.next_power_of_2(N))
    n_blocks = triton.cdiv(N, block_n)
    chunk = chunk or _default_chunk(B, T, n_blocks)
    block_t = _block_t(chunk, T)
    n_chunks = triton.cdiv(T, chunk)
    grid = (B, n_chunks, n_blocks)

    xr = torch.view_as_real(x)
    lr = torch.view_as_real(lam)
    lam_strides = lr.stride()[:3] if varying else (0, 0, lr.stride(0))
    f32 = dict(dtype=torch.float32, device=x.device)
    out = torch.empty((B, T, N, 2), **f32)
    end = torch.empty((B, n_chunks, N, 2), **f32)
    prod = torch.empty((B, n_chunks, N, 2), **f32)
    flags = dict(
        CHUNK=chunk, BLOCK_T=block_t, BLOCK_N=block_n,
        VARYING=varying, ADJOINT=adjoint, REVERSE=reverse,
    )

    init_r = torch.view_as_real(init) if init is not None else end
    grad_lam = None
    h_r = h0_r = out  # placeholders where unused
    if adjoint:
        h_r = torch.view_as_real(h)
        h0_r = torch.view_as_real(h0) if h0 is not None else out
        grad_lam = torch.empty((B, T, N, 2) if varying else (B, n_chunks, N, 2), **f32)

    # Triton launches on the current CUDA device, so make it the tensors' device.
    on_device = torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
    with on_device:
        _chunk_summary_kernel[grid](
            xr, lr, end, prod, T, N, *xr.stride()[:3], *lam_strides, **flags
        )
        _carry_kernel[grid[0], grid[2]](
            end, prod, init_r, n_chunks, N, *init_r.stride()[:2],
            BLOCK_N=block_n, HAS_INIT=init is not None, REVERSE=reverse,
        )
        _chunk_scan_kernel[grid](
            xr, lr, end, out, h_r, h0_r, grad_lam if adjoint else out,
            T, N, *xr.stride()[:3], *lam_strides, *h_r.stride()[:3], *h0_r.stride()[:2],
            HAS_H0=h0 is not None, **flags,
        )
    LAUNCHES += 3
    return out, grad_lam


def _resolved(x: torch.Tensor) -> torch.Tensor:
    # view_as_real refuses tensors with a pending conjugation or negation.
    return x.resolve_conj().resolve_neg()


def triton_scan_forward(
    lam: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, reverse: bool, chunk: int = 0
) -> torch.Tensor:
    h0 = _resolved(h0) if h0 is not None else None
    out, _ = _scan(_resolved(lam), _resolved(b), h0, reverse=reverse, adjoint=False, chunk=chunk)
    return torch.view_as_complex(out)


def triton_scan_backward(
    lam: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    grad_h: torch.Tensor,
    reverse: bool,
    chunk: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(grad_lam, grad_b, grad_h0)``; see :func:`kernels.scan.reference.chunked_scan_backward`."""
    lam = _resolved(lam)
    h0 = _resolved(h0) if h0 is not None else None
    grad_b, grad_lam = _scan(
        lam, _resolved(grad_h), None,
        reverse=not reverse, adjoint=True, chunk=chunk, h=_resolved(h), h0=h0,
    )
    grad_b = torch.view_as_complex(grad_b)
    if lam.dim() == 1:
        grad_lam = grad_lam.sum((0, 1))
    grad_lam = torch.view_as_complex(grad_lam)
    first = h.shape[1] - 1 if reverse else 0
    lam_first = lam[:, first] if lam.dim() == 3 else lam
    grad_h0 = lam_first.conj() * grad_b[:, first]
    return grad_lam, grad_b, grad_h0
