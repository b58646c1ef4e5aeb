"""Kernel benchmarks: the cases every harness measures (``bench.cases``), the one timer
(``bench.timing``) every kernel script shares (their inputs come from ``kernels.inputs``),
the comparison scripts (``bench.scan_compare``, ``bench.scan_demo``, ``bench.optim_compare``),
the asv suite (``bench.benchmarks``) and the per-commit count gate (``bench.counts``:
valgrind's instruction counts, ``bench.callgrind``; the Triton kernels' static figures,
``bench.static_figures``; the verdict, ``bench.count_gate``)."""
