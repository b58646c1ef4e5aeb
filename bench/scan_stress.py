"""The GPU day's stress and correctness pass, before any timing:
``python -m bench.scan_stress [--budget 240] [--out FILE]`` (``bench/gpu.sh`` runs it).

Checks, each within its share of a hard time budget, one summary line each, and a JSON:

1. **gpu tests**: ``pytest -m gpu tests/kernels`` in a child process (the kernel tests
   that need CUDA: bitwise repeated look-backs, 16-bit inputs, packed sequences, long
   sequences against the fp32 loop, the triton scan against chunked).
2. **repeated launches**: B·N from 1 to 4 with T from 64k to 1M, chunk 32 (the
   look-back over up to 32768 chunks a sequence): ``--repeats`` forward and backward
   launches each, every one bitwise equal to the first, the first against the chunked
   scan (complex64, and complex128 as the oracle).
3. **synccheck**: one look-back and one single pass, forward and backward, under
   ``compute-sanitizer --tool synccheck`` where it is installed (skipped otherwise).

A check that runs out of its time is a failure (``timeout``); the exit status is 0 only
when every check that ran passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: (B, N) and T of the repeated-launch check: B·N = 1, 2, 4 over 64k .. 1M steps.
SHAPES = [(1, 1), (2, 1), (1, 4)]
LENGTHS = [1 << 16, 1 << 18, 1 << 20]
CHUNK = 32
# The budget's shares: the tests, the launches, the sanitizer (the rest is start-up).
SHARES = {"gpu tests": 0.4, "repeated launches": 0.4, "synccheck": 0.15}
ORACLE_RTOL = 2e-5  # the tests' bound for long fp32 scans against complex128


@dataclass
class Check:
    name: str
    status: str = "pass"  # pass, fail, timeout, skipped
    seconds: float = 0.0
    detail: str = ""
    figures: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status.upper():7s} {self.name}: {self.detail} ({self.seconds:.1f} s)"


def _child(command: list[str], seconds: float) -> tuple[int | None, str]:
    """Runs ``command``; (exit status, or None when it ran out of time; its last output)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(1, seconds),
                              check=False)
    except subprocess.TimeoutExpired as err:
        output = err.stdout or ""
        return None, (output.decode(errors="replace") if isinstance(output, bytes)
                      else output)[-2000:]
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def _last_line(output: str) -> str:
    lines = [line.strip("= ") for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _status(exit_status: int | None) -> str:
    return "timeout" if exit_status is None else ("pass" if exit_status == 0 else "fail")


def gpu_tests(seconds: float) -> Check:
    status, output = _child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-m", "gpu", "tests/kernels"], seconds)
    return Check("gpu tests (pytest -m gpu tests/kernels)", _status(status),
                 detail=_last_line(output))


def _relative(x, ref) -> float:
    return ((x.to(ref.dtype) - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def repeated_launches(seconds: float, repeats: int, *, shapes=SHAPES, lengths=LENGTHS,
                      device: str = "cuda") -> list[Check]:
    """One check per (B, N, T): bitwise repeats and the distance to the chunked scan."""
    import torch

    from kernels.inputs import scan_inputs
    from kernels.scan import diag_scan

    deadline = time.monotonic() + seconds
    checks = []
    for T in lengths:
        for B, N in shapes:
            check = Check(f"repeated launches B={B} N={N} T={T} chunk={CHUNK}")
            started = time.monotonic()
            checks.append(check)
            if started > deadline:
                check.status, check.detail = "timeout", "no time left in the budget"
                continue
            lam, b, h0, grad = scan_inputs(B, T, N, device=device, modulus=(0.99, 1.0),
                                           h0=True, grad=True)

            def run(backend="triton", dtype=torch.complex64, lam=lam, b=b, h0=h0, grad=grad):
                leaves = [x.to(dtype).requires_grad_() for x in (lam, b, h0)]
                h = diag_scan(*leaves, backend=backend, chunk=CHUNK)
                return [h.detach(), *torch.autograd.grad(h, leaves, grad.to(dtype))]

            first = run()
            mismatches = launches = 0
            for _ in range(repeats):
                if time.monotonic() > deadline:
                    check.status = "timeout"
                    break
                again = run()
                launches += 2
                mismatches += sum(not torch.equal(x, y) for x, y in zip(first, again, strict=True))
            chunked = _relative(first[0], run("chunked")[0])
            oracle = [_relative(x, y) for x, y in zip(first, run("chunked", torch.complex128),
                                                       strict=True)]
            check.figures = {"launches": launches, "mismatches": mismatches,
                             "h_vs_chunked_complex64": chunked,
                             "vs_complex128": dict(zip(("h", "grad_lam", "grad_b", "grad_h0"),
                                                       oracle, strict=True))}
            if check.status != "timeout":
                check.status = ("pass" if mismatches == 0 and max(oracle) <= ORACLE_RTOL
                                else "fail")
            check.detail = (f"{launches} launches, {mismatches} not bitwise equal to the first; "
                            f"h vs chunked {chunked:.1e}, worst vs complex128 {max(oracle):.1e}")
            check.seconds = time.monotonic() - started
    return checks


def sanitize_case() -> None:
    """What runs under compute-sanitizer: a look-back and a single pass, forward and
    backward, at small sizes (the sanitizer slows kernels a hundredfold)."""
    import torch

    from kernels.inputs import scan_inputs
    from kernels.scan import diag_scan

    lam, b, h0, grad = scan_inputs(2, 4096, 20, device="cuda", h0=True, grad=True)
    for chunk in (CHUNK, 4096):
        leaves = [x.clone().requires_grad_() for x in (lam, b, h0)]
        h = diag_scan(*leaves, backend="triton", chunk=chunk)
        torch.autograd.grad(h, leaves, grad)
    torch.cuda.synchronize()


def synccheck(seconds: float) -> Check:
    name = "synccheck (compute-sanitizer --tool synccheck)"
    sanitizer = shutil.which("compute-sanitizer") or next(
        (p for p in ("/usr/local/cuda/bin/compute-sanitizer",) if os.path.exists(p)), None)
    if sanitizer is None:
        return Check(name, "skipped", detail="compute-sanitizer is not installed")
    status, output = _child([sanitizer, "--tool", "synccheck", "--error-exitcode", "1",
                             sys.executable, "-m", "bench.scan_stress", "--sanitize-case"],
                            seconds)
    summary = [line for line in output.splitlines() if "ERROR SUMMARY" in line]
    return Check(name, _status(status), detail=summary[-1].strip() if summary
                 else _last_line(output))


def _timed(run, *args) -> Check:
    started = time.monotonic()
    check = run(*args)
    check.seconds = time.monotonic() - started
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=225.0,
                        help="seconds for all checks (bench/gpu.sh kills the pass at 240)")
    parser.add_argument("--repeats", type=int, default=100,
                        help="repeated forward + backward launches per shape")
    parser.add_argument("--out", type=Path, default=None, help="the JSON written")
    parser.add_argument("--sanitize-case", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sanitize_case:
        sanitize_case()
        return 0
    import torch

    from kernels.machine import machine_label

    started = time.monotonic()
    checks: list[Check] = []

    def record(check: Check) -> None:
        checks.append(check)
        print(check.line(), flush=True)

    if not torch.cuda.is_available():
        record(Check("cuda", "fail", detail="no CUDA device: this pass is for a GPU machine"))
    else:
        record(_timed(gpu_tests, args.budget * SHARES["gpu tests"]))
        for check in repeated_launches(args.budget * SHARES["repeated launches"], args.repeats):
            record(check)
        record(_timed(synccheck, args.budget * SHARES["synccheck"]))
    ok = all(c.status in ("pass", "skipped") for c in checks)
    report = {"label": machine_label(), "budget_s": args.budget,
              "seconds": time.monotonic() - started, "passed": ok,
              "checks": [asdict(c) for c in checks]}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"written to {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
