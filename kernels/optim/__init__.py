"""Fused optimizer updates: AdamW/Adam and NGN, each with a reference and a Triton step.

``AdamW``, ``Adam`` and ``NGN`` are ``torch.optim.Optimizer`` classes; ``backend``
picks the ``torch._foreach_*`` reference (``kernels.optim.reference``) or the fused
Triton kernels (``kernels.optim.triton_optim``, imported only when used). The bytes a
step moves are modelled in ``kernels.optim.traffic`` (no torch, no Triton).
"""

from kernels.optim.ngn import NGN
from kernels.optim.optimizers import Adam, AdamW
from kernels.optim.reference import adamw_step_ref, ngn_step_ref

__all__ = ["NGN", "Adam", "AdamW", "adamw_step_ref", "ngn_step_ref"]
