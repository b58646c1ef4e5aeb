"""16-bit inputs and outputs: complex32, and (real, imag) pairs of bf16 or fp16 in a
(B, T, N, 2) tensor, with lam and h0 in complex64, the state carried in fp32 and the
output stored as the caller asks.

Every stored 16-bit value must be within one ulp of its 16-bit dtype of the complex128
oracle run on the rounded inputs (b and the output cotangent as the 16-bit tensors hold
them), on every backend, both Triton schedules, forward and backward; complex64
gradients within one 16-bit ulp of their largest value (they are formed from the 16-bit
h and grad_b). The bytes model and the meter count 8 bytes per element forward.
"""

import pytest
import torch
from markers import needs_interpreter
from test_scan import (  # noqa: F401
    FP32_RTOL,
    TRITON_DEVICE,
    _vectorized_interpreter_scans,
    make_inputs,
    metered,
    on_device,
    rel_err,
)

from kernels.scan import diag_scan, dtypes
from kernels.scan.reference import sequential_scan

C64, C128 = torch.complex64, torch.complex128
HALF_FORMS = [torch.complex32, torch.bfloat16, torch.float16]
MANTISSA_BITS = {torch.bfloat16: 7, torch.float16: 10}
MIN_EXPONENT = {torch.bfloat16: -126, torch.float16: -14}  # of the smallest normal
# The fp32 state's own error is about 1e-6 of the largest term; values far below the
# largest are held to the ulp at this fraction of it.
FLOOR = 2.0**-12


def ulp(x: torch.Tensor, part: torch.dtype) -> torch.Tensor:
    """The spacing of ``part`` (bf16 or fp16) numbers at |x| (float64)."""
    _, exponent = torch.frexp(x.abs())  # |x| = m 2**e with m in [0.5, 1)
    exponent = (exponent - 1).clamp_min(MIN_EXPONENT[part])
    return torch.ldexp(torch.ones_like(x), exponent - MANTISSA_BITS[part])


def assert_within_one_ulp(got: torch.Tensor, want: torch.Tensor, label: str):
    """Each real part of the 16-bit ``got`` within one ulp of the complex128 ``want``."""
    part = dtypes.component_dtype(got.dtype)
    g = torch.view_as_real(dtypes.as_complex(got, C128))
    w = torch.view_as_real(want)
    tolerance = ulp(torch.maximum(w.abs(), FLOOR * w.abs().max()), part)
    excess = ((g - w).abs() / tolerance).max().item()
    assert excess <= 1, f"{label}: {excess:.2f} ulps of {part}"


def assert_within_one_ulp_of_largest(got, want, part, label):
    err = (got.to(C128) - want).abs().max().item()
    bound = ulp(want.abs().max(), part).item()
    assert err <= bound, f"{label}: error {err:.2e} > one {part} ulp {bound:.2e} of the largest"


def half_inputs(B, T, N, dtype, *, varying=False):
    """lam, h0 complex64; b and an output cotangent rounded to the 16-bit ``dtype``."""
    lam, b, h0 = make_inputs(B, T, N, varying=varying, with_h0=True, radius=(0.9, 0.999))
    return lam, dtypes.from_complex(b, dtype), h0, dtypes.from_complex(torch.randn_like(b), dtype)


def oracle(lam, b, h0, grad, reverse):
    leaves = [lam.to(C128).requires_grad_(), dtypes.as_complex(b, C128).requires_grad_(),
              h0.to(C128).requires_grad_()]
    h = sequential_scan(*leaves, reverse)
    return [h.detach(), *torch.autograd.grad(h, leaves, dtypes.as_complex(grad, C128))]


def run(lam, b, h0, grad, *, out_dtype=None, **kwargs):
    """Output and gradients, on the CPU (Triton computes on TRITON_DEVICE)."""
    device = TRITON_DEVICE if kwargs.get("backend") == "triton" else b.device
    leaves = [x.to(device).requires_grad_() for x in (lam, b, h0)]
    h = diag_scan(*leaves, out_dtype=out_dtype, **kwargs)
    return [x.to(b.device) for x in (h.detach(), *torch.autograd.grad(h, leaves, grad.to(device)))]


CASES = [
    # backend, chunk, varying, reverse
    ("triton", None, False, False),  # the single pass (chunk 1000 > T)
    ("triton", 4, False, True),  # the look-back
    ("triton", 4, True, False),
    ("chunked", 5, False, True),
    ("sequential", None, True, False),
]


