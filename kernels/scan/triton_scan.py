"""Triton forward and backward kernels for the diagonal complex scan.

Complex tensors are read through ``torch.view_as_real`` as interleaved fp32 (real,
imag) pairs; strides are passed in complex elements, so every access loads or stores a
(real, imag) pair in one 64-bit access (a ``[..., 2]`` tile split with ``tl.split``), and
non-contiguous inputs need no copy. State and accumulation are fp32.

Two schedules, chosen by size (:func:`plan_scan`), each one kernel launch that reads
``b`` once and writes ``h`` once:

- **Single pass** (``_single_pass_kernel``): one program per (batch element, channel
  block) walks the whole sequence. Used when batch and channels alone give enough
  programs to fill a large GPU (``FILL_PROGRAMS``), and whenever ``chunk >= T``.
- **Chained scan with decoupled look-back** (``_lookback_kernel``), for more parallelism
  when B·N is small: one program per (time chunk, batch element, channel block), each
  chunk one register tile. A program publishes its chunk's aggregate, waits for its
  predecessors (in launch order, from an atomic ticket) to give its carry, then writes
  its states. The carry costs a few bytes per channel per chunk, and programs wait only
  on chunks that are already done in the common case: no separate carry pass.

Tiles of ``BLOCK_T`` steps are scanned in registers with ``tl.associative_scan`` over
the affine maps ``s -> mu*s + x`` (and, in the single pass, chained tile by tile).

The backward pass is the same scan run the other way over ``grad_h`` with
``conj(lam)`` (shifted one step when lam varies in time); its kernel also forms
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

MAX_CHUNK = 128  # time steps per look-back program: one register tile
MIN_CHUNK = 32
MIN_PROGRAMS = 1024  # enough to fill a large GPU several times over
# (batch, channel block) programs from which the single pass alone fills an H100/H200:
# about four resident programs of 4 warps per SM on 132 SMs.
FILL_PROGRAMS = 512
MAX_BLOCK_T = 32  # time steps per register tile
MAX_BLOCK_N = 16  # channels per program: a 16-channel row is one 128-byte line
# Every how many chunks the look-back publishes inclusive prefixes (tests raise it).
LOOKBACK_PREFIX_EVERY = 1


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


@triton.jit
def _emit_tile(
    ar, ai, xr, xi, sr, si, acc_r, acc_i, h0r, h0i,
    out_ptr, h_ptr, grad_lam_ptr, pid_b, t0, hi, T, N, offs_n, mask_n, s_hb, s_ht, s_hn,
    BLOCK_T: tl.constexpr, VARYING: tl.constexpr, ADJOINT: tl.constexpr,
    REVERSE: tl.constexpr, HAS_H0: tl.constexpr,
):
    """Writes the states of a scanned tile entered with state s: y = a*s + x.

    With ADJOINT (the backward pass: x = grad_h, out = grad_b) it also forms
    grad_b_t * conj(h_prev_t), where h_prev_t is the forward state at the step the
    backward scan visits next (h0 past the end): stored per element when lam varies in
    time, else added to the per-channel sums acc. Returns (y, acc).
    """
    yr = ar * sr[None, :] - ai * si[None, :] + xr
    yi = ar * si[None, :] + ai * sr[None, :] + xi
    t = t0 + tl.arange(0, BLOCK_T)[:, None]
    valid = (t < hi) & mask_n[None, :]
    o_off = (pid_b * T + t) * N + offs_n[None, :]
    _store_complex(out_ptr, o_off, yr, yi, valid)
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
    return yr, yi, acc_r, acc_i


@triton.jit(do_not_specialize=["T", "s_xb", "s_xt", "s_lb", "s_lt", "s_hb", "s_ht", "s_0b"])
def _single_pass_kernel(
    x_ptr, lam_ptr, out_ptr, h_ptr, h0_ptr, grad_lam_ptr,
    T, N,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_hb, s_ht, s_hn, s_0b, s_0n,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr,
):
    """One program per (batch element, channel block) scans all of T tile by tile.

    The forward starts from h0 (HAS_H0) or zero; the backward from zero, reading h0 for
    grad_lam at the boundary.
    """
    # int64 offsets: B*T*N*2 can exceed 2**31.
    pid_b = tl.program_id(0).to(tl.int64)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    lr = tl.zeros((BLOCK_N,), tl.float32)  # unused when lam varies
    li = tl.zeros((BLOCK_N,), tl.float32)
    if not VARYING:
        lr, li = _shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT)
    h0r = tl.zeros((BLOCK_N,), tl.float32)
    h0i = tl.zeros((BLOCK_N,), tl.float32)
    if HAS_H0:
        h0r, h0i = _load_complex(h0_ptr, pid_b * s_0b + offs_n * s_0n, mask_n)
    if ADJOINT:
        sr = tl.zeros((BLOCK_N,), tl.float32)
        si = tl.zeros((BLOCK_N,), tl.float32)
    else:
        sr, si = h0r, h0i
    acc_r = tl.zeros((BLOCK_N,), tl.float32)
    acc_i = tl.zeros((BLOCK_N,), tl.float32)
    n_tiles = tl.cdiv(T, BLOCK_T)
    start = pid_b * 0  # an int64 zero: time offsets in int64 too
    for j in range(0, n_tiles):
        t0 = _tile_start(start, j, n_tiles, BLOCK_T, REVERSE)
        ar, ai, xr, xi = _scan_tile(
            x_ptr, lam_ptr, lr, li, pid_b, t0, T, T, offs_n, mask_n,
            s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
            BLOCK_T, VARYING, ADJOINT, REVERSE,
        )
        yr, yi, acc_r, acc_i = _emit_tile(
            ar, ai, xr, xi, sr, si, acc_r, acc_i, h0r, h0i,
            out_ptr, h_ptr, grad_lam_ptr, pid_b, t0, T, T, N, offs_n, mask_n, s_hb, s_ht, s_hn,
            BLOCK_T, VARYING, ADJOINT, REVERSE, HAS_H0,
        )
        sr = _last_row(yr, BLOCK_T, REVERSE)
        si = _last_row(yi, BLOCK_T, REVERSE)
    if ADJOINT and not VARYING:
        _store_complex(grad_lam_ptr, pid_b * N + offs_n, acc_r, acc_i, mask_n)


# Chunk status in the look-back kernel's flags.
_PENDING = tl.constexpr(0)
_AGGREGATE = tl.constexpr(1)
_PREFIX = tl.constexpr(2)


@triton.jit(do_not_specialize=["T", "s_xb", "s_xt", "s_lb", "s_lt", "s_hb", "s_ht", "s_0b"])
def _lookback_kernel(
    x_ptr, lam_ptr, out_ptr, h_ptr, h0_ptr, grad_lam_ptr,
    status_ptr, aggregate_ptr, prefix_ptr,
    T, N, n_chunks, n_blocks,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_hb, s_ht, s_hn, s_0b, s_0n,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, LOG2_BLOCK_T: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr, PREFIX_EVERY: tl.constexpr,
):
    """A chained scan: one program per (chunk of BLOCK_T steps, batch element, channel
    block), each chunk held in registers, so b is read once.

    Programs take chunks in scan order from an atomic ticket (a program only ever waits
    for programs already running, so there is no deadlock). Each one scans its chunk from
    a zero state, publishes the chunk's aggregate (its end state; the product of lam too
    when lam varies), then looks back: the predecessors' aggregates compose until one
    publishes its inclusive prefix (the state at its end), which gives this chunk's carry.
    It publishes its own prefix and writes its states. Status slot per chunk: 0 pending,
    1 aggregate, 2 prefix, written with release and read with acquire semantics.
    PREFIX_EVERY > 1 withholds most prefixes, so that tests walk the aggregates the way
    a GPU does when predecessors lag (under the interpreter every predecessor is done).
    """
    n_seq = tl.num_programs(0) // n_chunks
    ticket = tl.atomic_add(status_ptr + n_seq * n_chunks, 1)  # the last slot counts tickets
    order = ticket // n_seq  # position of the chunk in scan order
    seq = ticket % n_seq
    pid_b = (seq // n_blocks).to(tl.int64)
    offs_n = (seq % n_blocks) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    if REVERSE:
        chunk = n_chunks - 1 - order
    else:
        chunk = order
    t0 = chunk.to(tl.int64) * BLOCK_T
    hi = tl.minimum(t0 + BLOCK_T, T)

    lr = tl.zeros((BLOCK_N,), tl.float32)  # unused when lam varies
    li = tl.zeros((BLOCK_N,), tl.float32)
    if not VARYING:
        lr, li = _shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT)
    ar, ai, xr, xi = _scan_tile(
        x_ptr, lam_ptr, lr, li, pid_b, t0, hi, T, offs_n, mask_n,
        s_xb, s_xt, s_xn, s_lb, s_lt, s_ln,
        BLOCK_T, VARYING, ADJOINT, REVERSE,
    )
    end_ar = _last_row(ar, BLOCK_T, REVERSE)
    end_ai = _last_row(ai, BLOCK_T, REVERSE)
    end_xr = _last_row(xr, BLOCK_T, REVERSE)
    end_xi = _last_row(xi, BLOCK_T, REVERSE)

    slot = seq * n_chunks + order
    c_off = (pid_b * n_chunks + order) * N + offs_n  # this chunk's aggregate and prefix
    if order > 0:
        _store_complex(aggregate_ptr, c_off * 2, end_xr, end_xi, mask_n)
        if VARYING:
            _store_complex(aggregate_ptr, c_off * 2 + 1, end_ar, end_ai, mask_n)
        tl.debug_barrier()  # every thread's stores before the flag
        tl.atomic_xchg(status_ptr + slot, _AGGREGATE, sem="release")

    # Look back. A full predecessor chunk's coefficient product is lam^BLOCK_T when lam
    # is shared (by squaring); an inclusive prefix P is the constant map s -> 0*s + P.
    pow_r, pow_i = lr, li
    for _ in tl.static_range(LOG2_BLOCK_T):
        pow_r, pow_i = pow_r * pow_r - pow_i * pow_i, 2 * pow_r * pow_i
    acc_ar = tl.full((BLOCK_N,), 1.0, tl.float32)
    acc_ai = tl.zeros((BLOCK_N,), tl.float32)
    acc_xr = tl.zeros((BLOCK_N,), tl.float32)
    acc_xi = tl.zeros((BLOCK_N,), tl.float32)
    pred = order - 1
    searching = pred >= 0
    while searching:
        status = tl.atomic_add(status_ptr + seq * n_chunks + pred, 0, sem="acquire")
        while status == _PENDING:
            status = tl.atomic_add(status_ptr + seq * n_chunks + pred, 0, sem="acquire")
        tl.debug_barrier()
        is_prefix = status == _PREFIX
        # (The status as a vector: the interpreter mistypes a vector & scalar mask.)
        prefix_n = (tl.zeros((BLOCK_N,), tl.int32) + status) == _PREFIX
        p_off = (pid_b * n_chunks + pred) * N + offs_n
        px, py = _load_complex(prefix_ptr, p_off, mask_n & prefix_n)
        gx, gy = _load_complex(aggregate_ptr, p_off * 2, mask_n & ~prefix_n)
        if VARYING:
            gr, gi = _load_complex(aggregate_ptr, p_off * 2 + 1, mask_n & ~prefix_n)
        else:
            gr, gi = pow_r, pow_i
        # acc <- acc after the predecessor's map (the prefix's map when there is one).
        mr = tl.where(prefix_n, 0.0, gr)
        mi = tl.where(prefix_n, 0.0, gi)
        mxr = tl.where(prefix_n, px, gx)
        mxi = tl.where(prefix_n, py, gy)
        acc_ar, acc_ai, acc_xr, acc_xi = _compose(mr, mi, mxr, mxi, acc_ar, acc_ai, acc_xr, acc_xi)
        searching = (pred > 0) & ~is_prefix
        pred -= 1

    # The carry: acc applied to the state before the first chunk (h0 in the forward).
    h0r = tl.zeros((BLOCK_N,), tl.float32)
    h0i = tl.zeros((BLOCK_N,), tl.float32)
    if HAS_H0:
        h0r, h0i = _load_complex(h0_ptr, pid_b * s_0b + offs_n * s_0n, mask_n)
    if ADJOINT:
        sr = acc_xr
        si = acc_xi
    else:
        sr = acc_ar * h0r - acc_ai * h0i + acc_xr
        si = acc_ar * h0i + acc_ai * h0r + acc_xi
    if (order < n_chunks - 1) & (order % PREFIX_EVERY == 0):
        _store_complex(prefix_ptr, c_off,
                       end_ar * sr - end_ai * si + end_xr, end_ar * si + end_ai * sr + end_xi,
                       mask_n)
        tl.debug_barrier()
        tl.atomic_xchg(status_ptr + slot, _PREFIX, sem="release")

    acc_r = tl.zeros((BLOCK_N,), tl.float32)
    acc_i = tl.zeros((BLOCK_N,), tl.float32)
    yr, yi, acc_r, acc_i = _emit_tile(
        ar, ai, xr, xi, sr, si, acc_r, acc_i, h0r, h0i,
        out_ptr, h_ptr, grad_lam_ptr, pid_b, t0, hi, T, N, offs_n, mask_n, s_hb, s_ht, s_hn,
        BLOCK_T, VARYING, ADJOINT, REVERSE, HAS_H0,
    )
    if ADJOINT and not VARYING:
        _store_complex(grad_lam_ptr, c_off, acc_r, acc_i, mask_n)


def _default_chunk(B: int, T: int, n_blocks: int) -> int:
    # The single pass (one chunk) where batch and channels fill the GPU; else the
    # look-back's longest chunk, halved while there are too few programs.
    if B * n_blocks >= FILL_PROGRAMS:
        return T
    chunk = MAX_CHUNK
    while chunk > MIN_CHUNK and B * n_blocks * triton.cdiv(T, chunk) < MIN_PROGRAMS:
        chunk //= 2
    return chunk


def plan_scan(B: int, T: int, N: int, chunk: int = 0) -> ScanPlan:
    """The launch plan of a ``(B, T, N)`` scan. ``chunk`` 0 picks the chunk by size; a chunk
    of at least T is the single pass; a shorter one is the look-back's, rounded down to
    a power of two no longer than ``MAX_CHUNK`` (a chunk is one register tile)."""
    block_n = min(MAX_BLOCK_N, triton.next_power_of_2(N))
    chunk = chunk or _default_chunk(B, T, triton.cdiv(N, block_n))
    if chunk >= T:
        block_t = min(MAX_BLOCK_T, triton.next_power_of_2(T))
        chunk = T
    else:
        chunk = block_t = min(MAX_CHUNK, 1 << (chunk.bit_length() - 1))
    # About 4 tile elements per thread: the (re, im) pairs of the four scan values then
    # stay well under 128 registers.
    num_warps = max(1, min(16, block_t * block_n // 128))
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
    """Runs the scan's kernel; with ``adjoint`` it is the backward scan (conj(lam),
    shifted coefficients for time-varying lam, fused grad_lam; ``init`` is then None and
    ``h0`` only enters grad_lam). Returns the states as an fp32 ``(B, T, N, 2)`` tensor
    and, with ``adjoint``, the raw grad_lam buffer."""
    global LAUNCHES
    B, T, N = x.shape
    varying = lam.dim() == 3
    plan = plan_scan(B, T, N, chunk)
    n_blocks = triton.cdiv(N, plan.block_n)

    lam_strides = lam.stride() if varying else (0, 0, lam.stride(0))
    f32 = dict(dtype=torch.float32, device=x.device)
    out = torch.empty((B, T, N, 2), **f32)
    start = h0 if adjoint else init  # the kernels read h0 from one argument
    start_r = torch.view_as_real(start) if start is not None else out
    start_strides = start.stride() if start is not None else (0, 0)
    h_r, h_strides = (torch.view_as_real(h), h.stride()) if adjoint else (out, (0, 0, 0))
    grad_lam = None
    if adjoint:
        partial = (B, T, N, 2) if varying else (B, plan.n_chunks, N, 2)
        grad_lam = torch.empty(partial, **f32)
    strides = (*x.stride(), *lam_strides, *h_strides, *start_strides)
    flags = dict(
        BLOCK_T=plan.block_t, BLOCK_N=plan.block_n, VARYING=varying, ADJOINT=adjoint,
        REVERSE=reverse, HAS_H0=start is not None, num_warps=plan.num_warps,
    )
    pointers = (torch.view_as_real(x), torch.view_as_real(lam), out, h_r, start_r,
                grad_lam if adjoint else out)

    # Triton launches on the current CUDA device, so make it the tensors' device.
    on_device = torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
    with on_device:
        if plan.single_pass:
            _single_pass_kernel[(B, n_blocks)](*pointers, T, N, *strides, **flags)
        else:
            n_programs = B * n_blocks * plan.n_chunks
            status = torch.zeros(n_programs + 1, dtype=torch.int32, device=x.device)
            # Aggregates: the end state, and the coefficient product when lam varies.
            aggregate = torch.empty((B, plan.n_chunks, N, 2, 2), **f32)
            prefix = torch.empty((B, plan.n_chunks, N, 2), **f32)
            _lookback_kernel[(n_programs,)](
                *pointers, status, aggregate, prefix,
                T, N, plan.n_chunks, n_blocks, *strides,
                LOG2_BLOCK_T=plan.block_t.bit_length() - 1, PREFIX_EVERY=LOOKBACK_PREFIX_EVERY,
                **flags,
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
