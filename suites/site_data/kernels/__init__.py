"""The kernels page's data, read from the results directory's kernel files; the only reader
of ``results/kernels/``, ``results/counts/`` and ``results/asv/``:

- ``benchmarks``: pytest-benchmark files (``make bench``) as one frame and its tables;
- ``static_report``: the static GPU report files (``make kernel-report``);
- ``counts``: the count gate's records per commit (``make counts``), with each series'
  first bad commit;
- ``timings``: wall-clock timings over commits, from asv's results and the
  pytest-benchmark files that name their commit.

Everything the page names (kernels, implementations, sizes, units) comes from the files.
"""

from suites.site_data.kernels.benchmarks import FUSED_IMPLS, kernel_frame, kernel_tables
from suites.site_data.kernels.counts import CountHistory, load_counts, moved_rows
from suites.site_data.kernels.static_report import static_reports
from suites.site_data.kernels.timings import Timings, changes, load

__all__ = ["FUSED_IMPLS", "CountHistory", "Timings", "changes", "kernel_frame", "kernel_tables",
           "load", "load_counts", "moved_rows", "static_reports"]
