"""NGN, the non-negative Gauss-Newton step size, as a ``torch.optim.Optimizer``."""

import math
import numbers
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from kernels.optim import ops  # noqa: F401 (registers the lsb:: optimizer ops)
from kernels.optim.backend import kernels_for, resolve_backend
from kernels.optim.hooks import GradNormSlots, refuse_distributed
from kernels.optim.reference import ngn_scale
from kernels.optim.step_optimizer import GroupPlan, StepOptimizer, real, zeros_state


class _NgnPlan(NamedTuple):
    """NGN's step plan: the groups, the prepared ‖g‖² over all of them, the kernels, and
    which groups have momentum buffers."""

    groups: list[GroupPlan]
    norms: object
    kernels: object
    device: torch.device
    momentum: tuple[bool, ...] = ()

    def momentum_changed(self) -> bool:
        return tuple(e.group["momentum"] != 0 for e in self.groups) != self.momentum

    def group_dicts(self) -> list[dict]:
        return [e.group for e in self.groups]



_LOSS_ERROR = (
    "NGN needs a non-negative, finite loss: its step size σ/(1 + σ‖g‖²/(2f)) comes from a "
    "Gauss-Newton model of f ≥ 0 (e.g. cross-entropy or squared error); got {}"
)


class NGN(StepOptimizer):
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
    ``capturable`` as in :class:`AdamW`; a capturable NGN also checks its loss on the
    device by default (``step(validate=...)``), since a capture cannot read it.

    ``one_pass=True`` computes ‖g‖² during the backward instead
    (:mod:`kernels.optim.hooks`): gradient hooks sum the gradients' norms as autograd
    produces them, one fused norm per bucket of gradients, and the step needs no norm
    pass of its own. Groups whose gradients did not come from a backward as they are
    now (set by hand, clipped, rescaled) take the two-pass norm;
    :attr:`last_step_one_pass` says whether every group took the hooks' norms. Writes
    that autograd's version counters miss (through ``.data``, or a collective on a
    bucket view) are caught too: the step compares the hooks' ‖g‖² with that of the
    gradients it reads and takes the latter's γ when they differ by more than
    ``HOOK_TOLERANCE`` (relative); :attr:`last_step_hooks_agree` is the outcome (a
    0-dim device bool). The Triton update sums ‖g‖² as it reads the gradients, updates
    with the hooks' γ and, in a second launch of the same kernel, moves the step to the
    read γ when they differ (its programs return at once otherwise): 12 B per fp32
    parameter, SGD's traffic, instead of the two-pass 16. The torch backend reads the
    gradients for the check, so one-pass saves nothing there and costs the hooks.
    One-pass refuses to run under ``torch.distributed`` with several ranks, where the
    hooks would see each rank's gradient before the all-reduce.
    """

    _state_keys = ("momentum_buffer",)

    #: The relative difference between the hooks' ‖g‖² and the step's read of it beyond
    #: which the step takes the read one: far above the round-off of the two sums' orders.
    HOOK_TOLERANCE = 1e-5

    def __init__(
        self,
        params: Iterable,
        sigma: float = 1.0,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        *,
        backend: str = "auto",
        one_pass: bool = False,
        capturable: bool = False,
    ):
        if one_pass:
            refuse_distributed()
        defaults = dict(
            sigma=sigma, weight_decay=weight_decay, momentum=momentum, capturable=capturable
        )
        self._norm_slots = GradNormSlots(self) if one_pass else None
        self.last_step_one_pass = False
        self.last_step_hooks_agree: Tensor | None = None
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

    def _build_plan(self) -> _NgnPlan:
        groups = []
        for group, with_grads, positions in self._groups_with_grads():
            params, grads, buffers = [], [], []
            for p in with_grads:
                if group["momentum"] != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = zeros_state(p)
                    buffers.append(real(state["momentum_buffer"]))
                params.append(real(p))
                grads.append(real(p.grad))
            groups.append((group, with_grads, positions, params, grads, buffers or None))
        devices = {p.device for *_, params, _, _ in groups for p in params}
        if len(devices) > 1:
            raise ValueError(
                f"NGN couples all parameters through ‖g‖²; put them on one device, "
                f"got {sorted(map(str, devices))}"
            )
        device = devices.pop() if devices else torch.device("cpu")
        if not groups:
            return _NgnPlan([], None, None, device)
        kernels = kernels_for(self.backend, [p for *_, params, _, _ in groups for p in params])
        entries = [
            GroupPlan(group, with_grads, positions,
                       kernels.prepare_ngn_update(params, grads, buffers))
            for group, with_grads, positions, params, grads, buffers in groups
        ]  # fmt: skip
        norms = kernels.prepare_sq_norms([grads for *_, grads, _ in groups])
        momentum = tuple(buffers is not None for *_, buffers in groups)
        return _NgnPlan(entries, norms, kernels, device, momentum)

    def _refresh_plan(self, plan: _NgnPlan, all_grads: list[Tensor]) -> None:
        super()._refresh_plan(plan.groups, all_grads)
        plan.norms.set_grads([entry.grads(all_grads) for entry in plan.groups])

    def _plan(self):
        plan = super()._plan()
        if plan.groups.momentum_changed():  # a group gained momentum (needs buffers), or lost it
            self._step_plan = None
            plan = super()._plan()
        return plan

    @torch.no_grad()
    def step(
        self,
        closure: Callable[[], Tensor] | None = None,
        *,
        loss: Tensor | float | None = None,
        validate: bool | None = None,
    ) -> Tensor | float:
        """One NGN step; returns the loss.

        Pass exactly one of ``closure`` (returns the loss) and ``loss``. A negative,
        NaN or infinite loss raises ``ValueError``. For a tensor loss that check reads
        it on the host (one sync); with ``validate=False`` (the default of capturable
        optimizers) there is no sync and an invalid loss instead makes this step's γ NaN,
        which poisons the parameters visibly rather than taking a silently wrong step.
        """
        if (closure is None) == (loss is None):
            raise ValueError(
                "NGN.step needs the loss: pass closure= (returning the loss) or loss=, "
                "exactly one of them"
            )
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        tracing = torch.compiler.is_compiling()
        capturing = not tracing and self._check_capture()
        if validate is None:
            validate = not (tracing or self._capturable())
        elif validate and (capturing or tracing):
            raise ValueError(
                "NGN.step(validate=True) reads the loss on the host, which a CUDA graph "
                "capture or a compiled step cannot do; use validate=False (a bad loss "
                "then poisons the step)"
            )
        if tracing:
            self._traced_step(loss)
            return loss
        slots = getattr(self, "_norm_slots", None)  # absent in optimizers unpickled
        if slots is not None:
            refuse_distributed()
        step_plan = self._plan()
        try:
            self._planned_step(step_plan.groups, step_plan.grads, loss, validate, slots)
        finally:
            step_plan.release()
        return loss

    def _planned_step(self, plan: _NgnPlan, all_grads: list, loss, validate: bool, slots):
        f, valid = self._loss_tensor(loss, plan.device, validate)
        if not plan.groups:
            return
        grads = [entry.grads(all_grads) for entry in plan.groups]
        hooked = [slots.group_sq_norm(e.group["params"]) for e in plan.groups] if slots else []
        self.last_step_one_pass = bool(hooked) and all(n is not None for n in hooked)
        self.last_step_hooks_agree = None
        if not any(n is not None for n in hooked):
            scale = self._scale(f, valid, plan.group_dicts(), plan.norms(grads))
            self._update(plan, grads, scale)
        elif plan.kernels.checks_in_update:
            self._one_pass_checked_in_update(f, valid, plan, grads, hooked)
        else:
            read = plan.norms(grads)
            hooked = [r if h is None else h for h, r in zip(hooked, read, strict=True)]
            scale = self._scale(f, valid, plan.group_dicts(), read)
            self.last_step_hooks_agree = self._agree(plan.group_dicts(), hooked, read)
            self._update(plan, grads, scale)
        if slots is not None:
            slots.clear()

    @staticmethod
    def _weighted(groups: list[dict], sq_norms: list[Tensor]) -> Tensor:
        """``Σ_j σ_j ‖g_j‖²``."""
        return sum(group["sigma"] * n for group, n in zip(groups, sq_norms, strict=True))

    def _scale(self, f: Tensor, valid: Tensor | None, groups: list[dict], sq_norms) -> Tensor:
        """The step scale ``c`` (``γ_j = σ_j c``), NaN where the loss is invalid."""
        scale = ngn_scale(f, self._weighted(groups, sq_norms))
        if valid is not None:
            scale = torch.where(valid, scale, torch.full_like(scale, math.nan))
        return scale

    def _agree(self, groups: list[dict], hooked: list[Tensor], read: list[Tensor]) -> Tensor:
        hooked_sum, read_sum = self._weighted(groups, hooked), self._weighted(groups, read)
        return (read_sum - hooked_sum).abs() <= self.HOOK_TOLERANCE * read_sum

    def _gammas(self, groups: list[dict], scale: Tensor) -> list[Tensor]:
        """Each of ``groups``' γ for ``scale``; every group records its γ as its
        ``last_gamma``."""
        for group in self.param_groups:
            group["last_gamma"] = group["sigma"] * scale
        return [group["last_gamma"] for group in groups]

    def _update(self, plan: _NgnPlan, grads: list[list[Tensor]], scale: Tensor) -> None:
        gammas = self._gammas(plan.group_dicts(), scale)
        for entry, group_grads, gamma in zip(plan.groups, grads, gammas, strict=True):
            group = entry.group
            entry.prepared(group_grads, gamma, group["weight_decay"], group["momentum"])

    def _traced_step(self, loss) -> None:
        """The two-pass step as ``torch.compile`` traces it: the custom ops on plain
        lists (one-pass hooks are not used; the loss is checked on the device)."""
        groups = []
        for group in self.param_groups:
            params, grads, buffers = [], [], []
            for p in self._params_with_grads(group):
                if group["momentum"] != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = zeros_state(p)
                    buffers.append(state["momentum_buffer"])
                params.append(p)
                grads.append(p.grad)
            if params:
                groups.append((group, params, grads, buffers))
        if not groups:
            return
        f, valid = self._loss_tensor(loss, groups[0][1][0].device, validate=False)
        backend = resolve_backend(self.backend, [real(p) for _, ps, _, _ in groups for p in ps])
        sq_norms = torch.ops.lsb.grad_sq_norms(
            [g for _, _, grads, _ in groups for g in grads],
            [len(grads) for _, _, grads, _ in groups], backend,
        )  # fmt: skip
        dicts = [group for group, *_ in groups]
        gammas = self._gammas(dicts, self._scale(f, valid, dicts, sq_norms))
        for (group, params, grads, buffers), gamma in zip(groups, gammas, strict=True):
            torch.ops.lsb.ngn_update_(
                params, grads, buffers, gamma, group["weight_decay"], group["momentum"], backend
            )

    def _one_pass_checked_in_update(self, f, valid, plan: _NgnPlan, grads, hooked) -> None:
        """Step with the hooks' norms, summing ‖g‖² as the update reads the gradients,
        then move the step to the read norms' γ where the two differ."""
        missing = [j for j, n in enumerate(hooked) if n is None]
        if missing:
            computed = plan.kernels.grad_sq_norms([grads[j] for j in missing])
            for j, n in zip(missing, computed, strict=True):
                hooked[j] = n
        groups = plan.group_dicts()
        scale = self._scale(f, valid, groups, hooked)
        taken = [group["sigma"] * scale for group in groups]
        read = [
            e.prepared(g, gamma, e.group["weight_decay"], e.group["momentum"], sq_norm=True)
            for e, g, gamma in zip(plan.groups, grads, taken, strict=True)
        ]
        agree = self._agree(groups, hooked, read)
        scale = torch.where(agree, scale, self._scale(f, valid, groups, read))
        self.last_step_hooks_agree = agree
        gammas = self._gammas(groups, scale)
        for entry, g, gamma, before in zip(plan.groups, grads, gammas, taken, strict=True):
            group = entry.group
            entry.prepared(
                g, gamma, group["weight_decay"], group["momentum"], taken=before, sq_norm=True
            )

    def last_step_sizes(self) -> list[float]:
        """Each group's last γ as a float (NaN before the first step); syncs once."""
        gammas = [group.get("last_gamma") for group in self.param_groups]
        known = [g.detach().float() for g in gammas if g is not None]
        values = iter(torch.stack([g.to(known[0].device) for g in known]).tolist() if known else [])
        return [math.nan if g is None else next(values) for g in gammas]
