"""The benchmark cases that both harnesses time: asv (``bench/benchmarks``) and
pytest-benchmark (``bench/test_*.py``); and the cases the per-commit count gate measures
(``bench.counts``). Append only: asv's history and the committed counts are keyed by them.

A case is one kernel, one implementation and one size. ``build(case, device)`` returns a
callable that runs the case once, synchronised with the device, on inputs made with a
fixed seed; ``bytes_moved(case)`` is the memory traffic the kernel must move at least,
so every timing turns into GB/s.

Kernels and implementations:

- ``scan_fwd`` / ``scan_fwdbwd``: ``kernels.diag_scan`` with constant λ, complex64;
  implementations are its backends (``sequential`` is the oracle, ``chunked`` the
  fastest pure-PyTorch one, ``triton`` the fused kernel) and ``copy``: ``b.clone()`` of
  the same bytes, the machine's practical bandwidth ceiling for the forward.
- ``adamw``: one optimizer step of ``kernels.optim.AdamW`` (``ref`` = torch backend,
  ``triton``) and of ``torch.optim.AdamW`` (``torch_foreach``, ``torch_fused``).
- ``ngn``: one step of ``kernels.optim.NGN`` (``ref``, ``triton``); ``sgd``: one step
  of ``torch.optim.SGD`` (``torch_foreach``, ``torch_fused``), NGN's cost baseline.

Sizes: scan ``(B, T, N)``; optimizers ``(tensors, elements per tensor)``.

``kernels`` is imported inside the functions that use it: asv and the count gate import
this module against every commit's ``kernels``, and older commits lack some of its modules.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

SCAN_KERNELS = ("scan_fwd", "scan_fwdbwd")
OPTIM_KERNELS = ("adamw", "ngn", "sgd")

# Which implementations each kernel has, and which of them is "the reference" that a
# fused implementation's speedup is quoted against.
IMPLS = {
    "scan_fwd": ("sequential", "chunked", "triton", "copy"),
    "scan_fwdbwd": ("sequential", "chunked", "triton"),
    "adamw": ("ref", "triton", "torch_foreach", "torch_fused"),
    "ngn": ("ref", "triton"),
    "sgd": ("torch_foreach", "torch_fused"),
}
REFERENCE_IMPL = {"scan_fwd": "chunked", "scan_fwdbwd": "chunked", "adamw": "ref", "ngn": "ref"}
CUDA_ONLY_IMPLS = {"triton"}

# Scan sizes: B·N = 8192 channels, so T = 4096 gives B·T·N = 2^25 elements.
SCAN_SIZES_FULL = [(16, T, 512) for T in (256, 1024, 4096, 16384)]
SCAN_SIZES_QUICK = [(8, 256, 256), (8, 4096, 256)]
# The sequential oracle loops over T in Python: time it only at the smaller lengths.
SEQUENTIAL_MAX_T = 256
OPTIM_SIZES_FULL = [(1, 1 << 20), (1, 1 << 24), (1, 1 << 27), (1000, 1 << 14)]
OPTIM_SIZES_QUICK = [(1, 1 << 20), (1, 1 << 24), (1000, 1 << 14)]


@dataclass(frozen=True)
class Case:
    kernel: str
    impl: str
    size: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.kernel}[{self.impl}-{'x'.join(map(str, self.size))}]"

    @property
    def elements(self) -> int:
        n = 1
        for s in self.size:
            n *= s
        return n


def bytes_moved(case: Case) -> int:
    """Fewest bytes the case must move through memory (fp32 / complex64 data)."""
    # Imported here, not at the top: asv imports this module against every commit's
    # kernels, and commits older than a byte model must still be timed.
    from kernels.optim.traffic import (
        adamw_bytes_per_param,
        ngn_bytes_per_param,
        sgd_bytes_per_param,
    )
    from kernels.scan import bytes_moved as scan_bytes_moved

    if case.kernel == "scan_fwd":
        return scan_bytes_moved(*case.size)
    if case.kernel == "scan_fwdbwd":
        return scan_bytes_moved(*case.size, backward=True)
    if case.kernel == "adamw":
        return adamw_bytes_per_param() * case.elements
    if case.kernel == "ngn":
        return ngn_bytes_per_param() * case.elements
    if case.kernel == "sgd":
        return sgd_bytes_per_param() * case.elements
    raise ValueError(f"unknown kernel {case.kernel!r}")


def subset() -> str:
    """``LSB_BENCH`` (``quick`` or ``full``); by default full on CUDA, quick elsewhere."""
    value = os.environ.get("LSB_BENCH") or ("full" if torch.cuda.is_available() else "quick")
    if value not in ("quick", "full"):
        raise ValueError(f"LSB_BENCH must be 'quick' or 'full', got {value!r}")
    return value


def sizes(kernel: str, which: str | None = None) -> list[tuple[int, ...]]:
    full = (which or subset()) == "full"
    if kernel in SCAN_KERNELS:
        return SCAN_SIZES_FULL if full else SCAN_SIZES_QUICK
    return OPTIM_SIZES_FULL if full else OPTIM_SIZES_QUICK


def cases(kernels: Iterable[str] = tuple(IMPLS), which: str | None = None) -> list[Case]:
    """Every case of ``kernels`` in the chosen subset, on any device."""
    out = []
    for kernel in kernels:
        for size in sizes(kernel, which):
            for impl in IMPLS[kernel]:
                out.append(Case(kernel, impl, size))
    return out


def skip_reason(case: Case, device: torch.device) -> str | None:
    """Why ``case`` does not run on ``device``, or None when it does."""
    if case.impl in CUDA_ONLY_IMPLS and device.type != "cuda":
        return "Triton kernels are timed on CUDA only (the interpreter is not a performance path)"
    if case.impl == "sequential" and case.size[1] > SEQUENTIAL_MAX_T:
        return f"the sequential oracle is timed only up to T = {SEQUENTIAL_MAX_T}"
    if case.impl == "torch_fused" and device.type != "cuda" and case.kernel == "sgd":
        if not _cpu_fused_sgd():
            return "torch.optim.SGD(fused=True) is not available on the CPU in this torch"
    return None


def _scan_runner(case: Case, device: torch.device) -> Callable[[], None]:
    from kernels import diag_scan
    from kernels.inputs import scan_inputs

    backward = case.kernel == "scan_fwdbwd"
    lam, b, _, grad = scan_inputs(*case.size, device=device, grad=backward)
    if case.impl == "copy":
        return lambda: b.clone()
    if not backward:
        return lambda: diag_scan(lam, b, backend=case.impl)
    lam = lam.requires_grad_()
    b = b.requires_grad_()

    def forward_backward() -> None:
        h = diag_scan(lam, b, backend=case.impl)
        torch.autograd.backward(h, grad)
        lam.grad = b.grad = None

    return forward_backward


def _cpu_fused_sgd() -> bool:
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.zeros(2)
    try:
        torch.optim.SGD([p], lr=0.1, fused=True).step()
    except (RuntimeError, ValueError):
        return False
    return True


def build_optimizer(case: Case, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    from kernels.optim import NGN, AdamW

    backend = {"ref": "torch", "triton": "triton"}.get(case.impl)
    if case.kernel == "adamw":
        if backend:
            return AdamW(params, lr=1e-3, weight_decay=1e-2, backend=backend)
        fused = case.impl == "torch_fused"
        return torch.optim.AdamW(
            params, lr=1e-3, weight_decay=1e-2, foreach=not fused, fused=fused or None
        )
    if case.kernel == "ngn":
        return NGN(params, sigma=1e-3, backend=backend)
    if case.kernel == "sgd":
        fused = case.impl == "torch_fused"
        return torch.optim.SGD(params, lr=1e-3, foreach=not fused, fused=fused or None)
    raise ValueError(f"not an optimizer kernel: {case.kernel!r}")


def _optim_runner(case: Case, device: torch.device) -> Callable[[], None]:
    from kernels.inputs import optim_params

    count, numel = case.size
    params = optim_params([numel] * count, device=device)
    optimizer = build_optimizer(case, params)
    if case.kernel == "ngn":
        loss = torch.tensor(1.0, device=device)
        # validate=False: the fused path's contract is no host sync per step.
        return lambda: optimizer.step(loss=loss, validate=False)
    return optimizer.step


def default_device() -> torch.device:
    from kernels.machine import default_device

    return default_device()


def runner(case: Case, device: torch.device | None = None) -> Callable[[], None]:
    """A callable queueing ``case`` once on the device (for ``bench.timing``, which
    times the device's work); raises ``NotImplementedError`` with the reason when the
    case does not run on ``device``."""
    device = device or default_device()
    reason = skip_reason(case, device)
    if reason:
        raise NotImplementedError(reason)
    if case.kernel in SCAN_KERNELS:
        return _scan_runner(case, device)
    return _optim_runner(case, device)


def build(case: Case, device: torch.device | None = None) -> Callable[[], None]:
    """A callable running ``case`` once, synchronised with the device before returning
    (for wall-clock timers: pytest-benchmark's and asv's)."""
    from kernels.machine import synchronize

    device = device or default_device()
    run = runner(case, device)

    def timed() -> None:
        run()
        synchronize(device)

    return timed


# Peak HBM bandwidth in GB/s from vendors' datasheets, by device-name fragment; the first
# match wins, so more specific names come first.
PEAK_GBPS = (
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100", 3350.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),
    ("L40S", 864.0),
    ("L4", 300.0),
    ("RTX 4090", 1008.0),
    ("V100", 900.0),
)


def peak_gbps(device_name: str) -> float | None:
    """The datasheet bandwidth of a device name (``NVIDIA H200``) or of a machine label
    (``h200``, ``a100-sxm4-80gb``): case, spaces and hyphens do not matter."""
    name = device_name.lower().replace("-", " ")
    for fragment, gbps in PEAK_GBPS:
        if fragment.lower().replace("-", " ") in name:
            return gbps
    return None


def extra_info(case: Case, seconds: float | None, device: torch.device) -> dict:
    """What each benchmark records beside its timing (pytest-benchmark's ``extra_info``)."""
    from kernels.machine import device_name

    name = device_name(device)
    moved = bytes_moved(case)
    info = {
        "kernel": case.kernel,
        "impl": case.impl,
        "size": list(case.size),
        "case": case.name,
        "reference": REFERENCE_IMPL.get(case.kernel, ""),
        "bytes": moved,
        "device": name,
        "peak_gbps": peak_gbps(name),
    }
    if seconds:
        info["gbps"] = moved / seconds / 1e9
        if info["peak_gbps"]:
            info["peak_fraction"] = info["gbps"] / info["peak_gbps"]
    return info


if __name__ == "__main__":
    import sys

    from kernels.machine import machine_label

    if sys.argv[1:] != ["label"]:
        sys.exit("usage: python -m bench.cases label")
    print(machine_label())


# The count gate (bench.counts). Instruction counts of the CPU paths under valgrind, at
# sizes where one valgrind process measures them all in a minute or two: the sequential
# oracle and the chunked scan; ``reference`` is kernels.optim's ``*_step_ref`` function,
# ``cpu_fused`` the optimizer's own step on the CPU (torch's fused CPU kernels where the
# commit has them).
COUNT_SCAN_SIZE = (8, 256, 256)
COUNT_OPTIM_SIZE = (1, 1 << 20)
INSTRUCTION_CASES = (
    Case("scan_fwd", "sequential", COUNT_SCAN_SIZE),
    Case("scan_fwd", "chunked", COUNT_SCAN_SIZE),
    Case("scan_fwdbwd", "chunked", COUNT_SCAN_SIZE),
    Case("adamw", "reference", COUNT_OPTIM_SIZE),
    Case("adamw", "cpu_fused", COUNT_OPTIM_SIZE),
    Case("ngn", "reference", COUNT_OPTIM_SIZE),
    Case("ngn", "cpu_fused", COUNT_OPTIM_SIZE),
)


def instruction_case(name: str) -> Case:
    """The instruction case called ``name`` (``Case.name``)."""
    for case in INSTRUCTION_CASES:
        if case.name == name:
            return case
    known = ", ".join(c.name for c in INSTRUCTION_CASES)
    raise ValueError(f"no instruction case {name!r}; the cases are: {known}")

# Static report cases (kernels.report: bytes metered under the Triton interpreter, the
# sm_90/sm_80 compile) that the count gate and asv's track_* benchmarks follow: every case
# of the report but those in STATIC_SKIPPED.
STATIC_CASES = (
    "scan_fwd 16x1024x512",
    "scan_fwdbwd 16x1024x512",
    "scan_fwd_varying 16x1024x512",
    "scan_fwdbwd_varying 16x1024x512",
    "scan_fwd 8x4096x256",
    "scan_fwdbwd 8x4096x256",
    "adamw float32 1x16777216",
    "adamw float16 1x16777216",
    "ngn two-pass float32 1x16777216",
    "ngn one-pass float32 1x16777216",
    "adamw float32 1000x16384",
    "ngn two-pass float32 1000x16384",
    "ngn one-pass float32 1000x16384",
    "grad_sq_norm float32 1x16777216",
    "scan_fwd complex32 16x1024x512",
    "scan_fwdbwd bf16-pairs 16x1024x512",
    "scan_fwdbwd bf16-pairs 8x4096x256",
    "scan_fwd channel-stride 4 16x1024x512",
)
#: Report cases the gate leaves out, and why.
STATIC_SKIPPED = {
    "scan_fwd 16x4096x512": "the kernel configuration of scan_fwd 16x1024x512 at 4x the "
                            "interpreter's time",
    "scan_fwdbwd 16x4096x512": "the kernel configurations of scan_fwdbwd 16x1024x512 at 4x "
                               "the interpreter's time",
}
