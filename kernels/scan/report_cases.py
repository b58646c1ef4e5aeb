"""The scan's cases in the static GPU report (:mod:`kernels.report`).

Benchmark sizes of ``bench/cases.py``: (16, T, 512), where batch and channels alone fill
the GPU (the single pass), and (8, 4096, 256), where they do not (the chained scan with
decoupled look-back over chunks of time); lam shared over batch and time (the LRU) or
varying; forward, and forward + backward; complex64, and 16-bit inputs and outputs
(complex32, bf16 pairs), which move half the bytes.

The interpreter is slow, so each case meters one batch element and one channel block of
the benchmark size with the benchmark size's chunk: the kernels' traffic per element
depends on neither B nor the number of channel blocks. The compiled configurations are
the benchmark size's own: its launcher is called on meta tensors and its launches
recorded (``bench_run``), so registers, occupancy, grid and bytes in flight are those of
the benchmark configuration.

One case reads b through a channel stride of 4 (a view ``x[..., ::4]``): the kernels read
inputs where they lie, and the case's sector bytes show what that costs.
"""

from __future__ import annotations

import torch

from kernels.report import ReportCase
from kernels.scan import dtypes
from kernels.scan.traffic import bytes_per_element

#: Goals the tests assert on measured bytes per element (complex64 b).
FORWARD_TARGET, FORWARD_BACKWARD_TARGET = 16.5, 41.0
VARYING_FORWARD_TARGET, VARYING_FORWARD_BACKWARD_TARGET = 24.0, 64.0
#: With 16-bit b, h and gradients the per-chunk carry (fp32/fp64, unchanged) weighs double.
HALF_FORWARD_TARGET, HALF_FORWARD_BACKWARD_TARGET = 8.5, 21.0
STRIDE = 4  # the strided case's channel stride
_NAMES = {torch.complex64: "", torch.complex32: " complex32", torch.bfloat16: " bf16-pairs"}


def _inputs(B: int, T: int, N: int, *, varying: bool, dtype: torch.dtype, stride: int,
            device: str):
    """lam on the LRU's ring (|lam| in [0.9, 0.999]) and b standard normal, b stored as
    ``dtype`` with channel stride ``stride``; empty (meta) tensors on ``device="meta"``."""
    shape = (B, T, N) if varying else (N,)
    if device == "meta":
        lam = torch.empty(shape, dtype=torch.complex64, device=device)
        wide = torch.empty((B, T, N * stride), dtype=torch.complex64, device=device)
    else:
        gen = torch.Generator().manual_seed(0)
        lam = torch.polar(0.9 + 0.099 * torch.rand(shape, generator=gen),
                          6.283 * torch.rand(shape, generator=gen))
        wide = torch.randn((B, T, N * stride), dtype=torch.complex64, generator=gen)
    b = dtypes.from_complex(wide, dtype) if dtype != torch.complex64 else wide
    return lam, (b[:, :, ::stride] if dtype.is_complex else b[:, :, ::stride, :])


def scan_case(B: int, T: int, N: int, *, backward: bool, varying: bool,
              dtype: torch.dtype = torch.complex64, stride: int = 1) -> ReportCase:
    """The report case of a ``(B, T, N)`` scan, metered on a ``(1, T, block_n)`` slice and
    compiled at ``(B, T, N)``."""
    from kernels.scan import triton_scan

    plan = triton_scan.plan_scan(B, T, N)

    def launch(lam, b):
        h = triton_scan.triton_scan_forward(lam, b, None, False, plan.chunk)
        if backward:
            grad_h = torch.empty_like(h) if h.is_meta else h.clone()
            triton_scan.triton_scan_backward(lam, h, None, grad_h, False, plan.chunk, b.dtype)

    def sized(B_: int, N_: int, device: str):
        return _inputs(B_, T, N_, varying=varying, dtype=dtype, stride=stride, device=device)

    kind = "scan_fwdbwd" if backward else "scan_fwd"
    half = dtype != torch.complex64
    targets = {(False, False): FORWARD_TARGET, (True, False): FORWARD_BACKWARD_TARGET,
               (False, True): VARYING_FORWARD_TARGET, (True, True): VARYING_FORWARD_BACKWARD_TARGET}
    target = (HALF_FORWARD_BACKWARD_TARGET if backward else HALF_FORWARD_TARGET) if half else (
        targets[backward, varying])
    schedule = "single pass" if plan.single_pass else f"look-back, chunks of {plan.chunk}"
    strided = f" channel-stride {stride}" if stride > 1 else ""
    return ReportCase(
        name=f"{kind}{'_varying' if varying else ''}{_NAMES[dtype]}{strided} {B}x{T}x{N}",
        family="scan",
        elements=T * plan.block_n,
        unit="complex element",
        model_bytes_per_element=bytes_per_element(
            backward=backward, varying=varying, itemsize=dtypes.element_bytes(dtype)),
        run=lambda: launch(*sized(1, plan.block_n, "cpu")),
        target_bytes_per_element=None if stride > 1 else target,
        note=f"{schedule}; metered on 1x{T}x{plan.block_n}, compiled at {B}x{T}x{N}",
        bench_run=lambda: launch(*sized(B, N, "meta")),
        stage_elements=lambda kwargs: kwargs["BLOCK_T"] * kwargs["BLOCK_N"],
    )


def report_cases() -> list[ReportCase]:
    return [
        scan_case(16, 1024, 512, backward=False, varying=False),
        scan_case(16, 4096, 512, backward=False, varying=False),
        scan_case(16, 1024, 512, backward=True, varying=False),
        scan_case(16, 4096, 512, backward=True, varying=False),
        scan_case(16, 1024, 512, backward=False, varying=True),
        scan_case(16, 1024, 512, backward=True, varying=True),
        scan_case(8, 4096, 256, backward=False, varying=False),
        scan_case(8, 4096, 256, backward=True, varying=False),
        scan_case(16, 1024, 512, backward=False, varying=False, dtype=torch.complex32),
        scan_case(16, 1024, 512, backward=True, varying=False, dtype=torch.bfloat16),
        scan_case(8, 4096, 256, backward=True, varying=False, dtype=torch.bfloat16),
        scan_case(16, 1024, 512, backward=False, varying=False, stride=STRIDE),
    ]
