"""Memory traffic an optimizer step must move, per parameter, for achieved-bandwidth
figures and for the static report's traffic meter (imports neither torch nor Triton).

``itemsize`` is the parameter's (and gradient's) element size in bytes: 4 for fp32,
2 for bf16/fp16, 8 for fp64 and complex64 parameters counted as real pairs. Optimizer
state is fp32 for 2-byte parameters, else the parameter's dtype, as in
``kernels.optim.step_optimizer``. A step reads each operand once and writes each result
once; nothing is re-read.
"""

from __future__ import annotations


def state_itemsize(itemsize: int = 4) -> int:
    """Bytes per state element: fp32 moments for bf16/fp16 parameters."""
    return max(itemsize, 4)


def grad_sq_norm_bytes_per_param(itemsize: int = 4) -> int:
    """‖g‖²: read g once (the per-program partial sums are negligible)."""
    return itemsize


def adamw_bytes_per_param(itemsize: int = 4) -> int:
    """AdamW: read p, g, m, v; write p, m, v. 28 B for fp32 parameters, 22 B for bf16."""
    return 3 * itemsize + 4 * state_itemsize(itemsize)


def sgd_bytes_per_param(itemsize: int = 4, momentum: bool = False) -> int:
    """SGD: read p, g; write p (plus the momentum buffer read and written). 12 B fp32."""
    return 3 * itemsize + (2 * itemsize if momentum else 0)


def ngn_update_bytes_per_param(itemsize: int = 4, momentum: bool = False) -> int:
    """NGN's update once γ is known: SGD's traffic, with an fp32 momentum buffer."""
    return 3 * itemsize + (2 * state_itemsize(itemsize) if momentum else 0)


def ngn_bytes_per_param(itemsize: int = 4, momentum: bool = False, one_pass: bool = False) -> int:
    """One NGN step. Two-pass (``step(loss=...)`` without the gradient hooks): the ‖g‖²
    pass reads g, then the update reads p, g and writes p: 16 B for fp32. One pass (‖g‖²
    accumulated by the gradient hooks during the backward): the update alone, 12 B, as
    SGD. The hooks' own read of g happens in the backward, not in the step."""
    norm_pass = 0 if one_pass else grad_sq_norm_bytes_per_param(itemsize)
    return norm_pass + ngn_update_bytes_per_param(itemsize, momentum)
