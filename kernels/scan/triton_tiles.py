"""The tile-level pieces of the scan's Triton kernels (:mod:`kernels.scan.triton_scan`).

A tile is BLOCK_T steps of BLOCK_N channels in registers. Complex values are loaded and
stored as (real, imag) pairs in one access each and computed in fp32; offsets count
complex elements and are formed in int64. A tile is scanned with
``tl.associative_scan`` over the affine maps ``s -> mu*s + x`` from a zero state; what
carries a state across tiles (the fold ``F = A*F + X`` and the powers of a shared lam)
is fp64 with explicit fused multiply-adds, so that every program computes it alike.
"""

import triton
import triton.language as tl

from kernels.scan.varlen import FIRST, LAST

# Bits of the varlen row tags (kernels.scan.varlen.row_tags), as the kernels see them.
FIRST_BIT = tl.constexpr(FIRST)
LAST_BIT = tl.constexpr(LAST)


@triton.jit
def compose(ar, ai, xr, xi, br, bi, yr, yi):
    # Affine map s -> a*s + x followed by s -> b*s + y is s -> (b*a)*s + (b*x + y).
    return (
        br * ar - bi * ai,
        br * ai + bi * ar,
        br * xr - bi * xi + yr,
        br * xi + bi * xr + yi,
    )


@triton.jit
def offsets(b, t, n, s_b, s_t, s_n):
    """Element offset b*s_b + t*s_t + n*s_n, every factor widened to int64 before the
    products (B*T*N*2 passes 2**31 at benchmark sizes)."""
    return b.to(tl.int64) * s_b + t.to(tl.int64) * s_t + n.to(tl.int64) * s_n


@triton.jit
def row_offsets(b, n, s_b, s_n):
    """Element offset b*s_b + n*s_n of a (batch or sequence, channel) vector, in int64."""
    return b.to(tl.int64) * s_b + n.to(tl.int64) * s_n


@triton.jit
def load_complex(ptr, off, mask, CACHE: tl.constexpr = ""):
    # off counts complex elements: each (real, imag) pair is one access, read as fp32.
    pairs = tl.expand_dims(off * 2, len(off.shape)) + tl.arange(0, 2)
    mask = tl.expand_dims(mask, len(mask.shape))
    return tl.split(tl.load(ptr + pairs, mask=mask, other=0.0, cache_modifier=CACHE)
                    .to(tl.float32))


@triton.jit
def load_complex64(ptr, off, mask):
    # fp64 pairs of the look-back's prefixes, read from L2 (another SM wrote them).
    pairs = tl.expand_dims(off * 2, len(off.shape)) + tl.arange(0, 2)
    mask = tl.expand_dims(mask, len(mask.shape))
    return tl.split(tl.load(ptr + pairs, mask=mask, other=0.0, cache_modifier=".cg"))


@triton.jit
def store_complex(ptr, off, re, im, mask):
    pairs = tl.expand_dims(off * 2, len(off.shape)) + tl.arange(0, 2)
    tl.store(ptr + pairs, tl.join(re, im).to(ptr.dtype.element_ty),
             mask=tl.expand_dims(mask, len(mask.shape)))


@triton.jit
def cmul64(ar, ai, br, bi):
    # Explicit fmas: the same rounding wherever the compiler inlines it.
    return tl.fma(ar, br, -(ai * bi)), tl.fma(ar, bi, ai * br)


@triton.jit
def fold(ar, ai, sr, si, xr, xi):
    """The fp64 step F = A*S + X that carries a state over a tile or chunk. Every
    program applies this one function to the same operands, which is what makes the
    look-back's result independent of its path."""
    return tl.fma(ar, sr, tl.fma(-ai, si, xr)), tl.fma(ar, si, tl.fma(ai, sr, xi))


@triton.jit
def pow2k64(lr, li, LOG2: tl.constexpr):
    """lam**(2**LOG2) in fp64 by squaring: a whole tile's coefficient product with a
    shared lam, rounded far below fp32's ulp, the same in every program."""
    pr = lr.to(tl.float64)
    pi = li.to(tl.float64)
    for _ in tl.static_range(LOG2):
        pr, pi = cmul64(pr, pi, pr, pi)
    return pr, pi


