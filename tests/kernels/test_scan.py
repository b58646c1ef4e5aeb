"""diag_scan: every backend against the sequential oracle (complex128, autograd through
the loop), on awkward shapes, near-unit |lam|, non-contiguous inputs; validation; the
torch.compile integration; the demo and the comparison helper.

The Triton kernels run under the interpreter without a GPU, so their cases are small
and use short chunks (``chunk=4`` gives 4-step tiles) to cross chunk boundaries.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from markers import needs_interpreter

import kernels
from kernels.report.interpreter import vectorized_scans
from kernels.scan import bytes_moved, diag_scan, resolve_backend
from kernels.scan.reference import sequential_scan


@pytest.fixture(autouse=True, scope="module")
def _vectorized_interpreter_scans():
    # Bitwise the interpreter's own scans, an order of magnitude faster; the other scan
    # test modules import this fixture.
    with vectorized_scans():
        yield

C64, C128 = torch.complex64, torch.complex128
# fp32 states against the complex128 oracle, relative to the largest |value|: a few
# ulps per step of a recurrence whose terms all have magnitude <= max|h|.
FP32_RTOL = 2e-6
FP32_RTOL_LONG = 2e-5  # T ~ 1000: round-off accumulates over the sequence
# Triton runs on CUDA tensors where there is a GPU (bench/gpu.sh runs these tests there,
# without the interpreter), and on CPU tensors under the interpreter elsewhere.
TRITON_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def on_device(device, *tensors):
    return [x.to(device) if x is not None else None for x in tensors]


def make_inputs(B, T, N, *, varying=False, with_h0=False, radius=(0.9, 1.0), dtype=C64):
    """lam with modulus uniform in ``radius`` and uniform phase; b, h0 standard normal."""
    lam_shape = (B, T, N) if varying else (N,)
    modulus = torch.empty(lam_shape, dtype=torch.float64).uniform_(*radius)
    lam = torch.polar(modulus, torch.rand(lam_shape, dtype=torch.float64) * 2 * math.pi)
    b = torch.randn(B, T, N, dtype=C128)
    h0 = torch.randn(B, N, dtype=C128) if with_h0 else None
    return lam.to(dtype), b.to(dtype), h0.to(dtype) if with_h0 else None


def rel_err(x, ref):
    return ((x.to(ref.dtype) - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def run_with_grads(scan, lam, b, h0, grad):
    """Output and gradients (lam, b[, h0]) of ``scan`` for the cotangent ``grad``."""
    inputs = [x.detach().clone().requires_grad_() for x in (lam, b, h0) if x is not None]
    out = scan(*inputs[:2], inputs[2] if h0 is not None else None)
    return [out.detach(), *torch.autograd.grad(out, inputs, grad.to(out.dtype))]


def check_against_oracle(backend, lam, b, h0=None, *, reverse=False, chunk=None, rtol):
    grad = torch.randn(b.shape, dtype=C128)
    device = TRITON_DEVICE if backend == "triton" else b.device
    got = run_with_grads(
        lambda l_, b_, h_: diag_scan(l_, b_, h_, reverse=reverse, backend=backend, chunk=chunk),
        *on_device(device, lam, b, h0, grad),
    )
    got = [g.to(b.device) for g in got]
    want = run_with_grads(
        lambda l_, b_, h_: sequential_scan(l_, b_, h_, reverse),
        *(x.to(C128) if x is not None else None for x in (lam, b, h0)),
        grad,
    )
    names = ["h", "grad_lam", "grad_b", "grad_h0"]
    for name, g, w in zip(names, got, want, strict=False):
        assert g.dtype == b.dtype and g.shape == w.shape, name
        assert rel_err(g, w) <= rtol, f"{name}: relative error {rel_err(g, w):.2e} > {rtol}"


# --- reference backends -------------------------------------------------------------

SHAPES = [(1, 1, 1), (1, 7, 3), (2, 63, 5), (3, 200, 17)]


@pytest.mark.parametrize("backend", ["sequential", "chunked"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_h0", [False, True], ids=["no_h0", "h0"])
def test_reference_backends_match_oracle(backend, shape, varying, reverse, with_h0):
    lam, b, h0 = make_inputs(*shape, varying=varying, with_h0=with_h0)
    check_against_oracle(backend, lam, b, h0, reverse=reverse, rtol=FP32_RTOL)


@pytest.mark.parametrize("chunk", [1, 2, 5, 16, 1000])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_chunked_any_chunk_length(chunk, reverse):
    # T = 37 leaves a remainder for every chunk length but 1; 1000 > T is one partial chunk.
    lam, b, h0 = make_inputs(2, 37, 6, with_h0=True)
    check_against_oracle("chunked", lam, b, h0, reverse=reverse, chunk=chunk, rtol=FP32_RTOL)


@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("radius", [(0.99, 1.0), (1.0, 1.003)], ids=["near1", "above1"])
def test_chunked_long_sequence_near_unit_modulus(varying, reverse, radius):
    # T = 1000 (not a power of two) spans 31 chunks of 31 steps and a remainder; with
    # |lam| up to 1.003 the states grow by ~20x, with no power of lam ever divided by.
    lam, b, h0 = make_inputs(1, 1000, 7, varying=varying, with_h0=True, radius=radius)
    check_against_oracle("chunked", lam, b, h0, reverse=reverse, rtol=FP32_RTOL_LONG)


@pytest.mark.parametrize("backend", ["sequential", "chunked"])
@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_reference_gradcheck_complex128(backend, varying, reverse):
    lam, b, h0 = make_inputs(2, 9, 3, varying=varying, with_h0=True, dtype=C128)
    inputs = [x.requires_grad_() for x in (lam, b, h0)]
    chunk = 4 if backend == "chunked" else None  # two chunks and a remainder step

    def scan(l_, b_, h_):
        return diag_scan(l_, b_, h_, reverse=reverse, backend=backend, chunk=chunk)

    assert torch.autograd.gradcheck(scan, inputs)


def test_flush_subnormals_zeroes_only_parts_below_the_smallest_normal():
    from kernels.scan.reference import flush_subnormals_

    tiny = torch.finfo(torch.float32).tiny
    x = torch.tensor([1e-3 + 1e-40j, 1e-40 + 1e-40j, tiny + 2j, -1e-39 + 0j], dtype=C64)
    flush_subnormals_(x)
    assert x.tolist() == [complex(torch.tensor(1e-3).item(), 0), 0j, complex(tiny, 2), 0j]


@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_chunked_small_eigenvalues_without_flush_to_zero(varying, reverse):
    # lam on the whole unit disk, down to |lam| = 1e-3: its powers underflow within a
    # chunk. With subnormals kept by the CPU (no process-wide flush-to-zero), the scan
    # still matches the oracle.
    flushing = (torch.tensor([1e-30]) * 1e-10).item() == 0.0  # set by another test?
    torch.set_flush_denormal(False)
    try:
        lam, b, h0 = make_inputs(2, 300, 9, varying=varying, with_h0=True, radius=(1e-3, 1.0))
        check_against_oracle("chunked", lam, b, h0, reverse=reverse, chunk=100, rtol=FP32_RTOL)
    finally:
        torch.set_flush_denormal(flushing)


@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_chunked_gradgradcheck_complex128(varying, reverse):
    # Second-order methods backpropagate through the backward (create_graph=True).
    lam, b, h0 = make_inputs(2, 7, 3, varying=varying, with_h0=True, dtype=C128)
    inputs = [x.requires_grad_() for x in (lam, b, h0)]

    def scan(l_, b_, h_):
        return diag_scan(l_, b_, h_, reverse=reverse, backend="chunked", chunk=3)

    assert torch.autograd.gradgradcheck(scan, inputs)


@pytest.mark.parametrize("backend, chunk", [("chunked", 5), ("triton", 4), ("triton", 12)],
                         ids=["chunked", "triton_lookback", "triton_single_pass"])
def test_hessian_vector_product_matches_the_oracle(backend, chunk):
    # d/dlam of <grad_lam(L), v> for L = sum |h|^2, through the custom op and the oracle.
    lam, b, h0 = make_inputs(1, 12, 4, with_h0=True, dtype=C128)
    v = torch.randn_like(lam)

    def hvp(backend, dtype):
        device = TRITON_DEVICE if backend == "triton" else "cpu"
        lam_ = lam.to(device, dtype).requires_grad_()
        h = diag_scan(lam_, *on_device(device, b.to(dtype), h0.to(dtype)), backend=backend,
                      chunk=chunk)
        (grad,) = torch.autograd.grad(h.abs().square().sum(), lam_, create_graph=True)
        (second,) = torch.autograd.grad((grad * v.to(device, dtype).conj()).real.sum(), lam_)
        return second.cpu()

    dtype = C64 if backend == "triton" else C128
    assert rel_err(hvp(backend, dtype), hvp("sequential", C128)) <= (
        FP32_RTOL_LONG if dtype == C64 else 1e-12)


def test_non_contiguous_inputs():
    B, T, N = 3, 29, 6
    b = torch.randn(T, B, N, dtype=C64).transpose(0, 1)  # (B, T, N) with T outermost
    lam = torch.polar(torch.full((2 * N,), 0.97), torch.rand(2 * N) * 6.28)[::2]
    h0 = torch.randn(N, B, dtype=C64).t()
    lam_t = torch.randn(B, N, T, dtype=C64).transpose(1, 2) * 0.5
    assert not (b.is_contiguous() or lam.is_contiguous() or h0.is_contiguous())
    for backend in ("sequential", "chunked"):
        check_against_oracle(backend, lam, b, h0, chunk=5, rtol=FP32_RTOL)
        check_against_oracle(backend, lam_t, b, h0, reverse=True, chunk=5, rtol=FP32_RTOL)


def test_conjugate_view_inputs():
    lam, b, h0 = make_inputs(2, 11, 4, with_h0=True)
    want = sequential_scan(lam.conj().resolve_conj(), b.conj().resolve_conj(), h0)
    got = diag_scan(lam.conj(), b.conj(), h0, backend="chunked", chunk=3)
    assert rel_err(got, want.to(C128)) <= FP32_RTOL


def test_complex128_result_dtype():
    lam, b, h0 = make_inputs(2, 20, 3, with_h0=True, dtype=C128)
    for backend in ("sequential", "chunked"):
        assert diag_scan(lam, b, h0, backend=backend).dtype == C128


def test_package_exports_diag_scan():
    assert kernels.diag_scan is diag_scan


# --- Triton (interpreter on CPU) ----------------------------------------------------

TRITON_CASES = [
    # B, T, N, varying, reverse, with_h0, chunk
    (1, 1, 8, False, False, True, None),
    (1, 13, 70, False, False, True, 4),  # 4 chunks, last partial; 5 channel blocks
    (2, 9, 5, False, True, True, 4),
    (1, 13, 5, True, True, True, 4),
    (1, 24, 8, False, True, False, 12),  # chunks of 8 (a power of two at most 12)
    (1, 10, 3, True, False, False, 4),
]


@pytest.mark.parametrize(
    "B, T, N, varying, reverse, with_h0, chunk",
    TRITON_CASES,
    ids=lambda v: str(v),
)
def test_triton_matches_oracle(B, T, N, varying, reverse, with_h0, chunk):
    lam, b, h0 = make_inputs(B, T, N, varying=varying, with_h0=with_h0)
    check_against_oracle("triton", lam, b, h0, reverse=reverse, chunk=chunk, rtol=FP32_RTOL)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_triton_backward_carry_near_unit_modulus(reverse):
    # The backward carry between chunks is where peer kernels go wrong: with |lam| in
    # [0.99, 1] nothing decays within a chunk, so a dropped or misplaced carry shows.
    lam, b, h0 = make_inputs(1, 30, 4, with_h0=True, radius=(0.99, 1.0))
    check_against_oracle("triton", lam, b, h0, reverse=reverse, chunk=4, rtol=FP32_RTOL)


def test_triton_non_contiguous_inputs():
    B, T, N = 2, 9, 4
    b = torch.randn(T, B, N, dtype=C64).transpose(0, 1)
    lam = torch.polar(torch.full((2 * N,), 0.97), torch.rand(2 * N) * 6.28)[::2]
    h0 = torch.randn(N, B, dtype=C64).t()
    check_against_oracle("triton", lam, b, h0, reverse=True, chunk=4, rtol=FP32_RTOL)


@pytest.mark.parametrize("chunk", [4, 5], ids=["lookback", "single_pass"])
def test_triton_scan_is_one_launch(chunk):
    from kernels.scan import triton_scan

    lam, b, _ = on_device(TRITON_DEVICE, *make_inputs(1, 5, 4))
    before = triton_scan.LAUNCHES
    diag_scan(lam, b, backend="triton", chunk=chunk)
    assert triton_scan.LAUNCHES == before + 1


@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_triton_lookback_through_aggregates(monkeypatch, varying, reverse):
    # With the inclusive prefixes withheld, every chunk composes its predecessors'
    # aggregates back to the first chunk (the path a GPU takes when predecessors lag).
    from kernels.scan import triton_scan

    monkeypatch.setattr(triton_scan, "LOOKBACK_WITHHOLD", 0b110110110110110110110110110110)
    lam, b, h0 = make_inputs(2, 27, 5, varying=varying, with_h0=True, radius=(0.99, 1.0))
    check_against_oracle("triton", lam, b, h0, reverse=reverse, chunk=4, rtol=FP32_RTOL)


def test_triton_rejects_complex128():
    lam, b, _ = on_device(TRITON_DEVICE, *make_inputs(1, 5, 4, dtype=C128))
    with pytest.raises(ValueError, match="computes in complex64.*chunked"):
        diag_scan(lam, b, backend="triton")
    lam, b, _ = on_device(TRITON_DEVICE, *make_inputs(1, 5, 4))
    with pytest.raises(ValueError, match="computes in complex64.*chunked"):
        diag_scan(lam, b, backend="triton", out_dtype=C128)


SINGLE_PASS_CASES = [
    # B, T, N, varying, reverse, with_h0: one program per (batch, 16-channel block)
    # walking all of T in 32-step tiles.
    (1, 67, 20, False, False, True),  # odd T over 3 tiles; N over 2 blocks, the last partial
    (2, 45, 5, False, True, True),
    (1, 37, 7, True, False, True),
    (2, 33, 3, True, True, False),
]


@pytest.mark.parametrize("B, T, N, varying, reverse, with_h0", SINGLE_PASS_CASES, ids=str)
def test_triton_single_pass_matches_oracle(B, T, N, varying, reverse, with_h0):
    from kernels.scan import triton_scan

    lam, b, h0 = make_inputs(B, T, N, varying=varying, with_h0=with_h0)
    assert triton_scan.plan_scan(B, T, N, T).single_pass
    check_against_oracle("triton", lam, b, h0, reverse=reverse, chunk=T, rtol=FP32_RTOL)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_triton_single_pass_near_unit_modulus(reverse):
    lam, b, h0 = make_inputs(1, 100, 6, with_h0=True, radius=(0.99, 1.0))
    check_against_oracle("triton", lam, b, h0, reverse=reverse, chunk=100, rtol=FP32_RTOL_LONG)


def test_pipeline_stages_keep_eight_kilobytes_loading():
    from kernels.scan.triton_scan import plan_scan

    single = plan_scan(16, 4096, 512)  # 32 x 16 tiles
    assert [single.stages(b) for b in (8, 16, 24, 4)] == [3, 2, 2, 5]
    assert plan_scan(8, 4096, 256).stages(8) == 1  # a look-back chunk is one tile


def test_plan_chooses_the_single_pass_where_batch_and_channels_fill_the_gpu():
    from kernels.scan.triton_scan import FILL_PROGRAMS, MAX_BLOCK_N, plan_scan

    bench = plan_scan(16, 4096, 512)  # 16 x 32 channel blocks = 512 programs
    assert bench.single_pass and (bench.block_t, bench.block_n, bench.num_warps) == (32, 16, 4)
    assert 16 * 512 // MAX_BLOCK_N >= FILL_PROGRAMS
    small = plan_scan(8, 4096, 256)  # 128 programs: chunks of time add parallelism
    assert not small.single_pass and (small.chunk, small.n_chunks) == (128, 32)
    assert plan_scan(8, 300, 256, chunk=1000).single_pass  # a chunk past T: one chunk
    assert plan_scan(2, 1, 3).single_pass


@pytest.mark.gpu
@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_triton_matches_chunked_on_gpu(varying, reverse):
    lam, b, h0 = make_inputs(4, 3000, 300, varying=varying, with_h0=True, radius=(0.99, 1.0))
    lam, b, h0 = lam.cuda(), b.cuda(), h0.cuda()
    check_against_oracle("triton", lam, b, h0, reverse=reverse, rtol=FP32_RTOL_LONG)


# --- validation and backend choice --------------------------------------------------


def _bad_calls():
    lam, b, h0 = make_inputs(2, 5, 3, with_h0=True)
    return [
        ("rank of b", dict(lam=lam, b=b[0]), r"b must be .* shape \(B, T, N\)"),
        ("real b", dict(lam=lam, b=b.real), r"b must be a complex32, complex64 or complex128"),
        ("pairs of int", dict(lam=lam, b=torch.zeros(2, 5, 3, 2, dtype=torch.int16)),
         r"\(B, T, N, 2\) in bfloat16, float16 or float32, got torch.int16"),
        ("pairs of 3", dict(lam=lam, b=torch.view_as_real(b)[..., :1].expand(2, 5, 3, 3)),
         r"\(real, imag\) pairs of shape \(B, T, N, 2\)"),
        ("empty b", dict(lam=lam, b=b[:, :0]), r"b must have B, T, N >= 1"),
        ("lam length", dict(lam=lam[:2], b=b), r"lam must have shape \(N,\) = \(3,\)"),
        ("lam rank 2", dict(lam=lam.expand(5, 3), b=b), r"lam must have shape"),
        ("lam batch", dict(lam=lam.expand(1, 5, 3), b=b), r"\(B, T, N\) = \(2, 5, 3\)"),
        ("real lam", dict(lam=lam.real, b=b), r"lam must be torch.complex64 for b of dtype"),
        ("mixed dtype", dict(lam=lam.to(C128), b=b), r"lam must be torch.complex64"),
        ("16-bit lam", dict(lam=lam.to(torch.complex32), b=b.to(torch.complex32)),
         r"lam must be torch.complex64 for b of dtype torch.complex32"),
        ("h0 shape", dict(lam=lam, b=b, h0=h0[:1]), r"h0 must have shape \(B, N\) = \(2, 3\)"),
        ("h0 dtype", dict(lam=lam, b=b, h0=h0.to(C128)), r"h0 must be torch.complex64"),
        ("h0 device", dict(lam=lam, b=b, h0=h0.to("meta")), r"h0 must be on b's device"),
        ("lam device", dict(lam=lam.to("meta"), b=b), r"lam must be on b's device"),
        ("backend", dict(lam=lam, b=b, backend="cuda"), r"backend must be one of"),
        ("chunk", dict(lam=lam, b=b, chunk=0), r"chunk must be a positive int"),
        ("out_dtype", dict(lam=lam, b=b, out_dtype=torch.int32), r"out_dtype must be one of"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_invalid_arguments_raise_value_error(case):
    _, kwargs, message = _bad_calls()[case]
    with pytest.raises(ValueError, match=message):
        diag_scan(**kwargs)


def test_resolve_backend(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("LSB_SCAN_BACKEND", raising=False)
    assert resolve_backend("auto", cpu) == "chunked"
    assert resolve_backend("sequential", cpu) == "sequential"
    monkeypatch.setenv("LSB_SCAN_BACKEND", "sequential")
    assert resolve_backend("auto", cpu) == "sequential"
    assert resolve_backend("chunked", cpu) == "chunked"  # an explicit choice wins
    monkeypatch.setenv("LSB_SCAN_BACKEND", "torch")  # the optimizers' word, not the scan's
    with pytest.raises(ValueError, match="LSB_SCAN_BACKEND='torch'.*sequential, chunked, triton"):
        resolve_backend("auto", cpu)


# --- torch integration --------------------------------------------------------------


class TinyLRU(torch.nn.Module):
    """The LRU's recurrence with its stable parameterization lam = exp(-exp(nu) + i theta)."""

    def __init__(self, n):
        super().__init__()
        self.nu = torch.nn.Parameter(torch.full((n,), -1.0))
        self.theta = torch.nn.Parameter(torch.linspace(0.1, 3.0, n))

    def forward(self, b, h0):
        lam = torch.polar(torch.exp(-torch.exp(self.nu)), self.theta)
        return diag_scan(lam, b, h0, chunk=4).real.square().mean()


