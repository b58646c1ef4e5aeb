"""Times every pure-PyTorch scan scheme in one run; ``python -m bench.scan_compare``.

The candidates besides the registered backends are written here only to be measured:
they are what the chunked backend was chosen over. Each is timed forward and
forward + backward (autograd through its ops, unless the scheme has its own backward),
with lam shared over batch and time as in the LRU, and the CPU default's forward time
is compared with ``b.clone()``, which moves the same 16 bytes per element.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from bench.timing import median_seconds
from kernels.inputs import scan_inputs
from kernels.scan import diag_scan
from kernels.scan.reference import chunked_scan_forward

Scan = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sequential_inplace(lam: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One fused multiply-add per step into the output (forward only: writes in place)."""
    out = torch.empty_like(b)
    out[:, 0] = b[:, 0]
    for t in range(1, b.shape[1]):
        torch.addcmul(b[:, t], lam, out[:, t - 1], out=out[:, t])
    return out


def hillis_steele(lam: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Log-depth scan: log2(T) full passes, each adding lam^s-scaled shifted states."""
    h, power, shift = b, lam, 1
    while shift < b.shape[1]:
        h = torch.cat([h[:, :shift], torch.addcmul(h[:, shift:], power, h[:, :-shift])], 1)
        power, shift = power * power, shift * 2
    return h


def chunked_matmul(lam: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two-level scan whose within-chunk scans are one batched matmul with the
    lower-triangular Toeplitz matrices lam^(l-k), then a carry loop and a fix-up."""
    B, T, N = b.shape
    L = 1 << (T.bit_length() // 2)  # about sqrt(T)
    C = T // L
    if C * L != T:
        raise ValueError(f"chunked_matmul needs T divisible by its chunk {L}, got T={T}")
    lags = torch.arange(L)[:, None] - torch.arange(L)[None, :]
    powers = lam[:, None, None] ** lags.clamp(min=0).to(b.real.dtype)
    toeplitz = torch.where(lags >= 0, powers, torch.zeros((), dtype=b.dtype))  # (N, L, L)
    local = torch.matmul(toeplitz, b.reshape(B * C, L, N).permute(2, 1, 0))  # (N, L, B*C)
    local = local.permute(2, 1, 0).reshape(B, C, L, N)
    decay = lam.expand(L, N).cumprod(0)
    state = b.new_zeros(B, N)
    carries = []
    for c in range(C):
        carries.append(state)
        state = decay[-1] * state + local[:, c, -1]
    carry = torch.stack(carries, 1)
    return (local + decay * carry[:, :, None]).reshape(B, T, N)


def fft_convolution(lam: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h = b * (lam^t) as a causal FFT convolution. Only for |lam| <= 1: lam^t is formed
    for t up to T-1 and overflows (or drowns b in round-off) when |lam| > 1."""
    T = b.shape[1]
    kernel = lam ** torch.arange(T, dtype=b.real.dtype)[:, None]  # (T, N)
    n = 2 * T  # zero padding turns the circular convolution into a linear one
    spectrum = torch.fft.fft(b, n=n, dim=1) * torch.fft.fft(kernel, n=n, dim=0)
    return torch.fft.ifft(spectrum, dim=1)[:, :T]


def schemes() -> dict[str, tuple[Scan, bool]]:
    """name -> (scan, has a backward)."""
    return {
        "sequential (oracle, autograd)": (
            lambda lam, b: diag_scan(lam, b, backend="sequential"), True),
        "sequential, in-place addcmul": (sequential_inplace, False),
        "chunked (default, fused bwd)": (
            lambda lam, b: diag_scan(lam, b, backend="chunked"), True),
        "chunked, forward kernel only": (
            lambda lam, b: chunked_scan_forward(lam, b, None, False), False),
        "chunked, matmul within chunks": (chunked_matmul, True),
        "log-depth (Hillis-Steele)": (hillis_steele, True),
        "FFT convolution (|lam|<=1)": (fft_convolution, True),
    }


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    return 1e3 * median_seconds(fn, warmup=1, repeats=repeats, device="cpu")


def measure(B: int = 8, T: int = 4096, N: int = 256, repeats: int = 5) -> dict[str, dict]:
    """Median milliseconds per scheme: ``{"forward": ..., "forward_backward": ...}``,
    plus ``"clone"`` for ``b.clone()``."""
    lam, b, _, grad = scan_inputs(B, T, N, modulus=(0.9, 0.999), grad=True)

    results: dict[str, dict] = {"clone": {"forward": _median_ms(b.clone, repeats)}}
    for name, (scan, differentiable) in schemes().items():
        slow = name.startswith("sequential")
        reps = max(1, repeats // 2) if slow else repeats
        with torch.no_grad():
            row = {"forward": _median_ms(lambda s=scan: s(lam, b), reps)}
        if differentiable:
            lam_p, b_p = lam.clone().requires_grad_(), b.clone().requires_grad_()

            def step(s=scan, lam_p=lam_p, b_p=b_p):
                torch.autograd.grad(s(lam_p, b_p), (lam_p, b_p), grad)

            row["forward_backward"] = _median_ms(step, reps)
        results[name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, nargs=3, default=(8, 4096, 256), metavar=("B", "T", "N")
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="intra-op threads (default: torch's); 1 avoids stalls on a shared machine",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    B, T, N = args.size
    print(f"(B, T, N) = ({B}, {T}, {N}), complex64, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} runs")
    results = measure(B, T, N, args.repeats)
    clone = results.pop("clone")["forward"]
    print(f"{'scheme':32} {'forward ms':>11} {'fwd+bwd ms':>11}")
    for name, row in results.items():
        fb = row.get("forward_backward")
        print(f"{name:32} {row['forward']:11.1f} {'-' if fb is None else f'{fb:.1f}':>11}")
    default = results["chunked (default, fused bwd)"]["forward"]
    print(f"b.clone(): {clone:.1f} ms; chunked forward / clone = {default / clone:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
