"""Memory traffic the scan must move, for achieved-bandwidth figures in the benchmarks.

Per complex64 element of ``b`` (8 bytes) with lam shared over batch and time:
forward reads b and writes h (16 bytes); the backward reads grad_h and h and writes
grad_b (24 bytes), so forward + backward moves about 40 bytes. A time-varying lam adds
one read in the forward and a read and a write (grad_lam) in the backward.
"""

from __future__ import annotations

FORWARD_BYTES_PER_ELEMENT = 16
FORWARD_BACKWARD_BYTES_PER_ELEMENT = 40


def bytes_moved(B: int, T: int, N: int, *, backward: bool = False, itemsize: int = 8) -> int:
    """Minimum bytes a scan over ``(B, T, N)`` moves; ``itemsize`` 8 is complex64."""
    per_element = FORWARD_BACKWARD_BYTES_PER_ELEMENT if backward else FORWARD_BYTES_PER_ELEMENT
    return B * T * N * per_element * itemsize // 8
