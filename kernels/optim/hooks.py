"""‖g‖² computed as the backward produces each gradient, so that NGN's step is one pass.

A post-accumulate-grad hook on every parameter writes ``‖p.grad‖`` into that
parameter's slot of one device buffer as soon as autograd has accumulated it, while
the gradient is fresh in cache. The step then reads the slots instead of re-reading
every gradient: its traffic is SGD's (read p, g; write p).

The slots are trusted only for gradients the hook has seen as they are now. Each slot
keeps a weak reference to the gradient tensor and its version counter, so a gradient
set by hand (``p.grad = ...``), replaced, or changed in place after the backward
(``clip_grad_norm_``, a grad scaler's unscale, ``zero_grad(set_to_none=False)``
without a backward after it) makes its group fall back to the two-pass norm. A
closure that calls ``backward`` more than once is exact: each call's hook recomputes
the norm of the accumulated gradient. Slots are cleared after every step.

Not detected: writes that bypass autograd's version counters, such as
``DistributedDataParallel(gradient_as_bucket_view=True)`` all-reducing into the
gradients after their hooks ran. Use the two-pass NGN there.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import Tensor


def _real(t: Tensor) -> Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def _norm_dtype(params: list[Tensor]) -> torch.dtype:
    """fp32 slots, or fp64 when any parameter is double precision (as the reference)."""
    wide = (torch.float64, torch.complex128)
    return torch.float64 if any(p.dtype in wide for p in params) else torch.float32


class GradNormSlots:
    """One slot per parameter holding ``‖grad‖`` as the backward leaves it.

    ``owner`` is the optimizer (held weakly: the hooks do nothing once it is gone, and
    they are removed when it is collected). Parameters are registered group by group,
    so each group's slots are one contiguous run of the buffer.
    """

    def __init__(self, owner: object):
        self._owner = weakref.ref(owner)
        self._index: dict[Tensor, int] = {}
        self._params: list[Tensor] = []
        self._seen: list[tuple[weakref.ref, int] | None] = []
        self._slots: Tensor | None = None
        self._slot_views: list[Tensor] = []  # one 0-dim view per slot: cheaper than slots[i]
        self._handles: list = []
        weakref.finalize(owner, GradNormSlots._remove, self._handles)

    @staticmethod
    def _remove(handles: list) -> None:
        for handle in handles:
            handle.remove()
        handles.clear()

    def register(self, params: list[Tensor]) -> None:
        """Hook the parameters of a new group (those that can receive gradients)."""
        for p in params:
            if p in self._index:
                continue
            self._index[p] = len(self._params)
            self._params.append(p)
            if p.requires_grad:
                self._handles.append(p.register_post_accumulate_grad_hook(self._hook))
        # Re-allocated, zeroed, at the next backward: the norms seen so far are lost.
        self._slots = None
        self._seen = [None] * len(self._params)

    def _buffer(self) -> Tensor:
        if self._slots is None:
            device = self._params[0].device
            self._slots = torch.zeros(
                len(self._params), dtype=_norm_dtype(self._params), device=device
            )
            self._slot_views = list(self._slots.unbind())
        return self._slots

    def _hook(self, p: Tensor) -> None:
        if self._owner() is None:
            return
        g, i = p.grad, self._index[p]
        if g is None or g.is_sparse or g.device != self._params[0].device:
            self._seen[i] = None
            return
        slots = self._buffer()
        with torch.no_grad():
            torch.linalg.vector_norm(_real(g), dtype=slots.dtype, out=self._slot_views[i])
        self._seen[i] = (weakref.ref(g), g._version)

    def _fresh(self, p: Tensor) -> bool:
        seen = self._seen[self._index[p]] if p in self._index else None
        return seen is not None and seen[0]() is p.grad and p.grad._version == seen[1]

    def group_sq_norm(self, group_params: list[Tensor]) -> Tensor | None:
        """``‖g‖²`` over a group's gradients from the slots, or None when any slot is
        missing or stale (the caller then reads the gradients)."""
        if self._slots is None or not group_params:
            return None
        indices = []
        for p in group_params:
            if p.grad is None:
                if p in self._index and self._seen[self._index[p]] is not None:
                    return None  # the hook saw a gradient that is gone now
                continue
            if not self._fresh(p):
                return None
            indices.append(self._index[p])
        if not indices:
            return None
        begin, end = min(indices), max(indices) + 1
        # The run [begin, end) holds only this group's parameters; those without a
        # gradient have zero slots (cleared after each step, never written since).
        return self._slots[begin:end].square().sum()

    def clear(self) -> None:
        """Forget this step's norms (after the step has read them)."""
        if self._slots is not None:
            self._slots.zero_()
        self._seen = [None] * len(self._seen)


def sq_norms_with_slots(
    slots: GradNormSlots | None,
    groups: list[tuple[list[Tensor], list[Tensor]]],
    grad_sq_norms: Callable[[list[list[Tensor]]], list[Tensor]],
) -> tuple[list[Tensor], int]:
    """Each group's ``‖g‖²``: from the slots where they are fresh, else by
    ``grad_sq_norms`` (one reduction over the remaining groups). ``groups`` holds
    (the group's parameters, their real gradients) pairs. Returns the norms and how
    many groups took the slots."""
    from_slots = [slots.group_sq_norm(params) if slots else None for params, _ in groups]
    missing = [j for j, n in enumerate(from_slots) if n is None]
    if missing:
        computed = grad_sq_norms([groups[j][1] for j in missing])
        for j, n in zip(missing, computed, strict=True):
            from_slots[j] = n
    return from_slots, len(groups) - len(missing)
