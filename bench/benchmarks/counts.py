"""asv track benchmarks of the Triton kernels' deterministic figures, so that asv stores and
plots them per commit beside the timings: bytes per element (metered under the Triton
interpreter) and, per architecture, the compile figures of ``bench.static_figures``
(registers, spills, shared memory, occupancy, global accesses) of every case of
``bench.cases.STATIC_CASES``.

``setup_cache`` makes the commit's static report once per commit (a few minutes: the
interpreter walks the scan's time steps), with the commit's own ``kernels.report``; a
commit without it, or without a case, has the case skipped (``NotImplementedError``).
"""

import os

from bench import cases, static_figures

#: The architectures that kernels.report compiles for.
ARCHS = ("sm_90", "sm_80")


class StaticFigures:
    params = [list(cases.STATIC_CASES)]
    param_names = ["case"]
    timeout = 1800

    def setup_cache(self):
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports Triton here
        try:
            report = static_figures.build_report(list(cases.STATIC_CASES), os.cpu_count() or 1)
        except ImportError:
            return {}  # a commit older than kernels.report
        return {(s["figure"], s["arch"], s["case"]): s["value"]
                for s in static_figures.figures(report)}

    def setup(self, figures, case):
        if not any(key[2] == case for key in figures):
            raise NotImplementedError(f"this commit's static report has no case {case!r}")

    def track_bytes_per_element(self, figures, case):
        return figures[static_figures.BYTES_FIGURE, None, case]

    track_bytes_per_element.unit = "bytes per element"


def _track(figure: str, arch: str):
    def track(self, figures, case):
        return figures[figure, arch, case]

    track.unit = static_figures.COMPILE_UNITS[figure]
    track.__name__ = f"track_{arch}_{figure}"
    return track


for _arch in ARCHS:
    for _figure in static_figures.COMPILE_UNITS:
        setattr(StaticFigures, f"track_{_arch}_{_figure}", _track(_figure, _arch))
