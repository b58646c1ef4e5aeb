"""The scan's cases in the static GPU report (:mod:`kernels.report`).

Benchmark sizes of ``bench/cases.py``: (16, T, 512), where batch and channels alone fill
the GPU (the single pass), and (8, 4096, 256), where they do not (the chained scan with
decoupled look-back over chunks of time); lam shared over batch and time (the LRU) or
varying; forward, and forward + backward. The interpreter is slow, so each case meters
one batch element and one channel block of the benchmark size, launched with the
benchmark size's plan (checked): the kernels' traffic per element depends on neither B
nor the number of channel blocks.
"""

from __future__ import annotations

import torch

from bench.inputs import scan_inputs
from kernels.report import ReportCase
from kernels.scan.traffic import bytes_per_element

FORWARD_TARGET, FORWARD_BACKWARD_TARGET = 16.5, 41.0
VARYING_FORWARD_TARGET, VARYING_FORWARD_BACKWARD_TARGET = 24.0, 64.0


def _inputs(T: int, N: int, varying: bool):
    lam, b, _, _ = scan_inputs(1, T, N, modulus=(0.9, 0.999), varying=varying)
    return lam, b


def scan_case(B: int, T: int, N: int, *, backward: bool, varying: bool) -> ReportCase:
    """The report case of a ``(B, T, N)`` scan, metered on a ``(1, T, block_n)`` slice."""
    from kernels.scan import triton_scan

    plan = triton_scan.plan_scan(B, T, N)
    block_n = plan.block_n

    def run() -> None:
        sliced = triton_scan.plan_scan(1, T, block_n, plan.chunk)
        if sliced != plan:
            raise RuntimeError(f"the metered slice's plan {sliced} is not the benchmark's {plan}")
        lam, b = _inputs(T, block_n, varying)
        h = triton_scan.triton_scan_forward(lam, b, None, False, plan.chunk)
        if backward:
            triton_scan.triton_scan_backward(lam, h, None, torch.randn_like(b), False,
                                             plan.chunk)

    kind = "scan_fwdbwd" if backward else "scan_fwd"
    targets = {(False, False): FORWARD_TARGET, (True, False): FORWARD_BACKWARD_TARGET,
               (False, True): VARYING_FORWARD_TARGET, (True, True): VARYING_FORWARD_BACKWARD_TARGET}
    schedule = "single pass" if plan.single_pass else f"look-back, chunks of {plan.chunk}"
    return ReportCase(
        name=f"{kind}{'_varying' if varying else ''} {B}x{T}x{N}",
        family="scan",
        elements=T * block_n,
        unit="complex64 element",
        model_bytes_per_element=bytes_per_element(backward=backward, varying=varying),
        run=run,
        target_bytes_per_element=targets[backward, varying],
        note=f"{schedule}; metered on 1x{T}x{block_n} with the benchmark size's plan",
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
    ]
