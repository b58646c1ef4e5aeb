"""What the optimizers share: backend choice, the step plan kept across steps (one
:class:`GroupPlan` per parameter group), gradient checks, CUDA graph capture, and state
loading that keeps fp32 state and step counts where they belong."""

import operator

import torch
from torch import Tensor
from torch.optim import Optimizer

from kernels.optim.backend import check_backend
from kernels.optim.plan import current_plan

LOW_PRECISION = (torch.bfloat16, torch.float16)
_IS_SPARSE = operator.attrgetter("is_sparse")


def state_dtype(p: Tensor) -> torch.dtype:
    """Optimizer state is fp32 for bf16/fp16 parameters, else the parameter's dtype."""
    return torch.float32 if p.dtype in LOW_PRECISION else p.dtype


def zeros_state(p: Tensor) -> Tensor:
    return torch.zeros_like(p, dtype=state_dtype(p), memory_format=torch.preserve_format)


def real(t: Tensor) -> Tensor:
    """Complex tensors are updated as (real, imag) pairs, as ``torch.optim`` does."""
    return torch.view_as_real(t) if t.is_complex() else t


def capturing() -> bool:
    return torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing()


class GroupPlan:
    """One group's part of a step plan: the parameters with a gradient (where they are
    among all groups' parameters) and the prepared kernels, which hold the real views of
    the parameters and their state; the gradients come with every step."""

    def __init__(self, group: dict, params: list[Tensor], positions, prepared):
        self.group = group
        self.params = params  # as in the group (complex ones too)
        self.positions = positions  # a slice, or indices, into all groups' parameters
        self.prepared = prepared
        self.complex_positions = [i for i, p in enumerate(params) if p.is_complex()]

    def grads(self, all_grads: list[Tensor]) -> list[Tensor]:
        """This group's real gradients, from all groups' (each pass runs in C)."""
        positions = self.positions
        if isinstance(positions, slice):
            grads = all_grads[positions]
        else:
            grads = [all_grads[i] for i in positions]
        for i in self.complex_positions:
            grads[i] = torch.view_as_real(grads[i])
        return grads


class StepOptimizer(Optimizer):
    """Shared plumbing: backend choice, the step plan, gradient checks, CUDA graph
    capture, dtype-preserving state loading."""

    _state_keys: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict, backend: str):
        self.backend = check_backend(backend)
        self.state_epoch = 0  # bumped whenever the state is replaced: plans then rebuild
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("capturable", False)
        self.__dict__.setdefault("backend", "auto")
        self.__dict__.setdefault("state_epoch", 0)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1])

    def _check_group(self, group: dict) -> None:
        """Validate one param group's hyperparameters (each optimizer defines its own)."""
        raise NotImplementedError(f"{type(self).__name__} must define _check_group")

    def _capturable(self) -> bool:
        return all(group["capturable"] for group in self.param_groups)

    def _check_capture(self) -> bool:
        """Whether this step is being captured in a CUDA graph, which every group must
        allow (``capturable=True``), as in ``torch.optim``."""
        if not capturing():
            return False
        if not self._capturable():
            raise RuntimeError(
                f"Attempting CUDA graph capture of step() for an instance of "
                f"{type(self).__name__} but param_groups' capturable is False."
            )
        return True

    def _params_with_grads(self, group: dict) -> list[Tensor]:
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue
            self._check_grad(p.grad)
            params.append(p)
        return params

    def _groups_with_grads(self):
        """``(group, its parameters with a gradient, their positions among all groups'
        parameters)`` for each group with any: the positions as a slice when it is all
        of the group."""
        offset = 0
        for group in self.param_groups:
            params = group["params"]
            with_grads = self._params_with_grads(group)
            if len(with_grads) == len(params):
                positions = slice(offset, offset + len(params))
            else:
                positions = [offset + i for i, p in enumerate(params) if p.grad is not None]
            offset += len(params)
            if with_grads:
                yield group, with_grads, positions

    def _check_grad(self, grad: Tensor) -> None:
        if grad.is_sparse:
            raise ValueError(f"{type(self).__name__} does not support sparse gradients")

    def _plan(self):
        """This step's plan (:mod:`kernels.optim.plan`: ``groups`` is ``_build_plan``'s
        result, ``grads`` the gradients), kept while the tensors stay where they are.
        The step calls its ``release()`` when done."""
        return current_plan(self, type(self)._build_plan, type(self)._refresh_plan)

    def _build_plan(self) -> list[GroupPlan]:
        raise NotImplementedError

    def _refresh_plan(self, groups: list[GroupPlan], all_grads: list[Tensor]) -> None:
        """Point the prepared kernels at the parameters' current gradients (``all_grads``:
        all groups' parameters', in order). Each pass over them runs in C: this runs at
        every step after ``zero_grad()``."""
        for entry in groups:
            grads = entry.grads(all_grads)
            if any(map(_IS_SPARSE, grads)):
                self._check_grad(next(g for g in grads if g.is_sparse))
            entry.prepared.set_grads(grads)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.state_epoch += 1
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
            if p.dtype in LOW_PRECISION:
                for key in self._state_keys:
                    if key in state:
                        state[key] = saved[index][key].to(device=p.device, dtype=torch.float32)
