"""Memory traffic the scan must move, for achieved-bandwidth figures in the benchmarks and
the static report's model (torch-free).

Per complex64 element of ``b`` (8 bytes) with lam shared over batch and time:
forward reads b and writes h (16 bytes); the backward reads grad_h and h and writes
grad_b (24 bytes), so forward + backward moves about 40 bytes. A time-varying lam adds
one read in the forward (24 bytes) and a read and a write (grad_lam) in the backward
(64 bytes forward + backward).
"""

from __future__ import annotations

FORWARD_BYTES_PER_ELEMENT = 16
FORWARD_BACKWARD_BYTES_PER_ELEMENT = 40
VARYING_FORWARD_BYTES_PER_ELEMENT = 24
VARYING_FORWARD_BACKWARD_BYTES_PER_ELEMENT = 64


def bytes_per_element(*, backward: bool = False, varying: bool = False) -> int:
    """Model bytes per complex64 element of ``b``."""
    if varying:
        return VARYING_FORWARD_BACKWARD_BYTES_PER_ELEMENT if backward else (
            VARYING_FORWARD_BYTES_PER_ELEMENT)
    return FORWARD_BACKWARD_BYTES_PER_ELEMENT if backward else FORWARD_BYTES_PER_ELEMENT


def bytes_moved(
    B: int, T: int, N: int, *, backward: bool = False, varying: bool = False, itemsize: int = 8
) -> int:
    """Minimum bytes a scan over ``(B, T, N)`` moves; ``itemsize`` 8 is complex64."""
    per_element = bytes_per_element(backward=backward, varying=varying)
    return B * T * N * per_element * itemsize // 8
