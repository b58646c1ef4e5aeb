"""‖g‖² computed as the backward produces the gradients, so that NGN's step is one pass.

A post-accumulate-grad hook on every parameter queues it as soon as autograd has
accumulated its gradient; once a group's queue holds ``BUCKET_BYTES`` of gradients, and
for the rest when the backward ends, one fused norm (``torch._foreach_norm``) reads them
while they are fresh in cache and adds their ‖g‖² to the group's sum on the device. The
step then needs no norm pass of its own: its traffic is SGD's (read p, g; write p).

The sums are trusted only for gradients the hooks have seen as they are now. Each
gradient's tensor (held weakly) and version counter are recorded when its norm is
taken, at the latest as the backward ends, so a gradient set by hand (``p.grad = ...``),
dropped, replaced, or changed in place after the backward (``clip_grad_norm_``, a grad
scaler's unscale, ``zero_grad(set_to_none=False)`` without a backward after it) makes
its group fall back to the two-pass norm. A closure that calls ``backward`` more than
once is exact: a parameter hooked a second time starts its group's sum afresh, and the
second backward's hooks count the accumulated gradients (a parameter that backward does
not reach then leaves its group to the two-pass norm).

Writes that the version counter does not see (through ``.data``, or by a collective on a
bucket the gradients are views of) are caught by the step, which compares the hooks'
sum with ‖g‖² of the gradients it reads (see :class:`kernels.optim.NGN`); under
``torch.distributed`` the hooks run before the gradients are reduced across ranks, so
one-pass NGN refuses to run there (:func:`refuse_distributed`).

On the CPU a fused norm is a loop over its tensors, so buckets save no per-tensor work
there; on CUDA one bucket is one launch instead of one per tensor.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor

#: Gradient bytes per fused norm: what a CPU core's L2 cache holds.
BUCKET_BYTES = 1 << 20


def _norm_dtype(params: list[Tensor]) -> torch.dtype:
    """fp32 sums, or fp64 when any parameter is double precision (as the reference)."""
    wide = (torch.float64, torch.complex128)
    return torch.float64 if any(p.dtype in wide for p in params) else torch.float32


def _record(g: Tensor) -> tuple[weakref.ref, int]:
    """What identifies a gradient as it is now: the tensor (weakly) and its version."""
    return weakref.ref(g), g._version


def _matches(record: tuple[weakref.ref, int] | None, g: Tensor) -> bool:
    """Whether ``g`` is the very tensor ``record`` was taken of, at the same version."""
    return record is not None and record[0]() is g and record[1] == g._version


def refuse_distributed() -> None:
    """Raise when a ``torch.distributed`` process group of several ranks is running."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise RuntimeError(
            "NGN(one_pass=True) cannot run under torch.distributed: its gradient hooks see "
            "each rank's gradient before the all-reduce, so every rank would take a "
            f"different step size ({dist.get_world_size()} ranks); use one_pass=False, "
            "whose norm pass reads the reduced gradients"
        )


class _GroupSums:
    """The hooks' ‖g‖² of one parameter group, for the step to come."""

    def __init__(self, params: list[Tensor]):
        self.dtype = _norm_dtype(params)
        self.clear()

    def clear(self) -> None:
        self.total: Tensor | None = None  # Σ‖g‖² of the gradients in ``seen``
        self.queued: set[int] = set()  # hooked since the sum began
        self.pending: list[Tensor] = []  # hooked parameters, not yet in the sum
        self.pending_bytes = 0
        self.seen: dict[int, tuple] = {}  # in the sum: the gradient's record
        self.device: int | None = None  # of the gradients in the sum (an index: cheap)
        self.lost = False  # a hooked gradient could not be read, or is on another device

    def flush(self, position: dict[int, int], complex_positions: set[int]) -> None:
        """Add the pending gradients' ‖g‖² to the sum, in one fused norm."""
        if not self.pending:
            return
        grads = []
        for p in self.pending:
            g = p.grad
            if g is None or g.is_sparse:
                self.lost = True
                continue
            if self.device is None:
                self.device = g.get_device()
            elif g.get_device() != self.device:
                self.lost = True
                continue
            i = position[id(p)]
            grads.append(torch.view_as_real(g) if i in complex_positions else g)
            self.seen[i] = _record(g)
        self.pending, self.pending_bytes = [], 0
        if grads:
            with torch.no_grad():
                norms = torch._foreach_norm(grads, 2, dtype=self.dtype)
                part = torch.stack(norms).square().sum()
            self.total = part if self.total is None else self.total + part


