"""The inputs every kernel script times and checks on, made from a fixed seed.

- ``scan_inputs``: the LRU's scan, ``h_t = λ ⊙ h_{t-1} + b_t`` with ``λ`` shared over
  batch and time (or, ``varying=True``, one per element), drawn on a ring
  ``lo ≤ |λ| ≤ hi`` with a uniform phase (the LRU's ring initialisation), ``b`` (and the
  optional ``h0`` and output gradient) standard complex normal, complex64.
- ``optim_params``: parameters (fp32 unless told) with their gradients set, for
  optimizer steps.

Draws come from a ``torch.Generator`` on the target device, so no global random state
is touched and the same seed gives the same tensors on every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

#: The LRU's ring initialisation of |λ| (thesis App. E.3).
RING = (0.9, 0.999)


class ScanInputs(NamedTuple):
    lam: torch.Tensor  # (N,), or (B, T, N) when time-varying
    b: torch.Tensor  # (B, T, N)
    h0: torch.Tensor | None  # (B, N), when asked for
    grad: torch.Tensor | None  # (B, T, N), an output gradient, when asked for


def generator(device: torch.device | str = "cpu", seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def scan_inputs(
    B: int,
    T: int,
    N: int,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    modulus: tuple[float, float] = RING,
    varying: bool = False,
    h0: bool = False,
    grad: bool = False,
) -> ScanInputs:
    """``lam`` with ``modulus[0] ≤ |λ| ≤ modulus[1]`` (shape ``(N,)``, or ``(B, T, N)``
    when ``varying``), ``b`` standard complex normal; ``h0`` and the output gradient
    ``grad`` only when asked (they cost memory)."""
    gen = generator(device, seed)
    lo, hi = modulus
    shape = (B, T, N) if varying else (N,)
    radius = lo + (hi - lo) * torch.rand(shape, generator=gen, device=device)
    phase = 2 * torch.pi * torch.rand(shape, generator=gen, device=device)
    lam = torch.polar(radius, phase)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.complex64, generator=gen, device=device)

    b = normal(B, T, N)
    return ScanInputs(lam, b, normal(B, N) if h0 else None, normal(B, T, N) if grad else None)


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` elements in ``parts`` tensors whose sizes differ by at most one."""
    if parts < 1 or total < parts:
        raise ValueError(f"cannot split {total} elements into {parts} non-empty tensors")
    return [total // parts + (i < total % parts) for i in range(parts)]


def optim_params(
    sizes: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[torch.nn.Parameter]:
    """One parameter per entry of ``sizes`` (its element count), standard normal drawn
    in fp32 and cast to ``dtype``, with a standard normal ``.grad`` of the same dtype."""
    gen = generator(device, seed)

    def normal(numel: int) -> torch.Tensor:
        return torch.randn(numel, generator=gen, device=device).to(dtype)

    params = []
    for numel in sizes:
        p = torch.nn.Parameter(normal(numel))
        p.grad = normal(numel)
        params.append(p)
    return params
