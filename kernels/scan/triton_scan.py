"""Triton forward and backward kernels for the diagonal complex scan.

Complex tensors are read through ``torch.view_as_real`` as interleaved fp32 (real,
imag) pairs; strides are passed in complex elements, so every access loads or stores a
(real, imag) pair in one 64-bit access (a ``[..., 2]`` tile split with ``tl.split``), and
non-contiguous inputs need no copy. State and accumulation are fp32.

Two schedules, chosen by size (:func:`plan_scan`):

- **Single pass** (one time chunk covering all of T): one program per (batch element,
  channel block) walks the whole sequence, so ``b`` is read once and ``h`` written once
  (16 bytes per element, the model). Used when batch and channels alone give enough
  programs to fill a large GPU (``FILL_PROGRAMS``), and whenever ``chunk >= T``.
- **Three passes** over time chunks, for more parallelism when B·N is small:

  1. ``_chunk_summary_kernel``: each program scans one time chunk from a zero state,
     keeping only the chunk's end state and the product of its coefficients;
  2. ``_carry_kernel``: a sequential scan over the chunk summaries gives the state
     entering every chunk (h0 for the first one);
  3. ``_chunk_scan_kernel``: each program rescans its chunk from that carry and writes h
     (the single pass is this kernel alone, its carry being h0).

  Rescanning reads b once more (8 bytes per element) instead of the fix-up's read and
  rewrite of h (16 bytes).

Inside a chunk, tiles of ``BLOCK_T`` steps are scanned in registers with
``tl.associative_scan`` over the affine maps ``s -> mu*s + x`` and chained tile by tile.

The backward pass is the same scan run the other way over ``grad_h`` with
``conj(lam)`` (shifted one step when lam varies in time); its last kernel also forms
``grad_lam_t = grad_b_t * conj(h_prev_t)``: per element when lam varies in time, else
as per-program partial sums that a torch ``sum`` reduces (no atomics). Bytes per
element: :mod:`kernels.scan.traffic`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

# Launches of Triton kernels in this process; tests read it to prove the Triton path ran.
LAUNCHES = 0

MAX_CHUNK = 256  # time steps per program of the three-pass schedule
MIN_CHUNK = 32
MIN_PROGRAMS = 1024  # enough to fill a large GPU several times over
# (batch, channel block) programs from which the single pass alone fills an H100/H200:
# about four resident programs of 4 warps per SM on 132 SMs.
FILL_PROGRAMS = 512
MAX_BLOCK_T = 32  # time steps per register tile
MAX_BLOCK_N = 16  # channels per program: a 16-channel row is one 128-byte line


@dataclass(frozen=True)
class ScanPlan:
    """How one scan is launched: time chunks (one chunk is the single pass), tile sizes
    and warps per program."""

    chunk: int
    n_chunks: int
    block_t: int
    block_n: int
    num_warps: int

    @property
    def single_pass(self) -> bool:
        return self.n_chunks == 1


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
def _load_complex(ptr, off, mask):
    # off counts complex elements: each (real, imag) pair is one 64-bit access.
    pairs = tl.expand_dims(off * 2, len(off.shape)) + tl.arange(0, 2)
    return tl.split(tl.load(ptr + pairs, mask=tl.expand_dims(mask, len(mask.shape)), other=0.0))


@triton.jit
def _store_complex(ptr, off, re, im, mask):
    pairs = tl.expand_dims(off * 2, len(off.shape)) + tl.arange(0, 2)
    tl.store(ptr + pairs, tl.join(re, im), mask=tl.expand_dims(mask, len(mask.shape)))


@triton.jit
def _shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT: tl.constexpr):
    # lam shared over batch and time: loaded once per program (conj for the backward).
    lr, li = _load_complex(lam_ptr, offs_n * s_ln, mask_n)
    if ADJOINT:
        li = -li
    return lr, li


@triton.jit
def _scan_tile(
    x_ptr, lam_ptr, lr, li, pid_b, t0, t_end, T, offs_n, mask_n,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
    BLOCK_T: tl.constexpr, VARYING: tl.constexpr, ADJOINT: tl.constexpr,
    REVERSE: tl.constexpr,
):
    """Scan of the steps t0 .. t0+BLOCK_T-1 (those < t_end) from a zero state.

    Returns (product of coefficients, state) at every row, both accumulated in scan
    order; rows past t_end are identity maps so they leave the scan unchanged. ADJOINT
    uses the backward scan's coefficients conj(lam), shifted when lam varies in time;
    (lr, li) is the shared lam when it does not vary.
    """
    t = t0 + tl.arange(0, BLOCK_T)[:, None]
    in_time = t < t_end
    valid = in_time & mask_n[None, :]
    xr, xi = _load_complex(x_ptr, pid_b * s_xb + t * s_xt + offs_n[None, :] * s_xn, valid)
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
        mr, mi = _load_complex(lam_ptr, l_off, lam_ok)
        if ADJOINT:
            mi = -mi
    else:
        rows = tl.zeros((BLOCK_T, 1), tl.float32)
        mr = lr[None, :] + rows
        mi = li[None, :] + rows
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


@triton.jit(do_not_specialize=["T", "chunk", "s_xb", "s_xt", "s_lb", "s_lt"])
def _chunk_summary_kernel(
    x_ptr, lam_ptr, end_ptr, prod_ptr,
    T, N, chunk,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
):
    # int64 offsets: B*T*N*2 can exceed 2**31.
    pid_b = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1).to(tl.int64)
    n_chunks = tl.num_programs(1)
    offs_n = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    lo = pid_c * chunk
    hi = tl.minimum(lo + chunk, T)
    n_tiles = tl.cdiv(hi - lo, BLOCK_T)
    lr = tl.zeros((BLOCK_N,), tl.float32)  # unused when lam varies
    li = tl.zeros((BLOCK_N,), tl.float32)
    if not VARYING:
        lr, li = _shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT)

    sr = tl.zeros((BLOCK_N,), tl.float32)
    si = tl.zeros((BLOCK_N,), tl.float32)
    pr = tl.full((BLOCK_N,), 1.0, tl.float32)
    pi = tl.zeros((BLOCK_N,), tl.float32)
    for j in range(0, n_tiles):
        t0 = _tile_start(lo, j, n_tiles, BLOCK_T, REVERSE)
        ar, ai, xr, xi = _scan_tile(
            x_ptr, lam_ptr, lr, li, pid_b, t0, hi, T, offs_n, mask_n,
            s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
            BLOCK_T, VARYING, ADJOINT, REVERSE,
        )
        ar = _last_row(ar, BLOCK_T, REVERSE)
        ai = _last_row(ai, BLOCK_T, REVERSE)
        xr = _last_row(xr, BLOCK_T, REVERSE)
        xi = _last_row(xi, BLOCK_T, REVERSE)
        pr, pi, sr, si = _compose(pr, pi, sr, si, ar, ai, xr, xi)

    off = (pid_b * n_chunks + pid_c) * N + offs_n
    _store_complex(end_ptr, off, sr, si, mask_n)
    _store_complex(prod_ptr, off, pr, pi, mask_n)


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
        sr, si = _load_complex(init_ptr, pid_b * s_ib + offs_n * s_in, mask_n)
    else:
        sr = tl.zeros((BLOCK_N,), tl.float32)
        si = tl.zeros((BLOCK_N,), tl.float32)
    for j in range(0, n_chunks):
        if REVERSE:
            c = n_chunks - 1 - j
        else:
            c = j
        off = (pid_b * n_chunks + c) * N + offs_n
        er, ei = _load_complex(end_ptr, off, mask_n)
        pr, pi = _load_complex(prod_ptr, off, mask_n)
        _store_complex(end_ptr, off, sr, si, mask_n)
        sr, si = pr * sr - pi * si + er, pr * si + pi * sr + ei


@triton.jit(
    do_not_specialize=["T", "chunk", "s_xb", "s_xt", "s_lb", "s_lt", "s_hb", "s_ht", "s_cb"]
)
def _chunk_scan_kernel(
    x_ptr, lam_ptr, carry_ptr, out_ptr, h_ptr, h0_ptr, grad_lam_ptr,
    T, N, chunk,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_hb, s_ht, s_hn, s_0b, s_0n, s_cb, s_cc, s_cn,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr, HAS_CARRY: tl.constexpr,
):
    """Scans a chunk from its carry and writes the states to out (contiguous).

    The carry of chunk c is at ``carry_ptr + b*s_cb + c*s_cc + n*s_cn`` (the carry
    pass's buffer, or h0 itself in the single pass); zero without HAS_CARRY.

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
    lo = pid_c * chunk
    hi = tl.minimum(lo + chunk, T)
    n_tiles = tl.cdiv(hi - lo, BLOCK_T)
    lr = tl.zeros((BLOCK_N,), tl.float32)  # unused when lam varies
    li = tl.zeros((BLOCK_N,), tl.float32)
    if not VARYING:
        lr, li = _shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT)

    if HAS_CARRY:
        sr, si = _load_complex(carry_ptr, pid_b * s_cb + pid_c * s_cc + offs_n * s_cn, mask_n)
    else:
        sr = tl.zeros((BLOCK_N,), tl.float32)
        si = tl.zeros((BLOCK_N,), tl.float32)
    acc_r = tl.zeros((BLOCK_N,), tl.float32)
    acc_i = tl.zeros((BLOCK_N,), tl.float32)
    if ADJOINT and HAS_H0:
        h0r, h0i = _load_complex(h0_ptr, pid_b * s_0b + offs_n * s_0n, mask_n)
    for j in range(0, n_tiles):
        t0 = _tile_start(lo, j, n_tiles, BLOCK_T, REVERSE)
        ar, ai, xr, xi = _scan_tile(
            x_ptr, lam_ptr, lr, li, pid_b, t0, hi, T, offs_n, mask_n,
            s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
            BLOCK_T, VARYING, ADJOINT, REVERSE,
        )
        yr = ar * sr[None, :] - ai * si[None, :] + xr
        yi = ar * si[None, :] + ai * sr[None, :] + xi
        t = t0 + tl.arange(0, BLOCK_T)[:, None]
        valid = (t < hi) & mask_n[None, :]
        o_off = (pid_b * T + t) * N + offs_n[None, :]
        _store_complex(out_ptr, o_off, yr, yi, valid)
        sr = _last_row(yr, BLOCK_T, REVERSE)
        si = _last_row(yi, BLOCK_T, REVERSE)

        if ADJOINT:
            if REVERSE:
                t_prev = t - 1
            else:
                t_prev = t + 1
            inside = (t_prev >= 0) & (t_prev < T)
            p_off = pid_b * s_hb + t_prev * s_ht + offs_n[None, :] * s_hn
            pr, pi = _load_complex(h_ptr, p_off, valid & inside)
            if HAS_H0:
                pr = tl.where(inside, pr, h0r[None, :])
                pi = tl.where(inside, pi, h0i[None, :])
            # grad_b * conj(h_prev)
            gr = yr * pr + yi * pi
            gi = yi * pr - yr * pi
            if VARYING:
                _store_complex(grad_lam_ptr, o_off, gr, gi, valid)
            else:
                acc_r += tl.sum(tl.where(valid, gr, 0.0), axis=0)
                acc_i += tl.sum(tl.where(valid, gi, 0.0), axis=0)

    if ADJOINT and not VARYING:
        _store_complex(grad_lam_ptr, (pid_b * n_chunks + pid_c) * N + offs_n, acc_r, acc_i, mask_n)


