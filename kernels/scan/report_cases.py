"""The scan's cases in the static GPU report (:mod:`kernels.report`).

Benchmark size (16, T, 512) with lam shared over batch and time (the LRU) or varying,
forward and forward + backward. The interpreter is slow, so each case meters one batch
element and one 64-channel block of the benchmark size, launched with the benchmark
size's chunk length: the kernels' traffic per element does not depend on B or on the
number of channel blocks.
"""

from __future__ import annotations

import torch

from kernels.report import ReportCase
from kernels.scan.traffic import FORWARD_BACKWARD_BYTES_PER_ELEMENT, FORWARD_BYTES_PER_ELEMENT

BENCH_B, BENCH_N = 16, 512
SLICE_N = 64
# Extra model bytes per element with a time-varying lam: one read forward; a read and a
# write (grad_lam) backward.
VARYING_FORWARD, VARYING_BACKWARD = 8, 16


def _inputs(T: int, varying: bool):
    gen = torch.Generator().manual_seed(0)
    shape = (1, T, SLICE_N) if varying else (SLICE_N,)
    radius = 0.9 + 0.099 * torch.rand(shape, generator=gen)
    lam = torch.polar(radius, 2 * torch.pi * torch.rand(shape, generator=gen))
    b = torch.randn(1, T, SLICE_N, dtype=torch.complex64, generator=gen)
    return lam, b


def _case(T: int, *, backward: bool, varying: bool) -> ReportCase:
    from kernels.scan import triton_scan

    def run() -> None:
        lam, b = _inputs(T, varying)
        chunk = triton_scan._default_chunk(BENCH_B, T, BENCH_N // triton_scan.MAX_BLOCK_N)
        h = triton_scan.triton_scan_forward(lam, b, None, False, chunk)
        if backward:
            triton_scan.triton_scan_backward(lam, h, None, torch.randn_like(b), False, chunk)

    kind = "scan_fwdbwd" if backward else "scan_fwd"
    model = FORWARD_BACKWARD_BYTES_PER_ELEMENT if backward else FORWARD_BYTES_PER_ELEMENT
    if varying:
        model += VARYING_FORWARD + (VARYING_BACKWARD if backward else 0)
    return ReportCase(
        name=f"{kind}{'_varying' if varying else ''} {BENCH_B}x{T}x{BENCH_N}",
        family="scan",
        elements=T * SLICE_N,
        unit="complex64 element",
        model_bytes_per_element=model,
        run=run,
        note=f"metered on 1x{T}x{SLICE_N} with the benchmark size's launch configuration",
    )


def report_cases() -> list[ReportCase]:
    return [
        _case(1024, backward=False, varying=False),
        _case(4096, backward=False, varying=False),
        _case(1024, backward=True, varying=False),
        _case(1024, backward=False, varying=True),
        _case(1024, backward=True, varying=True),
    ]
