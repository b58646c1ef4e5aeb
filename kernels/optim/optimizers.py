"""``torch.optim.Optimizer`` classes on top of the reference and fused step functions."""

import math
import numbers
from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer

from kernels.optim.backend import StepKernels, check_backend, resolve_backend, step_kernels
from kernels.optim.cpu_fused import adamw_step_cpu, ngn_update_cpu
from kernels.optim.hooks import GradNormSlots, sq_norms_with_slots
from kernels.optim.reference import grad_sq_norms_ref, ngn_scale

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _state_dtype(p: Tensor) -> torch.dtype:
    """Optimizer state is fp32 for bf16/fp16 parameters, else the parameter's dtype."""
    return torch.float32 if p.dtype in _LOW_PRECISION else p.dtype


def _zeros_state(p: Tensor) -> Tensor:
    return torch.zeros_like(p, dtype=_state_dtype(p), memory_format=torch.preserve_format)


def _real(t: Tensor) -> Tensor:
    """Complex tensors are updated as (real, imag) pairs, as ``torch.optim`` does."""
    return torch.view_as_real(t) if t.is_complex() else t


# The torch backend on the CPU: PyTorch's fused CPU kernels where they apply.
_CPU_KERNELS = StepKernels(adamw_step_cpu, grad_sq_norms_ref, ngn_update_cpu)


def _kernels(backend: str, tensors: list[Tensor]) -> StepKernels:
    resolved = resolve_backend(backend, tensors)
    if resolved == "torch" and tensors[0].device.type == "cpu":
        return _CPU_KERNELS  # which passes any tensor it cannot fuse to the reference
    return step_kernels(resolved)


class _StepOptimizer(Optimizer):
    """Shared plumbing: backend choice, gradient checks, dtype-preserving state loading."""

    _state_keys: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict, backend: str):
        self.backend = check_backend(backend)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1])

    def _check_group(self, group: dict) -> None:
        """Validate one param group's hyperparameters (each optimizer defines its own)."""
        raise NotImplementedError(f"{type(self).__name__} must define _check_group")

    def _params_with_grads(self, group: dict) -> list[Tensor]:
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise ValueError(f"{type(self).__name__} does not support sparse gradients")
            params.append(p)
        return params

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        # torch casts every state tensor to its parameter's dtype and leaves "step" where
        # it was saved; restore fp32 moments of bf16/fp16 parameters from the saved
        # tensors and keep step counts on the parameter's device.
        saved = state_dict["state"]
        params = [p for group in self.param_groups for p in group["params"]]
        for index, p in enumerate(params):
            state = self.state.get(p)
            if not state:
                continue
            if "step" in state:
                state["step"] = torch.as_tensor(state["step"], dtype=torch.float32).to(p.device)
            if p.dtype in _LOW_PRECISION:
                for key in self._state_keys:
                    if key in state:
                        state[key] = saved[index][key].to(device=p.device, dtype=torch.float32)


