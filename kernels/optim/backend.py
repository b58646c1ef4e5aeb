"""Choosing between the reference (``"torch"``) and fused (``"triton"``) optimizer steps."""

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

from kernels.backend import OPTIM, check_choice, env_choice
from kernels.backend import OPTIM_TRITON_DTYPES as TRITON_DTYPES
from kernels.backend import resolve_optim_backend as resolve_backend
from kernels.optim import cpu_fused
from kernels.optim.reference import (
    BoundStep,
    SqNormsStep,
    adamw_step_ref,
    grad_sq_norms_ref,
    ngn_update_ref,
)

BACKENDS = OPTIM.choices
__all__ = ["BACKENDS", "CPU", "REFERENCE", "TRITON_DTYPES", "StepKernels", "check_backend",
           "env_backend", "kernels_for", "resolve_backend", "step_kernels"]


class StepKernels(NamedTuple):
    """One backend's step functions (signatures as in ``kernels.optim.reference``), and
    the same steps prepared for given tensors, as the optimizers keep them (each has
    ``set_grads`` to point it at new gradients).

    ``checks_in_update``: the prepared NGN update can sum ‖g‖² as it reads the gradients
    and move a step already taken to another γ (``taken=``, ``sq_norm=``), which one-pass
    NGN checks its hooks' norms with; otherwise it checks them with a norm pass.
    """

    adamw_step: Callable[..., None]
    grad_sq_norms: Callable[[list[list[Tensor]]], list[Tensor]]
    ngn_update: Callable[..., None]
    prepare_adamw: Callable[..., object]
    prepare_sq_norms: Callable[[list[list[Tensor]]], object]
    prepare_ngn_update: Callable[..., object]
    checks_in_update: bool = False


def env_backend() -> str:
    """The backend ``LSB_OPTIM_BACKEND`` forces for ``backend="auto"``: auto, torch or triton."""
    return env_choice(OPTIM)


def check_backend(backend: str) -> str:
    return check_choice(OPTIM, backend)


REFERENCE = StepKernels(
    adamw_step_ref, grad_sq_norms_ref, ngn_update_ref,
    lambda *lists: BoundStep(adamw_step_ref, *lists),
    SqNormsStep,
    lambda *lists: BoundStep(ngn_update_ref, *lists),
)  # fmt: skip


# The torch backend on the CPU: PyTorch's fused CPU kernels where they apply (they pass
# any tensor they cannot fuse to the reference).
CPU = REFERENCE._replace(
    adamw_step=cpu_fused.adamw_step_cpu,
    ngn_update=cpu_fused.ngn_update_cpu,
    prepare_adamw=lambda *lists: cpu_fused.AdamWStep(*lists, own_counts=True),
    prepare_ngn_update=cpu_fused.NgnUpdate,
)


def kernels_for(backend: str, tensors: list[Tensor]) -> StepKernels:
    """The kernels ``backend`` (``"auto"``, ``"torch"``, ``"triton"``) runs these real
    parameter tensors with."""
    resolved = resolve_backend(backend, tensors)
    if resolved == "torch" and tensors[0].device.type == "cpu":
        return CPU
    return step_kernels(resolved)


def step_kernels(backend: str) -> StepKernels:
    """The step functions of a resolved backend; Triton is imported only when used."""
    if backend == "triton":
        from kernels.optim import triton_optim as T

        return StepKernels(
            T.adamw_step_triton, T.grad_sq_norms_triton, T.ngn_update_triton,
            T.AdamWStep, T.SqNormStep, T.NgnStep, checks_in_update=True,
        )  # fmt: skip
    return REFERENCE
