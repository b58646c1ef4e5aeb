"""CPU steps on PyTorch's own fused CPU kernels; same signatures as ``kernels.optim.reference``.

On the CPU the reference's ``torch._foreach_*`` passes each read and write whole
tensors (AdamW makes about ten passes), while ``torch._fused_adamw_`` reads p, g, m, v
once and writes p, m, v once. NGN's update is one ``torch._fused_sgd_`` with γ as a
Python number: reading a CPU tensor waits for nothing.

The fused CPU kernels walk each tensor's memory as one flat range, so they are used
only for dense float32/float64 tensors whose gradient and state share the
parameter's strides (``torch.optim.AdamW(fused=True)`` on the CPU does not check
this and mixes elements up when the gradient's strides differ, torch 2.13); every
other tensor takes the reference.
"""

import operator

import torch
from torch import Tensor

from kernels.optim.layout import is_dense
from kernels.optim.plan import StaleGradients
from kernels.optim.reference import adamw_step_ref, ngn_update_ref

_DTYPE = operator.attrgetter("dtype")


def _fusable(p: Tensor, *others: Tensor) -> bool:
    dtype = p.dtype
    if not p.is_cpu or (dtype != torch.float32 and dtype != torch.float64):
        return False
    if p.is_contiguous():  # the common, quick case
        return all(t.dtype == dtype and t.is_contiguous() for t in others)
    return is_dense(p) and all(t.dtype == dtype and t.stride() == p.stride() for t in others)


class _Fusable:
    """Which tensors of a prepared step the fused kernels take, for given gradients: a
    gradient laid out like its parameter (the usual case, checked in two passes that run
    in C) changes nothing, so the answer for the parameters and state is kept."""

    def __init__(self, params: list[Tensor], *states: list[Tensor]):
        self._params, self._states = params, states
        self._strides = list(map(Tensor.stride, params))
        self._dtypes = list(map(_DTYPE, params))
        self._without_grads = [_fusable(*ts) for ts in zip(params, *states, strict=True)]

    def __call__(self, grads: list[Tensor]) -> list[bool]:
        if list(map(Tensor.stride, grads)) == self._strides and (
            list(map(_DTYPE, grads)) == self._dtypes
        ):
            return self._without_grads
        columns = (self._params, grads, *self._states)
        return [_fusable(*ts) for ts in zip(*columns, strict=True)]


def _split(fusable: list[bool], *columns: list) -> tuple[list[list], list[list]]:
    """Each column cut into its fusable and its other entries (each column whole when
    every entry is fusable, the usual case)."""
    if all(fusable):
        return list(columns), [[] for _ in columns]
    fused = [[x for x, ok in zip(col, fusable, strict=True) if ok] for col in columns]
    rest = [[x for x, ok in zip(col, fusable, strict=True) if not ok] for col in columns]
    return fused, rest


class AdamWStep:
    """:func:`adamw_step_cpu` prepared for these tensors: the fusable ones split off once;
    calling it with the gradients takes the step.

    With ``own_counts=True`` the fusable tensors' step counts become views of one tensor
    (:attr:`steps`, which the caller stores as the state), so that counting a step is one
    op instead of one per tensor (7 µs each here). ``set_grads`` is told of new gradient
    tensors; it raises :class:`StaleGradients` when they change which tensors can be
    fused.
    """

    def __init__(self, params, grads, exp_avgs, exp_avg_sqs, steps, *, own_counts=False):
        self._which = _Fusable(params, exp_avgs, exp_avg_sqs)
        self._fusable = self._which(grads)
        fused_steps = [s for s, ok in zip(steps, self._fusable, strict=True) if ok]
        self._counts = None
        if own_counts and fused_steps:
            self._counts = torch.stack([s.detach().reshape(()) for s in fused_steps])
            views = iter(self._counts.unbind())
            steps = [next(views) if ok else s for s, ok in zip(steps, self._fusable, strict=True)]
        self.steps = steps
        self._fused, self._rest = _split(self._fusable, params, exp_avgs, exp_avg_sqs, steps)

    def set_grads(self, grads: list[Tensor]) -> None:
        if self._which(grads) != self._fusable:
            raise StaleGradients

    def __call__(self, grads: list[Tensor], lr, beta1, beta2, eps, weight_decay) -> None:
        hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
        (fp, fm, fv, fs), (rp, rm, rv, rs) = self._fused, self._rest
        (fg,), (rg,) = _split(self._fusable, grads)
        if fp:
            if self._counts is not None:
                self._counts.add_(1)
            else:
                torch._foreach_add_(fs, 1)
            torch._fused_adamw_(
                fp, fg, fm, fv, [], fs, **hp, amsgrad=False, maximize=False
            )  # fmt: skip
        adamw_step_ref(rp, rg, rm, rv, rs, **hp)


def adamw_step_cpu(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamW step; see :func:`kernels.optim.reference.adamw_step_ref`."""
    step = AdamWStep(params, grads, exp_avgs, exp_avg_sqs, steps)
    step(grads, lr, beta1, beta2, eps, weight_decay)


class NgnUpdate:
    """:func:`ngn_update_cpu` prepared for these tensors; calling it with the gradients
    takes the step (``set_grads`` is told of new gradient tensors).

    Without momentum, the fusable tensors take ``torch._fused_sgd_`` with lr γ: its
    coupled decay ``p - γ(g + wd p)`` is NGN's decoupled ``p(1 - γ wd) - γ g``, in one
    pass with one call for all of them (a ``_foreach`` op costs µs per tensor here)."""

    def __init__(self, params, grads, momentum_buffers):
        self._params, self._buffers = params, momentum_buffers
        self._which = _Fusable(params)
        self.set_grads(grads)

    def set_grads(self, grads: list[Tensor]) -> None:
        self._fusable = self._which(grads)
        (self._fused,), (self._rest,) = _split(self._fusable, self._params)

    def __call__(self, grads, gamma: Tensor, weight_decay: float, momentum: float) -> None:
        if momentum != 0:
            ngn_update_ref(self._params, grads, self._buffers, gamma, weight_decay, momentum)
            return
        (fg,), (rg,) = _split(self._fusable, grads)
        if self._fused:
            torch._fused_sgd_(
                self._fused, fg, [], weight_decay=weight_decay, momentum=0.0, lr=float(gamma),
                dampening=0.0, nesterov=False, maximize=False, is_first_step=False,
            )  # fmt: skip
        if self._rest:
            ngn_update_ref(self._rest, rg, None, gamma, weight_decay, momentum)


def ngn_update_cpu(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor] | None,
    gamma: Tensor,
    weight_decay: float,
    momentum: float,
) -> None:
    """Apply an NGN step; see :func:`kernels.optim.reference.ngn_update_ref`. Without
    momentum, one pass over the fusable tensors."""
    NgnUpdate(params, grads, momentum_buffers)(grads, gamma, weight_decay, momentum)
