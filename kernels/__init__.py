"""LandscapeBench kernels: the LRU's diagonal complex scan and fused optimizer updates.

Each kernel has a reference PyTorch version and a Triton version with the same
signature; ``backend="auto"`` picks Triton on CUDA tensors and the fastest reference on
the CPU, unless ``LSB_SCAN_BACKEND`` / ``LSB_OPTIM_BACKEND`` say otherwise
(:func:`backend_settings` lists both and what ``auto`` means here).
"""

from kernels.backend import backend_settings
from kernels.scan import diag_scan

__all__ = ["backend_settings", "diag_scan"]