@triton.jit
def shared_lam(lam_ptr, offs_n, mask_n, s_ln, ADJOINT: tl.constexpr):
    # lam shared over batch and time: loaded once per program (conj for the backward).
    lr, li = load_complex(lam_ptr, offs_n * s_ln, mask_n)
    if ADJOINT:
        li = -li
    return lr, li


@triton.jit
def has_bit(tag, bit: tl.constexpr):
    return (tag >= 0) & ((tag & bit) != 0)


@triton.jit
def scan_tile(
    x_ptr, lam_ptr, h0_ptr, tags_ptr, lr, li, pid_b, t0, t_end, T, offs_n, mask_n,
    s_xb, s_xt, s_xn, s_lb, s_lt, s_ln, s_0b, s_0n,
    BLOCK_T: tl.constexpr, VARYING: tl.constexpr, ADJOINT: tl.constexpr,
    REVERSE: tl.constexpr, HAS_H0: tl.constexpr, VARLEN: tl.constexpr,
):
    """Scan of the steps t0 .. t0+BLOCK_T-1 (those < t_end) from a zero state.

    Returns (product of coefficients, state) at every row, both accumulated in scan
    order, the rows' varlen tags and whether any row resets the state; rows past t_end
    are identity maps so they leave the scan unchanged. ADJOINT uses the backward scan's
    coefficients conj(lam), shifted when lam varies in time; (lr, li) is the shared lam
    when it does not vary.
    """
    t = t0 + tl.arange(0, BLOCK_T)[:, None]
    in_time = t < t_end
    valid = in_time & mask_n[None, :]
    xr, xi = load_complex(x_ptr, offsets(pid_b, t, offs_n[None, :], s_xb, s_xt, s_xn), valid)
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
        l_off = offsets(pid_b, t_lam, offs_n[None, :], s_lb, s_lt, s_ln)
        mr, mi = load_complex(lam_ptr, l_off, lam_ok)
        if ADJOINT:
            mi = -mi
    else:
        rows = tl.zeros((BLOCK_T, 1), tl.float32)
        mr = lr[None, :] + rows
        mi = li[None, :] + rows
    tag = tl.full((BLOCK_T, 1), -1, tl.int32)
    resets = False
    if VARLEN:
        tag = tl.load(tags_ptr + t, mask=in_time, other=-1)
        # The forward scan restarts at each sequence's first row; the backward scan,
        # which runs the other way, at its last row.
        reset = has_bit(tag, LAST_BIT if ADJOINT else FIRST_BIT)
        resets = tl.max(reset.to(tl.int32), axis=None) > 0
        if HAS_H0 and not ADJOINT:
            # h_t = lam_t h0_s + b_t at the first row of sequence s.
            gr, gi = load_complex(h0_ptr, row_offsets(tag >> 2, offs_n[None, :], s_0b, s_0n),
                                   reset & mask_n[None, :])
            xr += mr * gr - mi * gi
            xi += mr * gi + mi * gr
        mr = tl.where(reset, 0.0, mr)
        mi = tl.where(reset, 0.0, mi)
    mr = tl.where(in_time, mr, 1.0)
    mi = tl.where(in_time, mi, 0.0)
    ar, ai, yr, yi = tl.associative_scan((mr, mi, xr, xi), 0, compose, reverse=REVERSE)
    return ar, ai, yr, yi, tag, resets


@triton.jit
def tile_start(lo, j, n_tiles, BLOCK_T: tl.constexpr, REVERSE: tl.constexpr):
    # The j-th tile in scan order: chunks are walked from their end in a reverse scan.
    if REVERSE:
        return lo + (n_tiles - 1 - j) * BLOCK_T
    return lo + j * BLOCK_T


@triton.jit
def last_row(v, BLOCK_T: tl.constexpr, REVERSE: tl.constexpr):
    # The row reached last in scan order: the bottom row, or the top one in reverse.
    rows = tl.arange(0, BLOCK_T)[:, None]
    last = 0 if REVERSE else BLOCK_T - 1
    return tl.sum(tl.where(rows == last, v, 0.0), axis=0)


