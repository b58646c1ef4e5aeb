"""A quick look at the scan (``python -m bench.scan_demo``): each backend checked
against the sequential oracle, then the CPU default timed against the sequential loop."""

from __future__ import annotations

import torch

from bench.timing import median_seconds
from kernels.inputs import scan_inputs
from kernels.scan import diag_scan, resolve_backend
from kernels.scan.reference import sequential_scan

CHECK_SIZE = (2, 300, 16)  # (B, T, N)
TIMING_SIZE = (8, 2048, 128)


def _inputs(B, T, N, device="cpu"):
    return list(scan_inputs(B, T, N, device=device, modulus=(0.99, 1.0), h0=True, grad=True))


def _outputs(scan, lam, b, h0, grad):
    leaves = [x.clone().requires_grad_() for x in (lam, b, h0)]
    h = scan(*leaves)
    return [h, *torch.autograd.grad(h, leaves, grad.to(h.dtype))]


def _check(backend: str, device: str) -> str:
    lam, b, h0, grad = _inputs(*CHECK_SIZE, device)
    got = _outputs(lambda *x: diag_scan(*x, backend=backend), lam, b, h0, grad)
    want = _outputs(sequential_scan, *(x.to(torch.complex128) for x in (lam, b, h0)), grad)
    errors = [((g - w).abs().max() / w.abs().max()).item() for g, w in zip(got, want, strict=True)]
    names = ("h", "grad_lam", "grad_b", "grad_h0")
    return "  ".join(f"{n} {e:.1e}" for n, e in zip(names, errors, strict=True))


def _seconds(fn, repeats: int = 3) -> float:
    return median_seconds(fn, warmup=1, repeats=repeats)


def _timing() -> str:
    lam, b, h0, grad = _inputs(*TIMING_SIZE)
    default = resolve_backend("auto", b.device)
    lines = []
    for label, with_grad in (("forward", False), ("forward+backward", True)):
        times = {}
        for backend in ("sequential", default):
            if with_grad:
                def run(backend=backend):
                    _outputs(lambda *x: diag_scan(*x, backend=backend), lam, b, h0, grad)
            else:
                def run(backend=backend):
                    with torch.no_grad():
                        diag_scan(lam, b, h0, backend=backend)
            times[backend] = _seconds(run)
        seq, fast = times["sequential"], times[default]
        lines.append(
            f"  {label:17} sequential {1e3 * seq:8.1f} ms   {default} {1e3 * fast:7.1f} ms   "
            f"speed-up {seq / fast:5.1f}x"
        )
    return "\n".join(lines)


def main() -> int:
    print(f"diag_scan: max relative error vs the sequential oracle in complex128, "
          f"(B, T, N) = {CHECK_SIZE}, |lam| in [0.99, 1]")
    targets = [("sequential", "cpu"), ("chunked", "cpu")]
    if torch.cuda.is_available():
        targets.append(("triton", "cuda"))
    for backend, device in targets:
        try:
            print(f"  {backend:10} {device:4}  {_check(backend, device)}")
        except Exception as exc:  # the demo reports, it does not fail
            print(f"  {backend:10} {device:4}  failed: {exc!r}")
    if not torch.cuda.is_available():
        print("  triton     skipped: no CUDA device (tests run it under the interpreter)")
    print(f"diag_scan timing on the CPU, (B, T, N) = {TIMING_SIZE}, complex64, median of 3")
    try:
        print(_timing())
    except Exception as exc:
        print(f"  failed: {exc!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
