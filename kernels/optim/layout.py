"""Memory layouts the fused steps need: every tensor walked as one flat range."""

import torch
from torch import Tensor


def is_dense(t: Tensor) -> bool:
    """True when the elements fill one block of memory with no gaps or overlaps."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(t.stride(), t.shape, strict=True) if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def like(g: Tensor, p: Tensor) -> Tensor:
    """``g`` with ``p``'s strides and dtype, so both can be walked as one flat range."""
    if g.stride() == p.stride() and g.dtype == p.dtype:
        return g
    return torch.empty_like(p).copy_(g)
