"""Faster scans under the Triton interpreter, with bitwise the same results.

The interpreter runs ``tl.associative_scan`` with a custom combine function (the complex
scan's affine maps) one element at a time: a Python call of the combine per element,
about a millisecond each. :func:`vectorized_scans` folds whole slices along the scan
axis instead, one call per step: the same floating-point operations on the same values
in the same order (the interpreter's fold is sequential either way), so every result is
bitwise the element-wise fold's, and a 32 x 16 tile scans about 16 times faster.

The traffic meter enables it while active; the scan tests enable it for the session.
"""

from __future__ import annotations

import contextlib

import numpy as np


def _sliced_scan(self, input):
    # ScanOps.generic_scan, one combine call per index along the axis (reverse scans
    # arrive flipped, as in the original).
    data = [np.moveaxis(arg.handle.data, self.axis, 0) for arg in input]
    out = [np.empty_like(d) for d in data]
    for o, d in zip(out, data, strict=True):
        o[0] = d[0]
    for i in range(1, data[0].shape[0]):
        previous = [self.to_tensor(o[i - 1], arg.dtype) for o, arg in zip(out, input, strict=True)]
        current = [self.to_tensor(d[i], arg.dtype) for d, arg in zip(data, input, strict=True)]
        result = self.combine_fn.fn(*previous, *current)
        result = result if isinstance(result, tuple) else (result,)
        for o, r in zip(out, result, strict=True):
            o[i] = np.reshape(r.handle.data if hasattr(r, "handle") else r, o[i].shape)
    return [self.to_tensor(np.moveaxis(o, 0, self.axis), arg.dtype)
            for o, arg in zip(out, input, strict=True)]


@contextlib.contextmanager
def vectorized_scans():
    """While active, the interpreter scans with :func:`_sliced_scan` (a no-op where this
    Triton's interpreter has no ``ScanOps.generic_scan`` to replace)."""
    from triton.runtime import interpreter

    ops = getattr(interpreter, "ScanOps", None)
    original = getattr(ops, "generic_scan", None)
    if original is None or original is _sliced_scan:
        yield
        return
    ops.generic_scan = _sliced_scan
    try:
        yield
    finally:
        ops.generic_scan = original
