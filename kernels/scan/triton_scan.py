"""Triton forward and backward kernels for the diagonal complex scan.

Complex tensors are read as interleaved (real, imag) pairs (``torch.view_as_real``, or
the caller's ``(..., 2)`` pairs); strides are passed in complex elements, so every access
moves a pair in one access (a ``[..., 2]`` tile split with ``tl.split``): 64 bits for
fp32 pairs, 32 for bf16/fp16. Loads convert to fp32, stores to the output's dtype. Every
offset is formed in int64. Inputs are read where they lie, strided or not: a channel
stride above 1 costs whole 32-byte sectors per pair, which the static report's sector
count shows. The tile-level pieces are in :mod:`kernels.scan.triton_tiles`.

Two schedules, chosen by size (:func:`plan_scan`), each one kernel launch that reads
``b`` once and writes ``h`` once:

- **Single pass** (``_single_pass_kernel``): one program per (batch element, channel
  block) walks the whole sequence tile by tile, the next tiles' loads in flight while one
  is scanned (``tl.range(num_stages=...)``: asynchronous copies into shared memory,
  as many stages as keep ``IN_FLIGHT_BYTES`` loading).
  Used when batch and channels alone give enough programs to fill a large GPU
  (``FILL_PROGRAMS``), and whenever ``chunk >= T``.
- **Chained scan with decoupled look-back** (``_lookback_kernel``), for more parallelism
  when B·N is small: one program per (time chunk, batch element, channel block), each
  chunk one register tile. A program publishes its chunk's aggregate, looks back over a
  window of up to ``LOOKBACK_WINDOW`` predecessors (as CUB does) for the nearest one
  that has published its inclusive prefix, then publishes its own prefix and writes its
  states. Programs take chunks in scan order from an atomic ticket, so they wait only on
  programs that are already running: no deadlock, no separate carry pass.

Precision. Tiles of ``BLOCK_T`` steps are scanned in fp32 registers with
``tl.associative_scan`` over the affine maps ``s -> mu*s + x``. What crosses a tile or
chunk boundary is fp64: the carried state, and the tile's coefficient product (for a
whole tile of a shared lam its fp64 power ``lam**BLOCK_T``, never the fp32 tile product,
whose rounding is the same in every tile and would add up coherently over T). So long
sequences are as accurate as a sequential fp32 loop, and the error does not grow with
T/BLOCK_T.

Reproducibility. The look-back's result does not depend on which predecessors had
published what: the carry into chunk k is always the sequential fp64 fold
``F_k = A_k F_{k-1} + X_k`` of the chunk aggregates (A, X), started from the nearest
published prefix (itself such a fold) and applied by the same function
(``triton_tiles.fold``) in every program. Two runs on one input are bitwise identical.

Variable-length batches (``cu_seqlens``, :mod:`kernels.scan.varlen`) run on the packed
sequence with a per-row tag: the coefficient is zero at each sequence's first row (its
last row in the backward scan) and ``lam h0_s`` joins ``b`` there.

The backward pass is the same scan run the other way over ``grad_h`` with
``conj(lam)`` (shifted one step when lam varies in time); its kernel also forms
``grad_lam_t = grad_b_t * conj(h_prev_t)``: per element when lam varies in time, else
as per-program partial sums (fp64 in the program) that a torch ``sum`` reduces (no
atomics). Bytes per element: :mod:`kernels.scan.traffic`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from kernels.scan import dtypes
from kernels.scan.triton_tiles import (
    emit_tile,
    fold,
    last_row,
    load_complex,
    load_complex64,
    pow2k64,
    scan_tile,
    shared_lam,
    start_state,
    store_complex,
    tile_factor,
    tile_start,
)
from kernels.scan.varlen import first_rows, row_tags

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
# Bytes a single-pass program keeps loading while it scans a tile: about 32 KB per SM at
# the four programs per SM of FILL_PROGRAMS (HBM3e wants >= 25 KB in flight per SM).
IN_FLIGHT_BYTES = 8192
MAX_STAGES = 5
LOOKBACK_WINDOW = 32  # predecessors whose status one look-back step reads at once
# A mask over chunk positions (order % 32) whose inclusive prefix is withheld, so that
# successors must fold aggregates (tests force the look-back's paths with it; 0: none).
LOOKBACK_WITHHOLD = 0


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

    def stages(self, load_bytes: int) -> int:
        """Software pipeline stages of a launch that loads ``load_bytes`` per element: the
        single pass keeps IN_FLIGHT_BYTES of tiles loading ahead (each stage one tile in
        shared memory); a look-back program is one tile, loaded at once."""
        if not self.single_pass:
            return 1
        tile = self.block_t * self.block_n * load_bytes
        return min(MAX_STAGES, 1 + triton.cdiv(IN_FLIGHT_BYTES, tile))


@triton.jit(do_not_specialize=["T", "s_xb", "s_xt", "s_lb", "s_lt", "s_ob", "s_hb", "s_ht",
                               "s_0b"])
def _single_pass_kernel(
    x_ptr, lam_ptr, out_ptr, h_ptr, h0_ptr, grad_lam_ptr, tags_ptr,
    T, N,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_ob, s_ot, s_on, s_hb, s_ht, s_hn, s_0b, s_0n,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, LOG2_BLOCK_T: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr, VARLEN: tl.constexpr, NUM_STAGES: tl.constexpr,
):
    """One program per (batch element, channel block) scans all of T tile by tile.

    The forward starts from h0 (HAS_H0) or zero; the backward from zero, reading h0 for
    grad_lam at the boundary. The state between tiles is fp64.
    """
    pid_b = tl.program_id(0).to(tl.int64)
    offs_n = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    lr = tl.zeros((BLOCK_N,), tl.float32)  # unused when lam varies
    li = tl.zeros((BLOCK_N,), tl.float32)
    g_full_r = tl.zeros((BLOCK_N,), tl.float64)
    g_full_i = tl.zeros((BLOCK_N,), tl.float64)
    if not VARYING:
        lr, li = shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT)
        g_full_r, g_full_i = pow2k64(lr, li, LOG2_BLOCK_T)
    h0r, h0i = start_state(h0_ptr, pid_b, offs_n, mask_n, s_0b, s_0n, BLOCK_N,
                            HAS_H0 and not VARLEN)
    cr = tl.zeros((BLOCK_N,), tl.float64)
    ci = tl.zeros((BLOCK_N,), tl.float64)
    if not ADJOINT:
        cr = h0r.to(tl.float64)
        ci = h0i.to(tl.float64)
    acc_r = tl.zeros((BLOCK_N,), tl.float64)
    acc_i = tl.zeros((BLOCK_N,), tl.float64)
    n_tiles = tl.cdiv(T, BLOCK_T)
    start = pid_b * 0  # an int64 zero: time offsets in int64 too
    for j in tl.range(0, n_tiles, num_stages=NUM_STAGES):
        t0 = tile_start(start, j, n_tiles, BLOCK_T, REVERSE)
        ar, ai, xr, xi, tag, resets = scan_tile(
            x_ptr, lam_ptr, h0_ptr, tags_ptr, lr, li, pid_b, t0, T, T, offs_n, mask_n,
            s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_0b, s_0n,
            BLOCK_T, VARYING, ADJOINT, REVERSE, HAS_H0, VARLEN,
        )
        acc_r, acc_i = emit_tile(
            ar, ai, xr, xi, cr.to(tl.float32), ci.to(tl.float32), acc_r, acc_i, h0r, h0i, tag,
            out_ptr, h_ptr, h0_ptr, grad_lam_ptr, pid_b, t0, T, T, offs_n, mask_n,
            s_ob, s_ot, s_on, s_hb, s_ht, s_hn, s_0b, s_0n,
            BLOCK_T, VARYING, ADJOINT, REVERSE, HAS_H0, VARLEN,
        )
        gr, gi = tile_factor(ar, ai, tl.minimum(T - t0, BLOCK_T), resets, g_full_r, g_full_i,
                              BLOCK_T, VARYING, REVERSE, VARLEN)
        cr, ci = fold(gr, gi, cr, ci, last_row(xr, BLOCK_T, REVERSE).to(tl.float64),
                       last_row(xi, BLOCK_T, REVERSE).to(tl.float64))
    if ADJOINT and not VARYING:
        store_complex(grad_lam_ptr, pid_b * N + offs_n, acc_r, acc_i, mask_n)


# Chunk status in the look-back kernel's flags.
_PENDING = tl.constexpr(0)
_AGGREGATE = tl.constexpr(1)
_PREFIX = tl.constexpr(2)


@triton.jit
def _nearest_prefix(status_row, order, WINDOW: tl.constexpr):
    """The nearest predecessor of chunk ``order`` that has published its inclusive prefix
    while every chunk after it has published its aggregate. Reads the statuses of WINDOW
    predecessors at once (acquire), waits only while the nearest chunk that is not an
    aggregate is still pending, and moves the window back past WINDOW aggregates."""
    k = tl.arange(0, WINDOW)
    base = order - 1
    found = base * 0 - 1
    while found < 0:
        idx = base - k
        valid = idx >= 0
        status = tl.atomic_add(status_row + idx, 0, mask=valid, sem="acquire")
        not_aggregate = valid & (status != _AGGREGATE)
        nearest = tl.min(tl.where(not_aggregate, k, WINDOW), axis=0)
        if nearest < WINDOW:
            if tl.sum(tl.where(k == nearest, status, 0), axis=0) == _PREFIX:
                found = base - nearest
        else:
            base -= WINDOW
    tl.debug_barrier()  # every thread's reads of the chunk data after the acquire
    return found


@triton.jit(do_not_specialize=["T", "s_xb", "s_xt", "s_lb", "s_lt", "s_ob", "s_hb", "s_ht",
                               "s_0b"])
def _lookback_kernel(
    x_ptr, lam_ptr, out_ptr, h_ptr, h0_ptr, grad_lam_ptr, tags_ptr,
    status_ptr, agg_x_ptr, agg_a_ptr, prefix_ptr,
    T, N, n_chunks, n_blocks,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_ob, s_ot, s_on, s_hb, s_ht, s_hn, s_0b, s_0n,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, LOG2_BLOCK_T: tl.constexpr,
    VARYING: tl.constexpr, ADJOINT: tl.constexpr, REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr, VARLEN: tl.constexpr, WINDOW: tl.constexpr,
    WITHHOLD: tl.constexpr,
):
    """A chained scan: one program per (chunk of BLOCK_T steps, batch element, channel
    block), each chunk held in registers, so b is read once.

    Programs take chunks in scan order from an atomic ticket (a program only ever waits
    for programs already running, so there is no deadlock). Each one scans its chunk
    from a zero state and publishes its aggregate: the end state X (fp32) and, when lam
    varies or sequences restart, the coefficient product A (fp64; else every whole chunk's
    A is lam**BLOCK_T, which each program forms itself). It looks back to the nearest
    published prefix F_j (fp64) and folds the aggregates after it in order,
    F <- A_i F + X_i, which gives its carry; then it publishes its own prefix and writes
    its states. Status slot per chunk: 0 pending, 1 aggregate, 2 prefix, written with
    release and read with acquire semantics. WITHHOLD (tests) keeps some prefixes back so
    that the folds run the way a GPU runs them when predecessors lag.
    """
    n_seq = tl.num_programs(0) // n_chunks
    ticket = tl.atomic_add(status_ptr + n_seq.to(tl.int64) * n_chunks, 1)  # the last slot
    order = (ticket // n_seq).to(tl.int64)  # position of the chunk in scan order
    seq = (ticket % n_seq).to(tl.int64)
    pid_b = seq // n_blocks
    offs_n = (seq % n_blocks) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    if REVERSE:
        chunk = n_chunks - 1 - order
    else:
        chunk = order
    t0 = chunk * BLOCK_T
    hi = tl.minimum(t0 + BLOCK_T, T)

    lr = tl.zeros((BLOCK_N,), tl.float32)  # unused when lam varies
    li = tl.zeros((BLOCK_N,), tl.float32)
    if not VARYING:
        lr, li = shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT)
    ar, ai, xr, xi, tag, resets = scan_tile(
        x_ptr, lam_ptr, h0_ptr, tags_ptr, lr, li, pid_b, t0, hi, T, offs_n, mask_n,
        s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_0b, s_0n,
        BLOCK_T, VARYING, ADJOINT, REVERSE, HAS_H0, VARLEN,
    )
    end_xr = last_row(xr, BLOCK_T, REVERSE)
    end_xi = last_row(xi, BLOCK_T, REVERSE)
    zero64 = tl.zeros((BLOCK_N,), tl.float64)
    # A whole chunk's lam**BLOCK_T: every program forms it alike, so the folds below
    # use exactly the factor the chunk that published an aggregate used itself.
    g_r = zero64
    g_i = zero64
    if not VARYING:
        g_r, g_i = pow2k64(lr, li, LOG2_BLOCK_T)
    own_ar, own_ai = tile_factor(ar, ai, hi - t0, resets, g_r, g_i, BLOCK_T, VARYING, REVERSE,
                                  VARLEN)
    PUBLISH_A: tl.constexpr = VARYING or VARLEN

    status_row = status_ptr + seq * n_chunks
    c_off = (pid_b * n_chunks + order) * N + offs_n  # this chunk's aggregate and prefix
    has_successor = order < n_chunks - 1
    if (order > 0) & has_successor:
        store_complex(agg_x_ptr, c_off, end_xr, end_xi, mask_n)
        if PUBLISH_A:
            store_complex(agg_a_ptr, c_off, own_ar, own_ai, mask_n)
        tl.debug_barrier()  # every thread's stores before the flag
        tl.atomic_xchg(status_row + order, _AGGREGATE, sem="release")

    # The carry into this chunk, fp64: h0 (or zero) before the first chunk.
    h0r, h0i = start_state(h0_ptr, pid_b, offs_n, mask_n, s_0b, s_0n, BLOCK_N,
                            HAS_H0 and not VARLEN)
    cr = zero64
    ci = zero64
    if not ADJOINT:
        cr = h0r.to(tl.float64)
        ci = h0i.to(tl.float64)
    if order > 0:
        j = _nearest_prefix(status_row, order, WINDOW)
        cr, ci = load_complex64(prefix_ptr, (pid_b * n_chunks + j) * N + offs_n, mask_n)
        # Every chunk folded over here is whole (only the first or the last chunk in scan
        # order can be partial) and restarts no sequence unless its A was published, so
        # with a shared lam its product is g = lam**BLOCK_T.
        for i in range(j + 1, order):
            i_off = (pid_b * n_chunks + i) * N + offs_n
            x_r, x_i = load_complex(agg_x_ptr, i_off, mask_n, ".cg")
            if PUBLISH_A:
                g_r, g_i = load_complex64(agg_a_ptr, i_off, mask_n)
            cr, ci = fold(g_r, g_i, cr, ci, x_r.to(tl.float64), x_i.to(tl.float64))

    publish = has_successor
    if WITHHOLD != 0:
        withheld = ((order * 0 + WITHHOLD) >> (order % 32)) & 1
        publish = publish & ((order == 0) | (withheld == 0))
    if publish:
        pr, pi = fold(own_ar, own_ai, cr, ci, end_xr.to(tl.float64), end_xi.to(tl.float64))
        store_complex(prefix_ptr, c_off, pr, pi, mask_n)
        tl.debug_barrier()
        tl.atomic_xchg(status_row + order, _PREFIX, sem="release")

    acc_r = zero64
    acc_i = zero64
    acc_r, acc_i = emit_tile(
        ar, ai, xr, xi, cr.to(tl.float32), ci.to(tl.float32), acc_r, acc_i, h0r, h0i, tag,
        out_ptr, h_ptr, h0_ptr, grad_lam_ptr, pid_b, t0, hi, T, offs_n, mask_n,
        s_ob, s_ot, s_on, s_hb, s_ht, s_hn, s_0b, s_0n,
        BLOCK_T, VARYING, ADJOINT, REVERSE, HAS_H0, VARLEN,
    )
    if ADJOINT and not VARYING:
        store_complex(grad_lam_ptr, (pid_b * n_chunks + chunk) * N + offs_n, acc_r, acc_i,
                       mask_n)


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


def _pairs(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``x`` as real (real, imag) pairs with the parts adjacent, and its strides counted
    in complex elements (a copy only where the parts are not adjacent)."""
    if x.is_complex():
        x = torch.view_as_real(x.resolve_conj().resolve_neg())
    if x.stride(-1) != 1 or any(s % 2 for s in x.stride()[:-1]):
        x = x.contiguous()
    return x, tuple(s // 2 for s in x.stride()[:-1])


def _scan(
    lam: torch.Tensor,
    x: torch.Tensor,
    *,
    reverse: bool,
    adjoint: bool,
    chunk: int,
    out_dtype: torch.dtype,
    init: torch.Tensor | None = None,
    h: torch.Tensor | None = None,
    h0: torch.Tensor | None = None,
    tags: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Runs the scan's kernel; with ``adjoint`` it is the backward scan (conj(lam),
    shifted coefficients for time-varying lam, fused grad_lam; ``init`` is then None and
    ``h0`` only enters grad_lam). ``tags`` (:func:`kernels.scan.varlen.row_tags`) marks
    packed sequences. Returns the states as ``(B, T, N, 2)`` pairs of ``out_dtype``'s
    part dtype and, with ``adjoint``, the raw fp32 grad_lam buffer."""
    global LAUNCHES
    B, T, N = dtypes.shape_of(x)
    varying = lam.dim() == 3
    plan = plan_scan(B, T, N, chunk)
    n_blocks = triton.cdiv(N, plan.block_n)

    x_r, x_strides = _pairs(x)
    lam_r, lam_strides = _pairs(lam)
    lam_strides = lam_strides if varying else (0, 0, lam_strides[0])
    out = torch.empty((B, T, N, 2), dtype=dtypes.component_dtype(out_dtype), device=x.device)
    _, out_strides = _pairs(out)
    start = h0 if adjoint else init  # the kernels read h0 from one argument
    start_r, start_strides = _pairs(start) if start is not None else (out, (0, 0))
    h_r, h_strides = _pairs(h) if adjoint else (out, (0, 0, 0))
    f32 = dict(dtype=torch.float32, device=x.device)
    grad_lam = None
    if adjoint:
        partial = (B, T, N, 2) if varying else (B, plan.n_chunks, N, 2)
        grad_lam = torch.empty(partial, **f32)
    strides = (*x_strides, *lam_strides, *out_strides, *h_strides, *start_strides)
    # Bytes per element each tile loads: x, and lam when it varies, h for grad_lam.
    load_bytes = x_r.element_size() * 2 + (lam_r.element_size() * 2 if varying else 0) + (
        h_r.element_size() * 2 if adjoint else 0)
    stages = plan.stages(load_bytes)
    flags = dict(
        BLOCK_T=plan.block_t, BLOCK_N=plan.block_n, LOG2_BLOCK_T=plan.block_t.bit_length() - 1,
        VARYING=varying, ADJOINT=adjoint, REVERSE=reverse, HAS_H0=start is not None,
        VARLEN=tags is not None, num_warps=plan.num_warps, num_stages=stages,
    )
    pointers = (x_r, lam_r, out, h_r, start_r, grad_lam if adjoint else out,
                tags if tags is not None else out)

    # Triton launches on the current CUDA device, so make it the tensors' device.
    on_device = torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
    with on_device:
        if plan.single_pass:
            _single_pass_kernel[(B, n_blocks)](*pointers, T, N, *strides, NUM_STAGES=stages,
                                               **flags)
        else:
            n_programs = B * n_blocks * plan.n_chunks
            status = torch.zeros(n_programs + 1, dtype=torch.int32, device=x.device)
            agg_x = torch.empty((B, plan.n_chunks, N, 2), **f32)
            f64 = dict(dtype=torch.float64, device=x.device)
            agg_a = torch.empty((B, plan.n_chunks, N, 2) if varying or tags is not None
                                else (1,), **f64)
            prefix = torch.empty((B, plan.n_chunks, N, 2), **f64)
            _lookback_kernel[(n_programs,)](
                *pointers, status, agg_x, agg_a, prefix,
                T, N, plan.n_chunks, n_blocks, *strides,
                WINDOW=LOOKBACK_WINDOW, WITHHOLD=LOOKBACK_WITHHOLD, **flags,
            )
    LAUNCHES += 1
    return out, grad_lam


def _as_form(pairs: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.view_as_complex(pairs) if dtype.is_complex else pairs


def triton_scan_forward(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool,
    chunk: int = 0,
    out_dtype: torch.dtype | None = None,
    cu_seqlens: torch.Tensor | None = None,
) -> torch.Tensor:
    """``h`` stored as ``out_dtype`` (default b's dtype); b in any form of
    :mod:`kernels.scan.dtypes`, lam and h0 complex64."""
    out_dtype = out_dtype or b.dtype
    tags = row_tags(cu_seqlens, dtypes.shape_of(b)[1], reverse) if cu_seqlens is not None else None
    out, _ = _scan(lam, b, init=h0, reverse=reverse, adjoint=False, chunk=chunk,
                   out_dtype=out_dtype, tags=tags)
    return _as_form(out, out_dtype)


def triton_scan_backward(
    lam: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    grad_h: torch.Tensor,
    reverse: bool,
    chunk: int = 0,
    b_dtype: torch.dtype | None = None,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(grad_lam, grad_b, grad_h0)``, grad_b stored as ``b_dtype`` (default h's dtype);
    see :func:`kernels.scan.reference.chunked_scan_backward`."""
    b_dtype = b_dtype or h.dtype
    T = dtypes.shape_of(h)[1]
    tags = row_tags(cu_seqlens, T, reverse) if cu_seqlens is not None else None
    grad_b, grad_lam = _scan(
        lam, grad_h, reverse=not reverse, adjoint=True, chunk=chunk, out_dtype=b_dtype,
        h=h, h0=h0, tags=tags,
    )
    if lam.dim() == 1:
        grad_lam = grad_lam.sum((0, 1))
    grad_lam = torch.view_as_complex(grad_lam).to(lam.dtype)
    # grad_h0 = conj(lam_first) * grad_b_first, per sequence (batch element, or packed).
    adjoint_b = torch.view_as_complex(grad_b.to(torch.float32))
    if cu_seqlens is not None:
        first, nonempty = first_rows(cu_seqlens, reverse)
        lam_first = lam[0, first] if lam.dim() == 3 else lam
        grad_h0 = lam_first.conj() * adjoint_b[0, first] * nonempty[:, None]
    else:
        first = T - 1 if reverse else 0
        lam_first = lam[:, first] if lam.dim() == 3 else lam
        grad_h0 = lam_first.conj() * adjoint_b[:, first]
    return grad_lam, _as_form(grad_b, b_dtype), grad_h0.to(lam.dtype)
