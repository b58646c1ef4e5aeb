"""Choosing between the reference (``"torch"``) and fused (``"triton"``) optimizer steps."""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from kernels.backend import OPTIM, check_choice, env_choice, triton_interpreted
from kernels.optim.reference import adamw_step_ref, grad_sq_norms_ref, ngn_update_ref

BACKENDS = OPTIM.choices
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class StepKernels(NamedTuple):
    """One backend's step functions (signatures as in ``kernels.optim.reference``)."""

    adamw_step: Callable[..., None]
    grad_sq_norms: Callable[[list[list[Tensor]]], list[Tensor]]
    ngn_update: Callable[..., None]


def env_backend() -> str:
    """The backend ``LSB_OPTIM_BACKEND`` forces for ``backend="auto"``: auto, torch or triton."""
    return env_choice(OPTIM)


def check_backend(backend: str) -> str:
    return check_choice(OPTIM, backend)


def resolve_backend(backend: str, tensors: list[Tensor]) -> str:
    """``"torch"`` or ``"triton"`` for these (real) tensors.

    ``"auto"`` (after ``LSB_OPTIM_BACKEND``) picks Triton when every tensor is on CUDA in a
    dtype the kernels support, else the reference. An explicit ``"triton"`` raises
    ``ValueError`` for tensors it cannot run on (CPU tensors run only under the Triton
    interpreter, ``TRITON_INTERPRET=1``).
    """
    choice = env_backend() if backend == "auto" else backend
    if choice == "auto":
        fused = all(t.is_cuda and t.dtype in TRITON_DTYPES for t in tensors)
        return "triton" if fused else "torch"
    if choice == "triton":
        interpreted = triton_interpreted()
        for t in tensors:
            if t.dtype not in TRITON_DTYPES:
                raise ValueError(
                    f"the triton backend supports float32, bfloat16 and float16 parameters "
                    f"(complex64 as real pairs), got {t.dtype}; use backend='torch'"
                )
            if not (t.is_cuda or (t.device.type == "cpu" and interpreted)):
                raise ValueError(
                    f"the triton backend needs CUDA tensors (or TRITON_INTERPRET=1 for CPU "
                    f"tensors), got a tensor on {t.device}"
                )
    return choice


def step_kernels(backend: str) -> StepKernels:
    """The step functions of a resolved backend; Triton is imported only when used."""
    if backend == "triton":
        from kernels.optim import triton_optim

        return StepKernels(
            triton_optim.adamw_step_triton,
            triton_optim.grad_sq_norms_triton,
            triton_optim.ngn_update_triton,
        )
    return StepKernels(adamw_step_ref, grad_sq_norms_ref, ngn_update_ref)
