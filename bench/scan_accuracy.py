"""The scan's accuracy on long sequences: ``python -m bench.scan_accuracy [--T 65536]``.

Channels with |lam| = 0.9999 and |lam| = 1 (eight each, random phases), where nothing
decays and rounding that repeats from tile to tile would add up. For h and for the
gradients of lam, b and h0 (one output cotangent): per channel the largest error relative
to the channel's largest magnitude, against a complex128 oracle on the same fp32 inputs
(the chunked scan in complex128, exact to about 1e-13 here and far faster than the
complex128 loop at this length); per modulus the root mean square over its channels (the
gradients of lam and h0 are one number per channel, whose error alone is noisy). For the
plain fp32 sequential loop and for each fused backend. The goal: fused <= 1.5x the loop,
for every quantity and modulus. Without a GPU, run it with ``TRITON_INTERPRET=1`` (the
Triton kernels then run under the interpreter: minutes at T = 65536).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from kernels.backend import triton_interpreted
from kernels.inputs import generator
from kernels.report.interpreter import vectorized_scans
from kernels.scan import diag_scan

MODULI = (0.9999, 1.0)
CHANNELS_PER_MODULUS = 8
GOAL = 1.5
QUANTITIES = ("h", "grad_lam", "grad_b", "grad_h0")


def _inputs(T: int, device: str, seed: int):
    gen = generator(device, seed)
    modulus = torch.tensor(MODULI, dtype=torch.float64, device=device).repeat_interleave(
        CHANNELS_PER_MODULUS)
    phase = 2 * torch.pi * torch.rand(modulus.shape, dtype=torch.float64, generator=gen,
                                      device=device)
    lam = torch.polar(modulus, phase).to(torch.complex64)
    N = lam.numel()

    def normal(*shape):
        return torch.randn(*shape, dtype=torch.complex64, generator=gen, device=device)

    return lam, normal(1, T, N), normal(1, N), normal(1, T, N)


def _outputs(scan, inputs, dtype):
    *leaves, grad = [x.to(dtype) for x in inputs]
    leaves = [x.requires_grad_() for x in leaves]
    h = scan(*leaves)
    return [h.detach(), *torch.autograd.grad(h, leaves, grad)]


def _per_modulus(got: torch.Tensor, want: torch.Tensor) -> dict[float, float]:
    # Channels are the last dimension; each error relative to its channel's largest |value|.
    N = want.shape[-1]
    err = (got.to(want.dtype) - want).abs().reshape(-1, N).amax(0)
    scale = want.abs().reshape(-1, N).amax(0)
    ratio = (err / scale).reshape(len(MODULI), CHANNELS_PER_MODULUS).square().mean(1).sqrt()
    return {m: float(r) for m, r in zip(MODULI, ratio, strict=True)}


def relative_errors(
    T: int, *, chunk: int | None = None, backends: tuple[str, ...] = ("triton",),
    device: str = "cpu", seed: int = 0,
) -> dict[str, dict[str, dict[float, float]]]:
    """``{"sequential fp32" | backend: {quantity: {modulus: relative error}}}``."""
    inputs = _inputs(T, device, seed)
    c128 = torch.complex128
    oracle = _outputs(lambda *x: diag_scan(*x, backend="chunked"), inputs, c128)
    runs = {"sequential fp32": lambda *x: diag_scan(*x, backend="sequential")}
    runs.update({name: (lambda *x, name=name: diag_scan(*x, backend=name, chunk=chunk))
                 for name in backends})
    return {label: {q: _per_modulus(g, w) for q, g, w in
                    zip(QUANTITIES, _outputs(scan, inputs, torch.complex64), oracle, strict=True)}
            for label, scan in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=65536)
    parser.add_argument("--chunk", type=int, nargs="+", default=[0],
                        help="chunks to run the fused backend with (0: its default)")
    parser.add_argument("--backend", default="triton")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    print(f"T = {args.T}, {CHANNELS_PER_MODULUS} channels per |lam|, relative errors against "
          f"complex128 on the same fp32 inputs ({args.device})")
    print(f"{'':22s} {'quantity':9s} " + " ".join(f"|lam|={m:<8g}" for m in MODULI) + "  ratio")
    for chunk in args.chunk:
        started = time.perf_counter()
        with vectorized_scans() if triton_interpreted() else contextlib.nullcontext():
            errors = relative_errors(args.T, chunk=chunk or None, backends=(args.backend,),
                                     device=args.device)
        loop = errors["sequential fp32"]
        for label, rows in errors.items():
            if label != "sequential fp32":
                label = f"{label} chunk {chunk or 'default'}"
            for quantity, row in rows.items():
                ratios = [row[m] / loop[quantity][m] for m in MODULI]
                print(f"{label:22s} {quantity:9s} " + " ".join(f"{row[m]:<14.2e}" for m in MODULI)
                      + " " + " ".join(f"{r:.2f}x" for r in ratios))
        print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
