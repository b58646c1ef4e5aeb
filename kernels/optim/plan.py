"""A step's plan, kept from one step to the next while its tensors stay where they were.

The optimizers' step needs, per group, the lists of parameters, gradients and state
that have a gradient, and its backend's prepared kernels (the fused steps' device
tables). Building them reads every tensor's attributes: milliseconds for 1,000 tensors.
A :class:`StepPlan` is built once and checked at every step with a few passes over the
parameter list that run in C (identity of each parameter and gradient, and the
gradients' addresses):

- nothing moved: the plan is used as it is;
- the gradients are new tensors or were moved (``zero_grad()`` then a backward, a
  ``.data`` assignment), with the same parameters having one: the plan points its
  kernels at them (``refresh``);
- anything else (parameters or groups added, removed or replaced; a gradient appearing
  or disappearing; the state replaced through ``load_state_dict``; another
  ``LSB_OPTIM_BACKEND``): it is built again.

State tensors replaced by hand in ``optimizer.state`` are not noticed; go through
``load_state_dict`` to replace state.
"""

from __future__ import annotations

import operator
import os
import weakref
from collections.abc import Callable
from itertools import chain, repeat

from torch import Tensor

from kernels.backend import LEGACY_VARIABLE, OPTIM

_GRAD = operator.attrgetter("grad")



def _environment() -> tuple[str | None, str | None]:
    return os.environ.get(OPTIM.variable), os.environ.get(LEGACY_VARIABLE)


class StaleGradients(Exception):
    """Raised by a plan's ``refresh`` when the new gradients need a new plan."""


class StepPlan:
    """What ``optimizer``'s step needs, as ``build(optimizer)`` made it.

    ``build`` returns the plan's content (:attr:`groups`) and ``refresh(optimizer,
    groups, grads)`` points it at the parameters' current gradients (``grads``, those of
    all groups' parameters in order), raising :class:`StaleGradients` when that takes a
    new plan. During a step :attr:`grads` holds those gradients; between steps the plan
    holds them only weakly (:meth:`release`), so that a gradient dropped by
    ``zero_grad()`` is freed then, as without a plan, not at the next step.
    """

    def __init__(self, optimizer, build: Callable, refresh: Callable):
        self._refresh = refresh
        self._param_groups = list(optimizer.param_groups)
        self._sizes = [len(group["params"]) for group in self._param_groups]
        self._params = list(chain.from_iterable(group["params"] for group in self._param_groups))
        self._state, self._epoch = optimizer.state, optimizer.state_epoch
        self._environment = _environment()
        self.groups = build(optimizer)
        self._state_size = len(optimizer.state)
        self._remember_grads(list(map(_GRAD, self._params)))

    def _remember_grads(self, grads: list) -> None:
        self.grads = grads
        self._missing = list(map(operator.is_, grads, repeat(None)))
        self._complete = not any(self._missing)
        live = grads if self._complete else [g for g in grads if g is not None]
        self._refs = list(map(weakref.ref, live))
        self._addresses = list(map(Tensor.data_ptr, live))

    def release(self) -> None:
        """Drop this step's gradients (the plan keeps weak references and addresses)."""
        self.grads = None

    def _same_params(self, optimizer) -> bool:
        groups = optimizer.param_groups
        if (
            len(groups) != len(self._param_groups)
            or not all(map(operator.is_, groups, self._param_groups))
            or [len(group["params"]) for group in groups] != self._sizes
            or optimizer.state is not self._state
            or len(optimizer.state) != self._state_size
            or optimizer.state_epoch != self._epoch
            or _environment() != self._environment
        ):
            return False
        params = chain.from_iterable(group["params"] for group in groups)
        return all(map(operator.is_, params, self._params))

    def current(self, optimizer) -> bool:
        """Make the plan current for ``optimizer``'s tensors (and :attr:`grads` theirs);
        False when it must be built again."""
        if not self._same_params(optimizer):
            return False
        grads = list(map(_GRAD, self._params))
        if self._complete:  # the usual case: three passes that run in C
            try:
                if all(map(operator.is_, grads, map(operator.call, self._refs))) and (
                    list(map(Tensor.data_ptr, grads)) == self._addresses
                ):
                    self.grads = grads
                    return True
            except TypeError:  # a gradient that is gone (its old tensor too): None
                return False
            if any(map(operator.is_, grads, repeat(None))):
                return False
        else:
            if list(map(operator.is_, grads, repeat(None))) != self._missing:
                return False  # a gradient appeared or disappeared
            live = [g for g in grads if g is not None]
            if all(map(operator.is_, live, map(operator.call, self._refs))) and (
                list(map(Tensor.data_ptr, live)) == self._addresses
            ):
                self.grads = grads
                return True
        try:
            self._refresh(optimizer, self.groups, grads)
        except StaleGradients:
            return False
        self._remember_grads(grads)
        return True


def current_plan(optimizer, build: Callable, refresh: Callable) -> StepPlan:
    """``optimizer``'s plan (its ``_step_plan`` attribute), checked or built anew, with
    :attr:`StepPlan.grads` set; the step calls ``release()`` when done. ``build`` and
    ``refresh`` as for :class:`StepPlan`."""
    plan = getattr(optimizer, "_step_plan", None)
    if plan is None or not plan.current(optimizer):
        optimizer._step_plan = None  # a failed build must not leave the old plan
        optimizer._step_plan = plan = StepPlan(optimizer, build, refresh)
    return plan
