"""A traffic meter for Triton kernels run under the interpreter (``TRITON_INTERPRET=1``).

While a :class:`TrafficMeter` is active, the interpreter's memory operations are
counted: every element a ``tl.load`` (or a store, an atomic read-modify-write, a tensor
descriptor load...) touches is counted with its dtype's width, masked-off lanes
excluded. Nothing is cached, so a re-read counts again, as HBM traffic would on a GPU
without a cache hit: an upper bound that equals DRAM traffic for streaming kernels.
Each access is also counted in the 32-byte sectors it touches (the unit DRAM moves): a
strided access that uses 8 bytes of every sector moves four times its bytes.

``TrafficMeter(dry=True)`` records launches without running them: their tensors may be
meta tensors of any size, so a launcher can be called at a benchmark's size to record
the configuration it launches there (the static report compiles those).

The hook sits on ``InterpreterBuilder.create_masked_load`` / ``create_masked_store``, which
every unmasked load, atomic load/store and descriptor access of the interpreter goes
through, plus ``create_atomic_rmw`` / ``create_atomic_cas``. Launches are recorded by
wrapping ``InterpretedFunction.run`` (the ``kernel[grid](...)`` entry point), with what
:mod:`kernels.report.compile` needs to compile the same configuration ahead of time.
While active, the interpreter's scans run vectorized (:mod:`kernels.report.interpreter`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernels.report.interpreter import vectorized_scans

_DESCRIBED = (bool, int, float, str, type(None))
SECTOR_BYTES = 32  # the granularity of DRAM traffic on NVIDIA GPUs


@dataclass
class Launch:
    """One kernel launch: what it was called with and the bytes it moved."""

    kernel: str  # "module:qualname" of the @triton.jit function
    args: list[Any]  # arguments described by ``describe_argument``
    kwargs: dict[str, Any]  # constexprs and launch options (num_warps, num_stages)
    grid: list[int]
    loaded: int = 0
    stored: int = 0
    atomic: int = 0
    sector_loaded: int = 0  # bytes of the 32-byte sectors the loads touch
    sector_stored: int = 0

    @property
    def config(self) -> tuple:
        """The launch's identity for compilation (everything but the grid and counts)."""
        return (self.kernel, repr(self.args), repr(sorted(self.kwargs.items())))


def describe_argument(value: Any) -> Any:
    """A JSON-able stand-in for a kernel argument: tensors by dtype and 16-byte alignment
    (what Triton specializes pointers on); plain values as they are."""
    if hasattr(value, "data_ptr"):
        return {"tensor": str(value.dtype).removeprefix("torch."),
                "aligned": value.data_ptr() % 16 == 0}
    if isinstance(value, _DESCRIBED):
        return value
    raise TypeError(f"the meter cannot describe a kernel argument of type {type(value).__name__}")


@dataclass
class TrafficMeter:
    """Counts bytes and records launches of interpreted Triton kernels while active.

    Example::

        with TrafficMeter() as meter:
            my_launcher(x)
        meter.loaded, meter.stored, meter.launches
    """

    dry: bool = False
    launches: list[Launch] = field(default_factory=list)
    _current: Launch | None = None
    _saved: list = field(default_factory=list)
    _scans: Any = None

    @property
    def loaded(self) -> int:
        return sum(launch.loaded for launch in self.launches)

    @property
    def stored(self) -> int:
        return sum(launch.stored for launch in self.launches)

    @property
    def atomic(self) -> int:
        return sum(launch.atomic for launch in self.launches)

    @property
    def total(self) -> int:
        return self.loaded + self.stored + self.atomic

    @property
    def sector_total(self) -> int:
        return sum(launch.sector_loaded + launch.sector_stored + launch.atomic
                   for launch in self.launches)

    def __enter__(self) -> TrafficMeter:
        if os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("the traffic meter needs TRITON_INTERPRET=1 set before triton is "
                               "imported (kernels must run under the interpreter)")
        from triton.runtime import interpreter

        builder, function = interpreter.InterpreterBuilder, interpreter.InterpretedFunction
        if getattr(function.run, "_metered", False):
            raise RuntimeError("a TrafficMeter is already active")
        meter = self
        originals = {
            (builder, "create_masked_load"): builder.create_masked_load,
            (builder, "create_masked_store"): builder.create_masked_store,
            (builder, "create_atomic_rmw"): builder.create_atomic_rmw,
            (builder, "create_atomic_cas"): builder.create_atomic_cas,
            (function, "run"): function.run,
        }

        def lanes(mask) -> int:
            return int(mask.data.sum())

        def width(ptrs) -> int:
            return ptrs.get_element_ty().primitive_bitwidth // 8

        def sectors(ptrs, mask) -> int:
            addresses = np.broadcast_to(ptrs.data, mask.data.shape)[mask.data.astype(bool)]
            return SECTOR_BYTES * np.unique(addresses // SECTOR_BYTES).size

        def masked_load(self, ptrs, mask, other, cache_policy, is_volatile):
            meter._count("loaded", lanes(mask) * width(ptrs))
            meter._count("sector_loaded", sectors(ptrs, mask))
            return originals[builder, "create_masked_load"](
                self, ptrs, mask, other, cache_policy, is_volatile)

        def masked_store(self, ptrs, value, mask, cache_policy):
            meter._count("stored", lanes(mask) * width(ptrs))
            meter._count("sector_stored", sectors(ptrs, mask))
            return originals[builder, "create_masked_store"](self, ptrs, value, mask, cache_policy)

        def atomic_rmw(self, op, ptr, val, mask, sem, scope):
            meter._count("atomic", lanes(mask) * width(ptr))
            return originals[builder, "create_atomic_rmw"](self, op, ptr, val, mask, sem, scope)

        def atomic_cas(self, ptr, cmp, val, sem, scope):
            meter._count("atomic", ptr.data.size * width(ptr))
            return originals[builder, "create_atomic_cas"](self, ptr, cmp, val, sem, scope)

        def run(self, *args, grid, warmup, **kwargs):
            if warmup:
                return originals[function, "run"](self, *args, grid=grid, warmup=warmup, **kwargs)
            if callable(grid):
                grid = grid({**dict(zip(self.arg_names, args, strict=False)), **kwargs})
            launch = Launch(
                kernel=f"{self.fn.__module__}:{self.fn.__qualname__}",
                args=[describe_argument(a) for a in args],
                kwargs={k: describe_argument(v) for k, v in kwargs.items()},
                grid=[int(g) for g in grid],
            )
            meter.launches.append(launch)
            if meter.dry:
                return None
            meter._current = launch
            try:
                return originals[function, "run"](self, *args, grid=grid, warmup=warmup, **kwargs)
            finally:
                meter._current = None

        run._metered = True
        replacements = {
            (builder, "create_masked_load"): masked_load,
            (builder, "create_masked_store"): masked_store,
            (builder, "create_atomic_rmw"): atomic_rmw,
            (builder, "create_atomic_cas"): atomic_cas,
            (function, "run"): run,
        }
        self._saved = list(originals.items())
        for (owner, name), replacement in replacements.items():
            setattr(owner, name, replacement)
        self._scans = vectorized_scans()
        self._scans.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for (owner, name), original in self._saved:
            setattr(owner, name, original)
        self._saved = []
        self._scans.__exit__(*exc)

    def _count(self, kind: str, nbytes: int) -> None:
        if self._current is None:
            raise RuntimeError("memory access outside a recorded kernel launch")
        setattr(self._current, kind, getattr(self._current, kind) + nbytes)