@pytest.mark.parametrize("backend", ["auto", "triton"])
def test_torch_compile_fullgraph(monkeypatch, backend):
    # The default backend ("auto": chunked on the CPU), and Triton. aot_eager traces
    # forward and backward through the fake kernels as inductor does; inductor itself
    # adds minutes of C++ compilation on a CPU runner for no extra check.
    monkeypatch.setenv("LSB_SCAN_BACKEND", backend)
    torch._dynamo.reset()
    model = TinyLRU(5).to(TRITON_DEVICE if backend == "triton" else "cpu")
    device = next(model.parameters()).device
    b = torch.randn(2, 11, 5, dtype=C64, device=device, requires_grad=True)
    h0 = torch.randn(2, 5, dtype=C64, device=device)
    eager_loss = model(b, h0)
    eager_grads = torch.autograd.grad(eager_loss, [model.nu, model.theta, b])
    from kernels.scan import triton_scan

    launches = triton_scan.LAUNCHES
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    loss = compiled(b, h0)
    grads = torch.autograd.grad(loss, [model.nu, model.theta, b])
    assert (triton_scan.LAUNCHES > launches) == (backend == "triton")
    torch.testing.assert_close(loss, eager_loss)
    for g, e in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("backend", ["chunked", "triton"])
@pytest.mark.parametrize("out_dtype", [C64, torch.bfloat16], ids=["complex64", "bf16_pairs"])
def test_custom_op_schema_and_fake_kernels(backend, out_dtype):
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    lam, b, h0 = on_device(device, *make_inputs(2, 7, 3, with_h0=True))
    torch.library.opcheck(torch.ops.lsb.diag_scan.default,
                          (lam, b, h0, None, False, backend, 3, out_dtype))


