"""asv benchmarks of the cases in ``bench.cases``, one class per kernel, timed on every
commit asv builds.

asv imports this suite from the checkout it runs in (``benchmark_dir`` is ``bench``),
and ``kernels`` from the commit it installed, so every commit is timed with the same
cases, inputs and sizes. ``time_step`` is asv's timing of one synchronised run; the
site's kernels page plots it per commit (``suites.site_data.kernels.timings``).

A case that does not run here (Triton on the CPU, the sequential oracle at long T) or
that an older commit lacks (a module, a function, a backend) is skipped by ``setup``
raising ``NotImplementedError``, asv's convention for "not applicable".
"""

from bench import cases, timing


def _size_label(size):
    return "x".join(map(str, size))


def _params(kernel):
    return [list(cases.IMPLS[kernel]), [_size_label(s) for s in cases.sizes(kernel)]]


_last_built: dict = {}


def _built(case):
    """The case's runner, built and warmed up once per process: asv calls ``setup``
    again before every sample, and building (inputs, optimizer state) costs more than
    the step itself."""
    if case not in _last_built:
        timing.set_cpu_threads(cases.default_device())
        try:
            run = cases.build(case)
            run()  # compile, autotune and allocate state outside the timings
        except (ImportError, AttributeError) as missing:
            raise NotImplementedError(f"this commit lacks {case.name}: {missing}") from None
        _last_built.clear()
        _last_built[case] = run
    return _last_built[case]


class _Kernel:
    kernel = ""
    param_names = ["impl", "size"]
    timeout = 300
    # A run takes 0.1 ms to 0.5 s on a CPU: one call per sample, 8 to 10 samples in one
    # process (building a case costs more than a step, so one round, not asv's two).
    # asv calls a change significant at p < 0.002 (Mann-Whitney): with 6 samples a side
    # no difference can reach that, with 8 one can.
    number = 1
    repeat = (8, 10, 5.0)
    rounds = 1
    warmup_time = 0.0

    def setup(self, impl, size):
        case = cases.Case(self.kernel, impl, tuple(int(s) for s in size.split("x")))
        self.run = _built(case)

    def time_step(self, impl, size):
        self.run()


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