class GradNormSlots:
    """The hooks and the per-group sums of one optimizer.

    ``owner`` is the optimizer (held weakly: the hooks do nothing once it is gone, and
    they are removed when it is collected). Parameters are registered group by group.
    """

    def __init__(self, owner: object):
        self._owner = weakref.ref(owner)
        self._position: dict[int, int] = {}  # id(param): a tensor's own hash is slow
        self._params: list[Tensor] = []
        self._bytes: list[int] = []
        self._group_of: list[_GroupSums] = []  # by position
        self._groups: list[_GroupSums] = []
        self._complex: set[int] = set()  # positions of complex parameters
        self._flush_queued = False
        self._handles: list = []
        weakref.finalize(owner, GradNormSlots._remove, self._handles)

    @staticmethod
    def _remove(handles: list) -> None:
        for handle in handles:
            handle.remove()
        handles.clear()

    def register(self, params: list[Tensor]) -> None:
        """Hook the parameters of a new group (those that can receive gradients)."""
        new = [p for p in params if id(p) not in self._position]
        sums = _GroupSums(new)
        self._groups.append(sums)
        for p in new:
            if p.is_complex():
                self._complex.add(len(self._params))
            self._position[id(p)] = len(self._params)
            self._params.append(p)
            self._bytes.append(p.numel() * p.element_size())
            self._group_of.append(sums)
            if p.requires_grad:
                self._handles.append(p.register_post_accumulate_grad_hook(self._hook))

    def _hook(self, p: Tensor) -> None:
        if self._owner() is None:
            return
        i = self._position[id(p)]
        sums = self._group_of[i]
        if i in sums.queued:  # a second backward: count its accumulated gradients
            sums.clear()
        sums.queued.add(i)
        sums.pending.append(p)
        sums.pending_bytes += self._bytes[i]
        if sums.pending_bytes >= BUCKET_BYTES:
            sums.flush(self._position, self._complex)
        if not self._flush_queued:
            # The last buckets are read when this backward ends, before any other code
            # can change the gradients it left.
            self._flush_queued = True
            torch.autograd.Variable._execution_engine.queue_callback(self._end_of_backward)

    def _end_of_backward(self) -> None:
        self._flush_queued = False
        for sums in self._groups:
            sums.flush(self._position, self._complex)

    def group_sq_norm(self, group_params: list[Tensor]) -> Tensor | None:
        """``‖g‖²`` of a group's gradients from the hooks (0-dim, on the device), or None
        when any gradient is missing, stale or was never seen (the caller then reads the
        gradients)."""
        if not group_params or id(group_params[0]) not in self._position:
            return None
        sums = self._group_of[self._position[id(group_params[0])]]
        if sums.pending:  # a backward that did not end (it raised): read them now
            self._flush_queued = False
            sums.flush(self._position, self._complex)
        if sums.lost or sums.total is None:
            return None
        for p in group_params:
            i = self._position.get(id(p))
            if i is None or self._group_of[i] is not sums:
                return None
            g = p.grad
            if g is None:
                if i in sums.queued:
                    return None  # the hook saw a gradient that is gone now
                continue
            if not _matches(sums.seen.get(i), g):
                return None
        return sums.total

    def clear(self) -> None:
        """Forget this step's sums (after the step has read them)."""
        for sums in self._groups:
            sums.clear()
