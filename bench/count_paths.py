"""The CPU paths whose instructions the count gate measures: ``build(name)`` returns a
statement that runs one of ``bench.cases.INSTRUCTION_CASES`` once.

Each statement goes through an entry point that ``kernels`` has kept across its history
(``diag_scan``; ``kernels.optim``'s reference steps and optimizer classes), imported from
whichever ``kernels`` package is first on the path, so the same harness measures every
commit. A commit that lacks the entry point, or whose entry point fails on the case, has
the case *absent* (:class:`Absent`, with the reason).

The inputs are made here rather than by ``kernels.inputs``, which older commits lack:
instruction counts depend on shapes and dtypes, not on values.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bench import cases

SEED = 0
#: The scan's λ on the LRU's ring, |λ| in [0.9, 0.999], so that no power overflows.
RING = (0.9, 0.999)
ADAMW_HPARAMS = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2)
NGN_SIGMA = 1e-3


class Absent(Exception):
    """The measured commit has no such case (an entry point missing, or failing on it)."""


def _scan(case: cases.Case) -> Callable[[], object]:
    from kernels import diag_scan

    B, T, N = case.size
    gen = torch.Generator().manual_seed(SEED)
    radius = RING[0] + (RING[1] - RING[0]) * torch.rand(N, generator=gen)
    lam = torch.polar(radius, 2 * math.pi * torch.rand(N, generator=gen))
    b = torch.randn(B, T, N, dtype=torch.complex64, generator=gen)
    if case.kernel == "scan_fwd":
        return lambda: diag_scan(lam, b, backend=case.impl)
    grad = torch.randn(B, T, N, dtype=torch.complex64, generator=gen)
    lam.requires_grad_()
    b.requires_grad_()

    def forward_backward() -> None:
        torch.autograd.backward(diag_scan(lam, b, backend=case.impl), grad)
        lam.grad = b.grad = None

    return forward_backward


def _tensors(case: cases.Case, gen: torch.Generator) -> list[torch.Tensor]:
    count, numel = case.size
    return [torch.randn(numel, generator=gen) for _ in range(count)]


def _optimizer_step(case: cases.Case) -> Callable[[], object]:
    from kernels import optim

    gen = torch.Generator().manual_seed(SEED)
    params, grads = _tensors(case, gen), _tensors(case, gen)
    loss = torch.tensor(1.0)
    if case.impl == "reference":
        if case.kernel == "ngn":
            return lambda: optim.ngn_step_ref(params, grads, loss, NGN_SIGMA)
        moments = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
        steps = [torch.zeros(()) for _ in params]
        return lambda: optim.adamw_step_ref(params, grads, *moments, steps, **ADAMW_HPARAMS)
    # cpu_fused: the optimizer's own step on CPU tensors (backend "torch"), which runs
    # torch's fused CPU kernels where the commit has them.
    leaves = [torch.nn.Parameter(p) for p in params]
    for leaf, grad in zip(leaves, grads, strict=True):
        leaf.grad = grad
    if case.kernel == "ngn":
        ngn = optim.NGN(leaves, sigma=NGN_SIGMA, backend="torch")
        return lambda: ngn.step(loss=loss)
    adamw = optim.AdamW(leaves, lr=ADAMW_HPARAMS["lr"], eps=ADAMW_HPARAMS["eps"],
                        weight_decay=ADAMW_HPARAMS["weight_decay"], backend="torch")
    return adamw.step


def build(name: str) -> Callable[[], object]:
    """The statement of the instruction case ``name``; raises :class:`Absent` when the
    measured ``kernels`` cannot run it (checked by running it once)."""
    case = cases.instruction_case(name)
    try:
        statement = _scan(case) if case.kernel in cases.SCAN_KERNELS else _optimizer_step(case)
        statement()
    except Exception as err:  # any failure of the measured commit's code: the case is absent
        raise Absent(f"{type(err).__name__}: {err}") from None
    return statement
