"""Every address the scan kernels form is computed in 64-bit arithmetic.

The kernels run under the interpreter on small tensors, but the launcher hands them the
strides of a huge layout for one tensor (each stride below 2**31, as a GPU launch would
type it int32; their products with indices far above). Loads and stores whose address
falls outside every tensor of the launch are recorded and not performed (a load returns
zeros), so nothing of that size is allocated. The recorded addresses must be exactly the
ones 64-bit arithmetic gives: an offset wrapped in int32 lands elsewhere.
"""

import numpy as np
import pytest
import torch
from markers import needs_interpreter
from test_scan import _vectorized_interpreter_scans, make_inputs  # noqa: F401

# Strides in complex elements: products with indices pass 2**31 (n * s_n up to 15 * 2**28).
S_B, S_T, S_N = 2**30 + 7, 2**29 + 3, 2**28 + 1
B, T, N = 2, 8, 16


class AddressTrace:
    """Records the addresses of interpreted loads and stores that fall outside every
    tensor argument of their launch, and masks those accesses off."""

    def __init__(self):
        self.addresses: set[int] = set()

    def __enter__(self):
        from triton.runtime import interpreter

        builder, function = interpreter.InterpreterBuilder, interpreter.InterpretedFunction
        self._saved = [(builder, "create_masked_load", builder.create_masked_load),
                       (builder, "create_masked_store", builder.create_masked_store),
                       (function, "run", function.run)]
        original_load, original_store, original_run = (saved[2] for saved in self._saved)
        trace, real = self, []

        def run(fn, *args, grid, warmup, **kwargs):
            storages = [a.untyped_storage() for a in (*args, *kwargs.values())
                        if isinstance(a, torch.Tensor)]
            real[:] = [(s.data_ptr(), s.data_ptr() + s.nbytes()) for s in storages]
            return original_run(fn, *args, grid=grid, warmup=warmup, **kwargs)

        def performed(ptrs, mask):
            addresses = np.broadcast_to(ptrs.data, mask.data.shape).astype(np.uint64)
            inside = np.zeros(mask.data.shape, dtype=bool)
            for lo, hi in real:
                inside |= (addresses >= lo) & (addresses < hi)
            trace.addresses.update(int(a) for a in addresses[mask.data.astype(bool) & ~inside])
            return interpreter.TensorHandle(mask.data & inside, mask.dtype)

        def load(self, ptrs, mask, other, cache_policy, is_volatile):
            return original_load(self, ptrs, performed(ptrs, mask), other, cache_policy,
                                 is_volatile)

        def store(self, ptrs, value, mask, cache_policy):
            return original_store(self, ptrs, value, performed(ptrs, mask), cache_policy)

        builder.create_masked_load, builder.create_masked_store = load, store
        function.run = run
        return self

    def __exit__(self, *exc):
        for owner, name, original in self._saved:
            setattr(owner, name, original)


def byte_addresses(base: int, indices, strides) -> set[int]:
    """Addresses of the fp32 (real, imag) parts at complex ``indices``."""
    return {base + 4 * (2 * sum(i * s for i, s in zip(index, strides, strict=True)) + part)
            for index in indices for part in (0, 1)}


def rows(ts):
    return [(b, t, n) for b in range(B) for t in ts for n in range(N)]


# target: (pass, what the kernel must touch, that tensor's strides). The backward of a
# forward scan reads lam_{t+1} and h_{t-1}.
TARGETS = {
    "b": ("forward", rows(range(T)), (S_B, S_T, S_N)),
    "lam": ("forward", rows(range(T)), (S_B, S_T, S_N)),
    "lam_shared": ("forward", [(n,) for n in range(N)], (S_N,)),
    "h0": ("forward", [(b, n) for b in range(B) for n in range(N)], (S_T, S_N)),
    "h": ("forward", rows(range(T)), (S_B, S_T, S_N)),  # the output
    "grad_h": ("backward", rows(range(T)), (S_B, S_T, S_N)),
    "lam_adjoint": ("backward", rows(range(1, T)), (S_B, S_T, S_N)),
    "saved_h": ("backward", rows(range(T - 1)), (S_B, S_T, S_N)),
    "grad_b": ("backward", rows(range(T)), (S_B, S_T, S_N)),  # the output
}


@needs_interpreter
@pytest.mark.parametrize("chunk", [T, 4], ids=["single_pass", "lookback"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_offsets_past_2_31_are_formed_in_64_bits(monkeypatch, target, chunk):
    from kernels.scan import triton_scan

    which, indices, strides = TARGETS[target]
    varying = target in ("lam", "lam_adjoint")
    lam, b, h0 = make_inputs(B, T, N, varying=varying, with_h0=True)
    h = triton_scan.triton_scan_forward(lam, b, h0, False, chunk)
    grad_h = torch.randn_like(b)
    inputs = {"b": b, "lam": lam, "lam_shared": lam, "h0": h0, "grad_h": grad_h,
              "lam_adjoint": lam, "saved_h": h}
    chosen = inputs.get(target)
    pairs, bases = triton_scan._pairs, []

    def huge_layout(tensor):
        # The output is the launch's one real (pairs) tensor here: every input is complex.
        view, tensor_strides = pairs(tensor)
        if tensor is chosen or (chosen is None and not tensor.is_complex()):
            bases.append(view.data_ptr())
            return view, strides
        return view, tensor_strides

    monkeypatch.setattr(triton_scan, "_pairs", huge_layout)
    with AddressTrace() as trace:
        if which == "forward":
            triton_scan.triton_scan_forward(lam, b, h0, False, chunk)
        else:
            triton_scan.triton_scan_backward(lam, h, h0, grad_h, False, chunk)
    (base,) = set(bases)
    # The element at index 0 lies in the real tensor: it is the one access performed.
    assert trace.addresses == byte_addresses(base, indices, strides) - {base, base + 4}
