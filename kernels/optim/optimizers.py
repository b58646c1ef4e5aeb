"""AdamW and Adam, ``torch.optim.Optimizer`` classes on the reference and fused steps."""

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from kernels.optim import ops  # noqa: F401 (registers the lsb:: optimizer ops)
from kernels.optim.backend import kernels_for, resolve_backend
from kernels.optim.step_optimizer import GroupPlan, StepOptimizer, real, zeros_state


class AdamW(StepOptimizer):
    """AdamW with decoupled weight decay, as ``torch.optim.AdamW`` (no amsgrad).

    ``p <- p(1 - lr wd)``; ``m <- β1 m + (1-β1) g``; ``v <- β2 v + (1-β2) g²``;
    ``p <- p - lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps)``.

    State per parameter (the same keys and layout as ``torch.optim.AdamW``, so state
    dicts move between the two and between backends): ``step`` (0-dim float32 tensor
    on the parameter's device), ``exp_avg``, ``exp_avg_sq``. State is fp32 for
    bf16/fp16 parameters. Complex parameters are handled as (real, imag) pairs.

    ``backend``: ``"torch"`` (``torch._foreach_*`` reference; on the CPU, torch's fused
    CPU AdamW where it applies), ``"triton"`` (one fused kernel launch per group and
    dtype, which also counts the step) or ``"auto"`` (Triton for CUDA float32/bf16/fp16
    parameters, else torch; the ``LSB_OPTIM_BACKEND`` environment variable overrides
    ``"auto"``). Neither backend synchronizes with the device.

    ``capturable``, as in ``torch.optim``: whether the step may be captured in a CUDA
    graph (capturing a step of a group without it raises). The fused steps keep their
    pointer tables on the device and never sync, so this costs nothing here; a step
    whose tensors have not moved since the last one does no per-tensor host work.
    """

    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        backend: str = "auto",
        capturable: bool = False,
    ):
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, capturable=capturable
        )
        super().__init__(params, defaults, backend)

    def _check_group(self, group: dict) -> None:
        beta1, beta2 = group["betas"]
        if not 0.0 <= group["lr"]:
            raise ValueError(f"lr must be >= 0, got {group['lr']}")
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {group['betas']}")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"eps must be >= 0, got {group['eps']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']}")

    def _build_plan(self) -> list[GroupPlan]:
        plan = []
        for group, with_grads, positions in self._groups_with_grads():
            columns = [], [], [], [], []  # params, grads, exp_avgs, exp_avg_sqs, steps
            for p in with_grads:
                state = self._adamw_state(p)
                tensors = (p, p.grad, state["exp_avg"], state["exp_avg_sq"])
                for column, t in zip(columns, (*map(real, tensors), state["step"]), strict=True):
                    column.append(t)
            prepared = kernels_for(self.backend, columns[0]).prepare_adamw(*columns)
            # The prepared step may keep the counts in one tensor: the state holds its views.
            for p, step in zip(with_grads, getattr(prepared, "steps", columns[4]), strict=True):
                self.state[p]["step"] = step
            plan.append(GroupPlan(group, with_grads, positions, prepared))
        return plan

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One step; ``closure`` (optional) recomputes and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if torch.compiler.is_compiling():
            self._traced_step()
            return loss
        self._check_capture()
        plan = self._plan()
        try:
            for entry in plan.groups:
                group = entry.group
                beta1, beta2 = group["betas"]
                entry.prepared(
                    entry.grads(plan.grads),
                    group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                )  # fmt: skip
        finally:
            plan.release()
        return loss

    def _traced_step(self) -> None:
        """The step as ``torch.compile`` traces it: the custom ops on plain lists."""
        for group in self.param_groups:
            columns = [], [], [], [], []
            for p in self._params_with_grads(group):
                state = self._adamw_state(p)
                tensors = (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"])
                for column, t in zip(columns, tensors, strict=True):
                    column.append(t)
            if not columns[0]:
                continue
            beta1, beta2 = group["betas"]
            torch.ops.lsb.adamw_step_(
                *columns, group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                resolve_backend(self.backend, [real(p) for p in columns[0]]),
            )  # fmt: skip

    def _adamw_state(self, p: Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = zeros_state(p)
            state["exp_avg_sq"] = zeros_state(p)
        return state


class Adam(AdamW):
    """:class:`AdamW` with ``weight_decay=0`` by default (any decay stays decoupled)."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        backend: str = "auto",
        capturable: bool = False,
    ):
        super().__init__(
            params, lr, betas, eps, weight_decay, backend=backend, capturable=capturable
        )
