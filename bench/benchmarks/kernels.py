"""asv benchmarks of the cases in ``bench/cases.py``, tracked across commits.

Each class times one kernel over its implementations and sizes. ``time_step`` is asv's
own timing of one synchronised run; ``track_gbps`` and ``track_speedup`` time the case
with ``cases.time_case`` (CUDA events on a GPU) and report achieved bandwidth and the
speedup over the kernel's reference implementation. A case that does not apply on this
device (Triton on the CPU) is skipped by ``setup`` raising ``NotImplementedError``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cases  # noqa: E402


def _size_label(size):
    return "x".join(map(str, size))


def _params(kernel):
    return [list(cases.IMPLS[kernel]), [_size_label(s) for s in cases.sizes(kernel)]]


class _Kernel:
    kernel = ""
    param_names = ["impl", "size"]
    timeout = 300

    def setup(self, impl, size):
        self.device = cases.default_device()
        self.case = cases.Case(self.kernel, impl, tuple(int(s) for s in size.split("x")))
        self.run = cases.build(self.case, self.device)
        self.run()  # compile and autotune outside the timings

    def time_step(self, impl, size):
        self.run()

    def track_gbps(self, impl, size):
        return cases.bytes_moved(self.case) / cases.time_case(self.run, self.device) / 1e9

    track_gbps.unit = "GB/s"

    def track_speedup(self, impl, size):
        reference = cases.REFERENCE_IMPL.get(self.kernel)
        if reference is None or reference == impl:
            return 1.0
        ref_case = cases.Case(self.kernel, reference, self.case.size)
        ref_run = cases.build(ref_case, self.device)
        ref_run()
        return cases.time_case(ref_run, self.device) / cases.time_case(self.run, self.device)

    track_speedup.unit = "x vs reference"


class ScanForward(_Kernel):
    kernel = "scan_fwd"
    params = _params("scan_fwd")


class ScanForwardBackward(_Kernel):
    kernel = "scan_fwdbwd"
    params = _params("scan_fwdbwd")


class AdamWStep(_Kernel):
    kernel = "adamw"
    params = _params("adamw")


class NGNStep(_Kernel):
    kernel = "ngn"
    params = _params("ngn")


class SGDStep(_Kernel):
    kernel = "sgd"
    params = _params("sgd")