def test_custom_op_with_packed_sequences():
    lam, b, h0 = on_device(TRITON_DEVICE, *make_inputs(1, 9, 3, with_h0=True))
    h0 = torch.cat([h0, h0])
    cu_seqlens = torch.tensor([0, 4, 9], device=TRITON_DEVICE)
    torch.library.opcheck(torch.ops.lsb.diag_scan.default,
                          (lam, b, h0, cu_seqlens, True, "triton", 2, C64))


# --- bytes model, demo, comparison helper ---------------------------------------------


def test_bytes_moved():
    from kernels.scan.traffic import bytes_per_element

    assert bytes_moved(8, 4096, 256) == 16 * 8 * 4096 * 256
    assert bytes_moved(1, 10, 2, backward=True) == 40 * 20
    assert bytes_per_element(varying=True) == 24
    assert bytes_per_element(backward=True, varying=True) == 64
    # 16-bit b, h and gradients (complex32, bf16 pairs): half; a varying lam stays complex64.
    assert bytes_per_element(itemsize=4) == 8 and bytes_per_element(backward=True, itemsize=4) == 20
    assert bytes_per_element(varying=True, itemsize=4) == 16


def test_demo_returns_zero(monkeypatch, capsys):
    from bench import scan_demo as demo

    monkeypatch.setattr(demo, "TIMING_SIZE", (2, 256, 16))
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "chunked" in out and "speed-up" in out


