"""The decoupled look-back is reproducible: its result does not depend on which
predecessors had published their inclusive prefix when a chunk looked back.

Under the interpreter programs run one after another, so every predecessor is done; the
kernel's test hook ``LOOKBACK_WITHHOLD`` (a mask over chunk positions modulo 32) keeps
chosen prefixes back, so that successors fold aggregates exactly as a GPU makes them do
when predecessors lag: every chunk's prefix, only the first chunk's (every other chunk
folds all aggregates back to it, across a 32-chunk window), and mixtures. The
outputs must be bitwise identical, forward and backward, and match the oracle.
"""

import pytest
import torch
from test_scan import (  # noqa: F401
    FP32_RTOL_LONG,
    TRITON_DEVICE,
    _vectorized_interpreter_scans,
    check_against_oracle,
    make_inputs,
)

from kernels.scan import diag_scan

ALL_PREFIXES, FIRST_ONLY = 0, 0xFFFFFFFF
MIXTURES = (0b1011_0110_1110_0101_0011_1001_0111_0010, 0x5555_5555)


def outputs(monkeypatch, withhold, lam, b, h0, *, reverse, chunk, cu_seqlens=None):
    """h and the gradients of lam, b (and h0) with the given prefixes withheld."""
    from kernels.scan import triton_scan

    monkeypatch.setattr(triton_scan, "LOOKBACK_WITHHOLD", withhold)
    leaves = [x.to(TRITON_DEVICE).requires_grad_() for x in (lam, b, h0) if x is not None]
    h = diag_scan(*leaves[:2], leaves[2] if h0 is not None else None, reverse=reverse,
                  backend="triton", chunk=chunk,
                  cu_seqlens=cu_seqlens.to(TRITON_DEVICE) if cu_seqlens is not None else None)
    grad = torch.randn(h.shape, dtype=h.dtype, generator=torch.Generator().manual_seed(1))
    return [h.detach(), *torch.autograd.grad(h, leaves, grad.to(TRITON_DEVICE))]


def assert_bitwise_equal(first, second, label):
    for name, x, y in zip(("h", "grad_lam", "grad_b", "grad_h0"), first, second, strict=False):
        assert torch.equal(x, y), f"{label}: {name} differs by {(x - y).abs().max().item():.3e}"


def check_paths_agree(monkeypatch, T, N, chunk, *, varying, reverse, withholds, oracle):
    # More than 33 chunks (the last partial): the fold from the first chunk crosses a
    # 32-chunk window; |lam| near 1 so that nothing decays before it is compared.
    lam, b, h0 = make_inputs(1, T, N, varying=varying, with_h0=True, radius=(0.99, 1.0))
    reference = outputs(monkeypatch, ALL_PREFIXES, lam, b, h0, reverse=reverse, chunk=chunk)
    for withhold in withholds:
        got = outputs(monkeypatch, withhold, lam, b, h0, reverse=reverse, chunk=chunk)
        assert_bitwise_equal(reference, got, f"withhold {withhold:#x}")
    if oracle:
        monkeypatch.setattr("kernels.scan.triton_scan.LOOKBACK_WITHHOLD", withholds[0])
        check_against_oracle("triton", lam, b, h0, reverse=reverse, chunk=chunk,
                             rtol=FP32_RTOL_LONG)


@pytest.mark.slow
def test_lookback_is_bitwise_identical_whichever_prefixes_were_published(monkeypatch):
    # 34 chunks of 2 steps, forward and backward (the backward scan runs the other way).
    check_paths_agree(monkeypatch, 67, 2, 2, varying=False, reverse=False,
                      withholds=(FIRST_ONLY,), oracle=False)


@pytest.mark.slow
@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_lookback_paths_agree_for_every_lam_and_direction(monkeypatch, varying, reverse):
    # 35 chunks of 4 steps over 3 channels, the mixtures too, and against the oracle.
    check_paths_agree(monkeypatch, 139, 3, 4, varying=varying, reverse=reverse,
                      withholds=(FIRST_ONLY, *MIXTURES), oracle=True)


def test_lookback_of_packed_sequences_is_bitwise_identical(monkeypatch):
    # Sequence boundaries inside chunks and on chunk edges: the aggregates of chunks where
    # a sequence restarts carry a zero coefficient product.
    lam, b, _ = make_inputs(1, 70, 2, radius=(0.99, 1.0))
    cu_seqlens = torch.tensor([0, 5, 8, 40, 41, 70])
    h0 = torch.randn(5, 2, dtype=torch.complex64)
    reference = outputs(monkeypatch, ALL_PREFIXES, lam, b, h0, reverse=False, chunk=4,
                        cu_seqlens=cu_seqlens)
    for withhold in (FIRST_ONLY,):
        got = outputs(monkeypatch, withhold, lam, b, h0, reverse=False, chunk=4,
                      cu_seqlens=cu_seqlens)
        assert_bitwise_equal(reference, got, f"withhold {withhold:#x}")


@pytest.mark.gpu
@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
def test_repeated_lookback_launches_are_bitwise_identical_on_gpu(varying):
    # On a GPU the scheduling decides which prefixes a chunk finds; the result may not.
    lam, b, h0 = make_inputs(2, 1 << 17, 2, varying=varying, with_h0=True, radius=(0.99, 1.0))
    lam, b, h0 = lam.cuda(), b.cuda(), h0.cuda()
    first = diag_scan(lam, b, h0, backend="triton", chunk=32)
    for _ in range(50):
        assert torch.equal(diag_scan(lam, b, h0, backend="triton", chunk=32), first)
