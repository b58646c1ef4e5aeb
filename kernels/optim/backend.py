"""Choosing between the reference (``"torch"``) and fused (``"triton"``) optimizer steps."""

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

from kernels.backend import OPTIM, check_choice, env_choice
from kernels.backend import OPTIM_TRITON_DTYPES as TRITON_DTYPES
from kernels.backend import resolve_optim_backend as resolve_backend
from kernels.optim.reference import adamw_step_ref, grad_sq_norms_ref, ngn_update_ref

BACKENDS = OPTIM.choices
__all__ = ["BACKENDS", "TRITON_DTYPES", "StepKernels", "check_backend", "env_backend",
           "resolve_backend", "step_kernels"]


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