def test_compare_measures_every_scheme():
    from bench import scan_compare as compare

    results = compare.measure(1, 64, 4, repeats=1)
    assert set(results) == {"clone", *compare.schemes()}
    assert all(row["forward"] > 0 for row in results.values())


# --- static report: bytes moved, registers, occupancy, access widths ------------------

REPORT_DIR = Path(__file__).resolve().parents[2] / "results" / "kernels"
# The traffic meter counts what the Triton interpreter executes (bench/gpu.sh runs these
# tests on CUDA, without it).


def metered(run):
    from kernels.report.meter import TrafficMeter

    with TrafficMeter() as meter:
        run()
    return meter


def single_pass_bytes(T, N, varying):
    """Bytes a single-pass forward and backward of a (1, T, N) scan move, element by
    element: b read and h written once (forward); grad_h, h and lam read once and grad_b
    (and grad_lam) written once (backward), h and lam not read at the first step (no h0).
    Shared lam is read once per program and grad_lam's partial sums written once."""
    rows, edge = 8 * T * N, 8 * N
    per_program = 0 if varying else 8 * N
    forward = (rows * (2 if varying else 1) + per_program, rows)
    backward = (rows + (rows - edge) + (rows - edge if varying else per_program),
                rows + (rows if varying else per_program))
    return forward, backward