@triton.jit
def tile_factor(ar, ai, n_rows, resets, g_full_r, g_full_i, BLOCK_T: tl.constexpr,
                 VARYING: tl.constexpr, REVERSE: tl.constexpr, VARLEN: tl.constexpr):
    """A tile's coefficient product in fp64. With a shared lam, a whole tile where no
    sequence restarts has g_full = lam**BLOCK_T; other tiles take their scanned fp32
    product: lam varies, or a restart makes it zero, or it is the scan's one partial
    tile (its rounding then enters once, not once per tile)."""
    gr = g_full_r
    gi = g_full_i
    if VARYING:
        gr = last_row(ar, BLOCK_T, REVERSE).to(tl.float64)
        gi = last_row(ai, BLOCK_T, REVERSE).to(tl.float64)
    else:
        scanned = n_rows != BLOCK_T
        if VARLEN:
            scanned = scanned | resets
        if scanned:
            gr = last_row(ar, BLOCK_T, REVERSE).to(tl.float64)
            gi = last_row(ai, BLOCK_T, REVERSE).to(tl.float64)
    return gr, gi


@triton.jit
def emit_tile(
    ar, ai, xr, xi, sr, si, acc_r, acc_i, h0r, h0i, tag,
    out_ptr, h_ptr, h0_ptr, grad_lam_ptr, pid_b, t0, hi, T, offs_n, mask_n,
    s_ob, s_ot, s_on, s_hb, s_ht, s_hn, s_0b, s_0n,
    BLOCK_T: tl.constexpr, VARYING: tl.constexpr, ADJOINT: tl.constexpr,
    REVERSE: tl.constexpr, HAS_H0: tl.constexpr, VARLEN: tl.constexpr,
):
    """Writes the states of a scanned tile entered with state s: y = a*s + x.

    With ADJOINT (the backward pass: x = grad_h, out = grad_b) it also forms
    grad_b_t * conj(h_prev_t), where h_prev_t is the forward state at the step the
    backward scan visits next (h0, or zero, before a sequence's first step): stored per
    element when lam varies in time, else added to the per-channel fp64 sums acc.
    Returns (acc_r, acc_i).
    """
    yr = ar * sr[None, :] - ai * si[None, :] + xr
    yi = ar * si[None, :] + ai * sr[None, :] + xi
    t = t0 + tl.arange(0, BLOCK_T)[:, None]
    valid = (t < hi) & mask_n[None, :]
    o_off = offsets(pid_b, t, offs_n[None, :], s_ob, s_ot, s_on)
    store_complex(out_ptr, o_off, yr, yi, valid)
    if ADJOINT:
        if REVERSE:
            t_prev = t - 1
        else:
            t_prev = t + 1
        inside = (t_prev >= 0) & (t_prev < T)
        if VARLEN:
            first = has_bit(tag, FIRST_BIT)
            inside = inside & ~first
        p_off = offsets(pid_b, t_prev, offs_n[None, :], s_hb, s_ht, s_hn)
        pr, pi = load_complex(h_ptr, p_off, valid & inside)
        if HAS_H0:
            if VARLEN:
                g_off = row_offsets(tag >> 2, offs_n[None, :], s_0b, s_0n)
                gr, gi = load_complex(h0_ptr, g_off, valid & first)
                pr += gr
                pi += gi
            else:
                pr = tl.where(inside, pr, h0r[None, :])
                pi = tl.where(inside, pi, h0i[None, :])
        # grad_b * conj(h_prev)
        gr = yr * pr + yi * pi
        gi = yi * pr - yr * pi
        if VARYING:
            store_complex(grad_lam_ptr, o_off, gr, gi, valid)
        else:
            acc_r += tl.sum(tl.where(valid, gr, 0.0), axis=0).to(tl.float64)
            acc_i += tl.sum(tl.where(valid, gi, 0.0), axis=0).to(tl.float64)
    return acc_r, acc_i


@triton.jit
def start_state(h0_ptr, pid_b, offs_n, mask_n, s_0b, s_0n, BLOCK_N: tl.constexpr,
                 HAS_H0: tl.constexpr):
    # h0 of this batch element (zero without one), fp32.
    h0r = tl.zeros((BLOCK_N,), tl.float32)
    h0i = tl.zeros((BLOCK_N,), tl.float32)
    if HAS_H0:
        h0r, h0i = load_complex(h0_ptr, row_offsets(pid_b, offs_n, s_0b, s_0n), mask_n)
    return h0r, h0i
