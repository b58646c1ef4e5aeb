"""The one timer of every kernel measurement: the median of repeated runs after warm-up.

On CUDA each run is timed with CUDA events around its queued work, with the L2 cache
overwritten just before (as ``triton.testing.do_bench`` does), so a kernel reads its
inputs from HBM as it would inside a training step; on the CPU with the wall clock.
Warm-up runs pay compilation, autotuning and first allocations outside the timings.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch

# Larger than any GPU's L2 cache (50 MB on an H100 / H200).
L2_FLUSH_BYTES = 256 << 20
#: Intra-op threads of CPU timings, unless ``LSB_BENCH_THREADS`` says otherwise.
CPU_THREADS = 1


def set_cpu_threads(device: torch.device | str) -> None:
    """Time CPU cases with ``CPU_THREADS`` (``$LSB_BENCH_THREADS``) intra-op threads: on
    a machine shared with other work, a thread pool waiting for its busiest thread makes
    a step 10-40x slower from one run to the next; one thread keeps ratios meaningful."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads(int(os.environ.get("LSB_BENCH_THREADS", CPU_THREADS)))


def median_seconds(
    fn: Callable[[], object],
    *,
    warmup: int = 1,
    repeats: int = 5,
    device: torch.device | str | None = None,
) -> float:
    """Median seconds of one call of ``fn`` over ``repeats`` calls, after ``warmup``
    untimed ones. ``device`` is where ``fn`` queues its work (default: CUDA when
    present); on CUDA the timing is the device's, not the host's."""
    return interleaved_median_seconds([fn], warmup=warmup, repeats=repeats, device=device)[0]


def interleaved_median_seconds(
    fns: Sequence[Callable[[], object]],
    *,
    warmup: int = 1,
    repeats: int = 5,
    device: torch.device | str | None = None,
    before: Callable[[Callable[[], object]], object] | None = None,
) -> list[float]:
    """Median seconds of each of ``fns``, called in turn within every repeat, so that
    drift in the machine's load (other processes on a shared CPU) hits them alike.
    ``before(fn)``, when given, runs untimed ahead of every timed call of ``fn``."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = torch.device(device) if device is not None else _default_device()
    for _ in range(warmup):
        for fn in fns:
            fn()
    if device.type == "cuda":
        return _cuda_medians(fns, repeats, device, before)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            if before is not None:
                before(fn)
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def _cuda_medians(fns, repeats: int, device: torch.device, before) -> list[float]:
    flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)
    events = [
        [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
         for _ in range(repeats)]
        for _ in fns
    ]
    torch.cuda.synchronize(device)
    for r in range(repeats):
        for fn, pairs in zip(fns, events, strict=True):
            if before is not None:
                before(fn)
            flush.zero_()
            start, end = pairs[r]
            start.record()
            fn()
            end.record()
    torch.cuda.synchronize(device)
    return [statistics.median(s.elapsed_time(e) / 1e3 for s, e in pairs) for pairs in events]


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