@pytest.mark.parametrize("dtype", HALF_FORMS, ids=str)
@pytest.mark.parametrize("backend, chunk, varying, reverse", CASES, ids=str)
def test_half_precision_within_one_ulp_of_the_oracle(dtype, backend, chunk, varying, reverse):
    lam, b, h0, grad = half_inputs(2, 37, 5, dtype, varying=varying)
    if backend == "triton" and chunk is None:
        chunk = 1000
    h, grad_lam, grad_b, grad_h0 = run(lam, b, h0, grad, backend=backend, chunk=chunk,
                                       reverse=reverse)
    want = oracle(lam, b, h0, grad, reverse)
    assert h.dtype == b.dtype and h.shape == b.shape and grad_b.dtype == b.dtype
    assert grad_lam.dtype == grad_h0.dtype == C64
    assert_within_one_ulp(h, want[0], "h")
    assert_within_one_ulp(grad_b, want[2], "grad_b")
    part = dtypes.component_dtype(dtype)
    assert_within_one_ulp_of_largest(grad_lam, want[1], part, "grad_lam")
    assert_within_one_ulp_of_largest(grad_h0, want[3], part, "grad_h0")


@pytest.mark.parametrize("backend", ["triton", "chunked"])
def test_caller_chooses_the_output_dtype(backend):
    # bf16 pairs in, complex64 out: the fp32 state itself; complex64 in, bf16 pairs out.
    lam, b, h0, _ = half_inputs(1, 20, 3, torch.bfloat16)
    if backend == "triton":
        lam, b, h0 = on_device(TRITON_DEVICE, lam, b, h0)
    h = diag_scan(lam, b, h0, backend=backend, chunk=4, out_dtype=C64)
    want = sequential_scan(lam.to(C128), dtypes.as_complex(b, C128), h0.to(C128))
    assert h.dtype == C64 and h.shape == (1, 20, 3)
    assert rel_err(h, want) <= FP32_RTOL
    wide = dtypes.as_complex(b, C64)
    pairs = diag_scan(lam, wide, h0, backend=backend, chunk=4, out_dtype=torch.bfloat16)
    assert pairs.dtype == torch.bfloat16 and pairs.shape == (1, 20, 3, 2)
    assert_within_one_ulp(pairs, sequential_scan(lam.to(C128), wide.to(C128), h0.to(C128)), "h")


def test_pairs_sliced_from_a_wider_last_dimension():
    # A (B, T, N, 2) slice of a wider last dimension, starting at an odd element.
    lam, b, h0 = on_device(TRITON_DEVICE, *half_inputs(1, 9, 4, torch.bfloat16)[:3])
    wide = torch.cat([b, b], dim=-1)[..., 1:3]
    assert wide.stride(-1) == 1 and wide.stride(-2) == 4
    shifted = torch.stack([wide[..., 0], wide[..., 1]], -1)
    got = diag_scan(lam, wide, h0, backend="triton", chunk=4)
    want = diag_scan(lam, shifted, h0, backend="triton", chunk=4)
    assert torch.equal(got, want)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.complex32, torch.bfloat16], ids=str)
def test_half_precision_moves_eight_bytes_per_element(dtype):
    from kernels.scan import triton_scan
    from kernels.scan.traffic import bytes_per_element

    T, N = 40, 16
    lam, b, _, _ = half_inputs(1, T, N, dtype)
    forward = metered(lambda: triton_scan.triton_scan_forward(lam, b, None, False, T))
    # b read and h written once, 4 bytes each; lam (complex64) once per program.
    assert (forward.loaded, forward.stored) == (4 * T * N + 8 * N, 4 * T * N)
    assert bytes_per_element(itemsize=dtypes.element_bytes(dtype)) == 8
    assert round(forward.total / (T * N)) == 8


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", HALF_FORMS, ids=str)
def test_half_precision_on_gpu(dtype):
    lam, b, h0, grad = (x.cuda() for x in half_inputs(4, 3000, 300, dtype))
    for chunk in (None, 32):
        h, grad_lam, grad_b, grad_h0 = run(lam, b, h0, grad, backend="triton", chunk=chunk)
        want = oracle(lam, b, h0, grad, False)
        assert_within_one_ulp(h, want[0], "h")
        assert_within_one_ulp(grad_b, want[2], "grad_b")