class AdamW(_StepOptimizer):
    """AdamW with decoupled weight decay, as ``torch.optim.AdamW`` (no amsgrad).

    ``p <- p(1 - lr wd)``; ``m <- β1 m + (1-β1) g``; ``v <- β2 v + (1-β2) g²``;
    ``p <- p - lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps)``.

    State per parameter (the same keys and layout as ``torch.optim.AdamW``, so state
    dicts move between the two and between backends): ``step`` (0-dim float32 tensor
    on the parameter's device), ``exp_avg``, ``exp_avg_sq``. State is fp32 for
    bf16/fp16 parameters. Complex parameters are handled as (real, imag) pairs.

    ``backend``: ``"torch"`` (``torch._foreach_*`` reference), ``"triton"`` (one fused
    kernel launch per group and dtype) or ``"auto"`` (Triton for CUDA float32/bf16/fp16
    parameters, else torch; the ``LSB_OPTIM_BACKEND`` environment variable overrides
    ``"auto"``). Neither backend synchronizes with the device.
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
    ):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
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

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One step; ``closure`` (optional) recomputes and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for p in self._params_with_grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = _zeros_state(p)
                    state["exp_avg_sq"] = _zeros_state(p)
                params.append(_real(p))
                grads.append(_real(p.grad))
                exp_avgs.append(_real(state["exp_avg"]))
                exp_avg_sqs.append(_real(state["exp_avg_sq"]))
                steps.append(state["step"])
            if not params:
                continue
            beta1, beta2 = group["betas"]
            kernels = _kernels(self.backend, params)
            kernels.adamw_step(
                params, grads, exp_avgs, exp_avg_sqs, steps,
                lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                weight_decay=group["weight_decay"],
            )  # fmt: skip
        return loss


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
    ):
        super().__init__(params, lr, betas, eps, weight_decay, backend=backend)


_LOSS_ERROR = (
    "NGN needs a non-negative, finite loss: its step size σ/(1 + σ‖g‖²/(2f)) comes from a "
    "Gauss-Newton model of f ≥ 0 (e.g. cross-entropy or squared error); got {}"
)


class NGN(_StepOptimizer):
    """NGN, the non-negative Gauss-Newton step size (Orvieto & Xiao 2023; thesis §4.3).

    ``γ = σ / (1 + σ‖g‖²/(2f))``, ``x <- x - γ g``, with ``f`` the minibatch loss. ``γ``
    lies in ``[1/(L + 1/σ), σ]`` for an L-smooth f ≥ 0; σ→0 gives GD with step σ.

    Parameter groups: σ may differ per group. The step minimizes the same
    Gauss-Newton model with a per-group regularizer ``Σ_j ‖Δx_j‖²/(2σ_j)``, which gives
    ``γ_j = σ_j / (1 + Σ_k σ_k‖g_k‖²/(2f))``: ‖g‖² couples all groups, and with equal σ
    splitting parameters into groups changes nothing. With one group this is exactly
    the formula above.

    Extensions beyond the thesis, both off by default:

    - ``weight_decay``: decoupled, scaled by the step as in AdamW: ``p <- p(1 - γ wd)``.
    - ``momentum`` β: heavy ball on the NGN step, ``m <- β m + (1-β) γ g``,
      ``p <- p - m``; the buffer starts at zero, so the first steps are shorter by
      ``1 - β^k``.

    ``step(closure)`` calls the closure under ``torch.enable_grad()`` for the loss;
    ``step(loss=...)`` takes it as a float or a 1-element tensor. Each group records its
    last step size as ``group["last_gamma"]`` (a 0-dim device tensor);
    :meth:`last_step_sizes` returns them as floats for plotting (Fig. 41).

    All parameters must be on one device (the step couples them). Complex parameters
    are handled as (real, imag) pairs; state (``momentum_buffer`` when β > 0) is fp32
    for bf16/fp16 parameters. ``backend`` as in :class:`AdamW`; the fused path is one
    ‖g‖² reduction over all groups plus one update launch per group and dtype.

    ``one_pass=True`` computes ‖g‖² during the backward instead
    (:mod:`kernels.optim.hooks`): a gradient hook records each parameter's norm as
    autograd accumulates it, and the step reads only p and g once, as SGD does (12 B
    per fp32 parameter instead of 16). Groups whose gradients did not come from a
    backward as they are now (set by hand, clipped, rescaled) take the two-pass norm;
    :attr:`last_step_one_pass` says whether every group took the hooks' norms. Every
    backward then pays one read of each gradient, also backwards not followed by a
    step, and one small reduction per tensor (10–20 µs of host time each): with many
    small tensors the two-pass step's single fused reduction can cost less. Writes that
    bypass autograd's version counters go unseen (DDP with
    ``gradient_as_bucket_view=True``): keep the two-pass default there.
    """

    _state_keys = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable,
        sigma: float = 1.0,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        *,
        backend: str = "auto",
        one_pass: bool = False,
    ):
        defaults = dict(sigma=sigma, weight_decay=weight_decay, momentum=momentum)
        self._norm_slots = GradNormSlots(self) if one_pass else None
        self.last_step_one_pass = False
        super().__init__(params, defaults, backend)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        if self._norm_slots is not None:
            self._norm_slots.register(self.param_groups[-1]["params"])

    def _check_group(self, group: dict) -> None:
        if not group["sigma"] > 0.0:
            raise ValueError(f"sigma must be > 0, got {group['sigma']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']}")
        if not 0.0 <= group["momentum"] < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {group['momentum']}")

    @staticmethod
    def _loss_tensor(loss, device: torch.device, validate: bool) -> tuple[Tensor, Tensor | None]:
        """The loss as a 0-dim tensor on ``device``, plus a device-side validity flag
        when it was not checked on the host."""
        if isinstance(loss, Tensor):
            if loss.numel() != 1 or loss.is_complex():
                raise ValueError(
                    f"NGN needs a real scalar loss, got a {loss.dtype} tensor of shape "
                    f"{tuple(loss.shape)}"
                )
            f = loss.detach().reshape(()).to(device)
            valid = torch.isfinite(f) & (f >= 0)
            if not validate:
                return f, valid
            if not bool(valid):  # the one host sync of a validated step
                raise ValueError(_LOSS_ERROR.format(f.item()))
            return f, None
        if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
            raise ValueError(f"NGN needs the loss as a float or a tensor, got {type(loss)}")
        value = float(loss)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(_LOSS_ERROR.format(value))
        return torch.tensor(value, device=device), None

    @torch.no_grad()
    def step(
        self,
        closure: Callable[[], Tensor] | None = None,
        *,
        loss: Tensor | float | None = None,
        validate: bool = True,
    ) -> Tensor | float:
        """One NGN step; returns the loss.

        Pass exactly one of ``closure`` (returns the loss) and ``loss``. A negative,
        NaN or infinite loss raises ``ValueError``. For a tensor loss that check reads
        it on the host (one sync); with ``validate=False`` there is no sync and an
        invalid loss instead makes this step's γ NaN, which poisons the parameters
        visibly rather than taking a silently wrong step.
        """
        if (closure is None) == (loss is None):
            raise ValueError(
                "NGN.step needs the loss: pass closure= (returning the loss) or loss=, "
                "exactly one of them"
            )
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        groups = []
        for group in self.param_groups:
            params, grads, buffers = [], [], []
            for p in self._params_with_grads(group):
                if group["momentum"] != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = _zeros_state(p)
                    buffers.append(_real(state["momentum_buffer"]))
                params.append(_real(p))
                grads.append(_real(p.grad))
            groups.append((group, params, grads, buffers or None))
        all_params = [p for _, params, _, _ in groups for p in params]
        devices = {p.device for p in all_params}
        if len(devices) > 1:
            raise ValueError(
                f"NGN couples all parameters through ‖g‖²; put them on one device, "
                f"got {sorted(map(str, devices))}"
            )
        device = devices.pop() if devices else torch.device("cpu")
        f, valid = self._loss_tensor(loss, device, validate)
        if not all_params:
            return loss

        active = [entry for entry in groups if entry[1]]
        kernels = _kernels(self.backend, all_params)
        slots = getattr(self, "_norm_slots", None)  # absent in optimizers unpickled
        sq_norms, from_slots = sq_norms_with_slots(
            slots, [(group["params"], grads) for group, _, grads, _ in active],
            kernels.grad_sq_norms,
        )  # fmt: skip
        self.last_step_one_pass = from_slots == len(active)
        weighted = sum(group["sigma"] * n for (group, *_), n in zip(active, sq_norms, strict=True))
        scale = ngn_scale(f, weighted)
        if valid is not None:
            scale = torch.where(valid, scale, torch.full_like(scale, math.nan))
        for group in self.param_groups:
            group["last_gamma"] = group["sigma"] * scale
        for group, params, grads, buffers in active:
            gamma, decay, beta = group["last_gamma"], group["weight_decay"], group["momentum"]
            kernels.ngn_update(params, grads, buffers, gamma, decay, beta)
        if slots is not None:
            slots.clear()
        return loss

    def last_step_sizes(self) -> list[float]:
        """Each group's last γ as a float (NaN before the first step); syncs once."""
        gammas = [group.get("last_gamma") for group in self.param_groups]
        known = [g.detach().float() for g in gammas if g is not None]
        values = iter(torch.stack([g.to(known[0].device) for g in known]).tolist() if known else [])
        return [math.nan if g is None else next(values) for g in gammas]
