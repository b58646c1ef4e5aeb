"""LandscapeBench kernels: the LRU's diagonal complex scan and fused optimizer updates.

Each kernel has a reference PyTorch version and a Triton version with the same
signature; ``backend="auto"`` picks Triton on CUDA tensors and the fastest reference on
the CPU.
"""

from kernels.scan import diag_scan

__all__ = ["diag_scan"]