def _block_t(chunk: int, T: int) -> int:
    # A power of two dividing the chunk, so tiles never straddle two chunks, and no
    # longer than the sequence needs.
    return min(MAX_BLOCK_T, chunk & -chunk, triton.next_power_of_2(T))


def _default_chunk(B: int, T: int, n_blocks: int) -> int:
    # Long chunks keep the sequential carry pass short; shorter ones add programs when
    # batch and channels alone cannot fill the GPU.
    if B * n_blocks >= FILL_PROGRAMS:
        return T
    chunk = MAX_CHUNK
    while chunk > MIN_CHUNK and B * n_blocks * triton.cdiv(T, chunk) < MIN_PROGRAMS:
        chunk //= 2
    return chunk


def plan_scan(B: int, T: int, N: int, chunk: int = 0) -> ScanPlan:
    """The launch plan of a ``(B, T, N)`` scan; ``chunk`` 0 picks the chunk by size, and a
    chunk of at least T is the single pass."""
    block_n = min(MAX_BLOCK_N, triton.next_power_of_2(N))
    chunk = min(chunk or _default_chunk(B, T, triton.cdiv(N, block_n)), T)
    block_t = _block_t(chunk if chunk < T else MAX_BLOCK_T, T)
    # About 4 tile elements per thread: the (re, im) pairs of the four scan values then
    # stay well under 64 registers.
    num_warps = max(1, min(8, block_t * block_n // 128))
    return ScanPlan(chunk, triton.cdiv(T, chunk), block_t, block_n, num_warps)


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
    """Runs the scan's kernels; with ``adjoint`` it is the backward scan (conj(lam),
    shifted coefficients for time-varying lam, fused grad_lam). Returns the states as an
    fp32 ``(B, T, N, 2)`` tensor and, with ``adjoint``, the raw grad_lam buffer."""
    global LAUNCHES
    B, T, N = x.shape
    varying = lam.dim() == 3
    plan = plan_scan(B, T, N, chunk)
    n_blocks = triton.cdiv(N, plan.block_n)
    grid = (B, plan.n_chunks, n_blocks)

    lam_strides = lam.stride() if varying else (0, 0, lam.stride(0))
    f32 = dict(dtype=torch.float32, device=x.device)
    out = torch.empty((B, T, N, 2), **f32)
    flags = dict(
        BLOCK_T=plan.block_t, BLOCK_N=plan.block_n,
        VARYING=varying, ADJOINT=adjoint, REVERSE=reverse, num_warps=plan.num_warps,
    )
    xr, lr, out_r = torch.view_as_real(x), torch.view_as_real(lam), out
    grad_lam = None
    h_r = h0_r = out  # placeholders where unused
    h_strides, h0_strides = (0, 0, 0), (0, 0)
    if adjoint:
        h_r, h_strides = torch.view_as_real(h), h.stride()
        if h0 is not None:
            h0_r, h0_strides = torch.view_as_real(h0), h0.stride()
        partial = (B, T, N, 2) if varying else (B, plan.n_chunks, N, 2)
        grad_lam = torch.empty(partial, **f32)

    # Triton launches on the current CUDA device, so make it the tensors' device.
    on_device = torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
    with on_device:
        if plan.single_pass:
            # The carry of the one chunk is the initial state itself.
            carry = torch.view_as_real(init) if init is not None else out
            carry_strides = (init.stride(0), 0, init.stride(1)) if init is not None else (0, 0, 0)
        else:
            end = torch.empty((B, plan.n_chunks, N, 2), **f32)
            prod = torch.empty((B, plan.n_chunks, N, 2), **f32)
            _chunk_summary_kernel[grid](
                xr, lr, end, prod, T, N, plan.chunk, *x.stride(), *lam_strides, **flags
            )
            init_r = torch.view_as_real(init) if init is not None else end
            _carry_kernel[grid[0], grid[2]](
                end, prod, init_r, plan.n_chunks, N,
                *(init.stride() if init is not None else (0, 0)),
                BLOCK_N=plan.block_n, HAS_INIT=init is not None, REVERSE=reverse,
            )
            carry, carry_strides = end, (plan.n_chunks * N, N, 1)
            LAUNCHES += 2
        _chunk_scan_kernel[grid](
            xr, lr, carry, out_r, h_r, h0_r, grad_lam if adjoint else out,
            T, N, plan.chunk, *x.stride(), *lam_strides, *h_strides, *h0_strides, *carry_strides,
            HAS_H0=h0 is not None, HAS_CARRY=init is not None or not plan.single_pass, **flags,
        )
    LAUNCHES += 1
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
