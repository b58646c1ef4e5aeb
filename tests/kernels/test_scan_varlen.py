"""Packed variable-length batches: ``diag_scan(..., cu_seqlens=...)`` with the
flash-attention convention, against a loop over the sequences, forward and backward, on
every backend and both Triton schedules, on awkward lengths (1, 2, 127, 4097: the long
one in the slow test) with an empty sequence among them."""

import pytest
import torch
from test_scan import (  # noqa: F401
    FP32_RTOL,
    FP32_RTOL_LONG,
    TRITON_DEVICE,
    _vectorized_interpreter_scans,
    on_device,
    rel_err,
)

from kernels.scan import diag_scan
from kernels.scan.reference import sequential_scan
from kernels.scan.varlen import FIRST, LAST, row_tags

C64, C128 = torch.complex64, torch.complex128


def packed_inputs(lengths, N, *, varying):
    T = sum(lengths)
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    shape = (1, T, N) if varying else (N,)
    lam = torch.polar(torch.empty(shape, dtype=torch.float64).uniform_(0.95, 1.0),
                      torch.rand(shape, dtype=torch.float64) * 6.28).to(C64)
    b = torch.randn(1, T, N, dtype=C64)
    h0 = torch.randn(len(lengths), N, dtype=C64)
    return lam, b, h0, cu_seqlens


def per_sequence(lam, b, h0, cu_seqlens, reverse):
    """The oracle: each sequence scanned on its own from its h0 (complex128, autograd)."""
    bounds = cu_seqlens.tolist()
    pieces = [sequential_scan(lam if lam.dim() == 1 else lam[:, lo:hi], b[:, lo:hi],
                              h0[s:s + 1], reverse)
              for s, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)) if hi > lo]
    return torch.cat(pieces, dim=1)


def grads(scan, lam, b, h0, grad, dtype):
    leaves = [x.to(dtype).requires_grad_() for x in (lam, b, h0)]
    h = scan(*leaves)
    return [h.detach(), *torch.autograd.grad(h, leaves, grad.to(dtype))]


def check_packed(backend, lengths, N, *, varying, reverse, chunk, rtol):
    lam, b, h0, cu_seqlens = packed_inputs(lengths, N, varying=varying)
    grad = torch.randn(b.shape, dtype=C64)
    device = TRITON_DEVICE if backend == "triton" else b.device
    got = grads(lambda *x: diag_scan(*x, reverse=reverse, backend=backend, chunk=chunk,
                                     cu_seqlens=cu_seqlens.to(device)),
                *on_device(device, lam, b, h0, grad), C64)
    got = [g.cpu() for g in got]
    want = grads(lambda *x: per_sequence(*x, cu_seqlens, reverse), lam, b, h0, grad, C128)
    for name, g, w in zip(("h", "grad_lam", "grad_b", "grad_h0"), got, want, strict=True):
        assert g.shape == w.shape, name
        assert rel_err(g, w) <= rtol, f"{name}: {rel_err(g, w):.2e} > {rtol}"
    empty = [s for s, n in enumerate(lengths) if n == 0]
    assert torch.all(got[3][empty] == 0)  # an empty sequence's h0 is never used


AWKWARD = (1, 2, 0, 127, 33)


@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("backend, chunk", [("triton", 32), ("triton", 1000), ("chunked", 8),
                                            ("sequential", None)],
                         ids=["triton_lookback", "triton_single_pass", "chunked", "sequential"])
def test_packed_sequences_match_a_loop_over_them(backend, chunk, varying, reverse):
    check_packed(backend, AWKWARD, 3, varying=varying, reverse=reverse, chunk=chunk,
                 rtol=FP32_RTOL)


@pytest.mark.slow
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_packed_sequences_with_a_long_one(reverse):
    check_packed("triton", (1, 2, 127, 4097), 2, varying=False, reverse=reverse, chunk=128,
                 rtol=FP32_RTOL_LONG)


def test_row_tags_mark_first_and_last_rows_in_scan_order():
    cu = torch.tensor([0, 1, 1, 4])  # lengths 1, 0, 3
    assert row_tags(cu, 4, reverse=False).tolist() == [
        0 << 2 | FIRST | LAST, 2 << 2 | FIRST, -1, 2 << 2 | LAST]
    assert row_tags(cu, 4, reverse=True).tolist() == [
        0 << 2 | FIRST | LAST, 2 << 2 | LAST, -1, 2 << 2 | FIRST]


def test_second_order_through_packed_triton_scan():
    # create_graph=True runs the differentiable backward: the adjoint scan with the same
    # cu_seqlens and the packed grad_lam / grad_h0 formulas.
    lam, b, h0, cu_seqlens = packed_inputs((3, 1, 6), 2, varying=False)
    v = torch.randn_like(lam)

    def hvp(scan, dtype):
        lam_ = lam.to(dtype).requires_grad_()
        h = scan(lam_, b.to(dtype), h0.to(dtype))
        (grad,) = torch.autograd.grad(h.abs().square().sum(), lam_, create_graph=True)
        (second,) = torch.autograd.grad((grad * v.to(dtype).conj()).real.sum(), lam_)
        return second

    got = hvp(lambda *x: diag_scan(*on_device(TRITON_DEVICE, *x), backend="triton", chunk=4,
                                   cu_seqlens=cu_seqlens.to(TRITON_DEVICE)), C64)
    want = hvp(lambda *x: per_sequence(*x, cu_seqlens, False), C128)
    assert rel_err(got, want) <= FP32_RTOL_LONG


@pytest.mark.parametrize("cu, message", [
    (torch.tensor([0, 3, 10]), r"rise from 0 to T = 9"),
    (torch.tensor([1, 9]), r"rise from 0 to T = 9"),
    (torch.tensor([0, 5, 4, 9]), r"rise from 0 to T = 9"),
    (torch.tensor([9]), r"at least two entries"),
    (torch.tensor([0.0, 9.0]), r"1-D int32 or int64 tensor, got torch.float32"),
    (torch.tensor([[0, 9]]), r"1-D int32 or int64"),
])
def test_bad_cu_seqlens_raise_value_error(cu, message):
    lam, b, _, _ = packed_inputs((4, 5), 2, varying=False)
    with pytest.raises(ValueError, match=message):
        diag_scan(lam, b, cu_seqlens=cu)


def test_packed_shapes_are_checked():
    lam, b, h0, cu = packed_inputs((4, 5), 2, varying=False)
    with pytest.raises(ValueError, match=r"pack its sequences as \(1, T, N\)"):
        diag_scan(lam, b.expand(2, 9, 2), cu_seqlens=cu)
    with pytest.raises(ValueError, match=r"h0 must have shape \(S, N\), one per sequence"):
        diag_scan(lam, b, h0[:1], cu_seqlens=cu)
    with pytest.raises(ValueError, match=r"cu_seqlens must be on b's device"):
        diag_scan(lam, b, cu_seqlens=cu.to("meta"))


@pytest.mark.gpu
def test_packed_sequences_on_gpu():
    lam, b, h0, cu = packed_inputs((1, 2, 127, 4097, 30000), 64, varying=False)
    lam, b, h0, cu = lam.cuda(), b.cuda(), h0.cuda(), cu.cuda()
    got = diag_scan(lam, b, h0, backend="triton", cu_seqlens=cu)
    want = diag_scan(lam, b, h0, backend="chunked", cu_seqlens=cu)
    assert rel_err(got, want.to(C128)) <= FP32_RTOL_LONG