@needs_interpreter
@pytest.mark.parametrize("varying", [False, True], ids=["shared", "varying"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_single_pass_traffic_is_the_model_exactly(varying, reverse):
    from kernels.scan import triton_scan
    from kernels.scan.traffic import bytes_per_element

    T, N = 40, 16
    lam, b, _ = make_inputs(1, T, N, varying=varying)
    h = triton_scan.triton_scan_forward(lam, b, None, reverse, T)
    forward = metered(lambda: triton_scan.triton_scan_forward(lam, b, None, reverse, T))
    backward = metered(lambda: triton_scan.triton_scan_backward(lam, h, None, b, reverse, T))
    want_forward, want_backward = single_pass_bytes(T, N, varying)
    assert (forward.loaded, forward.stored) == want_forward
    assert (backward.loaded, backward.stored) == want_backward
    # The same counts at T = 1024 meet the targets and round to the model.
    long_forward, long_backward = single_pass_bytes(1024, N, varying)
    fwd = sum(long_forward) / (1024 * N)
    both = fwd + sum(long_backward) / (1024 * N)
    assert fwd <= (24 if varying else 16.5) and both <= (64 if varying else 41)
    assert round(fwd) == bytes_per_element(varying=varying)
    assert round(both) == bytes_per_element(backward=True, varying=varying)


@needs_interpreter
def test_strided_layouts_in_sectors():
    # The kernels read b where it lies. A time-contiguous layout (b of a (B, N, T) tensor,
    # transposed) still uses whole 32-byte sectors; a channel stride of 4 gives every
    # (real, imag) pair a sector of its own: four times b's bytes from DRAM.
    from kernels.scan import triton_scan

    T, N = 64, 16
    lam, b, _ = make_inputs(1, T, N)
    layouts = {"contiguous": b, "time-contiguous": b.transpose(1, 2).contiguous().transpose(1, 2),
               "channel stride 4": torch.repeat_interleave(b, 4, dim=2)[:, :, ::4]}
    sectors = {}
    for name, x in layouts.items():
        assert torch.equal(x, b)
        meter = metered(lambda x=x: triton_scan.triton_scan_forward(lam, x, None, False, T))
        assert (meter.loaded, meter.stored) == (8 * T * N + 8 * N, 8 * T * N), name
        sectors[name] = meter.sector_total
    rows = 8 * T * N
    assert sectors["contiguous"] == sectors["time-contiguous"] == 2 * rows + 128
    assert sectors["channel stride 4"] == 4 * rows + rows + 128


@needs_interpreter
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_lookback_traffic_is_the_model_plus_a_carry_per_chunk(reverse):
    # K chunks of C steps: b, h (and grad_h, h_prev, grad_b) once, as in the single pass.
    # Per chunk and channel: lam read once; the aggregate's end state (fp32 pair) written
    # by the chunks that have a predecessor and a successor, the inclusive prefix (fp64
    # pair) by all but the last, and each chunk but the first reads its predecessor's
    # prefix (under the interpreter every predecessor is done: a GPU may fold a few
    # aggregates more). Atomics: the ticket, one window of up to 32 statuses read, and
    # the aggregate's and the prefix's status writes.
    from kernels.scan import triton_scan

    C, K, N = 8, 4, 16
    T = C * K
    lam, b, _ = make_inputs(1, T, N)
    assert triton_scan.plan_scan(1, T, N, C).n_chunks == K
    h = triton_scan.triton_scan_forward(lam, b, None, reverse, C)
    forward = metered(lambda: triton_scan.triton_scan_forward(lam, b, None, reverse, C))
    backward = metered(lambda: triton_scan.triton_scan_backward(lam, h, None, b, reverse, C))
    rows, pair32, pair64 = 8 * T * N, 8 * N, 16 * N
    carry_loads = pair32 * K + pair64 * (K - 1)
    carry_stores = pair32 * (K - 2) + pair64 * (K - 1)
    assert forward.loaded == rows + carry_loads
    assert forward.stored == rows + carry_stores
    assert backward.loaded == rows + (rows - pair32) + carry_loads
    assert backward.stored == rows + pair32 * K + carry_stores  # + grad_lam's partial sums
    window = sum(min(triton_scan.LOOKBACK_WINDOW, k) for k in range(1, K))
    assert forward.atomic == backward.atomic == 4 * (K + window + (K - 2) + (K - 1))


def _benchmark_launches():
    """The launches of a forward + backward at the benchmark sizes themselves, recorded
    without running them on meta tensors: 16x4096x512 (the single pass: 32x16 tiles, 4
    warps) with shared and varying lam, 8x4096x256 (the look-back: chunks of 128x16, 16
    warps)."""
    from kernels.report.meter import TrafficMeter
    from kernels.scan import triton_scan

    launches = []
    for (B, T, N), varying in (((16, 4096, 512), False), ((16, 4096, 512), True),
                               ((8, 4096, 256), False)):
        plan = triton_scan.plan_scan(B, T, N)
        lam = torch.empty((B, T, N) if varying else (N,), dtype=C64, device="meta")
        b = torch.empty((B, T, N), dtype=C64, device="meta")
        with TrafficMeter(dry=True) as recorder:
            h = triton_scan.triton_scan_forward(lam, b, None, False, plan.chunk)
            triton_scan.triton_scan_backward(lam, h, None, b, False, plan.chunk)
        launches += recorder.launches
    return launches


@needs_interpreter
@pytest.mark.slow  # six compiles; test_committed_report_meets_the_targets reads the same
def test_benchmark_configurations_compile_without_spills_at_a_quarter_occupancy():
    from kernels.report.compile import compile_launches

    launches = _benchmark_launches()
    assert len(launches) == 6  # forward and backward of each plan
    assert [m.grid for m in launches] == [[16, 32]] * 4 + [[8 * 16 * 32]] * 2
    compiled = compile_launches(
        [{"kernel": m.kernel, "args": m.args, "kwargs": m.kwargs} for m in launches], (90,))
    for launch, (sm90,) in zip(launches, compiled, strict=True):
        label = f"{launch.kernel} {launch.kwargs}"
        assert sm90["spill_stores"] == sm90["spill_loads"] == 0, label
        assert sm90["occupancy"] >= 0.25, label
        # Every address offset is 64-bit: nothing wraps past 2**31 elements.
        assert set(sm90["address_offset_bits"]) == {"64"}, (label, sm90["address_offset_bits"])
        single_pass = "single_pass" in launch.kernel
        # The single pass streams its tiles through asynchronous copies (software
        # pipelining), each a (real, imag) pair; the look-back's chunk is one register
        # tile, loaded in 64-bit pairs.
        if single_pass:
            assert set(sm90["async_copy_bits"]) == {"64"} and sm90["num_stages"] >= 2, label
        else:
            assert sm90["loads"].get("64", 0) >= 2 and sm90["async_copies"] == 0, label
        assert sm90["stores"].get("64", 0) >= 2, label


def test_committed_report_meets_the_targets():
    # The report in results/kernels is what the kernels page shows; `make kernel-report`
    # regenerates it. Its configurations must be the ones the code launches now, at the
    # benchmark sizes themselves.
    import triton

    from kernels.scan import report_cases, triton_scan

    path = REPORT_DIR / f"static-{triton.__version__}.json"
    if not path.exists():
        pytest.skip(f"no static report for triton {triton.__version__} (make kernel-report)")
    report = json.loads(path.read_text())
    scan = {row["name"]: row for row in report["cases"] if row["family"] == "scan"}
    assert {case.name for case in report_cases.report_cases()} == set(scan)
    for name, row in scan.items():
        if row["target_bytes_per_element"] is not None:
            assert row["bytes_per_element"] <= row["target_bytes_per_element"], name
            # Contiguous inputs use every byte of the sectors they touch.
            assert row["sector_bytes_per_element"] <= row["target_bytes_per_element"], name
        size = tuple(int(n) for n in name.rsplit(" ", 1)[1].split("x"))
        plan = triton_scan.plan_scan(*size)
        for kernel in row["kernels"]:
            label = (name, kernel["kernel"])
            assert kernel["kwargs"]["BLOCK_N"] == plan.block_n, label
            assert kernel["kwargs"]["BLOCK_T"] == plan.block_t, label
            assert kernel["kwargs"]["num_warps"] == plan.num_warps, label
            sm90 = next(c for c in kernel["compiled"] if c["arch"] == "sm_90")
            assert sm90["spill_stores"] == 0 and sm90["occupancy"] >= 0.25, label
            assert set(sm90["address_offset_bits"]) == {"64"}, label
            # Little's law for HBM3e: about 25 KB in flight per SM to stream at full rate.
            # A look-back program loads one chunk at once: with 16-bit b half as much.
            half_lookback = "lookback" in kernel["kernel"] and any(
                form in name for form in ("complex32", "bf16"))
            assert sm90["bytes_in_flight_per_sm"] >= (16 if half_lookback else 25) * 1024, label
    # A channel stride of 4 gives every (real, imag) pair of b a sector of its own.
    strided = scan[f"scan_fwd channel-stride {report_cases.STRIDE} 16x1024x512"]
    assert strided["bytes_per_element"] == pytest.approx(16, abs=0.05)
    assert strided["sector_bytes_per_element"] == pytest.approx(32 + 8, abs=0.1)
