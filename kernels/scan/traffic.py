"""Memory traffic the scan must move, for achieved-bandwidth figures in the benchmarks and
the static report's model (torch-free).

Per element of ``b`` with lam shared over batch and time: the forward reads b and writes
h; the backward reads grad_h and h and writes grad_b. With complex64 (8 bytes) that is
16 bytes forward and 40 forward + backward; with 16-bit pairs (complex32, bf16: 4 bytes)
8 and 20. A time-varying lam (complex64) adds one read in the forward and a read and a
write (grad_lam) in the backward: 24 and 64 bytes with complex64 b.
"""

from __future__ import annotations

FORWARD_BYTES_PER_ELEMENT = 16
FORWARD_BACKWARD_BYTES_PER_ELEMENT = 40
VARYING_FORWARD_BYTES_PER_ELEMENT = 24
VARYING_FORWARD_BACKWARD_BYTES_PER_ELEMENT = 64


def bytes_per_element(
    *, backward: bool = False, varying: bool = False, itemsize: int = 8, lam_itemsize: int = 8
) -> int:
    """Model bytes per element of ``b``: ``itemsize`` bytes per element of b, h and their
    gradients (8 for complex64, 4 for 16-bit pairs), ``lam_itemsize`` per element of a
    time-varying lam and of its gradient."""
    forward = 2 * itemsize + (lam_itemsize if varying else 0)
    if not backward:
        return forward
    return forward + 3 * itemsize + (2 * lam_itemsize if varying else 0)


def bytes_moved(
    B: int, T: int, N: int, *, backward: bool = False, varying: bool = False, itemsize: int = 8,
    lam_itemsize: int = 8,
) -> int:
    """Minimum bytes a scan over ``(B, T, N)`` moves; ``itemsize`` 8 is complex64."""
    return B * T * N * bytes_per_element(backward=backward, varying=varying, itemsize=itemsize,
                                         lam_itemsize=lam_itemsize)
