"""The optimizer steps' cases in the static GPU report (:mod:`kernels.report`).

Benchmark sizes (``bench/cases.py``): one tensor of 2^24 parameters and 1000 tensors of
2^14. The interpreter is slow, so each case meters a slice with the library's launch
configuration: 4 programs' worth of the one tensor, 8 of the 1000 tensors. Bytes per
parameter do not depend on the count beyond the per-program pointer-table reads
(7 × 8 bytes per 8,192 parameters). The 2-byte case is fp16: bf16 loads through the
pointer table read zeros under the Triton interpreter (3.9), and both share one
launch configuration.

NGN is metered both ways: two-pass (gradients set by hand: the ‖g‖² kernel, then the
update) and one-pass (``one_pass=True`` after a backward: the update, summing ‖g‖² as
it reads the gradients, then the same kernel's second launch that would move the step
to that sum's γ, whose programs return at once since the hooks' sum agrees; the hooks'
read of each gradient happens in the backward, in torch's norm, which the meter does not
see and the step does not pay).
"""

from __future__ import annotations

from functools import partial

import torch

from kernels.inputs import optim_params
from kernels.optim import traffic
from kernels.report import ReportCase

ONE_TENSOR, MANY_TENSORS = (1, 1 << 24), (1000, 1 << 14)
NGN_ONE_PASS_TARGET = 13.0  # bytes per fp32 parameter (SGD moves 12)
_ITEMSIZE = {torch.float32: 4, torch.float16: 2}


def _metered_shape(size: tuple[int, int]) -> tuple[int, int]:
    from kernels.optim.triton_optim import CHUNK

    count, numel = size
    return (1, 4 * CHUNK) if count == 1 else (8, numel)


def _params(shape: tuple[int, int], dtype: torch.dtype, grads: bool = True) -> list[torch.Tensor]:
    count, numel = shape
    params = optim_params([numel] * count, dtype=dtype)
    if not grads:
        for p in params:
            p.grad = None
    return params


def _run_adamw(shape, dtype):
    from kernels.optim import AdamW

    def run() -> None:
        AdamW(_params(shape, dtype), lr=1e-3, weight_decay=1e-2, backend="triton").step()

    return run


def _run_grad_sq_norm(shape, dtype):
    from kernels.optim.triton_optim import grad_sq_norms_triton

    def run() -> None:
        grad_sq_norms_triton([[p.grad for p in _params(shape, dtype)]])

    return run


def _run_ngn(shape, dtype, one_pass: bool):
    from kernels.optim import NGN

    def run() -> None:
        params = _params(shape, dtype, grads=not one_pass)
        opt = NGN(params, sigma=1e-3, backend="triton", one_pass=one_pass)
        if one_pass:
            inputs = _params(shape, dtype, grads=False)
            dots = [(p * x.detach()).sum() for p, x in zip(params, inputs, strict=True)]
            torch.stack(dots).sum().backward()
        opt.step(loss=torch.tensor(1.0), validate=False)
        if opt.last_step_one_pass != one_pass:
            raise RuntimeError(f"NGN took the {'two' if one_pass else 'one'}-pass norm")

    return run


def _case(kernel: str, size, dtype, run_for, model: float, target: float | None = None):
    shape = _metered_shape(size)
    dtype_name = str(dtype).removeprefix("torch.")
    return ReportCase(
        name=f"{kernel} {dtype_name} {size[0]}x{size[1]}",
        family="optim",
        elements=shape[0] * shape[1],
        unit=f"{dtype_name} parameter",
        model_bytes_per_element=model,
        run=run_for(shape, dtype),
        target_bytes_per_element=target,
        note=f"metered on {shape[0]}x{shape[1]} with the benchmark size's launch configuration",
    )


def report_cases() -> list[ReportCase]:
    cases = []
    for size in (ONE_TENSOR, MANY_TENSORS):
        for dtype in (torch.float32, torch.float16) if size == ONE_TENSOR else (torch.float32,):
            model = traffic.adamw_bytes_per_param(_ITEMSIZE[dtype])
            cases.append(_case("adamw", size, dtype, _run_adamw, model))
        fp32 = torch.float32
        two_pass, one_pass = partial(_run_ngn, one_pass=False), partial(_run_ngn, one_pass=True)
        cases += [
            _case("ngn two-pass", size, fp32, two_pass, traffic.ngn_bytes_per_param()),
            _case(
                "ngn one-pass",
                size,
                fp32,
                one_pass,
                traffic.ngn_bytes_per_param(one_pass=True),
                NGN_ONE_PASS_TARGET,
            ),  # fmt: skip
        ]
    cases.append(
        _case(
            "grad_sq_norm",
            ONE_TENSOR,
            torch.float32,
            _run_grad_sq_norm,
            traffic.grad_sq_norm_bytes_per_param(),
        )  # fmt: skip
    )
    return cases
